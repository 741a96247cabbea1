//! The receiver's side of one transfer.

use crate::delivery::Via;
use crate::wire::{FileName, TransferId, UserName};
use std::time::Instant;

/// The most written bytes the receiver lets pass before telling the sender: a sender that
/// keeps less than the whole window in flight (over the relay) hears in good time.
pub const PROGRESS_STEP: u64 = 256 * 1024;

/// Where a transfer we receive stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InPhase {
    /// Shown to the user, not answered yet.
    Offered,
    /// Accepted: chunks are arriving and being written.
    Receiving,
    /// Every byte written; the host is checking the hash.
    Verifying,
    /// Every byte was checked against the offered hash.
    Finished {
        /// The hash matched.
        verified: bool,
    },
    /// The user said no.
    Declined,
    /// Either side gave up, or the sender went silent too long.
    Cancelled,
}

/// What to do with an arriving chunk.
#[derive(Debug, PartialEq, Eq)]
pub enum ChunkVerdict {
    /// Hand it to the host to write at its offset.
    Write,
    /// Already have it.
    Duplicate,
    /// Out of place (a gap, or beyond the credit): ask the sender to resync.
    Resync,
}

/// One transfer we receive: what was offered, and how far it got.
#[derive(Debug)]
pub struct Incoming {
    /// The sender.
    pub from: UserName,
    /// The sender's id for it.
    pub id: TransferId,
    /// The offered name.
    pub name: FileName,
    /// The offered size.
    pub size: u64,
    /// The offered hash.
    pub hash: [u8; 32],
    /// Where it stands.
    pub phase: InPhase,
    /// Bytes accepted in order and handed to the host.
    pub accepted: u64,
    /// Bytes the host reported written.
    pub written: u64,
    window: u64,
    /// The credit last granted.
    credit_sent: u64,
    /// The offset a resync was last asked for, so a burst of stray chunks asks once.
    resync_sent: Option<u64>,
    /// The route the last chunk came by.
    pub path: Option<Via>,
    /// When this side last had reason to expect nothing from the sender yet: the accept, the
    /// last chunk or repeated offer from the sender, or the last write of ours (the sender may
    /// be waiting for the credit it frees). A receiving transfer silent past the stall bound
    /// from here has lost its sender.
    pub last_heard: Instant,
}

impl Incoming {
    /// A fresh offer, not answered yet.
    pub fn new(
        from: UserName,
        id: TransferId,
        name: FileName,
        size: u64,
        hash: [u8; 32],
        now: Instant,
    ) -> Self {
        Incoming {
            from,
            id,
            name,
            size,
            hash,
            phase: InPhase::Offered,
            accepted: 0,
            written: 0,
            window: 0,
            credit_sent: 0,
            resync_sent: None,
            path: None,
            last_heard: now,
        }
    }

    /// Still going on (or waiting for an answer): counts against `max_transfers`.
    pub fn is_active(&self) -> bool {
        matches!(
            self.phase,
            InPhase::Offered | InPhase::Receiving | InPhase::Verifying
        )
    }

    /// Starts receiving at `offset` (bytes already held from an earlier attempt); returns the
    /// credit end to grant.
    pub fn accept(&mut self, offset: u64, window: u64, now: Instant) -> u64 {
        self.phase = InPhase::Receiving;
        self.last_heard = now;
        self.accepted = offset.min(self.size);
        self.written = self.accepted;
        self.window = window.max(1);
        self.credit_sent = self.written.saturating_add(self.window);
        if self.written >= self.size {
            // Nothing left to send (an empty file, or all of it already on disk).
            self.phase = InPhase::Verifying;
        }
        self.credit_sent
    }

    /// The window this transfer was accepted with, while it is receiving (what it may have
    /// in flight), else 0.
    pub fn window_in_use(&self) -> u64 {
        if self.phase == InPhase::Receiving {
            self.window
        } else {
            0
        }
    }

    /// The credit granted so far: the sender may send up to here.
    pub fn credit_end(&self) -> u64 {
        self.written.saturating_add(self.window)
    }

    /// When this transfer counts as stalled, if nothing is heard from the sender before:
    /// only while receiving with every accepted byte written (a write still in the host is
    /// this side's wait, not the sender's).
    pub fn stall_deadline(&self, stall: std::time::Duration) -> Option<Instant> {
        // An offer not answered yet lapses the same way: a live sender repeats it every
        // `file_retry`, so one unheard of for the whole bound is from a sender that is gone.
        let waiting = match self.phase {
            InPhase::Offered => true,
            InPhase::Receiving => self.written >= self.accepted,
            _ => false,
        };
        waiting.then(|| self.last_heard + stall)
    }

    /// Takes stock of a chunk that arrived by `path`.
    pub fn chunk(&mut self, offset: u64, len: usize, path: Via) -> ChunkVerdict {
        if self.phase != InPhase::Receiving {
            return ChunkVerdict::Duplicate;
        }
        let end = offset.saturating_add(len as u64);
        if end <= self.accepted {
            return ChunkVerdict::Duplicate;
        }
        if offset == self.accepted && len > 0 && end <= self.size && end <= self.credit_end() {
            self.accepted = end;
            self.path = Some(path);
            self.resync_sent = None;
            return ChunkVerdict::Write;
        }
        if self.resync_sent == Some(self.accepted) {
            return ChunkVerdict::Duplicate;
        }
        self.resync_sent = Some(self.accepted);
        ChunkVerdict::Resync
    }

    /// The host wrote up to `end`. Returns the new credit end when it grew enough to be worth
    /// telling the sender (a quarter window, at most `PROGRESS_STEP`), or everything is in.
    pub fn written(&mut self, end: u64) -> Option<u64> {
        if self.phase != InPhase::Receiving {
            return None;
        }
        self.written = self.written.max(end.min(self.accepted));
        if self.written >= self.size {
            self.phase = InPhase::Verifying;
            return Some(self.credit_end());
        }
        let credit = self.credit_end();
        let step = (self.window / 4).min(PROGRESS_STEP);
        if credit >= self.credit_sent.saturating_add(step) {
            self.credit_sent = credit;
            return Some(credit);
        }
        None
    }
}
