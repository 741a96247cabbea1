//! The history as the two modes use it: a [`History`] while it works, and once it does not,
//! the reason, so the client keeps chatting without history and can say why.

use super::{Conversation, History, HistoryError, Stored};
use breeze_core::client::Event;
use breeze_core::wire::MessageId;
use std::time::SystemTime;

/// The history of this session, or why there is none.
pub struct Journal {
    history: Result<History, String>,
}

impl Journal {
    /// A journal writing to `history`, or without one because it could not be opened.
    pub fn new(history: Result<History, HistoryError>) -> Journal {
        Journal {
            history: history.map_err(|e| format!("history is off: {e}")),
        }
    }

    /// A journal that keeps nothing, saying `why`.
    pub fn off(why: impl Into<String>) -> Journal {
        Journal {
            history: Err(why.into()),
        }
    }

    /// Why there is no history, if there is none.
    pub fn problem(&self) -> Option<&str> {
        self.history.as_ref().err().map(String::as_str)
    }

    /// Records what `event` says about messages (see [`History::observe`]). `Some(warning)`
    /// the one time a write fails: the history is off from then on.
    pub fn observe(&mut self, event: &Event, at: SystemTime) -> Option<String> {
        let result = self.history.as_mut().ok()?.observe(event, at);
        self.check(result)
    }

    /// Records a sent message; a warning as for [`Journal::observe`].
    pub fn sent(
        &mut self,
        to: &Conversation,
        id: MessageId,
        text: &str,
        at: SystemTime,
    ) -> Option<String> {
        let result = self.history.as_mut().ok()?.sent(to, id, text, at);
        self.check(result)
    }

    /// The last `n` messages with `conversation`, oldest first.
    pub fn last(&self, conversation: &Conversation, n: usize) -> Result<Vec<Stored>, String> {
        self.read(|history| history.last(conversation, n))
    }

    /// Messages matching `query`, newest first.
    pub fn search(&self, query: &str, limit: usize) -> Result<Vec<Stored>, String> {
        self.read(|history| history.search(query, limit))
    }

    fn read<T>(
        &self,
        query: impl FnOnce(&History) -> Result<T, HistoryError>,
    ) -> Result<T, String> {
        match &self.history {
            Ok(history) => query(history).map_err(|e| e.to_string()),
            Err(why) => Err(why.clone()),
        }
    }

    fn check(&mut self, result: Result<(), HistoryError>) -> Option<String> {
        let error = result.err()?;
        let warning = format!("history is off from now on: {error}");
        self.history = Err(warning.clone());
        Some(warning)
    }
}
