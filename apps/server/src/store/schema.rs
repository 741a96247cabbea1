//! Table definitions and their migrations, keyed by SQLite's `PRAGMA user_version`.
//!
//! `MIGRATIONS[i]` takes the schema from version `i` to `i + 1`, so a fresh file (version 0)
//! runs them all and an existing one runs only those it has not seen. Each step and its
//! version bump commit together: a crash mid-upgrade leaves the previous version intact.
//! To change the schema, append a step; never edit one that has shipped.

use rusqlite::Connection;

use super::StoreError;

/// Version 1: accounts, and offline messages owned by their recipient's account.
///
/// `offline.id` is an alias of the rowid; SQLite gives a new row a rowid above every row present,
/// so ordering by it is insertion order among the stored messages. The unique key makes a re-sent message a no-op and
/// also serves every per-recipient lookup. `sender` is deliberately not a foreign key: a message
/// stays deliverable after its sender's account is removed.
const V1: &str = "
CREATE TABLE users (
    name          TEXT PRIMARY KEY NOT NULL,
    password_hash TEXT NOT NULL
) STRICT;

CREATE TABLE offline (
    id            INTEGER PRIMARY KEY,
    recipient     TEXT NOT NULL REFERENCES users(name),
    sender        TEXT NOT NULL,
    epoch         INTEGER NOT NULL,
    seq           INTEGER NOT NULL,
    first_unacked INTEGER NOT NULL,
    message_id    INTEGER NOT NULL,
    text          TEXT NOT NULL,
    UNIQUE (recipient, sender, epoch, seq)
) STRICT;
";

/// Version 2: end-to-end encryption.
///
/// The profile keys bound to each account: a client proves its key in the handshake; once its
/// password is right the key is bound here, and it is what the server hands that user's peers
/// (the one used last). Keys go with their account.
///
/// Offline messages are now sealed by their senders: the table keeps the ciphertext and the
/// sender's key, never a text. Messages a version-1 server stored are plaintext and cannot be
/// sealed after the fact (the server holds no user's key), so the upgrade drops them rather
/// than keep plaintext on disk.
const V2: &str = "
DROP TABLE offline;

CREATE TABLE offline (
    id            INTEGER PRIMARY KEY,
    recipient     TEXT NOT NULL REFERENCES users(name),
    sender        TEXT NOT NULL,
    sender_key    BLOB NOT NULL CHECK (length(sender_key) = 32),
    epoch         INTEGER NOT NULL,
    seq           INTEGER NOT NULL,
    first_unacked INTEGER NOT NULL,
    message_id    INTEGER NOT NULL,
    sealed        BLOB NOT NULL,
    UNIQUE (recipient, sender, epoch, seq)
) STRICT;

CREATE TABLE account_keys (
    account    TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    key        BLOB NOT NULL CHECK (length(key) = 32),
    added      INTEGER NOT NULL,
    last_login INTEGER NOT NULL,
    PRIMARY KEY (account, key)
) STRICT;
";

/// Version 3: groups.
///
/// A group's members go with their accounts; its messages and their per-member rows go with
/// the group. A message is kept once, sealed by its sender under the sender's group key; each
/// recipient has a row with its own key envelope (the sender's group key sealed for that
/// member), deleted when the member acknowledges; a message no row points to is deleted with
/// the last row. `last_epoch`/`last_seq` let a message sent twice (its acceptance lost) be
/// recognised after a restart; `next_order` keeps the group's order going.
const V3: &str = "
CREATE TABLE groups (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    owner      TEXT NOT NULL,
    version    INTEGER NOT NULL,
    next_order INTEGER NOT NULL
) STRICT;

CREATE TABLE group_members (
    group_id   INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    member     TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    last_epoch INTEGER,
    last_seq   INTEGER,
    PRIMARY KEY (group_id, member)
) STRICT;

CREATE TABLE group_messages (
    group_id   INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    ord        INTEGER NOT NULL,
    sender     TEXT NOT NULL,
    sender_key BLOB NOT NULL CHECK (length(sender_key) = 32),
    message_id INTEGER NOT NULL,
    epoch      INTEGER NOT NULL,
    seq        INTEGER NOT NULL,
    generation INTEGER NOT NULL,
    version    INTEGER NOT NULL,
    sealed     BLOB NOT NULL,
    PRIMARY KEY (group_id, ord)
) STRICT;

CREATE TABLE group_inbox (
    member   TEXT NOT NULL,
    group_id INTEGER NOT NULL,
    ord      INTEGER NOT NULL,
    envelope BLOB,
    PRIMARY KEY (member, group_id, ord),
    FOREIGN KEY (group_id, ord) REFERENCES group_messages(group_id, ord) ON DELETE CASCADE
) STRICT;
";

/// Version 4: key logins and revocation.
///
/// A key bound to an account is enrolled: it logs in without the password. `revoked` is when
/// the owner revoked it (Unix seconds), NULL while it is good; a revoked key is kept, not
/// deleted, so that it stays refused (deleting it would let its password enrol it again) and
/// the listing shows it. Keys bound before this version are enrolled and not revoked.
const V4: &str = "
ALTER TABLE account_keys ADD COLUMN revoked INTEGER;
";

/// Version 5: the highest group id ever saved.
///
/// The core gives new groups ids above the highest it is handed at start. A group that ended
/// owing nothing leaves no `groups` row, so the highest id is kept here, in one row (none
/// before the first group), raised in the transaction that saves a group: no id is given to a
/// second group, whose places a member still running would take for the old one's. An
/// existing database starts from the groups it holds; ids of groups already gone before this
/// version cannot be recovered.
const V5: &str = "
CREATE TABLE group_id_mark (
    one     INTEGER PRIMARY KEY CHECK (one = 1),
    highest INTEGER NOT NULL
) STRICT;

INSERT INTO group_id_mark (one, highest) SELECT 1, id FROM groups ORDER BY id DESC LIMIT 1;
";

/// The schema steps, oldest first; see the module docs.
const MIGRATIONS: &[&str] = &[V1, V2, V3, V4, V5];

/// The schema version this build writes and understands.
pub(super) fn supported_version() -> u32 {
    MIGRATIONS.len() as u32
}

pub(super) fn version(conn: &Connection) -> Result<u32, StoreError> {
    Ok(conn.query_row("PRAGMA user_version", [], |row| row.get(0))?)
}

/// Brings the database up to [`supported_version`], refusing a newer one.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let found = version(conn)?;
    let supported = supported_version();
    if found > supported {
        return Err(StoreError::SchemaTooNew { found, supported });
    }
    for (from, step) in (found..).zip(&MIGRATIONS[found as usize..]) {
        let tx = conn.transaction()?;
        tx.execute_batch(step)?;
        tx.pragma_update(None, "user_version", from + 1)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::OptionalExtension;

    #[test]
    fn migrating_twice_is_a_no_op() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        migrate(&mut conn).unwrap();
        assert_eq!(version(&conn).unwrap(), supported_version());
    }

    #[test]
    fn keys_bound_before_version_4_stay_enrolled_and_unrevoked() {
        let mut conn = Connection::open_in_memory().unwrap();
        for (from, step) in (0..).zip(&MIGRATIONS[..3]) {
            conn.execute_batch(step).unwrap();
            conn.pragma_update(None, "user_version", from + 1).unwrap();
        }
        conn.execute_batch(
            "INSERT INTO users (name, password_hash) VALUES ('alice', 'x');
             INSERT INTO account_keys (account, key, added, last_login)
             VALUES ('alice', zeroblob(32), 100, 200);",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        assert_eq!(version(&conn).unwrap(), supported_version());
        let (last_login, revoked): (i64, Option<i64>) = conn
            .query_row(
                "SELECT last_login, revoked FROM account_keys WHERE account = 'alice'",
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .unwrap();
        assert_eq!((last_login, revoked), (200, None));
    }

    /// The database at version 4, every step before it run.
    fn at_version_4() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        for (from, step) in (0..).zip(&MIGRATIONS[..4]) {
            conn.execute_batch(step).unwrap();
            conn.pragma_update(None, "user_version", from + 1).unwrap();
        }
        conn
    }

    fn group_id_mark(conn: &Connection) -> Option<i64> {
        conn.query_row("SELECT highest FROM group_id_mark", [], |row| row.get(0))
            .optional()
            .unwrap()
    }

    #[test]
    fn the_group_id_mark_starts_from_the_groups_saved_before_version_5() {
        let mut conn = at_version_4();
        conn.execute_batch(
            "INSERT INTO groups (id, name, owner, version, next_order)
             VALUES (3, 'team', 'alice', 1, 1), (7, 'ended group 7', 'alice', 2, 4);",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        assert_eq!(version(&conn).unwrap(), 5);
        assert_eq!(group_id_mark(&conn), Some(7), "the tombstone's id counts");

        let mut empty = at_version_4();
        migrate(&mut empty).unwrap();
        assert_eq!(group_id_mark(&empty), None, "no group was ever saved");
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        let err = migrate(&mut conn).unwrap_err();
        assert!(matches!(
            err,
            StoreError::SchemaTooNew {
                found: 99,
                supported: 5
            }
        ));
    }
}
