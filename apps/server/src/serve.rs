//! Serve mode: open the store, listen, run the server until Ctrl-C or SIGTERM.

use breeze_core::server::ServerConfig;
use breeze_server::host::StoreHost;
use breeze_server::StoreOptions;
use breeze_smol::ServerDriver;
use std::io::Write;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// What serve mode needs from the command line.
pub struct ServeOptions<'a> {
    pub listen: SocketAddr,
    pub data: &'a Path,
    pub open_registration: bool,
    /// Connections one IP address may hold open (the core's limit).
    pub max_connections_per_ip: usize,
    /// Failed logins (checks in progress included) one address may make per minute.
    pub max_login_failures_per_ip: u32,
    /// Connections in their handshake and login at once (the adapter's accept backpressure).
    pub max_pending_logins: NonZeroUsize,
    /// Bytes per second of file data one user may have relayed.
    pub file_relay_rate: u64,
    /// Members per group, and groups per user.
    pub max_group_members: usize,
    pub max_groups_per_user: usize,
    pub log_file: Option<&'a PathBuf>,
    /// Announce the server on the LAN (`announce.rs`).
    pub announce: bool,
}

/// Runs the server; the error is the message for the operator.
///
/// Once listening, prints `listening on ADDR` (the actual address, so `--listen
/// 127.0.0.1:0` is usable by scripts) as the first line on **stdout**, then `server key
/// FINGERPRINT` (what clients pin); logs go to stderr or the log file.
pub fn serve(options: ServeOptions<'_>) -> Result<(), String> {
    // `RUST_LOG`, default `info`. Passwords are never logged: the adapter and the host only
    // ever log user names.
    breeze_smol::init_logging(Some("info"), options.log_file.map(PathBuf::as_path))?;
    let host = StoreHost::open(options.data, StoreOptions::default())
        .map_err(|e| format!("cannot open the store in {}: {e}", options.data.display()))?;
    let identity = breeze_smol::key_file::load_or_create(&breeze_server::key_path(options.data))?;
    let fingerprint = identity.public().fingerprint();
    let stop = stop_signal()?;
    let mut config = ServerConfig::default();
    config.open_registration = options.open_registration;
    config.max_connections_per_ip = options.max_connections_per_ip;
    config.max_login_failures_per_ip = options.max_login_failures_per_ip;
    config.file_relay.bytes_per_second = options.file_relay_rate;
    config.max_group_members = options.max_group_members;
    config.max_groups_per_user = options.max_groups_per_user;
    // An eighth of a second's worth at once: smooth enough that relayed files leave room for
    // chat, large enough for several chunks.
    config.file_relay.burst = (options.file_relay_rate / 8).max(256 * 1024);
    smol::block_on(async {
        let listener = smol::net::TcpListener::bind(options.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", options.listen))?;
        let server = ServerDriver::new(listener, config, host)
            .with_identity(identity)
            .with_max_pending_logins(options.max_pending_logins);
        let addr = server
            .local_addr()
            .map_err(|e| format!("cannot read the listening address: {e}"))?;
        let mut stdout = std::io::stdout();
        let _ = writeln!(stdout, "listening on {addr}")
            .and_then(|()| writeln!(stdout, "server key {fingerprint}"))
            .and_then(|()| stdout.flush());
        tracing::info!(
            %addr,
            open_registration = options.open_registration,
            max_connections_per_ip = options.max_connections_per_ip,
            max_login_failures_per_ip = options.max_login_failures_per_ip,
            file_relay_rate = options.file_relay_rate,
            "listening"
        );
        // Kept until the server stops: dropping it says goodbye on the LAN.
        let _announcement = if options.announce {
            match crate::announce::Announcement::start(addr, &fingerprint) {
                Ok(announcement) => {
                    tracing::info!(name = announcement.name(), "announced on the LAN");
                    Some(announcement)
                }
                Err(message) => {
                    tracing::warn!("{message}; clients need --server");
                    None
                }
            }
        } else {
            None
        };
        let stopped = async move {
            let _ = stop.recv().await;
        };
        // The owner task runs on smol's executor thread, next to its socket tasks: every relayed
        // message wakes both, and on one thread that costs no cross-thread wake-up (measured a
        // quarter less server CPU per message than with the owner on this thread).
        // `SMOL_THREADS` gives the executor more threads.
        smol::spawn(server.run(stopped))
            .await
            .map_err(|e| format!("server failed: {e}"))
    })?;
    tracing::info!("server stopped");
    Ok(())
}

/// Resolves at the first Ctrl-C / SIGTERM; a second one exits at once.
fn stop_signal() -> Result<async_channel::Receiver<()>, String> {
    let (tx, rx) = async_channel::bounded(1);
    let signalled = AtomicBool::new(false);
    ctrlc::set_handler(move || {
        if signalled.swap(true, Ordering::SeqCst) {
            eprintln!("breeze-server: second signal, exiting now");
            std::process::exit(130);
        }
        let _ = tx.try_send(());
    })
    .map_err(|e| format!("cannot install the signal handler: {e}"))?;
    Ok(rx)
}
