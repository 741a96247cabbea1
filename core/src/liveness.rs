//! Heartbeat timing shared by every link: when to probe, when to give up.
//!
//! Each side sends a ping whenever it has sent nothing for `interval`, and declares the link dead
//! once it has heard nothing for `dead_after`. Any received frame counts as a sign of life, so a
//! busy link carries no pings at all.

use std::time::{Duration, Instant};

/// Heartbeat configuration (docs/ARCHITECTURE.md §7 Timers: probe every 5 s, dead after 15 s
/// by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heartbeat {
    /// Send a ping after this long without sending anything.
    pub interval: Duration,
    /// Declare the link dead after this long without hearing anything; several intervals, so
    /// one lost ping is no reason.
    pub dead_after: Duration,
}

impl Default for Heartbeat {
    fn default() -> Self {
        Heartbeat {
            interval: Duration::from_secs(5),
            dead_after: Duration::from_secs(15),
        }
    }
}

/// The last send and receive times of one link.
#[derive(Debug, Clone, Copy)]
pub struct Liveness {
    last_rx: Instant,
    last_tx: Instant,
}

impl Liveness {
    /// A link that just opened: it counts as having sent and heard now.
    pub fn new(now: Instant) -> Self {
        Liveness {
            last_rx: now,
            last_tx: now,
        }
    }

    /// Something arrived: the link is alive.
    pub fn received(&mut self, now: Instant) {
        self.last_rx = self.last_rx.max(now);
    }

    /// Something was sent: no ping is due for an interval.
    pub fn sent(&mut self, now: Instant) {
        self.last_tx = self.last_tx.max(now);
    }

    /// When a ping is due if nothing else is sent first.
    pub fn ping_at(&self, heartbeat: &Heartbeat) -> Instant {
        self.last_tx + heartbeat.interval
    }

    /// When the link is declared dead if nothing arrives first.
    pub fn dead_at(&self, heartbeat: &Heartbeat) -> Instant {
        self.last_rx + heartbeat.dead_after
    }

    /// The earlier of the two: when this link next needs attention.
    pub fn next_deadline(&self, heartbeat: &Heartbeat) -> Instant {
        self.ping_at(heartbeat).min(self.dead_at(heartbeat))
    }
}
