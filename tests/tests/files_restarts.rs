//! File transfer cases the application side ran into: an empty file, and a sender that
//! restarts mid-transfer and offers the same transfer again.

use breeze_core::client::{Direction, Event, Route};
use breeze_sim::{Node, Sim, SimConfig};
use std::time::Duration;

const SECOND: Duration = Duration::from_secs(1);
const MIB: usize = 1024 * 1024;

fn content(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 13) as u8)
        .collect()
}

fn pair() -> (Sim, Node, Node) {
    let mut config = SimConfig::new(11);
    config.net.bandwidth = Some(50_000_000);
    let mut sim = Sim::new(config);
    let (alice, bob) = (sim.add_client("alice"), sim.add_client("bob"));
    sim.run_until(5 * SECOND, |s| s.route(alice, bob) == Some(Route::Direct))
        .expect("direct");
    (sim, alice, bob)
}

fn done(sim: &Sim, at: Node, direction: Direction) -> Option<bool> {
    sim.events(at).iter().find_map(|(_, e)| match e {
        Event::FileDone {
            direction: d,
            verified,
            ..
        } if *d == direction => Some(*verified),
        _ => None,
    })
}

fn offered(sim: &Sim, at: Node) -> bool {
    sim.events(at)
        .iter()
        .any(|(_, e)| matches!(e, Event::FileOffered { .. }))
}

#[test]
fn an_empty_file_arrives_verified() {
    let (mut sim, alice, bob) = pair();
    sim.offer_file(alice, bob, 3, Vec::new()).unwrap();
    sim.run_until(SECOND, |s| offered(s, bob)).expect("offered");
    sim.accept_file(bob, alice, 3).unwrap();
    sim.run_until(5 * SECOND, |s| done(s, bob, Direction::Receiving).is_some())
        .expect("the empty file is verified and done");
    sim.run_until(SECOND, |s| done(s, alice, Direction::Sending).is_some())
        .expect("the sender hears the verdict");
    assert_eq!(done(&sim, bob, Direction::Receiving), Some(true));
    assert_eq!(done(&sim, alice, Direction::Sending), Some(true));
}

#[test]
fn a_sender_restarted_mid_transfer_offers_the_same_id_again_and_the_transfer_resumes() {
    let (mut sim, alice, bob) = pair();
    let file = content(8 * MIB, 1);
    sim.offer_file(alice, bob, 5, file.clone()).unwrap();
    sim.run_until(SECOND, |s| offered(s, bob)).expect("offered");
    sim.accept_file(bob, alice, 5).unwrap();
    sim.run_until(5 * SECOND, |s| {
        s.received_file(bob, alice, 5)
            .is_some_and(|f| f.len() > 3 * MIB)
    })
    .expect("under way");
    sim.crash_client(alice);
    sim.advance(SECOND);
    sim.start_client(alice);
    sim.run_until(5 * SECOND, |s| s.route(alice, bob) == Some(Route::Direct))
        .expect("direct again");
    // The restarted application offers the same file with the same id.
    sim.offer_file(alice, bob, 5, file.clone()).unwrap();
    sim.run_until(60 * SECOND, |s| {
        done(s, bob, Direction::Receiving).is_some()
    })
    .expect("the transfer resumes and completes");
    assert_eq!(done(&sim, bob, Direction::Receiving), Some(true));
    assert_eq!(sim.received_file(bob, alice, 5), Some(&file[..]));
}
