//! `server_streams`: one [`Server`] driven by an input-chosen sequence of socket events,
//! handshake messages (right or damaged), client frames (garbage or valid, sealed as records or
//! not), damaged records, host answers and clock steps, on up to 8 connections.
//!
//! Every connection is encrypted, so the harness plays each client's end of the XX handshake
//! ([`FarEnd`]). A connection is either *auto* (the harness completes the handshake as soon as
//! it connects, so what the input sends next is sealed and reaches the frame decoder and the
//! state machine behind the encryption) or *manual* (the handshake moves only on input-chosen
//! steps, each message possibly damaged, and raw input bytes hit the handshake itself). Once the
//! handshake is through, frames and garbage go sealed (cut into records at input-chosen
//! points), or raw; records may be damaged ([`tamper`]).
//!
//! The harness is a faithful driver: it follows the "how to drive me" order (transmits, then
//! one action at a time, answered inline or deferred), only uses connection ids it has open,
//! and reports as written only what it polled. After every step it checks:
//! - no panic, and `check_invariants()`;
//!   (client frames include relayed file messages, so the relay budget is exercised too);
//! - `pending_output(conn) <= max_pending_output + max_frame + 8 + ENCRYPTION_SLACK` for every
//!   connection;
//! - the core's connection count equals the driver's open sockets (nothing left behind);
//! - every transmit is whole records; the server's handshake message proves the server's key;
//!   once a connection's handshake is through, every record opens and the plaintext decodes as
//!   whole `ServerFrame`s (before that, as long as the server got only our own messages, its
//!   handshake message reads as the next of the pattern);
//! - `CheckLogin` and `CheckKeyLogin` carry the key the connection proved, and introductions
//!   carry only keys a session of the introduced user proved;
//! - a damaged record (a flipped bit, one cut short, swapped, dropped, repeated or replayed)
//!   closes its connection, with a record error, and no other connection but slow consumers;
//! - nothing is transmitted to, or closed on, a connection that is already closed;
//! - `handle_timeout(now)` moves `poll_timeout()` past `now`.

use crate::gen::{self, keys};
use crate::link::{self, tamper, FarEnd};
use crate::timers;
use crate::trace;
use arbitrary::{Result, Unstructured};
use breeze_core::codec::{FrameDecoder, PREFIX_LEN};
use breeze_core::secure::{LinkKind, PublicKey};
use breeze_core::server::{
    Action, ConnError, ConnId, Event, OfflineChat, Server, ServerConfig, StoreOutcome,
};
use breeze_core::wire::{ClientFrame, KeyLookup, PeerIntro, ServerFrame, UserName};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const CONNS: u64 = 8;
const MAX_STEPS: usize = 200;
const MAX_DEFERRED: usize = 16;
/// What encryption may add to a connection's output beyond its plaintext bound: the
/// handshake's message, and 18 bytes (length and tag) per record of what one input queued.
pub const ENCRYPTION_SLACK: usize = 4096;

/// The limits the harness sets: small enough that an input of a few KiB reaches them.
pub fn config(open_registration: bool) -> ServerConfig {
    let mut config = ServerConfig::default();
    config.max_pending_output = 96 * 1024;
    config.max_frame = 48 * 1024;
    config.max_text_len = 4 * 1024;
    config.presence_page = 2;
    // Past two online, sessions hear only whom they watch: both paths get exercised.
    config.presence_everyone_below = 2;
    config.max_connections = 6;
    config.max_connections_per_ip = 3;
    config.max_login_failures_per_ip = 3;
    config.open_registration = open_registration;
    config.file_relay.bytes_per_second = 64 * 1024;
    config.file_relay.burst = 64 * 1024;
    config.file_relay.recipient_high_water = 48 * 1024;
    config
}

/// The driver's view of one open socket.
struct Socket {
    /// The client's end of the encrypted channel.
    far: FarEnd,
    /// The plaintext it opens must decode as server frames.
    decoder: FrameDecoder,
    /// Polled, not yet reported written.
    in_flight: usize,
}

struct Harness {
    server: Server,
    now: Instant,
    sockets: BTreeMap<u64, Socket>,
    deferred: Vec<Action>,
    max_text: usize,
    /// The keys sessions of each user proved (logins the harness let in).
    proved: HashMap<UserName, HashSet<PublicKey>>,
    /// Connections the server failed since the last step began.
    failures: Vec<(ConnId, ConnError)>,
    /// Seeds for the far ends' handshakes.
    next_seed: u64,
}

pub fn run(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let _ = drive(&mut u);
}

fn drive(u: &mut Unstructured) -> Result<()> {
    let open_registration = u.arbitrary()?;
    let config = config(open_registration);
    let max_text = config.max_text_len + 64;
    let mut h = Harness {
        server: Server::new(config, keys().servers[0].clone(), [7; 32]),
        now: Instant::now(),
        sockets: BTreeMap::new(),
        deferred: Vec::new(),
        max_text,
        proved: HashMap::new(),
        failures: Vec::new(),
        next_seed: 1,
    };
    trace!("server_streams: open_registration={open_registration}");
    for _ in 0..MAX_STEPS {
        if u.is_empty() {
            break;
        }
        h.failures.clear();
        h.step(u)?;
        h.settle(u)?;
    }
    Ok(())
}

impl Harness {
    fn conn(&self, u: &mut Unstructured) -> Result<u64> {
        u.int_in_range(0..=CONNS - 1)
    }

    fn step(&mut self, u: &mut Unstructured) -> Result<()> {
        let now = self.now;
        match u.int_in_range(0..=17u8)? {
            0 | 1 => {
                let conn = self.conn(u)?;
                if self.sockets.contains_key(&conn) {
                    return Ok(());
                }
                let remote = SocketAddr::from(([10, 0, 0, u.int_in_range(1..=4)?], 40000));
                let key = gen::user_key(u)?;
                let auto = u.ratio(3, 4)?;
                trace!("connect {conn} from {remote} with key {key} (auto: {auto})");
                let socket = self.socket(key);
                self.sockets.insert(conn, socket);
                self.server.handle_connected(ConnId(conn), remote, now);
                if auto {
                    self.drain(u)?;
                    self.complete_handshake(conn, u)?;
                }
            }
            2 | 17 => {
                // Garbage, where the socket is open (bytes arrive only on open sockets): raw, or
                // sealed behind a finished handshake.
                let conn = self.conn(u)?;
                let bytes: Vec<u8> = u.arbitrary()?;
                let sealed: bool = u.arbitrary()?;
                if let Some(socket) = self.sockets.get_mut(&conn) {
                    if sealed && socket.far.is_open() {
                        let cuts = link::cuts(u, bytes.len())?;
                        let records = socket.far.seal(&bytes, &cuts);
                        socket.far.garble();
                        trace!("sealed bytes {conn} {bytes:?} in {} records", records.len());
                        self.server
                            .handle_bytes(ConnId(conn), &records.concat(), now);
                    } else {
                        socket.far.taint();
                        trace!("bytes {conn} {bytes:?}");
                        self.server.handle_bytes(ConnId(conn), &bytes, now);
                    }
                }
            }
            3 => {
                // The next handshake message, sometimes with a payload, sometimes damaged.
                let conn = self.conn(u)?;
                let payload: Vec<u8> = if u.ratio(1, 4)? {
                    u.arbitrary()?
                } else {
                    Vec::new()
                };
                let damage = u.ratio(1, 4)?;
                let Some(socket) = self.sockets.get_mut(&conn) else {
                    return Ok(());
                };
                let Some(mut message) = socket.far.next_message(&payload) else {
                    return Ok(());
                };
                if damage {
                    link::tamper_message(u, &mut message)?;
                }
                let chunks = gen::chunks(u, message.clone())?;
                if damage || chunks.concat() != message {
                    socket.far.taint();
                }
                trace!("handshake {conn} {message:?} (damaged: {damage})");
                self.deliver(conn, chunks, false, u)?;
            }
            4..=7 => {
                let conn = self.conn(u)?;
                let frames = self.frames(u)?;
                let plain = gen::encode_all(&frames);
                let Some(socket) = self.sockets.get_mut(&conn) else {
                    return Ok(());
                };
                let in_sync = socket.far.in_sync();
                let (bytes, damage) = if socket.far.is_open() && !u.ratio(1, 16)? {
                    let cuts = link::cuts(u, plain.len())?;
                    let old = socket.far.kept();
                    let mut records = socket.far.seal(&plain, &cuts);
                    let damage = match u.ratio(1, 8)? {
                        true => Some(tamper(u, &mut records, &old)?),
                        false => None,
                    };
                    (records.concat(), damage)
                } else {
                    // In the clear: before the handshake, or instead of records after it.
                    socket.far.taint();
                    (plain, None)
                };
                let chunks = match damage {
                    // The damaged record must arrive: cut, but nothing added or left out.
                    Some(_) => gen::split(u, bytes.clone())?,
                    None => gen::chunks(u, bytes.clone())?,
                };
                if chunks.concat() != bytes || damage.is_some_and(|d| !d.must_be_noticed()) {
                    socket.far.taint();
                }
                // As the smol driver hands over big reads: shared, chunks decoded as slices.
                let shared: bool = u.arbitrary()?;
                trace!(
                    "frames {conn} {frames:?} as {} chunks (shared: {shared}, damage: {damage:?})",
                    chunks.len()
                );
                self.deliver(conn, chunks, shared, u)?;
                if in_sync && damage.is_some_and(|d| d.must_be_noticed()) {
                    assert!(
                        !self.sockets.contains_key(&conn),
                        "conn {conn} is still open after damaged records ({damage:?})"
                    );
                }
            }
            8 => {
                let conn = self.conn(u)?;
                let name = gen::name(u)?;
                let register = u.arbitrary()?;
                self.complete_handshake(conn, u)?;
                let Some(socket) = self.sockets.get_mut(&conn) else {
                    return Ok(());
                };
                if !socket.far.is_open() {
                    return Ok(());
                }
                trace!("hello+login {conn} {name}");
                let frames = [
                    ClientFrame::Hello {
                        version: breeze_core::wire::PROTOCOL_VERSION,
                    },
                    // A returning profile logs in with its key alone, a new one enrols.
                    if u.ratio(1, 3)? {
                        ClientFrame::KeyLogin {
                            user: name,
                            p2p_port: 7000,
                        }
                    } else {
                        ClientFrame::Login {
                            user: name,
                            password: "pw".into(),
                            p2p_port: 7000,
                            register,
                        }
                    },
                ];
                let records = socket.far.seal(&gen::encode_all(&frames), &[]);
                self.server
                    .handle_bytes(ConnId(conn), &records.concat(), now);
            }
            9 => {
                let conn = self.conn(u)?;
                if let Some(socket) = self.sockets.get_mut(&conn) {
                    let n = if u.ratio(1, 2)? {
                        socket.in_flight
                    } else {
                        u.int_in_range(0..=socket.in_flight)?
                    };
                    socket.in_flight -= n;
                    trace!("written {conn} {n}");
                    self.server.handle_written(ConnId(conn), n);
                }
            }
            10 => {
                let conn = self.conn(u)?;
                if self.sockets.remove(&conn).is_some() {
                    trace!("disconnected {conn}");
                    self.server.handle_disconnected(ConnId(conn), now);
                }
            }
            11 | 12 => {
                let ms = u.int_in_range(0..=20_000u64)?;
                trace!("advance {ms} ms");
                self.now += Duration::from_millis(ms);
            }
            13 => {
                if !self.deferred.is_empty() {
                    let i = u.choose_index(self.deferred.len())?;
                    let action = self.deferred.remove(i);
                    self.answer(action, u)?;
                }
            }
            14 => {
                let user = gen::name(u)?;
                let reason = gen::kick_reason(u)?;
                trace!("kick {user} {reason:?}");
                self.server.kick(&user, reason, now);
            }
            15 => {
                // Rare: everything after a shutdown is refused.
                if u.ratio(1, 8)? {
                    trace!("shutdown");
                    self.server.shutdown(now);
                }
            }
            _ => self.damaged_records(u)?,
        }
        Ok(())
    }

    /// Harmless frames (pings) in records of which one is damaged, on a connection whose
    /// handshake is through: that connection, and no other but slow consumers, is closed.
    fn damaged_records(&mut self, u: &mut Unstructured) -> Result<()> {
        let conn = self.conn(u)?;
        let pings = vec![ClientFrame::Ping; u.int_in_range(1..=4usize)?];
        let plain = gen::encode_all(&pings);
        let Some(socket) = self.sockets.get_mut(&conn) else {
            return Ok(());
        };
        if !socket.far.is_open() {
            return Ok(());
        }
        let in_sync = socket.far.in_sync();
        let frames_whole = socket.far.frames_whole();
        let cuts = link::cuts(u, plain.len())?;
        let old = socket.far.kept();
        let mut records = socket.far.seal(&plain, &cuts);
        let damage = tamper(u, &mut records, &old)?;
        if !damage.must_be_noticed() {
            socket.far.taint();
        }
        let chunks = gen::split(u, records.concat())?;
        trace!(
            "damaged records {conn}: {damage:?} in {} chunks",
            chunks.len()
        );
        let others: BTreeSet<u64> = self
            .sockets
            .keys()
            .copied()
            .filter(|c| *c != conn)
            .collect();
        self.failures.clear();
        self.deliver(conn, chunks, false, u)?;
        if !in_sync || !damage.must_be_noticed() {
            return Ok(());
        }
        assert!(
            !self.sockets.contains_key(&conn),
            "conn {conn} is still open after {damage:?}"
        );
        let failed = |c: u64| {
            self.failures
                .iter()
                .find(|(id, _)| id.0 == c)
                .map(|(_, e)| *e)
        };
        // (Sealed garbage earlier may have left part of a frame, which the pings complete.)
        assert!(
            !frames_whole || matches!(failed(conn), Some(ConnError::Record(_))),
            "conn {conn} closed for {:?} after {damage:?}, not for the record",
            failed(conn)
        );
        for other in others {
            if !self.sockets.contains_key(&other) {
                assert_eq!(
                    failed(other),
                    Some(ConnError::SlowConsumer),
                    "conn {other} closed too when records of conn {conn} were damaged"
                );
            }
        }
        Ok(())
    }

    /// Hands `chunks` to the server on `conn` (if open), draining after each.
    fn deliver(
        &mut self,
        conn: u64,
        chunks: Vec<Vec<u8>>,
        shared: bool,
        u: &mut Unstructured,
    ) -> Result<()> {
        let now = self.now;
        for chunk in chunks {
            if !self.sockets.contains_key(&conn) {
                break;
            }
            if shared {
                let (buffer, len) = handed_over(chunk);
                self.server.handle_buffer(ConnId(conn), buffer, len, now);
            } else {
                self.server.handle_bytes(ConnId(conn), &chunk, now);
            }
            self.drain(u)?;
        }
        Ok(())
    }

    /// Moves the handshake on `conn` as far as it goes: our messages, right and whole, each
    /// answered by the server's before the next.
    fn complete_handshake(&mut self, conn: u64, u: &mut Unstructured) -> Result<()> {
        for _ in 0..3 {
            let Some(socket) = self.sockets.get_mut(&conn) else {
                break;
            };
            let Some(message) = socket.far.next_message(&[]) else {
                break;
            };
            trace!("handshake {conn} {} bytes", message.len());
            self.server.handle_bytes(ConnId(conn), &message, self.now);
            self.drain(u)?;
        }
        Ok(())
    }

    fn socket(&mut self, key: usize) -> Socket {
        self.next_seed += 1;
        let far = FarEnd::initiator(
            LinkKind::ClientServer,
            &keys().users[key],
            None,
            self.next_seed,
        );
        Socket {
            far,
            decoder: FrameDecoder::new(self.server.config().max_frame),
            in_flight: 0,
        }
    }

    fn frames(&mut self, u: &mut Unstructured) -> Result<Vec<ClientFrame>> {
        let n = u.int_in_range(1..=6u8)?;
        let mut frames = Vec::new();
        for _ in 0..n {
            frames.push(match u.int_in_range(0..=14u8)? {
                13 => {
                    let watched = u.int_in_range(0..=4u8)?;
                    let users = (0..watched).map(|_| gen::name(u)).collect::<Result<_>>()?;
                    ClientFrame::Watch { users }
                }
                14 => ClientFrame::KeyLogin {
                    user: gen::name(u)?,
                    p2p_port: u.arbitrary()?,
                },
                10 => ClientFrame::Group {
                    request_id: u.arbitrary()?,
                    request: gen::group_request(u)?,
                },
                11 => {
                    let group = gen::group_id(u)?;
                    let to = gen::name(u)?;
                    let (_, message) = gen::group_message(u, group, &to, &keys().me.public())?;
                    ClientFrame::GroupSend { group, message }
                }
                12 => ClientFrame::GroupAck {
                    group: gen::group_id(u)?,
                    through: u.int_in_range(0..=20u64)?,
                },
                8 | 9 => ClientFrame::RelayFile {
                    to: gen::name(u)?,
                    message: gen::sealed_file(u, 40 * 1024, &keys().me.public())?.1,
                },
                0 => ClientFrame::Hello {
                    version: gen::version(u)?,
                },
                1 | 2 => ClientFrame::Login {
                    user: gen::name(u)?,
                    password: if u.ratio(3, 4)? {
                        "pw".into()
                    } else {
                        u.arbitrary::<String>()?.into()
                    },
                    p2p_port: u.arbitrary()?,
                    register: u.arbitrary()?,
                },
                3 => ClientFrame::Logout,
                4 | 5 => ClientFrame::Relay {
                    to: gen::name(u)?,
                    chat: gen::sealed_chat(u, self.max_text, &keys().me.public())?.1,
                },
                6 => ClientFrame::RelayAck {
                    to: gen::name(u)?,
                    ack: gen::sealed_ack(u, None, &keys().me.public())?,
                },
                7 => ClientFrame::KeyRequest {
                    user: gen::name(u)?,
                },
                _ => ClientFrame::Ping,
            });
        }
        Ok(frames)
    }

    /// Answers a host request, with an input-chosen verdict.
    fn answer(&mut self, action: Action, u: &mut Unstructured) -> Result<()> {
        let now = self.now;
        match action {
            Action::CheckLogin {
                conn, user, key, ..
            } => {
                let verdict = if u.ratio(3, 4)? {
                    Ok(())
                } else {
                    Err(gen::refusal(u)?)
                };
                trace!("login checked {conn:?} {user} {verdict:?}");
                if verdict.is_ok() {
                    self.proved.entry(user.clone()).or_default().insert(key);
                }
                self.server.handle_login_checked(conn, verdict, now);
            }
            Action::CheckKeyLogin { conn, user, key } => {
                let verdict = if u.ratio(3, 4)? {
                    Ok(())
                } else {
                    Err(gen::refusal(u)?)
                };
                trace!("key login checked {conn:?} {user} {verdict:?}");
                if verdict.is_ok() {
                    self.proved.entry(user.clone()).or_default().insert(key);
                }
                self.server.handle_login_checked(conn, verdict, now);
            }
            Action::LoadOffline { user } => {
                let n = if u.ratio(1, 2)? {
                    0
                } else {
                    u.int_in_range(1..=40usize)?
                };
                let mut messages: Vec<OfflineChat> = Vec::new();
                for _ in 0..n {
                    let (key, chat) = gen::sealed_chat(u, self.max_text, &keys().me.public())?;
                    let from = gen::name(u)?;
                    messages.push(OfflineChat { from, key, chat });
                }
                trace!("offline loaded {user} {} messages", messages.len());
                self.server.handle_offline_loaded(&user, messages, now);
            }
            Action::StoreOffline { to, message } => {
                let outcome = match u.int_in_range(0..=5u8)? {
                    0 => StoreOutcome::Undeliverable(gen::undeliverable(u)?),
                    1 => StoreOutcome::Failed,
                    _ => StoreOutcome::Stored,
                };
                trace!("offline stored {}->{to} {outcome:?}", message.from);
                self.server
                    .handle_offline_stored(to, &message, outcome, now);
            }
            Action::LoadKey { conn, user } => {
                let key = match u.int_in_range(0..=3u8)? {
                    0 => KeyLookup::NoSuchUser,
                    1 => KeyLookup::NotYet,
                    _ => KeyLookup::Key(keys().users[gen::user_key(u)?].public()),
                };
                self.server.handle_key_loaded(conn, user, key, now);
            }
            Action::DeleteOffline { .. } => {}
            Action::SaveGroup { info, .. } => {
                let result = match u.int_in_range(0..=5u8)? {
                    0 => Err(breeze_core::wire::GroupError::NoSuchUser(gen::name(u)?)),
                    1 => Err(breeze_core::wire::GroupError::StorageFailed),
                    _ => Ok(()),
                };
                trace!("group saved {} {result:?}", info.id);
                self.server.handle_group_saved(info.id, result, now);
            }
            Action::StoreGroupMessage { message, .. } => {
                let stored = u.ratio(7, 8)?;
                trace!(
                    "group message stored {}:{} {stored}",
                    message.group,
                    message.order
                );
                self.server
                    .handle_group_stored(message.group, message.order, stored, now);
            }
            Action::LoadGroupBacklog { user, limit, .. } => {
                let mut messages = Vec::new();
                for _ in 0..u.int_in_range(0..=limit.min(8))? {
                    let group = gen::group_id(u)?;
                    let (key, message) = gen::group_message(u, group, &user, &keys().me.public())?;
                    messages.push(breeze_core::wire::OrderedGroupMessage {
                        group,
                        order: u.int_in_range(0..=30u64)?,
                        from: gen::name(u)?,
                        key,
                        message,
                    });
                }
                let more = u.ratio(1, 4)?;
                trace!(
                    "group backlog for {user}: {} (more: {more})",
                    messages.len()
                );
                self.server
                    .handle_group_backlog_loaded(&user, messages, more, now);
            }
            Action::DeleteGroupMessage { .. } | Action::AckGroup { .. } => {}
            Action::Close { conn } => {
                trace!("close {conn:?}");
                assert!(
                    self.sockets.remove(&conn.0).is_some(),
                    "Close for {conn:?}, which is not open"
                );
            }
            other => trace!("unknown action {other:?}"),
        }
        Ok(())
    }

    fn take_transmits(&mut self) {
        let server_key = self.server.public_key();
        let mut intros: Vec<PeerIntro> = Vec::new();
        while let Some(t) = self.server.poll_transmit() {
            let socket = self
                .sockets
                .get_mut(&t.to.0)
                .unwrap_or_else(|| panic!("transmit to {:?}, which is not open", t.to));
            let bytes = t.payload.as_bytes().expect("the server sends bytes");
            socket.in_flight += bytes.len();
            let (open, pristine) = (socket.far.is_open(), socket.far.is_pristine());
            let plain = match socket.far.read(bytes) {
                Ok(plain) => plain,
                Err(error) if open || pristine => panic!(
                    "{:?}: the server wrote what its client cannot read ({error}; open: {open})",
                    t.to
                ),
                Err(error) => {
                    trace!("  -> {:?} no longer followed: {error}", t.to);
                    Vec::new()
                }
            };
            if let Some(remote) = socket.far.remote() {
                assert_eq!(
                    remote, server_key,
                    "the handshake proved another server key"
                );
            }
            let mut input = &plain[..];
            while let Some(frame) = socket
                .decoder
                .decode::<ServerFrame>(&mut input)
                .unwrap_or_else(|e| panic!("server wrote an undecodable stream: {e}"))
            {
                trace!("  -> {:?} {frame:?}", t.to);
                match frame {
                    ServerFrame::PresenceChanged { online, .. } => intros.extend(online),
                    ServerFrame::Presence { peers, .. } => intros.extend(peers),
                    _ => {}
                }
            }
        }
        // A frame may span transmits (a relayed chunk's data goes as it is, after its
        // header), but once all are taken every stream is at a frame boundary, and every
        // transmit is whole records.
        for (conn, socket) in &self.sockets {
            assert!(
                socket.far.at_record_boundary(),
                "conn {conn}: a transmit ended mid-record"
            );
            assert_eq!(
                socket.decoder.buffered(),
                0,
                "the transmits ended mid-frame"
            );
        }
        for intro in intros {
            let proved = self.proved.get(&intro.user);
            assert!(
                proved.is_some_and(|keys| keys.contains(&intro.key)),
                "{} introduced with {:?}, which no session of it proved",
                intro.user,
                intro.key
            );
        }
    }

    /// Drains every output; each action is answered inline or deferred, as the input says.
    fn drain(&mut self, u: &mut Unstructured) -> Result<()> {
        for _ in 0..10_000 {
            self.take_transmits();
            let Some(action) = self.server.poll_action() else {
                while let Some(event) = self.server.poll_event() {
                    trace!("  event {event:?}");
                    if let Event::ConnectionFailed { conn, error } = event {
                        self.failures.push((conn, error));
                    }
                }
                return Ok(());
            };
            trace!("  action {action:?}");
            if let Action::CheckLogin { conn, key, .. } | Action::CheckKeyLogin { conn, key, .. } =
                &action
            {
                if let Some(socket) = self.sockets.get(&conn.0) {
                    assert_eq!(
                        socket.far.local(),
                        Some(*key),
                        "a login check for {conn:?} with a key other than the one it proved"
                    );
                }
            }
            let must_answer =
                matches!(action, Action::Close { .. }) || self.deferred.len() >= MAX_DEFERRED;
            if must_answer || u.ratio(1, 2)? {
                self.answer(action, u)?;
            } else {
                self.deferred.push(action);
            }
        }
        panic!("the server never stops producing output");
    }

    /// Drains, fires due timers, drains again, then checks everything.
    fn settle(&mut self, u: &mut Unstructured) -> Result<()> {
        let now = self.now;
        timers::fire_due(self, now, |h| &mut h.server, |h| h.drain(u))?;
        self.check();
        Ok(())
    }

    fn check(&self) {
        if let Err(e) = self.server.check_invariants() {
            panic!("server invariant: {e}");
        }
        let config = self.server.config();
        let bound = config.max_pending_output + config.max_frame + 8 + ENCRYPTION_SLACK;
        for conn in 0..CONNS {
            let pending = self.server.pending_output(ConnId(conn));
            assert!(
                pending <= bound,
                "conn {conn} holds {pending} > {bound} bytes"
            );
        }
        for (conn, socket) in &self.sockets {
            assert!(
                socket.in_flight <= bound,
                "conn {conn} in flight {}",
                socket.in_flight
            );
            assert!(socket.decoder.buffered() <= PREFIX_LEN + config.max_frame);
        }
        assert_eq!(
            self.server.stats().connections,
            self.sockets.len(),
            "the core's connections differ from the driver's open sockets"
        );
        assert!(self.server.stats().online <= self.sockets.len());
    }
}

/// `chunk` as a transport's read buffer handed over whole: bigger than what was read, with
/// bytes past the read that the core must ignore.
pub(crate) fn handed_over(mut chunk: Vec<u8>) -> (Vec<u8>, usize) {
    let len = chunk.len();
    chunk.extend_from_slice(&[0xa5; 7]);
    (chunk, len)
}
