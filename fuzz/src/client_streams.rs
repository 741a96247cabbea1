//! `client_streams`: one [`Client`] ("bob") driven by an input-chosen sequence of server and
//! peer socket events, handshake messages (right or damaged, to the right key or not), frames
//! (garbage or valid, sealed as records or not, and file transfer messages direct or relayed),
//! damaged records, user actions (send, logout, offer, accept, decline or cancel a file), host
//! file work (reads, writes, hash checks; answered in order, sometimes failing) and clock steps.
//!
//! Every link is encrypted, so the harness plays the far end of each handshake ([`FarEnd`]):
//! the server's side of XX (with the usual server key, or sometimes another: a changed key,
//! which the client must refuse once it pinned one), the acceptor's side of IK on links the
//! client dials (holding every key it ever introduces, so it can read a first message written
//! to any), and the dialer's side on links it opens to the client (as an input-chosen user,
//! proving an input-chosen key, written to the client's key or another). Each socket is *auto*
//! (the harness answers the handshake at once, so what the input sends next is sealed and
//! reaches the decoders and state machines behind the encryption) or *manual* (handshake
//! messages go only on input-chosen steps, possibly damaged, and raw input bytes hit the
//! handshake itself).
//!
//! The harness is a faithful host: it answers every `ConnectServer` and `Dial` exactly once
//! (inline or later), uses fresh link ids, delivers bytes only on open sockets and reports as
//! written only what it polled. Checked after every step:
//! - no panic;
//! - after `handle_timeout(now)`, `poll_timeout()` is `None` or later than `now`;
//! - bytes polled and not written stay within `max_pending_output + max_frame + 8 +
//!   ENCRYPTION_SLACK` per socket;
//! - the core's link count equals the host's open peer sockets, and a logged-in client has a
//!   server socket;
//! - every transmit is whole records and never a file span (nothing goes unsealed); once a
//!   handshake is through every record opens and the plaintext decodes as whole frames of the
//!   right family, and the client's chats all carry one epoch (before that, as long as the
//!   client got only our own messages, its handshake messages read as the next of the pattern);
//! - the client finishes a server handshake only with the key it pins (or, pinning none, learns
//!   the key it met and reports it); a dial is written to a key introduced for that peer and
//!   proves the client's own key and name; the client answers a dialer only if it proved a key
//!   introduced for the user it claims to be;
//! - damaged records (a flipped bit, one cut short, swapped, dropped, repeated or replayed)
//!   close that link or server connection, for a record error, and leave the server connection
//!   alone when they came on a peer link;
//! - nothing is transmitted to or closed on a socket that is not open;
//! - at most one `ConnectServer` is outstanding, and no `Dial` is for this client itself;
//! - the file writes asked for one transfer are contiguous, in order;
//! - messages from one sender epoch are shown in strictly increasing sequence order (never
//!   twice), and `Delivered`/`Stored`/`Undeliverable` name a message this client sent and
//!   that was not already settled.

use crate::gen::{self, keys};
use crate::link::{self, tamper, FarEnd, FarError, Tamper};
use crate::server_streams::ENCRYPTION_SLACK;
use crate::timers;
use crate::trace;
use arbitrary::{Result, Unstructured};
use breeze_core::client::{
    Action, Client, ClientConfig, Destination, Event, FileEvent, LinkError, LinkId, RouteReason,
    ServerLinkError,
};
use breeze_core::codec::FrameDecoder;
use breeze_core::secure::{LinkKind, PublicKey};
use breeze_core::transfer::Direction;
use breeze_core::transmit::{FileSpan, Payload};
use breeze_core::wire::{
    ClientFrame, ClosingReason, MessageId, PeerFrame, PeerIntro, ServerFrame, TransferId, UserName,
    PROTOCOL_VERSION,
};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
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

/// The server socket: the harness is the server's end of XX.
struct ServerSock {
    stream: Stream,
    far: FarEnd,
    /// Answer the handshake at once.
    auto: bool,
}

struct LinkSock {
    stream: Stream,
    far: FarEnd,
    auto: bool,
    /// `Some(peer)` when the client dialled; `None` when the harness connected to it.
    dialed: Option<UserName>,
    /// On an accepted link: the name the harness's first message claims (its payload).
    claimed: Vec<u8>,
}

struct Harness {
    client: Client,
    me: UserName,
    now: Instant,
    max_frame: usize,
    max_text: usize,
    bound: usize,
    connect_pending: bool,
    server: Option<ServerSock>,
    /// Server connections made so far (to tell a new one from the old).
    server_generation: u64,
    /// The server key of the latest server connection.
    serving: PublicKey,
    /// The key the client pins: from its configuration, or learned.
    pinned: Option<PublicKey>,
    dials: Vec<(UserName, SocketAddr)>,
    links: BTreeMap<u64, LinkSock>,
    next_link: u64,
    /// Every key the harness introduced per user.
    introduced: HashMap<UserName, HashSet<PublicKey>>,
    /// The harness key (by index) it last introduced per user.
    latest: HashMap<UserName, usize>,
    next_seed: u64,
    /// Events of the current step.
    step_events: Vec<Event>,
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
    let mut config = config(direct_channels, register);
    // An enrolled profile logs in with its key, a new one with the password.
    config.key_login = u.ratio(1, 4)?;
    // The pin: none mostly (trust on first use), else the usual server key or another.
    config.server_key = match u.int_in_range(0..=7u8)? {
        0 => Some(keys().servers[0].public()),
        1 => Some(keys().servers[1].public()),
        _ => None,
    };
    if u.ratio(1, 4)? {
        let alice = UserName::new("alice").expect("valid");
        config.peer_keys = vec![(alice, keys().users[gen::user_key(u)?].public())];
    }
    let pinned = config.server_key;
    let now = Instant::now();
    let max_frame = config.max_frame;
    let mut h = Harness {
        me: config.user.clone(),
        max_frame,
        max_text: config.max_text_len + 64,
        bound: config.max_pending_output + max_frame + 8 + ENCRYPTION_SLACK,
        client: Client::new(config, keys().me.clone(), [9; 32], now),
        now,
        connect_pending: false,
        server: None,
        server_generation: 0,
        serving: keys().servers[0].public(),
        pinned,
        dials: Vec::new(),
        links: BTreeMap::new(),
        next_link: 0,
        introduced: HashMap::new(),
        latest: HashMap::new(),
        next_seed: 1,
        step_events: Vec::new(),
        epoch: None,
        outstanding: HashMap::new(),
        shown: HashMap::new(),
        file_work: VecDeque::new(),
        next_write: HashMap::new(),
    };
    trace!("client_streams: direct_channels={direct_channels} register={register} pin={pinned:?}");
    h.settle(u)?;
    for _ in 0..MAX_STEPS {
        if u.is_empty() {
            break;
        }
        h.step_events.clear();
        h.step(u)?;
        h.settle(u)?;
    }
    Ok(())
}

/// The index of `key` among the harness's user keys.
fn held(key: &PublicKey) -> Option<usize> {
    keys().users.iter().position(|k| k.public() == *key)
}

impl Harness {
    fn link(&self, u: &mut Unstructured) -> Result<Option<u64>> {
        if self.links.is_empty() {
            return Ok(None);
        }
        let i = u.choose_index(self.links.len())?;
        Ok(self.links.keys().nth(i).copied())
    }

    fn seed(&mut self) -> u64 {
        self.next_seed += 1;
        self.next_seed
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
                // Garbage: raw, or sealed behind a finished handshake.
                let bytes: Vec<u8> = u.arbitrary()?;
                let sealed: bool = u.arbitrary()?;
                if let Some(sock) = self.server.as_mut() {
                    let bytes = if sealed && sock.far.is_open() {
                        let cuts = link::cuts(u, bytes.len())?;
                        sock.far.garble();
                        sock.far.seal(&bytes, &cuts).concat()
                    } else {
                        sock.far.taint();
                        bytes
                    };
                    trace!("server bytes {bytes:?} (sealed: {sealed})");
                    self.client.handle_server_bytes(&bytes, now);
                }
            }
            3..=6 => {
                let frames = self.server_frames(u)?;
                let plain = gen::encode_all(&frames);
                let Some(sock) = self.server.as_mut() else {
                    return Ok(());
                };
                let (chunks, damage) = seal_or_not(u, &mut sock.far, plain)?;
                // As the smol driver hands over big reads: shared, chunks decoded as slices.
                let shared: bool = u.arbitrary()?;
                trace!(
                    "server frames {frames:?} as {} chunks (damage: {damage:?})",
                    chunks.len()
                );
                let generation = self.server_generation;
                self.deliver_server(chunks, shared, u)?;
                if damage.is_some() {
                    assert!(
                        self.server_generation != generation || self.server.is_none(),
                        "the server connection is still open after damaged records ({damage:?})"
                    );
                }
            }
            7 => {
                // The usual login: the handshake, hello, welcome, and the whole online list.
                self.complete_server_handshake(u)?;
                let mut peers = Vec::new();
                for (i, name) in ["alice", "carol", "dave"].iter().enumerate() {
                    if u.ratio(3, 4)? {
                        let user = UserName::new(*name).expect("valid");
                        peers.push(self.intro(user, i as u8, u)?);
                    }
                }
                let Some(sock) = self.server.as_mut().filter(|s| s.far.is_open()) else {
                    return Ok(());
                };
                let frames = [
                    ServerFrame::Hello {
                        version: PROTOCOL_VERSION,
                    },
                    ServerFrame::LoginOk {
                        user: self.me.clone(),
                    },
                    ServerFrame::Presence {
                        peers,
                        last: true,
                        everyone: true,
                    },
                ];
                trace!("server login {frames:?}");
                let records = sock.far.seal(&gen::encode_all(&frames), &[]);
                self.client.handle_server_bytes(&records.concat(), now);
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
            11 => self.connect_to_client(u)?,
            12 => {
                if let Some(link) = self.link(u)? {
                    let bytes: Vec<u8> = u.arbitrary()?;
                    let sealed: bool = u.arbitrary()?;
                    let sock = self.links.get_mut(&link).expect("open");
                    let bytes = if sealed && sock.far.is_open() {
                        let cuts = link::cuts(u, bytes.len())?;
                        sock.far.garble();
                        sock.far.seal(&bytes, &cuts).concat()
                    } else {
                        sock.far.taint();
                        bytes
                    };
                    trace!("link {link} bytes {bytes:?} (sealed: {sealed})");
                    self.client.handle_link_bytes(LinkId(link), &bytes, now);
                }
            }
            13..=15 => {
                if let Some(link) = self.link(u)? {
                    let frames = self.peer_frames(u)?;
                    let plain = gen::encode_all(&frames);
                    let sock = self.links.get_mut(&link).expect("open");
                    let (chunks, damage) = seal_or_not(u, &mut sock.far, plain)?;
                    let shared: bool = u.arbitrary()?;
                    trace!(
                        "link {link} frames {frames:?} as {} chunks (damage: {damage:?})",
                        chunks.len()
                    );
                    self.deliver_link(link, chunks, shared, u)?;
                    if damage.is_some() {
                        assert!(
                            !self.links.contains_key(&link),
                            "link {link} is still open after damaged records ({damage:?})"
                        );
                    }
                }
            }
            16 => self.handshake_step(u)?,
            17 => {
                if let Some(link) = self.link(u)? {
                    trace!("link {link} closed");
                    self.links.remove(&link);
                    self.client.handle_link_closed(LinkId(link), now);
                }
            }
            18 => {
                let dest = if u.ratio(1, 2)? {
                    self.server
                        .as_mut()
                        .map(|s| (Destination::Server, &mut s.stream))
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
            21 if u.ratio(1, 2)? => {
                let group = gen::group_id(u)?;
                let text = "g".repeat(u.int_in_range(0..=64usize)?);
                let result = self.client.send_group(group, text, now);
                trace!("send to group {group}: {result:?}");
                if u.ratio(1, 4)? {
                    let request = gen::group_request(u)?;
                    let result = self.client.group_request(request, now);
                    trace!("group request: {result:?}");
                }
            }
            21 => {
                if u.ratio(1, 4)? {
                    trace!("logout");
                    self.client.logout(now);
                } else if u.ratio(1, 4)? {
                    // As a host does after `KeyNotEnrolled`, once its user gave the password.
                    trace!("log in with the password");
                    self.client.log_in_with_password("pw".into(), false, now);
                }
            }
            22 => self.damaged_records(u)?,
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

    /// Hands `chunks` to the client from the server (while that socket is open), draining
    /// after each.
    fn deliver_server(
        &mut self,
        chunks: Vec<Vec<u8>>,
        shared: bool,
        u: &mut Unstructured,
    ) -> Result<()> {
        let generation = self.server_generation;
        for chunk in chunks {
            if self.server.is_none() || self.server_generation != generation {
                break;
            }
            if shared {
                let (buffer, len) = crate::server_streams::handed_over(chunk);
                self.client.handle_server_buffer(buffer, len, self.now);
            } else {
                self.client.handle_server_bytes(&chunk, self.now);
            }
            self.drain(u)?;
        }
        Ok(())
    }

    /// Hands `chunks` to the client on `link` (while open), draining after each.
    fn deliver_link(
        &mut self,
        link: u64,
        chunks: Vec<Vec<u8>>,
        shared: bool,
        u: &mut Unstructured,
    ) -> Result<()> {
        for chunk in chunks {
            if !self.links.contains_key(&link) {
                break;
            }
            if shared {
                let (buffer, len) = crate::server_streams::handed_over(chunk);
                self.client
                    .handle_link_buffer(LinkId(link), buffer, len, self.now);
            } else {
                self.client
                    .handle_link_bytes(LinkId(link), &chunk, self.now);
            }
            self.drain(u)?;
        }
        Ok(())
    }

    /// Our answer to the client's first server handshake message, if it is due.
    fn complete_server_handshake(&mut self, u: &mut Unstructured) -> Result<()> {
        let Some(sock) = self.server.as_mut() else {
            return Ok(());
        };
        if let Some(message) = sock.far.next_message(&[]) {
            trace!("server handshake {} bytes", message.len());
            self.client.handle_server_bytes(&message, self.now);
            self.drain(u)?;
        }
        Ok(())
    }

    /// The next handshake message on the server socket or a link, if it is ours: sometimes with
    /// a payload, sometimes damaged, in chunks.
    fn handshake_step(&mut self, u: &mut Unstructured) -> Result<()> {
        let to_server = u.ratio(1, 3)?;
        let link = if to_server { None } else { self.link(u)? };
        let with_payload = u.ratio(1, 8)?;
        let damage = u.ratio(1, 4)?;
        let far = match link {
            Some(link) => self.links.get_mut(&link).map(|l| {
                let payload = match l.far.written() {
                    0 if l.dialed.is_none() => l.claimed.clone(),
                    _ => Vec::new(),
                };
                (&mut l.far, payload)
            }),
            None => self.server.as_mut().map(|s| (&mut s.far, Vec::new())),
        };
        let Some((far, mut payload)) = far else {
            return Ok(());
        };
        if with_payload {
            payload = u.arbitrary()?;
        }
        let Some(mut message) = far.next_message(&payload) else {
            return Ok(());
        };
        if damage {
            link::tamper_message(u, &mut message)?;
        }
        let chunks = gen::chunks(u, message.clone())?;
        if damage || chunks.concat() != message {
            far.taint();
        }
        trace!(
            "handshake to {link:?} (damaged: {damage}) in {} chunks",
            chunks.len()
        );
        match link {
            Some(link) => self.deliver_link(link, chunks, false, u),
            None => self.deliver_server(chunks, false, u),
        }
    }

    /// The harness connects to the client's P2P port as some user, proving some key, written
    /// to the client's key (mostly) or another.
    fn connect_to_client(&mut self, u: &mut Unstructured) -> Result<()> {
        let link = self.next_link;
        self.next_link += 1;
        let claimed = match u.int_in_range(0..=15u8)? {
            0 => u.arbitrary::<Vec<u8>>()?,
            1..=3 => gen::name(u)?.as_str().as_bytes().to_vec(),
            _ => b"alice".to_vec(),
        };
        let user = std::str::from_utf8(&claimed)
            .ok()
            .and_then(|n| UserName::new(n).ok());
        let key = match user.as_ref().and_then(|user| self.latest.get(user)) {
            Some(latest) if u.ratio(3, 4)? => *latest,
            _ => gen::user_key(u)?,
        };
        let to = if u.ratio(15, 16)? {
            keys().me.public()
        } else {
            keys().users[gen::user_key(u)?].public()
        };
        let auto = u.ratio(3, 4)?;
        let seed = self.seed();
        let far = FarEnd::initiator(LinkKind::Peer, &keys().users[key], Some(&to), seed);
        trace!("accepted {link}: claims {claimed:?} with key {key} (auto: {auto})");
        self.links.insert(
            link,
            LinkSock {
                stream: Stream::new(self.max_frame),
                far,
                auto,
                dialed: None,
                claimed,
            },
        );
        let remote = SocketAddr::from(([10, 0, 0, 9], 50000));
        self.client.handle_accepted(LinkId(link), remote, self.now);
        Ok(())
    }

    /// Pings in records of which one is damaged, on the server connection or a link whose
    /// handshake is through: it is closed for the record, and a link's damage leaves the server
    /// connection alone (unless that is a slow consumer).
    fn damaged_records(&mut self, u: &mut Unstructured) -> Result<()> {
        let to_server = u.ratio(1, 2)?;
        let link = if to_server { None } else { self.link(u)? };
        let (plain, far) = match link {
            Some(link) => {
                let pings = vec![PeerFrame::Ping; u.int_in_range(1..=4usize)?];
                let far = self.links.get_mut(&link).map(|l| &mut l.far);
                (gen::encode_all(&pings), far)
            }
            None => {
                let pings = vec![ServerFrame::Ping; u.int_in_range(1..=4usize)?];
                let far = self.server.as_mut().map(|s| &mut s.far);
                (gen::encode_all(&pings), far)
            }
        };
        let Some(far) = far.filter(|far| far.is_open()) else {
            return Ok(());
        };
        let in_sync = far.in_sync();
        let frames_whole = far.frames_whole();
        let cuts = link::cuts(u, plain.len())?;
        let old = far.kept();
        let mut records = far.seal(&plain, &cuts);
        let damage = tamper(u, &mut records, &old)?;
        if !damage.must_be_noticed() {
            far.taint();
        }
        let chunks = gen::split(u, records.concat())?;
        trace!(
            "damaged records to {link:?}: {damage:?} in {} chunks",
            chunks.len()
        );
        let generation = self.server_generation;
        let server_open = self.server.is_some();
        let links_before: BTreeSet<u64> = self.links.keys().copied().collect();
        self.step_events.clear();
        match link {
            Some(link) => self.deliver_link(link, chunks, false, u)?,
            None => self.deliver_server(chunks, false, u)?,
        }
        if !in_sync || !damage.must_be_noticed() {
            return Ok(());
        }
        let server_slow = self.step_events.iter().any(|e| {
            matches!(
                e,
                Event::ServerLost {
                    error: ServerLinkError::SlowConsumer,
                    ..
                }
            )
        });
        let server_still_open = self.server.is_some() && self.server_generation == generation;
        match link {
            Some(link) => {
                assert!(
                    !self.links.contains_key(&link),
                    "link {link} is still open after {damage:?}"
                );
                let rejected = self.step_events.iter().any(|e| {
                    matches!(
                        e,
                        Event::PeerRejected {
                            error: LinkError::Record(_),
                            ..
                        }
                    )
                });
                // (Sealed garbage earlier may have left part of a frame, which the pings
                // complete.)
                assert!(
                    rejected || !frames_whole,
                    "link {link} closed after {damage:?}, not for the record"
                );
                if server_open && !server_slow {
                    assert!(
                        server_still_open,
                        "the server connection closed when records of link {link} were damaged"
                    );
                }
            }
            None => {
                assert!(
                    !server_still_open,
                    "the server connection is still open after {damage:?}"
                );
                let lost = self.step_events.iter().any(|e| {
                    matches!(
                        e,
                        Event::ServerLost {
                            error: ServerLinkError::Record(_),
                            ..
                        }
                    )
                });
                assert!(
                    lost || !frames_whole,
                    "the server connection closed after {damage:?}, not for the record"
                );
                let links_slow = self.step_events.iter().any(|e| {
                    matches!(
                        e,
                        Event::Route {
                            reason: RouteReason::ChannelLost(LinkError::SlowConsumer),
                            ..
                        }
                    )
                });
                if !links_slow {
                    for other in links_before {
                        assert!(
                            self.links.contains_key(&other),
                            "link {other} closed when records from the server were damaged"
                        );
                    }
                }
            }
        }
        Ok(())
    }

    /// An introduction of `user`, with a key the harness holds (mostly) or not.
    fn intro(&mut self, user: UserName, host: u8, u: &mut Unstructured) -> Result<PeerIntro> {
        let key = gen::intro_key(u, None)?;
        self.introduced.entry(user.clone()).or_default().insert(key);
        if let Some(i) = held(&key) {
            self.latest.insert(user.clone(), i);
        }
        Ok(gen::intro(user, host, key))
    }

    fn server_frames(&mut self, u: &mut Unstructured) -> Result<Vec<ServerFrame>> {
        let n = u.int_in_range(1..=5u8)?;
        let mut frames = Vec::new();
        for _ in 0..n {
            let frame = match u.int_in_range(0..=26u8)? {
                21 => ServerFrame::Group {
                    info: gen::group_info(u, &self.me)?,
                    by: if u.arbitrary()? {
                        Some(gen::name(u)?)
                    } else {
                        None
                    },
                },
                22 => {
                    if u.arbitrary()? {
                        ServerFrame::GroupsListed
                    } else {
                        ServerFrame::GroupGone {
                            group: gen::group_id(u)?,
                            name: gen::group_name(u)?,
                            by: gen::name(u)?,
                        }
                    }
                }
                23 | 24 => {
                    let group = gen::group_id(u)?;
                    let me = self.me.clone();
                    let (key, message) = gen::group_message(u, group, &me, &keys().me.public())?;
                    let from = gen::name(u)?;
                    self.introduced.entry(from.clone()).or_default().insert(key);
                    ServerFrame::GroupMessage(breeze_core::wire::OrderedGroupMessage {
                        group,
                        order: u.int_in_range(0..=30u64)?,
                        from,
                        key,
                        message,
                    })
                }
                25 => {
                    let (group, epoch) = (gen::group_id(u)?, self.epoch.unwrap_or(0));
                    let seq = u.int_in_range(0..=10u64)?;
                    match u.int_in_range(0..=2u8)? {
                        0 => ServerFrame::GroupAccepted {
                            group,
                            epoch,
                            through: seq,
                        },
                        1 => ServerFrame::GroupRekey {
                            group,
                            epoch,
                            from_seq: seq,
                            version: u.int_in_range(0..=5u64)?,
                        },
                        _ => ServerFrame::GroupSendRefused {
                            group,
                            epoch,
                            from_seq: seq,
                            error: gen::group_error(u)?,
                        },
                    }
                }
                26 => {
                    if u.arbitrary()? {
                        ServerFrame::GroupDelivered {
                            group: gen::group_id(u)?,
                            id: breeze_core::wire::MessageId(u.int_in_range(0..=20u64)?),
                            delivered: u.arbitrary()?,
                            members: u.arbitrary()?,
                        }
                    } else {
                        ServerFrame::GroupRefused {
                            request_id: u.arbitrary()?,
                            error: gen::group_error(u)?,
                        }
                    }
                }
                18 | 19 => {
                    let (key, message) = gen::sealed_file(u, 40 * 1024, &keys().me.public())?;
                    let from = gen::name(u)?;
                    // The server vouches for the sender's key: note it like an introduction.
                    self.introduced.entry(from.clone()).or_default().insert(key);
                    ServerFrame::RelayedFile { from, key, message }
                }
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
                        everyone: u.arbitrary()?,
                    }
                }
                5 | 6 => {
                    let user = gen::name(u)?;
                    let host = u.arbitrary()?;
                    ServerFrame::PresenceChanged {
                        online: vec![self.intro(user, host, u)?],
                        offline: Vec::new(),
                    }
                }
                7 => ServerFrame::PresenceChanged {
                    online: Vec::new(),
                    offline: vec![gen::name(u)?],
                },
                8 | 9 => {
                    let (key, chat) = gen::sealed_chat(u, self.max_text, &keys().me.public())?;
                    let from = gen::name(u)?;
                    // The server vouches for the sender's key: note it like an introduction.
                    self.introduced.entry(from.clone()).or_default().insert(key);
                    ServerFrame::Relayed { from, key, chat }
                }
                10 => ServerFrame::RelayedAck {
                    from: gen::name(u)?,
                    ack: gen::sealed_ack(u, self.epoch, &keys().me.public())?,
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

    fn peer_frames(&mut self, u: &mut Unstructured) -> Result<Vec<PeerFrame>> {
        let n = u.int_in_range(1..=5u8)?;
        let mut frames = Vec::new();
        for _ in 0..n {
            let frame = match u.int_in_range(0..=10u8)? {
                8 | 9 => PeerFrame::File(gen::file_message(u, 40 * 1024)?),
                10 => PeerFrame::Closing(if u.arbitrary()? {
                    ClosingReason::Idle
                } else {
                    ClosingReason::Evicted
                }),
                0..=2 => PeerFrame::Chat(gen::chat(u, None, self.max_text)?),
                3 | 4 => PeerFrame::Ack(gen::ack(u, self.epoch)?),
                5 => PeerFrame::Bye,
                6 => PeerFrame::Error {
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
                id,
                offset,
                len,
                direct,
            } => {
                // A span only where the core asked for one (never, on encrypted links).
                if ok && direct && u.arbitrary()? {
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
            // Mostly the usual server key; sometimes another (the key changed).
            let key = usize::from(u.ratio(1, 8)?);
            let auto = u.ratio(3, 4)?;
            trace!("server connected (key {key}, auto: {auto})");
            let seed = self.seed();
            let far = FarEnd::responder(
                LinkKind::ClientServer,
                vec![keys().servers[key].clone()],
                seed,
            );
            self.server = Some(ServerSock {
                stream: Stream::new(self.max_frame),
                far,
                auto,
            });
            self.server_generation += 1;
            self.serving = keys().servers[key].public();
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
            let auto = u.ratio(3, 4)?;
            trace!("dialed {peer} at {addr} as link {link} (auto: {auto})");
            // The acceptor holds every key the harness introduces: whichever the client wrote
            // to, it can answer.
            let seed = self.seed();
            let far = FarEnd::responder(LinkKind::Peer, keys().users.to_vec(), seed);
            self.links.insert(
                link,
                LinkSock {
                    stream: Stream::new(self.max_frame),
                    far,
                    auto,
                    dialed: Some(peer.clone()),
                    claimed: Vec::new(),
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
            // Every link is encrypted: nothing may go from a file to the socket unsealed.
            let bytes = match t.payload {
                Payload::Bytes(bytes) => bytes,
                Payload::File(span) => {
                    panic!("a file span of {} bytes to {:?}, unsealed", span.len, t.to)
                }
            };
            match t.to {
                Destination::Server => self.from_client_to_server(&bytes),
                Destination::Peer(LinkId(link)) => self.from_client_on_link(link, &bytes),
            }
        }
        // A frame may span transmits (a chunk's data goes as it is, after its header), but
        // once all are taken every stream is at a frame boundary, and every transmit is whole
        // records.
        let server = self.server.iter().map(|s| (&s.stream, &s.far));
        let links = self.links.values().map(|l| (&l.stream, &l.far));
        for (stream, far) in server.chain(links) {
            assert!(far.at_record_boundary(), "a transmit ended mid-record");
            assert_eq!(
                stream.decoder.buffered(),
                0,
                "the transmits ended mid-frame"
            );
        }
    }

    fn from_client_to_server(&mut self, bytes: &[u8]) {
        let pinned = self.pinned;
        let serving = self.serving;
        let sock = self
            .server
            .as_mut()
            .expect("transmit to the server with no server socket open");
        sock.stream.in_flight += bytes.len();
        let (open, pristine) = (sock.far.is_open(), sock.far.is_pristine());
        let plain = match sock.far.read(bytes) {
            Ok(plain) => plain,
            Err(error) if open || pristine => {
                panic!("the client wrote what its server cannot read ({error}; open: {open})")
            }
            Err(error) => {
                trace!("  -> server no longer followed: {error}");
                Vec::new()
            }
        };
        if !open && sock.far.is_open() {
            // The client's last handshake message: it went on with this server.
            assert!(
                pinned.is_none_or(|p| p == serving),
                "the client finished a handshake with {serving:?}, pinning {pinned:?}"
            );
            assert_eq!(
                sock.far.remote(),
                Some(keys().me.public()),
                "the client's key"
            );
        }
        let mut input = &plain[..];
        let mut epochs = Vec::new();
        while let Some(frame) = sock
            .stream
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

    fn from_client_on_link(&mut self, link: u64, bytes: &[u8]) {
        let sock = self
            .links
            .get_mut(&link)
            .unwrap_or_else(|| panic!("transmit to link {link}, which is not open"));
        sock.stream.in_flight += bytes.len();
        let (open, pristine) = (sock.far.is_open(), sock.far.is_pristine());
        let read_before = sock.far.payloads().len();
        let plain = match sock.far.read(bytes) {
            Ok(plain) => plain,
            Err(FarError::NoKey) if pristine => {
                // The client wrote to a key the harness does not hold: one it was introduced.
                let peer = sock
                    .dialed
                    .as_ref()
                    .expect("only an acceptor chooses its key");
                let unheld = self
                    .introduced
                    .get(peer)
                    .is_some_and(|keys| keys.iter().any(|k| held(k).is_none()));
                assert!(
                    unheld,
                    "link {link}: dialled {peer} with a key never introduced"
                );
                Vec::new()
            }
            Err(error) if open || pristine => panic!(
                "link {link}: the client wrote what its peer cannot read ({error}; open: {open})"
            ),
            Err(error) => {
                trace!("  -> link {link} no longer followed: {error}");
                Vec::new()
            }
        };
        let sock = self.links.get(&link).expect("open");
        if read_before == 0 && sock.far.payloads().len() == 1 {
            let local = sock.far.local().expect("a key was chosen");
            match &sock.dialed {
                Some(peer) => {
                    // The client's first message: to a key introduced for the peer it dialled,
                    // proving its own key and naming itself.
                    assert!(
                        self.introduced
                            .get(peer)
                            .is_some_and(|k| k.contains(&local)),
                        "link {link}: dialled {peer} with a key never introduced for it"
                    );
                    assert_eq!(
                        sock.far.remote(),
                        Some(keys().me.public()),
                        "the dialer's key"
                    );
                    assert_eq!(
                        sock.far.payloads()[0],
                        self.me.as_str().as_bytes(),
                        "the dialer's name"
                    );
                }
                None => {
                    // The client answered our first message: we claimed a user whose
                    // introduced key we proved.
                    let claimed = std::str::from_utf8(&sock.claimed)
                        .ok()
                        .and_then(|n| UserName::new(n).ok());
                    let claimed = claimed.expect("the client answered an invalid user name");
                    assert!(
                        claimed != self.me,
                        "the client answered a dialer claiming to be it"
                    );
                    assert!(
                        self.introduced
                            .get(&claimed)
                            .is_some_and(|k| k.contains(&local)),
                        "link {link}: answered {claimed}, proving a key never introduced for it"
                    );
                }
            }
        }
        let sock = self.links.get_mut(&link).expect("open");
        let mut input = &plain[..];
        let mut epochs = Vec::new();
        while let Some(frame) = sock
            .stream
            .decoder
            .decode::<PeerFrame>(&mut input)
            .unwrap_or_else(|e| panic!("client wrote an undecodable stream: {e}"))
        {
            trace!("  -> link {link} {frame:?}");
            if let PeerFrame::Chat(chat) = frame {
                epochs.push(chat.epoch);
            }
        }
        epochs.into_iter().for_each(|e| self.learn_epoch(e));
    }

    /// The handshake messages due on auto sockets; whether any went.
    fn pump(&mut self) -> bool {
        if let Some(sock) = self.server.as_mut().filter(|s| s.auto) {
            if let Some(message) = sock.far.next_message(&[]) {
                trace!("server handshake {} bytes", message.len());
                self.client.handle_server_bytes(&message, self.now);
                return true;
            }
        }
        let due = self
            .links
            .iter()
            .find(|(_, l)| l.auto && l.far.our_turn())
            .map(|(id, _)| *id);
        if let Some(link) = due {
            let sock = self.links.get_mut(&link).expect("open");
            let payload = match sock.far.written() {
                0 if sock.dialed.is_none() => sock.claimed.clone(),
                _ => Vec::new(),
            };
            if let Some(message) = sock.far.next_message(&payload) {
                trace!("link {link} handshake {} bytes", message.len());
                self.client
                    .handle_link_bytes(LinkId(link), &message, self.now);
                return true;
            }
        }
        false
    }

    fn on_event(&mut self, event: Event) {
        trace!("  event {event:?}");
        self.step_events.push(event.clone());
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
            Event::ServerKeyLearned { key } => {
                assert_eq!(self.pinned, None, "learned a server key while pinning one");
                assert_eq!(key, self.serving, "learned a key the server did not prove");
                self.pinned = Some(key);
            }
            Event::ServerKeyChanged {
                expected,
                presented,
            } => {
                let pinned = self.pinned.map(|key| key.fingerprint());
                assert_eq!(Some(expected), pinned, "a pin the client did not have");
                assert_eq!(presented, self.serving, "a key the server did not present");
                assert_ne!(
                    expected,
                    presented.fingerprint(),
                    "the pinned key reported as changed"
                );
            }
            Event::PeerKeyLearned { user, key } | Event::PeerKeyChanged { user, new: key, .. } => {
                assert!(
                    self.introduced.get(&user).is_some_and(|k| k.contains(&key)),
                    "{user}'s key {key:?} learned, never introduced"
                );
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
                // Auto sockets answer handshakes once the client has said all it had to (a
                // link it closed is no longer in `links`).
                if self.pump() {
                    continue;
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
        if let Some(sock) = &self.server {
            let n = sock.stream.in_flight;
            assert!(n <= self.bound, "server in flight {n}");
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

/// `plain` sealed as records behind a finished handshake (mostly), sometimes damaged; in the
/// clear before the handshake, or sometimes instead of records after it.
///
/// Returned in chunks (only cut when damaged, so the damaged record arrives), with the damage
/// if the core must notice it (it got exactly our records before).
fn seal_or_not(
    u: &mut Unstructured,
    far: &mut FarEnd,
    plain: Vec<u8>,
) -> Result<(Vec<Vec<u8>>, Option<Tamper>)> {
    let in_sync = far.in_sync();
    let (bytes, damage) = if far.is_open() && !u.ratio(1, 16)? {
        let cuts = link::cuts(u, plain.len())?;
        let old = far.kept();
        let mut records = far.seal(&plain, &cuts);
        let damage = match u.ratio(1, 8)? {
            true => Some(tamper(u, &mut records, &old)?),
            false => None,
        };
        (records.concat(), damage)
    } else {
        far.taint();
        (plain, None)
    };
    let chunks = match damage {
        Some(_) => gen::split(u, bytes.clone())?,
        None => gen::chunks(u, bytes.clone())?,
    };
    if chunks.concat() != bytes || damage.is_some_and(|d| !d.must_be_noticed()) {
        far.taint();
    }
    Ok((chunks, damage.filter(|d| in_sync && d.must_be_noticed())))
}
