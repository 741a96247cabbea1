//! Who is online where, who must hear when that changes, and the introductions that pair
//! users up for direct channels.
//!
//! Presence costs what changes, not who is online. On a small server (fewer than
//! `presence_everyone_below` online at login) a session is an *everyone* session: it gets the
//! whole online list and every later change, as a small office expects. Beyond that a session
//! hears only about the users it watches ([`ClientFrame::Watch`](crate::wire::ClientFrame::Watch)):
//! its conversations and groups. At most `presence_everyone_below` everyone sessions are ever
//! online together (each saw fewer than that many online when it logged in), so a login is
//! told to at most that many plus its watchers, whatever the number online.
//!
//! A server that fills up (`presence_everyone_until` online) turns its everyone sessions into
//! watching ones, each told so with a fresh list of whom it watches: no client goes on
//! hearing of, and holding a record for, every user of a busy server.
//!
//! Changes are not sent as they happen but gathered and sent every `presence_batch`, one
//! frame per observer per batch, each user once in its latest state: a storm of logins after
//! a restart costs each observer a few frames, not one per login.

use super::connection::Phase;
use super::output::{Event, LogoutReason};
use super::{ConnId, Server};
use crate::seeded_hash::{SeededMap, SeededState};
use crate::wire::{PeerIntro, ServerFrame, UserName, MAX_WATCH_PER_FRAME};
use std::collections::HashSet;
use std::time::Instant;

/// The online table, the observers of each user, and the changes not yet told.
///
/// Invariant: a user maps to a connection exactly when that connection's phase is `Online`
/// with that user. [`Server::check_invariants`](super::Server::check_invariants) verifies it.
#[derive(Debug)]
pub(super) struct Presence {
    online: SeededMap<UserName, ConnId>,
    /// Sessions told about every login and logout.
    everyone: HashSet<ConnId, SeededState>,
    /// Who watches each user, online or not: the sessions to tell when it comes or goes.
    watchers: SeededMap<UserName, Vec<ConnId>>,
    /// Users whose presence changed since the last batch went out, each once (walked in the
    /// seeded hash's order, so a replay sends the same batches).
    changed: HashSet<UserName, SeededState>,
    /// When the gathered changes go out.
    flush_at: Option<Instant>,
}

impl Presence {
    pub fn new(hash: SeededState) -> Self {
        Presence {
            online: SeededMap::with_hasher(hash),
            everyone: HashSet::with_hasher(hash),
            watchers: SeededMap::with_hasher(hash),
            changed: HashSet::with_hasher(hash),
            flush_at: None,
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

    /// Sessions that hear about everyone now.
    pub fn everyone_count(&self) -> usize {
        self.everyone.len()
    }

    /// When the gathered changes are due to go out.
    pub fn flush_at(&self) -> Option<Instant> {
        self.flush_at
    }

    fn note_change(&mut self, user: &UserName, due: Instant) {
        self.changed.insert(user.clone());
        self.flush_at.get_or_insert(due);
    }

    fn add_watcher(&mut self, user: &UserName, conn: ConnId) {
        let watchers = self.watchers.entry(user.clone()).or_default();
        if !watchers.contains(&conn) {
            watchers.push(conn);
        }
    }

    fn remove_watcher(&mut self, user: &UserName, conn: ConnId) {
        if let Some(watchers) = self.watchers.get_mut(user) {
            watchers.retain(|c| *c != conn);
            if watchers.is_empty() {
                self.watchers.remove(user);
            }
        }
    }
}

impl Server {
    /// The introduction of the user online on `conn`, as peers are given it.
    fn intro_of(&self, conn: ConnId) -> Option<PeerIntro> {
        let session = self.conns.get(&conn)?.session()?;
        Some(PeerIntro {
            user: session.user.clone(),
            endpoint: session.endpoint,
            key: session.key,
        })
    }

    /// The introductions of the users in `watching` who are online, but `conn`'s own.
    fn watched_online<'w>(
        &self,
        conn: ConnId,
        watching: impl IntoIterator<Item = &'w UserName>,
    ) -> Vec<PeerIntro> {
        watching
            .into_iter()
            .filter_map(|watched| self.presence.conn_of(watched))
            .filter(|other| *other != conn)
            .filter_map(|c| self.intro_of(c))
            .collect()
    }

    /// A watch frame: recorded on the connection (also before the login is through, since a
    /// client sends it right behind its login frame); once online, the watched users who are
    /// online now are introduced at once. Past `max_watched` per session the rest is ignored:
    /// a client only loses presence for users beyond that many.
    pub(super) fn on_watch(&mut self, conn: ConnId, users: Vec<UserName>, now: Instant) {
        if users.len() > MAX_WATCH_PER_FRAME {
            return self.fail(conn, super::output::ConnError::UnexpectedFrame, now);
        }
        let max = self.config.max_watched;
        let Some(connection) = self.conns.get_mut(&conn) else {
            return;
        };
        let online = matches!(connection.phase, Phase::Online(_));
        let mut added = Vec::new();
        for user in users {
            if connection.watching.len() >= max {
                break;
            }
            if !connection.watching.contains(&user) {
                connection.watching.insert(user.clone());
                added.push(user);
            }
        }
        if !online {
            return;
        }
        let mut intros = Vec::new();
        for user in added {
            self.presence.add_watcher(&user, conn);
            if let Some(intro) = self.presence.conn_of(&user).and_then(|c| self.intro_of(c)) {
                intros.push(intro);
            }
        }
        if !intros.is_empty() {
            self.stats.presence_frames += 1;
            self.stats.presence_entries += intros.len() as u64;
            let frame = ServerFrame::PresenceChanged {
                online: intros,
                offline: Vec::new(),
            };
            self.send(conn, &frame, now);
        }
    }

    /// A user just logged in on `conn`: it becomes an observer (of everyone on a small server,
    /// else of whom it watches) and gets the list of those online now, in pages of
    /// `presence_page` (the last marked, also when empty, so the client learns the list is
    /// complete); its arrival is told to its observers with the next batch.
    pub(super) fn introduce(&mut self, conn: ConnId, user: &UserName, now: Instant) {
        let others_online = self.presence.len().saturating_sub(1);
        let everyone = others_online < self.config.presence_everyone_below;
        let watching: Vec<UserName> = match self.conns.get(&conn) {
            Some(connection) => connection.watching.iter().cloned().collect(),
            None => return,
        };
        for watched in &watching {
            self.presence.add_watcher(watched, conn);
        }
        let listed: Vec<PeerIntro> = if everyone {
            self.presence.everyone.insert(conn);
            let conns: Vec<ConnId> = self
                .presence
                .iter()
                .filter(|(_, other)| *other != conn)
                .map(|(_, other)| other)
                .collect();
            conns.into_iter().filter_map(|c| self.intro_of(c)).collect()
        } else {
            self.watched_online(conn, &watching)
        };
        self.events.push_back(Event::Introduced {
            user: user.clone(),
            listed: listed.len(),
            everyone,
        });
        self.send_presence_list(conn, listed, everyone, now);
        let due = now + self.config.presence_batch;
        self.presence.note_change(user, due);
        if self.presence.len() >= self.config.presence_everyone_until {
            self.end_everyone_sessions(now);
        }
    }

    /// `listed` to `conn` in pages of `presence_page`, the last marked (also when empty, so
    /// the client learns the list is complete).
    fn send_presence_list(
        &mut self,
        conn: ConnId,
        listed: Vec<PeerIntro>,
        everyone: bool,
        now: Instant,
    ) {
        let page_size = self.config.presence_page.max(1);
        let pages = listed.len().div_ceil(page_size).max(1);
        let mut listed = listed.into_iter();
        for page in 1..=pages {
            let peers: Vec<PeerIntro> = listed.by_ref().take(page_size).collect();
            let last = page == pages;
            self.stats.presence_frames += 1;
            self.stats.presence_entries += peers.len() as u64;
            self.send(
                conn,
                &ServerFrame::Presence {
                    peers,
                    last,
                    everyone,
                },
                now,
            );
        }
    }

    /// The server filled up: every everyone session becomes a watching one, and gets the list
    /// of the users it watches who are online (the client takes it as its new view, as after
    /// a login). It is already its watched users' watcher, so it hears of them from the next
    /// batch on.
    fn end_everyone_sessions(&mut self, now: Instant) {
        let hash = *self.presence.everyone.hasher();
        let ended = std::mem::replace(&mut self.presence.everyone, HashSet::with_hasher(hash));
        let mut ended: Vec<ConnId> = ended.into_iter().collect();
        // In connection order, so a replay sends the same frames.
        ended.sort_unstable();
        for conn in ended {
            let Some(connection) = self.conns.get(&conn) else {
                continue;
            };
            let Some(user) = connection.session().map(|s| s.user.clone()) else {
                continue;
            };
            let listed = self.watched_online(conn, &connection.watching);
            let listed_count = listed.len();
            self.events.push_back(Event::EveryoneEnded {
                user,
                listed: listed_count,
            });
            self.send_presence_list(conn, listed, false, now);
        }
    }

    /// `user`'s session on `conn` ended: its observers hear it with the next batch (unless the
    /// whole server is going down, when nobody is left to care), and it observes no one any
    /// more. A session already replaced by a newer login is not online any more, and says
    /// nothing.
    pub(super) fn go_offline(
        &mut self,
        conn: ConnId,
        user: UserName,
        watching: HashSet<UserName>,
        reason: LogoutReason,
        now: Instant,
    ) {
        self.presence.everyone.remove(&conn);
        for watched in &watching {
            self.presence.remove_watcher(watched, conn);
        }
        if !self.presence.remove(&user, conn) {
            return;
        }
        if !self.shutting_down {
            let due = now + self.config.presence_batch;
            self.presence.note_change(&user, due);
        }
        self.events.push_back(Event::LoggedOut { user, reason });
    }

    /// Sends the gathered changes if they are due: each user once, in its state now (online
    /// with its current introduction, or offline), to everyone sessions and to its watchers,
    /// in pages of `presence_page`.
    pub(super) fn flush_presence(&mut self, now: Instant) {
        match self.presence.flush_at {
            Some(due) if now >= due => {}
            _ => return,
        }
        self.presence.flush_at = None;
        let hash = *self.presence.changed.hasher();
        let changed = std::mem::replace(&mut self.presence.changed, HashSet::with_hasher(hash));
        let mut all = Batch::default();
        let mut per_watcher: SeededMap<ConnId, Batch> =
            SeededMap::with_hasher(*self.presence.online.hasher());
        for user in changed {
            let now_online = self.presence.conn_of(&user).and_then(|c| self.intro_of(c));
            let watchers = self.presence.watchers.get(&user).map(Vec::as_slice);
            for watcher in watchers.unwrap_or_default() {
                if !self.presence.everyone.contains(watcher) {
                    per_watcher
                        .entry(*watcher)
                        .or_default()
                        .add(&user, now_online.as_ref());
                }
            }
            all.add(&user, now_online.as_ref());
        }
        let everyone: Vec<ConnId> = self.presence.everyone.iter().copied().collect();
        let page = self.config.presence_page.max(1);
        if !all.is_empty() {
            for (frame, entries) in all.into_frames(page) {
                for conn in &everyone {
                    self.stats.presence_frames += 1;
                    self.stats.presence_entries += entries;
                    self.send(*conn, &frame, now);
                }
            }
        }
        for (conn, batch) in per_watcher {
            for (frame, entries) in batch.into_frames(page) {
                self.stats.presence_frames += 1;
                self.stats.presence_entries += entries;
                self.send(conn, &frame, now);
            }
        }
    }
}

/// Changes for one observer (or for all everyone sessions).
#[derive(Default)]
struct Batch {
    online: Vec<PeerIntro>,
    offline: Vec<UserName>,
}

impl Batch {
    fn add(&mut self, user: &UserName, now_online: Option<&PeerIntro>) {
        match now_online {
            Some(intro) => self.online.push(intro.clone()),
            None => self.offline.push(user.clone()),
        }
    }

    fn is_empty(&self) -> bool {
        self.online.is_empty() && self.offline.is_empty()
    }

    /// The batch in frames of at most `page` users each, with how many each holds.
    fn into_frames(self, page: usize) -> Vec<(ServerFrame, u64)> {
        let mut frames = Vec::new();
        let mut online = self.online.into_iter().peekable();
        let mut offline = self.offline.into_iter().peekable();
        while online.peek().is_some() || offline.peek().is_some() {
            let online_part: Vec<PeerIntro> = online.by_ref().take(page).collect();
            let room = page - online_part.len();
            let offline_part: Vec<UserName> = offline.by_ref().take(room).collect();
            let entries = (online_part.len() + offline_part.len()) as u64;
            let frame = ServerFrame::PresenceChanged {
                online: online_part,
                offline: offline_part,
            };
            frames.push((frame, entries));
        }
        frames
    }
}
