//! Per-connection output buffers with a hard bound, shared by the server and client cores.
//!
//! Frames for one connection are appended to one buffer and handed to the driver as a single
//! [`Transmit`], so a burst of frames costs the driver one write. A buffer that already holds
//! [`SEAL_AT`] bytes (a file chunk) is sealed and the next frames start a new one: appending to
//! it would move the big frame again each time the buffer grew. Bytes handed out count against
//! the bound until the driver reports them written (`handle_written`): a peer that stops reading
//! therefore fills its bound and is disconnected as a slow consumer instead of growing memory.

use crate::codec::encode_frame;
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

/// Output buffer capacity kept between transmits; a burst beyond it is given back.
const RETAINED_CAPACITY: usize = 1024;
/// A buffer holding this much (a file chunk, or a big burst) is sealed before the next frame,
/// which starts a new one; below it, frames are appended and go out in one write.
const SEAL_AT: usize = 16 * 1024;

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
    /// Full buffers, oldest first, waiting to be handed out before `bytes`.
    sealed: VecDeque<Vec<u8>>,
    /// Bytes in `sealed`.
    sealed_len: usize,
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
        if buffer.sealed_len + buffer.bytes.len() + buffer.in_flight > self.max_pending {
            return Err(QueueError::Full);
        }
        if buffer.bytes.len() >= SEAL_AT {
            let full = std::mem::replace(&mut buffer.bytes, Vec::with_capacity(RETAINED_CAPACITY));
            buffer.sealed_len += full.len();
            buffer.sealed.push_back(full);
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
            .map_or(0, |b| b.sealed_len + b.bytes.len() + b.in_flight)
    }

    /// Forgets `id`; whatever it still had queued is written before the driver closes it.
    pub fn close(&mut self, id: Id) {
        if let Some(buffer) = self.buffers.remove(&id) {
            let all = buffer.sealed.into_iter().chain([buffer.bytes]);
            for bytes in all.filter(|bytes| !bytes.is_empty()) {
                self.last_words.push_back(Transmit { to: id, bytes });
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
        while let Some(&id) = self.dirty.front() {
            let Some(buffer) = self.buffers.get_mut(&id) else {
                self.dirty.pop_front();
                continue;
            };
            if let Some(bytes) = buffer.sealed.pop_front() {
                // The connection stays first in line until its last buffer is out.
                buffer.sealed_len -= bytes.len();
                buffer.in_flight += bytes.len();
                return Some(Transmit { to: id, bytes });
            }
            self.dirty.pop_front();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::FrameDecoder;

    const MAX_FRAME: usize = 64 * 1024;

    fn frames(sizes: &[usize]) -> Vec<(u32, Vec<u8>)> {
        let sizes = sizes.iter().enumerate();
        sizes.map(|(i, &n)| (i as u32, vec![i as u8; n])).collect()
    }

    fn drain(outbound: &mut Outbound<u8>) -> Vec<Vec<u8>> {
        std::iter::from_fn(|| outbound.poll_transmit().map(|t| t.bytes)).collect()
    }

    fn decode(transmits: &[Vec<u8>]) -> Vec<(u32, Vec<u8>)> {
        let mut decoder = FrameDecoder::new(MAX_FRAME);
        let mut decoded = Vec::new();
        for bytes in transmits {
            let mut input = &bytes[..];
            while let Some(frame) = decoder.decode(&mut input).expect("valid frames") {
                decoded.push(frame);
            }
        }
        decoded
    }

    #[test]
    fn big_frames_get_buffers_of_their_own_and_everything_leaves_in_order() {
        let mut outbound = Outbound::new(MAX_FRAME, 1024 * 1024);
        outbound.open(1);
        let sent = frames(&[10, 32 * 1024, 20, 30, 32 * 1024, 32 * 1024, 5]);
        for frame in &sent {
            outbound.send(1, frame).expect("queued");
        }
        let queued = outbound.pending(1);
        let transmits = drain(&mut outbound);
        assert_eq!(decode(&transmits), sent);
        // Sealed after each big frame: small, big | small, small, big | big | small.
        assert_eq!(transmits.len(), 4);
        assert_eq!(transmits.iter().map(Vec::len).sum::<usize>(), queued);
        assert_eq!(outbound.pending(1), queued, "in flight until written");
        outbound.written(1, queued);
        assert_eq!(outbound.pending(1), 0);
    }

    #[test]
    fn the_bound_counts_sealed_buffers_too() {
        let mut outbound = Outbound::new(MAX_FRAME, 64 * 1024);
        outbound.open(1);
        let big = (0u32, vec![0u8; 40 * 1024]);
        outbound.send(1, &big).expect("under the bound");
        outbound
            .send(1, &big)
            .expect("the bound is checked before a frame");
        assert_eq!(outbound.send(1, &big), Err(QueueError::Full));
    }

    #[test]
    fn a_closed_connection_still_writes_its_last_words_in_order() {
        let mut outbound = Outbound::new(MAX_FRAME, 1024 * 1024);
        outbound.open(1);
        let sent = frames(&[32 * 1024, 10, 32 * 1024, 10]);
        for frame in &sent {
            outbound.send(1, frame).expect("queued");
        }
        outbound.close(1);
        assert_eq!(decode(&drain(&mut outbound)), sent);
        assert_eq!(outbound.send(1, &sent[0]), Err(QueueError::Closed));
    }
}
