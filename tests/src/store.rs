//! The server host's persistent side in memory: accounts, their keys and offline messages. It
//! outlives server crashes, like the database file of the real server. Offline messages are
//! sealed by their senders: the store never holds a text.

use breeze_core::secure::PublicKey;
use breeze_core::server::OfflineChat;
use breeze_core::wire::{KeyLookup, LoginRefusal, Undeliverable, UserName};
use std::collections::{HashMap, HashSet};

#[derive(Debug, Default, Clone)]
pub struct MemoryStore {
    accounts: HashMap<UserName, String>,
    /// The key each account logged in with last.
    keys: HashMap<UserName, PublicKey>,
    /// Every key a password login bound: enrolled for key logins.
    enrolled: HashSet<(UserName, PublicKey)>,
    /// Keys the owner revoked.
    revoked: HashSet<(UserName, PublicKey)>,
    /// (recipient, message), in arrival order.
    offline: Vec<(UserName, OfflineChat)>,
    /// Every message deleted after an acknowledgement, for tests.
    pub deleted: usize,
    /// Groups and their stored messages.
    pub groups: breeze_core::server::MemoryGroupStore,
}

impl MemoryStore {
    pub fn has_account(&self, user: &UserName) -> bool {
        self.accounts.contains_key(user)
    }

    pub fn add_account(&mut self, user: &UserName, password: &str) {
        self.accounts.insert(user.clone(), password.to_string());
    }

    /// Checks a login and, when it succeeds, binds `key` to the account.
    pub fn check(
        &mut self,
        user: &UserName,
        password: &str,
        register: bool,
        key: PublicKey,
    ) -> Result<(), LoginRefusal> {
        let verdict = match self.accounts.get(user) {
            Some(stored) if stored == password && !register => Ok(()),
            Some(_) if register => Err(LoginRefusal::NameTaken),
            None if register => {
                self.add_account(user, password);
                Ok(())
            }
            _ => Err(LoginRefusal::BadCredentials),
        };
        let entry = (user.clone(), key);
        if verdict.is_ok() && self.revoked.contains(&entry) {
            return Err(LoginRefusal::KeyRevoked);
        }
        if verdict.is_ok() {
            self.keys.insert(user.clone(), key);
            self.enrolled.insert(entry);
        }
        verdict
    }

    /// Checks a key login: `key` must be enrolled for `user` and not revoked.
    pub fn check_key(&mut self, user: &UserName, key: PublicKey) -> Result<(), LoginRefusal> {
        let entry = (user.clone(), key);
        if self.revoked.contains(&entry) {
            Err(LoginRefusal::KeyRevoked)
        } else if self.enrolled.contains(&entry) {
            self.keys.insert(user.clone(), key);
            Ok(())
        } else {
            Err(LoginRefusal::KeyNotEnrolled)
        }
    }

    /// The owner revokes `key` for `user`: never handed out again, refused at its next login.
    pub fn revoke(&mut self, user: &UserName, key: PublicKey) {
        self.revoked.insert((user.clone(), key));
        if self.keys.get(user) == Some(&key) {
            self.keys.remove(user);
        }
    }

    /// Forgets every key binding, as a server whose key table was lost.
    pub fn forget_keys(&mut self) {
        self.keys.clear();
        self.enrolled.clear();
    }

    /// The key `user` logged in with last.
    pub fn key(&self, user: &UserName) -> KeyLookup {
        match self.keys.get(user) {
            Some(key) => KeyLookup::Key(*key),
            None if self.accounts.contains_key(user) => KeyLookup::NotYet,
            None => KeyLookup::NoSuchUser,
        }
    }

    pub fn store(&mut self, to: UserName, message: OfflineChat) -> Result<(), Undeliverable> {
        if !self.accounts.contains_key(&to) {
            return Err(Undeliverable::NoSuchUser);
        }
        let duplicate = self.offline.iter().any(|(t, m)| {
            *t == to
                && m.from == message.from
                && m.chat.epoch == message.chat.epoch
                && m.chat.seq == message.chat.seq
        });
        if !duplicate {
            self.offline.push((to, message));
        }
        Ok(())
    }

    pub fn load(&self, user: &UserName) -> Vec<OfflineChat> {
        self.offline
            .iter()
            .filter(|(to, _)| to == user)
            .map(|(_, message)| message.clone())
            .collect()
    }

    pub fn delete(&mut self, to: &UserName, from: &UserName, epoch: u64, through: u64) {
        let before = self.offline.len();
        self.offline.retain(|(t, m)| {
            !(t == to && &m.from == from && m.chat.epoch == epoch && m.chat.seq <= through)
        });
        self.deleted += before - self.offline.len();
    }

    /// Messages stored for `user` now.
    pub fn stored_for(&self, user: &UserName) -> usize {
        self.offline.iter().filter(|(to, _)| to == user).count()
    }

    /// The sealed bytes of everything stored, for tests that look for plaintext on "disk".
    pub fn stored_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        for (_, message) in &self.offline {
            bytes.extend_from_slice(&message.chat.sealed);
        }
        bytes
    }
}
