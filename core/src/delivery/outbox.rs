//! The sender's side: messages to one recipient that are not yet acknowledged.

use super::Via;
use crate::wire::{Ack, Chat, MessageId};
use std::collections::VecDeque;
use std::time::Instant;

/// The last transmission of a pending message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    /// Which way it went: a failure of that way sends it again.
    pub path: Via,
    /// When: an acknowledgement overdue from here sends it again.
    pub at: Instant,
}

/// One message waiting for its acknowledgement.
#[derive(Debug, Clone)]
pub struct Pending {
    /// The id `send` returned.
    pub id: MessageId,
    /// Its place in the sequence to this recipient.
    pub seq: u64,
    /// What to send again.
    pub text: String,
    /// `None` until sent, and again once the path it went over failed.
    pub sent: Option<Sent>,
    /// The server stored it for an offline recipient: the server now owns delivery, so the
    /// sender stops retransmitting it but keeps it (unacknowledged) for ordering.
    pub held_by_server: bool,
}

/// Unacknowledged messages to one recipient, in sequence order.
#[derive(Debug, Clone)]
pub struct Outbox {
    epoch: u64,
    next_seq: u64,
    pending: VecDeque<Pending>,
}

impl Outbox {
    /// An empty outbox; `epoch` names this process lifetime in every message.
    pub fn new(epoch: u64) -> Self {
        Outbox {
            epoch,
            next_seq: 1,
            pending: VecDeque::new(),
        }
    }

    /// Messages not yet acknowledged.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Everything was acknowledged.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Queues a message; it takes the next sequence number.
    pub fn push(&mut self, id: MessageId, text: String) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.pending.push_back(Pending {
            id,
            seq,
            text,
            sent: None,
            held_by_server: false,
        });
    }

    fn first_unacked(&self) -> u64 {
        self.pending.front().map_or(self.next_seq, |p| p.seq)
    }

    /// The wire form of a pending message.
    pub fn chat(&self, pending: &Pending) -> Chat {
        Chat {
            id: pending.id,
            epoch: self.epoch,
            seq: pending.seq,
            first_unacked: self.first_unacked(),
            text: pending.text.clone(),
        }
    }

    /// Messages waiting for a route, in order.
    pub fn unsent(&mut self) -> impl Iterator<Item = &mut Pending> {
        self.pending
            .iter_mut()
            .filter(|p| p.sent.is_none() && !p.held_by_server)
    }

    /// The unacknowledged messages, oldest first.
    pub fn pending(&self) -> impl Iterator<Item = &Pending> {
        self.pending.iter()
    }

    /// Removes everything the acknowledgement covers, oldest first.
    pub fn acknowledge(&mut self, ack: Ack) -> Vec<Pending> {
        let mut done = Vec::new();
        if ack.epoch != self.epoch {
            return done;
        }
        while self.pending.front().is_some_and(|p| p.seq <= ack.through) {
            done.extend(self.pending.pop_front());
        }
        done
    }

    /// Marks a message as stored by the server; returns its id the first time.
    pub fn mark_held(&mut self, epoch: u64, seq: u64) -> Option<MessageId> {
        if epoch != self.epoch {
            return None;
        }
        let pending = self
            .pending
            .iter_mut()
            .find(|p| p.seq == seq && !p.held_by_server)?;
        pending.held_by_server = true;
        Some(pending.id)
    }

    /// Gives up on one message (the server says it can never be delivered). The recipient
    /// skips the gap once the sender's first unacknowledged message moves past it.
    pub fn give_up(&mut self, epoch: u64, seq: u64) -> Option<MessageId> {
        if epoch != self.epoch {
            return None;
        }
        let index = self.pending.iter().position(|p| p.seq == seq)?;
        self.pending.remove(index).map(|p| p.id)
    }

    /// The path went down: whatever last went over it must go again.
    pub fn path_failed(&mut self, path: Via) {
        for pending in &mut self.pending {
            if pending.sent.is_some_and(|s| s.path == path) && !pending.held_by_server {
                pending.sent = None;
            }
        }
    }

    /// How long a message waits for its acknowledgement before it is sent again.
    fn patience(pending: &Pending, timeouts: Timeouts) -> std::time::Duration {
        if pending.held_by_server {
            timeouts.stored
        } else {
            timeouts.ack
        }
    }

    /// The earliest instant a sent message has waited too long for its acknowledgement.
    pub fn retransmit_at(&self, timeouts: Timeouts) -> Option<Instant> {
        self.pending
            .iter()
            .filter_map(|p| p.sent.map(|s| s.at + Self::patience(p, timeouts)))
            .min()
    }

    /// Forgets the last transmission of messages that waited too long at `now`, so they go
    /// again; returns how many.
    ///
    /// A stored message is retried too, only much later: the server's acknowledgement for it
    /// travels once, and if it was lost (the sender was offline when the recipient read it)
    /// nothing else would ever release the messages queued behind it.
    pub fn expire(&mut self, now: Instant, timeouts: Timeouts) -> usize {
        let mut expired = 0;
        for pending in &mut self.pending {
            let patience = Self::patience(pending, timeouts);
            if pending.sent.is_some_and(|s| s.at + patience <= now) {
                pending.sent = None;
                pending.held_by_server = false;
                expired += 1;
            }
        }
        expired
    }
}

/// Acknowledgement deadlines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// For a message sent to its recipient.
    pub ack: std::time::Duration,
    /// For a message the server stored for an offline recipient.
    pub stored: std::time::Duration,
}
