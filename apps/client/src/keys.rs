//! What this client knows of keys, for the user: its own, the peers' it has met (kept in the
//! profile so a change is noticed across restarts), and the fingerprints `verify` shows.

use crate::profile::Profile;
use breeze_core::client::Event;
use breeze_core::secure::{pair_fingerprint, Fingerprint, PublicKey};
use breeze_core::wire::UserName;
use std::collections::HashMap;

/// The keys of one profile, kept up to date from the client's events.
pub struct KeyBook {
    profile: Profile,
    mine: PublicKey,
    peers: HashMap<UserName, PublicKey>,
}

impl KeyBook {
    /// The book of `profile`, whose own key is `mine`, with the peers it remembers.
    pub fn new(profile: Profile, mine: PublicKey, peers: &[(UserName, PublicKey)]) -> Self {
        KeyBook {
            profile,
            mine,
            peers: peers.iter().cloned().collect(),
        }
    }

    /// Notes what `event` says about keys, keeping the profile on disk in step: the server
    /// key met at first contact is pinned, a peer's new key remembered. The error is a warning
    /// for the user (the client goes on; only the memory of the key is lost).
    pub fn observe(&mut self, event: &Event) -> Result<(), String> {
        match event {
            Event::ServerKeyLearned { key } => self.profile.pin_server(key),
            Event::Enrolled { user } => self.profile.mark_enrolled(user),
            Event::PeerKeyLearned { user, key } | Event::PeerKeyChanged { user, new: key, .. } => {
                self.peers.insert(user.clone(), *key);
                self.profile.remember_peer(user, key)
            }
            _ => Ok(()),
        }
    }

    /// This profile's own key.
    pub fn mine(&self) -> &PublicKey {
        &self.mine
    }

    /// The string `user` and this user both see for their pair, if `user`'s key is known.
    pub fn fingerprint_with(&self, user: &UserName) -> Option<Fingerprint> {
        let theirs = self.peers.get(user)?;
        Some(pair_fingerprint(&self.mine, theirs))
    }

    /// What to tell the user when `user` has no key here yet.
    pub fn unknown(user: &UserName) -> String {
        format!("no key known for {user} yet: it is learned when {user} is online or writes")
    }
}

/// What to tell the user when the server presented a key other than the trusted one.
pub fn server_key_changed(expected: &Fingerprint, presented: &PublicKey) -> String {
    let presented = presented.fingerprint();
    format!(
        "the server's key changed: this profile trusts {expected}, the server presented \
         {presented}. Nothing was sent. Someone may be impersonating the server; if its key \
         was replaced on purpose (its operator can tell with `breeze-server key`), trust the \
         new one by starting again with --server-key {presented}"
    )
}
