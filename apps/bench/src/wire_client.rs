//! The idle crowd: a client that logs in, then only keeps its heartbeat, speaking the wire
//! format directly (the core's frames and codec) without a client core.
//!
//! Why not a `breeze_core::Client` each: a client core keeps a record of every other online
//! user (about 520 bytes each, measured), so 10,000 cores would hold 10,000 × 10,000 records,
//! some 50 GB, in the load generator. The server cannot tell the difference: it gets the same
//! hello, login and pings, and sends the same frames, which this client decodes and drops.
//! A few real cores (`core_client.rs`) log in first to check the heartbeat end to end.
//!
//! The heartbeat follows the core's rule (`breeze_core::liveness`): having sent nothing else,
//! the client pings every `interval`, and counts the server as lost once it has heard nothing
//! for `dead_after`.

use crate::load::{ClientReport, Progress};
use breeze_core::codec::{encode_frame, FrameDecoder, DEFAULT_MAX_FRAME};
use breeze_core::liveness::Heartbeat;
use breeze_core::wire::{ClientFrame, ServerFrame, UserName, PROTOCOL_VERSION};
use smol::future::race;
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::lock::Semaphore;
use smol::net::TcpStream;
use smol::Timer;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

/// Bytes per socket read: presence lists are the biggest thing an idle client gets.
const READ_BUFFER: usize = 16 * 1024;

pub struct Crowd {
    pub server: SocketAddr,
    pub password: &'static str,
    pub heartbeat: Heartbeat,
    pub progress: Arc<Progress>,
    pub login_slots: Arc<Semaphore>,
}

enum Wake {
    Read(std::io::Result<usize>),
    Tick,
}

/// Logs in as `user` (registering the account) and stays idle until the crowd is done.
pub async fn run(crowd: Arc<Crowd>, user: UserName) -> ClientReport {
    let mut report = ClientReport::default();
    let progress = &crowd.progress;
    let problem = |report: &mut ClientReport, what: String| {
        if !progress.is_stopping() {
            progress.problems.fetch_add(1, Ordering::Relaxed);
            report.problem(what);
        }
    };
    let slot = crowd.login_slots.acquire_arc().await;
    let mut stream = match TcpStream::connect(crowd.server).await {
        Ok(stream) => stream,
        Err(error) => {
            problem(&mut report, format!("cannot connect: {error}"));
            return report;
        }
    };
    let _ = stream.set_nodelay(true);
    progress.connected.fetch_add(1, Ordering::Relaxed);
    let mut hello = Vec::new();
    let frames = [
        ClientFrame::Hello {
            version: PROTOCOL_VERSION,
        },
        ClientFrame::Login {
            user,
            password: crowd.password.into(),
            p2p_port: 0,
            register: true,
        },
    ];
    for frame in &frames {
        encode_frame(frame, DEFAULT_MAX_FRAME, &mut hello).expect("a small frame");
    }
    let mut ping = Vec::new();
    encode_frame(&ClientFrame::Ping, DEFAULT_MAX_FRAME, &mut ping).expect("a small frame");

    let mut slot = Some(slot);
    let mut decoder = FrameDecoder::new(DEFAULT_MAX_FRAME);
    let mut buffer = vec![0u8; READ_BUFFER];
    let mut tick = Timer::interval(crowd.heartbeat.interval);
    let mut last_rx = Instant::now();
    let mut outgoing = hello;
    'connection: loop {
        if !outgoing.is_empty() {
            if let Err(error) = stream.write_all(&outgoing).await {
                problem(&mut report, format!("write failed: {error}"));
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
                let mut input = &buffer[..n];
                loop {
                    match decoder.decode::<ServerFrame>(&mut input) {
                        Ok(Some(ServerFrame::LoginOk { .. })) => {
                            slot = None;
                            progress.logged_in.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(Some(ServerFrame::Hello { version })) if version != PROTOCOL_VERSION => {
                            problem(&mut report, format!("server speaks protocol {version}"));
                            break 'connection;
                        }
                        Ok(Some(ServerFrame::LoginRefused { reason })) => {
                            problem(&mut report, format!("login refused: {reason}"));
                            break 'connection;
                        }
                        Ok(Some(ServerFrame::Kicked { reason })) => {
                            problem(&mut report, format!("kicked: {reason:?}"));
                            break 'connection;
                        }
                        Ok(Some(ServerFrame::ShuttingDown)) => {
                            problem(&mut report, "server shutting down".into());
                            break 'connection;
                        }
                        Ok(Some(ServerFrame::Error { code })) => {
                            problem(&mut report, format!("server reported: {code:?}"));
                            break 'connection;
                        }
                        // Presence, introductions, pings: an idle client has no use for them.
                        Ok(Some(_)) => {}
                        Ok(None) => break,
                        Err(error) => {
                            problem(&mut report, format!("bad data from the server: {error}"));
                            break 'connection;
                        }
                    }
                }
                now
            }
            Wake::Read(Ok(_)) => {
                problem(&mut report, "server closed the connection".into());
                break;
            }
            Wake::Read(Err(error)) => {
                problem(&mut report, format!("read failed: {error}"));
                break;
            }
            Wake::Tick => {
                // Nothing else is ever sent, so a ping is due every interval.
                outgoing.extend_from_slice(&ping);
                Instant::now()
            }
        };
        if now.saturating_duration_since(last_rx) >= crowd.heartbeat.dead_after {
            problem(&mut report, "server silent".into());
            break;
        }
    }
    drop(slot);
    report
}
