//! A lean load client: one `breeze_core::Client` core per connection, driven from one task
//! over one plain socket, many such tasks per thread.
//!
//! The full `breeze_smol::Client` costs a P2P listener, an owner task and two tasks per
//! socket, and channels in between; with direct channels off none of that is needed, so a
//! load client is just the core's "how to drive me" loop: feed it socket bytes, write what it
//! polls (`handle_written` once written), perform its actions (connect, close), take its
//! events. Two liberties, both for speed and both harmless by the core's contract:
//! - writes are awaited in the task itself (at most one window of messages is ever unwritten,
//!   far below the kernel's socket buffer), so no writer task is needed;
//! - timers are checked on a [`TICK`] rather than re-armed after every input (see there).
//!
//! Senders keep up to `window` messages unacknowledged, each to a random other client, and
//! stamp each text with its send time; every `Message` event is a latency sample.

use crate::load::{
    sent_at, stamped_text, ClientReport, Correspondents, Pick, Plan, Progress, TICK,
};
use breeze_core::client::{Action, ClientConfig, Destination, Event};
use breeze_core::secure::PublicKey;
use breeze_core::wire::UserName;
use breeze_core::{Client, Transmit};
use smol::future::{pending, race};
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::lock::{Semaphore, SemaphoreGuardArc};
use smol::net::TcpStream;
use smol::Timer;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

/// Bytes per socket read.
const READ_BUFFER: usize = 64 * 1024;
/// Every load client's password (the servers under test accept or register it).
pub const PASSWORD: &str = "bench-password";

/// What the clients of one run share.
pub struct Fleet {
    pub server: SocketAddr,
    /// Client `i` logs in as `names[i]`.
    pub names: Vec<UserName>,
    /// Create the account at first login (a `breeze-server` with `--open-registration`).
    pub register: bool,
    /// Log in with the profile key alone (enrolled before), sending no password.
    pub key_login: bool,
    /// The server's key, when the run knows it (an in-process server): pinned, as a profile
    /// does. `None` trusts the key met first, as a new profile does.
    pub server_key: Option<PublicKey>,
    pub plan: Plan,
    /// Whom each client writes to.
    pub correspondents: Correspondents,
    pub progress: Arc<Progress>,
    /// Logins in progress at once: a server checking passwords one at a time (argon2) would
    /// otherwise time out the ones at the back of the queue.
    pub login_slots: Arc<Semaphore>,
}

/// `prefix.000042`: names sort in client order, and stay within the 32-character limit.
pub fn names(prefix: &str, clients: usize) -> Vec<UserName> {
    (0..clients)
        .map(|i| UserName::new(format!("{prefix}.{i:06}")).expect("a valid user name"))
        .collect()
}

/// Runs client `index` until the fleet's progress says done.
pub async fn run(fleet: Arc<Fleet>, index: usize) -> ClientReport {
    let mut config = ClientConfig::new(fleet.names[index].clone(), PASSWORD, 0);
    config.direct_channels = false;
    config.register = fleet.register;
    config.key_login = fleet.key_login;
    config.server_key = fleet.server_key;
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&(index as u64 + 1).to_le_bytes());
    // Every load client has a key of its own, as a real profile, the same in every run.
    let identity = crate::profiles::key_of(&fleet.names[index]);
    let now = Instant::now();
    let mut core = Client::new(config, identity, seed, now);
    // On a large server only watched users' presence comes: watch the correspondents, which
    // are also the ones readiness waits for.
    let correspondents: HashSet<UserName> = fleet
        .correspondents
        .of(index)
        .into_iter()
        .chain(fleet.correspondents.writing_to(index))
        .filter(|&i| i != index)
        .filter_map(|i| fleet.names.get(i).cloned())
        .collect();
    for name in &correspondents {
        core.watch(name, now);
    }
    let mut client = LoadClient {
        pick: Pick::new(index as u64 + 1),
        targets: fleet.correspondents.of(index),
        fleet,
        core,
        stream: None,
        login_slot: None,
        in_flight: 0,
        online_peers: HashSet::new(),
        correspondents,
        ready: false,
        sending: true,
        report: ClientReport::default(),
    };
    client.run().await;
    client.report
}

struct LoadClient {
    fleet: Arc<Fleet>,
    core: Client,
    stream: Option<TcpStream>,
    login_slot: Option<SemaphoreGuardArc>,
    pick: Pick,
    /// Whom this client writes to.
    targets: Vec<usize>,
    /// Sent and not yet acknowledged (`Delivered`).
    in_flight: usize,
    /// Correspondents the server told us are online.
    online_peers: HashSet<UserName>,
    /// Whom this client writes to or hears from.
    correspondents: HashSet<UserName>,
    ready: bool,
    /// Cleared when the core refuses a message: this client then sends no more.
    sending: bool,
    report: ClientReport,
}

enum Wake {
    Read(std::io::Result<usize>),
    Tick,
    Go,
}

impl LoadClient {
    async fn run(&mut self) {
        let mut buffer = vec![0u8; READ_BUFFER];
        let mut tick = Timer::interval(TICK);
        loop {
            self.drive().await;
            if self.fleet.progress.is_done() {
                break;
            }
            let started = self.fleet.progress.is_started();
            let progress = &self.fleet.progress;
            let tick = async {
                (&mut tick).await;
                Wake::Tick
            };
            let go = async {
                if started {
                    pending::<()>().await;
                }
                progress.started().await;
                Wake::Go
            };
            let wake = match self.stream.as_mut() {
                Some(stream) => {
                    let read = async { Wake::Read(stream.read(&mut buffer).await) };
                    race(read, race(tick, go)).await
                }
                None => race(tick, go).await,
            };
            let now = Instant::now();
            match wake {
                Wake::Read(Ok(n)) if n > 0 => self.core.handle_server_bytes(&buffer[..n], now),
                Wake::Read(_) => {
                    self.stream = None;
                    self.core.handle_server_closed(now);
                }
                Wake::Tick => {
                    if self.core.poll_timeout().is_some_and(|at| at <= now) {
                        self.core.handle_timeout(now);
                    }
                }
                Wake::Go => {}
            }
        }
    }

    /// Drains the core until it has nothing more to say and the window is full: transmits,
    /// then one action at a time (its answer is a new input), then events, then new messages.
    async fn drive(&mut self) {
        loop {
            while let Some(transmit) = self.core.poll_transmit() {
                self.write(transmit).await;
            }
            if let Some(action) = self.core.poll_action() {
                self.perform(action).await;
                continue;
            }
            while let Some(event) = self.core.poll_event() {
                self.on_event(event);
            }
            if !self.send_more() {
                return;
            }
        }
    }

    async fn write(&mut self, transmit: Transmit<Destination>) {
        // Direct channels are off: everything goes to the server.
        let (Destination::Server, Some(stream)) = (transmit.to, self.stream.as_mut()) else {
            return;
        };
        // This client shares no files: everything it sends is bytes.
        let Some(bytes) = transmit.payload.as_bytes() else {
            return;
        };
        match stream.write_all(bytes).await {
            Ok(()) => self.core.handle_written(Destination::Server, bytes.len()),
            Err(_) => {
                self.stream = None;
                self.core.handle_server_closed(Instant::now());
            }
        }
    }

    async fn perform(&mut self, action: Action) {
        match action {
            Action::ConnectServer => {
                if self.login_slot.is_none() {
                    self.login_slot = Some(self.fleet.login_slots.acquire_arc().await);
                }
                match TcpStream::connect(self.fleet.server).await {
                    Ok(stream) => {
                        let _ = stream.set_nodelay(true);
                        self.stream = Some(stream);
                        self.fleet
                            .progress
                            .connected
                            .fetch_add(1, Ordering::Relaxed);
                        self.core.handle_server_connected(Instant::now());
                    }
                    Err(error) => {
                        self.problem(format!("cannot connect: {error}"));
                        self.core.handle_server_connect_failed(Instant::now());
                    }
                }
            }
            // Every byte polled before it has been written (writes are awaited).
            Action::CloseServer => self.stream = None,
            Action::Dial { peer, .. } => self.core.handle_dial_failed(&peer, Instant::now()),
            _ => {}
        }
    }

    fn on_event(&mut self, event: Event) {
        let progress = &self.fleet.progress;
        match event {
            Event::LoggedIn { .. } => {
                self.login_slot = None;
                progress.logged_in.fetch_add(1, Ordering::Relaxed);
                self.check_ready();
            }
            Event::Presence { online: true, user } => {
                if self.correspondents.contains(&user) {
                    self.online_peers.insert(user);
                }
                self.check_ready();
            }
            Event::Presence {
                online: false,
                user,
            } => {
                self.online_peers.remove(&user);
                self.problem(format!("a peer went offline ({user})"));
            }
            Event::Message { text, .. } => {
                let now = Instant::now();
                let sent = sent_at(progress.origin, text.as_bytes());
                self.report.receipt(sent, now);
                progress.received.fetch_add(1, Ordering::Relaxed);
            }
            Event::Delivered { .. } => {
                self.in_flight = self.in_flight.saturating_sub(1);
                self.report.delivered += 1;
            }
            Event::ServerLost { error, .. } => self.problem(format!("server lost: {error}")),
            Event::LoginFailed { reason } => {
                self.login_slot = None;
                self.problem(format!("login failed: {reason}"));
            }
            Event::Kicked { reason } => self.problem(format!("kicked: {reason:?}")),
            Event::ServerKeyChanged { presented, .. } => self.problem(format!(
                "the server presented another key ({})",
                presented.fingerprint()
            )),
            Event::Stored { .. } => self.problem("stored for an offline recipient".into()),
            Event::Undeliverable { reason, .. } => {
                self.problem(format!("undeliverable: {reason:?}"))
            }
            _ => {}
        }
    }

    fn check_ready(&mut self) {
        if !self.ready
            && self.core.is_logged_in()
            && self.online_peers.len() >= self.correspondents.len()
        {
            self.ready = true;
            self.fleet.progress.ready.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Tops the window up with messages to random other clients; whether any was sent.
    fn send_more(&mut self) -> bool {
        let plan = &self.fleet.plan;
        let progress = &self.fleet.progress;
        if !self.sending
            || self.in_flight >= plan.window
            || !self.core.is_logged_in()
            || !progress.is_started()
        {
            return false;
        }
        let granted = progress.claim((plan.window - self.in_flight) as u64);
        for n in 0..granted {
            let to = self.targets[self.pick.below(self.targets.len())];
            let now = Instant::now();
            let text = stamped_text(progress.origin, now, plan.size);
            match self.core.send(&self.fleet.names[to], text, now) {
                Ok(_) => {
                    self.in_flight += 1;
                    self.report.sending(now);
                }
                Err(error) => {
                    progress.unclaim(granted - n);
                    self.sending = false;
                    self.problem(format!("send refused: {error}"));
                    break;
                }
            }
        }
        granted > 0
    }

    fn problem(&mut self, what: String) {
        if !self.fleet.progress.is_stopping() {
            self.fleet.progress.problems.fetch_add(1, Ordering::Relaxed);
            self.report.problem(what);
        }
    }
}
