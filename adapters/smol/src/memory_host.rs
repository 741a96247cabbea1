//! A [`ServerHost`] that keeps everything in memory: for tests, demos and benchmarks.

use crate::ServerHost;
use breeze_core::secure::PublicKey;
use breeze_core::server::{
    MemoryGroupStore, OfflineChat, SavedGroups, StoreOutcome, StoredGroupMessage,
};
use breeze_core::wire::{
    GroupError, GroupId, GroupInfo, KeyLookup, LoginRefusal, OrderedGroupMessage, Undeliverable,
    UserName,
};
use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

/// Accounts and offline messages in memory, lost when dropped.
///
/// Passwords are compared in clear: never use this for real accounts.
#[derive(Debug, Default)]
pub struct MemoryHost {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    accounts: HashMap<UserName, String>,
    /// Accept any name and password, creating the account on the way.
    welcome_anyone: bool,
    /// `(to, from, chat)` in the order stored.
    offline: Vec<(UserName, OfflineChat)>,
    /// The key each account logged in with last.
    keys: HashMap<UserName, PublicKey>,
    /// Every key a password login bound to an account: enrolled for key logins.
    enrolled: HashSet<(UserName, PublicKey)>,
    /// Keys the owner revoked, refused even with the right password.
    revoked: HashSet<(UserName, PublicKey)>,
    groups: MemoryGroupStore,
}

impl MemoryHost {
    /// No accounts; registration (when the server allows it) creates them.
    pub fn new() -> MemoryHost {
        MemoryHost::default()
    }

    /// Lets every login in, whatever the name and password.
    pub fn welcoming() -> MemoryHost {
        let host = MemoryHost::default();
        host.lock().welcome_anyone = true;
        host
    }

    /// Adds an account.
    pub fn with_user(self, user: &UserName, password: &str) -> MemoryHost {
        self.lock()
            .accounts
            .insert(user.clone(), password.to_owned());
        self
    }

    /// Revokes `key` for `user`: its next login is refused, with or without the password.
    pub fn revoke(&self, user: &UserName, key: &PublicKey) {
        let mut state = self.lock();
        state.revoked.insert((user.clone(), *key));
        if state.keys.get(user) == Some(key) {
            state.keys.remove(user);
        }
    }

    /// Messages stored for offline users and not acknowledged yet.
    pub fn offline_count(&self) -> usize {
        self.lock().offline.len()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl ServerHost for MemoryHost {
    fn check_login(
        &self,
        user: &UserName,
        password: &str,
        register: bool,
        key: &PublicKey,
    ) -> Result<(), LoginRefusal> {
        let mut state = self.lock();
        let verdict = if state.welcome_anyone {
            Ok(())
        } else {
            match state.accounts.get(user) {
                Some(known) if known == password => Ok(()),
                Some(_) if register => Err(LoginRefusal::NameTaken),
                Some(_) => Err(LoginRefusal::BadCredentials),
                None if register => {
                    state.accounts.insert(user.clone(), password.to_owned());
                    Ok(())
                }
                None => Err(LoginRefusal::BadCredentials),
            }
        };
        let entry = (user.clone(), *key);
        if verdict.is_ok() && state.revoked.contains(&entry) {
            return Err(LoginRefusal::KeyRevoked);
        }
        if verdict.is_ok() {
            state.keys.insert(user.clone(), *key);
            state.enrolled.insert(entry);
        }
        verdict
    }

    fn check_key_login(&self, user: &UserName, key: &PublicKey) -> Result<(), LoginRefusal> {
        let mut state = self.lock();
        let entry = (user.clone(), *key);
        if state.revoked.contains(&entry) {
            return Err(LoginRefusal::KeyRevoked);
        }
        if !state.welcome_anyone && !state.enrolled.contains(&entry) {
            return Err(LoginRefusal::KeyNotEnrolled);
        }
        state.keys.insert(user.clone(), *key);
        state.enrolled.insert(entry);
        Ok(())
    }

    fn store_offline(&self, to: &UserName, message: &OfflineChat) -> StoreOutcome {
        let mut state = self.lock();
        if !state.welcome_anyone && !state.accounts.contains_key(to) {
            return StoreOutcome::Undeliverable(Undeliverable::NoSuchUser);
        }
        let (from, chat) = (&message.from, &message.chat);
        let duplicate = state.offline.iter().any(|(t, m)| {
            t == to && &m.from == from && m.chat.epoch == chat.epoch && m.chat.seq == chat.seq
        });
        if !duplicate {
            state.offline.push((to.clone(), message.clone()));
        }
        StoreOutcome::Stored
    }

    fn load_offline(&self, user: &UserName) -> Vec<OfflineChat> {
        self.lock()
            .offline
            .iter()
            .filter(|(to, _)| to == user)
            .map(|(_, message)| message.clone())
            .collect()
    }

    fn load_key(&self, user: &UserName) -> KeyLookup {
        let state = self.lock();
        match state.keys.get(user) {
            Some(key) => KeyLookup::Key(*key),
            None if state.welcome_anyone || state.accounts.contains_key(user) => KeyLookup::NotYet,
            None => KeyLookup::NoSuchUser,
        }
    }

    fn delete_offline(&self, to: &UserName, from: &UserName, epoch: u64, through: u64) {
        self.lock().offline.retain(|(t, m)| {
            !(t == to && &m.from == from && m.chat.epoch == epoch && m.chat.seq <= through)
        });
    }

    fn load_groups(&self) -> SavedGroups {
        self.lock().groups.saved()
    }

    fn save_group(&self, info: &GroupInfo, joined: &[UserName]) -> Result<(), GroupError> {
        let mut state = self.lock();
        let state = &mut *state;
        let (welcome, accounts) = (state.welcome_anyone, &state.accounts);
        state.groups.save(info.clone(), joined, |user| {
            welcome || accounts.contains_key(user)
        })
    }

    fn store_group_message(&self, message: &StoredGroupMessage, next_order: u64) -> bool {
        self.lock().groups.store(message, next_order)
    }

    fn delete_group_message(&self, group: GroupId, order: u64) {
        self.lock().groups.delete_message(group, order)
    }

    fn load_group_backlog(
        &self,
        user: &UserName,
        after: &[(GroupId, u64)],
        limit: usize,
    ) -> (Vec<OrderedGroupMessage>, bool) {
        self.lock().groups.backlog(user, after, limit)
    }

    fn ack_group(&self, user: &UserName, group: GroupId, through: u64) {
        self.lock().groups.ack(user, group, through)
    }
}
