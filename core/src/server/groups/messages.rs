//! Taking group messages: each is checked (member, not a duplicate, keyed for the current
//! membership), given the next place in the group's order, stored by the host, and only then
//! delivered, in order. A message the server announced and then lost in a crash would leave
//! the members with different histories.

use super::super::output::Action;
use super::super::{ConnId, Server};
use super::{Envelopes, Progress, StoredGroupMessage, Taken, PROGRESS_WINDOW};
use crate::secure::SEAL_OVERHEAD;
use crate::wire::{GroupError, GroupId, GroupMessage, ServerFrame};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

/// The most a sealed key envelope can be: a 32-byte key plus the seal.
const MAX_ENVELOPE: usize = 32 + SEAL_OVERHEAD;

impl Server {
    /// A group message from the user on `conn`.
    pub(in crate::server) fn on_group_send(
        &mut self,
        conn: ConnId,
        id: GroupId,
        mut message: GroupMessage,
        now: Instant,
    ) {
        let Some((user, key)) = self
            .conns
            .get(&conn)
            .and_then(|c| c.session())
            .map(|s| (s.user.clone(), s.key))
        else {
            return;
        };
        let (epoch, seq) = (message.epoch, message.seq);
        let refuse = |error| ServerFrame::GroupSendRefused {
            group: id,
            epoch,
            from_seq: seq,
            error,
        };
        if message.sealed.len() > self.config.max_text_len + SEAL_OVERHEAD {
            return self.send(conn, &refuse(GroupError::TooLong), now);
        }
        let Some(group) = self.groups.by_id.get_mut(&id) else {
            return self.send(conn, &refuse(GroupError::UnknownGroup), now);
        };
        let version = group.info.version;
        let Some(member) = group.members.get_mut(&user) else {
            return self.send(conn, &refuse(GroupError::NotMember), now);
        };
        match member.waiting_for {
            // It follows a message of the same run that must come again first.
            Some((e, s)) if e == epoch && s != seq => return,
            // A new run of the sender's client: what the old one left unsent is gone with it.
            _ => member.waiting_for = None,
        }
        match member.last_taken {
            Some((e, s)) if e == epoch && seq <= s => {
                // Sent again after a lost acceptance: say so again (once it is stored).
                let pending = group.taken.values().any(|t| t.message.from == user);
                if !pending {
                    let frame = ServerFrame::GroupAccepted {
                        group: id,
                        epoch,
                        through: s,
                    };
                    self.send(conn, &frame, now);
                }
                return;
            }
            // One before it is missing; the sender sends again from there.
            Some((e, s)) if e == epoch && seq != s + 1 => return,
            _ => {}
        }
        let keyed = if message.keys.is_empty() {
            member
                .envelopes
                .as_ref()
                .filter(|e| e.version == version && e.generation == message.generation)
                .cloned()
        } else {
            let fits = message.version == version
                && message.keys.len() == group.info.members.len()
                && message.keys.iter().all(|k| k.sealed.len() <= MAX_ENVELOPE);
            let sealed: HashMap<_, _> = message.keys.drain(..).map(|k| (k.to, k.sealed)).collect();
            let covers = group.info.members.iter().all(|m| sealed.contains_key(m));
            (fits && covers).then(|| {
                Arc::new(Envelopes {
                    generation: message.generation,
                    version,
                    sealed,
                })
            })
        };
        let Some(envelopes) = keyed else {
            member.waiting_for = Some((epoch, seq));
            let frame = ServerFrame::GroupRekey {
                group: id,
                epoch,
                from_seq: seq,
                version,
            };
            return self.send(conn, &frame, now);
        };
        member.waiting_for = None;
        member.last_taken = Some((epoch, seq));
        member.envelopes = Some(envelopes.clone());
        let order = group.next_order;
        group.next_order += 1;
        let stored = Arc::new(StoredGroupMessage {
            group: id,
            order,
            from: user,
            key,
            message,
            recipients: group.recipients.clone(),
            envelopes,
        });
        group.taken.insert(
            order,
            Taken {
                message: stored.clone(),
                stored: None,
                cancelled: false,
            },
        );
        self.stats.group_taken += 1;
        self.actions.push_back(Action::StoreGroupMessage {
            message: stored,
            next_order: order + 1,
        });
    }

    /// The host's answer to [`Action::StoreGroupMessage`]. A message the host could not store
    /// is sent again by its sender (told to rekey from it), and what the sender sent after it
    /// is dropped, so that its messages keep their order.
    pub(in crate::server) fn on_group_stored(
        &mut self,
        id: GroupId,
        order: u64,
        stored: bool,
        now: Instant,
    ) {
        let Some(group) = self.groups.by_id.get_mut(&id) else {
            return;
        };
        let Some(taken) = group.taken.get_mut(&order) else {
            return;
        };
        taken.stored = Some(stored);
        if !stored && !taken.cancelled {
            let from = taken.message.from.clone();
            let (epoch, seq) = (taken.message.message.epoch, taken.message.message.seq);
            for later in group.taken.values_mut() {
                if later.message.from == from && later.message.order > order {
                    later.cancelled = true;
                }
            }
            if let Some(member) = group.members.get_mut(&from) {
                member.last_taken = (seq > 1).then_some((epoch, seq - 1));
                member.waiting_for = Some((epoch, seq));
            }
            let frame = ServerFrame::GroupRekey {
                group: id,
                epoch,
                from_seq: seq,
                version: group.info.version,
            };
            if let Some(conn) = self.presence.conn_of(&from) {
                self.send(conn, &frame, now);
            }
        }
        self.deliver_ready(id, now);
    }

    /// Delivers, in order, every taken message whose turn has come (stored, and everything
    /// before it settled).
    fn deliver_ready(&mut self, id: GroupId, now: Instant) {
        loop {
            let Some(group) = self.groups.by_id.get_mut(&id) else {
                return;
            };
            let Some(entry) = group.taken.first_entry() else {
                return;
            };
            let Some(stored) = entry.get().stored else {
                return;
            };
            let Taken {
                message, cancelled, ..
            } = entry.remove();
            if cancelled {
                if stored {
                    self.actions.push_back(Action::DeleteGroupMessage {
                        group: id,
                        order: message.order,
                    });
                }
                continue;
            }
            if !stored {
                continue;
            }
            let members = message.recipients.len().saturating_sub(1) as u32;
            if group.progress.len() >= PROGRESS_WINDOW {
                group.progress.pop_front();
            }
            group.progress.push_back(Progress {
                order: message.order,
                from: message.from.clone(),
                id: message.message.id,
                delivered: 0,
                members,
                dirty: false,
            });
            let accepted = ServerFrame::GroupAccepted {
                group: id,
                epoch: message.message.epoch,
                through: message.message.seq,
            };
            if let Some(conn) = self.presence.conn_of(&message.from) {
                self.send(conn, &accepted, now);
            }
            for recipient in message.recipients.iter() {
                if let Some(conn) = self.presence.conn_of(recipient) {
                    self.deliver_live(conn, &message, now);
                }
            }
        }
    }
}
