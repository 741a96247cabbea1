//! The recipient's side: release messages from one sender exactly once, in order.

use crate::wire::{Ack, Chat};
use std::collections::BTreeMap;

/// How many sender epochs (sender process lifetimes) are remembered per sender. An old epoch
/// only matters while the server still holds stored messages from it.
const EPOCHS_KEPT: usize = 4;

/// What one received message led to.
#[derive(Debug, Default)]
pub struct Receipt {
    /// Messages now in order, to show the user (possibly more than the one received).
    pub released: Vec<Chat>,
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
    held: BTreeMap<u64, Chat>,
}

/// Messages from one sender.
#[derive(Debug, Clone)]
pub struct Inbox {
    /// Most recently used epoch last.
    epochs: Vec<EpochState>,
    max_held: usize,
}

impl Inbox {
    pub fn new(max_held: usize) -> Self {
        Inbox {
            epochs: Vec::new(),
            max_held,
        }
    }

    pub fn held(&self) -> usize {
        self.epochs.iter().map(|e| e.held.len()).sum()
    }

    pub fn receive(&mut self, chat: Chat) -> Receipt {
        let max_held = self.max_held;
        let state = self.epoch_mut(chat.epoch, chat.first_unacked);
        // Everything below the sender's first unacknowledged message was released before
        // (perhaps by an earlier run of this client), so never wait for it.
        if chat.first_unacked > state.next {
            state.next = chat.first_unacked;
            state.held = state.held.split_off(&state.next);
        }
        let mut receipt = Receipt::default();
        if chat.seq == state.next {
            state.next += 1;
            receipt.released.push(chat);
            while let Some(next) = state.held.remove(&state.next) {
                state.next += 1;
                receipt.released.push(next);
            }
        } else if chat.seq > state.next && state.held.len() < max_held {
            // Not acknowledged yet: if it is dropped here the sender sends it again.
            state.held.entry(chat.seq).or_insert(chat);
        }
        if state.next > 1 {
            receipt.ack = Some(Ack {
                epoch: state.epoch,
                through: state.next - 1,
            });
        }
        receipt
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
                }
            }
        };
        self.epochs.push(state);
        let last = self.epochs.len() - 1;
        &mut self.epochs[last]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::MessageId;

    fn chat(seq: u64, first_unacked: u64) -> Chat {
        Chat {
            id: MessageId(seq),
            epoch: 9,
            seq,
            first_unacked,
            text: format!("m{seq}"),
        }
    }

    fn seqs(receipt: &Receipt) -> Vec<u64> {
        receipt.released.iter().map(|c| c.seq).collect()
    }

    #[test]
    fn releases_in_order_and_drops_duplicates() {
        let mut inbox = Inbox::new(16);
        assert_eq!(seqs(&inbox.receive(chat(2, 1))), Vec::<u64>::new());
        let receipt = inbox.receive(chat(1, 1));
        assert_eq!(seqs(&receipt), vec![1, 2]);
        assert_eq!(
            receipt.ack,
            Some(Ack {
                epoch: 9,
                through: 2
            })
        );
        let dup = inbox.receive(chat(2, 1));
        assert!(dup.released.is_empty());
        assert_eq!(
            dup.ack,
            Some(Ack {
                epoch: 9,
                through: 2
            })
        );
    }

    #[test]
    fn a_fresh_inbox_starts_at_the_first_unacknowledged() {
        let mut inbox = Inbox::new(16);
        assert_eq!(seqs(&inbox.receive(chat(5, 4))), Vec::<u64>::new());
        assert_eq!(seqs(&inbox.receive(chat(4, 4))), vec![4, 5]);
    }

    #[test]
    fn early_arrivals_are_bounded() {
        let mut inbox = Inbox::new(2);
        for seq in 3..10 {
            inbox.receive(chat(seq, 1));
        }
        assert_eq!(inbox.held(), 2);
    }
}
