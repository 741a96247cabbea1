//! The results of `/search TEXT`: shown in place of the conversation, newest first, one line
//! each with its day, time and conversation; ↑/↓ pick one, Enter opens its conversation at
//! that message, Esc closes them.

use super::clock::Zone;
use super::draw::printable;
use crate::history::{Conversation, Stored};
use breeze_core::wire::UserName;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, List, ListItem, ListState};
use ratatui::Frame;

pub struct Results {
    pub query: String,
    found: Vec<Stored>,
    selected: usize,
}

impl Results {
    pub fn new(query: String, found: Vec<Stored>) -> Results {
        Results {
            query,
            found,
            selected: 0,
        }
    }

    /// Moves the pick by `step`, staying within the results.
    pub fn step(&mut self, step: isize) {
        let last = self.found.len().saturating_sub(1);
        self.selected = self.selected.saturating_add_signed(step).min(last);
    }

    /// The peer and row of the picked result (group results open no peer conversation).
    pub fn chosen(&self) -> Option<(UserName, i64)> {
        let found = self.found.get(self.selected)?;
        match &found.conversation {
            Conversation::Peer(peer) => Some((peer.clone(), found.row)),
            Conversation::Group(_) => None,
        }
    }

    pub fn render(&self, frame: &mut Frame, area: Rect, zone: Zone) {
        let title = format!(
            " search “{}” · {} found · ↑/↓ pick · Enter open · Esc close ",
            printable(&self.query),
            self.found.len()
        );
        let items: Vec<ListItem> = self
            .found
            .iter()
            .map(|found| {
                let place = match &found.conversation {
                    Conversation::Peer(peer) => peer.to_string(),
                    Conversation::Group(group) => format!("#{group}"),
                };
                let when = format!(
                    "{} {} ",
                    zone.day(found.at_ms).format("%Y-%m-%d"),
                    zone.time(found.at_ms)
                );
                ListItem::new(Line::from(vec![
                    when.dark_gray(),
                    format!("[{place}] ").yellow(),
                    format!("{}: ", found.from).bold(),
                    Span::raw(printable(&found.text)),
                ]))
            })
            .collect();
        let list = List::new(items)
            .block(Block::bordered().title(title))
            .highlight_style(Style::new().add_modifier(Modifier::REVERSED));
        let mut state = ListState::default().with_selected(Some(self.selected));
        frame.render_stateful_widget(list, area, &mut state);
    }
}
