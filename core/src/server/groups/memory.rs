//! A host's group tables in memory, for hosts without a database (tests, the simulator,
//! demos): groups, and each stored group message with a row per recipient that is deleted when
//! that recipient acknowledges. It is also the reference for what a host's group store must do
//! (the server app's SQLite tables do the same). Messages are sealed by their senders: no text
//! is ever here.

use super::{GroupRecord, StoredGroupMessage};
use crate::secure::PublicKey;
use crate::wire::{
    GroupError, GroupId, GroupInfo, GroupMessage, KeyEnvelope, OrderedGroupMessage, UserName,
};
use std::collections::{BTreeMap, HashMap};

/// Groups and their stored messages; see the module docs.
#[derive(Debug, Default, Clone)]
pub struct MemoryGroupStore {
    groups: BTreeMap<GroupId, GroupRecord>,
    /// (group, order) → the message without envelopes, with its sender and sender key.
    messages: BTreeMap<(GroupId, u64), (UserName, PublicKey, GroupMessage)>,
    /// (user, group, order) → that recipient's envelope.
    rows: BTreeMap<(UserName, GroupId, u64), Option<Vec<u8>>>,
}

impl MemoryGroupStore {
    /// Saves a group after a change (no members: deletes it and its messages). `exists`
    /// says whether an account exists.
    pub fn save(
        &mut self,
        info: GroupInfo,
        joined: &[UserName],
        exists: impl Fn(&UserName) -> bool,
    ) -> Result<(), GroupError> {
        if let Some(missing) = joined.iter().find(|u| !exists(u)) {
            return Err(GroupError::NoSuchUser(missing.clone()));
        }
        let id = info.id;
        if info.members.is_empty() {
            self.groups.remove(&id);
            self.messages.retain(|(g, _), _| *g != id);
            self.rows.retain(|(_, g, _), _| *g != id);
            return Ok(());
        }
        let record = self.groups.entry(id).or_insert_with(|| GroupRecord {
            info: info.clone(),
            next_order: 1,
            last_taken: Vec::new(),
        });
        record
            .last_taken
            .retain(|(u, _, _)| info.members.contains(u));
        record.info = info;
        Ok(())
    }

    /// Stores a message for each recipient, with the group's next place and the sender's
    /// last (epoch, seq); false if the group is gone.
    pub fn store(&mut self, message: &StoredGroupMessage, next_order: u64) -> bool {
        let Some(record) = self.groups.get_mut(&message.group) else {
            return false;
        };
        record.next_order = record.next_order.max(next_order);
        let (epoch, seq) = (message.message.epoch, message.message.seq);
        record.last_taken.retain(|(u, _, _)| u != &message.from);
        record.last_taken.push((message.from.clone(), epoch, seq));
        self.messages.insert(
            (message.group, message.order),
            (message.from.clone(), message.key, message.message.clone()),
        );
        for user in message.recipients.iter() {
            let envelope = message.envelopes.sealed.get(user).cloned();
            self.rows
                .insert((user.clone(), message.group, message.order), envelope);
        }
        true
    }

    /// Deletes a message for every recipient.
    pub fn delete_message(&mut self, group: GroupId, order: u64) {
        self.messages.remove(&(group, order));
        self.rows
            .retain(|(_, g, o), _| !(*g == group && *o == order));
    }

    /// What is stored for `user` after the places given, in order per group, at most `limit`.
    pub fn backlog(
        &self,
        user: &UserName,
        after: &[(GroupId, u64)],
        limit: usize,
    ) -> (Vec<OrderedGroupMessage>, bool) {
        let after: HashMap<GroupId, u64> = after.iter().copied().collect();
        let mut out = Vec::new();
        for ((u, group, order), envelope) in &self.rows {
            if u != user || *order <= after.get(group).copied().unwrap_or(0) {
                continue;
            }
            let Some((from, key, message)) = self.messages.get(&(*group, *order)) else {
                continue;
            };
            if out.len() == limit {
                return (out, true);
            }
            let mut message = message.clone();
            message.keys = envelope
                .iter()
                .map(|sealed| KeyEnvelope {
                    to: user.clone(),
                    sealed: sealed.clone(),
                })
                .collect();
            out.push(OrderedGroupMessage {
                group: *group,
                order: *order,
                from: from.clone(),
                key: *key,
                message,
            });
        }
        (out, false)
    }

    /// `user` has `group` through `through`: its copies go, and messages nobody is owed.
    pub fn ack(&mut self, user: &UserName, group: GroupId, through: u64) {
        self.rows
            .retain(|(u, g, o), _| !(u == user && *g == group && *o <= through));
        let messages = &mut self.messages;
        let rows = &self.rows;
        messages.retain(|(g, o), _| rows.keys().any(|(_, rg, ro)| rg == g && ro == o));
    }

    /// Every group, as the host hands them to a server that starts.
    pub fn records(&self) -> Vec<GroupRecord> {
        self.groups.values().cloned().collect()
    }

    /// Group messages stored now, and rows (copies owed to recipients).
    pub fn counts(&self) -> (usize, usize) {
        (self.messages.len(), self.rows.len())
    }

    /// The sealed bytes of everything stored, for tests that look for plaintext on "disk".
    pub fn stored_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        for (_, _, message) in self.messages.values() {
            bytes.extend_from_slice(&message.sealed);
        }
        bytes
    }
}
