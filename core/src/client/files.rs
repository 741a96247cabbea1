//! File transfers: offers and answers, chunks within credit, over whichever route is up.

use super::output::{Action, Destination, Event, FileError, FileFailure};
use super::{Client, LinkId};
use crate::delivery::Path;
use crate::transfer::{ChunkVerdict, Direction, InPhase, Incoming, OutPhase, Outgoing};
use crate::wire::{
    Bytes, ClientFrame, FileMessage, FileName, Payload, PeerFrame, TransferId, UserName,
};
use std::time::{Duration, Instant};

/// Finished transfers remembered (to answer a late repeat of their offer), per direction.
const FINISHED_KEPT: usize = 64;
/// The most file data read ahead of the wire per transfer: enough to keep a link fed between
/// two host reads, far less than the credit a receiver may grant.
const READ_AHEAD: u64 = 1024 * 1024;

impl Client {
    // ---- the user -----------------------------------------------------------------------

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
        self.forget_finished_outgoing();
        self.send_file(to, offer, now);
        self.finish(now);
        Ok(())
    }

    /// Accepts an offered file, starting at `offset`: the bytes the host already holds from an
    /// earlier attempt (and has checked), or 0.
    pub fn accept_file(
        &mut self,
        from: &UserName,
        id: TransferId,
        offset: u64,
        now: Instant,
    ) -> Result<(), FileError> {
        let window = self.config.file_window;
        let transfer = self
            .incoming_mut(from, id)
            .ok_or(FileError::UnknownTransfer)?;
        if transfer.phase != InPhase::Offered {
            return Err(FileError::NotOffered);
        }
        let offset = offset.min(transfer.size);
        transfer.accept(offset, window, now);
        let complete = transfer.phase == InPhase::Verifying;
        self.send_file(from, FileMessage::Accept { id, offset, window }, now);
        if complete {
            self.actions.push_back(Action::VerifyFile {
                from: from.clone(),
                id,
            });
        }
        self.finish(now);
        Ok(())
    }

    pub fn decline_file(
        &mut self,
        from: &UserName,
        id: TransferId,
        now: Instant,
    ) -> Result<(), FileError> {
        let transfer = self
            .incoming_mut(from, id)
            .ok_or(FileError::UnknownTransfer)?;
        if transfer.phase != InPhase::Offered {
            return Err(FileError::NotOffered);
        }
        transfer.phase = InPhase::Declined;
        self.send_file(from, FileMessage::Decline { id }, now);
        self.finish(now);
        Ok(())
    }

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

    // ---- the host's answers ---------------------------------------------------------------

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
            self.events.push_back(Event::FileFailed {
                peer: peer.clone(),
                id,
                direction: Direction::Sending,
                failure: FileFailure::ReadFailed,
            });
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

    /// The host wrote `len` bytes at `offset` for [`Action::WriteFile`].
    pub fn handle_file_written(
        &mut self,
        from: &UserName,
        id: TransferId,
        offset: u64,
        len: usize,
        now: Instant,
    ) {
        let Some(transfer) = self.incoming_mut(from, id) else {
            return;
        };
        transfer.last_heard = now;
        let Some(credit_end) = transfer.written(offset + len as u64) else {
            return self.finish(now);
        };
        let (accepted, written, size, path) = (
            transfer.accepted,
            transfer.written,
            transfer.size,
            transfer.path,
        );
        let verifying = transfer.phase == InPhase::Verifying;
        self.events.push_back(Event::FileProgress {
            peer: from.clone(),
            id,
            direction: Direction::Receiving,
            bytes: written,
            size,
            route: path.unwrap_or(Path::Relay),
        });
        self.send_file(
            from,
            FileMessage::Progress {
                id,
                accepted,
                credit_end,
                resync: false,
            },
            now,
        );
        if verifying {
            self.actions.push_back(Action::VerifyFile {
                from: from.clone(),
                id,
            });
        }
        self.finish(now);
    }

    /// The host could not write: the transfer is cancelled and the partial file kept aside.
    pub fn handle_file_write_failed(&mut self, from: &UserName, id: TransferId, now: Instant) {
        if let Some(transfer) = self.incoming_mut(from, id).filter(|t| t.is_active()) {
            transfer.phase = InPhase::Cancelled;
            self.events.push_back(Event::FileFailed {
                peer: from.clone(),
                id,
                direction: Direction::Receiving,
                failure: FileFailure::WriteFailed,
            });
            self.send_file(
                from,
                FileMessage::Cancel {
                    id,
                    by_sender: false,
                },
                now,
            );
        }
        self.finish(now);
    }

    /// The host checked the received file against the offered hash ([`Action::VerifyFile`]).
    pub fn handle_file_verified(
        &mut self,
        from: &UserName,
        id: TransferId,
        verified: bool,
        now: Instant,
    ) {
        let Some(transfer) = self
            .incoming_mut(from, id)
            .filter(|t| t.phase == InPhase::Verifying)
        else {
            return;
        };
        transfer.phase = InPhase::Finished { verified };
        self.events.push_back(Event::FileDone {
            peer: from.clone(),
            id,
            direction: Direction::Receiving,
            verified,
        });
        self.send_file(from, FileMessage::Done { id, verified }, now);
        self.forget_finished_incoming();
        self.finish(now);
    }

    // ---- messages from peers ----------------------------------------------------------------

    pub(super) fn on_file_message(
        &mut self,
        from: &UserName,
        message: FileMessage,
        path: Path,
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
                    self.events.push_back(Event::FileCancelled {
                        peer: from.clone(),
                        id,
                        direction: Direction::Receiving,
                    });
                }
            }
            other => self.on_answer(from, other, path, now),
        }
    }

    fn on_offer(&mut self, from: &UserName, offer: FileMessage, now: Instant) {
        let FileMessage::Offer {
            id,
            name,
            size,
            hash,
            repeat,
        } = offer
        else {
            return;
        };
        let answer = match self.incoming_mut(from, id) {
            // Same id, other content: the sender reused an id; treat it as a new offer.
            Some(known) if known.hash != hash || known.size != size => None,
            // The user offers again what ended: start over (a transfer under way resumes).
            Some(known) if !repeat && !known.is_active() => None,
            Some(known) => match known.phase {
                InPhase::Offered | InPhase::Verifying => {
                    known.last_heard = now;
                    return;
                }
                InPhase::Receiving => {
                    known.last_heard = now;
                    Some(FileMessage::Progress {
                        id,
                        accepted: known.accepted,
                        credit_end: known.credit_end(),
                        resync: true,
                    })
                }
                InPhase::Finished { verified } => Some(FileMessage::Done { id, verified }),
                InPhase::Declined => Some(FileMessage::Decline { id }),
                InPhase::Cancelled => Some(FileMessage::Cancel {
                    id,
                    by_sender: false,
                }),
            },
            None => None,
        };
        if let Some(answer) = answer {
            self.send_file(from, answer, now);
            return;
        }
        let active = self.incoming.values().filter(|t| t.is_active()).count();
        if active >= self.config.max_transfers {
            self.send_file(from, FileMessage::Decline { id }, now);
            return;
        }
        self.incoming.insert(
            (from.clone(), id),
            Incoming::new(from.clone(), id, name.clone(), size, hash, now),
        );
        self.forget_finished_incoming();
        self.events.push_back(Event::FileOffered {
            from: from.clone(),
            id,
            name,
            size,
            hash,
        });
    }

    fn on_chunk(
        &mut self,
        from: &UserName,
        id: TransferId,
        offset: u64,
        data: Bytes,
        path: Path,
        now: Instant,
    ) {
        let Some(transfer) = self.incoming_mut(from, id) else {
            return;
        };
        transfer.last_heard = now;
        match transfer.chunk(offset, data.len(), path) {
            ChunkVerdict::Write => {
                self.actions.push_back(Action::WriteFile {
                    from: from.clone(),
                    id,
                    offset,
                    data,
                });
            }
            ChunkVerdict::Duplicate => {}
            ChunkVerdict::Resync => {
                let (accepted, credit_end) = (transfer.accepted, transfer.credit_end());
                self.send_file(
                    from,
                    FileMessage::Progress {
                        id,
                        accepted,
                        credit_end,
                        resync: true,
                    },
                    now,
                );
            }
        }
    }

    /// Messages from the receiver of one of our transfers.
    fn on_answer(&mut self, from: &UserName, message: FileMessage, path: Path, now: Instant) {
        let id = message.id();
        let Some(transfer) = self.outgoing.get_mut(&id).filter(|t| &t.to == from) else {
            return;
        };
        transfer.last_heard = now;
        match message {
            FileMessage::Accept { offset, window, .. } if transfer.is_active() => {
                transfer.accepted(offset, window);
                self.events.push_back(Event::FileAccepted {
                    to: from.clone(),
                    id,
                    offset,
                });
            }
            FileMessage::Decline { .. } if transfer.is_active() => {
                transfer.phase = OutPhase::Declined;
                self.events.push_back(Event::FileDeclined {
                    to: from.clone(),
                    id,
                });
            }
            FileMessage::Cancel {
                by_sender: false, ..
            } if transfer.is_active() => {
                transfer.phase = OutPhase::Cancelled;
                self.events.push_back(Event::FileCancelled {
                    peer: from.clone(),
                    id,
                    direction: Direction::Sending,
                });
            }
            FileMessage::Progress {
                accepted,
                credit_end,
                resync,
                ..
            } => {
                if transfer.phase == OutPhase::Offered {
                    let offset = accepted;
                    self.events.push_back(Event::FileAccepted {
                        to: from.clone(),
                        id,
                        offset,
                    });
                }
                let acked_before = transfer.acked;
                transfer.progress(accepted, credit_end, resync);
                if transfer.acked > acked_before {
                    let (bytes, size) = (transfer.acked, transfer.size);
                    let route = transfer.path.unwrap_or(path);
                    self.events.push_back(Event::FileProgress {
                        peer: from.clone(),
                        id,
                        direction: Direction::Sending,
                        bytes,
                        size,
                        route,
                    });
                }
            }
            FileMessage::Done { verified, .. } if transfer.is_active() => {
                transfer.phase = OutPhase::Finished { verified };
                self.events.push_back(Event::FileDone {
                    peer: from.clone(),
                    id,
                    direction: Direction::Sending,
                    verified,
                });
            }
            _ => {}
        }
    }

    /// The relay says the receiver is offline.
    pub(super) fn file_undeliverable(&mut self, to: &UserName, id: TransferId) {
        if let Some(transfer) = self
            .outgoing
            .get_mut(&id)
            .filter(|t| &t.to == to && t.is_active())
        {
            transfer.phase = OutPhase::Cancelled;
            self.events.push_back(Event::FileFailed {
                peer: to.clone(),
                id,
                direction: Direction::Sending,
                failure: FileFailure::PeerOffline,
            });
        }
    }

    pub(super) fn file_throttled(
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
    pub(super) fn file_path_failed(&mut self, peer: Option<&UserName>, path: Path) {
        for transfer in self.outgoing.values_mut() {
            if peer.is_none_or(|p| p == &transfer.to) {
                transfer.path_failed(path);
            }
        }
    }

    // ---- moving bytes ---------------------------------------------------------------------

    /// Asks the host for file data within the credit and sends chunks while the route's
    /// output stays under the high-water mark, one chunk per transfer per round, so chat
    /// frames never queue behind more than a few chunks.
    pub(super) fn pump_files(&mut self, now: Instant) {
        let read_ahead = self.config.file_window.min(READ_AHEAD);
        for transfer in self.outgoing.values_mut() {
            let reads = transfer.reads_wanted(read_ahead);
            if reads.is_empty() {
                continue;
            }
            let link = self.peers.get(&transfer.to).and_then(|p| p.direct);
            for (offset, len) in reads {
                self.actions.push_back(Action::ReadFile {
                    id: transfer.id,
                    offset,
                    len,
                    direct: link.is_some(),
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
        self.fail_stalled(now);
    }

    /// Gives up on receptions (and offers not answered yet) whose sender has been silent past
    /// the stall bound, gone for good or unreachable by any route: a live sender with a route is heard at least every
    /// `file_retry` (its chunks, or its repeated offer when it hears nothing from here). The
    /// app is told and the host lets go of the partial file, which stays where a fresh offer
    /// of the same file resumes from it. A repeat of the old offer is answered with a cancel,
    /// so a sender that was only cut off learns the transfer is over.
    fn fail_stalled(&mut self, now: Instant) {
        let stall = self.config.file_stall;
        let stalled: Vec<(UserName, TransferId)> = self
            .incoming
            .iter()
            .filter(|(_, t)| t.stall_deadline(stall).is_some_and(|at| at <= now))
            .map(|(key, _)| key.clone())
            .collect();
        if stalled.is_empty() {
            return;
        }
        for (from, id) in stalled {
            let mut failure = FileFailure::Stalled;
            if let Some(transfer) = self.incoming_mut(&from, id) {
                if transfer.phase == InPhase::Offered {
                    failure = FileFailure::OfferLapsed;
                }
                transfer.phase = InPhase::Cancelled;
            }
            self.events.push_back(Event::FileFailed {
                peer: from.clone(),
                id,
                direction: Direction::Receiving,
                failure,
            });
            self.send_file(
                &from,
                FileMessage::Cancel {
                    id,
                    by_sender: false,
                },
                now,
            );
        }
        self.forget_finished_incoming();
    }

    fn file_route(&self, peer: &UserName) -> Option<(Destination, Path)> {
        match self.peers.get(peer).and_then(|p| p.direct) {
            Some(link) => Some((Destination::Peer(link), Path::Direct)),
            None if self.server.is_online() => Some((Destination::Server, Path::Relay)),
            None => None,
        }
    }

    /// Sends a file message on the best route; `None` when no route is up (the sender's
    /// repeated offer recovers whatever is lost).
    fn send_file(&mut self, peer: &UserName, message: FileMessage, now: Instant) -> Option<Path> {
        let (destination, path) = self.file_route(peer)?;
        let sent = match destination {
            Destination::Peer(link) => self.send_file_direct(link, message, now),
            Destination::Server => self.send_server(
                &ClientFrame::RelayFile {
                    to: peer.clone(),
                    message,
                },
                now,
            ),
        };
        sent.then_some(path)
    }

    fn send_file_direct(&mut self, link: LinkId, message: FileMessage, now: Instant) -> bool {
        self.send_link(link, &PeerFrame::File(message), now)
    }

    fn incoming_mut(&mut self, from: &UserName, id: TransferId) -> Option<&mut Incoming> {
        self.incoming.get_mut(&(from.clone(), id))
    }

    fn forget_finished_outgoing(&mut self) {
        while self.outgoing.values().filter(|t| !t.is_active()).count() > FINISHED_KEPT {
            let Some(oldest) = self
                .outgoing
                .iter()
                .find(|(_, t)| !t.is_active())
                .map(|(id, _)| *id)
            else {
                break;
            };
            self.outgoing.remove(&oldest);
        }
    }

    fn forget_finished_incoming(&mut self) {
        while self.incoming.values().filter(|t| !t.is_active()).count() > FINISHED_KEPT {
            let Some(oldest) = self
                .incoming
                .iter()
                .find(|(_, t)| !t.is_active())
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            self.incoming.remove(&oldest);
        }
    }
}
