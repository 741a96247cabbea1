//! Our side of a transfer we receive: the offer shown to the user, the answer, chunks
//! written in order by the host, credit handed back, and the final hash check.

use super::FINISHED_KEPT;
use crate::client::config::MIN_FILE_WINDOW;
use crate::client::output::{Action, Event, FileError, FileEvent, FileFailure};
use crate::client::Client;
use crate::delivery::Via;
use crate::transfer::{ChunkVerdict, Direction, InPhase, Incoming};
use crate::wire::{Bytes, FileMessage, TransferId, UserName};
use std::time::Instant;

impl Client {
    /// Accepts an offered file, starting at `offset`: the bytes the host already holds from an
    /// earlier attempt (and has checked), or 0.
    pub fn accept_file(
        &mut self,
        from: &UserName,
        id: TransferId,
        offset: u64,
        now: Instant,
    ) -> Result<(), FileError> {
        let window = self.window_for_new_transfer();
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

    /// Bytes the transfer `id` from `from` may have in flight while it is receiving (its
    /// window), else `None`: what the receiver may have to buffer for it.
    pub fn receiving_window(&self, from: &UserName, id: TransferId) -> Option<u64> {
        let window = self.incoming.get(&(from.clone(), id))?.window_in_use();
        (window > 0).then_some(window)
    }

    /// The window a transfer accepted now gets: the configured one, or what is left of
    /// `max_file_buffered` beside the transfers receiving already (at least
    /// [`MIN_FILE_WINDOW`]).
    fn window_for_new_transfer(&self) -> u64 {
        let in_use: u64 = self.incoming.values().map(Incoming::window_in_use).sum();
        let left = self.config.max_file_buffered.saturating_sub(in_use);
        self.config.file_window.min(left).max(MIN_FILE_WINDOW)
    }

    /// Declines an offered file; the sender is told.
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
        self.events.push_back(Event::File(FileEvent::Progress {
            peer: from.clone(),
            id,
            direction: Direction::Receiving,
            bytes: written,
            size,
            route: path.unwrap_or(Via::Relay),
        }));
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
            self.events.push_back(Event::File(FileEvent::Failed {
                peer: from.clone(),
                id,
                direction: Direction::Receiving,
                failure: FileFailure::WriteFailed,
            }));
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
        self.events.push_back(Event::File(FileEvent::Done {
            peer: from.clone(),
            id,
            direction: Direction::Receiving,
            verified,
        }));
        self.send_file(from, FileMessage::Done { id, verified }, now);
        self.trim_finished_incoming();
        self.finish(now);
    }

    pub(super) fn on_offer(&mut self, from: &UserName, offer: FileMessage, now: Instant) {
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
        self.trim_finished_incoming();
        self.events.push_back(Event::File(FileEvent::Offered {
            from: from.clone(),
            id,
            name,
            size,
            hash,
        }));
    }

    pub(super) fn on_chunk(
        &mut self,
        from: &UserName,
        id: TransferId,
        offset: u64,
        data: Bytes,
        path: Via,
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

    /// Gives up on receptions (and offers not answered yet) whose sender has been silent past
    /// the stall bound, gone for good or unreachable by any route: a live sender with a route is heard at least every
    /// `file_retry` (its chunks, or its repeated offer when it hears nothing from here). The
    /// app is told and the host lets go of the partial file, which stays where a fresh offer
    /// of the same file resumes from it. A repeat of the old offer is answered with a cancel,
    /// so a sender that was only cut off learns the transfer is over.
    pub(super) fn fail_stalled(&mut self, now: Instant) {
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
            self.events.push_back(Event::File(FileEvent::Failed {
                peer: from.clone(),
                id,
                direction: Direction::Receiving,
                failure,
            }));
            self.send_file(
                &from,
                FileMessage::Cancel {
                    id,
                    by_sender: false,
                },
                now,
            );
        }
        self.trim_finished_incoming();
    }

    pub(super) fn incoming_mut(
        &mut self,
        from: &UserName,
        id: TransferId,
    ) -> Option<&mut Incoming> {
        self.incoming.get_mut(&(from.clone(), id))
    }

    /// Keeps at most `FINISHED_KEPT` finished transfers, forgetting those with the lowest ids
    /// first (the map's order: ids say nothing about age).
    pub(super) fn trim_finished_incoming(&mut self) {
        while self.incoming.values().filter(|t| !t.is_active()).count() > FINISHED_KEPT {
            let Some(lowest) = self
                .incoming
                .iter()
                .find(|(_, t)| !t.is_active())
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            self.incoming.remove(&lowest);
        }
    }
}
