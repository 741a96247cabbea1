//! The interactive chat screen: users with their route on the left, the conversation with the
//! selected user on the right, file transfers under way (`files_pane.rs`) above an input
//! line at the bottom, which also takes the file commands of `slash_commands.rs`.
//!
//! How it is driven: [`Screen`] is the whole state and does no IO. The terminal loop feeds it
//! the client's events ([`Screen::handle_event`], then the client's peer table,
//! [`Screen::handle_peers`]) and key presses ([`Screen::handle_key`]), which return an
//! [`Intent`]: what to ask of the client. The loop asks ([`terminal::perform`]) and hands the
//! client's [`Answer`] back ([`Screen::handle_answer`]). [`Screen::render`] draws from the state alone:
//! the clock is an input too ([`Screen::tick`]), so the screen can be drawn into a test buffer.
//!
//! This file holds the state and its handlers; `draw.rs` draws it, `terminal.rs` is the loop
//! between the terminal, the client and the screen, `slash_commands.rs` parses the input line's
//! slash commands and `files_pane.rs` shows the file transfers.

use crate::transfers::{State, Transfer, Transfers};
use breeze_core::client::{Direction, Event, FileEvent};
use breeze_core::wire::{MessageId, TransferId, UserName};
use breeze_core::Via;
use breeze_smol::{Landed, PeerStatus, SharedFile};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use slash_commands::ScreenCommand;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

mod draw;
mod files_pane;
mod slash_commands;
pub mod terminal;
#[cfg(test)]
mod tests;

/// Entries kept per conversation; older ones scroll away for good.
const HISTORY: usize = 1000;

/// What a key press asks for: the screen's outgoing commands.
#[derive(Debug, PartialEq)]
enum Intent {
    Nothing,
    Quit,
    Send(UserName, String),
    Offer(UserName, String),
    Accept(UserName, TransferId, PathBuf),
    Decline(UserName, TransferId),
    Cancel(UserName, TransferId, Direction),
    /// Show the fingerprint to compare with this user.
    Verify(UserName),
}

/// The client's answer to an [`Intent`], with what the screen needs to show it.
enum Answer {
    Sent {
        to: UserName,
        text: String,
        result: Result<MessageId, String>,
    },
    Offered {
        to: UserName,
        path: String,
        result: Result<SharedFile, String>,
    },
    Accepted {
        from: UserName,
        id: TransferId,
        dir: PathBuf,
        /// Where the transfer starts: past a partial file kept from before.
        result: Result<u64, String>,
    },
    Declined {
        from: UserName,
        id: TransferId,
        result: Result<(), String>,
    },
    Cancelled {
        peer: UserName,
        id: TransferId,
        direction: Direction,
        result: Result<(), String>,
    },
    /// The pair's fingerprint, or why there is none.
    Verified {
        peer: UserName,
        result: Result<String, String>,
    },
}

enum Entry {
    Mine {
        id: MessageId,
        text: String,
        fate: Fate,
    },
    Theirs {
        text: String,
        route: Via,
    },
    Notice(String),
}

enum Fate {
    Sending,
    Delivered(Via),
    Stored,
    Undeliverable(String),
}

struct Screen {
    me: UserName,
    status: String,
    users: Vec<PeerStatus>,
    selected: Option<UserName>,
    chats: HashMap<UserName, Vec<Entry>>,
    input: String,
    fatal: Option<String>,
    transfers: Transfers,
    download_dir: PathBuf,
    /// The latest time an input brought; rates and ETAs are drawn as of then.
    now: Instant,
}

impl Screen {
    fn new(me: UserName, download_dir: PathBuf, now: Instant) -> Screen {
        Screen {
            me,
            status: "connecting…".into(),
            users: Vec::new(),
            selected: None,
            chats: HashMap::new(),
            input: String::new(),
            fatal: None,
            transfers: Transfers::new(),
            download_dir,
            now,
        }
    }

    /// Moves the clock the screen draws rates with; it never goes back.
    fn tick(&mut self, now: Instant) {
        self.now = self.now.max(now);
    }

    /// The client's peer table, which the loop fetches after every event: the authority on
    /// who is listed, and with which route.
    fn handle_peers(&mut self, users: Vec<PeerStatus>) {
        self.users = users;
        self.keep_selection();
    }

    /// Shows what the client said to a key press's intent.
    fn handle_answer(&mut self, answer: Answer, now: Instant) {
        self.tick(now);
        match answer {
            Answer::Sent { to, text, result } => match result {
                Ok(id) => self.push(
                    &to,
                    Entry::Mine {
                        id,
                        text,
                        fate: Fate::Sending,
                    },
                ),
                Err(error) => self.push(&to, Entry::Notice(format!("not sent: {error}"))),
            },
            Answer::Offered { to, path, result } => {
                let notice = match result {
                    Ok(file) => {
                        self.transfers.offered(&to, &file);
                        format!(
                            "offered {} ({}) · id {}",
                            file.name,
                            crate::transfer_rate::bytes(file.size),
                            file.id
                        )
                    }
                    Err(error) => format!("cannot offer {path}: {error}"),
                };
                self.push(&to, Entry::Notice(notice));
            }
            Answer::Accepted {
                from,
                id,
                dir,
                result,
            } => {
                let notice = match result {
                    Ok(offset) => {
                        self.transfers
                            .accepted_at(&from, id, dir.clone(), offset, now);
                        let resume = if offset > 0 {
                            format!(", resuming at {}", crate::transfer_rate::bytes(offset))
                        } else {
                            String::new()
                        };
                        format!("accepted {id} into {}{resume}", dir.display())
                    }
                    Err(error) => format!("cannot accept {id}: {error}"),
                };
                self.push(&from, Entry::Notice(notice));
            }
            Answer::Declined { from, id, result } => {
                let notice = match result {
                    Ok(()) => {
                        let direction = Direction::Receiving;
                        self.transfers.ended(&from, id, direction, State::Declined);
                        format!("declined {id}")
                    }
                    Err(error) => format!("cannot decline {id}: {error}"),
                };
                self.push(&from, Entry::Notice(notice));
            }
            Answer::Cancelled {
                peer,
                id,
                direction,
                result,
            } => {
                let notice = match result {
                    Ok(()) => {
                        self.transfers.ended(&peer, id, direction, State::Cancelled);
                        format!("cancelled {id}")
                    }
                    Err(error) => format!("cannot cancel {id}: {error}"),
                };
                self.push(&peer, Entry::Notice(notice));
            }
            Answer::Verified { peer, result } => {
                let notice = match result {
                    Ok(fingerprint) => format!(
                        "fingerprint with {peer}: {fingerprint} — the same on {peer}'s screen \
                         means nobody stands between you"
                    ),
                    Err(error) => error,
                };
                self.push(&peer, Entry::Notice(notice));
            }
        }
    }

    /// What a `/command` typed on the input line asks for.
    fn command(&mut self, command: ScreenCommand) -> Result<Intent, String> {
        let selected = self.selected.clone();
        let with_selected = |t: &Transfer| selected.as_ref().is_none_or(|s| &t.peer == s);
        let offered = |t: &Transfer| {
            t.direction == Direction::Receiving && t.state == State::Offered && with_selected(t)
        };
        let pick = |id: &Option<String>, want: &dyn Fn(&Transfer) -> bool| match id {
            Some(id) => self.transfers.find(id, want).cloned(),
            None => self
                .transfers
                .active()
                .filter(|t| want(t))
                .last()
                .cloned()
                .ok_or_else(|| "nothing to answer: no such offer or transfer".to_string()),
        };
        Ok(match command {
            ScreenCommand::File { path } => {
                let to = selected.ok_or("select a user to send the file to")?;
                // Hashing a big file takes a moment: say so before it starts.
                self.push(&to, Entry::Notice(format!("hashing {path}…")));
                Intent::Offer(to, path)
            }
            ScreenCommand::Accept { id, dir } => {
                let t = pick(&id, &offered)?;
                let dir = dir.map_or_else(|| self.download_dir.clone(), PathBuf::from);
                Intent::Accept(t.peer, t.id, dir)
            }
            ScreenCommand::Decline { id } => {
                let t = pick(&id, &offered)?;
                Intent::Decline(t.peer, t.id)
            }
            ScreenCommand::Cancel { id } => {
                let active = |t: &Transfer| t.is_active() && with_selected(t);
                let t = pick(&id, &active)?;
                Intent::Cancel(t.peer, t.id, t.direction)
            }
            ScreenCommand::Verify => Intent::Verify(selected.ok_or("select the user to verify")?),
        })
    }

    fn push(&mut self, user: &UserName, entry: Entry) {
        let chat = self.chats.entry(user.clone()).or_default();
        chat.push(entry);
        if chat.len() > HISTORY {
            chat.remove(0);
        }
    }

    /// Follows one of the client's events. `landed` says where a received file ended up
    /// (`DiskFiles::landed`), for the notice of a finished transfer.
    fn handle_event(
        &mut self,
        event: Event,
        now: Instant,
        landed: impl FnOnce(&UserName, TransferId) -> Option<Landed>,
    ) {
        self.tick(now);
        self.transfers.apply(&event, now);
        if let Event::File(FileEvent::Done {
            peer,
            id,
            direction: Direction::Receiving,
            ..
        }) = &event
        {
            if let Some(Landed::Complete(path) | Landed::Corrupt(path)) = landed(peer, *id) {
                self.transfers.landed(peer, *id, path);
            }
        }
        if let Some((peer, notice)) = files_pane::notice(&event, &self.transfers) {
            self.push(&peer, Entry::Notice(notice));
        }
        match event {
            Event::LoggedIn { .. } => self.status = "online".into(),
            Event::LoginFailed { reason } => {
                self.status = format!("login refused: {reason} (Esc to quit)");
                self.fatal = Some(format!("login refused: {reason}"));
            }
            Event::ServerLost { error, retry_in } => {
                let retry_in = retry_in.unwrap_or_default().as_secs_f64();
                self.status = format!("{error}; reconnecting in {retry_in:.1} s")
            }
            Event::Kicked { reason } => {
                self.status = format!("kicked: {reason} (Esc to quit)");
                self.fatal = Some(format!("kicked: {reason}"));
            }
            Event::Presence { user, online } => {
                if let Some(row) = self.row_mut(&user) {
                    row.online = online;
                }
                let word = if online { "online" } else { "offline" };
                self.push(&user, Entry::Notice(format!("{user} is {word}")));
            }
            Event::Route {
                peer,
                route,
                reason,
            } => {
                if let Some(row) = self.row_mut(&peer) {
                    row.route = route;
                }
                self.push(&peer, Entry::Notice(format!("route: {route} ({reason})")));
            }
            Event::Message {
                from, text, route, ..
            } => self.push(&from, Entry::Theirs { text, route }),
            Event::Delivered { to, id, route } => self.settle(&to, id, Fate::Delivered(route)),
            Event::Stored { to, id } => self.settle(&to, id, Fate::Stored),
            Event::Undeliverable { to, id, reason } => {
                self.settle(&to, id, Fate::Undeliverable(reason.to_string()))
            }
            Event::PeerRejected { claimed, error } => {
                let who = claimed.map_or_else(|| "someone".to_string(), |c| c.to_string());
                self.status = format!("refused a direct connection from {who}: {error}");
            }
            Event::LoggedOut => self.status = "logged out".into(),
            Event::ServerKeyLearned { key } => {
                self.status = format!("server key {} pinned in this profile", key.fingerprint());
            }
            Event::ServerKeyChanged {
                expected,
                presented,
            } => {
                let message = crate::keys::server_key_changed(&expected, &presented);
                self.status = "the server's key changed; nothing was sent (Esc to quit)".into();
                self.fatal = Some(message);
            }
            Event::PeerKeyChanged { user, new, .. } => {
                let notice = format!(
                    "⚠ {user}'s key changed (now {}): a new device or profile, or someone \
                     else. Compare /verify with {user} before trusting it.",
                    new.fingerprint()
                );
                self.push(&user, Entry::Notice(notice));
            }
            Event::ForgedRelay { from } => {
                let notice = "⚠ dropped a relayed message that failed authentication".into();
                self.push(&from, Entry::Notice(notice));
            }
            _ => {}
        }
    }

    /// The user's row in the list, kept in step with presence and route events until the
    /// next peer table replaces it.
    fn row_mut(&mut self, user: &UserName) -> Option<&mut PeerStatus> {
        self.users.iter_mut().find(|u| &u.user == user)
    }

    fn settle(&mut self, user: &UserName, sent: MessageId, new_fate: Fate) {
        let entries = self.chats.entry(user.clone()).or_default();
        for entry in entries.iter_mut().rev() {
            if let Entry::Mine { id, fate, .. } = entry {
                if *id == sent {
                    *fate = new_fate;
                    return;
                }
            }
        }
    }

    fn handle_key(&mut self, key: KeyEvent) -> Intent {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::Esc => return Intent::Quit,
            KeyCode::Char('c') if ctrl => return Intent::Quit,
            KeyCode::Tab | KeyCode::Down => self.select(1),
            KeyCode::BackTab | KeyCode::Up => self.select(-1),
            KeyCode::Char('a') if ctrl => {
                return self.answer_offer(ScreenCommand::Accept {
                    id: None,
                    dir: None,
                })
            }
            KeyCode::Char('d') if ctrl => {
                return self.answer_offer(ScreenCommand::Decline { id: None })
            }
            KeyCode::Enter => {
                if let Some(command) = slash_commands::parse(&self.input) {
                    self.input.clear();
                    return self.answer_offer_result(command);
                }
                // `//…` sends a message that starts with `/`.
                let text = match self.input.strip_prefix("//") {
                    Some(rest) => format!("/{rest}"),
                    None => self.input.clone(),
                };
                if let Some(to) = self.selected.clone() {
                    if !text.trim().is_empty() {
                        self.input.clear();
                        return Intent::Send(to, text);
                    }
                }
            }
            KeyCode::Backspace => {
                self.input.pop();
            }
            KeyCode::Char(c) if !ctrl => self.input.push(c),
            _ => {}
        }
        Intent::Nothing
    }

    fn answer_offer(&mut self, command: ScreenCommand) -> Intent {
        self.answer_offer_result(Ok(command))
    }

    /// A screen command's intent; a mistake becomes a notice in the current conversation.
    fn answer_offer_result(&mut self, command: Result<ScreenCommand, String>) -> Intent {
        match command.and_then(|command| self.command(command)) {
            Ok(intent) => intent,
            Err(message) => {
                match self.selected.clone() {
                    Some(peer) => self.push(&peer, Entry::Notice(message)),
                    None => self.status = message,
                }
                Intent::Nothing
            }
        }
    }

    fn selected_index(&self) -> Option<usize> {
        let selected = self.selected.as_ref()?;
        self.users.iter().position(|u| &u.user == selected)
    }

    fn select(&mut self, step: isize) {
        if self.users.is_empty() {
            return;
        }
        let len = self.users.len() as isize;
        let next = match self.selected_index() {
            Some(i) => (i as isize + step).rem_euclid(len),
            None => 0,
        };
        self.selected = Some(self.users[next as usize].user.clone());
    }

    /// Selects the first user once there is one; keeps the selection by name otherwise.
    fn keep_selection(&mut self) {
        if self.selected_index().is_none() {
            self.selected = self.users.first().map(|u| u.user.clone());
        }
    }
}
