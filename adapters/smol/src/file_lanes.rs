//! File host calls, off the owner task and in order per transfer.
//!
//! Each transfer gets a lane: a bounded queue and a task that hands the queued calls to smol's
//! blocking pool, a batch at a time, and reports the answers to the owner. The owner never
//! waits for a lane (it `try_send`s), so a slow disk never holds up chat; the core bounds what
//! a lane holds (a few reads, one window of writes), and a lane that is full anyway (a peer
//! sending absurdly small chunks) fails the call, which ends that one transfer.

use crate::file_host::{FileHost, FileOffer};
use crate::file_request::FileRequestError;
use crate::shared_file::SharedFile;
use async_channel::{Sender, TrySendError};
use breeze_core::client::Direction;
use breeze_core::wire::{TransferId, UserName};
use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

/// Calls queued per transfer.
const LANE_QUEUE: usize = 4096;
/// Calls handed to the blocking pool at once.
const BATCH: usize = 64;

/// Whose calls go in one lane.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum LaneKey {
    Sending(TransferId),
    Receiving(UserName, TransferId),
}

impl LaneKey {
    pub fn new(peer: &UserName, id: TransferId, direction: Direction) -> LaneKey {
        match direction {
            Direction::Sending => LaneKey::Sending(id),
            Direction::Receiving => LaneKey::Receiving(peer.clone(), id),
        }
    }
}

pub(crate) type Reply<T> = Sender<Result<T, FileRequestError>>;

/// One call to the host.
pub(crate) enum Job {
    Share {
        to: UserName,
        file: SharedFile,
        reply: Reply<SharedFile>,
    },
    Read {
        id: TransferId,
        offset: u64,
        len: usize,
    },
    Receive {
        offer: FileOffer,
        dir: PathBuf,
        reply: Reply<u64>,
    },
    Write {
        from: UserName,
        id: TransferId,
        offset: u64,
        data: Vec<u8>,
    },
    Verify {
        from: UserName,
        id: TransferId,
    },
    Release {
        peer: UserName,
        id: TransferId,
        direction: Direction,
    },
}

/// The host's answer to a [`Job`], for the owner to hand to the core.
pub(crate) enum Answer {
    Shared {
        to: UserName,
        file: SharedFile,
        result: io::Result<()>,
        reply: Reply<SharedFile>,
    },
    Read {
        id: TransferId,
        offset: u64,
        result: io::Result<Vec<u8>>,
    },
    Received {
        offer: FileOffer,
        result: io::Result<u64>,
        reply: Reply<u64>,
    },
    Written {
        from: UserName,
        id: TransferId,
        offset: u64,
        len: usize,
        result: io::Result<()>,
    },
    Verified {
        from: UserName,
        id: TransferId,
        verified: bool,
    },
}

impl Job {
    fn run(self, host: &dyn FileHost) -> Option<Answer> {
        Some(match self {
            Job::Share { to, file, reply } => {
                let result = host.share(file.id, &file.path, file.size);
                Answer::Shared {
                    to,
                    file,
                    result,
                    reply,
                }
            }
            Job::Read { id, offset, len } => Answer::Read {
                id,
                offset,
                result: host.read(id, offset, len),
            },
            Job::Receive { offer, dir, reply } => {
                let result = host.receive(&offer, &dir);
                Answer::Received {
                    offer,
                    result,
                    reply,
                }
            }
            Job::Write {
                from,
                id,
                offset,
                data,
            } => Answer::Written {
                result: host.write(&from, id, offset, &data),
                from,
                id,
                offset,
                len: data.len(),
            },
            Job::Verify { from, id } => {
                let verified = host.verify(&from, id).unwrap_or_else(|error| {
                    tracing::warn!(%from, %id, %error, "cannot check a received file");
                    false
                });
                Answer::Verified { from, id, verified }
            }
            Job::Release {
                peer,
                id,
                direction,
            } => {
                host.release(&peer, id, direction);
                return None;
            }
        })
    }

    /// The answer for a call that never reached the host.
    fn refused(self) -> Option<Answer> {
        let busy = || io::Error::other("too many file operations queued for this transfer");
        Some(match self {
            Job::Share { to, file, reply } => Answer::Shared {
                to,
                file,
                result: Err(busy()),
                reply,
            },
            Job::Read { id, offset, .. } => Answer::Read {
                id,
                offset,
                result: Err(busy()),
            },
            Job::Receive { offer, reply, .. } => Answer::Received {
                offer,
                result: Err(busy()),
                reply,
            },
            Job::Write {
                from,
                id,
                offset,
                data,
            } => Answer::Written {
                from,
                id,
                offset,
                len: data.len(),
                result: Err(busy()),
            },
            Job::Verify { from, id } => Answer::Verified {
                from,
                id,
                verified: false,
            },
            Job::Release { .. } => return None,
        })
    }
}

/// The open lanes of one client driver.
pub(crate) struct Lanes<E> {
    host: Arc<dyn FileHost>,
    lanes: HashMap<LaneKey, Sender<Job>>,
    /// Where answers go: the owner's inbound queue.
    answers: Sender<E>,
}

impl<E: From<Answer> + Send + 'static> Lanes<E> {
    pub fn new(host: Arc<dyn FileHost>, answers: Sender<E>) -> Lanes<E> {
        Lanes {
            host,
            lanes: HashMap::new(),
            answers,
        }
    }

    /// Queues `job` behind the earlier calls for the same transfer. When it cannot be queued,
    /// returns the answer to give the core instead.
    pub fn push(&mut self, key: LaneKey, job: Job) -> Option<Answer> {
        let lane = self.lanes.entry(key).or_insert_with(|| {
            let (jobs, queued) = async_channel::bounded(LANE_QUEUE);
            let host = self.host.clone();
            let answers = self.answers.clone();
            smol::spawn(async move {
                while let Ok(first) = queued.recv().await {
                    let mut batch: Vec<Job> = vec![first];
                    while batch.len() < BATCH {
                        match queued.try_recv() {
                            Ok(job) => batch.push(job),
                            Err(_) => break,
                        }
                    }
                    let host = host.clone();
                    let done = smol::unblock(move || {
                        batch
                            .into_iter()
                            .filter_map(|job| job.run(&*host))
                            .collect::<Vec<_>>()
                    })
                    .await;
                    for answer in done {
                        if answers.send(answer.into()).await.is_err() {
                            return;
                        }
                    }
                }
            })
            .detach();
            jobs
        });
        match lane.try_send(job) {
            Ok(()) => None,
            Err(TrySendError::Full(job) | TrySendError::Closed(job)) => job.refused(),
        }
    }

    /// The transfer is over: the host releases it after the calls already queued, and the
    /// lane's task ends.
    pub fn release(&mut self, peer: &UserName, id: TransferId, direction: Direction) {
        let key = LaneKey::new(peer, id, direction);
        let release = Job::Release {
            peer: peer.clone(),
            id,
            direction,
        };
        match self.lanes.remove(&key) {
            Some(lane) => {
                if let Err(error) = lane.try_send(release) {
                    // A full lane: release beside it; its remaining calls then fail, and the
                    // core ignores answers about a finished transfer.
                    let (host, job) = (self.host.clone(), error.into_inner());
                    smol::spawn(smol::unblock(move || job.run(&*host))).detach();
                }
            }
            None => {
                let _ = self.push(key.clone(), release);
                self.lanes.remove(&key);
            }
        }
    }
}
