//! Per-connection output buffers with a hard bound, shared by the server and client cores.
//!
//! Frames for one connection are appended to one buffer and handed to the driver as a single
//! [`Transmit`], so a burst of frames costs the driver one write. A buffer that already holds
//! [`CUT_AT`] bytes (a file chunk) is cut off and the next frames start a new one: appending to
//! it would move the big frame again each time the buffer grew. Bytes handed out count against
//! the bound until the driver reports them written (`handle_written`): a peer that stops reading
//! therefore fills its bound and is disconnected as a slow consumer instead of growing memory.
//!
//! Every connection is encrypted (see [`crate::secure`]). Until its handshake is through, a
//! buffer only lets its handshake messages out; frames queued meanwhile (a client's hello and
//! login) wait, and are dropped unsent if the handshake fails. From then on each transmit is
//! sealed into records just before it is handed out, so one burst of frames costs one seal.

use crate::codec::{encode_leaving_out, SharedTail};
use crate::secure::{sealed_len, Sealer, RECORD_OVERHEAD};
use crate::transmit::{Payload, Transmit};
use bytes::Bytes;
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

/// Output buffer capacity a buffer starts with when a frame is queued on it, and keeps between
/// transmits while its connection is busy; [`Outbound::release_idle`] gives it back once the
/// connection goes quiet, so an idle connection holds no buffer at all.
const RETAINED_CAPACITY: usize = 1024;
/// A buffer holding this much (a file chunk, or a big burst) is cut off before the next frame,
/// which starts a new one; below it, frames are appended and go out in one write.
const CUT_AT: usize = 16 * 1024;

/// Plaintext one transmit seals at most (unless one part alone is bigger): a connection
/// with a file in flight hands out a few records at a time, so a busy server turns to its
/// other connections in between.
const TRANSMIT_MAX: usize = 256 * 1024;

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
    /// Full buffers, oldest first, waiting to be handed out before `bytes`; a file chunk's
    /// data is one of them as it is (see [`SharedTail`]).
    parts: VecDeque<Payload>,
    /// Bytes in `parts`.
    parts_len: usize,
    bytes: Vec<u8>,
    /// Handed to the driver, not yet reported written.
    in_flight: usize,
    /// Listed in `dirty`.
    queued: bool,
    /// Handshake messages, written before anything else and as they are.
    handshake: VecDeque<Bytes>,
    /// Seals what goes out once the handshake is through; until then frames wait.
    sealer: Option<Sealer>,
}

#[derive(Debug)]
pub(crate) struct Outbound<Id> {
    /// Boxed, so the table holds pointers and each buffer takes its own size only, not the
    /// slack of a table that doubles (most of an idle connection's memory otherwise).
    buffers: HashMap<Id, Box<Buffer>>,
    dirty: VecDeque<Id>,
    /// Final bytes of connections being closed, to be written before the close.
    last_words: VecDeque<Transmit<Id>>,
    max_frame: usize,
    max_pending: usize,
}

impl Buffer {
    /// The bytes so far, leaving an empty buffer that allocates with its next frame.
    fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.bytes)
    }

    /// Seals what is queued, oldest first, as one stream of full records: whole parts up to
    /// [`TRANSMIT_MAX`] bytes (at least one), and the bytes after them if everything fits.
    /// Returns the records (`None` if there was nothing to seal, or the record counter ran
    /// out: the far side then sees a gap and hangs up) and whether the buffer is drained.
    /// Before the handshake is through nothing is sealed and the buffer counts as drained:
    /// its frames wait for [`Outbound::start_sealing`].
    fn seal_some(&mut self) -> (Option<Bytes>, bool) {
        let Some(sealer) = self.sealer.as_mut() else {
            return (None, true);
        };
        let mut take = 0;
        let mut plain = 0;
        for part in &self.parts {
            if take > 0 && plain + part.len() > TRANSMIT_MAX {
                break;
            }
            plain += part.len();
            take += 1;
        }
        let with_bytes =
            take == self.parts.len() && (take == 0 || plain + self.bytes.len() <= TRANSMIT_MAX);
        if with_bytes {
            plain += self.bytes.len();
        }
        // A record may end with each part besides the full ones: one allocation whatever.
        let mut out = Vec::with_capacity(sealed_len(plain) + (take + 1) * RECORD_OVERHEAD);
        // A file span is refused when queued on an encrypted link, so every part is bytes.
        let parts = (self.parts.range(..take)).filter_map(|part| part.as_bytes().map(|b| &b[..]));
        let bytes = with_bytes.then_some(&self.bytes[..]);
        let sealed = sealer.seal_all(parts.chain(bytes), &mut out);
        for part in self.parts.drain(..take) {
            self.parts_len -= part.len();
        }
        if with_bytes {
            self.bytes.clear();
            self.bytes.shrink_to(RETAINED_CAPACITY);
        }
        let sealed = (sealed.is_ok() && !out.is_empty()).then(|| Bytes::from(out));
        (sealed, with_bytes)
    }

    /// Puts the bytes so far in line to go out as they are; later frames start a new buffer.
    fn cut(&mut self) {
        if !self.bytes.is_empty() {
            let full = Bytes::from(self.take());
            self.parts_len += full.len();
            self.parts.push_back(Payload::Bytes(full));
        }
    }
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
        self.buffers.insert(id, Box::default());
    }

    /// Queues a handshake message (already framed): it goes out ahead of any frame.
    pub fn send_handshake(&mut self, id: Id, message: Vec<u8>) -> Result<(), QueueError> {
        let buffer = self.buffers.get_mut(&id).ok_or(QueueError::Closed)?;
        buffer.handshake.push_back(Bytes::from(message));
        self.mark_dirty(id);
        Ok(())
    }

    /// The handshake is through: from now on the frames of `id` go out sealed by `sealer`.
    pub fn start_sealing(&mut self, id: Id, sealer: Sealer) {
        if let Some(buffer) = self.buffers.get_mut(&id) {
            buffer.sealer = Some(sealer);
            self.mark_dirty(id);
        }
    }

    fn mark_dirty(&mut self, id: Id) {
        if let Some(buffer) = self.buffers.get_mut(&id) {
            if !buffer.queued {
                buffer.queued = true;
                self.dirty.push_back(id);
            }
        }
    }

    pub fn send<T: Serialize + SharedTail>(
        &mut self,
        id: Id,
        message: &T,
    ) -> Result<(), QueueError> {
        let tail = message.shared_tail();
        if let Some(Payload::File(_)) = tail {
            // A span would go from the file to the socket unsealed: never on an encrypted link.
            return Err(QueueError::TooLarge);
        }
        let buffer = self.buffers.get_mut(&id).ok_or(QueueError::Closed)?;
        if buffer.parts_len + buffer.bytes.len() + buffer.in_flight > self.max_pending {
            return Err(QueueError::Full);
        }
        if buffer.bytes.len() >= CUT_AT {
            buffer.cut();
        }
        if buffer.bytes.capacity() == 0 {
            buffer.bytes.reserve(RETAINED_CAPACITY);
        }
        let tail = encode_leaving_out(message, tail, self.max_frame, &mut buffer.bytes)
            .map_err(|_| QueueError::TooLarge)?;
        if let Some(tail) = tail {
            // The frame goes on with the tail: what is buffered, then the tail itself.
            buffer.cut();
            buffer.parts_len += tail.len();
            buffer.parts.push_back(tail);
        }
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
            .map_or(0, |b| b.parts_len + b.bytes.len() + b.in_flight)
    }

    /// Forgets `id`; whatever it still had queued is written before the driver closes it.
    pub fn close(&mut self, id: Id) {
        let Some(mut buffer) = self.buffers.remove(&id) else {
            return;
        };
        for message in buffer.handshake.drain(..) {
            let payload = Payload::Bytes(message);
            self.last_words.push_back(Transmit { to: id, payload });
        }
        // Frames queued before the handshake finished never go out (nothing is sealed).
        loop {
            let (sealed, drained) = buffer.seal_some();
            if let Some(bytes) = sealed {
                let payload = Payload::Bytes(bytes);
                self.last_words.push_back(Transmit { to: id, payload });
            }
            if drained {
                break;
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
            if let Some(message) = buffer.handshake.pop_front() {
                buffer.in_flight += message.len();
                return Some(Transmit {
                    to: id,
                    payload: Payload::Bytes(message),
                });
            }
            // Still handshaking, the frames wait for the channel: nothing sealed, and the
            // connection leaves the line until its handshake is through.
            let (sealed, drained) = buffer.seal_some();
            if drained {
                self.dirty.pop_front();
                buffer.queued = false;
            }
            // Otherwise the connection stays first in line until its last buffer is out.
            let Some(bytes) = sealed else {
                continue;
            };
            buffer.in_flight += bytes.len();
            return Some(Transmit {
                to: id,
                payload: Payload::Bytes(bytes),
            });
        }
        None
    }

    pub fn len(&self) -> usize {
        self.buffers.len()
    }

    /// Frees the retained capacity of every buffer with nothing waiting in it. Called now and
    /// then (the server's sweep): a busy connection reallocates its buffer at most once per
    /// call, and an idle one, most of them on a big server, stops holding 1 KiB it does not
    /// use (a tenth of what a connection costs, measured at 10,000 idle).
    pub fn release_idle(&mut self) {
        for buffer in self.buffers.values_mut() {
            if buffer.bytes.is_empty() && buffer.bytes.capacity() > 0 {
                buffer.bytes = Vec::new();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::FrameDecoder;
    use crate::secure::{Opener, RecordReader};
    use crate::wire::{Ack, FileMessage, PeerFrame, TransferId};

    const MAX_FRAME: usize = 64 * 1024;

    /// Small frames (acks) and chunk frames of `size` bytes, in the order given.
    fn frames(sizes: &[usize]) -> Vec<PeerFrame> {
        let sizes = sizes.iter().enumerate();
        sizes
            .map(|(i, &n)| match n {
                0 => PeerFrame::Ack(Ack {
                    epoch: 1,
                    through: i as u64,
                }),
                n => PeerFrame::File(FileMessage::Chunk {
                    id: TransferId(i as u64),
                    offset: 0,
                    data: Payload::from(vec![i as u8; n]),
                }),
            })
            .collect()
    }

    /// An outbound with connection 1 open and its handshake through, and the far end's opener.
    fn sealed(max_frame: usize, max_pending: usize) -> (Outbound<u8>, Opener) {
        let (ours, theirs) = crate::secure::test_channel();
        let mut outbound = Outbound::new(max_frame, max_pending);
        outbound.open(1);
        outbound.start_sealing(1, ours.sealer);
        (outbound, theirs.opener)
    }

    fn drain(outbound: &mut Outbound<u8>) -> Vec<Bytes> {
        let bytes = |t: Transmit<u8>| t.payload.into_bytes().expect("no file spans sent here");
        std::iter::from_fn(|| outbound.poll_transmit().map(bytes)).collect()
    }

    /// What the far end reads out of `transmits`.
    fn decode(opener: &mut Opener, transmits: &[Bytes]) -> Vec<PeerFrame> {
        let mut records = RecordReader::default();
        let mut plain = Vec::new();
        for bytes in transmits {
            let mut input = &bytes[..];
            while let Some(record) = records.next(&mut input) {
                opener.open(record, &mut plain).expect("records open");
            }
        }
        let mut decoder = FrameDecoder::new(MAX_FRAME);
        let mut decoded = Vec::new();
        let mut input = &plain[..];
        while let Some(frame) = decoder.decode(&mut input).expect("valid frames") {
            decoded.push(frame);
        }
        decoded
    }

    #[test]
    fn frames_leave_sealed_in_order_and_count_until_written() {
        let (mut outbound, mut opener) = sealed(MAX_FRAME, 1024 * 1024);
        let sent = frames(&[0, 32 * 1024, 0, 0, 100, 32 * 1024, 32 * 1024, 0]);
        for frame in &sent {
            outbound.send(1, frame).expect("queued");
        }
        let transmits = drain(&mut outbound);
        assert_eq!(decode(&mut opener, &transmits), sent);
        let on_wire = transmits.iter().map(Bytes::len).sum::<usize>();
        assert_eq!(outbound.pending(1), on_wire, "in flight until written");
        // Chunk data is sealed: its bytes (a run of one value) are nowhere on the wire.
        let run = [5u8; 64];
        assert!(!transmits.iter().any(|t| t.windows(64).any(|w| w == run)));
        outbound.written(1, on_wire);
        assert_eq!(outbound.pending(1), 0);
    }

    /// A busy connection keeps its buffer between transmits; `release_idle` takes it from an
    /// idle one, leaves a buffer with frames waiting alone, and the next frame allocates anew.
    #[test]
    fn release_idle_frees_the_buffers_of_quiet_connections_only() {
        let (mut outbound, mut opener) = sealed(MAX_FRAME, 1024 * 1024);
        let capacity = |outbound: &Outbound<u8>| outbound.buffers[&1].bytes.capacity();
        let sent = frames(&[0, 0]);
        outbound.send(1, &sent[0]).expect("queued");
        let mut transmits = drain(&mut outbound);
        assert!(capacity(&outbound) >= RETAINED_CAPACITY, "kept while busy");
        outbound.send(1, &sent[1]).expect("queued");
        outbound.release_idle();
        assert!(capacity(&outbound) > 0, "a frame is waiting in it");
        transmits.extend(drain(&mut outbound));
        outbound.release_idle();
        assert_eq!(capacity(&outbound), 0, "idle: nothing held");
        outbound.send(1, &sent[0]).expect("queued");
        transmits.extend(drain(&mut outbound));
        let expected = [&sent[..], &sent[..1]].concat();
        assert_eq!(decode(&mut opener, &transmits), expected);
    }

    #[test]
    fn frames_queued_during_the_handshake_wait_and_never_leave_if_it_fails() {
        let mut outbound = Outbound::new(MAX_FRAME, 1024 * 1024);
        outbound.open(1);
        outbound.send_handshake(1, vec![0, 2, 9, 9]).unwrap();
        outbound.send(1, &frames(&[0])[0]).expect("queued");
        assert_eq!(
            drain(&mut outbound),
            vec![Bytes::from_static(&[0, 2, 9, 9])]
        );
        outbound.close(1);
        assert!(
            drain(&mut outbound).is_empty(),
            "the frame was never sealed, so never sent"
        );
    }

    #[test]
    fn a_file_span_is_refused_on_an_encrypted_link() {
        use crate::transmit::FileSpan;
        let (mut outbound, _) = sealed(MAX_FRAME, 1024 * 1024);
        let span = PeerFrame::File(FileMessage::Chunk {
            id: TransferId(9),
            offset: 0,
            data: Payload::File(FileSpan {
                file: std::sync::Arc::new(()),
                offset: 0,
                len: 100,
            }),
        });
        assert_eq!(outbound.send(1, &span), Err(QueueError::TooLarge));
        assert!(outbound.poll_transmit().is_none(), "nothing of it goes out");
    }

    #[test]
    fn a_file_span_too_big_for_one_frame_is_refused() {
        use crate::transmit::{FileSpan, MAX_SPAN_IN_FRAME};
        let (mut outbound, _) = sealed(1024 * 1024, 1024 * 1024);
        let too_big = PeerFrame::File(FileMessage::Chunk {
            id: TransferId(9),
            offset: 0,
            data: Payload::File(FileSpan {
                file: std::sync::Arc::new(()),
                offset: 0,
                len: MAX_SPAN_IN_FRAME + 1,
            }),
        });
        assert_eq!(outbound.send(1, &too_big), Err(QueueError::TooLarge));
        assert!(outbound.poll_transmit().is_none(), "nothing of it goes out");
    }

    #[test]
    fn the_bound_counts_cut_off_buffers_and_chunks_too() {
        let (mut outbound, _) = sealed(MAX_FRAME, 64 * 1024);
        let big = frames(&[40 * 1024]).remove(0);
        outbound.send(1, &big).expect("under the bound");
        outbound
            .send(1, &big)
            .expect("the bound is checked before a frame");
        assert_eq!(outbound.send(1, &big), Err(QueueError::Full));
    }

    #[test]
    fn a_closed_connection_still_writes_its_last_words_in_order() {
        let (mut outbound, mut opener) = sealed(MAX_FRAME, 1024 * 1024);
        let sent = frames(&[32 * 1024, 0, 32 * 1024, 0]);
        for frame in &sent {
            outbound.send(1, frame).expect("queued");
        }
        outbound.close(1);
        assert_eq!(decode(&mut opener, &drain(&mut outbound)), sent);
        assert_eq!(outbound.send(1, &sent[0]), Err(QueueError::Closed));
    }

    #[test]
    fn a_chunk_too_big_for_the_frame_limit_is_refused_and_leaves_nothing_behind() {
        let (mut outbound, mut opener) = sealed(16 * 1024, 1024 * 1024);
        let sent = frames(&[0, 20 * 1024]);
        outbound.send(1, &sent[0]).expect("queued");
        assert_eq!(outbound.send(1, &sent[1]), Err(QueueError::TooLarge));
        assert_eq!(decode(&mut opener, &drain(&mut outbound)), sent[..1]);
    }
}
