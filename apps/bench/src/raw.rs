//! The baseline: a raw forwarder and its load clients, with no protocol but the encryption.
//!
//! The forwarder is what any relay of encrypted links must do at the least: one task per
//! connection does the same Noise XX handshake as a Breeze server, opens the records it reads,
//! cuts the plaintext into length-prefixed frames, puts the sender's id where the recipient's
//! was, and appends each frame to its recipient's outlet; each connection's writer task seals
//! whatever gathered there since its last write in one call and writes it in one write (so a
//! busy connection gets one write per turn, whoever sent to it). No login, no state machine,
//! no acknowledgement bookkeeping, no output bounds.
//!
//! The clients load it exactly as the Breeze load clients load the server: the same number of
//! clients, messages, window and random recipients; each chat frame is as long as Breeze's
//! relay frame for the same text, and after every read a receiver sends one acknowledgement
//! frame (as long as Breeze's) per sender it heard from, which opens that sender's window.
//! They encrypt as a Breeze client does: XX first (pinning the forwarder's key), then whatever
//! one turn of the loop has to say encoded into one buffer, sealed in one call, written once.
//!
//! Frame: `len: u32` (bytes after it), `peer: u32` (recipient on the way in, sender on the
//! way out), `kind: u8`, then for a chat the send stamp (`load::stamped_text`) padded, for an
//! ack the number of messages acknowledged (`u32`) padded. The first plaintext a client sends
//! is its id (`u32`).

use crate::load::{
    read_or_tick, sent_at, stamped_text, ClientReport, Correspondents, Pacer, Pick, Plan, Progress,
    TICK,
};
use crate::secure_link::{fresh_seed, SecureLink};
use breeze_core::codec::{encode_frame, DEFAULT_MAX_FRAME};
use breeze_core::rng::SeededRng;
use breeze_core::secure::{IdentityKey, PairKey, PublicKey, Sealer};
use breeze_core::wire::{Ack, Chat, ClientFrame, MessageId, SealedAck, SealedChat, UserName};
use smol::channel::{Receiver, Sender};
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::net::{TcpListener, TcpStream};
use smol::{Task, Timer};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

const READ_BUFFER: usize = 64 * 1024;
/// Plaintext a connection may hold unparsed: far more than any frame of our clients.
const MAX_PENDING_PLAIN: usize = 1 << 20;
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
                                           // Sealed end to end, as Breeze's relayed frames are: the sizes include the seals.
        let pair = PairKey::new(
            &IdentityKey::from_secret([1; 32]),
            &IdentityKey::from_secret([2; 32]).public(),
        )
        .expect("two ordinary keys");
        let mut rng = SeededRng::from_u64(1);
        let chat = Chat {
            id: MessageId(1_000),
            epoch,
            seq: 1_000,
            first_unacked: 1_000,
            text: "x".repeat(size),
        };
        let relay = ClientFrame::Relay {
            to: to.clone(),
            chat: SealedChat::seal(&chat, &pair, &mut rng),
        };
        let ack = Ack {
            epoch,
            through: 1_000,
        };
        let ack = ClientFrame::RelayAck {
            to: to.clone(),
            ack: SealedAck::seal(ack, &pair, &mut rng),
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
    /// Its static key, which the clients pin.
    pub key: PublicKey,
    /// Writes its connections made so far (each one seal call and one `write`).
    pub writes: Arc<AtomicU64>,
    _accept: Task<()>,
}

/// Where frames for one client go: plaintext gathered from every sender's task, and the
/// doorbell of the client's writer task, which seals and writes whatever has gathered.
///
/// Not bounded by itself: the load is (at most `window` messages per client in flight, and an
/// ack per message), so it never holds more than the whole fleet's windows.
struct Outlet {
    pending: std::sync::Mutex<Vec<u8>>,
    /// One pending ring is enough to wake the writer.
    doorbell: Sender<()>,
}

/// Every connection's outlet, by client id.
type Outlets = Arc<Vec<OnceLock<Outlet>>>;

impl Forwarder {
    /// Listens on an ephemeral loopback port, for clients `0..clients`; tasks run on smol's
    /// global executor, as the Breeze server's socket tasks do.
    pub fn start(clients: usize) -> std::io::Result<Forwarder> {
        let listener = TcpListener::try_from(std::net::TcpListener::bind("127.0.0.1:0")?)?;
        let addr = listener.local_addr()?;
        let identity = Arc::new(IdentityKey::from_secret(fresh_seed()));
        let key = identity.public();
        let outlets: Outlets = Arc::new((0..clients).map(|_| OnceLock::new()).collect());
        let writes = Arc::new(AtomicU64::new(0));
        let counter = writes.clone();
        let accept = smol::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (outlets, identity) = (outlets.clone(), identity.clone());
                smol::spawn(forward(stream, outlets, identity, counter.clone())).detach();
            }
        });
        Ok(Forwarder {
            addr,
            key,
            writes,
            _accept: accept,
        })
    }
}

/// One connection: the handshake, the client's id, then forward every frame it sends to its
/// recipient's outlet.
async fn forward(
    mut stream: TcpStream,
    outlets: Outlets,
    identity: Arc<IdentityKey>,
    writes: Arc<AtomicU64>,
) {
    let _ = stream.set_nodelay(true);
    let Ok(mut link) = SecureLink::responder(&identity, fresh_seed()) else {
        return;
    };
    let mut buffer = vec![0u8; READ_BUFFER];
    // Opened, not yet forwarded (a frame may span records and reads).
    let mut plain = Vec::new();
    let mut me: Option<u32> = None;
    let mut _writer: Option<Task<()>> = None;
    loop {
        let n = match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if link.read(&buffer[..n], &mut plain).is_err() {
            return;
        }
        let mut reply = Vec::new();
        link.take_outgoing(&mut reply);
        // Only the handshake is written from here, before anyone can know this connection.
        if !reply.is_empty() && stream.write_all(&reply).await.is_err() {
            return;
        }
        let mut at = 0;
        if me.is_none() {
            let Some(id) = plain.get(..4) else {
                continue;
            };
            let id = u32::from_be_bytes(id.try_into().expect("4 bytes"));
            let (Some(outlet), Some(sealer)) = (outlets.get(id as usize), link.take_sealer())
            else {
                return;
            };
            let (doorbell, rung) = smol::channel::bounded(1);
            let _ = outlet.set(Outlet {
                pending: std::sync::Mutex::new(Vec::new()),
                doorbell,
            });
            _writer = Some(smol::spawn(write_loop(
                stream.clone(),
                sealer,
                outlets.clone(),
                id,
                rung,
                writes.clone(),
            )));
            me = Some(id);
            at = 4;
        }
        let Some(me) = me else { continue };
        while let Some(len) = plain.get(at..at + 4) {
            let end = at + 4 + u32::from_be_bytes(len.try_into().expect("4 bytes")) as usize;
            if end > plain.len() || end < at + HEADER {
                break;
            }
            let to = u32::from_be_bytes(plain[at + 4..at + 8].try_into().expect("4 bytes"));
            plain[at + 4..at + 8].copy_from_slice(&me.to_be_bytes());
            if let Some(outlet) = outlets.get(to as usize).and_then(OnceLock::get) {
                outlet
                    .pending
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .extend_from_slice(&plain[at..end]);
                let _ = outlet.doorbell.try_send(());
            }
            at = end;
        }
        plain.drain(..at);
        if plain.len() > MAX_PENDING_PLAIN {
            return; // a frame far larger than any of our clients send
        }
    }
}

/// One connection's writer: whatever gathered for it since its last write, from any number
/// of senders, sealed in one call and written in one write. Under load this is one write per
/// busy connection per turn, not one per frame.
async fn write_loop(
    mut stream: TcpStream,
    mut sealer: Sealer,
    outlets: Outlets,
    me: u32,
    rung: Receiver<()>,
    writes: Arc<AtomicU64>,
) {
    let Some(outlet) = outlets.get(me as usize).and_then(OnceLock::get) else {
        return;
    };
    let (mut batch, mut sealed) = (Vec::new(), Vec::new());
    while rung.recv().await.is_ok() {
        std::mem::swap(
            &mut batch,
            &mut *outlet
                .pending
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
        if batch.is_empty() {
            continue;
        }
        sealed.clear();
        if sealer.seal(&batch, &mut sealed).is_err() || stream.write_all(&sealed).await.is_err() {
            return;
        }
        writes.fetch_add(1, Ordering::Relaxed);
        batch.clear();
    }
}

/// What the raw clients of one run share.
pub struct RawFleet {
    pub server: SocketAddr,
    /// The forwarder's key, pinned by every client.
    pub server_key: PublicKey,
    pub plan: Plan,
    /// Whom each client writes to, as in the Breeze runs.
    pub correspondents: Correspondents,
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
    let identity = IdentityKey::from_secret(fresh_seed());
    let mut buffer = vec![0u8; READ_BUFFER];
    // Frames received and opened, not yet handled.
    let mut plain = Vec::new();
    let mut link = match handshake(
        &mut stream,
        &identity,
        fleet.server_key,
        &mut buffer,
        &mut plain,
    )
    .await
    {
        Ok(link) => link,
        Err(error) => {
            progress.problems.fetch_add(1, Ordering::Relaxed);
            report.problem(error);
            return report;
        }
    };
    // This turn's frames, then as sealed for the wire behind what the handshake still has to
    // say: one seal and one write per turn.
    let mut out = (index as u32).to_be_bytes().to_vec();
    let mut wire = Vec::new();
    link.take_outgoing(&mut wire);
    progress.connected.fetch_add(1, Ordering::Relaxed);
    progress.logged_in.fetch_add(1, Ordering::Relaxed);
    progress.ready.fetch_add(1, Ordering::Relaxed);

    let mut pick = Pick::new(index as u64 + 1);
    let targets = fleet.correspondents.of(index);
    let mut in_flight = 0;
    let mut owed: Vec<(u32, u32)> = Vec::new();
    let mut ack = vec![0u8; fleet.sizes.ack - HEADER];
    let mut tick = Timer::interval(TICK);
    let mut pacer = Pacer::new(&plan, index);
    loop {
        if progress.is_started() && in_flight < plan.window {
            let room = plan.window - in_flight;
            let want = Pacer::allowed(pacer.as_mut(), Instant::now(), room);
            let granted = if want > 0 { progress.claim(want) } else { 0 };
            for _ in 0..granted {
                let to = targets[pick.below(targets.len())] as u32;
                let now = Instant::now();
                let text = stamped_text(progress.origin, now, fleet.sizes.chat - HEADER);
                push_frame(&mut out, to, CHAT, text.as_bytes());
                in_flight += 1;
                report.sending(now);
            }
        }
        if !out.is_empty() {
            if let Err(error) = link.seal(&out, &mut wire) {
                progress.problems.fetch_add(1, Ordering::Relaxed);
                report.problem(format!("cannot seal: {error}"));
                return report;
            }
            out.clear();
        }
        if !wire.is_empty() {
            if stream.write_all(&wire).await.is_err() {
                progress.problems.fetch_add(1, Ordering::Relaxed);
                report.problem("write failed".into());
                return report;
            }
            wire.clear();
        }
        if progress.is_done() {
            return report;
        }
        let start_wakes = !progress.is_started();
        let room = in_flight < plan.window;
        let slot = Pacer::wake_at(pacer.as_ref(), room);
        let n = match read_or_tick(
            &mut stream,
            &mut buffer,
            &mut tick,
            progress,
            start_wakes,
            slot,
        )
        .await
        {
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
        if let Err(error) = link.read(&buffer[..n], &mut plain) {
            progress.problems.fetch_add(1, Ordering::Relaxed);
            report.problem(format!("encrypted link failed: {error}"));
            return report;
        }
        let now = Instant::now();
        let mut at = 0;
        while let Some(len) = plain.get(at..at + 4) {
            let end = at + 4 + u32::from_be_bytes(len.try_into().expect("4 bytes")) as usize;
            if end > plain.len() {
                break;
            }
            let from = u32::from_be_bytes(plain[at + 4..at + 8].try_into().expect("4 bytes"));
            let body = &plain[at + HEADER..end];
            match plain[at + 8] {
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
        plain.drain(..at);
        for (peer, n) in owed.drain(..) {
            ack[..4].copy_from_slice(&n.to_be_bytes());
            push_frame(&mut out, peer, ACK, &ack);
        }
    }
}

/// The client's side of the handshake with the forwarder: its first message out, the
/// forwarder's answer in; the last message waits in the link, to go out with the first records.
async fn handshake(
    stream: &mut TcpStream,
    identity: &IdentityKey,
    server_key: PublicKey,
    buffer: &mut [u8],
    plain: &mut Vec<u8>,
) -> Result<SecureLink, String> {
    let mut link = SecureLink::initiator(identity, Some(server_key), fresh_seed())
        .map_err(|e| format!("cannot start the handshake: {e}"))?;
    let mut first = Vec::new();
    link.take_outgoing(&mut first);
    stream
        .write_all(&first)
        .await
        .map_err(|e| format!("write failed: {e}"))?;
    while !link.is_open() {
        let n = stream
            .read(buffer)
            .await
            .map_err(|e| format!("read failed: {e}"))?;
        if n == 0 {
            return Err("forwarder closed the connection during the handshake".into());
        }
        link.read(&buffer[..n], plain)
            .map_err(|e| format!("handshake failed: {e}"))?;
    }
    Ok(link)
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
