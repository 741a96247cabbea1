//! Forwarding between online users, and the offline store for chat: messages, their
//! acknowledgements and file messages all pass through here untouched, sealed end to end by
//! their senders (the server sees only the headers it needs; see `wire::sealed`).

use super::connection::Phase;
use super::file_relay::Budget;
use super::output::{Action, ConnError, OfflineChat, StoreOutcome};
use super::{ConnId, Server};
use crate::secure::SEAL_OVERHEAD;
use crate::wire::{FileHint, KeyLookup, SealedAck, SealedChat, SealedFile, ServerFrame, UserName};
use std::time::Instant;

impl Server {
    /// A chat message `from` sent on `conn` for `to`: forwarded if `to` is online, else
    /// handed to the host to store.
    pub(super) fn on_relay(
        &mut self,
        conn: ConnId,
        from: UserName,
        to: UserName,
        chat: SealedChat,
        now: Instant,
    ) {
        if chat.len() > self.config.max_text_len + SEAL_OVERHEAD {
            return self.fail(conn, ConnError::TextTooLong, now);
        }
        if to == from {
            return;
        }
        let Some(key) = self.session_key(conn) else {
            return;
        };
        self.stats.relayed_text_bytes += chat.len() as u64;
        match self.presence.conn_of(&to) {
            Some(peer) => {
                self.stats.relayed += 1;
                self.send(peer, &ServerFrame::Relayed { from, key, chat }, now);
            }
            None => {
                self.stats.stored += 1;
                let message = OfflineChat { from, key, chat };
                self.actions.push_back(Action::StoreOffline { to, message });
            }
        }
    }

    /// Someone asks for `user`'s key, to seal for them: the live session's key if they are
    /// online, else the host looks it up.
    pub(super) fn on_key_request(&mut self, conn: ConnId, user: UserName, now: Instant) {
        let online = self.presence.conn_of(&user);
        let key = online
            .and_then(|c| self.conns.get(&c)?.session())
            .map(|s| s.key);
        match key {
            Some(key) => {
                let key = KeyLookup::Key(key);
                self.send(conn, &ServerFrame::UserKey { user, key }, now);
            }
            None => self.actions.push_back(Action::LoadKey { conn, user }),
        }
    }

    /// An acknowledgement from `conn` of what `to` sent: it goes on to `to`, and tells the host
    /// to delete what it covers if those messages came from the store.
    pub(super) fn on_relay_ack(
        &mut self,
        conn: ConnId,
        to: UserName,
        ack: SealedAck,
        now: Instant,
    ) {
        let Some(session) = self.conns.get(&conn).and_then(|c| c.session()) else {
            return;
        };
        let me = session.user.clone();
        let numbers = ack.ack;
        let from_store = session
            .stored_delivered
            .contains(&(to.clone(), numbers.epoch));
        if from_store {
            self.actions.push_back(Action::DeleteOffline {
                to: me.clone(),
                from: to.clone(),
                epoch: numbers.epoch,
                through: numbers.through,
            });
        }
        if let Some(peer) = self.presence.conn_of(&to) {
            self.send(peer, &ServerFrame::RelayedAck { from: me, ack }, now);
        }
    }

    /// Forwards a file message as it is. Chunks spend the sender's relay budget; over budget
    /// they are dropped and the sender told once where to resume. Nothing is stored: a file
    /// for someone offline is refused.
    pub(super) fn on_relay_file(
        &mut self,
        conn: ConnId,
        to: UserName,
        message: SealedFile,
        now: Instant,
    ) {
        let limit = self.config.file_relay;
        let Some(peer) = self.presence.conn_of(&to) else {
            if message.hint == FileHint::Offer {
                let id = message.id;
                self.send(conn, &ServerFrame::FileUndeliverable { to, id }, now);
            }
            return;
        };
        let congested = self.outbound.pending(peer) > limit.recipient_high_water;
        let Some(Phase::Online(session)) = self.conns.get_mut(&conn).map(|c| &mut c.phase) else {
            return;
        };
        if let FileHint::Chunk { offset, len } = message.hint {
            let (id, offset, len) = (&message.id, &offset, len as usize);
            let budget = if congested {
                session.file_budget.congested(*id, *offset)
            } else {
                session.file_budget.spend(limit, *id, *offset, len, now)
            };
            match budget {
                Budget::Forward => self.stats.relayed_file_bytes += len as u64,
                Budget::Drop => {
                    self.stats.throttled_file_bytes += len as u64;
                    return;
                }
                Budget::Throttle { retry_after } => {
                    self.stats.throttled_file_bytes += len as u64;
                    // Rounded up: a sender resuming a fraction of a millisecond early would find
                    // the budget still short.
                    let retry_after_ms =
                        retry_after.as_micros().div_ceil(1000).min(u32::MAX as u128) as u32;
                    let (id, offset) = (*id, *offset);
                    let frame = ServerFrame::FileThrottled {
                        to,
                        id,
                        offset,
                        retry_after_ms,
                    };
                    self.send(conn, &frame, now);
                    return;
                }
            }
        }
        let (from, key) = (session.user.clone(), session.key);
        let frame = ServerFrame::RelayedFile { from, key, message };
        self.send(peer, &frame, now);
    }

    /// What the store held for `user`, delivered in stored order; remembered per sender so the
    /// recipient's acknowledgement reaches the store.
    pub(super) fn on_offline_loaded(
        &mut self,
        user: &UserName,
        messages: Vec<OfflineChat>,
        now: Instant,
    ) {
        let Some(conn) = self.presence.conn_of(user) else {
            return;
        };
        for OfflineChat { from, key, chat } in messages {
            if let Some(Phase::Online(session)) = self.conns.get_mut(&conn).map(|c| &mut c.phase) {
                session.stored_delivered.insert((from.clone(), chat.epoch));
            }
            self.send(conn, &ServerFrame::Relayed { from, key, chat }, now);
        }
    }

    /// The store's answer for one message: only now is the sender told "stored", since a
    /// promise to deliver later must not go out before the message is safe on disk.
    pub(super) fn on_offline_stored(
        &mut self,
        to: UserName,
        message: &OfflineChat,
        outcome: StoreOutcome,
        now: Instant,
    ) {
        let (from, epoch, seq) = (&message.from, message.chat.epoch, message.chat.seq);
        let frame = match outcome {
            StoreOutcome::Stored => ServerFrame::Stored { to, epoch, seq },
            StoreOutcome::Undeliverable(reason) => ServerFrame::Undeliverable {
                to,
                epoch,
                seq,
                reason,
            },
            // Nothing said: the sender's acknowledgement timeout offers it again.
            StoreOutcome::Failed => return,
        };
        if let Some(conn) = self.presence.conn_of(from) {
            self.send(conn, &frame, now);
        }
    }
}
