//! How long opening a conversation takes with a big history: 100,000 messages stored with
//! one peer (and as many with another), then, as the chat screen does when the conversation
//! is selected, open the history file, read its last page and draw the screen. The budget is
//! 50 ms. A test that only runs when asked, and only means something in release:
//!
//! ```text
//! cargo test --release -p breeze-client --bin breeze -- --ignored --nocapture open_bench
//! ```

use super::chat::KEPT;
use super::tests::{alice_with, name, peer};
use crate::history::{Conversation, History, Page, FILE};
use breeze_core::client::Route;
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use std::time::{Duration, Instant};

const MESSAGES: u64 = 100_000;

/// An empty directory of this run for the history file.
fn scratch(label: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("breeze-{label}-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
const BUDGET: Duration = Duration::from_millis(50);

#[test]
#[ignore = "a benchmark: run with --release --ignored"]
fn open_bench_a_conversation_of_100k_messages_opens_within_50_ms() {
    let dir = scratch("open");
    let path = dir.join(FILE);
    let alice = name("alice");
    let t0 = 1_796_601_600_000;
    {
        let mut history = History::open(&path, &alice).unwrap();
        let messages = (0..MESSAGES * 2).map(|i| {
            let with = if i % 2 == 0 { "bob" } else { "carol" };
            let text = format!("message {i}: the quick brown fox jumps over the lazy dog");
            (
                Conversation::Peer(name(with)),
                i % 3 == 0,
                i,
                t0 + i as i64 * 7_000,
                text,
            )
        });
        history.bulk(messages).unwrap();
    }
    let size = std::fs::metadata(&path).unwrap().len();
    let mut times = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        let history = History::open(&path, &alice).unwrap();
        let bob = Conversation::Peer(name("bob"));
        let page = history.page(&bob, Page::UpTo(i64::MAX), KEPT).unwrap();
        let mut screen = alice_with(vec![peer("bob", Route::Direct)], Instant::now());
        screen.load_history(&name("bob"), Ok(page));
        let mut terminal = Terminal::new(TestBackend::new(160, 50)).unwrap();
        terminal.draw(|frame| screen.render(frame)).unwrap();
        times.push(started.elapsed());
        drop(history);
    }
    times.sort();
    let median = times[times.len() / 2];
    println!(
        "open a conversation of {MESSAGES} messages ({} in the file, {:.1} MiB), read the \
         last {KEPT} and draw 160x50: min {:?}, median {median:?}, max {:?}",
        MESSAGES * 2,
        size as f64 / (1 << 20) as f64,
        times[0],
        times[times.len() - 1]
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert!(median < BUDGET, "median {median:?} over {BUDGET:?}");
}

/// What a history write costs the client: each received message is its own transaction (it
/// is written before it is shown), on a file in WAL mode, as in a session.
#[test]
#[ignore = "a benchmark: run with --release --ignored"]
fn open_bench_history_writes_one_message_at_a_time() {
    use breeze_core::client::Event;
    use breeze_core::wire::MessageId;
    use breeze_core::Via;
    let dir = scratch("write");
    let mut history = History::open(&dir.join(FILE), &name("alice")).unwrap();
    const WRITES: u64 = 20_000;
    let started = Instant::now();
    for i in 0..WRITES {
        let message = Event::Message {
            from: name("bob"),
            id: MessageId(i + 1),
            text: format!("message {i}: the quick brown fox jumps over the lazy dog"),
            route: Via::Relay,
        };
        history
            .observe(&message, std::time::SystemTime::now())
            .unwrap();
    }
    let elapsed = started.elapsed();
    println!(
        "{WRITES} history writes, one transaction each: {elapsed:?}, {:.1} µs per message, \
         {:.0} messages/s",
        elapsed.as_secs_f64() * 1e6 / WRITES as f64,
        WRITES as f64 / elapsed.as_secs_f64()
    );
    drop(history);
    let _ = std::fs::remove_dir_all(&dir);
}
