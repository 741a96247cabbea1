//! Who is online where, and the introductions that pair them up for direct channels.

use super::output::{Event, LogoutReason};
use super::{ConnId, Server};
use crate::secure::PublicKey;
use crate::seeded_hash::{SeededMap, SeededState};
use crate::wire::{PeerIntro, ServerFrame, UserName};
use std::net::SocketAddr;
use std::time::Instant;

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

impl Server {
    /// Introduces a user who just logged in on `conn` to everyone online, and everyone to
    /// them: each side learns where the other listens and which key it must prove it holds
    /// on a direct channel. The newcomer's list goes
    /// in pages of `presence_page`, never one giant frame, the last one marked `last` (also
    /// when nobody else is online, so the client always learns the list is complete).
    pub(super) fn introduce(
        &mut self,
        conn: ConnId,
        user: &UserName,
        endpoint: SocketAddr,
        now: Instant,
    ) {
        let Some(key) = self.session_key(conn) else {
            return;
        };
        let others: Vec<(UserName, ConnId, SocketAddr, PublicKey)> = self
            .presence
            .iter()
            .filter(|(_, other)| *other != conn)
            .filter_map(|(name, other)| {
                let session = self.conns.get(&other)?.session()?;
                Some((name.clone(), other, session.endpoint, session.key))
            })
            .collect();
        let page_size = self.config.presence_page.max(1);
        let mut page = Vec::with_capacity(page_size.min(others.len()));
        let pages = others.len().div_ceil(page_size).max(1);
        let mut sent_pages = 0;
        for (name, other, other_endpoint, other_key) in others {
            let intro = PeerIntro {
                user: user.clone(),
                endpoint,
                key,
            };
            self.send(other, &ServerFrame::PeerOnline(intro), now);
            self.events.push_back(Event::Introduced {
                a: user.clone(),
                b: name.clone(),
            });
            page.push(PeerIntro {
                user: name,
                endpoint: other_endpoint,
                key: other_key,
            });
            if page.len() == page_size {
                sent_pages += 1;
                let peers = std::mem::take(&mut page);
                self.send(
                    conn,
                    &ServerFrame::Presence {
                        peers,
                        last: sent_pages == pages,
                    },
                    now,
                );
            }
        }
        if sent_pages < pages {
            self.send(
                conn,
                &ServerFrame::Presence {
                    peers: page,
                    last: true,
                },
                now,
            );
        }
    }

    /// `user`'s session on `conn` ended: everyone else hears it (unless the whole server is
    /// going down, when nobody is left to care). A session already replaced by a newer login
    /// is not online any more, and says nothing.
    pub(super) fn go_offline(
        &mut self,
        conn: ConnId,
        user: UserName,
        reason: LogoutReason,
        now: Instant,
    ) {
        if !self.presence.remove(&user, conn) {
            return;
        }
        if !self.shutting_down {
            let others: Vec<ConnId> = self.presence.iter().map(|(_, c)| c).collect();
            for other in others {
                self.send(other, &ServerFrame::PeerOffline { user: user.clone() }, now);
            }
        }
        self.events.push_back(Event::LoggedOut { user, reason });
    }
}
