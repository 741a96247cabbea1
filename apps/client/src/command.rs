//! Line commands (docs/ARCHITECTURE.md §9): `send USER TEXT…`, `file USER PATH`, `accept ID [DIR]`,
//! `decline ID`, `cancel ID`, `who`, `watch USER`, `verify USER`, `group …`, `groups`, `gsend GROUP TEXT…`,
//! `history USER [N]`, `ghistory GROUP [N]`, `quit`.

/// `history USER` without N: the last this many messages.
pub const HISTORY_DEFAULT: usize = 50;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `text` is the rest of the line after the user, spaces kept.
    Send {
        to: String,
        text: String,
    },
    File {
        to: String,
        path: String,
    },
    /// `dir` is the rest of the line, spaces kept.
    Accept {
        id: String,
        dir: Option<String>,
    },
    Decline {
        id: String,
    },
    Cancel {
        id: String,
    },
    Who,
    /// `watch USER`: hear when `user` comes and goes (on a large server only watched users'
    /// presence is sent; users written to or heard from are watched anyway).
    Watch {
        user: String,
    },
    /// `verify USER`: the fingerprint of this pair's keys.
    Verify {
        user: String,
    },
    /// `group …`, `groups`, `gsend …`: see `group_lines.rs`.
    Group(crate::group_lines::GroupCommand),
    /// `history USER [N]`: the last `count` messages with `user`, from the profile.
    History {
        user: String,
        count: usize,
    },
    /// `ghistory GROUP [N]`: the same for a group.
    GroupHistory {
        group: String,
        count: usize,
    },
    Quit,
}

/// Parses one line; `Ok(None)` for a blank line, `Err` with a message for the user.
pub fn parse(line: &str) -> Result<Option<Command>, String> {
    let line = line.trim_end_matches(['\r', '\n']);
    let (verb, rest) = split_word(line);
    let command = match verb {
        "" => return Ok(None),
        "send" => {
            let (to, text) = split_word(rest);
            if to.is_empty() || text.is_empty() {
                return Err("usage: send USER TEXT…".into());
            }
            Command::Send {
                to: to.into(),
                text: text.into(),
            }
        }
        "file" => {
            let (to, path) = split_word(rest);
            if to.is_empty() || path.is_empty() {
                return Err("usage: file USER PATH".into());
            }
            Command::File {
                to: to.into(),
                path: path.into(),
            }
        }
        "accept" => {
            let (id, dir) = split_word(rest);
            if id.is_empty() {
                return Err("usage: accept ID [DIR]".into());
            }
            Command::Accept {
                id: id.into(),
                dir: (!dir.is_empty()).then(|| dir.into()),
            }
        }
        "decline" | "cancel" => {
            let (id, extra) = split_word(rest);
            if id.is_empty() || !extra.is_empty() {
                return Err(format!("usage: {verb} ID"));
            }
            let id = id.into();
            if verb == "decline" {
                Command::Decline { id }
            } else {
                Command::Cancel { id }
            }
        }
        "who" => Command::Who,
        "watch" => {
            let (user, rest) = split_word(rest);
            if user.is_empty() || !rest.is_empty() {
                return Err("usage: watch USER".into());
            }
            Command::Watch { user: user.into() }
        }
        "verify" => {
            let (user, rest) = split_word(rest);
            if user.is_empty() || !rest.is_empty() {
                return Err("usage: verify USER".into());
            }
            Command::Verify { user: user.into() }
        }
        "group" => Command::Group(crate::group_lines::parse_group(rest)?),
        "groups" => Command::Group(crate::group_lines::GroupCommand::List),
        "gsend" => Command::Group(crate::group_lines::parse_gsend(rest)?),
        "history" => {
            let (user, count) = history_args(rest).ok_or("usage: history USER [N]")?;
            Command::History { user, count }
        }
        "ghistory" => {
            let (group, count) = history_args(rest).ok_or("usage: ghistory GROUP [N]")?;
            Command::GroupHistory { group, count }
        }
        "quit" => Command::Quit,
        other => {
            return Err(format!(
            "unknown command {other:?} (commands: send, file, accept, decline, cancel, who, watch, \
             verify, group, groups, gsend, history, ghistory, quit)"
        ))
        }
    };
    Ok(Some(command))
}

/// `NAME [N]` of `history` and `ghistory`: the name and how many (default
/// [`HISTORY_DEFAULT`]).
fn history_args(rest: &str) -> Option<(String, usize)> {
    let (name, rest) = split_word(rest);
    let (count, extra) = split_word(rest);
    let count = match count {
        "" => HISTORY_DEFAULT,
        n => n.parse().ok()?,
    };
    (!name.is_empty() && extra.is_empty()).then(|| (name.to_string(), count))
}

/// The first whitespace-separated word and the rest, with the whitespace between them removed.
pub(crate) fn split_word(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    match s.find(char::is_whitespace) {
        Some(end) => (&s[..end], s[end..].trim_start()),
        None => (s, ""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_keeps_the_spacing_of_the_text() {
        assert_eq!(
            parse("send bob  hello   there \r\n"),
            Ok(Some(Command::Send {
                to: "bob".into(),
                text: "hello   there ".into()
            }))
        );
    }

    #[test]
    fn blank_lines_are_ignored_and_unknown_words_refused() {
        assert_eq!(parse("   "), Ok(None));
        assert!(parse("dance").is_err());
        assert!(parse("send bob").is_err());
        assert!(parse("send").is_err());
    }

    #[test]
    fn the_other_commands() {
        assert_eq!(parse("who"), Ok(Some(Command::Who)));
        assert_eq!(parse(" quit "), Ok(Some(Command::Quit)));
        assert_eq!(
            parse("accept 7"),
            Ok(Some(Command::Accept {
                id: "7".into(),
                dir: None
            }))
        );
        assert_eq!(
            parse("accept 00ff /tmp/my downloads"),
            Ok(Some(Command::Accept {
                id: "00ff".into(),
                dir: Some("/tmp/my downloads".into())
            }))
        );
        assert_eq!(
            parse("decline 00ff"),
            Ok(Some(Command::Decline { id: "00ff".into() }))
        );
        assert_eq!(
            parse("cancel 00ff"),
            Ok(Some(Command::Cancel { id: "00ff".into() }))
        );
        assert!(parse("cancel").is_err());
        assert_eq!(
            parse("history bob"),
            Ok(Some(Command::History {
                user: "bob".into(),
                count: HISTORY_DEFAULT
            }))
        );
        assert_eq!(
            parse("history bob 3"),
            Ok(Some(Command::History {
                user: "bob".into(),
                count: 3
            }))
        );
        assert!(parse("history bob many").is_err());
        assert_eq!(
            parse("ghistory team 7"),
            Ok(Some(Command::GroupHistory {
                group: "team".into(),
                count: 7
            }))
        );
        assert!(parse("history").is_err());
        assert_eq!(
            parse("file bob /tmp/a b.txt"),
            Ok(Some(Command::File {
                to: "bob".into(),
                path: "/tmp/a b.txt".into()
            }))
        );
    }
}
