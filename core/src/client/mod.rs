//! The client state machine: one server link, many peer links, one outbox per peer.
//!
//! How to drive it, and the ordering rules every host follows, are on [`Client`].

mod channels;
mod config;
mod files;
mod groups;
mod keys;
mod messaging;
mod output;
mod peer_link;
mod peers;
mod server_link;
mod watching;

pub use crate::delivery::Via;
pub use crate::transfer::Direction;
pub use config::{ClientConfig, MIN_FILE_WINDOW};
pub use groups::GroupEvent;
pub use output::{
    Action, Destination, Event, FileError, FileEvent, FileFailure, LinkError, Opening, Route,
    RouteReason, SendError, ServerLinkError,
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
use groups::ClientGroups;
use peer_link::PeerLink;
use peers::{Dial, Peer};
use server_link::ServerLink;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::time::Instant;

/// A peer link id chosen by the driver; unique among the links it has open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkId(pub u64);

/// One user's side of Breeze: login and presence over the server link, chat and files over
/// direct channels or the relay, exactly once and in order per peer.
///
/// # How to drive me
///
/// The host owns the sockets, the clock and the disk; the core owns every protocol decision.
/// It listens on the configured P2P port (unless direct channels are off), picks a [`LinkId`]
/// for every peer connection, dialled or accepted, and passes `now` to every input. Construct
/// with [`Client::new`], which already asks for [`Action::ConnectServer`].
///
/// **Getters** never change state: [`user`](Client::user), [`config`](Client::config),
/// [`is_logged_in`](Client::is_logged_in), [`is_stopped`](Client::is_stopped),
/// [`peers`](Client::peers), [`route_to`](Client::route_to),
/// [`unacknowledged`](Client::unacknowledged), [`link_count`](Client::link_count),
/// [`heartbeats_sent`](Client::heartbeats_sent),
/// [`public_key`](Client::public_key), [`peer_key`](Client::peer_key).
///
/// **`handle_*` inputs**, what the host saw happen:
/// - the server link: [`handle_server_connected`](Client::handle_server_connected),
///   [`handle_server_connect_failed`](Client::handle_server_connect_failed),
///   [`handle_server_bytes`](Client::handle_server_bytes) (or
///   [`handle_server_buffer`](Client::handle_server_buffer) to hand over the read buffer),
///   [`handle_server_closed`](Client::handle_server_closed);
/// - peer links: [`handle_dialed`](Client::handle_dialed),
///   [`handle_dial_failed`](Client::handle_dial_failed),
///   [`handle_accepted`](Client::handle_accepted),
///   [`handle_link_bytes`](Client::handle_link_bytes) (or
///   [`handle_link_buffer`](Client::handle_link_buffer)),
///   [`handle_link_closed`](Client::handle_link_closed);
/// - both: [`handle_written`](Client::handle_written), [`handle_timeout`](Client::handle_timeout);
/// - the disk, answering file actions: [`handle_file_read`](Client::handle_file_read) (or
///   [`handle_file_payload`](Client::handle_file_payload) with a file span),
///   [`handle_file_read_failed`](Client::handle_file_read_failed),
///   [`handle_file_written`](Client::handle_file_written),
///   [`handle_file_write_failed`](Client::handle_file_write_failed),
///   [`handle_file_verified`](Client::handle_file_verified).
///
/// **Mutators**, what the user or the host decides: [`send`](Client::send),
/// [`open_conversation`](Client::open_conversation),
/// [`logout`](Client::logout), [`reconnect`](Client::reconnect),
/// [`set_direct_channels`](Client::set_direct_channels), [`offer_file`](Client::offer_file),
/// [`accept_file`](Client::accept_file), [`decline_file`](Client::decline_file),
/// [`cancel_file`](Client::cancel_file). They are inputs too: drain after them.
///
/// **`poll_*` outputs**: [`poll_transmit`](Client::poll_transmit) (bytes to write),
/// [`poll_action`](Client::poll_action) (IO to perform), [`poll_event`](Client::poll_event)
/// (what to show), [`poll_timeout`](Client::poll_timeout) (when to call `handle_timeout`).
///
/// # Ordering rules
///
/// These hold for [`Server`](crate::Server) too; other docs point here.
/// 1. After any input or mutator, drain `poll_transmit` until it is empty, then take one
///    `poll_action`. Answering an action inline (a connect that succeeds at once, a read from
///    memory) is a new input: go back to `poll_transmit` before the next action. Stop when
///    both are empty.
/// 2. Write each destination's transmits in the order polled. A close action
///    ([`Action::CloseServer`], [`Action::CloseLink`]) comes after the transmits polled before
///    it, which are its last words: write them, then close.
/// 3. Then drain `poll_event`. Events only report; the protocol never waits for the host to
///    read them. Messages from one sender come in the order sent, each once.
/// 4. Then re-arm the timer from `poll_timeout` (see there for a host that keeps one timer).
///
/// Every `ConnectServer` and `Dial` is answered by exactly one success or failure input, in
/// bounded time; file actions by their `handle_file_*` answer, in the order asked.
///
/// # A chat-only host
///
/// With [`ClientConfig::direct_channels`] off the core never asks to dial and closes accepted
/// links at once, so the host needs no listener and no dialling; the peers it chats with
/// relay through the server. File actions only follow [`offer_file`](Client::offer_file) or
/// [`accept_file`](Client::accept_file), so a host that calls neither ignores
/// [`Event::File`] and never sees a file action; and a host that never hands the core file
/// spans only ever gets bytes to write
/// ([`Transmit::unwrap_bytes`](crate::Transmit::unwrap_bytes)).
///
/// The core never reads a clock, touches a socket or a file, or draws randomness other than
/// from the seed given to [`Client::new`]; it encrypts every link itself. A misbehaving peer
/// closes only its own link.
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
    groups: ClientGroups,
    /// Users the user cares about, watched on every server connection (see `watching.rs`).
    interest: HashSet<UserName>,
    /// Interest not yet sent to the server.
    watch_queue: Vec<UserName>,
    /// Peers the server lists online: more than `max_direct_channels` means channels open
    /// on demand only (`channels.rs`).
    online_peers: usize,
    /// Peers in `Dial::InFlight`: the host holds a connecting socket for each.
    dials_in_flight: usize,
    /// Peers talked to lately, the only ones dialled once channels open on demand: walking
    /// these instead of every known peer after each input keeps a client on a LAN of
    /// thousands as cheap as on a small one.
    wanted: BTreeSet<UserName>,
    /// Heartbeats sent on peer links, for figures (`heartbeats_sent`).
    heartbeats_sent: u64,
}

impl Client {
    /// A client with the profile key `identity`, which it proves on every handshake. `seed`
    /// is the only source of randomness (handshake keys, backoff jitter, message epochs): give
    /// each process a fresh one. It asks to connect to the server at once.
    pub fn new(config: ClientConfig, identity: IdentityKey, seed: [u8; 32], now: Instant) -> Self {
        let mut rng = SeededRng::from_seed(seed);
        let epoch = rng.next_u64();
        let hash = SeededState::new(rng.next_u64());
        let remembered_keys = config.peer_keys.iter().cloned().collect();
        let next_message_id = config.first_message_id.max(1);
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
            next_message_id,
            acks_owed: Vec::new(),
            doomed: Vec::new(),
            outgoing: BTreeMap::new(),
            incoming: BTreeMap::new(),
            last_now: now,
            peers_wake: None,
            dials_wake: None,
            groups: ClientGroups::default(),
            interest: HashSet::new(),
            watch_queue: Vec::new(),
            online_peers: 0,
            dials_in_flight: 0,
            wanted: BTreeSet::new(),
            heartbeats_sent: 0,
        };
        for (user, _) in &client.config.peer_keys.clone() {
            client.note_interest(user);
        }
        client.actions.push_back(Action::ConnectServer);
        client
    }

    // ---- getters ----------------------------------------------------------------------------

    /// Who this client logs in as.
    pub fn user(&self) -> &UserName {
        &self.config.user
    }

    /// The configuration in force (direct channels may have been switched since `new`).
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// The server accepted the login and the link is up. The online list may still be on its
    /// way: [`Event::PresenceComplete`] says when it is all there.
    pub fn is_logged_in(&self) -> bool {
        self.server.is_online()
    }

    /// Logged out, kicked or refused for good.
    pub fn is_stopped(&self) -> bool {
        matches!(self.server, ServerLink::Stopped)
    }

    /// Every known user, in name order, with whether the server lists them online and the
    /// route messages to them take now.
    pub fn peers(&self) -> impl Iterator<Item = (&UserName, bool, Route)> {
        let mut peers: Vec<_> = self
            .peers
            .iter()
            .map(|(name, peer)| (name, peer.online, peer.route()))
            .collect();
        peers.sort_unstable_by(|a, b| a.0.cmp(b.0));
        peers.into_iter()
    }

    /// The route messages to `peer` take now; `None` for a user never heard of.
    pub fn route_to(&self, peer: &UserName) -> Option<Route> {
        self.peers.get(peer).map(Peer::route)
    }

    /// Messages to `peer` not yet acknowledged.
    pub fn unacknowledged(&self, peer: &UserName) -> usize {
        self.peers.get(peer).map_or(0, |p| p.outbox.len())
    }

    /// Peer links open, in any state: never more than
    /// [`ClientConfig::max_direct_channels`].
    pub fn link_count(&self) -> usize {
        self.links.len()
    }

    /// Heartbeats sent on peer links so far (not counting the server link's).
    pub fn heartbeats_sent(&self) -> u64 {
        self.heartbeats_sent
    }

    // ---- inputs: peer links (server link inputs live in server_link.rs) ---------------------

    /// The host wrote `bytes` of what it polled for `to`: frees that much of the output bound,
    /// which may let file chunks waiting for room go out.
    pub fn handle_written(&mut self, to: Destination, bytes: usize) {
        self.outbound.written(to, bytes);
        if !self.outgoing.is_empty() {
            self.pump_files(self.last_now);
        }
    }

    /// The deadline from [`poll_timeout`](Client::poll_timeout) has come: heartbeats,
    /// retransmissions, redials, reconnects and file retries that are due happen. Called
    /// early, nothing that is not due happens.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.server_timeout(now);
        self.links_timeout(now);
        self.close_idle_channels(now);
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
        if to == &self.config.user {
            return Err(SendError::ToSelf);
        }
        self.check_sendable(&text)?;
        self.note_interest(to);
        let max_outbox = self.config.max_outbox;
        let peer = self.peer_mut(to, now);
        if peer.outbox.len() >= max_outbox {
            return Err(SendError::Backlog);
        }
        let id = MessageId(self.next_message_id);
        self.next_message_id += 1;
        self.peer_mut(to, now).outbox.push(id, text);
        self.mark_used(to, now);
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

    /// The next bytes to write, to the server or one peer link (see the ordering rules on
    /// [`Client`]).
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit<Destination>> {
        self.outbound.poll_transmit()
    }

    /// The next IO for the host to perform: connect, dial, close, read or write a file.
    #[must_use]
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The next thing to tell the user.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When to call [`handle_timeout`](Client::handle_timeout) next; `None`: not before the
    /// next input.
    ///
    /// The deadline moves, earlier or later, after nearly every input (a frame sent pushes a
    /// heartbeat back). A host may keep one timer and move it only when the deadline becomes
    /// earlier, provided that whenever the timer fires it calls `handle_timeout` and then
    /// re-arms from this, whatever it returns: an early `handle_timeout` does nothing that is
    /// not due, and a deadline that moved later is picked up then, so none is missed. The
    /// deadline may also be earlier than anything due (it is kept cheap to compute), which
    /// costs one early `handle_timeout`. Handling the returned deadline always does what was
    /// due, so the next deadline is later: no busy loop.
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

    /// Whether a message of `text` may be sent at all: not after a stop, not over the limit.
    fn check_sendable(&self, text: &str) -> Result<(), SendError> {
        if self.is_stopped() {
            return Err(SendError::Stopped);
        }
        if text.len() > self.config.max_text_len {
            return Err(SendError::TextTooLong {
                len: text.len(),
                max: self.config.max_text_len,
            });
        }
        Ok(())
    }

    fn peer_mut(&mut self, name: &UserName, now: Instant) -> &mut Peer {
        let (epoch, redial, max_held) = (self.epoch, self.config.redial, self.config.max_held);
        let remembered = &mut self.remembered_keys;
        self.peers.entry(name.clone()).or_insert_with(|| Peer {
            online: false,
            key: remembered.remove(name),
            vouched: false,
            key_requested: false,
            pair: None,
            intro: None,
            direct: None,
            dial: Dial::Idle { next_at: now },
            opening: Opening::WithinCap,
            redial: Backoff::new(redial),
            last_used: None,
            closed_in_order: false,
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
        self.send_group_acks(now);
        while let Some(destination) = self.doomed.pop() {
            match destination {
                Destination::Server => self.server_lost(ServerLinkError::SlowConsumer, true, now),
                Destination::Peer(link) => self.drop_link(link, LinkError::SlowConsumer, true, now),
            }
            self.send_owed_acks(now);
        }
        self.send_watches(now);
        self.start_due_dials(now);
        self.pump_files(now);
    }
}
