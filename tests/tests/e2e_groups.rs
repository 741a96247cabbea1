//! Groups told by the real programs: `breeze-server` and three `breeze --json` clients on
//! loopback. One member is offline for a while, one is removed, the server restarts mid
//! conversation; everyone's view has the same order, and the server's files hold no text.

mod e2e_support;

use breeze_sim::loopback::PASSWORD;
use e2e_support::{accounts, logged_in, ClientProcess, ServerProcess};
use serde_json::Value;
use std::sync::Arc;

fn member_of(client: &mut ClientProcess, group: &str, members: usize) {
    client.expect_seen(&format!("{group} with {members} members"), |e| {
        e["event"] == "group"
            && e["group"] == group
            && e["members"].as_array().map(Vec::len) == Some(members)
    });
}

/// `from` says `text` in `group`; it comes back to `from` in its place.
fn gsend(from: &mut ClientProcess, group: &str, text: &str) {
    from.command(&format!("gsend {group} {text}"));
    from.expect(&format!("its own {text:?}"), |e| {
        e["event"] == "group_message" && e["text"] == text
    });
}

/// The group messages `client` reported so far, as "from: text", in the order reported.
fn seen(client: &ClientProcess, group: &str) -> Vec<String> {
    client
        .seen
        .iter()
        .filter(|e| e["event"] == "group_message" && e["group"] == group)
        .map(|e: &Value| format!("{}: {}", e["from"].as_str().unwrap_or("?"), e["text"]))
        .collect()
}

fn wait_for(client: &mut ClientProcess, text: &str) {
    client.expect_seen(&format!("{text:?}"), |e| {
        e["event"] == "group_message" && e["text"] == text
    });
}

#[test]
fn a_group_keeps_one_order_across_an_offline_member_a_removal_and_a_server_restart() {
    let data = accounts(&["alice", "bob", "carol"]);
    let server = ServerProcess::start(data.path(), "127.0.0.1:0");
    let addr = server.addr;
    let mut alice = ClientProcess::start(addr, "alice");
    let mut bob = ClientProcess::start(addr, "bob");
    let mut carol = ClientProcess::start(addr, "carol");
    for client in [&mut alice, &mut bob, &mut carol] {
        logged_in(client);
    }
    alice.command("group create team bob carol");
    for client in [&mut alice, &mut bob, &mut carol] {
        member_of(client, "team", 3);
    }
    gsend(&mut alice, "team", "the vault opens at noon");
    gsend(&mut bob, "team", "bring the blue folder");
    wait_for(&mut carol, "bring the blue folder");

    // Carol goes away; the others go on; she comes back and catches up, in order.
    let carols_profile: Arc<tempfile::TempDir> = carol.profile.clone();
    assert!(carol.quit().success());
    gsend(&mut alice, "team", "while carol is away");
    let mut carol = ClientProcess::start_in(addr, "carol", PASSWORD, carols_profile.clone(), &[]);
    logged_in(&mut carol);
    wait_for(&mut carol, "while carol is away");

    // The server restarts mid conversation.
    server.kill();
    for client in [&mut alice, &mut bob, &mut carol] {
        client.expect("losing the server", |e| e["event"] == "server_lost");
    }
    let server = ServerProcess::start(data.path(), &addr.to_string());
    for client in [&mut alice, &mut bob, &mut carol] {
        logged_in(client);
        member_of(client, "team", 3);
    }
    gsend(&mut bob, "team", "after the restart");
    wait_for(&mut carol, "after the restart");

    // Carol is removed: she hears it, and gets nothing said after.
    alice.command("group remove team carol");
    carol.expect("her removal", |e| {
        e["event"] == "group" && e["group"] == "team" && e["members"] == serde_json::json!([])
    });
    member_of(&mut bob, "team", 2);
    gsend(&mut alice, "team", "carol must not read this");
    wait_for(&mut bob, "carol must not read this");
    bob.command("groups");
    let listed = bob.expect("the groups", |e| e["event"] == "groups");
    assert_eq!(
        listed["groups"][0]["members"],
        serde_json::json!(["alice", "bob"])
    );

    let everyone = seen(&alice, "team");
    assert_eq!(everyone.len(), 5, "{everyone:?}");
    assert_eq!(seen(&bob, "team"), everyone, "bob sees alice's order");
    let mut carols = seen(&carol, "team");
    carols.dedup();
    assert_eq!(
        carols,
        everyone[2..4].to_vec(),
        "carol's second run: the rest, in order"
    );
    assert!(!carols.iter().any(|t| t.contains("must not read")));
    assert_eq!(everyone[0], "alice: \"the vault opens at noon\"");
    // bob's own history of the group: the same messages in the same order.
    bob.command("ghistory team");
    let history = bob.expect("the group's history", |e| {
        e["event"] == "history" && e["group"] == "team"
    });
    let kept: Vec<String> = history["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| format!("{}: {}", m["from"].as_str().unwrap_or("?"), m["text"]))
        .collect();
    assert_eq!(kept, everyone, "{history}");

    for client in [alice, bob, carol] {
        assert!(client.quit().success());
    }
    let (status, _log) = server.terminate();
    assert!(status.success());
    // Nothing anyone wrote is in the server's files.
    for entry in std::fs::read_dir(data.path()).expect("the data directory") {
        let path = entry.expect("an entry").path();
        let bytes = std::fs::read(&path).unwrap_or_default();
        for secret in [
            "vault opens",
            "blue folder",
            "carol is away",
            "must not read",
        ] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{secret:?} is in {}",
                path.display()
            );
        }
    }
}

/// A member whose client stops reading holds up nobody: the others get every message at once,
/// the server sends it only what fits in half its output bound and keeps the rest in the
/// store, and once it reads again it gets everything, in order, from the store.
#[test]
fn a_member_that_stops_reading_stalls_nobody_and_catches_up_from_the_store() {
    use breeze_core::client::{Event, GroupEvent};
    use breeze_core::server::ServerConfig;
    use breeze_core::wire::{ClientFrame, GroupRequest, ServerFrame};
    use breeze_sim::loopback::{client_options, name, start_server, within};
    use e2e_support::{client_frame, fresh_key, log_in_securely, Chatter};

    const MESSAGES: u64 = 1_500;
    const TEXT: usize = 4_000;
    smol::block_on(async {
        let mut config = ServerConfig::default();
        config.max_pending_output = 256 * 1024;
        let server = start_server(&["alice", "bob", "carol"], config);
        // Bob logs in on a raw connection and then reads nothing.
        let (mut bob, _) = log_in_securely(server.addr, "bob", &fresh_key(), 0).await;
        let mut alice = Chatter::start(client_options(server.addr, "alice"));
        let mut carol = Chatter::start(client_options(server.addr, "carol"));
        for chatter in [&mut alice, &mut carol] {
            chatter
                .expect("the login", |e| matches!(e, Event::LoggedIn { .. }))
                .await;
        }
        let request = GroupRequest::Create {
            name: "team".into(),
            members: vec![name("bob"), name("carol")],
        };
        alice.client.group_request(request).await.expect("asked");
        let changed = |e: &Event| matches!(e, Event::Group(GroupEvent::Changed { .. }));
        let Event::Group(GroupEvent::Changed { info, .. }) =
            alice.expect("the group", changed).await
        else {
            unreachable!()
        };
        carol.expect("the group", changed).await;

        let text = "x".repeat(TEXT);
        let mut sent = 0;
        let mut received = 0;
        while received < MESSAGES {
            // Keep a few hundred on their way; bob says he is alive, and still reads nothing.
            while sent < MESSAGES && sent < received + 300 {
                alice
                    .client
                    .send_group(info.id, text.clone())
                    .await
                    .expect("queued");
                sent += 1;
            }
            bob.send_sealed(&client_frame(&ClientFrame::Ping)).await;
            let event = carol
                .expect("a group message", |e| {
                    matches!(e, Event::Group(GroupEvent::Message { .. }))
                })
                .await;
            let Event::Group(GroupEvent::Message { order, .. }) = event else {
                unreachable!()
            };
            received += 1;
            assert_eq!(order, received, "carol gets every message, in order");
        }
        assert_eq!(
            server.stats.get().online,
            3,
            "bob was not dropped as a slow consumer"
        );

        // Bob reads again: everything, once each, in order (live first, then the store).
        within("bob's catching up", async {
            let mut next = 1;
            while next <= MESSAGES {
                if let ServerFrame::GroupMessage(message) = bob.next_frame().await {
                    assert_eq!(message.order, next, "bob gets each place once, in order");
                    next += 1;
                    if next % 200 == 0 {
                        let ack = ClientFrame::GroupAck {
                            group: info.id,
                            through: message.order,
                        };
                        bob.send_sealed(&client_frame(&ack)).await;
                    }
                }
            }
        })
        .await;
    })
}
