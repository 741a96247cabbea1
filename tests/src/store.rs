//! The server host's persistent side in memory: accounts and offline messages. It outlives
//! server crashes, like the database file of the real server.

use breeze_core::wire::{Chat, LoginRefusal, Undeliverable, UserName};
use std::collections::HashMap;

#[derive(Debug, Default, Clone)]
pub struct MemoryStore {
    accounts: HashMap<UserName, String>,
    /// (recipient, sender, message), in arrival order.
    offline: Vec<(UserName, UserName, Chat)>,
    /// Every message deleted after an acknowledgement, for tests.
    pub deleted: usize,
}

impl MemoryStore {
    pub fn add_account(&mut self, user: &UserName, password: &str) {
        self.accounts.insert(user.clone(), password.to_string());
    }

    pub fn check(
        &mut self,
        user: &UserName,
        password: &str,
        register: bool,
    ) -> Result<(), LoginRefusal> {
        match self.accounts.get(user) {
            Some(stored) if stored == password && !register => Ok(()),
            Some(_) if register => Err(LoginRefusal::NameTaken),
            None if register => {
                self.add_account(user, password);
                Ok(())
            }
            _ => Err(LoginRefusal::BadCredentials),
        }
    }

    pub fn store(&mut self, to: UserName, from: UserName, chat: Chat) -> Result<(), Undeliverable> {
        if !self.accounts.contains_key(&to) {
            return Err(Undeliverable::NoSuchUser);
        }
        let duplicate = self
            .offline
            .iter()
            .any(|(t, f, c)| *t == to && *f == from && c.epoch == chat.epoch && c.seq == chat.seq);
        if !duplicate {
            self.offline.push((to, from, chat));
        }
        Ok(())
    }

    pub fn load(&self, user: &UserName) -> Vec<(UserName, Chat)> {
        self.offline
            .iter()
            .filter(|(to, _, _)| to == user)
            .map(|(_, from, chat)| (from.clone(), chat.clone()))
            .collect()
    }

    pub fn delete(&mut self, to: &UserName, from: &UserName, epoch: u64, through: u64) {
        let before = self.offline.len();
        self.offline
            .retain(|(t, f, c)| !(t == to && f == from && c.epoch == epoch && c.seq <= through));
        self.deleted += before - self.offline.len();
    }

    /// Messages stored for `user` now.
    pub fn stored_for(&self, user: &UserName) -> usize {
        self.offline.iter().filter(|(to, _, _)| to == user).count()
    }
}
