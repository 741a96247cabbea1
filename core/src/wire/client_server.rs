//! The client↔server family.

use super::file::TransferId;
use super::group::{
    GroupError, GroupId, GroupInfo, GroupMessage, GroupRequest, OrderedGroupMessage,
};
use super::sealed::{SealedAck, SealedChat, SealedFile};
use super::shared::{ErrorCode, KickReason, LoginRefusal, Undeliverable, UserName};
use crate::codec::{parse, variant_fields, DecodeError, Frame, SharedTail};
use crate::password::Password;
use crate::secure::PublicKey;
use crate::transmit::Payload;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// What a client sends its server.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ClientFrame {
    /// The first frame after the handshake: nothing else is read before the versions match.
    Hello {
        /// The protocol version the client speaks.
        version: u16,
    },
    /// `p2p_port` is where the client listens for peers; the server pairs it with the IP it
    /// observes on this connection, because a client cannot know its own LAN-visible address.
    /// 0: the client takes no direct channels (it listens for none), so its peers never dial
    /// it and talk to it through the relay.
    Login {
        /// The account to log in as.
        user: UserName,
        /// Checked by the server's host; never stored or logged by the core.
        password: Password,
        /// See above.
        p2p_port: u16,
        /// Create the account first (only if the server allows registration).
        register: bool,
    },
    /// Ends the session on purpose: peers hear the user went offline.
    Logout,
    /// A chat message for `to`, to be forwarded (or stored while `to` is offline).
    Relay {
        /// The recipient.
        to: UserName,
        /// The message, sealed for `to`: the server sees its numbers, not its text.
        chat: SealedChat,
    },
    /// An acknowledgement for messages that arrived from `to` via the server.
    RelayAck {
        /// Whose messages are acknowledged.
        to: UserName,
        /// The acknowledgement, with a seal `to` checks.
        ack: SealedAck,
    },
    /// A heartbeat, sent only when nothing else was sent for an interval.
    Ping,
    /// A file transfer message for `to`, forwarded as it is (never stored).
    RelayFile {
        /// The recipient.
        to: UserName,
        /// The file message, sealed for `to`.
        message: SealedFile,
    },
    /// Tell this client when these users come and go, and introduce them if they are online
    /// now (an answer comes as [`ServerFrame::PresenceChanged`]). Sent after the login frame
    /// with the users the client cares about (conversations, groups), and later for each
    /// new one: on a large server only watched users' presence is sent, so a login costs
    /// what its watchers need, not a frame to everyone online.
    Watch {
        /// Up to `max_watch_frame` users per frame.
        users: Vec<UserName>,
    },
    /// Which key does `user` have? Asked before sealing for someone this client was never
    /// introduced to (an offline user).
    KeyRequest {
        /// Whose key.
        user: UserName,
    },
    /// Create, change or leave a group.
    Group {
        /// Chosen by the client; a refusal names it.
        request_id: u64,
        /// What to do.
        request: GroupRequest,
    },
    /// A message for a group, to be put in the group's order and delivered to every member.
    GroupSend {
        /// The group.
        group: GroupId,
        /// The message, sealed under the sender's group key.
        message: GroupMessage,
    },
    /// Every message of `group` up to `through` (in the group's order) arrived here.
    GroupAck {
        /// The group.
        group: GroupId,
        /// The highest place in the group's order received.
        through: u64,
    },
    /// A login with the profile key alone, instead of `Login`: the handshake already proved
    /// the client holds its static key, so once that key is enrolled (bound to `user` by an
    /// earlier password login) no password is sent or checked. The server refuses a key
    /// that is not bound (`KeyNotEnrolled`) or was revoked (`KeyRevoked`). `p2p_port` as in
    /// `Login`.
    KeyLogin {
        /// The account to log in as.
        user: UserName,
        /// Where the client listens for peers; 0 for none.
        p2p_port: u16,
    },
}

/// What the server knows of a user's key (the answer to a key request).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum KeyLookup {
    /// The key the user logged in with last: seal to it.
    Key(PublicKey),
    /// The account exists but never logged in with a key: nothing can be sealed for it yet
    /// (messages wait with their sender until the user is online).
    NotYet,
    /// There is no such account.
    NoSuchUser,
}

/// An introduction: a peer that is online, where to dial it, and the static key it proved to
/// the server it holds, which it must prove again on the direct channel.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct PeerIntro {
    /// Who is online.
    pub user: UserName,
    /// Where to dial them: the address the server saw them connect from, with their P2P port.
    pub endpoint: SocketAddr,
    /// The key they proved to the server, which they must prove again on the direct channel.
    pub key: PublicKey,
}

/// What a server sends a client.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ServerFrame {
    /// The answer to the client's hello, sent whatever the version, so a client speaking another
    /// one learns which this server speaks.
    Hello {
        /// The protocol version the server speaks.
        version: u16,
    },
    /// The login succeeded: the online list and stored messages follow.
    LoginOk {
        /// Who is logged in.
        user: UserName,
    },
    /// The login failed; the connection closes.
    LoginRefused {
        /// Why, so the client knows whether retrying can help.
        reason: LoginRefusal,
    },
    /// One page of the online list sent after login; `last` marks the final page, after which
    /// the client drops anyone it knew of who was not listed.
    Presence {
        /// Up to `presence_page` online users.
        peers: Vec<PeerIntro>,
        /// This is the last page.
        last: bool,
        /// The list holds everyone online, and every later login and logout will be told
        /// (a small server). `false`: it holds only the users this client watches, and only
        /// their changes will be told (see [`ClientFrame::Watch`]).
        everyone: bool,
    },
    /// Who came online and who went offline since the last such frame: changes are gathered
    /// per connection and sent together, so a storm of logins costs each observer one frame
    /// per batch, not one per login. A user appears at most once, in its latest state.
    PresenceChanged {
        /// Users now online, with their introductions.
        online: Vec<PeerIntro>,
        /// Users now offline.
        offline: Vec<UserName>,
    },
    /// A chat message relayed (or stored earlier) for this client.
    Relayed {
        /// The sender.
        from: UserName,
        /// The sender's key as the server knows it (an offline message may come from someone
        /// this client was never introduced to).
        key: PublicKey,
        /// The message, sealed by the sender.
        chat: SealedChat,
    },
    /// An acknowledgement of messages this client relayed to `from`.
    RelayedAck {
        /// Who acknowledged.
        from: UserName,
        /// The acknowledgement, sealed by `from`.
        ack: SealedAck,
    },
    /// `to` is offline: the message is stored and will be delivered at their next login.
    Stored {
        /// The recipient.
        to: UserName,
        /// The message's epoch.
        epoch: u64,
        /// The message's sequence number.
        seq: u64,
    },
    /// The message can never be delivered (no such account, or the recipient's storage is
    /// full); the sender stops trying.
    Undeliverable {
        /// The recipient.
        to: UserName,
        /// The message's epoch.
        epoch: u64,
        /// The message's sequence number.
        seq: u64,
        /// Why.
        reason: Undeliverable,
    },
    /// The session is over (logged in elsewhere, account deleted); the client stops.
    Kicked {
        /// Why.
        reason: KickReason,
    },
    /// The server is going down on purpose; the client should reconnect later.
    ShuttingDown,
    /// Why the server closes the connection.
    Error {
        /// The reason.
        code: ErrorCode,
    },
    /// A heartbeat, sent only when nothing else was sent for an interval.
    Ping,
    /// A file message from `from`, forwarded as it came.
    RelayedFile {
        /// The sender.
        from: UserName,
        /// The sender's key as the server knows it: a receiver that does not watch the sender
        /// (a large server) may hear of it first through its file.
        key: PublicKey,
        /// The file message, sealed by the sender.
        message: SealedFile,
    },
    /// The answer to `KeyRequest`.
    UserKey {
        /// Whose key.
        user: UserName,
        /// What the server knows of it.
        key: KeyLookup,
    },
    /// `to` is offline: the file message was dropped (files are not stored on the server).
    FileUndeliverable {
        /// The recipient.
        to: UserName,
        /// The transfer.
        id: TransferId,
    },
    /// The relay dropped chunks of this transfer from `offset` on: this user's relay rate is
    /// used up. Send again from `offset` after `retry_after_ms`.
    FileThrottled {
        /// The receiver.
        to: UserName,
        /// The transfer.
        id: TransferId,
        /// Where to send again from.
        offset: u64,
        /// How long to wait first, in milliseconds.
        retry_after_ms: u32,
    },
    /// A group this user is in, sent at login and whenever it changes.
    Group {
        /// The group as it is now.
        info: GroupInfo,
        /// Who changed it (none in the list sent at login).
        by: Option<UserName>,
    },
    /// The list of groups sent at login is complete: a group not in it is one this user is
    /// no longer in.
    GroupsListed,
    /// This user is no longer in the group (left, removed, or the group ended).
    GroupGone {
        /// The group.
        group: GroupId,
        /// Its name.
        name: String,
        /// Who made it so.
        by: UserName,
    },
    /// A group message in the group's order.
    GroupMessage(OrderedGroupMessage),
    /// The server has the sender's messages to `group` of `epoch` up to `through`, safely
    /// stored: they will reach every member.
    GroupAccepted {
        /// The group.
        group: GroupId,
        /// The sender's epoch.
        epoch: u64,
        /// The sender's highest accepted sequence number.
        through: u64,
    },
    /// The message `from_seq` (and any after it) was not taken: it was keyed for another
    /// membership (or the server lost it). Send them again, keyed for `version`.
    GroupRekey {
        /// The group.
        group: GroupId,
        /// The sender's epoch.
        epoch: u64,
        /// The first message to send again.
        from_seq: u64,
        /// The membership version to key for.
        version: u64,
    },
    /// The messages from `from_seq` on can never be taken; the sender gives them up.
    GroupSendRefused {
        /// The group.
        group: GroupId,
        /// The sender's epoch.
        epoch: u64,
        /// The first message refused.
        from_seq: u64,
        /// Why.
        error: GroupError,
    },
    /// How far one of this user's group messages has got.
    GroupDelivered {
        /// The group.
        group: GroupId,
        /// The sender's id for the message.
        id: crate::wire::MessageId,
        /// Members who have it (the sender not counted).
        delivered: u32,
        /// Members who should have it (the sender not counted).
        members: u32,
    },
    /// A group request was refused.
    GroupRefused {
        /// The client's id for the request.
        request_id: u64,
        /// Why.
        error: GroupError,
    },
}

/// `RelayFile`'s variant index, as postcard writes it (a varint before the fields).
const RELAY_FILE_FRAME: u32 = 6;
/// `RelayedFile`'s variant index.
const RELAYED_FILE_FRAME: u32 = 13;

/// A relayed file message's sealed bytes go out from where they are, not copied into the
/// connection's output first (the record layer copies them once, as it seals).
impl SharedTail for ClientFrame {
    fn shared_tail(&self) -> Option<Payload> {
        match self {
            ClientFrame::RelayFile { message, .. } => message.shared_tail(),
            _ => None,
        }
    }
}

impl SharedTail for ServerFrame {
    fn shared_tail(&self) -> Option<Payload> {
        match self {
            ServerFrame::RelayedFile { message, .. } => message.shared_tail(),
            _ => None,
        }
    }
}

/// A relayed file message keeps its sealed bytes in the read buffer they arrived in: the
/// server forwards them from there, and the recipient opens them from there.
impl Frame for ClientFrame {
    fn parse_in(payload: &[u8], source: &Bytes) -> Result<Self, DecodeError> {
        let shared = || {
            let rest = variant_fields(payload, RELAY_FILE_FRAME)?;
            let (to, rest) = postcard::take_from_bytes::<UserName>(rest).ok()?;
            let message = SealedFile::shared_in(rest, source)?;
            Some(ClientFrame::RelayFile { to, message })
        };
        shared().map_or_else(|| parse(payload), Ok)
    }
}

impl Frame for ServerFrame {
    fn parse_in(payload: &[u8], source: &Bytes) -> Result<Self, DecodeError> {
        let shared = || {
            let rest = variant_fields(payload, RELAYED_FILE_FRAME)?;
            let ((from, key), rest) =
                postcard::take_from_bytes::<(UserName, PublicKey)>(rest).ok()?;
            let message = SealedFile::shared_in(rest, source)?;
            Some(ServerFrame::RelayedFile { from, key, message })
        };
        shared().map_or_else(|| parse(payload), Ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{encode_frame, encode_frame_sharing, DEFAULT_MAX_FRAME};
    use crate::wire::FileHint;

    fn sealed_chunk(len: usize) -> SealedFile {
        SealedFile {
            id: TransferId(9),
            hint: FileHint::Chunk {
                offset: 1 << 20,
                len: len as u32,
            },
            sealed: Bytes::from(vec![0xa5; len]),
        }
    }

    /// The frame's bytes, as one buffer; checks on the way that encoding it with its tail left
    /// out gives the same bytes once the tail is put back.
    fn encoded<T: Serialize + SharedTail>(frame: &T) -> Bytes {
        let mut plain = Vec::new();
        encode_frame(frame, DEFAULT_MAX_FRAME, &mut plain).expect("encodes");
        let mut shared = Vec::new();
        let tail = encode_frame_sharing(frame, DEFAULT_MAX_FRAME, &mut shared).expect("encodes");
        let tail = tail.expect("a big sealed file message is left out as the tail");
        shared.extend_from_slice(tail.as_bytes().expect("bytes"));
        assert_eq!(shared, plain, "the tail is exactly the frame's end");
        Bytes::from(plain)
    }

    fn within(part: &Bytes, source: &Bytes) -> bool {
        let start = source.as_ptr() as usize;
        let at = part.as_ptr() as usize;
        at >= start && at + part.len() <= start + source.len()
    }

    #[test]
    fn a_relayed_file_message_is_read_in_place_on_both_sides_of_the_server() {
        let up = ClientFrame::RelayFile {
            to: UserName::new("bob").unwrap(),
            message: sealed_chunk(32 * 1024),
        };
        let source = encoded(&up);
        let payload = &source[4..];
        let parsed = ClientFrame::parse_in(payload, &source).expect("parses");
        assert_eq!(parsed, up);
        let ClientFrame::RelayFile { message, .. } = &parsed else {
            unreachable!()
        };
        assert!(within(&message.sealed, &source), "shared, not copied");

        let down = ServerFrame::RelayedFile {
            from: UserName::new("alice").unwrap(),
            key: PublicKey([3; 32]),
            message: sealed_chunk(32 * 1024),
        };
        let source = encoded(&down);
        let parsed = ServerFrame::parse_in(&source[4..], &source).expect("parses");
        assert_eq!(parsed, down);
        let ServerFrame::RelayedFile { message, .. } = &parsed else {
            unreachable!()
        };
        assert!(within(&message.sealed, &source), "shared, not copied");
    }

    #[test]
    fn other_frames_and_malformed_ones_take_the_ordinary_decode() {
        let ping = {
            let mut bytes = Vec::new();
            encode_frame(&ClientFrame::Ping, DEFAULT_MAX_FRAME, &mut bytes).unwrap();
            Bytes::from(bytes)
        };
        assert_eq!(
            ClientFrame::parse_in(&ping[4..], &ping),
            Ok(ClientFrame::Ping)
        );
        let up = ClientFrame::RelayFile {
            to: UserName::new("bob").unwrap(),
            message: sealed_chunk(100),
        };
        let mut bytes = Vec::new();
        encode_frame(&up, DEFAULT_MAX_FRAME, &mut bytes).unwrap();
        // A byte too many after the sealed bytes: neither decode accepts it.
        bytes.push(0);
        let bytes = Bytes::from(bytes);
        assert_eq!(
            ClientFrame::parse_in(&bytes[4..], &bytes),
            Err(DecodeError::Malformed)
        );
        // Truncated inside the sealed bytes.
        let short = bytes.slice(..bytes.len() - 10);
        assert_eq!(
            ClientFrame::parse_in(&short[4..], &short),
            Err(DecodeError::Malformed)
        );
    }
}
