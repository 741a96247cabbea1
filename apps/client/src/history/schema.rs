//! The history's tables, versioned with SQLite's `PRAGMA user_version`.
//!
//! `STEPS[i]` takes the schema from version `i` to `i + 1`; each step commits with its version
//! bump, so a crash mid-upgrade leaves the previous version whole. A file of a newer version
//! (a newer `breeze` wrote it) is refused, never rewritten. Append steps; never edit one.

use super::HistoryError;
use rusqlite::Connection;

/// Version 1.
///
/// A conversation is a peer *or* a group: exactly one of `peer` and `grp` is set (the CHECK),
/// so group messages share the table, the order and the search with one-to-one ones. `row` is
/// the rowid: SQLite gives a new row a rowid above every row present, so ordering by it is the
/// order messages were shown in. `msg_id` is the core's `MessageId`, the sender's numbering:
/// this client starts each run past the ids it sent before (`History::next_message_id`), so
/// (conversation, `sender`, `msg_id`) names one message, which is how a delivery
/// finds its message and how a message sent again after a crash is told from a new one.
/// `run` counts the starts of this profile. `at_ms` is
/// milliseconds since the Unix epoch, when this client sent or received it. `state` is
/// `sending`, `delivered`, `stored`, `undeliverable` or `received`; `route` is `direct` or
/// `relay` once known. `messages_text` is the FTS5 index over `text`, kept by triggers.
const V1: &str = "
CREATE TABLE runs (
    run     INTEGER PRIMARY KEY,
    started INTEGER NOT NULL
) STRICT;

CREATE TABLE messages (
    row      INTEGER PRIMARY KEY,
    peer     TEXT,
    grp      TEXT,
    sender   TEXT NOT NULL,
    outgoing INTEGER NOT NULL CHECK (outgoing IN (0, 1)),
    run      INTEGER NOT NULL,
    msg_id   INTEGER NOT NULL,
    at_ms    INTEGER NOT NULL,
    text     TEXT NOT NULL,
    route    TEXT,
    state    TEXT NOT NULL,
    CHECK ((peer IS NULL) <> (grp IS NULL))
) STRICT;

CREATE INDEX messages_by_peer ON messages (peer, row) WHERE peer IS NOT NULL;
CREATE INDEX messages_by_group ON messages (grp, row) WHERE grp IS NOT NULL;
CREATE INDEX messages_by_time ON messages (at_ms);
CREATE INDEX messages_by_id ON messages (msg_id, sender);

CREATE VIRTUAL TABLE messages_text USING fts5 (text, content = 'messages', content_rowid = 'row');

CREATE TRIGGER messages_text_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_text (rowid, text) VALUES (new.row, new.text);
END;
CREATE TRIGGER messages_text_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_text (messages_text, rowid, text) VALUES ('delete', old.row, old.text);
END;
";

const STEPS: &[&str] = &[V1];

/// The schema version this build writes and understands.
pub const VERSION: u32 = STEPS.len() as u32;

pub fn version(conn: &Connection) -> Result<u32, HistoryError> {
    Ok(conn.query_row("PRAGMA user_version", [], |row| row.get(0))?)
}

/// The file's version, or [`HistoryError::Newer`] when a newer `breeze` wrote it.
pub fn refuse_newer(conn: &Connection) -> Result<u32, HistoryError> {
    let found = version(conn)?;
    if found > VERSION {
        return Err(HistoryError::Newer {
            found,
            known: VERSION,
        });
    }
    Ok(found)
}

/// Brings the database up to [`VERSION`]; a newer one is refused untouched.
pub fn upgrade(conn: &mut Connection) -> Result<(), HistoryError> {
    let found = refuse_newer(conn)?;
    for (from, step) in (found..).zip(STEPS.iter().skip(found as usize)) {
        let tx = conn.transaction()?;
        tx.execute_batch(step)?;
        tx.pragma_update(None, "user_version", from + 1)?;
        tx.commit()?;
    }
    Ok(())
}
