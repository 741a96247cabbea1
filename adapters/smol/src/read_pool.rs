//! Read buffers: what one read brought, and the pool big read buffers return to.
//!
//! A big read (a file chunk, a burst) hands its buffer itself to the core, which opens the
//! records where they lie; the buffer goes back once the core is done with it, and the next
//! big read of any socket of the same driver reads into it. The pool is per driver and bounded, so buffers are
//! never held by idle sockets. A buffer whose file chunks the core kept (they go to the disk,
//! or are relayed, from where they were read) goes back when the last of them is dropped, and
//! the core copies small chunks rather than let them pin a big buffer.

use std::sync::{Arc, Mutex, MutexGuard};

/// Buffers a driver keeps for reuse, whatever its number of sockets: at most 6 MiB of the
/// biggest (128 KiB) read buffers. A file being received keeps its chunks in read buffers until
/// they are written; while the disk keeps up that is a few MiB, which 16 buffers did not cover
/// (every read of a transfer then went to fresh memory). A window's worth (16 MiB) waits only
/// while the disk lags, and is not worth holding on to when idle.
const POOLED_BUFFERS: usize = 48;

/// Reads this big are handed to the cores whole (see [`Received::feed`]).
const SHARE_MIN: usize = 16 * 1024;

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

    /// Hands the bytes to a core: a big read as a shared buffer, so the file chunks in it keep
    /// their data there rather than being copied out, anything else as a slice (sharing costs
    /// an allocation, worth it only for chunks). A shared buffer goes back to `pool` by itself
    /// once the last chunk holding a part of it is dropped (on whatever thread wrote it);
    /// otherwise the buffer is returned, for the caller to give back.
    pub fn feed(self, pool: &ReadPool, handle: impl FnOnce(Fed<'_>)) -> Option<Self> {
        if self.len < SHARE_MIN {
            handle(Fed::Slice(self.bytes()));
            return Some(self);
        }
        let pooled = Pooled {
            buffer: self.buffer,
            pool: pool.clone(),
        };
        handle(Fed::Owned(pooled, self.len));
        None
    }
}

/// A read buffer handed to a core whole (it opens the records in it where they lie): given
/// back to its pool when the last part the core kept is dropped, so the next big read reuses
/// it instead of zeroing fresh memory.
pub(crate) struct Pooled {
    buffer: Vec<u8>,
    pool: ReadPool,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buffer
    }
}

impl AsMut<[u8]> for Pooled {
    fn as_mut(&mut self) -> &mut [u8] {
        &mut self.buffer
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        self.pool.give(std::mem::take(&mut self.buffer));
    }
}

/// How [`Received::feed`] hands bytes over.
pub(crate) enum Fed<'a> {
    /// The buffer itself, and how many of its bytes were read.
    Owned(Pooled, usize),
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

#[cfg(test)]
mod tests {
    use super::*;
    use breeze_core::wire::Bytes;

    #[test]
    fn a_big_read_goes_back_to_the_pool_when_its_last_part_is_dropped() {
        let pool = ReadPool::default();
        let received = Received {
            buffer: vec![7u8; 64 * 1024],
            len: 40 * 1024,
        };
        let mut kept = None;
        let left = received.feed(&pool, |fed| match fed {
            Fed::Owned(buffer, len) => {
                assert_eq!(len, 40 * 1024);
                kept = Some(Bytes::from_owner(buffer).slice(1000..2000));
            }
            Fed::Slice(_) => panic!("a big read is handed over"),
        });
        assert!(left.is_none(), "a shared buffer is not handed back by hand");
        assert_eq!(pool.lock().len(), 0, "still held by a part");
        assert_eq!(kept.as_deref(), Some(&[7u8; 1000][..]));
        drop(kept);
        let back = pool.take();
        assert_eq!(
            back.len(),
            64 * 1024,
            "back whole: the next read needs no zeroing"
        );
    }

    #[test]
    fn a_small_read_is_lent_as_a_slice() {
        let pool = ReadPool::default();
        let received = Received {
            buffer: b"ping".to_vec(),
            len: 4,
        };
        let left = received.feed(&pool, |fed| match fed {
            Fed::Slice(bytes) => assert_eq!(bytes, b"ping"),
            Fed::Owned(..) => panic!("a small read is not handed over"),
        });
        assert!(left.is_some());
    }
}
