//! The keys of other users as this client knows them: vouched for by the server and
//! remembered across sessions.

use super::output::Event;
use super::Client;
use crate::secure::{PairKey, PublicKey};
use crate::wire::{ClientFrame, KeyLookup, Undeliverable, UserName};
use std::time::Instant;

impl Client {
    /// The server vouched for `key` as `name`'s (an introduction, a relayed message): note it,
    /// and tell the user when it is new or differs from the one known.
    pub(super) fn vouched_key(&mut self, name: &UserName, key: PublicKey, now: Instant) {
        let peer = self.peer_mut(name, now);
        peer.vouched = true;
        peer.key_requested = false;
        if peer.key != Some(key) {
            peer.pair = None;
        }
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

    /// The end-to-end key shared with `name`, once the server vouched for `name`'s key in this
    /// session (a key remembered from an earlier one may be stale: what is sealed to a key
    /// its owner no longer holds is lost). Asks the server for the key when it is missing.
    pub(super) fn pair_key(&mut self, name: &UserName, now: Instant) -> Option<PairKey> {
        let identity = &self.identity;
        let peer = self.peers.get_mut(name)?;
        if !peer.vouched {
            if !peer.key_requested && self.server.is_online() {
                peer.key_requested = true;
                let request = ClientFrame::KeyRequest { user: name.clone() };
                self.send_server(&request, now);
            }
            return None;
        }
        if peer.pair.is_none() {
            peer.pair = PairKey::new(identity, &peer.key?);
        }
        peer.pair.clone()
    }

    /// The server's answer to a key request: seal and send what waited for it, or give up on
    /// it when `name` has no key (no such account).
    pub(super) fn on_user_key(&mut self, name: UserName, key: KeyLookup, now: Instant) {
        match key {
            KeyLookup::Key(key) => {
                self.vouched_key(&name, key, now);
                self.flush(&name, now);
                self.offer_waiting_files(&name, now);
                self.flush_groups(now);
            }
            KeyLookup::NotYet => {
                // Asked again at the next login; the introduction, when `name` comes online,
                // vouches for its key and sends what waited.
                self.events.push_back(Event::AwaitingKey { user: name });
            }
            KeyLookup::NoSuchUser => {
                let Some(peer) = self.peers.get_mut(&name) else {
                    return;
                };
                peer.key_requested = false;
                let epoch = self.epoch;
                let waiting: Vec<u64> = peer.outbox.unsent().map(|p| p.seq).collect();
                for seq in waiting {
                    if let Some(id) = peer.outbox.give_up(epoch, seq) {
                        self.events.push_back(Event::Undeliverable {
                            to: name.clone(),
                            id,
                            reason: Undeliverable::NoSuchUser,
                        });
                    }
                }
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
