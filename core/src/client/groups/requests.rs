//! Asking the server to create and change groups, and taking what it says about them.

use super::super::output::{Event, SendError};
use super::super::Client;
use super::{GroupEvent, GroupState};
use crate::wire::{ClientFrame, GroupError, GroupId, GroupInfo, GroupRequest, UserName};
use std::collections::BTreeSet;
use std::time::Instant;

impl Client {
    /// Asks the server to create, change or leave a group. The answer is a
    /// [`GroupEvent::Changed`] (or [`GroupEvent::Gone`] for a leave) for everyone concerned,
    /// or a [`GroupEvent::Refused`] naming the id returned here. Needs the server: group
    /// changes are the server's to order.
    pub fn group_request(&mut self, request: GroupRequest, now: Instant) -> Result<u64, SendError> {
        if self.is_stopped() {
            return Err(SendError::Stopped);
        }
        if !self.server.is_online() {
            return Err(SendError::ServerUnavailable);
        }
        self.groups.next_request += 1;
        let request_id = self.groups.next_request;
        self.send_server(
            &ClientFrame::Group {
                request_id,
                request,
            },
            now,
        );
        self.finish(now);
        Ok(request_id)
    }

    /// The groups this user is in, by id.
    pub fn groups(&self) -> impl Iterator<Item = &GroupInfo> {
        self.groups
            .by_id
            .values()
            .filter(|g| g.member)
            .map(|g| &g.info)
    }

    /// The group this user is in with that name.
    pub fn group_named(&self, name: &str) -> Option<&GroupInfo> {
        let id = self.groups.by_name(name)?;
        self.groups.by_id.get(&id).map(|g| &g.info)
    }

    /// Group messages of this user's not yet taken by the server.
    pub fn group_unaccepted(&self, group: GroupId) -> usize {
        self.groups.by_id.get(&group).map_or(0, |g| g.outbox.len())
    }

    pub(in crate::client) fn on_group_info(
        &mut self,
        info: GroupInfo,
        by: Option<UserName>,
        now: Instant,
    ) {
        if let Some(listed) = &mut self.groups.listing {
            listed.insert(info.id);
        }
        let id = info.id;
        for member in &info.members {
            self.note_interest(member);
        }
        match self.groups.by_id.get_mut(&id) {
            Some(group) => {
                group.member = true;
                group.info = info.clone();
            }
            None => {
                self.groups.by_id.insert(id, GroupState::new(info.clone()));
            }
        }
        self.events
            .push_back(Event::Group(GroupEvent::Changed { info, by }));
        // A new membership means a new key before the next message: send what waits.
        self.flush_group(id, now);
    }

    /// The list sent at login is complete: groups not in it were left while offline.
    pub(in crate::client) fn on_groups_listed(&mut self) {
        let listed = self.groups.listing.take().unwrap_or_default();
        let gone: Vec<GroupId> = self
            .groups
            .by_id
            .iter()
            .filter(|(id, g)| g.member && !listed.contains(id))
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            self.left_group(id, None);
        }
    }

    pub(in crate::client) fn on_group_gone(&mut self, id: GroupId, by: UserName) {
        self.left_group(id, Some(by));
    }

    fn left_group(&mut self, id: GroupId, by: Option<UserName>) {
        let Some(group) = self.groups.by_id.get_mut(&id) else {
            return;
        };
        if !group.member {
            return;
        }
        group.member = false;
        group.mine = None;
        let name = group.info.name.clone();
        for lost in std::mem::take(&mut group.outbox) {
            self.events.push_back(Event::Group(GroupEvent::SendFailed {
                group: id,
                id: lost.id,
                error: GroupError::NotMember,
            }));
        }
        self.events.push_back(Event::Group(GroupEvent::Gone {
            group: id,
            name,
            by,
        }));
    }

    /// At login: the list of groups starts.
    pub(in crate::client) fn start_group_listing(&mut self) {
        self.groups.listing = Some(BTreeSet::new());
    }
}
