//! File host calls, off the owner task and in order per transfer.
//!
//! Each transfer gets a lane: a bounded queue and a thread of its own that makes the queued
//! calls and reports the answers to the owner. The owner never waits for a lane (it
//! `try_send`s), so a slow disk never holds up chat; the core bounds what a lane holds (a few
//! reads, one window of writes), and a lane that is full anyway (a peer sending absurdly small
//! chunks) fails the call, which ends that one transfer.
//!
//! A thread per lane rather than an async task handing batches to smol's blocking pool: per
//! chunk that is one wake-up each way between the owner and the disk instead of three, which
//! on a busy machine is a good part of a transfer's cost. Writes that follow each other are
//! answered together while more are queued, so the owner hears once per batch of them.

use crate::file_host::{FileHost, FileOffer};
use crate::file_request::FileRequestError;
use crate::shared_file::SharedFile;
use async_channel::{Receiver, Sender, TrySendError};
use breeze_core::client::Direction;
use breeze_core::transmit::Payload;
use breeze_core::wire::{Bytes, TransferId, UserName};
use std::collections::hash_map::{Entry, HashMap};
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

/// Calls queued per transfer.
const LANE_QUEUE: usize = 4096;
/// Most bytes of consecutive writes answered as one, so the credit they free still reaches
/// the sender in good time: a quarter of the default window.
const MERGED_WRITES: usize = 256 * 1024;

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
        /// The host may answer with a span of the file (see [`FileHost::read_span`]).
        span: bool,
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
        data: Bytes,
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
        result: io::Result<Payload>,
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
            Job::Read {
                id,
                offset,
                len,
                span,
            } => Answer::Read {
                id,
                offset,
                result: match span.then(|| host.read_span(id, offset, len)) {
                    Some(Ok(Some(span))) => Ok(Payload::File(span)),
                    Some(Err(error)) => Err(error),
                    Some(Ok(None)) | None => host.read(id, offset, len).map(Payload::from),
                },
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

/// One lane's thread: makes the calls in order until the owner lets go of the lane. A
/// successful write is held back while the next call is already queued, and answered together
/// with the writes that continue it (the core only needs to know how far the file is written).
fn run_lane<E: From<Answer>>(host: &dyn FileHost, queued: &Receiver<Job>, answers: &Sender<E>) {
    let mut held: Option<Answer> = None;
    loop {
        let job = match queued.try_recv() {
            Ok(job) => job,
            Err(_) => {
                if let Some(answer) = held.take() {
                    if answers.send_blocking(answer.into()).is_err() {
                        return;
                    }
                }
                match queued.recv_blocking() {
                    Ok(job) => job,
                    Err(_) => return,
                }
            }
        };
        let Some(answer) = job.run(host) else {
            continue;
        };
        if let Some(earlier) = &mut held {
            if extend_write(earlier, &answer) {
                continue;
            }
        }
        if let Some(earlier) = held.take() {
            if answers.send_blocking(earlier.into()).is_err() {
                return;
            }
        }
        let mergeable = matches!(
            answer,
            Answer::Written { result: Ok(()), len, .. } if len < MERGED_WRITES
        );
        if mergeable {
            held = Some(answer);
        } else if answers.send_blocking(answer.into()).is_err() {
            return;
        }
    }
}

/// Makes `earlier`, a successful write, cover `later` too when `later` is a successful write
/// of the same transfer starting where `earlier` ended and the two are not too big together.
fn extend_write(earlier: &mut Answer, later: &Answer) -> bool {
    let (
        Answer::Written {
            from,
            id,
            offset,
            len,
            result: Ok(()),
        },
        Answer::Written {
            from: next_from,
            id: next_id,
            offset: next_offset,
            len: next_len,
            result: Ok(()),
        },
    ) = (earlier, later)
    else {
        return false;
    };
    let continues = next_from == from
        && next_id == id
        && offset.checked_add(*len as u64) == Some(*next_offset)
        && *len + next_len <= MERGED_WRITES;
    if continues {
        *len += next_len;
    }
    continues
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
        let lane = match self.lanes.entry(key) {
            Entry::Occupied(lane) => lane.into_mut(),
            Entry::Vacant(vacant) => {
                let (jobs, queued) = async_channel::bounded(LANE_QUEUE);
                let (host, answers) = (self.host.clone(), self.answers.clone());
                let spawned = std::thread::Builder::new()
                    .name("breeze-file".into())
                    .spawn(move || run_lane(&*host, &queued, &answers));
                if let Err(error) = spawned {
                    tracing::warn!(%error, "cannot start a thread for a file transfer");
                    return job.refused();
                }
                vacant.insert(jobs)
            }
        };
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
        // Dropping the lane's sender ends its thread once the calls queued are made.
        let beside = match self.lanes.remove(&key) {
            Some(lane) => lane.try_send(release).err().map(TrySendError::into_inner),
            // No call was ever made for it (an offer declined, a share refused).
            None => Some(release),
        };
        if let Some(job) = beside {
            // A full lane: release beside it; its remaining calls then fail, and the core
            // ignores answers about a finished transfer.
            let host = self.host.clone();
            smol::unblock(move || job.run(&*host)).detach();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::sync::mpsc;
    use std::sync::Mutex;

    /// Holds its first write until told to go on, so the later ones queue behind it.
    struct Gate {
        first: Mutex<Option<mpsc::Receiver<()>>>,
        written: Mutex<Vec<(u64, usize)>>,
    }

    impl FileHost for Gate {
        fn share(&self, _: TransferId, _: &Path, _: u64) -> io::Result<()> {
            Ok(())
        }
        fn read(&self, _: TransferId, _: u64, _: usize) -> io::Result<Vec<u8>> {
            Ok(Vec::new())
        }
        fn receive(&self, _: &FileOffer, _: &Path) -> io::Result<u64> {
            Ok(0)
        }
        fn write(&self, _: &UserName, _: TransferId, offset: u64, data: &[u8]) -> io::Result<()> {
            let gate = self.first.lock().unwrap().take();
            if let Some(gate) = gate {
                let _ = gate.recv();
            }
            self.written.lock().unwrap().push((offset, data.len()));
            Ok(())
        }
        fn verify(&self, _: &UserName, _: TransferId) -> io::Result<bool> {
            Ok(true)
        }
        fn release(&self, _: &UserName, _: TransferId, _: Direction) {}
    }

    #[test]
    fn queued_writes_are_made_in_order_and_answered_together() {
        let (go, gate) = mpsc::channel();
        let host = Arc::new(Gate {
            first: Mutex::new(Some(gate)),
            written: Mutex::new(Vec::new()),
        });
        let (answers, answered) = async_channel::unbounded::<Answer>();
        let mut lanes = Lanes::new(host.clone(), answers);
        let bob = UserName::new("bob").unwrap();
        let (id, chunk) = (TransferId(7), 32 * 1024);
        let chunks = 3 * MERGED_WRITES / chunk;
        for n in 0..chunks {
            let job = Job::Write {
                from: bob.clone(),
                id,
                offset: (n * chunk) as u64,
                data: vec![0; chunk].into(),
            };
            assert!(lanes
                .push(LaneKey::Receiving(bob.clone(), id), job)
                .is_none());
        }
        go.send(()).unwrap();
        let mut covered = 0;
        let mut count = 0;
        while covered < chunks * chunk {
            let Answer::Written {
                offset,
                len,
                result: Ok(()),
                ..
            } = answered.recv_blocking().unwrap()
            else {
                panic!("only successful writes are answered");
            };
            assert_eq!(offset, covered as u64, "answers follow each other");
            assert!(len <= MERGED_WRITES);
            covered += len;
            count += 1;
        }
        assert!(count < chunks, "{count} answers for {chunks} writes");
        let written = host.written.lock().unwrap().clone();
        let expected: Vec<(u64, usize)> =
            (0..chunks).map(|n| ((n * chunk) as u64, chunk)).collect();
        assert_eq!(written, expected, "every write made, in order");
    }
}
