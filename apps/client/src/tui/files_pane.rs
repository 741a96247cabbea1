//! The chat screen's file transfers: one line per offer or transfer under way (a progress bar
//! with rate and ETA), and the notices a transfer leaves in the conversation.

use crate::transfer_rate::{bytes, duration};
use crate::transfers::{State, Transfer, Transfers};
use breeze_core::client::{Direction, Event, FileEvent};
use breeze_core::wire::UserName;
use ratatui::style::Stylize;
use ratatui::text::{Line, Span};
use std::time::Instant;

/// Cells of the progress bar.
const BAR: usize = 20;
/// Transfer lines shown at most; the rest are counted.
pub const MAX_LINES: usize = 5;
/// Columns a file name gets at most: a name may be 255 bytes long, and the line does not
/// wrap, so a longer one is cut to keep the answer keys or the bar on screen. The offer's
/// notice in the conversation has the whole name.
const NAME_COLUMNS: usize = 32;

/// Lines for the transfers pane: offers waiting for an answer and transfers under way.
pub fn pane_lines(transfers: &Transfers, now: Instant) -> Vec<Line<'static>> {
    let active: Vec<&Transfer> = transfers.active().collect();
    let mut lines: Vec<Line> = active
        .iter()
        .rev()
        .take(MAX_LINES)
        .rev()
        .map(|t| transfer_line(t, now))
        .collect();
    if active.len() > MAX_LINES {
        let more = format!("… and {} more", active.len() - MAX_LINES);
        lines.insert(0, Line::from(more.dark_gray()));
    }
    lines
}

fn transfer_line(t: &Transfer, now: Instant) -> Line<'static> {
    let (arrow, who) = match t.direction {
        Direction::Sending => ("↑ ".cyan(), format!("to {}", t.peer)),
        Direction::Receiving => ("↓ ".magenta(), format!("from {}", t.peer)),
    };
    let head = format!("{} {} {who} ", short_name(&t.name), bytes(t.size));
    if t.state == State::Offered {
        let hint = match t.direction {
            Direction::Receiving => {
                format!("offered · Ctrl-A accept · Ctrl-D decline · id {}", t.id)
            }
            Direction::Sending => format!("waiting for {} to accept · id {}", t.peer, t.id),
        };
        return Line::from(vec![arrow, Span::raw(head), hint.yellow()]);
    }
    let fraction = if t.size == 0 {
        1.0
    } else {
        t.bytes as f64 / t.size as f64
    };
    let filled = ((fraction * BAR as f64) as usize).min(BAR);
    let bar = format!("[{}{}]", "█".repeat(filled), "░".repeat(BAR - filled));
    let rate = t
        .rate
        .bytes_per_second(now)
        .map_or("…".to_string(), |r| format!("{}/s", bytes(r as u64)));
    let eta = t
        .rate
        .eta(now, t.bytes, t.size)
        .map_or("ETA …".to_string(), |d| format!("ETA {}", duration(d)));
    let route = t.route.map_or(String::new(), |r| format!(" · {r}"));
    Line::from(vec![
        arrow,
        Span::raw(head),
        bar.green(),
        Span::raw(format!(
            " {:>3.0}% · {rate} · {eta}{route}",
            fraction * 100.0
        )),
    ])
}

/// `name`, cut to [`NAME_COLUMNS`] with `…` if it is longer. Columns, not characters: a
/// Chinese character takes two.
fn short_name(name: &str) -> String {
    if Span::raw(name).width() <= NAME_COLUMNS {
        return name.to_string();
    }
    let mut short = String::new();
    let mut columns = 0;
    for c in name.chars() {
        let mut utf8 = [0; 4];
        columns += Span::raw(&*c.encode_utf8(&mut utf8)).width();
        if columns > NAME_COLUMNS - 1 {
            break;
        }
        short.push(c);
    }
    short.push('…');
    short
}

/// The conversation notice a file event leaves, and in whose conversation.
pub fn notice(event: &Event, transfers: &Transfers) -> Option<(UserName, String)> {
    let name = |peer: &UserName, id, direction| {
        transfers
            .get(peer, id, direction)
            .map_or_else(|| format!("file {id}"), |t| t.name.clone())
    };
    let path = |peer: &UserName, id, direction| {
        transfers
            .get(peer, id, direction)
            .and_then(|t| t.path.as_ref())
            .map_or_else(String::new, |p| p.display().to_string())
    };
    let text = match event {
        Event::File(FileEvent::Offered {
            from,
            id,
            name,
            size,
            ..
        }) => {
            let notice = format!(
                "{from} offers {name} ({}): Ctrl-A accepts, Ctrl-D declines, or /accept {id} DIR",
                bytes(*size)
            );
            return Some((from.clone(), notice));
        }
        Event::File(FileEvent::Accepted { to, id, offset }) => {
            let name = name(to, *id, Direction::Sending);
            if *offset > 0 {
                format!("{to} accepted {name}, resuming at {}", bytes(*offset))
            } else {
                format!("{to} accepted {name}")
            }
        }
        Event::File(FileEvent::Done {
            peer,
            id,
            direction,
            verified,
        }) => {
            let (name, path) = (name(peer, *id, *direction), path(peer, *id, *direction));
            match (direction, verified) {
                (Direction::Receiving, true) => format!("✓ received {name}: {path}"),
                (Direction::Receiving, false) => {
                    format!("✗ {name} arrived damaged (hash mismatch); kept aside as {path}")
                }
                (Direction::Sending, true) => format!("✓ {peer} received {name} intact"),
                (Direction::Sending, false) => format!("✗ {peer} received {name} damaged"),
            }
        }
        Event::File(FileEvent::Failed {
            peer,
            id,
            direction,
            failure,
        }) => format!("✗ {}: {failure}", name(peer, *id, *direction)),
        Event::File(FileEvent::Declined { to, id }) => {
            format!("{to} declined {}", name(to, *id, Direction::Sending))
        }
        Event::File(FileEvent::Cancelled {
            peer,
            id,
            direction,
        }) => format!("{peer} cancelled {}", name(peer, *id, *direction)),
        _ => return None,
    };
    let peer = match event {
        Event::File(FileEvent::Accepted { to, .. })
        | Event::File(FileEvent::Declined { to, .. }) => to,
        Event::File(FileEvent::Done { peer, .. })
        | Event::File(FileEvent::Failed { peer, .. })
        | Event::File(FileEvent::Cancelled { peer, .. }) => peer,
        _ => return None,
    };
    Some((peer.clone(), text))
}
