//! The lean Breeze load client: Breeze's client↔server protocol spoken at the wire, with the
//! least work a correct client must do per message, so that a thousand of them on one thread
//! do not limit the server they load.
//!
//! What a real client does and this one does too: the XX handshake (pinning the server's key
//! when known), hello and login, the presence list (it learns every peer's key), then for each
//! message a `ClientFrame::Relay` with the chat sealed end to end for its recipient (a fresh
//! seal: the protocol allows no re-use), and for what it receives the seal opened (that is
//! where the send stamp is) and one cumulative `RelayAck` per sender per read, sealed. Every
//! frame a turn produces is encoded into one buffer, sealed as records in one call and written
//! in one write.
//!
//! What it leaves out, none of which the server can see: the client core's state machines,
//! retransmission and resume (nothing is lost on loopback; a problem is counted if the server
//! says otherwise), and checking the seal of the acks it receives (it reads their cumulative
//! number; the seal is the sender's business).
//!
//! With [`Sealing::StandIn`] the clients seal nothing end to end: each chat carries bytes of a
//! sealed text's length that are no seal, its send stamp in its (visible) message id, and each
//! ack a seal-sized stand-in. The server's work is the same to the byte count (it never opens
//! what users seal for each other, and the links stay encrypted), the load's is three
//! end-to-end AEAD calls per message lighter: a measure of the server for a load that
//! costs less than the real clients would.
//!
//! Pair keys: each client writes to a bounded set of correspondents ([`Correspondents`]), and
//! computes the pair keys for them and for those who write to it once logged in, before it
//! counts as ready, so no X25519 falls inside the timed window.

use crate::core_client::{Fleet, PASSWORD};
use crate::load::{read_or_tick, sent_at, stamped_text, ClientReport, Pacer, Pick, Progress, TICK};
use crate::secure_link::{fresh_seed, SecureLink};
use breeze_core::codec::{encode_frame, FrameDecoder, DEFAULT_MAX_FRAME};
use breeze_core::rng::SeededRng;
use breeze_core::secure::{IdentityKey, PairKey, PublicKey, SEAL_OVERHEAD};
use breeze_core::wire::{
    Ack, Chat, ClientFrame, MessageId, PeerIntro, SealedAck, SealedChat, ServerFrame, UserName,
    PROTOCOL_VERSION,
};
use smol::io::AsyncWriteExt;
use smol::net::TcpStream;
use smol::Timer;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Bytes per socket read.
const READ_BUFFER: usize = 64 * 1024;

/// One pair this client sends to or hears from.
struct Pair {
    key: PairKey,
    /// Sending: the next sequence number, and the highest the other side acknowledged.
    next_seq: u64,
    acked: u64,
    /// Receiving: the sender's epoch and the highest sequence number received.
    heard: Option<(u64, u64)>,
}

/// Whether the load clients seal end to end for real.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sealing {
    /// As a real client: sealed, and opened on receipt.
    Real,
    /// Stand-ins of the same size, not opened (see the module's doc).
    StandIn,
}

/// Why a client stopped early.
type Stop = String;

struct WireClient {
    fleet: Arc<Fleet>,
    sealing: Sealing,
    index: usize,
    identity: IdentityKey,
    link: SecureLink,
    /// Every peer's key, as introduced, by client index.
    keys: Vec<Option<PublicKey>>,
    online: usize,
    /// By client index, for the correspondents either way; filled once everyone is online.
    pairs: Vec<Option<Pair>>,
    /// Whom this client writes to.
    targets: Vec<usize>,
    epoch: u64,
    rng: SeededRng,
    pick: Pick,
    /// A paced run's schedule for this client.
    pacer: Option<Pacer>,
    in_flight: usize,
    logged_in: bool,
    ready: bool,
    /// Senders heard from in this read: each gets one cumulative ack at its end.
    owed: Vec<usize>,
    /// This turn's frames, plaintext.
    out: Vec<u8>,
    report: ClientReport,
}

/// Runs wire client `index` until the fleet's progress says done.
pub async fn run(fleet: Arc<Fleet>, index: usize, sealing: Sealing) -> ClientReport {
    let progress = fleet.progress.clone();
    let mut report = ClientReport::default();
    match session(fleet, index, sealing).await {
        Ok(done) => report = done,
        Err((mut partial, why)) => {
            if !progress.is_stopping() {
                progress.problems.fetch_add(1, Ordering::Relaxed);
                partial.problem(why);
            }
            report.merge(partial);
        }
    }
    report
}

async fn session(
    fleet: Arc<Fleet>,
    index: usize,
    sealing: Sealing,
) -> Result<ClientReport, (ClientReport, Stop)> {
    let fail = |why: String| (ClientReport::default(), why);
    let slot = fleet.login_slots.acquire_arc().await;
    let mut stream = TcpStream::connect(fleet.server)
        .await
        .map_err(|e| fail(format!("cannot connect: {e}")))?;
    let _ = stream.set_nodelay(true);
    fleet.progress.connected.fetch_add(1, Ordering::Relaxed);
    let identity = IdentityKey::from_secret(fresh_seed());
    let link = SecureLink::initiator(&identity, fleet.server_key, fresh_seed())
        .map_err(|e| fail(format!("cannot start the handshake: {e}")))?;
    let clients = fleet.plan.clients;
    let targets = fleet.correspondents.of(index);
    let mut client = WireClient {
        identity,
        link,
        keys: vec![None; clients],
        online: 0,
        pairs: (0..clients).map(|_| None).collect(),
        targets,
        epoch: u64::from_le_bytes(fresh_seed()[..8].try_into().unwrap_or([1; 8])),
        rng: SeededRng::from_seed(fresh_seed()),
        pick: Pick::new(index as u64 + 1),
        pacer: Pacer::new(&fleet.plan, index),
        in_flight: 0,
        logged_in: false,
        ready: false,
        owed: Vec::new(),
        out: Vec::new(),
        report: ClientReport::default(),
        fleet,
        sealing,
        index,
    };
    let mut slot = Some(slot);
    let result = client.run(&mut stream, &mut slot).await;
    let report = std::mem::take(&mut client.report);
    match result {
        Ok(()) => Ok(report),
        Err(why) => Err((report, why)),
    }
}

impl WireClient {
    async fn run(
        &mut self,
        stream: &mut TcpStream,
        slot: &mut Option<smol::lock::SemaphoreGuardArc>,
    ) -> Result<(), Stop> {
        let mut hello = Vec::new();
        // On a large server only watched users' presence comes: watch the correspondents.
        let watched: Vec<UserName> = self
            .correspondents()
            .into_iter()
            .filter_map(|i| self.fleet.names.get(i).cloned())
            .collect();
        let login = [
            ClientFrame::Hello {
                version: PROTOCOL_VERSION,
            },
            ClientFrame::Login {
                user: self.fleet.names[self.index].clone(),
                password: PASSWORD.into(),
                p2p_port: 0,
                register: self.fleet.register,
            },
            ClientFrame::Watch { users: watched },
        ];
        for frame in &login {
            encode_frame(frame, DEFAULT_MAX_FRAME, &mut hello).map_err(|e| e.to_string())?;
        }
        let mut hello = Some(hello);
        let mut wire = Vec::new();
        self.link.take_outgoing(&mut wire);
        let mut decoder = FrameDecoder::new(DEFAULT_MAX_FRAME);
        let mut buffer = vec![0u8; READ_BUFFER];
        let mut plain = Vec::new();
        let mut tick = Timer::interval(TICK);
        let mut sent_since_tick = false;
        let progress = self.fleet.progress.clone();
        loop {
            if self.link.is_open() {
                if let Some(hello) = hello.take() {
                    self.out.extend_from_slice(&hello);
                }
                self.send_more(&progress)?;
                if !self.out.is_empty() {
                    self.link
                        .seal(&self.out, &mut wire)
                        .map_err(|e| format!("cannot seal: {e}"))?;
                    self.out.clear();
                }
            }
            if !wire.is_empty() {
                stream
                    .write_all(&wire)
                    .await
                    .map_err(|e| format!("write failed: {e}"))?;
                wire.clear();
                sent_since_tick = true;
            }
            if progress.is_done() {
                return Ok(());
            }
            let start_wakes = self.ready && !progress.is_started();
            let paced = self.next_slot();
            let n = match read_or_tick(
                stream,
                &mut buffer,
                &mut tick,
                &progress,
                start_wakes,
                paced,
            )
            .await
            {
                None => {
                    // The heartbeat: a ping when nothing else went out since the last tick.
                    if !sent_since_tick && self.link.is_open() && slot.is_none() {
                        encode_frame(&ClientFrame::Ping, DEFAULT_MAX_FRAME, &mut self.out)
                            .map_err(|e| e.to_string())?;
                    }
                    sent_since_tick = false;
                    continue;
                }
                Some(Ok(n)) if n > 0 => n,
                Some(Ok(_)) => return Err("server closed the connection".into()),
                Some(Err(e)) => return Err(format!("read failed: {e}")),
            };
            self.link
                .read(&buffer[..n], &mut plain)
                .map_err(|e| format!("encrypted link failed: {e}"))?;
            self.link.take_outgoing(&mut wire);
            let now = Instant::now();
            let mut input = &plain[..];
            while let Some(frame) = decoder
                .decode::<ServerFrame>(&mut input)
                .map_err(|e| format!("bad data from the server: {e}"))?
            {
                self.on_frame(frame, now, slot)?;
            }
            plain.clear();
            self.owe_acks()?;
        }
    }

    fn on_frame(
        &mut self,
        frame: ServerFrame,
        now: Instant,
        slot: &mut Option<smol::lock::SemaphoreGuardArc>,
    ) -> Result<(), Stop> {
        let progress = &self.fleet.progress;
        match frame {
            ServerFrame::Relayed { from, chat, .. } => {
                let sender = index_of(&from).unwrap_or(usize::MAX);
                let pair = self
                    .pairs
                    .get_mut(sender)
                    .and_then(Option::as_mut)
                    .ok_or_else(|| format!("a message from a stranger ({from})"))?;
                let (opened, sent) = match self.sealing {
                    Sealing::Real => {
                        let opened = chat
                            .open(&pair.key)
                            .map_err(|e| format!("cannot open a message: {e}"))?;
                        let sent = sent_at(progress.origin, opened.text.as_bytes());
                        (opened, sent)
                    }
                    Sealing::StandIn => {
                        let sent = progress.origin + Duration::from_nanos(chat.id.0);
                        let numbers = Chat {
                            id: chat.id,
                            epoch: chat.epoch,
                            seq: chat.seq,
                            first_unacked: chat.first_unacked,
                            text: String::new(),
                        };
                        (numbers, Some(sent))
                    }
                };
                // Exactly once and in order per pair: the next number of the same epoch.
                let expected = match pair.heard {
                    Some((epoch, last)) => (epoch, last + 1),
                    None => (opened.epoch, 1),
                };
                if (opened.epoch, opened.seq) != expected {
                    return Err(format!(
                        "message {} of {from} out of order (expected {})",
                        opened.seq, expected.1
                    ));
                }
                pair.heard = Some(expected);
                if !self.owed.contains(&sender) {
                    self.owed.push(sender);
                }
                self.report.receipt(sent, now);
                progress.received.fetch_add(1, Ordering::Relaxed);
            }
            ServerFrame::RelayedAck { from, ack } => {
                let pair = self
                    .pair_of(&from)
                    .ok_or_else(|| format!("an ack from a stranger ({from})"))?;
                let newly = ack.ack.through.saturating_sub(pair.acked);
                pair.acked = pair.acked.max(ack.ack.through);
                self.in_flight = self.in_flight.saturating_sub(newly as usize);
                self.report.delivered += newly;
                self.fleet
                    .progress
                    .delivered
                    .fetch_add(newly, Ordering::Relaxed);
            }
            ServerFrame::LoginOk { .. } => {
                *slot = None;
                self.logged_in = true;
                progress.logged_in.fetch_add(1, Ordering::Relaxed);
                self.check_ready();
            }
            ServerFrame::Presence { peers, .. } => {
                for intro in peers {
                    self.introduced(intro);
                }
                self.check_ready();
            }
            ServerFrame::PresenceChanged { online, offline } => {
                if let Some(user) = offline.first() {
                    return Err(format!("{user} went offline"));
                }
                for intro in online {
                    self.introduced(intro);
                }
                self.check_ready();
            }
            ServerFrame::Hello { version } if version != PROTOCOL_VERSION => {
                return Err(format!("server speaks protocol {version}"))
            }
            ServerFrame::LoginRefused { reason } => return Err(format!("login refused: {reason}")),
            ServerFrame::Kicked { reason } => return Err(format!("kicked: {reason:?}")),
            ServerFrame::ShuttingDown => return Err("server shutting down".into()),
            ServerFrame::Error { code } => return Err(format!("server reported: {code:?}")),
            ServerFrame::Stored { .. } => return Err("stored for an offline recipient".into()),
            ServerFrame::Undeliverable { reason, .. } => {
                return Err(format!("undeliverable: {reason:?}"))
            }
            // Pings, and what a chat-only client has no use for.
            _ => {}
        }
        Ok(())
    }

    fn introduced(&mut self, intro: PeerIntro) {
        if let Some(i) = index_of(&intro.user).filter(|&i| i != self.index) {
            if let Some(slot) = self.keys.get_mut(i) {
                if slot.replace(intro.key).is_none() {
                    self.online += 1;
                }
            }
        }
    }

    /// Whom this client writes to or hears from (itself never).
    fn correspondents(&self) -> Vec<usize> {
        let mut peers: Vec<usize> = self
            .targets
            .iter()
            .copied()
            .chain(self.fleet.correspondents.writing_to(self.index))
            .filter(|&i| i != self.index)
            .collect();
        peers.sort_unstable();
        peers.dedup();
        peers
    }

    /// Ready once logged in and every correspondent is online: the pair keys are made now,
    /// outside the timed window.
    fn check_ready(&mut self) {
        if self.ready || !self.logged_in {
            return;
        }
        let peers = self.correspondents();
        if peers
            .iter()
            .any(|&peer| self.keys.get(peer).copied().flatten().is_none())
        {
            return;
        }
        for peer in peers {
            let key = self.keys.get(peer).copied().flatten();
            let pair = key.and_then(|key| PairKey::new(&self.identity, &key));
            if let (Some(key), Some(slot)) = (pair, self.pairs.get_mut(peer)) {
                slot.get_or_insert(Pair {
                    key,
                    next_seq: 1,
                    acked: 0,
                    heard: None,
                });
            }
        }
        self.ready = true;
        self.fleet.progress.ready.fetch_add(1, Ordering::Relaxed);
    }

    fn pair_of(&mut self, user: &UserName) -> Option<&mut Pair> {
        index_of(user).and_then(|i| self.pairs.get_mut(i)?.as_mut())
    }

    /// When a paced client's next message is due, if it has room in its window to send it.
    fn next_slot(&self) -> Option<Instant> {
        let room = self.ready && self.in_flight < self.fleet.plan.window;
        Pacer::wake_at(self.pacer.as_ref(), room)
    }

    /// Tops the window up with sealed chats to random correspondents (in a paced run, as many
    /// as are due).
    fn send_more(&mut self, progress: &Progress) -> Result<(), Stop> {
        let window = self.fleet.plan.window;
        if !self.ready || self.in_flight >= window || !progress.is_started() {
            return Ok(());
        }
        let room = window - self.in_flight;
        let want = Pacer::allowed(self.pacer.as_mut(), Instant::now(), room);
        if want == 0 {
            return Ok(());
        }
        let granted = progress.claim(want);
        for _ in 0..granted {
            let to = self.targets[self.pick.below(self.targets.len())];
            let now = Instant::now();
            let text = stamped_text(progress.origin, now, self.fleet.plan.size);
            let pair = self
                .pairs
                .get_mut(to)
                .and_then(Option::as_mut)
                .ok_or("no pair key for a correspondent")?;
            let chat = Chat {
                id: MessageId(pair.next_seq),
                epoch: self.epoch,
                seq: pair.next_seq,
                first_unacked: pair.acked + 1,
                text,
            };
            pair.next_seq += 1;
            let chat = match self.sealing {
                Sealing::Real => SealedChat::seal(&chat, &pair.key, &mut self.rng),
                Sealing::StandIn => SealedChat {
                    id: MessageId((now - progress.origin).as_nanos() as u64),
                    epoch: chat.epoch,
                    seq: chat.seq,
                    first_unacked: chat.first_unacked,
                    sealed: vec![0; chat.text.len() + SEAL_OVERHEAD],
                },
            };
            let frame = ClientFrame::Relay {
                to: self.fleet.names[to].clone(),
                chat,
            };
            encode_frame(&frame, DEFAULT_MAX_FRAME, &mut self.out).map_err(|e| e.to_string())?;
            self.in_flight += 1;
            self.report.sending(now);
        }
        Ok(())
    }

    /// One cumulative, sealed ack per sender heard from in this read.
    fn owe_acks(&mut self) -> Result<(), Stop> {
        for from in std::mem::take(&mut self.owed) {
            let Some(pair) = self.pairs.get(from).and_then(Option::as_ref) else {
                continue;
            };
            let Some((epoch, through)) = pair.heard else {
                continue;
            };
            let ack = Ack { epoch, through };
            let ack = match self.sealing {
                Sealing::Real => SealedAck::seal(ack, &pair.key, &mut self.rng),
                Sealing::StandIn => SealedAck {
                    ack,
                    seal: vec![0; SEAL_OVERHEAD],
                },
            };
            let frame = ClientFrame::RelayAck {
                to: self.fleet.names[from].clone(),
                ack,
            };
            encode_frame(&frame, DEFAULT_MAX_FRAME, &mut self.out).map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

/// The client index in a load client's name (`load.000042` → 42).
fn index_of(user: &UserName) -> Option<usize> {
    user.as_str().rsplit('.').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::in_process::InProcessServer;
    use crate::load::{run_fleet, wait_until, Correspondents, Plan};
    use smol::lock::Semaphore;

    /// A few wire clients log in on the real server driver, make their pair keys, and relay
    /// every message exactly once and in order per pair, each delivery acknowledged.
    #[test]
    fn wire_clients_relay_every_message_once_in_order_and_acknowledged() {
        relay_through_the_server_driver(Sealing::Real);
    }

    /// The same with stand-in seals: the server relays them just the same.
    #[test]
    fn stand_in_seals_are_relayed_like_real_ones() {
        relay_through_the_server_driver(Sealing::StandIn);
    }

    fn relay_through_the_server_driver(sealing: Sealing) {
        let clients = 5;
        let plan = Plan {
            clients,
            messages: 400,
            size: 40,
            window: 4,
            rate: None,
        };
        let server = InProcessServer::start(clients).unwrap();
        let progress = Arc::new(Progress::new(plan.messages));
        let fleet = Arc::new(Fleet {
            server: server.addr,
            names: crate::core_client::names("load", clients),
            register: false,
            key_login: false,
            server_key: Some(server.key),
            plan,
            correspondents: Correspondents::new(clients, 2, 9),
            progress: progress.clone(),
            login_slots: Arc::new(Semaphore::new(clients)),
        });
        let (report, relayed) = run_fleet(
            1,
            clients,
            |i| run(fleet.clone(), i, sealing),
            || {
                let limit = Duration::from_secs(30);
                let ready = wait_until("logging in", limit, || {
                    progress.get(&progress.ready) >= clients
                });
                progress.start();
                let all = ready
                    && wait_until("relaying", limit, || {
                        progress.delivered.load(Ordering::Relaxed) >= plan.messages
                    });
                progress.finish();
                all
            },
        );
        let stats = server.stop();
        assert!(relayed, "{:?}", report.problems);
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        assert_eq!(report.sent, plan.messages);
        assert_eq!(report.received, plan.messages);
        assert_eq!(report.delivered, plan.messages);
        assert_eq!(stats.relayed, plan.messages);
    }

    #[test]
    fn load_names_give_back_their_index() {
        let names = crate::core_client::names("load", 1001);
        assert_eq!(index_of(&names[0]), Some(0));
        assert_eq!(index_of(&names[1000]), Some(1000));
    }
}
