//! Hash maps whose iteration order follows from the core's seed.
//!
//! std's `RandomState` draws its keys from the operating system, which would make the order
//! the core walks its connections (and so the order of its outputs and of the secrets it
//! draws) differ from run to run: a seeded simulation would not replay. These maps key their
//! hasher from the core's seed instead, which keeps replays exact while leaving the hash
//! unpredictable to a peer that does not know the seed.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};

#[derive(Debug, Clone, Copy)]
pub(crate) struct SeededState {
    key: u64,
}

impl SeededState {
    pub fn new(key: u64) -> Self {
        SeededState { key }
    }
}

impl BuildHasher for SeededState {
    type Hasher = DefaultHasher;

    fn build_hasher(&self) -> DefaultHasher {
        let mut hasher = DefaultHasher::new();
        hasher.write_u64(self.key);
        hasher
    }
}

pub(crate) type SeededMap<K, V> = HashMap<K, V, SeededState>;
