//! Receiving group messages in the server's order: each shown once, opened with the sender's
//! group key (from the envelope the server hands out with it, the first time), and
//! acknowledged so the server can drop its copy.

use super::super::output::Event;
use super::super::Client;
use super::{GroupEvent, GroupState};
use crate::secure::{GroupKey, GroupSealHeader, PairKey};
use crate::wire::{ClientFrame, GroupInfo, OrderedGroupMessage};
use std::time::Instant;

impl Client {
    pub(in crate::client) fn on_group_message(
        &mut self,
        ordered: OrderedGroupMessage,
        now: Instant,
    ) {
        let OrderedGroupMessage {
            group: id,
            order,
            from,
            key: sender,
            message,
        } = ordered;
        let me = self.config.user.clone();
        let pair = if from == me {
            PairKey::new(&self.identity, &self.identity.public())
        } else {
            self.vouched_key(&from, sender, now);
            self.pair_key(&from, now)
        };
        let state = self.groups.by_id.entry(id).or_insert_with(|| {
            // A group left before this client started: what was stored from before is still
            // this user's to read.
            let mut state = GroupState::new(GroupInfo {
                id,
                name: format!("group-{id}"),
                owner: from.clone(),
                members: Vec::new(),
                version: 0,
            });
            state.member = false;
            state
        });
        self.groups.acks_owed.insert(id);
        if order <= state.received {
            return;
        }
        state.received = order;
        let generation = message.generation;
        let key = match state.sender_key(&from, generation) {
            Some(key) => Some(key.clone()),
            None => {
                let envelope = message.keys.iter().find(|e| e.to == me);
                let opened = envelope.zip(pair.as_ref()).and_then(|(envelope, pair)| {
                    GroupKey::open_envelope(envelope, pair, id, generation, message.version).ok()
                });
                if let Some(key) = &opened {
                    state.remember_key(&from, generation, key.clone());
                }
                opened
            }
        };
        let header = GroupSealHeader {
            group: id,
            id: message.id,
            epoch: message.epoch,
            seq: message.seq,
            generation,
        };
        let text = key
            .and_then(|key| key.open(&sender, &header, &message.sealed).ok())
            .and_then(|text| String::from_utf8(text).ok())
            .filter(|text| text.len() <= self.config.max_text_len);
        let event = match text {
            Some(text) => GroupEvent::Message {
                group: id,
                name: state.info.name.clone(),
                from,
                id: message.id,
                order,
                text,
            },
            None => GroupEvent::Forged { group: id, from },
        };
        self.events.push_back(Event::Group(event));
    }

    /// One cumulative acknowledgement per group that received something in this input.
    pub(in crate::client) fn send_group_acks(&mut self, now: Instant) {
        if self.groups.acks_owed.is_empty() || !self.server.is_online() {
            return;
        }
        for id in std::mem::take(&mut self.groups.acks_owed) {
            let Some(through) = self.groups.by_id.get(&id).map(|g| g.received) else {
                continue;
            };
            let frame = ClientFrame::GroupAck { group: id, through };
            self.send_server(&frame, now);
        }
    }
}
