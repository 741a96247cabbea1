//! Attackers on real loopback sockets, against the smol server driver and a smol client's P2P
//! port, while alice and bob chat beside them.
//!
//! Every story has the same shape: alice and bob exchange numbered messages before, during
//! and after the attack (through the server when the server is attacked, over their direct
//! channel when bob's P2P port is), and every message must arrive exactly once, in order, on
//! that route.
//!
//! Every connection is encrypted: a Noise handshake first (XX to the server, IK between
//! peers), sealed records after it. So an attack is made twice where both make sense:
//! - as the very first bytes, in the handshake: nothing can be said back before the
//!   handshake is through, so the attacker must get nothing at all but the close, and the
//!   close must come when it should (at once for what can never become a handshake, at the
//!   deadline for what might still);
//! - sealed, after a correct handshake: the attacker must be cut off with a clear word, the
//!   error frame (or login refusal) it is owed, opened and decoded from what came back, and
//!   then the close.

mod e2e_support;

use breeze_core::client::{ClientConfig, Event, LinkError, ServerLinkError};
use breeze_core::codec::{encode_frame, DEFAULT_MAX_FRAME};
use breeze_core::secure::{Handshake, HandshakeError, LinkKind, PairKey, PublicKey, RecordError};
use breeze_core::server::{OfflineChat, ServerConfig, StoreOutcome};
use breeze_core::wire::UserName;
use breeze_core::wire::{
    Chat, ClientFrame, ErrorCode, LoginRefusal, MessageId, PeerFrame, SealedChat, ServerFrame,
    PROTOCOL_VERSION,
};
use breeze_core::Via;
use breeze_sim::loopback::{
    accounts, client_options, name, start_server, start_server_on_threads, within, TestServer,
    PASSWORD,
};
use breeze_smol::{ConfigTweak, MemoryHost, ServerHost};
use e2e_support::{
    client_frame, flip_one_bit, framed_record, fresh_key, fresh_rng, log_in_securely, peer_frame,
    split_records, Chatter, Conversation, Proxy, Secure, Wire,
};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Messages each way before, during and after an attack.
const BATCH: usize = 5;

/// How long a server gives a new connection to log in, here (the default is 10 s).
const LOGIN_TIMEOUT: Duration = Duration::from_secs(2);
/// How long bob gives a peer connection to authenticate, here (the default is 5 s).
const SETUP_TIMEOUT: Duration = Duration::from_secs(2);

/// A server for alice and bob, and carol (whom the tests play from bare sockets).
fn server(login_timeout: Duration) -> TestServer {
    let mut config = ServerConfig::default();
    config.login_timeout = login_timeout;
    start_server(&["alice", "bob", "carol"], config)
}

/// alice and bob chatting through `server`'s relay (direct channels off).
async fn relayed_chat(server: &TestServer) -> Conversation {
    Conversation::start(server.addr, Via::Relay, None).await
}

fn shorter_setup(config: &mut ClientConfig) {
    config.setup_timeout = SETUP_TIMEOUT;
}

/// alice and bob chatting over their direct channel; bob's setup deadline is shortened.
async fn direct_chat(server: &TestServer) -> Conversation {
    let tweak: ConfigTweak = Arc::new(shorter_setup);
    Conversation::start(server.addr, Via::Direct, Some(tweak)).await
}

/// Like [`direct_chat`], with alice's channel going through `proxy`: bob advertises the
/// proxy's port and the proxy forwards to his real one, so the test sees what alice sends.
async fn direct_chat_through(server: &TestServer, proxy: &Proxy) -> Conversation {
    let port = proxy.addr.port();
    let tweak: ConfigTweak = Arc::new(move |config: &mut ClientConfig| {
        shorter_setup(config);
        config.p2p_port = port;
    });
    let mut bob = client_options(server.addr, "bob");
    bob.tweak = Some(tweak);
    let bob = Chatter::start(bob);
    proxy.forward_to(bob.client.p2p_addr().expect("bob listens for peers"));
    let alice = Chatter::start(client_options(server.addr, "alice"));
    Conversation::between(alice, bob, Via::Direct).await
}

fn bobs_p2p_port(chat: &Conversation) -> std::net::SocketAddr {
    chat.bob.client.p2p_addr().expect("bob listens for peers")
}

/// The key the server vouched for as `user`'s, as `chatter` learned it: what anyone the
/// server introduces `user` to is told.
fn key_learned(chatter: &Chatter, user: &str) -> PublicKey {
    let user = name(user);
    chatter
        .log
        .iter()
        .find_map(|e| match e {
            Event::PeerKeyLearned { user: u, key } if *u == user => Some(*key),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{} learned no key for {user}", chatter.client.user()))
}

// ---- what attackers send ---------------------------------------------------------------------

/// A handshake message of 16 bytes of noise: too short to be anyone's first (both patterns
/// start with a 32-byte ephemeral key).
fn garbage_message() -> Vec<u8> {
    framed_record(&[0xff; 16])
}

/// A plausible frame length, then noise that is no message at all.
fn garbage() -> Vec<u8> {
    let mut bytes = vec![0, 0, 0, 16];
    bytes.extend_from_slice(&[0xff; 16]);
    bytes
}

/// No bytes at all: all that may come back before a handshake is through.
const NOTHING: [u8; 0] = [];

/// A frame prefix announcing a 4 GiB frame.
const HUGE_PREFIX: [u8; 4] = [0xff; 4];

/// A record prefix announcing the largest record there is (64 KiB): the most a handshake
/// message can ask the other side to wait for.
const BIGGEST_RECORD_PREFIX: [u8; 2] = [0xff; 2];

/// A whole frame whose message tag (postcard varint 200) names no message.
fn unknown_tag() -> Vec<u8> {
    vec![0, 0, 0, 2, 0xc8, 0x01]
}

/// A frame whose payload is the single byte 200.
fn byte_200() -> Vec<u8> {
    vec![0, 0, 0, 1, 200]
}

/// The first half of `bytes`.
fn first_half(bytes: &[u8]) -> Vec<u8> {
    bytes[..bytes.len() / 2].to_vec()
}

/// A client's first XX message, as anyone could make it.
fn xx_first_message() -> Vec<u8> {
    Handshake::initiator(LinkKind::ClientServer, &fresh_key(), None, &mut fresh_rng())
        .unwrap()
        .write(&[])
        .unwrap()
}

/// mallory's first IK message to bob: encrypted to bob's key (which the server gives anyone
/// it introduces bob to), proving a key of her own, claiming to be `claimed`.
fn mallorys_first_message(bob: &PublicKey, claimed: &str) -> Vec<u8> {
    Handshake::initiator(LinkKind::Peer, &fresh_key(), Some(bob), &mut fresh_rng())
        .unwrap()
        .write(claimed.as_bytes())
        .unwrap()
}

/// The `seq`th chat message of a sender, its first ever being 1.
fn chat_message(seq: u64, text: &str) -> Chat {
    Chat {
        id: MessageId(seq),
        epoch: 1,
        seq,
        first_unacked: 1,
        text: text.into(),
    }
}

/// A chat message claiming to be the first alice ever sent.
fn spoofed_chat() -> Chat {
    chat_message(1, "spoofed")
}

/// A relayed chat message whose seal is noise: numbers the server can read, a text nobody
/// can.
fn spoofed_sealed_chat() -> SealedChat {
    let chat = spoofed_chat();
    SealedChat {
        id: chat.id,
        epoch: chat.epoch,
        seq: chat.seq,
        first_unacked: chat.first_unacked,
        sealed: vec![0x5a; 64],
    }
}

fn server_frame(frame: &ServerFrame) -> Vec<u8> {
    let mut bytes = Vec::new();
    encode_frame(frame, DEFAULT_MAX_FRAME, &mut bytes).expect("the frame fits");
    bytes
}

fn server_error(code: ErrorCode) -> ServerFrame {
    ServerFrame::Error { code }
}

fn peer_error(code: ErrorCode) -> PeerFrame {
    PeerFrame::Error { code }
}

/// A wrong guess at alice's password, sealed, from the start of the channel.
fn guess(i: usize) -> Vec<u8> {
    let mut bytes = client_frame(&ClientFrame::Hello {
        version: PROTOCOL_VERSION,
    });
    bytes.extend(client_frame(&ClientFrame::Login {
        user: name("alice"),
        password: format!("guess {i}").into(),
        p2p_port: 1,
        register: false,
    }));
    bytes
}

/// What a refused login gets: the server's hello, then the refusal.
fn refused(reason: LoginRefusal) -> Vec<ServerFrame> {
    vec![
        ServerFrame::Hello {
            version: PROTOCOL_VERSION,
        },
        ServerFrame::LoginRefused { reason },
    ]
}

// ---- what must happen ------------------------------------------------------------------------

/// When a connection must be cut, measured from just before it was opened.
#[derive(Debug, Clone, Copy)]
enum Cut {
    /// Before the deadline: what arrived can never become a handshake (or a frame).
    AtOnce,
    /// Not before the deadline: what arrived might still, so it is waited for, no longer.
    AtTheDeadline,
}

impl Cut {
    fn check(self, elapsed: Duration, deadline: Duration) {
        match self {
            Cut::AtOnce => assert!(
                elapsed < deadline,
                "cut after {elapsed:?}: it should not have been held until the {deadline:?} deadline"
            ),
            Cut::AtTheDeadline => assert!(
                elapsed >= deadline,
                "cut after {elapsed:?}, before the {deadline:?} deadline"
            ),
        }
    }
}

/// bob reported a rejected peer link, claiming `claimed`, for `error`.
fn rejection(claimed: Option<&str>, error: LinkError) -> impl Fn(&Event) -> bool {
    let claimed = claimed.map(name);
    move |e| matches!(e, Event::PeerRejected { claimed: c, error: why } if *c == claimed && *why == error)
}

fn assert_no_rejections(chatter: &Chatter) {
    let rejected: Vec<&Event> = chatter
        .log
        .iter()
        .filter(|e| matches!(e, Event::PeerRejected { .. }))
        .collect();
    assert!(
        rejected.is_empty(),
        "{} rejected links: {rejected:?}",
        chatter.client.user()
    );
}

/// Waits until `server` counts `online` users.
async fn online_becomes(server: &TestServer, online: usize) {
    within(&format!("{online} users online"), async {
        while server.stats.get().online != online {
            async_io::Timer::after(Duration::from_millis(10)).await;
        }
    })
    .await;
}

fn route_changes(chatter: &Chatter) -> usize {
    chatter
        .log
        .iter()
        .filter(|e| matches!(e, Event::Route { .. }))
        .count()
}

/// An attacker opens a connection to the server and sends `attack` as its first bytes while
/// alice and bob chat through it: it must get not a byte back, and the close, `when` due.
fn the_server_hangs_up_on(attack: &[u8], when: Cut) {
    smol::block_on(async {
        let server = server(LOGIN_TIMEOUT);
        let mut chat = relayed_chat(&server).await;
        chat.exchange(BATCH).await;
        let opened = Instant::now();
        let mut attacker = Wire::connect(server.addr).await;
        attacker.send(attack).await;
        chat.exchange(BATCH).await;
        assert_eq!(
            attacker.bytes_until_closed().await,
            NOTHING,
            "nothing can be said before the handshake is through"
        );
        when.check(opened.elapsed(), LOGIN_TIMEOUT);
        chat.exchange(BATCH).await;
        let stats = server.stats.get();
        assert_eq!(stats.online, 2, "alice and bob are still online");
        assert_eq!(stats.connections, 2, "the attacker's connection is gone");
    })
}

/// An attacker completes a handshake with the server, then sends `attack` sealed, while alice
/// and bob chat through it; it must get exactly `owed` back (sealed), then the close, `when`
/// due.
fn the_server_cuts_off(attack: &[u8], owed: &[ServerFrame], when: Cut) {
    smol::block_on(async {
        let server = server(LOGIN_TIMEOUT);
        let mut chat = relayed_chat(&server).await;
        chat.exchange(BATCH).await;
        let opened = Instant::now();
        let mut attacker = Secure::to_server(server.addr).await;
        attacker.send_sealed(attack).await;
        chat.exchange(BATCH).await;
        assert_eq!(attacker.frames_until_closed().await, owed);
        when.check(opened.elapsed(), LOGIN_TIMEOUT);
        chat.exchange(BATCH).await;
        assert_eq!(
            server.stats.get().online,
            2,
            "alice and bob are still online"
        );
    })
}

/// An attacker sends `attack` as the first bytes of a connection to bob's P2P port while
/// alice and bob chat directly: it must get not a byte back, and the close, `when` due; bob
/// reports the link rejected for `rejected` (with no name claimed), or nothing at all.
fn bob_hangs_up_on(attack: &[u8], when: Cut, rejected: Option<LinkError>) {
    smol::block_on(async {
        let server = server(LOGIN_TIMEOUT);
        let mut chat = direct_chat(&server).await;
        chat.exchange(BATCH).await;
        let opened = Instant::now();
        let mut attacker = Wire::connect(bobs_p2p_port(&chat)).await;
        attacker.send(attack).await;
        chat.exchange(BATCH).await;
        assert_eq!(
            attacker.bytes_until_closed().await,
            NOTHING,
            "nothing can be said before the handshake is through"
        );
        when.check(opened.elapsed(), SETUP_TIMEOUT);
        match rejected {
            Some(error) => {
                chat.bob
                    .expect_seen("the rejection", rejection(None, error))
                    .await;
            }
            None => {
                chat.exchange(BATCH).await;
                assert_no_rejections(&chat.bob);
            }
        }
        chat.exchange(BATCH).await;
        assert_eq!(
            server.stats.get().relayed_text_bytes,
            0,
            "no chat took the relay"
        );
    })
}

/// carol logs in from bare sockets (advertising no P2P port, so nobody dials her) and dials
/// bob: IK to the key the server introduced bob with, at the endpoint it gave. Returns her
/// server session (kept open, so she stays online), her channel to bob (its handshake
/// through, nothing sent on it yet) and when she started dialling.
async fn carol_dials_bob(
    server: &TestServer,
    chat: &Conversation,
) -> (Secure<ServerFrame>, Secure<PeerFrame>, Instant) {
    let key = fresh_key();
    let (session, intros) = log_in_securely(server.addr, "carol", &key, 0).await;
    let bob = intros
        .into_iter()
        .find(|intro| intro.user == name("bob"))
        .expect("the server introduces bob to carol");
    assert_eq!(Some(bob.endpoint), chat.bob.client.p2p_addr());
    assert_eq!(
        bob.key,
        key_learned(&chat.alice, "bob"),
        "carol is told the key alice was told"
    );
    let dialed = Instant::now();
    let link = Secure::to_peer(bob.endpoint, &key, &bob.key, "carol").await;
    assert_eq!(
        link.remote, bob.key,
        "the channel reached the holder of bob's key"
    );
    (session, link, dialed)
}

/// carol opens a genuine direct channel to bob, then sends `attack` sealed as her first
/// record while alice and bob chat directly: she must get exactly `owed` back (sealed), then
/// the close, `when` due; bob reports the link rejected for `rejected` (carol's claim), or
/// nothing at all.
fn bob_cuts_off(attack: &[u8], owed: &[PeerFrame], when: Cut, rejected: Option<LinkError>) {
    smol::block_on(async {
        let server = server(LOGIN_TIMEOUT);
        let mut chat = direct_chat(&server).await;
        chat.exchange(BATCH).await;
        let (_session, mut carol, dialed) = carol_dials_bob(&server, &chat).await;
        carol.send_sealed(attack).await;
        chat.exchange(BATCH).await;
        assert_eq!(carol.frames_until_closed().await, owed);
        when.check(dialed.elapsed(), SETUP_TIMEOUT);
        match rejected {
            Some(error) => {
                chat.bob
                    .expect_seen("the rejection", rejection(Some("carol"), error))
                    .await;
            }
            None => {
                chat.exchange(BATCH).await;
                assert_no_rejections(&chat.bob);
            }
        }
        chat.exchange(BATCH).await;
        assert_eq!(
            server.stats.get().relayed_text_bytes,
            0,
            "no chat took the relay"
        );
    })
}

// ---- against the server --------------------------------------------------------------------

#[test]
fn garbage_on_the_server_port_is_closed_at_once_before_the_handshake_and_answered_malformed_after_it(
) {
    the_server_hangs_up_on(&garbage_message(), Cut::AtOnce);
    the_server_cuts_off(
        &garbage(),
        &[server_error(ErrorCode::Malformed)],
        Cut::AtOnce,
    );
}

#[test]
fn a_handshake_answer_that_does_not_open_is_closed_at_once_without_a_word() {
    smol::block_on(async {
        let server = server(LOGIN_TIMEOUT);
        let mut chat = relayed_chat(&server).await;
        chat.exchange(BATCH).await;
        let opened = Instant::now();
        let mut attacker = Wire::connect(server.addr).await;
        let mut handshake =
            Handshake::initiator(LinkKind::ClientServer, &fresh_key(), None, &mut fresh_rng())
                .unwrap();
        attacker.send(&handshake.write(&[]).unwrap()).await;
        let answer = attacker.next_record().await;
        handshake.read(&answer[2..]).expect("the server's answer");
        // The third message, noise of the right length instead of our key and its proof.
        let third = handshake.write(&[]).unwrap();
        attacker
            .send(&framed_record(&vec![0x5a; third.len() - 2]))
            .await;
        chat.exchange(BATCH).await;
        assert_eq!(attacker.bytes_until_closed().await, NOTHING);
        Cut::AtOnce.check(opened.elapsed(), LOGIN_TIMEOUT);
        chat.exchange(BATCH).await;
        assert_eq!(
            server.stats.get().connections,
            2,
            "only alice and bob are left"
        );
    })
}

#[test]
fn a_4_gib_length_prefix_to_the_server_is_refused_from_the_prefix_alone() {
    the_server_cuts_off(
        &HUGE_PREFIX,
        &[server_error(ErrorCode::FrameTooLarge)],
        Cut::AtOnce,
    );
    // Before the handshake a prefix has two bytes: the most it can announce is one 64 KiB
    // record, which is waited for until the login deadline and no longer.
    the_server_hangs_up_on(&BIGGEST_RECORD_PREFIX, Cut::AtTheDeadline);
}

#[test]
fn half_a_frame_then_silence_to_the_server_is_cut_at_the_login_deadline() {
    the_server_hangs_up_on(&first_half(&xx_first_message()), Cut::AtTheDeadline);
    // After the handshake: half a record (the first half of a sealed hello).
    smol::block_on(async {
        let server = server(LOGIN_TIMEOUT);
        let mut chat = relayed_chat(&server).await;
        chat.exchange(BATCH).await;
        let opened = Instant::now();
        let mut attacker = Secure::to_server(server.addr).await;
        let hello = attacker.seal(&client_frame(&ClientFrame::Hello {
            version: PROTOCOL_VERSION,
        }));
        attacker.send_raw(&first_half(&hello)).await;
        chat.exchange(BATCH).await;
        assert_eq!(
            attacker.frames_until_closed().await,
            [server_error(ErrorCode::HelloTimeout)]
        );
        Cut::AtTheDeadline.check(opened.elapsed(), LOGIN_TIMEOUT);
        chat.exchange(BATCH).await;
    })
}

/// The protocol version is also in the handshake's prologue, so a client of another version
/// cannot even finish the handshake; one that does (its hello says another version) is told
/// which version this server speaks.
#[test]
fn a_client_speaking_another_protocol_version_is_told_so_by_the_server() {
    let hello = client_frame(&ClientFrame::Hello {
        version: PROTOCOL_VERSION + 1,
    });
    the_server_cuts_off(
        &hello,
        &[
            ServerFrame::Hello {
                version: PROTOCOL_VERSION,
            },
            server_error(ErrorCode::UnsupportedVersion),
        ],
        Cut::AtOnce,
    );
}

#[test]
fn an_unknown_message_tag_to_the_server_is_malformed() {
    the_server_cuts_off(
        &unknown_tag(),
        &[server_error(ErrorCode::Malformed)],
        Cut::AtOnce,
    );
    the_server_cuts_off(
        &byte_200(),
        &[server_error(ErrorCode::Malformed)],
        Cut::AtOnce,
    );
}

#[test]
fn a_relay_request_before_logging_in_is_refused_as_unexpected_and_never_delivered() {
    let mut bytes = client_frame(&ClientFrame::Hello {
        version: PROTOCOL_VERSION,
    });
    bytes.extend(client_frame(&ClientFrame::Relay {
        to: name("bob"),
        chat: spoofed_sealed_chat(),
    }));
    // Were it delivered, bob's next message would not be the conversation's.
    the_server_cuts_off(
        &bytes,
        &[
            ServerFrame::Hello {
                version: PROTOCOL_VERSION,
            },
            server_error(ErrorCode::UnexpectedFrame),
        ],
        Cut::AtOnce,
    );
}

#[test]
fn a_peer_closing_mid_frame_on_the_server_is_forgotten_quietly() {
    smol::block_on(async {
        let server = server(LOGIN_TIMEOUT);
        let mut chat = relayed_chat(&server).await;
        chat.exchange(BATCH).await;
        // Mid handshake message.
        let opened = Instant::now();
        let mut attacker = Wire::connect(server.addr).await;
        attacker.send(&first_half(&xx_first_message())).await;
        attacker.shutdown_write();
        chat.exchange(BATCH).await;
        assert_eq!(attacker.bytes_until_closed().await, NOTHING);
        Cut::AtOnce.check(opened.elapsed(), LOGIN_TIMEOUT);
        // Mid record, after the handshake.
        let opened = Instant::now();
        let mut attacker = Secure::to_server(server.addr).await;
        let hello = attacker.seal(&client_frame(&ClientFrame::Hello {
            version: PROTOCOL_VERSION,
        }));
        attacker.send_raw(&first_half(&hello)).await;
        attacker.shutdown_write();
        chat.exchange(BATCH).await;
        assert_eq!(attacker.frames_until_closed().await, []);
        Cut::AtOnce.check(opened.elapsed(), LOGIN_TIMEOUT);
        chat.exchange(BATCH).await;
        assert_eq!(
            server.stats.get().connections,
            2,
            "only alice and bob are left"
        );
    })
}

#[test]
fn two_hundred_connections_that_never_log_in_hit_the_per_address_limit_and_the_relay_carries_on() {
    smol::block_on(async {
        // Long enough that no held connection times out while the others are being opened
        // and the held ones shake hands.
        let login_timeout = Duration::from_secs(6);
        let server = server(login_timeout);
        let mut chat = relayed_chat(&server).await;
        chat.exchange(BATCH).await;
        // alice's and bob's connections count against 127.0.0.1's allowance too.
        let allowed =
            ServerConfig::default().max_connections_per_ip - server.stats.get().connections;
        let opened = Instant::now();
        let mut held = Vec::new();
        for _ in 0..200 {
            held.push(Wire::connect(server.addr).await);
        }
        let mut turned_away = held.split_off(allowed);
        chat.exchange(BATCH).await;
        // The first `allowed` are held: each can still do its handshake...
        let mut shook_hands = Vec::new();
        for wire in held {
            shook_hands.push(Secure::on_server_wire(wire, &fresh_key()).await);
        }
        // ...while the rest were refused at once: closed without a word (there is no channel
        // to say it on), long before any login deadline.
        for (i, attacker) in turned_away.iter_mut().enumerate() {
            assert_eq!(
                attacker.bytes_until_closed().await,
                NOTHING,
                "connection {} was over the limit",
                allowed + i
            );
        }
        Cut::AtOnce.check(opened.elapsed(), login_timeout);
        chat.exchange(BATCH).await;
        // The held ones hear of the login deadline, sealed, and no sooner.
        for (i, attacker) in shook_hands.iter_mut().enumerate() {
            assert_eq!(
                attacker.frames_until_closed().await,
                [server_error(ErrorCode::HelloTimeout)],
                "held connection {i}"
            );
        }
        Cut::AtTheDeadline.check(opened.elapsed(), login_timeout);
        chat.exchange(BATCH).await;
        assert_eq!(
            server.stats.get().connections,
            2,
            "only alice and bob are left"
        );
    })
}

#[test]
fn a_password_guesser_is_refused_unchecked_after_ten_failures_while_the_relay_carries_on() {
    smol::block_on(async {
        let server = server(LOGIN_TIMEOUT);
        let mut chat = relayed_chat(&server).await;
        chat.exchange(BATCH).await;
        let max = ServerConfig::default().max_login_failures_per_ip as usize;
        for i in 0..max + 3 {
            let mut attacker = Secure::to_server(server.addr).await;
            attacker.send_sealed(&guess(i)).await;
            let reason = if i < max {
                LoginRefusal::BadCredentials
            } else {
                LoginRefusal::TooManyAttempts
            };
            assert_eq!(
                attacker.frames_until_closed().await,
                refused(reason),
                "guess {i}"
            );
            if i == max {
                chat.exchange(BATCH).await;
            }
        }
        chat.exchange(BATCH).await;
        assert_eq!(server.stats.get().online, 2, "alice was never logged out");
    })
}

/// Accounts in memory whose checks of a wrong password wait at a gate the test opens, as
/// slow password hashing makes them wait, and say when they start and finish.
struct GatedHost {
    accounts: MemoryHost,
    started: async_channel::Sender<()>,
    finished: async_channel::Sender<()>,
    gate: async_channel::Receiver<()>,
}

impl ServerHost for GatedHost {
    fn check_login(
        &self,
        user: &UserName,
        password: &str,
        register: bool,
        key: &PublicKey,
    ) -> Result<(), LoginRefusal> {
        if password == PASSWORD {
            return self.accounts.check_login(user, password, register, key);
        }
        let _ = self.started.send_blocking(());
        // Nothing is ever sent: this returns once the test drops the sender.
        let _ = self.gate.recv_blocking();
        let verdict = self.accounts.check_login(user, password, register, key);
        let _ = self.finished.send_blocking(());
        verdict
    }

    fn store_offline(&self, to: &UserName, message: &OfflineChat) -> StoreOutcome {
        self.accounts.store_offline(to, message)
    }

    fn load_offline(&self, user: &UserName) -> Vec<OfflineChat> {
        self.accounts.load_offline(user)
    }

    fn load_key(&self, user: &UserName) -> breeze_core::wire::KeyLookup {
        self.accounts.load_key(user)
    }

    fn delete_offline(&self, to: &UserName, from: &UserName, epoch: u64, through: u64) {
        self.accounts.delete_offline(to, from, epoch, through)
    }
}

/// The test's side of a [`GatedHost`].
struct Gate {
    started: async_channel::Receiver<()>,
    finished: async_channel::Receiver<()>,
    open: Option<async_channel::Sender<()>>,
}

impl Gate {
    /// Lets every waiting and future check of a wrong password go on.
    fn open(&mut self) {
        self.open = None;
    }
}

/// A server for alice and bob whose checks of wrong passwords wait at a gate.
fn gated_server() -> (TestServer, Gate) {
    let (started, started_rx) = async_channel::unbounded();
    let (finished, finished_rx) = async_channel::unbounded();
    let (open, gate) = async_channel::bounded(1);
    let host = GatedHost {
        accounts: accounts(&["alice", "bob"]),
        started,
        finished,
        gate,
    };
    let mut config = ServerConfig::default();
    config.login_timeout = Duration::from_secs(10);
    let gate = Gate {
        started: started_rx,
        finished: finished_rx,
        open: Some(open),
    };
    // The gate holds a thread per check, where a real check holds a core: give it enough
    // threads that every check the core lets through can be waiting at the gate at once.
    let threads = std::num::NonZeroUsize::new(64);
    (start_server_on_threads(host, config, threads), gate)
}

#[test]
fn password_guesses_sent_all_at_once_on_many_connections_are_still_checked_at_most_ten_times() {
    smol::block_on(async {
        let (server, mut gate) = gated_server();
        let mut chat = relayed_chat(&server).await;
        chat.exchange(BATCH).await;

        // 30 guesses at once, each on its own connection, before any check has finished.
        let guesses = 30;
        let (outcome, outcomes) = async_channel::unbounded();
        for i in 0..guesses {
            let mut guesser = Secure::to_server(server.addr).await;
            guesser.send_sealed(&guess(i)).await;
            let outcome = outcome.clone();
            smol::spawn(async move {
                let _ = outcome.send(guesser.frames_until_closed().await).await;
            })
            .detach();
        }
        // Every guess is either being checked or was refused unchecked; then the checks end.
        let mut checking = 0;
        let mut refused_early = 0;
        within("every guess to be answered or checked", async {
            while checking + refused_early < guesses {
                futures_lite::future::or(
                    async {
                        gate.started.recv().await.unwrap();
                        checking += 1;
                    },
                    async {
                        let frames = outcomes.recv().await.unwrap();
                        assert_eq!(frames, refused(LoginRefusal::TooManyAttempts));
                        refused_early += 1;
                    },
                )
                .await;
            }
        })
        .await;
        chat.exchange(BATCH).await;
        gate.open();
        for _ in 0..checking {
            let frames = within("a checked guess's answer", outcomes.recv()).await;
            assert_eq!(frames.unwrap(), refused(LoginRefusal::BadCredentials));
        }
        chat.exchange(BATCH).await;
        let max = ServerConfig::default().max_login_failures_per_ip as usize;
        assert!(
            checking <= max,
            "{checking} of {guesses} guesses at alice's password were checked; the limit is \
             {max} failed logins per address per minute"
        );
    })
}

#[test]
fn password_guesses_abandoned_before_their_answer_still_count_as_failed_logins() {
    smol::block_on(async {
        let (server, mut gate) = gated_server();
        let mut chat = relayed_chat(&server).await;
        chat.exchange(BATCH).await;

        // Each guesser asks, waits until its check has begun, and hangs up.
        // As many as the per-address maximum: more would be refused while still being checked.
        let abandoned = 10;
        for i in 0..abandoned {
            let mut guesser = Secure::to_server(server.addr).await;
            guesser.send_sealed(&guess(i)).await;
            within("the check to begin", gate.started.recv())
                .await
                .unwrap();
            assert_eq!(
                guesser.next_frame().await,
                ServerFrame::Hello {
                    version: PROTOCOL_VERSION
                }
            );
            guesser.shutdown_write();
            assert_eq!(guesser.frames_until_closed().await, []);
        }
        chat.exchange(BATCH).await;
        gate.open();
        for _ in 0..abandoned {
            within("a check to end", gate.finished.recv())
                .await
                .unwrap();
        }
        // The verdicts reach the server's owner task long before a message goes round.
        chat.exchange(BATCH).await;

        let mut guesser = Secure::to_server(server.addr).await;
        guesser.send_sealed(&guess(abandoned)).await;
        assert_eq!(
            guesser.frames_until_closed().await,
            refused(LoginRefusal::TooManyAttempts),
            "{abandoned} passwords were checked for this address already"
        );
        chat.exchange(BATCH).await;
    })
}

#[test]
fn a_record_with_one_flipped_bit_closes_that_connection_to_the_server_and_is_never_relayed() {
    smol::block_on(async {
        let server = server(LOGIN_TIMEOUT);
        let mut chat = relayed_chat(&server).await;
        chat.exchange(BATCH).await;
        let key = fresh_key();
        let (mut carol, intros) = log_in_securely(server.addr, "carol", &key, 0).await;
        // The driver's counters follow just behind what it writes.
        online_becomes(&server, 3).await;
        // Sealed for alice's key, as carol's client would: were it relayed, alice could open
        // it and would show it.
        let alice = intros
            .iter()
            .find(|intro| intro.user == name("alice"))
            .expect("the server introduces alice to carol");
        let pair = PairKey::new(&key, &alice.key).expect("a pair key for carol and alice");
        let sealed = SealedChat::seal(
            &chat_message(1, "from carol, one bit off"),
            &pair,
            &mut fresh_rng(),
        );
        let relay = client_frame(&ClientFrame::Relay {
            to: name("alice"),
            chat: sealed,
        });
        let record = carol.seal(&relay);
        carol.send_raw(&flip_one_bit(record)).await;
        // Were it relayed, alice's next message would be carol's, not the conversation's.
        chat.exchange(BATCH).await;
        // The server's half of the channel still works: it names the fault, then hangs up.
        assert_eq!(
            carol.frames_until_closed().await,
            [server_error(ErrorCode::Malformed)]
        );
        chat.exchange(BATCH).await;
        // carol's session ended with her connection.
        online_becomes(&server, 2).await;
    })
}

#[test]
fn a_record_replayed_on_its_own_connection_to_the_server_closes_it() {
    smol::block_on(async {
        let server = server(LOGIN_TIMEOUT);
        let mut chat = relayed_chat(&server).await;
        chat.exchange(BATCH).await;
        let mut attacker = Secure::to_server(server.addr).await;
        let hello = attacker.seal(&client_frame(&ClientFrame::Hello {
            version: PROTOCOL_VERSION,
        }));
        attacker.send_raw(&hello).await;
        assert_eq!(
            attacker.next_frame().await,
            ServerFrame::Hello {
                version: PROTOCOL_VERSION
            }
        );
        // The same record again: its number is used up, so it does not open.
        attacker.send_raw(&hello).await;
        chat.exchange(BATCH).await;
        assert_eq!(
            attacker.frames_until_closed().await,
            [server_error(ErrorCode::Malformed)]
        );
        chat.exchange(BATCH).await;
        assert_eq!(
            server.stats.get().connections,
            2,
            "only alice and bob are left"
        );
    })
}

// ---- against bob's P2P port ----------------------------------------------------------------

#[test]
fn garbage_on_bobs_p2p_port_is_closed_at_once_before_the_handshake_and_answered_malformed_after_it()
{
    bob_hangs_up_on(
        &garbage_message(),
        Cut::AtOnce,
        Some(LinkError::Handshake(HandshakeError::Failed)),
    );
    bob_cuts_off(
        &garbage(),
        &[peer_error(ErrorCode::Malformed)],
        Cut::AtOnce,
        Some(LinkError::Decode(ErrorCode::Malformed)),
    );
}

#[test]
fn a_4_gib_length_prefix_to_bob_is_refused_from_the_prefix_alone() {
    bob_cuts_off(
        &HUGE_PREFIX,
        &[peer_error(ErrorCode::FrameTooLarge)],
        Cut::AtOnce,
        Some(LinkError::Decode(ErrorCode::FrameTooLarge)),
    );
    // Before the handshake the most a prefix can announce is one 64 KiB record: refused as
    // soon as it is in, not held.
    let mut biggest = BIGGEST_RECORD_PREFIX.to_vec();
    biggest.extend(vec![0xff; u16::MAX as usize]);
    bob_hangs_up_on(
        &biggest,
        Cut::AtOnce,
        Some(LinkError::Handshake(HandshakeError::Failed)),
    );
}

#[test]
fn half_a_frame_then_silence_to_bob_is_cut_at_the_setup_deadline() {
    // Half a first handshake message: any dialer's, since nothing of it can be checked yet.
    let key = fresh_key().public();
    bob_hangs_up_on(
        &first_half(&mallorys_first_message(&key, "alice")),
        Cut::AtTheDeadline,
        None,
    );
    // After the handshake, half a frame: the channel is not up before a whole frame is in.
    bob_cuts_off(
        &[0, 0],
        &[peer_error(ErrorCode::HelloTimeout)],
        Cut::AtTheDeadline,
        None,
    );
}

/// A peer of another protocol version or another kind of link cannot reach bob: both are in
/// the handshake's prologue, so its first message does not open. The other kind is the one
/// such message the tests can make: a client's first XX message, sent to a P2P port.
#[test]
fn a_handshake_for_another_kind_of_link_is_refused_by_bob_at_once() {
    bob_hangs_up_on(
        &xx_first_message(),
        Cut::AtOnce,
        Some(LinkError::Handshake(HandshakeError::Failed)),
    );
}

#[test]
fn an_unknown_message_tag_to_bob_is_malformed() {
    for attack in [unknown_tag(), byte_200()] {
        bob_cuts_off(
            &attack,
            &[peer_error(ErrorCode::Malformed)],
            Cut::AtOnce,
            Some(LinkError::Decode(ErrorCode::Malformed)),
        );
    }
}

#[test]
fn a_stranger_claiming_a_name_the_server_never_introduced_is_cut_at_the_setup_deadline() {
    smol::block_on(async {
        let server = server(LOGIN_TIMEOUT);
        let mut chat = direct_chat(&server).await;
        chat.exchange(BATCH).await;
        let bob = key_learned(&chat.alice, "bob");
        let opened = Instant::now();
        let mut mallory = Wire::connect(bobs_p2p_port(&chat)).await;
        mallory.send(&mallorys_first_message(&bob, "mallory")).await;
        chat.exchange(BATCH).await;
        assert_eq!(
            mallory.bytes_until_closed().await,
            NOTHING,
            "no answer: bob waited for an introduction that never came"
        );
        Cut::AtTheDeadline.check(opened.elapsed(), SETUP_TIMEOUT);
        chat.bob
            .expect_seen(
                "mallory's rejection",
                rejection(Some("mallory"), LinkError::UnknownPeer),
            )
            .await;
        chat.exchange(BATCH).await;
    })
}

#[test]
fn two_hundred_silent_connections_to_bob_are_each_cut_at_the_setup_deadline() {
    smol::block_on(async {
        let server = server(LOGIN_TIMEOUT);
        let mut chat = direct_chat(&server).await;
        chat.exchange(BATCH).await;
        let opened = Instant::now();
        let mut attackers = Vec::new();
        for _ in 0..200 {
            attackers.push(Wire::connect(bobs_p2p_port(&chat)).await);
        }
        chat.exchange(BATCH).await;
        for (i, attacker) in attackers.iter_mut().enumerate() {
            assert_eq!(
                attacker.bytes_until_closed().await,
                NOTHING,
                "connection {i}"
            );
            Cut::AtTheDeadline.check(opened.elapsed(), SETUP_TIMEOUT);
        }
        chat.exchange(BATCH).await;
        // Silence is a timeout, not a rejection.
        assert_no_rejections(&chat.bob);
    })
}

#[test]
fn a_peer_closing_mid_frame_on_bob_is_forgotten_quietly() {
    // Mid handshake message: gone at once, not held until the setup deadline.
    let key = fresh_key().public();
    smol::block_on(async {
        let server = server(LOGIN_TIMEOUT);
        let mut chat = direct_chat(&server).await;
        chat.exchange(BATCH).await;
        let opened = Instant::now();
        let mut attacker = Wire::connect(bobs_p2p_port(&chat)).await;
        attacker
            .send(&first_half(&mallorys_first_message(&key, "alice")))
            .await;
        attacker.shutdown_write();
        chat.exchange(BATCH).await;
        assert_eq!(attacker.bytes_until_closed().await, NOTHING);
        Cut::AtOnce.check(opened.elapsed(), SETUP_TIMEOUT);

        // Mid record, on a genuine channel.
        let (_session, mut carol, _) = carol_dials_bob(&server, &chat).await;
        let record = carol.seal(&peer_frame(&PeerFrame::Ping));
        carol.send_raw(&first_half(&record)).await;
        carol.shutdown_write();
        chat.exchange(BATCH).await;
        assert_eq!(carol.frames_until_closed().await, []);
        chat.exchange(BATCH).await;
        assert_no_rejections(&chat.bob);
    })
}

#[test]
fn mallory_with_a_key_of_her_own_claiming_to_be_alice_is_refused_as_the_wrong_key_and_learns_nothing(
) {
    smol::block_on(async {
        let server = server(LOGIN_TIMEOUT);
        let mut chat = direct_chat(&server).await;
        chat.exchange(BATCH).await;
        let routes = (route_changes(&chat.alice), route_changes(&chat.bob));
        let bob = key_learned(&chat.alice, "bob");
        let opened = Instant::now();
        let mut mallory = Wire::connect(bobs_p2p_port(&chat)).await;
        mallory.send(&mallorys_first_message(&bob, "alice")).await;
        chat.exchange(BATCH).await;
        assert_eq!(
            mallory.bytes_until_closed().await,
            NOTHING,
            "no answer to the handshake: nothing to work on"
        );
        Cut::AtOnce.check(opened.elapsed(), SETUP_TIMEOUT);
        chat.bob
            .expect_seen(
                "mallory's rejection",
                rejection(Some("alice"), LinkError::WrongKey),
            )
            .await;
        // The real channel is untouched.
        chat.exchange(BATCH).await;
        assert_eq!(
            (route_changes(&chat.alice), route_changes(&chat.bob)),
            routes,
            "neither side's route to the other changed"
        );
        assert_eq!(
            server.stats.get().relayed_text_bytes,
            0,
            "no chat took the relay"
        );
    })
}

#[test]
fn a_chat_injected_before_the_handshake_is_through_is_refused_and_never_shown() {
    smol::block_on(async {
        let server = server(LOGIN_TIMEOUT);
        let mut chat = direct_chat(&server).await;
        chat.exchange(BATCH).await;
        let bob = key_learned(&chat.alice, "bob");
        let injected = peer_frame(&PeerFrame::Chat(spoofed_chat()));

        // Right behind a first message claiming alice (with mallory's key): refused for the key.
        let mut mallory = Wire::connect(bobs_p2p_port(&chat)).await;
        let mut bytes = mallorys_first_message(&bob, "alice");
        bytes.extend(&injected);
        mallory.send(&bytes).await;
        chat.exchange(BATCH).await;
        assert_eq!(mallory.bytes_until_closed().await, NOTHING);
        chat.bob
            .expect_seen(
                "the rejection of the claimed alice",
                rejection(Some("alice"), LinkError::WrongKey),
            )
            .await;

        // Right behind a first message whose claim awaits an introduction: the chat is no
        // handshake message, and the link is refused without waiting for the deadline.
        let opened = Instant::now();
        let mut mallory = Wire::connect(bobs_p2p_port(&chat)).await;
        let mut bytes = mallorys_first_message(&bob, "mallory");
        bytes.extend(&injected);
        mallory.send(&bytes).await;
        chat.exchange(BATCH).await;
        assert_eq!(mallory.bytes_until_closed().await, NOTHING);
        Cut::AtOnce.check(opened.elapsed(), SETUP_TIMEOUT);
        chat.bob
            .expect_seen("the rejection of the injection", |e| {
                matches!(
                    e,
                    Event::PeerRejected {
                        error: LinkError::UnexpectedFrame,
                        ..
                    }
                )
            })
            .await;

        // In place of the handshake: noise to it.
        let mut mallory = Wire::connect(bobs_p2p_port(&chat)).await;
        mallory.send(&injected).await;
        chat.exchange(BATCH).await;
        assert_eq!(mallory.bytes_until_closed().await, NOTHING);
        chat.bob
            .expect_seen(
                "the rejection of the bare chat",
                rejection(None, LinkError::Handshake(HandshakeError::Failed)),
            )
            .await;

        // Were any shown, bob's next message would not be the conversation's.
        chat.exchange(BATCH).await;
    })
}

#[test]
fn alices_first_handshake_message_replayed_to_bob_gets_no_usable_channel() {
    smol::block_on(async {
        let server = server(LOGIN_TIMEOUT);
        let proxy = Proxy::start();
        let mut chat = direct_chat_through(&server, &proxy).await;
        chat.exchange(BATCH).await;
        let routes = (route_changes(&chat.alice), route_changes(&chat.bob));
        // What alice sent on her channel: her first IK message, then records.
        let (recorded, _) = split_records(&proxy.sent_by(0));
        let (first, alices_first_record) = (&recorded[0], &recorded[1]);
        let bobs_port = bobs_p2p_port(&chat);

        // The first message alone: it is alice's, so bob answers; but only alice's ephemeral
        // key opens the answer, no record comes, and bob gives up at the setup deadline.
        let opened = Instant::now();
        let mut replay = Wire::connect(bobs_port).await;
        replay.send(first).await;
        chat.exchange(BATCH).await;
        let answer = replay.next_record().await;
        assert_eq!(
            answer.len(),
            2 + 32 + 16,
            "bob's answer: his ephemeral key and the tag of an empty payload"
        );
        let rest = replay.bytes_until_closed().await;
        Cut::AtTheDeadline.check(opened.elapsed(), SETUP_TIMEOUT);
        let (_, partial) = split_records(&rest);
        assert!(partial.is_empty(), "bob's goodbye is whole records");
        let in_the_clear = peer_frame(&peer_error(ErrorCode::HelloTimeout));
        assert!(
            !rest.windows(in_the_clear.len()).any(|w| w == in_the_clear),
            "and sealed, for a channel only bob holds keys to"
        );

        // With alice's first record behind it: sealed under her session's keys, it does not
        // open under the ones bob's fresh answer starts.
        let opened = Instant::now();
        let mut replay = Wire::connect(bobs_port).await;
        let mut bytes = first.clone();
        bytes.extend(alices_first_record);
        replay.send(&bytes).await;
        chat.exchange(BATCH).await;
        replay.next_record().await;
        assert_eq!(
            replay.bytes_until_closed().await,
            NOTHING,
            "nothing is said on a broken channel"
        );
        Cut::AtOnce.check(opened.elapsed(), SETUP_TIMEOUT);
        chat.bob
            .expect_seen(
                "the replay's rejection",
                rejection(Some("alice"), LinkError::Record(RecordError::Forged)),
            )
            .await;

        // Neither replay took the real channel's place: the chat is still direct, and neither
        // side's route to the other changed.
        chat.exchange(BATCH).await;
        assert_eq!(
            (route_changes(&chat.alice), route_changes(&chat.bob)),
            routes
        );
        assert_eq!(
            server.stats.get().relayed_text_bytes,
            0,
            "no chat took the relay"
        );
    })
}

#[test]
fn a_record_with_one_flipped_bit_on_a_direct_channel_closes_it_and_the_others_carry_on() {
    smol::block_on(async {
        let server = server(LOGIN_TIMEOUT);
        let mut chat = direct_chat(&server).await;
        chat.exchange(BATCH).await;
        let (_session, mut carol, _) = carol_dials_bob(&server, &chat).await;
        // A genuine chat first: the channel is real, and bob shows what comes over it.
        let hello = PeerFrame::Chat(chat_message(1, "hello bob"));
        carol.send_sealed(&peer_frame(&hello)).await;
        assert_eq!(
            within("carol's chat", chat.bob.next_message()).await,
            (name("carol"), "hello bob".into(), Via::Direct)
        );
        // The next record with one bit flipped.
        let flipped = PeerFrame::Chat(chat_message(2, "one bit off"));
        let record = carol.seal(&peer_frame(&flipped));
        carol.send_raw(&flip_one_bit(record)).await;
        // Were it shown, bob's next message would not be the conversation's.
        chat.exchange(BATCH).await;
        let said = carol.frames_until_closed().await;
        assert!(
            said.iter()
                .all(|frame| matches!(frame, PeerFrame::Ack(_) | PeerFrame::Ping)),
            "bob acknowledged the genuine chat and said nothing on the broken channel: {said:?}"
        );
        chat.bob
            .expect_seen(
                "carol's channel rejected",
                rejection(Some("carol"), LinkError::Record(RecordError::Forged)),
            )
            .await;
        chat.exchange(BATCH).await;
        assert_eq!(
            server.stats.get().relayed_text_bytes,
            0,
            "alice and bob never left their direct channel"
        );
    })
}

/// A dialer whose handshake fails (the answer does not open: noise, or someone else at the
/// peer's address) must still know which peer the dial was for, say so, and dial again later.
/// (It once forgot the peer, so the dial stayed stuck and the route at `Connecting`.)
#[test]
fn a_dialer_whose_handshake_answer_does_not_open_dials_again_later() {
    smol::block_on(async {
        let server = server(LOGIN_TIMEOUT);
        // bob advertises the fake's port: alice's dials land there.
        let fake = smol::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = fake.local_addr().unwrap().port();
        let tweak: ConfigTweak = Arc::new(move |config: &mut ClientConfig| {
            shorter_setup(config);
            config.p2p_port = port;
        });
        let mut bob = client_options(server.addr, "bob");
        bob.tweak = Some(tweak);
        let bob = Chatter::start(bob);
        let bobs_port = bob.client.p2p_addr().expect("bob listens for peers");
        let mut alice = Chatter::start(client_options(server.addr, "alice"));
        // The first dial gets noise for an answer.
        let (stream, _) = within("alice's first dial", fake.accept()).await.unwrap();
        let mut first = Wire::from_stream(stream);
        first.next_record().await;
        first.send(&garbage_message()).await;
        alice
            .expect("the failed handshake", |e| {
                matches!(
                    e,
                    Event::PeerRejected {
                        error: LinkError::Handshake(HandshakeError::Failed),
                        ..
                    }
                )
            })
            .await;
        // From now on the fake forwards to bob: the next dial reaches him.
        let proxy = Proxy::on(fake);
        proxy.forward_to(bobs_port);
        let mut chat = Conversation::between(alice, bob, Via::Direct).await;
        chat.exchange(BATCH).await;
        assert!(
            chat.alice.log.iter().any(rejection(
                Some("bob"),
                LinkError::Handshake(HandshakeError::Failed)
            )),
            "the rejection names the peer dialled: {:?}",
            chat.alice.log
        );
    })
}

// ---- a client against a hostile server -----------------------------------------------------

#[test]
fn a_client_whose_server_sends_garbage_reports_why_and_keeps_retrying() {
    smol::block_on(async {
        let fake = smol::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let fake_key = fresh_key();
        let mut carol = Chatter::start(client_options(fake.local_addr().unwrap(), "carol"));
        let lost_with = |error: ServerLinkError| move |e: &Event| matches!(e, Event::ServerLost { error: why, .. } if *why == error);

        // Noise instead of the handshake's second message.
        let (stream, _) = within("carol's connection", fake.accept()).await.unwrap();
        let mut server_end = Wire::from_stream(stream);
        let first = server_end.next_record().await;
        assert_eq!(
            first.len(),
            2 + 32,
            "her first message: an ephemeral key, nothing else"
        );
        server_end.send(&garbage_message()).await;
        carol
            .expect(
                "losing the server to a failed handshake",
                lost_with(ServerLinkError::Handshake(HandshakeError::Failed)),
            )
            .await;
        assert_eq!(
            server_end.bytes_until_closed().await,
            NOTHING,
            "she hung up having sent neither her name nor her password"
        );

        // A server that completes the handshake, then sends what does not decode or open.
        let bad_record = |channel: &mut Secure<ClientFrame>| {
            flip_one_bit(channel.seal(&server_frame(&ServerFrame::Ping)))
        };
        let sealed_garbage = |channel: &mut Secure<ClientFrame>| channel.seal(&garbage());
        let sealed_huge = |channel: &mut Secure<ClientFrame>| channel.seal(&HUGE_PREFIX);
        type Reply<'a> = &'a dyn Fn(&mut Secure<ClientFrame>) -> Vec<u8>;
        let replies: [(Reply, ServerLinkError); 3] = [
            (
                &sealed_garbage,
                ServerLinkError::Decode(ErrorCode::Malformed),
            ),
            (
                &sealed_huge,
                ServerLinkError::Decode(ErrorCode::FrameTooLarge),
            ),
            (&bad_record, ServerLinkError::Record(RecordError::Forged)),
        ];
        for (reply, error) in replies {
            let (stream, _) = within("carol's connection", fake.accept()).await.unwrap();
            let mut server_end = Secure::from_client(stream, &fake_key).await;
            // Only now, the channel up, does she say hello and log in.
            assert_eq!(
                server_end.next_frame().await,
                ClientFrame::Hello {
                    version: PROTOCOL_VERSION
                }
            );
            let login = server_end.next_frame().await;
            assert!(
                matches!(&login, ClientFrame::Login { user, .. } if *user == name("carol")),
                "{login:?}"
            );
            let bytes = reply(&mut server_end);
            server_end.send_raw(&bytes).await;
            carol
                .expect(&format!("losing the server to {error:?}"), lost_with(error))
                .await;
            assert_eq!(server_end.frames_until_closed().await, []);
        }
        // She learned the fake's key once (nothing was pinned) and met it every time since.
        let learned: Vec<_> = carol
            .log
            .iter()
            .filter_map(|e| match e {
                Event::ServerKeyLearned { key } => Some(*key),
                _ => None,
            })
            .collect();
        assert_eq!(learned, [fake_key.public()]);
        // And she comes back for more: none of it was taken for a refused login.
        within("carol's next attempt", fake.accept()).await.unwrap();
        assert!(
            !carol
                .log
                .iter()
                .any(|e| matches!(e, Event::LoginFailed { .. } | Event::LoggedIn { .. })),
            "{:?}",
            carol.log
        );
    })
}

#[test]
fn a_client_meeting_another_key_than_the_pinned_one_stops_having_sent_neither_name_nor_password() {
    smol::block_on(async {
        let fake = smol::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let pinned = fresh_key().public();
        let impostor = fresh_key();
        let mut options = client_options(fake.local_addr().unwrap(), "carol");
        options.server_key = Some(pinned);
        let mut carol = Chatter::start(options);

        let (stream, _) = within("carol's connection", fake.accept()).await.unwrap();
        let mut server_end = Wire::from_stream(stream);
        let first = server_end.next_record().await;
        let mut handshake =
            Handshake::responder(LinkKind::ClientServer, &impostor, &mut fresh_rng()).unwrap();
        handshake.read(&first[2..]).expect("carol's first message");
        server_end.send(&handshake.write(&[]).unwrap()).await;
        carol
            .expect("the changed key", |e| {
                matches!(e, Event::ServerKeyChanged { expected, presented }
                    if *expected == pinned.fingerprint() && *presented == impostor.public())
            })
            .await;
        assert_eq!(
            server_end.bytes_until_closed().await,
            NOTHING,
            "not even the handshake's last message: nothing of hers reached the impostor"
        );
        // Nor does she try again: only the user may accept a new key.
        let again = futures_lite::future::or(async { Some(fake.accept().await) }, async {
            async_io::Timer::after(Duration::from_secs(2)).await;
            None
        })
        .await;
        assert!(
            again.is_none(),
            "carol reconnected to a server she does not trust"
        );
        assert!(
            !carol
                .log
                .iter()
                .any(|e| matches!(e, Event::LoggedIn { .. } | Event::ServerKeyLearned { .. })),
            "{:?}",
            carol.log
        );
    })
}

#[test]
fn a_client_that_stops_reading_is_dropped_as_a_slow_consumer_and_the_chat_goes_on() {
    smol::block_on(async {
        let mut config = ServerConfig::default();
        config.max_pending_output = 256 * 1024;
        let server = start_server(&["alice", "bob", "carol"], config);
        // bob sends carol 16 MB as fast as his core takes it: his own bound must hold all of
        // it, or his client drops its own server link for queueing more than it may (and, on
        // every login again, queues all that is unacknowledged at once, and drops it again).
        // What is on trial here is the server's bound for carol, not bob's own.
        let tweak: ConfigTweak = Arc::new(|config: &mut ClientConfig| {
            config.max_pending_output = 64 * 1024 * 1024;
        });
        let mut chat = Conversation::start(server.addr, Via::Relay, Some(tweak)).await;
        chat.exchange(BATCH).await;

        // carol logs in from a bare socket and never reads again.
        let (mut carol, _) = log_in_securely(server.addr, "carol", &fresh_key(), 1).await;
        online_becomes(&server, 3).await;

        // bob relays far more to carol than kernel buffers and the server's bound hold.
        let text = "x".repeat(16 * 1024);
        for _ in 0..1000 {
            if chat
                .bob
                .client
                .send(&name("carol"), text.clone())
                .await
                .is_err()
            {
                break;
            }
        }
        // carol is dropped as a slow consumer.
        online_becomes(&server, 2).await;
        // alice and bob lose nothing.
        chat.exchange(BATCH).await;
        // And the server lets go of carol's socket too, though she still reads nothing: her
        // connection ends (once she drains what the kernel holds for her).
        carol.until_gone().await;
    })
}
