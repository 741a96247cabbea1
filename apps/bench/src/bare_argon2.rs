//! The yardstick for enrolments: argon2id with the server's parameters (the crate's
//! defaults, `breeze-server`'s `store/password.rs`), hashed in a loop on as many threads as
//! the server hashes on (one per core), with nothing else to do. An enrolment can cost no
//! less than one such hash; how close the server comes is the figure `idle` reports.

use argon2::{Algorithm, Argon2, Block, Params, Version};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Hashes per second over `threads` threads hashing for `duration`.
pub fn hashes_per_second(threads: usize, duration: Duration) -> f64 {
    let stop = AtomicBool::new(false);
    let done = AtomicU64::new(0);
    let start = Instant::now();
    std::thread::scope(|scope| {
        for t in 0..threads.max(1) {
            let (stop, done) = (&stop, &done);
            scope.spawn(move || {
                let params = Params::default();
                // One block of memory per thread, reused by every hash, as the server's pool
                // does during a storm: a fresh 19 MiB per hash would add its page faults.
                let mut memory = vec![Block::new(); params.block_count()];
                let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
                let salt = [t as u8; 16];
                let mut out = [0u8; 32];
                while !stop.load(Ordering::Relaxed) {
                    if argon2
                        .hash_password_into_with_memory(
                            b"bench-password",
                            &salt,
                            &mut out,
                            &mut memory[..],
                        )
                        .is_ok()
                    {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
        std::thread::sleep(duration);
        stop.store(true, Ordering::Relaxed);
    });
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}
