//! Read buffers: what one read brought, and the pool big read buffers return to.
//!
//! A big read (a file chunk, a burst) hands its buffer itself to the owner instead of a copy;
//! the owner gives it back once the core has seen the bytes, and the next big read of any
//! socket of the same driver reads into it. The pool is per driver and bounded, so buffers are
//! never held by idle sockets. A buffer whose file chunks the core kept (they go to the disk,
//! or are relayed, from where they were read) is not given back: the last chunk dropped frees
//! it, and the core copies small chunks rather than let them pin a big buffer.

use breeze_core::wire::Bytes;
use std::sync::{Arc, Mutex, MutexGuard};

/// Buffers a driver keeps for reuse, whatever its number of sockets: at most 2 MiB of 64 KiB
/// buffers.
const POOLED_BUFFERS: usize = 32;

/// Reads this big are handed to the cores as shared buffers (see [`Received::feed`]).
const SHARE_MIN: usize = 16 * 1024;

/// Bytes one read brought: the first `len` of `buffer`. A buffer handed back keeps at least
/// `len` bytes, so reusing it for a later read zeroes at most the rest.
#[derive(Debug)]
pub(crate) struct Received {
    pub(crate) buffer: Vec<u8>,
    pub(crate) len: usize,
}

impl Received {
    pub fn bytes(&self) -> &[u8] {
        self.buffer.get(..self.len).unwrap_or_default()
    }

    /// Hands the bytes to a core: a big read as a shared buffer, so the file chunks in it keep
    /// their data there rather than being copied out, anything else as a slice (sharing costs
    /// an allocation, worth it only for chunks). Returns the buffer to reuse, unless chunks
    /// still hold a part of it (whoever drops the last one frees it).
    pub fn feed(self, handle: impl FnOnce(Fed<'_>)) -> Option<Self> {
        if self.len < SHARE_MIN {
            handle(Fed::Slice(self.bytes()));
            return Some(self);
        }
        let len = self.len;
        let mut shared = Bytes::from(self.buffer);
        shared.truncate(len);
        handle(Fed::Shared(&shared));
        let buffer = Vec::from(shared.try_into_mut().ok()?);
        Some(Received { buffer, len })
    }
}

/// How [`Received::feed`] hands bytes over.
pub(crate) enum Fed<'a> {
    Shared(&'a Bytes),
    Slice(&'a [u8]),
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
