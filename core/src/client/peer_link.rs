//! Direct channels: the authenticated setup handshake, heartbeats, and losing a channel.

use super::output::{Action, Destination, Event, LinkError, Opening, RouteReason};
use super::peers::Dial;
use super::{Client, LinkId};
use crate::codec::FrameDecoder;
use crate::delivery::Via;
use crate::liveness::Liveness;
use crate::outbound::QueueError;
use crate::secure::{
    Handshake, HandshakeError, Inbound, LinkKind, Opener, PublicKey, Read, ReadOwner,
};
use crate::wire::{ClosingReason, PeerFrame, UserName};
use std::fmt;
use std::net::SocketAddr;
use std::time::Instant;

pub(super) enum Setup {
    /// We dialled `peer` and sent the first handshake message, encrypted to the key it was
    /// introduced with.
    Dialing {
        peer: UserName,
        handshake: Handshake,
    },
    /// Someone connected to us; no handshake message yet.
    AcceptorAwaitingHello { handshake: Handshake },
    /// `peer` (proving `key`) reached us before the server's introduction of it did; wait
    /// for it, to know whether that is the key the server vouches for.
    AcceptorAwaitingIntro {
        peer: UserName,
        key: PublicKey,
        handshake: Handshake,
    },
    /// We answered; the channel is up as soon as a first record from the dialer proves it
    /// is live (a replayed first message could not produce one).
    AcceptorAnswered { peer: UserName },
    /// Authenticated both ways.
    Up { peer: UserName, dialer: UserName },
    /// The handshake failed; the link is being dropped. Keeps who it was with (or claimed to
    /// be), so the drop is reported and a dialer dials again.
    Failed { peer: Option<UserName> },
}

impl fmt::Debug for Setup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Setup::Dialing { peer, .. } => write!(f, "Dialing({peer})"),
            Setup::AcceptorAwaitingHello { .. } => f.write_str("AcceptorAwaitingHello"),
            Setup::AcceptorAwaitingIntro { peer, .. } => write!(f, "AcceptorAwaitingIntro({peer})"),
            Setup::AcceptorAnswered { peer } => write!(f, "AcceptorAnswered({peer})"),
            Setup::Up { peer, dialer } => write!(f, "Up({peer}, dialed by {dialer})"),
            Setup::Failed { peer } => write!(f, "Failed({peer:?})"),
        }
    }
}

#[derive(Debug)]
pub(super) struct PeerLink {
    /// `None` only for a moment, while a handshake step has it out.
    pub setup: Option<Setup>,
    pub opened: Instant,
    inbound: Inbound,
    decoder: FrameDecoder,
    liveness: Liveness,
}

impl PeerLink {
    fn new(setup: Setup, max_frame: usize, now: Instant) -> Self {
        PeerLink {
            setup: Some(setup),
            opened: now,
            inbound: Inbound::default(),
            decoder: FrameDecoder::new(max_frame),
            liveness: Liveness::new(now),
        }
    }

    /// The user this link is (or claims to be) with.
    pub(super) fn peer(&self) -> Option<&UserName> {
        match self.setup.as_ref()? {
            Setup::Dialing { peer, .. }
            | Setup::AcceptorAwaitingIntro { peer, .. }
            | Setup::AcceptorAnswered { peer }
            | Setup::Up { peer, .. } => Some(peer),
            Setup::Failed { peer } => peer.as_ref(),
            Setup::AcceptorAwaitingHello { .. } => None,
        }
    }

    fn is_up(&self) -> bool {
        matches!(self.setup, Some(Setup::Up { .. }))
    }
}

impl Client {
    /// The host connected the dial for `peer`, as `link`.
    pub fn handle_dialed(&mut self, link: LinkId, peer: &UserName, now: Instant) {
        let expected = self
            .peers
            .get(peer)
            .is_some_and(|p| p.dial == Dial::InFlight);
        if !expected || self.links.contains_key(&link) || self.is_stopped() {
            self.actions.push_back(Action::CloseLink { link });
            return;
        }
        if !self.config.direct_channels {
            // Turned off while the host was dialling: the dial counts as failed.
            self.actions.push_back(Action::CloseLink { link });
            self.dial_failed(peer, now);
            return self.finish(now);
        }
        let key = self
            .peers
            .get(peer)
            .and_then(|p| p.intro.as_ref())
            .map(|i| i.key);
        let me = self.config.user.as_str().as_bytes().to_vec();
        let first = key.ok_or(HandshakeError::Failed).and_then(|key| {
            let mut handshake =
                Handshake::initiator(LinkKind::Peer, &self.identity, Some(&key), &mut self.rng)?;
            Ok((handshake.write(&me)?, handshake))
        });
        let Ok((first, handshake)) = first else {
            self.actions.push_back(Action::CloseLink { link });
            self.dial_failed(peer, now);
            return self.finish(now);
        };
        let setup = Setup::Dialing {
            peer: peer.clone(),
            handshake,
        };
        self.links
            .insert(link, PeerLink::new(setup, self.config.max_frame, now));
        self.outbound.open(Destination::Peer(link));
        let _ = self.outbound.send_handshake(Destination::Peer(link), first);
        if let Some(p) = self.peers.get_mut(peer) {
            p.set_dial(Dial::Handshaking(link), &mut self.dials_in_flight);
        }
        self.finish(now);
    }

    /// The host could not connect to `peer`.
    pub fn handle_dial_failed(&mut self, peer: &UserName, now: Instant) {
        if self
            .peers
            .get(peer)
            .is_some_and(|p| p.dial == Dial::InFlight)
        {
            self.dial_failed(peer, now);
        }
        self.finish(now);
    }

    /// Someone connected to our P2P port.
    pub fn handle_accepted(&mut self, link: LinkId, remote: SocketAddr, now: Instant) {
        let _ = remote;
        if self.links.contains_key(&link) || self.is_stopped() || !self.config.direct_channels {
            self.actions.push_back(Action::CloseLink { link });
            return;
        }
        if self.channels_held() >= self.config.max_direct_channels && !self.make_room(now) {
            // Every channel is busy: the dialler falls back to the relay and tries later.
            self.actions.push_back(Action::CloseLink { link });
            return self.finish(now);
        }
        let Ok(handshake) = Handshake::responder(LinkKind::Peer, &self.identity, &mut self.rng)
        else {
            self.actions.push_back(Action::CloseLink { link });
            return self.finish(now);
        };
        let setup = Setup::AcceptorAwaitingHello { handshake };
        self.links
            .insert(link, PeerLink::new(setup, self.config.max_frame, now));
        self.outbound.open(Destination::Peer(link));
        if self.links.len() > self.config.max_links {
            self.drop_link(link, LinkError::TooManyLinks, true, now);
        }
        self.finish(now);
    }

    /// Bytes read from `link`, in any chunking: frames may be split or batched at will.
    pub fn handle_link_bytes(&mut self, link: LinkId, bytes: &[u8], now: Instant) {
        self.on_link_input(link, Read::Slice(bytes), now);
    }

    /// [`handle_link_bytes`](Client::handle_link_bytes) for a transport that hands over the
    /// buffer it read into, `len` bytes of it read: records are opened where they lie and
    /// file chunks keep their data in it (see [`ReadOwner`]).
    pub fn handle_link_buffer(
        &mut self,
        link: LinkId,
        buffer: impl ReadOwner,
        len: usize,
        now: Instant,
    ) {
        self.on_link_input(link, Read::owned(buffer, len), now);
    }

    fn on_link_input(&mut self, link: LinkId, input: Read<'_>, now: Instant) {
        let Some(state) = self.links.get_mut(&link) else {
            return;
        };
        state.liveness.received(now);
        let mut inbound = std::mem::take(&mut state.inbound);
        let opened = inbound.read_plain(input, |message| {
            self.link_handshake_step(link, message, now)
        });
        let Some(state) = self.links.get_mut(&link) else {
            return self.finish(now);
        };
        state.inbound = inbound;
        let plain = match opened {
            Ok(plain) => plain,
            Err(error) => {
                self.reject_link(link, error, now);
                return self.finish(now);
            }
        };
        if !plain.is_empty() {
            let mut decoder = std::mem::replace(&mut state.decoder, FrameDecoder::new(0));
            let decoded = plain.decode_each(&mut decoder, self, |client, frame: PeerFrame| {
                client.on_link_frame(link, frame, now);
                client.links.contains_key(&link)
            });
            if let Err(err) = decoded {
                self.reject_link(link, LinkError::Decode(err.code()), now);
            }
            if let Some(state) = self.links.get_mut(&link) {
                state.decoder = decoder;
            }
        }
        self.finish(now);
    }

    /// One handshake message on a peer link (IK). The acceptor reads the dialer's first
    /// message, which names the user and proves its key; the dialer reads the answer, which
    /// only the holder of the introduced key can write.
    fn link_handshake_step(
        &mut self,
        link: LinkId,
        message: &[u8],
        now: Instant,
    ) -> Result<Option<Opener>, LinkError> {
        let claimed = self.links.get(&link).and_then(|l| l.peer().cloned());
        let step = self.link_handshake_step_inner(link, message, now);
        if step.is_err() {
            if let Some(state) = self.links.get_mut(&link) {
                if state.setup.is_none() {
                    state.setup = Some(Setup::Failed { peer: claimed });
                }
            }
        }
        step
    }

    fn link_handshake_step_inner(
        &mut self,
        link: LinkId,
        message: &[u8],
        now: Instant,
    ) -> Result<Option<Opener>, LinkError> {
        let failed = LinkError::Handshake(HandshakeError::Failed);
        let state = self.links.get_mut(&link).ok_or(failed)?;
        match state.setup.take().ok_or(failed)? {
            Setup::Dialing {
                peer,
                mut handshake,
            } => {
                handshake.read(message).map_err(LinkError::Handshake)?;
                let channel = handshake.finish().map_err(LinkError::Handshake)?;
                self.outbound
                    .start_sealing(Destination::Peer(link), channel.sealer);
                // The acceptor counts the channel as up on our first record: send one now.
                self.send_link(link, &PeerFrame::Ping, now);
                let me = self.config.user.clone();
                self.link_up(link, peer, me, now);
                Ok(Some(channel.opener))
            }
            Setup::AcceptorAwaitingHello { mut handshake } => {
                let claimed = handshake.read(message).map_err(LinkError::Handshake)?;
                let key = handshake.remote().ok_or(failed)?;
                let peer = std::str::from_utf8(&claimed)
                    .ok()
                    .and_then(|name| UserName::new(name).ok())
                    .filter(|name| *name != self.config.user)
                    .ok_or(LinkError::UnexpectedFrame)?;
                match self.introduced_key(&peer) {
                    Some(introduced) if introduced == key => {
                        self.answer(link, peer, handshake).map(Some)
                    }
                    Some(_) => {
                        self.set_setup(link, Setup::AcceptorAnswered { peer });
                        Err(LinkError::WrongKey)
                    }
                    None => {
                        // On a large server we hear only of whom we watch: ask for this one.
                        self.note_interest(&peer);
                        self.set_setup(
                            link,
                            Setup::AcceptorAwaitingIntro {
                                peer,
                                key,
                                handshake,
                            },
                        );
                        Ok(None)
                    }
                }
            }
            _ => Err(LinkError::UnexpectedFrame),
        }
    }

    fn set_setup(&mut self, link: LinkId, setup: Setup) {
        if let Some(state) = self.links.get_mut(&link) {
            state.setup = Some(setup);
        }
    }

    /// The key the server's latest introduction gave for `peer`.
    fn introduced_key(&self, peer: &UserName) -> Option<PublicKey> {
        Some(self.peers.get(peer)?.intro.as_ref()?.key)
    }

    /// Acceptor: the dialer proved the introduced key; finish the handshake.
    fn answer(
        &mut self,
        link: LinkId,
        peer: UserName,
        mut handshake: Handshake,
    ) -> Result<Opener, LinkError> {
        self.set_setup(link, Setup::AcceptorAnswered { peer });
        let reply = handshake.write(&[]).map_err(LinkError::Handshake)?;
        let channel = handshake.finish().map_err(LinkError::Handshake)?;
        let _ = self.outbound.send_handshake(Destination::Peer(link), reply);
        self.outbound
            .start_sealing(Destination::Peer(link), channel.sealer);
        Ok(channel.opener)
    }

    /// Turns direct channels on or off while running: the dial and accept policy of
    /// [`ClientConfig::direct_channels`](super::ClientConfig::direct_channels), for a host
    /// that learns at run time that the direct path is unwanted or unusable (a firewall, a
    /// metered link). Off closes every peer link (each peer falls back to the relay and what
    /// went direct unacknowledged is sent again), refuses accepted links and stops dialling;
    /// on resumes dialling at each peer's next redial time. The port advertised to the server
    /// changes only at the next login.
    pub fn set_direct_channels(&mut self, on: bool, now: Instant) {
        self.config.direct_channels = on;
        if !on {
            let links: Vec<LinkId> = self.links.keys().copied().collect();
            for link in links {
                self.drop_link(link, LinkError::TurnedOff, true, now);
            }
        }
        self.finish(now);
    }

    /// The link's socket closed or failed on its own.
    pub fn handle_link_closed(&mut self, link: LinkId, now: Instant) {
        self.drop_link(link, LinkError::Closed, false, now);
        self.finish(now);
    }

    pub(super) fn links_deadline(&self) -> Option<Instant> {
        let heartbeat = &self.config.heartbeat;
        let links = self.links.values().map(|link| {
            if link.is_up() {
                link.liveness.next_deadline(heartbeat)
            } else {
                link.opened + self.config.setup_timeout
            }
        });
        links.chain(self.idle_deadline()).min()
    }

    pub(super) fn links_timeout(&mut self, now: Instant) {
        let heartbeat = self.config.heartbeat;
        let mut failed = Vec::new();
        let mut ping = Vec::new();
        for (id, link) in &self.links {
            if !link.is_up() {
                if link.opened + self.config.setup_timeout <= now {
                    let error = match link.setup {
                        Some(Setup::AcceptorAwaitingIntro { .. }) => LinkError::UnknownPeer,
                        _ => LinkError::SetupTimeout,
                    };
                    failed.push((*id, error));
                }
            } else if link.liveness.dead_at(&heartbeat) <= now {
                failed.push((*id, LinkError::Idle));
            } else if link.liveness.ping_at(&heartbeat) <= now {
                ping.push(*id);
            }
        }
        for link in ping {
            self.heartbeats_sent += 1;
            self.send_link(link, &PeerFrame::Ping, now);
        }
        for (link, error) in failed {
            if error == LinkError::UnknownPeer {
                self.reject_link(link, error, now);
            } else {
                self.drop_link(link, error, true, now);
            }
        }
    }

    /// Queues a frame on a link; a link that cannot take it is dropped after this input.
    pub(super) fn send_link(&mut self, link: LinkId, frame: &PeerFrame, now: Instant) -> bool {
        match self.outbound.send(Destination::Peer(link), frame) {
            Ok(()) => {
                if let Some(state) = self.links.get_mut(&link) {
                    state.liveness.sent(now);
                }
                true
            }
            Err(QueueError::Full) => {
                self.doomed.push(Destination::Peer(link));
                false
            }
            Err(_) => false,
        }
    }

    /// The server introduced `peer`: a setup that was waiting for that can go on, if the
    /// dialer proved the key the server vouches for.
    pub(super) fn introduction_arrived(&mut self, peer: &UserName, now: Instant) {
        let waiting: Vec<LinkId> = self
            .links
            .iter()
            .filter(|(_, link)| {
                matches!(&link.setup, Some(Setup::AcceptorAwaitingIntro { peer: p, .. }) if p == peer)
            })
            .map(|(id, _)| *id)
            .collect();
        let introduced = self.introduced_key(peer);
        for link in waiting {
            let Some(Setup::AcceptorAwaitingIntro {
                peer,
                key,
                handshake,
            }) = self.links.get_mut(&link).and_then(|l| l.setup.take())
            else {
                continue;
            };
            if introduced != Some(key) {
                self.set_setup(link, Setup::AcceptorAnswered { peer });
                self.reject_link(link, LinkError::WrongKey, now);
                continue;
            }
            match self.answer(link, peer, handshake) {
                Ok(opener) => {
                    if let Some(state) = self.links.get_mut(&link) {
                        state.inbound.open_with(opener);
                    }
                }
                Err(error) => self.reject_link(link, error, now),
            }
        }
    }

    fn on_link_frame(&mut self, link: LinkId, frame: PeerFrame, now: Instant) {
        let Some(state) = self.links.get_mut(&link) else {
            return;
        };
        if let Some(Setup::AcceptorAnswered { peer }) = &state.setup {
            // The dialer's first record: it holds the session keys, so it is live.
            let peer = peer.clone();
            self.link_up(link, peer.clone(), peer, now);
        }
        let Some(Setup::Up { peer, .. }) = self.links.get(&link).and_then(|l| l.setup.as_ref())
        else {
            // Replaced by an older channel in the tie-break, or not set up at all.
            return;
        };
        let peer = peer.clone();
        match frame {
            PeerFrame::Chat(chat) => {
                if chat.text.len() > self.config.max_text_len {
                    self.reject_link(link, LinkError::TextTooLong, now);
                } else {
                    self.mark_used(&peer, now);
                    self.on_chat(&peer, chat, Via::Direct, now);
                }
            }
            PeerFrame::Ack(ack) => self.on_ack(&peer, ack),
            PeerFrame::Ping => {}
            PeerFrame::File(message) => {
                self.mark_used(&peer, now);
                self.on_file_message(&peer, message, Via::Direct, now)
            }
            PeerFrame::Bye => self.drop_link(link, LinkError::Closed, true, now),
            PeerFrame::Closing(reason) => {
                self.drop_link(link, LinkError::Orderly(reason), true, now)
            }
            PeerFrame::Error { code } => self.drop_link(link, LinkError::Remote(code), true, now),
        }
    }

    /// Both sides are authenticated. If a channel to the peer already exists, exactly one
    /// survives, chosen the same way on both sides: the one dialled by the smaller user name,
    /// or, when one side dialled both, the newer one (the dialler gave up on the older).
    fn link_up(&mut self, link: LinkId, peer: UserName, dialer: UserName, now: Instant) {
        self.set_setup(
            link,
            Setup::Up {
                peer: peer.clone(),
                dialer: dialer.clone(),
            },
        );
        let existing = self.peers.get(&peer).and_then(|p| p.direct);
        if let Some(old) = existing.filter(|old| *old != link) {
            let old_dialer = match self.links.get(&old).and_then(|l| l.setup.as_ref()) {
                Some(Setup::Up { dialer, .. }) => Some(dialer.clone()),
                _ => None,
            };
            let keep_old =
                old_dialer.is_some_and(|old_dialer| old_dialer != dialer && old_dialer < dialer);
            if keep_old {
                self.say_goodbye(link, now);
                return;
            }
            // Swap without a route change: the new channel takes over the old one's duty,
            // including whatever the old one carried unacknowledged.
            self.say_goodbye(old, now);
        }
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        p.direct = Some(link);
        if p.dial == Dial::Handshaking(link) || p.dial == Dial::InFlight {
            p.set_dial(Dial::Idle { next_at: now }, &mut self.dials_in_flight);
        }
        p.redial.reset();
        let opening = if dialer == self.config.user {
            p.opening
        } else {
            Opening::ByPeer
        };
        self.update_route(&peer, RouteReason::ChannelUp(opening));
        self.flush(&peer, now);
    }

    /// Ends a link politely (logout, duplicate channel).
    pub(super) fn say_goodbye(&mut self, link: LinkId, now: Instant) {
        self.send_link(link, &PeerFrame::Bye, now);
        self.drop_link(link, LinkError::Replaced, true, now);
    }

    /// Ends a link for misbehaving: tell the far side why, and the user.
    fn reject_link(&mut self, link: LinkId, error: LinkError, now: Instant) {
        let claimed = self.links.get(&link).and_then(|l| l.peer().cloned());
        self.events
            .push_back(Event::PeerRejected { claimed, error });
        self.drop_link(link, error, true, now);
    }

    /// Forgets a link; if it was a peer's channel, that peer falls back to the relay and
    /// whatever went over the channel unacknowledged is sent again.
    pub(super) fn drop_link(&mut self, link: LinkId, error: LinkError, close: bool, now: Instant) {
        let Some(state) = self.links.remove(&link) else {
            return;
        };
        if close {
            if let Some(code) = error.code() {
                let _ = self
                    .outbound
                    .send(Destination::Peer(link), &PeerFrame::Error { code });
            }
            self.outbound.close(Destination::Peer(link));
            self.actions.push_back(Action::CloseLink { link });
        } else {
            self.outbound.forget(Destination::Peer(link));
        }
        let Some(name) = state.peer().cloned() else {
            return;
        };
        if self
            .peers
            .get(&name)
            .is_some_and(|p| p.direct == Some(link))
        {
            self.file_path_failed(Some(&name), Via::Direct);
        }
        let Some(peer) = self.peers.get_mut(&name) else {
            return;
        };
        let lost_channel = peer.direct == Some(link);
        let failed_setup = peer.dial == Dial::Handshaking(link);
        if lost_channel {
            peer.direct = None;
            peer.outbox.path_failed(Via::Direct);
        }
        if !lost_channel && !failed_setup {
            return;
        }
        let mut next_at = now + peer.redial.next_delay(&mut self.rng);
        if let LinkError::Orderly(_) = error {
            // Not a failure: no backoff, and no dial before there is something to say.
            peer.redial.reset();
            peer.last_used = None;
            peer.closed_in_order = true;
            next_at = now;
        }
        peer.set_dial(Dial::Idle { next_at }, &mut self.dials_in_flight);
        if error == LinkError::Replaced {
            // A newer channel takes over; `link_up` reports and flushes.
            return;
        }
        let reason = match error {
            LinkError::Orderly(ClosingReason::Idle) => RouteReason::Idle,
            LinkError::Orderly(_) => RouteReason::Evicted,
            _ if lost_channel => RouteReason::ChannelLost(error),
            _ => RouteReason::DialFailed,
        };
        self.update_route(&name, reason);
        self.flush(&name, now);
    }

    fn dial_failed(&mut self, name: &UserName, now: Instant) {
        let Some(peer) = self.peers.get_mut(name) else {
            return;
        };
        let next_at = now + peer.redial.next_delay(&mut self.rng);
        peer.set_dial(Dial::Idle { next_at }, &mut self.dials_in_flight);
        self.update_route(name, RouteReason::DialFailed);
    }

    /// The dialling rule, and when: within the cap, of a pair the user with the smaller name
    /// dials (one rule, applied identically on both sides, means a pair normally sets up
    /// exactly one channel); and whoever wants a channel dials (`channels.rs`), the larger
    /// name within the cap only a moment later, so that on a small LAN the smaller name's
    /// dial normally comes first and the pair makes one channel, not two.
    fn dial_due(&self, name: &UserName, now: Instant) -> Option<(Instant, Opening)> {
        if !self.config.direct_channels || self.is_stopped() || &self.config.user == name {
            return None;
        }
        let peer = self.peers.get(name)?;
        if peer.intro.as_ref()?.endpoint.port() == 0 {
            // The peer takes no direct channels: the relay it is.
            return None;
        }
        // While the server is unreachable, keep the channels we had: the peer is probably
        // still there even though nobody can tell us.
        if !peer.online && self.is_logged_in() {
            return None;
        }
        let (None, Dial::Idle { next_at }) = (peer.direct, peer.dial) else {
            return None;
        };
        if !self.bounded() && &self.config.user < name && !peer.closed_in_order {
            Some((next_at, Opening::WithinCap))
        } else {
            // Beyond the cap; or within it on the larger side, whose peer may know of more
            // users online than fit under its cap and not dial (the server tells each
            // client of a different set of users).
            self.wants_channel(peer, now)
                .then_some((next_at, Opening::OnDemand))
        }
    }

    /// The dials due among `names`, and when the next one not yet due is.
    fn due_dials<'a>(
        &self,
        names: impl Iterator<Item = &'a UserName>,
        now: Instant,
    ) -> (Vec<(UserName, Opening)>, Option<Instant>) {
        let mut due = Vec::new();
        let mut wake: Option<Instant> = None;
        for name in names {
            match self.dial_due(name, now) {
                Some((at, opening)) if at <= now => due.push((name.clone(), opening)),
                Some((at, _)) => wake = Some(wake.map_or(at, |w| w.min(at))),
                None => {}
            }
        }
        (due, wake)
    }

    pub(super) fn start_due_dials(&mut self, now: Instant) {
        // Runs after every input: with direct channels off there is nothing to walk (the walk
        // over every known peer was a fifth of a relaying client's CPU in breeze-bench).
        self.dials_wake = None;
        if !self.config.direct_channels || self.is_stopped() {
            return;
        }
        // Beyond the cap only the peers talked to lately can be due: walk those alone.
        let (due, wake) = if self.bounded() {
            self.prune_wanted(now);
            self.due_dials(self.wanted.iter(), now)
        } else {
            self.due_dials(self.peers.keys(), now)
        };
        self.dials_wake = wake;
        for (name, opening) in due {
            if self.channels_held() >= self.config.max_direct_channels && !self.make_room(now) {
                // Every channel is busy: these wait (on the relay) for the next input.
                break;
            }
            let Some(peer) = self.peers.get_mut(&name) else {
                continue;
            };
            let Some(addr) = peer.intro.as_ref().map(|i| i.endpoint) else {
                continue;
            };
            peer.set_dial(Dial::InFlight, &mut self.dials_in_flight);
            peer.opening = opening;
            self.actions.push_back(Action::Dial {
                peer: name.clone(),
                addr,
            });
            self.update_route(&name, RouteReason::Dialing(opening));
        }
    }
}

impl From<crate::secure::RecordError> for LinkError {
    fn from(error: crate::secure::RecordError) -> Self {
        LinkError::Record(error)
    }
}
