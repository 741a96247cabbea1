//! Groups on the server: who is in which group, the order of each group's messages, and what
//! each member's session has been sent.
//!
//! One file per job: this one holds the tables; `requests.rs` creates and changes groups (saved
//! by the host before anyone is told), `messages.rs` takes, orders, stores and fans out group
//! messages, `delivery.rs` sends each member its messages in order (live, or from the store at
//! login and when a slow member has caught up). How groups keep their promise (every member
//! gets every message sent while a member exactly once, all in the same order) is written up in
//! `docs/ARCHITECTURE.md` §11 Groups.

mod delivery;
mod memory;
mod messages;
pub(super) mod requests;

pub use delivery::SessionGroups;
pub use memory::MemoryGroupStore;

use crate::secure::PublicKey;
use crate::wire::{GroupId, GroupInfo, GroupMessage, UserName};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

/// A group as the host keeps it on disk, and hands back at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRecord {
    /// The group, its name, owner, members and membership version.
    pub info: GroupInfo,
    /// The place the next accepted message gets in the group's order.
    pub next_order: u64,
    /// Per member, the last (epoch, seq) of theirs the group took: a message sent again after a
    /// lost acceptance is recognised, also across server restarts.
    pub last_taken: Vec<(UserName, u64, u64)>,
}

/// What the host hands a server at start: the groups it keeps, and the highest id it ever saved.
///
/// The mark is kept apart from the records because a group can go for good (ended, nothing
/// owed): its record is deleted, but its id must still never be given to a new group, whose
/// places a member still running would take for the old one's and drop as already shown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SavedGroups {
    /// Every group kept (an ended one still owed to someone comes with no members).
    pub records: Vec<GroupRecord>,
    /// The highest id of any group ever saved, raised in the transaction of every save (so
    /// before anyone hears of a new group); `None` if no group was ever saved.
    pub highest_id: Option<GroupId>,
}

/// One member's envelopes for its current key: one sealed copy of the key per member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelopes {
    /// Which of the sender's keys.
    pub generation: u64,
    /// The membership version they were made for.
    pub version: u64,
    /// Per member, the sealed key.
    pub sealed: HashMap<UserName, Vec<u8>>,
}

/// A group message the server took, to be stored and then delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredGroupMessage {
    /// The group.
    pub group: GroupId,
    /// Its place in the group's order.
    pub order: u64,
    /// The sender.
    pub from: UserName,
    /// The sender's key, which members open its envelopes with.
    pub key: PublicKey,
    /// The message without envelopes.
    pub message: GroupMessage,
    /// Who receives it (every member at the time, the sender included).
    pub recipients: Arc<[UserName]>,
    /// The sender's envelopes for the key that sealed it: each recipient's goes with its copy.
    pub envelopes: Arc<Envelopes>,
}

#[derive(Debug, Default)]
pub(super) struct Member {
    /// The last (epoch, seq) taken from this member.
    pub last_taken: Option<(u64, u64)>,
    /// After a rekey: messages are dropped until this one comes again.
    pub waiting_for: Option<(u64, u64)>,
    /// The envelopes of this member's current key.
    pub envelopes: Option<Arc<Envelopes>>,
}

/// A message taken and waiting for the store, or stored and waiting for its turn.
#[derive(Debug)]
pub(super) struct Taken {
    pub message: Arc<StoredGroupMessage>,
    /// None while the host is storing it; then whether it was stored.
    pub stored: Option<bool>,
    /// An earlier message of the same sender was lost: this one is dropped (and deleted from
    /// the store) so that the sender's messages keep their order when sent again.
    pub cancelled: bool,
}

/// How far one message has got, reported to its sender.
#[derive(Debug)]
pub(super) struct Progress {
    pub order: u64,
    pub from: UserName,
    pub id: crate::wire::MessageId,
    pub delivered: u32,
    pub members: u32,
    /// Changed since last reported.
    pub dirty: bool,
}

#[derive(Debug)]
pub(super) struct Group {
    pub info: GroupInfo,
    /// `info.members`, shared by every message taken under this membership.
    pub recipients: Arc<[UserName]>,
    pub next_order: u64,
    pub members: HashMap<UserName, Member>,
    /// Taken messages not yet delivered, by order: delivery waits for the store, in order.
    pub taken: BTreeMap<u64, Taken>,
    /// A change the host is saving; others wait (`Busy`).
    pub saving: bool,
    /// The most recent messages' delivery counts (bounded).
    pub progress: VecDeque<Progress>,
}

/// Progress is kept for this many recent messages per group.
pub(super) const PROGRESS_WINDOW: usize = 1024;

/// Every group, and which groups each user is in.
#[derive(Debug, Default)]
pub(super) struct Groups {
    pub by_id: BTreeMap<GroupId, Group>,
    pub by_name: HashMap<String, GroupId>,
    pub of_user: HashMap<UserName, BTreeSet<GroupId>>,
    /// Names of groups being created (saved by the host, not yet in `by_name`).
    pub creating: HashMap<GroupId, String>,
    pub next_id: u64,
    /// Groups with progress to report at the next sweep.
    pub progress_dirty: BTreeSet<GroupId>,
}

impl Groups {
    pub fn insert(
        &mut self,
        info: GroupInfo,
        next_order: u64,
        last_taken: &[(UserName, u64, u64)],
    ) {
        let id = info.id;
        self.reserve_id(id);
        if let Some(old) = self.by_id.remove(&id) {
            self.unindex(&old.info);
        }
        let mut members: HashMap<UserName, Member> = info
            .members
            .iter()
            .map(|m| (m.clone(), Member::default()))
            .collect();
        for (user, epoch, seq) in last_taken {
            if let Some(member) = members.get_mut(user) {
                member.last_taken = Some((*epoch, *seq));
            }
        }
        for user in &info.members {
            self.of_user.entry(user.clone()).or_default().insert(id);
        }
        self.by_name.insert(info.name.clone(), id);
        self.by_id.insert(
            id,
            Group {
                recipients: info.members.as_slice().into(),
                info,
                next_order: next_order.max(1),
                members,
                taken: BTreeMap::new(),
                saving: false,
                progress: VecDeque::new(),
            },
        );
    }

    fn unindex(&mut self, info: &GroupInfo) {
        self.by_name.remove(&info.name);
        for user in &info.members {
            if let Some(groups) = self.of_user.get_mut(user) {
                groups.remove(&info.id);
                if groups.is_empty() {
                    self.of_user.remove(user);
                }
            }
        }
    }

    /// Puts a saved change into force: the new info replaces the old (members who left lose
    /// their member state; those who joined start with none).
    pub fn apply(&mut self, info: GroupInfo) {
        let id = info.id;
        let Some(mut group) = self.by_id.remove(&id) else {
            return;
        };
        self.unindex(&group.info);
        group.members.retain(|user, _| info.members.contains(user));
        for user in &info.members {
            group.members.entry(user.clone()).or_default();
            self.of_user.entry(user.clone()).or_default().insert(id);
        }
        self.by_name.insert(info.name.clone(), id);
        group.recipients = info.members.as_slice().into();
        group.info = info;
        group.saving = false;
        self.by_id.insert(id, group);
    }

    /// `id` was given out once: no new group gets it or any below it (see
    /// `Server::restore_groups`).
    pub fn reserve_id(&mut self, id: GroupId) {
        self.next_id = self.next_id.max(id.0.saturating_add(1));
    }

    /// The group ended: its last member left. Nothing of it is kept here: what the host still
    /// stores for its recipients is served as any backlog (`delivery.rs`), which needs no
    /// group, and messages taken after the end was asked for are refused by the store.
    pub fn remove(&mut self, id: GroupId) -> Option<Group> {
        let group = self.by_id.remove(&id)?;
        self.unindex(&group.info);
        self.progress_dirty.remove(&id);
        Some(group)
    }

    pub fn groups_of(&self, user: &UserName) -> usize {
        self.of_user.get(user).map_or(0, BTreeSet::len)
    }

    pub fn name_in_use(&self, name: &str) -> bool {
        self.by_name.contains_key(name) || self.creating.values().any(|n| n == name)
    }

    /// The tables agree with each other: names, members and the user index.
    pub fn check_invariants(&self) -> Result<(), String> {
        for (id, group) in &self.by_id {
            if self.by_name.get(&group.info.name) != Some(id) {
                return Err(format!("group {id} is not indexed by its name"));
            }
            if group.members.len() != group.info.members.len() {
                return Err(format!("group {id}: member states out of step"));
            }
            for member in &group.info.members {
                if !self.of_user.get(member).is_some_and(|g| g.contains(id)) {
                    return Err(format!("{member} is in group {id} but not indexed"));
                }
            }
            if group.progress.len() > PROGRESS_WINDOW {
                return Err(format!("group {id} keeps too much progress"));
            }
        }
        for (user, groups) in &self.of_user {
            for id in groups {
                let listed = self
                    .by_id
                    .get(id)
                    .is_some_and(|g| g.info.members.contains(user));
                if !listed {
                    return Err(format!("{user} indexed in group {id}, not a member"));
                }
            }
        }
        if self.by_name.len() != self.by_id.len() {
            return Err("group names out of step".into());
        }
        Ok(())
    }

    pub fn member_count(&self) -> usize {
        self.by_id.values().map(|g| g.info.members.len()).sum()
    }
}
