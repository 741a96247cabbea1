//! The server state machine: accounts are checked by the host, everything else happens here.
//!
//! # How to drive me
//!
//! The driver owns the sockets and a clock, and picks a [`ConnId`] for every accepted
//! connection. It feeds the core with the `handle_*` inputs, each taking `now`:
//! [`handle_connected`](Server::handle_connected), [`handle_bytes`](Server::handle_bytes),
//! [`handle_written`](Server::handle_written), [`handle_disconnected`](Server::handle_disconnected),
//! [`handle_login_checked`](Server::handle_login_checked),
//! [`handle_offline_loaded`](Server::handle_offline_loaded) and
//! [`handle_timeout`](Server::handle_timeout).
//!
//! After any input, drain the outputs in this order, then re-arm the timer:
//! 1. [`poll_transmit`](Server::poll_transmit): bytes to write, per connection, in order;
//! 2. [`poll_action`](Server::poll_action): closes (after the bytes polled before them are
//!    written), credential checks and offline-store work; their answers are new inputs, so
//!    after answering one inline, go back to step 1 before taking the next action;
//! 3. [`poll_event`](Server::poll_event): things to log;
//! 4. [`poll_timeout`](Server::poll_timeout): when to call `handle_timeout` next.
//!
//! Getters ([`stats`](Server::stats), [`online`](Server::online)) never change state. The core
//! never reads a clock, touches a socket or a file, or draws randomness other than from the seed
//! given to [`Server::new`]. A protocol error closes only the connection that caused it.

mod config;
mod connection;
mod file_relay;
mod limits;
mod output;
mod presence;

pub use config::ServerConfig;
pub use file_relay::FileRelayLimit;
pub use output::{Action, ConnError, Event, LogoutReason, Stats, StoreOutcome};

use crate::codec::{FrameDecoder, Input};
use crate::liveness::Liveness;
use crate::outbound::{Outbound, QueueError, Transmit};
use crate::rng::SeededRng;
use crate::seeded_hash::{SeededMap, SeededState};
use crate::wire::{
    Bytes, Chat, ClientFrame, FileMessage, KickReason, LoginRefusal, PeerIntro, ServerFrame,
    UserName, PROTOCOL_VERSION,
};
use connection::{Connection, Phase, Session};
use file_relay::{Budget, FileBudget};
use limits::AddressLimits;
use presence::Presence;
use std::collections::{HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

/// A connection id chosen by the driver; unique among the connections it has open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

pub struct Server {
    config: ServerConfig,
    rng: SeededRng,
    conns: SeededMap<ConnId, Connection>,
    presence: Presence,
    limits: AddressLimits,
    /// Credential checks the host has not answered yet, with the address that asked.
    pending_checks: SeededMap<ConnId, IpAddr>,
    outbound: Outbound<ConnId>,
    actions: VecDeque<Action>,
    events: VecDeque<Event>,
    /// Connections to close once the current input is handled (a failed send mid-broadcast
    /// cannot close a connection without disturbing the loop that sent it).
    doomed: Vec<(ConnId, ConnError)>,
    next_sweep: Option<Instant>,
    shutting_down: bool,
    stats: Stats,
}

impl Server {
    pub fn new(config: ServerConfig, seed: [u8; 32]) -> Self {
        let mut rng = SeededRng::from_seed(seed);
        let hash = SeededState::new(rng.next_u64());
        Server {
            outbound: Outbound::new(config.max_frame, config.max_pending_output),
            config,
            rng,
            conns: SeededMap::with_hasher(hash),
            presence: Presence::new(hash),
            limits: AddressLimits::new(hash),
            pending_checks: SeededMap::with_hasher(hash),
            actions: VecDeque::new(),
            events: VecDeque::new(),
            doomed: Vec::new(),
            next_sweep: None,
            shutting_down: false,
            stats: Stats::default(),
        }
    }

    // ---- getters ----------------------------------------------------------------------------

    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    pub fn stats(&self) -> Stats {
        Stats {
            connections: self.conns.len(),
            online: self.presence.len(),
            ..self.stats
        }
    }

    /// The users online now, with the endpoint peers dial.
    pub fn online(&self) -> impl Iterator<Item = (&UserName, SocketAddr)> {
        self.presence.iter().filter_map(|(user, conn)| {
            let session = self.conns.get(&conn)?.session()?;
            Some((user, session.endpoint))
        })
    }

    /// Bytes queued or unwritten for one connection.
    pub fn pending_output(&self, conn: ConnId) -> usize {
        self.outbound.pending(conn)
    }

    /// Checks the internal invariants; for tests and fuzzers.
    pub fn check_invariants(&self) -> Result<(), String> {
        for (user, conn) in self.presence.iter() {
            match self.conns.get(&conn).and_then(Connection::session) {
                Some(session) if &session.user == user => {}
                _ => {
                    return Err(format!(
                        "{user} is online on {conn:?}, which has no such session"
                    ))
                }
            }
        }
        for (conn, connection) in &self.conns {
            if let Some(session) = connection.session() {
                if self.presence.conn_of(&session.user) != Some(*conn) {
                    return Err(format!(
                        "{conn:?} has a session for {} not in presence",
                        session.user
                    ));
                }
            }
            if self.outbound.pending(*conn)
                > self.config.max_pending_output + self.config.max_frame + 8
            {
                return Err(format!("{conn:?} exceeds its output bound"));
            }
        }
        if self.limits.total_connections() != self.conns.len() {
            return Err("per-address connection counts out of step".into());
        }
        if self.outbound.len() != self.conns.len() {
            return Err("output buffers out of step with connections".into());
        }
        Ok(())
    }

    // ---- inputs -----------------------------------------------------------------------------

    pub fn handle_connected(&mut self, conn: ConnId, remote: SocketAddr, now: Instant) {
        if self.conns.contains_key(&conn) {
            return;
        }
        self.outbound.open(conn);
        self.conns.insert(
            conn,
            Connection {
                remote,
                opened: now,
                phase: Phase::Hello,
                decoder: FrameDecoder::new(self.config.max_frame),
                liveness: Liveness::new(now),
            },
        );
        self.next_sweep
            .get_or_insert(now + self.config.sweep_interval);
        let from_this_ip = self.limits.connected(remote.ip());
        if self.shutting_down {
            self.send(conn, &ServerFrame::ShuttingDown, now);
            self.close(conn, LogoutReason::Requested, now);
        } else if self.conns.len() > self.config.max_connections
            || from_this_ip > self.config.max_connections_per_ip
        {
            self.fail(conn, ConnError::TooManyConnections, now);
        }
    }

    pub fn handle_bytes(&mut self, conn: ConnId, bytes: &[u8], now: Instant) {
        self.on_input(conn, Input::Slice(bytes), now);
    }

    /// [`handle_bytes`](Server::handle_bytes) for a driver that hands over the buffer it read
    /// into: file chunks to relay keep their data in it until they are queued for the
    /// recipient, instead of being copied out first.
    pub fn handle_buffer(&mut self, conn: ConnId, bytes: &Bytes, now: Instant) {
        self.on_input(conn, Input::Shared(bytes), now);
    }

    fn on_input(&mut self, conn: ConnId, input: Input<'_>, now: Instant) {
        let Some(connection) = self.conns.get_mut(&conn) else {
            return;
        };
        connection.liveness.received(now);
        let mut decoder = std::mem::replace(&mut connection.decoder, FrameDecoder::new(0));
        let decoded = input.decode_each(&mut decoder, self, |server, frame: ClientFrame| {
            server.on_frame(conn, frame, now);
            server.conns.contains_key(&conn)
        });
        if let Err(err) = decoded {
            self.fail(conn, ConnError::Decode(err.code()), now);
        }
        if let Some(connection) = self.conns.get_mut(&conn) {
            connection.decoder = decoder;
        }
        self.reap(now);
    }

    /// The driver wrote `bytes` of what it polled for `conn`; frees that much of its bound.
    pub fn handle_written(&mut self, conn: ConnId, bytes: usize) {
        self.outbound.written(conn, bytes);
    }

    /// The socket closed (or failed) on its own.
    pub fn handle_disconnected(&mut self, conn: ConnId, now: Instant) {
        if let Some(connection) = self.conns.remove(&conn) {
            self.outbound.forget(conn);
            self.limits.disconnected(connection.remote.ip());
            if let Phase::Online(session) = connection.phase {
                self.go_offline(conn, session.user, LogoutReason::Disconnected, now);
            }
            if self.conns.is_empty() {
                self.next_sweep = None;
            }
        }
        self.reap(now);
    }

    /// The host's answer to [`Action::CheckLogin`].
    pub fn handle_login_checked(
        &mut self,
        conn: ConnId,
        verdict: Result<(), LoginRefusal>,
        now: Instant,
    ) {
        // Count the verdict against the address even if the connection is gone by now: the
        // host did the hashing, and hanging up must not be a way around the limit.
        let Some(ip) = self.pending_checks.remove(&conn) else {
            return;
        };
        let wrong_password = matches!(
            verdict,
            Err(LoginRefusal::BadCredentials | LoginRefusal::NameTaken)
        );
        self.limits.check_finished(ip, wrong_password, now);
        let Some(connection) = self.conns.get_mut(&conn) else {
            return;
        };
        let Phase::Checking { user, p2p_port } = &connection.phase else {
            return;
        };
        let (user, p2p_port) = (user.clone(), *p2p_port);
        match verdict {
            Err(reason) => {
                self.events
                    .push_back(Event::LoginRefused { conn, user, reason });
                self.send(conn, &ServerFrame::LoginRefused { reason }, now);
                self.close(conn, LogoutReason::Requested, now);
            }
            Ok(()) => self.log_in(conn, user, p2p_port, now),
        }
        self.reap(now);
    }

    /// The host's answer to [`Action::LoadOffline`]: `(sender, message)` in stored order.
    pub fn handle_offline_loaded(
        &mut self,
        user: &UserName,
        messages: Vec<(UserName, Chat)>,
        now: Instant,
    ) {
        let Some(conn) = self.presence.conn_of(user) else {
            return;
        };
        for (from, chat) in messages {
            if let Some(Phase::Online(session)) = self.conns.get_mut(&conn).map(|c| &mut c.phase) {
                session.stored_delivered.insert((from.clone(), chat.epoch));
            }
            self.send(conn, &ServerFrame::Relayed { from, chat }, now);
        }
        self.reap(now);
    }

    /// The host's answer to [`Action::StoreOffline`]. Only now is the sender told "stored":
    /// a promise to deliver later must not go out before the message is safe on disk.
    pub fn handle_offline_stored(
        &mut self,
        from: &UserName,
        to: UserName,
        chat: &Chat,
        outcome: StoreOutcome,
        now: Instant,
    ) {
        let (epoch, seq) = (chat.epoch, chat.seq);
        let frame = match outcome {
            StoreOutcome::Stored => ServerFrame::Stored { to, epoch, seq },
            StoreOutcome::Undeliverable(reason) => ServerFrame::Undeliverable {
                to,
                epoch,
                seq,
                reason,
            },
            // Nothing said: the sender's acknowledgement timeout offers it again.
            StoreOutcome::Failed => return,
        };
        if let Some(conn) = self.presence.conn_of(from) {
            self.send(conn, &frame, now);
        }
        self.reap(now);
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(due) = self.next_sweep else { return };
        if now < due {
            return;
        }
        self.limits.sweep(now);
        self.next_sweep = if self.conns.is_empty() {
            None
        } else {
            Some(now + self.config.sweep_interval)
        };
        let heartbeat = self.config.heartbeat;
        let mut failed = Vec::new();
        let mut ping = Vec::new();
        for (conn, connection) in &self.conns {
            let online = matches!(connection.phase, Phase::Online(_));
            if !online && now >= connection.opened + self.config.login_timeout {
                failed.push((*conn, ConnError::LoginTimeout));
            } else if now >= connection.liveness.dead_at(&heartbeat) {
                failed.push((*conn, ConnError::Idle));
            } else if online && now >= connection.liveness.ping_at(&heartbeat) {
                ping.push(*conn);
            }
        }
        for conn in ping {
            self.send(conn, &ServerFrame::Ping, now);
        }
        for (conn, error) in failed {
            self.fail(conn, error, now);
        }
        self.reap(now);
    }

    // ---- mutators ---------------------------------------------------------------------------

    /// Says goodbye to every client and closes every connection; new ones are turned away.
    pub fn shutdown(&mut self, now: Instant) {
        self.shutting_down = true;
        let conns: Vec<ConnId> = self.conns.keys().copied().collect();
        for conn in conns {
            self.send(conn, &ServerFrame::ShuttingDown, now);
            self.close(conn, LogoutReason::Requested, now);
        }
    }

    /// Ends `user`'s session, telling the client why (e.g. its account was deleted).
    pub fn kick(&mut self, user: &UserName, reason: KickReason, now: Instant) {
        if let Some(conn) = self.presence.conn_of(user) {
            self.send(conn, &ServerFrame::Kicked { reason }, now);
            self.close(conn, LogoutReason::Kicked(reason), now);
        }
        self.reap(now);
    }

    // ---- outputs ----------------------------------------------------------------------------

    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit<ConnId>> {
        self.outbound.poll_transmit()
    }

    #[must_use]
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When to call [`handle_timeout`](Server::handle_timeout); `None` while idle.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_sweep
    }

    // ---- internals --------------------------------------------------------------------------

    fn on_frame(&mut self, conn: ConnId, frame: ClientFrame, now: Instant) {
        let Some(connection) = self.conns.get_mut(&conn) else {
            return;
        };
        match (&mut connection.phase, frame) {
            (_, ClientFrame::Ping) => {}
            (Phase::Hello, ClientFrame::Hello { version }) => {
                self.send(
                    conn,
                    &ServerFrame::Hello {
                        version: PROTOCOL_VERSION,
                    },
                    now,
                );
                if version != PROTOCOL_VERSION {
                    self.fail(conn, ConnError::UnsupportedVersion { theirs: version }, now);
                } else if let Some(connection) = self.conns.get_mut(&conn) {
                    connection.phase = Phase::Login;
                }
            }
            (
                Phase::Login,
                ClientFrame::Login {
                    user,
                    password,
                    p2p_port,
                    register,
                },
            ) => {
                if register && !self.config.open_registration {
                    let reason = LoginRefusal::RegistrationClosed;
                    self.events
                        .push_back(Event::LoginRefused { conn, user, reason });
                    self.send(conn, &ServerFrame::LoginRefused { reason }, now);
                    self.close(conn, LogoutReason::Requested, now);
                    return;
                }
                let ip = connection.remote.ip();
                if self
                    .limits
                    .too_many_failures(ip, self.config.max_login_failures_per_ip, now)
                {
                    let reason = LoginRefusal::TooManyAttempts;
                    self.events
                        .push_back(Event::LoginRefused { conn, user, reason });
                    self.send(conn, &ServerFrame::LoginRefused { reason }, now);
                    self.close(conn, LogoutReason::Requested, now);
                    return;
                }
                connection.phase = Phase::Checking {
                    user: user.clone(),
                    p2p_port,
                };
                self.limits.check_started(ip);
                self.pending_checks.insert(conn, ip);
                self.actions.push_back(Action::CheckLogin {
                    conn,
                    user,
                    password,
                    register,
                });
            }
            (Phase::Online(session), ClientFrame::Relay { to, chat }) => {
                if chat.text.len() > self.config.max_text_len {
                    self.fail(conn, ConnError::TextTooLong, now);
                    return;
                }
                if to == session.user {
                    return;
                }
                let from = session.user.clone();
                self.relay(from, to, chat, now);
            }
            (Phase::Online(session), ClientFrame::RelayAck { to, ack }) => {
                let me = session.user.clone();
                if session.stored_delivered.contains(&(to.clone(), ack.epoch)) {
                    self.actions.push_back(Action::DeleteOffline {
                        to: me.clone(),
                        from: to.clone(),
                        epoch: ack.epoch,
                        through: ack.through,
                    });
                }
                if let Some(peer) = self.presence.conn_of(&to) {
                    self.send(peer, &ServerFrame::RelayedAck { from: me, ack }, now);
                }
            }
            (Phase::Online(session), ClientFrame::RelayFile { to, message }) => {
                if to == session.user {
                    return;
                }
                self.relay_file(conn, to, message, now);
            }
            (Phase::Online(_), ClientFrame::Logout) => {
                self.close(conn, LogoutReason::Requested, now)
            }
            (Phase::Checking { .. } | Phase::Login | Phase::Hello, ClientFrame::Logout) => {
                self.close(conn, LogoutReason::Requested, now)
            }
            (Phase::Hello, _) | (Phase::Login, _) => {
                self.fail(conn, ConnError::UnexpectedFrame, now)
            }
            (_, _) => self.fail(conn, ConnError::UnexpectedFrame, now),
        }
    }

    fn relay(&mut self, from: UserName, to: UserName, chat: Chat, now: Instant) {
        self.stats.relayed_text_bytes += chat.text.len() as u64;
        match self.presence.conn_of(&to) {
            Some(peer) => {
                self.stats.relayed += 1;
                self.send(peer, &ServerFrame::Relayed { from, chat }, now);
            }
            None => {
                self.stats.stored += 1;
                self.actions
                    .push_back(Action::StoreOffline { to, from, chat });
            }
        }
    }

    /// Forwards a file message as it is. Chunks spend the sender's relay budget; over budget
    /// they are dropped and the sender told once where to resume. Nothing is stored: a file
    /// for someone offline is refused.
    fn relay_file(&mut self, conn: ConnId, to: UserName, message: FileMessage, now: Instant) {
        let limit = self.config.file_relay;
        let Some(peer) = self.presence.conn_of(&to) else {
            if let FileMessage::Offer { id, .. } = message {
                self.send(conn, &ServerFrame::FileUndeliverable { to, id }, now);
            }
            return;
        };
        let congested = self.outbound.pending(peer) > limit.recipient_high_water;
        let Some(Phase::Online(session)) = self.conns.get_mut(&conn).map(|c| &mut c.phase) else {
            return;
        };
        if let FileMessage::Chunk { id, offset, data } = &message {
            let budget = if congested {
                session.file_budget.congested(*id, *offset)
            } else {
                session
                    .file_budget
                    .spend(limit, *id, *offset, data.len(), now)
            };
            match budget {
                Budget::Forward => self.stats.relayed_file_bytes += data.len() as u64,
                Budget::Drop => {
                    self.stats.throttled_file_bytes += data.len() as u64;
                    return;
                }
                Budget::Throttle { retry_after } => {
                    self.stats.throttled_file_bytes += data.len() as u64;
                    // Rounded up: a sender resuming a fraction of a millisecond early would find
                    // the budget still short.
                    let retry_after_ms =
                        retry_after.as_micros().div_ceil(1000).min(u32::MAX as u128) as u32;
                    let (id, offset) = (*id, *offset);
                    let frame = ServerFrame::FileThrottled {
                        to,
                        id,
                        offset,
                        retry_after_ms,
                    };
                    self.send(conn, &frame, now);
                    return;
                }
            }
        }
        let from = session.user.clone();
        self.send(peer, &ServerFrame::RelayedFile { from, message }, now);
    }

    fn log_in(&mut self, conn: ConnId, user: UserName, p2p_port: u16, now: Instant) {
        let Some(connection) = self.conns.get_mut(&conn) else {
            return;
        };
        let endpoint = SocketAddr::new(connection.remote.ip(), p2p_port);
        connection.phase = Phase::Online(Session {
            user: user.clone(),
            endpoint,
            stored_delivered: HashSet::default(),
            file_budget: FileBudget::new(self.config.file_relay, now),
        });
        if let Some(old) = self.presence.insert(user.clone(), conn) {
            let reason = KickReason::LoggedInElsewhere;
            self.send(old, &ServerFrame::Kicked { reason }, now);
            self.close(old, LogoutReason::Kicked(reason), now);
        }
        self.events.push_back(Event::LoggedIn {
            conn,
            user: user.clone(),
            endpoint,
        });
        self.send(conn, &ServerFrame::LoginOk { user: user.clone() }, now);

        let others: Vec<(UserName, ConnId, SocketAddr)> = self
            .presence
            .iter()
            .filter(|(_, other)| *other != conn)
            .filter_map(|(name, other)| {
                let session = self.conns.get(&other)?.session()?;
                Some((name.clone(), other, session.endpoint))
            })
            .collect();
        let page_size = self.config.presence_page.max(1);
        let mut page = Vec::with_capacity(page_size.min(others.len()));
        let pages = others.len().div_ceil(page_size).max(1);
        let mut sent_pages = 0;
        for (name, other, other_endpoint) in others {
            let secret = self.rng.bytes32();
            let intro = PeerIntro {
                user: user.clone(),
                endpoint,
                secret,
            };
            self.send(other, &ServerFrame::PeerOnline(intro), now);
            self.events.push_back(Event::Introduced {
                a: user.clone(),
                b: name.clone(),
            });
            page.push(PeerIntro {
                user: name,
                endpoint: other_endpoint,
                secret,
            });
            if page.len() == page_size {
                sent_pages += 1;
                let peers = std::mem::take(&mut page);
                self.send(
                    conn,
                    &ServerFrame::Presence {
                        peers,
                        last: sent_pages == pages,
                    },
                    now,
                );
            }
        }
        if sent_pages < pages {
            self.send(
                conn,
                &ServerFrame::Presence {
                    peers: page,
                    last: true,
                },
                now,
            );
        }
        self.actions.push_back(Action::LoadOffline { user });
    }

    fn go_offline(&mut self, conn: ConnId, user: UserName, reason: LogoutReason, now: Instant) {
        if !self.presence.remove(&user, conn) {
            return;
        }
        if !self.shutting_down {
            let others: Vec<ConnId> = self.presence.iter().map(|(_, c)| c).collect();
            for other in others {
                self.send(other, &ServerFrame::PeerOffline { user: user.clone() }, now);
            }
        }
        self.events.push_back(Event::LoggedOut { user, reason });
    }

    /// Queues a frame; a connection that cannot take it is scheduled for closing.
    fn send(&mut self, conn: ConnId, frame: &ServerFrame, now: Instant) {
        match self.outbound.send(conn, frame) {
            Ok(()) => {
                if let Some(connection) = self.conns.get_mut(&conn) {
                    connection.liveness.sent(now);
                }
            }
            Err(QueueError::Closed) | Err(QueueError::TooLarge) => {}
            Err(QueueError::Full) => self.doomed.push((conn, ConnError::SlowConsumer)),
        }
    }

    /// Tells the connection why (if it still can take it), then closes it.
    fn fail(&mut self, conn: ConnId, error: ConnError, now: Instant) {
        if !self.conns.contains_key(&conn) {
            return;
        }
        self.events
            .push_back(Event::ConnectionFailed { conn, error });
        if error != ConnError::SlowConsumer {
            let _ = self
                .outbound
                .send(conn, &ServerFrame::Error { code: error.code() });
        }
        self.close(conn, LogoutReason::Failed(error), now);
    }

    fn close(&mut self, conn: ConnId, reason: LogoutReason, now: Instant) {
        let Some(connection) = self.conns.remove(&conn) else {
            return;
        };
        self.limits.disconnected(connection.remote.ip());
        self.outbound.close(conn);
        self.actions.push_back(Action::Close { conn });
        if let Phase::Online(session) = connection.phase {
            self.go_offline(conn, session.user, reason, now);
        }
        if self.conns.is_empty() {
            self.next_sweep = None;
        }
    }

    fn reap(&mut self, now: Instant) {
        while let Some((conn, error)) = self.doomed.pop() {
            self.fail(conn, error, now);
        }
    }
}
