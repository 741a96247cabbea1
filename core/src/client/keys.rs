//! The keys of other users as this client knows them: vouched for by the server and
//! remembered across sessions.

use super::output::Event;
use super::Client;
use crate::secure::PublicKey;
use crate::wire::UserName;
use std::time::Instant;

impl Client {
    /// The server vouched for `key` as `name`'s (an introduction, a relayed message): note it,
    /// and tell the user when it is new or differs from the one known.
    pub(super) fn vouched_key(&mut self, name: &UserName, key: PublicKey, now: Instant) {
        let peer = self.peer_mut(name, now);
        match peer.key {
            Some(known) if known == key => {}
            Some(old) => {
                peer.key = Some(key);
                self.events.push_back(Event::PeerKeyChanged {
                    user: name.clone(),
                    old,
                    new: key,
                });
            }
            None => {
                peer.key = Some(key);
                self.events.push_back(Event::PeerKeyLearned {
                    user: name.clone(),
                    key,
                });
            }
        }
    }

    /// This profile's public key.
    pub fn public_key(&self) -> PublicKey {
        self.identity.public()
    }

    /// The key this client holds for `name`, if any: what `verify` compares.
    pub fn peer_key(&self, name: &UserName) -> Option<PublicKey> {
        self.peers
            .get(name)?
            .key
            .or_else(|| self.remembered_keys.get(name).copied())
    }
}
