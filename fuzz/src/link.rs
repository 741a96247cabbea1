//! The harness's end of one encrypted connection to a core, and ways to damage what it sends.
//!
//! A [`FarEnd`] plays the other side of a link with the core's own public pieces
//! (`breeze_core::secure`): it writes its handshake messages when the harness says so, reads
//! the core's, and once the handshake is through seals what the harness sends and opens what
//! the core writes. What it reads is held to the protocol:
//! - once the handshake is through, every record the core writes must open: a failure is a
//!   core bug (the core cannot have other keys: both sides' keys come from one transcript);
//! - before that, the core's handshake messages must read as the next of the pattern as long
//!   as the core got nothing but our own messages, untouched and in order (the end is
//!   *pristine*); after any damage or stray bytes the harness only stops following (*lost*).
//!
//! [`seal`](FarEnd::seal) cuts the plaintext into records at input-chosen points (frames
//! span records, records hold many frames), and [`tamper`] damages a list of records in a way
//! the core must notice at the latest at the damaged record (a flipped bit, a record cut short
//! with its length fixed up, two records swapped, one dropped or repeated, an old one
//! replayed), or in a way it need not notice yet (a flipped length, a stream cut mid-record).

use arbitrary::{Result, Unstructured};
use breeze_core::rng::SeededRng;
use breeze_core::secure::{
    Handshake, HandshakeError, IdentityKey, Inbound, LinkKind, Opener, PublicKey, RecordError,
    Sealer, MAX_RECORD_PAYLOAD,
};
use std::collections::VecDeque;
use std::fmt;

/// Records kept for replays.
const KEPT: usize = 4;

/// Why the far end could not follow what the core wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FarError {
    Handshake(HandshakeError),
    Record(RecordError),
    /// None of the responder's keys reads the first message: the core wrote to another key.
    NoKey,
    /// A handshake message from the core when the next one was ours, or after the last.
    OutOfTurn,
}

impl From<RecordError> for FarError {
    fn from(error: RecordError) -> Self {
        FarError::Record(error)
    }
}

impl fmt::Display for FarError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

enum State {
    /// A responder that learns from the first message which of its keys the core wrote to
    /// (IK: the dialer encrypts to the key it was introduced to; each is tried).
    Choosing(Vec<IdentityKey>),
    Handshaking(Handshake),
    Open,
    /// Given up: what the core writes is no longer followed.
    Lost,
}

/// The handshake side of a far end (apart from [`Inbound`], so a read can step it).
struct Shake {
    kind: LinkKind,
    rng: SeededRng,
    state: State,
    our_turn: bool,
    sealer: Option<Sealer>,
    remote: Option<PublicKey>,
    local: Option<PublicKey>,
    payloads: Vec<Vec<u8>>,
}

impl Shake {
    /// One handshake message from the core.
    fn step(&mut self, message: &[u8]) -> std::result::Result<Option<Opener>, FarError> {
        match std::mem::replace(&mut self.state, State::Lost) {
            State::Choosing(keys) => {
                for key in keys {
                    let Ok(mut handshake) = Handshake::responder(self.kind, &key, &mut self.rng)
                    else {
                        continue;
                    };
                    if let Ok(payload) = handshake.read(message) {
                        self.payloads.push(payload);
                        self.local = Some(key.public());
                        self.remote = handshake.remote();
                        self.our_turn = true;
                        self.state = State::Handshaking(handshake);
                        return Ok(None);
                    }
                }
                Err(FarError::NoKey)
            }
            State::Handshaking(mut handshake) => {
                if self.our_turn {
                    return Err(FarError::OutOfTurn);
                }
                let payload = handshake.read(message).map_err(FarError::Handshake)?;
                self.payloads.push(payload);
                self.remote = handshake.remote();
                if handshake.is_finished() {
                    let channel = handshake.finish().map_err(FarError::Handshake)?;
                    self.sealer = Some(channel.sealer);
                    self.remote = Some(channel.remote);
                    self.state = State::Open;
                    return Ok(Some(channel.opener));
                }
                self.our_turn = true;
                self.state = State::Handshaking(handshake);
                Ok(None)
            }
            State::Open | State::Lost => Err(FarError::OutOfTurn),
        }
    }
}

/// Tracks the record framing of the core's stream (a 2-byte length, then that many bytes),
/// to check every transmit ends on a record boundary.
#[derive(Default)]
struct Framing {
    header: Vec<u8>,
    remaining: usize,
}

impl Framing {
    fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.remaining > 0 {
                let n = self.remaining.min(bytes.len());
                self.remaining -= n;
                bytes = &bytes[n..];
                continue;
            }
            self.header.push(bytes[0]);
            bytes = &bytes[1..];
            if self.header.len() == 2 {
                self.remaining = usize::from(u16::from_be_bytes([self.header[0], self.header[1]]));
                self.header.clear();
            }
        }
    }

    fn at_boundary(&self) -> bool {
        self.header.is_empty() && self.remaining == 0
    }
}

/// The harness's end of one encrypted connection.
pub struct FarEnd {
    shake: Shake,
    inbound: Inbound,
    framing: Framing,
    pristine: bool,
    desynced: bool,
    garbled: bool,
    /// Handshake messages we wrote.
    written: usize,
    /// Our latest records, for replays.
    kept: VecDeque<Vec<u8>>,
}

impl fmt::Debug for FarEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.shake.state {
            State::Choosing(_) => "choosing",
            State::Handshaking(_) if self.shake.our_turn => "handshaking (our turn)",
            State::Handshaking(_) => "handshaking (their turn)",
            State::Open => "open",
            State::Lost => "lost",
        };
        write!(f, "FarEnd({state}, pristine: {})", self.pristine)
    }
}

impl FarEnd {
    fn new(kind: LinkKind, state: State, our_turn: bool, seed: u64) -> FarEnd {
        FarEnd {
            shake: Shake {
                kind,
                rng: SeededRng::from_u64(seed),
                state,
                our_turn,
                sealer: None,
                remote: None,
                local: None,
                payloads: Vec::new(),
            },
            inbound: Inbound::default(),
            framing: Framing::default(),
            pristine: true,
            desynced: false,
            garbled: false,
            written: 0,
            kept: VecDeque::new(),
        }
    }

    /// The side that speaks first (`remote`: the key it writes to, for IK).
    pub fn initiator(
        kind: LinkKind,
        local: &IdentityKey,
        remote: Option<&PublicKey>,
        seed: u64,
    ) -> FarEnd {
        let mut rng = SeededRng::from_u64(seed);
        let state = match Handshake::initiator(kind, local, remote, &mut rng) {
            Ok(handshake) => State::Handshaking(handshake),
            Err(_) => State::Lost,
        };
        let mut far = FarEnd::new(kind, state, true, seed.wrapping_add(1));
        far.shake.local = Some(local.public());
        far
    }

    /// The side that answers, holding any of `keys` (the first message tells which).
    pub fn responder(kind: LinkKind, keys: Vec<IdentityKey>, seed: u64) -> FarEnd {
        FarEnd::new(kind, State::Choosing(keys), false, seed)
    }

    pub fn is_open(&self) -> bool {
        matches!(self.shake.state, State::Open)
    }

    pub fn is_lost(&self) -> bool {
        matches!(self.shake.state, State::Lost)
    }

    /// Whether the next handshake message is ours.
    pub fn our_turn(&self) -> bool {
        matches!(self.shake.state, State::Handshaking(_)) && self.shake.our_turn
    }

    /// Whether the core got only our own untouched handshake messages so far.
    pub fn is_pristine(&self) -> bool {
        self.pristine
    }

    /// Something else than our next handshake message went to the core before the handshake
    /// was through (its answers may no longer make sense to us), or something else than our
    /// records after it (the core may be waiting for the rest of a record that is not ours).
    pub fn taint(&mut self) {
        if self.is_open() {
            self.desynced = true;
        } else {
            self.pristine = false;
        }
    }

    /// We sealed bytes that are not whole frames: the core's frame decoder may hold part of one.
    pub fn garble(&mut self) {
        self.garbled = true;
    }

    /// Whether everything we sealed so far was whole frames.
    pub fn frames_whole(&self) -> bool {
        !self.garbled
    }

    /// Whether the core got exactly our messages and records so far: the next record we send
    /// is the next it reads.
    pub fn in_sync(&self) -> bool {
        self.pristine && !self.desynced
    }

    /// Stop following the core's output (it is closing, or we damaged our own view).
    pub fn give_up(&mut self) {
        self.shake.state = State::Lost;
    }

    /// The core's static key, once a message of it proved it.
    pub fn remote(&self) -> Option<PublicKey> {
        self.shake.remote
    }

    /// Our static key (for a responder: the one the core wrote to).
    pub fn local(&self) -> Option<PublicKey> {
        self.shake.local
    }

    /// The payloads of the core's handshake messages so far.
    pub fn payloads(&self) -> &[Vec<u8>] {
        &self.shake.payloads
    }

    /// Handshake messages we wrote so far.
    pub fn written(&self) -> usize {
        self.written
    }

    /// Our next handshake message with `payload`, framed, if it is our turn; the channel is
    /// open once it was the last.
    pub fn next_message(&mut self, payload: &[u8]) -> Option<Vec<u8>> {
        if !self.our_turn() {
            return None;
        }
        let State::Handshaking(mut handshake) =
            std::mem::replace(&mut self.shake.state, State::Lost)
        else {
            return None;
        };
        let message = handshake.write(payload).ok()?;
        self.written += 1;
        self.shake.our_turn = false;
        if handshake.is_finished() {
            let channel = handshake.finish().ok()?;
            self.shake.sealer = Some(channel.sealer);
            self.shake.remote = Some(channel.remote);
            self.inbound.open_with(channel.opener);
            self.shake.state = State::Open;
        } else {
            self.shake.state = State::Handshaking(handshake);
        }
        Some(message)
    }

    /// Reads what the core wrote: its handshake messages step our handshake, its records are
    /// opened; the plaintext is returned. A lost end reads nothing. On an error the end is
    /// lost; the caller decides whether the core was at fault.
    pub fn read(&mut self, bytes: &[u8]) -> std::result::Result<Vec<u8>, FarError> {
        match self.read_all(bytes) {
            (plain, None) => Ok(plain),
            (_, Some(error)) => Err(error),
        }
    }

    /// [`read`](FarEnd::read), also giving what opened before an error.
    pub fn read_all(&mut self, bytes: &[u8]) -> (Vec<u8>, Option<FarError>) {
        self.framing.feed(bytes);
        if self.is_lost() {
            return (Vec::new(), None);
        }
        let mut plain = Vec::new();
        let shake = &mut self.shake;
        let result = self
            .inbound
            .read(bytes, &mut plain, |message| shake.step(message));
        match result {
            Ok(()) => (plain, None),
            Err(error) => {
                self.shake.state = State::Lost;
                (plain, Some(error))
            }
        }
    }

    /// Whether the core's stream so far ends on a record boundary.
    pub fn at_record_boundary(&self) -> bool {
        self.framing.at_boundary()
    }

    /// `plain` sealed as records (each with its length prefix), cut at `cuts` (offsets into
    /// `plain`, in any order; a part longer than a record holds becomes several). Only once
    /// open.
    pub fn seal(&mut self, plain: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
        let Some(sealer) = self.shake.sealer.as_mut() else {
            return Vec::new();
        };
        let mut points: Vec<usize> = cuts.iter().map(|c| (*c).min(plain.len())).collect();
        points.push(0);
        points.push(plain.len());
        points.sort_unstable();
        points.dedup();
        let mut records = Vec::new();
        for pair in points.windows(2) {
            let part = &plain[pair[0]..pair[1]];
            let mut sealed = Vec::new();
            if sealer.seal(part, &mut sealed).is_err() {
                break;
            }
            records.extend(split_records(&sealed));
        }
        for record in &records {
            if self.kept.len() == KEPT {
                self.kept.pop_front();
            }
            self.kept.push_back(record.clone());
        }
        records
    }

    /// Records sealed earlier, for replays.
    pub fn kept(&self) -> Vec<Vec<u8>> {
        self.kept.iter().cloned().collect()
    }
}

/// Cuts a stream of whole records into them (each with its prefix).
pub fn split_records(mut stream: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while stream.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([stream[0], stream[1]]));
        let end = (2 + len).min(stream.len());
        out.push(stream[..end].to_vec());
        stream = &stream[end..];
    }
    out
}

/// How the records of one delivery were damaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tamper {
    /// A bit of record `record`'s ciphertext or tag.
    FlipBit { record: usize, byte: usize },
    /// Record `record` cut short by `by` bytes, its length fixed up to match.
    Truncate { record: usize, by: usize },
    /// Records `a` < `b` change places.
    Swap { a: usize, b: usize },
    /// Record `record` left out (a later one follows).
    Drop { record: usize },
    /// Record `record` sent twice.
    Repeat { record: usize },
    /// A record of an earlier delivery sent again before record `at`.
    Replay { at: usize },
    /// A bit of record `record`'s length: the stream is misframed from there.
    FlipLength { record: usize, bit: u8 },
    /// The stream ends `by` bytes early, mid-record.
    Cut { by: usize },
}

impl Tamper {
    /// Whether the core must notice it by the end of this delivery: the record at the damaged
    /// position does not authenticate. (A wrong length or a cut may only leave the core
    /// waiting for the rest of a record.)
    pub fn must_be_noticed(&self) -> bool {
        !matches!(self, Tamper::FlipLength { .. } | Tamper::Cut { .. })
    }
}

/// Damages `records` (sealed in order, after `old` ones), as the input says.
pub fn tamper(u: &mut Unstructured, records: &mut Vec<Vec<u8>>, old: &[Vec<u8>]) -> Result<Tamper> {
    let n = records.len();
    if n == 0 {
        return Ok(Tamper::Cut { by: 0 });
    }
    let pick = |u: &mut Unstructured| u.choose_index(n);
    let choice = u.int_in_range(0..=7u8)?;
    let tamper = match choice {
        2 if n >= 2 => {
            let a = u.choose_index(n - 1)?;
            let b = u.int_in_range(a + 1..=n - 1)?;
            records.swap(a, b);
            Tamper::Swap { a, b }
        }
        3 if n >= 2 => {
            let record = u.choose_index(n - 1)?;
            records.remove(record);
            Tamper::Drop { record }
        }
        4 => {
            let record = pick(u)?;
            let copy = records[record].clone();
            records.insert(record + 1, copy);
            Tamper::Repeat { record }
        }
        5 if !old.is_empty() => {
            let at = u.int_in_range(0..=n - 1)?;
            let replayed = old[u.choose_index(old.len())?].clone();
            records.insert(at, replayed);
            Tamper::Replay { at }
        }
        6 => {
            let record = pick(u)?;
            let bit = u.int_in_range(0..=15u8)?;
            let r = &mut records[record];
            r[usize::from(bit / 8)] ^= 1 << (bit % 8);
            Tamper::FlipLength { record, bit }
        }
        7 => {
            let last = &mut records[n - 1];
            let by = u.int_in_range(1..=last.len() - 1)?;
            last.truncate(last.len() - by);
            Tamper::Cut { by }
        }
        1 => {
            let record = pick(u)?;
            let r = &mut records[record];
            let body = r.len() - 2;
            let by = u.int_in_range(1..=body)?;
            r.truncate(r.len() - by);
            let len = (body - by) as u16;
            r[..2].copy_from_slice(&len.to_be_bytes());
            Tamper::Truncate { record, by }
        }
        _ => {
            let record = pick(u)?;
            let r = &mut records[record];
            let byte = u.int_in_range(2..=r.len() - 1)?;
            r[byte] ^= 1 << u.int_in_range(0..=7u8)?;
            Tamper::FlipBit { record, byte }
        }
    };
    Ok(tamper)
}

/// Damages one handshake message (framed): a flipped bit, cut short (prefix fixed up or not),
/// or followed by junk or by itself again (a replay). Whether the message itself changed (so
/// the pattern cannot complete), rather than only what follows it.
pub fn tamper_message(u: &mut Unstructured, message: &mut Vec<u8>) -> Result<bool> {
    Ok(match u.int_in_range(0..=3u8)? {
        0 if message.len() > 2 => {
            let byte = u.int_in_range(0..=message.len() - 1)?;
            message[byte] ^= 1 << u.int_in_range(0..=7u8)?;
            true
        }
        1 if message.len() > 2 => {
            let keep = u.int_in_range(2..=message.len() - 1)?;
            message.truncate(keep);
            let len = (keep - 2) as u16;
            message[..2].copy_from_slice(&len.to_be_bytes());
            true
        }
        2 if message.len() > 1 => {
            let keep = u.int_in_range(1..=message.len() - 1)?;
            message.truncate(keep);
            true
        }
        _ => {
            let junk: Vec<u8> = u.arbitrary()?;
            message.extend_from_slice(&junk);
            if junk.is_empty() {
                let again = message.clone();
                message.extend_from_slice(&again);
            }
            false
        }
    })
}

/// Cut points for [`FarEnd::seal`]: none mostly, else a few inside `len` (so frames span
/// records), sometimes a whole record's worth apart.
pub fn cuts(u: &mut Unstructured, len: usize) -> Result<Vec<usize>> {
    let mut out = Vec::new();
    if u.ratio(1, 2)? {
        return Ok(out);
    }
    for _ in 0..u.int_in_range(1..=4u8)? {
        out.push(if u.ratio(1, 8)? {
            MAX_RECORD_PAYLOAD.min(len)
        } else {
            u.int_in_range(0..=len)?
        });
    }
    Ok(out)
}
