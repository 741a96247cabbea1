//! snow's primitives, with the core's seeded generator instead of the operating system's.
//!
//! snow draws its ephemeral keys from the resolver's `Random`. The default one reads the
//! operating system, which the core must never do; this resolver hands snow a ChaCha stream
//! seeded from the core's own generator, so handshakes are as reproducible as everything else
//! in a simulation, and as unpredictable as the host's seed in a real process.

use crate::rng::SeededRng;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use snow::params::{CipherChoice, DHChoice, HashChoice};
use snow::resolvers::{CryptoResolver, DefaultResolver};
use snow::types::{Cipher, Dh, Hash, Random};

struct SeededRandom(ChaCha20Rng);

impl Random for SeededRandom {
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), snow::Error> {
        self.0.fill_bytes(dest);
        Ok(())
    }
}

/// A resolver whose randomness is one fresh stream drawn from `rng`.
pub(crate) struct SeededResolver {
    seed: [u8; 32],
}

impl SeededResolver {
    pub fn new(rng: &mut SeededRng) -> Self {
        SeededResolver {
            seed: rng.bytes32(),
        }
    }
}

impl CryptoResolver for SeededResolver {
    fn resolve_rng(&self) -> Option<Box<dyn Random>> {
        Some(Box::new(SeededRandom(ChaCha20Rng::from_seed(self.seed))))
    }

    fn resolve_dh(&self, choice: &DHChoice) -> Option<Box<dyn Dh>> {
        DefaultResolver.resolve_dh(choice)
    }

    fn resolve_hash(&self, choice: &HashChoice) -> Option<Box<dyn Hash>> {
        DefaultResolver.resolve_hash(choice)
    }

    fn resolve_cipher(&self, choice: &CipherChoice) -> Option<Box<dyn Cipher>> {
        DefaultResolver.resolve_cipher(choice)
    }
}

/// X25519 from snow's default resolver, for the static keys the core derives and combines.
pub(crate) fn x25519() -> Box<dyn Dh> {
    DefaultResolver
        .resolve_dh(&DHChoice::Curve25519)
        .unwrap_or_else(|| unreachable!("snow is built with curve25519"))
}
