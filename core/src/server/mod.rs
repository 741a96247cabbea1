//! The server state machine: accounts are checked by the host, everything else happens here.
//!
//! One file per job: `login.rs` (hello, login, the host's verdict), `relay.rs` (chat,
//! acknowledgements, files, the offline store), `presence.rs` (who is online, introductions),
//! `sweep.rs` (heartbeats and deadlines), `connection.rs` (one connection's life). How to
//! drive it is on [`Server`].

mod config;
mod connection;
mod file_relay;
mod groups;
mod limits;
mod login;
mod output;
mod presence;
mod relay;
mod sweep;

pub use config::ServerConfig;
pub use file_relay::FileRelayLimit;
pub use groups::{Envelopes, GroupRecord, MemoryGroupStore, SavedGroups, StoredGroupMessage};
pub use output::{Action, ConnError, Event, LogoutReason, OfflineChat, Stats, StoreOutcome};

use crate::outbound::Outbound;
use crate::rng::SeededRng;
use crate::secure::{IdentityKey, PublicKey, Read, ReadOwner};
use crate::seeded_hash::{SeededMap, SeededState};
use crate::transmit::Transmit;
use crate::wire::{
    ClientFrame, GroupError, GroupId, KeyLookup, KickReason, LoginRefusal, OrderedGroupMessage,
    ServerFrame, UserName,
};
use connection::{Connection, Phase};
use groups::Groups;
use limits::AddressLimits;
use presence::Presence;
use std::collections::HashMap;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

/// A connection id chosen by the driver; unique among the connections it has open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// The Breeze server: login, presence and introductions, the relay, and the offline store's
/// logic (the host keeps the store and the accounts).
///
/// # How to drive me
///
/// The host owns the sockets, a clock, the account store and the offline store, and picks a
/// [`ConnId`] for every accepted connection; every input takes `now`.
///
/// **Getters** never change state: [`config`](Server::config),
/// [`public_key`](Server::public_key), [`stats`](Server::stats), [`online`](Server::online),
/// [`pending_output`](Server::pending_output), [`check_invariants`](Server::check_invariants).
///
/// **`handle_*` inputs**, what the host saw happen:
/// - sockets: [`handle_connected`](Server::handle_connected),
///   [`handle_bytes`](Server::handle_bytes) (or [`handle_buffer`](Server::handle_buffer) to
///   hand over the read buffer), [`handle_written`](Server::handle_written),
///   [`handle_disconnected`](Server::handle_disconnected);
/// - answers to actions: [`handle_login_checked`](Server::handle_login_checked),
///   [`handle_offline_loaded`](Server::handle_offline_loaded),
///   [`handle_offline_stored`](Server::handle_offline_stored);
/// - the clock: [`handle_timeout`](Server::handle_timeout).
///
/// **Mutators**, what the operator decides: [`kick`](Server::kick),
/// [`shutdown`](Server::shutdown). They are inputs too: drain after them.
///
/// **`poll_*` outputs**: [`poll_transmit`](Server::poll_transmit) (bytes to write, per
/// connection, in order), [`poll_action`](Server::poll_action) (closes, credential checks,
/// offline-store work), [`poll_event`](Server::poll_event) (what to log),
/// [`poll_timeout`](Server::poll_timeout) (when to call `handle_timeout`).
///
/// Drain and order them by the [ordering rules](crate::Client#ordering-rules), the same for
/// both cores: transmits, then one action at a time (an answer given inline is a new input),
/// then events, then the timer. Every [`Action::CheckLogin`], [`Action::CheckKeyLogin`],
/// [`Action::LoadOffline`] and [`Action::StoreOffline`] wants its answer, in any order and at
/// any later time.
///
/// The core never reads a clock, touches a socket or a file, or draws randomness other than
/// from the seed given to [`Server::new`]; it encrypts every connection itself. A protocol
/// error closes only the connection that caused it.
pub struct Server {
    config: ServerConfig,
    /// The server's static key: what clients pin, and what proves this server is theirs.
    identity: IdentityKey,
    rng: SeededRng,
    /// Boxed, so the table holds pointers and each connection takes its own size only, not
    /// the slack of a table that doubles.
    conns: SeededMap<ConnId, Box<Connection>>,
    presence: Presence,
    limits: AddressLimits,
    /// Credential checks the host has not answered yet, with the address that asked.
    pending_checks: SeededMap<ConnId, login::PendingCheck>,
    outbound: Outbound<ConnId>,
    actions: VecDeque<Action>,
    events: VecDeque<Event>,
    /// Connections to close once the current input is handled (a failed send mid-broadcast
    /// cannot close a connection without disturbing the loop that sent it).
    doomed: Vec<(ConnId, ConnError)>,
    groups: Groups,
    /// Group changes the host is saving, by group.
    group_saves: HashMap<GroupId, groups::requests::Saving>,
    next_sweep: Option<Instant>,
    shutting_down: bool,
    stats: Stats,
}

impl Server {
    /// A server with no connections and the static key `identity` (kept by the host in its
    /// data directory), which clients pin. `seed` is the only source of randomness (handshake
    /// keys): give each process a fresh one.
    pub fn new(config: ServerConfig, identity: IdentityKey, seed: [u8; 32]) -> Self {
        let mut rng = SeededRng::from_seed(seed);
        let hash = SeededState::new(rng.next_u64());
        Server {
            identity,
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
            groups: Groups::default(),
            group_saves: HashMap::new(),
            next_sweep: None,
            shutting_down: false,
            stats: Stats::default(),
        }
    }

    // ---- getters ----------------------------------------------------------------------------

    /// The configuration in force.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// The server's public key, which clients pin.
    pub fn public_key(&self) -> PublicKey {
        self.identity.public()
    }

    /// Counters since start, and the connections and sessions open now.
    pub fn stats(&self) -> Stats {
        Stats {
            connections: self.conns.len(),
            online: self.presence.len(),
            groups: self.groups.by_id.len(),
            group_members: self.groups.member_count(),
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

    /// Bytes queued or unwritten for one connection: what counts against its output bound.
    pub fn pending_output(&self, conn: ConnId) -> usize {
        self.outbound.pending(conn)
    }

    /// Checks the internal invariants; for tests and fuzzers.
    pub fn check_invariants(&self) -> Result<(), String> {
        for (user, conn) in self.presence.iter() {
            match self.conns.get(&conn).and_then(|c| c.session()) {
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
        // Each everyone session saw fewer than the bound online at its login.
        if self.presence.everyone_count() > self.config.presence_everyone_below {
            return Err("more everyone sessions than presence_everyone_below".into());
        }
        if self.limits.total_connections() != self.conns.len() {
            return Err("per-address connection counts out of step".into());
        }
        if self.outbound.len() != self.conns.len() {
            return Err("output buffers out of step with connections".into());
        }
        self.groups.check_invariants()
    }

    // ---- handle_* inputs -------------------------------------------------------------------

    /// The driver accepted a connection and picked `conn` for it.
    pub fn handle_connected(&mut self, conn: ConnId, remote: SocketAddr, now: Instant) {
        self.open(conn, remote, now);
    }

    /// Bytes read from `conn`, in any chunking: frames may be split or batched at will.
    pub fn handle_bytes(&mut self, conn: ConnId, bytes: &[u8], now: Instant) {
        self.on_input(conn, Read::Slice(bytes), now);
        self.reap(now);
    }

    /// [`handle_bytes`](Server::handle_bytes) for a driver that hands over the buffer it read
    /// into, `len` bytes of it read: records are opened where they lie, and file chunks to
    /// relay keep their data in it until they are written to the recipient (see
    /// [`ReadOwner`]).
    pub fn handle_buffer(
        &mut self,
        conn: ConnId,
        buffer: impl ReadOwner,
        len: usize,
        now: Instant,
    ) {
        self.on_input(conn, Read::owned(buffer, len), now);
        self.reap(now);
    }

    /// The driver wrote `bytes` of what it polled for `conn`; frees that much of its bound.
    pub fn handle_written(&mut self, conn: ConnId, bytes: usize) {
        self.outbound.written(conn, bytes);
        // A member that fell behind gets its next page from the store as soon as it drained.
        self.group_output_drained(conn);
    }

    /// The socket closed (or failed) on its own.
    pub fn handle_disconnected(&mut self, conn: ConnId, now: Instant) {
        self.disconnected(conn, now);
        self.reap(now);
    }

    /// The host's answer to [`Action::CheckLogin`] or [`Action::CheckKeyLogin`]: the server
    /// remembers which it asked for.
    pub fn handle_login_checked(
        &mut self,
        conn: ConnId,
        verdict: Result<(), LoginRefusal>,
        now: Instant,
    ) {
        self.on_login_checked(conn, verdict, now);
        self.reap(now);
    }

    /// The host's answer to [`Action::LoadKey`].
    pub fn handle_key_loaded(
        &mut self,
        conn: ConnId,
        user: UserName,
        key: KeyLookup,
        now: Instant,
    ) {
        self.send(conn, &ServerFrame::UserKey { user, key }, now);
        self.reap(now);
    }

    /// The host's answer to [`Action::LoadOffline`]: the messages in stored order.
    pub fn handle_offline_loaded(
        &mut self,
        user: &UserName,
        messages: Vec<OfflineChat>,
        now: Instant,
    ) {
        self.on_offline_loaded(user, messages, now);
        self.reap(now);
    }

    /// The host's answer to [`Action::StoreOffline`]. Only now is the sender told "stored":
    /// a promise to deliver later must not go out before the message is safe on disk.
    pub fn handle_offline_stored(
        &mut self,
        to: UserName,
        message: &OfflineChat,
        outcome: StoreOutcome,
        now: Instant,
    ) {
        self.on_offline_stored(to, message, outcome, now);
        self.reap(now);
    }

    /// The host's answer to [`Action::SaveGroup`]: only a saved change is put into force
    /// and told to the members.
    pub fn handle_group_saved(
        &mut self,
        group: GroupId,
        result: Result<(), GroupError>,
        now: Instant,
    ) {
        self.on_group_saved(group, result, now);
        self.reap(now);
    }

    /// The host's answer to [`Action::StoreGroupMessage`]: `stored` false if it could not.
    pub fn handle_group_stored(&mut self, group: GroupId, order: u64, stored: bool, now: Instant) {
        self.on_group_stored(group, order, stored, now);
        self.reap(now);
    }

    /// The host's answer to [`Action::LoadGroupBacklog`]: the user's stored group messages
    /// after the places asked for, in order per group, each with the user's envelope only;
    /// `more` when the page was full.
    pub fn handle_group_backlog_loaded(
        &mut self,
        user: &UserName,
        messages: Vec<OrderedGroupMessage>,
        more: bool,
        now: Instant,
    ) {
        self.on_group_backlog_loaded(user, messages, more, now);
        self.reap(now);
    }

    /// The deadline [`poll_timeout`](Server::poll_timeout) gave has come: heartbeats and
    /// deadlines are swept. Called early, it does nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.flush_presence(now);
        self.sweep(now);
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

    /// The groups the host saved, given once at start before any connection. New groups get
    /// ids above `highest_id` and above every record's: an id is never given to two groups, as
    /// a member still running would take the new one's places for the old one's. A record with
    /// no members is a group that ended with messages still owed: the server keeps nothing of
    /// it (its backlog is served from the store like any other) but its id.
    pub fn restore_groups(&mut self, saved: SavedGroups) {
        let SavedGroups {
            records,
            highest_id,
        } = saved;
        if let Some(highest) = highest_id {
            self.groups.reserve_id(highest);
        }
        for record in records {
            if record.info.members.is_empty() {
                self.groups.reserve_id(record.info.id);
                continue;
            }
            self.groups
                .insert(record.info, record.next_order, &record.last_taken);
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

    /// The next bytes to write to one connection (see the ordering rules on [`Server`]).
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit<ConnId>> {
        self.outbound.poll_transmit()
    }

    /// The next work for the host: close a socket, check a login, use the offline store.
    #[must_use]
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The next thing worth logging.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When to call [`handle_timeout`](Server::handle_timeout); `None` while no connection is
    /// open.
    ///
    /// The server keeps one periodic sweep, so this only moves when the first connection opens
    /// or the last one closes, after each sweep, and when a presence change starts a batch
    /// (`presence_batch` from then). The same rule as
    /// [`Client::poll_timeout`](crate::Client::poll_timeout) holds: a host that moves its
    /// timer only when the deadline becomes earlier, and re-arms from here whenever the timer
    /// fires, misses nothing, since an early `handle_timeout` does nothing.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.next_sweep, self.presence.flush_at()) {
            (Some(sweep), Some(flush)) => Some(sweep.min(flush)),
            (sweep, flush) => sweep.or(flush),
        }
    }

    // ---- internals --------------------------------------------------------------------------

    /// Routes one decoded frame by the connection's phase: getting in (`login.rs`), then
    /// relaying (`relay.rs`). Anything out of place closes the connection.
    fn on_frame(&mut self, conn: ConnId, frame: ClientFrame, now: Instant) {
        let Some(connection) = self.conns.get_mut(&conn) else {
            return;
        };
        match (&connection.phase, frame) {
            (_, ClientFrame::Ping) => {}
            (Phase::Hello, ClientFrame::Hello { version }) => self.on_hello(conn, version, now),
            (
                Phase::Login,
                ClientFrame::Login {
                    user,
                    password,
                    p2p_port,
                    register,
                },
            ) => self.on_login(conn, user, password, p2p_port, register, now),
            (Phase::Login, ClientFrame::KeyLogin { user, p2p_port }) => {
                self.on_key_login(conn, user, p2p_port, now)
            }
            (Phase::Online(session), ClientFrame::Relay { to, chat }) => {
                let from = session.user.clone();
                self.on_relay(conn, from, to, chat, now);
            }
            (Phase::Online(_), ClientFrame::RelayAck { to, ack }) => {
                self.on_relay_ack(conn, to, ack, now)
            }
            (Phase::Checking { .. } | Phase::Online(_), ClientFrame::Watch { users }) => {
                self.on_watch(conn, users, now)
            }
            (Phase::Online(_), ClientFrame::KeyRequest { user }) => {
                self.on_key_request(conn, user, now)
            }
            (Phase::Online(session), ClientFrame::RelayFile { to, message }) => {
                if to != session.user {
                    self.on_relay_file(conn, to, message, now);
                }
            }
            (
                Phase::Online(_),
                ClientFrame::Group {
                    request_id,
                    request,
                },
            ) => self.on_group_request(conn, request_id, request, now),
            (Phase::Online(_), ClientFrame::GroupSend { group, message }) => {
                self.on_group_send(conn, group, message, now)
            }
            (Phase::Online(_), ClientFrame::GroupAck { group, through }) => {
                self.on_group_ack(conn, group, through)
            }
            (_, ClientFrame::Logout) => self.close(conn, LogoutReason::Requested, now),
            (_, _) => self.fail(conn, ConnError::UnexpectedFrame, now),
        }
    }
}
