//! The work memory of argon2, lent out to at most one check per core at a time, and given
//! back to the operating system as soon as no check needs it.
//!
//! Each hash needs `m_cost` KiB (19 MiB with the default parameters). Checks run on the
//! server driver's password threads (one per core), and also on whatever thread the CLI uses:
//! this pool is what bounds the memory whoever calls, by making an extra caller wait for a
//! block to come back. Blocks are reused while checks keep coming, and all unmapped once none
//! is lent out.
//!
//! The blocks are mapped from the kernel directly (`mmap`), not taken from the allocator:
//! measured with mimalloc, a freed 19 MiB allocation stayed resident in an idle server (the
//! allocator purges freed memory lazily, on its next calls), so two cores' worth of argon2
//! memory outlived every enrolment storm. `munmap` returns it at once, whatever the
//! allocator.

use crate::StoreError;
use argon2::Block;
use std::ptr::NonNull;
use std::sync::{Condvar, Mutex, MutexGuard};

pub(super) struct PasswordMemory {
    state: Mutex<State>,
    returned: Condvar,
    /// Most blocks lent out at once.
    limit: usize,
}

struct State {
    /// Blocks not lent out, kept for the next check while some are.
    free: Vec<Mapped>,
    lent: usize,
}

/// Zeroed memory for `len` argon2 blocks, mapped privately from the kernel.
struct Mapped {
    start: NonNull<Block>,
    len: usize,
}

// SAFETY: `Mapped` owns its mapping alone (nothing else holds the pointer), like a `Vec`.
unsafe impl Send for Mapped {}

impl Mapped {
    fn new(len: usize) -> Result<Mapped, StoreError> {
        let bytes = len.max(1) * std::mem::size_of::<Block>();
        // SAFETY: an anonymous private mapping of `bytes`: no file, no aliasing; the result is
        // checked before use.
        let start = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if start == libc::MAP_FAILED {
            return Err(StoreError::Memory(std::io::Error::last_os_error()));
        }
        let start = NonNull::new(start.cast::<Block>())
            .ok_or_else(|| StoreError::Memory(std::io::ErrorKind::OutOfMemory.into()))?;
        Ok(Mapped {
            start,
            len: len.max(1),
        })
    }

    fn blocks(&mut self) -> &mut [Block] {
        // SAFETY: the mapping holds `len` blocks, is page-aligned (more than a block's 64
        // bytes), starts zeroed (a valid `Block`: plain integers) and is borrowed mutably
        // through `self` only.
        unsafe { std::slice::from_raw_parts_mut(self.start.as_ptr(), self.len) }
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        let bytes = self.len * std::mem::size_of::<Block>();
        // SAFETY: unmaps exactly the mapping made in `new`, which nothing borrows any more.
        unsafe {
            libc::munmap(self.start.as_ptr().cast(), bytes);
        }
    }
}

/// Memory for one argon2 run, given back to the pool when dropped.
pub(super) struct Lent<'a> {
    pool: &'a PasswordMemory,
    mapped: Option<Mapped>,
}

impl Lent<'_> {
    /// At least `len` blocks (the contents are scratch: whatever a previous run left).
    pub(super) fn blocks(&mut self, len: usize) -> Result<&mut [Block], StoreError> {
        if self.mapped.as_ref().is_none_or(|m| m.len != len) {
            self.mapped = None;
            self.mapped = Some(Mapped::new(len)?);
        }
        let mapped = self
            .mapped
            .as_mut()
            .ok_or_else(|| StoreError::Memory(std::io::ErrorKind::OutOfMemory.into()))?;
        Ok(mapped.blocks())
    }
}

impl PasswordMemory {
    /// At most `limit` blocks at once (at least one).
    pub(super) fn new(limit: usize) -> PasswordMemory {
        PasswordMemory {
            state: Mutex::new(State {
                free: Vec::new(),
                lent: 0,
            }),
            returned: Condvar::new(),
            limit: limit.max(1),
        }
    }

    /// Memory for a run, waiting while `limit` are lent out.
    pub(super) fn lend(&self) -> Lent<'_> {
        let mut state = self.lock();
        while state.lent >= self.limit {
            state = self
                .returned
                .wait(state)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        state.lent += 1;
        let mapped = state.free.pop();
        Lent { pool: self, mapped }
    }

    /// Blocks lent out now and kept free now.
    #[cfg(test)]
    pub(super) fn counts(&self) -> (usize, usize) {
        let state = self.lock();
        (state.lent, state.free.len())
    }

    fn give_back(&self, mapped: Option<Mapped>) {
        let mut state = self.lock();
        state.lent = state.lent.saturating_sub(1);
        let freed = if state.lent == 0 {
            // Idle: unmap everything, this one too (outside the lock).
            std::mem::take(&mut state.free)
        } else {
            state.free.extend(mapped);
            Vec::new()
        };
        drop(state);
        self.returned.notify_one();
        drop(freed);
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The blocks are scratch space, overwritten by every run: a poisoned lock is harmless.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        self.pool.give_back(self.mapped.take());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn at_most_limit_blocks_are_lent_and_all_are_unmapped_when_idle() {
        let pool = Arc::new(PasswordMemory::new(2));
        let (now, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let threads: Vec<_> = (0..6)
            .map(|_| {
                let (pool, now, most) = (pool.clone(), now.clone(), most.clone());
                std::thread::spawn(move || {
                    let mut lent = pool.lend();
                    let blocks = lent.blocks(4).unwrap();
                    assert_eq!(blocks.len(), 4);
                    blocks[3] = Block::new();
                    most.fetch_max(now.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(10));
                    now.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert!(most.load(Ordering::SeqCst) <= 2);
        assert_eq!(pool.counts(), (0, 0), "nothing kept once idle");
    }
}
