//! One conversation on the chat screen: its entries (the history it opened with, then what
//! this session saw), how many arrived unread, the marker where unread starts, and where the
//! view is scrolled to.
//!
//! The history part is read once, the first time the conversation is needed, and only up to
//! the newest row there was when the session started: everything newer this session saw
//! itself, so the two never overlap, whenever the history is read.

use super::{Entry, Fate};
use crate::history::{Conversation, State, Stored};
use breeze_core::wire::MessageId;
use breeze_core::wire::UserName;
use breeze_core::Via;
use std::collections::VecDeque;

/// Entries kept per conversation; older ones scroll away (they stay in the history).
pub const KEPT: usize = 1000;

/// An entry and when it happened.
pub struct Timed {
    /// Milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// Its row in the history, for messages read from it (search results jump to rows).
    pub row: Option<i64>,
    pub entry: Entry,
}

/// Where the view of a conversation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scroll {
    /// Following the newest entry.
    Bottom,
    /// This line (of the wrapped conversation) at the top.
    Line(usize),
    /// This entry at the top (a search result jumped to).
    Entry(usize),
}

pub struct Chat {
    pub entries: VecDeque<Timed>,
    /// Whether the history part has been read.
    pub loaded: bool,
    /// Messages that arrived while another conversation was on screen.
    pub unread: usize,
    pub scroll: Scroll,
    /// The history part starts at a search result rather than ending at the newest.
    jumped: bool,
}

impl Default for Chat {
    fn default() -> Chat {
        Chat {
            entries: VecDeque::new(),
            loaded: false,
            unread: 0,
            scroll: Scroll::Bottom,
            jumped: false,
        }
    }
}

impl Chat {
    pub fn push(&mut self, timed: Timed) {
        self.entries.push_back(timed);
        if self.entries.len() > KEPT {
            self.entries.pop_front();
            if let Scroll::Entry(at) = &mut self.scroll {
                *at = at.saturating_sub(1);
            }
        }
    }

    /// Puts `history` (oldest first) before what this session saw, once.
    pub fn load(&mut self, history: Vec<Stored>) {
        if self.loaded {
            return;
        }
        self.loaded = true;
        let room = KEPT.saturating_sub(self.entries.len());
        let skip = history.len().saturating_sub(room);
        for stored in history.into_iter().skip(skip).rev() {
            self.entries.push_front(from_history(stored));
        }
    }

    /// Shows `history` (from a search result on) in place of the history part, with the
    /// result at the top.
    pub fn jump(&mut self, history: Vec<Stored>, row: i64) {
        self.entries.retain(|t| t.row.is_none());
        self.loaded = false;
        self.load(history);
        self.jumped = true;
        self.show_row(row);
    }

    /// Back to the newest entry; after a jump, the history part is read again up to the
    /// newest (`loaded` false: the screen asks for it).
    pub fn back_to_newest(&mut self) {
        self.scroll = Scroll::Bottom;
        if self.jumped {
            self.jumped = false;
            self.entries.retain(|t| t.row.is_none());
            self.loaded = false;
        }
    }

    /// Scrolls to the entry of `row`; false if it is not here.
    pub fn show_row(&mut self, row: i64) -> bool {
        match self.entries.iter().position(|t| t.row == Some(row)) {
            Some(at) => {
                self.scroll = Scroll::Entry(at);
                true
            }
            None => false,
        }
    }

    /// A message arrived while this conversation was not on screen: count it, and mark
    /// where the unread ones start if that is not marked yet.
    pub fn arrived_unseen(&mut self, at_ms: i64) {
        if self.unread == 0 && !self.has_marker() {
            self.push(Timed {
                at_ms,
                row: None,
                entry: Entry::UnreadMarker,
            });
        }
        self.unread += 1;
    }

    /// The user opened the conversation: nothing is unread any more, the marker stays
    /// until they leave it.
    pub fn opened(&mut self) {
        self.unread = 0;
    }

    /// The user left the conversation: the marker has served.
    pub fn left(&mut self) {
        self.entries
            .retain(|t| !matches!(t.entry, Entry::UnreadMarker));
        self.scroll = Scroll::Bottom;
    }

    fn has_marker(&self) -> bool {
        self.entries
            .iter()
            .any(|t| matches!(t.entry, Entry::UnreadMarker))
    }

    /// Settles this session's message `sent` (the newest with that id).
    pub fn settle(&mut self, sent: MessageId, new_fate: Fate) {
        for timed in self.entries.iter_mut().rev() {
            if let Entry::Mine { id, fate, .. } = &mut timed.entry {
                if *id == sent {
                    *fate = new_fate;
                    return;
                }
            }
        }
    }
}

/// A stored message as an entry of the conversation.
fn from_history(stored: Stored) -> Timed {
    let route = match stored.route.as_deref() {
        Some("relay") => Via::Relay,
        _ => Via::Direct,
    };
    let entry = if stored.outgoing {
        let fate = match stored.state {
            State::Delivered => Fate::Delivered(route),
            State::Stored => Fate::Stored,
            State::Undeliverable => Fate::Undeliverable("refused by the server".into()),
            State::Sending | State::Received => Fate::Unconfirmed,
        };
        Entry::Mine {
            id: MessageId(stored.id),
            text: stored.text,
            fate,
        }
    } else if let (Conversation::Group(_), Ok(from)) =
        (&stored.conversation, UserName::new(stored.from.as_str()))
    {
        Entry::Said {
            from,
            text: stored.text,
        }
    } else {
        Entry::Theirs {
            text: stored.text,
            route,
        }
    };
    Timed {
        at_ms: stored.at_ms,
        row: Some(stored.row),
        entry,
    }
}
