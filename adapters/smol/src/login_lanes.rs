//! Where the server driver runs its hosts' login checks: a fixed pool of threads, one per
//! core, for password checks, and one thread of its own for key logins.
//!
//! A password check is argon2: tens of milliseconds of one core and about 19 MiB of memory
//! each, by design. Run on smol's blocking pool, a storm of enrolments would start hundreds
//! of them at once (the pool grows to 500 threads): more memory, no more throughput, and the
//! cheap key logins queued behind them. On a pool as wide as the machine, at most one hash
//! per core runs at a time and the others wait in the queue, holding only their requests.
//! Key logins are an indexed lookup each: one thread answers them in order, beside the
//! hashes, so a server restart's storm of returning clients never waits for an enrolment.
//!
//! The queues are unbounded, but what waits in them is bounded by the core: one check per
//! connection still logging in, each holding at most one frame.

use std::num::NonZeroUsize;
use std::thread;

type Job = Box<dyn FnOnce() + Send>;

/// A fixed set of threads taking jobs from one queue, in order; they end once the pool is
/// dropped and the queue is empty.
pub(crate) struct WorkerPool {
    jobs: async_channel::Sender<Job>,
}

impl WorkerPool {
    /// `threads` threads named `name-N`. A thread that cannot be started leaves the pool
    /// narrower; with none at all, jobs go to smol's blocking pool instead of never running
    /// (never on the caller's thread: that is the owner task, which the job answers).
    pub(crate) fn new(name: &str, threads: NonZeroUsize) -> WorkerPool {
        let (jobs, queue) = async_channel::unbounded::<Job>();
        let mut started = 0;
        for n in 0..threads.get() {
            let queue = queue.clone();
            let spawned = thread::Builder::new()
                .name(format!("{name}-{n}"))
                .spawn(move || {
                    while let Ok(job) = queue.recv_blocking() {
                        job();
                    }
                });
            match spawned {
                Ok(_) => started += 1,
                Err(error) => tracing::warn!(%error, "cannot start a {name} thread"),
            }
        }
        if started == 0 {
            queue.close();
        }
        WorkerPool { jobs }
    }

    /// Runs `job` on the next free thread.
    pub(crate) fn run(&self, job: impl FnOnce() + Send + 'static) {
        if let Err(refused) = self.jobs.try_send(Box::new(job)) {
            let job = refused.into_inner();
            smol::spawn(smol::unblock(job)).detach();
        }
    }
}

/// The threads the server's login checks run on.
pub(crate) struct LoginLanes {
    /// Password checks: as many threads as cores.
    pub passwords: WorkerPool,
    /// Key logins: one thread.
    pub keys: WorkerPool,
}

impl LoginLanes {
    /// `password_threads` for hashing (default: the cores this process may use).
    pub(crate) fn new(password_threads: Option<NonZeroUsize>) -> LoginLanes {
        let cores = thread::available_parallelism().unwrap_or(NonZeroUsize::MIN);
        LoginLanes {
            passwords: WorkerPool::new("breeze-password", password_threads.unwrap_or(cores)),
            keys: WorkerPool::new("breeze-key-login", NonZeroUsize::MIN),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn no_more_jobs_run_at_once_than_the_pool_has_threads() {
        let pool = WorkerPool::new("test", NonZeroUsize::new(2).unwrap());
        let (running, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (tx, rx) = std::sync::mpsc::channel();
        for _ in 0..8 {
            let (running, most, tx) = (running.clone(), most.clone(), tx.clone());
            pool.run(move || {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                thread::sleep(Duration::from_millis(20));
                running.fetch_sub(1, Ordering::SeqCst);
                let _ = tx.send(());
            });
        }
        for _ in 0..8 {
            rx.recv_timeout(Duration::from_secs(10)).unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), 2);
    }
}
