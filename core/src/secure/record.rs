//! The record layer: after the handshake, everything on a connection is a sequence of records,
//! each a 2-byte big-endian length and that many bytes of AES-GCM ciphertext (tag included).
//!
//! Records cut the byte stream of frames wherever they like: one record may hold many small
//! frames (a burst of chat costs one seal, not one per frame) and a big frame may span several.
//! Each direction counts its records, and the count is the nonce: a record replayed, dropped,
//! reordered or forged fails authentication, and the connection is closed. A record is at most
//! [`MAX_RECORD`] bytes, so the reader never holds more than one record's worth.

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use std::fmt;

/// Bytes in a record's length prefix.
const HEADER: usize = 2;
/// AES-GCM's tag.
const TAG: usize = 16;
/// The largest record on the wire, after its length prefix (Noise's message limit).
pub const MAX_RECORD: usize = u16::MAX as usize;
/// The most plaintext one record carries.
pub const MAX_RECORD_PAYLOAD: usize = MAX_RECORD - TAG;

/// Why the bytes of a connection cannot be opened. Once returned the connection is done:
/// the next record's nonce would be wrong anyway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordError {
    /// A record too short to hold even its tag.
    Truncated,
    /// A record that does not authenticate: forged, replayed, reordered or damaged.
    Forged,
    /// The record counter ran out (2⁶⁴ records): the connection must start over.
    Exhausted,
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RecordError::Truncated => "encrypted record shorter than its tag",
            RecordError::Forged => "encrypted record failed authentication",
            RecordError::Exhausted => "record counter exhausted",
        })
    }
}

impl std::error::Error for RecordError {}

/// The sending half of an established channel: AES-256-GCM under this direction's key from
/// the handshake, the record's number as the nonce (as Noise's transport messages are made).
pub struct Sealer {
    cipher: LessSafeKey,
    nonce: u64,
}

/// The receiving half of an established channel.
pub struct Opener {
    cipher: LessSafeKey,
    nonce: u64,
}

/// Noise's nonce for AES-GCM: four zero bytes, then the counter big-endian. Each direction
/// counts its own records and never reuses a number (the sealer refuses the last one).
fn nonce(counter: u64) -> Nonce {
    let mut bytes = [0u8; 12];
    bytes[4..].copy_from_slice(&counter.to_be_bytes());
    Nonce::assume_unique_for_key(bytes)
}

fn keyed(key: [u8; 32]) -> LessSafeKey {
    let key = UnboundKey::new(&AES_256_GCM, &key)
        .unwrap_or_else(|_| unreachable!("a 32-byte key is an AES-256 key"));
    LessSafeKey::new(key)
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sealer(record {})", self.nonce)
    }
}

impl fmt::Debug for Opener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Opener(record {})", self.nonce)
    }
}

/// Both halves of a channel whose handshake just finished, from the handshake's two keys
/// (the initiator sends with the first).
pub(crate) fn split(send: [u8; 32], receive: [u8; 32]) -> (Sealer, Opener) {
    (
        Sealer {
            cipher: keyed(send),
            nonce: 0,
        },
        Opener {
            cipher: keyed(receive),
            nonce: 0,
        },
    )
}

impl Sealer {
    /// Appends `plain` to `out` as records, each as big as it may be.
    pub fn seal(&mut self, plain: &[u8], out: &mut Vec<u8>) -> Result<(), RecordError> {
        let records = plain.len().div_ceil(MAX_RECORD_PAYLOAD).max(1);
        out.reserve(plain.len() + records * (HEADER + TAG));
        for part in plain.chunks(MAX_RECORD_PAYLOAD) {
            if self.nonce == u64::MAX {
                // Noise reserves the last nonce: the channel must start over.
                return Err(RecordError::Exhausted);
            }
            let start = out.len();
            out.extend_from_slice(&((part.len() + TAG) as u16).to_be_bytes());
            out.extend_from_slice(part);
            let tag = self
                .cipher
                .seal_in_place_separate_tag(
                    nonce(self.nonce),
                    Aad::empty(),
                    &mut out[start + HEADER..],
                )
                .map_err(|_| RecordError::Exhausted)?;
            out.extend_from_slice(tag.as_ref());
            self.nonce += 1;
        }
        Ok(())
    }

    /// `plain` as one buffer of records.
    pub fn seal_to_vec(&mut self, plain: &[u8]) -> Result<Vec<u8>, RecordError> {
        let mut out = Vec::new();
        self.seal(plain, &mut out)?;
        Ok(out)
    }
}

impl Opener {
    /// Appends the plaintext of one record to `out`.
    pub fn open(&mut self, record: &[u8], out: &mut Vec<u8>) -> Result<(), RecordError> {
        if record.len() < TAG {
            return Err(RecordError::Truncated);
        }
        if self.nonce == u64::MAX {
            return Err(RecordError::Exhausted);
        }
        let start = out.len();
        out.extend_from_slice(record);
        let opened = self
            .cipher
            .open_in_place(nonce(self.nonce), Aad::empty(), &mut out[start..])
            .map(|plain| plain.len());
        match opened {
            Ok(len) => {
                out.truncate(start + len);
                self.nonce += 1;
                Ok(())
            }
            Err(_) => {
                out.truncate(start);
                Err(RecordError::Forged)
            }
        }
    }
}

/// Cuts a byte stream, arriving in any chunks, into records (handshake messages or sealed
/// records: both are length-prefixed the same way). It copies only a record that arrives in
/// pieces, and never holds more than one record.
#[derive(Debug, Default)]
pub struct RecordReader {
    partial: Vec<u8>,
    /// `partial` holds a whole record that was handed out: start afresh on the next call.
    handed_out: bool,
}

impl RecordReader {
    /// The next whole record, taken from `input` (advanced past what was used), or `None` once
    /// `input` is used up without completing one.
    pub fn next<'s, 'i: 's>(&'s mut self, input: &mut &'i [u8]) -> Option<&'s [u8]> {
        if self.handed_out {
            self.partial.clear();
            self.handed_out = false;
        }
        if self.partial.is_empty() {
            if let Some(len) = record_len(input) {
                if input.len() >= HEADER + len {
                    let (record, rest) = input.split_at(HEADER + len);
                    *input = rest;
                    return Some(&record[HEADER..]);
                }
            }
        }
        // Gather the header first, then exactly the rest of this record.
        let want_header = HEADER.saturating_sub(self.partial.len());
        let (head, rest) = input.split_at(want_header.min(input.len()));
        self.partial.extend_from_slice(head);
        *input = rest;
        let len = record_len(&self.partial)?;
        let missing = HEADER + len - self.partial.len();
        let (body, rest) = input.split_at(missing.min(input.len()));
        self.partial.extend_from_slice(body);
        *input = rest;
        if self.partial.len() < HEADER + len {
            return None;
        }
        self.handed_out = true;
        Some(&self.partial[HEADER..])
    }
}

fn record_len(bytes: &[u8]) -> Option<usize> {
    let header: [u8; HEADER] = bytes.get(..HEADER)?.try_into().ok()?;
    Some(u16::from_be_bytes(header) as usize)
}

/// `message` (a handshake message) with its length prefix, as it goes on the wire.
pub(crate) fn framed(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + message.len());
    out.extend_from_slice(&(message.len().min(MAX_RECORD) as u16).to_be_bytes());
    out.extend_from_slice(&message[..message.len().min(MAX_RECORD)]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(stream: &[u8], chunk: usize) -> Vec<Vec<u8>> {
        let mut reader = RecordReader::default();
        let mut out = Vec::new();
        for piece in stream.chunks(chunk.max(1)) {
            let mut input = piece;
            while let Some(record) = reader.next(&mut input) {
                out.push(record.to_vec());
            }
            assert!(input.is_empty());
        }
        out
    }

    #[test]
    fn records_come_out_whole_whatever_the_chunking() {
        let mut stream = Vec::new();
        let bodies: Vec<Vec<u8>> = vec![vec![1; 3], vec![], vec![2; 70_000 % 65_535], vec![3]];
        for body in &bodies {
            stream.extend(framed(body));
        }
        for chunk in [1, 2, 3, 7, 100, 1 << 20] {
            assert_eq!(records(&stream, chunk), bodies, "chunks of {chunk}");
        }
    }
}
