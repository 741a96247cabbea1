//! The sender's side of one transfer.

use super::{CHUNK_SIZE, READ_SIZE};
use crate::delivery::Via;
use crate::transmit::Payload;
use crate::wire::{FileName, TransferId, UserName};
use std::collections::VecDeque;
use std::time::Instant;

/// Host reads asked for and not yet answered, per transfer.
const MAX_READS_IN_FLIGHT: usize = 4;

/// Where a transfer we send stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutPhase {
    /// Waiting for the receiver's answer.
    Offered,
    /// Accepted: chunks go out within the receiver's credit.
    Sending,
    /// Every byte accepted; waiting for the receiver's hash check.
    AwaitingVerdict,
    /// The receiver checked the hash.
    Finished {
        /// The hash matched.
        verified: bool,
    },
    /// The receiver said no.
    Declined,
    /// Either side gave up.
    Cancelled,
}

/// One transfer we send: what was offered, and how far it got.
#[derive(Debug)]
pub struct Outgoing {
    /// The receiver.
    pub to: UserName,
    /// Our id for it.
    pub id: TransferId,
    /// The offered name.
    pub name: FileName,
    /// The offered size.
    pub size: u64,
    /// The offered hash.
    pub hash: [u8; 32],
    /// Where it stands.
    pub phase: OutPhase,
    /// Bytes the receiver accepted, in order.
    pub acked: u64,
    /// The receiver allows bytes up to here.
    credit_end: u64,
    /// The next byte to put on the wire.
    next_send: u64,
    /// The next byte to ask the host for.
    next_read: u64,
    /// Read data not yet sent, contiguous from `next_send`: whole host reads (bytes, or spans
    /// of the file), sent as chunks that are slices of them.
    ready: VecDeque<(u64, Payload)>,
    reads_in_flight: usize,
    /// The relay asked us to wait.
    pub paused_until: Option<Instant>,
    /// When the receiver was last heard from (or the offer last made).
    pub last_heard: Instant,
    /// The route the last chunk took.
    pub path: Option<Via>,
    /// The offset of the last resync obeyed, so a burst of them rewinds only once.
    rewound_to: Option<u64>,
}

impl Outgoing {
    /// A fresh offer, not answered yet.
    pub fn new(
        to: UserName,
        id: TransferId,
        name: FileName,
        size: u64,
        hash: [u8; 32],
        now: Instant,
    ) -> Self {
        Outgoing {
            to,
            id,
            name,
            size,
            hash,
            phase: OutPhase::Offered,
            acked: 0,
            credit_end: 0,
            next_send: 0,
            next_read: 0,
            ready: VecDeque::new(),
            reads_in_flight: 0,
            paused_until: None,
            last_heard: now,
            path: None,
            rewound_to: None,
        }
    }

    /// Still going on (or waiting for an answer): counts against `max_transfers`.
    pub fn is_active(&self) -> bool {
        matches!(
            self.phase,
            OutPhase::Offered | OutPhase::Sending | OutPhase::AwaitingVerdict
        )
    }

    /// The receiver accepts from `offset`. Also the answer of a receiver that restarted and
    /// resumes from what it holds, which may be less than it had accepted before.
    pub fn accepted(&mut self, offset: u64, window: u64) {
        if !self.is_active() {
            return;
        }
        self.phase = OutPhase::Sending;
        self.acked = offset.min(self.size);
        self.credit_end = self.acked.saturating_add(window);
        self.rewind_to(self.acked);
        self.check_complete();
    }

    /// The receiver's progress report: what it accepted, the credit it grants, and whether it
    /// asks to resend from `accepted`.
    pub fn progress(&mut self, accepted: u64, credit_end: u64, resync: bool) {
        if self.phase == OutPhase::Offered {
            // A receiver already under way answers a repeated offer with where it stands:
            // this sender restarted and picks up from there.
            self.phase = OutPhase::Sending;
            self.acked = accepted.min(self.size);
            self.credit_end = credit_end;
            self.rewind_to(self.acked);
            self.check_complete();
            return;
        }
        if self.phase != OutPhase::Sending {
            return;
        }
        self.acked = self.acked.max(accepted.min(self.size));
        self.credit_end = self.credit_end.max(credit_end);
        if resync && self.rewound_to != Some(accepted) && accepted < self.next_send {
            self.rewound_to = Some(accepted);
            self.rewind_to(accepted.max(self.acked));
        }
        self.check_complete();
    }

    /// The relay dropped chunks from `offset` on.
    pub fn throttled(&mut self, offset: u64, until: Instant) {
        if self.phase == OutPhase::Sending && offset < self.next_send {
            self.rewind_to(offset.max(self.acked));
        }
        self.paused_until = Some(until);
    }

    /// The route the chunks went over failed: whatever was not accepted goes again.
    pub fn path_failed(&mut self, path: Via) {
        if self.path == Some(path) && self.phase == OutPhase::Sending {
            self.rewind_to(self.acked);
            self.path = None;
        }
    }

    fn rewind_to(&mut self, offset: u64) {
        self.next_send = offset;
        self.next_read = offset;
        self.ready.clear();
    }

    fn check_complete(&mut self) {
        if self.phase == OutPhase::Sending && self.acked >= self.size {
            self.phase = OutPhase::AwaitingVerdict;
            self.ready.clear();
        }
    }

    /// Host reads to ask for now: `(offset, len)`, within the credit and never more than
    /// `read_ahead` past what is already sent, however much credit the receiver claims to
    /// give (fuzz finding: a receiver granting u64::MAX made the sender read the whole file).
    pub fn reads_wanted(&mut self, read_ahead: u64) -> Vec<(u64, usize)> {
        let mut reads = Vec::new();
        if self.phase != OutPhase::Sending {
            return reads;
        }
        let limit = self
            .size
            .min(self.credit_end)
            .min(self.next_send.saturating_add(read_ahead));
        while self.reads_in_flight < MAX_READS_IN_FLIGHT && self.next_read < limit {
            let len = (limit - self.next_read).min(READ_SIZE as u64) as usize;
            reads.push((self.next_read, len));
            self.next_read += len as u64;
            self.reads_in_flight += 1;
        }
        reads
    }

    /// The host's answer to a read. Answers to reads made before a rewind no longer fit
    /// where the data is needed and are dropped.
    pub fn read_done(&mut self, offset: u64, data: Payload) {
        self.reads_in_flight = self.reads_in_flight.saturating_sub(1);
        let expected = self
            .ready
            .back()
            .map_or(self.next_send, |(o, d)| o + d.len() as u64);
        if self.phase == OutPhase::Sending
            && offset == expected
            && !data.is_empty()
            && offset + data.len() as u64 <= self.size
        {
            self.ready.push_back((offset, data));
        }
    }

    /// The next chunk to send, if the credit and the pause allow, and at most `in_flight`
    /// bytes past what the receiver acknowledged.
    pub fn next_chunk(&mut self, now: Instant, in_flight: u64) -> Option<(u64, Payload)> {
        if self.phase != OutPhase::Sending || self.paused_until.is_some_and(|t| now < t) {
            return None;
        }
        let (offset, data) = self.ready.front_mut()?;
        let len = data.len().min(CHUNK_SIZE);
        let end = *offset + len as u64;
        let limit = self.credit_end.min(self.acked.saturating_add(in_flight));
        if *offset != self.next_send || end > limit {
            return None;
        }
        let chunk = (*offset, data.split_to(len));
        *offset = end;
        if data.is_empty() {
            self.ready.pop_front();
        }
        self.next_send = end;
        Some(chunk)
    }
}
