//! `server_streams`: one [`Server`] driven by an input-chosen sequence of socket events, client
//! frames (garbage or valid), host answers and clock steps, on up to 8 connections.
//!
//! The harness is a faithful driver: it follows the "how to drive me" order (transmits, then
//! one action at a time, answered inline or deferred), only uses connection ids it has open,
//! and reports as written only what it polled. After every step it checks:
//! - no panic, and `check_invariants()`;
//!   (client frames include relayed file messages, so the relay budget is exercised too);
//! - `pending_output(conn) <= max_pending_output + max_frame + 8` for every connection;
//! - the core's connection count equals the driver's open sockets (nothing left behind);
//! - every transmitted byte stream decodes as whole `ServerFrame`s;
//! - nothing is transmitted to, or closed on, a connection that is already closed;
//! - `handle_timeout(now)` moves `poll_timeout()` past `now`.

use crate::gen;
use crate::timers;
use crate::trace;
use arbitrary::{Result, Unstructured};
use breeze_core::codec::{FrameDecoder, PREFIX_LEN};
use breeze_core::server::{Action, ConnId, Server, ServerConfig, StoreOutcome};
use breeze_core::wire::{Bytes, Chat, ClientFrame, ServerFrame, UserName};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const CONNS: u64 = 8;
const MAX_STEPS: usize = 200;
const MAX_DEFERRED: usize = 16;

/// The limits the harness sets: small enough that an input of a few KiB reaches them.
pub fn config(open_registration: bool) -> ServerConfig {
    let mut config = ServerConfig::default();
    config.max_pending_output = 96 * 1024;
    config.max_frame = 48 * 1024;
    config.max_text_len = 4 * 1024;
    config.presence_page = 2;
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
    /// Everything transmitted on it must decode as server frames.
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
        server: Server::new(config, [7; 32]),
        now: Instant::now(),
        sockets: BTreeMap::new(),
        deferred: Vec::new(),
        max_text,
    };
    trace!("server_streams: open_registration={open_registration}");
    for _ in 0..MAX_STEPS {
        if u.is_empty() {
            break;
        }
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
        match u.int_in_range(0..=15u8)? {
            0 | 1 => {
                let conn = self.conn(u)?;
                if self.sockets.contains_key(&conn) {
                    return Ok(());
                }
                let remote = SocketAddr::from(([10, 0, 0, u.int_in_range(1..=4)?], 40000));
                trace!("connect {conn} from {remote}");
                self.sockets.insert(conn, self.socket());
                self.server.handle_connected(ConnId(conn), remote, now);
            }
            2 | 3 => {
                // Garbage, where the socket is open (bytes arrive only on open sockets).
                let conn = self.conn(u)?;
                let bytes: Vec<u8> = u.arbitrary()?;
                if self.sockets.contains_key(&conn) {
                    trace!("bytes {conn} {bytes:?}");
                    self.server.handle_bytes(ConnId(conn), &bytes, now);
                }
            }
            4..=7 => {
                let conn = self.conn(u)?;
                let frames = self.frames(u)?;
                let chunks = gen::chunks(u, gen::encode_all(&frames))?;
                // As the smol driver hands over big reads: shared, chunks decoded as slices.
                let shared: bool = u.arbitrary()?;
                if self.sockets.contains_key(&conn) {
                    trace!("frames {conn} {frames:?} as {chunks:?} (shared: {shared})");
                    for chunk in chunks {
                        if shared {
                            let chunk = Bytes::from(chunk);
                            self.server.handle_buffer(ConnId(conn), &chunk, now);
                        } else {
                            self.server.handle_bytes(ConnId(conn), &chunk, now);
                        }
                        self.drain(u)?;
                    }
                }
            }
            8 => {
                let conn = self.conn(u)?;
                let name = gen::name(u)?;
                if self.sockets.contains_key(&conn) {
                    trace!("hello+login {conn} {name}");
                    let frames = [
                        ClientFrame::Hello {
                            version: breeze_core::wire::PROTOCOL_VERSION,
                        },
                        ClientFrame::Login {
                            user: name,
                            password: "pw".into(),
                            p2p_port: 7000,
                            register: u.arbitrary()?,
                        },
                    ];
                    let bytes = gen::encode_all(&frames);
                    self.server.handle_bytes(ConnId(conn), &bytes, now);
                }
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
            _ => {
                // Rare: everything after a shutdown is refused.
                if u.ratio(1, 8)? {
                    trace!("shutdown");
                    self.server.shutdown(now);
                }
            }
        }
        Ok(())
    }

    fn socket(&self) -> Socket {
        Socket {
            decoder: FrameDecoder::new(self.server.config().max_frame),
            in_flight: 0,
        }
    }

    fn frames(&mut self, u: &mut Unstructured) -> Result<Vec<ClientFrame>> {
        let n = u.int_in_range(1..=6u8)?;
        let mut frames = Vec::new();
        for _ in 0..n {
            frames.push(match u.int_in_range(0..=9u8)? {
                8 | 9 => ClientFrame::RelayFile {
                    to: gen::name(u)?,
                    message: gen::file_message(u, 40 * 1024)?,
                },
                0 => ClientFrame::Hello {
                    version: gen::version(u)?,
                },
                1 | 2 => ClientFrame::Login {
                    user: gen::name(u)?,
                    password: if u.ratio(3, 4)? {
                        "pw".into()
                    } else {
                        u.arbitrary()?
                    },
                    p2p_port: u.arbitrary()?,
                    register: u.arbitrary()?,
                },
                3 => ClientFrame::Logout,
                4 | 5 => ClientFrame::Relay {
                    to: gen::name(u)?,
                    chat: gen::chat(u, None, self.max_text)?,
                },
                6 => ClientFrame::RelayAck {
                    to: gen::name(u)?,
                    ack: gen::ack(u, None)?,
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
            Action::CheckLogin { conn, user, .. } => {
                let verdict = if u.ratio(3, 4)? {
                    Ok(())
                } else {
                    Err(gen::refusal(u)?)
                };
                trace!("login checked {conn:?} {user} {verdict:?}");
                self.server.handle_login_checked(conn, verdict, now);
            }
            Action::LoadOffline { user } => {
                let n = if u.ratio(1, 2)? {
                    0
                } else {
                    u.int_in_range(1..=40usize)?
                };
                let mut messages: Vec<(UserName, Chat)> = Vec::new();
                for _ in 0..n {
                    messages.push((gen::name(u)?, gen::chat(u, None, self.max_text)?));
                }
                trace!("offline loaded {user} {} messages", messages.len());
                self.server.handle_offline_loaded(&user, messages, now);
            }
            Action::StoreOffline { to, from, chat } => {
                let outcome = match u.int_in_range(0..=5u8)? {
                    0 => StoreOutcome::Undeliverable(gen::undeliverable(u)?),
                    1 => StoreOutcome::Failed,
                    _ => StoreOutcome::Stored,
                };
                trace!("offline stored {from}->{to} {outcome:?}");
                self.server
                    .handle_offline_stored(&from, to, &chat, outcome, now);
            }
            Action::DeleteOffline { .. } => {}
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
        while let Some(t) = self.server.poll_transmit() {
            let socket = self
                .sockets
                .get_mut(&t.to.0)
                .unwrap_or_else(|| panic!("transmit to {:?}, which is not open", t.to));
            let bytes = t.payload.as_bytes().expect("the server sends bytes");
            socket.in_flight += bytes.len();
            let mut input = &bytes[..];
            while let Some(frame) = socket
                .decoder
                .decode::<ServerFrame>(&mut input)
                .unwrap_or_else(|e| panic!("server wrote an undecodable stream: {e}"))
            {
                trace!("  -> {:?} {frame:?}", t.to);
            }
        }
        // A frame may span transmits (a relayed chunk's data goes as it is, after its
        // header), but once all are taken every stream is at a frame boundary.
        for socket in self.sockets.values() {
            assert_eq!(
                socket.decoder.buffered(),
                0,
                "the transmits ended mid-frame"
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
                }
                return Ok(());
            };
            trace!("  action {action:?}");
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
        let bound = config.max_pending_output + config.max_frame + 8;
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
