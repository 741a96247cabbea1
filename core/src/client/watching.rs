//! The users this client asks the server to tell it about.
//!
//! On a large server a session hears only the presence of the users it watches (see the
//! server's presence rules), so the client watches whoever the user cares about: peers met
//! before (the profile's keys), everyone it sends to or hears from, group members, and any
//! user the host names through [`Client::watch`]. The set is sent right behind the login
//! frame, so the online list that answers the login already covers it, and each newcomer is
//! sent as it appears. On a small server the watch is redundant and costs next to nothing.

use super::Client;
use crate::wire::{ClientFrame, UserName, MAX_WATCH_PER_FRAME};
use std::time::Instant;

/// Users one client watches at most; the server has its own bound (`max_watched`).
pub const MAX_WATCHED: usize = 2_000;

impl Client {
    /// Asks to hear when `user` comes and goes, and to be introduced to it while it is online
    /// (so a direct channel can open): what a chat screen calls when a conversation is
    /// opened or a contact shown. Watching is idempotent; past 2,000 users it is
    /// ignored.
    pub fn watch(&mut self, user: &UserName, now: Instant) {
        self.note_interest(user);
        self.finish(now);
    }

    /// Records that the user cares about `user`; sent with the next flush when online.
    pub(super) fn note_interest(&mut self, user: &UserName) {
        if *user == self.config.user
            || self.interest.contains(user)
            || self.interest.len() >= MAX_WATCHED
        {
            return;
        }
        self.interest.insert(user.clone());
        self.watch_queue.push(user.clone());
    }

    /// A new server connection: every user of interest is watched afresh (the server forgot
    /// the old session's watches), remembered peers included.
    pub(super) fn rewatch_all(&mut self) {
        let remembered: Vec<UserName> = self.remembered_keys.keys().cloned().collect();
        for user in remembered {
            self.note_interest(&user);
        }
        self.watch_queue = self.interest.iter().cloned().collect();
        self.watch_queue.sort_unstable();
    }

    /// Sends what is queued, in frames of [`MAX_WATCH_PER_FRAME`]. Queued while the server is
    /// away, it waits for the next connection (which sends the whole set anyway).
    pub(super) fn send_watches(&mut self, now: Instant) {
        if self.watch_queue.is_empty() || !self.server.has_wire() {
            return;
        }
        let queued = std::mem::take(&mut self.watch_queue);
        for users in queued.chunks(MAX_WATCH_PER_FRAME) {
            let frame = ClientFrame::Watch {
                users: users.to_vec(),
            };
            self.send_server(&frame, now);
        }
    }
}
