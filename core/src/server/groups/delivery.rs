//! Sending each member its group messages in the group's order, each once per session.
//!
//! A session gets messages live while it keeps up. At login, and whenever it fell behind (its
//! output over half its bound) it gets them from the store instead, a page at a time as its
//! output drains: every message is stored, with a row per recipient, before anyone is sent it,
//! so whatever a session skipped live is in the store. `sent` never goes backwards, so a
//! message both skipped live and loaded is sent once.

use super::super::output::Action;
use super::super::{ConnId, Server};
use super::StoredGroupMessage;
use crate::wire::{GroupId, KeyEnvelope, OrderedGroupMessage, ServerFrame, UserName};
use std::collections::HashMap;
use std::time::Instant;

/// Messages per page loaded from the store.
pub const BACKLOG_PAGE: usize = 256;

/// What one session has been sent of each group.
#[derive(Debug, Default)]
pub struct SessionGroups {
    /// Per group, the highest place in its order sent on this session.
    sent: HashMap<GroupId, u64>,
    /// Per group, the highest place acknowledged on this session.
    acked: HashMap<GroupId, u64>,
    /// A page from the store is being loaded.
    loading: bool,
    /// Fell behind: load from the store once the output has drained.
    lagging: bool,
    /// Something was skipped while loading or lagging: load again after this page.
    reload: bool,
}

impl Server {
    fn session_groups(&mut self, conn: ConnId) -> Option<(&UserName, &mut SessionGroups)> {
        let session = self.conns.get_mut(&conn)?.session_mut()?;
        Some((&session.user, &mut session.groups))
    }

    /// One message to one online member, if that session is keeping up.
    pub(super) fn deliver_live(
        &mut self,
        conn: ConnId,
        message: &StoredGroupMessage,
        now: Instant,
    ) {
        let high_water = self.config.max_pending_output / 2;
        let congested = self.outbound.pending(conn) > high_water;
        let Some((user, groups)) = self.session_groups(conn) else {
            return;
        };
        if groups.loading || groups.lagging || congested {
            groups.lagging |= congested;
            groups.reload = true;
            return;
        }
        let sent = groups.sent.entry(message.group).or_insert(0);
        if message.order <= *sent {
            return;
        }
        *sent = message.order;
        groups
            .acked
            .entry(message.group)
            .or_insert(message.order - 1);
        let frame = ServerFrame::GroupMessage(ordered_for(user, message));
        self.stats.group_delivered += 1;
        self.send(conn, &frame, now);
    }

    /// Asks the host for the next page of what is stored for the user on `conn`.
    pub(in crate::server) fn load_group_backlog(&mut self, conn: ConnId) {
        let Some((user, groups)) = self.session_groups(conn) else {
            return;
        };
        groups.loading = true;
        groups.lagging = false;
        groups.reload = false;
        let after = groups.sent.iter().map(|(g, o)| (*g, *o)).collect();
        let user = user.clone();
        self.actions.push_back(Action::LoadGroupBacklog {
            user,
            after,
            limit: BACKLOG_PAGE,
        });
    }

    /// The host's answer to [`Action::LoadGroupBacklog`]: messages in order per group, with
    /// the user's envelope; `more` if the page was full.
    pub(in crate::server) fn on_group_backlog_loaded(
        &mut self,
        user: &UserName,
        messages: Vec<OrderedGroupMessage>,
        more: bool,
        now: Instant,
    ) {
        let Some(conn) = self.presence.conn_of(user) else {
            return;
        };
        let Some((_, groups)) = self.session_groups(conn) else {
            return;
        };
        groups.loading = false;
        let again = more || groups.reload;
        let high_water = self.config.max_pending_output / 2;
        let mut progressed = false;
        let mut cut_short = false;
        for message in messages {
            if self.outbound.pending(conn) > high_water {
                // The rest stays in the store for the next page, once this has drained.
                cut_short = true;
                break;
            }
            let Some((_, groups)) = self.session_groups(conn) else {
                return;
            };
            let sent = groups.sent.entry(message.group).or_insert(0);
            if message.order <= *sent {
                continue;
            }
            *sent = message.order;
            groups
                .acked
                .entry(message.group)
                .or_insert(message.order - 1);
            progressed = true;
            self.stats.group_delivered += 1;
            self.send(conn, &ServerFrame::GroupMessage(message), now);
        }
        let again = again || cut_short;
        if again && progressed {
            // Each page sent fills the output, so this ends once the session must drain.
            self.resume_group_delivery(conn);
        } else if again {
            // A page with nothing new: ask again at the next sweep, never in a tight loop.
            if let Some((_, groups)) = self.session_groups(conn) {
                groups.lagging = true;
            }
        }
    }

    /// Loads the next page now if the session's output has drained, else at a later sweep.
    fn resume_group_delivery(&mut self, conn: ConnId) {
        let low_water = self.config.max_pending_output / 8;
        if self.outbound.pending(conn) <= low_water {
            self.load_group_backlog(conn);
        } else if let Some((_, groups)) = self.session_groups(conn) {
            groups.lagging = true;
        }
    }

    /// The session on `conn` wrote some of its output: if it fell behind in a group and has
    /// drained, the next page comes now rather than at the next sweep.
    pub(in crate::server) fn group_output_drained(&mut self, conn: ConnId) {
        let waiting = self
            .conns
            .get(&conn)
            .and_then(|c| c.session())
            .is_some_and(|s| s.groups.lagging && !s.groups.loading);
        if waiting && self.outbound.pending(conn) <= self.config.max_pending_output / 8 {
            self.load_group_backlog(conn);
        }
    }

    /// The sweep's part: sessions that fell behind and have drained load from the store, and
    /// senders hear how far their messages got (one report per message per sweep at most).
    pub(in crate::server) fn sweep_groups(&mut self, now: Instant) {
        let lagging: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| {
                c.session()
                    .is_some_and(|s| s.groups.lagging && !s.groups.loading)
            })
            .map(|(conn, _)| *conn)
            .collect();
        for conn in lagging {
            self.resume_group_delivery(conn);
        }
        let dirty = std::mem::take(&mut self.groups.progress_dirty);
        for id in dirty {
            let Some(group) = self.groups.by_id.get_mut(&id) else {
                continue;
            };
            let mut reports = Vec::new();
            for progress in group.progress.iter_mut().filter(|p| p.dirty) {
                progress.dirty = false;
                reports.push((
                    progress.from.clone(),
                    ServerFrame::GroupDelivered {
                        group: id,
                        id: progress.id,
                        delivered: progress.delivered,
                        members: progress.members,
                    },
                ));
            }
            for (from, frame) in reports {
                if let Some(conn) = self.presence.conn_of(&from) {
                    self.send(conn, &frame, now);
                }
            }
        }
    }

    /// A member acknowledged `group` through `through` (never past what it was sent): the
    /// store may delete its copies, and the senders' counts go up.
    pub(in crate::server) fn on_group_ack(&mut self, conn: ConnId, id: GroupId, through: u64) {
        let Some((user, groups)) = self.session_groups(conn) else {
            return;
        };
        let through = through.min(groups.sent.get(&id).copied().unwrap_or(0));
        let Some(acked) = groups.acked.get_mut(&id) else {
            return;
        };
        if through <= *acked {
            return;
        }
        let before = std::mem::replace(acked, through);
        let user = user.clone();
        if let Some(group) = self.groups.by_id.get_mut(&id) {
            let mut changed = false;
            let start = group.progress.partition_point(|p| p.order <= before);
            for progress in group.progress.range_mut(start..) {
                if progress.order > through {
                    break;
                }
                if progress.from != user && progress.delivered < progress.members {
                    progress.delivered += 1;
                    progress.dirty = true;
                    changed = true;
                }
            }
            if changed {
                self.groups.progress_dirty.insert(id);
            }
        }
        self.actions.push_back(Action::AckGroup {
            user,
            group: id,
            through,
        });
    }
}

/// `message` as `user` receives it: with `user`'s envelope only.
pub fn ordered_for(user: &UserName, message: &StoredGroupMessage) -> OrderedGroupMessage {
    let mut copy = message.message.clone();
    copy.keys = message
        .envelopes
        .sealed
        .get(user)
        .map(|sealed| KeyEnvelope {
            to: user.clone(),
            sealed: sealed.clone(),
        })
        .into_iter()
        .collect();
    OrderedGroupMessage {
        group: message.group,
        order: message.order,
        from: message.from.clone(),
        key: message.key,
        message: copy,
    }
}
