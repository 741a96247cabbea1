//! The test API of the simulator: build a world of one server and N clients, act as their
//! users, inject faults, advance the virtual clock and observe what each side saw.
//!
//! How the cores are wired to the virtual network lives beside this file: `host.rs` is the drive
//! loop (timers, and each core's transmits, actions and events), `arrivals.rs` hands what the
//! network delivers (connections, bytes, closes, write completions) to the cores.

use crate::disk::Disk;
use crate::network::{Endpoint, NetConfig, Network, RawId, StreamId};
use crate::store::MemoryStore;
use breeze_core::client::{self, Client, ClientConfig, Event, LinkId, Route};
use breeze_core::secure::{IdentityKey, PublicKey};
use breeze_core::server::{self, ConnId, Server, ServerConfig};
use breeze_core::wire::{FileName, MessageId, TransferId, UserName};
use breeze_core::Via;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

mod arrivals;
mod groups;
mod host;

pub use groups::GroupReceived;

/// A client's index in the simulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Node(pub usize);

const P2P_PORT: u16 = 7000;

/// What [`Sim::fallback_bound`] allows beyond the heartbeat's `dead_after`: the timer that
/// notices firing, and the unacknowledged messages going again through the server, each hop a
/// few milliseconds of the simulated network's latency and jitter.
pub const FALLBACK_ALLOWANCE: Duration = Duration::from_millis(500);
const SERVER_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)), 7300);

pub struct SimConfig {
    pub seed: u64,
    pub net: NetConfig,
    pub server: ServerConfig,
    /// Applied to every client's configuration before it starts.
    pub tweak_client: fn(&mut ClientConfig),
    /// Every client's `max_direct_channels`, when set (applied before `tweak_client`).
    pub max_direct_channels: Option<usize>,
    /// Every client's `channel_idle`, when set (applied before `tweak_client`).
    pub channel_idle: Option<Duration>,
}

impl SimConfig {
    pub fn new(seed: u64) -> Self {
        SimConfig {
            seed,
            net: NetConfig::default(),
            server: ServerConfig::default(),
            tweak_client: |_| {},
            max_direct_channels: None,
            channel_idle: None,
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

/// A credential check the server core asked its host for: what kind of login frame came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginCheck {
    /// `Action::CheckLogin`: a `Login` frame, with a password.
    Password { user: UserName },
    /// `Action::CheckKeyLogin`: a `KeyLogin` frame, the key alone.
    Key { user: UserName },
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
    group_received: Vec<GroupReceived>,
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
    /// Which server key the address answers with (see `replace_server_key`).
    server_key_generation: u64,
    server_conns: BTreeMap<ConnId, StreamId>,
    next_conn: u64,
    pub store: MemoryStore,
    /// Every group message the host stored, as the server core handed it over: who should
    /// receive each place in each group's order.
    pub group_log: Vec<std::sync::Arc<breeze_core::server::StoredGroupMessage>>,
    server_events: Vec<(Instant, server::Event)>,
    /// Every credential check the server core asked its host for, in order.
    login_checks: Vec<LoginCheck>,
    clients: Vec<ClientNode>,
    raws: BTreeMap<RawId, RawConn>,
    next_raw: u64,
    /// Clients handed an input since they were last drained: only these are drained while
    /// the network delivers, so a step costs what it touches, not the number of clients.
    dirty: Vec<usize>,
    is_dirty: Vec<bool>,
    /// Every running client's `poll_timeout`, as of its last drain, and the reverse index:
    /// the next timer is the first entry, not a walk over every client.
    timers: BTreeSet<(Instant, usize)>,
    deadline: Vec<Option<Instant>>,
    most_links: Vec<usize>,
    /// Which client listens at an address (a dial's target).
    by_ip: HashMap<IpAddr, usize>,
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
            server_key_generation: 0,
            server_conns: BTreeMap::new(),
            next_conn: 0,
            store: MemoryStore::default(),
            group_log: Vec::new(),
            server_events: Vec::new(),
            login_checks: Vec::new(),
            clients: Vec::new(),
            raws: BTreeMap::new(),
            next_raw: 0,
            dirty: Vec::new(),
            is_dirty: Vec::new(),
            timers: BTreeSet::new(),
            deadline: Vec::new(),
            most_links: Vec::new(),
            by_ip: HashMap::new(),
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
        // 127.0.1.1 on: one address per client, however many there are.
        let ip = IpAddr::V4(Ipv4Addr::from(0x7f00_0100 + index as u32 + 1));
        self.by_ip.insert(ip, index);
        self.is_dirty.push(false);
        self.deadline.push(None);
        self.most_links.push(0);
        self.clients.push(ClientNode {
            name: user,
            password,
            identity,
            ip,
            core: None,
            incarnation: 0,
            listening: true,
            dialled: Vec::new(),
            server_stream: None,
            links: BTreeMap::new(),
            next_link: 0,
            received: Vec::new(),
            group_received: Vec::new(),
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
            .retain(|(_, e)| !matches!(e, Event::ServerKeyLearned { .. } | Event::Enrolled { .. }));
    }

    /// The public key of the client's current profile.
    pub fn client_key(&self, node: Node) -> PublicKey {
        self.clients[node.0].identity.public()
    }

    /// The server's public key (the same across restarts: it is on the server's disk).
    pub fn server_key(&self) -> PublicKey {
        self.server_identity().public()
    }

    fn server_identity(&self) -> IdentityKey {
        IdentityKey::from_secret(self.seed_for(u64::MAX, self.server_key_generation))
    }

    /// Another server, with a key of its own, takes the server's address from its next
    /// (re)start on: an impostor, or a reinstalled server that lost its key.
    pub fn replace_server_key(&mut self) {
        self.server_key_generation += 1;
    }

    /// From now on, every byte any endpoint sends is recorded, as a tap on the LAN would.
    pub fn start_capture(&mut self) {
        self.net.capture.get_or_insert_with(Vec::new);
    }

    /// Everything recorded since [`start_capture`](Sim::start_capture).
    pub fn captured(&self) -> &[u8] {
        self.net.capture.as_deref().unwrap_or_default()
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
                // The profile remembers it is enrolled: it logs in with its key alone.
                Event::Enrolled { .. } => config.key_login = true,
                Event::PeerKeyLearned { user, key }
                | Event::PeerKeyChanged { user, new: key, .. } => {
                    config.peer_keys.retain(|(known, _)| known != user);
                    config.peer_keys.push((user.clone(), *key));
                }
                _ => {}
            }
        }
        if let Some(cap) = self.config.max_direct_channels {
            config.max_direct_channels = cap;
        }
        if let Some(idle) = self.config.channel_idle {
            config.channel_idle = idle;
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
        let identity = self.server_identity();
        let mut server = Server::new(self.config.server.clone(), identity, seed);
        server.restore_groups(self.store.groups.saved());
        self.server = Some(server);
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

    /// `at`'s user opens a conversation with `peer` (or shows it as a contact): watched.
    pub fn watch(&mut self, at: Node, peer: Node) {
        let (now, peer) = (self.now, self.clients[peer.0].name.clone());
        if let Some(core) = self.clients[at.0].core.as_mut() {
            core.watch(&peer, now);
        }
        self.drive();
    }

    /// The user at `at` puts the conversation with `with` on screen.
    pub fn open_conversation(&mut self, at: Node, with: Node) {
        let (now, with) = (self.now, self.clients[with.0].name.clone());
        if let Some(core) = self.clients[at.0].core.as_mut() {
            core.open_conversation(&with, now);
        }
        self.drive();
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

    /// The longest a client may take, once the direct path to a peer is cut, to notice and
    /// fall back to the relay: its heartbeat's `dead_after` (the channel is dead that long
    /// after the last byte heard, which came no later than the cut), plus
    /// [`FALLBACK_ALLOWANCE`]. Taken from the configuration the clients run with.
    pub fn fallback_bound(&self) -> Duration {
        let mut config = ClientConfig::new(
            UserName::new("probe").expect("a valid name"),
            String::new(),
            P2P_PORT,
        );
        (self.config.tweak_client)(&mut config);
        config.heartbeat.dead_after + FALLBACK_ALLOWANCE
    }

    pub fn now(&self) -> Instant {
        self.now
    }

    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// Runs the world for `duration` of virtual time.
    pub fn advance(&mut self, duration: Duration) {
        let target = self.now + duration;
        self.drive();
        loop {
            match self.next_wakeup() {
                Some(at) if at <= target => self.now = self.now.max(at),
                _ => break,
            }
            self.run_due();
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

    /// The most peer links `node`'s core held after any drain of it, across its runs: what a
    /// cap on direct channels must bound at every step, not only where a test looks.
    pub fn most_links(&self, node: Node) -> usize {
        self.most_links[node.0]
    }

    /// Every peer `node` dialled so far, in order.
    pub fn dialled(&self, node: Node) -> &[UserName] {
        &self.clients[node.0].dialled
    }

    pub fn events(&self, node: Node) -> &[(Instant, client::Event)] {
        &self.clients[node.0].events
    }

    pub fn login_checks(&self) -> &[LoginCheck] {
        &self.login_checks
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
