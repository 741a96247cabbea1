//! File transfer through the smol driver and `DiskFiles`, over real loopback sockets, with real
//! files of several MiB in temporary directories.
//!
//! The receiver "restarting" here is an in-process stand-in: its `Client` handle is dropped
//! (the driver logs out) and a new client with a new `DiskFiles` starts on the same directory.
//! The real process kill is in `apps/client/tests/files_e2e.rs`.

use breeze_core::client::{Direction, Event, FileEvent};
use breeze_core::server::ServerConfig;
use breeze_core::wire::TransferId;
use breeze_core::Via;
use breeze_sim::loopback::{
    self, client_options, content, dirs, expect, listing, name, slow_relay, start_server_with,
    Dirs, TestServer, MIB,
};
use breeze_smol::{Client, DiskFiles, FileRequestError, Landed, MemoryHost};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Peer {
    client: Client,
    files: Arc<DiskFiles>,
}

fn start(server: SocketAddr, user: &str, direct: bool) -> Peer {
    let files = Arc::new(DiskFiles::new());
    let mut options = client_options(server, user);
    options.direct_channels = direct;
    options.files = files.clone();
    Peer {
        client: Client::start(options).unwrap(),
        files,
    }
}

async fn logged_in(peer: &Peer) {
    expect(&peer.client, "the login", |e| {
        matches!(e, Event::LoggedIn { .. })
    })
    .await;
}

async fn direct(peer: &Peer, other: &str) {
    loopback::direct(&peer.client, other).await;
}

async fn offered(bob: &Peer, id: TransferId) {
    expect(
        &bob.client,
        "the offer",
        |e| matches!(e, Event::File(FileEvent::Offered { id: i, .. }) if *i == id),
    )
    .await;
}

fn done(direction: Direction) -> impl Fn(&Event) -> bool {
    move |e| matches!(e, Event::File(FileEvent::Done { direction: d, .. }) if *d == direction)
}

fn verified(event: &Event) -> bool {
    matches!(event, Event::File(FileEvent::Done { verified: true, .. }))
}

#[test]
fn alice_sends_bob_a_file_directly_and_it_arrives_byte_for_byte() {
    smol::block_on(async {
        let server = start_server_with(MemoryHost::welcoming(), ServerConfig::default());
        let (alice, bob) = (
            start(server.addr, "alice", true),
            start(server.addr, "bob", true),
        );
        direct(&alice, "bob").await;
        direct(&bob, "alice").await;
        let dirs = dirs();
        let file = content(6 * MIB + 123, 1);
        let path = dirs.outbox.join("holiday photos.tar");
        std::fs::write(&path, &file).unwrap();

        let shared = alice.client.offer_file(&name("bob"), &path).await.unwrap();
        assert_eq!(shared.size, file.len() as u64);
        assert_eq!(shared.name.as_str(), "holiday photos.tar");
        offered(&bob, shared.id).await;
        let offset = bob
            .client
            .accept_file(&name("alice"), shared.id, &dirs.inbox)
            .await
            .unwrap();
        assert_eq!(offset, 0);

        let received = expect(&bob.client, "done", done(Direction::Receiving)).await;
        assert!(verified(&received), "{received:?}");
        let sent = expect(&alice.client, "done", done(Direction::Sending)).await;
        assert!(verified(&sent), "{sent:?}");
        let landed = dirs.inbox.join("holiday photos.tar");
        assert_eq!(
            bob.files.landed(&name("alice"), shared.id),
            Some(Landed::Complete(landed.clone()))
        );
        assert!(std::fs::read(&landed).unwrap() == file, "the same bytes");
        assert_eq!(listing(&dirs.inbox), ["holiday photos.tar"], "no leftovers");
        assert_eq!(server.stats.get().relayed_file_bytes, 0, "all of it direct");
    })
}

#[test]
fn without_direct_channels_the_file_goes_through_the_relay() {
    smol::block_on(async {
        let server = start_server_with(MemoryHost::welcoming(), ServerConfig::default());
        let (alice, bob) = (
            start(server.addr, "alice", false),
            start(server.addr, "bob", false),
        );
        logged_in(&alice).await;
        logged_in(&bob).await;
        let dirs = dirs();
        let file = content(5 * MIB, 2);
        let path = dirs.outbox.join("data.bin");
        std::fs::write(&path, &file).unwrap();

        let shared = alice.client.offer_file(&name("bob"), &path).await.unwrap();
        offered(&bob, shared.id).await;
        bob.client
            .accept_file(&name("alice"), shared.id, &dirs.inbox)
            .await
            .unwrap();
        let progress = expect(&alice.client, "progress", |e| {
            matches!(e, Event::File(FileEvent::Progress { .. }))
        })
        .await;
        assert!(
            matches!(
                progress,
                Event::File(FileEvent::Progress {
                    route: Via::Relay,
                    ..
                })
            ),
            "{progress:?}"
        );
        let received = expect(&bob.client, "done", done(Direction::Receiving)).await;
        assert!(verified(&received), "{received:?}");
        assert!(std::fs::read(dirs.inbox.join("data.bin")).unwrap() == file);
        assert!(server.stats.get().relayed_file_bytes >= file.len() as u64);
    })
}

#[test]
fn a_file_already_in_the_directory_is_never_overwritten() {
    smol::block_on(async {
        let server = start_server_with(MemoryHost::welcoming(), ServerConfig::default());
        let (alice, bob) = (
            start(server.addr, "alice", true),
            start(server.addr, "bob", true),
        );
        direct(&alice, "bob").await;
        let dirs = dirs();
        std::fs::create_dir(&dirs.inbox).unwrap();
        std::fs::write(dirs.inbox.join("notes.txt"), b"bob's own notes").unwrap();
        std::fs::write(dirs.inbox.join("notes (1).txt"), b"more of bob's notes").unwrap();
        let file = content(MIB, 3);
        let path = dirs.outbox.join("notes.txt");
        std::fs::write(&path, &file).unwrap();

        let shared = alice.client.offer_file(&name("bob"), &path).await.unwrap();
        offered(&bob, shared.id).await;
        bob.client
            .accept_file(&name("alice"), shared.id, &dirs.inbox)
            .await
            .unwrap();
        let received = expect(&bob.client, "done", done(Direction::Receiving)).await;
        assert!(verified(&received));
        assert_eq!(
            std::fs::read(dirs.inbox.join("notes.txt")).unwrap(),
            b"bob's own notes"
        );
        assert_eq!(
            std::fs::read(dirs.inbox.join("notes (1).txt")).unwrap(),
            b"more of bob's notes"
        );
        assert!(std::fs::read(dirs.inbox.join("notes (2).txt")).unwrap() == file);
        assert_eq!(
            bob.files.landed(&name("alice"), shared.id),
            Some(Landed::Complete(dirs.inbox.join("notes (2).txt")))
        );
    })
}

/// Bob receives part of alice's file over a slow relay, then his client goes away; the part
/// file stays in `inbox`. Returns the transfer id.
async fn interrupted_transfer(server: &TestServer, dirs: &Dirs, file: &[u8]) -> (Peer, TransferId) {
    let (alice, bob) = (
        start(server.addr, "alice", false),
        start(server.addr, "bob", false),
    );
    logged_in(&alice).await;
    logged_in(&bob).await;
    let path = dirs.outbox.join("big.iso");
    std::fs::write(&path, file).unwrap();
    let shared = alice.client.offer_file(&name("bob"), &path).await.unwrap();
    offered(&bob, shared.id).await;
    bob.client
        .accept_file(&name("alice"), shared.id, &dirs.inbox)
        .await
        .unwrap();
    expect(
        &bob.client,
        "a good part of the file",
        |e| matches!(e, Event::File(FileEvent::Progress { bytes, .. }) if *bytes >= 3 * MIB as u64),
    )
    .await;
    drop(bob);
    let part = dirs
        .inbox
        .join(format!(".big.iso.{}.breeze-part", shared.id));
    assert!(
        part.exists(),
        "the partial file is kept: {:?}",
        listing(&dirs.inbox)
    );
    // The old driver's writes already queued still land (a killed process's would not):
    // wait until the part file stops growing.
    let mut last = u64::MAX;
    loop {
        let len = std::fs::metadata(&part).unwrap().len();
        if len == last {
            break;
        }
        last = len;
        async_io::Timer::after(Duration::from_millis(300)).await;
    }
    (alice, shared.id)
}

/// The sender's side after the receiver went away: offered again, as a user would (or as the
/// core does by itself if the transfer did not fail meanwhile).
async fn offer_again(alice: &Peer, path: &std::path::Path, id: TransferId) {
    match alice.client.offer_file(&name("bob"), path).await {
        Ok(shared) => assert_eq!(shared.id, id, "the same file keeps its id"),
        Err(FileRequestError::Refused(_)) => {} // still active: the core offers it again itself
        Err(other) => panic!("cannot offer again: {other}"),
    }
}

#[test]
fn a_receiver_that_went_away_resumes_from_its_partial_file() {
    smol::block_on(async {
        let server = start_server_with(MemoryHost::welcoming(), slow_relay());
        let dirs = dirs();
        let file = content(8 * MIB, 4);
        let (alice, id) = interrupted_transfer(&server, &dirs, &file).await;
        let held = std::fs::metadata(dirs.inbox.join(format!(".big.iso.{id}.breeze-part")))
            .unwrap()
            .len();
        let bob = start(server.addr, "bob", false);
        logged_in(&bob).await;
        offer_again(&alice, &dirs.outbox.join("big.iso"), id).await;
        offered(&bob, id).await;
        let offset = bob
            .client
            .accept_file(&name("alice"), id, &dirs.inbox)
            .await
            .unwrap();
        assert_eq!(offset, held, "resumes from what is on disk");
        assert!(offset > 0);
        let accepted = expect(
            &alice.client,
            "the resumed accept",
            |e| matches!(e, Event::File(FileEvent::Accepted { offset, .. }) if *offset > 0),
        )
        .await;
        assert!(
            matches!(accepted, Event::File(FileEvent::Accepted { offset: o, .. }) if o == held)
        );
        let received = expect(&bob.client, "done", done(Direction::Receiving)).await;
        assert!(verified(&received), "{received:?}");
        assert!(std::fs::read(dirs.inbox.join("big.iso")).unwrap() == file);
        assert_eq!(listing(&dirs.inbox), ["big.iso"]);
        let relayed = server.stats.get().relayed_file_bytes;
        assert!(
            relayed < file.len() as u64 + held,
            "resumed, not restarted: {relayed} bytes relayed"
        );
    })
}

#[test]
fn a_corrupted_partial_file_is_detected_and_kept_aside() {
    smol::block_on(async {
        let server = start_server_with(MemoryHost::welcoming(), slow_relay());
        let dirs = dirs();
        let file = content(8 * MIB, 5);
        let (alice, id) = interrupted_transfer(&server, &dirs, &file).await;
        let part = dirs.inbox.join(format!(".big.iso.{id}.breeze-part"));
        let mut damaged = std::fs::read(&part).unwrap();
        damaged[1000] ^= 0xff;
        std::fs::write(&part, &damaged).unwrap();

        let bob = start(server.addr, "bob", false);
        logged_in(&bob).await;
        offer_again(&alice, &dirs.outbox.join("big.iso"), id).await;
        offered(&bob, id).await;
        bob.client
            .accept_file(&name("alice"), id, &dirs.inbox)
            .await
            .unwrap();
        let received = expect(&bob.client, "done", done(Direction::Receiving)).await;
        assert!(!verified(&received), "the damage is noticed: {received:?}");
        let sent = expect(&alice.client, "done", done(Direction::Sending)).await;
        assert!(!verified(&sent), "and the sender is told: {sent:?}");
        let corrupt = format!("big.iso.{id}.corrupt");
        assert_eq!(listing(&dirs.inbox), [corrupt.as_str()], "never as big.iso");
        assert_eq!(
            bob.files.landed(&name("alice"), id),
            Some(Landed::Corrupt(dirs.inbox.join(corrupt)))
        );
    })
}

#[test]
fn a_declined_offer_is_reported_and_nothing_is_written() {
    smol::block_on(async {
        let server = start_server_with(MemoryHost::welcoming(), ServerConfig::default());
        let (alice, bob) = (
            start(server.addr, "alice", true),
            start(server.addr, "bob", true),
        );
        direct(&alice, "bob").await;
        let dirs = dirs();
        let path = dirs.outbox.join("unwanted.bin");
        std::fs::write(&path, content(1000, 6)).unwrap();
        let shared = alice.client.offer_file(&name("bob"), &path).await.unwrap();
        offered(&bob, shared.id).await;
        bob.client
            .decline_file(&name("alice"), shared.id)
            .await
            .unwrap();
        expect(&alice.client, "the refusal", |e| {
            matches!(e, Event::File(FileEvent::Declined { .. }))
        })
        .await;
        let again = bob
            .client
            .accept_file(&name("alice"), shared.id, &dirs.inbox)
            .await;
        assert!(again.is_err(), "a declined offer cannot be accepted");
        assert!(!dirs.inbox.exists());
    })
}

#[test]
fn an_empty_file_arrives_too() {
    smol::block_on(async {
        let server = start_server_with(MemoryHost::welcoming(), ServerConfig::default());
        let (alice, bob) = (
            start(server.addr, "alice", true),
            start(server.addr, "bob", true),
        );
        direct(&alice, "bob").await;
        let dirs = dirs();
        let path = dirs.outbox.join("empty");
        std::fs::write(&path, b"").unwrap();
        let shared = alice.client.offer_file(&name("bob"), &path).await.unwrap();
        offered(&bob, shared.id).await;
        bob.client
            .accept_file(&name("alice"), shared.id, &dirs.inbox)
            .await
            .unwrap();
        let received = expect(&bob.client, "done", done(Direction::Receiving)).await;
        assert!(verified(&received));
        assert_eq!(std::fs::read(dirs.inbox.join("empty")).unwrap(), b"");
    })
}

#[test]
fn chat_is_not_held_up_behind_a_big_direct_transfer() {
    smol::block_on(async {
        let server = start_server_with(MemoryHost::welcoming(), ServerConfig::default());
        let (alice, bob) = (
            start(server.addr, "alice", true),
            start(server.addr, "bob", true),
        );
        direct(&alice, "bob").await;
        direct(&bob, "alice").await;
        let dirs = dirs();
        let path = dirs.outbox.join("big.bin");
        std::fs::write(&path, content(64 * MIB, 7)).unwrap();
        let shared = alice.client.offer_file(&name("bob"), &path).await.unwrap();
        offered(&bob, shared.id).await;
        bob.client
            .accept_file(&name("alice"), shared.id, &dirs.inbox)
            .await
            .unwrap();
        expect(
            &bob.client,
            "the transfer in full flow",
            |e| matches!(e, Event::File(FileEvent::Progress { bytes, .. }) if *bytes >= 8 * MIB as u64),
        )
        .await;
        let sent_at = Instant::now();
        alice
            .client
            .send(&name("bob"), "by the way".into())
            .await
            .unwrap();
        let mut file_done = false;
        let message = expect(&bob.client, "the chat message", |e| {
            matches!(
                e,
                Event::Message { .. } | Event::File(FileEvent::Done { .. })
            )
        })
        .await;
        if matches!(message, Event::File(FileEvent::Done { .. })) {
            file_done = true;
        }
        let took = sent_at.elapsed();
        assert!(!file_done, "the message waited for the whole file");
        assert!(
            took < Duration::from_millis(500),
            "chat waited {took:?} behind the file"
        );
    })
}
