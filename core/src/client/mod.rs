//! The client state machine: one server link, many peer links, one outbox per peer.
//!
//! # How to drive me
//!
//! Construct with [`Client::new`], which already asks for [`Action::ConnectServer`]. The driver
//! owns the sockets and a clock, listens on the configured P2P port, and picks a [`LinkId`] for
//! every peer connection, dialled or accepted. Inputs, each taking `now`:
//! - server link: [`handle_server_connected`](Client::handle_server_connected),
//!   [`handle_server_connect_failed`](Client::handle_server_connect_failed),
//!   [`handle_server_bytes`](Client::handle_server_bytes),
//!   [`handle_server_closed`](Client::handle_server_closed);
//! - peer links: [`handle_dialed`](Client::handle_dialed),
//!   [`handle_dial_failed`](Client::handle_dial_failed),
//!   [`handle_accepted`](Client::handle_accepted), [`handle_link_bytes`](Client::handle_link_bytes),
//!   [`handle_link_closed`](Client::handle_link_closed);
//! - both: [`handle_written`](Client::handle_written), [`handle_timeout`](Client::handle_timeout);
//! - the user: [`send`](Client::send), [`logout`](Client::logout).
//!
//! After any input, drain [`poll_transmit`](Client::poll_transmit), then
//! [`poll_action`](Client::poll_action) (closes come after the bytes polled before them), then
//! [`poll_event`](Client::poll_event), and re-arm the timer from
//! [`poll_timeout`](Client::poll_timeout). Handling the returned deadline always makes progress;
//! calling `handle_timeout` early does nothing.

mod config;
mod files;
mod keys;
mod messaging;
mod output;
mod peer_link;
mod peers;
mod server_link;

pub use crate::delivery::Via;
pub use crate::transfer::Direction;
pub use config::ClientConfig;
pub use output::{
    Action, Destination, Event, FileError, FileEvent, FileFailure, LinkError, Route, RouteReason,
    SendError, ServerLinkError,
};

use crate::backoff::Backoff;
use crate::delivery::{Inbox, Outbox};
use crate::outbound::Outbound;
use crate::rng::SeededRng;
use crate::secure::{IdentityKey, PublicKey};
use crate::seeded_hash::{SeededMap, SeededState};
use crate::transfer::{Incoming, Outgoing};
use crate::transmit::Transmit;
use crate::wire::{Ack, MessageId, TransferId, UserName};
use peer_link::PeerLink;
use peers::{Dial, Peer};
use server_link::ServerLink;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Instant;

/// A peer link id chosen by the driver; unique among the links it has open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkId(pub u64);

pub struct Client {
    config: ClientConfig,
    /// This profile's static key: what it proves on every handshake, and what its peers seal
    /// relayed messages to.
    identity: IdentityKey,
    /// Peer keys remembered from earlier sessions, until the peer is first met in this one.
    remembered_keys: HashMap<UserName, PublicKey>,
    rng: SeededRng,
    /// This process lifetime's name in message ids (see [`crate::wire::Chat`]).
    epoch: u64,
    server: ServerLink,
    reconnect: Backoff,
    links: SeededMap<LinkId, PeerLink>,
    /// Hashed, not ordered: looked up by name on every message and acknowledgement, where a
    /// `BTreeMap`'s string comparisons were a tenth of a busy client's CPU with 1,000 peers.
    peers: SeededMap<UserName, Peer>,
    outbound: Outbound<Destination>,
    actions: VecDeque<Action>,
    events: VecDeque<Event>,
    next_message_id: u64,
    /// Acknowledgements owed, sent once the current input is handled, so a burst of messages
    /// is answered with one cumulative ack per path.
    acks_owed: Vec<(UserName, Via, Ack)>,
    /// Destinations that failed a send (slow consumer), closed once the input is handled.
    doomed: Vec<Destination>,
    outgoing: BTreeMap<TransferId, Outgoing>,
    incoming: BTreeMap<(UserName, TransferId), Incoming>,
    /// The latest `now` an input brought, for the one input that carries none
    /// (`handle_written`, which may free room for file chunks).
    last_now: Instant,
    /// No retransmission or inbox gap of any peer falls due before this: lowered whenever a
    /// message is sent or a gap opens, made exact when the timers are handled. It spares
    /// [`poll_timeout`](Client::poll_timeout), which drivers call after every input, a walk over
    /// every known peer (a tenth of a relaying client's CPU with 1,000 peers).
    peers_wake: Option<Instant>,
    /// The earliest dial to start later, as of the last input's walk over the peers
    /// (`start_due_dials`, which runs anyway).
    dials_wake: Option<Instant>,
}

impl Client {
    /// A client with the profile key `identity` and randomness from `seed`; it asks to
    /// connect to the server at once.
    pub fn new(config: ClientConfig, identity: IdentityKey, seed: [u8; 32], now: Instant) -> Self {
        let mut rng = SeededRng::from_seed(seed);
        let epoch = rng.next_u64();
        let hash = SeededState::new(rng.next_u64());
        let remembered_keys = config.peer_keys.iter().cloned().collect();
        let mut client = Client {
            identity,
            remembered_keys,
            outbound: Outbound::new(config.max_frame, config.max_pending_output),
            reconnect: Backoff::new(config.reconnect),
            config,
            rng,
            epoch,
            server: ServerLink::Connecting,
            links: SeededMap::with_hasher(hash),
            peers: SeededMap::with_hasher(hash),
            actions: VecDeque::new(),
            events: VecDeque::new(),
            next_message_id: 1,
            acks_owed: Vec::new(),
            doomed: Vec::new(),
            outgoing: BTreeMap::new(),
            incoming: BTreeMap::new(),
            last_now: now,
            peers_wake: None,
            dials_wake: None,
        };
        client.actions.push_back(Action::ConnectServer);
        client
    }

    // ---- getters ----------------------------------------------------------------------------

    pub fn user(&self) -> &UserName {
        &self.config.user
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    pub fn is_logged_in(&self) -> bool {
        self.server.is_online()
    }

    /// Logged out, kicked or refused for good.
    pub fn is_stopped(&self) -> bool {
        matches!(self.server, ServerLink::Stopped)
    }

    /// Every known user with whether the server lists them online and the route to them.
    /// Every known user, in name order.
    pub fn peers(&self) -> impl Iterator<Item = (&UserName, bool, Route)> {
        let mut peers: Vec<_> = self
            .peers
            .iter()
            .map(|(name, peer)| (name, peer.online, peer.route()))
            .collect();
        peers.sort_unstable_by(|a, b| a.0.cmp(b.0));
        peers.into_iter()
    }

    pub fn route_to(&self, peer: &UserName) -> Option<Route> {
        self.peers.get(peer).map(Peer::route)
    }

    /// Messages to `peer` not yet acknowledged.
    pub fn unacknowledged(&self, peer: &UserName) -> usize {
        self.peers.get(peer).map_or(0, |p| p.outbox.len())
    }

    /// Peer links open, in any state.
    pub fn link_count(&self) -> usize {
        self.links.len()
    }

    // ---- inputs: peer links (server link inputs live in server_link.rs) ---------------------

    /// The host wrote `bytes` of what it polled for `to`.
    pub fn handle_written(&mut self, to: Destination, bytes: usize) {
        self.outbound.written(to, bytes);
        if !self.outgoing.is_empty() {
            self.pump_files(self.last_now);
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.server_timeout(now);
        self.links_timeout(now);
        self.peers_timeout(now);
        self.files_timeout(now);
        self.finish(now);
    }

    // ---- mutators ---------------------------------------------------------------------------

    /// Queues a chat message; it goes direct if a channel is up, through the server otherwise,
    /// and as soon as either exists if neither does now.
    pub fn send(
        &mut self,
        to: &UserName,
        text: String,
        now: Instant,
    ) -> Result<MessageId, SendError> {
        if self.is_stopped() {
            return Err(SendError::Stopped);
        }
        if to == &self.config.user {
            return Err(SendError::ToSelf);
        }
        if text.len() > self.config.max_text_len {
            return Err(SendError::TextTooLong {
                len: text.len(),
                max: self.config.max_text_len,
            });
        }
        let max_outbox = self.config.max_outbox;
        let peer = self.peer_mut(to, now);
        if peer.outbox.len() >= max_outbox {
            return Err(SendError::Backlog);
        }
        let id = MessageId(self.next_message_id);
        self.next_message_id += 1;
        self.peer_mut(to, now).outbox.push(id, text);
        self.flush(to, now);
        self.finish(now);
        Ok(id)
    }

    /// Logs out: tells the server and every peer, closes everything, stops reconnecting.
    pub fn logout(&mut self, now: Instant) {
        self.stop_server(true, now);
        let links: Vec<LinkId> = self.links.keys().copied().collect();
        for link in links {
            self.say_goodbye(link, now);
        }
        self.events.push_back(Event::LoggedOut);
        self.finish(now);
    }

    // ---- outputs ----------------------------------------------------------------------------

    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit<Destination>> {
        self.outbound.poll_transmit()
    }

    #[must_use]
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When to call [`handle_timeout`](Client::handle_timeout) next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.server_deadline(),
            self.links_deadline(),
            self.peers_wake,
            self.dials_wake,
            self.files_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    // ---- internals --------------------------------------------------------------------------

    fn peer_mut(&mut self, name: &UserName, now: Instant) -> &mut Peer {
        let (epoch, redial, max_held) = (self.epoch, self.config.redial, self.config.max_held);
        let remembered = &mut self.remembered_keys;
        self.peers.entry(name.clone()).or_insert_with(|| Peer {
            online: false,
            key: remembered.remove(name),
            intro: None,
            direct: None,
            dial: Dial::Idle { next_at: now },
            redial: Backoff::new(redial),
            outbox: Outbox::new(epoch),
            inbox: Inbox::new(max_held),
            reported: crate::client::Route::Relay,
        })
    }

    /// Reports the route to `name` if it changed since last reported.
    fn update_route(&mut self, name: &UserName, reason: RouteReason) {
        let Some(peer) = self.peers.get_mut(name) else {
            return;
        };
        let route = peer.route();
        if route != peer.reported {
            peer.reported = route;
            self.events.push_back(Event::Route {
                peer: name.clone(),
                route,
                reason,
            });
        }
    }

    /// Work deferred to the end of every input: owed acks, slow consumers, due dials.
    fn finish(&mut self, now: Instant) {
        self.last_now = self.last_now.max(now);
        self.send_owed_acks(now);
        while let Some(destination) = self.doomed.pop() {
            match destination {
                Destination::Server => self.server_lost(ServerLinkError::SlowConsumer, true, now),
                Destination::Peer(link) => self.drop_link(link, LinkError::SlowConsumer, true, now),
            }
            self.send_owed_acks(now);
        }
        self.start_due_dials(now);
        self.pump_files(now);
    }
}
