//! Read buffers: what one read brought, and the pool big read buffers return to.
//!
//! A big read (a file chunk, a burst) hands its buffer itself to the owner instead of a copy;
//! the owner gives it back once the core has seen the bytes, and the next big read of any
//! socket of the same driver reads into it. The pool is per driver and bounded, so buffers are
//! never held by idle sockets.

use std::sync::{Arc, Mutex, MutexGuard};

/// Buffers a driver keeps for reuse, whatever its number of sockets: at most 2 MiB of 64 KiB
/// buffers.
const POOLED_BUFFERS: usize = 32;

/// Bytes one read brought: the first `len` of `buffer`. A buffer handed over whole keeps its
/// full length, so reusing it for a later read needs no zeroing.
#[derive(Debug)]
pub(crate) struct Received {
    pub(crate) buffer: Vec<u8>,
    pub(crate) len: usize,
}

impl Received {
    pub fn bytes(&self) -> &[u8] {
        self.buffer.get(..self.len).unwrap_or_default()
    }
}

/// Read buffers given back by the owner, shared by all the sockets of one driver.
#[derive(Clone, Default)]
pub(crate) struct ReadPool(Arc<Mutex<Vec<Vec<u8>>>>);

impl ReadPool {
    pub(crate) fn take(&self) -> Vec<u8> {
        self.lock().pop().unwrap_or_default()
    }

    pub(crate) fn give(&self, buffer: Vec<u8>) {
        let mut pool = self.lock();
        if pool.len() < POOLED_BUFFERS {
            pool.push(buffer);
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Vec<u8>>> {
        // Spare buffers only: a poisoned pool is still a pool.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
