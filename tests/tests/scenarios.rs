//! Stories the protocol must tell, run on the simulator's virtual clock.

use breeze_core::client::{Event, LinkError, Route};
use breeze_core::codec::encode_frame;
use breeze_core::rng::SeededRng;
use breeze_core::secure::{Handshake, IdentityKey, Inbound, LinkKind, RecordError};
use breeze_core::wire::{KickReason, UserName, PROTOCOL_VERSION};
use breeze_core::Via;
use breeze_sim::{Node, Sim, SimConfig};
use std::time::Duration;

const SECOND: Duration = Duration::from_secs(1);

fn world(names: &[&str]) -> (Sim, Vec<Node>) {
    let mut sim = Sim::new(SimConfig::new(7));
    let nodes = names.iter().map(|n| sim.add_client(n)).collect();
    (sim, nodes)
}

fn all_direct(sim: &Sim, nodes: &[Node]) -> bool {
    nodes.iter().all(|a| {
        nodes
            .iter()
            .filter(|b| *b != a)
            .all(|b| sim.route(*a, *b) == Some(Route::Direct))
    })
}

fn texts(sim: &Sim, to: Node, from: Node) -> Vec<String> {
    sim.received_from(to, from)
        .iter()
        .map(|r| r.text.clone())
        .collect()
}

/// One frame's bytes, as an attacker would write them to a raw socket.
fn frame<T: serde::Serialize>(message: &T) -> Vec<u8> {
    let mut bytes = Vec::new();
    encode_frame(message, 1 << 16, &mut bytes).unwrap();
    bytes
}

/// Opens a raw socket to `target`'s P2P port and starts a handshake claiming to be `claimed`,
/// with a key of the attacker's own (the target's key is public: the server hands it out).
fn hello_as(sim: &mut Sim, target: Node, claimed: &str) -> breeze_sim::RawId {
    let raw = sim.raw_connect_peer(target);
    let stranger = IdentityKey::from_secret([3; 32]);
    let target_key = sim.client_key(target);
    let mut rng = SeededRng::from_u64(3);
    let mut handshake =
        Handshake::initiator(LinkKind::Peer, &stranger, Some(&target_key), &mut rng).unwrap();
    let first = handshake.write(claimed.as_bytes()).unwrap();
    sim.raw_send(raw, first);
    raw
}

fn numbered(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("m{i}")).collect()
}

#[test]
fn three_users_log_in_and_every_pair_ends_up_direct() {
    let (mut sim, nodes) = world(&["alice", "bob", "carol"]);
    let took = sim
        .run_until(5 * SECOND, |s| all_direct(s, &nodes))
        .expect("all pairs direct");
    assert!(took < SECOND, "direct channels took {took:?}");
    for node in &nodes {
        assert!(sim.is_logged_in(*node));
        assert_eq!(
            sim.client(*node).unwrap().link_count(),
            2,
            "exactly one channel per pair"
        );
    }
    // Chat between every pair goes direct, and the server relays none of it.
    for a in &nodes {
        for b in &nodes {
            if a != b {
                sim.send(*a, *b, "hello").unwrap();
            }
        }
    }
    sim.advance(SECOND);
    for node in &nodes {
        assert_eq!(sim.received(*node).len(), 2);
        assert!(sim.received(*node).iter().all(|r| r.route == Via::Direct));
    }
    assert_eq!(sim.server().unwrap().stats().relayed, 0);
}

/// A client that takes no direct channels says so at login: its peers never dial it (not
/// even the one whose turn it would be), chat with it goes through the relay, and the others
/// still pair up directly.
#[test]
fn a_client_without_direct_channels_is_never_dialled_and_chats_through_the_relay() {
    let mut config = SimConfig::new(31);
    config.tweak_client = |c| c.direct_channels = c.user.as_str() != "bob";
    let mut sim = Sim::new(config);
    let nodes: Vec<Node> = ["alice", "bob", "carol"]
        .iter()
        .map(|name| sim.add_client(name))
        .collect();
    let (alice, bob, carol) = (nodes[0], nodes[1], nodes[2]);
    sim.run_until(5 * SECOND, |s| s.route(alice, carol) == Some(Route::Direct))
        .expect("alice and carol pair up directly");
    // Long enough for many rounds of redialling, were anyone dialling bob.
    sim.advance(60 * SECOND);
    for node in &nodes {
        let bob_name = sim.name(bob).clone();
        assert!(
            !sim.dialled(*node).contains(&bob_name),
            "{} dialled bob",
            sim.name(*node)
        );
    }
    assert_eq!(sim.route(alice, bob), Some(Route::Relay));
    assert_eq!(sim.route(carol, bob), Some(Route::Relay));
    assert_eq!(sim.client(bob).unwrap().link_count(), 0);
    sim.send(alice, bob, "hi bob").unwrap();
    sim.send(bob, carol, "hi carol").unwrap();
    sim.advance(SECOND);
    assert_eq!(texts(&sim, bob, alice), ["hi bob"]);
    assert_eq!(texts(&sim, carol, bob), ["hi carol"]);
    assert!(sim.received(bob).iter().all(|r| r.route == Via::Relay));
}

#[test]
fn the_direct_path_is_cut_mid_conversation_and_every_message_arrives_once_in_order_via_relay() {
    let (mut sim, nodes) = world(&["alice", "bob"]);
    let (alice, bob) = (nodes[0], nodes[1]);
    sim.run_until(5 * SECOND, |s| all_direct(s, &nodes))
        .expect("direct");
    for i in 0..10 {
        sim.send(alice, bob, &format!("m{i}")).unwrap();
    }
    sim.advance(SECOND);
    sim.cut(alice, bob);
    let cut_at = sim.now();
    // Messages sent into the dead channel before anyone notices.
    for i in 10..20 {
        sim.send(alice, bob, &format!("m{i}")).unwrap();
        sim.advance(Duration::from_millis(300));
    }
    let bound = sim.fallback_bound();
    let sending = sim.now() - cut_at;
    let took = sim
        .run_until(bound, |s| s.received_from(bob, alice).len() >= 20)
        .expect("all messages arrive");
    assert!(
        sending + took <= bound,
        "arrived {:?} after the cut, more than the fallback bound {bound:?}",
        sending + took
    );
    sim.advance(5 * SECOND);
    assert_eq!(
        texts(&sim, bob, alice),
        numbered(0..20),
        "exactly once, in order"
    );
    let late: Vec<Via> = sim.received_from(bob, alice)[10..]
        .iter()
        .map(|r| r.route)
        .collect();
    assert!(
        late.iter().all(|r| *r == Via::Relay),
        "after the cut messages come via relay: {late:?}"
    );
    // Relayed, or trying the direct path again: never believed direct while it is cut.
    assert!(
        matches!(
            sim.route(alice, bob),
            Some(Route::Relay | Route::Connecting)
        ),
        "{:?}",
        sim.route(alice, bob)
    );
    // The user was told why the route changed.
    let told = sim.events(alice).iter().any(|(_, e)| {
        matches!(
            e,
            Event::Route {
                route: Route::Relay,
                reason: breeze_core::client::RouteReason::ChannelLost(_),
                ..
            }
        )
    });
    assert!(told, "alice learns the channel was lost");
    // And everything sent later still arrives, once.
    sim.send(alice, bob, "m20").unwrap();
    sim.advance(SECOND);
    assert_eq!(texts(&sim, bob, alice), numbered(0..21));
}

#[test]
fn a_one_way_cut_is_noticed_within_the_heartbeat_bound() {
    let (mut sim, nodes) = world(&["alice", "bob"]);
    let (alice, bob) = (nodes[0], nodes[1]);
    sim.run_until(5 * SECOND, |s| all_direct(s, &nodes))
        .expect("direct");
    sim.cut_one_way(alice, bob);
    sim.send(alice, bob, "into the void").unwrap();
    sim.send(bob, alice, "still heard").unwrap();
    let bound = sim.fallback_bound();
    sim.run_until(bound, |s| !s.received_from(bob, alice).is_empty())
        .expect("alice's message arrives via relay within the bound");
    sim.advance(SECOND);
    assert_eq!(texts(&sim, bob, alice), vec!["into the void"]);
    assert_eq!(texts(&sim, alice, bob), vec!["still heard"]);
}

#[test]
fn the_path_heals_and_the_route_returns_to_direct() {
    let (mut sim, nodes) = world(&["alice", "bob"]);
    let (alice, bob) = (nodes[0], nodes[1]);
    sim.run_until(5 * SECOND, |s| all_direct(s, &nodes))
        .expect("direct");
    sim.cut(alice, bob);
    let bound = sim.fallback_bound();
    sim.run_until(bound + SECOND, |s| {
        s.route(alice, bob) != Some(Route::Direct)
    })
    .expect("falls back");
    sim.advance(20 * SECOND);
    assert_ne!(
        sim.route(alice, bob),
        Some(Route::Direct),
        "no direct route while cut"
    );
    sim.heal(alice, bob);
    // Redial backoff is capped at 10 s (plus jitter inside it).
    sim.run_until(12 * SECOND, |s| all_direct(s, &nodes))
        .expect("back to direct");
    sim.send(alice, bob, "back").unwrap();
    sim.advance(SECOND);
    assert_eq!(
        sim.received_from(bob, alice).last().map(|r| r.route),
        Some(Via::Direct)
    );
    assert_eq!(
        sim.client(alice).unwrap().link_count(),
        1,
        "the dead channel left no state"
    );
}

#[test]
fn the_server_crashes_direct_chat_continues_then_everyone_logs_back_in_by_themselves() {
    let (mut sim, nodes) = world(&["alice", "bob", "carol"]);
    let (alice, bob) = (nodes[0], nodes[1]);
    sim.run_until(5 * SECOND, |s| all_direct(s, &nodes))
        .expect("direct");
    sim.crash_server();
    sim.advance(SECOND);
    assert!(!sim.is_logged_in(alice));
    for i in 0..5 {
        sim.send(alice, bob, &format!("m{i}")).unwrap();
        sim.send(bob, alice, &format!("m{i}")).unwrap();
        sim.advance(10 * SECOND);
    }
    // 50 s without a server: channels held by their own heartbeats.
    assert!(all_direct(&sim, &nodes));
    assert_eq!(texts(&sim, bob, alice), numbered(0..5));
    assert_eq!(texts(&sim, alice, bob), numbered(0..5));
    assert!(sim.received(bob).iter().all(|r| r.route == Via::Direct));
    sim.restart_server();
    // Reconnect backoff is capped at 15 s.
    sim.run_until(20 * SECOND, |s| nodes.iter().all(|n| s.is_logged_in(*n)))
        .expect("everyone logs in again without user action");
    assert_eq!(sim.server().unwrap().stats().online, 3);
    sim.advance(2 * SECOND);
    assert!(all_direct(&sim, &nodes));
    let lost = sim
        .events(alice)
        .iter()
        .any(|(_, e)| matches!(e, Event::ServerLost { .. }));
    assert!(lost, "the user was told the server went away");
}

#[test]
fn a_peer_that_claims_to_be_someone_else_on_the_p2p_port_is_rejected() {
    let (mut sim, nodes) = world(&["alice", "bob", "mallory"]);
    let (alice, bob) = (nodes[0], nodes[1]);
    sim.run_until(5 * SECOND, |s| all_direct(s, &nodes))
        .expect("direct");

    // Mallory connects to bob's P2P port claiming to be alice (whom bob knows), proving her
    // own key: she does not hold the one the server introduced alice with.
    let raw = hello_as(&mut sim, bob, "alice");
    sim.advance(Duration::from_millis(50));
    let (answer, closed) = sim.raw_received(raw);
    assert!(closed, "the impostor is cut off");
    assert!(answer.is_empty(), "and learns nothing: no handshake answer");
    let rejected = sim.events(bob).iter().any(|(_, e)| {
        matches!(e, Event::PeerRejected { claimed: Some(c), error: LinkError::WrongKey }
            if c.as_str() == "alice")
    });
    assert!(rejected, "bob reports the rejected setup and why");
    // The real alice↔bob channel is untouched.
    assert_eq!(sim.route(bob, alice), Some(Route::Direct));
    sim.send(alice, bob, "still me").unwrap();
    sim.advance(SECOND);
    assert_eq!(texts(&sim, bob, alice), vec!["still me"]);
    assert_eq!(sim.received_from(bob, alice)[0].route, Via::Direct);
}

#[test]
fn a_claimed_name_the_server_never_introduced_is_dropped_at_the_setup_deadline() {
    let (mut sim, nodes) = world(&["alice", "bob"]);
    let bob = nodes[1];
    sim.run_until(5 * SECOND, |s| all_direct(s, &nodes))
        .expect("direct");
    let raw = hello_as(&mut sim, bob, "nobody");
    sim.advance(6 * SECOND);
    let (answer, closed) = sim.raw_received(raw);
    assert!(closed, "closed at the setup deadline");
    assert!(
        answer.is_empty(),
        "an unauthenticated stranger is told nothing"
    );
    assert_eq!(sim.client(bob).unwrap().link_count(), 1);
}

#[test]
fn a_message_to_an_offline_user_is_delivered_at_their_next_login_and_deleted_only_after_their_ack()
{
    let (mut sim, nodes) = world(&["alice", "bob"]);
    let (alice, bob) = (nodes[0], nodes[1]);
    sim.run_until(5 * SECOND, |s| all_direct(s, &nodes))
        .expect("direct");
    sim.logout(bob);
    sim.advance(SECOND);
    let bob_name = sim.name(bob).clone();
    sim.send(alice, bob, "while you were out").unwrap();
    sim.send(alice, bob, "second").unwrap();
    sim.advance(SECOND);
    assert_eq!(sim.store.stored_for(&bob_name), 2);
    let stored = sim
        .events(alice)
        .iter()
        .filter(|(_, e)| matches!(e, Event::Stored { .. }))
        .count();
    assert_eq!(stored, 2, "alice is told the server holds them");

    // Bob comes back, but his acks cannot reach the server yet: nothing is deleted.
    sim.start_client(bob);
    sim.run_until(5 * SECOND, |s| s.received_from(bob, alice).len() == 2)
        .expect("delivered");
    sim.advance(SECOND);
    assert_eq!(
        texts(&sim, bob, alice),
        vec!["while you were out", "second"]
    );
    assert!(sim
        .received_from(bob, alice)
        .iter()
        .all(|r| r.route == Via::Relay));
    assert_eq!(
        sim.store.stored_for(&bob_name),
        0,
        "deleted after bob's ack"
    );
    let delivered = sim
        .events(alice)
        .iter()
        .filter(|(_, e)| matches!(e, Event::Delivered { .. }))
        .count();
    assert_eq!(delivered, 2, "alice sees both delivered");
}

#[test]
fn stored_messages_survive_a_crash_before_the_ack_and_arrive_exactly_once() {
    let (mut sim, nodes) = world(&["alice", "bob"]);
    let (alice, bob) = (nodes[0], nodes[1]);
    sim.run_until(5 * SECOND, |s| all_direct(s, &nodes))
        .expect("direct");
    sim.logout(bob);
    sim.advance(SECOND);
    sim.send(alice, bob, "kept").unwrap();
    sim.advance(SECOND);
    // The server goes down and comes back; the message is still stored.
    sim.crash_server();
    sim.restart_server();
    sim.advance(20 * SECOND);
    sim.start_client(bob);
    sim.advance(5 * SECOND);
    assert_eq!(texts(&sim, bob, alice), vec!["kept"]);
    assert_eq!(sim.store.stored_for(sim.name(bob)), 0);
}

#[test]
fn a_second_login_of_alice_kicks_the_first() {
    let mut sim = Sim::new(SimConfig::new(11));
    let alice = sim.add_client("alice");
    let bob = sim.add_client("bob");
    sim.run_until(5 * SECOND, |s| s.is_logged_in(alice) && s.is_logged_in(bob))
        .expect("online");
    // A second process logs in as alice (same account, same password).
    let second = sim.add_client_as("alice");
    sim.run_until(5 * SECOND, |s| s.is_logged_in(second))
        .expect("second login");
    sim.advance(SECOND);
    let kicked = sim.events(alice).iter().any(|(_, e)| {
        matches!(
            e,
            Event::Kicked {
                reason: KickReason::LoggedInElsewhere
            }
        )
    });
    assert!(kicked, "the first session is told why it ended");
    assert!(
        sim.client(alice).unwrap().is_stopped(),
        "and does not fight back by reconnecting"
    );
    sim.advance(30 * SECOND);
    assert!(sim.is_logged_in(second));
    assert_eq!(sim.server().unwrap().stats().online, 2);
    // Messages for alice now reach the new session.
    sim.send(bob, second, "hi again").unwrap();
    sim.advance(2 * SECOND);
    assert_eq!(texts(&sim, second, bob), vec!["hi again"]);
}

#[test]
fn a_message_to_a_user_without_an_account_is_reported_undeliverable_and_does_not_block_others() {
    let (mut sim, nodes) = world(&["alice", "bob"]);
    let (alice, bob) = (nodes[0], nodes[1]);
    sim.run_until(5 * SECOND, |s| all_direct(s, &nodes))
        .expect("direct");
    let ghost = UserName::new("ghost").unwrap();
    let id = sim.send_to_name(alice, &ghost, "anyone there?").unwrap();
    sim.advance(SECOND);
    let told = sim.events(alice).iter().any(
        |(_, e)| matches!(e, Event::Undeliverable { to, id: i, .. } if *to == ghost && *i == id),
    );
    assert!(told, "alice learns the message cannot be delivered");
    assert_eq!(
        sim.client(alice).unwrap().unacknowledged(&ghost),
        0,
        "and it is not retried forever"
    );
    sim.send(alice, bob, "hi bob").unwrap();
    sim.advance(SECOND);
    assert_eq!(texts(&sim, bob, alice), vec!["hi bob"]);
}

#[test]
fn password_guessing_is_cut_off_after_ten_failures_a_minute_and_honest_users_still_log_in() {
    use breeze_core::wire::{ClientFrame, ServerFrame};
    let (mut sim, nodes) = world(&["alice", "bob"]);
    sim.run_until(5 * SECOND, |s| all_direct(s, &nodes))
        .expect("direct");
    let attempt = |sim: &mut Sim, password: &str| -> ServerFrame {
        let raw = sim.raw_connect_server();
        let login = ClientFrame::Login {
            user: UserName::new("alice").unwrap(),
            password: password.into(),
            p2p_port: 1,
            register: false,
        };
        let mut frames = frame(&ClientFrame::Hello {
            version: PROTOCOL_VERSION,
        });
        frames.extend(frame(&login));
        // A guesser speaks the protocol properly: the handshake, then sealed frames.
        let guesser = IdentityKey::from_secret([9; 32]);
        let mut rng = SeededRng::from_u64(9);
        let mut handshake =
            Handshake::initiator(LinkKind::ClientServer, &guesser, None, &mut rng).unwrap();
        sim.raw_send(raw, handshake.write(&[]).unwrap());
        sim.advance(Duration::from_millis(50));
        let mut inbound = Inbound::default();
        let mut plain = Vec::new();
        let (answer, _) = sim.raw_received(raw);
        let seen = answer.len();
        let mut last = None;
        inbound
            .read(answer, &mut plain, |message| {
                handshake.read(message).map_err(|_| RecordError::Forged)?;
                last = Some(handshake.write(&[]).unwrap());
                Ok::<_, RecordError>(None)
            })
            .unwrap();
        let mut channel = handshake.finish().unwrap();
        let mut bytes = last.expect("the server answered the handshake");
        channel.sealer.seal(&frames, &mut bytes).unwrap();
        inbound.open_with(channel.opener);
        sim.raw_send(raw, bytes);
        sim.advance(Duration::from_millis(50));
        let (answer, closed) = sim.raw_received(raw);
        assert!(closed);
        inbound
            .read(&answer[seen..], &mut plain, |_| Err(RecordError::Forged))
            .unwrap();
        let mut decoder = breeze_core::codec::FrameDecoder::new(1 << 16);
        let mut input = &plain[..];
        let mut frames = Vec::new();
        while let Some(answer) = decoder.decode::<ServerFrame>(&mut input).unwrap() {
            frames.push(answer);
        }
        frames.pop().expect("an answer")
    };
    for _ in 0..10 {
        let answer = attempt(&mut sim, "guess");
        assert!(matches!(
            answer,
            ServerFrame::LoginRefused {
                reason: breeze_core::wire::LoginRefusal::BadCredentials
            }
        ));
    }
    // The eleventh is refused without a password check, even with the right password.
    let answer = attempt(&mut sim, "alice-password");
    assert!(matches!(
        answer,
        ServerFrame::LoginRefused {
            reason: breeze_core::wire::LoginRefusal::TooManyAttempts
        }
    ));
    // Honest clients elsewhere were never disturbed, and chat goes on.
    sim.send(nodes[0], nodes[1], "still here").unwrap();
    sim.advance(SECOND);
    assert_eq!(texts(&sim, nodes[1], nodes[0]), vec!["still here"]);
    // A minute later the address may try again.
    sim.advance(61 * SECOND);
    let answer = attempt(&mut sim, "guess");
    assert!(matches!(
        answer,
        ServerFrame::LoginRefused {
            reason: breeze_core::wire::LoginRefusal::BadCredentials
        }
    ));
}

/// Each profile enrols with its password once; after that, neither a restart of the client
/// nor one of the server costs another password check: everyone comes back with a key login.
#[test]
fn after_enrolling_once_every_login_is_a_key_login_across_client_and_server_restarts() {
    use breeze_sim::LoginCheck;
    let (mut sim, nodes) = world(&["alice", "bob"]);
    sim.run_until(5 * SECOND, |s| nodes.iter().all(|n| s.is_logged_in(*n)))
        .expect("both logged in");
    let passwords = |sim: &Sim| {
        sim.login_checks()
            .iter()
            .filter(|c| matches!(c, LoginCheck::Password { .. }))
            .count()
    };
    assert_eq!(passwords(&sim), 2, "one enrolment each");
    // The server goes down and comes back: both reconnect by themselves.
    sim.crash_server();
    sim.advance(SECOND);
    sim.restart_server();
    sim.run_until(30 * SECOND, |s| nodes.iter().all(|n| s.is_logged_in(*n)))
        .expect("both back");
    // alice's client restarts, from the profile that remembers it is enrolled.
    sim.crash_client(nodes[0]);
    sim.start_client(nodes[0]);
    sim.run_until(30 * SECOND, |s| s.is_logged_in(nodes[0]))
        .expect("alice back");
    assert_eq!(passwords(&sim), 2, "no password checked again");
    let keys = sim
        .login_checks()
        .iter()
        .filter(|c| matches!(c, LoginCheck::Key { .. }))
        .count();
    assert_eq!(keys, 3, "{:?}", sim.login_checks());
    // The owner revokes alice's key: her next login is refused for good.
    let key = sim.client_key(nodes[0]);
    sim.store.revoke(&UserName::new("alice").unwrap(), key);
    sim.crash_client(nodes[0]);
    sim.start_client(nodes[0]);
    sim.advance(SECOND);
    assert!(!sim.is_logged_in(nodes[0]));
    assert!(sim.events(nodes[0]).iter().any(|(_, e)| matches!(
        e,
        Event::LoginFailed {
            reason: breeze_core::wire::LoginRefusal::KeyRevoked
        }
    )));
}
