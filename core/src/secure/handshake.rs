//! The Noise handshakes that open every connection (see the module docs for the patterns).
//!
//! A [`Handshake`] is one side of one handshake: the link's state machine writes and reads its
//! messages in the pattern's order and, once the last one is through, turns it into the
//! record layer's [`Sealer`] and [`Opener`]. The checks of *whom* the handshake reached (the
//! pinned server key, the introduced peer key) belong to the caller, which knows what to expect;
//! this type only guarantees that the remote static key it reports is the one the other side
//! proved it holds.

use super::keys::{IdentityKey, PublicKey};
use super::record::{framed, split, Opener, Sealer, MAX_RECORD};
use super::resolver::SeededResolver;
use crate::rng::SeededRng;
use crate::wire::PROTOCOL_VERSION;
use std::fmt;

const CLIENT_SERVER: &str = "Noise_XX_25519_AESGCM_SHA256";
const PEER: &str = "Noise_IK_25519_AESGCM_SHA256";

/// Which link a handshake opens; part of the prologue, so one kind's messages are worthless on
/// the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    /// A client and its server (XX: the client learns and checks the server's key first).
    ClientServer,
    /// Two clients on a direct channel (IK: the dialer knows the acceptor's key).
    Peer,
}

/// Why a handshake failed. The connection is closed; nothing from it reached anyone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandshakeError {
    /// A message that is not the next one of the pattern, cannot be decrypted, or is damaged
    /// (also a replayed or forged one, one made for another protocol version or link kind, or
    /// one from someone not holding the key it was encrypted to). Which key the other side
    /// holds is the caller's to judge: see [`LinkError::WrongKey`](crate::client::LinkError).
    Failed,
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HandshakeError::Failed => "handshake failed",
        })
    }
}

impl std::error::Error for HandshakeError {}

/// One side of one handshake in progress.
pub struct Handshake {
    state: snow::HandshakeState,
}

impl fmt::Debug for Handshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Handshake(finished: {})",
            self.state.is_handshake_finished()
        )
    }
}

/// A handshake that just finished: the channel's halves and who is at the other end.
pub struct Progress {
    /// Seals what we send.
    pub sealer: Sealer,
    /// Opens what we receive.
    pub opener: Opener,
    /// The static key the other side proved it holds.
    pub remote: PublicKey,
}

fn prologue(kind: LinkKind, version: u16) -> Vec<u8> {
    let kind = match kind {
        LinkKind::ClientServer => "client-server",
        LinkKind::Peer => "peer",
    };
    format!("breeze/{version} {kind}").into_bytes()
}

fn params(kind: LinkKind) -> snow::params::NoiseParams {
    let name = match kind {
        LinkKind::ClientServer => CLIENT_SERVER,
        LinkKind::Peer => PEER,
    };
    name.parse()
        .unwrap_or_else(|_| unreachable!("{name} is a valid Noise pattern"))
}

impl Handshake {
    /// The side that speaks first: a client opening its server link (`remote` is `None`), or
    /// the dialer of a direct channel (`remote` is the introduced peer's key).
    pub fn initiator(
        kind: LinkKind,
        local: &IdentityKey,
        remote: Option<&PublicKey>,
        rng: &mut SeededRng,
    ) -> Result<Self, HandshakeError> {
        Self::build(kind, local, remote, rng, true)
    }

    /// The side that answers: the server, or a client accepting a direct channel.
    pub fn responder(
        kind: LinkKind,
        local: &IdentityKey,
        rng: &mut SeededRng,
    ) -> Result<Self, HandshakeError> {
        Self::build(kind, local, None, rng, false)
    }

    fn build(
        kind: LinkKind,
        local: &IdentityKey,
        remote: Option<&PublicKey>,
        rng: &mut SeededRng,
        initiator: bool,
    ) -> Result<Self, HandshakeError> {
        Self::build_for(PROTOCOL_VERSION, kind, local, remote, rng, initiator)
    }

    fn build_for(
        version: u16,
        kind: LinkKind,
        local: &IdentityKey,
        remote: Option<&PublicKey>,
        rng: &mut SeededRng,
        initiator: bool,
    ) -> Result<Self, HandshakeError> {
        let prologue = prologue(kind, version);
        let resolver = Box::new(SeededResolver::new(rng));
        let mut builder = snow::Builder::with_resolver(params(kind), resolver)
            .local_private_key(local.secret_bytes())
            .and_then(|b| b.prologue(&prologue))
            .map_err(|_| HandshakeError::Failed)?;
        if let Some(remote) = remote {
            builder = builder
                .remote_public_key(&remote.0)
                .map_err(|_| HandshakeError::Failed)?;
        }
        let state = if initiator {
            builder.build_initiator()
        } else {
            builder.build_responder()
        };
        Ok(Handshake {
            state: state.map_err(|_| HandshakeError::Failed)?,
        })
    }

    /// The next message of ours, with `payload`, framed for the wire.
    pub fn write(&mut self, payload: &[u8]) -> Result<Vec<u8>, HandshakeError> {
        let mut message = vec![0u8; MAX_RECORD];
        let len = self
            .state
            .write_message(payload, &mut message)
            .map_err(|_| HandshakeError::Failed)?;
        Ok(framed(&message[..len]))
    }

    /// Their next message (without its length prefix); its payload.
    pub fn read(&mut self, message: &[u8]) -> Result<Vec<u8>, HandshakeError> {
        let mut payload = vec![0u8; message.len()];
        let len = self
            .state
            .read_message(message, &mut payload)
            .map_err(|_| HandshakeError::Failed)?;
        payload.truncate(len);
        Ok(payload)
    }

    /// The other side's static key, once a message has proved it.
    pub fn remote(&self) -> Option<PublicKey> {
        let key: [u8; 32] = self.state.get_remote_static()?.try_into().ok()?;
        Some(PublicKey(key))
    }

    /// Whether every message of the pattern has been written or read.
    pub fn is_finished(&self) -> bool {
        self.state.is_handshake_finished()
    }

    /// The established channel; only once [`is_finished`](Handshake::is_finished).
    pub fn finish(mut self) -> Result<Progress, HandshakeError> {
        if !self.state.is_handshake_finished() {
            return Err(HandshakeError::Failed);
        }
        let remote = self.remote().ok_or(HandshakeError::Failed)?;
        // The two keys Noise's Split() gives: the initiator sends with the first.
        let (first, second) = self.state.dangerously_get_raw_split();
        let (send, receive) = if self.state.is_initiator() {
            (first, second)
        } else {
            (second, first)
        };
        let (sealer, opener) = split(send, receive);
        Ok(Progress {
            sealer,
            opener,
            remote,
        })
    }
}

/// Both ends of an established peer channel, for tests of what runs over one.
#[cfg(test)]
pub(crate) fn test_channel() -> (Progress, Progress) {
    let mut rng = SeededRng::from_u64(77);
    let (a, b) = (
        IdentityKey::from_secret([1; 32]),
        IdentityKey::from_secret([2; 32]),
    );
    let mut d = Handshake::initiator(LinkKind::Peer, &a, Some(&b.public()), &mut rng).unwrap();
    let mut r = Handshake::responder(LinkKind::Peer, &b, &mut rng).unwrap();
    let unframe = |m: &[u8]| m[2..].to_vec();
    r.read(&unframe(&d.write(&[]).unwrap())).unwrap();
    d.read(&unframe(&r.write(&[]).unwrap())).unwrap();
    (d.finish().unwrap(), r.finish().unwrap())
}

#[cfg(test)]
mod tests {
    use super::super::record::RecordReader;
    use super::*;

    fn key(n: u8) -> IdentityKey {
        IdentityKey::from_secret([n; 32])
    }

    /// The message in `framed`, without its prefix.
    fn unframe(framed: &[u8]) -> Vec<u8> {
        let mut reader = RecordReader::default();
        let mut input = framed;
        reader.next(&mut input).expect("one whole message").to_vec()
    }

    fn channel_works(mut a: Progress, mut b: Progress) {
        let sealed = a.sealer.seal_to_vec(b"hello there").unwrap();
        let mut plain = Vec::new();
        b.opener.open(&unframe(&sealed), &mut plain).unwrap();
        assert_eq!(plain, b"hello there");
        // The same record again is a replay: the counter moved on.
        assert_eq!(
            b.opener.open(&unframe(&sealed), &mut plain),
            Err(super::super::RecordError::Forged)
        );
    }

    #[test]
    fn client_and_server_learn_each_others_keys() {
        let mut rng = SeededRng::from_u64(1);
        let (client, server) = (key(1), key(2));
        let mut c = Handshake::initiator(LinkKind::ClientServer, &client, None, &mut rng).unwrap();
        let mut s = Handshake::responder(LinkKind::ClientServer, &server, &mut rng).unwrap();
        let m1 = c.write(&[]).unwrap();
        s.read(&unframe(&m1)).unwrap();
        let m2 = s.write(&[]).unwrap();
        c.read(&unframe(&m2)).unwrap();
        assert_eq!(
            c.remote(),
            Some(server.public()),
            "the server's key, before ours is sent"
        );
        let m3 = c.write(&[]).unwrap();
        s.read(&unframe(&m3)).unwrap();
        assert!(c.is_finished() && s.is_finished());
        let (c, s) = (c.finish().unwrap(), s.finish().unwrap());
        assert_eq!(s.remote, client.public());
        channel_works(c, s);
    }

    #[test]
    fn a_dialer_reaches_only_the_key_it_was_introduced_to() {
        let mut rng = SeededRng::from_u64(2);
        let (dialer, acceptor, impostor) = (key(1), key(2), key(3));
        let mut d =
            Handshake::initiator(LinkKind::Peer, &dialer, Some(&acceptor.public()), &mut rng)
                .unwrap();
        let m1 = d.write(b"alice").unwrap();
        // Someone else at the acceptor's address cannot even read the first message.
        let mut wrong = Handshake::responder(LinkKind::Peer, &impostor, &mut rng).unwrap();
        assert_eq!(wrong.read(&unframe(&m1)), Err(HandshakeError::Failed));
        let mut a = Handshake::responder(LinkKind::Peer, &acceptor, &mut rng).unwrap();
        assert_eq!(a.read(&unframe(&m1)).unwrap(), b"alice");
        assert_eq!(a.remote(), Some(dialer.public()));
        let m2 = a.write(&[]).unwrap();
        d.read(&unframe(&m2)).unwrap();
        channel_works(d.finish().unwrap(), a.finish().unwrap());
    }

    /// No downgrade: a dialer speaking another protocol version (its prologue says so) gets no
    /// channel, and neither does a client of another version with its server.
    #[test]
    fn a_handshake_of_another_protocol_version_fails() {
        let mut rng = SeededRng::from_u64(4);
        let (dialer, acceptor) = (key(1), key(2));
        let old = PROTOCOL_VERSION - 1;
        let mut d = Handshake::build_for(
            old,
            LinkKind::Peer,
            &dialer,
            Some(&acceptor.public()),
            &mut rng,
            true,
        )
        .unwrap();
        let mut a = Handshake::responder(LinkKind::Peer, &acceptor, &mut rng).unwrap();
        assert_eq!(
            a.read(&unframe(&d.write(&[]).unwrap())),
            Err(HandshakeError::Failed)
        );
        let mut c =
            Handshake::build_for(old, LinkKind::ClientServer, &dialer, None, &mut rng, true)
                .unwrap();
        let mut s = Handshake::responder(LinkKind::ClientServer, &acceptor, &mut rng).unwrap();
        s.read(&unframe(&c.write(&[]).unwrap())).unwrap();
        // XX's first message is plain; the second, bound to both prologues, does not read.
        assert_eq!(
            c.read(&unframe(&s.write(&[]).unwrap())),
            Err(HandshakeError::Failed)
        );
    }

    #[test]
    fn a_message_for_the_other_link_kind_fails() {
        let mut rng = SeededRng::from_u64(3);
        let (client, acceptor) = (key(1), key(2));
        let mut c = Handshake::initiator(LinkKind::ClientServer, &client, None, &mut rng).unwrap();
        let m1 = c.write(&[]).unwrap();
        let mut a = Handshake::responder(LinkKind::Peer, &acceptor, &mut rng).unwrap();
        assert_eq!(a.read(&unframe(&m1)), Err(HandshakeError::Failed));
    }
}
