//! The kit of the tests that run the smol drivers over real loopback sockets (feature
//! `loopback`): `adapters/smol/tests`, `apps/client/tests` and this crate's `e2e_*.rs`.
//!
//! A server on an ephemeral port with accounts in memory ([`start_server`]), client options
//! for it ([`client_options`]), bounded waits ([`within`], [`expect`]) and the files a transfer
//! test sends and checks ([`content`], [`dirs`], [`listing`]). Every wait is bounded by
//! [`PATIENCE`] and waits for an event, never for time to pass.

use breeze_core::client::{Event, Route};
use breeze_core::server::ServerConfig;
use breeze_core::wire::UserName;
use breeze_smol::{Client, ClientOptions, MemoryHost, ServerDriver, ServerHost, ServerStats};
use futures_lite::future;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The longest any one wait may take before the test fails: generous, because the machine
/// may be busy with other builds (a transfer test moves several MiB, some through a relay
/// throttled to 4 MiB/s), yet short enough that a hang is reported, not sat out.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// The password of every account the kit creates.
pub const PASSWORD: &str = "correct horse";

/// A mebibyte, for file sizes.
pub const MIB: usize = 1024 * 1024;

pub fn name(n: &str) -> UserName {
    UserName::new(n).unwrap()
}

/// Runs `work` to completion, failing the test if it takes longer than [`PATIENCE`].
pub async fn within<T>(what: &str, work: impl Future<Output = T>) -> T {
    let timeout = async {
        async_io::Timer::after(PATIENCE).await;
        None
    };
    match future::or(async { Some(work.await) }, timeout).await {
        Some(done) => done,
        None => panic!("timed out after {PATIENCE:?} waiting for {what}"),
    }
}

// ---- the server ------------------------------------------------------------------------------

/// The smol server driver on an ephemeral loopback port, on smol's global executor (so a test
/// without an executor of its own, one that runs client processes, can have one too). It stops
/// when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    pub stats: ServerStats,
    stop: async_channel::Sender<()>,
    task: smol::Task<io::Result<()>>,
}

impl TestServer {
    /// Stops the server as an operator would (it says goodbye to every client) and waits
    /// until it has.
    pub async fn shut_down(self) -> io::Result<()> {
        drop(self.stop);
        self.task.await
    }
}

/// Accounts in memory for `users`, all with [`PASSWORD`].
pub fn accounts(users: &[&str]) -> MemoryHost {
    users.iter().fold(MemoryHost::new(), |host, user| {
        host.with_user(&name(user), PASSWORD)
    })
}

/// Starts a server with `config` whose accounts are `users`, all with [`PASSWORD`].
pub fn start_server(users: &[&str], config: ServerConfig) -> TestServer {
    start_server_with(accounts(users), config)
}

/// Starts a server with `config` on `host`.
pub fn start_server_with(host: impl ServerHost, config: ServerConfig) -> TestServer {
    start_server_on_threads(host, config, None)
}

/// [`start_server_with`], running up to `password_threads` password checks at once instead
/// of one per core: for hosts whose checks block on the test, not on a core.
pub fn start_server_on_threads(
    host: impl ServerHost,
    config: ServerConfig,
    password_threads: Option<std::num::NonZeroUsize>,
) -> TestServer {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("cannot bind");
    let listener = smol::net::TcpListener::try_from(listener).expect("cannot register");
    let mut driver = ServerDriver::new(listener, config, host);
    if let Some(threads) = password_threads {
        driver = driver.with_password_threads(threads);
    }
    let addr = driver.local_addr().expect("a local address");
    let stats = driver.stats();
    let (stop, stopped) = async_channel::bounded::<()>(1);
    let task = smol::spawn(driver.run(async move {
        let _ = stopped.recv().await;
    }));
    TestServer {
        addr,
        stats,
        stop,
        task,
    }
}

/// A server whose file relay forwards 4 MiB/s, so a transfer through it can be interrupted
/// half-way.
pub fn slow_relay() -> ServerConfig {
    let mut config = ServerConfig::default();
    config.file_relay.bytes_per_second = 4 * MIB as u64;
    config.file_relay.burst = 256 * 1024;
    config
}

// ---- clients ---------------------------------------------------------------------------------

/// Options for `user` of `server` with [`PASSWORD`], listening for peers on loopback only.
pub fn client_options(server: SocketAddr, user: &str) -> ClientOptions {
    let mut options = ClientOptions::new(server, name(user), PASSWORD);
    options.p2p_listen = SocketAddr::from(([127, 0, 0, 1], 0));
    options
}

/// Waits for the first event of `client` matching `want`, skipping others.
pub async fn expect(client: &Client, what: &str, want: impl Fn(&Event) -> bool) -> Event {
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

/// Waits until `client` reports a direct route to `peer`.
pub async fn direct(client: &Client, peer: &str) {
    let peer = name(peer);
    expect(
        client,
        "a direct route",
        |e| matches!(e, Event::Route { peer: p, route: Route::Direct, .. } if *p == peer),
    )
    .await;
}

// ---- files -----------------------------------------------------------------------------------

/// Bytes that differ at every offset, so a misplaced chunk cannot go unnoticed.
pub fn content(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 13) as u8)
        .collect()
}

/// The names in `dir`, sorted.
pub fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// A sender's and a receiver's directory in one temporary directory, removed when dropped.
pub struct Dirs {
    _root: tempfile::TempDir,
    /// Where the sender's files are; it exists.
    pub outbox: PathBuf,
    /// Where the receiver's files go; not created, so that accepting into it shows it is.
    pub inbox: PathBuf,
}

pub fn dirs() -> Dirs {
    let root = tempfile::tempdir().unwrap();
    let (outbox, inbox) = (root.path().join("outbox"), root.path().join("inbox"));
    std::fs::create_dir(&outbox).unwrap();
    Dirs {
        _root: root,
        outbox,
        inbox,
    }
}
