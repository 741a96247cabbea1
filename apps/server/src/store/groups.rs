//! Groups and their messages (see schema versions 3 and 5): what the server core's group
//! actions need kept across restarts. Messages are sealed by their senders; nothing here is text.
//!
//! u64 protocol values go through SQLite's signed integers with a bit-preserving cast, as in
//! `offline.rs`; orders and sequence numbers stay far below 2^63 in practice, and the order
//! comparisons are on values the server itself counts up from 1.
//!
//! A group that ends (its last member left) keeps the rows still owed to its former members,
//! as a removed member keeps its own: its `groups` row stays, with no members and a name no
//! group can have (so the name is free again), as a tombstone. It takes no more messages,
//! comes back from [`Store::load_groups`] with no members, and is deleted with its last row
//! (acknowledged, or its account removed). So tombstones are never more than the rows still
//! owed, and the messages' rows hang off the `groups` row as before.
//!
//! That a deleted group's id is never given to a new one is kept by `group_id_mark` (version
//! 5), the highest id ever saved, raised in the transaction of every save: it outlives the
//! groups it counts.

use super::{Store, StoreError};
use breeze_core::secure::PublicKey;
use breeze_core::server::{GroupRecord, SavedGroups, StoredGroupMessage};
use breeze_core::wire::{
    GroupId, GroupInfo, GroupMessage, KeyEnvelope, MessageId, OrderedGroupMessage, UserName,
};
use rusqlite::{params, OptionalExtension};
use std::collections::HashMap;

fn to_sql(n: u64) -> i64 {
    n as i64
}

fn from_sql(n: i64) -> u64 {
    n as u64
}

impl Store {
    /// Every group, with its members and what the core needs to go on where it stopped, and
    /// the highest group id ever saved.
    pub fn load_groups(&self) -> Result<SavedGroups, StoreError> {
        let mut groups = self
            .conn
            .prepare("SELECT id, name, owner, version, next_order FROM groups ORDER BY id")?;
        let rows = groups.query_map([], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, i64>(3)?,
                row.get::<_, i64>(4)?,
            ))
        })?;
        let mut members = self.conn.prepare(
            "SELECT member, last_epoch, last_seq FROM group_members
             WHERE group_id = ?1 ORDER BY member",
        )?;
        let mut records = Vec::new();
        for row in rows {
            let (id, name, owner, version, next_order) = row?;
            let Ok(owner) = UserName::new(owner) else {
                continue;
            };
            let mut info = GroupInfo {
                id: GroupId(from_sql(id)),
                name,
                owner,
                members: Vec::new(),
                version: from_sql(version),
            };
            let mut last_taken = Vec::new();
            let found = members.query_map([id], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, Option<i64>>(1)?,
                    row.get::<_, Option<i64>>(2)?,
                ))
            })?;
            for member in found {
                let (member, epoch, seq) = member?;
                let Ok(member) = UserName::new(member) else {
                    continue;
                };
                if let (Some(epoch), Some(seq)) = (epoch, seq) {
                    last_taken.push((member.clone(), from_sql(epoch), from_sql(seq)));
                }
                info.members.push(member);
            }
            records.push(GroupRecord {
                info,
                next_order: from_sql(next_order),
                last_taken,
            });
        }
        let highest_id = self
            .conn
            .query_row("SELECT highest FROM group_id_mark", [], |row| {
                row.get::<_, i64>(0)
            })
            .optional()?
            .map(|id| GroupId(from_sql(id)));
        Ok(SavedGroups {
            records,
            highest_id,
        })
    }

    /// Saves a group after a change; no members ends it (see the module docs).
    /// `UnknownUser` if one of `joined` has no account.
    pub fn save_group(&mut self, info: &GroupInfo, joined: &[UserName]) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        for user in joined {
            let known: Option<i64> = tx
                .query_row(
                    "SELECT 1 FROM users WHERE name = ?1",
                    [user.as_str()],
                    |r| r.get(0),
                )
                .optional()?;
            if known.is_none() {
                return Err(StoreError::UnknownUser(user.to_string()));
            }
        }
        let id = to_sql(info.id.0);
        tx.execute(
            "INSERT INTO group_id_mark (one, highest) VALUES (1, ?1)
             ON CONFLICT (one) DO UPDATE SET highest = max(highest, ?1)",
            [id],
        )?;
        if info.members.is_empty() {
            tx.execute("DELETE FROM group_members WHERE group_id = ?1", [id])?;
            tx.execute(
                "UPDATE groups SET name = ?2 WHERE id = ?1",
                params![id, ended_name(info.id)],
            )?;
            forget_if_ended(&tx, id)?;
            tx.commit()?;
            return Ok(());
        }
        tx.execute(
            "INSERT INTO groups (id, name, owner, version, next_order) VALUES (?1, ?2, ?3, ?4, 1)
             ON CONFLICT (id) DO UPDATE SET name = ?2, owner = ?3, version = ?4",
            params![id, info.name, info.owner.as_str(), to_sql(info.version)],
        )?;
        let mut current = Vec::new();
        {
            let mut stmt = tx.prepare("SELECT member FROM group_members WHERE group_id = ?1")?;
            for member in stmt.query_map([id], |row| row.get::<_, String>(0))? {
                current.push(member?);
            }
        }
        for gone in current
            .iter()
            .filter(|m| !info.members.iter().any(|n| n.as_str() == m.as_str()))
        {
            tx.execute(
                "DELETE FROM group_members WHERE group_id = ?1 AND member = ?2",
                params![id, gone],
            )?;
        }
        for member in &info.members {
            tx.execute(
                "INSERT OR IGNORE INTO group_members (group_id, member) VALUES (?1, ?2)",
                params![id, member.as_str()],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Stores a group message once, a row with its envelope for each recipient, the group's
    /// next place and the sender's last (epoch, seq), in one transaction. `false` (nothing
    /// stored) if the group has no members: it is gone, or ended.
    pub fn store_group_message(
        &mut self,
        message: &StoredGroupMessage,
        next_order: u64,
    ) -> Result<bool, StoreError> {
        let tx = self.conn.transaction()?;
        let (group, order) = (to_sql(message.group.0), to_sql(message.order));
        let live: Option<i64> = tx
            .query_row(
                "SELECT 1 FROM group_members WHERE group_id = ?1 LIMIT 1",
                [group],
                |r| r.get(0),
            )
            .optional()?;
        if live.is_none() {
            return Ok(false);
        }
        let m = &message.message;
        tx.execute(
            "INSERT OR IGNORE INTO group_messages
             (group_id, ord, sender, sender_key, message_id, epoch, seq, generation, version, sealed)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                group,
                order,
                message.from.as_str(),
                &message.key.0[..],
                to_sql(m.id.0),
                to_sql(m.epoch),
                to_sql(m.seq),
                to_sql(m.generation),
                to_sql(m.version),
                &m.sealed,
            ],
        )?;
        {
            let mut row = tx.prepare(
                "INSERT OR IGNORE INTO group_inbox (member, group_id, ord, envelope)
                 VALUES (?1, ?2, ?3, ?4)",
            )?;
            for recipient in message.recipients.iter() {
                let envelope = message.envelopes.sealed.get(recipient);
                row.execute(params![recipient.as_str(), group, order, envelope])?;
            }
        }
        tx.execute(
            "UPDATE groups SET next_order = max(next_order, ?2) WHERE id = ?1",
            params![group, to_sql(next_order)],
        )?;
        tx.execute(
            "UPDATE group_members SET last_epoch = ?3, last_seq = ?4
             WHERE group_id = ?1 AND member = ?2",
            params![group, message.from.as_str(), to_sql(m.epoch), to_sql(m.seq)],
        )?;
        tx.commit()?;
        Ok(true)
    }

    /// Deletes a group message for every recipient.
    pub fn delete_group_message(&mut self, group: GroupId, order: u64) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        let group = to_sql(group.0);
        tx.execute(
            "DELETE FROM group_messages WHERE group_id = ?1 AND ord = ?2",
            params![group, to_sql(order)],
        )?;
        forget_if_ended(&tx, group)?;
        tx.commit()?;
        Ok(())
    }

    /// What is stored for `user` after the places in `after` (0 for groups not listed), in
    /// order per group, at most `limit`, each with `user`'s envelope; and whether there is
    /// more.
    pub fn load_group_backlog(
        &self,
        user: &UserName,
        after: &[(GroupId, u64)],
        limit: usize,
    ) -> Result<(Vec<OrderedGroupMessage>, bool), StoreError> {
        let after: HashMap<GroupId, u64> = after.iter().copied().collect();
        let mut stmt = self.conn.prepare(
            "SELECT i.group_id, i.ord, i.envelope, m.sender, m.sender_key, m.message_id, m.epoch,
                    m.seq, m.generation, m.version, m.sealed
             FROM group_inbox i JOIN group_messages m USING (group_id, ord)
             WHERE i.member = ?1 ORDER BY i.group_id, i.ord",
        )?;
        let mut rows = stmt.query([user.as_str()])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let group = GroupId(from_sql(row.get(0)?));
            let order = from_sql(row.get(1)?);
            if order <= after.get(&group).copied().unwrap_or(0) {
                continue;
            }
            if out.len() == limit {
                return Ok((out, true));
            }
            let envelope: Option<Vec<u8>> = row.get(2)?;
            let Ok(from) = UserName::new(row.get::<_, String>(3)?) else {
                continue;
            };
            let Ok(key) = <[u8; 32]>::try_from(row.get::<_, Vec<u8>>(4)?) else {
                continue;
            };
            let message = GroupMessage {
                id: MessageId(from_sql(row.get(5)?)),
                epoch: from_sql(row.get(6)?),
                seq: from_sql(row.get(7)?),
                generation: from_sql(row.get(8)?),
                version: from_sql(row.get(9)?),
                keys: envelope
                    .map(|sealed| KeyEnvelope {
                        to: user.clone(),
                        sealed,
                    })
                    .into_iter()
                    .collect(),
                sealed: row.get(10)?,
            };
            out.push(OrderedGroupMessage {
                group,
                order,
                from,
                key: PublicKey(key),
                message,
            });
        }
        Ok((out, false))
    }

    /// `user` has `group` through `through`: its rows go, and the messages no row needs.
    pub fn ack_group(
        &mut self,
        user: &UserName,
        group: GroupId,
        through: u64,
    ) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        let (group, through) = (to_sql(group.0), to_sql(through));
        tx.execute(
            "DELETE FROM group_inbox WHERE member = ?1 AND group_id = ?2 AND ord <= ?3",
            params![user.as_str(), group, through],
        )?;
        tx.execute(
            "DELETE FROM group_messages WHERE group_id = ?1 AND ord <= ?2 AND NOT EXISTS
             (SELECT 1 FROM group_inbox i WHERE i.group_id = ?1 AND i.ord = group_messages.ord)",
            params![group, through],
        )?;
        forget_if_ended(&tx, group)?;
        tx.commit()?;
        Ok(())
    }

    /// Group messages stored, and rows owed to recipients (for tests and the operator).
    pub fn group_counts(&self) -> Result<(u64, u64), StoreError> {
        let messages: i64 =
            self.conn
                .query_row("SELECT count(*) FROM group_messages", [], |r| r.get(0))?;
        let rows: i64 = self
            .conn
            .query_row("SELECT count(*) FROM group_inbox", [], |r| r.get(0))?;
        Ok((messages as u64, rows as u64))
    }
}

/// The name an ended group's tombstone takes: no group can be named so (it has spaces), and
/// the id keeps it unique, so the group's own name is free for a new group.
fn ended_name(id: GroupId) -> String {
    format!("ended group {id}")
}

/// Deletes the group `id` if it has ended (no members) and no row is owed any more: its
/// tombstone, and with it (by cascade) any message no row needs.
fn forget_if_ended(tx: &rusqlite::Transaction<'_>, id: i64) -> Result<(), StoreError> {
    tx.execute(
        "DELETE FROM groups WHERE id = ?1
         AND NOT EXISTS (SELECT 1 FROM group_members WHERE group_id = ?1)
         AND NOT EXISTS (SELECT 1 FROM group_inbox WHERE group_id = ?1)",
        [id],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreOptions;
    use breeze_core::server::Envelopes;
    use std::sync::Arc;

    fn name(n: &str) -> UserName {
        UserName::new(n).unwrap()
    }

    fn store_with(users: &[&str]) -> Store {
        let mut store = Store::open_in_memory_with(StoreOptions::fast_for_tests()).unwrap();
        for user in users {
            store.add_user(user, "pw").unwrap();
        }
        store
    }

    fn team() -> GroupInfo {
        GroupInfo {
            id: GroupId(1),
            name: "team".into(),
            owner: name("alice"),
            members: vec![name("alice"), name("bob")],
            version: 1,
        }
    }

    fn message(order: u64, seq: u64) -> StoredGroupMessage {
        let mut sealed = HashMap::new();
        sealed.insert(name("bob"), vec![7; 72]);
        StoredGroupMessage {
            group: GroupId(1),
            order,
            from: name("alice"),
            key: PublicKey([9; 32]),
            message: GroupMessage {
                id: MessageId(seq),
                epoch: 5,
                seq,
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
    fn a_group_and_its_messages_survive_and_go_once_everyone_acknowledged() {
        let mut store = store_with(&["alice", "bob"]);
        assert!(matches!(
            store.save_group(&team(), &[name("carol")]),
            Err(StoreError::UnknownUser(_))
        ));
        store
            .save_group(&team(), &[name("alice"), name("bob")])
            .unwrap();
        assert!(store.store_group_message(&message(1, 1), 2).unwrap());
        assert!(store.store_group_message(&message(2, 2), 3).unwrap());
        let records = store.load_groups().unwrap().records;
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].info, team());
        assert_eq!(records[0].next_order, 3);
        assert_eq!(records[0].last_taken, vec![(name("alice"), 5, 2)]);
        let (page, more) = store.load_group_backlog(&name("bob"), &[], 1).unwrap();
        assert!(more);
        assert_eq!(page[0].order, 1);
        assert_eq!(page[0].message.keys[0].sealed, vec![7; 72]);
        let (page, more) = store
            .load_group_backlog(&name("bob"), &[(GroupId(1), 1)], 10)
            .unwrap();
        assert!(!more);
        assert_eq!(page.len(), 1);
        assert_eq!(page[0].order, 2);
        store.ack_group(&name("bob"), GroupId(1), 2).unwrap();
        assert_eq!(
            store.group_counts().unwrap(),
            (2, 2),
            "alice has not acked yet"
        );
        store.ack_group(&name("alice"), GroupId(1), 2).unwrap();
        assert_eq!(store.group_counts().unwrap(), (0, 0));
        let ended = GroupInfo {
            members: vec![],
            ..team()
        };
        store.save_group(&ended, &[]).unwrap();
        assert!(store.load_groups().unwrap().records.is_empty());
    }

    fn ended() -> GroupInfo {
        GroupInfo {
            members: vec![],
            ..team()
        }
    }

    #[test]
    fn a_group_that_ends_keeps_what_is_owed_until_it_is_acknowledged() {
        let mut store = store_with(&["alice", "bob"]);
        store
            .save_group(&team(), &[name("alice"), name("bob")])
            .unwrap();
        assert!(store.store_group_message(&message(1, 1), 2).unwrap());
        assert!(store.store_group_message(&message(2, 2), 3).unwrap());
        store.ack_group(&name("alice"), GroupId(1), 2).unwrap();
        // Bob was away; alice removes him and leaves: the group ends.
        let alone = GroupInfo {
            members: vec![name("alice")],
            version: 2,
            ..team()
        };
        store.save_group(&alone, &[]).unwrap();
        store.save_group(&ended(), &[]).unwrap();
        assert!(
            !store.store_group_message(&message(3, 3), 4).unwrap(),
            "an ended group takes nothing"
        );
        assert_eq!(store.group_counts().unwrap(), (2, 2));
        let records = store.load_groups().unwrap().records;
        assert_eq!(records.len(), 1, "its tombstone keeps the id");
        assert_eq!(records[0].info.id, GroupId(1));
        assert!(records[0].info.members.is_empty());

        // Its name is free for a new group meanwhile.
        let crew = GroupInfo {
            id: GroupId(2),
            ..team()
        };
        store
            .save_group(&crew, &[name("alice"), name("bob")])
            .unwrap();

        let (page, more) = store.load_group_backlog(&name("bob"), &[], 10).unwrap();
        assert!(!more);
        let orders: Vec<u64> = page.iter().map(|m| m.order).collect();
        assert_eq!(orders, [1, 2]);
        assert_eq!(
            page[0].message.keys[0].sealed,
            vec![7; 72],
            "with his envelope"
        );

        store.ack_group(&name("bob"), GroupId(1), 1).unwrap();
        assert_eq!(store.group_counts().unwrap(), (1, 1));
        assert_eq!(store.load_groups().unwrap().records.len(), 2);
        store.ack_group(&name("bob"), GroupId(1), 2).unwrap();
        assert_eq!(store.group_counts().unwrap(), (0, 0));
        let records = store.load_groups().unwrap().records;
        assert_eq!(records.len(), 1, "the last ack takes the tombstone");
        assert_eq!(records[0].info, crew);
    }

    #[test]
    fn a_group_gone_for_good_leaves_its_id_counted() {
        let mut store = store_with(&["alice", "bob"]);
        assert_eq!(store.load_groups().unwrap(), SavedGroups::default());
        let crew = GroupInfo {
            id: GroupId(4),
            name: "crew".into(),
            ..team()
        };
        assert!(store.save_group(&crew, &[name("carol")]).is_err());
        assert_eq!(
            store.load_groups().unwrap().highest_id,
            None,
            "a refused save leaves the mark"
        );
        store
            .save_group(&crew, &[name("alice"), name("bob")])
            .unwrap();
        store
            .save_group(&team(), &[name("alice"), name("bob")])
            .unwrap();
        assert_eq!(store.load_groups().unwrap().highest_id, Some(GroupId(4)));
        // Both end owing nothing: no record is left, the mark stays.
        for info in [&crew, &team()] {
            let ended = GroupInfo {
                members: vec![],
                ..info.clone()
            };
            store.save_group(&ended, &[]).unwrap();
        }
        let saved = store.load_groups().unwrap();
        assert!(saved.records.is_empty());
        assert_eq!(saved.highest_id, Some(GroupId(4)));
    }

    #[test]
    fn an_ended_group_owed_only_to_a_removed_account_goes_with_it() {
        let mut store = store_with(&["alice", "bob"]);
        store
            .save_group(&team(), &[name("alice"), name("bob")])
            .unwrap();
        assert!(store.store_group_message(&message(1, 1), 2).unwrap());
        store.ack_group(&name("alice"), GroupId(1), 1).unwrap();
        store.save_group(&ended(), &[]).unwrap();
        assert_eq!(store.load_groups().unwrap().records.len(), 1);
        assert!(store.remove_user("bob").unwrap());
        assert_eq!(store.group_counts().unwrap(), (0, 0));
        assert!(store.load_groups().unwrap().records.is_empty());
    }
}
