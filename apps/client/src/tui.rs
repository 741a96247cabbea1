//! The interactive chat screen: users with their route on the left, the conversation with the
//! selected user on the right, file transfers under way (`tui_transfers.rs`) above an input
//! line at the bottom, which also takes the file commands of `tui_commands.rs`.
//!
//! How it is driven: [`Screen`] is the whole state and does no IO. The terminal loop feeds it
//! the client's events ([`Screen::handle_event`], then the client's peer table,
//! [`Screen::handle_peers`]) and key presses ([`Screen::handle_key`]), which return an
//! [`Intent`]: what to ask of the client. The loop asks ([`perform`]) and hands the client's
//! [`Answer`] back ([`Screen::handle_answer`]). [`Screen::render`] draws from the state alone:
//! the clock is an input too ([`Screen::tick`]), so the screen can be drawn into a test buffer.

use crate::transfers::{State, Transfer, Transfers};
use crate::tui_commands::{self, ScreenCommand};
use crate::tui_transfers;
use breeze_core::client::{Direction, Event, FileEvent, Route};
use breeze_core::wire::{MessageId, TransferId, UserName};
use breeze_core::Via;
use breeze_smol::{Client, DiskFiles, Landed, PeerStatus, SharedFile};
use crossterm::event::{
    Event as TermEvent, EventStream, KeyCode, KeyEvent, KeyEventKind, KeyModifiers,
};
use futures_lite::future::race;
use futures_lite::StreamExt;
use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::style::{Modifier, Style, Stylize};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, List, ListItem, ListState, Paragraph, Wrap};
use ratatui::{DefaultTerminal, Frame};
use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[cfg(test)]
mod tests;

/// Entries kept per conversation; older ones scroll away for good.
const HISTORY: usize = 1000;
const KEYS_HELP: &str = " Tab/↓ next user · Shift-Tab/↑ previous · Enter send · Ctrl-A/Ctrl-D accept/decline a file · /file PATH · Esc/Ctrl-C quit ";
/// How often the screen is redrawn while a transfer runs, for its rate and ETA.
const TRANSFER_TICK: Duration = Duration::from_millis(500);
/// Width of the users list, borders included.
const USERS_WIDTH: u16 = 30;
/// Columns for a name in the users list. With the dot (2), a space and the longest route tag
/// (`connecting`, 10), a row fills the list's 28 inner columns exactly: a long name is cut,
/// never the route.
const NAME_COLUMNS: usize = 15;

/// Runs the screen until the user quits; non-zero exit after a refused login or a kick.
pub async fn run(client: Client, files: Arc<DiskFiles>, download_dir: PathBuf) -> ExitCode {
    let mut terminal = match ratatui::try_init() {
        Ok(terminal) => terminal,
        Err(error) => {
            eprintln!("breeze: cannot set up the terminal: {error}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = event_loop(&mut terminal, &client, &files, download_dir).await;
    ratatui::restore();
    client.logout().await;
    match outcome {
        Ok(None) => ExitCode::SUCCESS,
        Ok(Some(fatal)) => {
            eprintln!("breeze: {fatal}");
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("breeze: terminal error: {error}");
            ExitCode::FAILURE
        }
    }
}

enum Wake {
    Key(Option<io::Result<TermEvent>>),
    Client(Option<Event>),
    /// Time to refresh the transfers' rates.
    Tick,
}

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
}

/// Returns the fatal error that ended the session, if one did.
async fn event_loop(
    terminal: &mut DefaultTerminal,
    client: &Client,
    files: &DiskFiles,
    download_dir: PathBuf,
) -> io::Result<Option<String>> {
    let mut keys = EventStream::new();
    let mut screen = Screen::new(client.user().clone(), download_dir, Instant::now());
    loop {
        screen.tick(Instant::now());
        terminal.draw(|frame| screen.render(frame))?;
        let running = screen.transfers.active().any(|t| t.state == State::Running);
        let wake = race(async { Wake::Key(keys.next().await) }, async {
            Wake::Client(client.next_event().await)
        });
        let tick = async {
            if running {
                async_io::Timer::after(TRANSFER_TICK).await;
            } else {
                std::future::pending::<()>().await;
            }
            Wake::Tick
        };
        match race(wake, tick).await {
            Wake::Key(Some(Ok(TermEvent::Key(key)))) if key.kind == KeyEventKind::Press => {
                match screen.handle_key(key) {
                    Intent::Nothing => {}
                    Intent::Quit => return Ok(screen.fatal),
                    intent => {
                        // Hashing a big file takes a moment: show the notice saying so first.
                        terminal.draw(|frame| screen.render(frame))?;
                        if let Some(answer) = perform(client, intent).await {
                            screen.handle_answer(answer, Instant::now());
                        }
                    }
                }
            }
            Wake::Key(Some(Ok(_))) | Wake::Tick => {}
            Wake::Key(Some(Err(error))) => return Err(error),
            Wake::Key(None) | Wake::Client(None) => return Ok(screen.fatal),
            Wake::Client(Some(event)) => {
                screen.handle_event(event, Instant::now(), |peer, id| files.landed(peer, id));
                screen.handle_peers(client.peers().await);
            }
        }
    }
}

/// Asks the client for what a key press meant; `None` when it asks nothing of the client.
async fn perform(client: &Client, intent: Intent) -> Option<Answer> {
    let answer = match intent {
        Intent::Nothing | Intent::Quit => return None,
        Intent::Send(to, text) => Answer::Sent {
            result: client
                .send(&to, text.clone())
                .await
                .map_err(|e| e.to_string()),
            to,
            text,
        },
        Intent::Offer(to, path) => Answer::Offered {
            result: client
                .offer_file(&to, &path)
                .await
                .map_err(|e| e.to_string()),
            to,
            path,
        },
        Intent::Accept(from, id, dir) => Answer::Accepted {
            result: client
                .accept_file(&from, id, &dir)
                .await
                .map_err(|e| e.to_string()),
            from,
            id,
            dir,
        },
        Intent::Decline(from, id) => Answer::Declined {
            result: client
                .decline_file(&from, id)
                .await
                .map_err(|e| e.to_string()),
            from,
            id,
        },
        Intent::Cancel(peer, id, direction) => Answer::Cancelled {
            result: client
                .cancel_file(&peer, id, direction)
                .await
                .map_err(|e| e.to_string()),
            peer,
            id,
            direction,
        },
    };
    Some(answer)
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
        if let Some((peer, notice)) = tui_transfers::notice(&event, &self.transfers) {
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
                if let Some(command) = tui_commands::parse(&self.input) {
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

    fn render(&self, frame: &mut Frame) {
        let transfers = tui_transfers::pane_lines(&self.transfers, self.now);
        let pane = if transfers.is_empty() {
            0
        } else {
            transfers.len() as u16 + 2
        };
        let [main, pane_area, input, help] = Layout::vertical([
            Constraint::Min(3),
            Constraint::Length(pane),
            Constraint::Length(3),
            Constraint::Length(1),
        ])
        .areas(frame.area());
        if !transfers.is_empty() {
            let block = Block::bordered().title(" Files ");
            frame.render_widget(Paragraph::new(transfers).block(block), pane_area);
        }
        let [users, chat] =
            Layout::horizontal([Constraint::Length(USERS_WIDTH), Constraint::Min(10)]).areas(main);
        self.render_users(frame, users);
        self.render_chat(frame, chat);
        self.render_input(frame, input);
        frame.render_widget(Paragraph::new(KEYS_HELP).dark_gray(), help);
    }

    fn render_users(&self, frame: &mut Frame, area: Rect) {
        let items: Vec<ListItem> = self
            .users
            .iter()
            .map(|peer| {
                let (dot, tag) = if peer.online {
                    ("● ".green(), route_span(peer.route))
                } else {
                    ("○ ".dark_gray(), "offline".dark_gray())
                };
                let name = format!("{} ", list_name(&peer.user));
                ListItem::new(Line::from(vec![dot, Span::raw(name), tag]))
            })
            .collect();
        let title = format!(" {} · {} ", self.me, self.status);
        let list = List::new(items)
            .block(Block::bordered().title(title))
            .highlight_style(Style::new().add_modifier(Modifier::REVERSED));
        let mut state = ListState::default().with_selected(self.selected_index());
        frame.render_stateful_widget(list, area, &mut state);
    }

    fn render_chat(&self, frame: &mut Frame, area: Rect) {
        let Some(peer) = &self.selected else {
            let hint = "No one else is known yet. Users appear here when they come online.";
            let paragraph = Paragraph::new(hint)
                .wrap(Wrap { trim: true })
                .block(Block::bordered().title(" Conversation "));
            frame.render_widget(paragraph, area);
            return;
        };
        let route = self
            .users
            .iter()
            .find(|u| &u.user == peer)
            .map_or("unknown".to_string(), |u| u.route.to_string());
        let lines: Vec<Line> = self
            .chats
            .get(peer)
            .into_iter()
            .flatten()
            .map(|entry| self.entry_line(peer, entry))
            .collect();
        let block = Block::bordered().title(format!(" {peer} · {route} "));
        let paragraph = Paragraph::new(Text::from(lines)).wrap(Wrap { trim: false });
        let inner = block.inner(area);
        let height = paragraph.line_count(inner.width);
        let scroll = height.saturating_sub(inner.height as usize);
        let scroll = u16::try_from(scroll).unwrap_or(u16::MAX);
        frame.render_widget(paragraph.block(block).scroll((scroll, 0)), area);
    }

    fn entry_line(&self, peer: &UserName, entry: &Entry) -> Line<'static> {
        match entry {
            Entry::Mine { text, fate, .. } => {
                let tick = match fate {
                    Fate::Sending => " …".dark_gray(),
                    Fate::Delivered(path) => format!(" ✓ {path}").green(),
                    Fate::Stored => " ✓ stored (offline)".yellow(),
                    Fate::Undeliverable(reason) => format!(" ✗ not delivered: {reason}").red(),
                };
                Line::from(vec![
                    format!("{}: ", self.me).bold().cyan(),
                    Span::raw(printable(text)),
                    tick,
                ])
            }
            Entry::Theirs { text, route } => Line::from(vec![
                format!("{peer}: ").bold().magenta(),
                Span::raw(printable(text)),
                format!("  ({route})").dark_gray(),
            ]),
            Entry::Notice(text) => {
                Line::from(format!("— {}", printable(text)).dark_gray().italic())
            }
        }
    }

    fn render_input(&self, frame: &mut Frame, area: Rect) {
        let title = match &self.selected {
            Some(peer) => format!(" Message to {peer} "),
            None => " Message ".to_string(),
        };
        let block = Block::bordered().title(title);
        let inner = block.inner(area);
        // Show the end of a long line, where the cursor is, keeping a column for the cursor.
        let (visible, columns) = tail_in_columns(&self.input, inner.width.saturating_sub(1));
        let cursor_x = inner.x + columns;
        frame.render_widget(Paragraph::new(visible).block(block), area);
        frame.set_cursor_position(Position::new(cursor_x, inner.y));
    }
}

/// `text` with its control characters drawn as symbols (`␛` for ESC, `␉` for a tab…).
/// ratatui hands a paragraph's characters to the terminal as they are: a message carrying an
/// ESC would let any peer clear the screen, retitle the window or write the clipboard.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            // The Unicode "control pictures" block has one for each C0 character.
            '\0'..='\x1f' => char::from_u32(0x2400 + c as u32).unwrap_or('\u{fffd}'),
            '\x7f' => '␡',
            c if c.is_control() => '\u{fffd}',
            c => c,
        })
        .collect()
}

/// The longest end of `text` that fits in `max` columns, and the columns it takes. Columns,
/// not characters: Chinese characters and most emoji take two.
fn tail_in_columns(text: &str, max: u16) -> (&str, u16) {
    let mut start = text.len();
    let mut columns = 0;
    for (at, c) in text.char_indices().rev() {
        let mut utf8 = [0; 4];
        let width = Span::raw(&*c.encode_utf8(&mut utf8)).width() as u16;
        if columns + width > max {
            break;
        }
        columns += width;
        start = at;
    }
    (&text[start..], columns)
}

/// `name` in exactly [`NAME_COLUMNS`] columns, cut with `…` if longer. User names are ASCII
/// (one column a character), so counting bytes is counting columns.
fn list_name(name: &UserName) -> String {
    let name = name.as_str();
    if name.len() <= NAME_COLUMNS {
        format!("{name:<NAME_COLUMNS$}")
    } else {
        format!("{}…", &name[..NAME_COLUMNS - 1])
    }
}

fn route_span(route: Route) -> Span<'static> {
    match route {
        Route::Direct => "direct".green(),
        Route::Relay => "relay".yellow(),
        Route::Connecting => "connecting".cyan(),
    }
}
