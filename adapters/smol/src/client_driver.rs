//! The client driver's owner task: holds the [`breeze_core::Client`] and wires it to the
//! server socket, the peer sockets, the P2P listener, the embedding API, the file host (through
//! `file_lanes.rs`) and the timer.

use crate::client::PeerStatus;
use crate::dial::connect;
use crate::file_host::FileOffer;
use crate::file_lanes::{Answer, Job, LaneKey, Lanes, Reply};
use crate::listener::accept_loop;
use crate::read_pool::{Fed, ReadPool};
use crate::socket::{Socket, SocketEvent};
use crate::timer::Alarm;
use crate::{ClientOptions, FileRequestError, SharedFile};
use async_channel::{Receiver, Sender};
use breeze_core::client::{
    Action, Destination, Direction, Event, FileError, FileEvent, LinkId, SendError,
};
use breeze_core::wire::{MessageId, TransferId, UserName};
use futures_lite::future::race;
use smol::net::{TcpListener, TcpStream};
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Socket reports and connect results queued for the owner; readers wait when it is full.
const INBOUND_QUEUE: usize = 256;
/// How long a logout waits for the goodbyes to be written.
const LOGOUT_GRACE: Duration = Duration::from_secs(2);

/// Requests from [`Client`](crate::Client) handles.
pub(crate) enum Command {
    Send {
        to: UserName,
        text: String,
        reply: Sender<Result<MessageId, SendError>>,
    },
    Logout {
        reply: Sender<()>,
    },
    Peers {
        reply: Sender<Vec<PeerStatus>>,
    },
    SetDirectChannels(bool),
    OfferFile {
        to: UserName,
        file: SharedFile,
        reply: Reply<SharedFile>,
    },
    AcceptFile {
        from: UserName,
        id: TransferId,
        dir: PathBuf,
        reply: Reply<u64>,
    },
    DeclineFile {
        from: UserName,
        id: TransferId,
        reply: Reply<()>,
    },
    CancelFile {
        peer: UserName,
        id: TransferId,
        direction: Direction,
        reply: Reply<()>,
    },
}

/// The owner's name for a socket. Server connections get a fresh generation each, so a late
/// report from an old one is never mistaken for the current one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum SocketKey {
    Server(u64),
    Peer(LinkId),
}

enum Input {
    Socket(SocketEvent<SocketKey>),
    Accepted(TcpStream, SocketAddr),
    ServerConnected(io::Result<TcpStream>),
    Dialed {
        peer: UserName,
        result: io::Result<TcpStream>,
    },
    /// The file host answered.
    File(Answer),
}

impl From<SocketEvent<SocketKey>> for Input {
    fn from(event: SocketEvent<SocketKey>) -> Input {
        Input::Socket(event)
    }
}

impl From<Answer> for Input {
    fn from(answer: Answer) -> Input {
        Input::File(answer)
    }
}

enum Wake {
    Input(Input),
    Command(Command),
    Timer,
    /// Every `Client` handle is gone.
    Detached,
}

pub(crate) async fn run(
    core: breeze_core::Client,
    options: ClientOptions,
    listener: Option<TcpListener>,
    commands: Receiver<Command>,
    events: Sender<Event>,
) {
    let (inbound_tx, inbound) = async_channel::bounded(INBOUND_QUEUE);
    let _accept = listener
        .map(|listener| smol::spawn(accept_loop(listener, inbound_tx.clone(), Input::Accepted)));
    let mut owner = Owner {
        core,
        lanes: Lanes::new(options.files.clone(), inbound_tx.clone()),
        offers: HashMap::new(),
        options,
        sockets: HashMap::new(),
        server: None,
        next_server: 0,
        next_link: 0,
        inbound_tx,
        events,
        alarm: Alarm::new(),
        read_pool: ReadPool::default(),
        logout_waiters: Vec::new(),
        logout_deadline: None,
    };
    owner.drain();
    loop {
        let now = match owner.wake(&inbound, &commands).await {
            Wake::Input(input) => owner.handle(input),
            Wake::Command(command) => owner.command(command),
            Wake::Timer => {
                let now = Instant::now();
                owner.core.handle_timeout(now);
                now
            }
            Wake::Detached => break,
        };
        owner.drain();
        owner.answer_logout(now);
    }
    let now = Instant::now();
    if !owner.core.is_stopped() {
        owner.core.logout(now);
        owner.drain();
    }
    owner.linger(&inbound, now + LOGOUT_GRACE).await;
}

struct Owner {
    core: breeze_core::Client,
    options: ClientOptions,
    sockets: HashMap<SocketKey, Socket>,
    /// The generation of the current server connection.
    server: Option<u64>,
    next_server: u64,
    next_link: u64,
    /// Handed to every socket and connect task so they can report back.
    inbound_tx: Sender<Input>,
    events: Sender<Event>,
    alarm: Alarm,
    /// Read buffers of big reads, reused by every socket of this driver.
    read_pool: ReadPool,
    logout_waiters: Vec<Sender<()>>,
    logout_deadline: Option<Instant>,
    /// The file host's calls, in order per transfer.
    lanes: Lanes<Input>,
    /// Offers not answered yet, for the host to prepare the file when one is accepted.
    offers: HashMap<(UserName, TransferId), FileOffer>,
}

impl Owner {
    async fn wake(&mut self, inbound: &Receiver<Input>, commands: &Receiver<Command>) -> Wake {
        let alarm = &mut self.alarm;
        let socket = async {
            match inbound.recv().await {
                Ok(input) => Wake::Input(input),
                // The owner holds a sender itself, so this never happens.
                Err(_) => std::future::pending().await,
            }
        };
        let command = async { commands.recv().await.map_or(Wake::Detached, Wake::Command) };
        let timer = async {
            alarm.ring().await;
            Wake::Timer
        };
        race(socket, race(command, timer)).await
    }

    /// Feeds one socket or connect report to the core; returns the `now` it used.
    fn handle(&mut self, input: Input) -> Instant {
        let now = Instant::now();
        match input {
            Input::Accepted(stream, remote) => {
                let link = self.new_link(stream);
                self.core.handle_accepted(link, remote, now);
            }
            Input::ServerConnected(Ok(stream)) => {
                let generation = self.next_server;
                self.next_server += 1;
                let key = SocketKey::Server(generation);
                let socket = Socket::spawn(key, stream, self.inbound_tx.clone(), &self.read_pool);
                self.sockets.insert(key, socket);
                if let Some(stale) = self.server.replace(generation) {
                    // The core asks for one server connection at a time; never seen.
                    tracing::warn!(stale, "a second server connection replaced the first");
                    self.close(SocketKey::Server(stale));
                }
                self.core.handle_server_connected(now);
            }
            Input::ServerConnected(Err(error)) => {
                tracing::debug!(%error, "cannot connect to the server");
                self.core.handle_server_connect_failed(now);
            }
            Input::Dialed {
                peer,
                result: Ok(stream),
            } => {
                let link = self.new_link(stream);
                self.core.handle_dialed(link, &peer, now);
            }
            Input::Dialed { peer, result } => {
                if let Err(error) = result {
                    tracing::debug!(%peer, %error, "cannot dial peer");
                }
                self.core.handle_dial_failed(&peer, now);
            }
            Input::Socket(event) => self.socket_event(event, now),
            Input::File(answer) => self.file_answer(answer, now),
        }
        now
    }

    fn socket_event(&mut self, event: SocketEvent<SocketKey>, now: Instant) {
        let current = |key: &SocketKey, server: Option<u64>| match key {
            SocketKey::Server(generation) => server == Some(*generation),
            SocketKey::Peer(_) => true,
        };
        match event {
            SocketEvent::Bytes(key, received) => {
                let open = self.sockets.get(&key).is_some_and(|s| !s.closing);
                let core = &mut self.core;
                let received = match key {
                    SocketKey::Server(_) if open && current(&key, self.server) => {
                        received.feed(&self.read_pool, |fed| match fed {
                            Fed::Shared(buffer) => core.handle_server_buffer(buffer, now),
                            Fed::Slice(bytes) => core.handle_server_bytes(bytes, now),
                        })
                    }
                    SocketKey::Peer(link) if open => {
                        received.feed(&self.read_pool, |fed| match fed {
                            Fed::Shared(buffer) => core.handle_link_buffer(link, buffer, now),
                            Fed::Slice(bytes) => core.handle_link_bytes(link, bytes, now),
                        })
                    }
                    _ => Some(received),
                };
                if let (Some(socket), Some(received)) = (self.sockets.get(&key), received) {
                    socket.recycle(received);
                }
            }
            SocketEvent::Written(key, n) => match key {
                SocketKey::Server(_) if current(&key, self.server) => {
                    self.core.handle_written(Destination::Server, n)
                }
                SocketKey::Peer(link) => self.core.handle_written(Destination::Peer(link), n),
                SocketKey::Server(_) => {}
            },
            SocketEvent::Closed(key) => {
                // Unknown or closed by us: nothing the core needs to hear.
                let closing = match self.sockets.remove(&key) {
                    Some(socket) => socket.closing,
                    None => true,
                };
                match key {
                    SocketKey::Server(_) if current(&key, self.server) => {
                        self.server = None;
                        self.core.handle_server_closed(now);
                    }
                    SocketKey::Peer(link) if !closing => self.core.handle_link_closed(link, now),
                    _ => {}
                }
            }
        }
    }

    fn command(&mut self, command: Command) -> Instant {
        let now = Instant::now();
        match command {
            Command::Send { to, text, reply } => {
                let _ = reply.try_send(self.core.send(&to, text, now));
            }
            Command::Logout { reply } => {
                if !self.core.is_stopped() {
                    self.core.logout(now);
                }
                self.logout_waiters.push(reply);
                self.logout_deadline.get_or_insert(now + LOGOUT_GRACE);
            }
            Command::Peers { reply } => {
                let peers = self.core.peers().map(|(user, online, route)| PeerStatus {
                    user: user.clone(),
                    online,
                    route,
                });
                let _ = reply.try_send(peers.collect());
            }
            Command::OfferFile { to, file, reply } => {
                let key = LaneKey::Sending(file.id);
                if let Some(answer) = self.lanes.push(key, Job::Share { to, file, reply }) {
                    self.file_answer(answer, now);
                }
            }
            Command::AcceptFile {
                from,
                id,
                dir,
                reply,
            } => match self.offers.remove(&(from.clone(), id)) {
                Some(offer) => {
                    let key = LaneKey::Receiving(from, id);
                    if let Some(answer) = self.lanes.push(key, Job::Receive { offer, dir, reply }) {
                        self.file_answer(answer, now);
                    }
                }
                None => {
                    let _ = reply.try_send(Err(FileError::UnknownTransfer.into()));
                }
            },
            Command::DeclineFile { from, id, reply } => {
                let result = self.core.decline_file(&from, id, now);
                if result.is_ok() {
                    self.offers.remove(&(from.clone(), id));
                    self.lanes.release(&from, id, Direction::Receiving);
                }
                let _ = reply.try_send(result.map_err(Into::into));
            }
            Command::CancelFile {
                peer,
                id,
                direction,
                reply,
            } => {
                let result = self.core.cancel_file(&peer, id, direction, now);
                if result.is_ok() {
                    self.offers.remove(&(peer.clone(), id));
                    self.lanes.release(&peer, id, direction);
                }
                let _ = reply.try_send(result.map_err(Into::into));
            }
            Command::SetDirectChannels(on) => self.core.set_direct_channels(on, now),
        }
        now
    }

    /// Drains the core after an input: transmits before each action, then events, then the
    /// timer.
    fn drain(&mut self) {
        loop {
            while let Some(transmit) = self.core.poll_transmit() {
                let key = match transmit.to {
                    Destination::Server => self.server.map(SocketKey::Server),
                    Destination::Peer(link) => Some(SocketKey::Peer(link)),
                };
                if let Some(socket) = key.and_then(|key| self.sockets.get_mut(&key)) {
                    socket.write(transmit.payload);
                }
            }
            let Some(action) = self.core.poll_action() else {
                break;
            };
            self.perform(action);
        }
        while let Some(event) = self.core.poll_event() {
            match &event {
                // Route changes are the client's P2P log: worth a line at the default level.
                Event::Route {
                    peer,
                    route,
                    reason,
                } => {
                    tracing::info!(%peer, %route, %reason, "route changed")
                }
                _ => tracing::debug!(?event, "client event"),
            }
            self.observe_file_event(&event);
            let _ = self.events.try_send(event);
        }
        let deadline = [self.core.poll_timeout(), self.logout_deadline];
        self.alarm.arm(deadline.into_iter().flatten().min());
    }

    fn perform(&mut self, action: Action) {
        let timeout = self.options.connect_timeout;
        let report = self.inbound_tx.clone();
        match action {
            Action::ConnectServer => {
                let addr = self.options.server;
                smol::spawn(async move {
                    let result = connect(addr, timeout).await;
                    let _ = report.send(Input::ServerConnected(result)).await;
                })
                .detach();
            }
            Action::CloseServer => {
                if let Some(generation) = self.server.take() {
                    self.close(SocketKey::Server(generation));
                }
            }
            Action::Dial { peer, addr } => {
                smol::spawn(async move {
                    let result = connect(addr, timeout).await;
                    let _ = report.send(Input::Dialed { peer, result }).await;
                })
                .detach();
            }
            Action::CloseLink { link } => self.close(SocketKey::Peer(link)),
            Action::ReadFile {
                id,
                offset,
                len,
                direct,
            } => {
                let job = Job::Read {
                    id,
                    offset,
                    len,
                    span: direct,
                };
                if let Some(answer) = self.lanes.push(LaneKey::Sending(id), job) {
                    self.file_answer(answer, Instant::now());
                }
            }
            Action::WriteFile {
                from,
                id,
                offset,
                data,
            } => {
                let key = LaneKey::Receiving(from.clone(), id);
                let job = Job::Write {
                    from,
                    id,
                    offset,
                    data,
                };
                if let Some(answer) = self.lanes.push(key, job) {
                    self.file_answer(answer, Instant::now());
                }
            }
            Action::VerifyFile { from, id } => {
                let key = LaneKey::Receiving(from.clone(), id);
                if let Some(answer) = self.lanes.push(key, Job::Verify { from, id }) {
                    self.file_answer(answer, Instant::now());
                }
            }
            other => tracing::debug!(?other, "action not supported by this driver"),
        }
    }

    /// Hands the file host's answer to the core (and to the API caller waiting for it).
    fn file_answer(&mut self, answer: Answer, now: Instant) {
        match answer {
            Answer::Shared {
                to,
                file,
                result,
                reply,
            } => {
                let outcome = result.map_err(FileRequestError::from).and_then(|()| {
                    let (name, size, hash) = (file.name.clone(), file.size, file.hash);
                    let offered = self.core.offer_file(&to, file.id, name, size, hash, now);
                    offered.map_err(FileRequestError::from)
                });
                match outcome {
                    Ok(()) => {
                        let _ = reply.try_send(Ok(file));
                    }
                    Err(error) => {
                        // The same file still being offered keeps its share.
                        if !matches!(error, FileRequestError::Refused(FileError::DuplicateId)) {
                            self.lanes.release(&to, file.id, Direction::Sending);
                        }
                        let _ = reply.try_send(Err(error));
                    }
                }
            }
            Answer::Read { id, offset, result } => match result {
                Ok(data) => self.core.handle_file_payload(id, offset, data, now),
                Err(error) => {
                    tracing::warn!(%id, offset, %error, "cannot read an offered file");
                    self.core.handle_file_read_failed(id, now);
                }
            },
            Answer::Received {
                offer,
                result,
                reply,
            } => {
                let (from, id) = (&offer.from, offer.id);
                let outcome = match result {
                    Ok(offset) => self
                        .core
                        .accept_file(from, id, offset, now)
                        .map(|()| offset),
                    Err(error) => {
                        // Nothing happened: the offer stands, to be accepted elsewhere.
                        self.offers.insert((from.clone(), id), offer);
                        let _ = reply.try_send(Err(error.into()));
                        return;
                    }
                };
                if outcome.is_err() {
                    self.lanes.release(from, id, Direction::Receiving);
                }
                let _ = reply.try_send(outcome.map_err(Into::into));
            }
            Answer::Written {
                from,
                id,
                offset,
                len,
                result,
            } => match result {
                Ok(()) => self.core.handle_file_written(&from, id, offset, len, now),
                Err(error) => {
                    tracing::warn!(%from, %id, offset, %error, "cannot write a received file");
                    self.core.handle_file_write_failed(&from, id, now);
                }
            },
            Answer::Verified { from, id, verified } => {
                self.core.handle_file_verified(&from, id, verified, now)
            }
        }
    }

    /// Keeps the offers for `accept_file`, and lets the host go of transfers that ended.
    fn observe_file_event(&mut self, event: &Event) {
        match event {
            Event::File(FileEvent::Offered {
                from,
                id,
                name,
                size,
                hash,
            }) => {
                let offer = FileOffer {
                    from: from.clone(),
                    id: *id,
                    name: name.clone(),
                    size: *size,
                    hash: *hash,
                };
                self.offers.insert((from.clone(), *id), offer);
            }
            Event::File(FileEvent::Declined { to, id }) => {
                self.lanes.release(to, *id, Direction::Sending)
            }
            Event::File(FileEvent::Cancelled {
                peer,
                id,
                direction,
            })
            | Event::File(FileEvent::Failed {
                peer,
                id,
                direction,
                ..
            })
            | Event::File(FileEvent::Done {
                peer,
                id,
                direction,
                ..
            }) => {
                if *direction == Direction::Receiving {
                    self.offers.remove(&(peer.clone(), *id));
                }
                self.lanes.release(peer, *id, *direction);
            }
            _ => {}
        }
    }

    fn new_link(&mut self, stream: TcpStream) -> LinkId {
        let link = LinkId(self.next_link);
        self.next_link += 1;
        let key = SocketKey::Peer(link);
        let socket = Socket::spawn(key, stream, self.inbound_tx.clone(), &self.read_pool);
        self.sockets.insert(key, socket);
        link
    }

    fn close(&mut self, key: SocketKey) {
        if let Some(socket) = self.sockets.get_mut(&key) {
            socket.close();
        }
    }

    /// Logout callers return once every socket is closed, or the grace period is over.
    fn answer_logout(&mut self, now: Instant) {
        let Some(deadline) = self.logout_deadline else {
            return;
        };
        if self.sockets.is_empty() || now >= deadline {
            for waiter in self.logout_waiters.drain(..) {
                let _ = waiter.try_send(());
            }
            self.logout_deadline = None;
            self.alarm.arm(self.core.poll_timeout());
        }
    }

    /// After the last handle is gone: keep writing and reaping until every socket is closed or
    /// `deadline`.
    async fn linger(&mut self, inbound: &Receiver<Input>, deadline: Instant) {
        while !self.sockets.is_empty() {
            let input = race(async { inbound.recv().await.ok() }, async {
                async_io::Timer::at(deadline).await;
                None
            });
            let Some(input) = input.await else { break };
            self.handle(input);
            self.drain();
        }
    }
}
