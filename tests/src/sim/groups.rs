//! Group chat in the simulator: asking for groups and sending to them through a node's core,
//! and reading back what each node was shown.

use super::{Node, Sim};
use breeze_core::client::{self, GroupEvent, SendError};

use breeze_core::wire::{GroupId, GroupRequest, MessageId, UserName};
use std::time::Duration;

/// Long enough for a request and everything it causes to cross the virtual network.
const SETTLE: Duration = Duration::from_millis(100);

/// One group message as a member's client showed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupReceived {
    pub group: GroupId,
    pub order: u64,
    pub from: UserName,
    pub id: MessageId,
    pub text: String,
    /// Which run of the member's client showed it.
    pub incarnation: u64,
}

impl Sim {
    /// A group request from `node`, then everything that follows it settles (a few round
    /// trips of the virtual network).
    pub fn group_request(&mut self, node: Node, request: GroupRequest) -> Result<u64, SendError> {
        let now = self.now;
        let core = self.clients[node.0]
            .core
            .as_mut()
            .ok_or(SendError::Stopped)?;
        let result = core.group_request(request, now);
        self.advance(SETTLE);
        result
    }

    /// `owner` creates `name` with `members`; the group's id once the server made it.
    pub fn create_group(&mut self, owner: Node, name: &str, members: &[Node]) -> Option<GroupId> {
        let members = members.iter().map(|m| self.name(*m).clone()).collect();
        let request = GroupRequest::Create {
            name: name.to_string(),
            members,
        };
        self.group_request(owner, request).ok()?;
        self.group_id(owner, name)
    }

    /// The id of the group `node` is in with that name.
    pub fn group_id(&self, node: Node, name: &str) -> Option<GroupId> {
        Some(self.client(node)?.group_named(name)?.id)
    }

    /// A message from `node` to its group `group`, and time for it to reach the members.
    pub fn send_group(
        &mut self,
        node: Node,
        group: GroupId,
        text: &str,
    ) -> Result<MessageId, SendError> {
        let result = self.queue_group(node, group, text);
        self.advance(SETTLE);
        result
    }

    /// Queues a message from `node` to `group` without letting any time pass: faults that
    /// follow find it on its way.
    pub fn queue_group(
        &mut self,
        node: Node,
        group: GroupId,
        text: &str,
    ) -> Result<MessageId, SendError> {
        let now = self.now;
        let core = self.clients[node.0]
            .core
            .as_mut()
            .ok_or(SendError::Stopped)?;
        let result = core.send_group(group, text.to_string(), now);
        self.drive();
        result
    }

    /// The group messages `node` was shown for `group`, in the order shown (over all of its
    /// runs).
    pub fn group_messages(&self, node: Node, group: GroupId) -> Vec<GroupReceived> {
        self.clients[node.0]
            .group_received
            .iter()
            .filter(|m| m.group == group)
            .cloned()
            .collect()
    }

    /// Every group event `node` was told, in order.
    pub fn group_events(&self, node: Node) -> impl Iterator<Item = &GroupEvent> {
        self.events(node)
            .iter()
            .filter_map(|(_, event)| match event {
                client::Event::Group(event) => Some(event),
                _ => None,
            })
    }
}
