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

/// Bytes one record adds to its plaintext on the wire: the length prefix and the tag.
pub const RECORD_OVERHEAD: usize = HEADER + TAG;

/// A record holding this much plaintext at the end of a part is closed there (see
/// [`Sealer::seal_all`]).
pub const RECORD_AT_PART_END: usize = 16 * 1024;

/// Bytes on the wire for `plain` bytes sealed as one buffer ([`Sealer::seal`]): a length
/// prefix and a tag per record. [`Sealer::seal_all`] may end a record at each part besides.
pub fn sealed_len(plain: usize) -> usize {
    plain + plain.div_ceil(MAX_RECORD_PAYLOAD) * RECORD_OVERHEAD
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
        out.reserve(sealed_len(plain.len()));
        self.seal_all([plain], out)
    }

    /// Appends `parts`, one stream of plaintext, to `out` as records: each byte is copied once
    /// (into `out`, where it is encrypted in place), small parts share a record, and a record
    /// that holds [`RECORD_AT_PART_END`] bytes ends with its part. Parts end at frames (a
    /// chunk's data ends its frame), so a chunk frame's header and data share a record that
    /// ends with the frame, and the receiver decodes the chunk where the record was opened.
    pub fn seal_all<'p>(
        &mut self,
        parts: impl IntoIterator<Item = &'p [u8]>,
        out: &mut Vec<u8>,
    ) -> Result<(), RecordError> {
        // Where the record being filled starts (its length prefix), if one is open.
        let mut open: Option<usize> = None;
        for mut part in parts {
            while !part.is_empty() {
                let start = *open.get_or_insert_with(|| {
                    out.reserve(HEADER + part.len().min(MAX_RECORD_PAYLOAD) + TAG);
                    out.extend_from_slice(&[0; HEADER]);
                    out.len() - HEADER
                });
                let room = MAX_RECORD_PAYLOAD - (out.len() - start - HEADER);
                let (now, rest) = part.split_at(room.min(part.len()));
                out.extend_from_slice(now);
                part = rest;
                if out.len() - start - HEADER == MAX_RECORD_PAYLOAD {
                    self.close_record(start, out)?;
                    open = None;
                }
            }
            if let Some(start) = open {
                if out.len() - start - HEADER >= RECORD_AT_PART_END {
                    self.close_record(start, out)?;
                    open = None;
                }
            }
        }
        match open {
            Some(start) => self.close_record(start, out),
            None => Ok(()),
        }
    }

    /// Seals the record whose length prefix is at `start` and whose plaintext runs to the end
    /// of `out`: the prefix is filled in and the tag appended.
    fn close_record(&mut self, start: usize, out: &mut Vec<u8>) -> Result<(), RecordError> {
        if self.nonce == u64::MAX {
            // Noise reserves the last nonce: the channel must start over.
            out.truncate(start);
            return Err(RecordError::Exhausted);
        }
        let len = out.len() - start - HEADER + TAG;
        out[start..start + HEADER].copy_from_slice(&(len as u16).to_be_bytes());
        let tag = self
            .cipher
            .seal_in_place_separate_tag(nonce(self.nonce), Aad::empty(), &mut out[start + HEADER..])
            .map_err(|_| RecordError::Exhausted)?;
        out.extend_from_slice(tag.as_ref());
        self.nonce += 1;
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
        let start = out.len();
        out.extend_from_slice(record);
        match self.open_in_place(&mut out[start..]) {
            Ok(len) => {
                out.truncate(start + len);
                Ok(())
            }
            Err(error) => {
                out.truncate(start);
                Err(error)
            }
        }
    }

    /// Opens one record where it lies: its plaintext is then the first bytes of `record`,
    /// as many as returned.
    pub fn open_in_place(&mut self, record: &mut [u8]) -> Result<usize, RecordError> {
        if record.len() < TAG {
            return Err(RecordError::Truncated);
        }
        if self.nonce == u64::MAX {
            return Err(RecordError::Exhausted);
        }
        let opened = self
            .cipher
            .open_in_place(nonce(self.nonce), Aad::empty(), record)
            .map(|plain| plain.len())
            .map_err(|_| RecordError::Forged)?;
        self.nonce += 1;
        Ok(opened)
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
    /// A record is partly gathered: the next bytes continue it.
    pub fn in_progress(&self) -> bool {
        !self.handed_out && !self.partial.is_empty()
    }

    /// [`next`](RecordReader::next) for a record begun by an earlier read: the record whole,
    /// as memory of its own to be opened in place, and where its body starts in it (after the
    /// length prefix).
    pub fn next_owned(&mut self, input: &mut &[u8]) -> Option<(Vec<u8>, usize)> {
        self.next(input)?;
        self.handed_out = false;
        Some((std::mem::take(&mut self.partial), HEADER))
    }

    /// The whole record whose length prefix starts at `at` in `bytes`, if all of it is there:
    /// the range of its body, and where it ends.
    pub fn whole_at(bytes: &[u8], at: usize) -> Option<(std::ops::Range<usize>, usize)> {
        let len = record_len(bytes.get(at..)?)?;
        let end = at + HEADER + len;
        (end <= bytes.len()).then_some((at + HEADER..end, end))
    }

    /// The next whole record, taken from `input` (advanced past what was used), or `None` once
    /// `input` is used up without completing one.
    pub fn next<'s, 'i: 's>(&'s mut self, input: &mut &'i [u8]) -> Option<&'s [u8]> {
        if self.handed_out {
            // Given back rather than cleared: a record split across reads would otherwise
            // leave its size allocated to this connection for good (see `FrameDecoder`).
            self.partial = Vec::new();
            self.handed_out = false;
        }
        if self.partial.is_empty() {
            if let Some((body, end)) = Self::whole_at(input, 0) {
                let whole: &'i [u8] = input;
                *input = &whole[end..];
                return Some(&whole[body]);
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
    fn a_record_split_across_reads_leaves_no_memory_behind_once_handed_out() {
        let stream = framed(&[4; 3000]);
        let mut reader = RecordReader::default();
        let (first, second) = stream.split_at(1000);
        let mut input = first;
        assert!(reader.next(&mut input).is_none());
        let mut input = second;
        assert_eq!(reader.next(&mut input).map(<[u8]>::len), Some(3000));
        let mut nothing: &[u8] = &[];
        assert!(reader.next(&mut nothing).is_none());
        assert_eq!(
            reader.partial.capacity(),
            0,
            "the record's memory is given back"
        );
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

    #[test]
    fn parts_are_sealed_as_one_stream_in_records_that_end_with_big_parts() {
        let (mut sealer, _) = split([7; 32], [9; 32]);
        let (_, mut opener) = split([9; 32], [7; 32]);
        // Small frames, then a chunk's header and data, twice; then one part over a record.
        let parts: Vec<Vec<u8>> = vec![
            vec![1; 40],
            vec![2; 32 * 1024],
            vec![],
            vec![3; 30],
            vec![4; 32 * 1024],
            vec![5; 100_000],
        ];
        let plain: Vec<u8> = parts.concat();
        let mut wire = Vec::new();
        sealer
            .seal_all(parts.iter().map(|p| &p[..]), &mut wire)
            .unwrap();
        let mut reader = RecordReader::default();
        let (mut input, mut opened, mut sizes) = (&wire[..], Vec::new(), Vec::new());
        while let Some(record) = reader.next(&mut input) {
            sizes.push(record.len() - TAG);
            opener.open(record, &mut opened).unwrap();
        }
        assert_eq!(opened, plain);
        assert_eq!(wire.len(), plain.len() + sizes.len() * RECORD_OVERHEAD);
        // Each chunk shares a record with the small frames before it and ends it; the big
        // part fills a record and ends one of its own.
        let chunk = 40 + 32 * 1024;
        assert_eq!(
            sizes,
            vec![
                chunk,
                30 + 32 * 1024,
                MAX_RECORD_PAYLOAD,
                100_000 - MAX_RECORD_PAYLOAD
            ]
        );
    }

    #[test]
    fn records_opened_in_place_match_records_opened_by_copy() {
        let (mut sealer, _) = split([7; 32], [9; 32]);
        let (_, mut opener) = split([9; 32], [7; 32]);
        let mut wire = Vec::new();
        sealer.seal(&[6; 50_000], &mut wire).unwrap();
        let mut reader = RecordReader::default();
        let mut input = &wire[..];
        let record = reader.next(&mut input).unwrap();
        let mut copy = record.to_vec();
        let plain = opener.open_in_place(&mut copy).unwrap();
        assert_eq!(&copy[..plain], &[6; 50_000][..]);
        // The counter moved on: the same record again is a replay.
        assert_eq!(
            opener.open_in_place(&mut record.to_vec()),
            Err(RecordError::Forged)
        );
    }
}
