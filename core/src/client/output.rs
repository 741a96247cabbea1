//! What the client core asks of its host, and what it tells the user.

use super::LinkId;
use crate::delivery::Via;
use crate::secure::{HandshakeError, PublicKey, RecordError};
use crate::transfer::Direction;
use crate::wire::{
    ErrorCode, FileName, KickReason, LoginRefusal, MessageId, TransferId, Undeliverable, UserName,
};
use bytes::Bytes;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

/// Where a [`Transmit`](crate::Transmit) goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Destination {
    Server,
    Peer(LinkId),
}

/// IO the host performs. Every `ConnectServer` and `Dial` must be answered by exactly one
/// success or failure input, in bounded time (the host owns connect timeouts).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
#[must_use]
pub enum Action {
    /// Connect to the server; answer with `handle_server_connected` or
    /// `handle_server_connect_failed`.
    ConnectServer,
    /// Close the server connection once the transmits already polled for it are written.
    CloseServer,
    /// Open a TCP connection to `peer` at `addr`, pick a [`LinkId`] for it and answer with
    /// `handle_dialed`, or `handle_dial_failed`.
    Dial { peer: UserName, addr: SocketAddr },
    /// Close a peer link once the transmits already polled for it are written.
    CloseLink { link: LinkId },
    /// Read `len` bytes at `offset` of the file offered as `id`; answer with
    /// `handle_file_read` (fewer bytes only at the end of the file) or
    /// `handle_file_read_failed`, in the order the reads were asked for.
    ///
    /// `direct`: the chunks are to go over a direct channel, so the host may answer with a
    /// span of the file instead (`handle_file_payload`) for the driver to send from the file
    /// itself. Through the relay it should read the bytes: whoever first reads a span's
    /// bytes off a socket pays for bringing the file's pages in, and that should not be the
    /// server everyone shares.
    ReadFile {
        id: TransferId,
        offset: u64,
        len: usize,
        direct: bool,
    },
    /// Write `data` at `offset` of the file `from` is sending as `id` (to a temporary name);
    /// answer with `handle_file_written` or `handle_file_write_failed`. Writes come in order.
    WriteFile {
        from: UserName,
        id: TransferId,
        offset: u64,
        data: Bytes,
    },
    /// Every byte is written: check the file against the offered hash, and only then give
    /// it its real name; answer with `handle_file_verified`.
    VerifyFile { from: UserName, id: TransferId },
}

/// The way messages to a peer go now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    /// Over an authenticated direct channel.
    Direct,
    /// Through the server (or waiting for it, while it is unreachable).
    Relay,
    /// Relay, while a direct channel is being set up.
    Connecting,
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Route::Direct => "direct",
            Route::Relay => "relay",
            Route::Connecting => "connecting",
        })
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Via::Direct => "direct",
            Via::Relay => "relay",
        })
    }
}

/// Why a route changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RouteReason {
    Dialing,
    ChannelUp,
    DialFailed,
    ChannelLost(LinkError),
    PeerOffline,
}

impl fmt::Display for RouteReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteReason::Dialing => f.write_str("dialling the peer"),
            RouteReason::ChannelUp => f.write_str("direct channel authenticated"),
            RouteReason::DialFailed => f.write_str("could not reach the peer directly"),
            RouteReason::ChannelLost(error) => write!(f, "direct channel lost: {error}"),
            RouteReason::PeerOffline => f.write_str("peer went offline"),
        }
    }
}

/// Why a peer link ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LinkError {
    Decode(ErrorCode),
    UnsupportedVersion {
        theirs: u16,
    },
    /// The peer could not prove it holds the secret the server gave this pair.
    SetupFailed,
    /// No introduction for the claimed peer arrived before the setup deadline.
    UnknownPeer,
    SetupTimeout,
    Idle,
    SlowConsumer,
    UnexpectedFrame,
    TextTooLong,
    /// The peer closed the connection (or said goodbye).
    Closed,
    /// The peer reported an error.
    Remote(ErrorCode),
    /// A second channel to the same peer won the tie-break.
    Replaced,
    TooManyLinks,
    /// The encrypted channel could not be set up: the peer could not prove the key the
    /// server introduced it with, or sent a garbled, replayed or forged handshake.
    Handshake(HandshakeError),
    /// The peer proved a key other than the one the server introduced for the user it
    /// claims to be.
    WrongKey,
    /// A record failed authentication: the channel was tampered with.
    Record(RecordError),
    /// This client turned direct channels off ([`Client::set_direct_channels`]).
    ///
    /// [`Client::set_direct_channels`]: super::Client::set_direct_channels
    TurnedOff,
}

impl LinkError {
    /// The code the far side is told, if it should be told anything.
    pub fn code(self) -> Option<ErrorCode> {
        Some(match self {
            LinkError::Decode(code) => code,
            LinkError::UnsupportedVersion { .. } => ErrorCode::UnsupportedVersion,
            LinkError::SetupFailed => ErrorCode::SetupFailed,
            LinkError::UnknownPeer => ErrorCode::UnknownPeer,
            LinkError::SetupTimeout => ErrorCode::HelloTimeout,
            LinkError::Idle => ErrorCode::Idle,
            LinkError::SlowConsumer => return None,
            LinkError::UnexpectedFrame => ErrorCode::UnexpectedFrame,
            LinkError::TextTooLong => ErrorCode::TextTooLong,
            LinkError::TooManyLinks => ErrorCode::TooManyConnections,
            // Nothing can be said on a channel that was never set up or is broken.
            LinkError::Handshake(_) | LinkError::WrongKey | LinkError::Record(_) => return None,
            LinkError::Closed | LinkError::Remote(_) | LinkError::Replaced => return None,
            // Like a firewall closing the port: the peer only sees the connection end.
            LinkError::TurnedOff => return None,
        })
    }
}

impl fmt::Display for LinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkError::Decode(code) => write!(f, "bad data from peer: {code}"),
            LinkError::UnsupportedVersion { theirs } => write!(f, "peer speaks protocol {theirs}"),
            LinkError::SetupFailed => f.write_str("peer failed authentication"),
            LinkError::UnknownPeer => f.write_str("peer was never introduced by the server"),
            LinkError::SetupTimeout => f.write_str("setup took too long"),
            LinkError::Idle => f.write_str("no heartbeat"),
            LinkError::SlowConsumer => f.write_str("peer not reading"),
            LinkError::UnexpectedFrame => f.write_str("peer broke protocol"),
            LinkError::TextTooLong => f.write_str("peer sent an oversized message"),
            LinkError::Closed => f.write_str("closed by peer"),
            LinkError::Remote(code) => write!(f, "peer reported: {code}"),
            LinkError::Replaced => f.write_str("replaced by another channel"),
            LinkError::TooManyLinks => f.write_str("too many peer links"),
            LinkError::Handshake(error) => write!(f, "encrypted channel setup failed: {error}"),
            LinkError::WrongKey => {
                f.write_str("peer holds a key other than the one the server introduced")
            }
            LinkError::Record(error) => error.fmt(f),
            LinkError::TurnedOff => f.write_str("direct channels turned off"),
        }
    }
}

impl std::error::Error for LinkError {}

/// Why the server connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerLinkError {
    ConnectFailed,
    Closed,
    Idle,
    LoginTimeout,
    Decode(ErrorCode),
    UnsupportedVersion {
        theirs: u16,
    },
    UnexpectedFrame,
    /// The server reported an error.
    Remote(ErrorCode),
    ShuttingDown,
    SlowConsumer,
    /// A transient refusal (busy, rate-limited).
    Refused(LoginRefusal),
    /// The encrypted channel could not be set up (a garbled or forged handshake, or a
    /// server speaking another protocol version).
    Handshake(HandshakeError),
    /// A record from the server failed authentication.
    Record(RecordError),
}

impl fmt::Display for ServerLinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerLinkError::ConnectFailed => f.write_str("cannot connect to the server"),
            ServerLinkError::Closed => f.write_str("server closed the connection"),
            ServerLinkError::Idle => f.write_str("server silent"),
            ServerLinkError::LoginTimeout => f.write_str("server did not answer the login"),
            ServerLinkError::Decode(code) => write!(f, "bad data from server: {code}"),
            ServerLinkError::UnsupportedVersion { theirs } => {
                write!(f, "server speaks protocol {theirs}")
            }
            ServerLinkError::UnexpectedFrame => f.write_str("server broke protocol"),
            ServerLinkError::Remote(code) => write!(f, "server reported: {code}"),
            ServerLinkError::ShuttingDown => f.write_str("server is shutting down"),
            ServerLinkError::SlowConsumer => f.write_str("server not reading"),
            ServerLinkError::Refused(reason) => write!(f, "login refused: {reason}"),
            ServerLinkError::Handshake(error) => {
                write!(f, "encrypted channel setup failed: {error}")
            }
            ServerLinkError::Record(error) => write!(f, "from the server: {error}"),
        }
    }
}

impl std::error::Error for ServerLinkError {}

/// Why [`Client::send`](super::Client::send) refused a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    ToSelf,
    TextTooLong {
        len: usize,
        max: usize,
    },
    /// Too many unacknowledged messages to this recipient already.
    Backlog,
    /// Logged out, kicked or refused: this client sends nothing more.
    Stopped,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::ToSelf => f.write_str("cannot send a message to yourself"),
            SendError::TextTooLong { len, max } => {
                write!(f, "message is {len} bytes, the limit is {max}")
            }
            SendError::Backlog => f.write_str("too many undelivered messages to this user"),
            SendError::Stopped => f.write_str("not logged in any more"),
        }
    }
}

impl std::error::Error for SendError {}

/// Why a file transfer could not be started or changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileError {
    ToSelf,
    Stopped,
    /// A transfer with this id is still going on.
    DuplicateId,
    TooManyTransfers,
    UnknownTransfer,
    /// The transfer was already answered.
    NotOffered,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileError::ToSelf => "cannot send a file to yourself",
            FileError::Stopped => "not logged in any more",
            FileError::DuplicateId => "a transfer with this id is already going on",
            FileError::TooManyTransfers => "too many transfers at once",
            FileError::UnknownTransfer => "no such transfer",
            FileError::NotOffered => "that offer was already answered",
        })
    }
}

impl std::error::Error for FileError {}

/// Why a transfer ended without completing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileFailure {
    /// The receiver is offline (files are not stored on the server).
    PeerOffline,
    ReadFailed,
    WriteFailed,
    /// The sender went silent mid-transfer (gone, or no route to it) for longer than
    /// `ClientConfig::file_stall`; the bytes received so far are kept for a resume.
    Stalled,
    /// The sender stopped repeating its offer (gone, or no route to it) for longer than
    /// `ClientConfig::file_stall` before it was answered: it can no longer be accepted.
    OfferLapsed,
}

impl fmt::Display for FileFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileFailure::PeerOffline => "the receiver is offline",
            FileFailure::ReadFailed => "cannot read the file",
            FileFailure::WriteFailed => "cannot write the file",
            FileFailure::Stalled => "the sender went silent mid-transfer",
            FileFailure::OfferLapsed => "the sender went silent before the offer was answered",
        })
    }
}

/// Everything a chat UI shows. Drain with [`Client::poll_event`](super::Client::poll_event).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    LoggedIn {
        user: UserName,
    },
    /// The login was refused for good (wrong password, name taken…): the client stops.
    LoginFailed {
        reason: LoginRefusal,
    },
    /// The server connection is gone. The client connects again by itself after `retry_in`;
    /// `None` when [`ClientConfig::auto_reconnect`](super::ClientConfig::auto_reconnect) is
    /// off and the host decides when to call [`Client::reconnect`](super::Client::reconnect).
    ServerLost {
        /// What went wrong, for the user.
        error: ServerLinkError,
        /// When the client tries again by itself, if it does.
        retry_in: Option<Duration>,
    },
    /// The server ended this session; the client stops.
    Kicked {
        reason: KickReason,
    },
    Presence {
        user: UserName,
        online: bool,
    },
    /// The server's whole online list has arrived after a login: every `Presence` event it
    /// brings came before this one, so a host can now show the list as complete (or start
    /// what waits for a peer to be online). Again after every re-login.
    PresenceComplete {
        /// Other users the list holds.
        online: usize,
    },
    Route {
        peer: UserName,
        route: Route,
        reason: RouteReason,
    },
    Message {
        from: UserName,
        id: MessageId,
        text: String,
        route: Via,
    },
    Delivered {
        to: UserName,
        id: MessageId,
        route: Via,
    },
    /// The recipient is offline; the server stored the message for their next login.
    Stored {
        to: UserName,
        id: MessageId,
    },
    /// The server gave up on a message: it will never be delivered.
    Undeliverable {
        to: UserName,
        id: MessageId,
        reason: Undeliverable,
    },
    /// A file transfer moved on; one variant per step (see [`FileEvent`]).
    File(FileEvent),
    /// A peer link was refused or dropped for misbehaving (not for ordinary loss).
    PeerRejected {
        claimed: Option<UserName>,
        error: LinkError,
    },
    LoggedOut,
    /// First contact with a server no key was pinned for: this is its key. The host pins it
    /// (stores it in the profile) so that later connections accept only this key.
    ServerKeyLearned {
        key: PublicKey,
    },
    /// The server presented a key other than the pinned one. Nothing was sent (not even the
    /// user name, let alone the password) and the client stops: someone may be impersonating
    /// the server, or its key was replaced, which only the user may accept.
    ServerKeyChanged {
        pinned: PublicKey,
        presented: PublicKey,
    },
    /// The server vouched for a key of `user` that this client had not seen before: the host
    /// remembers it, to notice a change later.
    PeerKeyLearned {
        user: UserName,
        key: PublicKey,
    },
    /// `user` now has a key other than the one remembered: a new profile or device, or someone
    /// impersonating them. The new key is used from now on (the server vouches for it); the
    /// user should compare fingerprints (`verify`) before trusting it.
    PeerKeyChanged {
        user: UserName,
        old: PublicKey,
        new: PublicKey,
    },
}

/// How one file transfer moves on, in either direction. Kept apart from [`Event`] so a
/// chat-only host can ignore every one of them with a single `Event::File(_)` arm.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileEvent {
    /// `from` offers a file; answer with `accept_file` or `decline_file`.
    Offered {
        from: UserName,
        id: TransferId,
        name: FileName,
        size: u64,
        hash: [u8; 32],
    },
    Accepted {
        to: UserName,
        id: TransferId,
        offset: u64,
    },
    Declined {
        to: UserName,
        id: TransferId,
    },
    /// The peer cancelled.
    Cancelled {
        peer: UserName,
        id: TransferId,
        direction: Direction,
    },
    /// `bytes` of `size` are through (accepted by the receiver, or written here).
    Progress {
        peer: UserName,
        id: TransferId,
        direction: Direction,
        bytes: u64,
        size: u64,
        route: Via,
    },
    /// The transfer is complete; `verified` is false when the content hash did not match.
    Done {
        peer: UserName,
        id: TransferId,
        direction: Direction,
        verified: bool,
    },
    Failed {
        peer: UserName,
        id: TransferId,
        direction: Direction,
        failure: FileFailure,
    },
}
