//! The recipient's inbox: exactly once, in order, and gaps nobody fills.
//!
//! Integration tests rather than unit tests because they need a clock origin, and the core's
//! own sources never read the clock.

use breeze_core::delivery::{Inbox, Receipt, Via};
use breeze_core::wire::{Ack, Chat, MessageId};
use std::time::{Duration, Instant};

fn chat(seq: u64, first_unacked: u64) -> Chat {
    Chat {
        id: MessageId(seq),
        epoch: 9,
        seq,
        first_unacked,
        text: format!("m{seq}"),
    }
}

fn seqs(receipt: &Receipt) -> Vec<u64> {
    receipt.released.iter().map(|(c, _)| c.seq).collect()
}

#[test]
fn releases_in_order_and_drops_duplicates() {
    let now = Instant::now();
    let mut inbox = Inbox::new(16);
    assert_eq!(
        seqs(&inbox.receive(chat(2, 1), Via::Relay, now)),
        Vec::<u64>::new()
    );
    let receipt = inbox.receive(chat(1, 1), Via::Direct, now);
    assert_eq!(seqs(&receipt), vec![1, 2]);
    assert_eq!(
        receipt.released[1].1,
        Via::Relay,
        "each keeps the path it came by"
    );
    assert_eq!(
        receipt.ack,
        Some(Ack {
            epoch: 9,
            through: 2
        })
    );
    let dup = inbox.receive(chat(2, 1), Via::Direct, now);
    assert!(dup.released.is_empty());
    assert_eq!(
        dup.ack,
        Some(Ack {
            epoch: 9,
            through: 2
        })
    );
}

#[test]
fn a_fresh_inbox_starts_at_the_first_unacknowledged() {
    let now = Instant::now();
    let mut inbox = Inbox::new(16);
    assert_eq!(
        seqs(&inbox.receive(chat(5, 4), Via::Direct, now)),
        Vec::<u64>::new()
    );
    assert_eq!(
        seqs(&inbox.receive(chat(4, 4), Via::Direct, now)),
        vec![4, 5]
    );
}

#[test]
fn early_arrivals_are_bounded() {
    let now = Instant::now();
    let mut inbox = Inbox::new(2);
    for seq in 3..10 {
        inbox.receive(chat(seq, 1), Via::Direct, now);
    }
    assert_eq!(inbox.held(), 2);
}

#[test]
fn a_gap_nobody_fills_is_skipped_after_the_timeout() {
    let start = Instant::now();
    let timeout = Duration::from_secs(60);
    let mut inbox = Inbox::new(16);
    inbox.receive(chat(3, 1), Via::Relay, start);
    inbox.receive(chat(5, 1), Via::Relay, start);
    assert_eq!(inbox.gap_deadline(timeout), Some(start + timeout));
    assert!(inbox
        .skip_stale_gaps(start + timeout / 2, timeout)
        .is_empty());
    let later = start + timeout;
    let receipts = inbox.skip_stale_gaps(later, timeout);
    assert_eq!(seqs(&receipts[0]), vec![3]);
    assert_eq!(
        receipts[0].ack,
        Some(Ack {
            epoch: 9,
            through: 3
        })
    );
    // The next gap gets its own full wait.
    assert_eq!(inbox.gap_deadline(timeout), Some(later + timeout));
    let receipts = inbox.skip_stale_gaps(later + timeout, timeout);
    assert_eq!(seqs(&receipts[0]), vec![5]);
    assert_eq!(inbox.gap_deadline(timeout), None);
    // The skipped message, should it turn up after all, is not shown out of order.
    assert!(inbox
        .receive(chat(1, 1), Via::Direct, later + timeout)
        .released
        .is_empty());
}

#[test]
fn a_held_message_next_in_line_after_a_jump_is_released_at_once() {
    let now = Instant::now();
    let mut inbox = Inbox::new(16);
    assert!(inbox
        .receive(chat(6, 1), Via::Relay, now)
        .released
        .is_empty());
    // The sender moved on: 1..5 were acknowledged to an earlier run of this client.
    let receipt = inbox.receive(chat(7, 6), Via::Direct, now);
    assert_eq!(seqs(&receipt), vec![6, 7]);
    assert_eq!(
        receipt.ack,
        Some(Ack {
            epoch: 9,
            through: 7
        })
    );
}
