//! The owner's file-host bookkeeping: the offers kept until they are answered, the host's calls
//! queued on the file lanes, and the host's answers handed to the core.

use super::commands::FileCommand;
use super::owner::Owner;
use crate::file_host::FileOffer;
use crate::file_lanes::{Answer, Job, LaneKey};
use crate::file_request::FileRequestError;
use breeze_core::client::{Direction, Event, FileError, FileEvent};
use breeze_core::wire::{Bytes, TransferId, UserName};
use std::time::Instant;

impl Owner {
    /// A handle's file request: queued on the transfer's lane, or answered at once.
    pub(super) fn file_command(&mut self, command: FileCommand, now: Instant) {
        match command {
            FileCommand::Offer { to, file, reply } => {
                let key = LaneKey::Sending(file.id);
                if let Some(answer) = self.lanes.push(key, Job::Share { to, file, reply }) {
                    self.file_answer(answer, now);
                }
            }
            FileCommand::Accept {
                from,
                id,
                dir,
                reply,
            } => match self.offers.remove(&(from.clone(), id)) {
                Some(offer) => {
                    let key = LaneKey::Receiving(from, id);
                    if let Some(answer) = self.lanes.push(key, Job::Receive { offer, dir, reply }) {
                        self.file_answer(answer, now);
                    }
                }
                None => {
                    let _ = reply.try_send(Err(FileError::UnknownTransfer.into()));
                }
            },
            FileCommand::Decline { from, id, reply } => {
                let result = self.core.decline_file(&from, id, now);
                if result.is_ok() {
                    self.offers.remove(&(from.clone(), id));
                    self.lanes.release(&from, id, Direction::Receiving);
                }
                let _ = reply.try_send(result.map_err(Into::into));
            }
            FileCommand::Cancel {
                peer,
                id,
                direction,
                reply,
            } => {
                let result = self.core.cancel_file(&peer, id, direction, now);
                if result.is_ok() {
                    self.offers.remove(&(peer.clone(), id));
                    self.lanes.release(&peer, id, direction);
                }
                let _ = reply.try_send(result.map_err(Into::into));
            }
        }
    }

    /// The core asks for `len` bytes of an offered file at `offset`, for a direct channel
    /// (`direct`: a span the socket may send straight from the file) or the relay.
    pub(super) fn read_file(&mut self, id: TransferId, offset: u64, len: usize, direct: bool) {
        let job = Job::Read {
            id,
            offset,
            len,
            span: direct,
        };
        if let Some(answer) = self.lanes.push(LaneKey::Sending(id), job) {
            self.file_answer(answer, Instant::now());
        }
    }

    /// The core hands over received bytes to write at `offset`.
    pub(super) fn write_file(&mut self, from: UserName, id: TransferId, offset: u64, data: Bytes) {
        let key = LaneKey::Receiving(from.clone(), id);
        let job = Job::Write {
            from,
            id,
            offset,
            data,
        };
        if let Some(answer) = self.lanes.push(key, job) {
            self.file_answer(answer, Instant::now());
        }
    }

    /// Every byte of a received file is written: the host checks its hash.
    pub(super) fn verify_file(&mut self, from: UserName, id: TransferId) {
        let key = LaneKey::Receiving(from.clone(), id);
        if let Some(answer) = self.lanes.push(key, Job::Verify { from, id }) {
            self.file_answer(answer, Instant::now());
        }
    }

    /// Hands the file host's answer to the core (and to the API caller waiting for it).
    pub(super) fn file_answer(&mut self, answer: Answer, now: Instant) {
        match answer {
            Answer::Shared {
                to,
                file,
                result,
                reply,
            } => {
                let outcome = result.map_err(FileRequestError::from).and_then(|()| {
                    let (name, size, hash) = (file.name.clone(), file.size, file.hash);
                    let offered = self.core.offer_file(&to, file.id, name, size, hash, now);
                    offered.map_err(FileRequestError::from)
                });
                match outcome {
                    Ok(()) => {
                        let _ = reply.try_send(Ok(file));
                    }
                    Err(error) => {
                        // The same file still being offered keeps its share.
                        if !matches!(error, FileRequestError::Refused(FileError::DuplicateId)) {
                            self.lanes.release(&to, file.id, Direction::Sending);
                        }
                        let _ = reply.try_send(Err(error));
                    }
                }
            }
            Answer::Read { id, offset, result } => match result {
                Ok(data) => self.core.handle_file_payload(id, offset, data, now),
                Err(error) => {
                    tracing::warn!(%id, offset, %error, "cannot read an offered file");
                    self.core.handle_file_read_failed(id, now);
                }
            },
            Answer::Received {
                offer,
                result,
                reply,
            } => {
                let (from, id) = (&offer.from, offer.id);
                let outcome = match result {
                    Ok(offset) => self
                        .core
                        .accept_file(from, id, offset, now)
                        .map(|()| offset),
                    Err(error) => {
                        // Nothing happened: the offer stands, to be accepted elsewhere.
                        self.offers.insert((from.clone(), id), offer);
                        let _ = reply.try_send(Err(error.into()));
                        return;
                    }
                };
                if outcome.is_err() {
                    self.lanes.release(from, id, Direction::Receiving);
                }
                let _ = reply.try_send(outcome.map_err(Into::into));
            }
            Answer::Written {
                from,
                id,
                offset,
                len,
                result,
            } => match result {
                Ok(()) => self.core.handle_file_written(&from, id, offset, len, now),
                Err(error) => {
                    tracing::warn!(%from, %id, offset, %error, "cannot write a received file");
                    self.core.handle_file_write_failed(&from, id, now);
                }
            },
            Answer::Verified { from, id, verified } => {
                self.core.handle_file_verified(&from, id, verified, now)
            }
        }
    }

    /// Keeps the offers for `accept_file`, and lets the host go of transfers that ended.
    pub(super) fn observe_file_event(&mut self, event: &Event) {
        match event {
            Event::File(FileEvent::Offered {
                from,
                id,
                name,
                size,
                hash,
            }) => {
                let offer = FileOffer {
                    from: from.clone(),
                    id: *id,
                    name: name.clone(),
                    size: *size,
                    hash: *hash,
                };
                self.offers.insert((from.clone(), *id), offer);
            }
            Event::File(FileEvent::Declined { to, id }) => {
                self.lanes.release(to, *id, Direction::Sending)
            }
            Event::File(FileEvent::Cancelled {
                peer,
                id,
                direction,
            })
            | Event::File(FileEvent::Failed {
                peer,
                id,
                direction,
                ..
            })
            | Event::File(FileEvent::Done {
                peer,
                id,
                direction,
                ..
            }) => {
                if *direction == Direction::Receiving {
                    self.offers.remove(&(peer.clone(), *id));
                }
                self.lanes.release(peer, *id, *direction);
            }
            _ => {}
        }
    }
}
