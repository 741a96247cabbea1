//! What the end-to-end tests (`e2e_*.rs`) share.
//!
//! - Real processes: [`binaries`] builds `breeze-server` and `breeze` once per test binary;
//!   [`ServerProcess`] and [`ClientProcess`] run them as a user would, and kill them when
//!   dropped, also when a test panics.
//! - In process, over real loopback sockets: [`TestServer`] (from `breeze_sim::loopback`, with
//!   the other helpers these tests share with breeze-smol's and the client's) runs the smol
//!   server driver, [`Chatter`] is a smol client with everything it reported, [`Conversation`] is an honest
//!   alice↔bob chat that proves nothing was lost, and [`Raw`] is an attacker's bare socket
//!   speaking (or mangling) the wire format.
//!
//! Every wait is bounded by [`PATIENCE`] and waits for an event, never for time to pass.

// Each test file uses its own part of this module.
#![allow(dead_code)]

use breeze_core::client::Event;
use breeze_core::codec::{encode_frame, DecodeError, FrameDecoder, DEFAULT_MAX_FRAME};
use breeze_core::wire::{ClientFrame, PeerFrame, ServerFrame, UserName};
use breeze_core::Via;
use breeze_sim::loopback::{client_options, name, within, PASSWORD, PATIENCE};
use breeze_smol::{Client, ClientOptions, ConfigTweak};
use futures_lite::{future, AsyncReadExt, AsyncWriteExt};
use serde_json::Value;
use smol::net::TcpStream;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::Instant;

// ---- real processes ---------------------------------------------------------------------------

/// Where the freshly built binaries are.
pub struct Binaries {
    pub server: PathBuf,
    pub client: PathBuf,
}

/// Builds `breeze-server` and `breeze` (debug profile) once per test binary, with the cargo
/// that runs the tests, into the workspace's target directory, and says where they are. A
/// failed build fails every test that needs the binaries, with the same message, without
/// building again.
///
/// A relative `CARGO_TARGET_DIR` is taken relative to the workspace root.
pub fn binaries() -> &'static Binaries {
    static BINARIES: OnceLock<Result<Binaries, String>> = OnceLock::new();
    match BINARIES.get_or_init(build_binaries) {
        Ok(binaries) => binaries,
        Err(message) => panic!("{message}"),
    }
}

fn build_binaries() -> Result<Binaries, String> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives in the workspace")
        .to_path_buf();
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => workspace.join(dir),
        None => workspace.join("target"),
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(&workspace)
        .env("CARGO_TARGET_DIR", &target)
        .args([
            "build",
            "--quiet",
            "-p",
            "breeze-server",
            "-p",
            "breeze-client",
        ])
        .args(["--bin", "breeze-server", "--bin", "breeze"])
        .status()
        .map_err(|e| format!("cannot run cargo to build the binaries: {e}"))?;
    if !status.success() {
        return Err(format!("building the binaries failed: {status}"));
    }
    let bin = |name: &str| {
        let path = target
            .join("debug")
            .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
        match path.is_file() {
            true => Ok(path),
            false => Err(format!("{} was not built", path.display())),
        }
    };
    Ok(Binaries {
        server: bin("breeze-server")?,
        client: bin("breeze")?,
    })
}

/// Forwards the lines `reader` produces to a channel, from a thread; the channel disconnects
/// at end of file.
fn lines_of(reader: impl Read + Send + 'static) -> Receiver<String> {
    let (lines, receiver) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(reader).lines() {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    receiver
}

/// Collects the lines `reader` produces, for the failure report.
fn collect_lines(reader: impl Read + Send + 'static) -> Arc<Mutex<Vec<String>>> {
    let collected = Arc::new(Mutex::new(Vec::new()));
    let sink = collected.clone();
    thread::spawn(move || {
        for line in BufReader::new(reader).lines() {
            let Ok(line) = line else { break };
            sink.lock().unwrap_or_else(|p| p.into_inner()).push(line);
        }
    });
    collected
}

/// `text` without ANSI colour sequences (the server's log colours its fields on a terminal).
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters… final byte in @..~
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Sends `signal` (e.g. `TERM`) to a process with the system's `kill` command.
fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("cannot run kill");
    assert!(status.success(), "kill -{signal} {pid} failed: {status}");
}

/// Runs a short-lived command to the end, feeding it `stdin`, within [`PATIENCE`].
pub fn run_bounded(mut command: Command, stdin: &str) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start the command");
    let pid = child.id();
    let mut input = child.stdin.take().expect("stdin is piped");
    input
        .write_all(stdin.as_bytes())
        .expect("cannot write stdin");
    drop(input);
    let (done, finished) = mpsc::channel();
    thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    match finished.recv_timeout(PATIENCE) {
        Ok(output) => output.expect("cannot wait for the command"),
        Err(_) => {
            signal(pid, "KILL");
            panic!("{command:?} did not finish within {PATIENCE:?}");
        }
    }
}

/// A `breeze-server` process serving from a data directory.
pub struct ServerProcess {
    child: Child,
    pub addr: SocketAddr,
    stderr: Receiver<String>,
    /// Everything read from stderr so far.
    log: Vec<String>,
    /// The server's stdout: its first line says where it listens.
    stdout: Receiver<String>,
}

/// A data directory with an account for each of `users`, all with [`PASSWORD`].
pub fn accounts(users: &[&str]) -> tempfile::TempDir {
    let data = tempfile::tempdir().expect("a temporary directory");
    for user in users {
        ServerProcess::add_user(data.path(), user, PASSWORD);
    }
    data
}

/// Waits for `client`'s `logged_in` event.
pub fn logged_in(client: &mut ClientProcess) {
    let user = client.user.clone();
    client.expect("its login", |e| {
        e["event"] == "logged_in" && e["user"] == user.as_str()
    });
}

impl ServerProcess {
    /// `breeze-server --data DATA user add NAME --password-stdin`.
    pub fn add_user(data: &Path, user: &str, password: &str) {
        let mut command = Command::new(&binaries().server);
        command
            .arg("--data")
            .arg(data)
            .args(["user", "add", user, "--password-stdin"]);
        let output = run_bounded(command, &format!("{password}\n"));
        assert!(
            output.status.success(),
            "user add {user} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// `breeze-server --listen LISTEN --data DATA`; returns once it printed where it listens.
    pub fn start(data: &Path, listen: &str) -> ServerProcess {
        ServerProcess::start_with(data, listen, &[])
    }

    /// Like [`start`](Self::start), with more options (e.g. `--open-registration`). It does
    /// not announce itself: tests send nothing beyond loopback (see `e2e_discovery.rs` for
    /// the one that does, inside network namespaces of its own).
    pub fn start_with(data: &Path, listen: &str, options: &[&str]) -> ServerProcess {
        let mut command = Command::new(&binaries().server);
        command.arg("--no-announce");
        ServerProcess::spawn(command, data, listen, options)
    }

    /// `command` (the server binary, or something running it, like `ip netns exec NS
    /// breeze-server`) serving `data` on `listen` with `options`, once it listens.
    pub fn spawn(
        mut command: Command,
        data: &Path,
        listen: &str,
        options: &[&str],
    ) -> ServerProcess {
        let mut child = command
            .args(["--listen", listen])
            .args(options)
            .arg("--data")
            .arg(data)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start breeze-server");
        let stdout = lines_of(child.stdout.take().expect("stdout is piped"));
        let stderr = lines_of(child.stderr.take().expect("stderr is piped"));
        let mut server = ServerProcess {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            stderr,
            log: Vec::new(),
            stdout,
        };
        let first = match server.stdout.recv_timeout(PATIENCE) {
            Ok(line) => line,
            Err(e) => {
                server.drain_log();
                panic!(
                    "breeze-server printed no first line ({e}); its log:\n{}",
                    server.log.join("\n")
                );
            }
        };
        let addr = first
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"));
        server.addr = addr.parse().expect("the address after `listening on`");
        server
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn drain_log(&mut self) {
        while let Ok(line) = self.stderr.try_recv() {
            self.log.push(strip_ansi(&line));
        }
    }

    /// Reads stderr until the process closes it (it exited), within [`PATIENCE`].
    fn read_log_to_end(&mut self) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) => self.log.push(strip_ansi(&line)),
                Err(RecvTimeoutError::Disconnected) => return,
                Err(RecvTimeoutError::Timeout) => {
                    panic!("breeze-server did not exit within {PATIENCE:?}")
                }
            }
        }
    }

    /// Stops the server with SIGTERM, as an operator would; returns its exit status and its
    /// whole log.
    pub fn terminate(mut self) -> (ExitStatus, Vec<String>) {
        signal(self.pid(), "TERM");
        self.read_log_to_end();
        let status = self.child.wait().expect("cannot wait for breeze-server");
        (status, std::mem::take(&mut self.log))
    }

    /// Kills the server with SIGKILL: no goodbye, as in a crash or a power cut.
    pub fn kill(mut self) {
        self.child.kill().expect("cannot kill breeze-server");
        self.child.wait().expect("cannot wait for breeze-server");
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            self.drain_log();
            eprintln!("--- breeze-server log ---\n{}", self.log.join("\n"));
        }
    }
}

/// A `breeze --json` client process: commands on its stdin, its JSON events read on a thread.
pub struct ClientProcess {
    pub user: String,
    /// The profile (keys, pins) this client process uses, kept until it is dropped.
    pub profile: Arc<tempfile::TempDir>,
    child: Child,
    stdin: Option<ChildStdin>,
    events: Receiver<String>,
    /// Every event read so far, in order.
    pub seen: Vec<Value>,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl ClientProcess {
    /// `breeze --json --server SERVER --user USER --p2p-listen 127.0.0.1:0`, the password in
    /// `BREEZE_PASSWORD`.
    pub fn start(server: SocketAddr, user: &str) -> ClientProcess {
        ClientProcess::start_with_password(server, user, PASSWORD)
    }

    /// Like [`start`](Self::start), with another password.
    pub fn start_with_password(server: SocketAddr, user: &str, password: &str) -> ClientProcess {
        let profile = Arc::new(tempfile::tempdir().expect("a temporary profile directory"));
        ClientProcess::start_in(server, user, password, profile, &[])
    }

    /// Like [`start`](Self::start), in the profile of an earlier client (the same user
    /// starting again on the same machine), with `extra` arguments.
    pub fn start_in(
        server: SocketAddr,
        user: &str,
        password: &str,
        profile: Arc<tempfile::TempDir>,
        extra: &[&str],
    ) -> ClientProcess {
        let mut command = Command::new(&binaries().client);
        command
            .args(["--server", &server.to_string()])
            .args(["--p2p-listen", "127.0.0.1:0"]);
        ClientProcess::spawn(command, user, password, profile, extra)
    }

    /// `command` (the client binary with its first options, or something running it) as
    /// `user` in line mode, in `profile`, with `extra` arguments. The settings file is looked
    /// for in the profile's directory, so the tester's own settings play no part.
    pub fn spawn(
        command: Command,
        user: &str,
        password: &str,
        profile: Arc<tempfile::TempDir>,
        extra: &[&str],
    ) -> ClientProcess {
        ClientProcess::spawn_with(command, user, Some(password), profile, extra)
    }

    /// Like [`start_in`](Self::start_in), with no password anywhere: no `BREEZE_PASSWORD`
    /// (and no terminal to ask on). Only a key login can get such a client in.
    pub fn start_without_password(
        server: SocketAddr,
        user: &str,
        profile: Arc<tempfile::TempDir>,
    ) -> ClientProcess {
        let mut command = Command::new(&binaries().client);
        command
            .args(["--server", &server.to_string()])
            .args(["--p2p-listen", "127.0.0.1:0"]);
        ClientProcess::spawn_with(command, user, None, profile, &[])
    }

    fn spawn_with(
        mut command: Command,
        user: &str,
        password: Option<&str>,
        profile: Arc<tempfile::TempDir>,
        extra: &[&str],
    ) -> ClientProcess {
        match password {
            Some(password) => command.env("BREEZE_PASSWORD", password),
            None => command.env_remove("BREEZE_PASSWORD"),
        };
        let mut child = command
            .args(["--json", "--user", user])
            .arg("--profile")
            .arg(profile.path().join("profile"))
            .args(extra)
            .env("XDG_CONFIG_HOME", profile.path())
            .env_remove("RUST_LOG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start breeze");
        let events = lines_of(child.stdout.take().expect("stdout is piped"));
        let stderr = collect_lines(child.stderr.take().expect("stderr is piped"));
        ClientProcess {
            user: user.to_owned(),
            profile,
            stdin: child.stdin.take(),
            child,
            events,
            seen: Vec::new(),
            stderr,
        }
    }

    /// Types one command line.
    pub fn command(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        writeln!(stdin, "{line}")
            .and_then(|()| stdin.flush())
            .unwrap_or_else(|e| panic!("{} does not take commands: {e}", self.user));
    }

    /// The next event, or `None` once the client closed its stdout.
    fn next_event(&mut self, deadline: Instant, what: &str) -> Option<Value> {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.events.recv_timeout(left) {
            Ok(line) => {
                let event: Value = serde_json::from_str(&line).unwrap_or_else(|e| {
                    panic!(
                        "{} printed a line that is not JSON ({e}): {line}",
                        self.user
                    )
                });
                assert!(
                    event["event"].is_string(),
                    "{} printed an event without an \"event\" field: {line}",
                    self.user
                );
                self.seen.push(event.clone());
                Some(event)
            }
            Err(RecvTimeoutError::Disconnected) => None,
            Err(RecvTimeoutError::Timeout) => panic!(
                "{} did not report {what} within {PATIENCE:?}; it reported:\n{}",
                self.user,
                self.report()
            ),
        }
    }

    /// Waits for the next event that `want` accepts, skipping others (they stay in
    /// [`seen`](Self::seen)).
    pub fn expect(&mut self, what: &str, want: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            match self.next_event(deadline, what) {
                Some(event) if want(&event) => return event,
                Some(_) => {}
                None => panic!(
                    "{} exited before reporting {what}; it reported:\n{}",
                    self.user,
                    self.report()
                ),
            }
        }
    }

    /// Like [`expect`](Self::expect), but an event already seen counts too.
    pub fn expect_seen(&mut self, what: &str, want: impl Fn(&Value) -> bool) -> Value {
        match self.seen.iter().find(|e| want(e)) {
            Some(event) => event.clone(),
            None => self.expect(what, want),
        }
    }

    /// Types `send TO TEXT` and returns the message id the client answers with.
    pub fn send(&mut self, to: &str, text: &str) -> u64 {
        self.command(&format!("send {to} {text}"));
        let sent = self.expect("the sent message's id", |e| {
            e["event"] == "sent" && e["to"] == to
        });
        sent["id"].as_u64().expect("a numeric id")
    }

    /// Kills the client with SIGKILL, as in a crash: nothing after this reaches its disk.
    pub fn kill(mut self) {
        self.child.kill().expect("cannot kill breeze");
        self.child.wait().expect("cannot wait for breeze");
    }

    /// Types `history PEER` and returns the `messages` of the `history` event it answers.
    pub fn history(&mut self, peer: &str) -> Vec<Value> {
        self.command(&format!("history {peer}"));
        let history = self.expect("its history", |e| {
            e["event"] == "history" && e["peer"] == peer
        });
        history["messages"].as_array().cloned().unwrap_or_default()
    }

    /// Types `quit` and waits until the client has exited; returns its exit status.
    pub fn quit(mut self) -> ExitStatus {
        self.command("quit");
        self.exit_status()
    }

    /// Waits until the client exits by itself (it closes its stdout as it does); returns its
    /// exit status.
    pub fn exit_status(&mut self) -> ExitStatus {
        let deadline = Instant::now() + PATIENCE;
        while self.next_event(deadline, "its exit").is_some() {}
        self.child.wait().expect("cannot wait for breeze")
    }

    /// Events and stderr, for a failure message.
    fn report(&self) -> String {
        let mut report: Vec<String> = self.seen.iter().map(Value::to_string).collect();
        report.push(format!("--- {} stderr ---", self.user));
        report.extend(
            self.stderr
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .cloned(),
        );
        report.join("\n")
    }
}

impl Drop for ClientProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            eprintln!("--- {} events ---\n{}", self.user, self.report());
        }
    }
}

/// `breeze --server SERVER --user USER send TO TEXT`: the one-shot mode, run to its end.
pub fn send_one_shot(server: SocketAddr, user: &str, to: &str, text: &str) -> Output {
    let profile = tempfile::tempdir().expect("a temporary profile directory");
    let mut command = Command::new(&binaries().client);
    command
        .args(["--server", &server.to_string(), "--user", user])
        .arg("--profile")
        .arg(profile.path().join("profile"))
        .args(["--p2p-listen", "127.0.0.1:0", "send", to, text])
        .env("BREEZE_PASSWORD", PASSWORD)
        .env_remove("RUST_LOG");
    run_bounded(command, "")
}

// ---- in process, over loopback sockets ---------------------------------------------------------

/// A running smol client and everything it has reported.
pub struct Chatter {
    pub client: Client,
    /// Every event so far, in order.
    pub log: Vec<Event>,
    /// Messages received and not yet taken by [`next_message`](Chatter::next_message).
    inbox: VecDeque<(UserName, String, Via)>,
}

impl Chatter {
    pub fn start(options: ClientOptions) -> Chatter {
        Chatter {
            client: Client::start(options).expect("cannot start the client"),
            log: Vec::new(),
            inbox: VecDeque::new(),
        }
    }

    fn who(&self) -> &str {
        self.client.user().as_str()
    }

    /// The next event, recorded in the log (and the inbox, for a message).
    async fn pull(&mut self) -> Event {
        let Some(event) = self.client.next_event().await else {
            panic!(
                "{}'s client stopped; it reported {:#?}",
                self.who(),
                self.log
            );
        };
        if let Event::Message {
            from, text, route, ..
        } = &event
        {
            self.inbox.push_back((from.clone(), text.clone(), *route));
        }
        self.log.push(event.clone());
        event
    }

    /// Waits for a new event that `want` accepts.
    pub async fn expect(&mut self, what: &str, want: impl Fn(&Event) -> bool) -> Event {
        let who = self.who().to_owned();
        let found = future::or(
            async {
                loop {
                    let event = self.pull().await;
                    if want(&event) {
                        return Some(event);
                    }
                }
            },
            async {
                async_io::Timer::after(PATIENCE).await;
                None
            },
        )
        .await;
        found.unwrap_or_else(|| {
            panic!(
                "{who} did not report {what} within {PATIENCE:?}; it reported {:#?}",
                self.log
            )
        })
    }

    /// Like [`expect`](Chatter::expect), but an event already in the log counts too.
    pub async fn expect_seen(&mut self, what: &str, want: impl Fn(&Event) -> bool) -> Event {
        match self.log.iter().find(|e| want(e)) {
            Some(event) => event.clone(),
            None => self.expect(what, want).await,
        }
    }

    /// The next message received, in arrival order.
    pub async fn next_message(&mut self) -> (UserName, String, Via) {
        if self.inbox.is_empty() {
            self.expect("a message", |e| matches!(e, Event::Message { .. }))
                .await;
        }
        self.inbox.pop_front().expect("a message was just received")
    }
}

/// An honest alice↔bob conversation, used to prove that an attack going on beside it costs it
/// nothing: every message arrives exactly once, in order, on the expected route.
pub struct Conversation {
    pub alice: Chatter,
    pub bob: Chatter,
    /// The route every message must take.
    pub route: Via,
    /// Messages sent each way so far.
    sent: usize,
}

impl Conversation {
    /// alice and bob log in to `server`. With `Via::Direct` they chat over their direct
    /// channel (both ends report it up before this returns); with `Via::Relay` direct channels
    /// are off, so every message goes through the server. `bob_tweak` adjusts bob's core.
    pub async fn start(server: SocketAddr, route: Via, bob_tweak: Option<ConfigTweak>) -> Self {
        let options = |user| {
            let mut options = client_options(server, user);
            options.direct_channels = route == Via::Direct;
            options
        };
        let mut bob_options = options("bob");
        bob_options.tweak = bob_tweak;
        let mut alice = Chatter::start(options("alice"));
        let mut bob = Chatter::start(bob_options);
        for (me, peer) in [(&mut alice, "bob"), (&mut bob, "alice")] {
            let peer = name(peer);
            match route {
                Via::Direct => {
                    me.expect("a direct channel", |e| {
                        matches!(e, Event::Route { peer: p, route: breeze_core::client::Route::Direct, .. } if *p == peer)
                    })
                    .await
                }
                Via::Relay => {
                    me.expect("the peer online", |e| {
                        matches!(e, Event::Presence { user, online: true } if *user == peer)
                    })
                    .await
                }
            };
        }
        Conversation {
            alice,
            bob,
            route,
            sent: 0,
        }
    }

    /// Sends `n` more numbered messages each way, then waits until both sides have received
    /// every one: exactly once, in order, on the conversation's route.
    pub async fn exchange(&mut self, n: usize) {
        let range = self.sent..self.sent + n;
        self.sent += n;
        for i in range.clone() {
            for (from, to) in [(&self.alice, "bob"), (&self.bob, "alice")] {
                let text = format!("{} #{i}", from.who());
                from.client
                    .send(&name(to), text)
                    .await
                    .unwrap_or_else(|e| panic!("{} cannot send: {e}", from.who()));
            }
        }
        for i in range {
            for (to, from) in [(&mut self.bob, "alice"), (&mut self.alice, "bob")] {
                let got = within("the conversation", to.next_message()).await;
                let want = (name(from), format!("{from} #{i}"), self.route);
                assert_eq!(
                    got,
                    want,
                    "{} got the wrong message (lost, duplicated, reordered or rerouted)",
                    to.who()
                );
            }
        }
    }
}

/// One frame of the client↔server family, as a client would send it.
pub fn client_frame(frame: &ClientFrame) -> Vec<u8> {
    let mut bytes = Vec::new();
    encode_frame(frame, DEFAULT_MAX_FRAME, &mut bytes).expect("the frame fits");
    bytes
}

/// One frame of the peer family.
pub fn peer_frame(frame: &PeerFrame) -> Vec<u8> {
    let mut bytes = Vec::new();
    encode_frame(frame, DEFAULT_MAX_FRAME, &mut bytes).expect("the frame fits");
    bytes
}

/// How a test end decodes the frames it expects (one family).
type Decode<T> = fn(&mut FrameDecoder, &mut &[u8]) -> Result<Option<T>, DecodeError>;

// ---- attackers on encrypted links --------------------------------------------------------------
//
// Every connection starts with a Noise handshake and carries only sealed records after it (see
// `breeze_core::secure`). [`Wire`] is a bare socket for attacks on the handshake itself, where
// nothing decodes; [`Secure`] does a correct handshake (XX to a server, IK to a peer, or XX as a
// fake server) and then seals and opens records, for attacks on what travels inside them.
// [`Proxy`] sits in front of a P2P port and records what a dialer sends through it.

use breeze_core::rng::SeededRng;
use breeze_core::secure::{
    Handshake, HandshakeError, IdentityKey, Inbound, LinkKind, PublicKey, RecordError, Sealer,
};
use breeze_core::wire::PeerIntro;
use std::sync::atomic::{AtomicU64, Ordering};

/// Randomness for an attacker's handshake: a different stream on every call and every run.
pub fn fresh_rng() -> SeededRng {
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let call = CALLS.fetch_add(1, Ordering::Relaxed);
    let clock = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&call.to_le_bytes());
    seed[8..16].copy_from_slice(&clock.to_le_bytes());
    seed[16..24].copy_from_slice(&u64::from(std::process::id()).to_le_bytes());
    SeededRng::from_seed(seed)
}

/// A static key of the attacker's own, nobody else's.
pub fn fresh_key() -> IdentityKey {
    IdentityKey::from_secret(fresh_rng().bytes32())
}

/// The bytes of one handshake message or record as it goes on the wire: a 2-byte big-endian
/// length, then the body.
pub fn framed_record(body: &[u8]) -> Vec<u8> {
    let len = u16::try_from(body.len()).expect("a record is at most 64 KiB");
    let mut bytes = len.to_be_bytes().to_vec();
    bytes.extend_from_slice(body);
    bytes
}

/// Cuts `bytes` into whole records (handshake messages or sealed records), each with its
/// length prefix; what is left over (half a record) comes last, if anything.
pub fn split_records(mut bytes: &[u8]) -> (Vec<Vec<u8>>, Vec<u8>) {
    let mut records = Vec::new();
    while bytes.len() >= 2 {
        let len = u16::from_be_bytes([bytes[0], bytes[1]]) as usize;
        if bytes.len() < 2 + len {
            break;
        }
        records.push(bytes[..2 + len].to_vec());
        bytes = &bytes[2 + len..];
    }
    (records, bytes.to_vec())
}

/// `records` (as [`Secure::seal`] made them) with one bit of the first record's ciphertext
/// flipped, its length prefix untouched: framing holds, authentication must not.
pub fn flip_one_bit(mut records: Vec<u8>) -> Vec<u8> {
    let len = u16::from_be_bytes([records[0], records[1]]) as usize;
    assert!(len > 0 && records.len() >= 2 + len, "one whole record");
    records[2 + len / 2] ^= 0x10;
    records
}

/// A bare TCP connection that sees bytes, not frames: for attacks before or during the
/// handshake, where nothing decodes.
pub struct Wire {
    stream: TcpStream,
    /// Read and not yet taken.
    received: Vec<u8>,
    eof: bool,
}

impl Wire {
    pub async fn connect(addr: SocketAddr) -> Wire {
        let stream = within("a connection", TcpStream::connect(addr))
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {addr}: {e}"));
        Wire::from_stream(stream)
    }

    /// The far end of a connection someone made to us (a fake server's, a proxy's).
    pub fn from_stream(stream: TcpStream) -> Wire {
        Wire {
            stream,
            received: Vec::new(),
            eof: false,
        }
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        within("a write", self.stream.write_all(bytes))
            .await
            .expect("the write");
    }

    /// Closes our sending half: the far side reads end of file.
    pub fn shutdown_write(&self) {
        self.stream
            .shutdown(Shutdown::Write)
            .expect("shutdown of the sending half");
    }

    /// Reads once more; the far side must close cleanly (a reset fails the test).
    async fn read_more(&mut self) {
        let mut buffer = [0u8; 4096];
        let n =
            self.stream.read(&mut buffer).await.unwrap_or_else(|e| {
                panic!("the connection failed instead of closing cleanly: {e}")
            });
        if n == 0 {
            self.eof = true;
        }
        self.received.extend_from_slice(&buffer[..n]);
    }

    /// The next whole record (handshake message or sealed record), with its length prefix.
    pub async fn next_record(&mut self) -> Vec<u8> {
        within("a record", async {
            loop {
                let (records, _) = split_records(&self.received);
                if let Some(record) = records.into_iter().next() {
                    self.received.drain(..record.len());
                    return record;
                }
                assert!(!self.eof, "the connection closed before a whole record");
                self.read_more().await;
            }
        })
        .await
    }

    /// Every byte the far side sent (and we have not taken) until it closed the connection,
    /// within [`PATIENCE`].
    pub async fn bytes_until_closed(&mut self) -> Vec<u8> {
        within("the close", async {
            while !self.eof {
                self.read_more().await;
            }
        })
        .await;
        std::mem::take(&mut self.received)
    }

    /// Reads and discards until the far side is gone (end of file or a reset).
    pub async fn until_gone(&mut self) {
        within("the connection to end", async {
            let mut buffer = vec![0u8; 64 * 1024];
            while let Ok(n) = self.stream.read(&mut buffer).await {
                if n == 0 {
                    break;
                }
            }
        })
        .await;
    }
}

/// Why a handshake or the records after it failed, on the attacker's side.
#[derive(Debug)]
enum Broken {
    Handshake(HandshakeError),
    Record(RecordError),
}

impl From<RecordError> for Broken {
    fn from(error: RecordError) -> Self {
        Broken::Record(error)
    }
}

/// A connection whose handshake went through: frames sealed on the way out, records opened
/// and decoded (as `T`) on the way in. Bytes that do not open or decode fail the test.
pub struct Secure<T> {
    wire: Wire,
    sealer: Sealer,
    inbound: Inbound,
    decoder: FrameDecoder,
    decode: Decode<T>,
    frames: VecDeque<T>,
    /// The static key the other side proved it holds.
    pub remote: PublicKey,
}

impl Secure<ServerFrame> {
    /// XX to a server's client port, as a client with a key of its own.
    pub async fn to_server(addr: SocketAddr) -> Self {
        Secure::to_server_as(addr, &fresh_key()).await
    }

    /// XX to a server's client port, as a client holding `key`.
    pub async fn to_server_as(addr: SocketAddr, key: &IdentityKey) -> Self {
        Secure::on_server_wire(Wire::connect(addr).await, key).await
    }

    /// XX as a client on a connection already open (and silent so far).
    pub async fn on_server_wire(wire: Wire, key: &IdentityKey) -> Self {
        let handshake = Handshake::initiator(LinkKind::ClientServer, key, None, &mut fresh_rng())
            .expect("an XX initiator");
        Secure::handshake(wire, handshake, Some(&[][..]), |d, b| {
            d.decode::<ServerFrame>(b)
        })
        .await
    }
}

impl Secure<PeerFrame> {
    /// IK to a peer's P2P port as its dialer: encrypted to `their_key`, proving `key`, and
    /// claiming to be `user` (the first message's payload). Like an honest dialer, sends a
    /// first record only when told to.
    pub async fn to_peer(
        addr: SocketAddr,
        key: &IdentityKey,
        their_key: &PublicKey,
        user: &str,
    ) -> Self {
        let handshake =
            Handshake::initiator(LinkKind::Peer, key, Some(their_key), &mut fresh_rng())
                .expect("an IK initiator");
        let wire = Wire::connect(addr).await;
        Secure::handshake(wire, handshake, Some(user.as_bytes()), |d, b| {
            d.decode::<PeerFrame>(b)
        })
        .await
    }
}

impl Secure<ClientFrame> {
    /// A fake server's end of a connection a client made: XX as the responder, holding `key`.
    pub async fn from_client(stream: TcpStream, key: &IdentityKey) -> Self {
        let handshake = Handshake::responder(LinkKind::ClientServer, key, &mut fresh_rng())
            .expect("an XX responder");
        Secure::handshake(Wire::from_stream(stream), handshake, None, |d, b| {
            d.decode::<ClientFrame>(b)
        })
        .await
    }
}

impl<T: std::fmt::Debug> Secure<T> {
    /// Runs `handshake` to its end on `wire`: writes the first message (with `first`'s
    /// payload) if we speak first, then answers each message read until the pattern is done.
    async fn handshake(
        mut wire: Wire,
        handshake: Handshake,
        first: Option<&[u8]>,
        decode: Decode<T>,
    ) -> Self {
        let mut handshake = Some(handshake);
        if let Some(payload) = first {
            let message = handshake
                .as_mut()
                .map(|h| h.write(payload))
                .expect("a handshake")
                .expect("the first message");
            wire.send(&message).await;
        }
        let mut inbound = Inbound::default();
        let mut plain = Vec::new();
        let mut sealer = None;
        let mut remote = None;
        within("the handshake", async {
            while sealer.is_none() {
                if wire.received.is_empty() {
                    assert!(!wire.eof, "the far side closed during the handshake");
                    wire.read_more().await;
                }
                let bytes = std::mem::take(&mut wire.received);
                let mut replies = Vec::new();
                inbound
                    .read(&bytes, &mut plain, |message| {
                        let Some(state) = handshake.as_mut() else {
                            return Err(Broken::Handshake(HandshakeError::Failed));
                        };
                        state.read(message).map_err(Broken::Handshake)?;
                        if !state.is_finished() {
                            replies.extend(state.write(&[]).map_err(Broken::Handshake)?);
                        }
                        if !state.is_finished() {
                            return Ok(None);
                        }
                        let channel = handshake
                            .take()
                            .map(Handshake::finish)
                            .expect("a finished handshake")
                            .map_err(Broken::Handshake)?;
                        sealer = Some(channel.sealer);
                        remote = Some(channel.remote);
                        Ok(Some(channel.opener))
                    })
                    .unwrap_or_else(|e| panic!("the handshake failed: {e:?}"));
                if !replies.is_empty() {
                    wire.send(&replies).await;
                }
            }
        })
        .await;
        let mut secure = Secure {
            wire,
            sealer: sealer.expect("the channel"),
            inbound,
            decoder: FrameDecoder::new(DEFAULT_MAX_FRAME),
            decode,
            frames: VecDeque::new(),
            remote: remote.expect("the remote key"),
        };
        secure.decode_plain(&plain);
        secure
    }

    fn decode_plain(&mut self, plain: &[u8]) {
        let mut input = plain;
        while let Some(frame) = (self.decode)(&mut self.decoder, &mut input)
            .unwrap_or_else(|e| panic!("undecodable frames came back: {e}"))
        {
            self.frames.push_back(frame);
        }
    }

    /// `plain` (encoded frames, or any bytes at all) as records of this channel, to send as
    /// they are or mangled first. Each call uses up record numbers whether sent or not.
    pub fn seal(&mut self, plain: &[u8]) -> Vec<u8> {
        self.sealer.seal_to_vec(plain).expect("the record counter")
    }

    /// Seals `plain` and sends it.
    pub async fn send_sealed(&mut self, plain: &[u8]) {
        let records = self.seal(plain);
        self.wire.send(&records).await;
    }

    /// Sends `bytes` as they are: records made with [`seal`](Self::seal), or anything else.
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.wire.send(bytes).await;
    }

    /// Closes our sending half: the far side reads end of file.
    pub fn shutdown_write(&self) {
        self.wire.shutdown_write();
    }

    /// Reads once more, opening and decoding what arrives.
    async fn read_more(&mut self) {
        self.wire.read_more().await;
        let bytes = std::mem::take(&mut self.wire.received);
        let mut plain = Vec::new();
        self.inbound
            .read(&bytes, &mut plain, |_| {
                Err(Broken::Handshake(HandshakeError::Failed))
            })
            .unwrap_or_else(|e| panic!("records that do not open came back: {e:?}"));
        self.decode_plain(&plain);
    }

    /// The next frame the far side sent.
    pub async fn next_frame(&mut self) -> T {
        within("a frame", async {
            while self.frames.is_empty() {
                assert!(
                    !self.wire.eof,
                    "the connection closed before the next frame"
                );
                self.read_more().await;
            }
        })
        .await;
        self.frames.pop_front().expect("a frame")
    }

    /// Every frame the far side sent (and we have not taken) until it closed the connection;
    /// fails if it does not close within [`PATIENCE`] or leaves half a frame.
    pub async fn frames_until_closed(&mut self) -> Vec<T> {
        within("the close", async {
            while !self.wire.eof {
                self.read_more().await;
            }
        })
        .await;
        assert_eq!(self.decoder.buffered(), 0, "the far side left half a frame");
        self.frames.drain(..).collect()
    }

    /// Reads and discards until the far side is gone (end of file or a reset).
    pub async fn until_gone(&mut self) {
        self.wire.until_gone().await;
    }
}

/// Logs in as `user` (with [`PASSWORD`]) over a [`Secure`] connection of `key`'s, advertising
/// `p2p_port`; returns the connection once the server said yes, and the introductions it
/// handed out until then (the online list).
pub async fn log_in_securely(
    server: SocketAddr,
    user: &str,
    key: &IdentityKey,
    p2p_port: u16,
) -> (Secure<ServerFrame>, Vec<PeerIntro>) {
    let mut conn = Secure::to_server_as(server, key).await;
    let mut login = client_frame(&ClientFrame::Hello {
        version: breeze_core::wire::PROTOCOL_VERSION,
    });
    login.extend(client_frame(&ClientFrame::Login {
        user: name(user),
        password: PASSWORD.into(),
        p2p_port,
        register: false,
    }));
    conn.send_sealed(&login).await;
    let mut intros = Vec::new();
    let mut logged_in = false;
    loop {
        match conn.next_frame().await {
            ServerFrame::Hello { .. } => {}
            ServerFrame::LoginOk { .. } => logged_in = true,
            ServerFrame::Presence { peers, .. } if logged_in => intros.extend(peers),
            // The user's groups follow the online list; their end closes the login.
            ServerFrame::Group { .. } if logged_in => {}
            ServerFrame::GroupsListed if logged_in => return (conn, intros),
            other => panic!("{user} was not let in: {other:?}"),
        }
    }
}

impl Conversation {
    /// Like [`start`](Conversation::start), for chatters started by the caller (with options
    /// of its own): waits until each sees the other on `route`.
    pub async fn between(mut alice: Chatter, mut bob: Chatter, route: Via) -> Self {
        for (me, peer) in [(&mut alice, "bob"), (&mut bob, "alice")] {
            let peer = name(peer);
            match route {
                Via::Direct => {
                    me.expect("a direct channel", |e| {
                        matches!(e, Event::Route { peer: p, route: breeze_core::client::Route::Direct, .. } if *p == peer)
                    })
                    .await
                }
                Via::Relay => {
                    me.expect("the peer online", |e| {
                        matches!(e, Event::Presence { user, online: true } if *user == peer)
                    })
                    .await
                }
            };
        }
        Conversation {
            alice,
            bob,
            route,
            sent: 0,
        }
    }
}

/// What one connection through a [`Proxy`] carried: what the dialer sent, and what the
/// acceptor sent back.
#[derive(Clone, Default)]
pub struct Recorded {
    pub from_dialer: Vec<u8>,
    pub from_acceptor: Vec<u8>,
}

/// A TCP relay in front of a port: forwards every connection it accepts to a target it is told
/// later, both ways, recording every byte each way, connection by connection. A connection it
/// cannot forward (the target is down) is closed unrecorded, as a refused connect would be.
pub struct Proxy {
    pub addr: SocketAddr,
    target: async_channel::Sender<SocketAddr>,
    /// Per connection, in the order accepted.
    log: Arc<Mutex<Vec<Recorded>>>,
    _task: smol::Task<()>,
}

impl Proxy {
    /// Listens on loopback; connections wait until [`forward_to`](Proxy::forward_to).
    pub fn start() -> Proxy {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("cannot bind");
        let listener = smol::net::TcpListener::try_from(listener).expect("cannot register");
        Proxy::on(listener)
    }

    /// Takes over `listener` (whose first connections the caller may have handled itself).
    pub fn on(listener: smol::net::TcpListener) -> Proxy {
        let addr = listener.local_addr().expect("a local address");
        let (target, target_rx) = async_channel::bounded::<SocketAddr>(1);
        let log = Arc::new(Mutex::new(Vec::new()));
        let connections = log.clone();
        let task = smol::spawn(async move {
            let Ok(target) = target_rx.recv().await else {
                return;
            };
            while let Ok((dialer, _)) = listener.accept().await {
                let Ok(acceptor) = TcpStream::connect(target).await else {
                    continue;
                };
                let index = {
                    let mut log = connections.lock().unwrap_or_else(|p| p.into_inner());
                    log.push(Recorded::default());
                    log.len() - 1
                };
                let up = pump(
                    dialer.clone(),
                    acceptor.clone(),
                    connections.clone(),
                    index,
                    true,
                );
                smol::spawn(up).detach();
                let down = pump(acceptor, dialer, connections.clone(), index, false);
                smol::spawn(down).detach();
            }
        });
        Proxy {
            addr,
            target,
            log,
            _task: task,
        }
    }

    /// Where to forward (the real port, known once its program started).
    pub fn forward_to(&self, target: SocketAddr) {
        self.target
            .try_send(target)
            .expect("the target is set once");
    }

    /// What the dialer of the `index`th connection sent through so far.
    pub fn sent_by(&self, index: usize) -> Vec<u8> {
        let log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        log.get(index)
            .map(|c| c.from_dialer.clone())
            .unwrap_or_default()
    }

    /// Every connection so far, both ways.
    pub fn recorded(&self) -> Vec<Recorded> {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Copies `from` to `to`, recording every byte, until `from` ends; then ends `to`'s sending
/// half so the far side sees the close.
async fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    log: Arc<Mutex<Vec<Recorded>>>,
    index: usize,
    from_dialer: bool,
) {
    let mut buffer = vec![0u8; 64 * 1024];
    while let Ok(n) = from.read(&mut buffer).await {
        if n == 0 {
            break;
        }
        {
            let mut log = log.lock().unwrap_or_else(|p| p.into_inner());
            let recorded = &mut log[index];
            let side = match from_dialer {
                true => &mut recorded.from_dialer,
                false => &mut recorded.from_acceptor,
            };
            side.extend_from_slice(&buffer[..n]);
        }
        if to.write_all(&buffer[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}
