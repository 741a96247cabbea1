//! One end of an encrypted link for the wire-level clients and the raw forwarder, built from
//! the core's public pieces (`breeze_core::secure`): the Noise XX handshake of a client↔server
//! link, then records.
//!
//! What goes out is encoded once into a buffer and sealed as a whole in one call (one record
//! per 64 KiB, not one per frame), then written in one write; what comes in is cut into
//! records and opened into a plaintext buffer, which the caller decodes frames from.

use breeze_core::rng::SeededRng;
use breeze_core::secure::{
    Handshake, HandshakeError, IdentityKey, Inbound, LinkKind, PublicKey, RecordError, Sealer,
};
use std::fmt;

/// Why a link is broken; it cannot be used again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkFailure {
    Handshake(HandshakeError),
    Record(RecordError),
    /// The other side proved a static key other than the one expected.
    WrongKey,
}

impl From<RecordError> for LinkFailure {
    fn from(error: RecordError) -> Self {
        LinkFailure::Record(error)
    }
}

impl From<HandshakeError> for LinkFailure {
    fn from(error: HandshakeError) -> Self {
        LinkFailure::Handshake(error)
    }
}

impl fmt::Display for LinkFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkFailure::Handshake(error) => error.fmt(f),
            LinkFailure::Record(error) => error.fmt(f),
            LinkFailure::WrongKey => f.write_str("the other side holds an unexpected key"),
        }
    }
}

/// A client↔server link (XX), either end.
pub struct SecureLink {
    /// Until the last message of the pattern is through.
    handshake: Option<Handshake>,
    /// The other side's key must be this one (the client's pin); `None` takes any.
    expect: Option<PublicKey>,
    inbound: Inbound,
    sealer: Option<Sealer>,
    /// Our handshake messages, framed, not yet taken for writing.
    outgoing: Vec<u8>,
}

impl SecureLink {
    /// The client's end: its first handshake message is ready in
    /// [`take_outgoing`](SecureLink::take_outgoing) at once.
    pub fn initiator(
        identity: &IdentityKey,
        expect: Option<PublicKey>,
        seed: [u8; 32],
    ) -> Result<SecureLink, LinkFailure> {
        let mut rng = SeededRng::from_seed(seed);
        let mut handshake = Handshake::initiator(LinkKind::ClientServer, identity, None, &mut rng)?;
        let first = handshake.write(&[])?;
        Ok(SecureLink {
            handshake: Some(handshake),
            expect,
            inbound: Inbound::default(),
            sealer: None,
            outgoing: first,
        })
    }

    /// The server's end: it waits for the client's first message.
    pub fn responder(identity: &IdentityKey, seed: [u8; 32]) -> Result<SecureLink, LinkFailure> {
        let mut rng = SeededRng::from_seed(seed);
        let handshake = Handshake::responder(LinkKind::ClientServer, identity, &mut rng)?;
        Ok(SecureLink {
            handshake: Some(handshake),
            expect: None,
            inbound: Inbound::default(),
            sealer: None,
            outgoing: Vec::new(),
        })
    }

    /// Whether the handshake is through: frames can be sealed.
    pub fn is_open(&self) -> bool {
        self.sealer.is_some()
    }

    /// Reads what arrived: handshake messages move the handshake on (our answers wait in
    /// [`take_outgoing`](SecureLink::take_outgoing)); records are opened and their plaintext
    /// appended to `plain`.
    pub fn read(&mut self, bytes: &[u8], plain: &mut Vec<u8>) -> Result<(), LinkFailure> {
        let SecureLink {
            handshake,
            expect,
            inbound,
            sealer,
            outgoing,
        } = self;
        inbound.read(bytes, plain, |message| {
            let step = handshake
                .as_mut()
                .ok_or(LinkFailure::Handshake(HandshakeError::Failed))?;
            step.read(message)?;
            if let (Some(expected), Some(presented)) = (*expect, step.remote()) {
                if expected != presented {
                    return Err(LinkFailure::WrongKey);
                }
            }
            if !step.is_finished() {
                outgoing.extend_from_slice(&step.write(&[])?);
            }
            if !step.is_finished() {
                return Ok(None);
            }
            let channel = handshake
                .take()
                .ok_or(LinkFailure::Handshake(HandshakeError::Failed))?
                .finish()?;
            *sealer = Some(channel.sealer);
            Ok(Some(channel.opener))
        })
    }

    /// The sending half, for a writer of its own (the forwarder writes to a connection from
    /// every other connection's task); [`seal`](SecureLink::seal) fails from then on.
    pub fn take_sealer(&mut self) -> Option<Sealer> {
        self.sealer.take()
    }

    /// Appends our pending handshake messages to `out` (they go before any record).
    pub fn take_outgoing(&mut self, out: &mut Vec<u8>) {
        out.append(&mut self.outgoing);
    }

    /// Appends `plain` to `out` as records, in one call however many frames it holds. Only
    /// once the link [`is_open`](SecureLink::is_open).
    pub fn seal(&mut self, plain: &[u8], out: &mut Vec<u8>) -> Result<(), LinkFailure> {
        let sealer = self
            .sealer
            .as_mut()
            .ok_or(LinkFailure::Handshake(HandshakeError::Failed))?;
        sealer.seal(plain, out)?;
        Ok(())
    }
}

/// A seed for a link's handshake (its ephemeral key): from the operating system, as the
/// cores' hosts draw theirs.
pub fn fresh_seed() -> [u8; 32] {
    breeze_smol::os_seed().unwrap_or_else(|_| {
        // No OS randomness: a benchmark still runs, with keys nobody needs to keep secret.
        let mut seed = [0u8; 32];
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        seed[..16].copy_from_slice(&nanos.to_le_bytes());
        seed
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_ends_open_and_carry_a_batch_either_way() {
        let (client_key, server_key) = (
            IdentityKey::from_secret([1; 32]),
            IdentityKey::from_secret([2; 32]),
        );
        let mut client =
            SecureLink::initiator(&client_key, Some(server_key.public()), [3; 32]).unwrap();
        let mut server = SecureLink::responder(&server_key, [4; 32]).unwrap();
        let mut plain = Vec::new();
        let mut wire = Vec::new();
        client.take_outgoing(&mut wire);
        server.read(&wire, &mut plain).unwrap();
        wire.clear();
        server.take_outgoing(&mut wire);
        client.read(&wire, &mut plain).unwrap();
        assert!(client.is_open() && !server.is_open());
        wire.clear();
        client.take_outgoing(&mut wire);
        client.seal(b"hello, login", &mut wire).unwrap();
        server.read(&wire, &mut plain).unwrap();
        assert!(server.is_open());
        assert_eq!(plain, b"hello, login");
        let big = vec![7u8; 200_000];
        let (mut sealed, mut opened) = (Vec::new(), Vec::new());
        server.seal(&big, &mut sealed).unwrap();
        // In pieces, as a socket delivers it.
        for piece in sealed.chunks(1000) {
            client.read(piece, &mut opened).unwrap();
        }
        assert_eq!(opened, big);
    }

    #[test]
    fn a_client_refuses_a_server_with_another_key() {
        let client_key = IdentityKey::from_secret([1; 32]);
        let (pinned, actual) = (
            IdentityKey::from_secret([2; 32]),
            IdentityKey::from_secret([5; 32]),
        );
        let mut client =
            SecureLink::initiator(&client_key, Some(pinned.public()), [3; 32]).unwrap();
        let mut server = SecureLink::responder(&actual, [4; 32]).unwrap();
        let (mut wire, mut plain) = (Vec::new(), Vec::new());
        client.take_outgoing(&mut wire);
        server.read(&wire, &mut plain).unwrap();
        wire.clear();
        server.take_outgoing(&mut wire);
        assert_eq!(client.read(&wire, &mut plain), Err(LinkFailure::WrongKey));
        let mut nothing = Vec::new();
        client.take_outgoing(&mut nothing);
        assert!(
            nothing.is_empty(),
            "nothing of ours goes to the wrong server"
        );
    }
}
