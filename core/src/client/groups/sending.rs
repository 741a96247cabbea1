//! Sending this member's group messages: sealed under its current group key, a new key (with
//! an envelope for every member) whenever the membership or a member's key changed, and sent
//! again until the server has taken them.

use super::super::output::{Event, SendError};
use super::super::Client;
use super::{GroupEvent, MyKey, Outgoing};
use crate::secure::{GroupKey, GroupSealHeader, PairKey, PublicKey};
use crate::wire::{ClientFrame, GroupError, GroupId, GroupMessage, MessageId, UserName};
use std::time::Instant;

impl Client {
    /// Queues a message for a group this user is in. It goes to the server (groups are
    /// ordered there), now or once the server is back; the user's own copy comes back as a
    /// [`GroupEvent::Message`] in its place in the group's order.
    pub fn send_group(
        &mut self,
        group: GroupId,
        text: String,
        now: Instant,
    ) -> Result<MessageId, SendError> {
        self.check_sendable(&text)?;
        let max_outbox = self.config.max_outbox;
        let Some(state) = self.groups.by_id.get_mut(&group).filter(|g| g.member) else {
            return Err(SendError::NotInGroup);
        };
        if state.outbox.len() >= max_outbox {
            return Err(SendError::Backlog);
        }
        let id = MessageId(self.next_message_id);
        self.next_message_id += 1;
        let seq = state.next_seq;
        state.next_seq += 1;
        state.outbox.push_back(Outgoing {
            seq,
            id,
            text,
            sealed: None,
            sent: false,
        });
        self.flush_group(group, now);
        self.finish(now);
        Ok(id)
    }

    /// Sends what waits for `group`, making a new key first if the one handed out no longer
    /// fits the membership. Without every member's key (asked of the server) it waits.
    pub(in crate::client) fn flush_group(&mut self, id: GroupId, now: Instant) {
        if !self.server.is_online() {
            return;
        }
        let Some(group) = self.groups.by_id.get(&id) else {
            return;
        };
        if !group.member || group.outbox.iter().all(|o| o.sent) {
            return;
        }
        let members = group.info.members.clone();
        let version = group.info.version;
        let Some(pairs) = self.member_pairs(&members, now) else {
            return;
        };
        let keyed: Vec<(UserName, PublicKey)> = members
            .iter()
            .cloned()
            .zip(pairs.iter().map(PairKey::theirs))
            .collect();
        let Some(group) = self.groups.by_id.get_mut(&id) else {
            return;
        };
        let stale = group
            .mine
            .as_ref()
            .is_none_or(|k| k.version != version || k.keyed != keyed);
        if stale {
            let key = GroupKey::generate(&mut self.rng);
            let generation = self.rng.next_u64();
            let envelopes = members
                .iter()
                .zip(&pairs)
                .map(|(m, pair)| key.envelope(m, pair, id, generation, version, &mut self.rng))
                .collect();
            group.mine = Some(MyKey {
                key,
                generation,
                version,
                keyed,
                envelopes: Some(envelopes),
            });
            for waiting in group.outbox.iter_mut().filter(|o| !o.sent) {
                waiting.sealed = None;
            }
        }
        let me = self.identity.public();
        let epoch = self.epoch;
        let mut frames = Vec::new();
        if let Some(mine) = group.mine.as_mut() {
            for outgoing in group.outbox.iter_mut().filter(|o| !o.sent) {
                let message = outgoing.sealed.get_or_insert_with(|| {
                    let header = GroupSealHeader {
                        group: id,
                        id: outgoing.id,
                        epoch,
                        seq: outgoing.seq,
                        generation: mine.generation,
                    };
                    GroupMessage {
                        id: outgoing.id,
                        epoch,
                        seq: outgoing.seq,
                        generation: mine.generation,
                        version: mine.version,
                        keys: mine.envelopes.take().unwrap_or_default(),
                        sealed: mine.key.seal(
                            &me,
                            &header,
                            outgoing.text.as_bytes(),
                            &mut self.rng,
                        ),
                    }
                });
                frames.push(message.clone());
                outgoing.sent = true;
            }
        }
        for message in frames {
            if !self.send_server(&ClientFrame::GroupSend { group: id, message }, now) {
                break;
            }
        }
    }

    /// The pair key with every member (this user's own for itself), in member order; `None`
    /// while some member's key is still being asked for.
    fn member_pairs(&mut self, members: &[UserName], now: Instant) -> Option<Vec<PairKey>> {
        let mut pairs = Vec::with_capacity(members.len());
        let mut missing = false;
        for member in members {
            if member == &self.config.user {
                pairs.push(PairKey::new(&self.identity, &self.identity.public())?);
                continue;
            }
            self.peer_mut(member, now);
            match self.pair_key(member, now) {
                Some(pair) => pairs.push(pair),
                None => missing = true,
            }
        }
        (!missing).then_some(pairs)
    }

    /// Sends every group's waiting messages (after a login, or once a member's key arrived).
    pub(in crate::client) fn flush_groups(&mut self, now: Instant) {
        let ids: Vec<GroupId> = self.groups.by_id.keys().copied().collect();
        for id in ids {
            self.flush_group(id, now);
        }
    }

    /// A new login: whatever was not taken goes again (the server drops what it has already).
    pub(in crate::client) fn resend_groups(&mut self, now: Instant) {
        for group in self.groups.by_id.values_mut() {
            for outgoing in group.outbox.iter_mut() {
                outgoing.sent = false;
            }
        }
        self.flush_groups(now);
    }

    pub(in crate::client) fn on_group_accepted(&mut self, id: GroupId, epoch: u64, through: u64) {
        if epoch != self.epoch {
            return;
        }
        if let Some(group) = self.groups.by_id.get_mut(&id) {
            while group.outbox.front().is_some_and(|o| o.seq <= through) {
                group.outbox.pop_front();
            }
        }
    }

    /// The server wants the messages from `from_seq` on again, under a new key.
    pub(in crate::client) fn on_group_rekey(
        &mut self,
        id: GroupId,
        epoch: u64,
        from_seq: u64,
        now: Instant,
    ) {
        if epoch != self.epoch {
            return;
        }
        let Some(group) = self.groups.by_id.get_mut(&id) else {
            return;
        };
        group.mine = None;
        for outgoing in group.outbox.iter_mut().filter(|o| o.seq >= from_seq) {
            outgoing.sent = false;
            outgoing.sealed = None;
        }
        self.flush_group(id, now);
    }

    /// The server will never take the message `from_seq`: it is given up, and the ones after
    /// it take its place in the sequence (the server takes a sender's messages without gaps).
    pub(in crate::client) fn on_group_send_refused(
        &mut self,
        id: GroupId,
        epoch: u64,
        from_seq: u64,
        error: GroupError,
        now: Instant,
    ) {
        if epoch != self.epoch {
            return;
        }
        let Some(group) = self.groups.by_id.get_mut(&id) else {
            return;
        };
        let hopeless = matches!(error, GroupError::NotMember | GroupError::UnknownGroup);
        let mut failed = Vec::new();
        group.outbox.retain(|o| {
            let drop = o.seq == from_seq || (hopeless && o.seq > from_seq);
            if drop {
                failed.push(o.id);
            }
            !drop
        });
        let mut seq = from_seq;
        for outgoing in group.outbox.iter_mut().filter(|o| o.seq > from_seq) {
            outgoing.seq = seq;
            outgoing.sent = false;
            outgoing.sealed = None;
            seq += 1;
        }
        if !failed.is_empty() {
            group.next_seq = seq;
        }
        for message in failed {
            self.events.push_back(Event::Group(GroupEvent::SendFailed {
                group: id,
                id: message,
                error: error.clone(),
            }));
        }
        self.flush_group(id, now);
    }
}
