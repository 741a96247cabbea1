//! Exponential backoff with jitter, for reconnecting to the server and redialling peers.

use crate::rng::SeededRng;
use std::time::Duration;

/// How long to wait before retrying something that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffPolicy {
    /// The wait after the first failure.
    pub first: Duration,
    /// The longest wait, however many failures: a peer or server back after an outage is
    /// found within this.
    pub max: Duration,
}

/// Consecutive failures of one kind of attempt; reset on success.
#[derive(Debug, Clone)]
pub struct Backoff {
    policy: BackoffPolicy,
    failures: u32,
}

impl Backoff {
    /// No failures yet.
    pub fn new(policy: BackoffPolicy) -> Self {
        Backoff {
            policy,
            failures: 0,
        }
    }

    /// The wait before the next attempt: `first · 2^failures`, capped at `max`, then jittered
    /// into its upper half.
    pub fn next_delay(&mut self, rng: &mut SeededRng) -> Duration {
        let exp = self
            .policy
            .first
            .saturating_mul(1u32 << self.failures.min(20));
        self.failures = self.failures.saturating_add(1);
        rng.jitter_half(exp.min(self.policy.max))
    }

    /// The attempt succeeded: the next failure waits `first` again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_the_cap_and_stays_in_the_upper_half() {
        let mut rng = SeededRng::from_u64(7);
        let policy = BackoffPolicy {
            first: Duration::from_millis(500),
            max: Duration::from_secs(8),
        };
        let mut backoff = Backoff::new(policy);
        let mut ceiling = policy.first;
        for _ in 0..10 {
            let delay = backoff.next_delay(&mut rng);
            assert!(
                delay >= ceiling / 2 && delay <= ceiling,
                "{delay:?} vs {ceiling:?}"
            );
            ceiling = (ceiling * 2).min(policy.max);
        }
        backoff.reset();
        assert!(backoff.next_delay(&mut rng) <= policy.first);
    }
}
