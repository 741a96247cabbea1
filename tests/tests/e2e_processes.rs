//! Stories told by the real programs, run as a user runs them: `breeze-server` with accounts
//! added by `breeze-server user add`, and `breeze --json` clients on loopback, driven through
//! their stdin and read through their JSON events (docs/ARCHITECTURE.md §9).

mod e2e_support;

use breeze_core::wire::{ClientFrame, LoginRefusal, ServerFrame, PROTOCOL_VERSION};
use breeze_sim::loopback::{name, PASSWORD};
use e2e_support::{
    accounts, client_frame, logged_in, send_one_shot, ClientProcess, Secure, ServerProcess,
};
use serde_json::Value;
use std::sync::Arc;

/// `user` logs in once and quits, as everyone has before others can write to them: the
/// server then knows the key to seal their offline messages to. The profile, to start again.
fn logged_in_once(server: &ServerProcess, user: &str) -> Arc<tempfile::TempDir> {
    let mut client = ClientProcess::start(server.addr, user);
    logged_in(&mut client);
    let profile = client.profile.clone();
    assert!(client.quit().success());
    profile
}

/// `user` starts again in `profile`.
fn start_again(
    server: &ServerProcess,
    user: &str,
    profile: &Arc<tempfile::TempDir>,
) -> ClientProcess {
    ClientProcess::start_in(server.addr, user, PASSWORD, profile.clone(), &[])
}

fn start_clients(server: &ServerProcess, users: &[&str]) -> Vec<ClientProcess> {
    let mut clients: Vec<ClientProcess> = users
        .iter()
        .map(|user| ClientProcess::start(server.addr, user))
        .collect();
    for client in &mut clients {
        logged_in(client);
    }
    clients
}

/// Waits until `client` reports the route to `peer` as direct (also if it already did).
fn direct_to(client: &mut ClientProcess, peer: &str) {
    client.expect_seen(&format!("a direct route to {peer}"), |e| {
        e["event"] == "route" && e["peer"] == peer && e["route"] == "direct"
    });
}

/// `from` sends `text` to `to`: it arrives once (the next message `to` reports) with `route`,
/// and `from` hears it was delivered that way.
fn chat(from: &mut ClientProcess, to: &mut ClientProcess, text: &str, route: &str) {
    let to_name = to.user.clone();
    let id = from.send(&to_name, text);
    let got = to.expect("a message", |e| e["event"] == "message");
    assert_eq!(got["from"], from.user.as_str(), "{got}");
    assert_eq!(got["text"], text, "{got}");
    assert_eq!(got["route"], route, "{got}");
    let delivered = from.expect("the delivery", |e| {
        e["event"] == "delivered" && e["id"] == id
    });
    assert_eq!(delivered["to"], to_name.as_str(), "{delivered}");
    assert_eq!(delivered["route"], route, "{delivered}");
}

fn count(events: &[Value], want: impl Fn(&Value) -> bool) -> usize {
    events.iter().filter(|e| want(e)).count()
}

/// The counters the server logs as it stops, from its `stopped relayed=… stored=…
/// relayed_text_bytes=…` line.
fn final_counters(log: &[String]) -> Vec<String> {
    let line = log
        .iter()
        .rev()
        .find(|line| line.contains(" stopped ") && line.contains("relayed="))
        .unwrap_or_else(|| panic!("no final `stopped` line in the log:\n{}", log.join("\n")));
    line.split_whitespace()
        .filter(|word| word.contains('='))
        .map(str::to_owned)
        .collect()
}

#[test]
fn three_users_log_in_every_pair_goes_direct_and_the_server_relays_no_chat() {
    let users = ["alice", "bob", "carol"];
    let data = accounts(&users);
    let server = ServerProcess::start(data.path(), "127.0.0.1:0");
    let mut clients = start_clients(&server, &users);

    for me in 0..users.len() {
        for peer in users.iter().filter(|peer| **peer != users[me]) {
            direct_to(&mut clients[me], peer);
        }
    }
    let [alice, bob, _carol] = &mut clients[..] else {
        unreachable!()
    };
    chat(alice, bob, "hello bob, straight to you", "direct");

    let (status, log) = server.terminate();
    assert!(status.success(), "SIGTERM is a clean stop: {status}");
    let counters = final_counters(&log);
    for zero in ["relayed=0", "stored=0", "relayed_text_bytes=0"] {
        assert!(
            counters.iter().any(|c| c == zero),
            "the server carried chat: {counters:?}"
        );
    }
    // Each login is given those already online (the P2P log): 0, then 1, then 2, one
    // introduction per pair.
    let introductions: usize = log
        .iter()
        .filter(|line| line.contains("introduced to the peers it may dial"))
        .filter_map(|line| {
            let listed = line.split_whitespace().find(|w| w.starts_with("listed="))?;
            listed.trim_start_matches("listed=").parse::<usize>().ok()
        })
        .sum();
    assert_eq!(
        introductions,
        3,
        "one introduction per pair:\n{}",
        log.join("\n")
    );
    // The server said goodbye before going: every client is told why it lost the server.
    for client in &mut clients {
        let lost = client.expect("the server going down", |e| e["event"] == "server_lost");
        assert_eq!(lost["error"], "server is shutting down", "{lost}");
    }
}

#[test]
fn direct_chat_survives_a_server_crash_and_both_log_in_again_when_it_is_back_on_the_same_port() {
    let data = accounts(&["alice", "bob"]);
    let server = ServerProcess::start(data.path(), "127.0.0.1:0");
    let addr = server.addr;
    let mut clients = start_clients(&server, &["alice", "bob"]);
    let [alice, bob] = &mut clients[..] else {
        unreachable!()
    };
    direct_to(alice, "bob");
    direct_to(bob, "alice");
    chat(alice, bob, "before the crash", "direct");

    server.kill();
    for client in [&mut *alice, &mut *bob] {
        client.expect("losing the server", |e| e["event"] == "server_lost");
    }
    chat(alice, bob, "the server is gone, we are not", "direct");
    chat(bob, alice, "still here", "direct");

    let server = ServerProcess::start(data.path(), &addr.to_string());
    assert_eq!(server.addr, addr);
    // Nobody types anything: the clients find the server again and log in by themselves.
    logged_in(alice);
    logged_in(bob);
    chat(alice, bob, "welcome back, server", "direct");
    chat(bob, alice, "and nothing lost", "direct");
    for (client, peer) in [(&*alice, "bob"), (&*bob, "alice")] {
        let got = count(&client.seen, |e| {
            e["event"] == "message" && e["from"] == peer
        });
        assert_eq!(got, if peer == "alice" { 3 } else { 2 }, "{}", client.user);
    }
    drop(server);
}

#[test]
fn a_message_for_an_offline_user_is_stored_and_delivered_exactly_once_at_their_next_login() {
    let data = accounts(&["alice", "bob", "carol", "dave"]);
    let server = ServerProcess::start(data.path(), "127.0.0.1:0");
    let bobs_profile = logged_in_once(&server, "bob");
    let _ = logged_in_once(&server, "dave");
    let mut alice = ClientProcess::start(server.addr, "alice");
    logged_in(&mut alice);

    let id = alice.send("bob", "see this when you are back");
    alice.expect("the message stored", |e| {
        e["event"] == "stored" && e["to"] == "bob" && e["id"] == id
    });
    // The one-shot mode exits 0 once its message is stored for the offline bob.
    let one_shot = send_one_shot(server.addr, "carol", "bob", "a note from carol");
    assert!(
        one_shot.status.success(),
        "one-shot send failed: {}",
        String::from_utf8_lossy(&one_shot.stderr)
    );
    assert!(
        String::from_utf8_lossy(&one_shot.stdout).contains("stored"),
        "it says the message was stored: {}",
        String::from_utf8_lossy(&one_shot.stdout)
    );

    let mut bob = start_again(&server, "bob", &bobs_profile);
    logged_in(&mut bob);
    let mut got = Vec::new();
    for _ in 0..2 {
        let message = bob.expect("a stored message", |e| e["event"] == "message");
        got.push((message["from"].clone(), message["text"].clone()));
    }
    got.sort_by_key(|(from, _)| from.to_string());
    assert_eq!(
        got,
        [
            ("alice".into(), "see this when you are back".into()),
            ("carol".into(), "a note from carol".into())
        ]
    );
    let delivered = alice.expect("the delivery", |e| {
        e["event"] == "delivered" && e["id"] == id
    });
    assert_eq!(delivered["to"], "bob", "{delivered}");
    assert!(bob.quit().success());

    // At the next login the store has nothing left for bob. The server answers bob's
    // message to the offline dave only after it has replayed whatever it kept for bob, on the
    // same connection, so the `stored` answer bounds the wait.
    let mut bob = start_again(&server, "bob", &bobs_profile);
    logged_in(&mut bob);
    let probe = bob.send("dave", "are you there?");
    bob.expect("the probe stored", |e| {
        e["event"] == "stored" && e["id"] == probe
    });
    let again = count(&bob.seen, |e| e["event"] == "message");
    assert_eq!(again, 0, "stored messages came twice: {:?}", bob.seen);
}

#[test]
fn a_wrong_password_ends_the_client_with_a_fatal_error_and_a_failure_exit_code() {
    let data = accounts(&["alice"]);
    let server = ServerProcess::start(data.path(), "127.0.0.1:0");
    let mut alice = ClientProcess::start_with_password(server.addr, "alice", "not the password");
    let refused = alice.expect("the refusal", |e| e["event"] == "error");
    assert_eq!(refused["fatal"], true, "{refused}");
    assert_eq!(
        refused["message"], "login refused: wrong user name or password",
        "{refused}"
    );
    let status = alice.exit_status();
    assert!(!status.success(), "a refused login is fatal: {status}");
}

#[test]
fn a_stored_message_survives_a_server_crash_and_is_delivered_once_after_the_restart() {
    let data = accounts(&["alice", "bob"]);
    let server = ServerProcess::start(data.path(), "127.0.0.1:0");
    let addr = server.addr;
    let bobs_profile = logged_in_once(&server, "bob");
    let mut alice = ClientProcess::start(server.addr, "alice");
    logged_in(&mut alice);
    let id = alice.send("bob", "kept on disk");
    alice.expect("the message stored", |e| {
        e["event"] == "stored" && e["id"] == id
    });

    server.kill();
    alice.expect("losing the server", |e| e["event"] == "server_lost");
    let server = ServerProcess::start(data.path(), &addr.to_string());
    logged_in(&mut alice);

    let mut bob = start_again(&server, "bob", &bobs_profile);
    logged_in(&mut bob);
    let got = bob.expect("the stored message", |e| e["event"] == "message");
    assert_eq!(got["from"], "alice", "{got}");
    assert_eq!(got["text"], "kept on disk", "{got}");
    let delivered = alice.expect("the delivery", |e| {
        e["event"] == "delivered" && e["id"] == id
    });
    assert_eq!(delivered["to"], "bob", "{delivered}");
    // One more message proves the pair is in step, and that nothing came twice.
    direct_to(&mut alice, "bob");
    direct_to(&mut bob, "alice");
    chat(&mut alice, &mut bob, "glad you made it", "direct");
    let messages = count(&bob.seen, |e| e["event"] == "message");
    assert_eq!(messages, 2, "{:?}", bob.seen);
}

#[test]
fn logging_in_from_a_second_place_kicks_the_first_and_the_chat_goes_on_with_the_new_one() {
    let data = accounts(&["alice", "bob"]);
    let server = ServerProcess::start(data.path(), "127.0.0.1:0");
    let mut clients = start_clients(&server, &["alice", "bob"]);
    let [first_alice, bob] = &mut clients[..] else {
        unreachable!()
    };
    direct_to(first_alice, "bob");
    direct_to(bob, "alice");
    chat(first_alice, bob, "from my desk", "direct");
    chat(bob, first_alice, "seen at your desk", "direct");

    let mut second_alice = ClientProcess::start(server.addr, "alice");
    logged_in(&mut second_alice);
    let kicked = first_alice.expect("the kick", |e| e["event"] == "kicked");
    assert_eq!(kicked["reason"], "logged in from another place", "{kicked}");
    let status = first_alice.exit_status();
    assert!(!status.success(), "being kicked ends the client: {status}");

    direct_to(&mut second_alice, "bob");
    chat(&mut second_alice, bob, "from my laptop now", "direct");
    chat(bob, &mut second_alice, "seen on your laptop", "direct");
}

#[test]
fn with_open_registration_a_password_guesser_is_still_refused_after_ten_failures() {
    let data = accounts(&["alice"]);
    let server = ServerProcess::start_with(data.path(), "127.0.0.1:0", &["--open-registration"]);
    smol::block_on(async {
        for i in 0..12 {
            // A guesser speaks the protocol properly: the handshake, then sealed frames.
            let mut guesser = Secure::to_server(server.addr).await;
            let mut guess = client_frame(&ClientFrame::Hello {
                version: PROTOCOL_VERSION,
            });
            guess.extend(client_frame(&ClientFrame::Login {
                user: name("alice"),
                password: format!("guess {i}").into(),
                p2p_port: 1,
                register: true,
            }));
            guesser.send_sealed(&guess).await;
            let said = guesser.frames_until_closed().await;
            let refusal = match &said[..] {
                [ServerFrame::Hello { .. }, ServerFrame::LoginRefused { reason }] => *reason,
                other => panic!("guess {i} was not refused: {other:?}"),
            };
            if i >= 10 {
                assert_eq!(
                    refusal,
                    LoginRefusal::TooManyAttempts,
                    "guess {i} was checked: the eleventh and later must be refused unchecked"
                );
            }
        }
    });
}

/// The texts and senders of a `history` event's messages, in the order given.
fn said(messages: &[Value]) -> Vec<(String, String)> {
    messages
        .iter()
        .map(|m| (m["from"].to_string(), m["text"].to_string()))
        .collect()
}

#[test]
fn both_quit_and_start_again_and_history_gives_the_same_messages_ids_and_times_also_offline() {
    let data = accounts(&["alice", "bob"]);
    let server = ServerProcess::start(data.path(), "127.0.0.1:0");
    let mut clients = start_clients(&server, &["alice", "bob"]);
    let (alice, bob) = clients.split_at_mut(1);
    let (alice, bob) = (&mut alice[0], &mut bob[0]);
    direct_to(alice, "bob");
    direct_to(bob, "alice");
    chat(alice, bob, "one", "direct");
    chat(bob, alice, "two", "direct");
    chat(alice, bob, "three", "direct");
    let alices = alice.history("bob");
    let bobs = bob.history("alice");
    let expected: Vec<(String, String)> = [("alice", "one"), ("bob", "two"), ("alice", "three")]
        .iter()
        .map(|(from, text)| (format!("{from:?}"), format!("{text:?}")))
        .collect();
    assert_eq!(said(&alices), expected, "{alices:?}");
    assert_eq!(said(&bobs), expected, "{bobs:?}");
    for message in &alices {
        let at = message["at"].as_str().expect("a time");
        assert!(at.ends_with('Z') && at.contains('T'), "RFC 3339: {at}");
        assert!(message["id"].is_u64(), "{message}");
    }
    let mut clients = clients.into_iter();
    let (alice, bob) = (clients.next().unwrap(), clients.next().unwrap());
    let (alices_profile, bobs_profile) = (alice.profile.clone(), bob.profile.clone());
    assert!(alice.quit().success());
    assert!(bob.quit().success());

    // alice starts again with the server up: the same messages, ids and times, in order.
    let mut alice = start_again(&server, "alice", &alices_profile);
    logged_in(&mut alice);
    assert_eq!(alice.history("bob"), alices);
    // Her ids go on past the ones she used, so bob's history tells them apart.
    let next = alice.send("bob", "four");
    let used: Vec<u64> = alices
        .iter()
        .filter(|m| m["from"] == "alice")
        .filter_map(|m| m["id"].as_u64())
        .collect();
    assert!(used.iter().all(|id| *id < next), "{next} after {used:?}");
    assert!(alice.quit().success());

    // bob starts again with the server gone: his history is his own.
    let (status, _) = server.terminate();
    assert!(status.success());
    let mut bob = ClientProcess::start_in(
        "127.0.0.1:9".parse().unwrap(),
        "bob",
        PASSWORD,
        bobs_profile,
        &[],
    );
    assert_eq!(bob.history("alice"), bobs);
    assert!(bob.quit().success());
}

#[test]
fn a_client_killed_right_after_a_message_has_it_in_its_history_exactly_once() {
    let data = accounts(&["alice", "bob"]);
    let server = ServerProcess::start(data.path(), "127.0.0.1:0");
    let mut clients = start_clients(&server, &["alice", "bob"]);
    let mut bob = clients.pop().unwrap();
    let mut alice = clients.pop().unwrap();
    direct_to(&mut alice, "bob");
    direct_to(&mut bob, "alice");
    let id = alice.send("bob", "do not lose me");
    bob.expect("the message", |e| {
        e["event"] == "message" && e["text"] == "do not lose me"
    });
    let profile = bob.profile.clone();
    bob.kill();

    let mut bob = start_again(&server, "bob", &profile);
    logged_in(&mut bob);
    // Acknowledged before the kill, or sent again to the new bob and acknowledged then.
    alice.expect_seen("the delivery", |e| {
        e["event"] == "delivered" && e["id"] == id
    });
    let history = bob.history("alice");
    let copies = history
        .iter()
        .filter(|m| m["text"] == "do not lose me" && m["id"] == id)
        .count();
    assert_eq!(copies, 1, "{history:?}");
    let shown_again = count(&bob.seen, |e| e["event"] == "message");
    assert_eq!(shown_again, 0, "shown twice: {:?}", bob.seen);
    assert!(bob.quit().success());
}

/// The flags in `help` that have no description: in clap's long help, each flag's line is
/// followed by its indented description.
fn undescribed(help: &str) -> Vec<String> {
    let lines: Vec<&str> = help.lines().collect();
    lines
        .iter()
        .enumerate()
        .filter(|(_, line)| {
            let flag = line.trim_start();
            line.starts_with("  ") && (flag.starts_with("--") || flag.starts_with("-h"))
        })
        .filter(|(i, _)| lines.get(i + 1).is_none_or(|next| next.trim().is_empty()))
        .map(|(_, line)| line.trim().to_string())
        .collect()
}

#[test]
fn the_help_of_both_programs_describes_every_flag() {
    let sample = "Options:\n      --bare\n\n      --ok <N>\n          fine\n";
    assert_eq!(undescribed(sample), ["--bare"]);
    for (binary, flags) in [
        (
            &e2e_support::binaries().server,
            &["--data", "--listen", "--no-announce", "--file-relay-rate"][..],
        ),
        (
            &e2e_support::binaries().client,
            &[
                "--server",
                "--profile",
                "--config",
                "--history-days",
                "--json",
            ][..],
        ),
    ] {
        let mut command = std::process::Command::new(binary);
        command.arg("--help");
        let output = e2e_support::run_bounded(command, "");
        assert!(output.status.success());
        let help = String::from_utf8_lossy(&output.stdout);
        assert_eq!(undescribed(&help), Vec::<String>::new(), "{help}");
        for flag in flags {
            assert!(help.contains(flag), "{flag} missing from {help}");
        }
    }
}
