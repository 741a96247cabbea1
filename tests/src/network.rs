//! The virtual network: byte streams with latency, jitter, chunking, one-way cuts and stalls.
//!
//! Pure data: it schedules deliveries on the virtual clock and says what is due; the simulator
//! hands what is due to the cores.

use breeze_core::client::LinkId;
use breeze_core::rng::SeededRng;
use breeze_core::server::ConnId;
use breeze_core::wire::UserName;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct NetConfig {
    /// One-way delay of every segment.
    pub latency: Duration,
    /// Extra delay drawn per segment, up to this (order within a stream is kept regardless).
    pub jitter: Duration,
    /// Split every write into up to this many chunks at random points (1 = never split).
    pub max_chunks: usize,
    /// How long a connect through a cut path takes to fail.
    pub connect_timeout: Duration,
    /// Bytes per second each direction of a stream carries; `None` for unlimited. With a
    /// limit, a write counts as written (`handle_written`) only once it has gone out, so
    /// the cores see real backpressure.
    pub bandwidth: Option<u64>,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            latency: Duration::from_millis(1),
            jitter: Duration::from_millis(2),
            max_chunks: 3,
            connect_timeout: Duration::from_secs(3),
            bandwidth: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId(pub u64);

/// A test-controlled socket, for playing an attacker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RawId(pub u64);

/// One end of a stream: which process and which of its sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    Server {
        incarnation: u64,
        conn: ConnId,
    },
    ClientServer {
        node: usize,
        incarnation: u64,
    },
    ClientPeer {
        node: usize,
        incarnation: u64,
        link: LinkId,
    },
    Raw(RawId),
}

impl Endpoint {
    fn client_node(&self) -> Option<usize> {
        match self {
            Endpoint::ClientPeer { node, .. } => Some(*node),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub enum Segment {
    Bytes(Vec<u8>),
    Fin,
}

#[derive(Debug)]
pub struct Stream {
    /// `ends[0]` opened the stream, `ends[1]` accepted it.
    pub ends: [Endpoint; 2],
    pub attached: [bool; 2],
    /// The user a client dialled, for `handle_dialed`.
    pub dialled: Option<UserName>,
    last_at: [Instant; 2],
    /// Until when each direction is busy putting earlier bytes on the wire.
    busy_until: [Instant; 2],
    stalled: [VecDeque<Segment>; 2],
}

/// Something the network will do at a given instant.
#[derive(Debug, Clone)]
pub enum Scheduled {
    /// A segment travelling from `ends[dir]` to `ends[1 - dir]`.
    Segment {
        stream: StreamId,
        dir: usize,
        segment: Segment,
    },
    /// The acceptor learns of a new connection.
    Accept { stream: StreamId },
    /// The opener learns its connect succeeded.
    Connected { stream: StreamId },
    /// The opener learns its connect failed.
    ConnectFailed {
        opener: Endpoint,
        dialled: Option<UserName>,
    },
    /// `from`'s bytes have gone out: its core may count them written.
    Written {
        stream: StreamId,
        from: Endpoint,
        bytes: usize,
    },
}

pub struct Network {
    pub config: NetConfig,
    rng: SeededRng,
    streams: HashMap<StreamId, Stream>,
    next_stream: u64,
    schedule: BTreeMap<(Instant, u64), Scheduled>,
    next_seq: u64,
    /// Directed cuts between client nodes: (from, to) bytes stall.
    cuts: HashSet<(usize, usize)>,
    /// Every byte any endpoint sent, in order, once capturing is on: what someone tapping
    /// the LAN would see.
    pub capture: Option<Vec<u8>>,
}

impl Network {
    pub fn new(config: NetConfig, seed: u64) -> Self {
        Network {
            config,
            rng: SeededRng::from_u64(seed),
            streams: HashMap::new(),
            next_stream: 0,
            schedule: BTreeMap::new(),
            next_seq: 0,
            cuts: HashSet::new(),
            capture: None,
        }
    }

    pub fn stream(&self, id: StreamId) -> Option<&Stream> {
        self.streams.get(&id)
    }

    pub fn stream_count(&self) -> usize {
        self.streams.len()
    }

    pub fn at(&mut self, at: Instant, what: Scheduled) {
        self.schedule.insert((at, self.next_seq), what);
        self.next_seq += 1;
    }

    pub fn next_at(&self) -> Option<Instant> {
        self.schedule.keys().next().map(|(at, _)| *at)
    }

    pub fn pop_due(&mut self, now: Instant) -> Option<Scheduled> {
        let key = *self.schedule.keys().next()?;
        if key.0 > now {
            return None;
        }
        self.schedule.remove(&key)
    }

    fn delay(&mut self) -> Duration {
        let jitter_us = self.config.jitter.as_micros() as u64;
        let extra = if jitter_us == 0 {
            0
        } else {
            self.rng.next_u64() % (jitter_us + 1)
        };
        self.config.latency + Duration::from_micros(extra)
    }

    /// Opens a stream; the acceptor hears of it, then the opener, one delay later.
    pub fn open(
        &mut self,
        opener: Endpoint,
        acceptor: Endpoint,
        dialled: Option<UserName>,
        now: Instant,
    ) -> StreamId {
        let id = StreamId(self.next_stream);
        self.next_stream += 1;
        let at = now + self.delay();
        self.streams.insert(
            id,
            Stream {
                ends: [opener, acceptor],
                attached: [true, true],
                dialled,
                last_at: [at, at],
                busy_until: [now, now],
                stalled: [VecDeque::new(), VecDeque::new()],
            },
        );
        self.at(at, Scheduled::Accept { stream: id });
        self.at(at, Scheduled::Connected { stream: id });
        id
    }

    pub fn refuse(
        &mut self,
        opener: Endpoint,
        dialled: Option<UserName>,
        after: Duration,
        now: Instant,
    ) {
        self.at(now + after, Scheduled::ConnectFailed { opener, dialled });
    }

    /// Writes `bytes` from `from` as a driver's socket would: `true` when they are written at
    /// once (the writer may be told now), `false` when the stream's bandwidth holds them back and
    /// a [`Scheduled::Written`] will report them later.
    pub fn write(
        &mut self,
        stream: StreamId,
        from: Endpoint,
        bytes: Vec<u8>,
        now: Instant,
    ) -> bool {
        let len = bytes.len();
        let sent = self.send(stream, from, bytes, now);
        if sent > now {
            self.at(
                sent,
                Scheduled::Written {
                    stream,
                    from,
                    bytes: len,
                },
            );
        }
        sent <= now
    }

    /// Sends bytes from `from` (an end of `stream`), in random chunks, keeping stream order.
    /// Returns when the last byte has gone out (now, without a bandwidth limit).
    pub fn send(
        &mut self,
        stream: StreamId,
        from: Endpoint,
        bytes: Vec<u8>,
        now: Instant,
    ) -> Instant {
        let Some(dir) = self.dir_of(stream, from) else {
            return now;
        };
        if let Some(capture) = self.capture.as_mut() {
            capture.extend_from_slice(&bytes);
        }
        let chunks = self.split(bytes);
        let mut sent = now;
        for chunk in chunks {
            sent = self.push_segment(stream, dir, Segment::Bytes(chunk), now);
        }
        sent
    }

    /// `from` closes its end: the other end gets a FIN after the data already sent.
    pub fn close(&mut self, stream: StreamId, from: Endpoint, now: Instant) {
        let Some(dir) = self.dir_of(stream, from) else {
            return;
        };
        if let Some(s) = self.streams.get_mut(&stream) {
            s.attached[dir] = false;
        }
        let _ = self.push_segment(stream, dir, Segment::Fin, now);
        self.remove_if_done(stream);
    }

    /// The receiving end got the FIN.
    pub fn detach(&mut self, stream: StreamId, dir_received: usize) {
        if let Some(s) = self.streams.get_mut(&stream) {
            s.attached[1 - dir_received] = false;
        }
        self.remove_if_done(stream);
    }

    fn remove_if_done(&mut self, stream: StreamId) {
        if self
            .streams
            .get(&stream)
            .is_some_and(|s| !s.attached[0] && !s.attached[1])
        {
            self.streams.remove(&stream);
        }
    }

    fn dir_of(&self, stream: StreamId, from: Endpoint) -> Option<usize> {
        let s = self.streams.get(&stream)?;
        (0..2).find(|d| s.ends[*d] == from && s.attached[*d])
    }

    /// Schedules a segment's arrival; returns when it has gone out.
    fn push_segment(
        &mut self,
        stream: StreamId,
        dir: usize,
        segment: Segment,
        now: Instant,
    ) -> Instant {
        let delay = self.delay();
        let bandwidth = self.config.bandwidth;
        let Some(s) = self.streams.get_mut(&stream) else {
            return now;
        };
        let len = match &segment {
            Segment::Bytes(bytes) => bytes.len() as u64,
            Segment::Fin => 0,
        };
        let sent = match bandwidth {
            Some(rate) => {
                let start = now.max(s.busy_until[dir]);
                start + Duration::from_micros(len.saturating_mul(1_000_000) / rate.max(1))
            }
            None => now,
        };
        s.busy_until[dir] = sent;
        let at = (sent + delay).max(s.last_at[dir]);
        s.last_at[dir] = at;
        self.at(
            at,
            Scheduled::Segment {
                stream,
                dir,
                segment,
            },
        );
        sent
    }

    fn split(&mut self, bytes: Vec<u8>) -> Vec<Vec<u8>> {
        let pieces = if self.config.max_chunks <= 1 || bytes.len() < 2 {
            1
        } else {
            1 + (self.rng.next_u64() as usize % self.config.max_chunks)
        };
        if pieces == 1 {
            return vec![bytes];
        }
        let mut cuts: Vec<usize> = (1..pieces)
            .map(|_| 1 + self.rng.next_u64() as usize % (bytes.len() - 1))
            .collect();
        cuts.sort_unstable();
        cuts.dedup();
        let mut out = Vec::with_capacity(cuts.len() + 1);
        let mut start = 0;
        for cut in cuts {
            out.push(bytes[start..cut].to_vec());
            start = cut;
        }
        out.push(bytes[start..].to_vec());
        out
    }

    pub fn is_cut(&self, from: usize, to: usize) -> bool {
        self.cuts.contains(&(from, to))
    }

    pub fn cut(&mut self, from: usize, to: usize) {
        self.cuts.insert((from, to));
    }

    /// Removes a cut; returns the segments it held back, in order, to deliver now.
    pub fn heal(&mut self, from: usize, to: usize) -> Vec<(StreamId, usize, Segment)> {
        self.cuts.remove(&(from, to));
        let mut released = Vec::new();
        let mut ids: Vec<StreamId> = self.streams.keys().copied().collect();
        ids.sort();
        for id in ids {
            let Some(s) = self.streams.get_mut(&id) else {
                continue;
            };
            for dir in 0..2 {
                let (a, b) = (s.ends[dir].client_node(), s.ends[1 - dir].client_node());
                if a == Some(from) && b == Some(to) {
                    released.extend(s.stalled[dir].drain(..).map(|seg| (id, dir, seg)));
                }
            }
        }
        released
    }

    /// Whether a segment due now must wait: its direction is cut, or earlier ones wait.
    pub fn must_stall(&mut self, stream: StreamId, dir: usize, segment: &Segment) -> bool {
        let Some(s) = self.streams.get(&stream) else {
            return false;
        };
        let (a, b) = (s.ends[dir].client_node(), s.ends[1 - dir].client_node());
        let cut = matches!((a, b), (Some(a), Some(b)) if self.cuts.contains(&(a, b)));
        let Some(s) = self.streams.get_mut(&stream) else {
            return false;
        };
        if cut || !s.stalled[dir].is_empty() {
            s.stalled[dir].push_back(segment.clone());
            return true;
        }
        false
    }
}
