//! Driving the cores without an async runtime: plain threads and `std::net`.
//!
//! A [`Server`] on 127.0.0.1 (ephemeral port; a thread owns the core, one per socket reads)
//! welcomes any password; two clients, one blocking thread each, log in and alice says hello
//! once bob is online. Direct channels are off (the core never asks to dial) and no file spans
//! are handed over (every transmit is bytes). The loop is the one documented on [`Client`]:
//! drain transmits and actions until both are empty, then events, then wait for bytes or the
//! timeout. `cargo test` runs it too.

use breeze_core::client::{Action, Client, ClientConfig, Event};
use breeze_core::secure::IdentityKey;
use breeze_core::server::{ConnId, Server, ServerConfig};
use breeze_core::wire::UserName;
use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

const PATIENCE: Duration = Duration::from_secs(20); // The example must never hang a test run.

fn main() {
    println!("bob received {:?}", run().unwrap_or_else(|e| panic!("{e}")));
}

/// Starts the server, runs both clients, and returns what bob received.
fn run() -> Result<String, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    thread::spawn(move || serve(listener));
    let bob = thread::spawn(move || chat(addr, "bob", None));
    let alice = thread::spawn(move || chat(addr, "alice", Some("hello bob")));
    alice.join().map_err(|_| "alice panicked")??;
    bob.join().map_err(|_| "bob panicked")?
}

/// What the socket threads tell the thread that owns the server core.
enum Input {
    Connected(ConnId, TcpStream, SocketAddr),
    Bytes(ConnId, Vec<u8>),
    Closed(ConnId),
}

/// The server host: runs until the process ends.
fn serve(listener: TcpListener) {
    use breeze_core::server::Action::{CheckLogin, Close, LoadOffline};
    let (tx, inputs) = mpsc::channel();
    thread::spawn(move || {
        for (n, mut stream) in listener.incoming().flatten().enumerate() {
            let (conn, tx) = (ConnId(n as u64), tx.clone());
            // One reader thread per socket: everything it reads goes to the core's thread.
            thread::spawn(move || {
                if let (Ok(writer), Ok(remote)) = (stream.try_clone(), stream.peer_addr()) {
                    let _ = tx.send(Input::Connected(conn, writer, remote));
                }
                let mut buf = vec![0; 64 * 1024];
                while let Ok(n @ 1..) = stream.read(&mut buf) {
                    let _ = tx.send(Input::Bytes(conn, buf[..n].to_vec()));
                }
                let _ = tx.send(Input::Closed(conn));
            });
        }
    });
    let key = IdentityKey::from_secret([7; 32]); // Clients learn it on first contact.
    let mut core = Server::new(ServerConfig::default(), key, [7; 32]);
    let mut sockets = HashMap::new();
    loop {
        let input = match core.poll_timeout() {
            Some(at) => inputs.recv_timeout(at.saturating_duration_since(Instant::now())),
            None => inputs.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        let now = Instant::now();
        match input {
            Ok(Input::Connected(conn, stream, remote)) => {
                sockets.insert(conn, stream);
                core.handle_connected(conn, remote, now);
            }
            Ok(Input::Bytes(conn, bytes)) => core.handle_bytes(conn, &bytes, now),
            Ok(Input::Closed(conn)) => {
                sockets.remove(&conn);
                core.handle_disconnected(conn, now);
            }
            Err(RecvTimeoutError::Timeout) => core.handle_timeout(now),
            Err(RecvTimeoutError::Disconnected) => return,
        }
        loop {
            while let Some(transmit) = core.poll_transmit() {
                let bytes = transmit.unwrap_bytes();
                // A blocking write: fine for an example, a real host bounds it.
                if let Some(socket) = sockets.get_mut(&transmit.to) {
                    let _ = socket.write_all(bytes);
                }
                core.handle_written(transmit.to, bytes.len());
            }
            let Some(action) = core.poll_action() else {
                break;
            };
            match action {
                CheckLogin { conn, .. } => core.handle_login_checked(conn, Ok(()), now),
                LoadOffline { user } => core.handle_offline_loaded(&user, vec![], now),
                Close { conn } => {
                    let _ = sockets.remove(&conn).map(|s| s.shutdown(Shutdown::Both));
                }
                _ => {} // StoreOffline: alice only writes to bob while he is online.
            }
        }
        while core.poll_event().is_some() {}
    }
}

/// One client on this thread. With `say`, sends it to whoever comes online (bob: there are two
/// users) and returns once he has it; without, returns the first message received.
fn chat(addr: SocketAddr, me: &str, say: Option<&str>) -> Result<String, String> {
    let until = Instant::now() + PATIENCE;
    let mut config = ClientConfig::new(UserName::new(me).expect("a name"), "any password", 0);
    config.direct_channels = false;
    let key = IdentityKey::from_secret([me.len() as u8; 32]); // Each profile has its own.
    let mut core = Client::new(config, key, [me.len() as u8; 32], Instant::now());
    let mut socket: Option<TcpStream> = None;
    let mut buf = vec![0; 64 * 1024];
    loop {
        let now = Instant::now();
        if now > until {
            return Err(format!("{me}: nothing happened within {PATIENCE:?}"));
        }
        // Drain: transmits before each action, since a close comes after the bytes before it.
        loop {
            while let Some(transmit) = core.poll_transmit() {
                let bytes = transmit.unwrap_bytes();
                if let Some(socket) = socket.as_mut() {
                    let _ = socket.write_all(bytes);
                }
                core.handle_written(transmit.to, bytes.len());
            }
            let Some(action) = core.poll_action() else {
                break;
            };
            match action {
                Action::ConnectServer => match TcpStream::connect(addr) {
                    Ok(stream) => {
                        socket = Some(stream);
                        core.handle_server_connected(now);
                    }
                    Err(_) => core.handle_server_connect_failed(now),
                },
                Action::CloseServer => drop(socket.take()), // The only handle: this closes it.
                Action::Dial { .. } => unreachable!("direct channels are off: no dials"),
                _ => {} // File actions: this host offers and accepts no files.
            }
        }
        let mut sent = false;
        while let Some(event) = core.poll_event() {
            match event {
                Event::PresenceComplete { online, .. } => {
                    println!("{me}: {online} other(s) online")
                }
                Event::Presence { user, online: true } if say.is_some() => {
                    let text = say.unwrap_or_default().to_string();
                    core.send(&user, text, now).map_err(|e| e.to_string())?;
                    sent = true;
                }
                Event::Delivered { to, route, .. } => {
                    println!("{me}: {to} has it (via {route})");
                    return Ok(say.unwrap_or_default().to_string());
                }
                Event::Message { text, .. } => return Ok(text),
                _ => {}
            }
        }
        if sent {
            continue; // `send` is an input too: drain what it queued before waiting.
        }
        // Wait for bytes, or until the core's deadline; an early wake-up is harmless.
        let at = core.poll_timeout().unwrap_or(now + Duration::from_secs(1));
        let wait = at
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        let Some(stream) = socket.as_mut() else {
            thread::sleep(wait);
            core.handle_timeout(Instant::now());
            continue;
        };
        let _ = stream.set_read_timeout(Some(wait));
        match stream.read(&mut buf) {
            Ok(n @ 1..) => core.handle_server_bytes(&buf[..n], Instant::now()),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                core.handle_timeout(Instant::now())
            }
            Ok(0) | Err(_) => {
                socket = None;
                core.handle_server_closed(Instant::now());
            }
        }
    }
}

#[test]
fn a_blocking_client_logs_in_and_its_message_is_delivered() {
    assert_eq!(run(), Ok("hello bob".to_string()));
}
