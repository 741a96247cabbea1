//! The receiving side of any encrypted connection: handshake messages first, then records.

use super::record::{Opener, RecordError, RecordReader};
use crate::codec::{decode_each_in, DecodeError, Frame, FrameDecoder};
use bytes::Bytes;
use std::ops::Range;

/// A buffer a transport read into and hands over whole, so the records in it are opened where
/// they lie and the frames decoded from them (a file chunk's data) stay in it: no copy out,
/// and no fresh memory per read. The transport may give it back to a pool once the last
/// [`Bytes`] taken from it is dropped.
pub trait ReadOwner: AsRef<[u8]> + AsMut<[u8]> + Send + 'static {}

impl<T: AsRef<[u8]> + AsMut<[u8]> + Send + 'static> ReadOwner for T {}

/// What a transport read: bytes it keeps, or a buffer it hands over (`len` bytes of it read).
pub(crate) enum Read<'a> {
    Slice(&'a [u8]),
    Owned {
        buffer: Box<dyn ReadOwner>,
        len: usize,
    },
}

impl Read<'static> {
    /// The first `len` bytes of `buffer`, handed over whole (records are opened in it).
    pub(crate) fn owned(buffer: impl ReadOwner, len: usize) -> Self {
        Read::Owned {
            buffer: Box::new(buffer),
            len,
        }
    }
}

/// The owner as [`Bytes`] wants it.
struct Owned(Box<dyn ReadOwner>);

impl AsRef<[u8]> for Owned {
    fn as_ref(&self) -> &[u8] {
        (*self.0).as_ref()
    }
}

/// The plaintext of one read, in order: a record an earlier read began (opened in memory of
/// its own), then each record that lay whole in this read, opened where it lies.
#[derive(Debug, Default)]
pub(crate) struct Plain {
    head: Bytes,
    /// The read buffer, and where each record's plaintext is in it.
    read: Bytes,
    records: Vec<Range<usize>>,
}

impl Plain {
    pub fn is_empty(&self) -> bool {
        self.head.is_empty() && self.records.is_empty()
    }

    /// Decodes every whole frame, in order, until `on_frame` returns `false` (see
    /// [`decode_each_in`]). A frame within one record is a slice of the read buffer as it
    /// is; only one cut by a record's end is gathered (the sender ends records at frames).
    pub fn decode_each<T: Frame, S>(
        &self,
        decoder: &mut FrameDecoder,
        state: &mut S,
        mut on_frame: impl FnMut(&mut S, T) -> bool,
    ) -> Result<(), DecodeError> {
        let records = self
            .records
            .iter()
            .map(|range| self.read.slice(range.clone()));
        let mut going = true;
        for part in std::iter::once(self.head.clone()).chain(records) {
            if !going {
                break;
            }
            if part.is_empty() {
                continue;
            }
            decode_each_in(decoder, &part, state, |state, frame| {
                going = on_frame(state, frame);
                going
            })?;
        }
        Ok(())
    }
}

/// Cuts what a connection receives into handshake messages (handed to the link's state
/// machine) until the handshake yields an [`Opener`], and into opened records after that.
#[derive(Debug, Default)]
pub struct Inbound {
    records: RecordReader,
    opener: Option<Opener>,
}

impl Inbound {
    /// Reads `read` as [`read`](Inbound::read) does; returns the plaintext of the records.
    pub(crate) fn read_plain<E: From<RecordError>>(
        &mut self,
        read: Read<'_>,
        on_handshake: impl FnMut(&[u8]) -> Result<Option<Opener>, E>,
    ) -> Result<Plain, E> {
        match read {
            Read::Slice(bytes) => {
                // Plaintext is never longer than the records it comes from: one allocation.
                let mut plain = Vec::with_capacity(bytes.len());
                self.read(bytes, &mut plain, on_handshake)?;
                Ok(Plain {
                    head: Bytes::from(plain),
                    ..Plain::default()
                })
            }
            Read::Owned { buffer, len } => self.read_in_place(buffer, len, on_handshake),
        }
    }

    /// Reads `bytes`: each handshake message goes to `on_handshake`, which returns the
    /// channel's opener once its handshake is through (records after it in the same bytes are
    /// opened with it); the plaintext of every record is appended to `plain`, and a record cut
    /// off at the end waits for the next read. Stops at the first error, which ends the
    /// connection.
    pub fn read<E: From<RecordError>>(
        &mut self,
        mut bytes: &[u8],
        plain: &mut Vec<u8>,
        mut on_handshake: impl FnMut(&[u8]) -> Result<Option<Opener>, E>,
    ) -> Result<(), E> {
        while let Some(record) = self.records.next(&mut bytes) {
            match self.opener.as_mut() {
                Some(opener) => opener.open(record, plain)?,
                None => self.opener = on_handshake(record)?,
            }
        }
        Ok(())
    }

    /// Opens the records of `buffer[..len]` where they lie (a record split across reads is
    /// gathered and opened in memory of its own).
    fn read_in_place<E: From<RecordError>>(
        &mut self,
        mut buffer: Box<dyn ReadOwner>,
        len: usize,
        mut on_handshake: impl FnMut(&[u8]) -> Result<Option<Opener>, E>,
    ) -> Result<Plain, E> {
        let bytes = (*buffer).as_mut();
        let len = len.min(bytes.len());
        let mut head = Bytes::new();
        // The end of a record an earlier read began.
        let mut at = 0;
        if self.records.in_progress() {
            let mut rest = &bytes[..len];
            let whole = self.records.next_owned(&mut rest);
            at = len - rest.len();
            if let Some((mut record, body)) = whole {
                let body_bytes = record.get_mut(body..).unwrap_or_default();
                let plain = take_record(&mut self.opener, body_bytes, &mut on_handshake)?;
                head = Bytes::from(record).slice(body..body + plain);
            }
        }
        let mut records = Vec::new();
        while let Some((body, end)) = RecordReader::whole_at(&bytes[..len], at) {
            let plain = take_record(
                &mut self.opener,
                &mut bytes[body.clone()],
                &mut on_handshake,
            )?;
            if plain > 0 {
                records.push(body.start..body.start + plain);
            }
            at = end;
        }
        // The start of a record the next read finishes.
        let mut rest = &bytes[at..len];
        let whole = self.records.next(&mut rest);
        debug_assert!(whole.is_none(), "whole records were all taken");
        let read = if records.is_empty() {
            Bytes::new()
        } else {
            Bytes::from_owner(Owned(buffer))
        };
        Ok(Plain {
            head,
            read,
            records,
        })
    }

    /// The handshake finished outside [`read`](Inbound::read) (an acceptor that waited for
    /// an introduction): records from now on are opened with `opener`.
    pub fn open_with(&mut self, opener: Opener) {
        self.opener = Some(opener);
    }
}

/// One whole record, where it lies: opened in place once the handshake is through (the length
/// of its plaintext, now at its start), else handed to the handshake as a message (0).
fn take_record<E: From<RecordError>>(
    opener: &mut Option<Opener>,
    record: &mut [u8],
    on_handshake: &mut impl FnMut(&[u8]) -> Result<Option<Opener>, E>,
) -> Result<usize, E> {
    match opener {
        Some(opener) => Ok(opener.open_in_place(record)?),
        None => {
            *opener = on_handshake(record)?;
            Ok(0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secure::record::split;

    fn plaintext(plain: &Plain) -> Vec<u8> {
        let mut all = plain.head.to_vec();
        for range in &plain.records {
            all.extend_from_slice(&plain.read[range.clone()]);
        }
        all
    }

    #[test]
    fn records_opened_in_place_give_the_plaintext_whatever_the_reads() {
        let (mut sealer, _) = split([1; 32], [2; 32]);
        let sent: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let parts: Vec<&[u8]> = sent.chunks(33_000).collect();
        let mut wire = Vec::new();
        sealer.seal_all(parts, &mut wire).unwrap();
        for read in [1, 17, 4096, 40_000, 70_000, 1 << 20] {
            let (_, opener) = split([2; 32], [1; 32]);
            let mut inbound = Inbound::default();
            inbound.open_with(opener);
            let mut got = Vec::new();
            for piece in wire.chunks(read) {
                // A pooled buffer is longer than what was read into it.
                let mut buffer = piece.to_vec();
                buffer.extend_from_slice(&[0xee; 5]);
                let read = Read::owned(buffer, piece.len());
                let plain = inbound
                    .read_plain(read, |_| -> Result<_, RecordError> { Ok(None) })
                    .unwrap();
                got.extend(plaintext(&plain));
            }
            assert_eq!(got, sent, "reads of {read}");
        }
    }

    #[test]
    fn a_forged_record_in_place_is_refused() {
        let (mut sealer, _) = split([1; 32], [2; 32]);
        let mut wire = sealer.seal_to_vec(&[9; 20_000]).unwrap();
        wire[100] ^= 1;
        let (_, opener) = split([2; 32], [1; 32]);
        let mut inbound = Inbound::default();
        inbound.open_with(opener);
        let len = wire.len();
        let read = Read::owned(wire, len);
        let opened = inbound.read_plain(read, |_| -> Result<_, RecordError> { Ok(None) });
        assert_eq!(opened.err(), Some(RecordError::Forged));
    }
}
