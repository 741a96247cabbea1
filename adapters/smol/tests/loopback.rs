//! The smol drivers over real loopback sockets: a server and two clients.

use breeze_core::client::{Event, Route};
use breeze_core::server::ServerConfig;
use breeze_core::wire::UserName;
use breeze_core::Via;
use breeze_smol::{Client, ClientOptions, MemoryHost, ServerDriver, ServerStats};
use futures_lite::future;
use std::net::SocketAddr;
use std::time::Duration;

const PATIENCE: Duration = Duration::from_secs(10);

fn name(n: &str) -> UserName {
    UserName::new(n).unwrap()
}

struct Running {
    addr: SocketAddr,
    stats: ServerStats,
    stop: async_channel::Sender<()>,
    task: smol::Task<std::io::Result<()>>,
}

async fn start_server(host: MemoryHost) -> Running {
    let listener = smol::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let driver = ServerDriver::new(listener, ServerConfig::default(), host);
    let addr = driver.local_addr().unwrap();
    let stats = driver.stats();
    let (stop, stopped) = async_channel::bounded::<()>(1);
    let task = smol::spawn(driver.run(async move {
        let _ = stopped.recv().await;
    }));
    Running {
        addr,
        stats,
        stop,
        task,
    }
}

fn client(server: SocketAddr, user: &str) -> Client {
    let mut options = ClientOptions::new(server, name(user), "pw");
    options.p2p_listen = "127.0.0.1:0".parse().unwrap();
    Client::start(options).unwrap()
}

/// Waits for the first event matching `want`, skipping others.
async fn expect(client: &Client, what: &str, want: impl Fn(&Event) -> bool) -> Event {
    let wait = async {
        while let Some(event) = client.next_event().await {
            if want(&event) {
                return Some(event);
            }
        }
        None
    };
    let timeout = async {
        async_io::Timer::after(PATIENCE).await;
        None
    };
    match future::or(wait, timeout).await {
        Some(event) => event,
        None => panic!("{} never saw {what}", client.user()),
    }
}

async fn direct(client: &Client, peer: &str) {
    let peer = name(peer);
    expect(
        client,
        "a direct route",
        |e| matches!(e, Event::Route { peer: p, route: Route::Direct, .. } if *p == peer),
    )
    .await;
}

#[test]
fn alice_and_bob_chat_directly_then_over_the_relay_when_the_direct_path_is_cut() {
    smol::block_on(async {
        let server = start_server(MemoryHost::welcoming()).await;
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
        drop(server.stop);
        server.task.await.unwrap();
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
        let server = start_server(MemoryHost::new().with_user(&name("alice"), "secret")).await;
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
        let host = MemoryHost::new()
            .with_user(&name("alice"), "pw")
            .with_user(&name("bob"), "pw");
        let server = start_server(host).await;
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
        let bob = client(server.addr, "bob");
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
        let server = start_server(MemoryHost::new().with_user(&name("alice"), "pw")).await;
        let alice = client(server.addr, "alice");
        expect(&alice, "the login", |e| matches!(e, Event::LoggedIn { .. })).await;
        let id = alice.send(&name("nobody"), "hello?".into()).await.unwrap();
        let lost = expect(&alice, "the verdict", |e| {
            matches!(e, Event::Undeliverable { .. })
        });
        assert!(matches!(lost.await, Event::Undeliverable { id: lost, .. } if lost == id));
    })
}
