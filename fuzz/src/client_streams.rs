//! `client_streams`: one [`Client`] ("bob") driven by an input-chosen sequence of server and
//! peer socket events, frames (garbage or valid, with handshake proofs right or wrong, and file
//! transfer messages direct or relayed), user actions (send, logout, offer, accept, decline or
//! cancel a file), host file work (reads, writes, hash checks; answered in order, sometimes
//! failing) and clock steps.
//!
//! The harness is a faithful host: it answers every `ConnectServer` and `Dial` exactly once
//! (inline or later), uses fresh link ids, delivers bytes only on open sockets and reports as
//! written only what it polled. It plays the far side of the peer handshake well enough to
//! bring channels up (it knows the secrets it introduced and reads the nonces the client
//! sends). Checked after every step:
//! - no panic;
//! - after `handle_timeout(now)`, `poll_timeout()` is `None` or later than `now`;
//! - bytes polled and not written stay within `max_pending_output + max_frame + 8` per socket;
//! - the core's link count equals the host's open peer sockets, and a logged-in client has a
//!   server socket;
//! - every transmitted byte stream decodes as whole frames of the right family, and the
//!   client's chats all carry one epoch;
//! - nothing is transmitted to or closed on a socket that is not open;
//! - at most one `ConnectServer` is outstanding, and no `Dial` is for this client itself;
//! - the file writes asked for one transfer are contiguous, in order;
//! - messages from one sender epoch are shown in strictly increasing sequence order (never
//!   twice), and `Delivered`/`Stored`/`Undeliverable` name a message this client sent and
//!   that was not already settled.

use crate::gen;
use crate::timers;
use crate::trace;
use arbitrary::{Result, Unstructured};
use breeze_core::auth::{setup_proof, Role};
use breeze_core::client::{Action, Client, ClientConfig, Destination, Event, FileEvent, LinkId};
use breeze_core::codec::FrameDecoder;
use breeze_core::transfer::Direction;
use breeze_core::transmit::{FileSpan, Payload};
use breeze_core::wire::{
    Bytes, ClientFrame, MessageId, PeerFrame, PeerIntro, ServerFrame, TransferId, UserName,
    PROTOCOL_VERSION,
};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

const MAX_STEPS: usize = 200;
const ME: &str = "bob";

/// The limits the harness sets: small enough that an input of a few KiB reaches them.
pub fn config(direct_channels: bool, register: bool) -> ClientConfig {
    let me = UserName::new(ME).expect("valid");
    let mut config = ClientConfig::new(me, "pw", 7002);
    config.direct_channels = direct_channels;
    config.register = register;
    config.max_pending_output = 256 * 1024;
    config.max_frame = 64 * 1024;
    config.max_text_len = 4 * 1024;
    config.max_outbox = 16;
    config.max_held = 8;
    config.max_links = 4;
    config.file_window = 96 * 1024;
    config.file_high_water = 64 * 1024;
    config.max_transfers = 3;
    config
}

struct Stream {
    decoder: FrameDecoder,
    in_flight: usize,
}

impl Stream {
    fn new(max_frame: usize) -> Self {
        Stream {
            decoder: FrameDecoder::new(max_frame),
            in_flight: 0,
        }
    }
}

struct LinkSock {
    stream: Stream,
    /// `Some(peer)` when the client dialled; `None` when the harness connected to it.
    dialed: Option<UserName>,
    /// The nonce in the client's hello (dialled) or challenge (accepted).
    client_nonce: Option<[u8; 32]>,
    /// On an accepted link: who the harness said it was, and its nonce.
    claimed: Option<(UserName, [u8; 32])>,
}

struct Harness {
    client: Client,
    me: UserName,
    now: Instant,
    max_frame: usize,
    max_text: usize,
    bound: usize,
    connect_pending: bool,
    server: Option<Stream>,
    dials: Vec<(UserName, SocketAddr)>,
    links: BTreeMap<u64, LinkSock>,
    next_link: u64,
    /// The latest secret the harness introduced per peer.
    secrets: HashMap<UserName, [u8; 32]>,
    /// The client's epoch, learned from the chats it sends.
    epoch: Option<u64>,
    /// Messages sent and not yet delivered or given up, per recipient.
    outstanding: HashMap<UserName, HashSet<MessageId>>,
    /// The last sequence number shown per (sender, epoch).
    shown: HashMap<(UserName, u64), u64>,
    /// Host file work not answered yet, oldest first (answered in order, like one disk).
    file_work: VecDeque<Action>,
    /// Where the next write of each incoming transfer must start (writes come in order).
    next_write: HashMap<(UserName, TransferId), u64>,
}

pub fn run(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let _ = drive(&mut u);
}

fn drive(u: &mut Unstructured) -> Result<()> {
    let direct_channels = !u.ratio(1, 16)?;
    let register = u.ratio(1, 8)?;
    let config = config(direct_channels, register);
    let now = Instant::now();
    let max_frame = config.max_frame;
    let mut h = Harness {
        me: config.user.clone(),
        max_frame,
        max_text: config.max_text_len + 64,
        bound: config.max_pending_output + max_frame + 8,
        client: Client::new(config, [9; 32], now),
        now,
        connect_pending: false,
        server: None,
        dials: Vec::new(),
        links: BTreeMap::new(),
        next_link: 0,
        secrets: HashMap::new(),
        epoch: None,
        outstanding: HashMap::new(),
        shown: HashMap::new(),
        file_work: VecDeque::new(),
        next_write: HashMap::new(),
    };
    trace!("client_streams: direct_channels={direct_channels} register={register}");
    h.settle(u)?;
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
    fn link(&self, u: &mut Unstructured) -> Result<Option<u64>> {
        if self.links.is_empty() {
            return Ok(None);
        }
        let i = u.choose_index(self.links.len())?;
        Ok(self.links.keys().nth(i).copied())
    }

    fn step(&mut self, u: &mut Unstructured) -> Result<()> {
        let now = self.now;
        match u.int_in_range(0..=27u8)? {
            0 => {
                if self.connect_pending {
                    self.answer_connect(u)?;
                }
            }
            1 | 2 => {
                let bytes: Vec<u8> = u.arbitrary()?;
                if self.server.is_some() {
                    trace!("server bytes {bytes:?}");
                    self.client.handle_server_bytes(&bytes, now);
                }
            }
            3..=6 => {
                let frames = self.server_frames(u)?;
                let chunks = gen::chunks(u, gen::encode_all(&frames))?;
                // As the smol driver hands over big reads: shared, chunks decoded as slices.
                let shared: bool = u.arbitrary()?;
                if self.server.is_some() {
                    trace!("server frames {frames:?} as {} chunks", chunks.len());
                    for chunk in chunks {
                        if shared {
                            self.client.handle_server_buffer(&Bytes::from(chunk), now);
                        } else {
                            self.client.handle_server_bytes(&chunk, now);
                        }
                        self.drain(u)?;
                    }
                }
            }
            7 => {
                // The usual login: hello, welcome, and the whole online list.
                if self.server.is_some() {
                    let mut peers = Vec::new();
                    for (i, name) in ["alice", "carol", "dave"].iter().enumerate() {
                        if u.ratio(3, 4)? {
                            let user = UserName::new(*name).expect("valid");
                            peers.push(self.intro(user, i as u8, u)?);
                        }
                    }
                    let frames = [
                        ServerFrame::Hello {
                            version: PROTOCOL_VERSION,
                        },
                        ServerFrame::LoginOk {
                            user: self.me.clone(),
                        },
                        ServerFrame::Presence { peers, last: true },
                    ];
                    trace!("server login {frames:?}");
                    self.client
                        .handle_server_bytes(&gen::encode_all(&frames), now);
                }
            }
            8 => {
                if self.server.take().is_some() {
                    trace!("server closed");
                    self.client.handle_server_closed(now);
                }
            }
            9 | 10 => {
                if !self.dials.is_empty() {
                    let i = u.choose_index(self.dials.len())?;
                    let (peer, addr) = self.dials.remove(i);
                    self.answer_dial(peer, addr, u)?;
                }
            }
            11 => {
                let link = self.next_link;
                self.next_link += 1;
                trace!("accepted {link}");
                self.links.insert(
                    link,
                    LinkSock {
                        stream: Stream::new(self.max_frame),
                        dialed: None,
                        client_nonce: None,
                        claimed: None,
                    },
                );
                let remote = SocketAddr::from(([10, 0, 0, 9], 50000));
                self.client.handle_accepted(LinkId(link), remote, now);
            }
            12 => {
                if let Some(link) = self.link(u)? {
                    let bytes: Vec<u8> = u.arbitrary()?;
                    trace!("link {link} bytes {bytes:?}");
                    self.client.handle_link_bytes(LinkId(link), &bytes, now);
                }
            }
            13..=15 => {
                if let Some(link) = self.link(u)? {
                    let frames = self.peer_frames(link, u)?;
                    let chunks = gen::chunks(u, gen::encode_all(&frames))?;
                    let shared: bool = u.arbitrary()?;
                    trace!("link {link} frames {frames:?} as {} chunks", chunks.len());
                    for chunk in chunks {
                        if shared {
                            let chunk = Bytes::from(chunk);
                            self.client.handle_link_buffer(LinkId(link), &chunk, now);
                        } else {
                            self.client.handle_link_bytes(LinkId(link), &chunk, now);
                        }
                        self.drain(u)?;
                    }
                }
            }
            16 => {
                if let Some(link) = self.link(u)? {
                    if let Some(frame) = self.handshake_frame(link, u)? {
                        trace!("link {link} handshake {frame:?}");
                        let bytes = gen::encode_all(&[frame]);
                        self.client.handle_link_bytes(LinkId(link), &bytes, now);
                    }
                }
            }
            17 => {
                if let Some(link) = self.link(u)? {
                    trace!("link {link} closed");
                    self.links.remove(&link);
                    self.client.handle_link_closed(LinkId(link), now);
                }
            }
            18 => {
                let dest = if u.ratio(1, 2)? {
                    self.server.as_mut().map(|s| (Destination::Server, s))
                } else {
                    match self.link(u)? {
                        Some(link) => self
                            .links
                            .get_mut(&link)
                            .map(|l| (Destination::Peer(LinkId(link)), &mut l.stream)),
                        None => None,
                    }
                };
                if let Some((dest, stream)) = dest {
                    let n = if u.ratio(1, 2)? {
                        stream.in_flight
                    } else {
                        u.int_in_range(0..=stream.in_flight)?
                    };
                    stream.in_flight -= n;
                    trace!("written {dest:?} {n}");
                    self.client.handle_written(dest, n);
                }
            }
            19 | 20 => {
                let to = gen::name(u)?;
                let len = if u.ratio(7, 8)? {
                    u.int_in_range(0..=64usize)?
                } else {
                    u.int_in_range(0..=self.max_text)?
                };
                let text = "m".repeat(len);
                let result = self.client.send(&to, text, now);
                trace!("send to {to} ({len} bytes): {result:?}");
                if let Ok(id) = result {
                    assert!(
                        self.outstanding.entry(to).or_default().insert(id),
                        "send returned {id:?} twice"
                    );
                }
            }
            21 => {
                if u.ratio(1, 4)? {
                    trace!("logout");
                    self.client.logout(now);
                }
            }
            23 => {
                let (to, id) = (gen::name(u)?, gen::transfer_id(u)?);
                let (name, size, hash) =
                    (gen::file_name(u)?, gen::file_offset(u)?, gen::bytes32(u)?);
                let result = self.client.offer_file(&to, id, name, size, hash, now);
                trace!("offer file {id:?} ({size} bytes) to {to}: {result:?}");
            }
            24 => {
                let (peer, id) = (gen::name(u)?, gen::transfer_id(u)?);
                match u.int_in_range(0..=3u8)? {
                    0 | 1 => {
                        let offset = gen::file_offset(u)?;
                        trace!("accept file {id:?} from {peer} at {offset}");
                        let result = self.client.accept_file(&peer, id, offset, now);
                        trace!("  -> {result:?}");
                    }
                    2 => {
                        let result = self.client.decline_file(&peer, id, now);
                        trace!("decline file {id:?} from {peer}: {result:?}");
                    }
                    _ => {
                        let direction = if u.arbitrary()? {
                            Direction::Sending
                        } else {
                            Direction::Receiving
                        };
                        let result = self.client.cancel_file(&peer, id, direction, now);
                        trace!("cancel file {id:?} {direction:?} with {peer}: {result:?}");
                    }
                }
            }
            25 | 26 => {
                let n = u.int_in_range(1..=4usize)?;
                for _ in 0..n {
                    let Some(work) = self.file_work.pop_front() else {
                        break;
                    };
                    self.answer_file_work(work, u)?;
                    self.drain(u)?;
                }
            }
            _ => {
                let ms = u.int_in_range(0..=20_000u64)?;
                trace!("advance {ms} ms");
                self.now += Duration::from_millis(ms);
            }
        }
        Ok(())
    }

    fn intro(&mut self, user: UserName, host: u8, u: &mut Unstructured) -> Result<PeerIntro> {
        let secret = gen::bytes32(u)?;
        self.secrets.insert(user.clone(), secret);
        Ok(PeerIntro {
            user,
            endpoint: SocketAddr::from(([10, 0, 0, 1 + host % 4], 7000 + u16::from(host % 4))),
            secret,
        })
    }

    fn server_frames(&mut self, u: &mut Unstructured) -> Result<Vec<ServerFrame>> {
        let n = u.int_in_range(1..=5u8)?;
        let mut frames = Vec::new();
        for _ in 0..n {
            let frame = match u.int_in_range(0..=20u8)? {
                18 | 19 => ServerFrame::RelayedFile {
                    from: gen::name(u)?,
                    message: gen::file_message(u, 40 * 1024)?,
                },
                20 => {
                    let (to, id) = (gen::name(u)?, gen::transfer_id(u)?);
                    if u.arbitrary()? {
                        ServerFrame::FileUndeliverable { to, id }
                    } else {
                        ServerFrame::FileThrottled {
                            to,
                            id,
                            offset: gen::file_offset(u)?,
                            retry_after_ms: u.arbitrary()?,
                        }
                    }
                }
                0 => ServerFrame::Hello {
                    version: gen::version(u)?,
                },
                1 => ServerFrame::LoginOk {
                    user: if u.ratio(3, 4)? {
                        self.me.clone()
                    } else {
                        gen::name(u)?
                    },
                },
                2 => ServerFrame::LoginRefused {
                    reason: gen::refusal(u)?,
                },
                3 | 4 => {
                    let mut peers = Vec::new();
                    for _ in 0..u.int_in_range(0..=3u8)? {
                        let user = gen::name(u)?;
                        let host = u.arbitrary()?;
                        peers.push(self.intro(user, host, u)?);
                    }
                    ServerFrame::Presence {
                        peers,
                        last: u.arbitrary()?,
                    }
                }
                5 | 6 => {
                    let user = gen::name(u)?;
                    let host = u.arbitrary()?;
                    ServerFrame::PeerOnline(self.intro(user, host, u)?)
                }
                7 => ServerFrame::PeerOffline {
                    user: gen::name(u)?,
                },
                8 | 9 => ServerFrame::Relayed {
                    from: gen::name(u)?,
                    chat: gen::chat(u, None, self.max_text)?,
                },
                10 => ServerFrame::RelayedAck {
                    from: gen::name(u)?,
                    ack: gen::ack(u, self.epoch)?,
                },
                11 | 12 => {
                    let ack = gen::ack(u, self.epoch)?;
                    let (to, seq) = (gen::name(u)?, u.int_in_range(0..=10u64)?);
                    if u.ratio(1, 2)? {
                        ServerFrame::Stored {
                            to,
                            epoch: ack.epoch,
                            seq,
                        }
                    } else {
                        ServerFrame::Undeliverable {
                            to,
                            epoch: ack.epoch,
                            seq,
                            reason: gen::undeliverable(u)?,
                        }
                    }
                }
                13 => {
                    if u.ratio(1, 4)? {
                        ServerFrame::Kicked {
                            reason: gen::kick_reason(u)?,
                        }
                    } else {
                        ServerFrame::ShuttingDown
                    }
                }
                14 => ServerFrame::Error {
                    code: gen::error_code(u)?,
                },
                _ => ServerFrame::Ping,
            };
            frames.push(frame);
        }
        Ok(frames)
    }

    /// The secret the harness last introduced for `peer`.
    fn secret(&self, peer: &UserName) -> Option<[u8; 32]> {
        self.secrets.get(peer).copied()
    }

    /// A challenge or auth frame with a correct proof, or a hello, as the link's state allows.
    fn handshake_frame(&mut self, link: u64, u: &mut Unstructured) -> Result<Option<PeerFrame>> {
        let me = self.me.clone();
        let Some(sock) = self.links.get(&link) else {
            return Ok(None);
        };
        let frame = match (&sock.dialed, &sock.claimed, sock.client_nonce) {
            (Some(peer), _, Some(dialer_nonce)) => {
                let peer = peer.clone();
                let nonce = gen::bytes32(u)?;
                let Some(secret) = self.secret(&peer) else {
                    return Ok(None);
                };
                let proof = setup_proof(&secret, Role::Acceptor, &me, &peer, &dialer_nonce, &nonce);
                PeerFrame::Challenge {
                    user: peer,
                    nonce,
                    proof,
                }
            }
            (None, None, _) => {
                let user = if u.ratio(3, 4)? {
                    UserName::new("alice").expect("valid")
                } else {
                    gen::name(u)?
                };
                let nonce = gen::bytes32(u)?;
                self.links.get_mut(&link).expect("open").claimed = Some((user.clone(), nonce));
                PeerFrame::Hello {
                    version: PROTOCOL_VERSION,
                    user,
                    nonce,
                }
            }
            (None, Some((claimed, dialer_nonce)), Some(acceptor_nonce)) => {
                let (claimed, dialer_nonce) = (claimed.clone(), *dialer_nonce);
                let Some(secret) = self.secret(&claimed) else {
                    return Ok(None);
                };
                let proof = setup_proof(
                    &secret,
                    Role::Dialer,
                    &claimed,
                    &me,
                    &dialer_nonce,
                    &acceptor_nonce,
                );
                PeerFrame::Auth { proof }
            }
            _ => return Ok(None),
        };
        Ok(Some(frame))
    }

    fn peer_frames(&mut self, link: u64, u: &mut Unstructured) -> Result<Vec<PeerFrame>> {
        let n = u.int_in_range(1..=5u8)?;
        let mut frames = Vec::new();
        for _ in 0..n {
            let frame = match u.int_in_range(0..=12u8)? {
                11 | 12 => PeerFrame::File(gen::file_message(u, 40 * 1024)?),
                0..=2 => {
                    if u.ratio(3, 4)? {
                        match self.handshake_frame(link, u)? {
                            Some(frame) => frame,
                            None => continue,
                        }
                    } else {
                        match u.int_in_range(0..=2u8)? {
                            0 => {
                                let (user, nonce) = (gen::name(u)?, gen::bytes32(u)?);
                                let sock = self.links.get_mut(&link).expect("open");
                                if sock.dialed.is_none() && sock.claimed.is_none() {
                                    sock.claimed = Some((user.clone(), nonce));
                                }
                                PeerFrame::Hello {
                                    version: gen::version(u)?,
                                    user,
                                    nonce,
                                }
                            }
                            1 => PeerFrame::Challenge {
                                user: gen::name(u)?,
                                nonce: gen::bytes32(u)?,
                                proof: gen::bytes32(u)?,
                            },
                            _ => PeerFrame::Auth {
                                proof: gen::bytes32(u)?,
                            },
                        }
                    }
                }
                3..=5 => PeerFrame::Chat(gen::chat(u, None, self.max_text)?),
                6 | 7 => PeerFrame::Ack(gen::ack(u, self.epoch)?),
                8 => PeerFrame::Bye,
                9 => PeerFrame::Error {
                    code: gen::error_code(u)?,
                },
                _ => PeerFrame::Ping,
            };
            frames.push(frame);
        }
        Ok(frames)
    }

    /// Performs one piece of host file work, successfully most of the time.
    fn answer_file_work(&mut self, work: Action, u: &mut Unstructured) -> Result<()> {
        let now = self.now;
        let ok = u.ratio(7, 8)?;
        match work {
            Action::ReadFile {
                id, offset, len, ..
            } => {
                if ok && u.arbitrary()? {
                    // As a span of the file, which the driver would send from the file.
                    trace!("file read {id:?} at {offset}, {len} bytes, as a span");
                    let span = FileSpan {
                        file: Arc::new(()),
                        offset,
                        len,
                    };
                    let span = Payload::File(span);
                    self.client.handle_file_payload(id, offset, span, now);
                } else if ok {
                    trace!("file read {id:?} at {offset}, {len} bytes");
                    self.client
                        .handle_file_read(id, offset, vec![0x5a; len], now);
                } else {
                    trace!("file read {id:?} failed");
                    self.client.handle_file_read_failed(id, now);
                }
            }
            Action::WriteFile {
                from,
                id,
                offset,
                data,
            } => {
                if ok {
                    trace!(
                        "file written {from}/{id:?} at {offset}, {} bytes",
                        data.len()
                    );
                    self.client
                        .handle_file_written(&from, id, offset, data.len(), now);
                } else {
                    trace!("file write {from}/{id:?} failed");
                    self.client.handle_file_write_failed(&from, id, now);
                }
            }
            Action::VerifyFile { from, id } => {
                trace!("file verified {from}/{id:?}: {ok}");
                self.client.handle_file_verified(&from, id, ok, now);
            }
            other => unreachable!("not file work: {other:?}"),
        }
        Ok(())
    }

    fn answer_connect(&mut self, u: &mut Unstructured) -> Result<()> {
        self.connect_pending = false;
        if u.ratio(3, 4)? {
            trace!("server connected");
            self.server = Some(Stream::new(self.max_frame));
            self.client.handle_server_connected(self.now);
        } else {
            trace!("server connect failed");
            self.client.handle_server_connect_failed(self.now);
        }
        Ok(())
    }

    fn answer_dial(
        &mut self,
        peer: UserName,
        addr: SocketAddr,
        u: &mut Unstructured,
    ) -> Result<()> {
        if u.ratio(3, 4)? {
            let link = self.next_link;
            self.next_link += 1;
            trace!("dialed {peer} at {addr} as link {link}");
            self.links.insert(
                link,
                LinkSock {
                    stream: Stream::new(self.max_frame),
                    dialed: Some(peer.clone()),
                    client_nonce: None,
                    claimed: None,
                },
            );
            self.client.handle_dialed(LinkId(link), &peer, self.now);
        } else {
            trace!("dial {peer} failed");
            self.client.handle_dial_failed(&peer, self.now);
        }
        Ok(())
    }

    fn learn_epoch(&mut self, epoch: u64) {
        match self.epoch {
            None => self.epoch = Some(epoch),
            Some(known) => assert_eq!(known, epoch, "the client's chats changed epoch"),
        }
    }

    fn take_transmits(&mut self) {
        while let Some(t) = self.client.poll_transmit() {
            // A span is written from the file, whose bytes are all 0x5a here.
            let bytes = match t.payload {
                Payload::Bytes(bytes) => bytes,
                Payload::File(span) => vec![0x5a; span.len].into(),
            };
            match t.to {
                Destination::Server => {
                    let stream = self
                        .server
                        .as_mut()
                        .expect("transmit to the server with no server socket open");
                    stream.in_flight += bytes.len();
                    let mut input = &bytes[..];
                    let mut epochs = Vec::new();
                    while let Some(frame) = stream
                        .decoder
                        .decode::<ClientFrame>(&mut input)
                        .unwrap_or_else(|e| panic!("client wrote an undecodable stream: {e}"))
                    {
                        trace!("  -> server {frame:?}");
                        if let ClientFrame::Relay { chat, .. } = &frame {
                            epochs.push(chat.epoch);
                        }
                    }
                    epochs.into_iter().for_each(|e| self.learn_epoch(e));
                }
                Destination::Peer(LinkId(link)) => {
                    let sock = self
                        .links
                        .get_mut(&link)
                        .unwrap_or_else(|| panic!("transmit to link {link}, which is not open"));
                    sock.stream.in_flight += bytes.len();
                    let mut input = &bytes[..];
                    let mut epochs = Vec::new();
                    while let Some(frame) = sock
                        .stream
                        .decoder
                        .decode::<PeerFrame>(&mut input)
                        .unwrap_or_else(|e| panic!("client wrote an undecodable stream: {e}"))
                    {
                        trace!("  -> link {link} {frame:?}");
                        match frame {
                            PeerFrame::Hello { nonce, .. } | PeerFrame::Challenge { nonce, .. } => {
                                sock.client_nonce = Some(nonce)
                            }
                            PeerFrame::Chat(chat) => epochs.push(chat.epoch),
                            _ => {}
                        }
                    }
                    epochs.into_iter().for_each(|e| self.learn_epoch(e));
                }
            }
        }
        // A frame may span transmits (a chunk's data goes as it is, after its header), but
        // once all are taken every stream is at a frame boundary.
        let server = self.server.iter().map(|s| s.decoder.buffered());
        let links = self.links.values().map(|l| l.stream.decoder.buffered());
        for buffered in server.chain(links) {
            assert_eq!(buffered, 0, "the transmits ended mid-frame");
        }
    }

    fn on_event(&mut self, event: Event) {
        trace!("  event {event:?}");
        match event {
            Event::Message { from, text, .. } => {
                if let Some((epoch, seq)) = gen::parse_text(&text) {
                    if let Some(last) = self.shown.insert((from.clone(), epoch), seq) {
                        assert!(
                            seq > last,
                            "{from} epoch {epoch}: seq {seq} shown after {last}"
                        );
                    }
                }
            }
            Event::Delivered { to, id, .. } | Event::Undeliverable { to, id, .. } => {
                let known = self
                    .outstanding
                    .get_mut(&to)
                    .is_some_and(|ids| ids.remove(&id));
                assert!(known, "{id:?} to {to} settled but not outstanding");
            }
            Event::File(FileEvent::Offered { from, id, .. }) => {
                self.next_write.remove(&(from, id));
            }
            Event::Stored { to, id } => {
                let known = self
                    .outstanding
                    .get(&to)
                    .is_some_and(|ids| ids.contains(&id));
                assert!(known, "{id:?} to {to} stored but not outstanding");
            }
            _ => {}
        }
    }

    fn drain(&mut self, u: &mut Unstructured) -> Result<()> {
        for _ in 0..10_000 {
            self.take_transmits();
            let Some(action) = self.client.poll_action() else {
                while let Some(event) = self.client.poll_event() {
                    self.on_event(event);
                }
                return Ok(());
            };
            trace!("  action {action:?}");
            match action {
                Action::ConnectServer => {
                    assert!(!self.connect_pending, "two ConnectServer outstanding");
                    assert!(
                        self.server.is_none(),
                        "ConnectServer with a server socket open"
                    );
                    self.connect_pending = true;
                    if u.ratio(1, 2)? {
                        self.answer_connect(u)?;
                    }
                }
                Action::CloseServer => {
                    assert!(
                        self.server.take().is_some(),
                        "CloseServer with no server socket"
                    );
                }
                Action::Dial { peer, addr } => {
                    assert!(peer != self.me, "dialling myself");
                    if u.ratio(1, 2)? {
                        self.answer_dial(peer, addr, u)?;
                    } else {
                        self.dials.push((peer, addr));
                    }
                }
                Action::CloseLink { link } => {
                    assert!(
                        self.links.remove(&link.0).is_some(),
                        "CloseLink for {link:?}, which is not open"
                    );
                }
                work @ (Action::ReadFile { .. }
                | Action::WriteFile { .. }
                | Action::VerifyFile { .. }) => {
                    if let Action::WriteFile {
                        from, id, offset, ..
                    } = &work
                    {
                        // Checked when asked, not when answered: the core promises the order.
                        let key = (from.clone(), *id);
                        if let Some(expected) = self.next_write.get(&key) {
                            assert_eq!(*offset, *expected, "write out of order for {key:?}");
                        }
                    }
                    if let Action::WriteFile {
                        from,
                        id,
                        offset,
                        data,
                    } = &work
                    {
                        self.next_write
                            .insert((from.clone(), *id), offset + data.len() as u64);
                    }
                    // Answered in order, inline while nothing older waits, or later.
                    self.file_work.push_back(work);
                    let backlog = self.file_work.len();
                    if backlog > 64 || (backlog == 1 && u.ratio(1, 2)?) {
                        let oldest = self.file_work.pop_front().expect("not empty");
                        self.answer_file_work(oldest, u)?;
                    }
                }
                other => trace!("unknown action {other:?}"),
            }
        }
        panic!("the client never stops producing output");
    }

    fn settle(&mut self, u: &mut Unstructured) -> Result<()> {
        let now = self.now;
        timers::fire_due(self, now, |h| &mut h.client, |h| h.drain(u))?;
        self.check();
        Ok(())
    }

    fn check(&self) {
        if let Some(stream) = &self.server {
            assert!(
                stream.in_flight <= self.bound,
                "server in flight {}",
                stream.in_flight
            );
        }
        for (link, sock) in &self.links {
            let n = sock.stream.in_flight;
            assert!(n <= self.bound, "link {link} in flight {n}");
        }
        assert_eq!(
            self.client.link_count(),
            self.links.len(),
            "the core's links differ from the host's open peer sockets"
        );
        if self.client.is_logged_in() {
            assert!(self.server.is_some(), "logged in without a server socket");
        }
    }
}
