//! The line-mode events (docs/ARCHITECTURE.md §9): one JSON object per line, each with an
//! `"event"` field. This enum is the scripting contract; its variants are the event names.

use crate::history::Stored;
use breeze_core::client::{Direction, Event, FileEvent};
use breeze_core::wire::{MessageId, TransferId, UserName};
use serde::Serialize;
use std::io::Write;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum LineEvent {
    LoggedIn {
        user: UserName,
    },
    Presence {
        user: UserName,
        online: bool,
    },
    /// The server stopped telling whether `user` is online (it filled up; see the core's
    /// `Event::PresenceUnknown`).
    PresenceUnknown {
        user: UserName,
    },
    /// `route` is `"direct"`, `"relay"` or `"connecting"`.
    Route {
        peer: UserName,
        route: String,
        reason: String,
    },
    Message {
        from: UserName,
        id: MessageId,
        text: String,
        route: String,
    },
    Delivered {
        to: UserName,
        id: MessageId,
        route: String,
    },
    /// The recipient is offline; the server keeps the message for their next login.
    Stored {
        to: UserName,
        id: MessageId,
    },
    /// The server gave up on the message (no such user, recipient's storage full).
    Undeliverable {
        to: UserName,
        id: MessageId,
        reason: String,
    },
    /// A `send` command was accepted: `id` is what `delivered`/`stored` will name.
    Sent {
        to: UserName,
        id: MessageId,
    },
    Who {
        users: Vec<WhoEntry>,
    },
    /// `from` offers a file: answer with `accept ID [DIR]` or `decline ID`.
    FileOffer {
        from: UserName,
        id: String,
        name: String,
        size: u64,
    },
    /// A `file` command was accepted: `id` is what the other file events will name.
    FileOffered {
        to: UserName,
        id: String,
        name: String,
        size: u64,
        path: String,
    },
    /// Sending: the peer accepted; receiving: this side did (the `accept` command). `offset`
    /// is where the transfer starts: more than 0 when it resumes a partial file.
    FileAccepted {
        peer: UserName,
        id: String,
        direction: &'static str,
        offset: u64,
        /// Receiving: the directory the file goes to.
        #[serde(skip_serializing_if = "Option::is_none")]
        dir: Option<String>,
    },
    FileProgress {
        peer: UserName,
        id: String,
        direction: &'static str,
        bytes: u64,
        size: u64,
        route: String,
    },
    /// `verified` false: the content hash did not match, and `path` is where the damaged
    /// file was kept aside (never under its real name).
    FileDone {
        peer: UserName,
        id: String,
        direction: &'static str,
        verified: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        path: Option<String>,
    },
    FileFailed {
        peer: UserName,
        id: String,
        direction: &'static str,
        reason: String,
    },
    FileDeclined {
        peer: UserName,
        id: String,
        direction: &'static str,
    },
    /// `by` is `"peer"` or `"me"`.
    FileCancelled {
        peer: UserName,
        id: String,
        direction: &'static str,
        by: &'static str,
    },
    /// `fatal` errors end the client with a non-zero exit code.
    Error {
        message: String,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        fatal: bool,
    },
    ServerLost {
        error: String,
        retry_in_ms: u64,
    },
    /// A peer connection was refused for failing authentication or breaking protocol.
    PeerRejected {
        claimed: Option<UserName>,
        error: String,
    },
    LoggedOut,
    Kicked {
        reason: String,
    },
    /// First contact with a server: its key's fingerprint, now pinned in the profile.
    ServerKey {
        fingerprint: String,
    },
    /// `user` showed up with a key other than the one remembered; `key` is the new key's
    /// fingerprint (compare with `verify` before trusting it).
    PeerKeyChanged {
        user: UserName,
        key: String,
    },
    /// The answer to `watch USER`: `presence` events for that user follow as it comes and goes.
    Watching {
        user: UserName,
    },
    /// The answer to `verify USER`: the same string on both sides when nobody stands between.
    Fingerprint {
        user: UserName,
        fingerprint: String,
    },
    /// A group this user is in was created, changed or listed at login (`by` is absent then);
    /// `members` is empty (and `owner` absent) when this user left or was removed.
    Group {
        group: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        owner: Option<UserName>,
        members: Vec<UserName>,
        #[serde(skip_serializing_if = "Option::is_none")]
        by: Option<UserName>,
    },
    /// A group message, in the group's order (the same for every member; `order` is its
    /// place), this user's own included.
    GroupMessage {
        group: String,
        from: UserName,
        id: MessageId,
        order: u64,
        text: String,
    },
    /// How many members (this user not counted) have one of this user's group messages.
    GroupDelivered {
        group: String,
        id: MessageId,
        delivered: u32,
        members: u32,
    },
    /// A `gsend` was accepted: `id` is what `group_message` and `group_delivered` will name.
    GroupSent {
        group: String,
        id: MessageId,
    },
    /// A `group …` command went to the server; a `group` event (or an `error`) answers it.
    GroupRequested {
        request: u64,
    },
    /// The answer to `groups`.
    Groups {
        groups: Vec<GroupEntry>,
    },
    /// The answer to `history USER [N]` (`peer`) or `ghistory GROUP [N]` (`group`): the last
    /// messages there, oldest first, from this profile's own store (so also offline and
    /// after restarts).
    History {
        #[serde(skip_serializing_if = "Option::is_none")]
        peer: Option<UserName>,
        #[serde(skip_serializing_if = "Option::is_none")]
        group: Option<String>,
        messages: Vec<HistoryEntry>,
    },
}

/// One row of the `groups` event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupEntry {
    pub group: String,
    pub owner: UserName,
    pub members: Vec<UserName>,
}

/// One message of a `history` event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryEntry {
    pub from: String,
    pub text: String,
    /// When this client sent or received it, RFC 3339 in UTC with milliseconds.
    pub at: String,
    /// The sender's id, as the `message` or `sent` event named it.
    pub id: u64,
}

impl From<&Stored> for HistoryEntry {
    fn from(message: &Stored) -> HistoryEntry {
        HistoryEntry {
            from: message.from.clone(),
            text: message.text.clone(),
            at: rfc3339(message.at_ms),
            id: message.id,
        }
    }
}

/// `at_ms` (milliseconds since the Unix epoch) as RFC 3339, e.g. `2026-12-07T18:05:09.042Z`.
pub fn rfc3339(at_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(at_ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WhoEntry {
    pub user: UserName,
    pub online: bool,
    pub route: String,
}

/// `"sending"` or `"receiving"`, from this client's point of view.
pub fn direction(direction: Direction) -> &'static str {
    match direction {
        Direction::Sending => "sending",
        Direction::Receiving => "receiving",
    }
}

impl LineEvent {
    pub fn file_declined(peer: UserName, id: TransferId, d: Direction) -> LineEvent {
        LineEvent::FileDeclined {
            peer,
            id: id.to_string(),
            direction: direction(d),
        }
    }

    pub fn file_cancelled(
        peer: UserName,
        id: TransferId,
        d: Direction,
        by: &'static str,
    ) -> LineEvent {
        LineEvent::FileCancelled {
            peer,
            id: id.to_string(),
            direction: direction(d),
            by,
        }
    }

    pub fn error(message: impl Into<String>) -> LineEvent {
        LineEvent::Error {
            message: message.into(),
            fatal: false,
        }
    }

    pub fn fatal_error(message: impl Into<String>) -> LineEvent {
        LineEvent::Error {
            message: message.into(),
            fatal: true,
        }
    }

    /// Ends the client: the login was refused for good, or the session was taken away.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            LineEvent::Error { fatal: true, .. } | LineEvent::Kicked { .. }
        )
    }

    /// Writes the event as one line of JSON and flushes, so a script sees it at once.
    pub fn emit(&self, out: &mut impl Write) -> std::io::Result<()> {
        serde_json::to_writer(&mut *out, self)?;
        out.write_all(b"\n")?;
        out.flush()
    }
}

impl From<Event> for LineEvent {
    fn from(event: Event) -> LineEvent {
        match event {
            Event::LoggedIn { user } => LineEvent::LoggedIn { user },
            Event::LoginFailed { reason } => LineEvent::Error {
                message: format!("login refused: {reason}"),
                fatal: true,
            },
            Event::ServerLost { error, retry_in } => LineEvent::ServerLost {
                error: error.to_string(),
                // This app leaves reconnecting to the core, which always says when.
                retry_in_ms: u64::try_from(retry_in.unwrap_or_default().as_millis())
                    .unwrap_or(u64::MAX),
            },
            Event::Kicked { reason } => LineEvent::Kicked {
                reason: reason.to_string(),
            },
            Event::Presence { user, online } => LineEvent::Presence { user, online },
            Event::PresenceUnknown { user } => LineEvent::PresenceUnknown { user },
            Event::Route {
                peer,
                route,
                reason,
            } => LineEvent::Route {
                peer,
                route: route.to_string(),
                reason: reason.to_string(),
            },
            Event::Message {
                from,
                id,
                text,
                route,
            } => LineEvent::Message {
                from,
                id,
                text,
                route: route.to_string(),
            },
            Event::Delivered { to, id, route } => LineEvent::Delivered {
                to,
                id,
                route: route.to_string(),
            },
            Event::Stored { to, id } => LineEvent::Stored { to, id },
            Event::Undeliverable { to, id, reason } => LineEvent::Undeliverable {
                to,
                id,
                reason: reason.to_string(),
            },
            Event::PeerRejected { claimed, error } => LineEvent::PeerRejected {
                claimed,
                error: error.to_string(),
            },
            Event::LoggedOut => LineEvent::LoggedOut,
            Event::File(FileEvent::Offered {
                from,
                id,
                name,
                size,
                ..
            }) => LineEvent::FileOffer {
                from,
                id: id.to_string(),
                name: name.to_string(),
                size,
            },
            Event::File(FileEvent::Accepted { to, id, offset }) => LineEvent::FileAccepted {
                peer: to,
                id: id.to_string(),
                direction: direction(Direction::Sending),
                offset,
                dir: None,
            },
            Event::File(FileEvent::Progress {
                peer,
                id,
                direction: d,
                bytes,
                size,
                route,
            }) => LineEvent::FileProgress {
                peer,
                id: id.to_string(),
                direction: direction(d),
                bytes,
                size,
                route: route.to_string(),
            },
            Event::File(FileEvent::Done {
                peer,
                id,
                direction: d,
                verified,
            }) => LineEvent::FileDone {
                peer,
                id: id.to_string(),
                direction: direction(d),
                verified,
                path: None,
            },
            Event::File(FileEvent::Failed {
                peer,
                id,
                direction: d,
                failure,
            }) => LineEvent::FileFailed {
                peer,
                id: id.to_string(),
                direction: direction(d),
                reason: failure.to_string(),
            },
            Event::File(FileEvent::Declined { to, id }) => {
                LineEvent::file_declined(to, id, Direction::Sending)
            }
            Event::File(FileEvent::Cancelled {
                peer,
                id,
                direction: d,
            }) => LineEvent::file_cancelled(peer, id, d, "peer"),
            Event::ServerKeyLearned { key } => LineEvent::ServerKey {
                fingerprint: key.fingerprint().to_string(),
            },
            Event::ServerKeyChanged {
                expected,
                presented,
            } => LineEvent::fatal_error(crate::keys::server_key_changed(&expected, &presented)),
            Event::PeerKeyChanged { user, new, .. } => LineEvent::PeerKeyChanged {
                user,
                key: new.fingerprint().to_string(),
            },
            Event::AwaitingKey { user } => LineEvent::error(format!(
                "{user} has never logged in with a key: messages to {user} wait here, \
                 sealed for nobody yet, until {user} is online"
            )),
            Event::ForgedRelay { from } => LineEvent::error(format!(
                "dropped something the server relayed as {from}'s: it failed authentication"
            )),
            other => LineEvent::error(format!("unhandled client event: {other:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use breeze_core::client::{Opening, Route, RouteReason};
    use breeze_core::wire::LoginRefusal;
    use breeze_core::Via;

    fn name(n: &str) -> UserName {
        UserName::new(n).unwrap()
    }

    fn json(event: LineEvent) -> String {
        let mut out = Vec::new();
        event.emit(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_direct_message_is_one_line_with_the_route() {
        let event = Event::Message {
            from: name("alice"),
            id: MessageId(3),
            text: "hi \"bob\"".into(),
            route: Via::Direct,
        };
        assert_eq!(
            json(event.into()),
            "{\"event\":\"message\",\"from\":\"alice\",\"id\":3,\"text\":\"hi \\\"bob\\\"\",\"route\":\"direct\"}\n"
        );
    }

    #[test]
    fn routes_and_deliveries_name_their_path() {
        let route = Event::Route {
            peer: name("bob"),
            route: Route::Connecting,
            reason: RouteReason::Dialing(Opening::OnDemand),
        };
        assert_eq!(
            json(route.into()),
            "{\"event\":\"route\",\"peer\":\"bob\",\"route\":\"connecting\",\"reason\":\"dialling the peer (on demand)\"}\n"
        );
        let idle = Event::Route {
            peer: name("bob"),
            route: Route::Relay,
            reason: RouteReason::Idle,
        };
        assert_eq!(
            json(idle.into()),
            "{\"event\":\"route\",\"peer\":\"bob\",\"route\":\"relay\",\"reason\":\"direct channel closed: idle\"}\n"
        );
        let delivered = Event::Delivered {
            to: name("bob"),
            id: MessageId(1),
            route: Via::Relay,
        };
        assert_eq!(
            json(delivered.into()),
            "{\"event\":\"delivered\",\"to\":\"bob\",\"id\":1,\"route\":\"relay\"}\n"
        );
    }

    #[test]
    fn file_events_name_the_transfer_by_its_hex_id() {
        use breeze_core::wire::FileName;
        let offer = Event::File(FileEvent::Offered {
            from: name("alice"),
            id: TransferId(0x1f),
            name: FileName::new("a b.txt").unwrap(),
            size: 5,
            hash: [7; 32],
        });
        assert_eq!(
            json(offer.into()),
            "{\"event\":\"file_offer\",\"from\":\"alice\",\"id\":\"000000000000001f\",\"name\":\"a b.txt\",\"size\":5}\n"
        );
        let progress = Event::File(FileEvent::Progress {
            peer: name("bob"),
            id: TransferId(2),
            direction: Direction::Sending,
            bytes: 3,
            size: 5,
            route: Via::Relay,
        });
        assert_eq!(
            json(progress.into()),
            "{\"event\":\"file_progress\",\"peer\":\"bob\",\"id\":\"0000000000000002\",\"direction\":\"sending\",\"bytes\":3,\"size\":5,\"route\":\"relay\"}\n"
        );
        let done = LineEvent::FileDone {
            peer: name("alice"),
            id: TransferId(3).to_string(),
            direction: "receiving",
            verified: true,
            path: Some("/tmp/a b.txt".into()),
        };
        assert_eq!(
            json(done),
            "{\"event\":\"file_done\",\"peer\":\"alice\",\"id\":\"0000000000000003\",\"direction\":\"receiving\",\"verified\":true,\"path\":\"/tmp/a b.txt\"}\n"
        );
    }

    #[test]
    fn a_refused_login_is_a_fatal_error_and_ordinary_errors_are_not() {
        let refused = LineEvent::from(Event::LoginFailed {
            reason: LoginRefusal::BadCredentials,
        });
        assert!(refused.is_fatal());
        assert_eq!(
            json(refused),
            "{\"event\":\"error\",\"message\":\"login refused: wrong user name or password\",\"fatal\":true}\n"
        );
        let plain = LineEvent::error("unknown command");
        assert!(!plain.is_fatal());
        assert_eq!(
            json(plain),
            "{\"event\":\"error\",\"message\":\"unknown command\"}\n"
        );
        assert_eq!(json(LineEvent::LoggedOut), "{\"event\":\"logged_out\"}\n");
    }

    #[test]
    fn a_history_event_lists_messages_with_rfc3339_times() {
        let event = LineEvent::History {
            peer: Some(name("bob")),
            group: None,
            messages: vec![HistoryEntry {
                from: "bob".into(),
                text: "hi".into(),
                at: rfc3339(1_765_130_709_042),
                id: 4,
            }],
        };
        assert_eq!(
            json(event),
            "{\"event\":\"history\",\"peer\":\"bob\",\"messages\":[{\"from\":\"bob\",\"text\":\"hi\",\"at\":\"2025-12-07T18:05:09.042Z\",\"id\":4}]}\n"
        );
    }

    #[test]
    fn keys_are_events_of_their_own_and_a_changed_server_key_is_fatal() {
        use breeze_core::secure::PublicKey;
        let key = PublicKey([7; 32]);
        let fingerprint = key.fingerprint().to_string();
        assert_eq!(
            json(Event::ServerKeyLearned { key }.into()),
            format!("{{\"event\":\"server_key\",\"fingerprint\":\"{fingerprint}\"}}\n")
        );
        let changed = Event::PeerKeyChanged {
            user: name("bob"),
            old: PublicKey([6; 32]),
            new: key,
        };
        assert_eq!(
            json(changed.into()),
            format!(
                "{{\"event\":\"peer_key_changed\",\"user\":\"bob\",\"key\":\"{fingerprint}\"}}\n"
            )
        );
        let refused: LineEvent = Event::ServerKeyChanged {
            expected: PublicKey([1; 32]).fingerprint(),
            presented: key,
        }
        .into();
        assert!(refused.is_fatal());
        assert!(json(refused).contains("--server-key"));
    }
}
