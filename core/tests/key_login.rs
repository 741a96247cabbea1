//! Key logins through both cores in memory: a profile enrols its key with the password once,
//! then logs in with the key alone; the server refuses keys it does not know or that were
//! revoked, counts those as failed logins of their address, and never holds a storm of
//! honest returning clients behind one address back.
//!
//! The host here is a table of enrolled and revoked keys. Which login frame a client sent is
//! read from what the server core asked its host: `CheckLogin` (a `Login` frame, with a
//! password) or `CheckKeyLogin` (a `KeyLogin` frame, the key alone).

use breeze_core::client::{Action, Client, ClientConfig, Destination, Event, ServerLinkError};
use breeze_core::secure::{IdentityKey, PublicKey};
use breeze_core::server::{Action as ServerAction, ConnId, Server, ServerConfig};
use breeze_core::wire::{LoginRefusal, UserName};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

fn name(n: &str) -> UserName {
    UserName::new(n).unwrap()
}

/// What the server asked its host, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Check {
    Password(UserName),
    Key(UserName),
}

#[derive(Default)]
struct Accounts {
    passwords: HashMap<UserName, String>,
    enrolled: HashSet<(UserName, PublicKey)>,
    revoked: HashSet<(UserName, PublicKey)>,
    checks: Vec<Check>,
    /// Key checks are held back (not answered) while this is set.
    hold_key_checks: bool,
    held: Vec<(ConnId, UserName, PublicKey)>,
}

impl Accounts {
    fn password(&mut self, user: &UserName, password: &str, key: PublicKey) -> Verdict {
        self.checks.push(Check::Password(user.clone()));
        if self.passwords.get(user).map(String::as_str) != Some(password) {
            return Err(LoginRefusal::BadCredentials);
        }
        if self.revoked.contains(&(user.clone(), key)) {
            return Err(LoginRefusal::KeyRevoked);
        }
        self.enrolled.insert((user.clone(), key));
        Ok(())
    }

    fn key(&mut self, user: &UserName, key: PublicKey) -> Verdict {
        let entry = (user.clone(), key);
        if self.revoked.contains(&entry) {
            Err(LoginRefusal::KeyRevoked)
        } else if self.enrolled.contains(&entry) {
            Ok(())
        } else {
            Err(LoginRefusal::KeyNotEnrolled)
        }
    }
}

type Verdict = Result<(), LoginRefusal>;

/// One server and the clients that dialled it, all from the same address (one NAT, or
/// one load generator).
struct Lan {
    server: Server,
    clients: Vec<Option<Client>>,
    events: Vec<Vec<Event>>,
    accounts: Accounts,
    now: Instant,
    /// Connection of each client: a new one per connect.
    conns: HashMap<usize, ConnId>,
    next_conn: u64,
}

const FROM: &str = "10.0.0.7:40000";

impl Lan {
    fn new(config: ServerConfig) -> Lan {
        Lan {
            server: Server::new(config, IdentityKey::from_secret([9; 32]), [0; 32]),
            clients: Vec::new(),
            events: Vec::new(),
            accounts: Accounts::default(),
            now: Instant::now(),
            conns: HashMap::new(),
            next_conn: 0,
        }
    }

    /// A client for `user` with the profile key `secret`, logging in with `key_login` or the
    /// password.
    fn start(&mut self, user: &str, secret: u8, key_login: bool) -> usize {
        let mut config = ClientConfig::new(name(user), format!("{user}-pw"), 0);
        config.direct_channels = false;
        config.key_login = key_login;
        if key_login {
            config.password = Default::default();
        }
        config.auto_reconnect = false;
        let i = self.clients.len();
        let identity = IdentityKey::from_secret([secret; 32]);
        let client = Client::new(config, identity, [i as u8 + 100; 32], self.now);
        self.clients.push(Some(client));
        self.events.push(Vec::new());
        i
    }

    fn stop(&mut self, i: usize) {
        self.clients[i] = None;
        if let Some(conn) = self.conns.remove(&i) {
            self.server.handle_disconnected(conn, self.now);
        }
    }

    fn client(&mut self, i: usize) -> &mut Client {
        self.clients[i].as_mut().unwrap()
    }

    /// Moves every output between the cores until all are quiet.
    fn settle(&mut self) {
        let now = self.now;
        let from: SocketAddr = FROM.parse().unwrap();
        for _ in 0..100_000 {
            let mut busy = false;
            for i in 0..self.clients.len() {
                let Some(client) = self.clients[i].as_mut() else {
                    continue;
                };
                while let Some(t) = client.poll_transmit() {
                    assert_eq!(t.to, Destination::Server);
                    if let Some(conn) = self.conns.get(&i) {
                        self.server.handle_bytes(*conn, t.unwrap_bytes(), now);
                    }
                    client.handle_written(t.to, t.unwrap_bytes().len());
                    busy = true;
                }
                while let Some(action) = client.poll_action() {
                    busy = true;
                    match action {
                        Action::ConnectServer => {
                            let conn = ConnId(self.next_conn);
                            self.next_conn += 1;
                            self.conns.insert(i, conn);
                            self.server.handle_connected(conn, from, now);
                            client.handle_server_connected(now);
                        }
                        Action::CloseServer => {
                            if let Some(conn) = self.conns.remove(&i) {
                                self.server.handle_disconnected(conn, now);
                            }
                        }
                        other => panic!("unexpected client action {other:?}"),
                    }
                }
                while let Some(event) = client.poll_event() {
                    self.events[i].push(event);
                    busy = true;
                }
            }
            // Transmits before each action: an action answered here is a new input whose
            // bytes (a refusal) go out before a later close.
            loop {
                while let Some(t) = self.server.poll_transmit() {
                    let client = self
                        .conns
                        .iter()
                        .find(|(_, c)| **c == t.to)
                        .map(|(i, _)| *i);
                    if let Some(Some(client)) = client.map(|i| self.clients[i].as_mut()) {
                        client.handle_server_bytes(t.unwrap_bytes(), now);
                    }
                    self.server.handle_written(t.to, t.unwrap_bytes().len());
                    busy = true;
                }
                let Some(action) = self.server.poll_action() else {
                    break;
                };
                busy = true;
                match action {
                    ServerAction::CheckLogin {
                        conn,
                        user,
                        password,
                        key,
                        ..
                    } => {
                        let verdict = self.accounts.password(&user, password.expose(), key);
                        self.server.handle_login_checked(conn, verdict, now);
                    }
                    ServerAction::CheckKeyLogin { conn, user, key } => {
                        self.accounts.checks.push(Check::Key(user.clone()));
                        if self.accounts.hold_key_checks {
                            self.accounts.held.push((conn, user, key));
                        } else {
                            let verdict = self.accounts.key(&user, key);
                            self.server.handle_login_checked(conn, verdict, now);
                        }
                    }
                    ServerAction::LoadOffline { user } => {
                        self.server.handle_offline_loaded(&user, vec![], now)
                    }
                    ServerAction::Close { conn } => {
                        let client = self.conns.iter().find(|(_, c)| **c == conn);
                        if let Some((&i, _)) = client {
                            self.conns.remove(&i);
                            if let Some(client) = self.clients[i].as_mut() {
                                client.handle_server_closed(now);
                            }
                        }
                        self.server.handle_disconnected(conn, now);
                    }
                    _ => {}
                }
            }
            while self.server.poll_event().is_some() {}
            if !busy {
                return;
            }
        }
        panic!("the cores never went quiet");
    }

    /// Answers the key checks held back, in order.
    fn release_key_checks(&mut self) {
        self.accounts.hold_key_checks = false;
        for (conn, user, key) in std::mem::take(&mut self.accounts.held) {
            let verdict = self.accounts.key(&user, key);
            self.server.handle_login_checked(conn, verdict, self.now);
        }
        self.settle();
    }

    fn refusal(&self, i: usize) -> Option<LoginRefusal> {
        self.events[i].iter().find_map(|e| match e {
            Event::LoginFailed { reason } => Some(*reason),
            // A refusal that retrying can cure is a lost server, tried again later.
            Event::ServerLost {
                error: ServerLinkError::Refused(reason),
                ..
            } => Some(*reason),
            _ => None,
        })
    }
}

fn alice_has_an_account(lan: &mut Lan) {
    lan.accounts
        .passwords
        .insert(name("alice"), "alice-pw".into());
}

#[test]
fn alice_enrols_with_her_password_then_logs_in_with_her_key_alone() {
    let mut lan = Lan::new(ServerConfig::default());
    alice_has_an_account(&mut lan);
    let first = lan.start("alice", 1, false);
    lan.settle();
    assert!(lan.client(first).is_logged_in());
    let enrolled = lan.events[first]
        .iter()
        .position(|e| matches!(e, Event::Enrolled { .. }));
    let logged_in = lan.events[first]
        .iter()
        .position(|e| matches!(e, Event::LoggedIn { .. }));
    assert!(
        enrolled.is_some() && enrolled < logged_in,
        "enrolled, then in"
    );
    // The profile restarts knowing it is enrolled: its key alone, no password in memory.
    lan.stop(first);
    let second = lan.start("alice", 1, true);
    lan.settle();
    assert!(lan.client(second).is_logged_in());
    assert_eq!(
        lan.accounts.checks,
        [Check::Password(name("alice")), Check::Key(name("alice"))],
        "one Login frame (the enrolment), then a KeyLogin frame"
    );
    assert!(!lan.events[second]
        .iter()
        .any(|e| matches!(e, Event::Enrolled { .. })));
}

#[test]
fn once_enrolled_a_client_reconnects_with_its_key() {
    let mut lan = Lan::new(ServerConfig::default());
    alice_has_an_account(&mut lan);
    let alice = lan.start("alice", 1, false);
    lan.settle();
    // The server goes away (a restart); alice reconnects by herself.
    let (conn, now) = (lan.conns.remove(&alice).unwrap(), lan.now);
    lan.server.handle_disconnected(conn, now);
    lan.client(alice).handle_server_closed(now);
    lan.settle();
    lan.client(alice).reconnect(now);
    lan.settle();
    assert!(lan.client(alice).is_logged_in());
    assert_eq!(
        lan.accounts.checks,
        [Check::Password(name("alice")), Check::Key(name("alice"))]
    );
}

#[test]
fn a_revoked_key_is_refused_with_or_without_the_password() {
    let mut lan = Lan::new(ServerConfig::default());
    alice_has_an_account(&mut lan);
    let key = IdentityKey::from_secret([1; 32]).public();
    lan.accounts.enrolled.insert((name("alice"), key));
    lan.accounts.revoked.insert((name("alice"), key));
    let by_key = lan.start("alice", 1, true);
    lan.settle();
    assert_eq!(lan.refusal(by_key), Some(LoginRefusal::KeyRevoked));
    assert!(lan.client(by_key).is_stopped());
    let by_password = lan.start("alice", 1, false);
    lan.settle();
    assert_eq!(lan.refusal(by_password), Some(LoginRefusal::KeyRevoked));
}

#[test]
fn a_key_not_enrolled_is_refused_and_the_password_enrols_it_again() {
    let mut lan = Lan::new(ServerConfig::default());
    alice_has_an_account(&mut lan);
    // An enrolled profile, but the server lost its key table.
    let alice = lan.start("alice", 1, true);
    lan.settle();
    assert_eq!(lan.refusal(alice), Some(LoginRefusal::KeyNotEnrolled));
    assert!(lan.client(alice).is_stopped());
    let now = lan.now;
    lan.client(alice)
        .log_in_with_password("alice-pw".into(), false, now);
    lan.settle();
    assert!(lan.client(alice).is_logged_in());
    assert!(lan.events[alice]
        .iter()
        .any(|e| matches!(e, Event::Enrolled { .. })));
    assert_eq!(
        lan.accounts.checks,
        [Check::Key(name("alice")), Check::Password(name("alice"))]
    );
}

#[test]
fn unknown_keys_count_as_failed_logins_of_their_address() {
    let config = ServerConfig::default();
    let max = config.max_login_failures_per_ip as usize;
    let mut lan = Lan::new(config);
    alice_has_an_account(&mut lan);
    // Fresh profiles claiming alice, one after the other, from one address.
    for secret in 0..max as u8 {
        let forger = lan.start("alice", 50 + secret, true);
        lan.settle();
        assert_eq!(lan.refusal(forger), Some(LoginRefusal::KeyNotEnrolled));
    }
    let key_checks = lan.accounts.checks.len();
    let next = lan.start("alice", 99, true);
    lan.settle();
    assert_eq!(lan.refusal(next), Some(LoginRefusal::TooManyAttempts));
    assert_eq!(lan.accounts.checks.len(), key_checks, "refused unchecked");
    // A minute later the address may try again.
    lan.now += Duration::from_secs(61);
    let later = lan.start("alice", 1, false);
    lan.settle();
    assert!(lan.client(later).is_logged_in());
}

#[test]
fn a_storm_of_returning_clients_behind_one_address_all_get_in() {
    let config = ServerConfig::default();
    let max = config.max_login_failures_per_ip as usize;
    let mut lan = Lan::new(config);
    let users: Vec<String> = (0..5 * max).map(|i| format!("user{i}")).collect();
    for (i, user) in users.iter().enumerate() {
        let key = IdentityKey::from_secret([i as u8 + 1; 32]).public();
        lan.accounts.enrolled.insert((name(user), key));
    }
    // Every check is under way at once before any is answered: as after a server restart.
    lan.accounts.hold_key_checks = true;
    let clients: Vec<usize> = users
        .iter()
        .enumerate()
        .map(|(i, user)| lan.start(user, i as u8 + 1, true))
        .collect();
    lan.settle();
    assert_eq!(
        lan.accounts.held.len(),
        users.len(),
        "none refused unchecked"
    );
    lan.release_key_checks();
    for client in clients {
        assert!(lan.client(client).is_logged_in(), "{}", users[client]);
    }
    assert!(lan
        .accounts
        .checks
        .iter()
        .all(|c| matches!(c, Check::Key(_))));
}
