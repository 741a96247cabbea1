//! The idle crowd: a client that logs in, then only keeps its heartbeat, speaking the wire
//! format directly (the core's frames and codec) without a client core.
//!
//! Why not a `breeze_core::Client` each: a client core keeps a record of every other online
//! user (about 520 bytes each, measured), so 10,000 cores would hold 10,000 × 10,000 records,
//! some 50 GB, in the load generator. The server cannot tell the difference: it gets the same
//! hello, login and pings, and sends the same frames, which this client decodes and drops.
//! A few real cores (`core_client.rs`) log in first to check the heartbeat end to end.
//!
//! The link is encrypted like a real client's: the Noise XX handshake first (the profile key
//! derived from its name, `profiles.rs`), then records. Hello and login are encoded once and sealed together behind
//! the handshake's last message, in one write; each ping is one sealed record.
//!
//! The heartbeat follows the core's rule (`breeze_core::liveness`): having sent nothing else,
//! the client pings every `interval`, and counts the server as lost once it has heard nothing
//! for `dead_after`.

use crate::load::{ClientReport, Progress};
use crate::secure_link::{fresh_seed, SecureLink};
use breeze_core::codec::{encode_frame, FrameDecoder, DEFAULT_MAX_FRAME};
use breeze_core::liveness::Heartbeat;
use breeze_core::secure::PublicKey;
use breeze_core::wire::{ClientFrame, ServerFrame, UserName, PROTOCOL_VERSION};
use smol::future::race;
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::lock::Semaphore;
use smol::net::TcpStream;
use smol::Timer;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Bytes per socket read: presence lists are the biggest thing an idle client gets.
const READ_BUFFER: usize = 16 * 1024;

pub struct Crowd {
    pub server: SocketAddr,
    pub password: &'static str,
    /// The server's key, when known: a server presenting another is refused.
    pub server_key: Option<PublicKey>,
    /// Create the account at login (a `breeze-server` with `--open-registration`).
    pub register: bool,
    /// Log in with the profile key alone (enrolled before), sending no password.
    pub key_login: bool,
    /// Leave as soon as the login is through: an enrolment, which only has to bind the key.
    pub leave_after_login: bool,
    /// Try a failed login again after a backoff (what the core client does by itself).
    pub retry_logins: bool,
    pub heartbeat: Heartbeat,
    pub progress: Arc<Progress>,
    pub login_slots: Arc<Semaphore>,
}

enum Wake {
    Read(std::io::Result<usize>),
    Tick,
}

/// Logs in as `user` (registering the account if the crowd says so) and stays idle until the
/// crowd is done. A login that fails (refused for now, timed out in a storm) is tried again
/// after a backoff, as a real client does, when the crowd says so; any other failure is a
/// problem.
pub async fn run(crowd: Arc<Crowd>, user: UserName) -> ClientReport {
    let mut report = ClientReport::default();
    let mut backoff = Duration::from_millis(500);
    loop {
        let (logged_in, failure) = attempt(&crowd, user.clone()).await;
        let Some(what) = failure else { break };
        let progress = &crowd.progress;
        if progress.is_stopping() {
            break;
        }
        if logged_in || !crowd.retry_logins || progress.is_done() {
            progress.problems.fetch_add(1, Ordering::Relaxed);
            report.problem(what);
            break;
        }
        progress.retried.fetch_add(1, Ordering::Relaxed);
        // The core's reconnect rule: doubling up to 15 s, drawn in the upper half.
        let jitter = 0.5 + fresh_seed()[0] as f64 / 512.0;
        Timer::after(backoff.mul_f64(jitter)).await;
        backoff = (backoff * 2).min(Duration::from_secs(15));
    }
    report
}

/// One connection: whether it logged in, and what ended it if not the crowd being done.
async fn attempt(crowd: &Crowd, user: UserName) -> (bool, Option<String>) {
    let progress = &crowd.progress;
    let mut logged_in = false;
    let slot = crowd.login_slots.acquire_arc().await;
    let mut stream = match TcpStream::connect(crowd.server).await {
        Ok(stream) => stream,
        Err(error) => {
            return (logged_in, Some(format!("cannot connect: {error}")));
        }
    };
    let _ = stream.set_nodelay(true);
    progress.connected.fetch_add(1, Ordering::Relaxed);
    // The same key in every run: what a password login enrols, a key login proves.
    let identity = crate::profiles::key_of(&user);
    let mut link = match SecureLink::initiator(&identity, crowd.server_key, fresh_seed()) {
        Ok(link) => link,
        Err(error) => {
            return (
                logged_in,
                Some(format!("cannot start the handshake: {error}")),
            );
        }
    };
    let mut hello = Vec::new();
    let frames = [
        ClientFrame::Hello {
            version: PROTOCOL_VERSION,
        },
        match crowd.key_login {
            true => ClientFrame::KeyLogin { user, p2p_port: 0 },
            false => ClientFrame::Login {
                user,
                password: crowd.password.into(),
                p2p_port: 0,
                register: crowd.register,
            },
        },
    ];
    for frame in &frames {
        encode_frame(frame, DEFAULT_MAX_FRAME, &mut hello).expect("a small frame");
    }
    let mut ping = Vec::new();
    encode_frame(&ClientFrame::Ping, DEFAULT_MAX_FRAME, &mut ping).expect("a small frame");

    let mut slot = Some(slot);
    let mut failure = None;
    let mut decoder = FrameDecoder::new(DEFAULT_MAX_FRAME);
    let mut buffer = vec![0u8; READ_BUFFER];
    let mut tick = Timer::interval(crowd.heartbeat.interval);
    let mut last_rx = Instant::now();
    // What goes out next, as it goes on the wire: handshake messages, then records.
    let mut outgoing = Vec::new();
    link.take_outgoing(&mut outgoing);
    let mut hello = Some(hello);
    let mut plain = Vec::new();
    'connection: loop {
        if !outgoing.is_empty() {
            if let Err(error) = stream.write_all(&outgoing).await {
                failure = Some(format!("write failed: {error}"));
                break;
            }
            outgoing.clear();
        }
        if progress.is_done() {
            break;
        }
        let read = async { Wake::Read(stream.read(&mut buffer).await) };
        let beat = async {
            (&mut tick).await;
            Wake::Tick
        };
        let now = match race(read, beat).await {
            Wake::Read(Ok(n)) if n > 0 => {
                let now = Instant::now();
                last_rx = now;
                plain.clear();
                if let Err(error) = link.read(&buffer[..n], &mut plain) {
                    failure = Some(format!("encrypted link failed: {error}"));
                    break 'connection;
                }
                link.take_outgoing(&mut outgoing);
                if link.is_open() {
                    if let Some(hello) = hello.take() {
                        // Right behind the handshake's last message, in the same write.
                        if let Err(error) = link.seal(&hello, &mut outgoing) {
                            failure = Some(format!("cannot seal: {error}"));
                            break 'connection;
                        }
                    }
                }
                let mut input = &plain[..];
                loop {
                    match decoder.decode::<ServerFrame>(&mut input) {
                        Ok(Some(ServerFrame::LoginOk { .. })) => {
                            slot = None;
                            logged_in = true;
                            progress.logged_in.fetch_add(1, Ordering::Relaxed);
                            if crowd.leave_after_login {
                                break 'connection;
                            }
                        }
                        Ok(Some(ServerFrame::Hello { version })) if version != PROTOCOL_VERSION => {
                            failure = Some(format!("server speaks protocol {version}"));
                            break 'connection;
                        }
                        Ok(Some(ServerFrame::LoginRefused { reason })) => {
                            failure = Some(format!("login refused: {reason}"));
                            break 'connection;
                        }
                        Ok(Some(ServerFrame::Kicked { reason })) => {
                            failure = Some(format!("kicked: {reason:?}"));
                            break 'connection;
                        }
                        Ok(Some(ServerFrame::ShuttingDown)) => {
                            failure = Some("server shutting down".into());
                            break 'connection;
                        }
                        Ok(Some(ServerFrame::Error { code })) => {
                            failure = Some(format!("server reported: {code:?}"));
                            break 'connection;
                        }
                        // Presence, introductions, pings: an idle client has no use for them.
                        Ok(Some(_)) => {}
                        Ok(None) => break,
                        Err(error) => {
                            failure = Some(format!("bad data from the server: {error}"));
                            break 'connection;
                        }
                    }
                }
                now
            }
            Wake::Read(Ok(_)) => {
                failure = Some("server closed the connection".into());
                break;
            }
            Wake::Read(Err(error)) => {
                failure = Some(format!("read failed: {error}"));
                break;
            }
            Wake::Tick => {
                // Nothing else is ever sent, so a ping is due every interval (once the
                // channel is up: the server's handshake deadline covers the time before).
                if link.is_open() {
                    if let Err(error) = link.seal(&ping, &mut outgoing) {
                        failure = Some(format!("cannot seal: {error}"));
                        break;
                    }
                }
                Instant::now()
            }
        };
        if now.saturating_duration_since(last_rx) >= crowd.heartbeat.dead_after {
            failure = Some("server silent".into());
            break;
        }
    }
    drop(slot);
    (logged_in, failure)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::in_process::InProcessServer;
    use crate::load::{run_fleet, wait_until};
    use std::time::Duration;

    /// Wire clients get through the handshake (pinning the server's key), log in and keep
    /// their heartbeat on the real server driver; one pinning another key is refused.
    #[test]
    fn wire_clients_log_in_over_the_encrypted_link() {
        let server = InProcessServer::start(8).unwrap();
        let progress = Arc::new(Progress::new(0));
        let crowd = |server_key| {
            Arc::new(Crowd {
                server: server.addr,
                password: "pw",
                server_key,
                // The in-process server welcomes anyone, and registers nobody.
                register: false,
                key_login: false,
                leave_after_login: false,
                retry_logins: false,
                heartbeat: Heartbeat {
                    interval: Duration::from_millis(100),
                    dead_after: Duration::from_secs(5),
                },
                progress: progress.clone(),
                login_slots: Arc::new(Semaphore::new(8)),
            })
        };
        let (good, wrong) = (crowd(Some(server.key)), crowd(Some(PublicKey([9; 32]))));
        let names: Vec<UserName> = (0..3)
            .map(|i| UserName::new(format!("wire.{i}")).unwrap())
            .collect();
        let (report, logged_in) = run_fleet(
            1,
            3,
            |i| {
                let crowd = if i == 2 { wrong.clone() } else { good.clone() };
                run(crowd, names[i].clone())
            },
            || {
                let two = wait_until("logging in", Duration::from_secs(20), || {
                    progress.get(&progress.logged_in) >= 2
                });
                // A few heartbeats go by.
                std::thread::sleep(Duration::from_millis(350));
                progress.finish();
                two
            },
        );
        server.stop();
        assert!(logged_in, "{:?}", report.problems);
        assert_eq!(progress.get(&progress.logged_in), 2);
        let problems: Vec<&String> = report.problems.keys().collect();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("unexpected key"), "{problems:?}");
    }
}
