//! Per-connection output buffers with a hard bound, shared by the server and client cores.
//!
//! Frames for one connection are appended to one buffer and handed to the driver as a single
//! [`Transmit`], so a burst of frames costs the driver one write. Bytes handed out count against
//! the bound until the driver reports them written (`handle_written`): a peer that stops reading
//! therefore fills its bound and is disconnected as a slow consumer instead of growing memory.

use crate::codec::encode_frame;
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

/// Output buffer capacity kept between transmits; a burst beyond it is given back.
const RETAINED_CAPACITY: usize = 1024;

/// Bytes for the driver to write, in order, to one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Transmit<Id> {
    pub to: Id,
    pub bytes: Vec<u8>,
}

/// Why a frame could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QueueError {
    /// The connection is unknown or already closed.
    Closed,
    /// The connection's bound is reached: its reader is too slow.
    Full,
    /// The frame exceeds the frame limit (a bug or an oversized local input).
    TooLarge,
}

#[derive(Debug, Default)]
struct Buffer {
    bytes: Vec<u8>,
    /// Handed to the driver, not yet reported written.
    in_flight: usize,
    /// Listed in `dirty`.
    queued: bool,
}

#[derive(Debug)]
pub(crate) struct Outbound<Id> {
    buffers: HashMap<Id, Buffer>,
    dirty: VecDeque<Id>,
    /// Final bytes of connections being closed, to be written before the close.
    last_words: VecDeque<Transmit<Id>>,
    max_frame: usize,
    max_pending: usize,
}

impl<Id: Copy + Eq + Hash> Outbound<Id> {
    pub fn new(max_frame: usize, max_pending: usize) -> Self {
        Outbound {
            buffers: HashMap::new(),
            dirty: VecDeque::new(),
            last_words: VecDeque::new(),
            max_frame,
            max_pending,
        }
    }

    pub fn open(&mut self, id: Id) {
        self.buffers.insert(id, Buffer::default());
    }

    pub fn send<T: Serialize>(&mut self, id: Id, message: &T) -> Result<(), QueueError> {
        let buffer = self.buffers.get_mut(&id).ok_or(QueueError::Closed)?;
        if buffer.bytes.len() + buffer.in_flight > self.max_pending {
            return Err(QueueError::Full);
        }
        encode_frame(message, self.max_frame, &mut buffer.bytes)
            .map_err(|_| QueueError::TooLarge)?;
        if !buffer.queued {
            buffer.queued = true;
            self.dirty.push_back(id);
        }
        Ok(())
    }

    pub fn written(&mut self, id: Id, bytes: usize) {
        if let Some(buffer) = self.buffers.get_mut(&id) {
            buffer.in_flight = buffer.in_flight.saturating_sub(bytes);
        }
    }

    /// Bytes queued or in flight for `id`.
    pub fn pending(&self, id: Id) -> usize {
        self.buffers
            .get(&id)
            .map_or(0, |b| b.bytes.len() + b.in_flight)
    }

    /// Forgets `id`; whatever it still had queued is written before the driver closes it.
    pub fn close(&mut self, id: Id) {
        if let Some(buffer) = self.buffers.remove(&id) {
            if !buffer.bytes.is_empty() {
                self.last_words.push_back(Transmit {
                    to: id,
                    bytes: buffer.bytes,
                });
            }
        }
    }

    /// Forgets `id` whose socket is already gone: nothing more can be written to it.
    pub fn forget(&mut self, id: Id) {
        self.buffers.remove(&id);
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit<Id>> {
        if let Some(transmit) = self.last_words.pop_front() {
            return Some(transmit);
        }
        while let Some(id) = self.dirty.pop_front() {
            let Some(buffer) = self.buffers.get_mut(&id) else {
                continue;
            };
            buffer.queued = false;
            if buffer.bytes.is_empty() {
                continue;
            }
            let bytes = if buffer.bytes.len() <= RETAINED_CAPACITY {
                // A few frames: hand out an exact-size copy and keep the buffer's capacity for
                // the next ones (one allocation per transmit, no regrowing from empty).
                let bytes = buffer.bytes.clone();
                buffer.bytes.clear();
                bytes
            } else {
                // A burst or a file chunk: hand out the buffer itself rather than copy every
                // byte once more, and start the next one at the retained size.
                std::mem::replace(&mut buffer.bytes, Vec::with_capacity(RETAINED_CAPACITY))
            };
            buffer.in_flight += bytes.len();
            return Some(Transmit { to: id, bytes });
        }
        None
    }

    pub fn len(&self) -> usize {
        self.buffers.len()
    }
}
