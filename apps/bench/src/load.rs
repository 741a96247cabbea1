//! What every load generator shares: the plan, the counters the orchestrating thread watches,
//! the timestamp carried in each message, per-client reports and the latency summary.

use smol::channel::{Receiver, Sender};
use smol::future::race;
use smol::io::AsyncReadExt;
use smol::net::TcpStream;
use smol::LocalExecutor;
use smol::Timer;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How often an idle load task wakes: to run its core's timers, and to notice the end.
///
/// The load clients check their core's deadline on this tick instead of re-arming a timer
/// after every input as a general driver would: a thousand timers re-armed per message would
/// measure the timer wheel, not Breeze. `handle_timeout` called early is harmless, and a
/// second is well inside the heartbeat (5 s, 15 s) and retransmit (10 s) timings.
pub const TICK: Duration = Duration::from_secs(1);

/// The load: who sends how much, how big, with how many messages unacknowledged at once.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub clients: usize,
    /// Messages in all, shared by every sender (each claims them as its window allows).
    pub messages: u64,
    /// Bytes of chat text per message.
    pub size: usize,
    /// Messages a client may have sent and not yet seen acknowledged.
    pub window: usize,
    /// Messages per second over the whole fleet, for a paced run (see [`Pacer`]); `None`:
    /// every client sends as fast as its window allows.
    pub rate: Option<u64>,
}

/// An open-loop pace for one client of a paced run: one message every `interval` (the fleet's
/// rate shared evenly), from a phase of its own so the fleet's sends spread over the interval
/// instead of leaving in bursts. A slot missed while the window was full is sent once there is
/// room: the offered load stays the rate.
pub struct Pacer {
    interval: Duration,
    phase: Duration,
    /// The next slot; set by the first call once the senders start.
    next: Option<Instant>,
}

impl Pacer {
    /// Client `index`'s pace, if the plan has a rate.
    pub fn new(plan: &Plan, index: usize) -> Option<Pacer> {
        let rate = plan.rate.filter(|r| *r > 0)?;
        let interval = Duration::from_secs_f64(plan.clients.max(1) as f64 / rate as f64);
        let phase = interval.mul_f64((index % plan.clients.max(1)) as f64 / plan.clients as f64);
        Some(Pacer {
            interval,
            phase,
            next: None,
        })
    }

    /// Messages whose slot has come by `now`, at most `room`; they count as sent.
    pub fn due(&mut self, now: Instant, room: usize) -> u64 {
        let next = *self.next.get_or_insert(now + self.phase);
        if now < next {
            return 0;
        }
        let slots = ((now - next).as_nanos() / self.interval.as_nanos().max(1)) as u64 + 1;
        let sent = slots.min(room as u64);
        self.next = Some(next + self.interval.mul_f64(sent as f64));
        sent
    }

    /// When the next slot comes, once the schedule has started.
    pub fn next(&self) -> Option<Instant> {
        self.next
    }

    /// What a client with `room` in its window may send now: as many as are due when paced
    /// (`pacer`), all of it otherwise.
    pub fn allowed(pacer: Option<&mut Pacer>, now: Instant, room: usize) -> u64 {
        match pacer {
            Some(pacer) => pacer.due(now, room),
            None => room as u64,
        }
    }

    /// When a paced client must wake to send, if it has room to: its next slot.
    pub fn wake_at(pacer: Option<&Pacer>, has_room: bool) -> Option<Instant> {
        pacer.and_then(Pacer::next).filter(|_| has_room)
    }
}

/// Counters shared by the load tasks (on any thread) and the thread that watches them.
pub struct Progress {
    pub origin: Instant,
    pub connected: AtomicUsize,
    pub logged_in: AtomicUsize,
    /// Clients that have seen every other client come online.
    pub ready: AtomicUsize,
    /// Messages not yet claimed by a sender.
    remaining: AtomicU64,
    pub received: AtomicU64,
    /// Messages whose sender has heard they were delivered (counted by the wire clients).
    pub delivered: AtomicU64,
    /// Disconnects, refusals and other things that must not happen, over all clients.
    pub problems: AtomicU64,
    /// Logins tried again after failing (a refusal for now, a timeout in a storm), as a real
    /// client reconnects.
    pub retried: AtomicU64,
    /// Set when the measurement is over: what happens after (shutdown) is not a problem.
    pub stopping: AtomicBool,
    /// Set when the load tasks should end.
    done: AtomicBool,
    /// Closed to start the senders, so every sender wakes at once.
    go: (Sender<()>, Receiver<()>),
}

impl Progress {
    pub fn new(messages: u64) -> Progress {
        Progress {
            origin: Instant::now(),
            connected: AtomicUsize::new(0),
            logged_in: AtomicUsize::new(0),
            ready: AtomicUsize::new(0),
            remaining: AtomicU64::new(messages),
            received: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            problems: AtomicU64::new(0),
            retried: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
            done: AtomicBool::new(false),
            go: smol::channel::bounded(1),
        }
    }

    /// Claims up to `want` messages to send; returns how many were granted.
    pub fn claim(&self, want: u64) -> u64 {
        let granted = self
            .remaining
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                Some(left - left.min(want))
            });
        let left = granted.unwrap_or(0);
        left.min(want)
    }

    /// Gives back messages claimed but not sent.
    pub fn unclaim(&self, n: u64) {
        self.remaining.fetch_add(n, Ordering::Relaxed);
    }

    pub fn start(&self) {
        self.go.0.close();
    }

    pub async fn started(&self) {
        let _ = self.go.1.recv().await;
    }

    pub fn is_started(&self) -> bool {
        self.go.0.is_closed()
    }

    pub fn finish(&self) {
        self.stopping.store(true, Ordering::Relaxed);
        self.done.store(true, Ordering::Relaxed);
    }

    pub fn is_done(&self) -> bool {
        self.done.load(Ordering::Relaxed)
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }

    pub fn get(&self, counter: &AtomicUsize) -> usize {
        counter.load(Ordering::Relaxed)
    }

    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    pub fn problems(&self) -> u64 {
        self.problems.load(Ordering::Relaxed)
    }
}

/// Waits (polling every 50 ms) until `ready()` or `limit` elapses; prints `what` with progress
/// to stderr every 10 s. Returns whether it became ready.
pub fn wait_until(what: &str, limit: Duration, mut ready: impl FnMut() -> bool) -> bool {
    wait_reporting(what, limit, &mut ready, String::new)
}

/// [`wait_until`] with a progress line of its own.
pub fn wait_reporting(
    what: &str,
    limit: Duration,
    mut ready: impl FnMut() -> bool,
    progress: impl Fn() -> String,
) -> bool {
    let start = Instant::now();
    let mut next_report = start + Duration::from_secs(10);
    while !ready() {
        let now = Instant::now();
        if now >= start + limit {
            return false;
        }
        if now >= next_report {
            eprintln!(
                "  … {what}: {:.0} s {}",
                (now - start).as_secs_f64(),
                progress()
            );
            next_report += Duration::from_secs(10);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

/// The text of a message sent at `sent`: the time since `origin` in nanoseconds, as 16 hex
/// digits, padded to `size` bytes. Receivers in the same process read it back with
/// [`sent_at`], so latency is measured on one clock.
pub fn stamped_text(origin: Instant, sent: Instant, size: usize) -> String {
    const FILLER: &str = " the quick brown fox jumps over the lazy dog.";
    let mut text = String::with_capacity(size.max(16));
    let _ = write!(text, "{:016x}", (sent - origin).as_nanos() as u64);
    while text.len() < size {
        let room = size - text.len();
        text.push_str(&FILLER[..room.min(FILLER.len())]);
    }
    text
}

/// The send instant carried by a [`stamped_text`].
pub fn sent_at(origin: Instant, text: &[u8]) -> Option<Instant> {
    let digits = std::str::from_utf8(text.get(..16)?).ok()?;
    let nanos = u64::from_str_radix(digits, 16).ok()?;
    Some(origin + Duration::from_nanos(nanos))
}

/// Waits for a read from `stream`, or for `tick` (and for the senders' start too when
/// `start_wakes`, so a client ready to send does not wait a tick for it, and for `slot`, a
/// paced client's next message). `None`: no read, the wait ended.
pub async fn read_or_tick(
    stream: &mut TcpStream,
    buffer: &mut [u8],
    tick: &mut Timer,
    progress: &Progress,
    start_wakes: bool,
    slot: Option<Instant>,
) -> Option<std::io::Result<usize>> {
    let read = async { Some(stream.read(buffer).await) };
    let paced = async {
        match slot {
            Some(at) => {
                Timer::at(at).await;
            }
            None => std::future::pending::<()>().await,
        }
        None
    };
    let read = race(read, paced);
    let wait = async {
        if start_wakes {
            race(progress.started(), async {
                (&mut *tick).await;
            })
            .await;
        } else {
            (&mut *tick).await;
        }
        None
    };
    race(read, wait).await
}

/// A small, fast, seeded generator for picking recipients (xorshift64*).
pub struct Pick(u64);

impl Pick {
    pub fn new(seed: u64) -> Pick {
        Pick(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    /// Any client of `clients` but `me`.
    pub fn other(&mut self, me: usize, clients: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let r = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d);
        (me + 1 + (r % (clients as u64 - 1)) as usize) % clients
    }
}

impl Pick {
    /// A number below `n` (which is not 0).
    pub fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n.max(1) as u64) as usize
    }
}

/// Whom each load client writes to: everyone else, or a bounded set of `k`, the same `k`
/// offsets for every client (client `i` writes to `i + offset` for each), so each client also
/// knows the `k` who write to it. Bounded, a fleet makes `clients × k` pair keys once, not one
/// per message (with 1,000 clients nearly every random message would otherwise start a pair).
#[derive(Debug, Clone)]
pub struct Correspondents {
    clients: usize,
    offsets: Vec<usize>,
}

impl Correspondents {
    /// `k` of 0, or not below `clients - 1`, is everyone.
    pub fn new(clients: usize, k: usize, seed: u64) -> Correspondents {
        let everyone: Vec<usize> = (1..clients).collect();
        if k == 0 || k >= everyone.len() {
            return Correspondents {
                clients,
                offsets: everyone,
            };
        }
        let mut pick = Pick::new(seed);
        let mut pool = everyone;
        let offsets = (0..k)
            .map(|_| pool.swap_remove(pick.below(pool.len())))
            .collect();
        Correspondents { clients, offsets }
    }

    /// Whom `me` writes to.
    pub fn of(&self, me: usize) -> Vec<usize> {
        self.offsets
            .iter()
            .map(|off| (me + off) % self.clients)
            .collect()
    }

    /// Who writes to `me`.
    pub fn writing_to(&self, me: usize) -> Vec<usize> {
        self.offsets
            .iter()
            .map(|off| (me + self.clients - off) % self.clients)
            .collect()
    }

    /// How many each client writes to.
    pub fn len(&self) -> usize {
        self.offsets.len()
    }
}

/// What one load client saw.
#[derive(Debug, Default)]
pub struct ClientReport {
    pub sent: u64,
    pub received: u64,
    pub delivered: u64,
    /// Latency of each message received, in microseconds.
    pub latencies_us: Vec<u32>,
    pub first_send: Option<Instant>,
    pub last_receipt: Option<Instant>,
    /// Things that must not happen, counted by description.
    pub problems: BTreeMap<String, u64>,
}

impl ClientReport {
    /// Records a message received now that was sent at `sent`.
    pub fn receipt(&mut self, sent: Option<Instant>, now: Instant) {
        self.received += 1;
        self.last_receipt = Some(now);
        match sent {
            Some(sent) => {
                let us = now.saturating_duration_since(sent).as_micros();
                self.latencies_us.push(us.min(u32::MAX as u128) as u32);
            }
            None => self.problem("message without a timestamp".into()),
        }
    }

    pub fn sending(&mut self, now: Instant) {
        self.sent += 1;
        self.first_send.get_or_insert(now);
    }

    pub fn problem(&mut self, what: String) {
        *self.problems.entry(what).or_default() += 1;
    }

    pub fn merge(&mut self, other: ClientReport) {
        self.sent += other.sent;
        self.received += other.received;
        self.delivered += other.delivered;
        self.latencies_us.extend(other.latencies_us);
        self.first_send = match (self.first_send, other.first_send) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.last_receipt = self.last_receipt.max(other.last_receipt);
        for (what, n) in other.problems {
            *self.problems.entry(what).or_default() += n;
        }
    }

    /// Throughput and latency over the whole run.
    pub fn summary(&mut self) -> Summary {
        self.latencies_us.sort_unstable();
        let at = |q: f64| -> Duration {
            let n = self.latencies_us.len();
            if n == 0 {
                return Duration::ZERO;
            }
            let i = ((n as f64 * q).ceil() as usize).clamp(1, n) - 1;
            Duration::from_micros(self.latencies_us[i] as u64)
        };
        let elapsed = match (self.first_send, self.last_receipt) {
            (Some(first), Some(last)) => last.saturating_duration_since(first),
            _ => Duration::ZERO,
        };
        Summary {
            received: self.received,
            elapsed,
            rate: self.received as f64 / elapsed.as_secs_f64().max(1e-9),
            p50: at(0.50),
            p99: at(0.99),
            max: at(1.0),
        }
    }

    /// The problems as one line, or `none`.
    pub fn problems_line(&self) -> String {
        if self.problems.is_empty() {
            return "none".into();
        }
        let parts: Vec<String> = self
            .problems
            .iter()
            .map(|(what, n)| format!("{n} × {what}"))
            .collect();
        parts.join(", ")
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Summary {
    pub received: u64,
    /// From the first send to the last receipt.
    pub elapsed: Duration,
    /// Messages received per second over `elapsed`.
    pub rate: f64,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

/// Runs `clients` load tasks spread over `threads` threads, each thread with its own local
/// executor (apart from smol's global one, where the server under test runs its sockets).
/// `watch` runs on the calling thread meanwhile and must end the load (`Progress::finish`)
/// before returning. Returns every client's report, merged, and what `watch` returned.
pub fn run_fleet<F, Fut, W, R>(
    threads: usize,
    clients: usize,
    client: F,
    watch: W,
) -> (ClientReport, R)
where
    F: Fn(usize) -> Fut + Sync,
    Fut: Future<Output = ClientReport>,
    W: FnOnce() -> R,
{
    let threads = threads.clamp(1, clients.max(1));
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let client = &client;
                std::thread::Builder::new()
                    .name(format!("load-{t}"))
                    .spawn_scoped(scope, move || {
                        let executor = LocalExecutor::new();
                        let tasks: Vec<_> = (t..clients)
                            .step_by(threads)
                            .map(|i| executor.spawn(client(i)))
                            .collect();
                        smol::block_on(executor.run(async {
                            let mut report = ClientReport::default();
                            for task in tasks {
                                report.merge(task.await);
                            }
                            report
                        }))
                    })
                    .expect("cannot start a load thread")
            })
            .collect();
        let watched = watch();
        let mut report = ClientReport::default();
        for worker in workers {
            report.merge(worker.join().expect("a load thread panicked"));
        }
        (report, watched)
    })
}

/// `1234567` as `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A duration in milliseconds with one decimal.
/// Milliseconds, to the microsecond below 10 ms (a light load's latencies are a few hundred
/// microseconds).
pub fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1e3;
    if ms < 10.0 {
        format!("{ms:.3}")
    } else {
        format!("{ms:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamped_text_has_the_size_asked_and_gives_back_its_send_time() {
        let origin = Instant::now();
        let sent = origin + Duration::from_micros(1_234_567);
        for size in [16, 17, 100, 1000] {
            let text = stamped_text(origin, sent, size);
            assert_eq!(text.len(), size);
            assert_eq!(sent_at(origin, text.as_bytes()), Some(sent));
        }
    }

    #[test]
    fn a_paced_client_sends_on_its_own_phase_and_catches_up_on_missed_slots() {
        let plan = Plan {
            clients: 4,
            messages: 100,
            size: 16,
            window: 8,
            rate: Some(400),
        };
        // 100 messages a second each, so one every 10 ms; client 2 starts half a period late.
        let mut pacer = Pacer::new(&plan, 2).expect("paced");
        let start = Instant::now();
        assert_eq!(pacer.due(start, 8), 0);
        assert_eq!(pacer.next(), Some(start + Duration::from_millis(5)));
        assert_eq!(pacer.due(start + Duration::from_millis(5), 8), 1);
        assert_eq!(pacer.due(start + Duration::from_millis(6), 8), 0);
        // Three slots went by with the window full: they go once there is room, two at a time.
        let later = start + Duration::from_millis(36);
        assert_eq!(pacer.due(later, 2), 2);
        assert_eq!(pacer.due(later, 2), 1);
        assert_eq!(pacer.due(later, 2), 0);
        assert_eq!(pacer.next(), Some(start + Duration::from_millis(45)));
        let unpaced = Plan { rate: None, ..plan };
        assert!(Pacer::new(&unpaced, 0).is_none());
    }

    #[test]
    fn claims_never_grant_more_than_remains() {
        let progress = Progress::new(10);
        assert_eq!(progress.claim(4), 4);
        assert_eq!(progress.claim(8), 6);
        assert_eq!(progress.claim(1), 0);
        progress.unclaim(2);
        assert_eq!(progress.claim(5), 2);
    }

    #[test]
    fn recipients_are_never_the_sender_and_cover_everyone_else() {
        let mut pick = Pick::new(7);
        let mut seen = [0; 5];
        for _ in 0..1000 {
            let to = pick.other(2, 5);
            assert_ne!(to, 2);
            seen[to] += 1;
        }
        assert!(seen.iter().enumerate().all(|(i, n)| i == 2 || *n > 150));
    }

    #[test]
    fn correspondents_are_bounded_distinct_and_known_both_ways() {
        let c = Correspondents::new(1000, 16, 3);
        assert_eq!(c.len(), 16);
        for me in [0, 1, 999] {
            let to = c.of(me);
            assert!(!to.contains(&me));
            let mut sorted = to.clone();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted.len(), 16);
            for peer in to {
                assert!(c.writing_to(peer).contains(&me));
            }
        }
        assert_eq!(Correspondents::new(5, 0, 3).of(2), vec![3, 4, 0, 1]);
        assert_eq!(Correspondents::new(5, 9, 3).len(), 4);
    }

    #[test]
    fn percentiles_come_from_the_sorted_samples() {
        let mut report = ClientReport {
            latencies_us: (1..=100).rev().collect(),
            received: 100,
            ..ClientReport::default()
        };
        let summary = report.summary();
        assert_eq!(summary.p50, Duration::from_micros(50));
        assert_eq!(summary.p99, Duration::from_micros(99));
        assert_eq!(summary.max, Duration::from_micros(100));
    }

    #[test]
    fn big_numbers_get_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
