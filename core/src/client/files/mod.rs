//! File transfers: offers and answers, chunks within credit, over whichever route is up.
//!
//! One folder per direction, mirroring [`crate::transfer`]: `sending.rs` drives our
//! [`Outgoing`](crate::transfer::Outgoing) transfers (offer, host reads, chunks within the
//! receiver's credit), `receiving.rs` our [`Incoming`](crate::transfer::Incoming) ones (accept,
//! host writes, verification). What both need, the route a file message takes and the timers,
//! is here.

mod receiving;
mod sending;

use super::output::{Destination, Event, FileError, FileEvent};
use super::{Client, LinkId};
use crate::delivery::Via;
use crate::transfer::{Direction, InPhase, OutPhase};
use crate::wire::{ClientFrame, FileMessage, PeerFrame, SealedFile, TransferId, UserName};
use std::time::Instant;

/// Finished transfers remembered (to answer a late repeat of their offer), per direction.
const FINISHED_KEPT: usize = 64;

impl Client {
    /// Stops a transfer either way; the peer is told.
    pub fn cancel_file(
        &mut self,
        peer: &UserName,
        id: TransferId,
        direction: Direction,
        now: Instant,
    ) -> Result<(), FileError> {
        let by_sender = direction == Direction::Sending;
        if by_sender {
            let transfer = self
                .outgoing
                .get_mut(&id)
                .filter(|t| &t.to == peer && t.is_active());
            transfer.ok_or(FileError::UnknownTransfer)?.phase = OutPhase::Cancelled;
        } else {
            let transfer = self.incoming_mut(peer, id).filter(|t| t.is_active());
            transfer.ok_or(FileError::UnknownTransfer)?.phase = InPhase::Cancelled;
        }
        self.send_file(peer, FileMessage::Cancel { id, by_sender }, now);
        self.finish(now);
        Ok(())
    }

    pub(super) fn on_file_message(
        &mut self,
        from: &UserName,
        message: FileMessage,
        path: Via,
        now: Instant,
    ) {
        match message {
            offer @ FileMessage::Offer { .. } => self.on_offer(from, offer, now),
            FileMessage::Chunk { id, offset, data } => {
                // Decoded chunks are always bytes.
                if let Some(data) = data.into_bytes() {
                    self.on_chunk(from, id, offset, data, path, now)
                }
            }
            FileMessage::Cancel {
                id,
                by_sender: true,
            } => {
                if let Some(transfer) = self.incoming_mut(from, id).filter(|t| t.is_active()) {
                    transfer.phase = InPhase::Cancelled;
                    self.events.push_back(Event::File(FileEvent::Cancelled {
                        peer: from.clone(),
                        id,
                        direction: Direction::Receiving,
                    }));
                }
            }
            other => self.on_answer(from, other, path, now),
        }
    }

    pub(super) fn files_deadline(&self) -> Option<Instant> {
        let stall = self.config.file_stall;
        let outgoing = self
            .outgoing
            .values()
            .filter(|t| t.is_active())
            .flat_map(|t| [Some(t.last_heard + self.config.file_retry), t.paused_until])
            .flatten();
        let incoming = self
            .incoming
            .values()
            .filter_map(|t| t.stall_deadline(stall));
        outgoing.chain(incoming).min()
    }

    pub(super) fn files_timeout(&mut self, now: Instant) {
        self.repeat_offers(now);
        self.fail_stalled(now);
    }

    fn file_route(&self, peer: &UserName) -> Option<(Destination, Via)> {
        match self.peers.get(peer).and_then(|p| p.direct) {
            Some(link) => Some((Destination::Peer(link), Via::Direct)),
            None if self.server.is_online() => Some((Destination::Server, Via::Relay)),
            None => None,
        }
    }

    /// Sends a file message on the best route; `None` when no route is up (the sender's
    /// repeated offer recovers whatever is lost).
    pub(super) fn send_file(
        &mut self,
        peer: &UserName,
        message: FileMessage,
        now: Instant,
    ) -> Option<Via> {
        // A transfer wants a direct channel: its chunks are what the relay is worst at.
        self.mark_used(peer, now);
        let (destination, path) = self.file_route(peer)?;
        let sent = match destination {
            Destination::Peer(link) => self.send_file_direct(link, message, now),
            Destination::Server => {
                // Sealed for the peer; without its key (being asked for) nothing goes, and the
                // transfer's own retries send it again.
                let sealed = self
                    .pair_key(peer, now)
                    .and_then(|pair| SealedFile::seal(&message, &pair, &mut self.rng));
                match sealed {
                    Some(message) => {
                        let to = peer.clone();
                        self.send_server(&ClientFrame::RelayFile { to, message }, now)
                    }
                    None => false,
                }
            }
        };
        sent.then_some(path)
    }

    fn send_file_direct(&mut self, link: LinkId, message: FileMessage, now: Instant) -> bool {
        self.send_link(link, &PeerFrame::File(message), now)
    }
}
