//! Group requests and messages from [`Client`](crate::Client) handles, passed to the core.

use super::commands::Command;
use super::handle::Client;
use super::owner::Owner;
use async_channel::Sender;
use breeze_core::client::SendError;
use breeze_core::wire::{GroupId, GroupInfo, GroupRequest, MessageId};
use std::time::Instant;

/// What a handle asks about groups.
pub(super) enum GroupCommand {
    Request {
        request: GroupRequest,
        reply: Sender<Result<u64, SendError>>,
    },
    Send {
        group: GroupId,
        text: String,
        reply: Sender<Result<MessageId, SendError>>,
    },
    List {
        reply: Sender<Vec<GroupInfo>>,
    },
}

impl Owner {
    pub(super) fn group_command(&mut self, command: GroupCommand, now: Instant) {
        match command {
            GroupCommand::Request { request, reply } => {
                let _ = reply.try_send(self.core.group_request(request, now));
            }
            GroupCommand::Send { group, text, reply } => {
                let _ = reply.try_send(self.core.send_group(group, text, now));
            }
            GroupCommand::List { reply } => {
                let _ = reply.try_send(self.core.groups().cloned().collect());
            }
        }
    }
}

impl Client {
    /// Asks the server to create, change or leave a group; the answer comes as a
    /// `GroupEvent` (`Changed`, `Gone` or `Refused` naming the returned id).
    pub async fn group_request(&self, request: GroupRequest) -> Result<u64, SendError> {
        let (reply, answer) = async_channel::bounded(1);
        let command = Command::Group(GroupCommand::Request { request, reply });
        if self.commands.send(command).await.is_err() {
            return Err(SendError::Stopped);
        }
        answer.recv().await.unwrap_or(Err(SendError::Stopped))
    }

    /// Queues a message for a group; it comes back as a `GroupEvent::Message` in its place in
    /// the group's order, and `GroupEvent::Delivered` reports how many members have it.
    pub async fn send_group(&self, group: GroupId, text: String) -> Result<MessageId, SendError> {
        let (reply, answer) = async_channel::bounded(1);
        let command = Command::Group(GroupCommand::Send { group, text, reply });
        if self.commands.send(command).await.is_err() {
            return Err(SendError::Stopped);
        }
        answer.recv().await.unwrap_or(Err(SendError::Stopped))
    }

    /// The groups this user is in.
    pub async fn groups(&self) -> Vec<GroupInfo> {
        let (reply, answer) = async_channel::bounded(1);
        let command = Command::Group(GroupCommand::List { reply });
        if self.commands.send(command).await.is_err() {
            return Vec::new();
        }
        answer.recv().await.unwrap_or_default()
    }
}
