//! File transfer stories on the simulator: direct, relayed, across cuts, crashes and restarts.

use breeze_core::client::{Direction, Event, FileEvent, FileFailure, Route};
use breeze_core::Via;
use breeze_sim::{NetConfig, Node, Sim, SimConfig};
use std::time::Duration;

mod files_support;
use files_support::{content, done, offered, MIB, SECOND};

/// A world on a LAN-like network: 1 ms latency, 50 MB/s per connection direction.
fn lan(names: &[&str]) -> (Sim, Vec<Node>) {
    let mut config = SimConfig::new(5);
    config.net = NetConfig {
        bandwidth: Some(50_000_000),
        ..NetConfig::default()
    };
    let mut sim = Sim::new(config);
    let nodes: Vec<Node> = names.iter().map(|n| sim.add_client(n)).collect();
    let direct = |s: &Sim| {
        nodes.iter().all(|a| {
            nodes
                .iter()
                .filter(|b| *b != a)
                .all(|b| s.route(*a, *b) == Some(Route::Direct))
        })
    };
    sim.run_until(5 * SECOND, direct)
        .expect("every pair direct");
    (sim, nodes)
}

fn progress_routes(sim: &Sim, at: Node) -> Vec<Via> {
    let mut routes: Vec<Via> = sim
        .events(at)
        .iter()
        .filter_map(|(_, e)| match e {
            Event::File(FileEvent::Progress {
                route,
                direction: Direction::Sending,
                ..
            }) => Some(*route),
            _ => None,
        })
        .collect();
    routes.dedup();
    routes
}

fn send_and_accept(sim: &mut Sim, from: Node, to: Node, id: u64, file: &[u8]) {
    sim.offer_file(from, to, id, file.to_vec()).unwrap();
    sim.run_until(SECOND, |s| offered(s, to))
        .expect("offer arrives");
    sim.accept_file(to, from, id).unwrap();
}

#[test]
fn alice_sends_bob_a_file_directly_and_it_arrives_verified_without_touching_the_server() {
    let (mut sim, nodes) = lan(&["alice", "bob"]);
    let (alice, bob) = (nodes[0], nodes[1]);
    let file = content(3 * MIB, 1);
    send_and_accept(&mut sim, alice, bob, 7, &file);
    sim.run_until(5 * SECOND, |s| done(s, alice, Direction::Sending).is_some())
        .expect("done");
    assert_eq!(done(&sim, bob, Direction::Receiving), Some(true));
    assert_eq!(done(&sim, alice, Direction::Sending), Some(true));
    assert_eq!(sim.received_file(bob, alice, 7), Some(&file[..]));
    assert_eq!(progress_routes(&sim, alice), vec![Via::Direct]);
    assert_eq!(sim.server().unwrap().stats().relayed_file_bytes, 0);
}

#[test]
fn a_direct_path_cut_mid_transfer_continues_via_relay_from_the_acknowledged_offset() {
    let (mut sim, nodes) = lan(&["alice", "bob"]);
    let (alice, bob) = (nodes[0], nodes[1]);
    let file = content(8 * MIB, 2);
    send_and_accept(&mut sim, alice, bob, 9, &file);
    sim.run_until(5 * SECOND, |s| {
        s.received_file(bob, alice, 9)
            .is_some_and(|f| f.len() > 3 * MIB)
    })
    .expect("a good part arrives directly");
    sim.cut(alice, bob);
    sim.run_until(60 * SECOND, |s| {
        done(s, alice, Direction::Sending).is_some()
    })
    .expect("done");
    assert_eq!(done(&sim, bob, Direction::Receiving), Some(true));
    assert_eq!(sim.received_file(bob, alice, 9), Some(&file[..]));
    assert_eq!(progress_routes(&sim, alice), vec![Via::Direct, Via::Relay]);
    let relayed = sim.server().unwrap().stats().relayed_file_bytes as usize;
    assert!(
        relayed > 0 && relayed < 6 * MIB,
        "resumed, not restarted: {relayed} bytes relayed"
    );
}

#[test]
fn a_server_crash_does_not_disturb_a_direct_transfer() {
    let (mut sim, nodes) = lan(&["alice", "bob"]);
    let (alice, bob) = (nodes[0], nodes[1]);
    let file = content(6 * MIB, 3);
    send_and_accept(&mut sim, alice, bob, 11, &file);
    sim.run_until(5 * SECOND, |s| {
        s.received_file(bob, alice, 11)
            .is_some_and(|f| f.len() > MIB)
    })
    .expect("under way");
    sim.crash_server();
    sim.run_until(10 * SECOND, |s| {
        done(s, alice, Direction::Sending).is_some()
    })
    .expect("done");
    assert_eq!(done(&sim, bob, Direction::Receiving), Some(true));
    assert_eq!(sim.received_file(bob, alice, 11), Some(&file[..]));
    assert_eq!(progress_routes(&sim, alice), vec![Via::Direct]);
}

#[test]
fn a_receiver_restarted_mid_transfer_resumes_from_what_it_has_on_disk() {
    let (mut sim, nodes) = lan(&["alice", "bob"]);
    let (alice, bob) = (nodes[0], nodes[1]);
    let file = content(8 * MIB, 4);
    send_and_accept(&mut sim, alice, bob, 13, &file);
    sim.run_until(5 * SECOND, |s| {
        s.received_file(bob, alice, 13)
            .is_some_and(|f| f.len() > 4 * MIB)
    })
    .expect("half way");
    sim.crash_client(bob);
    let kept = sim.received_file(bob, alice, 13).unwrap().len();
    sim.advance(SECOND);
    sim.start_client(bob);
    // The new bob knows nothing; alice offers again when bob has been silent a while, and
    // bob's application accepts from the bytes it already holds.
    let offers = |s: &Sim| {
        s.events(bob)
            .iter()
            .filter(|(_, e)| matches!(e, Event::File(FileEvent::Offered { .. })))
            .count()
    };
    sim.run_until(30 * SECOND, |s| offers(s) >= 2)
        .expect("offered again");
    sim.accept_file(bob, alice, 13).unwrap();
    sim.advance(Duration::from_millis(50));
    let accepted_at = sim.events(alice).iter().rev().find_map(|(_, e)| match e {
        Event::File(FileEvent::Accepted { offset, .. }) => Some(*offset),
        _ => None,
    });
    assert_eq!(
        accepted_at,
        Some(kept as u64),
        "resumes at the bytes on disk"
    );
    sim.run_until(20 * SECOND, |s| {
        done(s, bob, Direction::Receiving).is_some()
    })
    .expect("done");
    assert_eq!(done(&sim, bob, Direction::Receiving), Some(true));
    assert_eq!(sim.received_file(bob, alice, 13), Some(&file[..]));
}

#[test]
fn a_corrupted_chunk_is_detected_and_the_file_is_not_reported_complete() {
    let (mut sim, nodes) = lan(&["alice", "bob"]);
    let (alice, bob) = (nodes[0], nodes[1]);
    let file = content(4 * MIB, 5);
    send_and_accept(&mut sim, alice, bob, 15, &file);
    sim.run_until(5 * SECOND, |s| {
        s.received_file(bob, alice, 15)
            .is_some_and(|f| f.len() > MIB)
    })
    .expect("under way");
    sim.corrupt_received_file(bob, alice, 15, 1000);
    sim.run_until(10 * SECOND, |s| {
        done(s, alice, Direction::Sending).is_some()
    })
    .expect("done");
    assert_eq!(done(&sim, bob, Direction::Receiving), Some(false));
    assert_eq!(
        done(&sim, alice, Direction::Sending),
        Some(false),
        "the sender learns it too"
    );
    // Offering the same file again starts over instead of repeating the verdict.
    let offers = |s: &Sim| {
        s.events(bob)
            .iter()
            .filter(|(_, e)| matches!(e, Event::File(FileEvent::Offered { .. })))
            .count()
    };
    sim.offer_file(alice, bob, 15, file.clone()).unwrap();
    sim.run_until(SECOND, |s| offers(s) == 2)
        .expect("offered afresh");
}

#[test]
fn a_chat_message_sent_during_a_big_transfer_arrives_within_normal_latency() {
    let (mut sim, nodes) = lan(&["alice", "bob"]);
    let (alice, bob) = (nodes[0], nodes[1]);
    let file = content(64 * MIB, 6);
    send_and_accept(&mut sim, alice, bob, 17, &file);
    sim.run_until(5 * SECOND, |s| {
        s.received_file(bob, alice, 17)
            .is_some_and(|f| f.len() > 8 * MIB)
    })
    .expect("in full flow");
    sim.send(alice, bob, "by the way").unwrap();
    let sent = sim.now();
    let took = sim
        .run_until(SECOND, |s| {
            s.received_from(bob, alice)
                .iter()
                .any(|r| r.text == "by the way")
        })
        .expect("the chat message arrives");
    // 128 KiB of file data may be queued ahead of it at 50 MB/s: about 3 ms, plus latency.
    assert!(
        took <= Duration::from_millis(20),
        "chat waited {took:?} behind the file (sent at {:?})",
        sent
    );
    assert!(
        done(&sim, bob, Direction::Receiving).is_none(),
        "while the file is still going"
    );
}

#[test]
fn an_offer_to_an_offline_user_is_refused_with_a_clear_reason() {
    let (mut sim, nodes) = lan(&["alice", "bob"]);
    let (alice, bob) = (nodes[0], nodes[1]);
    sim.logout(bob);
    sim.advance(SECOND);
    sim.offer_file(alice, bob, 19, content(1000, 7)).unwrap();
    sim.advance(SECOND);
    let refused = sim.events(alice).iter().any(|(_, e)| {
        matches!(
            e,
            Event::File(FileEvent::Failed {
                failure: FileFailure::PeerOffline,
                ..
            })
        )
    });
    assert!(refused);
}

#[test]
fn a_declined_offer_is_reported_to_the_sender() {
    let (mut sim, nodes) = lan(&["alice", "bob"]);
    let (alice, bob) = (nodes[0], nodes[1]);
    sim.offer_file(alice, bob, 21, content(1000, 8)).unwrap();
    sim.run_until(SECOND, |s| offered(s, bob)).expect("offered");
    sim.decline_file(bob, alice, 21).unwrap();
    sim.advance(SECOND);
    assert!(sim
        .events(alice)
        .iter()
        .any(|(_, e)| matches!(e, Event::File(FileEvent::Declined { .. }))));
}

#[test]
fn a_relayed_transfer_is_held_to_its_rate_and_chat_for_others_is_unaffected() {
    let mut config = SimConfig::new(8);
    config.net = NetConfig {
        bandwidth: Some(50_000_000),
        ..NetConfig::default()
    };
    config.server.file_relay.bytes_per_second = 1024 * 1024;
    config.server.file_relay.burst = 256 * 1024;
    config.tweak_client = |c| c.direct_channels = false;
    let mut sim = Sim::new(config);
    let (alice, bob, carol) = (
        sim.add_client("alice"),
        sim.add_client("bob"),
        sim.add_client("carol"),
    );
    sim.run_until(5 * SECOND, |s| {
        [alice, bob, carol].iter().all(|n| s.is_logged_in(*n))
    })
    .expect("online");
    let file = content(4 * MIB, 9);
    send_and_accept(&mut sim, alice, bob, 23, &file);
    let start = sim.now();
    sim.advance(SECOND);
    sim.send(carol, bob, "hello from carol").unwrap();
    sim.run_until(Duration::from_millis(50), |s| {
        !s.received_from(bob, carol).is_empty()
    })
    .expect("carol's chat is not held up by alice's file");
    sim.run_until(30 * SECOND, |s| {
        done(s, bob, Direction::Receiving).is_some()
    })
    .expect("done");
    let took = sim.now() - start;
    assert_eq!(sim.received_file(bob, alice, 23), Some(&file[..]));
    assert!(
        took >= Duration::from_millis(3500),
        "4 MiB at 1 MiB/s took only {took:?}"
    );
    assert!(sim.server().unwrap().stats().throttled_file_bytes > 0);
}

#[test]
fn a_throttled_relayed_transfer_resumes_on_time_and_never_waits_for_the_retry() {
    let mut config = SimConfig::new(9);
    // A LAN as fast as loopback: the resumed chunk reaches the server the moment it is sent.
    config.net = NetConfig {
        bandwidth: Some(50_000_000),
        latency: Duration::from_micros(20),
        jitter: Duration::ZERO,
        ..NetConfig::default()
    };
    // A 32 KiB chunk earns its budget in 10.4 ms: not a whole number of milliseconds, so a
    // wait rounded down has the sender resume a little too early.
    config.server.file_relay.bytes_per_second = 3 * 1024 * 1024;
    config.server.file_relay.burst = 256 * 1024;
    config.tweak_client = |c| c.direct_channels = false;
    let mut sim = Sim::new(config);
    let (alice, bob) = (sim.add_client("alice"), sim.add_client("bob"));
    sim.run_until(5 * SECOND, |s| {
        [alice, bob].iter().all(|n| s.is_logged_in(*n))
    })
    .expect("online");
    let file = content(4 * MIB, 10);
    send_and_accept(&mut sim, alice, bob, 24, &file);
    let start = sim.now();
    sim.run_until(30 * SECOND, |s| {
        done(s, bob, Direction::Receiving).is_some()
    })
    .expect("done");
    let took = sim.now() - start;
    assert_eq!(sim.received_file(bob, alice, 24), Some(&file[..]));
    assert!(sim.server().unwrap().stats().throttled_file_bytes > 0);
    // 4 MiB at 3 MiB/s with a 256 KiB burst: about 1.3 s. A resumed chunk dropped without a
    // word would leave the sender waiting for its 10-second retry.
    assert!(took < 3 * SECOND, "4 MiB at 3 MiB/s took {took:?}");
}

#[test]
fn transfers_received_at_once_share_one_bound_on_buffered_data() {
    let mut config = SimConfig::new(6);
    config.net = NetConfig {
        // Slow enough that every transfer is still receiving when the last is accepted.
        bandwidth: Some(2_000_000),
        ..NetConfig::default()
    };
    config.tweak_client = |c| {
        c.file_window = 2 * MIB as u64;
        c.max_file_buffered = 3 * MIB as u64;
    };
    let mut sim = Sim::new(config);
    let names = ["bob", "alice", "carol", "dave"];
    let nodes: Vec<Node> = names.iter().map(|n| sim.add_client(n)).collect();
    sim.run_until(5 * SECOND, |s| {
        nodes[1..]
            .iter()
            .all(|n| s.route(*n, nodes[0]) == Some(Route::Direct))
    })
    .expect("every sender direct to bob");
    let bob = nodes[0];
    let files: Vec<Vec<u8>> = (0..3).map(|i| content(3 * MIB, 10 + i as u8)).collect();
    for (i, sender) in nodes[1..].iter().enumerate() {
        sim.offer_file(*sender, bob, 20 + i as u64, files[i].clone())
            .unwrap();
    }
    sim.run_until(SECOND, |s| {
        s.events(bob)
            .iter()
            .filter(|(_, e)| matches!(e, Event::File(FileEvent::Offered { .. })))
            .count()
            == 3
    })
    .expect("three offers arrive");
    for (i, sender) in nodes[1..].iter().enumerate() {
        sim.accept_file(bob, *sender, 20 + i as u64).unwrap();
    }
    let windows: Vec<Option<u64>> = names[1..]
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let from = breeze_core::wire::UserName::new(*name).unwrap();
            let id = breeze_core::wire::TransferId(20 + i as u64);
            sim.client(bob).unwrap().receiving_window(&from, id)
        })
        .collect();
    // The first gets the configured window, the second what is left of the bound, the third
    // the smallest window: never a full window each.
    let mib = MIB as u64;
    assert_eq!(windows, vec![Some(2 * mib), Some(mib), Some(mib)]);
    sim.run_until(60 * SECOND, |s| {
        nodes[1..]
            .iter()
            .all(|n| done(s, *n, Direction::Sending).is_some())
    })
    .expect("all three done");
    for (i, sender) in nodes[1..].iter().enumerate() {
        assert_eq!(
            sim.received_file(bob, *sender, 20 + i as u64),
            Some(&files[i][..])
        );
    }
}
