//! Chat over whichever route is up: sending, acknowledging, retransmitting.

use super::output::{Destination, Event};
use super::Client;
use crate::delivery::{Receipt, Sent, Timeouts, Via};
use crate::secure::PublicKey;
use crate::wire::{Ack, Chat, ClientFrame, PeerFrame, SealedAck, SealedChat, UserName};
use std::time::Instant;

impl Client {
    /// Sends every message to `name` that is waiting for a route, on the best route up now:
    /// the direct channel, else the relay, else nothing (they wait).
    pub(super) fn flush(&mut self, name: &UserName, now: Instant) {
        let server_up = self.server.is_online();
        let Some(peer) = self.peers.get_mut(name) else {
            return;
        };
        let (path, destination) = match peer.direct {
            Some(link) => (Via::Direct, Destination::Peer(link)),
            None if server_up => (Via::Relay, Destination::Server),
            None => return,
        };
        if peer.outbox.unsent().next().is_none() {
            return;
        }
        // Through the relay, messages are sealed for the recipient: without its key (being
        // asked for) they wait.
        let pair = match destination {
            Destination::Server => match self.pair_key(name, now) {
                Some(pair) => Some(pair),
                None => return,
            },
            Destination::Peer(_) => None,
        };
        let Some(peer) = self.peers.get_mut(name) else {
            return;
        };
        let mut frames = Vec::new();
        let outbox_chats: Vec<Chat> = {
            let outbox = &peer.outbox;
            outbox
                .pending()
                .filter(|p| p.sent.is_none() && !p.held_by_server)
                .map(|p| outbox.chat(p))
                .collect()
        };
        for pending in peer.outbox.unsent() {
            pending.sent = Some(Sent { path, at: now });
        }
        if !outbox_chats.is_empty() {
            let timeouts = self.ack_timeouts();
            self.lower_peers_wake(now + timeouts.ack.min(timeouts.stored));
        }
        for chat in outbox_chats {
            frames.push(chat);
        }
        for chat in frames {
            let sent = match destination {
                Destination::Peer(link) => self.send_link(link, &PeerFrame::Chat(chat), now),
                Destination::Server => {
                    let Some(pair) = pair.as_ref() else { break };
                    let chat = SealedChat::seal(&chat, pair, &mut self.rng);
                    let to = name.clone();
                    self.send_server(&ClientFrame::Relay { to, chat }, now)
                }
            };
            if !sent {
                break;
            }
        }
    }

    /// A sealed chat through the relay from `from`, whose key the server says is `key`.
    pub(super) fn on_relayed_chat(
        &mut self,
        from: &UserName,
        key: PublicKey,
        sealed: SealedChat,
        now: Instant,
    ) {
        if from == &self.config.user {
            return;
        }
        self.vouched_key(from, key, now);
        self.note_interest(from);
        let opened = self.pair_key(from, now).map(|pair| sealed.open(&pair));
        match opened {
            Some(Ok(chat)) if chat.text.len() <= self.config.max_text_len => {
                self.on_chat(from, chat, Via::Relay, now)
            }
            _ => self
                .events
                .push_back(Event::ForgedRelay { from: from.clone() }),
        }
    }

    /// A sealed acknowledgement through the relay from `from`.
    pub(super) fn on_relayed_ack(&mut self, from: &UserName, sealed: SealedAck, now: Instant) {
        match self.pair_key(from, now).map(|pair| sealed.open(&pair)) {
            Some(Ok(ack)) => self.on_ack(from, ack),
            _ => self
                .events
                .push_back(Event::ForgedRelay { from: from.clone() }),
        }
    }

    pub(super) fn on_chat(&mut self, from: &UserName, chat: Chat, path: Via, now: Instant) {
        if from == &self.config.user {
            return;
        }
        let gap_timeout = self.config.gap_timeout;
        let peer = self.peer_mut(from, now);
        let receipt = peer.inbox.receive(chat, path, now);
        if let Some(at) = peer.inbox.gap_deadline(gap_timeout) {
            self.lower_peers_wake(at);
        }
        self.take_receipt(from, receipt, path);
    }

    /// Shows what the inbox released and owes the acknowledgement on `ack_path`.
    fn take_receipt(&mut self, from: &UserName, receipt: Receipt, ack_path: Via) {
        for (chat, route) in receipt.released {
            self.events.push_back(Event::Message {
                from: from.clone(),
                id: chat.id,
                text: chat.text,
                route,
            });
        }
        let path = ack_path;
        if let Some(ack) = receipt.ack {
            match self
                .acks_owed
                .iter_mut()
                .find(|(n, p, a)| n == from && *p == path && a.epoch == ack.epoch)
            {
                Some((_, _, owed)) => owed.through = owed.through.max(ack.through),
                None => self.acks_owed.push((from.clone(), path, ack)),
            }
        }
    }

    pub(super) fn on_ack(&mut self, from: &UserName, ack: Ack) {
        let Some(peer) = self.peers.get_mut(from) else {
            return;
        };
        for done in peer.outbox.acknowledge(ack) {
            let route = if done.held_by_server {
                Via::Relay
            } else {
                done.sent.map_or(Via::Relay, |s| s.path)
            };
            self.events.push_back(Event::Delivered {
                to: from.clone(),
                id: done.id,
                route,
            });
        }
    }

    /// Acks go back the way the messages came: a relayed message's ack also tells the server
    /// it may delete what it stored.
    pub(super) fn send_owed_acks(&mut self, now: Instant) {
        for (name, path, ack) in std::mem::take(&mut self.acks_owed) {
            match path {
                Via::Direct => {
                    if let Some(link) = self.peers.get(&name).and_then(|p| p.direct) {
                        self.send_link(link, &PeerFrame::Ack(ack), now);
                    }
                }
                Via::Relay => {
                    if !self.server.is_online() {
                        continue;
                    }
                    // The chats came sealed by `name`, with its key: the pair key is there.
                    if let Some(pair) = self.pair_key(&name, now) {
                        let ack = SealedAck::seal(ack, &pair, &mut self.rng);
                        self.send_server(&ClientFrame::RelayAck { to: name, ack }, now);
                    }
                }
            }
        }
    }

    fn ack_timeouts(&self) -> Timeouts {
        Timeouts {
            ack: self.config.ack_timeout,
            stored: self.config.stored_retry,
        }
    }

    /// The earliest retransmission or inbox gap deadline of any peer: a walk over all of them,
    /// done when the timers are handled (see `peers_wake`).
    fn peers_deadline(&self) -> Option<Instant> {
        let timeouts = self.ack_timeouts();
        self.peers
            .values()
            .flat_map(|peer| {
                [
                    peer.outbox.retransmit_at(timeouts),
                    peer.inbox.gap_deadline(self.config.gap_timeout),
                ]
            })
            .flatten()
            .min()
    }

    fn lower_peers_wake(&mut self, at: Instant) {
        self.peers_wake = Some(self.peers_wake.map_or(at, |wake| wake.min(at)));
    }

    pub(super) fn peers_timeout(&mut self, now: Instant) {
        let timeouts = self.ack_timeouts();
        let expired: Vec<UserName> = self
            .peers
            .iter_mut()
            .filter_map(|(name, peer)| {
                (peer.outbox.expire(now, timeouts) > 0).then(|| name.clone())
            })
            .collect();
        for name in expired {
            self.flush(&name, now);
        }
        let gap_timeout = self.config.gap_timeout;
        let skipped: Vec<(UserName, Receipt)> = self
            .peers
            .iter_mut()
            .flat_map(|(name, peer)| {
                let receipts = peer.inbox.skip_stale_gaps(now, gap_timeout);
                receipts.into_iter().map(move |r| (name.clone(), r))
            })
            .collect();
        for (name, receipt) in skipped {
            let path = receipt
                .released
                .first()
                .map_or(Via::Relay, |(_, path)| *path);
            self.take_receipt(&name, receipt, path);
        }
        self.peers_wake = self.peers_deadline();
        // Due dials start in `finish`, which every input ends with.
    }
}
