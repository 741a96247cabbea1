//! Offline messages: chat kept for a recipient who is not logged in, until it acknowledges.
//!
//! A message is keyed by (recipient, sender, epoch, seq), the same key the delivery protocol
//! uses for duplicates, so a sender retransmitting through the relay never stores a message
//! twice. The recipient's cumulative ack ("everything of this epoch through seq N") maps to one
//! [`Store::delete_offline`] call.
//!
//! u64 protocol values live in SQLite's signed 64-bit integers through a bit-preserving
//! `as i64` / `as u64` cast; only `seq` is ever compared by order, and that comparison is
//! written to stay correct for values at or above 2^63.

use rusqlite::{params, OptionalExtension, Row};

use super::accounts::valid_name;
use super::{Store, StoreError};

/// Default bound on the offline messages kept per recipient ([`StoreOptions::offline_limit`]).
///
/// A recipient who never logs in must not let senders fill the disk; past the bound the server
/// refuses to store, and the sender keeps the message queued or reports it undelivered.
///
/// [`StoreOptions::offline_limit`]: super::StoreOptions::offline_limit
pub const MAX_OFFLINE_PER_RECIPIENT: usize = 10_000;

/// One stored chat message, with the delivery fields of the wire `SealedChat` it came from:
/// its text is sealed for the recipient, and the sender's key comes with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OfflineMessage {
    pub recipient: String,
    pub sender: String,
    /// The sender's static key, which the recipient opens the message with.
    pub sender_key: [u8; 32],
    /// The sender's process lifetime the message belongs to.
    pub epoch: u64,
    /// Per (sender epoch, recipient) sequence number, counting from 1.
    pub seq: u64,
    /// The sender's lowest unacknowledged seq when it sent this message.
    pub first_unacked: u64,
    /// The message id shown to users.
    pub message_id: u64,
    /// The text, sealed end to end: the server cannot read it.
    pub sealed: Vec<u8>,
}

impl Store {
    /// Keeps `message` until its recipient acknowledges it.
    ///
    /// Storing a message whose (recipient, sender, epoch, seq) is already stored does nothing
    /// and succeeds, even when the recipient is full: the first copy is kept. Fails with
    /// `UnknownUser` if the recipient has no account, `RecipientFull` at the bound, `BadName`
    /// if the sender is not a valid user name.
    pub fn store_offline(&mut self, message: &OfflineMessage) -> Result<(), StoreError> {
        valid_name(&message.sender)?;
        let limit = self.offline_limit;
        // Check and insert in one write transaction, so two writers cannot both take the last
        // free place.
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let recipient_known = tx
            .query_row(
                "SELECT 1 FROM users WHERE name = ?1",
                [&message.recipient],
                |_| Ok(()),
            )
            .optional()?
            .is_some();
        if !recipient_known {
            return Err(StoreError::UnknownUser(message.recipient.clone()));
        }
        let already_stored = tx
            .query_row(
                "SELECT 1 FROM offline
                 WHERE recipient = ?1 AND sender = ?2 AND epoch = ?3 AND seq = ?4",
                params![
                    message.recipient,
                    message.sender,
                    message.epoch as i64,
                    message.seq as i64
                ],
                |_| Ok(()),
            )
            .optional()?
            .is_some();
        if already_stored {
            return Ok(());
        }
        if count(&tx, &message.recipient)? >= limit {
            return Err(StoreError::RecipientFull(message.recipient.clone()));
        }
        tx.execute(
            "INSERT INTO offline
               (recipient, sender, sender_key, epoch, seq, first_unacked, message_id, sealed)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                message.recipient,
                message.sender,
                &message.sender_key[..],
                message.epoch as i64,
                message.seq as i64,
                message.first_unacked as i64,
                message.message_id as i64,
                message.sealed,
            ],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Every message kept for `recipient`, oldest stored first (empty for an unknown name).
    pub fn load_offline(&self, recipient: &str) -> Result<Vec<OfflineMessage>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT recipient, sender, sender_key, epoch, seq, first_unacked, message_id, sealed
             FROM offline WHERE recipient = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([recipient], offline_message)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Deletes the messages from `sender` of `epoch` to `recipient` with `seq <= through_seq`:
    /// what a cumulative ack covers. Returns how many were deleted.
    pub fn delete_offline(
        &mut self,
        recipient: &str,
        sender: &str,
        epoch: u64,
        through_seq: u64,
    ) -> Result<usize, StoreError> {
        // Stored seqs are u64 cast to i64, so u64 order is not SQLite's order above 2^63.
        // For a `through` below 2^63 (>= 0 as i64) the covered seqs are 0..=through; for one
        // above, they are all seqs below 2^63 (>= 0) plus those from 2^63 up to it (negative,
        // at most `through` as i64).
        let deleted = self.conn.execute(
            "DELETE FROM offline
             WHERE recipient = ?1 AND sender = ?2 AND epoch = ?3
               AND CASE WHEN ?4 >= 0 THEN seq BETWEEN 0 AND ?4
                        ELSE seq >= 0 OR seq <= ?4 END",
            params![recipient, sender, epoch as i64, through_seq as i64],
        )?;
        Ok(deleted)
    }

    /// How many messages are kept for `recipient`.
    pub fn count_offline(&self, recipient: &str) -> Result<usize, StoreError> {
        count(&self.conn, recipient)
    }
}

fn count(conn: &rusqlite::Connection, recipient: &str) -> Result<usize, StoreError> {
    let n: i64 = conn.query_row(
        "SELECT count(*) FROM offline WHERE recipient = ?1",
        [recipient],
        |row| row.get(0),
    )?;
    // count(*) is never negative.
    Ok(n as usize)
}

fn offline_message(row: &Row<'_>) -> rusqlite::Result<OfflineMessage> {
    Ok(OfflineMessage {
        recipient: row.get(0)?,
        sender: row.get(1)?,
        sender_key: row.get::<_, Vec<u8>>(2)?.try_into().map_err(|_| {
            rusqlite::Error::InvalidColumnType(2, "sender_key".into(), rusqlite::types::Type::Blob)
        })?,
        epoch: row.get::<_, i64>(3)? as u64,
        seq: row.get::<_, i64>(4)? as u64,
        first_unacked: row.get::<_, i64>(5)? as u64,
        message_id: row.get::<_, i64>(6)? as u64,
        sealed: row.get(7)?,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::StoreOptions;
    use super::*;

    /// A message whose `first_unacked` is 1 and whose id is derived from the seq.
    pub(crate) fn message(
        recipient: &str,
        sender: &str,
        epoch: u64,
        seq: u64,
        text: &str,
    ) -> OfflineMessage {
        OfflineMessage {
            recipient: recipient.into(),
            sender: sender.into(),
            epoch,
            seq,
            first_unacked: 1,
            message_id: seq.wrapping_add(100),
            sender_key: [9; 32],
            sealed: text.as_bytes().to_vec(),
        }
    }

    fn store_with(options: StoreOptions) -> Store {
        let mut store = Store::open_in_memory_with(options).unwrap();
        for name in ["alice", "bob", "carol"] {
            store.add_user(name, "pw").unwrap();
        }
        store
    }

    fn store() -> Store {
        store_with(StoreOptions::fast_for_tests())
    }

    fn texts(store: &Store, recipient: &str) -> Vec<String> {
        let loaded = store.load_offline(recipient).unwrap();
        loaded
            .into_iter()
            .map(|m| String::from_utf8(m.sealed).unwrap())
            .collect()
    }

    #[test]
    fn messages_for_bob_come_back_in_the_order_they_were_stored() {
        let mut store = store();
        // Interleaved senders and a seq stored out of order: insertion order wins.
        store
            .store_offline(&message("bob", "alice", 1, 2, "a2"))
            .unwrap();
        store
            .store_offline(&message("bob", "carol", 9, 1, "c1"))
            .unwrap();
        store
            .store_offline(&message("bob", "alice", 1, 1, "a1"))
            .unwrap();
        store
            .store_offline(&message("alice", "bob", 3, 1, "for alice"))
            .unwrap();
        assert_eq!(texts(&store, "bob"), ["a2", "c1", "a1"]);
        assert_eq!(store.count_offline("bob").unwrap(), 3);
        assert_eq!(texts(&store, "alice"), ["for alice"]);
        assert!(store.load_offline("carol").unwrap().is_empty());
    }

    #[test]
    fn every_field_round_trips_including_values_above_i64_max() {
        let mut store = store();
        let sent = OfflineMessage {
            recipient: "bob".into(),
            sender: "alice".into(),
            epoch: u64::MAX,
            seq: 1 << 63,
            first_unacked: u64::MAX - 1,
            message_id: (1 << 63) + 5,
            sender_key: [9; 32],
            sealed: "héllo\n\u{1F600}".as_bytes().to_vec(),
        };
        store.store_offline(&sent).unwrap();
        assert_eq!(store.load_offline("bob").unwrap(), [sent]);
    }

    #[test]
    fn a_retransmitted_message_is_stored_once_and_the_first_copy_kept() {
        let mut store = store();
        store
            .store_offline(&message("bob", "alice", 1, 1, "first"))
            .unwrap();
        store
            .store_offline(&message("bob", "alice", 1, 1, "again"))
            .unwrap();
        assert_eq!(texts(&store, "bob"), ["first"]);
        // Same seq from another epoch or sender is a different message.
        store
            .store_offline(&message("bob", "alice", 2, 1, "new epoch"))
            .unwrap();
        store
            .store_offline(&message("bob", "carol", 1, 1, "carol"))
            .unwrap();
        assert_eq!(texts(&store, "bob"), ["first", "new epoch", "carol"]);
    }

    #[test]
    fn an_ack_deletes_that_sender_and_epoch_through_the_acked_seq() {
        let mut store = store();
        for seq in 1..=4 {
            store
                .store_offline(&message("bob", "alice", 7, seq, &format!("a{seq}")))
                .unwrap();
        }
        store
            .store_offline(&message("bob", "alice", 8, 1, "other epoch"))
            .unwrap();
        store
            .store_offline(&message("bob", "carol", 7, 1, "other sender"))
            .unwrap();
        store
            .store_offline(&message("carol", "alice", 7, 1, "other recipient"))
            .unwrap();

        assert_eq!(store.delete_offline("bob", "alice", 7, 2).unwrap(), 2);
        assert_eq!(
            texts(&store, "bob"),
            ["a3", "a4", "other epoch", "other sender"]
        );
        assert_eq!(
            store.delete_offline("bob", "alice", 7, 2).unwrap(),
            0,
            "idempotent"
        );
        assert_eq!(store.delete_offline("bob", "alice", 7, 10).unwrap(), 2);
        assert_eq!(texts(&store, "bob"), ["other epoch", "other sender"]);
        assert_eq!(texts(&store, "carol"), ["other recipient"]);
        assert_eq!(store.delete_offline("nobody", "alice", 7, 10).unwrap(), 0);
    }

    #[test]
    fn an_ack_compares_seqs_as_unsigned_across_2_pow_63() {
        let mut store = store();
        let big = 1u64 << 63;
        for seq in [5, big - 1, big, big + 1, u64::MAX] {
            store
                .store_offline(&message("bob", "alice", 1, seq, &seq.to_string()))
                .unwrap();
        }
        assert_eq!(store.delete_offline("bob", "alice", 1, big - 1).unwrap(), 2);
        assert_eq!(store.delete_offline("bob", "alice", 1, big).unwrap(), 1);
        assert_eq!(
            texts(&store, "bob"),
            [(big + 1).to_string(), u64::MAX.to_string()]
        );
        assert_eq!(
            store.delete_offline("bob", "alice", 1, u64::MAX).unwrap(),
            2
        );
        assert_eq!(store.count_offline("bob").unwrap(), 0);
    }

    #[test]
    fn a_full_recipient_refuses_new_messages_but_accepts_retransmissions() {
        let mut store = store_with(StoreOptions::fast_for_tests().with_offline_limit(3));
        for seq in 1..=3 {
            store
                .store_offline(&message("bob", "alice", 1, seq, "x"))
                .unwrap();
        }
        let err = store
            .store_offline(&message("bob", "carol", 1, 1, "x"))
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::RecipientFull(name) if name == "bob"),
            "{err}"
        );
        store
            .store_offline(&message("bob", "alice", 1, 2, "x"))
            .unwrap();
        assert_eq!(store.count_offline("bob").unwrap(), 3);
        // Other recipients have their own bound.
        store
            .store_offline(&message("alice", "bob", 1, 1, "x"))
            .unwrap();
        // An ack frees room again.
        store.delete_offline("bob", "alice", 1, 1).unwrap();
        store
            .store_offline(&message("bob", "carol", 1, 1, "x"))
            .unwrap();
        assert_eq!(store.count_offline("bob").unwrap(), 3);
    }

    #[test]
    fn the_default_bound_is_ten_thousand() {
        assert_eq!(
            StoreOptions::default().offline_limit,
            MAX_OFFLINE_PER_RECIPIENT
        );
        assert_eq!(MAX_OFFLINE_PER_RECIPIENT, 10_000);
    }

    #[test]
    fn messages_for_a_name_without_account_are_refused() {
        let mut store = store();
        let err = store
            .store_offline(&message("dave", "alice", 1, 1, "x"))
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::UnknownUser(name) if name == "dave"),
            "{err}"
        );
        assert_eq!(store.count_offline("dave").unwrap(), 0);
    }

    #[test]
    fn a_sender_with_an_invalid_name_is_refused() {
        let mut store = store();
        let err = store
            .store_offline(&message("bob", "no such name!", 1, 1, "x"))
            .unwrap_err();
        assert!(matches!(err, StoreError::BadName { .. }), "{err}");
    }
}
