//! A host's group tables in memory, for hosts without a database (tests, the simulator,
//! demos): groups, and each stored group message with a row per recipient that is deleted when
//! that recipient acknowledges. It is also the reference for what a host's group store must do
//! (the server app's SQLite tables do the same). Messages are sealed by their senders: no text
//! is ever here.
//!
//! A group that ends (its last member left) keeps the rows still owed, like a member removed
//! keeps its own: what was taken while they were members is theirs. Its record stays, with no
//! members, as the group's tombstone: it takes no more messages and goes with the last row. So
//! tombstones are never more than the rows still owed. The highest id ever saved is kept
//! apart, moved by the save that made the group: it outlives every record, so no id is given
//! to a second group after a restart.

use super::{GroupRecord, SavedGroups, StoredGroupMessage};
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
    /// The highest group id ever saved.
    highest_id: Option<GroupId>,
}

impl MemoryGroupStore {
    /// Saves a group after a change. No members ends it: it is deleted, but for the rows still
    /// owed (see the module docs). `exists` says whether an account exists.
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
        self.highest_id = self.highest_id.max(Some(id));
        if info.members.is_empty() {
            if let Some(record) = self.groups.get_mut(&id) {
                record.info.members.clear();
                record.last_taken.clear();
            }
            self.forget_if_ended(id);
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
    /// last (epoch, seq); false if the group is gone or ended.
    pub fn store(&mut self, message: &StoredGroupMessage, next_order: u64) -> bool {
        let Some(record) = self
            .groups
            .get_mut(&message.group)
            .filter(|r| !r.info.members.is_empty())
        else {
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
        self.forget_if_ended(group);
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
        self.forget_if_ended(group);
    }

    /// An ended group with no row left owed goes, tombstone and all.
    fn forget_if_ended(&mut self, id: GroupId) {
        let ended = self
            .groups
            .get(&id)
            .is_none_or(|r| r.info.members.is_empty());
        if ended && !self.rows.keys().any(|(_, g, _)| *g == id) {
            self.groups.remove(&id);
            self.messages.retain(|(g, _), _| *g != id);
        }
    }

    /// Every group (an ended one still owed to someone comes with no members).
    pub fn records(&self) -> Vec<GroupRecord> {
        self.groups.values().cloned().collect()
    }

    /// What the host hands a server that starts: every group, and the highest id ever saved.
    pub fn saved(&self) -> SavedGroups {
        SavedGroups {
            records: self.records(),
            highest_id: self.highest_id,
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::Envelopes;
    use crate::wire::MessageId;
    use std::sync::Arc;

    fn name(n: &str) -> UserName {
        UserName::new(n).unwrap()
    }

    fn team(members: &[&str]) -> GroupInfo {
        GroupInfo {
            id: GroupId(1),
            name: "team".into(),
            owner: name("alice"),
            members: members.iter().map(|m| name(m)).collect(),
            version: 1,
        }
    }

    fn message(order: u64) -> StoredGroupMessage {
        let sealed = HashMap::from([(name("alice"), vec![6; 72]), (name("bob"), vec![7; 72])]);
        StoredGroupMessage {
            group: GroupId(1),
            order,
            from: name("alice"),
            key: PublicKey([9; 32]),
            message: GroupMessage {
                id: MessageId(order),
                epoch: 5,
                seq: order,
                generation: 3,
                version: 1,
                keys: vec![],
                sealed: vec![1, 2, 3],
            },
            recipients: vec![name("alice"), name("bob")].into(),
            envelopes: Arc::new(Envelopes {
                generation: 3,
                version: 1,
                sealed,
            }),
        }
    }

    #[test]
    fn a_group_that_ends_keeps_what_is_owed_until_it_is_acknowledged() {
        let mut store = MemoryGroupStore::default();
        store.save(team(&["alice", "bob"]), &[], |_| true).unwrap();
        assert!(store.store(&message(1), 2));
        assert!(store.store(&message(2), 3));
        store.ack(&name("alice"), GroupId(1), 2);
        // Bob was away; alice removes him and leaves: the group ends.
        store.save(team(&["alice"]), &[], |_| true).unwrap();
        store.save(team(&[]), &[], |_| true).unwrap();
        assert!(!store.store(&message(3), 4), "an ended group takes nothing");
        let records = store.records();
        assert_eq!(records.len(), 1, "its tombstone keeps the id");
        assert!(records[0].info.members.is_empty());

        let (page, more) = store.backlog(&name("bob"), &[], 10);
        assert!(!more);
        let orders: Vec<u64> = page.iter().map(|m| m.order).collect();
        assert_eq!(orders, [1, 2]);
        assert_eq!(
            page[0].message.keys[0].sealed,
            vec![7; 72],
            "with his envelope"
        );

        store.ack(&name("bob"), GroupId(1), 1);
        assert_eq!(store.counts(), (1, 1));
        assert_eq!(store.records().len(), 1);
        store.ack(&name("bob"), GroupId(1), 2);
        assert_eq!(store.counts(), (0, 0));
        assert!(
            store.records().is_empty(),
            "the last ack takes the tombstone"
        );
    }

    #[test]
    fn a_group_that_ends_owing_nothing_goes_at_once() {
        let mut store = MemoryGroupStore::default();
        store.save(team(&["alice", "bob"]), &[], |_| true).unwrap();
        assert!(store.store(&message(1), 2));
        store.ack(&name("alice"), GroupId(1), 1);
        store.ack(&name("bob"), GroupId(1), 1);
        store.save(team(&[]), &[], |_| true).unwrap();
        assert!(store.records().is_empty());
        assert_eq!(store.counts(), (0, 0));
        assert_eq!(
            store.saved().highest_id,
            Some(GroupId(1)),
            "its id stays counted"
        );
    }

    #[test]
    fn the_highest_id_saved_moves_only_up_and_only_with_a_save() {
        let mut store = MemoryGroupStore::default();
        assert_eq!(store.saved(), SavedGroups::default());
        let ghost = name("ghost");
        let refused = store.save(team(&["alice", "ghost"]), &[ghost], |u| {
            u.as_str() != "ghost"
        });
        assert!(refused.is_err());
        assert_eq!(
            store.saved().highest_id,
            None,
            "a refused save hands out nothing"
        );
        let crew = GroupInfo {
            id: GroupId(5),
            ..team(&["alice"])
        };
        store.save(crew, &[], |_| true).unwrap();
        store.save(team(&["alice"]), &[], |_| true).unwrap();
        assert_eq!(store.saved().highest_id, Some(GroupId(5)));
        assert_eq!(store.saved().records.len(), 2);
    }
}
