//! The smol drivers over real loopback sockets: a server and two clients.

use breeze_core::client::{Event, Route};
use breeze_core::secure::IdentityKey;
use breeze_core::server::ServerConfig;
use breeze_core::Via;
use breeze_sim::loopback::{accounts, client_options, direct, expect, name, start_server_with};
use breeze_smol::{Client, MemoryHost};
use std::net::SocketAddr;

fn client(server: SocketAddr, user: &str) -> Client {
    Client::start(client_options(server, user)).unwrap()
}

#[test]
fn alice_and_bob_chat_directly_then_over_the_relay_when_the_direct_path_is_cut() {
    smol::block_on(async {
        let server = start_server_with(MemoryHost::welcoming(), ServerConfig::default());
        let alice = client(server.addr, "alice");
        let bob = client(server.addr, "bob");
        direct(&alice, "bob").await;
        direct(&bob, "alice").await;

        let id = alice.send(&name("bob"), "hi bob".into()).await.unwrap();
        let got = expect(&bob, "the message", |e| matches!(e, Event::Message { .. })).await;
        assert_eq!(
            got,
            Event::Message {
                from: name("alice"),
                id,
                text: "hi bob".into(),
                route: Via::Direct
            }
        );
        let delivered = expect(&alice, "the delivery", |e| {
            matches!(e, Event::Delivered { .. })
        });
        assert_eq!(
            delivered.await,
            Event::Delivered {
                to: name("bob"),
                id,
                route: Via::Direct
            }
        );
        assert_eq!(server.stats.get().relayed_text_bytes, 0, "chat went direct");
        assert_eq!(server.stats.get().online, 2);

        bob.set_direct_channels(false).await;
        expect(&alice, "the fallback to relay", |e| {
            matches!(
                e,
                Event::Route {
                    route: Route::Relay | Route::Connecting,
                    ..
                }
            )
        })
        .await;
        let id = alice
            .send(&name("bob"), "still there?".into())
            .await
            .unwrap();
        let got = expect(&bob, "the relayed message", |e| {
            matches!(e, Event::Message { .. })
        });
        assert!(matches!(
            got.await,
            Event::Message { id: got, route: Via::Relay, .. } if got == id
        ));
        assert!(server.stats.get().relayed_text_bytes > 0);

        let peers = alice.peers().await;
        assert_eq!(peers.len(), 1);
        assert!(peers[0].online);

        bob.set_direct_channels(true).await;
        direct(&alice, "bob").await;

        alice.logout().await;
        expect(&bob, "alice leaving", |e| {
            matches!(e, Event::Presence { online: false, .. })
        })
        .await;
        server.shut_down().await.unwrap();
        // The server said goodbye: bob is told it is gone.
        expect(&bob, "the server going down", |e| {
            matches!(e, Event::ServerLost { .. })
        })
        .await;
    })
}

#[test]
fn a_wrong_password_is_refused_for_good() {
    smol::block_on(async {
        let server = start_server_with(
            MemoryHost::new().with_user(&name("alice"), "secret"),
            ServerConfig::default(),
        );
        let alice = client(server.addr, "alice");
        expect(&alice, "the refusal", |e| {
            matches!(e, Event::LoginFailed { .. })
        })
        .await;
        let refused = alice.send(&name("bob"), "x".into()).await;
        assert!(refused.is_err());
    })
}

#[test]
fn a_message_to_an_offline_user_is_stored_and_delivered_at_login() {
    smol::block_on(async {
        let server = start_server_with(accounts(&["alice", "bob"]), ServerConfig::default());
        // bob has logged in once before (from this profile): the server knows his key.
        let mut bobs = client_options(server.addr, "bob");
        bobs.identity = Some(IdentityKey::from_secret([7; 32]));
        let bob = Client::start(bobs.clone()).expect("bob starts");
        expect(&bob, "bob's first login", |e| {
            matches!(e, Event::LoggedIn { .. })
        })
        .await;
        bob.logout().await;
        let alice = client(server.addr, "alice");
        expect(&alice, "the login", |e| matches!(e, Event::LoggedIn { .. })).await;
        let id = alice.send(&name("bob"), "later".into()).await.unwrap();
        let stored = expect(&alice, "stored", |e| matches!(e, Event::Stored { .. })).await;
        assert_eq!(
            stored,
            Event::Stored {
                to: name("bob"),
                id
            }
        );
        let bob = Client::start(bobs).expect("bob starts again");
        let got = expect(&bob, "the stored message", |e| {
            matches!(e, Event::Message { .. })
        });
        assert!(matches!(got.await, Event::Message { text, .. } if text == "later"));
        expect(&alice, "the delivery", |e| {
            matches!(e, Event::Delivered { .. })
        })
        .await;
    })
}

#[test]
fn a_message_to_a_name_without_account_is_reported_undeliverable() {
    smol::block_on(async {
        let server = start_server_with(accounts(&["alice"]), ServerConfig::default());
        let alice = client(server.addr, "alice");
        expect(&alice, "the login", |e| matches!(e, Event::LoggedIn { .. })).await;
        let id = alice.send(&name("nobody"), "hello?".into()).await.unwrap();
        let lost = expect(&alice, "the verdict", |e| {
            matches!(e, Event::Undeliverable { .. })
        });
        assert!(matches!(lost.await, Event::Undeliverable { id: lost, .. } if lost == id));
    })
}
