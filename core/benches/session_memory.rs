//! Memory the server core keeps per logged-in, idle session: `SESSIONS` clients through the
//! real handshake and login (past `presence_everyone_below`, as on a large server), counted by
//! a counting allocator, and what each part of a session costs.
//! Run with `cargo bench -p breeze-core --bench session_memory`; prints bytes per session.
//!
//! The host's own costs (socket, tasks, buffers) come on top: `breeze-bench idle` measures the
//! whole process.

mod counting;
mod support;

use std::time::Instant;

#[global_allocator]
static ALLOCATOR: counting::Counting = counting::Counting;

const SESSIONS: u64 = if cfg!(debug_assertions) { 300 } else { 5_000 };

fn main() {
    let now = Instant::now();
    // The first logins make the tables' first allocations: measure the growth past them.
    let (early, _) = support::server_with_online(SESSIONS / 10, now);
    drop(early);
    let before = counting::live();
    let (server, sealers) = support::server_with_online(SESSIONS, now);
    // The clients' sealers are the load's, not the server's.
    let sealers_bytes = sealers.capacity() * std::mem::size_of_val(&sealers[0]);
    let after = counting::live();
    let kept = after.saturating_sub(before).saturating_sub(sealers_bytes);
    assert_eq!(server.stats().online, SESSIONS as usize);
    println!(
        "session_memory: {SESSIONS} idle sessions: {kept} bytes, {:.0} per session",
        kept as f64 / SESSIONS as f64
    );
    parts(server, now);
}

/// What each step of one more login keeps, averaged over `EXTRA` logins (the tables do not
/// grow on the way for most of them, so this is the sessions' own cost).
fn parts(mut server: breeze_core::server::Server, now: Instant) {
    const EXTRA: u64 = 100;
    let (mut connected, mut shaken, mut logged_in) = (0, 0, 0);
    for i in SESSIONS..SESSIONS + EXTRA {
        let start = counting::live();
        let conn = support::connect(&mut server, i, now);
        let after_connect = counting::live();
        let mut sealer = support::handshake(&mut server, conn, i, now);
        let after_handshake = counting::live();
        support::log_in(&mut server, conn, &mut sealer, i, now);
        let after_login = counting::live();
        connected += after_connect as i64 - start as i64;
        shaken += after_handshake as i64 - after_connect as i64;
        logged_in += after_login as i64 - after_handshake as i64;
    }
    let per = |bytes: i64| bytes / EXTRA as i64;
    println!(
        "session_memory: per login, connected {} B, handshake {} B, logged in {} B",
        per(connected),
        per(shaken),
        per(logged_in)
    );
}
