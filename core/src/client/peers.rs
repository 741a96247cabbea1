//! What the client knows about each other user: presence, introduction, route, messages.

use super::output::{Opening, Route};
use super::LinkId;
use crate::backoff::Backoff;
use crate::delivery::{Inbox, Outbox};
use crate::secure::{PairKey, PublicKey};
use crate::wire::PeerIntro;
use std::time::Instant;

/// The direct-channel attempt towards one peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Dial {
    /// Not dialling; dial at the instant given, if the peer should be dialled at all.
    Idle { next_at: Instant },
    /// The host is connecting.
    InFlight,
    /// Connected, handshaking on this link.
    Handshaking(LinkId),
}

#[derive(Debug)]
pub(super) struct Peer {
    /// Online according to the server's last word.
    pub online: bool,
    /// The peer's key as last vouched for by the server (an introduction, a relayed message)
    /// or remembered from an earlier session.
    pub key: Option<PublicKey>,
    /// `key` was vouched for by the server in this session, so it is safe to seal to.
    pub vouched: bool,
    /// A key request to the server is out (relayed messages wait for its answer).
    pub key_requested: bool,
    /// The end-to-end key shared with the holder of `key`, made when first needed.
    pub pair: Option<PairKey>,
    /// The server's latest introduction: where to dial and which key to expect.
    pub intro: Option<PeerIntro>,
    /// The authenticated direct channel, if any.
    pub direct: Option<LinkId>,
    /// Change only through [`Peer::set_dial`], which keeps the count of dials in flight.
    pub dial: Dial,
    /// Why the latest dial started, for the route event once its channel is up.
    pub opening: Opening,
    pub redial: Backoff,
    /// The last time this peer was talked to: a frame other than a heartbeat either way, a
    /// message queued, something received through the relay, the conversation opened.
    /// Orders channels for eviction (least recently used first), closes idle ones, and says
    /// whether a channel is still wanted; `None` once a channel was closed in order.
    pub last_used: Option<Instant>,
    /// The last channel was closed in order (idle, or to make room) by either side: not
    /// dialled again, even within the cap, until the peer is talked to or comes back online.
    /// Else a client within its cap would redial, every idle period, a peer beyond its own
    /// that keeps closing the channel.
    pub closed_in_order: bool,
    pub outbox: Outbox,
    pub inbox: Inbox,
    /// The route last reported to the user.
    pub reported: Route,
}

impl Peer {
    /// Moves the dial on, counting dials in flight (the host holds a socket for each, so they
    /// count against the channel cap).
    pub fn set_dial(&mut self, dial: Dial, in_flight: &mut usize) {
        let was = self.dial == Dial::InFlight;
        let is = dial == Dial::InFlight;
        self.dial = dial;
        match (was, is) {
            (false, true) => *in_flight += 1,
            (true, false) => *in_flight = in_flight.saturating_sub(1),
            _ => {}
        }
    }

    pub fn route(&self) -> Route {
        match (self.direct, self.dial) {
            (Some(_), _) => Route::Direct,
            (None, Dial::InFlight | Dial::Handshaking(_)) => Route::Connecting,
            (None, Dial::Idle { .. }) => Route::Relay,
        }
    }
}
