//! The only source of randomness in the core: a ChaCha stream from a seed the host provides.
//!
//! Hosts seed it from the operating system; tests and the simulator seed it with a constant, so
//! every run is reproducible. ChaCha (rather than a toy generator) because introduction secrets
//! and handshake nonces come from it and must not be predictable from earlier outputs.

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use std::time::Duration;

/// A deterministic random stream: the same seed, the same protocol run.
#[derive(Debug, Clone)]
pub struct SeededRng(ChaCha20Rng);

impl SeededRng {
    /// The stream for a host's 32-byte seed.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        SeededRng(ChaCha20Rng::from_seed(seed))
    }

    /// The stream for a short seed: tests and the simulator.
    pub fn from_u64(seed: u64) -> Self {
        SeededRng(ChaCha20Rng::seed_from_u64(seed))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// 32 random bytes: a nonce or a pair secret.
    pub fn bytes32(&mut self) -> [u8; 32] {
        let mut out = [0u8; 32];
        self.0.fill_bytes(&mut out);
        out
    }

    /// A duration drawn uniformly from `[max / 2, max]`: exponential backoff with "equal jitter",
    /// which keeps a floor under the delay while spreading out clients that failed together.
    pub fn jitter_half(&mut self, max: Duration) -> Duration {
        let max_us = max.as_micros().min(u64::MAX as u128) as u64;
        let half = max_us / 2;
        let spread = max_us - half;
        let extra = if spread == 0 {
            0
        } else {
            self.next_u64() % (spread + 1)
        };
        Duration::from_micros(half + extra)
    }
}
