//! The work memory of argon2, lent out to at most one check per core at a time.
//!
//! Each hash needs `m_cost` KiB (19 MiB with the default parameters). Checks run on the
//! server driver's password threads (one per core), and also on whatever thread the CLI uses:
//! this pool is what bounds the memory whoever calls, by making an extra caller wait for a
//! block to come back. Blocks are reused while checks keep coming, and all freed once none is
//! lent out, so a storm of enrolments leaves nothing behind: with mimalloc (the server's
//! allocator) a freed 19 MiB block is its own segment and goes back to the operating system.

use argon2::Block;
use std::sync::{Condvar, Mutex, MutexGuard};

pub(super) struct PasswordMemory {
    state: Mutex<State>,
    returned: Condvar,
    /// Most blocks lent out at once.
    limit: usize,
}

struct State {
    /// Blocks not lent out, kept for the next check while some are.
    free: Vec<Vec<Block>>,
    lent: usize,
}

/// A block of argon2 memory, given back to the pool when dropped.
pub(super) struct Lent<'a> {
    pool: &'a PasswordMemory,
    blocks: Vec<Block>,
}

impl std::ops::Deref for Lent<'_> {
    type Target = Vec<Block>;
    fn deref(&self) -> &Vec<Block> {
        &self.blocks
    }
}

impl std::ops::DerefMut for Lent<'_> {
    fn deref_mut(&mut self) -> &mut Vec<Block> {
        &mut self.blocks
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

    /// A block of memory, waiting while `limit` are lent out.
    pub(super) fn lend(&self) -> Lent<'_> {
        let mut state = self.lock();
        while state.lent >= self.limit {
            state = self
                .returned
                .wait(state)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        state.lent += 1;
        let blocks = state.free.pop().unwrap_or_default();
        Lent { pool: self, blocks }
    }

    /// Blocks lent out now and kept free now (for tests and the bench).
    #[cfg(test)]
    pub(super) fn counts(&self) -> (usize, usize) {
        let state = self.lock();
        (state.lent, state.free.len())
    }

    fn give_back(&self, blocks: Vec<Block>) {
        let mut state = self.lock();
        state.lent = state.lent.saturating_sub(1);
        if state.lent == 0 {
            // Idle: free everything, this block too (dropped outside the lock).
            let freed = std::mem::take(&mut state.free);
            drop(state);
            self.returned.notify_one();
            drop(freed);
            drop(blocks);
            return;
        }
        state.free.push(blocks);
        drop(state);
        self.returned.notify_one();
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
        self.pool.give_back(std::mem::take(&mut self.blocks));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn at_most_limit_blocks_are_lent_and_all_are_freed_when_idle() {
        let pool = Arc::new(PasswordMemory::new(2));
        let (now, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let threads: Vec<_> = (0..6)
            .map(|_| {
                let (pool, now, most) = (pool.clone(), now.clone(), most.clone());
                std::thread::spawn(move || {
                    let mut block = pool.lend();
                    block.resize(4, Block::new());
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
