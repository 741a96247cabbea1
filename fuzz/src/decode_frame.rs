//! `decode_frame`: the incremental decoder under arbitrary bytes and arbitrary chunking.
//!
//! Input layout: byte 0's low nibble is how many chunk-size bytes follow byte 1; byte 1 is a
//! small frame limit; then the chunk sizes (cycled; 0 means an empty call); the rest is the
//! stream. The stream is decoded as every message family, with the small limit and with
//! [`DEFAULT_MAX_FRAME`], and for each:
//! - nothing panics, and `buffered() <= PREFIX_LEN + max_frame` after every call;
//! - `Ok(None)` means the chunk is used up, and `Ok(Some)` consumed bytes (no spinning);
//! - errors are sticky (same error, nothing buffered, on every later call);
//! - the frames, the error and the leftover are the same as decoding the stream in one call;
//! - every decoded frame re-encodes within the limit and decodes back to an equal value;
//! - decoding the chunks as shared buffers (`decode_each_in`, file chunks as slices of them)
//!   gives the same frames and error.

use breeze_core::codec::{
    decode_each_in, encode_frame, DecodeError, Frame, FrameDecoder, DEFAULT_MAX_FRAME, PREFIX_LEN,
};
use breeze_core::wire::{Bytes, ClientFrame, PeerFrame, ServerFrame};
use serde::{de::DeserializeOwned, Serialize};
use std::fmt::Debug;

pub fn run(data: &[u8]) {
    let [head, small_max, rest @ ..] = data else {
        return;
    };
    let n_sizes = usize::from(head & 0x0f).min(rest.len());
    let (sizes, stream) = rest.split_at(n_sizes);
    let chunks = split(stream, sizes);
    let small_max = usize::from(*small_max);
    for max in [small_max, DEFAULT_MAX_FRAME] {
        check::<ClientFrame>(&chunks, stream, max);
        check::<ServerFrame>(&chunks, stream, max);
        check::<PeerFrame>(&chunks, stream, max);
    }
}

fn split<'a>(stream: &'a [u8], sizes: &[u8]) -> Vec<&'a [u8]> {
    if sizes.iter().all(|s| *s == 0) {
        return vec![stream];
    }
    let mut chunks = Vec::new();
    let mut rest = stream;
    for size in sizes.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (head, tail) = rest.split_at(usize::from(*size).min(rest.len()));
        chunks.push(head);
        rest = tail;
    }
    chunks
}

#[derive(Debug, PartialEq)]
struct Outcome<T> {
    frames: Vec<T>,
    error: Option<DecodeError>,
    buffered: usize,
}

fn decode_all<T>(chunks: &[&[u8]], max: usize) -> Outcome<T>
where
    T: DeserializeOwned + Debug,
{
    let mut decoder = FrameDecoder::new(max);
    let mut frames = Vec::new();
    let mut error: Option<DecodeError> = None;
    // One empty call past the end checks stickiness even when the error came last.
    for chunk in chunks.iter().copied().chain([&[][..]]) {
        let mut input = chunk;
        loop {
            let before = input.len();
            let result = decoder.decode::<T>(&mut input);
            assert!(
                decoder.buffered() <= PREFIX_LEN + max,
                "buffered {} > {PREFIX_LEN} + {max}",
                decoder.buffered()
            );
            match result {
                Ok(Some(frame)) => {
                    assert!(error.is_none(), "decoded {frame:?} after error {error:?}");
                    assert!(input.len() < before, "a frame without consuming input");
                    frames.push(frame);
                }
                Ok(None) => {
                    assert!(error.is_none(), "Ok(None) after error {error:?}");
                    assert!(input.is_empty(), "Ok(None) with {} bytes left", input.len());
                    break;
                }
                Err(err) => {
                    if let Some(first) = &error {
                        assert_eq!(first, &err, "the error changed");
                    }
                    assert_eq!(decoder.buffered(), 0, "a failed decoder holds bytes");
                    error = Some(err);
                    break;
                }
            }
        }
    }
    Outcome {
        frames,
        error,
        buffered: decoder.buffered(),
    }
}

/// The frames and the first error of decoding `chunks` as shared buffers.
fn decode_shared<T: Frame + Debug>(chunks: &[&[u8]], max: usize) -> (Vec<T>, Option<DecodeError>) {
    let mut decoder = FrameDecoder::new(max);
    let mut frames = Vec::new();
    for chunk in chunks {
        let shared = Bytes::copy_from_slice(chunk);
        let result = decode_each_in(&mut decoder, &shared, &mut frames, |frames, frame| {
            frames.push(frame);
            true
        });
        if let Err(error) = result {
            return (frames, Some(error));
        }
    }
    (frames, None)
}

fn check<T>(chunks: &[&[u8]], stream: &[u8], max: usize)
where
    T: Frame + Serialize + PartialEq + Debug,
{
    let chunked = decode_all::<T>(chunks, max);
    let whole = decode_all::<T>(&[stream], max);
    assert_eq!(chunked, whole, "chunking changed the outcome (max {max})");
    let (frames, error) = decode_shared::<T>(chunks, max);
    assert_eq!(
        frames, chunked.frames,
        "the shared decode disagrees (max {max})"
    );
    assert_eq!(
        error, chunked.error,
        "the shared decode fails otherwise (max {max})"
    );
    for frame in &chunked.frames {
        let mut bytes = Vec::new();
        encode_frame(frame, max, &mut bytes)
            .unwrap_or_else(|e| panic!("{frame:?} decoded but does not re-encode: {e}"));
        assert!(bytes.len() <= PREFIX_LEN + max);
        let mut decoder = FrameDecoder::new(max);
        let mut input = &bytes[..];
        let again = decoder.decode::<T>(&mut input);
        assert_eq!(again.as_ref().ok().and_then(Option::as_ref), Some(frame));
        assert!(input.is_empty());
        assert_eq!(decoder.buffered(), 0);
    }
}
