//! A whole session recorded byte for byte, as an eavesdropper on the LAN would see it, and the
//! server's disk read as its operator (or a thief) would: neither holds a password, a message
//! or a file (docs/ARCHITECTURE.md §10).
//!
//! The clients run in process (the smol driver, so direct channels can be turned off at run
//! time); the server is the real `breeze-server` process with its SQLite store in a data
//! directory of its own (this crate cannot link the server app's `StoreHost` in process, and
//! only the real store shows what lands on the disk). Recording proxies stand in front of the
//! server's port and in front of alice's and bob's P2P ports (they advertise the proxies'
//! ports), so every connection of the session goes through one, whoever dials: login, direct
//! and relayed chat, a message for a user who logged in once and left, a file sent directly
//! and one relayed, and logging in again to the server restarted on the same port.

mod e2e_support;

use breeze_core::client::{ClientConfig, Direction, Event, FileEvent, Route};
use breeze_core::secure::IdentityKey;
use breeze_core::wire::{Chat, ClientFrame, MessageId, PeerFrame};
use breeze_core::Via;
use breeze_sim::loopback::{client_options, name, within, MIB};
use breeze_smol::ConfigTweak;
use e2e_support::{
    client_frame, fresh_key, peer_frame, split_records, Chatter, Proxy, Recorded, ServerProcess,
};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use smol::net::TcpStream;
use std::collections::HashSet;
use std::net::{Shutdown, SocketAddr};
use std::path::Path;
use std::sync::Arc;

// ---- what must never be seen ------------------------------------------------------------------

const ALICE_PASSWORD: &str = "alice: my cat's name, backwards, 4f7e1c";
const BOB_PASSWORD: &str = "bob: a passphrase nobody may read 93ad20";
const CAROL_PASSWORD: &str = "carol: kept in my head only b61f5e";

const DIRECT_TO_BOB: &str = "direct: the plum tree blossoms at dawn 1a2b3c";
const DIRECT_TO_ALICE: &str = "direct: meet me by the old mill 4d5e6f";
const RELAYED_TO_BOB: &str = "relayed: the server carries this sealed 7a8b9c";
const RELAYED_TO_ALICE: &str = "relayed: and this one back again 0d1e2f";
const OFFLINE_TO_CAROL: &str = "offline: wait for carol on the server disk 3a4b5c";
const AFTER_RESTART_TO_BOB: &str = "after the restart: still sealed 6d7e8f";
const AFTER_RESTART_TO_ALICE: &str = "after the restart: and back 9a0b1c";

const DIRECT_FILE_NAME: &str = "direct-capture-ledger-1c4e.bin";
const RELAYED_FILE_NAME: &str = "relayed-capture-ledger-9b07.bin";
const DIRECT_FILE_SIZE: usize = 2 * MIB + 321;
const RELAYED_FILE_SIZE: usize = MIB + 123;

/// Every string the recording and the disk must not hold, with a label for the failure.
fn secrets() -> Vec<(&'static str, &'static str)> {
    vec![
        ("alice's password", ALICE_PASSWORD),
        ("bob's password", BOB_PASSWORD),
        ("carol's password", CAROL_PASSWORD),
        ("a direct message", DIRECT_TO_BOB),
        ("a direct message", DIRECT_TO_ALICE),
        ("a relayed message", RELAYED_TO_BOB),
        ("a relayed message", RELAYED_TO_ALICE),
        ("the offline message", OFFLINE_TO_CAROL),
        ("a message after the restart", AFTER_RESTART_TO_BOB),
        ("a message after the restart", AFTER_RESTART_TO_ALICE),
        ("a direct file's name", DIRECT_FILE_NAME),
        ("a relayed file's name", RELAYED_FILE_NAME),
    ]
}

/// Bytes no pattern explains (xorshift64*), so that any 31 bytes of a file in the clear are
/// recognised as the file's, and nothing else is.
fn random_content(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

// ---- finding them -----------------------------------------------------------------------------

/// Whether `needle` occurs in `haystack`.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    let Some((&first, rest)) = needle.split_first() else {
        return true;
    };
    let last_start = match haystack.len().checked_sub(needle.len()) {
        Some(last) => last,
        None => return false,
    };
    (0..=last_start).any(|i| haystack[i] == first && haystack[i + 1..i + needle.len()] == *rest)
}

/// Every 16-byte block of some files (at offsets that are multiples of 16): any 31 bytes in a
/// row of one of those files hold a whole block, wherever they start.
struct FileBlocks(HashSet<[u8; 16]>);

impl FileBlocks {
    fn of(files: &[&[u8]]) -> FileBlocks {
        let mut blocks = HashSet::new();
        for file in files {
            for block in file.chunks_exact(16) {
                blocks.insert(block.try_into().expect("16 bytes"));
            }
        }
        FileBlocks(blocks)
    }

    /// Where in `bytes` a block of the files starts, if anywhere.
    fn found_in(&self, bytes: &[u8]) -> Option<usize> {
        bytes.windows(16).position(|w| {
            let block: [u8; 16] = w.try_into().expect("16 bytes");
            self.0.contains(&block)
        })
    }
}

/// What the recordings hold that they must not: a label and where, for each find.
fn leaks(streams: &[(String, Vec<u8>)], blocks: &FileBlocks) -> Vec<String> {
    let mut found = Vec::new();
    for (stream, bytes) in streams {
        for (label, secret) in secrets() {
            if contains(bytes, secret.as_bytes()) {
                found.push(format!("{label} ({secret:?}) in {stream}"));
            }
        }
        if let Some(at) = blocks.found_in(bytes) {
            found.push(format!("file content at byte {at} of {stream}"));
        }
    }
    found
}

/// Every file under `dir` (the server's data directory: the database, its WAL, the key), by
/// name, as bytes.
fn files_under(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("the data directory reads") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else if let Ok(bytes) = std::fs::read(&path) {
            files.push((path.display().to_string(), bytes));
        }
    }
    files
}

/// The checks of what the server keeps on disk, which must be able to fail: the bytes read
/// are the store's (the account names are in there, in the clear), and none of the secrets.
fn check_the_disk(data: &Path, blocks: &FileBlocks, when: &str) {
    let files = files_under(data);
    let database: Vec<u8> = files
        .iter()
        .filter(|(name, _)| name.contains("sqlite"))
        .flat_map(|(_, bytes)| bytes.iter().copied())
        .collect();
    assert!(
        !database.is_empty(),
        "{when}: no database in {}: {:?}",
        data.display(),
        files.iter().map(|(name, _)| name).collect::<Vec<_>>()
    );
    for user in ["alice", "bob", "carol"] {
        assert!(
            contains(&database, user.as_bytes()),
            "{when}: the account {user} is not in what was read as the database"
        );
    }
    let found = leaks(&files, blocks);
    assert!(
        found.is_empty(),
        "{when}, the server's disk holds {found:#?}"
    );
}

// ---- recording ------------------------------------------------------------------------------

/// The support's recording [`Proxy`], named for failure messages.
struct Recorder {
    label: &'static str,
    proxy: Proxy,
    addr: SocketAddr,
}

impl Recorder {
    fn start(label: &'static str) -> Recorder {
        let proxy = Proxy::start();
        let addr = proxy.addr;
        Recorder { label, proxy, addr }
    }

    fn forward_to(&self, target: SocketAddr) {
        self.proxy.forward_to(target);
    }

    /// Each direction of each connection so far, named for a failure message.
    fn streams(&self) -> Vec<(String, Vec<u8>)> {
        let recorded = self.proxy.recorded();
        recorded
            .into_iter()
            .enumerate()
            .flat_map(|(i, c)| {
                [
                    (
                        format!("{} connection {i}, dialer to acceptor", self.label),
                        c.from_dialer,
                    ),
                    (
                        format!("{} connection {i}, acceptor to dialer", self.label),
                        c.from_acceptor,
                    ),
                ]
            })
            .collect()
    }

    fn recorded(&self) -> Vec<Recorded> {
        self.proxy.recorded()
    }

    fn connections(&self) -> usize {
        self.proxy.recorded().len()
    }

    fn total_bytes(&self) -> usize {
        self.streams().iter().map(|(_, bytes)| bytes.len()).sum()
    }
}

/// What a recorder recorded of `bytes` sent through it in the clear, once a sink behind it
/// has read them all.
async fn plaintext_through_a_recorder(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let sink = std::net::TcpListener::bind("127.0.0.1:0").expect("cannot bind");
    let sink = smol::net::TcpListener::try_from(sink).expect("cannot register");
    let recorder = Recorder::start("a plaintext control");
    recorder.forward_to(sink.local_addr().expect("a local address"));
    let reading = smol::spawn(async move {
        let (mut stream, _) = sink.accept().await.expect("the recorder connects");
        let mut got = Vec::new();
        stream.read_to_end(&mut got).await.expect("the sink reads");
        got
    });
    let mut dialer = within("a connection", TcpStream::connect(recorder.addr))
        .await
        .expect("the recorder accepts");
    within("the write", dialer.write_all(bytes))
        .await
        .expect("the write");
    dialer.shutdown(Shutdown::Write).expect("the shutdown");
    assert!(
        within("the sink", reading).await == bytes,
        "forwarded as sent"
    );
    recorder.streams()
}

// ---- the users ------------------------------------------------------------------------------

/// `user` of the server behind `server` (the recorder's address), with `password` and the
/// profile key `key`; with a `p2p` recorder, it advertises that recorder's port to peers
/// (which forwards to the real one), else it has direct channels off.
fn start_user(
    server: SocketAddr,
    user: &str,
    password: &str,
    key: &IdentityKey,
    p2p: Option<&Recorder>,
) -> Chatter {
    let mut options = client_options(server, user);
    options.password = password.to_owned();
    options.identity = Some(key.clone());
    options.direct_channels = p2p.is_some();
    if let Some(recorder) = p2p {
        let port = recorder.addr.port();
        let tweak: ConfigTweak = Arc::new(move |config: &mut ClientConfig| config.p2p_port = port);
        options.tweak = Some(tweak);
    }
    let chatter = Chatter::start(options);
    if let Some(recorder) = p2p {
        recorder.forward_to(chatter.client.p2p_addr().expect("it listens for peers"));
    }
    chatter
}

fn user_of(chatter: &Chatter) -> String {
    chatter.client.user().as_str().to_owned()
}

async fn logged_in(chatter: &mut Chatter) {
    chatter
        .expect("its login", |e| matches!(e, Event::LoggedIn { .. }))
        .await;
}

async fn route_is(chatter: &mut Chatter, peer: &str, route: Route) {
    let peer = name(peer);
    chatter
        .expect(
            &format!("the route to {peer} {route}"),
            |e| matches!(e, Event::Route { peer: p, route: r, .. } if *p == peer && *r == route),
        )
        .await;
}

/// `from` sends `text` to `to`: it arrives as the next message, on `via`, and `from` hears it
/// was delivered.
async fn chat(from: &mut Chatter, to: &mut Chatter, text: &str, via: Via) {
    let recipient = name(&user_of(to));
    let id = from
        .client
        .send(&recipient, text.to_owned())
        .await
        .unwrap_or_else(|e| panic!("{} cannot send: {e}", user_of(from)));
    let got = within("the message", to.next_message()).await;
    assert_eq!(got, (name(&user_of(from)), text.to_owned(), via));
    delivered(from, id, via).await;
}

async fn delivered(from: &mut Chatter, id: MessageId, via: Via) {
    from.expect(
        "the delivery",
        |e| matches!(e, Event::Delivered { id: i, route, .. } if *i == id && *route == via),
    )
    .await;
}

/// `from` sends `to` the file `content` (written as `file_name` in `outbox`), `to` accepts it
/// into `inbox`: both see it done and verified, it landed byte for byte, and every chunk went
/// on `via`.
async fn send_file(
    from: &mut Chatter,
    to: &mut Chatter,
    (outbox, inbox): (&Path, &Path),
    file_name: &str,
    content: &[u8],
    via: Via,
) {
    let path = outbox.join(file_name);
    std::fs::write(&path, content).expect("the file to send");
    let offered = from
        .client
        .offer_file(&name(&user_of(to)), &path)
        .await
        .expect("the offer");
    let id = offered.id;
    to.expect(
        "the offer",
        |e| matches!(e, Event::File(FileEvent::Offered { id: i, .. }) if *i == id),
    )
    .await;
    let sender = name(&user_of(from));
    let offset = to
        .client
        .accept_file(&sender, id, inbox)
        .await
        .expect("the accept");
    assert_eq!(offset, 0);
    for (side, direction) in [
        (&mut *to, Direction::Receiving),
        (&mut *from, Direction::Sending),
    ] {
        let done = side
            .expect("the transfer done", |e| {
                matches!(e, Event::File(FileEvent::Done { id: i, direction: d, .. }) if *i == id && *d == direction)
            })
            .await;
        assert!(
            matches!(done, Event::File(FileEvent::Done { verified: true, .. })),
            "{done:?}"
        );
    }
    let landed = std::fs::read(inbox.join(file_name)).expect("the file landed");
    assert!(landed == content, "{file_name} arrived byte for byte");
    let routes: HashSet<Via> = from
        .log
        .iter()
        .filter_map(|e| match e {
            Event::File(FileEvent::Progress {
                id: i,
                direction: Direction::Sending,
                route,
                ..
            }) if *i == id => Some(*route),
            _ => None,
        })
        .collect();
    assert_eq!(routes, HashSet::from([via]), "{file_name} went {via} only");
}

// ---- the story --------------------------------------------------------------------------------

#[test]
fn a_recorded_session_and_the_servers_disk_hold_no_password_message_or_file() {
    let data = tempfile::tempdir().expect("a data directory");
    for (user, password) in [
        ("alice", ALICE_PASSWORD),
        ("bob", BOB_PASSWORD),
        ("carol", CAROL_PASSWORD),
    ] {
        ServerProcess::add_user(data.path(), user, password);
    }
    let files = tempfile::tempdir().expect("a directory for the files");
    let (outbox, inbox) = (files.path().join("outbox"), files.path().join("inbox"));
    std::fs::create_dir(&outbox).expect("the outbox");
    let direct_file = random_content(DIRECT_FILE_SIZE, 0x5eed_0001);
    let relayed_file = random_content(RELAYED_FILE_SIZE, 0x5eed_0002);
    let blocks = FileBlocks::of(&[&direct_file, &relayed_file]);
    let keys = [fresh_key(), fresh_key(), fresh_key()];
    let [alice_key, bob_key, carol_key] = &keys;

    // The checks can fail: sent in the clear (as login and chat frames, and slices of the
    // files), through a recorder like the ones below, every secret is found.
    let mut plaintext = Vec::new();
    for password in [ALICE_PASSWORD, BOB_PASSWORD, CAROL_PASSWORD] {
        plaintext.extend(client_frame(&ClientFrame::Login {
            user: name("alice"),
            password: password.into(),
            p2p_port: 1,
            register: false,
        }));
    }
    for (_, text) in secrets() {
        plaintext.extend(peer_frame(&PeerFrame::Chat(Chat {
            id: MessageId(1),
            epoch: 1,
            seq: 1,
            first_unacked: 1,
            text: text.into(),
        })));
    }
    let in_the_clear = smol::block_on(plaintext_through_a_recorder(&plaintext));
    let found = leaks(&in_the_clear, &blocks);
    for (label, secret) in secrets() {
        assert!(
            found.iter().any(|f| f.contains(&format!("{secret:?}"))),
            "{label} sent in the clear was not found: {found:#?}"
        );
    }
    for (file, start) in [(&direct_file, 123_457), (&relayed_file, 999_999)] {
        let mut slice = vec![7u8; 5];
        slice.extend_from_slice(&file[start..start + 31]);
        let in_the_clear = smol::block_on(plaintext_through_a_recorder(&slice));
        let found = leaks(&in_the_clear, &blocks);
        assert!(
            found.iter().any(|f| f.starts_with("file content at byte ")),
            "31 bytes of a file in the clear were not found: {found:#?}"
        );
    }

    let server_recorder = Recorder::start("server port");
    let alice_recorder = Recorder::start("alice's P2P port");
    let bob_recorder = Recorder::start("bob's P2P port");
    let server = ServerProcess::start(data.path(), "127.0.0.1:0");
    let server_addr = server.addr;
    server_recorder.forward_to(server_addr);
    let via_recorder = server_recorder.addr;

    let (server, alice, bob) = smol::block_on(async {
        // carol logs in once (the server binds her key) and leaves.
        let mut carol = start_user(via_recorder, "carol", CAROL_PASSWORD, carol_key, None);
        logged_in(&mut carol).await;
        carol.client.logout().await;
        carol
            .expect("her logout", |e| matches!(e, Event::LoggedOut))
            .await;
        drop(carol);

        let mut alice = start_user(
            via_recorder,
            "alice",
            ALICE_PASSWORD,
            alice_key,
            Some(&alice_recorder),
        );
        let mut bob = start_user(
            via_recorder,
            "bob",
            BOB_PASSWORD,
            bob_key,
            Some(&bob_recorder),
        );
        route_is(&mut alice, "bob", Route::Direct).await;
        route_is(&mut bob, "alice", Route::Direct).await;

        // Direct: chat and a file.
        chat(&mut alice, &mut bob, DIRECT_TO_BOB, Via::Direct).await;
        chat(&mut bob, &mut alice, DIRECT_TO_ALICE, Via::Direct).await;
        let boxes = (outbox.as_path(), inbox.as_path());
        let file = (DIRECT_FILE_NAME, &direct_file[..]);
        send_file(&mut alice, &mut bob, boxes, file.0, file.1, Via::Direct).await;

        // For carol, who is away: the server keeps it.
        let offline = alice
            .client
            .send(&name("carol"), OFFLINE_TO_CAROL.into())
            .await
            .expect("the send");
        alice
            .expect(
                "the message stored",
                |e| matches!(e, Event::Stored { id, .. } if *id == offline),
            )
            .await;

        // Relayed: direct channels off at run time, chat and a file through the server.
        alice.client.set_direct_channels(false).await;
        bob.client.set_direct_channels(false).await;
        route_is(&mut alice, "bob", Route::Relay).await;
        route_is(&mut bob, "alice", Route::Relay).await;
        chat(&mut alice, &mut bob, RELAYED_TO_BOB, Via::Relay).await;
        chat(&mut bob, &mut alice, RELAYED_TO_ALICE, Via::Relay).await;
        let file = (RELAYED_FILE_NAME, &relayed_file[..]);
        send_file(&mut bob, &mut alice, boxes, file.0, file.1, Via::Relay).await;

        // The server's disk while it keeps carol's message.
        check_the_disk(data.path(), &blocks, "with the offline message stored");

        // The server goes down and comes back on the same port: both log in again.
        server.kill();
        for chatter in [&mut alice, &mut bob] {
            chatter
                .expect("losing the server", |e| {
                    matches!(e, Event::ServerLost { .. })
                })
                .await;
        }
        let server = ServerProcess::start(data.path(), &server_addr.to_string());
        assert_eq!(server.addr, server_addr);
        logged_in(&mut alice).await;
        logged_in(&mut bob).await;
        chat(&mut alice, &mut bob, AFTER_RESTART_TO_BOB, Via::Relay).await;
        chat(&mut bob, &mut alice, AFTER_RESTART_TO_ALICE, Via::Relay).await;

        // carol is back (same key): her message was kept across the restart.
        let mut carol = start_user(via_recorder, "carol", CAROL_PASSWORD, carol_key, None);
        logged_in(&mut carol).await;
        let got = within("carol's message", carol.next_message()).await;
        assert_eq!((got.0, got.1.as_str()), (name("alice"), OFFLINE_TO_CAROL));
        alice
            .expect(
                "the offline message delivered",
                |e| matches!(e, Event::Delivered { id, .. } if *id == offline),
            )
            .await;
        carol.client.logout().await;
        for chatter in [&alice, &bob] {
            chatter.client.logout().await;
        }
        (server, alice, bob)
    });

    // What the clients received holds every text in the clear: what the wire does not.
    let received: Vec<String> = [&alice, &bob]
        .iter()
        .flat_map(|c| c.log.iter())
        .filter_map(|e| match e {
            Event::Message { text, .. } => Some(text.clone()),
            _ => None,
        })
        .collect();
    for text in [
        DIRECT_TO_BOB,
        DIRECT_TO_ALICE,
        RELAYED_TO_BOB,
        RELAYED_TO_ALICE,
        AFTER_RESTART_TO_BOB,
        AFTER_RESTART_TO_ALICE,
    ] {
        assert!(received.iter().any(|t| t == text), "{text:?} was received");
    }
    drop((alice, bob));

    let (status, log) = server.terminate();
    assert!(status.success(), "SIGTERM is a clean stop: {status}");

    // The recording saw the whole session: every login (carol twice, alice and bob before
    // and after the restart), the direct file through the P2P ports, the relayed one through
    // the server's.
    assert!(
        server_recorder.connections() >= 6,
        "{} server connections recorded",
        server_recorder.connections()
    );
    let p2p_bytes = alice_recorder.total_bytes() + bob_recorder.total_bytes();
    assert!(
        p2p_bytes >= DIRECT_FILE_SIZE,
        "only {p2p_bytes} bytes recorded on the P2P ports, less than the direct file"
    );
    let server_bytes = server_recorder.total_bytes();
    assert!(
        server_bytes >= RELAYED_FILE_SIZE,
        "only {server_bytes} bytes recorded on the server port, less than the relayed file"
    );

    // What was recorded is the wire itself: every client connection opens with the first
    // message of an XX handshake (its ephemeral key, an empty payload), in the clear.
    for (i, recorded) in server_recorder.recorded().iter().enumerate() {
        let (records, _) = split_records(&recorded.from_dialer);
        assert_eq!(
            records.first().map(Vec::len),
            Some(2 + 32),
            "server connection {i} does not start with a handshake"
        );
    }

    let mut streams = server_recorder.streams();
    streams.extend(alice_recorder.streams());
    streams.extend(bob_recorder.streams());
    let found = leaks(&streams, &blocks);
    assert!(found.is_empty(), "the recording holds {found:#?}");

    check_the_disk(data.path(), &blocks, "after the session");
    let log = log.join("\n");
    let found = leaks(&[("the server's log".into(), log.into_bytes())], &blocks);
    assert!(found.is_empty(), "the server's log holds {found:#?}");
}
