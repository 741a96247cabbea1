//! The baseline: a raw TCP forwarder and its load clients, with no protocol at all.
//!
//! The forwarder is what any relay must do at the least: one task per connection reads
//! length-prefixed frames, puts the sender's id where the recipient's was, and writes them to
//! the recipient's socket (frames to one recipient from one read in one write). No login, no
//! state machine, no acknowledgement bookkeeping, no output bounds.
//!
//! The clients load it exactly as the Breeze load clients load the server: the same number of
//! clients, messages, window and random recipients; each chat frame is as long as Breeze's
//! relay frame for the same text, and after every read a receiver sends one acknowledgement
//! frame (as long as Breeze's) per sender it heard from, which opens that sender's window.
//!
//! Frame: `len: u32` (bytes after it), `peer: u32` (recipient on the way in, sender on the
//! way out), `kind: u8`, then for a chat the send stamp (`load::stamped_text`) padded, for an
//! ack the number of messages acknowledged (`u32`) padded.

use crate::load::{sent_at, stamped_text, ClientReport, Pick, Plan, Progress, TICK};
use breeze_core::codec::{encode_frame, DEFAULT_MAX_FRAME};
use breeze_core::wire::{Ack, Chat, ClientFrame, MessageId, UserName};
use smol::future::race;
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::lock::Mutex;
use smol::net::{TcpListener, TcpStream};
use smol::{Task, Timer};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

const READ_BUFFER: usize = 64 * 1024;
const HEADER: usize = 9;
const CHAT: u8 = 0;
const ACK: u8 = 1;

/// Frame sizes matching Breeze's for the same load: a `ClientFrame::Relay` carrying `size`
/// bytes of text and a `ClientFrame::RelayAck`, between users named like the load clients.
#[derive(Debug, Clone, Copy)]
pub struct FrameSizes {
    pub chat: usize,
    pub ack: usize,
}

impl FrameSizes {
    pub fn like_breeze(size: usize, to: &UserName) -> FrameSizes {
        let epoch = 0x9e37_79b9_7f4a_7c15; // drawn at random by a client: a full-width varint
        let relay = ClientFrame::Relay {
            to: to.clone(),
            chat: Chat {
                id: MessageId(1_000),
                epoch,
                seq: 1_000,
                first_unacked: 1_000,
                text: "x".repeat(size),
            },
        };
        let ack = ClientFrame::RelayAck {
            to: to.clone(),
            ack: Ack {
                epoch,
                through: 1_000,
            },
        };
        let len = |frame: &ClientFrame| {
            let mut bytes = Vec::new();
            encode_frame(frame, DEFAULT_MAX_FRAME, &mut bytes).expect("a small frame");
            bytes.len()
        };
        FrameSizes {
            chat: len(&relay).max(HEADER + 16),
            ack: len(&ack).max(HEADER + 4),
        }
    }
}

/// A running forwarder; dropping it stops it.
pub struct Forwarder {
    pub addr: SocketAddr,
    _accept: Task<()>,
}

/// The write half of every connection, by client id.
type Outlets = Arc<Vec<OnceLock<Mutex<TcpStream>>>>;

impl Forwarder {
    /// Listens on an ephemeral loopback port, for clients `0..clients`; tasks run on smol's
    /// global executor, as the Breeze server's socket tasks do.
    pub fn start(clients: usize) -> std::io::Result<Forwarder> {
        let listener = TcpListener::try_from(std::net::TcpListener::bind("127.0.0.1:0")?)?;
        let addr = listener.local_addr()?;
        let outlets: Outlets = Arc::new((0..clients).map(|_| OnceLock::new()).collect());
        let accept = smol::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                smol::spawn(forward(stream, outlets.clone())).detach();
            }
        });
        Ok(Forwarder {
            addr,
            _accept: accept,
        })
    }
}

/// One connection: learn the client's id, then forward every frame it sends.
async fn forward(mut stream: TcpStream, outlets: Outlets) {
    let _ = stream.set_nodelay(true);
    let mut id = [0u8; 4];
    if stream.read_exact(&mut id).await.is_err() {
        return;
    }
    let me = u32::from_be_bytes(id);
    let Some(outlet) = outlets.get(me as usize) else {
        return;
    };
    let _ = outlet.set(Mutex::new(stream.clone()));
    let mut buffer = vec![0u8; READ_BUFFER];
    let mut filled = 0;
    // (recipient, start, end) of each whole frame in the buffer.
    let mut frames: Vec<(u32, usize, usize)> = Vec::new();
    let mut batch = Vec::new();
    loop {
        match stream.read(&mut buffer[filled..]).await {
            Ok(0) | Err(_) => return,
            Ok(n) => filled += n,
        }
        frames.clear();
        let mut at = 0;
        while let Some(len) = buffer.get(at..at + 4) {
            let end = at + 4 + u32::from_be_bytes(len.try_into().expect("4 bytes")) as usize;
            if end > filled || end < at + HEADER {
                break;
            }
            let to = u32::from_be_bytes(buffer[at + 4..at + 8].try_into().expect("4 bytes"));
            buffer[at + 4..at + 8].copy_from_slice(&me.to_be_bytes());
            frames.push((to, at, end));
            at = end;
        }
        frames.sort_by_key(|(to, _, _)| *to);
        let mut i = 0;
        while i < frames.len() {
            let to = frames[i].0;
            batch.clear();
            while i < frames.len() && frames[i].0 == to {
                batch.extend_from_slice(&buffer[frames[i].1..frames[i].2]);
                i += 1;
            }
            if let Some(outlet) = outlets.get(to as usize).and_then(OnceLock::get) {
                let _ = outlet.lock().await.write_all(&batch).await;
            }
        }
        buffer.copy_within(at..filled, 0);
        filled -= at;
        if filled == buffer.len() {
            return; // a frame larger than the buffer: not from our clients
        }
    }
}

/// What the raw clients of one run share.
pub struct RawFleet {
    pub server: SocketAddr,
    pub plan: Plan,
    pub sizes: FrameSizes,
    pub progress: Arc<Progress>,
}

/// Runs raw client `index` until the fleet is done.
pub async fn run(fleet: Arc<RawFleet>, index: usize) -> ClientReport {
    let mut report = ClientReport::default();
    let progress = &fleet.progress;
    let plan = fleet.plan;
    let mut stream = match TcpStream::connect(fleet.server).await {
        Ok(stream) => stream,
        Err(error) => {
            progress.problems.fetch_add(1, Ordering::Relaxed);
            report.problem(format!("cannot connect: {error}"));
            return report;
        }
    };
    let _ = stream.set_nodelay(true);
    let mut out = (index as u32).to_be_bytes().to_vec();
    progress.connected.fetch_add(1, Ordering::Relaxed);
    progress.logged_in.fetch_add(1, Ordering::Relaxed);
    progress.ready.fetch_add(1, Ordering::Relaxed);

    let mut pick = Pick::new(index as u64 + 1);
    let mut buffer = vec![0u8; READ_BUFFER];
    let mut filled = 0;
    let mut in_flight = 0;
    let mut owed: Vec<(u32, u32)> = Vec::new();
    let mut ack = vec![0u8; fleet.sizes.ack - HEADER];
    let mut tick = Timer::interval(TICK);
    loop {
        if progress.is_started() && in_flight < plan.window {
            let granted = progress.claim((plan.window - in_flight) as u64);
            for _ in 0..granted {
                let to = pick.other(index, plan.clients) as u32;
                let now = Instant::now();
                let text = stamped_text(progress.origin, now, fleet.sizes.chat - HEADER);
                push_frame(&mut out, to, CHAT, text.as_bytes());
                in_flight += 1;
                report.sending(now);
            }
        }
        if !out.is_empty() {
            if stream.write_all(&out).await.is_err() {
                progress.problems.fetch_add(1, Ordering::Relaxed);
                report.problem("write failed".into());
                return report;
            }
            out.clear();
        }
        if progress.is_done() {
            return report;
        }
        let started = progress.is_started();
        let read = async { Some(stream.read(&mut buffer[filled..]).await) };
        let wait = async {
            if started {
                (&mut tick).await;
            } else {
                race(progress.started(), async {
                    (&mut tick).await;
                })
                .await;
            }
            None
        };
        let n = match race(read, wait).await {
            None => continue,
            Some(Ok(n)) if n > 0 => n,
            Some(_) => {
                if !progress.is_stopping() {
                    progress.problems.fetch_add(1, Ordering::Relaxed);
                    report.problem("forwarder closed the connection".into());
                }
                return report;
            }
        };
        filled += n;
        let now = Instant::now();
        let mut at = 0;
        while let Some(len) = buffer.get(at..at + 4) {
            let end = at + 4 + u32::from_be_bytes(len.try_into().expect("4 bytes")) as usize;
            if end > filled {
                break;
            }
            let from = u32::from_be_bytes(buffer[at + 4..at + 8].try_into().expect("4 bytes"));
            let body = &buffer[at + HEADER..end];
            match buffer[at + 8] {
                CHAT => {
                    report.receipt(sent_at(progress.origin, body), now);
                    progress.received.fetch_add(1, Ordering::Relaxed);
                    match owed.iter_mut().find(|(peer, _)| *peer == from) {
                        Some((_, n)) => *n += 1,
                        None => owed.push((from, 1)),
                    }
                }
                _ => {
                    let acked = u32::from_be_bytes(body[..4].try_into().expect("4 bytes"));
                    in_flight = in_flight.saturating_sub(acked as usize);
                    report.delivered += acked as u64;
                }
            }
            at = end;
        }
        buffer.copy_within(at..filled, 0);
        filled -= at;
        for (peer, n) in owed.drain(..) {
            ack[..4].copy_from_slice(&n.to_be_bytes());
            push_frame(&mut out, peer, ACK, &ack);
        }
    }
}

fn push_frame(out: &mut Vec<u8>, peer: u32, kind: u8, body: &[u8]) {
    out.extend_from_slice(&((HEADER - 4 + body.len()) as u32).to_be_bytes());
    out.extend_from_slice(&peer.to_be_bytes());
    out.push(kind);
    out.extend_from_slice(body);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_frames_are_as_long_as_breezes() {
        let name = UserName::new("load.000042").unwrap();
        let sizes = FrameSizes::like_breeze(100, &name);
        let mut out = Vec::new();
        push_frame(&mut out, 1, CHAT, &vec![b'x'; sizes.chat - HEADER]);
        assert_eq!(out.len(), sizes.chat);
        assert!(sizes.chat > 100 + HEADER, "{sizes:?}");
        assert!(sizes.ack > HEADER + 4, "{sizes:?}");
    }
}
