//! The client↔server family.

use super::file::{FileMessage, TransferId};
use super::shared::{Ack, Chat, ErrorCode, KickReason, LoginRefusal, Undeliverable, UserName};
use crate::codec::{parse, DecodeError, Frame, SharedTail};
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
        password: String,
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
        /// The message.
        chat: Chat,
    },
    /// An acknowledgement for messages that arrived from `to` via the server.
    RelayAck {
        /// Whose messages are acknowledged.
        to: UserName,
        /// The acknowledgement.
        ack: Ack,
    },
    /// A heartbeat, sent only when nothing else was sent for an interval.
    Ping,
    /// A file transfer message for `to`, forwarded as it is (never stored).
    RelayFile {
        /// The recipient.
        to: UserName,
        /// The file message.
        message: FileMessage,
    },
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
    },
    /// A user came online: its introduction.
    PeerOnline(PeerIntro),
    /// A user went offline.
    PeerOffline {
        /// Who.
        user: UserName,
    },
    /// A chat message relayed (or stored earlier) for this client.
    Relayed {
        /// The sender.
        from: UserName,
        /// The message.
        chat: Chat,
    },
    /// An acknowledgement of messages this client relayed to `from`.
    RelayedAck {
        /// Who acknowledged.
        from: UserName,
        /// The acknowledgement.
        ack: Ack,
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
        /// The file message.
        message: FileMessage,
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
}

/// `RelayFile`'s and `RelayedFile`'s variant indices, as postcard writes them (a varint before
/// the fields), for the chunk fast path below; the tests check them against the encoding.
const RELAY_FILE: u32 = 6;
const RELAYED_FILE: u32 = 14;

/// A chunk is the frame's end: its data goes to the server from where the host read it.
impl SharedTail for ClientFrame {
    fn shared_tail(&self) -> Option<&Payload> {
        match self {
            ClientFrame::RelayFile { message, .. } => message.shared_data(),
            _ => None,
        }
    }
}

/// A relayed chunk is the frame's end: its data goes to the recipient from the buffer it was
/// read into from the sender, never copied by the server.
impl SharedTail for ServerFrame {
    fn shared_tail(&self) -> Option<&Payload> {
        match self {
            ServerFrame::RelayedFile { message, .. } => message.shared_data(),
            _ => None,
        }
    }
}

/// The relay takes a chunk's data as a slice of the buffer it read from the sender, and
/// writes it to the recipient from there (see the `SharedTail` of `ServerFrame`).
impl Frame for ClientFrame {
    fn parse_in(payload: &[u8], source: &Bytes) -> Result<Self, DecodeError> {
        match relayed_chunk_in(RELAY_FILE, payload, source) {
            Some((to, message)) => Ok(ClientFrame::RelayFile { to, message }),
            None => parse(payload),
        }
    }
}

/// A relayed transfer's chunks go to the disk from the read buffer they arrived in.
impl Frame for ServerFrame {
    fn parse_in(payload: &[u8], source: &Bytes) -> Result<Self, DecodeError> {
        match relayed_chunk_in(RELAYED_FILE, payload, source) {
            Some((from, message)) => Ok(ServerFrame::RelayedFile { from, message }),
            None => parse(payload),
        }
    }
}

/// `payload` as a frame of variant `tag` holding a user name and a chunk whose data is shared
/// from `source`, if it is one.
fn relayed_chunk_in(tag: u32, payload: &[u8], source: &Bytes) -> Option<(UserName, FileMessage)> {
    let (found, rest) = postcard::take_from_bytes::<u32>(payload).ok()?;
    if found != tag {
        return None;
    }
    let (user, rest) = postcard::take_from_bytes::<UserName>(rest).ok()?;
    Some((user, FileMessage::chunk_in(rest, source)?))
}
