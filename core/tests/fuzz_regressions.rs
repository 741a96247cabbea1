//! Regression tests for what the fuzz targets in `fuzz/` found in the core, each replaying the
//! minimised input through the public API. A test stays `#[ignore]`d until its bug is fixed.

use breeze_core::client::{Action, Client, ClientConfig, Destination, Event, FileEvent};
use breeze_core::codec::{encode_frame, FrameDecoder};
use breeze_core::rng::SeededRng;
use breeze_core::secure::{
    Handshake, IdentityKey, Inbound, LinkKind, PairKey, PublicKey, RecordError, Sealer,
};
use breeze_core::transfer::CHUNK_SIZE;
use breeze_core::wire::{
    Chat, ClientFrame, FileMessage, FileName, MessageId, PeerIntro, SealedChat, SealedFile,
    ServerFrame, TransferId, UserName, PROTOCOL_VERSION,
};
use std::time::Instant;

fn name(n: &str) -> UserName {
    UserName::new(n).unwrap()
}

fn frames(frames: &[ServerFrame]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for frame in frames {
        encode_frame(frame, 1 << 20, &mut bytes).unwrap();
    }
    bytes
}

/// The server end of bob's encrypted link: whatever a test makes the server say is sealed
/// for bob as a real server would.
struct SealedServer {
    sealer: Sealer,
    inbound: Inbound,
    /// bob's key, which the other users here seal what they relay to.
    bob: PublicKey,
    rng: SeededRng,
}

impl SealedServer {
    /// Plays the server's side of the handshake with `bob`, who has just connected.
    fn accept(bob: &mut Client) -> SealedServer {
        let key = IdentityKey::from_secret([1; 32]);
        let mut rng = SeededRng::from_u64(1);
        let mut handshake =
            Some(Handshake::responder(LinkKind::ClientServer, &key, &mut rng).unwrap());
        let mut inbound = Inbound::default();
        let mut sealer = None;
        let mut answer = None;
        for _ in 0..2 {
            let mut out = Vec::new();
            while let Some(t) = bob.poll_transmit() {
                out.extend_from_slice(t.payload.as_bytes().unwrap());
            }
            let mut plain = Vec::new();
            inbound
                .read(&out, &mut plain, |message| {
                    let mut h = handshake.take().ok_or(RecordError::Forged)?;
                    h.read(message).map_err(|_| RecordError::Forged)?;
                    if !h.is_finished() {
                        answer = Some(h.write(&[]).unwrap());
                        handshake = Some(h);
                        return Ok(None);
                    }
                    let channel = h.finish().unwrap();
                    sealer = Some(channel.sealer);
                    Ok::<_, RecordError>(Some(channel.opener))
                })
                .unwrap();
            if let Some(answer) = answer.take() {
                bob.handle_server_bytes(&answer, Instant::now());
            }
        }
        SealedServer {
            sealer: sealer.expect("the handshake is through"),
            inbound,
            bob: bob.public_key(),
            rng,
        }
    }

    /// The key of another user of this server (one per name).
    fn identity(name: &UserName) -> IdentityKey {
        IdentityKey::from_secret(*blake3::hash(name.as_str().as_bytes()).as_bytes())
    }

    /// What `user` and bob share end to end.
    fn pair(&self, user: &UserName) -> PairKey {
        PairKey::new(&Self::identity(user), &self.bob).unwrap()
    }

    /// Tells bob `user` is online (taking no direct channels), with its key.
    fn introduce(&mut self, bob: &mut Client, user: &UserName, now: Instant) {
        let intro = PeerIntro {
            user: user.clone(),
            endpoint: "127.0.0.1:0".parse().unwrap(),
            key: Self::identity(user).public(),
        };
        let bytes = frames(&[ServerFrame::PresenceChanged {
            online: vec![intro],
            offline: Vec::new(),
        }]);
        self.feed(bob, &bytes, now);
    }

    /// `chat` relayed from `from`, sealed by it.
    fn relayed(&mut self, from: &UserName, chat: &Chat) -> ServerFrame {
        let pair = self.pair(from);
        ServerFrame::Relayed {
            from: from.clone(),
            key: Self::identity(from).public(),
            chat: SealedChat::seal(chat, &pair, &mut self.rng),
        }
    }

    /// `message` relayed from `from`, sealed by it.
    fn relayed_file(&mut self, from: &UserName, message: &FileMessage) -> ServerFrame {
        let pair = self.pair(from);
        ServerFrame::RelayedFile {
            from: from.clone(),
            key: Self::identity(from).public(),
            message: SealedFile::seal(message, &pair, &mut self.rng).unwrap(),
        }
    }

    /// `bytes` (frames) as records, handed to bob.
    fn feed(&mut self, bob: &mut Client, bytes: &[u8], now: Instant) {
        let sealed = self.sealer.seal_to_vec(bytes).unwrap();
        bob.handle_server_bytes(&sealed, now);
    }

    /// What bob's `bytes` say (the frames, opened).
    fn open(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut plain = Vec::new();
        self.inbound
            .read(bytes, &mut plain, |_| Err(RecordError::Forged))
            .unwrap();
        plain
    }
}

/// A client logged in to a server that knows nobody else.
fn logged_in_bob(now: Instant) -> (Client, SealedServer) {
    let mut bob = Client::new(
        ClientConfig::new(name("bob"), "pw", 7002),
        IdentityKey::from_secret([2; 32]),
        [9; 32],
        now,
    );
    assert_eq!(bob.poll_action(), Some(Action::ConnectServer));
    bob.handle_server_connected(now);
    let mut server = SealedServer::accept(&mut bob);
    let welcome = frames(&[
        ServerFrame::Hello {
            version: PROTOCOL_VERSION,
        },
        ServerFrame::LoginOk { user: name("bob") },
        ServerFrame::Presence {
            peers: vec![],
            last: true,
            everyone: true,
        },
    ]);
    server.feed(&mut bob, &welcome, now);
    assert!(bob.is_logged_in());
    while bob.poll_transmit().is_some() {}
    while bob.poll_action().is_some() {}
    while bob.poll_event().is_some() {}
    (bob, server)
}

/// Found by `client_streams` (finding F1): any logged-in user can send a chat whose sequence
/// number is `u64::MAX` (the server relays it unchecked). The recipient's inbox releases it and
/// computes `next = seq + 1`: "attempt to add with overflow" at `delivery/inbox.rs`
/// (`EpochState::release_from`), a panic in debug builds and a wrap to 0 in release.
///
/// Whatever the fix (refuse such a chat, or count without overflowing), the client must not
/// panic, and the message must not be shown twice.
#[test]
fn a_chat_numbered_u64_max_does_not_overflow_the_inbox() {
    let now = Instant::now();
    let (mut bob, mut server) = logged_in_bob(now);
    let chat = Chat {
        id: MessageId(0),
        epoch: 3,
        seq: u64::MAX,
        first_unacked: u64::MAX,
        text: "3:18446744073709551615:".into(),
    };
    let relayed = frames(&[server.relayed(&name("dave"), &chat)]);
    server.feed(&mut bob, &relayed, now);
    server.feed(&mut bob, &relayed, now);
    let mut shown = 0;
    while let Some(event) = bob.poll_event() {
        if let Event::Message { .. } = event {
            shown += 1;
        }
    }
    assert!(shown <= 1, "shown {shown} times");
}

/// Found by `client_streams` (finding F2): a message held behind a gap is shown twice.
///
/// dave's message 6 arrives while 1..5 are missing (`first_unacked: 1`), so bob's inbox holds
/// it. It comes again with `first_unacked: 6` (dave gave up on 1..5, or they were acknowledged
/// to bob's earlier run): `Inbox::receive` moves `next` to 6 and keeps the held entries from 6
/// up (`held.split_off(&next)`, which keeps 6 itself), then releases the incoming copy and sets
/// `next = 7` — the held copy of 6 stays, below `next`. When the gap timeout fires,
/// `skip_stale_gaps` pops it and `release_from` shows 6 a second time (and sets `next` back
/// to 7, which would replay anything released after it).
#[test]
fn a_held_message_released_early_is_not_shown_again_when_the_gap_is_skipped() {
    let start = Instant::now();
    let (mut bob, mut server) = logged_in_bob(start);
    let six = |first_unacked| Chat {
        id: MessageId(20),
        epoch: 0,
        seq: 6,
        first_unacked,
        text: "0:6:".into(),
    };
    let dave = name("dave");
    let relayed = frames(&[
        server.relayed(&dave, &six(1)),
        server.relayed(&dave, &six(6)),
    ]);
    server.feed(&mut bob, &relayed, start);
    let gap_timeout = bob.config().gap_timeout;
    let mut shown = Vec::new();
    let mut now = start;
    // Drive the timers past the gap timeout, as a host would.
    for _ in 0..100 {
        while bob.poll_transmit().is_some() {}
        while bob.poll_action().is_some() {}
        while let Some(event) = bob.poll_event() {
            if let Event::Message { from, text, .. } = event {
                shown.push((from, text));
            }
        }
        match bob.poll_timeout() {
            Some(at) if at <= start + 2 * gap_timeout => {
                now = now.max(at);
                bob.handle_timeout(now);
            }
            _ => break,
        }
    }
    assert_eq!(shown, vec![(name("dave"), "0:6:".to_string())]);
}

/// Found while extending `client_streams` to file transfer (finding F3): the sender's
/// read-ahead is bounded only by the credit the *receiver* grants. A receiver (any user the
/// sender offers a file to, through the relay or direct) that answers `Accept { window:
/// u64::MAX }` makes `Outgoing::reads_wanted` keep asking the host for chunks up to the end of
/// the file, and `read_done` keeps every answer in `ready`, while the route is congested
/// (`pump_files` stops at `file_high_water`) or the relay paused the transfer. The sender then
/// holds the whole file in memory, whatever its size (docs/ARCHITECTURE.md §4 Guarantees:
/// every buffer bounded).
///
/// Here bob offers a 64 MiB file; the server connection is stalled (nothing reported
/// written); bob's host answers every read. What bob holds (read, not yet handed out as a
/// chunk) must stay within its own window plus the reads it may have in flight.
#[test]
fn a_huge_credit_does_not_make_the_sender_read_the_whole_file_into_memory() {
    let now = Instant::now();
    let (mut bob, mut server) = logged_in_bob(now);
    let carol = name("carol");
    server.introduce(&mut bob, &carol, now);
    let id = TransferId(1);
    let size = 64 * 1024 * 1024;
    bob.offer_file(
        &carol,
        id,
        FileName::new("big.iso").unwrap(),
        size,
        [7; 32],
        now,
    )
    .unwrap();
    let accept = FileMessage::Accept {
        id,
        offset: 0,
        window: u64::MAX,
    };
    let accept = frames(&[server.relayed_file(&carol, &accept)]);
    server.feed(&mut bob, &accept, now);

    let bound = bob.config().file_window + 4 * CHUNK_SIZE as u64;
    let mut read = 0u64;
    let mut sent = 0u64;
    let mut decoder = FrameDecoder::new(1 << 20);
    for _ in 0..1000 {
        // Polled, never reported written: the server connection is congested.
        while let Some(t) = bob.poll_transmit() {
            assert_eq!(t.to, Destination::Server);
            let bytes = t
                .payload
                .into_bytes()
                .expect("bytes: nothing here shares a file");
            let plain = server.open(&bytes);
            let mut input = &plain[..];
            while let Some(frame) = decoder.decode::<ClientFrame>(&mut input).unwrap() {
                if let ClientFrame::RelayFile { message, .. } = frame {
                    let opened = message.open(&server.pair(&carol));
                    if let Ok(FileMessage::Chunk { data, .. }) = opened {
                        sent += data.len() as u64;
                    }
                }
            }
        }
        let mut reads = Vec::new();
        while let Some(action) = bob.poll_action() {
            if let Action::ReadFile {
                id, offset, len, ..
            } = action
            {
                reads.push((id, offset, len));
            }
        }
        if reads.is_empty() {
            break;
        }
        for (id, offset, len) in reads {
            bob.handle_file_read(id, offset, vec![0; len], now);
            read += len as u64;
        }
        assert!(
            read - sent <= bound,
            "bob holds {} bytes of file data read ahead (bound {bound})",
            read - sent
        );
    }
}

/// Found by `client_streams` (finding F4): a peer offers a file of `u64::MAX` bytes, and the
/// user accepts it from an offset at (or near) its end. `accept_file` clamps the offset to the
/// size, then `Incoming::accept` computes `credit_sent = written + window`: "attempt to add
/// with overflow" at `transfer/incoming.rs` (`Incoming::accept`; `Incoming::credit_end` has
/// the same sum). The size is the remote peer's claim and the offset the host's, so neither
/// may make the core panic.
#[test]
fn accepting_a_huge_offer_near_its_end_does_not_overflow_the_credit() {
    let now = Instant::now();
    let (mut bob, mut server) = logged_in_bob(now);
    let alice = name("alice");
    let id = TransferId(0);
    server.introduce(&mut bob, &alice, now);
    let offer = FileMessage::Offer {
        id,
        name: FileName::new("a.txt").unwrap(),
        size: u64::MAX,
        hash: [0; 32],
        repeat: false,
    };
    let offer = frames(&[server.relayed_file(&alice, &offer)]);
    server.feed(&mut bob, &offer, now);
    assert!(std::iter::from_fn(|| bob.poll_event())
        .any(|e| matches!(e, Event::File(FileEvent::Offered { .. }))));
    let _ = bob.accept_file(&alice, id, u64::MAX, now);
}
