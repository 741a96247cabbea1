//! The chat screen with a history: a conversation opens with it, entries are timed with
//! lines between days, unread messages are counted and marked, PgUp/PgDn/Home/End scroll,
//! `/search` lists results and Enter opens one. Drawn into ratatui's `TestBackend`, in UTC.

use super::tests::{
    alice_with, conversation_column, draw, event, key, name, peer, row_with, shows, type_text,
    users_column,
};
use super::*;
use crate::history::tests::message;
use crate::history::{Conversation, State as Delivery};
use breeze_core::client::Route;

/// 2026-12-07T00:00:00Z, a Monday.
const MONDAY: i64 = 1_796_601_600_000;
const MINUTE: i64 = 60_000;

fn stored(row: i64, peer: &str, outgoing: bool, at_ms: i64, text: &str) -> Stored {
    Stored {
        row,
        conversation: Conversation::Peer(name(peer)),
        from: if outgoing { "alice" } else { peer }.into(),
        outgoing,
        id: row as u64,
        at_ms,
        text: text.into(),
        route: Some("direct".into()),
        state: if outgoing {
            Delivery::Delivered
        } else {
            Delivery::Received
        },
    }
}

fn index_of(rows: &[String], needle: &str) -> usize {
    rows.iter()
        .position(|r| r.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} not on screen:\n{}", rows.join("\n")))
}

#[test]
fn a_conversation_opens_with_its_history_timed_with_a_line_for_each_day() {
    let t0 = Instant::now();
    let mut screen = alice_with(vec![], t0);
    screen.set_contacts(vec![name("bob")]);
    // bob has only a history: listed offline, selected, and his history wanted once.
    assert_eq!(screen.selected, Some(name("bob")));
    assert_eq!(screen.wants_history(), Some(name("bob")));
    let history = vec![
        stored(1, "bob", false, MONDAY - MINUTE, "late on sunday"),
        stored(2, "bob", true, MONDAY + 8 * 60 * MINUTE, "good morning"),
    ];
    screen.load_history(&name("bob"), Ok(history));
    assert_eq!(screen.wants_history(), None);
    screen.set_wall_clock(MONDAY + 9 * 60 * MINUTE + 15 * MINUTE);
    event(&mut screen, t0, message("bob", 3, "and now"));

    let rows = draw(&screen, 100, 20);
    assert!(users_column(row_with(&rows, "○ bob")).contains("offline"));
    let sunday = index_of(&rows, "Sunday 6 December 2026");
    let late = index_of(&rows, "23:59 bob: late on sunday");
    let monday = index_of(&rows, "Monday 7 December 2026");
    let morning = index_of(&rows, "08:00 alice: good morning ✓ direct");
    let now = index_of(&rows, "09:15 bob: and now");
    assert!(sunday < late && late < monday && monday < morning && morning < now);
    // One line per day, not one per message.
    assert_eq!(
        rows.iter().filter(|r| r.contains("December 2026")).count(),
        2
    );
}

#[test]
fn unread_messages_are_counted_marked_rung_and_read_when_opened() {
    let t0 = Instant::now();
    let mut screen = alice_with(
        vec![peer("bob", Route::Direct), peer("carol", Route::Relay)],
        t0,
    );
    screen.set_wall_clock(MONDAY);
    assert!(!screen.take_alert());
    event(&mut screen, t0, message("bob", 1, "bob is on screen"));
    assert!(
        !screen.take_alert(),
        "no bell for the conversation on screen"
    );
    event(&mut screen, t0, message("carol", 1, "psst"));
    event(&mut screen, t0, message("carol", 2, "are you there?"));
    assert!(screen.take_alert());
    assert!(!screen.take_alert(), "one bell per news");
    assert_eq!(screen.title(), "breeze · alice · 2 unread");
    let rows = draw(&screen, 100, 20);
    assert!(users_column(row_with(&rows, "● carol")).contains("carol (2)"));
    assert!(!users_column(row_with(&rows, "● bob")).contains('('));

    // Opening carol's conversation reads them; the marker shows where they start.
    assert_eq!(key(&mut screen, KeyCode::Tab), Intent::Nothing);
    let rows = draw(&screen, 100, 20);
    assert!(!users_column(row_with(&rows, "● carol")).contains("(2)"));
    let marker = index_of(&rows, "unread");
    assert!(marker < index_of(&rows, "carol: psst"));
    assert_eq!(screen.title(), "breeze · alice");
    // Leaving and coming back: the marker has served.
    key(&mut screen, KeyCode::Tab);
    key(&mut screen, KeyCode::Tab);
    let rows = draw(&screen, 100, 20);
    assert!(!rows
        .iter()
        .any(|r| conversation_column(r).contains("unread")));
    assert!(shows(&rows, "carol: psst"));
}

#[test]
fn page_up_page_down_home_and_end_scroll_the_conversation() {
    let t0 = Instant::now();
    let mut screen = alice_with(vec![peer("bob", Route::Direct)], t0);
    let history: Vec<Stored> = (0..60)
        .map(|i| {
            stored(
                i + 1,
                "bob",
                false,
                MONDAY + i * MINUTE,
                &format!("m{i:02}"),
            )
        })
        .collect();
    screen.load_history(&name("bob"), Ok(history));
    let rows = draw(&screen, 100, 20);
    assert!(shows(&rows, "bob: m59") && !shows(&rows, "bob: m00"));

    key(&mut screen, KeyCode::PageUp);
    let rows = draw(&screen, 100, 20);
    assert!(!shows(&rows, "bob: m59"), "a page up:\n{}", rows.join("\n"));
    assert!(shows(&rows, "End for the newest"));
    key(&mut screen, KeyCode::Home);
    let rows = draw(&screen, 100, 20);
    assert!(shows(&rows, "Monday 7 December 2026") && shows(&rows, "bob: m00"));
    key(&mut screen, KeyCode::PageDown);
    let rows = draw(&screen, 100, 20);
    assert!(!shows(&rows, "bob: m00") && !shows(&rows, "bob: m59"));
    key(&mut screen, KeyCode::End);
    let rows = draw(&screen, 100, 20);
    assert!(shows(&rows, "bob: m59") && !shows(&rows, "End for the newest"));
    // A message arriving at the bottom is in view.
    event(&mut screen, t0, message("bob", 99, "the newest"));
    assert!(shows(&draw(&screen, 100, 20), "bob: the newest"));
}

#[test]
fn search_results_are_listed_and_enter_opens_the_conversation_at_the_message() {
    let t0 = Instant::now();
    let mut screen = alice_with(vec![peer("bob", Route::Direct)], t0);
    screen.load_history(&name("bob"), Ok(vec![]));
    type_text(&mut screen, "/search lunch");
    assert_eq!(
        key(&mut screen, KeyCode::Enter),
        Intent::Search("lunch".into())
    );
    let found = vec![
        stored(40, "bob", true, MONDAY + 12 * 60 * MINUTE, "lunch is good"),
        stored(
            7,
            "carol",
            false,
            MONDAY - 24 * 60 * MINUTE,
            "lunch tomorrow?",
        ),
    ];
    let answer = Answer::Found {
        query: "lunch".into(),
        result: Ok(found),
    };
    screen.handle_answer(answer, t0);
    let rows = draw(&screen, 100, 20);
    assert!(shows(&rows, "search “lunch” · 2 found"));
    let first = index_of(&rows, "2026-12-07 12:00 [bob] alice: lunch is good");
    let second = index_of(&rows, "2026-12-06 00:00 [carol] carol: lunch tomorrow?");
    assert!(first < second, "newest first");

    // ↓ picks carol's; Enter opens her conversation there (its history is read from row 7).
    key(&mut screen, KeyCode::Down);
    assert_eq!(
        key(&mut screen, KeyCode::Enter),
        Intent::Jump(name("carol"), 7)
    );
    let page: Vec<Stored> = (7..40)
        .map(|row| {
            let text = if row == 7 {
                "lunch tomorrow?".to_string()
            } else {
                format!("c{row}")
            };
            stored(
                row,
                "carol",
                false,
                MONDAY - 24 * 60 * MINUTE + row * MINUTE,
                &text,
            )
        })
        .collect();
    let jumped = Answer::Jumped {
        peer: name("carol"),
        row: 7,
        result: Ok(page),
    };
    screen.handle_answer(jumped, t0);
    assert_eq!(screen.selected, Some(name("carol")));
    let rows = draw(&screen, 100, 20);
    // The found message is the first line of the conversation, with its day above.
    assert!(
        conversation_column(&rows[1]).contains("carol: lunch tomorrow?"),
        "{}",
        rows.join("\n")
    );
    assert!(!shows(&rows, "carol: c39"));
    // End: back to the newest, the history read again up to it.
    key(&mut screen, KeyCode::End);
    assert_eq!(screen.wants_history(), Some(name("carol")));
    // Esc with no results open quits, as before.
    assert_eq!(key(&mut screen, KeyCode::Esc), Intent::Quit);
}

#[test]
fn esc_closes_the_search_results_before_it_quits() {
    let t0 = Instant::now();
    let mut screen = alice_with(vec![peer("bob", Route::Direct)], t0);
    let answer = Answer::Found {
        query: "nothing".into(),
        result: Ok(vec![]),
    };
    screen.handle_answer(answer, t0);
    assert!(shows(&draw(&screen, 100, 20), "0 found"));
    assert_eq!(key(&mut screen, KeyCode::Esc), Intent::Nothing);
    assert!(!shows(&draw(&screen, 100, 20), "0 found"));
    assert_eq!(key(&mut screen, KeyCode::Esc), Intent::Quit);
}
