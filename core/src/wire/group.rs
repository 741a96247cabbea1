//! Group chat on the wire: managing groups, and group messages the server orders and fans out.
//!
//! The server gives each accepted group message its place (`seq`) in the group's one order and
//! delivers the messages to every member in that order, the sender included (its echo tells it
//! where its message landed). What a member wrote is sealed under the sender's current group
//! key (see [`crate::secure::GroupKey`]); the key itself travels in key envelopes, one per
//! member, each sealed with the pair key of sender and member. The server keeps each member's
//! envelope and hands it out with every message, so a member who restarted (and forgot the key)
//! can still open what was stored for it. A sender makes a new key whenever the membership
//! changes, so a removed member never holds the key of anything sent after the removal.

use super::shared::{MessageId, UserName};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A group's id, chosen by the server when it creates the group; names can change, ids do not.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub struct GroupId(pub u64);

impl fmt::Display for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Longest group name accepted, in bytes.
pub const MAX_GROUP_NAME: usize = 48;

/// Checks a group name: 1–48 ASCII letters, digits, `_`, `-`, `.` or `#`. Names travel as plain
/// strings, so that a bad one is answered with [`GroupError::BadName`] rather than a decode
/// error that closes the connection.
pub fn valid_group_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_GROUP_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'#'))
}

/// A group as its members see it.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct GroupInfo {
    /// The group.
    pub id: GroupId,
    /// Its current name, unique on the server.
    pub name: String,
    /// Who may add, remove and rename.
    pub owner: UserName,
    /// Everyone in the group, the owner included, sorted.
    pub members: Vec<UserName>,
    /// Counts membership changes: a sender keyed for another version must make a new key.
    pub version: u64,
}

/// What a client asks of the server about groups. Each carries an id the client chose, which
/// a refusal names.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum GroupRequest {
    /// A new group owned by the asker, with these members besides the asker.
    Create {
        /// The name, unique on the server.
        name: String,
        /// The other members.
        members: Vec<UserName>,
    },
    /// The owner adds members.
    Add {
        /// The group.
        group: GroupId,
        /// Who joins.
        users: Vec<UserName>,
    },
    /// The owner removes members (not itself: an owner leaves).
    Remove {
        /// The group.
        group: GroupId,
        /// Who goes.
        users: Vec<UserName>,
    },
    /// The asker leaves; an owner who leaves hands the group to the first remaining member,
    /// and the last member to leave ends the group.
    Leave {
        /// The group.
        group: GroupId,
    },
    /// The owner renames the group.
    Rename {
        /// The group.
        group: GroupId,
        /// The new name.
        name: String,
    },
}

impl GroupRequest {
    /// The group the request is about (none for a creation).
    pub fn group(&self) -> Option<GroupId> {
        match self {
            GroupRequest::Create { .. } => None,
            GroupRequest::Add { group, .. }
            | GroupRequest::Remove { group, .. }
            | GroupRequest::Leave { group }
            | GroupRequest::Rename { group, .. } => Some(*group),
        }
    }
}

/// Why the server refused a group request or a group message.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub enum GroupError {
    /// There is no such group (or it ended).
    UnknownGroup,
    /// The asker is not a member.
    NotMember,
    /// Only the owner may do that.
    NotOwner,
    /// The name is not 1–48 letters, digits, `_`, `-`, `.` or `#`.
    BadName,
    /// Another group has that name.
    NameTaken,
    /// No such account.
    NoSuchUser(UserName),
    /// That user is not in the group.
    NotInGroup(UserName),
    /// The group would have more members than the server allows.
    TooManyMembers {
        /// The server's limit.
        limit: u32,
    },
    /// That user is in as many groups as the server allows.
    TooManyGroups(UserName),
    /// Another change to this group is being saved; try again.
    Busy,
    /// The server could not save the change.
    StorageFailed,
    /// The message is over the server's text limit.
    TooLong,
}

impl fmt::Display for GroupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GroupError::UnknownGroup => f.write_str("no such group"),
            GroupError::NotMember => f.write_str("you are not a member of that group"),
            GroupError::NotOwner => f.write_str("only the group's owner may do that"),
            GroupError::BadName => {
                f.write_str("group names are 1-48 letters, digits, '_', '-', '.' or '#'")
            }
            GroupError::NameTaken => f.write_str("a group with that name exists"),
            GroupError::NoSuchUser(user) => write!(f, "no such user: {user}"),
            GroupError::NotInGroup(user) => write!(f, "{user} is not in the group"),
            GroupError::TooManyMembers { limit } => {
                write!(f, "a group has at most {limit} members")
            }
            GroupError::TooManyGroups(user) => write!(f, "{user} is in too many groups"),
            GroupError::Busy => f.write_str("another change to the group is in progress"),
            GroupError::StorageFailed => f.write_str("the server could not save the change"),
            GroupError::TooLong => f.write_str("message too long"),
        }
    }
}

impl std::error::Error for GroupError {}

/// A sender's group key for one member, sealed with the pair key of the two.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct KeyEnvelope {
    /// The member it is for.
    pub to: UserName,
    /// The key, sealed.
    #[serde(with = "serde_bytes")]
    pub sealed: Vec<u8>,
}

/// A group message as the sender sends it and the server stores and delivers it.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct GroupMessage {
    /// The sender's id for it, what the sender's `group_delivered` names.
    pub id: MessageId,
    /// The sender's process lifetime.
    pub epoch: u64,
    /// Its place in the sender's sequence to this group, from 1 per epoch: how the server
    /// drops a message sent twice.
    pub seq: u64,
    /// Which of the sender's keys sealed it.
    pub generation: u64,
    /// The membership version the sender keyed for.
    pub version: u64,
    /// On the way in: the envelopes of a new key, one for every member (the sender too), or
    /// none when the key is the one sent before. On the way out: the recipient's envelope.
    pub keys: Vec<KeyEnvelope>,
    /// The text, sealed under the group key.
    #[serde(with = "serde_bytes")]
    pub sealed: Vec<u8>,
}

/// A group message with its place in the group's order, as a member receives it.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct OrderedGroupMessage {
    /// The group.
    pub group: GroupId,
    /// The message's place in the group's order, the same for every member.
    pub order: u64,
    /// Who wrote it.
    pub from: UserName,
    /// The sender's key as the server knows it, to open the envelope with.
    pub key: crate::secure::PublicKey,
    /// The message, with this member's envelope only.
    pub message: GroupMessage,
}
