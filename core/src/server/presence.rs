//! Who is online where, and the introductions that pair them up for direct channels.

use super::ConnId;
use crate::seeded_hash::{SeededMap, SeededState};
use crate::wire::UserName;

/// The online table: one session per user, by connection.
///
/// Invariant: a user maps to a connection exactly when that connection's phase is `Online`
/// with that user. [`Server::check_invariants`](super::Server::check_invariants) verifies it.
#[derive(Debug)]
pub(super) struct Presence {
    online: SeededMap<UserName, ConnId>,
}

impl Presence {
    pub fn new(hash: SeededState) -> Self {
        Presence {
            online: SeededMap::with_hasher(hash),
        }
    }

    pub fn conn_of(&self, user: &UserName) -> Option<ConnId> {
        self.online.get(user).copied()
    }

    /// Records `user` on `conn`; returns the connection it replaces, if any.
    pub fn insert(&mut self, user: UserName, conn: ConnId) -> Option<ConnId> {
        self.online.insert(user, conn)
    }

    /// Removes `user` if (and only if) it is online on `conn`.
    pub fn remove(&mut self, user: &UserName, conn: ConnId) -> bool {
        if self.online.get(user) == Some(&conn) {
            self.online.remove(user);
            true
        } else {
            false
        }
    }

    pub fn len(&self) -> usize {
        self.online.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&UserName, ConnId)> {
        self.online.iter().map(|(user, conn)| (user, *conn))
    }
}
