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

/// The schema steps, oldest first; see the module docs.
const MIGRATIONS: &[&str] = &[V1, V2];

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

    #[test]
    fn migrating_twice_is_a_no_op() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        migrate(&mut conn).unwrap();
        assert_eq!(version(&conn).unwrap(), supported_version());
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
                supported: 2
            }
        ));
    }
}
