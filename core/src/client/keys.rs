//! The keys of other users as this client knows them: vouched for by the server, remembered
//! across sessions, and turned into end-to-end pair keys for what goes through the relay.

use super::output::Event;
use super::Client;
use crate::secure::{PairKey, PublicKey};
use crate::wire::UserName;
use std::time::Instant;

impl Client {
    /// The server vouched for `key` as `name`'s (an introduction, a relayed message): note it,
    /// and tell the user when it is new or differs from the one known.
    pub(super) fn vouched_key(&mut self, name: &UserName, key: PublicKey, now: Instant) {
        let peer = self.peer_mut(name, now);
        match peer.key {
            Some(known) if known == key => return,
            Some(old) => {
                peer.key = Some(key);
                peer.pair = None;
                self.events.push_back(Event::PeerKeyChanged {
                    user: name.clone(),
                    old,
                    new: key,
                });
            }
            None => {
                peer.key = Some(key);
                peer.pair = None;
                self.events.push_back(Event::PeerKeyLearned {
                    user: name.clone(),
                    key,
                });
            }
        }
    }

    /// The end-to-end key shared with `name`, if its key is known (and usable).
    pub(super) fn pair_key(&mut self, name: &UserName) -> Option<&PairKey> {
        let identity = &self.identity;
        let peer = self.peers.get_mut(name)?;
        if peer.pair.is_none() {
            peer.pair = PairKey::new(identity, &peer.key?);
        }
        peer.pair.as_ref()
    }

    /// This profile's public key.
    pub fn public_key(&self) -> PublicKey {
        self.identity.public()
    }

    /// The key this client holds for `name`, if any: what `verify` compares.
    pub fn peer_key(&self, name: &UserName) -> Option<PublicKey> {
        self.peers.get(name)?.key.or_else(|| self.remembered_keys.get(name).copied())
    }
}
