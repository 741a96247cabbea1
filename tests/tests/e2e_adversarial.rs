//! Attackers on real loopback sockets, against the smol server driver and a smol client's P2P
//! port, while alice and bob chat beside them.
//!
//! Every story has the same shape: alice and bob exchange numbered messages before, during
//! and after the attack (through the server when the server is attacked, over their direct
//! channel when bob's P2P port is), and every message must arrive exactly once, in order, on
//! that route. The attacker must be cut off with a clear word — the error frame (or login
//! refusal) it is owed, decoded from what came back — and then the close.

mod e2e_support;

use breeze_core::auth::{setup_proof, Role};
use breeze_core::client::{ClientConfig, Event, LinkError, ServerLinkError};
use breeze_core::server::{ServerConfig, StoreOutcome};
use breeze_core::wire::UserName;
use breeze_core::wire::{
    Chat, ClientFrame, ErrorCode, LoginRefusal, MessageId, PeerFrame, ServerFrame, PROTOCOL_VERSION,
};
use breeze_core::Via;
use breeze_sim::loopback::{
    accounts, client_options, name, start_server, start_server_with, within, TestServer, PASSWORD,
};
use breeze_smol::{ConfigTweak, MemoryHost, ServerHost};
use e2e_support::{client_frame, peer_frame, Chatter, Conversation, Raw};
use std::sync::Arc;
use std::time::Duration;

/// Messages each way before, during and after an attack.
const BATCH: usize = 5;

/// How long a server gives a new connection to log in, here (the default is 10 s).
const LOGIN_TIMEOUT: Duration = Duration::from_secs(2);
/// How long bob gives a peer connection to authenticate, here (the default is 5 s).
const SETUP_TIMEOUT: Duration = Duration::from_secs(2);

fn server(login_timeout: Duration) -> TestServer {
    let mut config = ServerConfig::default();
    config.login_timeout = login_timeout;
    start_server(&["alice", "bob"], config)
}

/// alice and bob chatting through `server`'s relay (direct channels off).
async fn relayed_chat(server: &TestServer) -> Conversation {
    Conversation::start(server.addr, Via::Relay, None).await
}

/// alice and bob chatting over their direct channel; bob's setup deadline is shortened.
async fn direct_chat(server: &TestServer) -> Conversation {
    let tweak: ConfigTweak = Arc::new(|config: &mut ClientConfig| {
        config.setup_timeout = SETUP_TIMEOUT;
    });
    Conversation::start(server.addr, Via::Direct, Some(tweak)).await
}

/// A plausible frame length, then noise that is no message at all.
fn garbage() -> Vec<u8> {
    let mut bytes = vec![0, 0, 0, 16];
    bytes.extend_from_slice(&[0xff; 16]);
    bytes
}

/// A prefix announcing a 4 GiB frame.
const HUGE_PREFIX: [u8; 4] = [0xff; 4];

/// A whole frame whose message tag (postcard varint 200) names no message.
fn unknown_tag() -> Vec<u8> {
    vec![0, 0, 0, 2, 0xc8, 0x01]
}

/// A frame whose payload is the single byte 200.
fn byte_200() -> Vec<u8> {
    vec![0, 0, 0, 1, 200]
}

/// A chat message claiming to be the first alice ever sent.
fn spoofed_chat() -> Chat {
    Chat {
        id: MessageId(1),
        epoch: 1,
        seq: 1,
        first_unacked: 1,
        text: "spoofed".into(),
    }
}

fn server_error(code: ErrorCode) -> ServerFrame {
    ServerFrame::Error { code }
}

fn peer_error(code: ErrorCode) -> PeerFrame {
    PeerFrame::Error { code }
}

/// A wrong guess at alice's password, from the very start of a connection.
fn guess(i: usize) -> Vec<u8> {
    let mut bytes = client_frame(&ClientFrame::Hello {
        version: PROTOCOL_VERSION,
    });
    bytes.extend(client_frame(&ClientFrame::Login {
        user: name("alice"),
        password: format!("guess {i}"),
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

/// An attacker sends `attack` to the server while alice and bob chat through it; it must get
/// exactly `owed` back, then the close.
fn the_server_cuts_off(attack: &[u8], owed: &[ServerFrame]) {
    smol::block_on(async {
        let server = server(LOGIN_TIMEOUT);
        let mut chat = relayed_chat(&server).await;
        chat.exchange(BATCH).await;
        let mut attacker = Raw::to_server(server.addr).await;
        attacker.send(attack).await;
        chat.exchange(BATCH).await;
        assert_eq!(attacker.frames_until_closed().await, owed);
        chat.exchange(BATCH).await;
        assert_eq!(
            server.stats.get().online,
            2,
            "alice and bob are still online"
        );
    })
}

/// An attacker sends `attack` to bob's P2P port while alice and bob chat directly; it must
/// get exactly `owed` back, then the close.
fn bob_cuts_off(attack: &[u8], owed: &[PeerFrame]) {
    smol::block_on(async {
        let server = server(LOGIN_TIMEOUT);
        let mut chat = direct_chat(&server).await;
        chat.exchange(BATCH).await;
        let mut attacker =
            Raw::to_peer(chat.bob.client.p2p_addr().expect("bob listens for peers")).await;
        attacker.send(attack).await;
        chat.exchange(BATCH).await;
        assert_eq!(attacker.frames_until_closed().await, owed);
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
fn garbage_on_the_server_port_is_answered_malformed_and_closed_while_the_relay_carries_on() {
    the_server_cuts_off(&garbage(), &[server_error(ErrorCode::Malformed)]);
}

#[test]
fn a_4_gib_length_prefix_to_the_server_is_refused_from_the_prefix_alone() {
    the_server_cuts_off(&HUGE_PREFIX, &[server_error(ErrorCode::FrameTooLarge)]);
}

#[test]
fn half_a_frame_then_silence_to_the_server_is_cut_at_the_login_deadline() {
    the_server_cuts_off(&[0, 0], &[server_error(ErrorCode::HelloTimeout)]);
}

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
    );
}

#[test]
fn an_unknown_message_tag_to_the_server_is_malformed() {
    the_server_cuts_off(&unknown_tag(), &[server_error(ErrorCode::Malformed)]);
    the_server_cuts_off(&byte_200(), &[server_error(ErrorCode::Malformed)]);
}

#[test]
fn a_relay_request_before_logging_in_is_refused_as_unexpected_and_never_delivered() {
    let mut bytes = client_frame(&ClientFrame::Hello {
        version: PROTOCOL_VERSION,
    });
    bytes.extend(client_frame(&ClientFrame::Relay {
        to: name("bob"),
        chat: spoofed_chat(),
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
    );
}

#[test]
fn a_peer_closing_mid_frame_on_the_server_is_forgotten_quietly() {
    smol::block_on(async {
        let server = server(LOGIN_TIMEOUT);
        let mut chat = relayed_chat(&server).await;
        chat.exchange(BATCH).await;
        let mut attacker = Raw::to_server(server.addr).await;
        attacker.send(&[0, 0]).await;
        attacker.shutdown_write();
        chat.exchange(BATCH).await;
        assert_eq!(attacker.frames_until_closed().await, []);
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
        // Long enough that no held connection times out while the others are being opened.
        let server = server(Duration::from_secs(6));
        let mut chat = relayed_chat(&server).await;
        chat.exchange(BATCH).await;
        // alice's and bob's connections count against 127.0.0.1's allowance too.
        let allowed =
            ServerConfig::default().max_connections_per_ip - server.stats.get().connections;
        let mut attackers = Vec::new();
        for _ in 0..200 {
            attackers.push(Raw::to_server(server.addr).await);
        }
        chat.exchange(BATCH).await;
        let mut outcomes = Vec::new();
        for attacker in &mut attackers {
            outcomes.push(attacker.frames_until_closed().await);
        }
        let held = vec![server_error(ErrorCode::HelloTimeout)];
        let refused = vec![server_error(ErrorCode::TooManyConnections)];
        assert!(
            outcomes[..allowed].iter().all(|frames| *frames == held),
            "the first {allowed} are held until the login deadline: {outcomes:?}"
        );
        assert!(
            outcomes[allowed..].iter().all(|frames| *frames == refused),
            "the rest are refused at once: {outcomes:?}"
        );
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
            let mut attacker = Raw::to_server(server.addr).await;
            attacker.send(&guess(i)).await;
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

    fn store_offline(&self, to: &UserName, from: &UserName, chat: &Chat) -> StoreOutcome {
        self.accounts.store_offline(to, from, chat)
    }

    fn load_offline(&self, user: &UserName) -> Vec<(UserName, Chat)> {
        self.accounts.load_offline(user)
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
    (start_server_with(host, config), gate)
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
            let mut guesser = Raw::to_server(server.addr).await;
            guesser.send(&guess(i)).await;
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
            let mut guesser = Raw::to_server(server.addr).await;
            guesser.send(&guess(i)).await;
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

        let mut guesser = Raw::to_server(server.addr).await;
        guesser.send(&guess(abandoned)).await;
        assert_eq!(
            guesser.frames_until_closed().await,
            refused(LoginRefusal::TooManyAttempts),
            "{abandoned} passwords were checked for this address already"
        );
        chat.exchange(BATCH).await;
    })
}

// ---- against bob's P2P port ----------------------------------------------------------------

#[test]
fn garbage_on_bobs_p2p_port_is_answered_malformed_and_closed_while_the_direct_chat_carries_on() {
    bob_cuts_off(&garbage(), &[peer_error(ErrorCode::Malformed)]);
}

#[test]
fn a_4_gib_length_prefix_to_bob_is_refused_from_the_prefix_alone() {
    bob_cuts_off(&HUGE_PREFIX, &[peer_error(ErrorCode::FrameTooLarge)]);
}

#[test]
fn half_a_frame_then_silence_to_bob_is_cut_at_the_setup_deadline() {
    bob_cuts_off(&[0, 0], &[peer_error(ErrorCode::HelloTimeout)]);
}

#[test]
fn a_peer_speaking_another_protocol_version_is_told_so_by_bob() {
    let hello = peer_frame(&PeerFrame::Hello {
        version: PROTOCOL_VERSION + 1,
        user: name("alice"),
        nonce: [1; 32],
    });
    bob_cuts_off(&hello, &[peer_error(ErrorCode::UnsupportedVersion)]);
}

#[test]
fn an_unknown_message_tag_to_bob_is_malformed() {
    bob_cuts_off(&unknown_tag(), &[peer_error(ErrorCode::Malformed)]);
    bob_cuts_off(&byte_200(), &[peer_error(ErrorCode::Malformed)]);
}

#[test]
fn a_stranger_claiming_a_name_the_server_never_introduced_is_cut_at_the_setup_deadline() {
    let hello = peer_frame(&PeerFrame::Hello {
        version: PROTOCOL_VERSION,
        user: name("mallory"),
        nonce: [1; 32],
    });
    bob_cuts_off(&hello, &[peer_error(ErrorCode::UnknownPeer)]);
}

#[test]
fn two_hundred_silent_connections_to_bob_are_each_cut_at_the_setup_deadline() {
    smol::block_on(async {
        let server = server(LOGIN_TIMEOUT);
        let mut chat = direct_chat(&server).await;
        chat.exchange(BATCH).await;
        let mut attackers = Vec::new();
        for _ in 0..200 {
            attackers.push(
                Raw::to_peer(chat.bob.client.p2p_addr().expect("bob listens for peers")).await,
            );
        }
        chat.exchange(BATCH).await;
        for attacker in &mut attackers {
            assert_eq!(
                attacker.frames_until_closed().await,
                [peer_error(ErrorCode::HelloTimeout)]
            );
        }
        chat.exchange(BATCH).await;
    })
}

#[test]
fn a_peer_closing_mid_frame_on_bob_is_forgotten_quietly() {
    smol::block_on(async {
        let server = server(LOGIN_TIMEOUT);
        let mut chat = direct_chat(&server).await;
        chat.exchange(BATCH).await;
        let mut attacker =
            Raw::to_peer(chat.bob.client.p2p_addr().expect("bob listens for peers")).await;
        attacker.send(&[0, 0]).await;
        attacker.shutdown_write();
        chat.exchange(BATCH).await;
        assert_eq!(attacker.frames_until_closed().await, []);
        chat.exchange(BATCH).await;
    })
}

/// mallory connects to bob's P2P port claiming to be alice (who is online, so bob holds a
/// secret for her and challenges), then answers the challenge with `answer(challenge)`.
fn mallory_posing_as_alice(answer: impl Fn([u8; 32], [u8; 32]) -> [u8; 32]) {
    smol::block_on(async {
        let server = server(LOGIN_TIMEOUT);
        let mut chat = direct_chat(&server).await;
        chat.exchange(BATCH).await;
        let mut mallory =
            Raw::to_peer(chat.bob.client.p2p_addr().expect("bob listens for peers")).await;
        mallory
            .send(&peer_frame(&PeerFrame::Hello {
                version: PROTOCOL_VERSION,
                user: name("alice"),
                nonce: [1; 32],
            }))
            .await;
        let PeerFrame::Challenge { user, nonce, proof } = mallory.next_frame().await else {
            panic!("bob challenges a claimed alice");
        };
        assert_eq!(user, name("bob"));
        chat.exchange(BATCH).await;
        let proof = answer(nonce, proof);
        mallory.send(&peer_frame(&PeerFrame::Auth { proof })).await;
        assert_eq!(
            mallory.frames_until_closed().await,
            [peer_error(ErrorCode::SetupFailed)]
        );
        chat.bob
            .expect_seen("mallory's rejection", |e| {
                matches!(
                    e,
                    Event::PeerRejected { claimed: Some(claimed), error: LinkError::SetupFailed }
                        if *claimed == name("alice")
                )
            })
            .await;
        chat.exchange(BATCH).await;
        assert_eq!(
            server.stats.get().relayed_text_bytes,
            0,
            "no chat took the relay"
        );
    })
}

#[test]
fn a_chat_injected_before_authenticating_is_refused_and_never_shown() {
    smol::block_on(async {
        let server = server(LOGIN_TIMEOUT);
        let mut chat = direct_chat(&server).await;
        chat.exchange(BATCH).await;
        let mut mallory =
            Raw::to_peer(chat.bob.client.p2p_addr().expect("bob listens for peers")).await;
        let mut bytes = peer_frame(&PeerFrame::Hello {
            version: PROTOCOL_VERSION,
            user: name("alice"),
            nonce: [1; 32],
        });
        bytes.extend(peer_frame(&PeerFrame::Chat(spoofed_chat())));
        mallory.send(&bytes).await;
        chat.exchange(BATCH).await;
        let said = mallory.frames_until_closed().await;
        assert!(
            matches!(
                &said[..],
                [
                    PeerFrame::Challenge { .. },
                    PeerFrame::Error {
                        code: ErrorCode::UnexpectedFrame
                    }
                ]
            ),
            "{said:?}"
        );
        chat.bob
            .expect_seen("mallory's rejection", |e| {
                matches!(
                    e,
                    Event::PeerRejected { claimed: Some(claimed), error: LinkError::UnexpectedFrame }
                        if *claimed == name("alice")
                )
            })
            .await;
        // Were it shown, bob's next message would not be the conversation's.
        chat.exchange(BATCH).await;
    })
}

#[test]
fn a_forged_user_id_without_the_pair_secret_fails_authentication() {
    mallory_posing_as_alice(|_, _| [0; 32]);
}

#[test]
fn a_proof_made_for_another_nonce_with_a_guessed_secret_fails_authentication() {
    mallory_posing_as_alice(|bobs_nonce, _| {
        setup_proof(
            &[7; 32],
            Role::Dialer,
            &name("alice"),
            &name("bob"),
            &[2; 32],
            &bobs_nonce,
        )
    });
}

#[test]
fn bobs_own_proof_reflected_back_fails_authentication() {
    mallory_posing_as_alice(|_, bobs_proof| bobs_proof);
}

// ---- a client against a hostile server -----------------------------------------------------

#[test]
fn a_client_whose_server_sends_garbage_reports_a_decode_error_and_keeps_retrying() {
    smol::block_on(async {
        let fake = smol::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut carol = Chatter::start(client_options(fake.local_addr().unwrap(), "carol"));
        let lost_with = |code| move |e: &Event| matches!(e, Event::ServerLost { error: ServerLinkError::Decode(c), .. } if *c == code);
        for (reply, code) in [
            (garbage(), ErrorCode::Malformed),
            (HUGE_PREFIX.to_vec(), ErrorCode::FrameTooLarge),
        ] {
            let (stream, _) = within("carol's connection", fake.accept()).await.unwrap();
            let mut server_end = Raw::from_client(stream);
            server_end.send(&reply).await;
            carol
                .expect(&format!("losing the server to {code:?}"), lost_with(code))
                .await;
            // carol hung up on it, after saying hello and trying to log in.
            let said = server_end.frames_until_closed().await;
            assert!(
                matches!(
                    &said[..],
                    [ClientFrame::Hello { version: PROTOCOL_VERSION }, ClientFrame::Login { user, .. }]
                        if *user == name("carol")
                ),
                "{said:?}"
            );
        }
        // And she comes back for more: the failure was not taken for a refused login.
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
fn a_client_that_stops_reading_is_dropped_as_a_slow_consumer_and_the_chat_goes_on() {
    smol::block_on(async {
        let mut config = ServerConfig::default();
        config.max_pending_output = 256 * 1024;
        let server = start_server(&["alice", "bob", "carol"], config);
        let mut chat = relayed_chat(&server).await;
        chat.exchange(BATCH).await;

        // carol logs in from a bare socket and never reads again.
        let mut carol = Raw::to_server(server.addr).await;
        let mut login = client_frame(&ClientFrame::Hello {
            version: PROTOCOL_VERSION,
        });
        login.extend(client_frame(&ClientFrame::Login {
            user: name("carol"),
            password: PASSWORD.into(),
            p2p_port: 1,
            register: false,
        }));
        carol.send(&login).await;
        within("carol online", async {
            while server.stats.get().online < 3 {
                async_io::Timer::after(Duration::from_millis(10)).await;
            }
        })
        .await;

        // alice relays far more to carol than kernel buffers and the server's bound hold.
        let text = "x".repeat(16 * 1024);
        for _ in 0..1000 {
            if chat
                .alice
                .client
                .send(&name("carol"), text.clone())
                .await
                .is_err()
            {
                break;
            }
        }
        within("carol dropped as a slow consumer", async {
            while server.stats.get().online > 2 {
                async_io::Timer::after(Duration::from_millis(10)).await;
            }
        })
        .await;
        // alice and bob lose nothing.
        chat.exchange(BATCH).await;
        // And the server lets go of carol's socket too, though she still reads nothing: her
        // connection ends (once she drains what the kernel holds for her).
        carol.until_gone().await;
    })
}
