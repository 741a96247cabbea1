//! Creating and changing groups. Every change is checked here, saved by the host, and only
//! then put into force and told to the members: a change nobody could see after a restart must
//! not be announced.

use super::super::output::{Action, Event};
use super::super::{ConnId, Server};
use crate::wire::{
    valid_group_name, GroupError, GroupId, GroupInfo, GroupRequest, ServerFrame, UserName,
};
use std::time::Instant;

/// A change the host is saving: who asked, and what the group becomes.
#[derive(Debug)]
pub(in crate::server) struct Saving {
    pub conn: ConnId,
    pub request_id: u64,
    pub by: UserName,
    /// The group after the change; no members means the group ends.
    pub after: GroupInfo,
    /// Members before the change (empty for a new group).
    pub before: Vec<UserName>,
}

impl Server {
    /// A group request from the user on `conn`.
    pub(in crate::server) fn on_group_request(
        &mut self,
        conn: ConnId,
        request_id: u64,
        request: GroupRequest,
        now: Instant,
    ) {
        let Some(by) = self
            .conns
            .get(&conn)
            .and_then(|c| c.session())
            .map(|s| s.user.clone())
        else {
            return;
        };
        match self.check_group_request(&by, request) {
            Ok((after, before)) => {
                let joined: Vec<UserName> = after
                    .members
                    .iter()
                    .filter(|m| !before.contains(m))
                    .cloned()
                    .collect();
                let id = after.id;
                match self.groups.by_id.get_mut(&id) {
                    Some(group) => group.saving = true,
                    None => {
                        self.groups.creating.insert(id, after.name.clone());
                    }
                }
                self.actions.push_back(Action::SaveGroup {
                    info: after.clone(),
                    joined,
                });
                self.group_saves.insert(
                    id,
                    Saving {
                        conn,
                        request_id,
                        by,
                        after,
                        before,
                    },
                );
            }
            Err(error) => {
                self.send(conn, &ServerFrame::GroupRefused { request_id, error }, now);
            }
        }
    }

    /// What the group becomes, and who was in it before, if `by` may make the change.
    fn check_group_request(
        &mut self,
        by: &UserName,
        request: GroupRequest,
    ) -> Result<(GroupInfo, Vec<UserName>), GroupError> {
        let limit = self.config.max_group_members;
        let too_many = GroupError::TooManyMembers {
            limit: limit.min(u32::MAX as usize) as u32,
        };
        if let GroupRequest::Create { name, members } = request {
            if !valid_group_name(&name) {
                return Err(GroupError::BadName);
            }
            if self.groups.name_in_use(&name) {
                return Err(GroupError::NameTaken);
            }
            let mut members = members;
            members.push(by.clone());
            members.sort();
            members.dedup();
            if members.len() > limit {
                return Err(too_many);
            }
            self.check_room_in_groups(&members)?;
            let id = GroupId(self.groups.next_id);
            self.groups.next_id += 1;
            let info = GroupInfo {
                id,
                name,
                owner: by.clone(),
                members,
                version: 1,
            };
            return Ok((info, Vec::new()));
        }
        let id = request.group().ok_or(GroupError::UnknownGroup)?;
        let group = self.groups.by_id.get(&id).ok_or(GroupError::UnknownGroup)?;
        let before = group.info.members.clone();
        if !before.contains(by) {
            return Err(GroupError::NotMember);
        }
        if group.saving {
            return Err(GroupError::Busy);
        }
        let mut after = group.info.clone();
        let owner = &group.info.owner == by;
        match request {
            GroupRequest::Create { .. } => return Err(GroupError::UnknownGroup),
            GroupRequest::Add { users, .. } => {
                if !owner {
                    return Err(GroupError::NotOwner);
                }
                let mut joining: Vec<UserName> =
                    users.into_iter().filter(|u| !before.contains(u)).collect();
                joining.sort();
                joining.dedup();
                if before.len() + joining.len() > limit {
                    return Err(too_many);
                }
                self.check_room_in_groups(&joining)?;
                after.members.extend(joining);
            }
            GroupRequest::Remove { users, .. } => {
                if !owner {
                    return Err(GroupError::NotOwner);
                }
                if let Some(stranger) = users.iter().find(|u| !before.contains(u)) {
                    return Err(GroupError::NotInGroup(stranger.clone()));
                }
                after.members.retain(|m| !users.contains(m));
            }
            GroupRequest::Leave { .. } => after.members.retain(|m| m != by),
            GroupRequest::Rename { name, .. } => {
                if !owner {
                    return Err(GroupError::NotOwner);
                }
                if !valid_group_name(&name) {
                    return Err(GroupError::BadName);
                }
                if name != after.name && self.groups.name_in_use(&name) {
                    return Err(GroupError::NameTaken);
                }
                after.name = name;
            }
        }
        after.members.sort();
        if after.members != before {
            after.version += 1;
        }
        if !after.members.contains(&after.owner) {
            // The owner left (or removed itself): the first remaining member takes over.
            if let Some(next) = after.members.first() {
                after.owner = next.clone();
            }
        }
        Ok((after, before))
    }

    fn check_room_in_groups(&self, joining: &[UserName]) -> Result<(), GroupError> {
        match joining
            .iter()
            .find(|u| self.groups.groups_of(u) >= self.config.max_groups_per_user)
        {
            Some(full) => Err(GroupError::TooManyGroups(full.clone())),
            None => Ok(()),
        }
    }

    /// The host's answer to [`Action::SaveGroup`].
    pub(in crate::server) fn on_group_saved(
        &mut self,
        group: GroupId,
        result: Result<(), GroupError>,
        now: Instant,
    ) {
        let Some(saving) = self.group_saves.remove(&group) else {
            return;
        };
        let created = self.groups.creating.remove(&group).is_some();
        if let Err(error) = result {
            if let Some(g) = self.groups.by_id.get_mut(&group) {
                g.saving = false;
            }
            let request_id = saving.request_id;
            self.send(
                saving.conn,
                &ServerFrame::GroupRefused { request_id, error },
                now,
            );
            return;
        }
        let Saving {
            by, after, before, ..
        } = saving;
        self.events.push_back(Event::GroupSaved {
            group,
            name: after.name.clone(),
            members: after.members.len(),
            by: by.clone(),
        });
        if after.members.is_empty() {
            self.groups.remove(group);
        } else if created {
            self.groups.insert(after.clone(), 1, &[]);
        } else {
            self.groups.apply(after.clone());
        }
        let gone = ServerFrame::GroupGone {
            group,
            name: after.name.clone(),
            by: by.clone(),
        };
        for left in before.iter().filter(|m| !after.members.contains(m)) {
            if let Some(conn) = self.presence.conn_of(left) {
                self.send(conn, &gone, now);
            }
        }
        let frame = ServerFrame::Group {
            info: after.clone(),
            by: Some(by),
        };
        for member in &after.members {
            if let Some(conn) = self.presence.conn_of(member) {
                self.send(conn, &frame, now);
            }
        }
    }

    /// At login: the groups the user is in, then the mark that the list is complete.
    pub(in crate::server) fn list_groups(&mut self, conn: ConnId, user: &UserName, now: Instant) {
        let ids: Vec<GroupId> = self
            .groups
            .of_user
            .get(user)
            .map(|ids| ids.iter().copied().collect())
            .unwrap_or_default();
        for id in ids {
            if let Some(group) = self.groups.by_id.get(&id) {
                let frame = ServerFrame::Group {
                    info: group.info.clone(),
                    by: None,
                };
                self.send(conn, &frame, now);
            }
        }
        self.send(conn, &ServerFrame::GroupsListed, now);
    }
}
