//! The simulator proper: drives the cores over the [`Network`] on a virtual clock.

use crate::disk::{span_bytes, Disk};
use crate::network::{Endpoint, NetConfig, Network, RawId, Scheduled, Segment, StreamId};
use crate::store::MemoryStore;
use breeze_core::client::{self, Client, ClientConfig, Destination, Event, LinkId, Route};
use breeze_core::secure::{IdentityKey, PublicKey};
use breeze_core::server::{self, ConnId, Server, ServerConfig};
use breeze_core::wire::{FileName, MessageId, TransferId, UserName};
use breeze_core::Via;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

/// A client's index in the simulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Node(pub usize);

const P2P_PORT: u16 = 7000;
const SERVER_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)), 7300);

pub struct SimConfig {
    pub seed: u64,
    pub net: NetConfig,
    pub server: ServerConfig,
    /// Applied to every client's configuration before it starts.
    pub tweak_client: fn(&mut ClientConfig),
}

impl SimConfig {
    pub fn new(seed: u64) -> Self {
        SimConfig {
            seed,
            net: NetConfig::default(),
            server: ServerConfig::default(),
            tweak_client: |_| {},
        }
    }
}

/// A chat message as a client's user saw it arrive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub from: UserName,
    pub id: MessageId,
    pub text: String,
    pub route: Via,
    /// Which run of the receiving client got it (restarts lose the inbox).
    pub incarnation: u64,
    pub at: Instant,
}

struct ClientNode {
    name: UserName,
    password: String,
    /// The profile's key: kept across restarts, like the profile on a real disk.
    identity: IdentityKey,
    ip: IpAddr,
    core: Option<Client>,
    incarnation: u64,
    listening: bool,
    /// Every peer this client dialled, in order (across restarts).
    dialled: Vec<UserName>,
    server_stream: Option<StreamId>,
    links: BTreeMap<LinkId, StreamId>,
    next_link: u64,
    received: Vec<Received>,
    events: Vec<(Instant, client::Event)>,
    disk: Disk,
}

struct RawConn {
    stream: StreamId,
    inbox: Vec<u8>,
    closed: bool,
}

pub struct Sim {
    now: Instant,
    start: Instant,
    config: SimConfig,
    net: Network,
    server: Option<Server>,
    server_incarnation: u64,
    server_conns: BTreeMap<ConnId, StreamId>,
    next_conn: u64,
    pub store: MemoryStore,
    server_events: Vec<(Instant, server::Event)>,
    clients: Vec<ClientNode>,
    raws: BTreeMap<RawId, RawConn>,
    next_raw: u64,
}

impl Sim {
    pub fn new(config: SimConfig) -> Self {
        // The one real clock reading: an arbitrary origin. Only differences matter after it.
        let start = Instant::now();
        let mut sim = Sim {
            now: start,
            start,
            net: Network::new(config.net, config.seed),
            server: None,
            server_incarnation: 0,
            server_conns: BTreeMap::new(),
            next_conn: 0,
            store: MemoryStore::default(),
            server_events: Vec::new(),
            clients: Vec::new(),
            raws: BTreeMap::new(),
            next_raw: 0,
            config,
        };
        sim.restart_server();
        sim
    }

    // ---- setup and faults -------------------------------------------------------------------

    /// Creates an account and starts a client for it (it logs in by itself).
    pub fn add_client(&mut self, name: &str) -> Node {
        let user = UserName::new(name).expect("test user names are valid");
        self.store.add_account(&user, &format!("{name}-password"));
        self.add_client_as(name)
    }

    /// Starts another client process for an account that already exists (a second login).
    pub fn add_client_as(&mut self, name: &str) -> Node {
        let user = UserName::new(name).expect("test user names are valid");
        let password = format!("{name}-password");
        let index = self.clients.len();
        let identity = IdentityKey::from_secret(self.seed_for(index as u64 + 1, 0));
        self.clients.push(ClientNode {
            name: user,
            password,
            identity,
            ip: IpAddr::V4(Ipv4Addr::new(127, 0, 1, index as u8 + 1)),
            core: None,
            incarnation: 0,
            listening: true,
            dialled: Vec::new(),
            server_stream: None,
            links: BTreeMap::new(),
            next_link: 0,
            received: Vec::new(),
            events: Vec::new(),
            disk: Disk::default(),
        });
        self.start_client(Node(index));
        Node(index)
    }

    /// The client's profile is replaced by a new one (a new key), as when its user starts
    /// over on another machine; takes effect at its next start.
    pub fn new_profile(&mut self, node: Node) {
        let incarnation = self.clients[node.0].incarnation + 1000;
        let secret = self.seed_for(node.0 as u64 + 1, incarnation);
        let c = &mut self.clients[node.0];
        c.identity = IdentityKey::from_secret(secret);
        c.events
            .retain(|(_, e)| !matches!(e, Event::ServerKeyLearned { .. }));
    }

    /// The public key of the client's current profile.
    pub fn client_key(&self, node: Node) -> PublicKey {
        self.clients[node.0].identity.public()
    }

    /// The server's public key (the same across restarts: it is on the server's disk).
    pub fn server_key(&self) -> PublicKey {
        IdentityKey::from_secret(self.seed_for(0, 0)).public()
    }

    /// Starts a client process (again), with a fresh seed and empty memory.
    pub fn start_client(&mut self, node: Node) {
        let seed = self.seed_for(node.0 as u64 + 1, self.clients[node.0].incarnation + 1);
        let now = self.now;
        let tweak = self.config.tweak_client;
        let c = &mut self.clients[node.0];
        if c.core.is_some() {
            return;
        }
        c.incarnation += 1;
        let mut config = ClientConfig::new(c.name.clone(), c.password.clone(), P2P_PORT);
        // The profile on the client's disk: the server key it pinned and the peer keys it
        // met, as earlier incarnations reported them.
        for (_, event) in &c.events {
            match event {
                Event::ServerKeyLearned { key } => config.server_key = Some(*key),
                Event::PeerKeyLearned { user, key }
                | Event::PeerKeyChanged { user, new: key, .. } => {
                    config.peer_keys.retain(|(known, _)| known != user);
                    config.peer_keys.push((user.clone(), *key));
                }
                _ => {}
            }
        }
        tweak(&mut config);
        c.core = Some(Client::new(config, c.identity.clone(), seed, now));
        self.drive();
    }

    /// Logs the client out properly, then ends its process.
    pub fn logout(&mut self, node: Node) {
        let now = self.now;
        let Some(core) = self.clients[node.0].core.as_mut() else {
            return;
        };
        core.logout(now);
        self.drain_client(node.0);
        self.kill_client(node);
        self.drive();
    }

    /// Ends the client's process without a word; its sockets close.
    pub fn crash_client(&mut self, node: Node) {
        self.kill_client(node);
        self.drive();
    }

    pub fn crash_server(&mut self) {
        let now = self.now;
        self.server = None;
        let incarnation = self.server_incarnation;
        for (conn, stream) in std::mem::take(&mut self.server_conns) {
            self.net
                .close(stream, Endpoint::Server { incarnation, conn }, now);
        }
        self.server_incarnation += 1;
        self.drive();
    }

    pub fn restart_server(&mut self) {
        if self.server.is_some() {
            return;
        }
        let seed = self.seed_for(0, self.server_incarnation + 1);
        self.server_incarnation += 1;
        let identity = IdentityKey::from_secret(self.seed_for(0, 0));
        self.server = Some(Server::new(self.config.server.clone(), identity, seed));
        self.drive();
    }

    /// Cuts the direct path between two clients both ways (the relay stays up).
    pub fn cut(&mut self, a: Node, b: Node) {
        self.net.cut(a.0, b.0);
        self.net.cut(b.0, a.0);
    }

    /// Cuts only what `from` sends to `to` on direct paths.
    pub fn cut_one_way(&mut self, from: Node, to: Node) {
        self.net.cut(from.0, to.0);
    }

    pub fn heal(&mut self, a: Node, b: Node) {
        let mut released = self.net.heal(a.0, b.0);
        released.extend(self.net.heal(b.0, a.0));
        for (stream, dir, segment) in released {
            self.deliver_segment(stream, dir, segment);
        }
        self.drive();
    }

    /// Opens or shuts a client's P2P port: shut, it refuses new connections.
    pub fn set_listening(&mut self, node: Node, listening: bool) {
        self.clients[node.0].listening = listening;
    }

    // ---- the user's actions -----------------------------------------------------------------

    pub fn send(
        &mut self,
        from: Node,
        to: Node,
        text: &str,
    ) -> Result<MessageId, client::SendError> {
        let to = self.clients[to.0].name.clone();
        self.send_to_name(from, &to, text)
    }

    /// Sends to any user name, with or without an account.
    pub fn send_to_name(
        &mut self,
        from: Node,
        to: &UserName,
        text: &str,
    ) -> Result<MessageId, client::SendError> {
        let now = self.now;
        let core = self.clients[from.0]
            .core
            .as_mut()
            .ok_or(client::SendError::Stopped)?;
        let result = core.send(to, text.to_string(), now);
        self.drive();
        result
    }

    // ---- files ------------------------------------------------------------------------------

    /// Offers `content` to `to` as transfer `id`.
    pub fn offer_file(
        &mut self,
        from: Node,
        to: Node,
        id: u64,
        content: Vec<u8>,
    ) -> Result<(), client::FileError> {
        let now = self.now;
        let id = TransferId(id);
        let to = self.clients[to.0].name.clone();
        let (size, hash) = (content.len() as u64, *blake3::hash(&content).as_bytes());
        let name = FileName::new(format!("file-{}.bin", id.0)).expect("a plain name");
        let c = &mut self.clients[from.0];
        c.disk.outgoing.insert(id, std::sync::Arc::new(content));
        let core = c.core.as_mut().ok_or(client::FileError::Stopped)?;
        let result = core.offer_file(&to, id, name, size, hash, now);
        self.drive();
        result
    }

    /// Accepts `from`'s offer `id`, resuming after whatever part is already on disk.
    pub fn accept_file(&mut self, at: Node, from: Node, id: u64) -> Result<(), client::FileError> {
        let now = self.now;
        let (id, from) = (TransferId(id), self.clients[from.0].name.clone());
        let c = &mut self.clients[at.0];
        let held = c
            .disk
            .incoming
            .get(&(from.clone(), id))
            .map_or(0, |f| f.len() as u64);
        let core = c.core.as_mut().ok_or(client::FileError::Stopped)?;
        let result = core.accept_file(&from, id, held, now);
        self.drive();
        result
    }

    pub fn decline_file(&mut self, at: Node, from: Node, id: u64) -> Result<(), client::FileError> {
        let now = self.now;
        let (id, from) = (TransferId(id), self.clients[from.0].name.clone());
        let core = self.clients[at.0]
            .core
            .as_mut()
            .ok_or(client::FileError::Stopped)?;
        let result = core.decline_file(&from, id, now);
        self.drive();
        result
    }

    /// The bytes of `from`'s file `id` on `at`'s disk so far.
    pub fn received_file(&self, at: Node, from: Node, id: u64) -> Option<&[u8]> {
        let key = (self.clients[from.0].name.clone(), TransferId(id));
        self.clients[at.0]
            .disk
            .incoming
            .get(&key)
            .map(Vec::as_slice)
    }

    /// Flips a byte of a partly received file, as a bad disk or a lying relay would.
    pub fn corrupt_received_file(&mut self, at: Node, from: Node, id: u64, offset: usize) {
        let key = (self.clients[from.0].name.clone(), TransferId(id));
        if let Some(byte) = self.clients[at.0]
            .disk
            .incoming
            .get_mut(&key)
            .and_then(|f| f.get_mut(offset))
        {
            *byte ^= 0xff;
        }
    }

    // ---- time -------------------------------------------------------------------------------

    pub fn now(&self) -> Instant {
        self.now
    }

    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// Runs the world for `duration` of virtual time.
    pub fn advance(&mut self, duration: Duration) {
        let target = self.now + duration;
        loop {
            self.drive();
            match self.next_wakeup() {
                Some(at) if at <= target => self.now = self.now.max(at),
                _ => break,
            }
        }
        self.now = target;
        self.drive();
    }

    /// Advances in small steps until `done` holds; returns the virtual time it took, or `None`
    /// if it did not happen within `limit`.
    pub fn run_until(
        &mut self,
        limit: Duration,
        mut done: impl FnMut(&Sim) -> bool,
    ) -> Option<Duration> {
        let begin = self.now;
        let step = Duration::from_millis(10);
        while self.now - begin <= limit {
            if done(self) {
                return Some(self.now - begin);
            }
            self.advance(step);
        }
        done(self).then(|| self.now - begin)
    }

    // ---- observations -----------------------------------------------------------------------

    pub fn name(&self, node: Node) -> &UserName {
        &self.clients[node.0].name
    }

    pub fn client(&self, node: Node) -> Option<&Client> {
        self.clients[node.0].core.as_ref()
    }

    pub fn server(&self) -> Option<&Server> {
        self.server.as_ref()
    }

    pub fn route(&self, from: Node, to: Node) -> Option<Route> {
        self.client(from)?.route_to(&self.clients[to.0].name)
    }

    pub fn is_logged_in(&self, node: Node) -> bool {
        self.client(node).is_some_and(Client::is_logged_in)
    }

    pub fn received(&self, node: Node) -> &[Received] {
        &self.clients[node.0].received
    }

    /// Messages `to` received from `from`, in arrival order.
    pub fn received_from(&self, to: Node, from: Node) -> Vec<&Received> {
        let from = &self.clients[from.0].name;
        self.clients[to.0]
            .received
            .iter()
            .filter(|r| &r.from == from)
            .collect()
    }

    /// Every peer `node` dialled so far, in order.
    pub fn dialled(&self, node: Node) -> &[UserName] {
        &self.clients[node.0].dialled
    }

    pub fn events(&self, node: Node) -> &[(Instant, client::Event)] {
        &self.clients[node.0].events
    }

    pub fn server_events(&self) -> &[(Instant, server::Event)] {
        &self.server_events
    }

    pub fn incarnation(&self, node: Node) -> u64 {
        self.clients[node.0].incarnation
    }

    pub fn nodes(&self) -> impl Iterator<Item = Node> {
        (0..self.clients.len()).map(Node)
    }

    /// Open streams in the virtual network (both ends not yet closed).
    pub fn open_streams(&self) -> usize {
        self.net.stream_count()
    }

    // ---- raw sockets for attack scenarios ---------------------------------------------------

    /// Connects a test-controlled socket to a client's P2P port.
    pub fn raw_connect_peer(&mut self, target: Node) -> RawId {
        let c = &mut self.clients[target.0];
        let link = LinkId(c.next_link);
        c.next_link += 1;
        let acceptor = Endpoint::ClientPeer {
            node: target.0,
            incarnation: c.incarnation,
            link,
        };
        self.raw_connect(acceptor, |sim, stream| {
            sim.clients[target.0].links.insert(link, stream);
        })
    }

    /// Connects a test-controlled socket to the server.
    pub fn raw_connect_server(&mut self) -> RawId {
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        let acceptor = Endpoint::Server {
            incarnation: self.server_incarnation,
            conn,
        };
        self.raw_connect(acceptor, |sim, stream| {
            sim.server_conns.insert(conn, stream);
        })
    }

    fn raw_connect(
        &mut self,
        acceptor: Endpoint,
        register: impl FnOnce(&mut Sim, StreamId),
    ) -> RawId {
        let raw = RawId(self.next_raw);
        self.next_raw += 1;
        let stream = self.net.open(Endpoint::Raw(raw), acceptor, None, self.now);
        register(self, stream);
        self.raws.insert(
            raw,
            RawConn {
                stream,
                inbox: Vec::new(),
                closed: false,
            },
        );
        self.drive();
        raw
    }

    pub fn raw_send(&mut self, raw: RawId, bytes: Vec<u8>) {
        let Some(conn) = self.raws.get(&raw) else {
            return;
        };
        self.net
            .send(conn.stream, Endpoint::Raw(raw), bytes, self.now);
        self.drive();
    }

    /// Everything the raw socket received so far, and whether the far side closed it.
    pub fn raw_received(&self, raw: RawId) -> (&[u8], bool) {
        self.raws
            .get(&raw)
            .map_or((&[][..], true), |c| (&c.inbox[..], c.closed))
    }

    // ---- the drive loop ---------------------------------------------------------------------

    /// Handles everything due now, until every core is idle. Bounded: a core that never goes
    /// idle (a timer that does not advance) fails the test instead of hanging it.
    fn drive(&mut self) {
        for _ in 0..1_000_000 {
            let mut busy = self.drain_server();
            for i in 0..self.clients.len() {
                busy |= self.drain_client(i);
            }
            if let Some(due) = self.net.pop_due(self.now) {
                self.apply(due);
                continue;
            }
            busy |= self.fire_timers();
            if !busy {
                return;
            }
        }
        panic!(
            "the simulation did not settle at {:?}: a core keeps itself busy",
            self.elapsed()
        );
    }

    fn next_wakeup(&self) -> Option<Instant> {
        let server = self.server.as_ref().and_then(Server::poll_timeout);
        let clients = self
            .clients
            .iter()
            .filter_map(|c| c.core.as_ref()?.poll_timeout());
        [self.net.next_at(), server]
            .into_iter()
            .flatten()
            .chain(clients)
            .min()
    }

    fn fire_timers(&mut self) -> bool {
        let now = self.now;
        let mut fired = false;
        if let Some(server) = self.server.as_mut() {
            if server.poll_timeout().is_some_and(|t| t <= now) {
                server.handle_timeout(now);
                fired = true;
            }
        }
        for c in &mut self.clients {
            if let Some(core) = c.core.as_mut() {
                if core.poll_timeout().is_some_and(|t| t <= now) {
                    core.handle_timeout(now);
                    fired = true;
                }
            }
        }
        fired
    }

    fn drain_server(&mut self) -> bool {
        let now = self.now;
        let incarnation = self.server_incarnation;
        let Some(server) = self.server.as_mut() else {
            return false;
        };
        let mut busy = false;
        loop {
            // Bytes first, one action at a time: an action answered inline (a login check)
            // can queue bytes that must go out before a later close.
            if let Some(transmit) = server.poll_transmit() {
                busy = true;
                let (conn, bytes) = (transmit.to, transmit.payload.len());
                let Some(stream) = self.server_conns.get(&conn).copied() else {
                    server.handle_written(conn, bytes);
                    continue;
                };
                let from = Endpoint::Server { incarnation, conn };
                let sent = self
                    .net
                    .send(stream, from, span_bytes(transmit.payload), now);
                if sent <= now {
                    server.handle_written(conn, bytes);
                } else {
                    self.net.at(
                        sent,
                        Scheduled::Written {
                            stream,
                            from,
                            bytes,
                        },
                    );
                }
                continue;
            }
            let Some(action) = server.poll_action() else {
                break;
            };
            busy = true;
            match action {
                server::Action::Close { conn } => {
                    if let Some(stream) = self.server_conns.remove(&conn) {
                        self.net
                            .close(stream, Endpoint::Server { incarnation, conn }, now);
                    }
                }
                server::Action::CheckLogin {
                    conn,
                    user,
                    password,
                    register,
                    ..
                } => {
                    let verdict = self.store.check(&user, &password, register);
                    server.handle_login_checked(conn, verdict, now);
                }
                server::Action::StoreOffline { to, from, chat } => {
                    let outcome = match self.store.store(to.clone(), from.clone(), chat.clone()) {
                        Ok(()) => server::StoreOutcome::Stored,
                        Err(reason) => server::StoreOutcome::Undeliverable(reason),
                    };
                    server.handle_offline_stored(&from, to, &chat, outcome, now);
                }
                server::Action::LoadOffline { user } => {
                    let stored = self.store.load(&user);
                    server.handle_offline_loaded(&user, stored, now);
                }
                server::Action::DeleteOffline {
                    to,
                    from,
                    epoch,
                    through,
                } => self.store.delete(&to, &from, epoch, through),
                other => panic!("unexpected server action {other:?}"),
            }
        }
        while let Some(event) = server.poll_event() {
            self.server_events.push((now, event));
        }
        busy
    }

    fn drain_client(&mut self, i: usize) -> bool {
        let now = self.now;
        let mut busy = false;
        loop {
            let c = &mut self.clients[i];
            let Some(core) = c.core.as_mut() else {
                return busy;
            };
            let incarnation = c.incarnation;
            if let Some(transmit) = core.poll_transmit() {
                busy = true;
                let (to, bytes) = (transmit.to, transmit.payload.len());
                let (stream, from) = match transmit.to {
                    Destination::Server => (
                        c.server_stream,
                        Endpoint::ClientServer {
                            node: i,
                            incarnation,
                        },
                    ),
                    Destination::Peer(link) => (
                        c.links.get(&link).copied(),
                        Endpoint::ClientPeer {
                            node: i,
                            incarnation,
                            link,
                        },
                    ),
                };
                let Some(stream) = stream else {
                    core.handle_written(to, bytes);
                    continue;
                };
                let sent = self
                    .net
                    .send(stream, from, span_bytes(transmit.payload), now);
                if sent <= now {
                    core.handle_written(to, bytes);
                } else {
                    self.net.at(
                        sent,
                        Scheduled::Written {
                            stream,
                            from,
                            bytes,
                        },
                    );
                }
                continue;
            }
            if let Some(action) = core.poll_action() {
                busy = true;
                self.client_action(i, action);
                continue;
            }
            if let Some(event) = core.poll_event() {
                busy = true;
                if let client::Event::Message {
                    from,
                    id,
                    text,
                    route,
                } = &event
                {
                    c.received.push(Received {
                        from: from.clone(),
                        id: *id,
                        text: text.clone(),
                        route: *route,
                        incarnation,
                        at: now,
                    });
                }
                if let client::Event::File(client::FileEvent::Offered { from, id, hash, .. }) =
                    &event
                {
                    c.disk.expected.insert((from.clone(), *id), *hash);
                }
                c.events.push((now, event));
                continue;
            }
            return busy;
        }
    }

    fn client_action(&mut self, i: usize, action: client::Action) {
        let now = self.now;
        let incarnation = self.clients[i].incarnation;
        let me = Endpoint::ClientServer {
            node: i,
            incarnation,
        };
        match action {
            client::Action::ConnectServer => {
                if self.server.is_some() {
                    let conn = ConnId(self.next_conn);
                    self.next_conn += 1;
                    let acceptor = Endpoint::Server {
                        incarnation: self.server_incarnation,
                        conn,
                    };
                    let stream = self.net.open(me, acceptor, None, now);
                    self.server_conns.insert(conn, stream);
                    self.clients[i].server_stream = Some(stream);
                } else {
                    self.net.refuse(me, None, self.net.config.latency, now);
                }
            }
            client::Action::CloseServer => {
                if let Some(stream) = self.clients[i].server_stream.take() {
                    self.net.close(stream, me, now);
                }
            }
            client::Action::Dial { peer, addr } => {
                let c = &mut self.clients[i];
                c.dialled.push(peer.clone());
                let link = LinkId(c.next_link);
                c.next_link += 1;
                let opener = Endpoint::ClientPeer {
                    node: i,
                    incarnation,
                    link,
                };
                let target = self.clients.iter().position(|t| {
                    t.ip == addr.ip() && addr.port() == P2P_PORT && t.core.is_some() && t.listening
                });
                match target {
                    Some(j) if self.net.is_cut(i, j) || self.net.is_cut(j, i) => {
                        self.net
                            .refuse(opener, Some(peer), self.net.config.connect_timeout, now)
                    }
                    Some(j) => {
                        let t = &mut self.clients[j];
                        let their_link = LinkId(t.next_link);
                        t.next_link += 1;
                        let acceptor = Endpoint::ClientPeer {
                            node: j,
                            incarnation: t.incarnation,
                            link: their_link,
                        };
                        let stream = self.net.open(opener, acceptor, Some(peer), now);
                        self.clients[j].links.insert(their_link, stream);
                        self.clients[i].links.insert(link, stream);
                    }
                    None => self
                        .net
                        .refuse(opener, Some(peer), self.net.config.latency, now),
                }
            }
            client::Action::CloseLink { link } => {
                if let Some(stream) = self.clients[i].links.remove(&link) {
                    self.net.close(
                        stream,
                        Endpoint::ClientPeer {
                            node: i,
                            incarnation,
                            link,
                        },
                        now,
                    );
                }
            }
            client::Action::ReadFile {
                id,
                offset,
                len,
                direct,
            } => {
                let c = &mut self.clients[i];
                let data = c.disk.read_payload(id, offset, len, direct);
                if let Some(core) = c.core.as_mut() {
                    match data {
                        Some(data) => core.handle_file_payload(id, offset, data, now),
                        None => core.handle_file_read_failed(id, now),
                    }
                }
            }
            client::Action::WriteFile {
                from,
                id,
                offset,
                data,
            } => {
                let c = &mut self.clients[i];
                let written = c.disk.write(&from, id, offset, &data);
                if let Some(core) = c.core.as_mut() {
                    if written {
                        core.handle_file_written(&from, id, offset, data.len(), now);
                    } else {
                        core.handle_file_write_failed(&from, id, now);
                    }
                }
            }
            client::Action::VerifyFile { from, id } => {
                let c = &mut self.clients[i];
                let verified = c.disk.verify(&from, id);
                if let Some(core) = c.core.as_mut() {
                    core.handle_file_verified(&from, id, verified, now);
                }
            }
            other => panic!("unexpected client action {other:?}"),
        }
    }

    fn apply(&mut self, due: Scheduled) {
        match due {
            Scheduled::Segment {
                stream,
                dir,
                segment,
            } => {
                if !self.net.must_stall(stream, dir, &segment) {
                    self.deliver_segment(stream, dir, segment);
                }
            }
            Scheduled::Accept { stream } => self.accept(stream),
            Scheduled::Connected { stream } => self.connected(stream),
            Scheduled::ConnectFailed { opener, dialled } => {
                let now = self.now;
                let Some(core) = self.core_for(opener) else {
                    return;
                };
                match dialled {
                    Some(peer) => core.handle_dial_failed(&peer, now),
                    None => core.handle_server_connect_failed(now),
                }
            }
            Scheduled::Written {
                stream,
                from,
                bytes,
            } => self.written(stream, from, bytes),
        }
    }

    /// Bytes a core handed over have gone out on the wire; tell it, if the socket is still
    /// the one they were written to.
    fn written(&mut self, stream: StreamId, from: Endpoint, bytes: usize) {
        match from {
            Endpoint::Server { incarnation, conn } => {
                let current = incarnation == self.server_incarnation
                    && self.server_conns.get(&conn) == Some(&stream);
                if let Some(server) = self.server.as_mut().filter(|_| current) {
                    server.handle_written(conn, bytes);
                }
            }
            Endpoint::ClientServer { node, .. } => {
                if self.clients[node].server_stream == Some(stream) {
                    if let Some(core) = self.core_for(from) {
                        core.handle_written(Destination::Server, bytes);
                    }
                }
            }
            Endpoint::ClientPeer { node, link, .. } => {
                if self.clients[node].links.get(&link) == Some(&stream) {
                    if let Some(core) = self.core_for(from) {
                        core.handle_written(Destination::Peer(link), bytes);
                    }
                }
            }
            Endpoint::Raw(_) => {}
        }
    }

    fn accept(&mut self, stream: StreamId) {
        let now = self.now;
        let Some(s) = self.net.stream(stream) else {
            return;
        };
        let (opener, acceptor) = (s.ends[0], s.ends[1]);
        let remote = self.address_of(opener);
        let alive = match acceptor {
            Endpoint::Server { incarnation, conn } => match self.server.as_mut() {
                Some(server) if incarnation == self.server_incarnation => {
                    server.handle_connected(conn, remote, now);
                    true
                }
                _ => false,
            },
            Endpoint::ClientPeer { link, .. } => match self.core_for(acceptor) {
                Some(core) => {
                    core.handle_accepted(link, remote, now);
                    true
                }
                None => false,
            },
            _ => false,
        };
        if !alive {
            self.net.close(stream, acceptor, now);
        }
    }

    fn connected(&mut self, stream: StreamId) {
        let now = self.now;
        let Some(s) = self.net.stream(stream) else {
            return;
        };
        let (opener, dialled) = (s.ends[0], s.dialled.clone());
        if !s.attached[0] {
            return;
        }
        match (opener, self.core_for(opener)) {
            (Endpoint::ClientServer { .. }, Some(core)) => core.handle_server_connected(now),
            (Endpoint::ClientPeer { link, .. }, Some(core)) => {
                if let Some(peer) = dialled {
                    core.handle_dialed(link, &peer, now);
                }
            }
            (Endpoint::Raw(_), _) => {}
            _ => self.net.close(stream, opener, now),
        }
    }

    fn deliver_segment(&mut self, stream: StreamId, dir: usize, segment: Segment) {
        let now = self.now;
        let Some(s) = self.net.stream(stream) else {
            return;
        };
        let to = s.ends[1 - dir];
        if !s.attached[1 - dir] {
            return;
        }
        let fin = matches!(segment, Segment::Fin);
        if fin {
            self.net.detach(stream, dir);
        }
        match to {
            Endpoint::Raw(raw) => {
                if let Some(conn) = self.raws.get_mut(&raw) {
                    match segment {
                        Segment::Bytes(bytes) => conn.inbox.extend_from_slice(&bytes),
                        Segment::Fin => conn.closed = true,
                    }
                }
            }
            Endpoint::Server { incarnation, conn } => {
                let Some(server) = self
                    .server
                    .as_mut()
                    .filter(|_| incarnation == self.server_incarnation)
                else {
                    return;
                };
                match segment {
                    Segment::Bytes(bytes) => server.handle_bytes(conn, &bytes, now),
                    Segment::Fin => {
                        self.server_conns.remove(&conn);
                        server.handle_disconnected(conn, now);
                    }
                }
            }
            Endpoint::ClientServer { node, .. } => {
                if self.clients[node].server_stream != Some(stream) {
                    return;
                }
                if fin {
                    self.clients[node].server_stream = None;
                }
                let Some(core) = self.core_for(to) else {
                    return;
                };
                match segment {
                    Segment::Bytes(bytes) => core.handle_server_bytes(&bytes, now),
                    Segment::Fin => core.handle_server_closed(now),
                }
            }
            Endpoint::ClientPeer { node, link, .. } => {
                if fin {
                    self.clients[node].links.remove(&link);
                }
                let Some(core) = self.core_for(to) else {
                    return;
                };
                match segment {
                    Segment::Bytes(bytes) => core.handle_link_bytes(link, &bytes, now),
                    Segment::Fin => core.handle_link_closed(link, now),
                }
            }
        }
    }

    /// The running core an endpoint belongs to, if that process is still the one that opened it.
    fn core_for(&mut self, end: Endpoint) -> Option<&mut Client> {
        let (node, incarnation) = match end {
            Endpoint::ClientServer { node, incarnation } => (node, incarnation),
            Endpoint::ClientPeer {
                node, incarnation, ..
            } => (node, incarnation),
            _ => return None,
        };
        let c = self.clients.get_mut(node)?;
        if c.incarnation != incarnation {
            return None;
        }
        c.core.as_mut()
    }

    fn address_of(&self, end: Endpoint) -> SocketAddr {
        match end {
            Endpoint::ClientServer { node, .. } | Endpoint::ClientPeer { node, .. } => {
                SocketAddr::new(self.clients[node].ip, 40000 + node as u16)
            }
            Endpoint::Server { .. } => SERVER_ADDR,
            Endpoint::Raw(raw) => SocketAddr::new(
                IpAddr::V4(Ipv4Addr::new(127, 0, 9, 9)),
                50000 + raw.0 as u16,
            ),
        }
    }

    fn kill_client(&mut self, node: Node) {
        let now = self.now;
        let c = &mut self.clients[node.0];
        if c.core.take().is_none() {
            return;
        }
        let incarnation = c.incarnation;
        if let Some(stream) = c.server_stream.take() {
            self.net.close(
                stream,
                Endpoint::ClientServer {
                    node: node.0,
                    incarnation,
                },
                now,
            );
        }
        for (link, stream) in std::mem::take(&mut self.clients[node.0].links) {
            self.net.close(
                stream,
                Endpoint::ClientPeer {
                    node: node.0,
                    incarnation,
                    link,
                },
                now,
            );
        }
    }

    fn seed_for(&self, who: u64, incarnation: u64) -> [u8; 32] {
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&self.config.seed.to_le_bytes());
        seed[8..16].copy_from_slice(&who.to_le_bytes());
        seed[16..24].copy_from_slice(&incarnation.to_le_bytes());
        seed
    }
}
