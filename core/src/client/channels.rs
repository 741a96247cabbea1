//! Bounded direct channels: how many a client holds, which ones it opens, and when it closes
//! them.
//!
//! While the online peers fit under [`max_direct_channels`](super::ClientConfig), every pair
//! has a channel and the smaller name of a pair dials, as on a small LAN. Beyond the cap a
//! channel is wanted only for a peer talked to within `channel_idle` ([`Peer::last_used`]): a
//! message or file queued for it, something received from it directly, the conversation
//! opened. Whoever wants a channel dials, whichever name is smaller (within the cap the larger
//! name a moment later: its peer may be beyond its own cap and not dial); when both do at
//! once the tie-break in `link_up` keeps the same one of the two on both sides. A wanted
//! channel that carried nothing but heartbeats for `channel_idle` closes in order
//! ([`PeerFrame::Closing`]), so the peer neither counts it as lost nor dials it again before
//! it has something to say, even within its own cap ([`Peer::closed_in_order`]).
//!
//! Every socket counts against the cap: links in any state, dialled or accepted, and dials the
//! host is still connecting. A new channel over the cap takes the room of the least recently
//! used channel that is not busy. With every one busy (messages sent over it unacknowledged, a
//! file going), a dial waits and an accepted link is refused at once: the relay carries the
//! traffic meanwhile and the dialler tries again after its backoff. Refusing rather than
//! evicting a busy channel keeps what is in flight where it is; evicting it would send its
//! unacknowledged messages and file data round through the relay only to make room for
//! someone else, and two clients at the cap could take each other's busy channels in turn.
//!
//! Nothing is lost when a channel closes: `drop_link` moves what went over it unacknowledged
//! to the relay, as for any other route change.

use super::output::LinkError;
use super::peer_link::Setup;
use super::peers::{Dial, Peer};
use super::{Client, LinkId};
use crate::delivery::Via;
use crate::wire::{ClosingReason, PeerFrame, UserName};
use std::time::{Duration, Instant};

impl Client {
    /// The user opened the conversation with `peer`: a direct channel is wanted, so what they
    /// write next goes direct, and the peer is watched (on a large server that is what gets
    /// it introduced, and so dialled, while the demand lasts).
    pub fn open_conversation(&mut self, peer: &UserName, now: Instant) {
        if peer != &self.config.user {
            self.note_interest(peer);
            self.peer_mut(peer, now);
            self.mark_used(peer, now);
        }
        self.finish(now);
    }

    /// More peers online than the cap: channels open on demand and close when idle.
    pub(super) fn bounded(&self) -> bool {
        self.online_peers > self.config.max_direct_channels
    }

    /// Sockets held for peers: links in any state, and dials the host is connecting.
    pub(super) fn channels_held(&self) -> usize {
        self.links.len() + self.dials_in_flight
    }

    /// Whether `peer` was talked to recently enough to want a channel.
    pub(super) fn wants_channel(&self, peer: &Peer, now: Instant) -> bool {
        peer.last_used
            .is_some_and(|at| now < at + self.config.channel_idle)
    }

    /// `name` was talked to now. A peer newly wanted may be dialled at once, even if an
    /// orderly close or an old backoff held its dial back; within the cap the larger name
    /// waits a first redial interval for the smaller one's dial (see `dial_due`).
    pub(super) fn mark_used(&mut self, name: &UserName, now: Instant) {
        let wait = if !self.bounded() && &self.config.user > name {
            self.config.redial.first
        } else {
            Duration::ZERO
        };
        let wanted = self
            .peers
            .get(name)
            .is_some_and(|peer| self.wants_channel(peer, now));
        let Some(peer) = self.peers.get_mut(name) else {
            return;
        };
        peer.last_used = Some(peer.last_used.map_or(now, |at| at.max(now)));
        peer.closed_in_order = false;
        if !wanted {
            if let Dial::Idle { .. } = peer.dial {
                let next_at = now + wait;
                peer.set_dial(Dial::Idle { next_at }, &mut self.dials_in_flight);
            }
            self.wanted.insert(name.clone());
        }
    }

    /// Forgets the peers no longer wanted, so the dial walk stays short.
    pub(super) fn prune_wanted(&mut self, now: Instant) {
        let (peers, idle) = (&self.peers, self.config.channel_idle);
        self.wanted.retain(|name| {
            peers
                .get(name)
                .and_then(|p| p.last_used)
                .is_some_and(|at| now < at + idle)
        });
    }

    /// Whether closing the channel to `name` now would move anything to the relay: messages
    /// sent over it and not yet acknowledged, or a file transfer with that peer.
    fn is_busy(&self, name: &UserName) -> bool {
        let Some(peer) = self.peers.get(name) else {
            return false;
        };
        peer.outbox
            .pending()
            .any(|p| p.sent.is_some_and(|s| s.path == Via::Direct))
            || self
                .outgoing
                .values()
                .any(|t| &t.to == name && t.is_active())
            || self
                .incoming
                .iter()
                .any(|((from, _), t)| from == name && t.is_active())
    }

    /// The channels that are up and not busy, each with when it was last used (or opened,
    /// if later: a channel just accepted has not carried anything yet).
    fn quiet_channels(&self) -> impl Iterator<Item = (LinkId, Instant)> + '_ {
        self.links.iter().filter_map(|(id, link)| {
            let Some(Setup::Up { peer, .. }) = &link.setup else {
                return None;
            };
            if self.is_busy(peer) {
                return None;
            }
            let used = self.peers.get(peer).and_then(|p| p.last_used);
            Some((*id, used.map_or(link.opened, |at| at.max(link.opened))))
        })
    }

    /// Closes the least recently used channel that is not busy, to make room for another;
    /// `false` when there is none to close. Only beyond the cap: within it every online
    /// peer has its channel, and a link over the cap is a passing duplicate, refused.
    pub(super) fn make_room(&mut self, now: Instant) -> bool {
        if !self.bounded() {
            return false;
        }
        let victim = self
            .quiet_channels()
            .min_by_key(|(id, used)| (*used, *id))
            .map(|(id, _)| id);
        match victim {
            Some(link) => {
                self.close_in_order(link, ClosingReason::Evicted, now);
                true
            }
            None => false,
        }
    }

    /// When the next quiet channel falls idle. Busy ones are left out: what ends their
    /// business (an acknowledgement, a transfer's end) is an input, after which this is
    /// asked again.
    pub(super) fn idle_deadline(&self) -> Option<Instant> {
        if !self.bounded() {
            return None;
        }
        let idle = self.config.channel_idle;
        self.quiet_channels().map(|(_, used)| used + idle).min()
    }

    /// Closes, in order, every quiet channel idle for `channel_idle`.
    pub(super) fn close_idle_channels(&mut self, now: Instant) {
        if !self.bounded() {
            return;
        }
        let idle = self.config.channel_idle;
        let due: Vec<LinkId> = self
            .quiet_channels()
            .filter(|(_, used)| *used + idle <= now)
            .map(|(id, _)| id)
            .collect();
        for link in due {
            self.close_in_order(link, ClosingReason::Idle, now);
        }
    }

    /// Ends a channel nobody needs now, telling the peer why: it drops the channel without
    /// counting it as a failure and dials again only when it has something to send.
    pub(super) fn close_in_order(&mut self, link: LinkId, reason: ClosingReason, now: Instant) {
        self.send_link(link, &PeerFrame::Closing(reason), now);
        self.drop_link(link, LinkError::Orderly(reason), true, now);
    }
}
