//! File transfer cases the application side ran into: an empty file, a sender that restarts
//! mid-transfer and offers the same transfer again, and one that crashes and stays away.

use breeze_core::client::{Direction, Event, FileEvent, FileFailure, Route};
use breeze_sim::{Node, Sim, SimConfig};
use std::time::Duration;

mod files_support;
use files_support::{content, done, offered, MIB, SECOND};

fn pair() -> (Sim, Node, Node) {
    let mut config = SimConfig::new(11);
    config.net.bandwidth = Some(50_000_000);
    let mut sim = Sim::new(config);
    let (alice, bob) = (sim.add_client("alice"), sim.add_client("bob"));
    sim.run_until(5 * SECOND, |s| s.route(alice, bob) == Some(Route::Direct))
        .expect("direct");
    (sim, alice, bob)
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

#[test]
fn a_sender_that_crashes_and_stays_away_is_reported_stalled_and_a_later_offer_resumes() {
    let (mut sim, alice, bob) = pair();
    let file = content(8 * MIB, 2);
    sim.offer_file(alice, bob, 6, file.clone()).unwrap();
    sim.run_until(SECOND, |s| offered(s, bob)).expect("offered");
    sim.accept_file(bob, alice, 6).unwrap();
    sim.run_until(5 * SECOND, |s| {
        s.received_file(bob, alice, 6)
            .is_some_and(|f| f.len() > 3 * MIB)
    })
    .expect("under way");
    sim.crash_client(alice);
    let crashed = sim.now();
    let stall = bob_config_stall(&sim, bob);
    let stalled = |s: &Sim| {
        s.events(bob).iter().find_map(|(at, e)| match e {
            Event::File(FileEvent::Failed {
                direction: Direction::Receiving,
                failure,
                ..
            }) => Some((*at, *failure)),
            _ => None,
        })
    };
    sim.run_until(stall + 5 * SECOND, |s| stalled(s).is_some())
        .expect("bob gives up within the stall bound");
    let (at, failure) = stalled(&sim).unwrap();
    assert_eq!(failure, FileFailure::Stalled);
    assert!(
        at - crashed >= stall - SECOND && at - crashed <= stall + SECOND,
        "reported {:?} after the crash, the bound is {stall:?}",
        at - crashed
    );
    let kept = sim.received_file(bob, alice, 6).unwrap().len();
    assert!(kept > 3 * MIB, "the partial file is kept");
    assert_eq!(sim.received_file(bob, alice, 6), Some(&file[..kept]));
    assert!(
        !sim.events(bob)
            .iter()
            .any(|(_, e)| matches!(e, Event::File(FileEvent::Done { .. }))),
        "nothing is presented as complete"
    );

    // Much later the sender's application starts again and offers the same file.
    sim.advance(60 * SECOND);
    sim.start_client(alice);
    sim.run_until(5 * SECOND, |s| s.route(alice, bob) == Some(Route::Direct))
        .expect("direct again");
    let offers = |s: &Sim| {
        s.events(bob)
            .iter()
            .filter(|(_, e)| matches!(e, Event::File(FileEvent::Offered { .. })))
            .count()
    };
    sim.offer_file(alice, bob, 6, file.clone()).unwrap();
    sim.run_until(SECOND, |s| offers(s) == 2)
        .expect("offered afresh");
    let restarted = sim.now();
    sim.accept_file(bob, alice, 6).unwrap();
    let accepted_at = |s: &Sim| {
        s.events(alice).iter().find_map(|(at, e)| match e {
            Event::File(FileEvent::Accepted { offset, .. }) if *at >= restarted => Some(*offset),
            _ => None,
        })
    };
    sim.run_until(SECOND, |s| accepted_at(s).is_some())
        .expect("accepted");
    let accepted_at = accepted_at(&sim);
    assert_eq!(
        accepted_at,
        Some(kept as u64),
        "resumes at the bytes on disk"
    );
    sim.run_until(20 * SECOND, |s| {
        done(s, bob, Direction::Receiving).is_some()
    })
    .expect("the transfer completes");
    assert_eq!(done(&sim, bob, Direction::Receiving), Some(true));
    assert_eq!(sim.received_file(bob, alice, 6), Some(&file[..]));
}

#[test]
fn a_live_sender_cut_off_briefly_is_not_reported_stalled() {
    let (mut sim, alice, bob) = pair();
    let file = content(8 * MIB, 3);
    sim.offer_file(alice, bob, 8, file.clone()).unwrap();
    sim.run_until(SECOND, |s| offered(s, bob)).expect("offered");
    sim.accept_file(bob, alice, 8).unwrap();
    sim.run_until(5 * SECOND, |s| {
        s.received_file(bob, alice, 8)
            .is_some_and(|f| f.len() > 3 * MIB)
    })
    .expect("under way");
    // No route at all for most of the stall bound: direct cut, server down.
    sim.cut(alice, bob);
    sim.crash_server();
    let stall = bob_config_stall(&sim, bob);
    sim.advance(stall - 10 * SECOND);
    sim.heal(alice, bob);
    sim.restart_server();
    sim.run_until(60 * SECOND, |s| {
        done(s, bob, Direction::Receiving).is_some()
    })
    .expect("the transfer completes");
    assert_eq!(done(&sim, bob, Direction::Receiving), Some(true));
    assert!(!sim
        .events(bob)
        .iter()
        .any(|(_, e)| matches!(e, Event::File(FileEvent::Failed { .. }))));
}

#[test]
fn an_offer_from_a_sender_that_vanished_lapses_and_a_live_one_stays_open() {
    let (mut sim, alice, bob) = pair();
    let stall = bob_config_stall(&sim, bob);
    let failures = |s: &Sim| {
        s.events(bob)
            .iter()
            .filter_map(|(at, e)| match e {
                Event::File(FileEvent::Failed {
                    id,
                    direction: Direction::Receiving,
                    failure,
                    ..
                }) => Some((*at, *id, *failure)),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    // An offer nobody answers stays open as long as its sender is there (it repeats it).
    sim.offer_file(alice, bob, 9, content(MIB, 4)).unwrap();
    sim.run_until(SECOND, |s| offered(s, bob)).expect("offered");
    sim.advance(3 * stall);
    assert!(failures(&sim).is_empty(), "{:?}", failures(&sim));
    // Its sender crashes and never comes back: the offer lapses within the bound.
    sim.crash_client(alice);
    let crashed = sim.now();
    sim.run_until(stall + 15 * SECOND, |s| !failures(s).is_empty())
        .expect("the offer lapses");
    let (at, id, failure) = failures(&sim)[0];
    assert_eq!((id.0, failure), (9, FileFailure::OfferLapsed));
    assert!(
        at - crashed <= stall + 10 * SECOND,
        "lapsed {:?} after the crash, the bound is {stall:?} since the last repeat",
        at - crashed
    );
    // It can no longer be accepted.
    assert!(sim.accept_file(bob, alice, 9).is_err());
}

fn bob_config_stall(sim: &Sim, bob: Node) -> Duration {
    sim.client(bob).expect("bob runs").config().file_stall
}
