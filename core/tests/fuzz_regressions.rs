//! Regression tests for what the fuzz targets in `fuzz/` found in the core, each replaying the
//! minimised input through the public API. A test stays `#[ignore]`d until its bug is fixed.

use breeze_core::client::{Action, Client, ClientConfig, Event};
use breeze_core::codec::encode_frame;
use breeze_core::wire::{Chat, MessageId, ServerFrame, UserName, PROTOCOL_VERSION};
use std::time::Instant;

fn name(n: &str) -> UserName {
    UserName::new(n).unwrap()
}

fn frames(frames: &[ServerFrame]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for frame in frames {
        encode_frame(frame, 1 << 20, &mut bytes).unwrap();
    }
    bytes
}

/// A client logged in to a server that knows nobody else.
fn logged_in_bob(now: Instant) -> Client {
    let mut bob = Client::new(ClientConfig::new(name("bob"), "pw", 7002), [9; 32], now);
    assert_eq!(bob.poll_action(), Some(Action::ConnectServer));
    bob.handle_server_connected(now);
    let welcome = frames(&[
        ServerFrame::Hello {
            version: PROTOCOL_VERSION,
        },
        ServerFrame::LoginOk { user: name("bob") },
        ServerFrame::Presence {
            peers: vec![],
            last: true,
        },
    ]);
    bob.handle_server_bytes(&welcome, now);
    assert!(bob.is_logged_in());
    while bob.poll_transmit().is_some() {}
    while bob.poll_action().is_some() {}
    while bob.poll_event().is_some() {}
    bob
}

/// Found by `client_streams` (finding F1): any logged-in user can send a chat whose sequence
/// number is `u64::MAX` (the server relays it unchecked). The recipient's inbox releases it and
/// computes `next = seq + 1`: "attempt to add with overflow" at `delivery/inbox.rs`
/// (`EpochState::release_from`), a panic in debug builds and a wrap to 0 in release.
///
/// Whatever the fix (refuse such a chat, or count without overflowing), the client must not
/// panic, and the message must not be shown twice.
#[test]
fn a_chat_numbered_u64_max_does_not_overflow_the_inbox() {
    let now = Instant::now();
    let mut bob = logged_in_bob(now);
    let chat = Chat {
        id: MessageId(0),
        epoch: 3,
        seq: u64::MAX,
        first_unacked: u64::MAX,
        text: "3:18446744073709551615:".into(),
    };
    let relayed = frames(&[ServerFrame::Relayed {
        from: name("dave"),
        chat,
    }]);
    bob.handle_server_bytes(&relayed, now);
    bob.handle_server_bytes(&relayed, now);
    let mut shown = 0;
    while let Some(event) = bob.poll_event() {
        if let Event::Message { .. } = event {
            shown += 1;
        }
    }
    assert!(shown <= 1, "shown {shown} times");
}
