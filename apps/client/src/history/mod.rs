//! The history: every message this profile sent and received, in `PROFILE/history.sqlite`.
//!
//! Both modes write a message here *before* they show it (a `message` line, a line on the
//! chat screen), so a crash loses nothing the user saw. The file is this user's own (the
//! profile is 0700); the server never sees it. One process at a time: the database is held
//! in SQLite's exclusive locking mode, so a second `breeze` on the same profile is told the
//! history is locked instead of interleaving writes.
//!
//! What goes wrong is an [`HistoryError`] and never a silent repair: a corrupt file, a locked
//! one or one written by a newer `breeze` is reported and left exactly as it is, and the
//! client goes on chatting without history ([`Journal`]).
//!
//! `schema.rs` holds the tables, `journal.rs` the switch-off-on-failure wrapper the modes use.

use breeze_core::client::{Event, GroupEvent};
use breeze_core::wire::{MessageId, UserName};
use rusqlite::{params, Connection, ErrorCode, OptionalExtension};
use std::fmt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

mod journal;
mod schema;
#[cfg(test)]
pub(crate) mod tests;

pub use journal::{Journal, Journaled};

/// The history file in a profile.
pub const FILE: &str = "history.sqlite";

/// How long to wait for another process's lock before calling the history locked. Short:
/// the lock is held for a whole session, waiting longer would not help.
const BUSY_TIMEOUT: Duration = Duration::from_millis(200);

/// The most messages one query hands back (`history USER N`, a search): what a screen or a
/// script can use, and a bound on memory.
pub const MAX_QUERY: usize = 100_000;

/// Why the history cannot be used.
#[derive(Debug)]
pub enum HistoryError {
    /// The file is not an SQLite database or is damaged. It is left as it is.
    Corrupt(String),
    /// Another process (another `breeze` on this profile) holds the database.
    Locked,
    /// A newer `breeze` wrote it; this one would mangle it.
    Newer { found: u32, known: u32 },
    /// Anything else SQLite or the file system said.
    Sqlite(String),
}

impl fmt::Display for HistoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HistoryError::Corrupt(detail) => write!(
                f,
                "the history database is damaged ({detail}); it was left untouched: move it \
                 aside to start a new one"
            ),
            HistoryError::Locked => write!(
                f,
                "the history database is locked: another breeze uses this profile"
            ),
            HistoryError::Newer { found, known } => write!(
                f,
                "the history database is of version {found}, written by a newer breeze (this \
                 one knows up to {known}); it was left untouched"
            ),
            HistoryError::Sqlite(detail) => write!(f, "history database error: {detail}"),
        }
    }
}

impl std::error::Error for HistoryError {}

impl From<rusqlite::Error> for HistoryError {
    fn from(error: rusqlite::Error) -> HistoryError {
        match error.sqlite_error_code() {
            Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => {
                HistoryError::Corrupt(error.to_string())
            }
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => HistoryError::Locked,
            _ => HistoryError::Sqlite(error.to_string()),
        }
    }
}

/// Who a conversation is with: one peer, or a group.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Conversation {
    Peer(UserName),
    Group(String),
}

impl Conversation {
    /// The `(peer, grp)` columns, exactly one of them set.
    fn columns(&self) -> (Option<&str>, Option<&str>) {
        match self {
            Conversation::Peer(user) => (Some(user.as_str()), None),
            Conversation::Group(group) => (None, Some(group.as_str())),
        }
    }
}

/// Which messages of a conversation [`History::page`] reads, by row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    /// The newest up to and including this row.
    UpTo(i64),
    /// The oldest from this row on.
    From(i64),
}

/// What recording an event came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Noted {
    /// Recorded (or nothing to record): show it.
    Fresh,
    /// A message already recorded, received again: do not show it again.
    Repeat,
}

/// Where a message stands, as the history records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Sent, not yet acknowledged (or the run that sent it ended first).
    Sending,
    Delivered,
    /// Kept on the server for an offline recipient.
    Stored,
    Undeliverable,
    /// Written by someone else.
    Received,
}

impl State {
    fn as_str(self) -> &'static str {
        match self {
            State::Sending => "sending",
            State::Delivered => "delivered",
            State::Stored => "stored",
            State::Undeliverable => "undeliverable",
            State::Received => "received",
        }
    }

    fn parse(text: &str) -> State {
        match text {
            "delivered" => State::Delivered,
            "stored" => State::Stored,
            "undeliverable" => State::Undeliverable,
            "received" => State::Received,
            _ => State::Sending,
        }
    }
}

/// One message as the history keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Its place in the history: unique, and increasing in the order messages were shown.
    pub row: i64,
    pub conversation: Conversation,
    /// Who wrote it (this profile's user for sent ones).
    pub from: String,
    pub outgoing: bool,
    /// The sender's id for it, as the `message` / `sent` events named it.
    pub id: u64,
    /// Milliseconds since the Unix epoch.
    pub at_ms: i64,
    pub text: String,
    /// `direct` or `relay`, once known.
    pub route: Option<String>,
    pub state: State,
}

/// The open history of one profile.
pub struct History {
    conn: Connection,
    me: UserName,
    /// This start of the profile (see `schema.rs`: ids start again every run).
    run: i64,
}

impl History {
    /// Opens (creating) the history at `path` for `me`, holding it for this process.
    pub fn open(path: &Path, me: &UserName) -> Result<History, HistoryError> {
        // Made 0600 like the profile's other files (SQLite gives its WAL the same mode); an
        // existing file is opened as it is, never truncated.
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| HistoryError::Sqlite(format!("cannot open {}: {e}", path.display())))?;
        let conn = Connection::open(path)?;
        History::setup(conn, me)
    }

    /// A history that lives as long as the value (tests, benchmarks).
    #[cfg(test)]
    pub fn in_memory(me: &UserName) -> Result<History, HistoryError> {
        History::setup(Connection::open_in_memory()?, me)
    }

    fn setup(mut conn: Connection, me: &UserName) -> Result<History, HistoryError> {
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // Exclusive: the lock is taken at the first write below and kept until the end.
        // The answer of these pragmas is read, so a file that is not a database fails here.
        let _: String = conn.query_row("PRAGMA locking_mode = EXCLUSIVE", [], |r| r.get(0))?;
        // Before anything writes (WAL mode rewrites the header): a newer file stays as it is.
        schema::refuse_newer(&conn)?;
        let _: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        // NORMAL in WAL mode: a committed message survives the process being killed; only
        // the last ones before a power cut may be lost, never the file.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        schema::upgrade(&mut conn)?;
        conn.execute("INSERT INTO runs (started) VALUES (?1)", [now_ms()])?;
        let run = conn.last_insert_rowid();
        Ok(History {
            conn,
            me: me.clone(),
            run,
        })
    }

    /// Records a message this user sent (`id` as `Client::send` gave it), at `at`.
    pub fn sent(
        &mut self,
        to: &Conversation,
        id: MessageId,
        text: &str,
        at: SystemTime,
    ) -> Result<(), HistoryError> {
        let me = self.me.to_string();
        self.insert(to, &me, true, id, text, None, State::Sending, at)
    }

    /// The id to give the first message of this run: past every id this profile sent.
    pub fn next_message_id(&self) -> Result<u64, HistoryError> {
        let last: Option<i64> = self.conn.query_row(
            "SELECT max(msg_id) FROM messages WHERE outgoing = 1",
            [],
            |r| r.get(0),
        )?;
        Ok(last.map_or(1, |id| (id as u64).saturating_add(1)))
    }

    /// Records what `event` says about messages: a message received, a delivery settled.
    /// Other events are no-ops. [`Noted::Repeat`] for a message the history already holds:
    /// it came again because this client stopped (crashed) before acknowledging it, and was
    /// shown then; showing it again would show it twice.
    pub fn observe(&mut self, event: &Event, at: SystemTime) -> Result<Noted, HistoryError> {
        match event {
            Event::Message {
                from,
                id,
                text,
                route,
            } => {
                let conversation = Conversation::Peer(from.clone());
                if self.holds(&conversation, from, *id, text)? {
                    return Ok(Noted::Repeat);
                }
                let route = route.to_string();
                let from = from.to_string();
                self.insert(
                    &conversation,
                    &from,
                    false,
                    *id,
                    text,
                    Some(&route),
                    State::Received,
                    at,
                )?;
            }
            Event::Delivered { to, id, route } => {
                self.settle(to, *id, State::Delivered, Some(&route.to_string()))?
            }
            Event::Stored { to, id } => self.settle(to, *id, State::Stored, Some("relay"))?,
            Event::Undeliverable { to, id, .. } => {
                self.settle(to, *id, State::Undeliverable, None)?
            }
            // The group's order comes from the server, so a member's own messages are
            // recorded when they come back in that order, marked delivered (to the server,
            // which hands them on; `group_delivered` counts the members).
            Event::Group(GroupEvent::Message {
                name,
                from,
                id,
                text,
                ..
            }) => {
                let conversation = Conversation::Group(name.clone());
                if self.holds(&conversation, from, *id, text)? {
                    return Ok(Noted::Repeat);
                }
                let mine = from == &self.me;
                let state = if mine {
                    State::Delivered
                } else {
                    State::Received
                };
                let from = from.to_string();
                let route = Some("relay");
                self.insert(&conversation, &from, mine, *id, text, route, state, at)?;
            }
            _ => {}
        }
        Ok(Noted::Fresh)
    }

    /// Whether `from`'s message `id` with `text` is already in `conversation`. The text is
    /// compared too: another profile of the same user numbers its messages on its own.
    fn holds(
        &self,
        conversation: &Conversation,
        from: &UserName,
        id: MessageId,
        text: &str,
    ) -> Result<bool, HistoryError> {
        let (peer, grp) = conversation.columns();
        let found = self
            .conn
            .prepare_cached(
                "SELECT 1 FROM messages WHERE (peer = ?1 OR grp = ?2) AND sender = ?3 \
                 AND msg_id = ?4 AND text = ?5 LIMIT 1",
            )?
            .query_row(
                params![peer, grp, from.as_str(), id_column(id.0), text],
                |_| Ok(()),
            )
            .optional()?;
        Ok(found.is_some())
    }

    #[allow(clippy::too_many_arguments)]
    fn insert(
        &self,
        conversation: &Conversation,
        sender: &str,
        outgoing: bool,
        id: MessageId,
        text: &str,
        route: Option<&str>,
        state: State,
        at: SystemTime,
    ) -> Result<(), HistoryError> {
        let (peer, grp) = conversation.columns();
        self.conn
            .prepare_cached(
                "INSERT INTO messages (peer, grp, sender, outgoing, run, msg_id, at_ms, text, \
                 route, state) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?
            .execute(params![
                peer,
                grp,
                sender,
                outgoing,
                self.run,
                id_column(id.0),
                unix_ms(at),
                text,
                route,
                state.as_str()
            ])?;
        Ok(())
    }

    /// The message to `to` with `id` is now in `state`.
    fn settle(
        &mut self,
        to: &UserName,
        id: MessageId,
        state: State,
        route: Option<&str>,
    ) -> Result<(), HistoryError> {
        self.conn
            .prepare_cached(
                "UPDATE messages SET state = ?1, route = coalesce(?2, route) \
                 WHERE peer = ?3 AND msg_id = ?4 AND outgoing = 1",
            )?
            .execute(params![state.as_str(), route, to.as_str(), id_column(id.0)])?;
        Ok(())
    }

    /// The last `n` messages of `conversation`, oldest first.
    pub fn last(&self, conversation: &Conversation, n: usize) -> Result<Vec<Stored>, HistoryError> {
        self.page(conversation, Page::UpTo(i64::MAX), n)
    }

    /// Up to `n` messages of `conversation` on one side of a row, oldest first.
    pub fn page(
        &self,
        conversation: &Conversation,
        page: Page,
        n: usize,
    ) -> Result<Vec<Stored>, HistoryError> {
        let n = n.min(MAX_QUERY) as i64;
        let (peer, grp) = conversation.columns();
        let column = if peer.is_some() { "peer" } else { "grp" };
        let (bound, order) = match page {
            Page::UpTo(row) => ((format!("row <= {row}")), "DESC"),
            Page::From(row) => ((format!("row >= {row}")), "ASC"),
        };
        let mut statement = self.conn.prepare(&select(&format!(
            "WHERE {column} = ?1 AND {bound} ORDER BY row {order} LIMIT ?2"
        )))?;
        let key = peer.or(grp).unwrap_or_default();
        let mut messages = statement
            .query_map(params![key, n], stored)?
            .collect::<Result<Vec<_>, _>>()?;
        if matches!(page, Page::UpTo(_)) {
            messages.reverse();
        }
        Ok(messages)
    }

    /// The peers this profile has one-to-one history with, by name.
    pub fn peers(&self) -> Result<Vec<UserName>, HistoryError> {
        let mut statement = self
            .conn
            .prepare("SELECT DISTINCT peer FROM messages WHERE peer IS NOT NULL ORDER BY peer")?;
        let names = statement
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(names
            .iter()
            .filter_map(|n| UserName::new(n.as_str()).ok())
            .collect())
    }

    /// Messages whose text matches `query` (words, as FTS5 reads them; every word must be
    /// there), newest first, at most `limit`.
    pub fn search(&self, query: &str, limit: usize) -> Result<Vec<Stored>, HistoryError> {
        let Some(query) = fts_query(query) else {
            return Ok(Vec::new());
        };
        let limit = limit.min(MAX_QUERY) as i64;
        let mut statement = self.conn.prepare_cached(&select(
            "WHERE row IN (SELECT rowid FROM messages_text WHERE messages_text MATCH ?1) \
             ORDER BY row DESC LIMIT ?2",
        ))?;
        let found = statement
            .query_map(params![query, limit], stored)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(found)
    }

    /// Forgets messages older than `days` days before `now`; how many went.
    pub fn prune(&mut self, days: u32, now: SystemTime) -> Result<usize, HistoryError> {
        let cutoff = unix_ms(now).saturating_sub(i64::from(days).saturating_mul(86_400_000));
        Ok(self
            .conn
            .execute("DELETE FROM messages WHERE at_ms < ?1", [cutoff])?)
    }

    /// The newest row, if any (what a screen has seen up to).
    pub fn newest_row(&self) -> Result<Option<i64>, HistoryError> {
        Ok(self
            .conn
            .query_row("SELECT max(row) FROM messages", [], |r| r.get(0))
            .optional()?
            .flatten())
    }

    /// Stores many messages in one transaction (tests and the benchmark fill a history
    /// fast): (conversation, outgoing, id, ms since the epoch, text).
    #[cfg(test)]
    pub fn bulk(
        &mut self,
        messages: impl IntoIterator<Item = (Conversation, bool, u64, i64, String)>,
    ) -> Result<(), HistoryError> {
        let tx = self.conn.unchecked_transaction()?;
        for (conversation, outgoing, id, at_ms, text) in messages {
            let (sender, state) = match (&conversation, outgoing) {
                (_, true) => (self.me.to_string(), State::Delivered),
                (Conversation::Peer(peer), false) => (peer.to_string(), State::Received),
                (Conversation::Group(_), false) => ("someone".to_string(), State::Received),
            };
            let at = UNIX_EPOCH + Duration::from_millis(at_ms.max(0) as u64);
            let route = Some("direct");
            let id = MessageId(id);
            self.insert(
                &conversation,
                &sender,
                outgoing,
                id,
                &text,
                route,
                state,
                at,
            )?;
        }
        tx.commit()?;
        Ok(())
    }
}

/// The columns every query reads, then `tail`.
fn select(tail: &str) -> String {
    format!(
        "SELECT row, peer, grp, sender, outgoing, msg_id, at_ms, text, route, state \
         FROM messages {tail}"
    )
}

fn stored(row: &rusqlite::Row) -> rusqlite::Result<Stored> {
    let peer: Option<String> = row.get(1)?;
    let grp: Option<String> = row.get(2)?;
    let conversation = match (peer, grp) {
        (Some(peer), _) => match UserName::new(peer.as_str()) {
            Ok(user) => Conversation::Peer(user),
            Err(_) => Conversation::Group(peer),
        },
        (None, grp) => Conversation::Group(grp.unwrap_or_default()),
    };
    let state: String = row.get(9)?;
    let id: i64 = row.get(5)?;
    Ok(Stored {
        row: row.get(0)?,
        conversation,
        from: row.get(3)?,
        outgoing: row.get(4)?,
        id: id as u64,
        at_ms: row.get(6)?,
        text: row.get(7)?,
        route: row.get(8)?,
        state: State::parse(&state),
    })
}

/// A message id as SQLite stores integers (i64): the same 64 bits, read back with `as u64`.
fn id_column(id: u64) -> i64 {
    id as i64
}

/// `text` as an FTS5 query: each word quoted (so `"`, `*`, `AND`… in what the user typed are
/// words, not syntax), all of them required. `None` when there is no word.
fn fts_query(text: &str) -> Option<String> {
    let words: Vec<String> = text
        .split_whitespace()
        .map(|word| format!("\"{}\"", word.replace('"', "\"\"")))
        .collect();
    (!words.is_empty()).then(|| words.join(" "))
}

/// `at` in milliseconds since the Unix epoch (0 for a clock before it).
pub fn unix_ms(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn now_ms() -> i64 {
    unix_ms(SystemTime::now())
}
