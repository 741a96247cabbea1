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
//! The history is an input like the others: the loop reads a conversation's history when the
//! screen asks for it ([`Screen::wants_history`], [`Screen::load_history`]), answers `/search`
//! ([`Intent::Search`]) and jumps to a result ([`Intent::Jump`]); the wall clock that times
//! entries is given with [`Screen::set_wall_clock`].
//!
//! This file holds the state and its handlers; `draw.rs` draws it, `terminal.rs` is the loop
//! between the terminal, the client and the screen, `slash_commands.rs` parses the input line's
//! slash commands, `files_pane.rs` shows the file transfers, `chat.rs` is one conversation
//! (entries, unread, scrolling), `clock.rs` shows times and `search.rs` the search results.

use crate::history::Stored;
use crate::transfers::{State, Transfer, Transfers};
use breeze_core::client::{Direction, Event, FileEvent};
use breeze_core::wire::{GroupId, GroupInfo, GroupRequest, MessageId, TransferId, UserName};
use breeze_core::Via;
use breeze_smol::{Landed, PeerStatus, SharedFile};
use chat::{Chat, Scroll, Timed};
use clock::Zone;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use slash_commands::ScreenCommand;
use std::cell::Cell;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

mod chat;
mod clock;
mod draw;
mod files_pane;
mod groups;
#[cfg(test)]
mod history_tests;
#[cfg(test)]
mod open_bench;
mod search;
mod slash_commands;
pub mod terminal;
#[cfg(test)]
mod tests;

/// The most search results shown.
const SEARCH_RESULTS: usize = 200;

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
    /// Search the history for these words.
    Search(String),
    /// Read this user's history from this row on, to show a search result.
    Jump(UserName, i64),
    /// A message for a group.
    GroupSend(GroupId, String),
    /// Create, change or leave a group.
    Group(GroupRequest),
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
    /// What the history holds for a `/search`, newest first.
    Found {
        query: String,
        result: Result<Vec<Stored>, String>,
    },
    /// What became of a group message or request (only a refusal says something).
    GroupAsked {
        group: Option<GroupId>,
        result: Result<(), String>,
    },
    /// The history of `peer` from the `row` of a search result on.
    Jumped {
        peer: UserName,
        row: i64,
        result: Result<Vec<Stored>, String>,
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
    /// A group member's message.
    Said {
        from: UserName,
        text: String,
    },
    /// Where the messages that arrived while the user looked elsewhere start.
    UnreadMarker,
}

enum Fate {
    Sending,
    /// Sent in an earlier session that ended before it was acknowledged.
    Unconfirmed,
    Delivered(Via),
    /// A group message: how many of the other members have it.
    Reached {
        delivered: u32,
        members: u32,
    },
    Stored,
    Undeliverable(String),
}

struct Screen {
    me: UserName,
    status: String,
    users: Vec<PeerStatus>,
    selected: Option<UserName>,
    chats: HashMap<UserName, Chat>,
    /// Users with a history, listed (offline) even before the server mentions them.
    contacts: Vec<UserName>,
    /// The results of the last `/search`, shown in place of the conversation while open.
    search: Option<search::Results>,
    /// A message from someone not on screen arrived: ring the bell.
    alert: bool,
    /// The wall clock (ms since the Unix epoch) new entries are timed with.
    wall_ms: i64,
    zone: Zone,
    /// The selected conversation's view as last drawn, for the scrolling keys.
    view: Cell<draw::View>,
    input: String,
    fatal: Option<String>,
    transfers: Transfers,
    download_dir: PathBuf,
    /// The latest time an input brought; rates and ETAs are drawn as of then.
    now: Instant,
    /// The groups this user is in, listed under the users.
    groups: Vec<GroupInfo>,
    group_chats: HashMap<GroupId, Chat>,
    /// The group whose conversation is on screen, instead of the selected user's.
    on_group: Option<GroupId>,
    /// A conversation just put on screen, for the loop to tell the core
    /// ([`Screen::take_opened`]): on a big LAN that is what opens its direct channel.
    newly_opened: Option<UserName>,
}

impl Screen {
    fn new(me: UserName, download_dir: PathBuf, now: Instant) -> Screen {
        Screen {
            me,
            status: "connecting…".into(),
            users: Vec::new(),
            selected: None,
            newly_opened: None,
            chats: HashMap::new(),
            contacts: Vec::new(),
            search: None,
            alert: false,
            wall_ms: 0,
            zone: Zone::Local,
            view: Cell::new(draw::View::default()),
            input: String::new(),
            fatal: None,
            transfers: Transfers::new(),
            download_dir,
            now,
            groups: Vec::new(),
            group_chats: HashMap::new(),
            on_group: None,
        }
    }

    /// Moves the clock the screen draws rates with; it never goes back.
    fn tick(&mut self, now: Instant) {
        self.now = self.now.max(now);
    }

    /// The wall clock new entries are timed with (ms since the Unix epoch).
    fn set_wall_clock(&mut self, at_ms: i64) {
        self.wall_ms = at_ms;
    }

    /// The client's peer table, which the loop fetches after every event: the authority on
    /// who is listed, and with which route. Contacts with a history it does not list are
    /// added as offline.
    fn handle_peers(&mut self, mut users: Vec<PeerStatus>) {
        for contact in &self.contacts {
            if !users.iter().any(|u| &u.user == contact) && contact != &self.me {
                users.push(PeerStatus {
                    user: contact.clone(),
                    online: false,
                    route: breeze_core::client::Route::Relay,
                });
            }
        }
        self.users = users;
        self.keep_selection();
    }

    /// The users this profile has a history with.
    fn set_contacts(&mut self, contacts: Vec<UserName>) {
        self.contacts = contacts;
        let users = std::mem::take(&mut self.users);
        self.handle_peers(users);
    }

    /// The conversation whose history the loop should read now: the one on screen, the
    /// first time.
    fn wants_history(&self) -> Option<UserName> {
        let selected = self.selected.as_ref()?;
        match self.chats.get(selected) {
            Some(chat) if chat.loaded => None,
            _ => Some(selected.clone()),
        }
    }

    /// The conversation put on screen since last asked, for the loop to pass to
    /// [`breeze_smol::Client::open_conversation`]: the screen does no IO itself.
    fn take_opened(&mut self) -> Option<UserName> {
        self.newly_opened.take()
    }

    /// `peer`'s history (oldest first), read for [`Screen::wants_history`].
    fn load_history(&mut self, peer: &UserName, history: Result<Vec<Stored>, String>) {
        let chat = self.chats.entry(peer.clone()).or_default();
        match history {
            Ok(history) => chat.load(history),
            Err(problem) => {
                chat.loaded = true;
                let notice = format!("no history: {problem}");
                self.push(peer, Entry::Notice(notice));
            }
        }
    }

    /// Whether to ring the bell: a message from someone not on screen arrived since the
    /// last call.
    fn take_alert(&mut self) -> bool {
        std::mem::take(&mut self.alert)
    }

    /// The terminal's title: how many messages wait unread.
    fn title(&self) -> String {
        let unread: usize = self
            .chats
            .values()
            .chain(self.group_chats.values())
            .map(|c| c.unread)
            .sum();
        match unread {
            0 => format!("breeze · {}", self.me),
            n => format!("breeze · {} · {n} unread", self.me),
        }
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
            Answer::Found { query, result } => match result {
                Ok(found) => self.search = Some(search::Results::new(query, found)),
                Err(problem) => self.status = format!("cannot search: {problem}"),
            },
            Answer::Jumped { peer, row, result } => match result {
                Ok(history) => self.chats.entry(peer).or_default().jump(history, row),
                Err(problem) => self.status = format!("cannot show that message: {problem}"),
            },
            Answer::GroupAsked { group, result } => {
                if let Err(error) = result {
                    match group {
                        Some(group) => {
                            self.push_group(group, Entry::Notice(format!("not sent: {error}")))
                        }
                        None => self.status = format!("group: {error}"),
                    }
                }
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
            ScreenCommand::Search { text } => Intent::Search(text),
            ScreenCommand::Open { user } => {
                let user = UserName::new(user.as_str())
                    .map_err(|error| format!("bad user name {user:?}: {error}"))?;
                if user == self.me {
                    return Err("that is you".into());
                }
                // Listed like a contact from now on; the loop opens its conversation, which watches it.
                if !self.contacts.contains(&user) {
                    self.contacts.push(user.clone());
                    let users = std::mem::take(&mut self.users);
                    self.handle_peers(users);
                }
                self.on_group = None;
                self.open(Some(user));
                Intent::Nothing
            }
            ScreenCommand::Group(args) => self.group_command(args)?,
        })
    }

    fn push(&mut self, user: &UserName, entry: Entry) {
        let at_ms = self.wall_ms;
        let chat = self.chats.entry(user.clone()).or_default();
        chat.push(Timed {
            at_ms,
            row: None,
            entry,
        });
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
            Event::PresenceUnknown { user } => {
                // The server filled up and no longer tells of users this one does not talk
                // to: not shown online any more, and no "offline" notice, since nobody left.
                if let Some(row) = self.row_mut(&user) {
                    row.online = false;
                }
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
            } => {
                if self.selected.as_ref() != Some(&from) {
                    self.alert = true;
                    let at_ms = self.wall_ms;
                    self.chats
                        .entry(from.clone())
                        .or_default()
                        .arrived_unseen(at_ms);
                }
                self.push(&from, Entry::Theirs { text, route })
            }
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
            Event::Group(event) => self.handle_group_event(event),
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
        self.chats
            .entry(user.clone())
            .or_default()
            .settle(sent, new_fate);
    }

    fn handle_key(&mut self, key: KeyEvent) -> Intent {
        if self.search.is_some() {
            if let Some(intent) = self.search_key(key) {
                return intent;
            }
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::PageUp | KeyCode::PageDown | KeyCode::Home | KeyCode::End => {
                self.scroll(key.code)
            }
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
                if let Some(group) = self.on_group {
                    if !text.trim().is_empty() {
                        self.input.clear();
                        return Intent::GroupSend(group, text);
                    }
                } else if let Some(to) = self.selected.clone() {
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

    /// The row of the list that is highlighted: a user's, or a group's after the users.
    fn list_index(&self) -> Option<usize> {
        match self.on_group {
            Some(group) => {
                let at = self.groups.iter().position(|g| g.id == group)?;
                Some(self.users.len() + at)
            }
            None => self.selected_index(),
        }
    }

    /// Moves through the users, then the groups.
    fn select(&mut self, step: isize) {
        let len = (self.users.len() + self.groups.len()) as isize;
        if len == 0 {
            return;
        }
        let next = match self.list_index() {
            Some(i) => (i as isize + step).rem_euclid(len) as usize,
            None => 0,
        };
        match next.checked_sub(self.users.len()) {
            Some(group) => {
                let id = self.groups.get(group).map(|g| g.id);
                self.open_group(id);
            }
            None => {
                self.open_group(None);
                let user = self.users.get(next).map(|u| u.user.clone());
                self.open(user);
            }
        }
    }

    /// Selects the first user once there is one; keeps the selection by name otherwise.
    fn keep_selection(&mut self) {
        if self.selected_index().is_none() {
            self.open(self.users.first().map(|u| u.user.clone()));
        }
    }

    /// Puts `user`'s conversation on screen: what was unread there is read now, the marker
    /// of the one left has served.
    fn open(&mut self, user: Option<UserName>) {
        if user == self.selected {
            return;
        }
        if let Some(left) = self.selected.as_ref().and_then(|u| self.chats.get_mut(u)) {
            left.left();
        }
        if let Some(user) = &user {
            self.chats.entry(user.clone()).or_default().opened();
        }
        self.newly_opened.clone_from(&user);
        self.selected = user;
    }

    /// PgUp/PgDn by a page of the conversation as last drawn, Home to its start, End back
    /// to the newest.
    fn scroll(&mut self, code: KeyCode) {
        let view = self.view.get();
        let chat = match self.on_group {
            Some(group) => self.group_chats.get_mut(&group),
            None => self.selected.as_ref().and_then(|u| self.chats.get_mut(u)),
        };
        let Some(chat) = chat else {
            return;
        };
        let page = view.height.saturating_sub(1).max(1);
        chat.scroll = match code {
            KeyCode::PageUp => Scroll::Line(view.top.saturating_sub(page)),
            KeyCode::PageDown if view.top + page < view.max_top => Scroll::Line(view.top + page),
            KeyCode::Home => Scroll::Line(0),
            _ => {
                chat.back_to_newest();
                return;
            }
        };
    }

    /// Keys while search results are open: ↑/↓ pick, Enter jumps, Esc closes. `None` for
    /// keys that act as usual.
    fn search_key(&mut self, key: KeyEvent) -> Option<Intent> {
        let results = self.search.as_mut()?;
        match key.code {
            KeyCode::Up => results.step(-1),
            KeyCode::Down => results.step(1),
            KeyCode::Esc => self.search = None,
            KeyCode::Enter => {
                let (peer, row) = results.chosen()?;
                self.search = None;
                self.open(Some(peer.clone()));
                if !self.users.iter().any(|u| u.user == peer) {
                    self.contacts.push(peer.clone());
                    let users = std::mem::take(&mut self.users);
                    self.handle_peers(users);
                }
                let chat = self.chats.entry(peer.clone()).or_default();
                if chat.loaded && chat.show_row(row) {
                    return Some(Intent::Nothing);
                }
                return Some(Intent::Jump(peer, row));
            }
            _ => return None,
        }
        Some(Intent::Nothing)
    }
}
