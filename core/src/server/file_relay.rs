//! The relay's budget for file data: a token bucket per user, so relayed transfers cannot
//! crowd out everyone else's chat. Chat is never budgeted; only file chunks are.

use crate::wire::TransferId;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How much file data the relay forwards per user: a token bucket, so relayed transfers cannot
/// crowd out everyone else's chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileRelayLimit {
    /// Sustained bytes per second of file data one user may have relayed.
    pub bytes_per_second: u64,
    /// Bytes that may go at once after a quiet spell.
    pub burst: u64,
    /// File chunks wait (the sender is throttled) while the recipient's connection has
    /// this much output waiting, so relayed files never push it over its output bound
    /// (`ServerConfig::max_pending_output`, 4 MiB), and chat to it keeps 1 MiB of room.
    pub recipient_high_water: usize,
}

impl Default for FileRelayLimit {
    fn default() -> Self {
        FileRelayLimit {
            bytes_per_second: 16 * 1024 * 1024,
            burst: 2 * 1024 * 1024,
            recipient_high_water: 3 * 1024 * 1024,
        }
    }
}

/// What to do with one relayed chunk.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Budget {
    Forward,
    /// Drop it; tell the sender to resume at the chunk's offset after the wait.
    Throttle {
        retry_after: Duration,
    },
    /// Drop it silently: the sender was already told to back off for this transfer.
    Drop,
}

#[derive(Debug)]
pub(super) struct FileBudget {
    tokens: u64,
    refilled: Instant,
    /// Transfers told to back off, with the offset they were told to resume from. Their
    /// chunks past that offset are dropped until the resumed chunk arrives, so the receiver
    /// never sees a gap it would have to resync over.
    throttled: HashMap<TransferId, u64>,
}

impl FileBudget {
    pub fn new(limit: FileRelayLimit, now: Instant) -> Self {
        FileBudget {
            tokens: limit.burst,
            refilled: now,
            throttled: HashMap::new(),
        }
    }

    /// The recipient's connection already has this much waiting: hold off this transfer
    /// rather than queue more (the connection would be dropped as a slow consumer).
    pub fn congested(&mut self, id: TransferId, offset: u64) -> Budget {
        self.hold_back(id, offset, Duration::from_millis(50))
    }

    pub fn spend(
        &mut self,
        limit: FileRelayLimit,
        id: TransferId,
        offset: u64,
        len: usize,
        now: Instant,
    ) -> Budget {
        if self
            .throttled
            .get(&id)
            .is_some_and(|resume| offset > *resume)
        {
            return Budget::Drop;
        }
        let elapsed = now.saturating_duration_since(self.refilled);
        let earned = (elapsed.as_micros() * u128::from(limit.bytes_per_second) / 1_000_000) as u64;
        if earned > 0 {
            self.tokens = self
                .tokens
                .saturating_add(earned)
                .min(limit.burst.max(len as u64));
            self.refilled = now;
        }
        let len = len as u64;
        if self.tokens >= len {
            self.tokens -= len;
            self.throttled.remove(&id);
            return Budget::Forward;
        }
        let missing = len - self.tokens;
        let micros = missing.saturating_mul(1_000_000) / limit.bytes_per_second.max(1);
        self.hold_back(id, offset, Duration::from_micros(micros.max(1_000)))
    }

    /// Tells the sender to resume at `offset`, unless it was already told to resume at an
    /// earlier offset (then this chunk is one it sent before hearing so).
    ///
    /// A chunk *at* the resume offset is the sender resuming: if it came too early it is told
    /// again. Dropping it silently, as chunks past the offset are, left the sender waiting for
    /// progress that could not come until its ten-second retry.
    fn hold_back(&mut self, id: TransferId, offset: u64, retry_after: Duration) -> Budget {
        match self.throttled.get(&id) {
            Some(resume) if *resume < offset => Budget::Drop,
            _ => {
                self.throttled.insert(id, offset);
                Budget::Throttle { retry_after }
            }
        }
    }
}
