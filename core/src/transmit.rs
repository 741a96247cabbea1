//! What the cores hand their driver to write: one [`Transmit`] per connection and burst, whose
//! [`Payload`] is bytes in memory or a [`FileSpan`] of a file the host has open.
//!
//! None of this is a wire format (that is [`crate::wire`]): it is the boundary between a core
//! and the driver that writes its output. A file chunk's data is a `Payload` too, because on its
//! way out it may still be a span of the file.
//!
//! A sender's chunks need not pass through the process at all: the host can answer a read with
//! a [`FileSpan`] instead of the bytes, the core cuts it into chunks like any read, and the
//! driver writes each chunk's span from the file straight to the socket (`sendfile`), after the
//! frame's header. The core only carries the span; it never reads the file.

use bytes::Bytes;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::any::Any;
use std::fmt;
use std::sync::Arc;

/// Bytes for the driver to write, in order, to one connection: in memory, or a span of a
/// file the host handed the core for a chunk (see [`Payload`]).
///
/// A host that never answers [`Action::ReadFile`](crate::client::Action::ReadFile) with a
/// span (and every server host: the server never reads files) only ever gets bytes, and can
/// take them with [`unwrap_bytes`](Transmit::unwrap_bytes) instead of matching.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Transmit<Id> {
    /// The connection to write to, in the core's own terms (the driver maps it to a socket).
    pub to: Id,
    /// What to write.
    pub payload: Payload,
}

impl<Id> Transmit<Id> {
    /// The bytes to write, for a host that never hands the core file spans.
    ///
    /// # Panics
    ///
    /// If the payload is a [`FileSpan`]: only a host that answered a read with
    /// [`handle_file_payload`](crate::Client::handle_file_payload) and a span gets one.
    pub fn unwrap_bytes(&self) -> &Bytes {
        self.payload.unwrap_bytes()
    }
}

/// The most bytes one [`FileSpan`] may hold inside a frame: the chunk size.
pub const MAX_SPAN_IN_FRAME: usize = crate::transfer::CHUNK_SIZE;

/// Stands for a span's bytes while its frame is encoded: the encoder recognises these very
/// bytes (by address) as the frame's tail and leaves them out, and refuses the frame if they
/// would be written (see [`crate::codec::SharedTail`]). They never reach a connection.
static SPAN_STAND_IN: [u8; MAX_SPAN_IN_FRAME] = [0; MAX_SPAN_IN_FRAME];

/// `len` bytes at `offset` of a file the host opened: `file` is the host's own handle, opaque
/// to the core, which the driver that made it knows how to write from.
#[derive(Clone)]
pub struct FileSpan {
    /// The host's open file, opaque to the core.
    pub file: Arc<dyn Any + Send + Sync>,
    /// Where in the file the span starts.
    pub offset: u64,
    /// How many bytes it covers.
    pub len: usize,
}

impl FileSpan {
    /// The first `n` bytes (at most all of them), leaving the rest in `self`.
    pub fn split_to(&mut self, n: usize) -> FileSpan {
        let n = n.min(self.len);
        let head = FileSpan {
            file: self.file.clone(),
            offset: self.offset,
            len: n,
        };
        self.offset += n as u64;
        self.len -= n;
        head
    }

    /// What the encoder writes in place of the bytes (and then leaves out); `None` when the
    /// span is too big to go in one frame.
    pub(crate) fn stand_in(&self) -> Option<&'static [u8]> {
        SPAN_STAND_IN.get(..self.len)
    }
}

impl fmt::Debug for FileSpan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileSpan")
            .field("file", &Arc::as_ptr(&self.file))
            .field("offset", &self.offset)
            .field("len", &self.len)
            .finish()
    }
}

/// The same bytes of the same open file.
impl PartialEq for FileSpan {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.file, &other.file) && self.offset == other.offset && self.len == other.len
    }
}

impl Eq for FileSpan {}

/// Bytes for a connection, or a chunk's data: in memory, or still in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// Bytes in memory.
    Bytes(Bytes),
    /// A span of a file the host has open, for the driver to write from the file itself.
    File(FileSpan),
}

impl Payload {
    /// How many bytes this stands for, in memory or in the file.
    pub fn len(&self) -> usize {
        match self {
            Payload::Bytes(bytes) => bytes.len(),
            Payload::File(span) => span.len,
        }
    }

    /// Nothing to write.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The first `n` bytes (at most all of them), leaving the rest in `self`.
    pub fn split_to(&mut self, n: usize) -> Payload {
        match self {
            Payload::Bytes(bytes) => Payload::Bytes(bytes.split_to(n.min(bytes.len()))),
            Payload::File(span) => Payload::File(span.split_to(n)),
        }
    }

    /// The bytes, when they are in memory.
    pub fn as_bytes(&self) -> Option<&Bytes> {
        match self {
            Payload::Bytes(bytes) => Some(bytes),
            Payload::File(_) => None,
        }
    }

    /// The bytes, for a host that never hands the core file spans.
    ///
    /// # Panics
    ///
    /// If this is a [`FileSpan`] (see [`Transmit::unwrap_bytes`]).
    pub fn unwrap_bytes(&self) -> &Bytes {
        match self {
            Payload::Bytes(bytes) => bytes,
            Payload::File(span) => panic!(
                "a file span of {} bytes where only bytes were expected: this host handed the \
                 core a span",
                span.len
            ),
        }
    }

    /// The bytes, when they are in memory.
    pub fn into_bytes(self) -> Option<Bytes> {
        match self {
            Payload::Bytes(bytes) => Some(bytes),
            Payload::File(_) => None,
        }
    }
}

impl From<Bytes> for Payload {
    fn from(bytes: Bytes) -> Self {
        Payload::Bytes(bytes)
    }
}

impl From<Vec<u8>> for Payload {
    fn from(bytes: Vec<u8>) -> Self {
        Payload::Bytes(bytes.into())
    }
}

/// One byte string, as `serde_bytes` writes a `Vec<u8>`. A span writes its stand-in, which
/// only the frame encoder should ever see (it leaves those bytes out, or refuses the frame).
impl Serialize for Payload {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Payload::Bytes(bytes) => serializer.serialize_bytes(bytes),
            Payload::File(span) => match span.stand_in() {
                Some(stand_in) => serializer.serialize_bytes(stand_in),
                None => Err(serde::ser::Error::custom(
                    "a file span too big for one frame",
                )),
            },
        }
    }
}

/// Always bytes: what arrives from a connection is in memory.
impl<'de> Deserialize<'de> for Payload {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Bytes::deserialize(deserializer).map(Payload::Bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(offset: u64, len: usize) -> FileSpan {
        FileSpan {
            file: Arc::new(()),
            offset,
            len,
        }
    }

    #[test]
    fn a_span_splits_into_consecutive_spans_of_the_same_file() {
        let mut rest = span(100, 10);
        let head = rest.split_to(4);
        assert_eq!((head.offset, head.len), (100, 4));
        assert_eq!((rest.offset, rest.len), (104, 6));
        assert!(Arc::ptr_eq(&head.file, &rest.file));
        let all = rest.split_to(99);
        assert_eq!((all.offset, all.len, rest.len), (104, 6, 0));
    }

    #[test]
    fn a_span_too_big_for_a_frame_does_not_serialize() {
        let too_big = Payload::File(span(0, MAX_SPAN_IN_FRAME + 1));
        assert!(postcard::to_stdvec(&too_big).is_err());
    }

    #[test]
    fn payload_bytes_round_trip_as_one_byte_string() {
        let payload = Payload::from(vec![1u8, 2, 3]);
        let encoded = postcard::to_stdvec(&payload).expect("encodes");
        assert_eq!(encoded, [3, 1, 2, 3]);
        assert_eq!(postcard::from_bytes::<Payload>(&encoded), Ok(payload));
    }
}
