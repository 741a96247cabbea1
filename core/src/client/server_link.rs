//! The client's connection to the server: login, presence, relay, reconnect with backoff.

use super::groups::GroupEvent;
use super::output::{Action, Destination, Event, RouteReason, ServerLinkError};
use super::peers::Dial;
use super::Client;
use crate::codec::FrameDecoder;
use crate::delivery::Via;
use crate::liveness::Liveness;
use crate::password::Password;
use crate::secure::{
    Handshake, HandshakeError, Inbound, LinkKind, Opener, Read, ReadOwner, RecordError,
};
use crate::wire::{ClientFrame, LoginRefusal, PeerIntro, ServerFrame, UserName, PROTOCOL_VERSION};
use std::collections::HashSet;
use std::time::Instant;

#[derive(Debug)]
pub(super) enum ServerLink {
    /// Disconnected; reconnect at `retry_at`.
    Waiting { retry_at: Instant },
    /// Disconnected, automatic reconnect off: the host calls `reconnect` when it wants to.
    Down,
    /// The host is connecting.
    Connecting,
    /// Hello and login sent, waiting for the verdict.
    LoggingIn { since: Instant, wire: Wire },
    Online {
        wire: Wire,
        /// An online list being received.
        snapshot: Option<Snapshot>,
    },
    /// Logged out, kicked or refused: no more reconnects.
    Stopped,
}

/// The users an online list has named so far.
#[derive(Debug, Default)]
pub(super) struct Snapshot {
    listed: HashSet<UserName>,
    /// A list after the login's: the server filled up and now tells only of whom this
    /// session watches, so whoever it omits is not known any more, rather than gone.
    narrowing: bool,
}

#[derive(Debug)]
pub(super) struct Wire {
    /// Our side of the XX handshake, until it is through.
    handshake: Option<Handshake>,
    inbound: Inbound,
    decoder: FrameDecoder,
    liveness: Liveness,
}

impl ServerLink {
    pub fn is_online(&self) -> bool {
        matches!(self, ServerLink::Online { .. })
    }

    /// Connected (logging in or online): frames queued now go out on this connection.
    pub fn has_wire(&self) -> bool {
        matches!(
            self,
            ServerLink::LoggingIn { .. } | ServerLink::Online { .. }
        )
    }

    fn wire_mut(&mut self) -> Option<&mut Wire> {
        match self {
            ServerLink::LoggingIn { wire, .. } | ServerLink::Online { wire, .. } => Some(wire),
            _ => None,
        }
    }
}

impl Client {
    /// The host connected to the server, as [`Action::ConnectServer`] asked: hello and login go
    /// out at once.
    pub fn handle_server_connected(&mut self, now: Instant) {
        if !matches!(self.server, ServerLink::Connecting) {
            // Logged out while the host was connecting.
            self.actions.push_back(Action::CloseServer);
            return;
        }
        self.outbound.open(Destination::Server);
        let handshake =
            Handshake::initiator(LinkKind::ClientServer, &self.identity, None, &mut self.rng);
        let first = handshake.and_then(|mut h| Ok((h.write(&[])?, h)));
        let Ok((first, handshake)) = first else {
            return self.wait_to_reconnect(ServerLinkError::Handshake(HandshakeError::Failed), now);
        };
        let _ = self.outbound.send_handshake(Destination::Server, first);
        let wire = Wire {
            handshake: Some(handshake),
            inbound: Inbound::default(),
            decoder: FrameDecoder::new(self.config.max_frame),
            liveness: Liveness::new(now),
        };
        self.server = ServerLink::LoggingIn { since: now, wire };
        // Queued now, sent only once the handshake is through and the server's key is the
        // one expected: until then the outbound buffer holds them back.
        self.send_server(
            &ClientFrame::Hello {
                version: PROTOCOL_VERSION,
            },
            now,
        );
        // 0 says "no direct channels": peers would only dial in vain.
        let p2p_port = if self.config.direct_channels {
            self.config.p2p_port
        } else {
            0
        };
        let user = self.config.user.clone();
        let login = if self.config.key_login {
            ClientFrame::KeyLogin { user, p2p_port }
        } else {
            ClientFrame::Login {
                user,
                password: self.config.password.clone(),
                p2p_port,
                register: self.config.register,
            }
        };
        self.send_server(&login, now);
        // Right behind the login, so the online list that answers it covers these users.
        self.rewatch_all();
        self.send_watches(now);
        self.finish(now);
    }

    /// The host could not connect to the server: the next attempt follows the backoff (or
    /// waits for [`reconnect`](Client::reconnect) with automatic reconnect off).
    pub fn handle_server_connect_failed(&mut self, now: Instant) {
        if matches!(self.server, ServerLink::Connecting) {
            self.wait_to_reconnect(ServerLinkError::ConnectFailed, now);
        }
        self.finish(now);
    }

    /// Bytes read from the server, in any chunking: frames may be split or batched at will.
    pub fn handle_server_bytes(&mut self, bytes: &[u8], now: Instant) {
        self.on_server_input(Read::Slice(bytes), now);
    }

    /// [`handle_server_bytes`](Client::handle_server_bytes) for a transport that hands over the
    /// buffer it read into, `len` bytes of it read: records are opened where they lie and
    /// relayed file chunks keep their data in it (see [`ReadOwner`]).
    pub fn handle_server_buffer(&mut self, buffer: impl ReadOwner, len: usize, now: Instant) {
        self.on_server_input(Read::owned(buffer, len), now);
    }

    fn on_server_input(&mut self, input: Read<'_>, now: Instant) {
        let Some(wire) = self.server.wire_mut() else {
            return;
        };
        wire.liveness.received(now);
        let mut inbound = std::mem::take(&mut wire.inbound);
        let opened = inbound.read_plain(input, |message| self.server_handshake_step(message, now));
        let Some(wire) = self.server.wire_mut() else {
            return self.finish(now);
        };
        wire.inbound = inbound;
        let plain = match opened {
            Ok(plain) => plain,
            Err(error) => {
                self.server_lost(error, true, now);
                return self.finish(now);
            }
        };
        if !plain.is_empty() {
            let mut decoder = std::mem::replace(&mut wire.decoder, FrameDecoder::new(0));
            let decoded = plain.decode_each(&mut decoder, self, |client, frame: ServerFrame| {
                client.on_server_frame(frame, now);
                client.server.wire_mut().is_some()
            });
            if let Err(err) = decoded {
                self.server_lost(ServerLinkError::Decode(err.code()), true, now);
            }
            if let Some(wire) = self.server.wire_mut() {
                wire.decoder = decoder;
            }
        }
        self.finish(now);
    }

    /// The server's handshake message (XX's second): it carries the server's static key,
    /// checked against the pin before we answer with ours. A mismatch stops the client with
    /// nothing sent: the login frame queued behind the handshake is dropped with the link.
    fn server_handshake_step(
        &mut self,
        message: &[u8],
        now: Instant,
    ) -> Result<Option<Opener>, ServerLinkError> {
        let failed = ServerLinkError::Handshake(HandshakeError::Failed);
        let handshake = self.server.wire_mut().and_then(|w| w.handshake.as_mut());
        let handshake = handshake.ok_or(failed)?;
        handshake
            .read(message)
            .map_err(ServerLinkError::Handshake)?;
        let presented = handshake.remote().ok_or(failed)?;
        let expected = match (self.config.server_key, self.config.server_fingerprint) {
            (Some(pinned), _) => Some(pinned.fingerprint()),
            (None, fingerprint) => fingerprint,
        };
        match expected {
            Some(expected) if expected != presented.fingerprint() => {
                self.stop_server(false, now);
                self.events.push_back(Event::ServerKeyChanged {
                    expected,
                    presented,
                });
                // The link is gone; nothing more is read from it.
                return Ok(None);
            }
            Some(_) if self.config.server_key.is_some() => {}
            _ => {
                self.config.server_key = Some(presented);
                self.events
                    .push_back(Event::ServerKeyLearned { key: presented });
            }
        }
        let handshake = self.server.wire_mut().and_then(|w| w.handshake.take());
        let mut handshake = handshake.ok_or(failed)?;
        let last = handshake.write(&[]).map_err(ServerLinkError::Handshake)?;
        let channel = handshake.finish().map_err(ServerLinkError::Handshake)?;
        let _ = self.outbound.send_handshake(Destination::Server, last);
        self.outbound
            .start_sealing(Destination::Server, channel.sealer);
        Ok(Some(channel.opener))
    }

    /// Connects to the server again now, instead of at the next automatic retry (or at all,
    /// with [`ClientConfig::auto_reconnect`](super::ClientConfig::auto_reconnect) off): asks
    /// for [`Action::ConnectServer`] if the server is not connected or being connected.
    /// Does nothing once the client is stopped (logged out, kicked, refused).
    pub fn reconnect(&mut self, now: Instant) {
        if matches!(self.server, ServerLink::Waiting { .. } | ServerLink::Down) {
            self.server = ServerLink::Connecting;
            self.actions.push_back(Action::ConnectServer);
        }
        self.finish(now);
    }

    /// Logs in with `password` (creating the account first with `register`) instead of the
    /// key: what a host does after the server refused a key login as `KeyNotEnrolled` (a
    /// server whose data was reset), once it has the password from its user. A successful
    /// login enrols the key again. Asks for [`Action::ConnectServer`] when the client is
    /// stopped or waiting; a login under way is not interrupted.
    pub fn log_in_with_password(&mut self, password: String, register: bool, now: Instant) {
        self.config.password = Password::new(password);
        self.config.register = register;
        self.config.key_login = false;
        if matches!(
            self.server,
            ServerLink::Stopped | ServerLink::Waiting { .. } | ServerLink::Down
        ) {
            self.server = ServerLink::Connecting;
            self.actions.push_back(Action::ConnectServer);
        }
        self.finish(now);
    }

    /// The server socket closed (or failed) on its own: everything that went to the relay
    /// unacknowledged goes again once a route is up.
    pub fn handle_server_closed(&mut self, now: Instant) {
        if self.server.wire_mut().is_some() {
            self.server_lost(ServerLinkError::Closed, false, now);
        } else if matches!(self.server, ServerLink::Connecting) {
            self.wait_to_reconnect(ServerLinkError::ConnectFailed, now);
        }
        self.finish(now);
    }

    pub(super) fn server_deadline(&self) -> Option<Instant> {
        let heartbeat = &self.config.heartbeat;
        match &self.server {
            ServerLink::Waiting { retry_at } => Some(*retry_at),
            ServerLink::LoggingIn { since, wire } => {
                Some((*since + self.config.login_timeout).min(wire.liveness.dead_at(heartbeat)))
            }
            ServerLink::Online { wire, .. } => Some(wire.liveness.next_deadline(heartbeat)),
            ServerLink::Connecting | ServerLink::Down | ServerLink::Stopped => None,
        }
    }

    pub(super) fn server_timeout(&mut self, now: Instant) {
        let heartbeat = self.config.heartbeat;
        match &self.server {
            ServerLink::Waiting { retry_at } if *retry_at <= now => {
                self.server = ServerLink::Connecting;
                self.actions.push_back(Action::ConnectServer);
            }
            ServerLink::LoggingIn { since, wire } => {
                if *since + self.config.login_timeout <= now {
                    self.server_lost(ServerLinkError::LoginTimeout, true, now);
                } else if wire.liveness.dead_at(&heartbeat) <= now {
                    self.server_lost(ServerLinkError::Idle, true, now);
                }
            }
            ServerLink::Online { wire, .. } => {
                if wire.liveness.dead_at(&heartbeat) <= now {
                    self.server_lost(ServerLinkError::Idle, true, now);
                } else if wire.liveness.ping_at(&heartbeat) <= now {
                    self.send_server(&ClientFrame::Ping, now);
                }
            }
            _ => {}
        }
    }

    /// Queues a frame for the server; a server that cannot take it is dropped once the input
    /// is handled.
    pub(super) fn send_server(&mut self, frame: &ClientFrame, now: Instant) -> bool {
        match self.outbound.send(Destination::Server, frame) {
            Ok(()) => {
                if let Some(wire) = self.server.wire_mut() {
                    wire.liveness.sent(now);
                }
                true
            }
            Err(crate::outbound::QueueError::Full) => {
                self.doomed.push(Destination::Server);
                false
            }
            Err(_) => false,
        }
    }

    /// Ends the server connection for good (logout, kick, fatal refusal).
    pub(super) fn stop_server(&mut self, say_logout: bool, now: Instant) {
        if say_logout && self.server.is_online() {
            self.send_server(&ClientFrame::Logout, now);
        }
        if self.server.wire_mut().is_some() {
            self.outbound.close(Destination::Server);
            self.actions.push_back(Action::CloseServer);
        }
        self.server = ServerLink::Stopped;
    }

    /// The server connection failed: close it (unless already gone), fall back, and retry.
    pub(super) fn server_lost(&mut self, error: ServerLinkError, close: bool, now: Instant) {
        if self.server.wire_mut().is_none() {
            return;
        }
        if close {
            self.outbound.close(Destination::Server);
            self.actions.push_back(Action::CloseServer);
        } else {
            self.outbound.forget(Destination::Server);
        }
        self.wait_to_reconnect(error, now);
        self.file_path_failed(None, Via::Relay);
        // What went to the relay may be lost with the server: send it again on whatever route
        // is up (a direct channel, or the relay once logged in again).
        let names: Vec<UserName> = self.peers.keys().cloned().collect();
        for name in names {
            if let Some(peer) = self.peers.get_mut(&name) {
                peer.outbox.path_failed(Via::Relay);
            }
            self.flush(&name, now);
        }
    }

    fn wait_to_reconnect(&mut self, error: ServerLinkError, now: Instant) {
        if !self.config.auto_reconnect {
            self.server = ServerLink::Down;
            let retry_in = None;
            self.events.push_back(Event::ServerLost { error, retry_in });
            return;
        }
        let retry_in = self.reconnect.next_delay(&mut self.rng);
        self.server = ServerLink::Waiting {
            retry_at: now + retry_in,
        };
        let retry_in = Some(retry_in);
        self.events.push_back(Event::ServerLost { error, retry_in });
    }

    fn on_server_frame(&mut self, frame: ServerFrame, now: Instant) {
        let logging_in = matches!(self.server, ServerLink::LoggingIn { .. });
        match frame {
            ServerFrame::Ping => {}
            ServerFrame::Hello { version } => {
                if version != PROTOCOL_VERSION {
                    self.server_lost(
                        ServerLinkError::UnsupportedVersion { theirs: version },
                        true,
                        now,
                    );
                }
            }
            ServerFrame::LoginOk { .. } if logging_in => self.logged_in(now),
            ServerFrame::LoginRefused { reason } if logging_in => match reason {
                LoginRefusal::TooManyAttempts | LoginRefusal::ServerBusy => {
                    self.server_lost(ServerLinkError::Refused(reason), true, now)
                }
                _ => {
                    self.stop_server(false, now);
                    self.events.push_back(Event::LoginFailed { reason });
                }
            },
            ServerFrame::Kicked { reason } => {
                self.stop_server(false, now);
                let links: Vec<_> = self.links.keys().copied().collect();
                for link in links {
                    self.say_goodbye(link, now);
                }
                self.events.push_back(Event::Kicked { reason });
            }
            ServerFrame::ShuttingDown => self.server_lost(ServerLinkError::ShuttingDown, true, now),
            ServerFrame::Error { code } => {
                self.server_lost(ServerLinkError::Remote(code), true, now)
            }
            _ if !self.server.is_online() => {
                self.server_lost(ServerLinkError::UnexpectedFrame, true, now)
            }
            ServerFrame::Presence {
                peers,
                last,
                everyone,
            } => self.on_presence_page(peers, last, everyone, now),
            ServerFrame::PresenceChanged { online, offline } => {
                for intro in online {
                    self.peer_online(intro, now);
                }
                for user in offline {
                    self.peer_offline(&user, now);
                }
            }
            ServerFrame::Relayed { from, key, chat } => self.on_relayed_chat(&from, key, chat, now),
            ServerFrame::RelayedAck { from, ack } => self.on_relayed_ack(&from, ack, now),
            ServerFrame::UserKey { user, key } => self.on_user_key(user, key, now),
            ServerFrame::Group { info, by } => self.on_group_info(info, by, now),
            ServerFrame::GroupsListed => self.on_groups_listed(),
            ServerFrame::GroupGone { group, by, .. } => self.on_group_gone(group, by),
            ServerFrame::GroupMessage(message) => self.on_group_message(message, now),
            ServerFrame::GroupAccepted {
                group,
                epoch,
                through,
            } => self.on_group_accepted(group, epoch, through),
            ServerFrame::GroupRekey {
                group,
                epoch,
                from_seq,
                ..
            } => self.on_group_rekey(group, epoch, from_seq, now),
            ServerFrame::GroupSendRefused {
                group,
                epoch,
                from_seq,
                error,
            } => self.on_group_send_refused(group, epoch, from_seq, error, now),
            ServerFrame::GroupDelivered {
                group,
                id,
                delivered,
                members,
            } => self.events.push_back(Event::Group(GroupEvent::Delivered {
                group,
                id,
                delivered,
                members,
            })),
            ServerFrame::GroupRefused { request_id, error } => {
                self.events.push_back(Event::Group(GroupEvent::Refused {
                    request: request_id,
                    error,
                }))
            }
            ServerFrame::Stored { to, epoch, seq } => {
                if let Some(id) = self
                    .peers
                    .get_mut(&to)
                    .and_then(|p| p.outbox.mark_held(epoch, seq))
                {
                    self.events.push_back(Event::Stored { to, id });
                }
            }
            ServerFrame::RelayedFile { from, key, message } => {
                if from != self.config.user {
                    self.vouched_key(&from, key, now);
                    self.note_interest(&from);
                }
                match self.pair_key(&from, now).map(|pair| message.open(&pair)) {
                    Some(Ok(message)) => self.on_file_message(&from, message, Via::Relay, now),
                    _ => self.events.push_back(Event::ForgedRelay { from }),
                }
            }
            ServerFrame::FileUndeliverable { to, id } => self.file_undeliverable(&to, id),
            ServerFrame::FileThrottled {
                to,
                id,
                offset,
                retry_after_ms,
            } => {
                let wait = std::time::Duration::from_millis(retry_after_ms.into());
                self.file_throttled(&to, id, offset, wait, now)
            }
            ServerFrame::Undeliverable {
                to,
                epoch,
                seq,
                reason,
            } => {
                if let Some(id) = self
                    .peers
                    .get_mut(&to)
                    .and_then(|p| p.outbox.give_up(epoch, seq))
                {
                    self.events
                        .push_back(Event::Undeliverable { to, id, reason });
                }
            }
            _ => self.server_lost(ServerLinkError::UnexpectedFrame, true, now),
        }
    }

    fn logged_in(&mut self, now: Instant) {
        let ServerLink::LoggingIn { wire, .. } =
            std::mem::replace(&mut self.server, ServerLink::Stopped)
        else {
            return;
        };
        self.server = ServerLink::Online {
            wire,
            snapshot: Some(Snapshot::default()),
        };
        self.reconnect.reset();
        // Key requests sent on a lost connection were lost with it: ask again when needed.
        for peer in self.peers.values_mut() {
            peer.key_requested = false;
        }
        // The account exists now; a reconnect must not try to create it again.
        self.config.register = false;
        if !self.config.key_login {
            // A password login binds the key: reconnects need no password from now on,
            // and the client keeps none in memory.
            self.config.key_login = true;
            self.config.password = Password::default();
            self.events.push_back(Event::Enrolled {
                user: self.config.user.clone(),
            });
        }
        self.events.push_back(Event::LoggedIn {
            user: self.config.user.clone(),
        });
        let names: Vec<UserName> = self.peers.keys().cloned().collect();
        for name in names {
            self.flush(&name, now);
        }
        self.start_group_listing();
        self.resend_groups(now);
    }

    fn on_presence_page(
        &mut self,
        intros: Vec<PeerIntro>,
        last: bool,
        everyone: bool,
        now: Instant,
    ) {
        let ServerLink::Online { snapshot, .. } = &mut self.server else {
            return;
        };
        // A list after the login's is a new view, taken the same way.
        let snapshot = snapshot.get_or_insert_with(|| Snapshot {
            listed: HashSet::new(),
            narrowing: true,
        });
        snapshot
            .listed
            .extend(intros.iter().map(|intro| intro.user.clone()));
        for intro in intros {
            self.peer_online(intro, now);
        }
        if !last {
            return;
        }
        let Snapshot { listed, narrowing } = match &mut self.server {
            ServerLink::Online { snapshot, .. } => snapshot.take().unwrap_or_default(),
            _ => return,
        };
        let online = listed.len();
        // Whoever we believed online but the new list omits left while we were away (or, in
        // a narrowing list, is no longer told of).
        let gone: Vec<UserName> = self
            .peers
            .iter()
            .filter(|(name, peer)| peer.online && !listed.contains(*name))
            .map(|(name, _)| name.clone())
            .collect();
        for name in gone {
            if narrowing {
                self.peer_unknown(&name);
            } else {
                self.peer_offline(&name, now);
            }
        }
        self.events
            .push_back(Event::PresenceComplete { online, everyone });
    }

    fn peer_online(&mut self, intro: PeerIntro, now: Instant) {
        if intro.user == self.config.user {
            return;
        }
        let name = intro.user.clone();
        self.vouched_key(&name, intro.key, now);
        let peer = self.peer_mut(&name, now);
        let was_online = peer.online;
        peer.online = true;
        peer.intro = Some(intro);
        if let Dial::Idle { .. } = peer.dial {
            // A fresh introduction is worth an immediate attempt.
            peer.dial = Dial::Idle { next_at: now };
            peer.redial.reset();
        }
        if !was_online {
            // A new session of the peer: whatever closed the last channel is past.
            peer.closed_in_order = false;
            self.online_peers += 1;
            self.events.push_back(Event::Presence {
                user: name.clone(),
                online: true,
            });
        }
        self.introduction_arrived(&name, now);
        // Group messages may have waited for this member's key.
        self.flush_groups(now);
    }

    /// The server stopped telling us about `name` (see [`Event::PresenceUnknown`]): not
    /// online as far as we know, but not gone either, so routes are left as they are.
    fn peer_unknown(&mut self, name: &UserName) {
        if self.mark_not_online(name) {
            self.events
                .push_back(Event::PresenceUnknown { user: name.clone() });
        }
    }

    fn peer_offline(&mut self, name: &UserName, now: Instant) {
        if !self.mark_not_online(name) {
            return;
        }
        self.events.push_back(Event::Presence {
            user: name.clone(),
            online: false,
        });
        // A live direct channel stays: the peer may only have lost the server. Heartbeats
        // decide whether the channel itself is still good.
        self.update_route(name, RouteReason::PeerOffline);
        let _ = now;
    }

    /// `name` is no longer counted online; whether it was.
    fn mark_not_online(&mut self, name: &UserName) -> bool {
        match self.peers.get_mut(name) {
            Some(peer) if peer.online => {
                peer.online = false;
                self.online_peers = self.online_peers.saturating_sub(1);
                true
            }
            _ => false,
        }
    }
}

impl From<RecordError> for ServerLinkError {
    fn from(error: RecordError) -> Self {
        ServerLinkError::Record(error)
    }
}
