//! What can be typed on the chat screen's input line besides a message: `/file PATH` (to the
//! selected user), `/accept [ID] [DIR]`, `/decline [ID]`, `/cancel [ID]`, `/verify` (the
//! fingerprint to compare with the selected user), `/search TEXT` (the history), `/open USER`
//! (a conversation with anyone, listed or not). Without an id, the newest offer from (or
//! transfer with) the selected user is meant.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScreenCommand {
    File {
        path: String,
    },
    Accept {
        id: Option<String>,
        dir: Option<String>,
    },
    Decline {
        id: Option<String>,
    },
    Cancel {
        id: Option<String>,
    },
    Verify,
    /// A conversation with `user`, who need not be listed: on a large server only watched
    /// users are, so this is how a first conversation starts.
    Open {
        user: String,
    },
    /// Messages in the history with every word of `text`.
    Search {
        text: String,
    },
    /// `/group create NAME [USER…]`, or `add`, `remove`, `leave`, `rename` for the group on
    /// screen.
    Group(GroupArgs),
}

/// What a `/group` command says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupArgs {
    Create { name: String, members: Vec<String> },
    Add(Vec<String>),
    Remove(Vec<String>),
    Leave,
    Rename(String),
}

const GROUP_USAGE: &str = "/group create NAME [USER…] · on a group: /group add USER… · \
                           /group remove USER… · /group leave · /group rename NAME";

fn group_args(rest: &str) -> Result<GroupArgs, String> {
    let mut words = rest.split_whitespace().map(str::to_string);
    let verb = words.next().unwrap_or_default();
    let rest: Vec<String> = words.collect();
    Ok(match (verb.as_str(), rest.as_slice()) {
        ("create", [name, members @ ..]) => GroupArgs::Create {
            name: name.clone(),
            members: members.to_vec(),
        },
        ("add", [_, ..]) => GroupArgs::Add(rest),
        ("remove", [_, ..]) => GroupArgs::Remove(rest),
        ("leave", []) => GroupArgs::Leave,
        ("rename", [name]) => GroupArgs::Rename(name.clone()),
        _ => return Err(GROUP_USAGE.into()),
    })
}

pub const USAGE: &str =
    "/open USER · /file PATH · /accept [ID] [DIR] · /decline [ID] · /cancel [ID] · /verify · \
     /search TEXT · /group …";

/// `None` for a plain message (no leading `/`, or `//` to send a message starting with `/`).
pub fn parse(input: &str) -> Option<Result<ScreenCommand, String>> {
    let rest = input.trim().strip_prefix('/')?;
    if rest.starts_with('/') {
        return None;
    }
    let (verb, rest) = split_word(rest);
    let word = |s: &str| (!s.is_empty()).then(|| s.to_string());
    Some(match verb {
        "file" if !rest.is_empty() => Ok(ScreenCommand::File { path: rest.into() }),
        "accept" => {
            let (id, dir) = split_word(rest);
            Ok(ScreenCommand::Accept {
                id: word(id),
                dir: word(dir),
            })
        }
        "decline" => Ok(ScreenCommand::Decline { id: word(rest) }),
        "cancel" => Ok(ScreenCommand::Cancel { id: word(rest) }),
        "verify" if rest.is_empty() => Ok(ScreenCommand::Verify),
        "open" if !rest.trim().is_empty() && !rest.trim().contains(' ') => {
            Ok(ScreenCommand::Open {
                user: rest.trim().into(),
            })
        }
        "search" if !rest.trim().is_empty() => Ok(ScreenCommand::Search {
            text: rest.trim().into(),
        }),
        "group" => group_args(rest).map(ScreenCommand::Group),
        _ => Err(USAGE.to_string()),
    })
}

/// Line mode's word splitter, on the line without its trailing blanks (a path or directory
/// typed with a space after it means the same without).
fn split_word(s: &str) -> (&str, &str) {
    crate::command::split_word(s.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slash_commands_and_plain_messages() {
        assert_eq!(parse("hello"), None);
        assert_eq!(parse("//not a command"), None);
        assert_eq!(
            parse("/file /tmp/a b.txt"),
            Some(Ok(ScreenCommand::File {
                path: "/tmp/a b.txt".into()
            }))
        );
        assert_eq!(
            parse("/accept"),
            Some(Ok(ScreenCommand::Accept {
                id: None,
                dir: None
            }))
        );
        assert_eq!(
            parse("/accept 3f /tmp/in box"),
            Some(Ok(ScreenCommand::Accept {
                id: Some("3f".into()),
                dir: Some("/tmp/in box".into())
            }))
        );
        assert_eq!(
            parse("/decline"),
            Some(Ok(ScreenCommand::Decline { id: None }))
        );
        assert_eq!(
            parse("/cancel 3f"),
            Some(Ok(ScreenCommand::Cancel {
                id: Some("3f".into())
            }))
        );
        assert!(matches!(parse("/file"), Some(Err(_))));
        assert!(matches!(parse("/dance"), Some(Err(_))));
    }
}
