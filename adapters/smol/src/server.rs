//! The server driver: one owner task holds the [`breeze_core::Server`] and wires it to the
//! listener, the sockets, the host and the timer.

use crate::admission::{peer_gave_up, Admission, DEFAULT_MAX_PENDING_LOGINS};
use crate::listener::accept_loop;
use crate::login_lanes::LoginLanes;
use crate::read_pool::{Fed, ReadPool};
use crate::seed::os_seed;
use crate::socket::{Socket, SocketEvent};
use crate::timer::Alarm;
use crate::ServerHost;
use async_channel::{Receiver, Sender};
use breeze_core::secure::IdentityKey;
use breeze_core::server::{Action, ConnId, Event, Server, ServerConfig, Stats};
use breeze_core::wire::LoginRefusal;
use futures_lite::future::race;
use smol::net::{TcpListener, TcpStream};
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Socket reports and host answers queued for the owner task; readers wait when it is full.
const INBOUND_QUEUE: usize = 256;
/// Inputs already queued that the owner handles before draining the core. Frames the core
/// queues for one connection meanwhile leave in one write: under load this turns one write per
/// relayed message into one write per busy connection and batch.
const INPUT_BATCH: usize = 128;
/// After shutdown, how long clients get to read the goodbye before the driver returns.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// The core's [`Stats`], updated after every input: a cheap snapshot any thread can read.
#[derive(Debug, Clone, Default)]
pub struct ServerStats(Arc<Mutex<Stats>>);

impl ServerStats {
    pub fn get(&self) -> Stats {
        *self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn set(&self, stats: Stats) {
        *self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = stats;
    }
}

/// A server ready to run on a bound listener.
pub struct ServerDriver<H> {
    listener: TcpListener,
    config: ServerConfig,
    identity: Option<IdentityKey>,
    host: Arc<H>,
    stats: ServerStats,
    password_threads: Option<NonZeroUsize>,
    max_pending_logins: usize,
}

impl<H: ServerHost> ServerDriver<H> {
    pub fn new(listener: TcpListener, config: ServerConfig, host: H) -> ServerDriver<H> {
        ServerDriver {
            listener,
            config,
            identity: None,
            host: Arc::new(host),
            stats: ServerStats::default(),
            password_threads: None,
            max_pending_logins: DEFAULT_MAX_PENDING_LOGINS.get(),
        }
    }

    /// How many accepted connections may be in their handshake and login at once (default
    /// 256); later ones wait, accepted, for a slot, and are closed if they wait longer than
    /// the login timeout. A storm of logins then holds a few hundred connections' transient
    /// state, not all of theirs (`admission.rs`).
    pub fn with_max_pending_logins(mut self, max: NonZeroUsize) -> Self {
        self.max_pending_logins = max.get();
        self
    }

    /// How many password checks may run at once (default: one per core this process may
    /// use). Each is a hash with its own memory; more at once than cores buys nothing.
    pub fn with_password_threads(mut self, threads: NonZeroUsize) -> Self {
        self.password_threads = Some(threads);
        self
    }

    /// Serves with the static key `identity` (the host keeps it, 0600, in its data directory).
    /// Without one the server makes up a key for this run only: clients that pinned it will
    /// refuse the next run, which is right for tests and wrong for a real server.
    pub fn with_identity(mut self, identity: IdentityKey) -> Self {
        self.identity = Some(identity);
        self
    }

    /// The address clients connect to (useful after binding port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// A live view of the core's counters, valid while and after the server runs.
    pub fn stats(&self) -> ServerStats {
        self.stats.clone()
    }

    /// Serves until `shutdown` resolves, then says goodbye to every client (waiting up to a
    /// few seconds for the goodbyes to be written) and returns.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> io::Result<()> {
        let (inbound_tx, inbound) = async_channel::bounded(INBOUND_QUEUE);
        let accept = smol::spawn(accept_loop(
            self.listener,
            inbound_tx.clone(),
            Input::Accepted,
        ));
        let admission = Admission::new(
            self.max_pending_logins,
            self.config.max_connections,
            self.config.login_timeout,
        );
        let mut core = Server::new(
            self.config,
            match self.identity {
                Some(identity) => identity,
                None => IdentityKey::from_secret(os_seed()?),
            },
            os_seed()?,
        );
        let host = self.host.clone();
        core.restore_groups(smol::unblock(move || host.load_groups()).await);
        let mut owner = Owner {
            core,
            host: self.host,
            stats: self.stats,
            sockets: HashMap::new(),
            next_conn: 0,
            inbound_tx,
            alarm: Alarm::new(),
            read_pool: ReadPool::default(),
            lanes: LoginLanes::new(self.password_threads),
            admission,
        };
        let mut shutdown = pin!(shutdown);
        loop {
            let wake = race(owner.wake(&inbound), async {
                shutdown.as_mut().await;
                Wake::Shutdown
            });
            match wake.await {
                Wake::Input(input) => {
                    owner.handle(input, Instant::now());
                    for _ in 1..INPUT_BATCH {
                        let Ok(input) = inbound.try_recv() else { break };
                        owner.handle(input, Instant::now());
                    }
                }
                Wake::Timer => owner.core.handle_timeout(Instant::now()),
                Wake::Shutdown => break,
            }
            owner.drain().await;
        }
        drop(accept);
        owner.admission.close_waiting();
        tracing::info!("shutting down");
        owner.core.shutdown(Instant::now());
        owner.drain().await;
        owner
            .linger(&inbound, Instant::now() + SHUTDOWN_GRACE)
            .await;
        let stats = owner.core.stats();
        tracing::info!(
            relayed = stats.relayed,
            stored = stats.stored,
            relayed_text_bytes = stats.relayed_text_bytes,
            "stopped"
        );
        Ok(())
    }
}

/// Runs a server on `listener` until `shutdown` resolves; see [`ServerDriver`] for stats.
pub async fn run_server(
    listener: TcpListener,
    config: ServerConfig,
    host: impl ServerHost,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    ServerDriver::new(listener, config, host)
        .run(shutdown)
        .await
}

/// What the owner task reacts to, besides its timer.
enum Input {
    Accepted(TcpStream, SocketAddr),
    Socket(SocketEvent<ConnId>),
    /// The host's verdict on a login check of either kind (password or key).
    LoginChecked(ConnId, Result<(), LoginRefusal>),
}

impl From<SocketEvent<ConnId>> for Input {
    fn from(event: SocketEvent<ConnId>) -> Input {
        Input::Socket(event)
    }
}

enum Wake {
    Input(Input),
    Timer,
    Shutdown,
}

struct Owner<H> {
    core: Server,
    host: Arc<H>,
    stats: ServerStats,
    sockets: HashMap<ConnId, Socket>,
    next_conn: u64,
    /// Handed to every socket and host task so they can report back.
    inbound_tx: Sender<Input>,
    alarm: Alarm,
    /// Read buffers of big reads, reused by every socket of this driver.
    read_pool: ReadPool,
    /// The threads password checks and key logins run on.
    lanes: LoginLanes,
    /// Accepted connections waiting for a slot, and the slots taken before login.
    admission: Admission<TcpStream>,
}

impl<H: ServerHost> Owner<H> {
    async fn wake(&mut self, inbound: &Receiver<Input>) -> Wake {
        let alarm = &mut self.alarm;
        race(
            async {
                match inbound.recv().await {
                    Ok(input) => Wake::Input(input),
                    // The owner holds a sender itself, so this never happens.
                    Err(_) => std::future::pending().await,
                }
            },
            async {
                alarm.ring().await;
                Wake::Timer
            },
        )
        .await
    }

    fn handle(&mut self, input: Input, now: Instant) {
        match input {
            Input::Accepted(stream, remote) => {
                if self.admission.arrived(stream, remote, now).is_err() {
                    // Dropped, so closed: as many wait as the server may hold connections.
                    tracing::debug!(%remote, "too many connections waiting; closed one");
                }
            }
            Input::Socket(SocketEvent::Bytes(conn, received)) => {
                let open = self.sockets.get(&conn).is_some_and(|s| !s.closing);
                let received = if open {
                    let core = &mut self.core;
                    received.feed(&self.read_pool, |fed| match fed {
                        Fed::Owned(buffer, len) => core.handle_buffer(conn, buffer, len, now),
                        Fed::Slice(bytes) => core.handle_bytes(conn, bytes, now),
                    })
                } else {
                    Some(received)
                };
                if let (Some(socket), Some(received)) = (self.sockets.get(&conn), received) {
                    socket.recycle(received);
                }
            }
            Input::Socket(SocketEvent::Written(conn, n)) => self.core.handle_written(conn, n),
            Input::Socket(SocketEvent::Closed(conn)) => {
                self.admission.finished(conn);
                if self.sockets.remove(&conn).is_some_and(|s| !s.closing) {
                    self.core.handle_disconnected(conn, now);
                }
            }
            Input::LoginChecked(conn, verdict) => {
                self.core.handle_login_checked(conn, verdict, now)
            }
        }
    }

    /// Hands waiting connections to the core while slots are free; returns how many.
    fn admit(&mut self, now: Instant) -> usize {
        let mut admitted = 0;
        while let Some((stream, remote)) = self.admission.next(now, peer_gave_up) {
            let conn = ConnId(self.next_conn);
            self.next_conn += 1;
            let socket = Socket::spawn(conn, stream, self.inbound_tx.clone(), &self.read_pool);
            self.sockets.insert(conn, socket);
            self.admission.admitted(conn);
            self.core.handle_connected(conn, remote, now);
            admitted += 1;
        }
        admitted
    }

    /// Drains the core after an input (transmits before each action, then events), admits
    /// the connections whose slots that freed and drains again, then arms the timer.
    async fn drain(&mut self) {
        loop {
            self.drain_core().await;
            if self.admit(Instant::now()) == 0 {
                break;
            }
        }
        self.stats.set(self.core.stats());
        self.alarm.arm(self.core.poll_timeout());
    }

    /// Transmits before each action, then events.
    async fn drain_core(&mut self) {
        loop {
            while let Some(transmit) = self.core.poll_transmit() {
                if let Some(socket) = self.sockets.get_mut(&transmit.to) {
                    socket.write(transmit.payload);
                }
            }
            let Some(action) = self.core.poll_action() else {
                break;
            };
            self.perform(action).await;
        }
        while let Some(event) = self.core.poll_event() {
            if let Event::LoggedIn { conn, .. } = &event {
                self.admission.finished(*conn);
            }
            log_event(event);
        }
    }

    async fn perform(&mut self, action: Action) {
        let host = self.host.clone();
        match action {
            Action::Close { conn } => {
                self.admission.finished(conn);
                if let Some(socket) = self.sockets.get_mut(&conn) {
                    socket.close();
                }
            }
            Action::CheckLogin {
                conn,
                user,
                password,
                register,
                key,
            } => {
                let answer = self.inbound_tx.clone();
                self.lanes.passwords.run(move || {
                    let verdict = host.check_login(&user, password.expose(), register, &key);
                    let _ = answer.send_blocking(Input::LoginChecked(conn, verdict));
                });
            }
            Action::CheckKeyLogin { conn, user, key } => {
                let answer = self.inbound_tx.clone();
                self.lanes.keys.run(move || {
                    let verdict = host.check_key_login(&user, &key);
                    let _ = answer.send_blocking(Input::LoginChecked(conn, verdict));
                });
            }
            Action::StoreOffline { to, message } => {
                let (to, message, outcome) = smol::unblock(move || {
                    let outcome = host.store_offline(&to, &message);
                    (to, message, outcome)
                })
                .await;
                self.core
                    .handle_offline_stored(to, &message, outcome, Instant::now());
            }
            Action::LoadKey { conn, user } => {
                let (user, key) = smol::unblock(move || {
                    let key = host.load_key(&user);
                    (user, key)
                })
                .await;
                self.core.handle_key_loaded(conn, user, key, Instant::now());
            }
            Action::LoadOffline { user } => {
                let (user, messages) = smol::unblock(move || {
                    let messages = host.load_offline(&user);
                    (user, messages)
                })
                .await;
                self.core
                    .handle_offline_loaded(&user, messages, Instant::now());
            }
            Action::DeleteOffline {
                to,
                from,
                epoch,
                through,
            } => smol::unblock(move || host.delete_offline(&to, &from, epoch, through)).await,
            Action::SaveGroup { info, joined } => {
                let (id, result) = smol::unblock(move || {
                    let result = host.save_group(&info, &joined);
                    (info.id, result)
                })
                .await;
                self.core.handle_group_saved(id, result, Instant::now());
            }
            Action::StoreGroupMessage {
                message,
                next_order,
            } => {
                let (group, order) = (message.group, message.order);
                let stored =
                    smol::unblock(move || host.store_group_message(&message, next_order)).await;
                self.core
                    .handle_group_stored(group, order, stored, Instant::now());
            }
            Action::DeleteGroupMessage { group, order } => {
                smol::unblock(move || host.delete_group_message(group, order)).await
            }
            Action::LoadGroupBacklog { user, after, limit } => {
                let (user, (messages, more)) = smol::unblock(move || {
                    let page = host.load_group_backlog(&user, &after, limit);
                    (user, page)
                })
                .await;
                self.core
                    .handle_group_backlog_loaded(&user, messages, more, Instant::now());
            }
            Action::AckGroup {
                user,
                group,
                through,
            } => smol::unblock(move || host.ack_group(&user, group, through)).await,
            other => tracing::debug!(?other, "action not supported by this driver"),
        }
    }

    /// After shutdown: keep writing and reaping until every socket is gone or `deadline`.
    async fn linger(&mut self, inbound: &Receiver<Input>, deadline: Instant) {
        while !self.sockets.is_empty() {
            let input = race(async { inbound.recv().await.ok() }, async {
                async_io::Timer::at(deadline).await;
                None
            });
            let Some(input) = input.await else { break };
            self.handle(input, Instant::now());
            self.drain().await;
        }
    }
}

/// The server's log: logins, logouts and introductions at info (the P2P log), failures at warn.
fn log_event(event: Event) {
    match event {
        Event::LoggedIn {
            conn,
            user,
            endpoint,
        } => tracing::info!(conn = conn.0, %user, %endpoint, "logged in"),
        Event::LoginRefused { conn, user, reason } => {
            tracing::info!(conn = conn.0, %user, %reason, "login refused")
        }
        Event::Introduced {
            user,
            listed,
            everyone,
        } => {
            tracing::info!(%user, listed, everyone, "introduced to the peers it may dial")
        }
        Event::EveryoneEnded { user, listed } => {
            tracing::info!(%user, listed, "server filled up: now hears only of whom it watches")
        }
        Event::LoggedOut { user, reason } => tracing::info!(%user, ?reason, "logged out"),
        Event::ConnectionFailed { conn, error } => {
            tracing::warn!(conn = conn.0, %error, "closed a connection")
        }
        other => tracing::debug!(?other, "server event"),
    }
}
