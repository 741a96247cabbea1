//! What the file transfer stories share: file contents and what the clients reported.

use breeze_core::client::{Direction, Event, FileEvent};
use breeze_sim::{Node, Sim};
use std::time::Duration;

pub const SECOND: Duration = Duration::from_secs(1);
pub const MIB: usize = 1024 * 1024;

/// `len` bytes that differ with `seed` and along the file (no two chunks alike).
pub fn content(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 13) as u8)
        .collect()
}

/// `at` has been offered a file.
pub fn offered(sim: &Sim, at: Node) -> bool {
    sim.events(at)
        .iter()
        .any(|(_, e)| matches!(e, Event::File(FileEvent::Offered { .. })))
}

/// Whether `at`'s first finished transfer in `direction` was verified, once there is one.
pub fn done(sim: &Sim, at: Node, direction: Direction) -> Option<bool> {
    sim.events(at).iter().find_map(|(_, e)| match e {
        Event::File(FileEvent::Done {
            direction: d,
            verified,
            ..
        }) if *d == direction => Some(*verified),
        _ => None,
    })
}
