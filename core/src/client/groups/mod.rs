//! Groups as one member sees them: the groups it is in, what it has received of each (in the
//! server's order), its own messages on their way, and the group keys.
//!
//! `sending.rs` seals and sends this member's messages (with a new key and its envelopes
//! whenever the membership changed), `receiving.rs` opens and shows the others' in order, and
//! `requests.rs` asks the server to create and change groups and takes its answers.

mod events;
mod receiving;
mod requests;
mod sending;

pub use events::GroupEvent;

use crate::secure::{GroupKey, PublicKey};
use crate::wire::{GroupId, GroupInfo, GroupMessage, KeyEnvelope, MessageId, UserName};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

/// Keys kept per sender per group: enough for the messages still on their way after a change.
const KEYS_PER_SENDER: usize = 4;

/// One of this member's messages not yet accepted by the server.
#[derive(Debug)]
pub(super) struct Outgoing {
    pub seq: u64,
    pub id: MessageId,
    pub text: String,
    /// Sealed under the key current when it was sent; cleared when it must be sealed again.
    pub sealed: Option<GroupMessage>,
    pub sent: bool,
}

/// This member's current key for a group, and whom it was handed to.
#[derive(Debug)]
pub(super) struct MyKey {
    pub key: GroupKey,
    pub generation: u64,
    pub version: u64,
    /// The members and the keys their envelopes were sealed to.
    pub keyed: Vec<(UserName, PublicKey)>,
    /// The envelopes, until the first message under this key carries them.
    pub envelopes: Option<Vec<KeyEnvelope>>,
}

#[derive(Debug)]
pub(super) struct GroupState {
    pub info: GroupInfo,
    /// Still a member (a group left is kept to open what was stored from before).
    pub member: bool,
    /// The highest place in the group's order shown.
    pub received: u64,
    pub mine: Option<MyKey>,
    /// Senders' keys by generation, newest last.
    pub keys: HashMap<UserName, VecDeque<(u64, GroupKey)>>,
    pub outbox: VecDeque<Outgoing>,
    pub next_seq: u64,
}

impl GroupState {
    pub(super) fn new(info: GroupInfo) -> Self {
        GroupState {
            info,
            member: true,
            received: 0,
            mine: None,
            keys: HashMap::new(),
            outbox: VecDeque::new(),
            next_seq: 1,
        }
    }

    fn sender_key(&self, from: &UserName, generation: u64) -> Option<&GroupKey> {
        let keys = self.keys.get(from)?;
        keys.iter().find(|(g, _)| *g == generation).map(|(_, k)| k)
    }

    fn remember_key(&mut self, from: &UserName, generation: u64, key: GroupKey) {
        let keys = self.keys.entry(from.clone()).or_default();
        keys.retain(|(g, _)| *g != generation);
        if keys.len() >= KEYS_PER_SENDER {
            keys.pop_front();
        }
        keys.push_back((generation, key));
    }
}

/// Every group this client knows of.
#[derive(Debug, Default)]
pub(super) struct ClientGroups {
    pub by_id: BTreeMap<GroupId, GroupState>,
    /// The groups listed since login, until the list is complete.
    pub listing: Option<BTreeSet<GroupId>>,
    /// Groups owed an acknowledgement once the current input is handled.
    pub acks_owed: BTreeSet<GroupId>,
    pub next_request: u64,
}

impl ClientGroups {
    pub fn by_name(&self, name: &str) -> Option<GroupId> {
        self.by_id
            .iter()
            .find(|(_, g)| g.member && g.info.name == name)
            .map(|(id, _)| *id)
    }
}
