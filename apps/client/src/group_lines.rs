//! Groups in line mode (docs/ARCHITECTURE.md §9): the `group …`, `groups` and `gsend`
//! commands, and the `group`, `group_message`, `group_delivered` and `groups` events.

use crate::json::{GroupEntry, LineEvent};
use breeze_core::client::GroupEvent;
use breeze_core::wire::{GroupId, GroupInfo, GroupRequest, UserName};
use breeze_smol::Client;
use std::collections::HashMap;

/// A group command, as parsed from a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupCommand {
    /// `group create GROUP [USER…]`
    Create { group: String, users: Vec<String> },
    /// `group add GROUP USER…`
    Add { group: String, users: Vec<String> },
    /// `group remove GROUP USER…`
    Remove { group: String, users: Vec<String> },
    /// `group leave GROUP`
    Leave { group: String },
    /// `group rename GROUP NEW-NAME`
    Rename { group: String, name: String },
    /// `groups`
    List,
    /// `gsend GROUP TEXT…`; the text keeps its spacing.
    Send { group: String, text: String },
}

const USAGE: &str = "usage: group create GROUP [USER…] | group add GROUP USER… | \
                     group remove GROUP USER… | group leave GROUP | group rename GROUP NAME";

/// Parses what follows `group` on a line.
pub fn parse_group(rest: &str) -> Result<GroupCommand, String> {
    let mut words = rest.split_whitespace();
    let (Some(verb), Some(group)) = (words.next(), words.next()) else {
        return Err(USAGE.into());
    };
    let group = group.to_string();
    let users: Vec<String> = words.map(str::to_string).collect();
    Ok(match verb {
        "create" => GroupCommand::Create { group, users },
        "add" | "remove" if users.is_empty() => return Err(USAGE.into()),
        "add" => GroupCommand::Add { group, users },
        "remove" => GroupCommand::Remove { group, users },
        "leave" if users.is_empty() => GroupCommand::Leave { group },
        "rename" if users.len() == 1 => GroupCommand::Rename {
            group,
            name: users.into_iter().next().unwrap_or_default(),
        },
        _ => return Err(USAGE.into()),
    })
}

/// Parses what follows `gsend` on a line.
pub fn parse_gsend(rest: &str) -> Result<GroupCommand, String> {
    let (group, text) = crate::command::split_word(rest);
    if group.is_empty() || text.is_empty() {
        return Err("usage: gsend GROUP TEXT…".into());
    }
    Ok(GroupCommand::Send {
        group: group.into(),
        text: text.into(),
    })
}

/// What line mode remembers of groups: their names, for events that carry only an id.
#[derive(Debug, Default)]
pub struct GroupNames(HashMap<GroupId, String>);

impl GroupNames {
    fn name(&self, id: GroupId) -> String {
        self.0
            .get(&id)
            .cloned()
            .unwrap_or_else(|| format!("group-{id}"))
    }

    /// The line for a group event, after noting the names it tells.
    pub fn line_event(&mut self, event: GroupEvent) -> LineEvent {
        match event {
            GroupEvent::Changed { info, by } => {
                self.0.insert(info.id, info.name.clone());
                LineEvent::Group {
                    group: info.name,
                    owner: Some(info.owner),
                    members: info.members,
                    by,
                }
            }
            GroupEvent::Gone { group, name, by } => {
                self.0.insert(group, name.clone());
                LineEvent::Group {
                    group: name,
                    owner: None,
                    members: Vec::new(),
                    by,
                }
            }
            GroupEvent::Message {
                name,
                from,
                id,
                order,
                text,
                ..
            } => LineEvent::GroupMessage {
                group: name,
                from,
                id,
                order,
                text,
            },
            GroupEvent::Delivered {
                group,
                id,
                delivered,
                members,
            } => LineEvent::GroupDelivered {
                group: self.name(group),
                id,
                delivered,
                members,
            },
            GroupEvent::Refused { error, .. } => LineEvent::error(format!("group: {error}")),
            GroupEvent::SendFailed { group, id, error } => LineEvent::error(format!(
                "message {id} to {} cannot be sent: {error}",
                self.name(group)
            )),
            GroupEvent::Forged { group, from } => LineEvent::error(format!(
                "dropped a message in {} said to be {from}'s: it failed authentication",
                self.name(group)
            )),
            other => LineEvent::error(format!("unhandled group event: {other:?}")),
        }
    }
}

fn users(names: &[String]) -> Result<Vec<UserName>, LineEvent> {
    names
        .iter()
        .map(|n| {
            UserName::new(n.as_str())
                .map_err(|e| LineEvent::error(format!("bad user name {n:?}: {e}")))
        })
        .collect()
}

/// The group this user is in by that name.
async fn find(client: &Client, name: &str) -> Result<GroupInfo, LineEvent> {
    client
        .groups()
        .await
        .into_iter()
        .find(|g| g.name == name)
        .ok_or_else(|| LineEvent::error(format!("you are not in a group named {name:?}")))
}

/// Runs one group command; the event it answers with (the server's answer follows as a
/// `group` event, or an `error`).
pub async fn execute(client: &Client, command: GroupCommand) -> LineEvent {
    match run(client, command).await {
        Ok(event) | Err(event) => event,
    }
}

async fn run(client: &Client, command: GroupCommand) -> Result<LineEvent, LineEvent> {
    let request = match command {
        GroupCommand::List => {
            let groups = client.groups().await;
            return Ok(LineEvent::Groups {
                groups: groups
                    .into_iter()
                    .map(|g| GroupEntry {
                        group: g.name,
                        owner: g.owner,
                        members: g.members,
                    })
                    .collect(),
            });
        }
        GroupCommand::Send { group, text } => {
            let info = find(client, &group).await?;
            return match client.send_group(info.id, text).await {
                Ok(id) => Ok(LineEvent::GroupSent { group, id }),
                Err(e) => Err(LineEvent::error(format!("cannot send to {group}: {e}"))),
            };
        }
        GroupCommand::Create {
            group,
            users: names,
        } => GroupRequest::Create {
            name: group,
            members: users(&names)?,
        },
        GroupCommand::Add {
            group,
            users: names,
        } => GroupRequest::Add {
            group: find(client, &group).await?.id,
            users: users(&names)?,
        },
        GroupCommand::Remove {
            group,
            users: names,
        } => GroupRequest::Remove {
            group: find(client, &group).await?.id,
            users: users(&names)?,
        },
        GroupCommand::Leave { group } => GroupRequest::Leave {
            group: find(client, &group).await?.id,
        },
        GroupCommand::Rename { group, name } => GroupRequest::Rename {
            group: find(client, &group).await?.id,
            name,
        },
    };
    match client.group_request(request).await {
        Ok(request) => Ok(LineEvent::GroupRequested { request }),
        Err(e) => Err(LineEvent::error(format!("group: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_commands_parse_and_bad_ones_say_how() {
        assert_eq!(
            parse_group("create team bob carol"),
            Ok(GroupCommand::Create {
                group: "team".into(),
                users: vec!["bob".into(), "carol".into()]
            })
        );
        assert_eq!(
            parse_group("create solo"),
            Ok(GroupCommand::Create {
                group: "solo".into(),
                users: vec![]
            })
        );
        assert_eq!(
            parse_group("leave team"),
            Ok(GroupCommand::Leave {
                group: "team".into()
            })
        );
        assert!(parse_group("add team").is_err());
        assert!(parse_group("leave team now").is_err());
        assert!(parse_group("dance team").is_err());
        assert_eq!(
            parse_gsend("team  hello  all"),
            Ok(GroupCommand::Send {
                group: "team".into(),
                text: "hello  all".into()
            })
        );
        assert!(parse_gsend("team").is_err());
    }
}
