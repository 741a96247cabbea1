//! Drawing the [`Screen`] from its state alone.

use super::chat::{Scroll, Timed};
use super::{files_pane, Entry, Fate, Screen};
use breeze_core::client::Route;
use breeze_core::wire::UserName;
use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::style::{Modifier, Style, Stylize};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, List, ListItem, ListState, Paragraph, Wrap};
use ratatui::Frame;

const KEYS_HELP: &str = " Tab/↓ next user · Shift-Tab/↑ previous · Enter send · PgUp/PgDn/Home/End scroll · Ctrl-A/Ctrl-D accept/decline a file · /file PATH · /search TEXT · Esc/Ctrl-C quit ";
/// Width of the users list, borders included.
const USERS_WIDTH: u16 = 30;
/// Columns for a name in the users list. With the dot (2), a space and the longest route tag
/// (`connecting`, 10), a row fills the list's 28 inner columns exactly: a long name is cut,
/// never the route.
const NAME_COLUMNS: usize = 15;

/// The selected conversation as last drawn: which wrapped line is at the top, the most it
/// can be (the newest line at the bottom), and how many lines fit.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct View {
    pub top: usize,
    pub max_top: usize,
    pub height: usize,
}

impl Screen {
    pub(super) fn render(&self, frame: &mut Frame) {
        let transfers = files_pane::pane_lines(&self.transfers, self.now);
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
                let unread = self.chats.get(&peer.user).map_or(0, |c| c.unread);
                let name = format!("{} ", list_name(&peer.user, unread));
                let name = if unread > 0 {
                    name.bold()
                } else {
                    Span::raw(name)
                };
                ListItem::new(Line::from(vec![dot, name, tag]))
            })
            .chain(self.groups.iter().map(|group| {
                let unread = self.group_chats.get(&group.id).map_or(0, |c| c.unread);
                let members = match group.members.len() {
                    0 => "left".to_string(),
                    n => format!("{n} members"),
                };
                let name = group_row_name(&group.name, unread);
                let name = if unread > 0 {
                    name.bold()
                } else {
                    Span::raw(name)
                };
                ListItem::new(Line::from(vec!["# ".cyan(), name, members.dark_gray()]))
            }))
            .collect();
        let title = format!(" {} · {} ", self.me, self.status);
        let list = List::new(items)
            .block(Block::bordered().title(title))
            .highlight_style(Style::new().add_modifier(Modifier::REVERSED));
        let mut state = ListState::default().with_selected(self.list_index());
        frame.render_stateful_widget(list, area, &mut state);
    }

    fn render_chat(&self, frame: &mut Frame, area: Rect) {
        if let Some(group) = self.group_on_screen() {
            let title = format!("# {} · owner {}", group.name, group.owner);
            let chat = self.group_chat(group.id);
            let name = UserName::new("group").unwrap_or_else(|_| self.me.clone());
            return self.render_conversation(frame, area, &name, &title, chat);
        }
        let Some(peer) = &self.selected else {
            let hint = "No one else is known yet. Users appear here when they come online.";
            let paragraph = Paragraph::new(hint)
                .wrap(Wrap { trim: true })
                .block(Block::bordered().title(" Conversation "));
            frame.render_widget(paragraph, area);
            return;
        };
        if let Some(results) = &self.search {
            results.render(frame, area, self.zone);
            return;
        }
        let route = self
            .users
            .iter()
            .find(|u| &u.user == peer)
            .map_or("unknown".to_string(), |u| u.route.to_string());
        let title = format!("{peer} · {route}");
        self.render_conversation(frame, area, peer, &title, self.chats.get(peer));
    }

    /// One conversation (a user's, or a group's) with its day lines, scrolled as it is.
    fn render_conversation(
        &self,
        frame: &mut Frame,
        area: Rect,
        peer: &UserName,
        title: &str,
        chat: Option<&super::chat::Chat>,
    ) {
        let entries = chat.map(|c| &c.entries);
        // The first line of each entry, for a jump to a search result.
        let mut starts = Vec::new();
        let mut lines: Vec<Line> = Vec::new();
        let mut day = None;
        for timed in entries.into_iter().flatten() {
            let this_day = self.zone.day(timed.at_ms);
            if day != Some(this_day) {
                day = Some(this_day);
                let label = format!("─── {} ───", self.zone.day_line(timed.at_ms));
                lines.push(Line::from(label.dark_gray()).centered());
            }
            starts.push(lines.len());
            lines.push(self.entry_line(peer, timed));
        }
        let block = Block::bordered().title(format!(" {title} "));
        let inner = block.inner(area);
        let width = inner.width;
        let height = inner.height as usize;
        let wrapped = |lines: &[Line<'static>]| {
            Paragraph::new(Text::from(lines.to_vec()))
                .wrap(Wrap { trim: false })
                .line_count(width)
        };
        let total = wrapped(&lines);
        let max_top = total.saturating_sub(height);
        let top = match chat.map_or(Scroll::Bottom, |c| c.scroll) {
            Scroll::Bottom => max_top,
            Scroll::Line(line) => line.min(max_top),
            Scroll::Entry(entry) => {
                let first = starts.get(entry).copied().unwrap_or(lines.len());
                wrapped(&lines[..first]).min(max_top)
            }
        };
        self.view.set(View {
            top,
            max_top,
            height,
        });
        let title = if top < max_top {
            format!(" {title} · ↑ scrolled: End for the newest ")
        } else {
            format!(" {title} ")
        };
        let paragraph = Paragraph::new(Text::from(lines)).wrap(Wrap { trim: false });
        let scroll = u16::try_from(top).unwrap_or(u16::MAX);
        let block = Block::bordered().title(title);
        frame.render_widget(paragraph.block(block).scroll((scroll, 0)), area);
    }

    fn entry_line(&self, peer: &UserName, timed: &Timed) -> Line<'static> {
        let time = format!("{} ", self.zone.time(timed.at_ms)).dark_gray();
        let mut line = self.entry_spans(peer, &timed.entry);
        if !matches!(timed.entry, Entry::UnreadMarker) {
            line.spans.insert(0, time);
        }
        line
    }

    fn entry_spans(&self, peer: &UserName, entry: &Entry) -> Line<'static> {
        match entry {
            Entry::Mine { text, fate, .. } => {
                let tick = match fate {
                    Fate::Sending => " …".dark_gray(),
                    Fate::Unconfirmed => " · not confirmed".dark_gray(),
                    Fate::Delivered(path) => format!(" ✓ {path}").green(),
                    Fate::Reached { delivered, members } if delivered >= members => {
                        format!(" ✓ all {members}").green()
                    }
                    Fate::Reached { delivered, members } => {
                        format!(" ✓ {delivered}/{members}").yellow()
                    }
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
            Entry::Said { from, text } => Line::from(vec![
                format!("{from}: ").bold().magenta(),
                Span::raw(printable(text)),
            ]),
            Entry::UnreadMarker => Line::from("──── unread ────".red().bold()).centered(),
        }
    }

    fn render_input(&self, frame: &mut Frame, area: Rect) {
        let title = match (self.group_on_screen(), &self.selected) {
            (Some(group), _) => format!(" Message to # {} ", group.name),
            (None, Some(peer)) => format!(" Message to {peer} "),
            (None, None) => " Message ".to_string(),
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
pub(super) fn printable(text: &str) -> String {
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

/// `name`, with `(N)` after it when N messages wait unread, in exactly [`NAME_COLUMNS`]
/// columns: the name is cut with `…` if it does not fit, never the count. User names are
/// ASCII (one column a character), so counting bytes is counting columns.
fn list_name(name: &UserName, unread: usize) -> String {
    let name = name.as_str();
    let count = if unread > 0 {
        format!(" ({unread})")
    } else {
        String::new()
    };
    let room = NAME_COLUMNS.saturating_sub(count.len());
    let name = if name.len() <= room {
        name.to_string()
    } else {
        format!(
            "{}…",
            name.get(..room.saturating_sub(1)).unwrap_or_default()
        )
    };
    format!("{:<NAME_COLUMNS$}", format!("{name}{count}"))
}

/// A group's name in the list, with its unread count, cut to fit beside the member count.
fn group_row_name(name: &str, unread: usize) -> String {
    let count = if unread > 0 {
        format!(" ({unread})")
    } else {
        String::new()
    };
    let room = 14usize.saturating_sub(count.len());
    let shown: String = if name.chars().count() <= room {
        name.to_string()
    } else {
        let mut cut: String = name.chars().take(room.saturating_sub(1)).collect();
        cut.push('…');
        cut
    };
    format!("{:<14} ", format!("{shown}{count}"))
}

fn route_span(route: Route) -> Span<'static> {
    match route {
        Route::Direct => "direct".green(),
        Route::Relay => "relay".yellow(),
        Route::Connecting => "connecting".cyan(),
    }
}
