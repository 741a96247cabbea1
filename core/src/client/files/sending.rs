//! Our side of a transfer we send: the offer, the host's reads, chunks paced by the
//! receiver's credit and the route's output, and what the receiver answers.

use super::FINISHED_KEPT;
use crate::client::output::{Action, Destination, Event, FileError, FileEvent, FileFailure};
use crate::client::Client;
use crate::delivery::Via;
use crate::transfer::{Direction, OutPhase, Outgoing};
use crate::transmit::Payload;
use crate::wire::{FileMessage, FileName, TransferId, UserName};
use std::time::{Duration, Instant};

/// The most file data read ahead of the wire per transfer: enough to keep a link fed between
/// two host reads, far less than the credit a receiver may grant.
const READ_AHEAD: u64 = 1024 * 1024;

impl Client {
    /// Offers a file to `to`. The host has already hashed it (BLAKE3) and picks `id`, ideally
    /// from the file itself so a restarted sender offers the same id and the transfer resumes.
    pub fn offer_file(
        &mut self,
        to: &UserName,
        id: TransferId,
        name: FileName,
        size: u64,
        hash: [u8; 32],
        now: Instant,
    ) -> Result<(), FileError> {
        if self.is_stopped() {
            return Err(FileError::Stopped);
        }
        if to == &self.config.user {
            return Err(FileError::ToSelf);
        }
        if self.outgoing.get(&id).is_some_and(Outgoing::is_active) {
            return Err(FileError::DuplicateId);
        }
        self.note_interest(to);
        // A record, so the relay path can ask the server for the receiver's key when no
        // introduction brought it yet.
        self.peer_mut(to, now);
        if self.outgoing.values().filter(|t| t.is_active()).count() >= self.config.max_transfers {
            return Err(FileError::TooManyTransfers);
        }
        let offer = FileMessage::Offer {
            id,
            name: name.clone(),
            size,
            hash,
            repeat: false,
        };
        self.outgoing
            .insert(id, Outgoing::new(to.clone(), id, name, size, hash, now));
        self.trim_finished_outgoing();
        self.send_file(to, offer, now);
        self.finish(now);
        Ok(())
    }

    /// The host read `data` at `offset` for [`Action::ReadFile`].
    pub fn handle_file_read(&mut self, id: TransferId, offset: u64, data: Vec<u8>, now: Instant) {
        self.handle_file_payload(id, offset, Payload::from(data), now);
    }

    /// The host's answer to [`Action::ReadFile`] as bytes, or as a span of the file for the
    /// driver to write from the file itself (see [`Payload`]).
    pub fn handle_file_payload(
        &mut self,
        id: TransferId,
        offset: u64,
        data: Payload,
        now: Instant,
    ) {
        if let Some(transfer) = self.outgoing.get_mut(&id) {
            transfer.read_done(offset, data);
        }
        self.finish(now);
    }

    /// The host could not read the file: the transfer is cancelled.
    pub fn handle_file_read_failed(&mut self, id: TransferId, now: Instant) {
        if let Some(transfer) = self.outgoing.get_mut(&id).filter(|t| t.is_active()) {
            transfer.phase = OutPhase::Cancelled;
            let peer = transfer.to.clone();
            self.events.push_back(Event::File(FileEvent::Failed {
                peer: peer.clone(),
                id,
                direction: Direction::Sending,
                failure: FileFailure::ReadFailed,
            }));
            self.send_file(
                &peer,
                FileMessage::Cancel {
                    id,
                    by_sender: true,
                },
                now,
            );
        }
        self.finish(now);
    }

    /// Messages from the receiver of one of our transfers.
    pub(super) fn on_answer(
        &mut self,
        from: &UserName,
        message: FileMessage,
        path: Via,
        now: Instant,
    ) {
        let id = message.id();
        let Some(transfer) = self.outgoing.get_mut(&id).filter(|t| &t.to == from) else {
            return;
        };
        transfer.last_heard = now;
        match message {
            FileMessage::Accept { offset, window, .. } if transfer.is_active() => {
                transfer.accepted(offset, window);
                self.events.push_back(Event::File(FileEvent::Accepted {
                    to: from.clone(),
                    id,
                    offset,
                }));
            }
            FileMessage::Decline { .. } if transfer.is_active() => {
                transfer.phase = OutPhase::Declined;
                self.events.push_back(Event::File(FileEvent::Declined {
                    to: from.clone(),
                    id,
                }));
            }
            FileMessage::Cancel {
                by_sender: false, ..
            } if transfer.is_active() => {
                transfer.phase = OutPhase::Cancelled;
                self.events.push_back(Event::File(FileEvent::Cancelled {
                    peer: from.clone(),
                    id,
                    direction: Direction::Sending,
                }));
            }
            FileMessage::Progress {
                accepted,
                credit_end,
                resync,
                ..
            } => {
                if transfer.phase == OutPhase::Offered {
                    let offset = accepted;
                    self.events.push_back(Event::File(FileEvent::Accepted {
                        to: from.clone(),
                        id,
                        offset,
                    }));
                }
                let acked_before = transfer.acked;
                transfer.progress(accepted, credit_end, resync);
                if transfer.acked > acked_before {
                    let (bytes, size) = (transfer.acked, transfer.size);
                    let route = transfer.path.unwrap_or(path);
                    self.events.push_back(Event::File(FileEvent::Progress {
                        peer: from.clone(),
                        id,
                        direction: Direction::Sending,
                        bytes,
                        size,
                        route,
                    }));
                }
            }
            FileMessage::Done { verified, .. } if transfer.is_active() => {
                transfer.phase = OutPhase::Finished { verified };
                self.events.push_back(Event::File(FileEvent::Done {
                    peer: from.clone(),
                    id,
                    direction: Direction::Sending,
                    verified,
                }));
            }
            _ => {}
        }
    }

    /// The relay says the receiver is offline.
    pub(in crate::client) fn file_undeliverable(&mut self, to: &UserName, id: TransferId) {
        if let Some(transfer) = self
            .outgoing
            .get_mut(&id)
            .filter(|t| &t.to == to && t.is_active())
        {
            transfer.phase = OutPhase::Cancelled;
            self.events.push_back(Event::File(FileEvent::Failed {
                peer: to.clone(),
                id,
                direction: Direction::Sending,
                failure: FileFailure::PeerOffline,
            }));
        }
    }

    pub(in crate::client) fn file_throttled(
        &mut self,
        to: &UserName,
        id: TransferId,
        offset: u64,
        retry_after: Duration,
        now: Instant,
    ) {
        if let Some(transfer) = self.outgoing.get_mut(&id).filter(|t| &t.to == to) {
            transfer.throttled(offset, now + retry_after);
        }
    }

    /// A path went down: transfers whose chunks went over it continue from the last offset
    /// their receiver accepted, on whatever route is up.
    pub(in crate::client) fn file_path_failed(&mut self, peer: Option<&UserName>, path: Via) {
        for transfer in self.outgoing.values_mut() {
            if peer.is_none_or(|p| p == &transfer.to) {
                transfer.path_failed(path);
            }
        }
    }

    /// Asks the host for file data within the credit and sends chunks while the route's
    /// output stays under the high-water mark, one chunk per transfer per round, so chat
    /// frames never queue behind more than a few chunks.
    pub(in crate::client) fn pump_files(&mut self, now: Instant) {
        let read_ahead = self.config.file_window.min(READ_AHEAD);
        for transfer in self.outgoing.values_mut() {
            let reads = transfer.reads_wanted(read_ahead);
            if reads.is_empty() {
                continue;
            }
            for (offset, len) in reads {
                self.actions.push_back(Action::ReadFile {
                    id: transfer.id,
                    offset,
                    len,
                    // Every link is encrypted: the bytes must pass through the core to be
                    // sealed, so a span to send from the file is never asked for.
                    direct: false,
                });
            }
        }
        loop {
            let mut sent = false;
            let ids: Vec<TransferId> = self
                .outgoing
                .iter()
                .filter(|(_, t)| t.phase == OutPhase::Sending)
                .map(|(id, _)| *id)
                .collect();
            for id in ids {
                let Some(to) = self.outgoing.get(&id).map(|t| t.to.clone()) else {
                    continue;
                };
                let Some((destination, path)) = self.file_route(&to) else {
                    continue;
                };
                if self.outbound.pending(destination) >= self.config.file_high_water {
                    continue;
                }
                let Some(transfer) = self.outgoing.get_mut(&id) else {
                    continue;
                };
                let in_flight = match destination {
                    Destination::Server => self.config.file_relayed_in_flight,
                    Destination::Peer(_) => u64::MAX,
                };
                let Some((offset, data)) = transfer.next_chunk(now, in_flight) else {
                    continue;
                };
                transfer.path = Some(path);
                self.send_file(&to, FileMessage::Chunk { id, offset, data }, now);
                sent = true;
            }
            if !sent {
                return;
            }
        }
    }

    /// Offers again every transfer whose receiver has been silent for `file_retry`: the
    /// repeated offer makes the receiver say where it stands, whatever was lost on the way.
    pub(super) fn repeat_offers(&mut self, now: Instant) {
        let retry = self.config.file_retry;
        let mut offers = Vec::new();
        for transfer in self.outgoing.values_mut().filter(|t| t.is_active()) {
            if transfer.paused_until.is_some_and(|t| t <= now) {
                transfer.paused_until = None;
            }
            if transfer.last_heard + retry <= now {
                transfer.last_heard = now;
                let offer = FileMessage::Offer {
                    id: transfer.id,
                    name: transfer.name.clone(),
                    size: transfer.size,
                    hash: transfer.hash,
                    repeat: true,
                };
                offers.push((transfer.to.clone(), offer));
            }
        }
        for (to, offer) in offers {
            self.send_file(&to, offer, now);
        }
    }

    /// `to`'s key just arrived: offers that could not be sealed without it go now, not at
    /// the next repeat.
    pub(in crate::client) fn offer_waiting_files(&mut self, to: &UserName, now: Instant) {
        let offers: Vec<FileMessage> = self
            .outgoing
            .values()
            .filter(|t| &t.to == to && t.phase == OutPhase::Offered)
            .map(|t| FileMessage::Offer {
                id: t.id,
                name: t.name.clone(),
                size: t.size,
                hash: t.hash,
                repeat: true,
            })
            .collect();
        for offer in offers {
            self.send_file(to, offer, now);
        }
    }

    /// Keeps at most `FINISHED_KEPT` finished transfers, forgetting those with the lowest ids
    /// first (the map's order: ids say nothing about age).
    pub(super) fn trim_finished_outgoing(&mut self) {
        while self.outgoing.values().filter(|t| !t.is_active()).count() > FINISHED_KEPT {
            let Some(lowest) = self
                .outgoing
                .iter()
                .find(|(_, t)| !t.is_active())
                .map(|(id, _)| *id)
            else {
                break;
            };
            self.outgoing.remove(&lowest);
        }
    }
}
