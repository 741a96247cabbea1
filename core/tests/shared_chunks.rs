//! File chunks decoded out of a shared read buffer (`Frame::parse_in`) must decode exactly as
//! the ordinary decoder does, for every frame family that carries chunks, and must really
//! share the buffer when the chunk is big.

use breeze_core::codec::{decode_each_in, encode_frame, Frame, FrameDecoder, PREFIX_LEN};
use breeze_core::wire::{
    Bytes, ClientFrame, FileMessage, PeerFrame, ServerFrame, TransferId, UserName,
};
use quickcheck::{QuickCheck, TestResult};
use std::fmt::Debug;

fn framed<T: serde::Serialize>(frame: &T) -> Bytes {
    let mut out = Vec::new();
    encode_frame(frame, usize::MAX, &mut out).expect("encodes");
    Bytes::from(out)
}

/// One frame holding `payload`, whatever it is.
fn reframed(payload: &[u8]) -> Bytes {
    let mut out = (payload.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(payload);
    Bytes::from(out)
}

/// Decodes `source` (one frame, possibly damaged) both ways; the results must agree.
fn both_ways<T: Frame + PartialEq + Debug>(source: &Bytes) -> Option<T> {
    let payload = source.get(PREFIX_LEN..)?;
    let shared = T::parse_in(payload, source).ok();
    let mut input = &source[..];
    let plain = FrameDecoder::new(usize::MAX)
        .decode::<T>(&mut input)
        .ok()
        .flatten();
    // Not `assert_eq!`: a chunk's data would fill the screen.
    assert!(
        shared == plain,
        "the shared decode disagrees with the plain one"
    );
    shared
}

fn shares(source: &Bytes, data: &Bytes) -> bool {
    let start = (data.as_ptr() as usize).wrapping_sub(source.as_ptr() as usize);
    start < source.len() && start + data.len() <= source.len()
}

fn chunk(id: u64, offset: u64, len: usize) -> FileMessage {
    let data: Bytes = (0..len).map(|i| (i as u64 ^ id) as u8).collect();
    FileMessage::Chunk {
        id: TransferId(id),
        offset,
        data: data.into(),
    }
}

fn data_of(message: &FileMessage) -> &Bytes {
    match message {
        FileMessage::Chunk { data, .. } => data.as_bytes().expect("decoded chunks are bytes"),
        other => panic!("not a chunk: {other:?}"),
    }
}

#[test]
fn direct_chunks_decode_alike_and_big_ones_share_the_buffer() {
    // Only the direct channel carries chunks as they are: through the relay they are sealed
    // end to end, one opaque byte string the recipient opens (and so copies) itself.
    fn property(id: u64, offset: u64, len: u16, cut: u8) -> TestResult {
        let len = usize::from(len);
        let message = chunk(id, offset, len);
        let sources = [framed(&PeerFrame::File(message.clone()))];
        let decoded = [both_ways::<PeerFrame>(&sources[0]).map(|f| match f {
            PeerFrame::File(m) => m,
            other => panic!("{other:?}"),
        })];
        for (source, decoded) in sources.iter().zip(&decoded) {
            let Some(decoded) = decoded else {
                return TestResult::error("a whole chunk frame did not decode");
            };
            if *decoded != message {
                return TestResult::error("decoded to something else");
            }
            if len >= 1024 && !shares(source, data_of(decoded)) {
                return TestResult::error("a big chunk was copied, not shared");
            }
            // Damaged payloads (framed as they are): one byte short, one byte too many, cut.
            let payload = &source[PREFIX_LEN..];
            let cut = usize::from(cut) % payload.len().max(1);
            let mut long = payload.to_vec();
            long.push(cut as u8);
            let damaged = [&payload[..payload.len() - 1], &long[..], &payload[..cut]];
            for damaged in damaged.map(reframed) {
                both_ways::<PeerFrame>(&damaged);
                both_ways::<ClientFrame>(&damaged);
                both_ways::<ServerFrame>(&damaged);
            }
        }
        TestResult::passed()
    }
    QuickCheck::new()
        .tests(500)
        .quickcheck(property as fn(u64, u64, u16, u8) -> TestResult);
}

#[test]
fn frames_without_chunks_decode_as_usual() {
    let user = UserName::new("alice").expect("a valid name");
    let offer = FileMessage::Decline { id: TransferId(9) };
    assert_eq!(
        both_ways::<PeerFrame>(&framed(&PeerFrame::Ping)),
        Some(PeerFrame::Ping)
    );
    let peer_file = PeerFrame::File(offer);
    assert_eq!(both_ways::<PeerFrame>(&framed(&peer_file)), Some(peer_file));
    let logout = ClientFrame::Logout;
    assert_eq!(both_ways::<ClientFrame>(&framed(&logout)), Some(logout));
    let gone = ServerFrame::PresenceChanged {
        online: Vec::new(),
        offline: vec![user],
    };
    assert_eq!(both_ways::<ServerFrame>(&framed(&gone)), Some(gone));
    assert_eq!(
        both_ways::<ServerFrame>(&framed(&ServerFrame::Ping)),
        Some(ServerFrame::Ping)
    );
}

/// A tiny chunk is copied: it must not pin a whole read buffer.
#[test]
fn a_small_chunk_in_a_big_read_is_copied() {
    let frame = framed(&PeerFrame::File(chunk(1, 0, 10)));
    let mut read = frame.to_vec();
    read.resize(64 * 1024, 0);
    let source = Bytes::from(read);
    let parsed = PeerFrame::parse_in(&source[PREFIX_LEN..frame.len()], &source).unwrap();
    let PeerFrame::File(message) = parsed else {
        panic!("not a file frame")
    };
    assert_eq!(message, chunk(1, 0, 10));
    assert!(!shares(&source, data_of(&message)));
}

/// Frames cut anywhere across reads (chunks included, big ones put together from pieces)
/// come out of `decode_each_in` exactly as they went in.
#[test]
fn frames_cut_across_shared_reads_decode_whole_and_in_order() {
    fn property(lens: Vec<u16>, cuts: Vec<u16>) -> TestResult {
        let frames: Vec<PeerFrame> = lens
            .iter()
            .take(12)
            .enumerate()
            .map(|(i, &len)| match len % 3 {
                0 => PeerFrame::Ping,
                _ => PeerFrame::File(chunk(i as u64, 0, usize::from(len) % 40_000)),
            })
            .collect();
        let mut stream = Vec::new();
        for frame in &frames {
            encode_frame(frame, usize::MAX, &mut stream).expect("encodes");
        }
        let mut reads = Vec::new();
        let mut rest = &stream[..];
        for cut in cuts.iter().map(|&c| usize::from(c) % 50_000 + 1) {
            let (read, tail) = rest.split_at(cut.min(rest.len()));
            reads.push(Bytes::copy_from_slice(read));
            rest = tail;
        }
        reads.push(Bytes::copy_from_slice(rest));
        let mut decoder = FrameDecoder::new(usize::MAX);
        let mut decoded = Vec::new();
        for read in &reads {
            decode_each_in(&mut decoder, read, &mut decoded, |out, frame: PeerFrame| {
                out.push(frame);
                true
            })
            .expect("valid frames");
        }
        if decoded == frames {
            TestResult::passed()
        } else {
            TestResult::error("frames lost, changed or reordered")
        }
    }
    QuickCheck::new()
        .tests(300)
        .quickcheck(property as fn(Vec<u16>, Vec<u16>) -> TestResult);
}
