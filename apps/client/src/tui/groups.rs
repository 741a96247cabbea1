//! Groups on the chat screen: listed under the users (`# name`), each with a conversation of
//! its own that shows who said what, in the group's order; `/group …` manages them.
//!
//! A group one left (or was removed from) stays listed as `left`, its conversation readable.
//! A group conversation is on screen when [`Screen::on_group`] names it; Tab and the arrows
//! go through the users, then the groups. Own messages appear when the server has placed
//! them (their echo), so the screen shows the order every member sees.

use super::chat::Chat;
use super::slash_commands::GroupArgs;
use super::{Entry, Fate, Intent, Screen};
use crate::history::Stored;
use breeze_core::client::GroupEvent;
use breeze_core::wire::{GroupId, GroupInfo, GroupRequest, UserName};

impl Screen {
    /// The group on screen, if a group is.
    pub(super) fn group_on_screen(&self) -> Option<&GroupInfo> {
        let id = self.on_group?;
        self.groups.iter().find(|g| g.id == id)
    }

    pub(super) fn push_group(&mut self, group: GroupId, entry: Entry) {
        let at_ms = self.wall_ms;
        let chat = self.group_chats.entry(group).or_default();
        chat.push(super::chat::Timed {
            at_ms,
            row: None,
            entry,
        });
    }

    pub(super) fn handle_group_event(&mut self, event: GroupEvent) {
        match event {
            GroupEvent::Changed { info, by } => {
                let members = info
                    .members
                    .iter()
                    .map(UserName::as_str)
                    .collect::<Vec<_>>()
                    .join(", ");
                let old = self.groups.iter().position(|g| g.id == info.id);
                let notice = match (&by, old) {
                    (Some(by), None) => format!("{by} made the group {}: {members}", info.name),
                    (Some(by), Some(_)) => format!("{by} changed the group: {members}"),
                    (None, _) => format!("members: {members} (owner {})", info.owner),
                };
                let id = info.id;
                match old {
                    Some(at) => self.groups[at] = info,
                    None => self.groups.push(info),
                }
                self.push_group(id, Entry::Notice(notice));
            }
            GroupEvent::Gone { group, name, by } => {
                // Still listed (as left), so what was said stays readable.
                if let Some(info) = self.groups.iter_mut().find(|g| g.id == group) {
                    info.members.clear();
                }
                let notice = match by {
                    Some(by) if by == self.me => format!("you left {name}"),
                    Some(by) => format!("{by} removed you from {name}"),
                    None => format!("you are no longer in {name}"),
                };
                self.push_group(group, Entry::Notice(notice));
            }
            GroupEvent::Message {
                group,
                from,
                id,
                text,
                ..
            } => {
                let entry = if from == self.me {
                    Entry::Mine {
                        id,
                        text,
                        fate: Fate::Sending,
                    }
                } else {
                    Entry::Said { from, text }
                };
                if self.on_group != Some(group) {
                    self.alert = true;
                    let at_ms = self.wall_ms;
                    self.group_chats
                        .entry(group)
                        .or_default()
                        .arrived_unseen(at_ms);
                }
                self.push_group(group, entry);
            }
            GroupEvent::Delivered {
                group,
                id,
                delivered,
                members,
            } => self
                .group_chats
                .entry(group)
                .or_default()
                .settle(id, Fate::Reached { delivered, members }),
            GroupEvent::Refused { error, .. } => self.status = format!("group: {error}"),
            GroupEvent::SendFailed { group, error, .. } => {
                self.push_group(group, Entry::Notice(format!("not sent: {error}")))
            }
            GroupEvent::Forged { group, from } => self.push_group(
                group,
                Entry::Notice(format!("⚠ dropped a message said to be {from}'s")),
            ),
            _ => {}
        }
    }

    /// What a `/group …` command asks of the server, about the group on screen (or a new one).
    pub(super) fn group_command(&mut self, args: GroupArgs) -> Result<Intent, String> {
        let users = |names: Vec<String>| -> Result<Vec<UserName>, String> {
            names
                .into_iter()
                .map(|n| UserName::new(n.as_str()).map_err(|e| format!("{n}: {e}")))
                .collect()
        };
        if let GroupArgs::Create { name, members } = args {
            return Ok(Intent::Group(GroupRequest::Create {
                name,
                members: users(members)?,
            }));
        }
        let group = self
            .on_group
            .ok_or("select a group first (Tab), or /group create NAME USER…")?;
        Ok(Intent::Group(match args {
            GroupArgs::Create { .. } => unreachable!("answered above"),
            GroupArgs::Add(names) => GroupRequest::Add {
                group,
                users: users(names)?,
            },
            GroupArgs::Remove(names) => GroupRequest::Remove {
                group,
                users: users(names)?,
            },
            GroupArgs::Leave => GroupRequest::Leave { group },
            GroupArgs::Rename(name) => GroupRequest::Rename { group, name },
        }))
    }

    /// The group conversation whose history the loop should read now (by the group's name,
    /// as the history keeps it): the one on screen, the first time.
    pub(super) fn wants_group_history(&self) -> Option<(GroupId, String)> {
        let group = self.group_on_screen()?;
        match self.group_chats.get(&group.id) {
            Some(chat) if chat.loaded => None,
            _ => Some((group.id, group.name.clone())),
        }
    }

    /// A group's history (oldest first), read for [`Screen::wants_group_history`].
    pub(super) fn load_group_history(
        &mut self,
        group: GroupId,
        history: Result<Vec<Stored>, String>,
    ) {
        let chat = self.group_chats.entry(group).or_default();
        match history {
            Ok(history) => chat.load(history),
            Err(problem) => {
                chat.loaded = true;
                self.push_group(group, Entry::Notice(format!("no history: {problem}")));
            }
        }
    }

    /// The group conversation on screen, for drawing.
    pub(super) fn group_chat(&self, group: GroupId) -> Option<&Chat> {
        self.group_chats.get(&group)
    }

    /// Puts a group's conversation on screen (`None`: a user's).
    pub(super) fn open_group(&mut self, group: Option<GroupId>) {
        if let Some(left) = self.on_group.and_then(|g| self.group_chats.get_mut(&g)) {
            left.left();
        }
        if let Some(group) = group {
            self.group_chats.entry(group).or_default().opened();
        }
        self.on_group = group;
    }
}
