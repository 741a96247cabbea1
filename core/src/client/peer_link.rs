//! Direct channels: the authenticated setup handshake, heartbeats, and losing a channel.

use super::output::{Action, Destination, Event, LinkError, RouteReason};
use super::peers::Dial;
use super::{Client, LinkId};
use crate::auth::{proof_matches, setup_proof, Role};
use crate::codec::{FrameDecoder, Input};
use crate::delivery::Path;
use crate::liveness::Liveness;
use crate::outbound::QueueError;
use crate::wire::{Bytes, PeerFrame, UserName, PROTOCOL_VERSION};
use std::net::SocketAddr;
use std::time::Instant;

#[derive(Debug)]
pub(super) enum Setup {
    /// We dialled `peer` and sent our hello.
    DialerSentHello { peer: UserName, nonce: [u8; 32] },
    /// Someone connected to us; nothing heard yet.
    AcceptorAwaitingHello,
    /// `peer` said hello before the server's introduction reached us; wait for it.
    AcceptorAwaitingIntro {
        peer: UserName,
        dialer_nonce: [u8; 32],
    },
    /// We sent our challenge and proof; waiting for theirs.
    AcceptorChallenged {
        peer: UserName,
        dialer_nonce: [u8; 32],
        nonce: [u8; 32],
    },
    /// Authenticated both ways.
    Up { peer: UserName, dialer: UserName },
}

#[derive(Debug)]
pub(super) struct PeerLink {
    pub setup: Setup,
    pub opened: Instant,
    decoder: FrameDecoder,
    liveness: Liveness,
}

impl PeerLink {
    fn new(setup: Setup, max_frame: usize, now: Instant) -> Self {
        PeerLink {
            setup,
            opened: now,
            decoder: FrameDecoder::new(max_frame),
            liveness: Liveness::new(now),
        }
    }

    /// The user this link is (or claims to be) with.
    fn peer(&self) -> Option<&UserName> {
        match &self.setup {
            Setup::DialerSentHello { peer, .. }
            | Setup::AcceptorAwaitingIntro { peer, .. }
            | Setup::AcceptorChallenged { peer, .. }
            | Setup::Up { peer, .. } => Some(peer),
            Setup::AcceptorAwaitingHello => None,
        }
    }

    fn is_up(&self) -> bool {
        matches!(self.setup, Setup::Up { .. })
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
        let nonce = self.rng.bytes32();
        let setup = Setup::DialerSentHello {
            peer: peer.clone(),
            nonce,
        };
        self.links
            .insert(link, PeerLink::new(setup, self.config.max_frame, now));
        self.outbound.open(Destination::Peer(link));
        if let Some(p) = self.peers.get_mut(peer) {
            p.dial = Dial::Handshaking(link);
        }
        let hello = PeerFrame::Hello {
            version: PROTOCOL_VERSION,
            user: self.config.user.clone(),
            nonce,
        };
        self.send_link(link, &hello, now);
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
        self.links.insert(
            link,
            PeerLink::new(Setup::AcceptorAwaitingHello, self.config.max_frame, now),
        );
        self.outbound.open(Destination::Peer(link));
        if self.links.len() > self.config.max_links {
            self.drop_link(link, LinkError::TooManyLinks, true, now);
        }
        self.finish(now);
    }

    pub fn handle_link_bytes(&mut self, link: LinkId, bytes: &[u8], now: Instant) {
        self.on_link_input(link, Input::Slice(bytes), now);
    }

    /// [`handle_link_bytes`](Client::handle_link_bytes) for a transport that hands over the
    /// buffer it read into: file chunks keep their data in it instead of being copied out.
    pub fn handle_link_buffer(&mut self, link: LinkId, bytes: &Bytes, now: Instant) {
        self.on_link_input(link, Input::Shared(bytes), now);
    }

    fn on_link_input(&mut self, link: LinkId, input: Input<'_>, now: Instant) {
        let Some(state) = self.links.get_mut(&link) else {
            return;
        };
        state.liveness.received(now);
        let mut decoder = std::mem::replace(&mut state.decoder, FrameDecoder::new(0));
        let decoded = input.decode_each(&mut decoder, self, |client, frame: PeerFrame| {
            client.on_link_frame(link, frame, now);
            client.links.contains_key(&link)
        });
        if let Err(err) = decoded {
            self.reject_link(link, LinkError::Decode(err.code()), now);
        }
        if let Some(state) = self.links.get_mut(&link) {
            state.decoder = decoder;
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
        self.links
            .values()
            .map(|link| {
                if link.is_up() {
                    link.liveness.next_deadline(heartbeat)
                } else {
                    link.opened + self.config.setup_timeout
                }
            })
            .min()
    }

    pub(super) fn links_timeout(&mut self, now: Instant) {
        let heartbeat = self.config.heartbeat;
        let mut failed = Vec::new();
        let mut ping = Vec::new();
        for (id, link) in &self.links {
            if !link.is_up() {
                if link.opened + self.config.setup_timeout <= now {
                    let error = match link.setup {
                        Setup::AcceptorAwaitingIntro { .. } => LinkError::UnknownPeer,
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

    /// The server introduced `peer`: a setup that was waiting for that can go on.
    pub(super) fn introduction_arrived(&mut self, peer: &UserName, now: Instant) {
        let waiting: Vec<(LinkId, [u8; 32])> = self
            .links
            .iter()
            .filter_map(|(id, link)| match &link.setup {
                Setup::AcceptorAwaitingIntro {
                    peer: p,
                    dialer_nonce,
                } if p == peer => Some((*id, *dialer_nonce)),
                _ => None,
            })
            .collect();
        for (link, dialer_nonce) in waiting {
            self.challenge(link, peer.clone(), dialer_nonce, now);
        }
    }

    fn on_link_frame(&mut self, link: LinkId, frame: PeerFrame, now: Instant) {
        let Some(state) = self.links.get_mut(&link) else {
            return;
        };
        match (&state.setup, frame) {
            (Setup::Up { peer, .. }, PeerFrame::Chat(chat)) => {
                let peer = peer.clone();
                if chat.text.len() > self.config.max_text_len {
                    self.reject_link(link, LinkError::TextTooLong, now);
                } else {
                    self.on_chat(&peer, chat, Path::Direct, now);
                }
            }
            (Setup::Up { peer, .. }, PeerFrame::Ack(ack)) => {
                let peer = peer.clone();
                self.on_ack(&peer, ack);
            }
            (Setup::Up { .. }, PeerFrame::Ping) => {}
            (Setup::Up { peer, .. }, PeerFrame::File(message)) => {
                let peer = peer.clone();
                self.on_file_message(&peer, message, Path::Direct, now);
            }
            (_, PeerFrame::Bye) => self.drop_link(link, LinkError::Closed, true, now),
            (_, PeerFrame::Error { code }) => {
                self.drop_link(link, LinkError::Remote(code), true, now)
            }
            (
                Setup::AcceptorAwaitingHello,
                PeerFrame::Hello {
                    version,
                    user,
                    nonce,
                },
            ) => {
                if version != PROTOCOL_VERSION {
                    self.reject_link(link, LinkError::UnsupportedVersion { theirs: version }, now);
                } else if user == self.config.user {
                    self.reject_link(link, LinkError::SetupFailed, now);
                } else if self.peers.get(&user).is_some_and(|p| p.intro.is_some()) {
                    self.challenge(link, user, nonce, now);
                } else {
                    state.setup = Setup::AcceptorAwaitingIntro {
                        peer: user,
                        dialer_nonce: nonce,
                    };
                }
            }
            (
                Setup::DialerSentHello { peer, nonce },
                PeerFrame::Challenge {
                    user,
                    nonce: theirs,
                    proof,
                },
            ) => {
                let (peer, dialer_nonce) = (peer.clone(), *nonce);
                let me = self.config.user.clone();
                let Some(secret) = self.pair_secret(&peer) else {
                    return self.reject_link(link, LinkError::SetupFailed, now);
                };
                let expected =
                    setup_proof(&secret, Role::Acceptor, &me, &peer, &dialer_nonce, &theirs);
                if user != peer || !proof_matches(expected, proof) {
                    return self.reject_link(link, LinkError::SetupFailed, now);
                }
                let proof = setup_proof(&secret, Role::Dialer, &me, &peer, &dialer_nonce, &theirs);
                self.send_link(link, &PeerFrame::Auth { proof }, now);
                self.link_up(link, peer, me, now);
            }
            (
                Setup::AcceptorChallenged {
                    peer,
                    dialer_nonce,
                    nonce,
                },
                PeerFrame::Auth { proof },
            ) => {
                let (peer, dialer_nonce, nonce) = (peer.clone(), *dialer_nonce, *nonce);
                let me = self.config.user.clone();
                let secret = self.pair_secret(&peer);
                let valid = secret.is_some_and(|secret| {
                    let expected =
                        setup_proof(&secret, Role::Dialer, &peer, &me, &dialer_nonce, &nonce);
                    proof_matches(expected, proof)
                });
                if valid {
                    self.link_up(link, peer.clone(), peer, now);
                } else {
                    self.reject_link(link, LinkError::SetupFailed, now);
                }
            }
            _ => self.reject_link(link, LinkError::UnexpectedFrame, now),
        }
    }

    /// The secret the server's latest introduction gave us for `peer`.
    fn pair_secret(&self, peer: &UserName) -> Option<[u8; 32]> {
        self.peers
            .get(peer)?
            .intro
            .as_ref()
            .map(|intro| intro.secret)
    }

    /// Acceptor: prove we hold the pair secret and ask the dialer to prove it too.
    fn challenge(&mut self, link: LinkId, peer: UserName, dialer_nonce: [u8; 32], now: Instant) {
        let Some(secret) = self.pair_secret(&peer) else {
            return;
        };
        let nonce = self.rng.bytes32();
        let me = self.config.user.clone();
        let proof = setup_proof(&secret, Role::Acceptor, &peer, &me, &dialer_nonce, &nonce);
        if let Some(state) = self.links.get_mut(&link) {
            state.setup = Setup::AcceptorChallenged {
                peer,
                dialer_nonce,
                nonce,
            };
        }
        self.send_link(
            link,
            &PeerFrame::Challenge {
                user: me,
                nonce,
                proof,
            },
            now,
        );
    }

    /// Both sides are authenticated. If a channel to the peer already exists, exactly one
    /// survives, chosen the same way on both sides: the one dialled by the smaller user name,
    /// or, when one side dialled both, the newer one (the dialler gave up on the older).
    fn link_up(&mut self, link: LinkId, peer: UserName, dialer: UserName, now: Instant) {
        if let Some(state) = self.links.get_mut(&link) {
            state.setup = Setup::Up {
                peer: peer.clone(),
                dialer: dialer.clone(),
            };
        }
        let existing = self.peers.get(&peer).and_then(|p| p.direct);
        if let Some(old) = existing.filter(|old| *old != link) {
            let old_dialer = match self.links.get(&old).map(|l| &l.setup) {
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
            p.dial = Dial::Idle { next_at: now };
        }
        p.redial.reset();
        self.update_route(&peer, RouteReason::ChannelUp);
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
            self.file_path_failed(Some(&name), Path::Direct);
        }
        let Some(peer) = self.peers.get_mut(&name) else {
            return;
        };
        let lost_channel = peer.direct == Some(link);
        let failed_setup = peer.dial == Dial::Handshaking(link);
        if lost_channel {
            peer.direct = None;
            peer.outbox.path_failed(Path::Direct);
        }
        if !lost_channel && !failed_setup {
            return;
        }
        let delay = peer.redial.next_delay(&mut self.rng);
        peer.dial = Dial::Idle {
            next_at: now + delay,
        };
        if error == LinkError::Replaced {
            // A newer channel takes over; `link_up` reports and flushes.
            return;
        }
        let reason = if lost_channel {
            RouteReason::ChannelLost(error)
        } else {
            RouteReason::DialFailed
        };
        self.update_route(&name, reason);
        self.flush(&name, now);
    }

    fn dial_failed(&mut self, name: &UserName, now: Instant) {
        let Some(peer) = self.peers.get_mut(name) else {
            return;
        };
        let delay = peer.redial.next_delay(&mut self.rng);
        peer.dial = Dial::Idle {
            next_at: now + delay,
        };
        self.update_route(name, RouteReason::DialFailed);
    }

    /// The dialling rule: of a pair, the user with the smaller name dials. One rule, applied
    /// identically on both sides, means a pair normally sets up exactly one channel.
    pub(super) fn dial_due(&self, name: &UserName) -> Option<Instant> {
        if !self.config.direct_channels || self.is_stopped() || &self.config.user >= name {
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
        match (peer.direct, peer.dial) {
            (None, Dial::Idle { next_at }) => Some(next_at),
            _ => None,
        }
    }

    pub(super) fn start_due_dials(&mut self, now: Instant) {
        // Runs after every input: with direct channels off there is nothing to walk (the walk
        // over every known peer was a fifth of a relaying client's CPU in breeze-bench).
        self.dials_wake = None;
        if !self.config.direct_channels || self.is_stopped() {
            return;
        }
        let mut due = Vec::new();
        for name in self.peers.keys() {
            match self.dial_due(name) {
                Some(at) if at <= now => due.push(name.clone()),
                Some(at) => self.dials_wake = Some(self.dials_wake.map_or(at, |w| w.min(at))),
                None => {}
            }
        }
        for name in due {
            let Some(peer) = self.peers.get_mut(&name) else {
                continue;
            };
            let Some(addr) = peer.intro.as_ref().map(|i| i.endpoint) else {
                continue;
            };
            peer.dial = Dial::InFlight;
            self.actions.push_back(Action::Dial {
                peer: name.clone(),
                addr,
            });
            self.update_route(&name, RouteReason::Dialing);
        }
    }
}
