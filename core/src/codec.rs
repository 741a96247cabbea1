//! Length-prefixed postcard frames and an incremental decoder.
//!
//! A frame is a 4-byte big-endian payload length followed by the postcard payload. The decoder
//! takes bytes in whatever chunks the transport hands it, decodes frames straight out of the
//! caller's buffer when they are whole, and copies only a trailing partial frame. The length is
//! checked against the limit as soon as the 4 prefix bytes are known, so an oversized frame is
//! refused before a single payload byte is buffered: the internal buffer never exceeds
//! `4 + max_frame` bytes.

use crate::transmit::Payload;
use bytes::Bytes;
use serde::{de::DeserializeOwned, Serialize};
use std::fmt;

/// Bytes in the length prefix.
pub const PREFIX_LEN: usize = 4;

/// Default largest payload accepted: plenty for a chat message or a presence page.
pub const DEFAULT_MAX_FRAME: usize = 64 * 1024;

/// Why a byte stream cannot be decoded any further. Once returned, the decoder stays failed:
/// framing is lost, and the connection must be closed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The prefix announced more than the limit.
    FrameTooLarge {
        /// The length announced.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The payload is not a valid message of the expected family.
    Malformed,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::FrameTooLarge { len, max } => {
                write!(f, "frame of {len} bytes exceeds the {max}-byte limit")
            }
            DecodeError::Malformed => f.write_str("malformed frame payload"),
        }
    }
}

impl std::error::Error for DecodeError {}

impl DecodeError {
    /// The code the peer is told before its connection is closed.
    pub fn code(&self) -> crate::wire::ErrorCode {
        match self {
            DecodeError::FrameTooLarge { .. } => crate::wire::ErrorCode::FrameTooLarge,
            DecodeError::Malformed => crate::wire::ErrorCode::Malformed,
        }
    }
}

/// A frame family. Families with big byte strings (file chunks) can take them out of the
/// transport's read buffer, shared, instead of copying them; the others decode as usual.
pub trait Frame: DeserializeOwned {
    /// Decodes `payload`, which lies within `source`.
    fn parse_in(payload: &[u8], _source: &Bytes) -> Result<Self, DecodeError> {
        parse(payload)
    }
}

/// `part`, which lies within `source`, as a slice of it (no copy) when it is a good part of
/// it: a small part is copied, so a peer sending many tiny chunks cannot pin many whole read
/// buffers (what a part pins is at most four times its own size).
pub(crate) fn share(source: &Bytes, part: &[u8]) -> Bytes {
    let start = (part.as_ptr() as usize).wrapping_sub(source.as_ptr() as usize);
    let within = start <= source.len() && part.len() <= source.len() - start;
    if within && part.len().saturating_mul(4) >= source.len() {
        source.slice(start..start + part.len())
    } else {
        Bytes::copy_from_slice(part)
    }
}

/// The fields of `payload` if it encodes the enum variant `index` (postcard writes the index
/// as a varint before them): how a [`Frame::parse_in`] picks out the frame it has a fast path
/// for.
pub(crate) fn variant_fields(payload: &[u8], index: u32) -> Option<&[u8]> {
    match postcard::take_from_bytes::<u32>(payload) {
        Ok((variant, rest)) if variant == index => Some(rest),
        _ => None,
    }
}

/// A frame put together from several reads at least this big becomes a shared buffer of its
/// own (its file chunk is not copied again); a smaller one is parsed from the reused buffer.
const ASSEMBLED_SHARED_MIN: usize = 16 * 1024;

/// [`decode_each`] for bytes the transport hands over as a shared buffer: whole frames in it
/// are decoded with [`Frame::parse_in`], so their big byte strings stay where they were read.
pub fn decode_each_in<T: Frame, S>(
    decoder: &mut FrameDecoder,
    source: &Bytes,
    state: &mut S,
    mut on_frame: impl FnMut(&mut S, T) -> bool,
) -> Result<(), DecodeError> {
    let mut bytes = &source[..];
    let whole = |payload: &[u8]| T::parse_in(payload, source);
    // A big frame that came in pieces is shared out of the buffer it was put together in.
    let assembled = |frame: &mut Vec<u8>| {
        if frame.len() < ASSEMBLED_SHARED_MIN {
            return parse(frame.get(PREFIX_LEN..).unwrap_or_default());
        }
        let frame = Bytes::from(std::mem::take(frame));
        T::parse_in(frame.get(PREFIX_LEN..).unwrap_or_default(), &frame)
    };
    while let Some(frame) = decoder.decode_with(&mut bytes, whole, assembled)? {
        if !on_frame(state, frame) {
            break;
        }
    }
    Ok(())
}

/// Decodes every whole frame in `bytes` and hands each to `on_frame` with the state machine,
/// until the bytes run out or `on_frame` returns `false` (its connection is gone).
///
/// The decoder is passed separately so the state machine that owns it can be borrowed
/// mutably while frames are handled; callers take it out of the connection and put it back.
pub fn decode_each<T: DeserializeOwned, S>(
    decoder: &mut FrameDecoder,
    mut bytes: &[u8],
    state: &mut S,
    mut on_frame: impl FnMut(&mut S, T) -> bool,
) -> Result<(), DecodeError> {
    while let Some(frame) = decoder.decode::<T>(&mut bytes)? {
        if !on_frame(state, frame) {
            break;
        }
    }
    Ok(())
}

/// Why a message could not be encoded (too big for the frame limit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodeError {
    /// The frame's encoded length.
    pub len: usize,
    /// The frame limit.
    pub max: usize,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "message of {} bytes exceeds the {}-byte frame limit",
            self.len, self.max
        )
    }
}

impl std::error::Error for EncodeError {}

/// A frame family whose frames may end with a big byte string that is already shared
/// ([`Bytes`]: a file chunk's data) or still in a file ([`FileSpan`](crate::transmit::FileSpan)).
/// The encoder writes everything before it and hands the tail on as it is, to be written
/// after, instead of copying it into the output.
pub trait SharedTail {
    /// The byte string this frame ends with, if it is worth not copying (a file span always
    /// is: it has no bytes to copy).
    fn shared_tail(&self) -> Option<Payload> {
        None
    }
}

/// What [`AppendExceptTail`] did with the tail.
enum Tail {
    /// Not met as one byte string: copied like everything else, if it was there at all.
    Copied,
    /// Left out, and it was the frame's end.
    LeftOut,
    /// Left out, but more came after it: the output is not a frame.
    Misplaced,
}

/// postcard output appended to a `Vec`, byte strings with one `extend_from_slice`, leaving out
/// one byte string, the frame's [`SharedTail`], when it comes: the tail's own bytes, or a file
/// span's stand-in, recognised by address.
///
/// postcard's own `to_extend` goes through `Extend<u8>` one byte at a time: encoding a 32 KiB
/// file chunk that way was 14 % of a sending client's CPU.
struct AppendExceptTail<'a> {
    out: Vec<u8>,
    tail: Option<&'a [u8]>,
    /// The tail came (and was left out).
    left_out: bool,
    /// Bytes came after the tail: it was not the frame's end after all.
    after_tail: bool,
}

impl postcard::ser_flavors::Flavor for AppendExceptTail<'_> {
    /// The bytes, and what became of the tail.
    type Output = (Vec<u8>, Tail);

    fn try_push(&mut self, byte: u8) -> postcard::Result<()> {
        self.after_tail |= self.left_out;
        self.out.push(byte);
        Ok(())
    }

    fn try_extend(&mut self, bytes: &[u8]) -> postcard::Result<()> {
        let is_tail = self
            .tail
            .is_some_and(|t| t.as_ptr() == bytes.as_ptr() && t.len() == bytes.len());
        if is_tail && !self.left_out {
            self.left_out = true;
        } else {
            self.after_tail |= self.left_out;
            self.out.extend_from_slice(bytes);
        }
        Ok(())
    }

    fn finalize(self) -> postcard::Result<(Vec<u8>, Tail)> {
        let tail = match (self.left_out, self.after_tail) {
            (false, _) => Tail::Copied,
            (true, false) => Tail::LeftOut,
            (true, true) => Tail::Misplaced,
        };
        Ok((self.out, tail))
    }
}

/// Appends one frame holding `message` to `out`, except its [`SharedTail`]: when that is
/// returned, the frame is `out`'s new bytes followed by it. On error `out` is left as it was;
/// a frame whose file span cannot be left out is an error (its stand-in is not its bytes).
pub fn encode_frame_sharing<T: Serialize + SharedTail>(
    message: &T,
    max_frame: usize,
    out: &mut Vec<u8>,
) -> Result<Option<Payload>, EncodeError> {
    encode_leaving_out(message, message.shared_tail(), max_frame, out)
}

/// Appends one frame holding `message` to `out`. On error `out` is left as it was.
pub fn encode_frame<T: Serialize>(
    message: &T,
    max_frame: usize,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    encode_leaving_out(message, None, max_frame, out).map(|_| ())
}

/// [`encode_frame_sharing`] for a caller that already took the frame's tail (to look at it
/// first): the tail is passed in, not asked for again.
pub(crate) fn encode_leaving_out<T: Serialize>(
    message: &T,
    tail: Option<Payload>,
    max_frame: usize,
    out: &mut Vec<u8>,
) -> Result<Option<Payload>, EncodeError> {
    let refused = |len| EncodeError {
        len,
        max: max_frame,
    };
    let left_out = match &tail {
        Some(Payload::Bytes(bytes)) => Some(&bytes[..]),
        Some(Payload::File(span)) => Some(span.stand_in().ok_or(refused(span.len))?),
        None => None,
    };
    let start = out.len();
    out.extend_from_slice(&[0; PREFIX_LEN]);
    let flavor = AppendExceptTail {
        out: std::mem::take(out),
        tail: left_out,
        left_out: false,
        after_tail: false,
    };
    let (mut buf, what) = match postcard::serialize_with_flavor(message, flavor) {
        Ok(done) => done,
        Err(_) => {
            // postcard only fails on types it cannot express, which ours never are (a file
            // span too big for a frame was refused above); treat it as an oversized frame
            // rather than panic.
            return Err(refused(usize::MAX));
        }
    };
    let tail = match (what, tail) {
        (Tail::LeftOut, tail) => tail,
        (Tail::Copied | Tail::Misplaced, Some(Payload::File(span))) => {
            // The stand-in is not the span's bytes: never let it out.
            buf.truncate(start);
            *out = buf;
            return Err(refused(span.len));
        }
        (Tail::Copied, _) => None,
        (Tail::Misplaced, _) => {
            // Not the frame's last bytes after all (a layout change): the usual encoding.
            buf.truncate(start);
            *out = buf;
            return encode_leaving_out(message, None, max_frame, out);
        }
    };
    let len = buf.len() - start - PREFIX_LEN + tail.as_ref().map_or(0, Payload::len);
    if len > max_frame || len > u32::MAX as usize {
        buf.truncate(start);
        *out = buf;
        return Err(refused(len));
    }
    buf[start..start + PREFIX_LEN].copy_from_slice(&(len as u32).to_be_bytes());
    *out = buf;
    Ok(tail)
}

/// Incremental frame decoder for one connection.
#[derive(Debug)]
pub struct FrameDecoder {
    /// A partial frame carried over between calls (prefix included).
    partial: Vec<u8>,
    max_frame: usize,
    failed: Option<DecodeError>,
}

impl FrameDecoder {
    /// A decoder that refuses frames over `max_frame` bytes from their prefix alone.
    pub fn new(max_frame: usize) -> Self {
        FrameDecoder {
            partial: Vec::new(),
            max_frame,
            failed: None,
        }
    }

    /// Bytes held for a frame not yet complete. Never more than `4 + max_frame`.
    pub fn buffered(&self) -> usize {
        self.partial.len()
    }

    /// Decodes the next frame, consuming from `input` only the bytes it needs.
    ///
    /// Returns `Ok(None)` once `input` is used up without completing a frame (the partial frame
    /// is kept). Call in a loop until it returns `Ok(None)` or an error.
    pub fn decode<T: DeserializeOwned>(
        &mut self,
        input: &mut &[u8],
    ) -> Result<Option<T>, DecodeError> {
        self.decode_with(input, parse, |frame| {
            parse(frame.get(PREFIX_LEN..).unwrap_or_default())
        })
    }

    /// [`decode`](FrameDecoder::decode), with `parse_whole` for a payload found whole in
    /// `input` and `parse_assembled` for a frame put together from several inputs (prefix
    /// included; it may take the buffer).
    fn decode_with<T: DeserializeOwned>(
        &mut self,
        input: &mut &[u8],
        parse_whole: impl FnOnce(&[u8]) -> Result<T, DecodeError>,
        parse_assembled: impl FnOnce(&mut Vec<u8>) -> Result<T, DecodeError>,
    ) -> Result<Option<T>, DecodeError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        let result = self.decode_inner(input, parse_whole, parse_assembled);
        if let Err(err) = &result {
            self.failed = Some(err.clone());
            self.partial = Vec::new();
        }
        result
    }

    fn decode_inner<T: DeserializeOwned>(
        &mut self,
        input: &mut &[u8],
        parse_whole: impl FnOnce(&[u8]) -> Result<T, DecodeError>,
        parse_assembled: impl FnOnce(&mut Vec<u8>) -> Result<T, DecodeError>,
    ) -> Result<Option<T>, DecodeError> {
        if self.partial.is_empty() {
            // Fast path: a whole frame at the front of the caller's bytes decodes in place.
            if let Some(len) = self.peek_len(input)? {
                if let Some(payload) = input.get(PREFIX_LEN..PREFIX_LEN + len) {
                    let message = parse_whole(payload)?;
                    *input = input.get(PREFIX_LEN + len..).unwrap_or_default();
                    return Ok(Some(message));
                }
            }
        }
        // Slow path: top up the partial frame, first to a whole prefix, then to a whole frame.
        if self.partial.len() < PREFIX_LEN {
            take_into(&mut self.partial, input, PREFIX_LEN);
            if self.partial.len() < PREFIX_LEN {
                return Ok(None);
            }
        }
        let Some(len) = self.peek_len(&self.partial)? else {
            return Ok(None);
        };
        // Room for the whole frame at once, so it is not moved again as its pieces come in;
        // only once a quarter of it is here, so a peer that announces big frames and sends
        // nothing more does not get memory it never filled.
        let want = PREFIX_LEN + len;
        if (self.partial.len() + input.len()).saturating_mul(4) >= want {
            self.partial
                .reserve_exact(want.saturating_sub(self.partial.len()));
        }
        take_into(&mut self.partial, input, PREFIX_LEN + len);
        if self.partial.len() < PREFIX_LEN + len {
            return Ok(None);
        }
        let message = parse_assembled(&mut self.partial);
        // Given back, not kept: a connection that once had a frame split across reads would
        // otherwise hold that frame's size for good (at 1,000 busy connections, with the record
        // reader's the same, 7 MiB that stayed after the traffic stopped).
        self.partial = Vec::new();
        message.map(Some)
    }

    /// The payload length announced at the front of `bytes`, checked against the limit.
    fn peek_len(&self, bytes: &[u8]) -> Result<Option<usize>, DecodeError> {
        let Some(prefix) = bytes.get(..PREFIX_LEN) else {
            return Ok(None);
        };
        let mut raw = [0u8; PREFIX_LEN];
        raw.copy_from_slice(prefix);
        let len = u32::from_be_bytes(raw) as usize;
        if len > self.max_frame {
            return Err(DecodeError::FrameTooLarge {
                len,
                max: self.max_frame,
            });
        }
        Ok(Some(len))
    }
}

/// Moves bytes from the front of `input` into `buf` until `buf` holds `want` bytes.
fn take_into(buf: &mut Vec<u8>, input: &mut &[u8], want: usize) {
    let need = want.saturating_sub(buf.len()).min(input.len());
    let (head, tail) = input.split_at(need);
    buf.extend_from_slice(head);
    *input = tail;
}

pub(crate) fn parse<T: DeserializeOwned>(payload: &[u8]) -> Result<T, DecodeError> {
    match postcard::take_from_bytes::<T>(payload) {
        // Trailing bytes inside a frame mean the peer and we disagree on the layout.
        Ok((message, [])) => Ok(message),
        _ => Err(DecodeError::Malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{ClientFrame, PROTOCOL_VERSION};

    /// A frame whose claimed tail is not its end.
    #[derive(Serialize)]
    struct TailInTheMiddle {
        data: Payload,
        after: u32,
    }

    impl SharedTail for TailInTheMiddle {
        fn shared_tail(&self) -> Option<Payload> {
            Some(self.data.clone())
        }
    }

    #[test]
    fn a_tail_that_is_not_the_end_is_copied_like_the_rest() {
        let frame = TailInTheMiddle {
            data: Payload::from(vec![5u8; 10_000]),
            after: 77,
        };
        let mut shared = vec![1, 2, 3];
        let tail = encode_frame_sharing(&frame, 64 * 1024, &mut shared).expect("encodes");
        assert!(tail.is_none());
        let mut plain = vec![1, 2, 3];
        encode_frame(&frame, 64 * 1024, &mut plain).expect("encodes");
        assert_eq!(shared, plain);
    }

    #[test]
    fn a_frame_split_across_reads_leaves_no_memory_behind_once_decoded() {
        let mut bytes = Vec::new();
        let ping = ClientFrame::Relay {
            to: crate::wire::UserName::new("bob").unwrap(),
            chat: crate::wire::SealedChat {
                id: crate::wire::MessageId(1),
                epoch: 1,
                seq: 1,
                first_unacked: 1,
                sealed: vec![9; 2000],
            },
        };
        encode_frame(&ping, DEFAULT_MAX_FRAME, &mut bytes).unwrap();
        let mut decoder = FrameDecoder::new(DEFAULT_MAX_FRAME);
        let (first, second) = bytes.split_at(700);
        let mut input = first;
        assert_eq!(decoder.decode::<ClientFrame>(&mut input), Ok(None));
        let mut input = second;
        assert_eq!(decoder.decode::<ClientFrame>(&mut input), Ok(Some(ping)));
        assert_eq!(
            decoder.partial.capacity(),
            0,
            "the frame's memory is given back"
        );
    }

    #[test]
    fn oversized_prefix_is_refused_before_buffering() {
        let mut decoder = FrameDecoder::new(1024);
        let mut input: &[u8] = &[0xff, 0xff, 0xff, 0xff, 1, 2, 3];
        let err = decoder.decode::<ClientFrame>(&mut input).unwrap_err();
        assert_eq!(
            err,
            DecodeError::FrameTooLarge {
                len: u32::MAX as usize,
                max: 1024
            }
        );
        assert_eq!(decoder.buffered(), 0);
        // Sticky: framing is lost for good.
        assert!(decoder.decode::<ClientFrame>(&mut &[0u8; 8][..]).is_err());
    }

    #[test]
    fn byte_at_a_time_decodes() {
        let mut bytes = Vec::new();
        encode_frame(
            &ClientFrame::Hello {
                version: PROTOCOL_VERSION,
            },
            1024,
            &mut bytes,
        )
        .unwrap();
        encode_frame(&ClientFrame::Ping, 1024, &mut bytes).unwrap();
        let mut decoder = FrameDecoder::new(1024);
        let mut out = Vec::new();
        for byte in &bytes {
            let mut input = std::slice::from_ref(byte);
            while let Some(frame) = decoder.decode::<ClientFrame>(&mut input).unwrap() {
                out.push(frame);
            }
            assert!(input.is_empty());
        }
        assert_eq!(
            out,
            vec![
                ClientFrame::Hello {
                    version: PROTOCOL_VERSION
                },
                ClientFrame::Ping
            ]
        );
    }

    #[test]
    fn encode_refuses_oversized_and_leaves_buffer_intact() {
        let mut out = vec![9];
        let big = ClientFrame::Login {
            user: crate::wire::UserName::new("a").unwrap(),
            password: "x".repeat(100).into(),
            p2p_port: 1,
            register: false,
        };
        assert!(encode_frame(&big, 10, &mut out).is_err());
        assert_eq!(out, vec![9]);
    }
}
