//! File transfer messages, carried direct (`PeerFrame::File`) or through the server relay
//! (`ClientFrame::RelayFile` / `ServerFrame::RelayedFile`) unchanged.
//!
//! The sender offers; the receiver accepts from an offset (0, or what it already holds from an
//! earlier attempt) and grants credit; the sender sends chunks within the credit; the receiver
//! reports how far it has accepted and extends the credit as its host writes; at the end the
//! receiver's host checks the content hash and the receiver reports the verdict.

use crate::transmit::Payload;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A transfer id chosen by the sending application, unique among its transfers. Choosing it
/// from the file itself lets a restarted sender offer the same transfer again and resume.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub struct TransferId(pub u64);

impl fmt::Display for TransferId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// Longest file name accepted, in bytes.
pub const MAX_FILE_NAME: usize = 255;

/// A file name safe to create in a directory the receiver chose: one path component, no
/// separators, no `.`/`..`, no control characters, no names Windows reserves. Checked on
/// deserialisation too, so a hostile offer cannot carry `../../.bashrc`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct FileName(String);

/// Why a string is not a [`FileName`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileNameError {
    /// Names must not be empty.
    Empty,
    /// Longer than [`MAX_FILE_NAME`] bytes.
    TooLong,
    /// `/`, `\`, NUL or another control character.
    BadCharacter,
    /// `.`, `..`, or a name Windows reserves (`CON`, `NUL`, `COM1`…).
    Reserved,
}

impl FileName {
    /// Checks `name`; the only way to make a `FileName`, so every one is safe to join to a
    /// directory.
    pub fn new(name: impl Into<String>) -> Result<Self, FileNameError> {
        let name = name.into();
        if name.is_empty() {
            return Err(FileNameError::Empty);
        }
        if name.len() > MAX_FILE_NAME {
            return Err(FileNameError::TooLong);
        }
        if name
            .chars()
            .any(|c| c == '/' || c == '\\' || c.is_control())
        {
            return Err(FileNameError::BadCharacter);
        }
        let stem = name
            .split('.')
            .next()
            .unwrap_or_default()
            .trim_end()
            .to_ascii_uppercase();
        let reserved_stem = matches!(stem.as_str(), "CON" | "PRN" | "AUX" | "NUL")
            || ((stem.starts_with("COM") || stem.starts_with("LPT"))
                && stem.len() == 4
                && stem.as_bytes()[3].is_ascii_digit());
        if name == "." || name == ".." || reserved_stem || name.ends_with(['.', ' ']) {
            return Err(FileNameError::Reserved);
        }
        Ok(FileName(name))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for FileName {
    type Error = FileNameError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        FileName::new(value)
    }
}

impl Serialize for FileName {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl fmt::Display for FileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for FileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl fmt::Display for FileNameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileNameError::Empty => "file name is empty",
            FileNameError::TooLong => "file name is longer than 255 bytes",
            FileNameError::BadCharacter => {
                "file name contains a path separator or control character"
            }
            FileNameError::Reserved => "file name is reserved",
        })
    }
}

impl std::error::Error for FileNameError {}

/// One file transfer message, on a direct channel or through the relay: the same messages
/// either way, so a transfer can change route mid-way.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub enum FileMessage {
    /// Sender → receiver. Offered again (same id, `repeat`) when the receiver has been silent
    /// a while: the answer tells the sender where the receiver stands, whatever was lost. A
    /// fresh offer (the user offering again) reopens a finished, declined or cancelled one.
    Offer {
        /// The sender's id for the transfer, unique per sender.
        id: TransferId,
        /// The name the receiver may save it under.
        name: FileName,
        /// Its size in bytes.
        size: u64,
        /// Its BLAKE3 hash, checked by the receiver once every byte is written.
        hash: [u8; 32],
        /// A repetition of an offer already made, not the user offering again.
        repeat: bool,
    },
    /// Receiver → sender: send from `offset`; credit up to `offset + window`.
    Accept {
        /// The transfer.
        id: TransferId,
        /// Where to start: what the receiver already holds.
        offset: u64,
        /// How much the sender may send beyond what the receiver accepted.
        window: u64,
    },
    /// Receiver → sender: no, thanks.
    Decline {
        /// The transfer.
        id: TransferId,
    },
    /// Either side gives up; `by_sender` says which side's transfer id `id` is.
    Cancel {
        /// The transfer.
        id: TransferId,
        /// The sender cancelled (else the receiver did).
        by_sender: bool,
    },
    /// Sender → receiver: file data, only within the receiver's credit.
    Chunk {
        /// The transfer.
        id: TransferId,
        /// Where in the file the data belongs.
        offset: u64,
        /// One byte string on the wire (as `serde_bytes` would write a `Vec<u8>`); always
        /// bytes when received, a span of the file when a host lets the sender's driver
        /// write the file as it is.
        data: Payload,
    },
    /// Receiver → sender: bytes up to `accepted` arrived in order; credit up to `credit_end`.
    /// `resync` asks the sender to continue from `accepted` (a chunk arrived out of place).
    Progress {
        /// The transfer.
        id: TransferId,
        /// Bytes arrived in order and written.
        accepted: u64,
        /// The sender may send up to here.
        credit_end: u64,
        /// Continue from `accepted`: something arrived out of place.
        resync: bool,
    },
    /// Receiver → sender: all bytes arrived; `verified` says whether the hash matched.
    Done {
        /// The transfer.
        id: TransferId,
        /// The file matched the offered hash.
        verified: bool,
    },
}

/// Chunk data at least this big is written out as it is, not copied (a copy of less costs
/// less than the extra buffer).
pub(crate) const SHARED_DATA_MIN: usize = 8 * 1024;

/// `Chunk`'s variant index, as postcard writes it (a varint before the fields).
const CHUNK_MESSAGE: u32 = 4;

impl FileMessage {
    /// `encoded`, the whole rest of a frame, as a `Chunk` with its data shared from `source`
    /// (see [`Frame::parse_in`](crate::codec::Frame::parse_in)); `None` when it is anything
    /// else, including a malformed chunk, which the ordinary decode then refuses.
    pub(crate) fn chunk_in(encoded: &[u8], source: &Bytes) -> Option<FileMessage> {
        let rest = crate::codec::variant_fields(encoded, CHUNK_MESSAGE)?;
        let fields = postcard::take_from_bytes::<(TransferId, u64, &[u8])>(rest);
        let Ok(((id, offset, data), [])) = fields else {
            return None;
        };
        let data = Payload::Bytes(crate::codec::share(source, data));
        Some(FileMessage::Chunk { id, offset, data })
    }

    /// A chunk's data, when it is a file span or big enough to be worth writing out from
    /// where it is rather than copying it into a connection's output (see
    /// [`SharedTail`](crate::codec::SharedTail)). It is the message's last field.
    pub(crate) fn shared_data(&self) -> Option<&Payload> {
        match self {
            FileMessage::Chunk {
                data: data @ Payload::File(_),
                ..
            } => Some(data),
            FileMessage::Chunk { data, .. } if data.len() >= SHARED_DATA_MIN => Some(data),
            _ => None,
        }
    }

    /// The transfer this message is about, whichever kind it is.
    pub fn id(&self) -> TransferId {
        match self {
            FileMessage::Offer { id, .. }
            | FileMessage::Accept { id, .. }
            | FileMessage::Decline { id }
            | FileMessage::Cancel { id, .. }
            | FileMessage::Chunk { id, .. }
            | FileMessage::Progress { id, .. }
            | FileMessage::Done { id, .. } => *id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Chunk data is one length-prefixed byte string, exactly as `serde_bytes` writes a
    /// `Vec<u8>`, and not a sequence of single bytes.
    #[test]
    fn chunk_data_is_one_byte_string_on_the_wire() {
        #[derive(Serialize)]
        enum Reference {
            _Offer,
            _Accept,
            _Decline,
            _Cancel,
            Chunk {
                id: TransferId,
                offset: u64,
                #[serde(with = "serde_bytes")]
                data: Vec<u8>,
            },
        }
        let data: Vec<u8> = (0..=255).cycle().take(1000).collect();
        let (id, offset) = (TransferId(7), 1 << 40);
        let ours = FileMessage::Chunk {
            id,
            offset,
            data: Payload::from(data.clone()),
        };
        let reference = Reference::Chunk { id, offset, data };
        let encoded = postcard::to_stdvec(&ours).expect("encodes");
        assert_eq!(encoded, postcard::to_stdvec(&reference).expect("encodes"));
        assert_eq!(postcard::from_bytes::<FileMessage>(&encoded), Ok(ours));
    }
}
