//! The history as the two modes use it: a [`History`] while it works, and once it does not,
//! the reason, so the client keeps chatting without history and can say why.

use super::{Conversation, History, HistoryError, Noted, Page, Stored};
use breeze_core::client::Event;
use breeze_core::wire::MessageId;
use breeze_core::wire::UserName;
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

    /// Why there is no history, if there is none.
    pub fn problem(&self) -> Option<&str> {
        self.history.as_ref().err().map(String::as_str)
    }

    /// Records what `event` says about messages (see [`History::observe`]).
    pub fn observe(&mut self, event: &Event, at: SystemTime) -> Journaled {
        let Ok(history) = self.history.as_mut() else {
            return Journaled::Show;
        };
        match history.observe(event, at) {
            Ok(Noted::Fresh) => Journaled::Show,
            Ok(Noted::Repeat) => Journaled::Repeat,
            Err(error) => Journaled::Warning(self.switch_off(error)),
        }
    }

    /// The id for this run's first message (see [`History::next_message_id`]); 1 without
    /// history.
    pub fn next_message_id(&self) -> u64 {
        self.history
            .as_ref()
            .ok()
            .and_then(|h| h.next_message_id().ok())
            .unwrap_or(1)
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

    /// Up to `n` messages of `conversation` on one side of a row, oldest first.
    pub fn page(
        &self,
        conversation: &Conversation,
        page: Page,
        n: usize,
    ) -> Result<Vec<Stored>, String> {
        self.read(|history| history.page(conversation, page, n))
    }

    /// The peers with a one-to-one history; none without history.
    pub fn peers(&self) -> Vec<UserName> {
        self.read(History::peers).unwrap_or_default()
    }

    /// The newest row when the session started: what the screen reads from the history,
    /// newer ones it saw itself.
    pub fn newest_row(&self) -> i64 {
        self.read(History::newest_row).ok().flatten().unwrap_or(0)
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
        Some(self.switch_off(error))
    }

    /// Ends the history for this session after `error`; the warning to show.
    fn switch_off(&mut self, error: HistoryError) -> String {
        let warning = format!("history is off from now on: {error}");
        self.history = Err(warning.clone());
        warning
    }
}

/// What to do with an event once the journal has seen it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Journaled {
    /// Show it.
    Show,
    /// A message shown before (in a run that crashed before acknowledging it): skip it.
    Repeat,
    /// The history failed and is off from now on: show the event, and this warning.
    Warning(String),
}
