//! A [`ServerHost`] that keeps everything in memory: for tests, demos and benchmarks.

use crate::ServerHost;
use breeze_core::secure::PublicKey;
use breeze_core::server::StoreOutcome;
use breeze_core::wire::{Chat, LoginRefusal, Undeliverable, UserName};
use std::collections::HashMap;
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
    offline: Vec<(UserName, UserName, Chat)>,
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
        _key: &PublicKey,
    ) -> Result<(), LoginRefusal> {
        let mut state = self.lock();
        if state.welcome_anyone {
            return Ok(());
        }
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
    }

    fn store_offline(&self, to: &UserName, from: &UserName, chat: &Chat) -> StoreOutcome {
        let mut state = self.lock();
        if !state.welcome_anyone && !state.accounts.contains_key(to) {
            return StoreOutcome::Undeliverable(Undeliverable::NoSuchUser);
        }
        let duplicate = state
            .offline
            .iter()
            .any(|(t, f, c)| t == to && f == from && c.epoch == chat.epoch && c.seq == chat.seq);
        if !duplicate {
            state.offline.push((to.clone(), from.clone(), chat.clone()));
        }
        StoreOutcome::Stored
    }

    fn load_offline(&self, user: &UserName) -> Vec<(UserName, Chat)> {
        self.lock()
            .offline
            .iter()
            .filter(|(to, _, _)| to == user)
            .map(|(_, from, chat)| (from.clone(), chat.clone()))
            .collect()
    }

    fn delete_offline(&self, to: &UserName, from: &UserName, epoch: u64, through: u64) {
        self.lock()
            .offline
            .retain(|(t, f, c)| !(t == to && f == from && c.epoch == epoch && c.seq <= through));
    }
}
