//! Bounded direct channels (`core/src/client/channels.rs`): the cap, the idle close, least
//! recently used first, refusal when every channel is busy, and who dials. A server and a few
//! clients in memory with instant delivery and one virtual clock.

use breeze_core::client::{
    Action, Client, ClientConfig, Destination, Event, LinkId, Opening, Route, RouteReason,
};
use breeze_core::secure::IdentityKey;
use breeze_core::server::{Action as ServerAction, ConnId, Server, ServerConfig};
use breeze_core::wire::{FileName, TransferId, UserName};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const IDLE: Duration = Duration::from_secs(60);

fn name(n: &str) -> UserName {
    UserName::new(n).unwrap()
}

struct World {
    now: Instant,
    server: Server,
    clients: Vec<Client>,
    names: Vec<UserName>,
    /// Each end of a peer link, (client, link), maps to the other end.
    links: BTreeMap<(usize, LinkId), (usize, LinkId)>,
    next_link: u64,
    /// Every event of every client, with the time it was polled.
    events: Vec<Vec<(Instant, Event)>>,
    /// The most links each client held at any moment of the run.
    most_links: Vec<usize>,
}

impl World {
    /// Logs in `users`, each holding at most `cap` channels, with channels idle after `IDLE`.
    fn new(users: &[&str], cap: usize) -> World {
        World::with_caps(users, &vec![cap; users.len()])
    }

    /// [`World::new`] with a cap of its own for each user.
    fn with_caps(users: &[&str], caps: &[usize]) -> World {
        let now = Instant::now();
        let server = Server::new(
            ServerConfig::default(),
            IdentityKey::from_secret([99; 32]),
            [0; 32],
        );
        let mut world = World {
            now,
            server,
            clients: Vec::new(),
            names: users.iter().map(|u| name(u)).collect(),
            links: BTreeMap::new(),
            next_link: 0,
            events: vec![Vec::new(); users.len()],
            most_links: vec![0; users.len()],
        };
        for (i, user) in users.iter().enumerate() {
            let mut config = ClientConfig::new(name(user), "pw", 7000 + i as u16);
            config.max_direct_channels = caps[i];
            config.channel_idle = IDLE;
            let seed = [i as u8 + 1; 32];
            let identity = IdentityKey::from_secret([i as u8 + 1; 32]);
            world
                .clients
                .push(Client::new(config, identity, seed, world.now));
            world.settle();
        }
        // The server sends presence changes in batches, on its timer.
        world.advance(Duration::from_secs(1));
        world
    }

    fn index(&self, user: &str) -> usize {
        self.names.iter().position(|n| n.as_str() == user).unwrap()
    }

    fn settle(&mut self) {
        for _ in 0..100_000 {
            if !self.step() {
                return;
            }
        }
        panic!("the world did not settle");
    }

    fn step(&mut self) -> bool {
        let now = self.now;
        let mut busy = false;
        for i in 0..self.clients.len() {
            while let Some(t) = self.clients[i].poll_transmit() {
                busy = true;
                let bytes = t.unwrap_bytes().to_vec();
                match t.to {
                    Destination::Server => self.server.handle_bytes(ConnId(i as u64), &bytes, now),
                    Destination::Peer(link) => {
                        if let Some(&(j, other)) = self.links.get(&(i, link)) {
                            self.clients[j].handle_link_bytes(other, &bytes, now);
                        }
                    }
                }
                self.clients[i].handle_written(t.to, bytes.len());
            }
            if let Some(action) = self.clients[i].poll_action() {
                busy = true;
                self.client_action(i, action);
            }
            while let Some(event) = self.clients[i].poll_event() {
                busy = true;
                self.events[i].push((now, event));
            }
            let links = self.clients[i].link_count();
            self.most_links[i] = self.most_links[i].max(links);
        }
        while let Some(t) = self.server.poll_transmit() {
            busy = true;
            let bytes = t.unwrap_bytes().to_vec();
            self.clients[t.to.0 as usize].handle_server_bytes(&bytes, now);
            self.server.handle_written(t.to, bytes.len());
        }
        while let Some(action) = self.server.poll_action() {
            busy = true;
            match action {
                ServerAction::CheckLogin { conn, .. } => {
                    self.server.handle_login_checked(conn, Ok(()), now)
                }
                ServerAction::LoadOffline { user } => {
                    self.server.handle_offline_loaded(&user, vec![], now)
                }
                _ => {}
            }
        }
        while self.server.poll_event().is_some() {
            busy = true;
        }
        busy
    }

    fn client_action(&mut self, i: usize, action: Action) {
        let now = self.now;
        let addr: SocketAddr = format!("127.0.0.{}:50000", i + 1).parse().unwrap();
        match action {
            Action::ConnectServer => {
                self.server.handle_connected(ConnId(i as u64), addr, now);
                self.clients[i].handle_server_connected(now);
            }
            Action::Dial { peer, .. } => {
                let j = self.names.iter().position(|n| *n == peer).unwrap();
                let (mine, theirs) = (LinkId(self.next_link), LinkId(self.next_link + 1));
                self.next_link += 2;
                self.links.insert((i, mine), (j, theirs));
                self.links.insert((j, theirs), (i, mine));
                self.clients[j].handle_accepted(theirs, addr, now);
                self.clients[i].handle_dialed(mine, &peer, now);
            }
            Action::CloseLink { link } => {
                if let Some(other) = self.links.remove(&(i, link)) {
                    self.links.remove(&other);
                    self.clients[other.0].handle_link_closed(other.1, now);
                }
            }
            _ => {}
        }
    }

    /// Runs the clock on by `duration`, firing every timer on the way.
    fn advance(&mut self, duration: Duration) {
        let target = self.now + duration;
        loop {
            let next = self
                .clients
                .iter()
                .filter_map(Client::poll_timeout)
                .chain(self.server.poll_timeout())
                .min();
            match next {
                Some(at) if at <= target => {
                    self.now = self.now.max(at);
                    let now = self.now;
                    for client in &mut self.clients {
                        if client.poll_timeout().is_some_and(|t| t <= now) {
                            client.handle_timeout(now);
                        }
                    }
                    if self.server.poll_timeout().is_some_and(|t| t <= now) {
                        self.server.handle_timeout(now);
                    }
                    self.settle();
                }
                _ => break,
            }
        }
        self.now = target;
        self.settle();
    }

    fn send(&mut self, from: &str, to: &str, text: &str) {
        let (i, to) = (self.index(from), name(to));
        self.clients[i]
            .send(&to, text.to_string(), self.now)
            .unwrap();
        self.settle();
    }

    fn open(&mut self, at: &str, with: &str) {
        let i = self.index(at);
        self.clients[i].open_conversation(&name(with), self.now);
        self.settle();
    }

    fn route(&self, from: &str, to: &str) -> Option<Route> {
        self.clients[self.index(from)].route_to(&name(to))
    }

    fn links(&self, user: &str) -> usize {
        self.clients[self.index(user)].link_count()
    }

    /// The reasons of `user`'s route events about `peer`, in order.
    fn route_reasons(&self, user: &str, peer: &str) -> Vec<RouteReason> {
        self.events[self.index(user)]
            .iter()
            .filter_map(|(_, e)| match e {
                Event::Route {
                    peer: p, reason, ..
                } if p.as_str() == peer => Some(*reason),
                _ => None,
            })
            .collect()
    }

    fn messages(&self, user: &str) -> Vec<String> {
        self.events[self.index(user)]
            .iter()
            .filter_map(|(_, e)| match e {
                Event::Message { text, .. } => Some(text.clone()),
                _ => None,
            })
            .collect()
    }

    fn clear_events(&mut self) {
        for events in &mut self.events {
            events.clear();
        }
    }
}

const FIVE: [&str; 5] = ["alice", "bob", "carol", "dave", "erin"];

#[test]
fn within_the_cap_every_online_peer_is_dialled_at_login() {
    let w = World::new(&["alice", "bob", "carol"], 4);
    for user in ["alice", "bob", "carol"] {
        assert_eq!(w.links(user), 2, "{user} has a channel to each peer");
    }
    assert_eq!(w.route("alice", "carol"), Some(Route::Direct));
    assert!(w
        .route_reasons("alice", "carol")
        .contains(&RouteReason::ChannelUp(Opening::WithinCap)));
    assert!(w
        .route_reasons("carol", "alice")
        .contains(&RouteReason::ChannelUp(Opening::ByPeer)));
}

#[test]
fn beyond_the_cap_channels_close_when_idle_and_open_on_demand() {
    let mut w = World::new(&FIVE, 2);
    for user in FIVE {
        assert!(
            w.most_links[w.index(user)] <= 2,
            "{user} stayed within the cap"
        );
    }
    // The channels made while few were online carry nothing: they close as idle.
    w.advance(IDLE + Duration::from_secs(1));
    for user in FIVE {
        assert_eq!(w.links(user), 0, "{user}'s channels closed as idle");
    }
    w.clear_events();

    // An idle close is not a failure: nobody dials again without something to say.
    w.advance(IDLE * 3);
    for user in FIVE {
        assert!(
            !w.route_reasons(user, "alice")
                .iter()
                .chain(&w.route_reasons("alice", user))
                .any(|r| matches!(r, RouteReason::Dialing(_))),
            "nobody redials an idle channel ({user})"
        );
    }

    // erin has something for bob: erin dials, though bob's name is smaller.
    w.send("erin", "bob", "hello");
    assert_eq!(w.messages("bob"), ["hello"]);
    assert_eq!(w.route("erin", "bob"), Some(Route::Direct));
    assert_eq!(
        w.route_reasons("erin", "bob"),
        [
            RouteReason::Dialing(Opening::OnDemand),
            RouteReason::ChannelUp(Opening::OnDemand)
        ]
    );
    assert_eq!(
        w.route_reasons("bob", "erin"),
        [RouteReason::ChannelUp(Opening::ByPeer)]
    );
    // Traffic keeps it: just under the idle period later it is still there.
    w.advance(IDLE - Duration::from_secs(1));
    w.send("bob", "erin", "still there?");
    w.advance(IDLE - Duration::from_secs(1));
    assert_eq!(w.route("bob", "erin"), Some(Route::Direct));
    w.advance(Duration::from_secs(2));
    assert_eq!(w.route("bob", "erin"), Some(Route::Relay));
    assert_eq!(
        w.route_reasons("bob", "erin").last(),
        Some(&RouteReason::Idle)
    );
    assert_eq!(
        w.route_reasons("erin", "bob").last(),
        Some(&RouteReason::Idle)
    );
}

#[test]
fn opening_a_conversation_opens_the_channel_before_anything_is_sent() {
    let mut w = World::new(&FIVE, 2);
    w.advance(IDLE + Duration::from_secs(1));
    w.open("dave", "alice");
    assert_eq!(w.route("dave", "alice"), Some(Route::Direct));
    assert_eq!(w.links("dave"), 1);
}

#[test]
fn at_the_cap_the_least_recently_used_idle_channel_makes_room() {
    let mut w = World::new(&FIVE, 2);
    w.advance(IDLE + Duration::from_secs(1));
    w.send("alice", "bob", "1");
    w.advance(Duration::from_secs(1));
    w.send("alice", "carol", "2");
    w.advance(Duration::from_secs(1));
    // bob is used again: carol is now the least recently used.
    w.send("alice", "bob", "3");
    w.advance(Duration::from_secs(1));
    w.clear_events();
    w.send("alice", "dave", "4");
    assert_eq!(w.links("alice"), 2);
    assert_eq!(w.route("alice", "dave"), Some(Route::Direct));
    assert_eq!(w.route("alice", "bob"), Some(Route::Direct));
    assert_eq!(w.route("alice", "carol"), Some(Route::Relay));
    assert_eq!(w.route_reasons("alice", "carol"), [RouteReason::Evicted]);
    assert_eq!(w.route_reasons("carol", "alice"), [RouteReason::Evicted]);
    assert_eq!(w.messages("dave"), ["4"]);
    // The evicted side does not dial back on its own.
    w.advance(Duration::from_secs(30));
    assert!(!w
        .route_reasons("carol", "alice")
        .iter()
        .any(|r| matches!(r, RouteReason::Dialing(_))));
    for user in FIVE {
        assert!(
            w.most_links[w.index(user)] <= 2,
            "{user} stayed within the cap"
        );
    }
}

#[test]
fn an_inbound_channel_is_refused_when_every_channel_is_busy_and_the_relay_carries_it() {
    let mut w = World::new(&FIVE, 2);
    w.advance(IDLE + Duration::from_secs(1));
    // Two offers nobody answers keep alice's two channels busy.
    let alice = w.index("alice");
    for (n, to) in ["bob", "carol"].iter().enumerate() {
        let now = w.now;
        let file = FileName::new(format!("f{n}.bin")).unwrap();
        w.clients[alice]
            .offer_file(&name(to), TransferId(n as u64 + 1), file, 10, [0; 32], now)
            .unwrap();
        w.settle();
        assert_eq!(w.route("alice", to), Some(Route::Direct));
    }
    w.send("erin", "alice", "over the relay");
    assert_eq!(w.messages("alice"), ["over the relay"]);
    assert_eq!(w.links("alice"), 2);
    assert_eq!(w.route("alice", "bob"), Some(Route::Direct));
    assert_eq!(w.route("alice", "carol"), Some(Route::Direct));
    assert_ne!(w.route("erin", "alice"), Some(Route::Direct));
    assert!(w
        .route_reasons("erin", "alice")
        .contains(&RouteReason::DialFailed));
    for user in FIVE {
        assert!(
            w.most_links[w.index(user)] <= 2,
            "{user} stayed within the cap"
        );
    }
}

#[test]
fn both_sides_wanting_a_channel_at_once_end_with_one() {
    let mut w = World::new(&FIVE, 2);
    w.advance(IDLE + Duration::from_secs(1));
    let (b, d) = (w.index("bob"), w.index("dave"));
    let now = w.now;
    // Both open the conversation before either dial is answered.
    w.clients[b].open_conversation(&name("dave"), now);
    w.clients[d].open_conversation(&name("bob"), now);
    w.settle();
    assert_eq!(w.links("bob"), 1);
    assert_eq!(w.links("dave"), 1);
    assert_eq!(w.route("bob", "dave"), Some(Route::Direct));
    assert_eq!(w.route("dave", "bob"), Some(Route::Direct));
    w.send("dave", "bob", "one channel");
    assert_eq!(w.messages("bob"), ["one channel"]);
}

#[test]
fn within_its_cap_the_larger_name_dials_a_peer_that_is_beyond_its_own() {
    // alice knows of four others, over her cap: she dials only on demand. erin's cap holds
    // everyone: she would leave dialling to the smaller name, but alice will not.
    let mut w = World::with_caps(&FIVE, &[1, 8, 8, 8, 8]);
    w.advance(IDLE + Duration::from_secs(1));
    let alice = w.index("alice");
    assert_eq!(w.clients[alice].route_to(&name("erin")), Some(Route::Relay));
    w.clear_events();
    w.send("erin", "alice", "first by relay");
    assert_eq!(w.messages("alice"), ["first by relay"]);
    // At once here (the watch that sending starts brings a fresh introduction, worth an
    // immediate attempt), or a moment later: with no dial from alice, erin dials.
    w.advance(Duration::from_secs(2));
    assert_eq!(w.route("erin", "alice"), Some(Route::Direct));
    assert_eq!(
        w.route_reasons("erin", "alice"),
        [
            RouteReason::Dialing(Opening::OnDemand),
            RouteReason::ChannelUp(Opening::OnDemand)
        ]
    );
    assert!(w.most_links[alice] <= 1);
}
