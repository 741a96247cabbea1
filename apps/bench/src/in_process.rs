//! The server under test inside the bench's own process: the real `ServerDriver` with a
//! `MemoryHost::welcoming()`, set up as `breeze-server` runs it, with a static key of its own
//! that the load clients pin.

use crate::secure_link::fresh_seed;
use breeze_core::secure::{IdentityKey, PublicKey};
use breeze_core::server::{ServerConfig, Stats};
use breeze_smol::{MemoryHost, ServerDriver, ServerStats};
use std::net::SocketAddr;
use std::thread::JoinHandle;

pub struct InProcessServer {
    pub addr: SocketAddr,
    /// The server's public key, for the clients to pin.
    pub key: PublicKey,
    stats: ServerStats,
    stop: smol::channel::Sender<()>,
    thread: JoinHandle<std::io::Result<()>>,
}

impl InProcessServer {
    /// Listens on an ephemeral loopback port, with the per-address limits raised for
    /// `clients` load clients that all connect from 127.0.0.1.
    pub fn start(clients: usize) -> Result<InProcessServer, String> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(smol::net::TcpListener::try_from)
            .map_err(|e| format!("cannot listen: {e}"))?;
        let mut config = ServerConfig::default();
        config.max_connections_per_ip = clients + 64;
        // Checks in progress count as failures too.
        config.max_login_failures_per_ip = 1_000_000;
        let identity = IdentityKey::from_secret(fresh_seed());
        let key = identity.public();
        let driver =
            ServerDriver::new(listener, config, MemoryHost::welcoming()).with_identity(identity);
        let addr = driver.local_addr().map_err(|e| e.to_string())?;
        let stats = driver.stats();
        let (stop, stopped) = smol::channel::bounded::<()>(1);
        // Like the breeze-server binary: the owner task on smol's global executor, next to
        // its socket tasks (this thread only waits for it).
        let thread = std::thread::Builder::new()
            .name("server-owner".into())
            .spawn(move || {
                smol::block_on(smol::spawn(driver.run(async move {
                    let _ = stopped.recv().await;
                })))
            })
            .map_err(|e| format!("cannot start the server thread: {e}"))?;
        Ok(InProcessServer {
            addr,
            key,
            stats,
            stop,
            thread,
        })
    }

    /// Shuts the server down (it says goodbye to its clients) and returns its final counters.
    pub fn stop(self) -> Stats {
        drop(self.stop);
        let _ = self.thread.join();
        self.stats.get()
    }
}
