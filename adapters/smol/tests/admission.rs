//! Accept backpressure over real loopback sockets: past `with_max_pending_logins`, accepted
//! connections wait for a slot; stalled handshakes time out and free theirs; everyone who
//! really logs in gets in.

use breeze_core::client::Event;
use breeze_core::server::ServerConfig;
use breeze_sim::loopback::{client_options, expect, within};
use breeze_smol::{Client, MemoryHost, ServerDriver};
use smol::net::{TcpListener, TcpStream};
use std::num::NonZeroUsize;
use std::time::Duration;

const MAX_PENDING: usize = 2;

#[test]
fn past_the_pending_bound_connections_wait_and_stalled_ones_time_out() {
    smol::block_on(async {
        let mut config = ServerConfig::default();
        // Short, so the stalled connections give their slots up within the test's patience.
        config.login_timeout = Duration::from_secs(1);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let driver = ServerDriver::new(listener, config, MemoryHost::welcoming())
            .with_max_pending_logins(NonZeroUsize::new(MAX_PENDING).unwrap());
        let addr = driver.local_addr().unwrap();
        let stats = driver.stats();
        let (stop, stopped) = async_channel::bounded::<()>(1);
        let server = smol::spawn(driver.run(async move {
            let _ = stopped.recv().await;
        }));

        // Twice the bound of connections that never say hello, ahead of the real clients.
        let mut stalled = Vec::new();
        for _ in 0..2 * MAX_PENDING {
            stalled.push(TcpStream::connect(addr).await.unwrap());
        }
        within("the first stalled connections to be admitted", async {
            while stats.get().connections < MAX_PENDING {
                async_io::Timer::after(Duration::from_millis(5)).await;
            }
        })
        .await;
        let users = ["alice", "bob", "carol"];
        let clients: Vec<Client> = users
            .iter()
            .map(|user| Client::start(client_options(addr, user)).unwrap())
            .collect();
        let watch = async {
            loop {
                let now = stats.get();
                assert!(
                    now.connections - now.online <= MAX_PENDING,
                    "{} connections in handshake or login at once",
                    now.connections - now.online
                );
                if now.online == users.len() {
                    return;
                }
                async_io::Timer::after(Duration::from_millis(5)).await;
            }
        };
        let logins = async {
            for client in &clients {
                expect(client, "the login", |e| matches!(e, Event::LoggedIn { .. })).await;
            }
        };
        within(
            "every client to log in",
            futures_lite::future::zip(watch, logins),
        )
        .await;
        drop(stalled);
        drop(stop);
        server.await.unwrap();
    });
}
