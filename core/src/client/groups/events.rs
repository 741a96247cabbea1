//! What the client tells its user about groups.

use crate::wire::{GroupError, GroupId, GroupInfo, MessageId, UserName};

/// A group event, inside [`Event::Group`](crate::client::Event::Group).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum GroupEvent {
    /// A group this user is in was created, changed, or listed at login.
    Changed {
        /// The group as it is now.
        info: GroupInfo,
        /// Who changed it; none in the list sent at login.
        by: Option<UserName>,
    },
    /// This user is no longer in the group.
    Gone {
        /// The group.
        group: GroupId,
        /// Its name.
        name: String,
        /// Who removed this user, or this user (left); none if it happened while offline.
        by: Option<UserName>,
    },
    /// A group message, in the group's order (the same for every member), this user's own
    /// included.
    Message {
        /// The group.
        group: GroupId,
        /// Its name.
        name: String,
        /// Who wrote it.
        from: UserName,
        /// The sender's id for it.
        id: MessageId,
        /// Its place in the group's order.
        order: u64,
        /// What was written.
        text: String,
    },
    /// How many members have one of this user's messages.
    Delivered {
        /// The group.
        group: GroupId,
        /// The message.
        id: MessageId,
        /// Members who have it (this user not counted).
        delivered: u32,
        /// Members who should (this user not counted).
        members: u32,
    },
    /// The server refused a group request.
    Refused {
        /// The id [`Client::group_request`](crate::Client::group_request) returned.
        request: u64,
        /// Why.
        error: GroupError,
    },
    /// A group message of this user's can never be sent.
    SendFailed {
        /// The group.
        group: GroupId,
        /// The message.
        id: MessageId,
        /// Why.
        error: GroupError,
    },
    /// A group message that did not open (forged, or sealed with a key this user never got):
    /// dropped, never shown.
    Forged {
        /// The group.
        group: GroupId,
        /// Who it claims to be from.
        from: UserName,
    },
}
