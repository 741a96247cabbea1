//! The chat screen without a terminal: scenarios feed [`Screen`] the client's events, its peer
//! table and key presses on a made-up clock, check the intents it returns, and read what it
//! draws into ratatui's `TestBackend`, row by row.

use super::*;
use breeze_core::client::{Opening, Route, RouteReason};
use breeze_core::wire::FileName;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::layout::Position;
use ratatui::text::Span;
use ratatui::Terminal;
use std::time::Duration;

const DOWNLOADS: &str = "/home/alice/Downloads";

pub(super) fn name(name: &str) -> UserName {
    UserName::new(name).unwrap()
}

pub(super) fn peer(user: &str, route: Route) -> PeerStatus {
    PeerStatus {
        user: name(user),
        online: true,
        route,
    }
}

pub(super) fn offline(user: &str) -> PeerStatus {
    PeerStatus {
        user: name(user),
        online: false,
        route: Route::Relay,
    }
}

/// Alice's screen, logged in, with `peers` listed (the first one selected).
pub(super) fn alice_with(peers: Vec<PeerStatus>, t0: Instant) -> Screen {
    let mut screen = Screen::new(name("alice"), PathBuf::from(DOWNLOADS), t0);
    screen.zone = Zone::utc();
    event(
        &mut screen,
        t0,
        Event::LoggedIn {
            user: name("alice"),
        },
    );
    screen.handle_peers(peers);
    screen
}

pub(super) fn event(screen: &mut Screen, now: Instant, event: Event) {
    screen.handle_event(event, now, |_, _| None);
}

pub(super) fn key(screen: &mut Screen, code: KeyCode) -> Intent {
    screen.handle_key(KeyEvent::new(code, KeyModifiers::NONE))
}

pub(super) fn ctrl(screen: &mut Screen, c: char) -> Intent {
    screen.handle_key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL))
}

pub(super) fn type_text(screen: &mut Screen, text: &str) {
    for c in text.chars() {
        assert_eq!(key(screen, KeyCode::Char(c)), Intent::Nothing);
    }
}

fn draw_terminal(screen: &Screen, width: u16, height: u16) -> Terminal<TestBackend> {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|frame| screen.render(frame)).unwrap();
    terminal
}

/// The screen's rows as text, a wide character once (not followed by its blank second cell).
pub(super) fn draw(screen: &Screen, width: u16, height: u16) -> Vec<String> {
    rows(draw_terminal(screen, width, height).backend().buffer())
}

pub(super) fn rows(buffer: &Buffer) -> Vec<String> {
    let area = buffer.area;
    (area.top()..area.bottom())
        .map(|y| {
            let mut row = String::new();
            let mut hidden = 0;
            for x in area.left()..area.right() {
                if hidden > 0 {
                    hidden -= 1;
                    continue;
                }
                let symbol = buffer[(x, y)].symbol();
                hidden = Span::raw(symbol).width().saturating_sub(1);
                row.push_str(symbol);
            }
            row
        })
        .collect()
}

/// The one row containing `needle`; fails with the whole screen otherwise.
pub(super) fn row_with<'a>(screen: &'a [String], needle: &str) -> &'a str {
    let found: Vec<&String> = screen.iter().filter(|r| r.contains(needle)).collect();
    match found.as_slice() {
        [row] => row,
        _ => panic!(
            "{} rows contain {needle:?}:\n{}",
            found.len(),
            screen.join("\n")
        ),
    }
}

pub(super) fn shows(screen: &[String], needle: &str) -> bool {
    screen.iter().any(|r| r.contains(needle))
}

/// The users list is the left 30 columns; the conversation is right of it.
pub(super) fn users_column(row: &str) -> String {
    row.chars().take(30).collect()
}

pub(super) fn conversation_column(row: &str) -> String {
    row.chars().skip(30).collect()
}

fn offer(from: &str, id: u64, file: &str, size: u64) -> Event {
    Event::File(FileEvent::Offered {
        from: name(from),
        id: TransferId(id),
        name: FileName::new(file).unwrap(),
        size,
        hash: [7; 32],
    })
}

fn progress(from: &str, id: u64, bytes: u64, size: u64, route: Via) -> Event {
    Event::File(FileEvent::Progress {
        peer: name(from),
        id: TransferId(id),
        direction: Direction::Receiving,
        bytes,
        size,
        route,
    })
}

const MIB: u64 = 1024 * 1024;

#[test]
fn the_users_list_shows_each_peer_with_its_route_and_follows_route_events() {
    let t0 = Instant::now();
    let mut screen = alice_with(
        vec![
            peer("bob", Route::Direct),
            peer("carol", Route::Relay),
            offline("dave"),
        ],
        t0,
    );
    let rows = draw(&screen, 100, 20);
    assert!(row_with(&rows, "alice · online").starts_with("┌ alice · online "));
    let bob = users_column(row_with(&rows, "bob  "));
    assert!(bob.contains("● bob") && bob.contains("direct"), "{bob}");
    let carol = users_column(row_with(&rows, "carol"));
    assert!(
        carol.contains("● carol") && carol.contains("relay"),
        "{carol}"
    );
    let dave = users_column(row_with(&rows, "dave"));
    assert!(
        dave.contains("○ dave") && dave.contains("offline"),
        "{dave}"
    );
    // Bob, listed first, is selected: the conversation is with him, over his route.
    assert!(shows(&rows, "┐┌ bob · direct "), "{}", rows.join("\n"));

    let channel_up = Event::Route {
        peer: name("carol"),
        route: Route::Direct,
        reason: RouteReason::ChannelUp(Opening::WithinCap),
    };
    event(&mut screen, t0, channel_up);
    let rows = draw(&screen, 100, 20);
    let carol = users_column(row_with(&rows, "● carol"));
    assert!(
        carol.contains("direct") && !carol.contains("relay"),
        "{carol}"
    );

    let gone = Event::Presence {
        user: name("bob"),
        online: false,
    };
    event(&mut screen, t0, gone);
    let rows = draw(&screen, 100, 20);
    let bob = users_column(row_with(&rows, "○ bob"));
    assert!(bob.contains("offline"), "{bob}");
}

#[test]
fn a_new_peer_table_replaces_the_list_and_keeps_the_selection_by_name() {
    let t0 = Instant::now();
    let mut screen = alice_with(
        vec![peer("bob", Route::Direct), peer("carol", Route::Relay)],
        t0,
    );
    assert_eq!(key(&mut screen, KeyCode::Down), Intent::Nothing);
    assert_eq!(screen.selected, Some(name("carol")));
    // Someone new sorts first: carol stays selected.
    screen.handle_peers(vec![
        peer("anna", Route::Connecting),
        peer("bob", Route::Direct),
        peer("carol", Route::Direct),
    ]);
    let rows = draw(&screen, 100, 20);
    assert!(shows(&rows, "┌ carol · direct "), "{}", rows.join("\n"));
    assert!(shows(&rows, " Message to carol "));
    // Tab and Shift-Tab go round.
    key(&mut screen, KeyCode::Tab);
    assert_eq!(screen.selected, Some(name("anna")));
    key(&mut screen, KeyCode::BackTab);
    key(&mut screen, KeyCode::Up);
    assert_eq!(screen.selected, Some(name("bob")));
    // Carol leaves the table: the selection falls back to the first user.
    screen.handle_peers(vec![peer("anna", Route::Relay)]);
    assert_eq!(screen.selected, Some(name("anna")));
}

#[test]
fn enter_sends_to_the_selected_peer_and_the_tick_follows_the_delivery() {
    let t0 = Instant::now();
    let mut screen = alice_with(
        vec![peer("bob", Route::Direct), peer("carol", Route::Relay)],
        t0,
    );
    key(&mut screen, KeyCode::Down);
    type_text(&mut screen, "hello carol");
    let rows = draw(&screen, 100, 20);
    assert!(shows(&rows, "│hello carol"), "{}", rows.join("\n"));

    let intent = key(&mut screen, KeyCode::Enter);
    assert_eq!(intent, Intent::Send(name("carol"), "hello carol".into()));
    let sent = Answer::Sent {
        to: name("carol"),
        text: "hello carol".into(),
        result: Ok(MessageId(7)),
    };
    screen.handle_answer(sent, t0);
    let rows = draw(&screen, 100, 20);
    let line = conversation_column(row_with(&rows, "alice: hello carol"));
    assert!(line.contains("alice: hello carol …"), "pending: {line}");
    assert!(!shows(&rows, "│hello carol"), "the input line is cleared");

    let delivered = Event::Delivered {
        to: name("carol"),
        id: MessageId(7),
        route: Via::Relay,
    };
    event(&mut screen, t0, delivered);
    let rows = draw(&screen, 100, 20);
    let line = conversation_column(row_with(&rows, "alice: hello carol"));
    assert!(
        line.contains("alice: hello carol ✓ relay"),
        "delivered: {line}"
    );
    assert!(!line.contains('…'), "{line}");

    // Bob's conversation is another one.
    key(&mut screen, KeyCode::Up);
    let rows = draw(&screen, 100, 20);
    assert!(!shows(&rows, "hello carol"), "{}", rows.join("\n"));
}

#[test]
fn a_message_ends_stored_or_undeliverable_and_a_refused_send_says_why() {
    let t0 = Instant::now();
    let mut screen = alice_with(vec![offline("bob")], t0);
    for (id, text) in [(1, "first"), (2, "second")] {
        type_text(&mut screen, text);
        assert_eq!(
            key(&mut screen, KeyCode::Enter),
            Intent::Send(name("bob"), text.into())
        );
        let sent = Answer::Sent {
            to: name("bob"),
            text: text.into(),
            result: Ok(MessageId(id)),
        };
        screen.handle_answer(sent, t0);
    }
    let stored = Event::Stored {
        to: name("bob"),
        id: MessageId(1),
    };
    event(&mut screen, t0, stored);
    let undeliverable = Event::Undeliverable {
        to: name("bob"),
        id: MessageId(2),
        reason: breeze_core::wire::Undeliverable::RecipientFull,
    };
    event(&mut screen, t0, undeliverable);
    type_text(&mut screen, "third");
    key(&mut screen, KeyCode::Enter);
    let refused = Answer::Sent {
        to: name("bob"),
        text: "third".into(),
        result: Err("the client has stopped".into()),
    };
    screen.handle_answer(refused, t0);

    let rows = draw(&screen, 120, 20);
    assert!(shows(&rows, "alice: first ✓ stored (offline)"));
    assert!(shows(
        &rows,
        "alice: second ✗ not delivered: the recipient has too many messages waiting"
    ));
    assert!(shows(&rows, "— not sent: the client has stopped"));
    // A blank line is not sent; `//` sends a message starting with `/`.
    type_text(&mut screen, "   ");
    assert_eq!(key(&mut screen, KeyCode::Enter), Intent::Nothing);
    screen.input.clear();
    type_text(&mut screen, "//shrug");
    assert_eq!(
        key(&mut screen, KeyCode::Enter),
        Intent::Send(name("bob"), "/shrug".into())
    );
}

#[test]
fn a_route_change_leaves_a_notice_in_the_conversation() {
    let t0 = Instant::now();
    let mut screen = alice_with(vec![peer("bob", Route::Direct)], t0);
    let message = Event::Message {
        from: name("bob"),
        id: MessageId(1),
        text: "hi alice".into(),
        route: Via::Direct,
    };
    event(&mut screen, t0, message);
    let lost = Event::Route {
        peer: name("bob"),
        route: Route::Relay,
        reason: RouteReason::ChannelLost(breeze_core::client::LinkError::Idle),
    };
    event(&mut screen, t0, lost);
    let rows = draw(&screen, 120, 20);
    assert!(shows(&rows, "┌ bob · relay "), "{}", rows.join("\n"));
    let lines: Vec<String> = rows
        .iter()
        .map(|r| {
            conversation_column(r)
                .trim_end_matches([' ', '│'])
                .to_string()
        })
        .filter(|r| r.len() > 1)
        .collect();
    let first = lines
        .iter()
        .position(|l| l.contains("bob: hi alice  (direct)"));
    let notice = lines
        .iter()
        .position(|l| l.contains("— route: relay (direct channel lost: no heartbeat)"));
    assert!(
        first.is_some() && notice == first.map(|i| i + 1),
        "{}",
        rows.join("\n")
    );
}

#[test]
fn an_incoming_offer_is_accepted_with_ctrl_a_and_its_progress_drawn() {
    let t0 = Instant::now();
    let mut screen = alice_with(vec![peer("bob", Route::Direct)], t0);
    let id = 0xab12_0000_0000_0001;
    event(&mut screen, t0, offer("bob", id, "report.pdf", 4 * MIB));
    let rows = draw(&screen, 140, 24);
    assert!(shows(&rows, "┌ Files "), "{}", rows.join("\n"));
    let line = row_with(&rows, "↓ report.pdf");
    assert!(
        line.contains(&format!(
            "↓ report.pdf 4.0 MiB from bob offered · Ctrl-A accept · Ctrl-D decline · id {}",
            TransferId(id)
        )),
        "{line}"
    );
    assert!(shows(
        &rows,
        "— bob offers report.pdf (4.0 MiB): Ctrl-A accepts"
    ));

    let intent = ctrl(&mut screen, 'a');
    assert_eq!(
        intent,
        Intent::Accept(name("bob"), TransferId(id), PathBuf::from(DOWNLOADS))
    );
    let accepted = Answer::Accepted {
        from: name("bob"),
        id: TransferId(id),
        dir: PathBuf::from(DOWNLOADS),
        result: Ok(0),
    };
    screen.handle_answer(accepted, t0);
    let rows = draw(&screen, 140, 24);
    assert!(shows(
        &rows,
        &format!("— accepted {} into {DOWNLOADS}", TransferId(id))
    ));
    let line = row_with(&rows, "↓ report.pdf");
    assert!(
        line.contains("[░░░░░░░░░░░░░░░░░░░░]   0% · … · ETA …"),
        "{line}"
    );

    let second = Duration::from_secs(1);
    event(
        &mut screen,
        t0 + second,
        progress("bob", id, MIB, 4 * MIB, Via::Direct),
    );
    let halfway = t0 + 2 * second;
    event(
        &mut screen,
        halfway,
        progress("bob", id, 2 * MIB, 4 * MIB, Via::Relay),
    );
    let rows = draw(&screen, 140, 24);
    let line = row_with(&rows, "↓ report.pdf");
    assert!(
        line.contains("[██████████░░░░░░░░░░]  50% · 1.0 MiB/s · ETA 0:02 · relay"),
        "{line}"
    );
    // Time passes without progress: the rate sinks as the screen ticks.
    screen.tick(halfway + 2 * second);
    let line = row_with(&draw(&screen, 140, 24), "↓ report.pdf").to_string();
    assert!(line.contains("512.0 KiB/s · ETA 0:04"), "{line}");

    let done = Event::File(FileEvent::Done {
        peer: name("bob"),
        id: TransferId(id),
        direction: Direction::Receiving,
        verified: true,
    });
    let landed = PathBuf::from(DOWNLOADS).join("report.pdf");
    screen.handle_event(done, halfway + 3 * second, |from, landed_id| {
        assert_eq!((from, landed_id), (&name("bob"), TransferId(id)));
        Some(Landed::Complete(landed.clone()))
    });
    let rows = draw(&screen, 140, 24);
    assert!(
        !shows(&rows, " Files "),
        "the pane goes with the last transfer"
    );
    assert!(shows(
        &rows,
        "— ✓ received report.pdf: /home/alice/Downloads/report.pdf"
    ));
}

#[test]
fn ctrl_d_declines_and_typed_commands_name_offers_and_files() {
    let t0 = Instant::now();
    let mut screen = alice_with(
        vec![peer("bob", Route::Direct), peer("carol", Route::Relay)],
        t0,
    );
    event(
        &mut screen,
        t0,
        offer("bob", 0xa100_0000_0000_0000, "one.txt", 10),
    );
    event(
        &mut screen,
        t0,
        offer("bob", 0xb200_0000_0000_0000, "two.txt", 20),
    );

    // Without an id, the newest offer from the selected user is answered.
    assert_eq!(
        ctrl(&mut screen, 'd'),
        Intent::Decline(name("bob"), TransferId(0xb200_0000_0000_0000))
    );
    let declined = Answer::Declined {
        from: name("bob"),
        id: TransferId(0xb200_0000_0000_0000),
        result: Ok(()),
    };
    screen.handle_answer(declined, t0);
    let rows = draw(&screen, 140, 24);
    assert!(shows(&rows, "↓ one.txt"));
    assert!(!shows(&rows, "↓ two.txt"), "declined: gone from the pane");

    type_text(&mut screen, "/accept a1 /tmp/in box");
    assert_eq!(
        key(&mut screen, KeyCode::Enter),
        Intent::Accept(
            name("bob"),
            TransferId(0xa100_0000_0000_0000),
            PathBuf::from("/tmp/in box")
        )
    );
    assert!(screen.input.is_empty());

    // Carol offered nothing: Ctrl-A there explains, in her conversation.
    key(&mut screen, KeyCode::Down);
    assert_eq!(ctrl(&mut screen, 'a'), Intent::Nothing);
    let rows = draw(&screen, 140, 24);
    assert!(shows(
        &rows,
        "— nothing to answer: no such offer or transfer"
    ));

    type_text(&mut screen, "/file /tmp/holiday photos.tar");
    assert_eq!(
        key(&mut screen, KeyCode::Enter),
        Intent::Offer(name("carol"), "/tmp/holiday photos.tar".into())
    );
    let rows = draw(&screen, 140, 24);
    assert!(shows(&rows, "— hashing /tmp/holiday photos.tar…"));
    let failed = Answer::Offered {
        to: name("carol"),
        path: "/tmp/holiday photos.tar".into(),
        result: Err("No such file or directory".into()),
    };
    screen.handle_answer(failed, t0);
    let rows = draw(&screen, 140, 24);
    assert!(shows(
        &rows,
        "— cannot offer /tmp/holiday photos.tar: No such file or directory"
    ));

    type_text(&mut screen, "/dance");
    assert_eq!(key(&mut screen, KeyCode::Enter), Intent::Nothing);
    let rows = draw(&screen, 180, 24);
    assert!(shows(&rows, &format!("— {}", slash_commands::USAGE)));
}

#[test]
fn esc_and_ctrl_c_quit_and_a_refused_login_is_kept_as_the_reason() {
    let t0 = Instant::now();
    let mut screen = Screen::new(name("alice"), PathBuf::from(DOWNLOADS), t0);
    let rows = draw(&screen, 100, 12);
    assert!(shows(&rows, "┌ alice · connecting… "));
    assert!(shows(&rows, "No one else is known yet."));
    let refused = Event::LoginFailed {
        reason: breeze_core::wire::LoginRefusal::BadCredentials,
    };
    event(&mut screen, t0, refused);
    let rows = draw(&screen, 100, 12);
    assert!(shows(&rows, "login refused: "), "{}", rows.join("\n"));
    assert!(screen
        .fatal
        .as_deref()
        .unwrap()
        .starts_with("login refused: "));
    assert_eq!(key(&mut screen, KeyCode::Esc), Intent::Quit);
    assert_eq!(ctrl(&mut screen, 'c'), Intent::Quit);
}

#[test]
fn the_key_help_is_on_the_bottom_line() {
    let screen = alice_with(vec![peer("bob", Route::Direct)], Instant::now());
    let rows = draw(&screen, 180, 16);
    let help = rows.last().unwrap();
    for keys in [
        "Tab/↓ next user",
        "Shift-Tab/↑ previous",
        "Enter send",
        "PgUp/PgDn/Home/End scroll",
        "Ctrl-A/Ctrl-D accept/decline a file",
        "/file PATH",
        "/search TEXT",
        "Esc/Ctrl-C quit",
    ] {
        assert!(help.contains(keys), "{keys:?} missing from {help:?}");
    }
    // An 80-column terminal still shows how to move and send.
    let rows = draw(&screen, 80, 16);
    assert!(rows
        .last()
        .unwrap()
        .starts_with(" Tab/↓ next user · Shift-Tab/↑ previous · Enter send"));
}

/// A screen with something in every pane, to squeeze.
fn busy_screen() -> Screen {
    let t0 = Instant::now();
    let mut screen = alice_with(vec![peer("bob", Route::Direct), offline("carol")], t0);
    for i in 0..30 {
        let message = Event::Message {
            from: name("bob"),
            id: MessageId(i),
            text: format!("message {i} with some words to wrap around 你好 🎉"),
            route: Via::Direct,
        };
        event(&mut screen, t0, message);
    }
    for i in 0..7 {
        event(
            &mut screen,
            t0,
            offer("bob", i, "a file with a long name.bin", 1 << 30),
        );
    }
    type_text(&mut screen, "a half-typed reply 半");
    screen
}

#[test]
fn tiny_terminals_do_not_panic() {
    let empty = Screen::new(name("alice"), PathBuf::from(DOWNLOADS), Instant::now());
    let busy = busy_screen();
    for screen in [&empty, &busy] {
        for (width, height) in [
            (1, 1),
            (2, 2),
            (20, 5),
            (5, 20),
            (40, 3),
            (31, 4),
            (0, 0),
            (29, 10),
        ] {
            draw(screen, width, height);
        }
    }
}

#[test]
fn the_newest_messages_stay_in_view_and_the_files_pane_counts_the_rest() {
    let rows = draw(&busy_screen(), 100, 30);
    // Seven offers: five lines and a count.
    assert!(shows(&rows, "… and 2 more"), "{}", rows.join("\n"));
    assert_eq!(
        rows.iter().filter(|r| r.contains("↓ a file with")).count(),
        5
    );
    // The conversation is scrolled to its end.
    assert!(shows(&rows, "bob: message 29 with"), "{}", rows.join("\n"));
    assert!(!shows(&rows, "bob: message 0 with"));
}

#[test]
fn long_messages_wrap_inside_the_conversation() {
    let t0 = Instant::now();
    let mut screen = alice_with(vec![peer("bob", Route::Direct)], t0);
    let words: Vec<String> = (0..40).map(|i| format!("word{i:02}")).collect();
    let long = words.join(" ");
    let message = Event::Message {
        from: name("bob"),
        id: MessageId(1),
        text: long,
        route: Via::Direct,
    };
    event(&mut screen, t0, message);
    let rows = draw(&screen, 80, 20);
    // 40 words of 7 columns in a 48-column conversation: several lines, every word whole.
    let text: Vec<String> = rows.iter().map(|r| conversation_column(r)).collect();
    for word in &words {
        assert_eq!(
            text.iter().filter(|r| r.contains(word.as_str())).count(),
            1,
            "{word}:\n{}",
            rows.join("\n")
        );
    }
    assert!(row_with(&text, "word00").starts_with("│00:00 bob: word00 word01"));
    // The route tag wraps like a word: whole on one row, after the last word.
    let tagged = row_with(&text, "(direct)");
    assert!(
        tagged.ends_with("(direct)") || tagged.contains("(direct) "),
        "{tagged}"
    );
    // Nothing spills over the right border (rows 1 to 14 are inside the conversation box).
    for row in &rows[1..15] {
        assert!(row.chars().count() == 80 && row.ends_with('│'), "{row}");
    }
}

#[test]
fn chinese_and_emoji_are_drawn_whole_and_wrapped() {
    let t0 = Instant::now();
    let mut screen = alice_with(vec![peer("bob", Route::Direct)], t0);
    let message = Event::Message {
        from: name("bob"),
        id: MessageId(1),
        text: "你好，世界 🌍🎉".into(),
        route: Via::Relay,
    };
    event(&mut screen, t0, message);
    let long = "长".repeat(100);
    let message = Event::Message {
        from: name("bob"),
        id: MessageId(2),
        text: long.clone(),
        route: Via::Relay,
    };
    event(&mut screen, t0, message);
    event(&mut screen, t0, offer("bob", 9, "照片📷.jpg", 3 * MIB));
    let rows = draw(&screen, 80, 24);
    assert!(
        shows(&rows, "bob: 你好，世界 🌍🎉  (relay)"),
        "{}",
        rows.join("\n")
    );
    assert!(shows(&rows, "↓ 照片📷.jpg 3.0 MiB from bob offered"));
    // 100 wide characters wrap over several rows of the 48-column conversation, none lost.
    let wide: usize = rows
        .iter()
        .map(|r| conversation_column(r).matches('长').count())
        .sum();
    assert_eq!(wide, 100, "{}", rows.join("\n"));
}

#[test]
fn a_long_name_is_cut_in_the_users_list_and_its_route_stays_visible() {
    let t0 = Instant::now();
    let longest = "a-very-long-user-name-of-32-char";
    assert_eq!(longest.len(), 32, "the longest name a user can have");
    let screen = alice_with(
        vec![
            peer(longest, Route::Connecting),
            peer("bob", Route::Connecting),
        ],
        t0,
    );
    let rows = draw(&screen, 100, 20);
    let long = users_column(row_with(&rows, "● a-very-long"));
    assert_eq!(long, "│● a-very-long-us… connecting│");
    let bob = users_column(row_with(&rows, "● bob"));
    assert_eq!(bob, "│● bob             connecting│");
    // The conversation's title has room for the whole name.
    assert!(shows(&rows, &format!("┌ {longest} · connecting ")));
}

#[test]
fn wide_characters_on_the_input_line_show_its_end_with_the_cursor_after_it() {
    let t0 = Instant::now();
    let mut screen = alice_with(vec![peer("bob", Route::Direct)], t0);
    type_text(&mut screen, "你好🎉");
    let mut terminal = draw_terminal(&screen, 40, 10);
    let screen_rows = rows(terminal.backend().buffer());
    assert!(
        shows(&screen_rows, "│你好🎉 "),
        "{}",
        screen_rows.join("\n")
    );
    // Three characters, six columns, after the border.
    let cursor = terminal.get_cursor_position().unwrap();
    assert_eq!(cursor, Position::new(7, 7));

    // 81 columns typed into a box 38 wide: the last 18 characters and the `!` (37 columns)
    // show, with the 38th left for the cursor.
    let long: String = "天地玄黄宇宙洪荒".chars().cycle().take(40).collect();
    screen.input.clear();
    type_text(&mut screen, &long);
    type_text(&mut screen, "!");
    let mut terminal = draw_terminal(&screen, 40, 10);
    let screen_rows = rows(terminal.backend().buffer());
    let input = row_with(&screen_rows, "!");
    let tail: String = long.chars().skip(40 - 18).collect();
    assert_eq!(input, format!("│{tail}! │"), "{}", screen_rows.join("\n"));
    let cursor = terminal.get_cursor_position().unwrap();
    assert_eq!(cursor, Position::new(38, 7));
}

#[test]
fn control_characters_from_a_peer_never_reach_the_terminal() {
    let t0 = Instant::now();
    let mut screen = alice_with(vec![peer("bob", Route::Direct)], t0);
    // Clear the screen, set the window title, write the clipboard (OSC 52), ring the bell.
    let hostile = "hi\x1b[2J\x1b]0;pwned\x07\x1b]52;c;cm0gLXJmIH4=\x07\r\tbye\u{9b}31m\u{7f}";
    let message = Event::Message {
        from: name("bob"),
        id: MessageId(1),
        text: hostile.into(),
        route: Via::Direct,
    };
    event(&mut screen, t0, message);
    let terminal = draw_terminal(&screen, 100, 12);
    let buffer = terminal.backend().buffer();
    for cell in buffer.content() {
        assert!(
            !cell.symbol().contains(char::is_control),
            "{:?} would be written to the terminal",
            cell.symbol()
        );
    }
    // They are shown, harmlessly, as symbols.
    let rows = rows(buffer);
    let shown = "bob: hi␛[2J␛]0;pwned␇␛]52;c;cm0gLXJmIH4=␇␍␉bye\u{fffd}31m␡  (direct)";
    assert!(shows(&rows, shown), "{}", rows.join("\n"));
}

#[test]
fn a_long_file_name_is_cut_in_the_files_pane_so_the_answer_keys_show() {
    let t0 = Instant::now();
    let mut screen = alice_with(vec![peer("bob", Route::Direct)], t0);
    let long = format!("{}.iso", "x".repeat(240));
    event(&mut screen, t0, offer("bob", 1, &long, 700 * MIB));
    let chinese = format!("{}.md", "文件".repeat(40));
    event(&mut screen, t0, offer("bob", 2, &chinese, 12));
    let rows = draw(&screen, 120, 24);
    let line = row_with(&rows, "↓ xxx");
    let cut = format!(
        "↓ {}… 700.0 MiB from bob offered · Ctrl-A accept",
        "x".repeat(31)
    );
    assert!(line.contains(&cut), "{line}");
    let line = row_with(&rows, "↓ 文件");
    let cut = format!(
        "↓ {}… 12 B from bob offered · Ctrl-A accept",
        "文件".repeat(7) + "文"
    );
    assert!(line.contains(&cut), "{line}");
    // The conversation has the whole name, wrapped.
    let pane = rows.iter().position(|r| r.contains("┌ Files")).unwrap();
    let text: String = rows[..pane]
        .iter()
        .map(|r| conversation_column(r))
        .collect();
    assert_eq!(text.matches('x').count(), 240, "{}", rows.join("\n"));
}

#[test]
fn a_file_offered_from_here_waits_then_runs_and_is_cancelled_with_a_command() {
    let t0 = Instant::now();
    let mut screen = alice_with(vec![peer("bob", Route::Direct)], t0);
    type_text(&mut screen, "/file ~/movie.mkv");
    assert_eq!(
        key(&mut screen, KeyCode::Enter),
        Intent::Offer(name("bob"), "~/movie.mkv".into())
    );
    let id = TransferId(0xc0ff_ee00_0000_0000);
    let file = SharedFile {
        id,
        name: FileName::new("movie.mkv").unwrap(),
        size: 10 * MIB,
        hash: [1; 32],
        path: PathBuf::from("/home/alice/movie.mkv"),
    };
    let offered = Answer::Offered {
        to: name("bob"),
        path: "~/movie.mkv".into(),
        result: Ok(file),
    };
    screen.handle_answer(offered, t0);
    let rows = draw(&screen, 120, 24);
    assert!(shows(
        &rows,
        &format!("— offered movie.mkv (10.0 MiB) · id {id}")
    ));
    let line = row_with(&rows, "↑ movie.mkv");
    assert!(
        line.contains(&format!(
            "↑ movie.mkv 10.0 MiB to bob waiting for bob to accept · id {id}"
        )),
        "{line}"
    );

    let accepted = Event::File(FileEvent::Accepted {
        to: name("bob"),
        id,
        offset: 0,
    });
    event(&mut screen, t0, accepted);
    let sent = Event::File(FileEvent::Progress {
        peer: name("bob"),
        id,
        direction: Direction::Sending,
        bytes: 5 * MIB,
        size: 10 * MIB,
        route: Via::Direct,
    });
    event(&mut screen, t0 + Duration::from_secs(5), sent);
    let rows = draw(&screen, 120, 24);
    assert!(shows(&rows, "— bob accepted movie.mkv"));
    let line = row_with(&rows, "↑ movie.mkv");
    assert!(
        line.contains("to bob [██████████░░░░░░░░░░]  50% · 1.0 MiB/s · ETA 0:05 · direct"),
        "{line}"
    );

    type_text(&mut screen, "/cancel");
    assert_eq!(
        key(&mut screen, KeyCode::Enter),
        Intent::Cancel(name("bob"), id, Direction::Sending)
    );
    let cancelled = Answer::Cancelled {
        peer: name("bob"),
        id,
        direction: Direction::Sending,
        result: Ok(()),
    };
    screen.handle_answer(cancelled, t0 + Duration::from_secs(6));
    let rows = draw(&screen, 120, 24);
    assert!(shows(&rows, &format!("— cancelled {id}")));
    assert!(!shows(&rows, " Files "));
}

#[test]
fn a_peer_key_change_and_a_forged_relay_leave_warnings_and_verify_shows_the_fingerprint() {
    use breeze_core::secure::PublicKey;
    let t0 = Instant::now();
    let mut screen = alice_with(vec![peer("bob", Route::Direct)], t0);
    let new = PublicKey([7; 32]);
    let changed = Event::PeerKeyChanged {
        user: name("bob"),
        old: PublicKey([6; 32]),
        new,
    };
    event(&mut screen, t0, changed);
    event(&mut screen, t0, Event::ForgedRelay { from: name("bob") });
    // `/verify` asks for the selected user's fingerprint; the answer lands in the conversation.
    type_text(&mut screen, "/verify");
    assert_eq!(
        key(&mut screen, KeyCode::Enter),
        Intent::Verify(name("bob"))
    );
    let answer = Answer::Verified {
        peer: name("bob"),
        result: Ok("37a2:70b2:7bf8:835d:b43d:63e9:d8de:2662".into()),
    };
    screen.handle_answer(answer, t0);
    let rows = draw(&screen, 160, 24);
    let text = rows.join("\n");
    let fingerprint = new.fingerprint().to_string();
    assert!(shows(&rows, "⚠ bob's key changed"), "{text}");
    assert!(
        shows(&rows, &fingerprint[..9]),
        "the new key's fingerprint is shown: {text}"
    );
    assert!(shows(&rows, "failed authentication"), "{text}");
    assert!(
        shows(&rows, "fingerprint with bob: 37a2:70b2"),
        "the verify answer is shown: {text}"
    );
}

#[test]
fn a_changed_server_key_ends_the_session_with_what_to_do() {
    use breeze_core::secure::{IdentityKey, PublicKey};
    let t0 = Instant::now();
    let mut screen = alice_with(vec![], t0);
    let presented = IdentityKey::from_secret([3; 32]).public();
    let changed = Event::ServerKeyChanged {
        expected: PublicKey([1; 32]).fingerprint(),
        presented,
    };
    event(&mut screen, t0, changed);
    let fatal = screen.fatal.clone().expect("a changed server key is fatal");
    assert!(fatal.contains("--server-key"), "{fatal}");
    assert!(
        fatal.contains(&presented.fingerprint().to_string()),
        "{fatal}"
    );
    assert!(
        screen.status.contains("nothing was sent"),
        "{}",
        screen.status
    );
}

mod groups {
    use super::*;
    use breeze_core::client::GroupEvent;
    use breeze_core::wire::{GroupId, GroupInfo, GroupRequest};

    fn team(members: &[&str]) -> GroupInfo {
        GroupInfo {
            id: GroupId(3),
            name: "team".into(),
            owner: name("alice"),
            members: members.iter().map(|m| name(m)).collect(),
            version: 1,
        }
    }

    fn group_event(screen: &mut Screen, t: Instant, e: GroupEvent) {
        event(screen, t, Event::Group(e));
    }

    fn said(screen: &mut Screen, t: Instant, from: &str, id: u64, order: u64, text: &str) {
        let message = GroupEvent::Message {
            group: GroupId(3),
            name: "team".into(),
            from: name(from),
            id: MessageId(id),
            order,
            text: text.into(),
        };
        group_event(screen, t, message);
    }

    #[test]
    fn a_group_is_listed_under_the_users_and_its_conversation_shows_who_said_what() {
        let t0 = Instant::now();
        let mut screen = alice_with(
            vec![peer("bob", Route::Direct), peer("carol", Route::Relay)],
            t0,
        );
        type_text(&mut screen, "/group create team bob carol");
        let create = key(&mut screen, KeyCode::Enter);
        assert_eq!(
            create,
            Intent::Group(GroupRequest::Create {
                name: "team".into(),
                members: vec![name("bob"), name("carol")]
            })
        );
        let changed = GroupEvent::Changed {
            info: team(&["alice", "bob", "carol"]),
            by: Some(name("alice")),
        };
        group_event(&mut screen, t0, changed);
        said(&mut screen, t0, "bob", 1, 1, "hello team");
        let rows = draw(&screen, 100, 20);
        assert!(
            users_column(row_with(&rows, "members")).contains("team (1)"),
            "unread shown"
        );
        // Tab past the two users lands on the group.
        key(&mut screen, KeyCode::Tab);
        key(&mut screen, KeyCode::Tab);
        type_text(&mut screen, "hi all");
        let sent = key(&mut screen, KeyCode::Enter);
        assert_eq!(sent, Intent::GroupSend(GroupId(3), "hi all".into()));
        // The own message shows once the server placed it, with how many have it.
        said(&mut screen, t0, "alice", 7, 2, "hi all");
        let delivered = GroupEvent::Delivered {
            group: GroupId(3),
            id: MessageId(7),
            delivered: 1,
            members: 2,
        };
        group_event(&mut screen, t0, delivered);
        let rows = draw(&screen, 100, 20);
        assert!(shows(&rows, "# team · owner alice"), "{}", rows.join("\n"));
        assert!(shows(&rows, "bob: hello team"));
        assert!(row_with(&rows, "alice: hi all").contains("1/2"));
        assert!(shows(&rows, "Message to # team"));
        assert!(
            !users_column(row_with(&rows, "members")).contains("(1)"),
            "read now"
        );
        // Managing the group on screen.
        type_text(&mut screen, "/group remove carol");
        assert_eq!(
            key(&mut screen, KeyCode::Enter),
            Intent::Group(GroupRequest::Remove {
                group: GroupId(3),
                users: vec![name("carol")]
            })
        );
        let gone = GroupEvent::Gone {
            group: GroupId(3),
            name: "team".into(),
            by: Some(name("bob")),
        };
        group_event(&mut screen, t0, gone);
        let rows = draw(&screen, 100, 20);
        assert!(shows(&rows, "# team           left"), "listed as left");
        assert!(shows(&rows, "bob removed you from team"));
    }

    #[test]
    fn a_group_conversation_opens_with_its_history_and_sender_names() {
        use crate::history::{Conversation, State as Delivery, Stored};
        let t0 = Instant::now();
        let mut screen = alice_with(vec![peer("bob", Route::Direct)], t0);
        let changed = GroupEvent::Changed {
            info: team(&["alice", "bob"]),
            by: None,
        };
        group_event(&mut screen, t0, changed);
        assert_eq!(screen.wants_group_history(), None, "not on screen yet");
        key(&mut screen, KeyCode::Tab);
        assert_eq!(
            screen.wants_group_history(),
            Some((GroupId(3), "team".into()))
        );
        let stored = |row: i64, from: &str, text: &str| Stored {
            row,
            conversation: Conversation::Group("team".into()),
            from: from.into(),
            outgoing: from == "alice",
            id: row as u64,
            at_ms: 86_400_000 + row * 60_000,
            text: text.into(),
            route: None,
            state: if from == "alice" {
                Delivery::Delivered
            } else {
                Delivery::Received
            },
        };
        let history = vec![
            stored(1, "bob", "yesterday's plan"),
            stored(2, "alice", "agreed"),
        ];
        screen.load_group_history(GroupId(3), Ok(history));
        assert_eq!(screen.wants_group_history(), None, "read once");
        let rows = draw(&screen, 100, 20);
        assert!(shows(&rows, "Friday 2 January 1970"), "{}", rows.join("\n"));
        assert!(shows(&rows, "00:01 bob: yesterday's plan"));
        assert!(shows(&rows, "00:02 alice: agreed"));
    }
}

#[test]
fn open_starts_a_conversation_with_someone_not_listed() {
    let t0 = Instant::now();
    let mut screen = alice_with(vec![peer("bob", Route::Direct)], t0);
    type_text(&mut screen, "/open dave");
    assert_eq!(key(&mut screen, KeyCode::Enter), Intent::Nothing);
    // Listed (offline until the server says otherwise), on screen, and its history wanted:
    // the loop opens the conversation (and so watches the user).
    assert_eq!(screen.selected, Some(name("dave")));
    assert!(screen
        .users
        .iter()
        .any(|u| u.user == name("dave") && !u.online));
    assert_eq!(screen.wants_history(), Some(name("dave")));
    assert_eq!(screen.take_opened(), Some(name("dave")));
    // Still listed when the client's table (which does not know dave yet) comes in.
    screen.handle_peers(vec![peer("bob", Route::Direct)]);
    assert!(screen.users.iter().any(|u| u.user == name("dave")));
    type_text(&mut screen, "hi dave");
    assert_eq!(
        key(&mut screen, KeyCode::Enter),
        Intent::Send(name("dave"), "hi dave".into())
    );
    type_text(&mut screen, "/open alice");
    assert_eq!(key(&mut screen, KeyCode::Enter), Intent::Nothing);
    assert_eq!(screen.selected, Some(name("dave")));
}

#[test]
fn opening_a_conversation_is_told_once_and_an_idle_close_leaves_its_reason() {
    let t0 = Instant::now();
    let mut screen = alice_with(
        vec![peer("bob", Route::Relay), peer("carol", Route::Relay)],
        t0,
    );
    // The first user is put on screen by itself; the loop passes that on once.
    assert_eq!(screen.take_opened(), Some(name("bob")));
    assert_eq!(screen.take_opened(), None);
    key(&mut screen, KeyCode::Down);
    assert_eq!(screen.take_opened(), Some(name("carol")));
    assert_eq!(screen.take_opened(), None);

    let idle = Event::Route {
        peer: name("carol"),
        route: Route::Relay,
        reason: RouteReason::Idle,
    };
    event(&mut screen, t0, idle);
    let rows = draw(&screen, 120, 20);
    assert!(
        rows.iter()
            .any(|r| r.contains("route: relay (direct channel closed: idle)")),
        "{}",
        rows.join("\n")
    );
}
