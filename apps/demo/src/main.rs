//! `cargo run --release -p breeze-demo`: a server and two clients on loopback, narrated.
//!
//! alice and bob log in to a real Breeze server (SQLite store in a temporary directory), open
//! an authenticated direct channel and chat over it; then bob's P2P port is blocked, as a
//! firewall would, and the conversation carries on through the server relay; then the port
//! opens again and the route returns to direct. Every line printed is an event the clients'
//! cores reported.

use breeze_core::client::{Event, Route};
use breeze_core::server::ServerConfig;
use breeze_core::wire::UserName;
use breeze_server::host::StoreHost;
use breeze_server::store::{Store, StoreOptions};
use breeze_smol::{Client, ClientOptions, ServerDriver};
use std::error::Error;
use std::time::Duration;

const PATIENCE: Duration = Duration::from_secs(20);

fn main() -> Result<(), Box<dyn Error>> {
    let dir = std::env::temp_dir().join(format!("breeze-demo-{}", std::process::id()));
    let result = smol::block_on(tour(&dir));
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn tour(dir: &std::path::Path) -> Result<(), Box<dyn Error>> {
    let mut store = Store::open_with(dir, StoreOptions::default())?;
    store.add_user("alice", "alice-secret")?;
    store.add_user("bob", "bob-secret")?;
    let listener = smol::net::TcpListener::bind("127.0.0.1:0").await?;
    let server = ServerDriver::new(
        listener,
        ServerConfig::default(),
        StoreHost::from_store(store),
    );
    let addr = server.local_addr()?;
    let stats = server.stats();
    let (stop, stopped) = async_channel::bounded::<()>(1);
    let serving = smol::spawn(server.run(async move {
        let _ = stopped.recv().await;
    }));
    println!("server    listening on {addr}, accounts alice and bob");

    let start = |user: &str, password: &str| -> Result<Client, Box<dyn Error>> {
        let mut options = ClientOptions::new(addr, UserName::new(user)?, password);
        options.p2p_listen = "127.0.0.1:0".parse()?;
        Ok(Client::start(options)?)
    };
    let alice = start("alice", "alice-secret")?;
    let bob = start("bob", "bob-secret")?;
    let (alice_name, bob_name) = (alice.user().clone(), bob.user().clone());

    println!("\n--- 1. log in; the server introduces the pair, alice dials bob directly");
    wait(&alice, |e| route_is(e, Route::Direct)).await?;
    wait(&bob, |e| route_is(e, Route::Direct)).await?;

    println!("\n--- 2. chat over the direct channel");
    alice
        .send(&bob_name, "hi bob, this goes straight to you".into())
        .await?;
    wait(&bob, |e| matches!(e, Event::Message { .. })).await?;
    wait(&alice, |e| matches!(e, Event::Delivered { .. })).await?;
    let relayed_before = stats.get().relayed;
    println!("server    chat messages relayed so far: {relayed_before}");

    println!("\n--- 3. bob's P2P port is blocked (a firewall, a flaky link): fall back to relay");
    bob.set_direct_channels(false).await;
    wait(&alice, |e| route_is(e, Route::Relay)).await?;
    alice
        .send(
            &bob_name,
            "still there? this one goes via the server".into(),
        )
        .await?;
    wait(&bob, |e| matches!(e, Event::Message { .. })).await?;
    wait(&alice, |e| matches!(e, Event::Delivered { .. })).await?;
    bob.send(&alice_name, "yes, loud and clear".into()).await?;
    wait(&alice, |e| matches!(e, Event::Message { .. })).await?;
    println!(
        "server    chat messages relayed so far: {}",
        stats.get().relayed
    );

    println!("\n--- 4. the port opens again: alice redials and the route returns to direct");
    bob.set_direct_channels(true).await;
    wait(&alice, |e| route_is(e, Route::Direct)).await?;
    alice.send(&bob_name, "direct again".into()).await?;
    wait(&bob, |e| matches!(e, Event::Message { .. })).await?;

    println!("\n--- 5. log out");
    alice.logout().await;
    bob.logout().await;
    drop(stop);
    serving.await?;
    let s = stats.get();
    println!(
        "server    relayed {} chat messages in all, stored {}",
        s.relayed, s.stored
    );
    Ok(())
}

fn route_is(event: &Event, want: Route) -> bool {
    matches!(event, Event::Route { route, .. } if *route == want)
}

/// Prints `client`'s events until one matches `want`.
async fn wait(client: &Client, want: impl Fn(&Event) -> bool) -> Result<(), Box<dyn Error>> {
    let who = client.user().clone();
    let watch = async {
        while let Some(event) = client.next_event().await {
            println!("{:<9} {}", who.as_str(), describe(&event));
            if want(&event) {
                return Ok(());
            }
        }
        Err(format!("{who}'s client stopped").into())
    };
    let timeout = async {
        async_io::Timer::after(PATIENCE).await;
        Err(format!("{who} waited {PATIENCE:?} in vain").into())
    };
    futures_lite::future::or(watch, timeout).await
}

fn describe(event: &Event) -> String {
    match event {
        Event::LoggedIn { user } => format!("logged in as {user}"),
        Event::Presence { user, online } => {
            format!("{user} is {}", if *online { "online" } else { "offline" })
        }
        Event::Route {
            peer,
            route,
            reason,
        } => format!("route to {peer}: {route} ({reason})"),
        Event::Message {
            from,
            id,
            text,
            route,
        } => format!("message #{id} from {from} via {route}: {text:?}"),
        Event::Delivered { to, id, route } => {
            format!("message #{id} delivered to {to} via {route}")
        }
        Event::Stored { to, id } => format!("message #{id} stored for {to}, who is offline"),
        Event::ServerLost { error, retry_in } => {
            format!(
                "server lost ({error}), retrying in {:?}",
                retry_in.unwrap_or_default()
            )
        }
        Event::ServerKeyLearned { key } => {
            format!(
                "encrypted link to the server, whose key is {}",
                key.fingerprint()
            )
        }
        Event::PeerKeyLearned { user, key } => {
            format!(
                "{user}'s key, as the server vouches for it: {}",
                key.fingerprint()
            )
        }
        Event::PresenceComplete {
            online,
            everyone: true,
        } => format!("{online} other user(s) online"),
        Event::PresenceComplete {
            online,
            everyone: false,
        } => format!("{online} of the users watched online"),
        Event::Enrolled { user } => {
            format!("profile key enrolled for {user}: later logins need no password")
        }
        other => format!("{other:?}"),
    }
}
