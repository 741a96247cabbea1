//! The recipient's side: release messages from one sender exactly once, in order.

use super::Via;
use crate::wire::{Ack, Chat};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How many sender epochs (sender process lifetimes) are remembered per sender. An old epoch
/// only matters while the server still holds stored messages from it.
const EPOCHS_KEPT: usize = 4;

/// What one received message (or one skipped gap) led to.
#[derive(Debug, Default)]
pub struct Receipt {
    /// Messages now in order, to show the user, each with the path it arrived by.
    pub released: Vec<(Chat, Via)>,
    /// The acknowledgement to send back; present even for a duplicate, whose earlier ack may
    /// have been lost.
    pub ack: Option<Ack>,
}

#[derive(Debug, Clone)]
struct EpochState {
    epoch: u64,
    /// The next sequence number to release.
    next: u64,
    /// Early arrivals waiting for a gap to fill, bounded by `max_held`.
    held: BTreeMap<u64, (Chat, Via)>,
    /// Since when the oldest gap has been waiting.
    waiting_since: Option<Instant>,
}

impl EpochState {
    /// Releases `chat`, then whatever was held right behind it.
    fn release_from(&mut self, chat: Chat, path: Via, receipt: &mut Receipt, now: Instant) {
        self.next = chat.seq + 1;
        receipt.released.push((chat, path));
        while let Some(next) = self.held.remove(&self.next) {
            self.next += 1;
            receipt.released.push(next);
        }
        // Anything still held below `next` was just released another way (fuzz finding: a
        // held copy of the message released here would be shown again on a skipped gap).
        self.held = self.held.split_off(&self.next);
        self.waiting_since = if self.held.is_empty() {
            None
        } else {
            Some(now)
        };
    }

    fn ack(&self) -> Option<Ack> {
        (self.next > 1).then(|| Ack {
            epoch: self.epoch,
            through: self.next - 1,
        })
    }
}

/// Messages from one sender.
#[derive(Debug, Clone)]
pub struct Inbox {
    /// Most recently used epoch last.
    epochs: Vec<EpochState>,
    max_held: usize,
}

impl Inbox {
    /// An empty inbox that holds at most `max_held` early arrivals per sender.
    pub fn new(max_held: usize) -> Self {
        Inbox {
            epochs: Vec::new(),
            max_held,
        }
    }

    /// Early arrivals held while a gap fills.
    pub fn held(&self) -> usize {
        self.epochs.iter().map(|e| e.held.len()).sum()
    }

    /// Takes a message that came by `path`: what it releases in order, and what to acknowledge.
    pub fn receive(&mut self, chat: Chat, path: Via, now: Instant) -> Receipt {
        // Sequence numbers count from 1 and never reach the end of u64; a chat claiming 0 or
        // u64::MAX is a lie (found by fuzzing), and nothing after it could be numbered.
        if chat.seq == 0 || chat.seq == u64::MAX {
            return Receipt::default();
        }
        let max_held = self.max_held;
        let state = self.epoch_mut(chat.epoch, chat.first_unacked);
        // Everything below the sender's first unacknowledged message was released before
        // (perhaps by an earlier run of this client), so never wait for it.
        let mut receipt = Receipt::default();
        if chat.first_unacked > state.next {
            state.next = chat.first_unacked;
            state.held = state.held.split_off(&state.next);
            // A held message may now be next in line: release it without waiting.
            if let Some(held) = state.held.remove(&state.next) {
                state.release_from(held.0, held.1, &mut receipt, now);
            }
        }
        if chat.seq == state.next {
            state.release_from(chat, path, &mut receipt, now);
        } else if chat.seq > state.next && state.held.len() < max_held {
            // Not acknowledged yet: if it is dropped here the sender sends it again.
            state.held.entry(chat.seq).or_insert((chat, path));
            state.waiting_since.get_or_insert(now);
        }
        receipt.ack = state.ack();
        receipt
    }

    /// When the oldest gap will have waited `timeout`.
    pub fn gap_deadline(&self, timeout: Duration) -> Option<Instant> {
        self.epochs
            .iter()
            .filter_map(|e| e.waiting_since)
            .min()
            .map(|since| since + timeout)
    }

    /// Gives up on gaps that waited `timeout`: the messages behind them are released.
    ///
    /// A live sender fills a gap within its acknowledgement timeout, over whatever route
    /// works; a gap that lasts much longer was left by a sender process that ended before
    /// its message got anywhere, while later ones were stored by the server. Waiting for it
    /// would hold everything behind it forever.
    pub fn skip_stale_gaps(&mut self, now: Instant, timeout: Duration) -> Vec<Receipt> {
        let mut receipts = Vec::new();
        for state in &mut self.epochs {
            if state
                .waiting_since
                .is_none_or(|since| since + timeout > now)
            {
                continue;
            }
            let Some((chat, path)) = state.held.pop_first().map(|(_, held)| held) else {
                state.waiting_since = None;
                continue;
            };
            let mut receipt = Receipt::default();
            state.release_from(chat, path, &mut receipt, now);
            receipt.ack = state.ack();
            receipts.push(receipt);
        }
        receipts
    }

    fn epoch_mut(&mut self, epoch: u64, first_unacked: u64) -> &mut EpochState {
        let state = match self.epochs.iter().position(|e| e.epoch == epoch) {
            Some(index) => self.epochs.remove(index),
            None => {
                if self.epochs.len() >= EPOCHS_KEPT {
                    self.epochs.remove(0);
                }
                EpochState {
                    epoch,
                    next: first_unacked.max(1),
                    held: BTreeMap::new(),
                    waiting_since: None,
                }
            }
        };
        self.epochs.push(state);
        let last = self.epochs.len() - 1;
        &mut self.epochs[last]
    }
}
