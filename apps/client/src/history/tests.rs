use super::*;
use breeze_core::Via;
use std::fs;

fn name(n: &str) -> UserName {
    UserName::new(n).unwrap()
}

fn at(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

fn bob() -> Conversation {
    Conversation::Peer(name("bob"))
}

/// `from`'s message `id` with `text`, as the client reports it (direct).
pub(crate) fn message(from: &str, id: u64, text: &str) -> Event {
    Event::Message {
        from: name(from),
        id: MessageId(id),
        text: text.into(),
        route: Via::Direct,
    }
}

fn scratch(label: &str) -> tempdir::Dir {
    tempdir::Dir::new(label)
}

/// A directory of its own per test, removed at the end.
mod tempdir {
    pub struct Dir(pub std::path::PathBuf);
    impl Dir {
        pub fn new(label: &str) -> Dir {
            let dir =
                std::env::temp_dir().join(format!("breeze-history-{label}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Dir(dir)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

#[test]
fn sent_and_received_messages_come_back_in_order_with_their_fate() {
    let mut history = History::in_memory(&name("alice")).unwrap();
    history
        .sent(&bob(), MessageId(1), "hi bob", at(1_000))
        .unwrap();
    history
        .observe(&message("bob", 7, "hi alice"), at(2_000))
        .unwrap();
    history
        .observe(&message("carol", 1, "psst"), at(2_500))
        .unwrap();
    let delivered = Event::Delivered {
        to: name("bob"),
        id: MessageId(1),
        route: Via::Relay,
    };
    history.observe(&delivered, at(3_000)).unwrap();
    let got = history.last(&bob(), 50).unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(
        (got[0].from.as_str(), got[0].id, got[0].at_ms),
        ("alice", 1, 1_000)
    );
    assert!(got[0].outgoing);
    assert_eq!(got[0].state, State::Delivered);
    assert_eq!(got[0].route.as_deref(), Some("relay"));
    assert_eq!(
        (got[1].from.as_str(), got[1].text.as_str()),
        ("bob", "hi alice")
    );
    assert_eq!(got[1].state, State::Received);
    assert!(got[0].row < got[1].row);
}

#[test]
fn the_last_n_are_the_newest_oldest_first() {
    let mut history = History::in_memory(&name("alice")).unwrap();
    for i in 1..=10 {
        history
            .observe(&message("bob", i, &format!("m{i}")), at(i))
            .unwrap();
    }
    let texts: Vec<String> = history
        .last(&bob(), 3)
        .unwrap()
        .into_iter()
        .map(|m| m.text)
        .collect();
    assert_eq!(texts, ["m8", "m9", "m10"]);
}

#[test]
fn group_messages_live_in_the_same_history_apart_from_peers() {
    let mut history = History::in_memory(&name("alice")).unwrap();
    let team = Conversation::Group("team".into());
    history
        .sent(&team, MessageId(1), "hello team", at(1))
        .unwrap();
    history
        .sent(&bob(), MessageId(2), "hello bob", at(2))
        .unwrap();
    let got = history.last(&team, 10).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].conversation, team);
    assert_eq!(history.search("hello", 10).unwrap().len(), 2);
}

#[test]
fn search_finds_words_newest_first_and_reads_syntax_as_words() {
    let mut history = History::in_memory(&name("alice")).unwrap();
    history
        .observe(&message("bob", 1, "lunch at noon?"), at(1))
        .unwrap();
    history
        .sent(&bob(), MessageId(1), "Lunch sounds good", at(2))
        .unwrap();
    history
        .observe(&message("bob", 2, "see you"), at(3))
        .unwrap();
    let found = history.search("lunch", 10).unwrap();
    let texts: Vec<&str> = found.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["Lunch sounds good", "lunch at noon?"]);
    assert_eq!(history.search("lunch noon", 10).unwrap().len(), 1);
    for odd in ["\"", "AND", "noon* OR", "(", "NEAR("] {
        assert!(history.search(odd, 10).is_ok(), "{odd}");
    }
    assert!(history.search("   ", 10).unwrap().is_empty());
}

#[test]
fn pruning_forgets_only_what_is_older_than_the_days_kept() {
    let mut history = History::in_memory(&name("alice")).unwrap();
    let day = 86_400_000;
    history.observe(&message("bob", 1, "old"), at(day)).unwrap();
    history
        .observe(&message("bob", 2, "new"), at(9 * day))
        .unwrap();
    assert_eq!(history.prune(3, at(10 * day)).unwrap(), 1);
    let texts: Vec<String> = history
        .last(&bob(), 10)
        .unwrap()
        .into_iter()
        .map(|m| m.text)
        .collect();
    assert_eq!(texts, ["new"]);
    assert!(history.search("old", 10).unwrap().is_empty());
}

#[test]
fn a_history_survives_closing_and_the_next_run_numbers_past_its_ids() {
    let dir = scratch("reopen");
    let path = dir.0.join(FILE);
    {
        let mut history = History::open(&path, &name("alice")).unwrap();
        assert_eq!(history.next_message_id().unwrap(), 1);
        history.sent(&bob(), MessageId(1), "first", at(1)).unwrap();
        history.sent(&bob(), MessageId(2), "second", at(1)).unwrap();
    }
    let mut history = History::open(&path, &name("alice")).unwrap();
    assert_eq!(history.next_message_id().unwrap(), 3);
    history.sent(&bob(), MessageId(3), "third", at(2)).unwrap();
    let delivered = Event::Delivered {
        to: name("bob"),
        id: MessageId(3),
        route: Via::Direct,
    };
    history.observe(&delivered, at(3)).unwrap();
    let got = history.last(&bob(), 10).unwrap();
    assert_eq!(got.len(), 3);
    assert_eq!(got[0].state, State::Sending);
    assert_eq!(got[2].state, State::Delivered);
}

#[test]
fn a_message_received_again_after_a_crash_is_recorded_once() {
    let mut history = History::in_memory(&name("alice")).unwrap();
    let hi = message("bob", 5, "hi");
    assert_eq!(history.observe(&hi, at(1)).unwrap(), Noted::Fresh);
    assert_eq!(history.observe(&hi, at(2)).unwrap(), Noted::Repeat);
    let other_text = message("bob", 5, "hello");
    assert_eq!(history.observe(&other_text, at(3)).unwrap(), Noted::Fresh);
    assert_eq!(history.last(&bob(), 10).unwrap().len(), 2);
}

#[test]
fn a_second_process_on_the_profile_is_told_the_history_is_locked() {
    let dir = scratch("locked");
    let path = dir.0.join(FILE);
    let _first = History::open(&path, &name("alice")).unwrap();
    let second = History::open(&path, &name("alice"));
    assert!(
        matches!(second, Err(HistoryError::Locked)),
        "{:?}",
        second.err()
    );
}

#[test]
fn a_corrupt_file_is_reported_and_left_as_it_was() {
    let dir = scratch("corrupt");
    let path = dir.0.join(FILE);
    let garbage = b"this is not a database, but it is mine".repeat(200);
    fs::write(&path, &garbage).unwrap();
    let error = History::open(&path, &name("alice")).err().unwrap();
    assert!(matches!(error, HistoryError::Corrupt(_)), "{error:?}");
    assert!(error.to_string().contains("left untouched"));
    assert_eq!(fs::read(&path).unwrap(), garbage);
}

#[test]
fn a_history_of_a_newer_version_is_refused_untouched() {
    let dir = scratch("newer");
    let path = dir.0.join(FILE);
    {
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", schema::VERSION + 1)
            .unwrap();
    }
    let before = fs::read(&path).unwrap();
    let error = History::open(&path, &name("alice")).err().unwrap();
    assert!(matches!(error, HistoryError::Newer { .. }), "{error:?}");
    assert_eq!(fs::read(&path).unwrap(), before);
}

#[test]
fn a_journal_without_history_says_why_and_keeps_going() {
    let mut journal = Journal::new(Err(HistoryError::Locked));
    assert!(journal.problem().unwrap().contains("locked"));
    assert_eq!(
        journal.observe(&message("bob", 1, "hi"), at(1)),
        Journaled::Show
    );
    assert!(journal.last(&bob(), 5).unwrap_err().contains("locked"));
}

#[test]
fn pages_read_either_side_of_a_row_and_peers_are_listed_once() {
    let mut history = History::in_memory(&name("alice")).unwrap();
    for i in 1..=6 {
        history
            .observe(&message("bob", i, &format!("m{i}")), at(i))
            .unwrap();
    }
    history.observe(&message("carol", 1, "c"), at(9)).unwrap();
    let rows: Vec<i64> = history
        .last(&bob(), 10)
        .unwrap()
        .iter()
        .map(|m| m.row)
        .collect();
    let texts = |page| -> Vec<String> {
        history
            .page(&bob(), page, 2)
            .unwrap()
            .into_iter()
            .map(|m| m.text)
            .collect()
    };
    assert_eq!(texts(Page::UpTo(rows[3])), ["m3", "m4"]);
    assert_eq!(texts(Page::From(rows[3])), ["m4", "m5"]);
    assert_eq!(history.peers().unwrap(), [name("bob"), name("carol")]);
}

#[test]
fn the_history_file_is_in_wal_mode_and_only_its_owner_reads_it() {
    let dir = scratch("wal");
    let history = History::open(&dir.0.join(FILE), &name("alice")).unwrap();
    let mode: String = history
        .conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    use std::os::unix::fs::PermissionsExt;
    for file in [FILE.to_string(), format!("{FILE}-wal")] {
        let mode = fs::metadata(dir.0.join(&file))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{file}");
    }
}

#[test]
fn group_messages_are_recorded_as_they_come_in_the_groups_order_once() {
    let mut history = History::in_memory(&name("alice")).unwrap();
    let team = Conversation::Group("team".into());
    let said = |from: &str, id: u64, text: &str| {
        Event::Group(GroupEvent::Message {
            group: breeze_core::wire::GroupId(1),
            name: "team".into(),
            from: name(from),
            id: MessageId(id),
            order: id,
            text: text.into(),
        })
    };
    history
        .observe(&said("bob", 4, "hello team"), at(1))
        .unwrap();
    history.observe(&said("alice", 9, "hi bob"), at(2)).unwrap();
    assert_eq!(
        history
            .observe(&said("bob", 4, "hello team"), at(3))
            .unwrap(),
        Noted::Repeat
    );
    let got = history.last(&team, 10).unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!((got[0].from.as_str(), got[0].outgoing), ("bob", false));
    assert_eq!((got[1].from.as_str(), got[1].outgoing), ("alice", true));
    assert_eq!(history.next_message_id().unwrap(), 10);
    assert!(history.last(&bob(), 10).unwrap().is_empty());
}
