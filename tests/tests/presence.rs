//! Presence that costs what changes: a login's cost for the server, counted in frames, grows
//! with the observers it must tell (everyone on a small server, its watchers beyond that),
//! changes go out in batches, and on a large server a session hears only whom it watches,
//! while conversations and direct channels still find each other.

use breeze_core::client::{Event, Route};
use breeze_sim::{Node, Sim, SimConfig};
use std::time::Duration;

const SECOND: Duration = Duration::from_secs(1);

/// A server with `online` clients logged in and their presence settled; sessions past
/// `everyone_below` hear only whom they watch.
fn crowd(online: usize, everyone_below: usize, seed: u64) -> (Sim, Vec<Node>) {
    let mut config = SimConfig::new(seed);
    config.server.presence_everyone_below = everyone_below;
    // Only the server's work is counted here: no direct channels to set up.
    config.tweak_client = |c| c.direct_channels = false;
    let mut sim = Sim::new(config);
    let nodes: Vec<Node> = (0..online)
        .map(|i| sim.add_client(&format!("user{i:03}")))
        .collect();
    sim.run_until(20 * SECOND, |s| nodes.iter().all(|n| s.is_logged_in(*n)))
        .expect("everyone logged in");
    sim.advance(SECOND);
    (sim, nodes)
}

fn stats(sim: &Sim) -> breeze_core::server::Stats {
    sim.server().expect("a server").stats()
}

/// Frames the server sends for one more login, counted until its presence batch went out.
fn frames_for_one_login(sim: &mut Sim, name: &str) -> u64 {
    let before = stats(sim).frames_sent;
    let newcomer = sim.add_client(name);
    sim.run_until(5 * SECOND, |s| s.is_logged_in(newcomer))
        .expect("the newcomer logs in");
    sim.advance(SECOND / 2);
    stats(sim).frames_sent - before
}

#[test]
fn on_a_small_server_a_login_is_told_to_everyone_once_so_its_cost_is_linear() {
    let mut costs = Vec::new();
    for online in [10, 20, 40] {
        let (mut sim, _) = crowd(online, 200, 1);
        costs.push(frames_for_one_login(&mut sim, "newcomer"));
        sim.server().unwrap().check_invariants().unwrap();
    }
    // One batch frame to each of those online, plus a constant for the newcomer itself.
    let (a, b, c) = (costs[0], costs[1], costs[2]);
    assert_eq!(b - a, 10, "costs {costs:?}");
    assert_eq!(c - b, 20, "costs {costs:?}");
    assert!(a <= 10 + 8, "a login with 10 online cost {a} frames");
}

#[test]
fn on_a_large_server_a_login_costs_the_same_whatever_the_number_online() {
    let mut costs = Vec::new();
    for online in [20, 60] {
        let (mut sim, _) = crowd(online, 5, 2);
        costs.push(frames_for_one_login(&mut sim, "newcomer"));
        let server = sim.server().unwrap();
        server.check_invariants().unwrap();
    }
    // Told to the five everyone sessions (which logged in first) and to nobody else.
    assert_eq!(costs[0], costs[1], "costs {costs:?}");
    assert!(costs[0] <= 5 + 8, "costs {costs:?}");
}

#[test]
fn a_storm_of_logins_reaches_each_observer_in_one_batch() {
    let (mut sim, _) = crowd(10, 200, 3);
    let before = stats(&sim);
    let newcomers: Vec<Node> = (0..20)
        .map(|i| sim.add_client(&format!("storm{i:02}")))
        .collect();
    sim.run_until(5 * SECOND, |s| newcomers.iter().all(|n| s.is_logged_in(*n)))
        .expect("the storm logs in");
    sim.advance(SECOND);
    let after = stats(&sim);
    let frames = after.presence_frames - before.presence_frames;
    // Every newcomer gets its list (one page), and each of the 30 sessions one batch per
    // flush: far fewer than one frame per login per observer (20 × 30 = 600).
    assert!(
        frames <= 20 + 30 * 3,
        "{frames} presence frames for 20 logins seen by 30 sessions"
    );
    // Each user appears once per batch it changed in: 20 logins told to 30 sessions at most
    // once each, plus the lists.
    let entries = after.presence_entries - before.presence_entries;
    assert!(entries <= 20 * 30 + 20 * 30, "{entries} entries");
    for node in newcomers {
        let seen = sim
            .events(node)
            .iter()
            .filter(|(_, e)| matches!(e, Event::Presence { online: true, .. }))
            .count();
        assert_eq!(seen, 29, "every newcomer sees all the others once");
    }
}

#[test]
fn past_the_bound_a_session_hears_only_whom_it_watches_and_conversations_still_connect() {
    let mut config = SimConfig::new(4);
    config.server.presence_everyone_below = 2;
    let mut sim = Sim::new(config);
    let names = ["alice", "bob", "carol", "dave", "erin", "frank"];
    let mut nodes = Vec::new();
    for name in names {
        let node = sim.add_client(name);
        sim.run_until(5 * SECOND, |s| s.is_logged_in(node))
            .expect("logged in");
        nodes.push(node);
    }
    let (alice, carol, dave, erin, frank) = (nodes[0], nodes[2], nodes[3], nodes[4], nodes[5]);
    sim.advance(SECOND);
    let online_seen = |sim: &Sim, at: Node, name: &str| {
        sim.client(at)
            .and_then(|c| c.peers().find(|(n, _, _)| n.as_str() == name).map(|p| p.1))
            .unwrap_or(false)
    };
    // Alice and bob logged in while the server was small: they see everyone (and dial
    // everyone, so the others learn of them through their channels).
    assert!(online_seen(&sim, alice, "dave"));
    assert!(online_seen(&sim, alice, "frank"));
    // The later ones watch nobody yet, and hear nothing of each other.
    assert!(!online_seen(&sim, carol, "dave"));
    assert!(!online_seen(&sim, dave, "carol"));
    assert!(!online_seen(&sim, carol, "erin"));
    assert!(sim.events(carol).iter().any(|(_, e)| matches!(
        e,
        Event::PresenceComplete {
            everyone: false,
            ..
        }
    )));

    // Dave writes to carol: the message arrives, and each side now watches the other, so the
    // direct channel opens too.
    sim.send(dave, carol, "hello carol").unwrap();
    sim.run_until(5 * SECOND, |s| {
        s.received_from(carol, dave).len() == 1 && s.route(dave, carol) == Some(Route::Direct)
    })
    .expect("the message arrives and the channel opens");
    assert!(online_seen(&sim, carol, "dave"));

    // Carol opens a conversation with erin: she hears erin is online, and when erin leaves.
    sim.watch(carol, erin);
    sim.run_until(SECOND, |s| online_seen(s, carol, "erin"))
        .expect("erin shown online");
    sim.logout(erin);
    sim.run_until(SECOND, |s| !online_seen(s, carol, "erin"))
        .expect("erin shown offline");
    // Frank's comings and goings are not carol's business.
    sim.logout(frank);
    sim.advance(SECOND);
    assert!(!sim
        .events(carol)
        .iter()
        .any(|(_, e)| matches!(e, Event::Presence { user, .. } if user.as_str() == "frank")));
    sim.server().unwrap().check_invariants().unwrap();
}

#[test]
fn when_the_server_fills_up_everyone_sessions_hear_only_whom_they_watch() {
    let mut config = SimConfig::new(5);
    config.server.presence_everyone_below = 3;
    config.server.presence_everyone_until = 6;
    // What a client knows comes from the server alone here: no channels to learn through.
    config.tweak_client = |c| c.direct_channels = false;
    let mut sim = Sim::new(config);
    let login = |sim: &mut Sim, name: &str| {
        let node = sim.add_client(name);
        sim.run_until(5 * SECOND, |s| s.is_logged_in(node))
            .expect("logged in");
        sim.advance(SECOND);
        node
    };
    let alice = login(&mut sim, "alice");
    let bob = login(&mut sim, "bob");
    let _carol = login(&mut sim, "carol");
    let dave = login(&mut sim, "dave");
    sim.watch(alice, dave);
    let _erin = login(&mut sim, "erin");
    let online_seen = |sim: &Sim, at: Node, name: &str| {
        sim.client(at)
            .and_then(|c| c.peers().find(|(n, _, _)| n.as_str() == name).map(|p| p.1))
            .unwrap_or(false)
    };
    // Five online: alice still hears of everyone.
    assert!(online_seen(&sim, alice, "erin"));
    let ended = |sim: &Sim, at: Node| {
        sim.events(at).iter().any(|(_, e)| {
            matches!(
                e,
                Event::PresenceComplete {
                    everyone: false,
                    ..
                }
            )
        })
    };
    assert!(!ended(&sim, alice));

    // The sixth login fills the server: alice gets a fresh list of whom she watches (dave),
    // and erin, whom she does not watch, is no longer shown online.
    let _frank = login(&mut sim, "frank");
    assert!(ended(&sim, alice), "alice is told her view changed");
    assert!(ended(&sim, bob), "so is bob");
    assert!(online_seen(&sim, alice, "dave"));
    assert!(!online_seen(&sim, alice, "erin"));
    assert!(!online_seen(&sim, alice, "frank"));
    // Erin did not leave: alice is told her presence is unknown now, not that she went.
    let about_erin: Vec<&Event> = sim
        .events(alice)
        .iter()
        .map(|(_, e)| e)
        .filter(|e| match e {
            Event::Presence { user, .. } | Event::PresenceUnknown { user } => {
                user.as_str() == "erin"
            }
            _ => false,
        })
        .collect();
    assert!(
        matches!(
            about_erin[..],
            [
                Event::Presence { online: true, .. },
                Event::PresenceUnknown { .. }
            ]
        ),
        "{about_erin:?}"
    );
    // From now on alice hears of dave, and of nobody else.
    let _gina = login(&mut sim, "gina");
    assert!(!online_seen(&sim, alice, "gina"));
    assert!(!sim
        .events(alice)
        .iter()
        .any(|(_, e)| matches!(e, Event::Presence { user, .. } if user.as_str() == "gina")));
    sim.logout(dave);
    sim.run_until(SECOND, |s| !online_seen(s, alice, "dave"))
        .expect("dave shown offline");
    assert!(!online_seen(&sim, bob, "gina"), "bob watches nobody");
    sim.server().unwrap().check_invariants().unwrap();
}
