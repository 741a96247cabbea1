//! What the client knows about each other user: presence, introduction, route, messages.

use super::output::Route;
use super::LinkId;
use crate::backoff::Backoff;
use crate::delivery::{Inbox, Outbox};
use crate::secure::{PairKey, PublicKey};
use crate::wire::PeerIntro;
use std::time::Instant;

/// The direct-channel attempt towards one peer (only the dialling side of a pair uses it).
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
    pub dial: Dial,
    pub redial: Backoff,
    pub outbox: Outbox,
    pub inbox: Inbox,
    /// The route last reported to the user.
    pub reported: Route,
}

impl Peer {
    pub fn route(&self) -> Route {
        match (self.direct, self.dial) {
            (Some(_), _) => Route::Direct,
            (None, Dial::InFlight | Dial::Handshaking(_)) => Route::Connecting,
            (None, Dial::Idle { .. }) => Route::Relay,
        }
    }
}
