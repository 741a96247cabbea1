//! Core benchmarks, in memory with no sockets: how fast the codec decodes a stream of chat
//! frames, and how many chat messages the server core routes per second. Targets and the
//! figures measured are in BENCHMARKS.md at the repository root.
//!
//! `cargo bench -p breeze-core --bench core` measures; `-- --test` runs each benchmark once.
//! Debug builds (`cargo test --benches`) use a smaller stream and fewer users so they stay quick.

mod support;

use breeze_core::codec::{FrameDecoder, DEFAULT_MAX_FRAME};
use breeze_core::rng::SeededRng;
use breeze_core::secure::{
    GroupKey, GroupSealHeader, Handshake, IdentityKey, LinkKind, PairKey, Sealer,
};
use breeze_core::server::{ConnId, Server};
use breeze_core::wire::{
    Chat, ClientFrame, FileMessage, GroupId, GroupMessage, GroupRequest, KeyEnvelope, MessageId,
    PeerFrame, SealedChat, SealedFile, TransferId,
};
use criterion::{
    criterion_group, criterion_main, BatchSize, BenchmarkGroup, Criterion, SamplingMode, Throughput,
};
use serde::{de::DeserializeOwned, Serialize};
use std::hint::black_box;
use std::time::{Duration, Instant};
use support::{drain, encode, server_with_online, user};

/// Bytes of chat text per message: a typical short chat line.
const TEXT_LEN: usize = 100;

/// Bytes handed to the decoder per call, like one socket read.
const READ_SIZE: usize = 64 * 1024;

/// Bytes of frames decoded per iteration.
const STREAM_BYTES: usize = if cfg!(debug_assertions) {
    1 << 20
} else {
    64 << 20
};

/// Users logged in on the server under test.
const USERS: u64 = if cfg!(debug_assertions) { 50 } else { 1000 };

/// Relay frames per `handle_bytes` call: what one socket read from a busy sender carries.
const PER_READ: u64 = 64;

/// Some users, as in the directory of a small company.
/// A chat line of exactly `TEXT_LEN` bytes, varying with `i`.
fn text(i: u64) -> String {
    let line = format!("message {i}: the quick brown fox jumps over the lazy dog. ");
    line.repeat(3)[..TEXT_LEN].to_string()
}

/// Message `i` of a sender whose process drew `epoch` at start-up (a random, so full-width, u64).
fn chat(i: u64) -> Chat {
    Chat {
        id: MessageId(i),
        epoch: 0x9e37_79b9_7f4a_7c15,
        seq: i + 1,
        first_unacked: i + 1,
        text: text(i),
    }
}

/// Frames `frame(0)`, `frame(1)`, … back to back, until the stream holds `STREAM_BYTES`.
fn stream<F: Serialize>(frame: impl Fn(u64) -> F) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(STREAM_BYTES + 1024);
    let mut i = 0;
    while bytes.len() < STREAM_BYTES {
        encode(&frame(i), &mut bytes);
        i += 1;
    }
    bytes
}

/// Decodes the whole stream, fed in socket-sized reads; returns the number of frames.
fn decode_all<F: DeserializeOwned>(stream: &[u8]) -> usize {
    let mut decoder = FrameDecoder::new(DEFAULT_MAX_FRAME);
    let mut frames = 0;
    for read in stream.chunks(READ_SIZE) {
        let mut input = read;
        while let Some(frame) = decoder.decode::<F>(&mut input).unwrap() {
            black_box(frame);
            frames += 1;
        }
    }
    assert_eq!(decoder.buffered(), 0);
    frames
}

fn bench_decode<F: DeserializeOwned>(
    group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
    id: &str,
    stream: &[u8],
) {
    group.throughput(Throughput::Bytes(stream.len() as u64));
    group.bench_function(id, |b| b.iter(|| decode_all::<F>(black_box(stream))));
}

/// Message `i` as the relay carries it: sealed from one fixed sender to another.
fn sealed_chat(i: u64) -> SealedChat {
    thread_local! {
        static PAIR: PairKey = PairKey::new(
            &IdentityKey::from_secret([1; 32]),
            &IdentityKey::from_secret([2; 32]).public(),
        )
        .unwrap();
    }
    let mut rng = SeededRng::from_u64(i);
    PAIR.with(|pair| SealedChat::seal(&chat(i), pair, &mut rng))
}

fn decode_throughput(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode_throughput");
    // One iteration decodes the whole stream (tens of milliseconds): flat sampling keeps the
    // run within its measurement time.
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    let relay = stream(|i| ClientFrame::Relay {
        to: user(i % 1000),
        chat: sealed_chat(i),
    });
    bench_decode::<ClientFrame>(&mut group, "client_relay_100B", &relay);
    drop(relay);
    let direct = stream(|i| PeerFrame::Chat(chat(i)));
    bench_decode::<PeerFrame>(&mut group, "peer_chat_100B", &direct);
    group.finish();
}

/// `reads` as each user's client would send them: sealed, one record per read.
fn sealed(reads: &[(ConnId, Vec<u8>)], sealers: &mut [Sealer]) -> Vec<(ConnId, Vec<u8>)> {
    reads
        .iter()
        .map(|(conn, read)| {
            let sealer = &mut sealers[conn.0 as usize];
            (*conn, sealer.seal_to_vec(read).unwrap())
        })
        .collect()
}

/// One read per user: `PER_READ` relay frames, each to a pseudo-random other user.
fn relay_reads() -> Vec<(ConnId, Vec<u8>)> {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..USERS)
        .map(|from| {
            let mut read = Vec::new();
            for n in 0..PER_READ {
                let to = (from + 1 + next() % (USERS - 1)) % USERS;
                let frame = ClientFrame::Relay {
                    to: user(to),
                    chat: sealed_chat(from * PER_READ + n),
                };
                encode(&frame, &mut read);
            }
            (ConnId(from), read)
        })
        .collect()
}

/// Feeds every read to the server, draining its output after each as a driver does.
fn route(server: &mut Server, reads: &[(ConnId, Vec<u8>)], now: Instant) {
    for (conn, read) in reads {
        server.handle_bytes(*conn, read, now);
        let _ = drain(server, now);
    }
}

fn server_relay(c: &mut Criterion) {
    let now = Instant::now();
    let (mut server, mut sealers) = server_with_online(USERS, now);
    let reads = relay_reads();
    let messages = USERS * PER_READ;

    // Every message is routed live: none stored, none refused.
    let before = server.stats();
    route(&mut server, &sealed(&reads, &mut sealers), now);
    let after = server.stats();
    assert_eq!(after.relayed - before.relayed, messages);
    assert_eq!(after.stored, before.stored);
    assert_eq!(after.online, USERS as usize);

    let mut group = c.benchmark_group("server_relay");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(messages));
    let id = format!("{USERS}_users_{PER_READ}_per_read_100B");
    // Sealing is the clients' work: done outside the measured part, one fresh batch each time
    // (a record cannot be replayed).
    group.bench_function(id, |b| {
        b.iter_batched(
            || sealed(&reads, &mut sealers),
            |batch| route(&mut server, &batch, now),
            BatchSize::LargeInput,
        )
    });
    group.finish();
    assert_eq!(server.stats().online, USERS as usize);
}

/// Whole handshakes, both sides on this core: what a login storm or a burst of direct
/// channels costs in cryptography alone.
fn handshakes(c: &mut Criterion) {
    let mut group = c.benchmark_group("handshakes");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(1));
    let mut rng = SeededRng::from_u64(5);
    let (a, b) = (
        IdentityKey::from_secret([1; 32]),
        IdentityKey::from_secret([2; 32]),
    );
    let unframe = |m: Vec<u8>| m[2..].to_vec();
    group.bench_function("client_server_xx", |bench| {
        bench.iter(|| {
            let mut c = Handshake::initiator(LinkKind::ClientServer, &a, None, &mut rng).unwrap();
            let mut s = Handshake::responder(LinkKind::ClientServer, &b, &mut rng).unwrap();
            s.read(&unframe(c.write(&[]).unwrap())).unwrap();
            c.read(&unframe(s.write(&[]).unwrap())).unwrap();
            s.read(&unframe(c.write(&[]).unwrap())).unwrap();
            black_box((c.finish().unwrap(), s.finish().unwrap()))
        })
    });
    group.bench_function("peer_ik", |bench| {
        bench.iter(|| {
            let mut d =
                Handshake::initiator(LinkKind::Peer, &a, Some(&b.public()), &mut rng).unwrap();
            let mut r = Handshake::responder(LinkKind::Peer, &b, &mut rng).unwrap();
            r.read(&unframe(d.write(b"alice").unwrap())).unwrap();
            d.read(&unframe(r.write(&[]).unwrap())).unwrap();
            black_box((d.finish().unwrap(), r.finish().unwrap()))
        })
    });
    group.finish();
}

/// Group sizes the fan-out is measured at.
const GROUP_SIZES: &[u64] = if cfg!(debug_assertions) {
    &[10]
} else {
    &[100, 500]
};

/// Group message `seq` of user 0, sealed under its group key; the first carries the key's
/// envelopes for all `members`.
fn group_message(seq: u64, members: u64) -> GroupMessage {
    thread_local! {
        static KEY: GroupKey = GroupKey::generate(&mut SeededRng::from_u64(9));
    }
    let sender = IdentityKey::from_secret([1; 32]).public();
    let mut rng = SeededRng::from_u64(seq);
    let header = GroupSealHeader {
        group: GroupId(0),
        id: MessageId(seq),
        epoch: 1,
        seq,
        generation: 1,
    };
    let sealed = KEY.with(|key| key.seal(&sender, &header, text(seq).as_bytes(), &mut rng));
    let keys = if seq == 1 {
        (0..members)
            .map(|m| KeyEnvelope {
                to: user(m),
                sealed: vec![0x5a; 72],
            })
            .collect()
    } else {
        Vec::new()
    };
    GroupMessage {
        id: MessageId(seq),
        epoch: 1,
        seq,
        generation: 1,
        version: 1,
        keys,
        sealed,
    }
}

/// One batch of a group's traffic: user 0 sends `PER_READ` messages in one read, then every
/// member acknowledges them all in a read of its own.
fn group_batch(first_seq: u64, members: u64) -> Vec<(ConnId, Vec<u8>)> {
    let mut send = Vec::new();
    for seq in first_seq..first_seq + PER_READ {
        let frame = ClientFrame::GroupSend {
            group: GroupId(0),
            message: group_message(seq, members),
        };
        encode(&frame, &mut send);
    }
    let mut reads = vec![(ConnId(0), send)];
    for m in 0..members {
        let mut ack = Vec::new();
        let through = first_seq + PER_READ - 1;
        encode(
            &ClientFrame::GroupAck {
                group: GroupId(0),
                through,
            },
            &mut ack,
        );
        reads.push((ConnId(m), ack));
    }
    reads
}

fn group_fanout(c: &mut Criterion) {
    let now = Instant::now();
    let mut group = c.benchmark_group("group_fanout");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for &members in GROUP_SIZES {
        let (mut server, mut sealers) = server_with_online(members, now);
        let mut create = Vec::new();
        let request = GroupRequest::Create {
            name: "everyone".into(),
            members: (1..members).map(user).collect(),
        };
        encode(
            &ClientFrame::Group {
                request_id: 1,
                request,
            },
            &mut create,
        );
        route(
            &mut server,
            &sealed(&[(ConnId(0), create)], &mut sealers),
            now,
        );
        assert_eq!(server.stats().groups, 1);
        let mut next_seq = 1;
        let before = server.stats();
        route(
            &mut server,
            &sealed(&group_batch(next_seq, members), &mut sealers),
            now,
        );
        next_seq += PER_READ;
        let after = server.stats();
        // The sender's own copy included: every member gets every message.
        assert_eq!(
            after.group_delivered - before.group_delivered,
            PER_READ * members
        );
        group.throughput(Throughput::Elements(PER_READ * members));
        let id = format!("{members}_members_{PER_READ}_per_read_100B_with_acks");
        group.bench_function(id, |b| {
            b.iter_batched(
                || {
                    let batch = group_batch(next_seq, members);
                    next_seq += PER_READ;
                    sealed(&batch, &mut sealers)
                },
                |batch| route(&mut server, &batch, now),
                BatchSize::LargeInput,
            )
        });
        assert_eq!(server.stats().online, members as usize);
    }
    group.finish();
}

/// What a client pays to seal and open end to end: a chat line, and a file chunk as the relay
/// carries it (the items' AEAD, `secure/item_cipher.rs`).
fn end_to_end(c: &mut Criterion) {
    let mut group = c.benchmark_group("end_to_end");
    let (alice, bob) = (
        IdentityKey::from_secret([1; 32]),
        IdentityKey::from_secret([2; 32]),
    );
    let to_bob = PairKey::new(&alice, &bob.public()).unwrap();
    let from_alice = PairKey::new(&bob, &alice.public()).unwrap();
    let mut rng = SeededRng::from_u64(9);
    let line = chat(1);
    group.throughput(Throughput::Elements(1));
    group.bench_function("seal_chat_100_bytes", |b| {
        b.iter(|| SealedChat::seal(black_box(&line), &to_bob, &mut rng))
    });
    let sealed = SealedChat::seal(&line, &to_bob, &mut rng);
    group.bench_function("open_chat_100_bytes", |b| {
        b.iter(|| black_box(&sealed).open(&from_alice).unwrap())
    });
    let chunk = FileMessage::Chunk {
        id: TransferId(1),
        offset: 0,
        data: vec![7u8; breeze_core::transfer::CHUNK_SIZE].into(),
    };
    group.throughput(Throughput::Bytes(breeze_core::transfer::CHUNK_SIZE as u64));
    group.bench_function("seal_file_chunk", |b| {
        b.iter(|| SealedFile::seal(black_box(&chunk), &to_bob, &mut rng).unwrap())
    });
    let sealed = SealedFile::seal(&chunk, &to_bob, &mut rng).unwrap();
    group.bench_function("open_file_chunk", |b| {
        b.iter(|| black_box(&sealed).open(&from_alice).unwrap())
    });
    group.finish();
}

criterion_group!(
    benches,
    decode_throughput,
    server_relay,
    handshakes,
    group_fanout,
    end_to_end
);
criterion_main!(benches);
