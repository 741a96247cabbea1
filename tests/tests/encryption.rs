//! What a tap on the LAN and the server's disk see of a whole session (nothing a user typed
//! or sent), and how keys decide who anyone is: run on the simulator's virtual clock, with the
//! bytes checked as they crossed the virtual network.

use breeze_core::client::{Direction, Event, Route};
use breeze_core::Via;
use breeze_sim::{Node, Sim, SimConfig};

mod files_support;
use files_support::{content, done, offered, MIB, SECOND};

fn world(names: &[&str]) -> (Sim, Vec<Node>) {
    let mut sim = Sim::new(SimConfig::new(11));
    let nodes: Vec<Node> = names.iter().map(|n| sim.add_client(n)).collect();
    (sim, nodes)
}

fn direct(sim: &Sim, a: Node, b: Node) -> bool {
    sim.route(a, b) == Some(Route::Direct) && sim.route(b, a) == Some(Route::Direct)
}

fn texts(sim: &Sim, to: Node, from: Node) -> Vec<String> {
    sim.received_from(to, from)
        .iter()
        .map(|r| r.text.clone())
        .collect()
}

/// Whether `needle` appears anywhere in `haystack`.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn a_whole_session_leaves_no_password_text_or_file_content_on_the_wire_or_the_servers_disk() {
    let mut sim = Sim::new(SimConfig::new(11));
    sim.start_capture();
    let (alice, bob, carol) = (
        sim.add_client("alice"),
        sim.add_client("bob"),
        sim.add_client("carol"),
    );
    sim.run_until(5 * SECOND, |s| direct(s, alice, bob))
        .expect("alice and bob direct");

    // Direct chat, relayed chat, a message for someone offline, a direct and a relayed file.
    sim.send(alice, bob, "direct: the launch code is tangerine")
        .unwrap();
    sim.advance(SECOND);
    sim.cut(alice, bob);
    sim.advance(20 * SECOND);
    sim.send(alice, bob, "relayed: meet at the north gate")
        .unwrap();
    sim.advance(SECOND);
    sim.logout(carol);
    sim.advance(SECOND);
    sim.send(alice, carol, "offline: the spare key is under the mat")
        .unwrap();
    sim.advance(SECOND);
    let relayed_file = content(MIB / 4, 42);
    sim.offer_file(alice, bob, 1, relayed_file.clone()).unwrap();
    sim.run_until(5 * SECOND, |s| offered(s, bob))
        .expect("offer through the relay");
    sim.accept_file(bob, alice, 1).unwrap();
    sim.run_until(60 * SECOND, |s| {
        done(s, bob, Direction::Receiving).is_some()
    })
    .expect("relayed file arrives");
    sim.heal(alice, bob);
    sim.run_until(30 * SECOND, |s| direct(s, alice, bob))
        .expect("direct again");
    let direct_file = content(MIB / 4, 77);
    sim.offer_file(bob, alice, 2, direct_file.clone()).unwrap();
    sim.run_until(5 * SECOND, |s| offered(s, alice))
        .expect("direct offer");
    sim.accept_file(alice, bob, 2).unwrap();
    sim.run_until(60 * SECOND, |s| {
        done(s, alice, Direction::Receiving).is_some()
    })
    .expect("direct file arrives");
    // What was stored waits on the server's "disk" for now; then everyone reconnects.
    let stored = sim.store.stored_bytes();
    assert_eq!(sim.store.stored_for(sim.name(carol)), 1);
    sim.crash_server();
    sim.advance(SECOND);
    sim.restart_server();
    sim.start_client(carol);
    sim.run_until(60 * SECOND, |s| texts(s, carol, alice).len() == 1)
        .expect("carol gets her stored message");

    // Everything arrived, as it should.
    assert_eq!(
        texts(&sim, bob, alice),
        [
            "direct: the launch code is tangerine",
            "relayed: meet at the north gate"
        ]
    );
    assert_eq!(sim.received_from(bob, alice)[1].route, Via::Relay);
    assert_eq!(sim.received_file(bob, alice, 1), Some(&relayed_file[..]));
    assert_eq!(sim.received_file(alice, bob, 2), Some(&direct_file[..]));

    // And none of it crossed the network, or rested on the server, in the clear.
    let wire = sim.captured();
    assert!(wire.len() > MIB / 2, "the capture saw the files go by");
    for secret in [
        "alice-password",
        "bob-password",
        "carol-password",
        "tangerine",
        "north gate",
        "under the mat",
    ] {
        assert!(
            !contains(wire, secret.as_bytes()),
            "{secret:?} is on the wire"
        );
        assert!(
            !contains(&stored, secret.as_bytes()),
            "{secret:?} is on the server's disk"
        );
    }
    for file in [&relayed_file, &direct_file] {
        for piece in file.chunks(4096).step_by(7) {
            assert!(!contains(wire, &piece[..64]), "file content is on the wire");
        }
    }
}

#[test]
fn a_server_with_another_key_at_the_same_address_is_refused_before_any_password_is_sent() {
    let (mut sim, nodes) = world(&["alice", "bob"]);
    let alice = nodes[0];
    sim.run_until(5 * SECOND, |s| s.is_logged_in(alice))
        .expect("alice logs in and pins the key");
    let pinned = sim.server_key();
    sim.crash_server();
    sim.replace_server_key();
    assert_ne!(sim.server_key(), pinned);
    sim.restart_server();
    sim.start_capture();
    let logins_before = sim.server_events().len();
    sim.advance(30 * SECOND);

    let refused = sim.events(alice).iter().find_map(|(_, e)| match e {
        Event::ServerKeyChanged {
            expected,
            presented,
        } => Some((*expected, *presented)),
        _ => None,
    });
    assert_eq!(refused, Some((pinned.fingerprint(), sim.server_key())));
    assert!(!sim.is_logged_in(alice));
    // The impostor never got as far as a login: no check was asked for, nothing was heard.
    let later = &sim.server_events()[logins_before..];
    assert!(
        !later.iter().any(|(_, e)| matches!(
            e,
            breeze_core::server::Event::LoggedIn { user, .. }
                | breeze_core::server::Event::LoginRefused { user, .. }
                if user.as_str() == "alice"
        )),
        "{later:?}"
    );
    assert!(
        !contains(sim.captured(), b"alice"),
        "not even the user name is sent"
    );
    assert!(!contains(sim.captured(), b"alice-password"));
}

#[test]
fn a_peer_who_comes_back_with_a_new_profile_is_reported_as_a_changed_key_and_chat_goes_on() {
    let (mut sim, nodes) = world(&["alice", "bob"]);
    let (alice, bob) = (nodes[0], nodes[1]);
    sim.run_until(5 * SECOND, |s| direct(s, alice, bob))
        .expect("direct");
    let old = sim.client_key(bob);
    sim.crash_client(bob);
    sim.new_profile(bob);
    sim.advance(SECOND);
    sim.start_client(bob);
    sim.run_until(10 * SECOND, |s| direct(s, alice, bob))
        .expect("direct again, to the new key");
    let changed = sim.events(alice).iter().find_map(|(_, e)| match e {
        Event::PeerKeyChanged { user, old, new } if user.as_str() == "bob" => Some((*old, *new)),
        _ => None,
    });
    assert_eq!(changed, Some((old, sim.client_key(bob))));
    sim.send(alice, bob, "is that you?").unwrap();
    sim.advance(SECOND);
    assert_eq!(texts(&sim, bob, alice), ["is that you?"]);
}

#[test]
fn a_message_for_someone_never_met_is_sealed_to_the_key_the_server_hands_out() {
    let (mut sim, nodes) = world(&["alice", "bob"]);
    let (alice, bob) = (nodes[0], nodes[1]);
    sim.run_until(5 * SECOND, |s| direct(s, alice, bob))
        .expect("direct");
    // dave has an account and logged in once, long ago; alice was never introduced to him.
    let dave = sim.add_client("dave");
    sim.run_until(5 * SECOND, |s| s.is_logged_in(dave))
        .expect("dave logs in once");
    sim.logout(dave);
    sim.advance(SECOND);
    sim.crash_client(alice);
    sim.start_client(alice);
    sim.run_until(5 * SECOND, |s| s.is_logged_in(alice))
        .expect("alice back, knowing nobody online but bob");
    sim.send(alice, dave, "welcome back, dave").unwrap();
    sim.advance(2 * SECOND);
    assert_eq!(sim.store.stored_for(sim.name(dave)), 1);
    sim.start_client(dave);
    sim.run_until(10 * SECOND, |s| texts(s, dave, alice).len() == 1)
        .expect("dave opens it");
    assert_eq!(texts(&sim, dave, alice), ["welcome back, dave"]);
    sim.advance(2 * SECOND);
    assert_eq!(
        sim.store.stored_for(sim.name(dave)),
        0,
        "deleted after dave's ack"
    );
}
