//! What the server core asks of its host, and what it reports.

use super::ConnId;
use crate::secure::{HandshakeError, PublicKey, RecordError};
use crate::wire::{Chat, ErrorCode, KickReason, LoginRefusal, Undeliverable, UserName};
use std::net::SocketAddr;

/// Work the host performs for the core. Drain with [`Server::poll_action`](super::Server::poll_action).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
#[must_use]
pub enum Action {
    /// Close the socket once the transmits already polled for it are written.
    Close { conn: ConnId },
    /// Check the credentials (or create the account when `register`), then call
    /// [`Server::handle_login_checked`](super::Server::handle_login_checked). `key` is the
    /// static key the client proved it holds in the handshake: once the password is right,
    /// the host binds it to the account (it is what peers will be told this user is).
    CheckLogin {
        conn: ConnId,
        user: UserName,
        password: String,
        register: bool,
        key: PublicKey,
    },
    /// Persist a message for an offline recipient, then answer with
    /// [`Server::handle_offline_stored`](super::Server::handle_offline_stored).
    StoreOffline {
        to: UserName,
        from: UserName,
        chat: Chat,
    },
    /// Load what is stored for `user`, then call
    /// [`Server::handle_offline_loaded`](super::Server::handle_offline_loaded).
    LoadOffline { user: UserName },
    /// The recipient acknowledged: delete what it covers.
    DeleteOffline {
        to: UserName,
        from: UserName,
        epoch: u64,
        through: u64,
    },
}

/// What became of a message the host was asked to store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreOutcome {
    Stored,
    /// It can never be stored (no such account, recipient full): the sender gives up.
    Undeliverable(Undeliverable),
    /// Storage is failing right now: the sender is told nothing and tries again later.
    Failed,
}

/// Things worth logging. Drain with [`Server::poll_event`](super::Server::poll_event).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    LoggedIn {
        conn: ConnId,
        user: UserName,
        endpoint: SocketAddr,
    },
    LoginRefused {
        conn: ConnId,
        user: UserName,
        reason: LoginRefusal,
    },
    /// The server told `a` and `b` about each other (endpoints and keys) for a direct channel.
    Introduced { a: UserName, b: UserName },
    LoggedOut {
        user: UserName,
        reason: LogoutReason,
    },
    /// A connection was closed by the core because of what it sent (or did not send).
    ConnectionFailed { conn: ConnId, error: ConnError },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogoutReason {
    Requested,
    Disconnected,
    Kicked(KickReason),
    Failed(ConnError),
}

/// Why the core closed one connection. The connection's peer is told the matching
/// [`ErrorCode`] when it can still be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnError {
    Decode(ErrorCode),
    UnsupportedVersion {
        theirs: u16,
    },
    UnexpectedFrame,
    LoginTimeout,
    Idle,
    SlowConsumer,
    TextTooLong,
    TooManyConnections,
    /// The encrypted channel could not be set up: a garbled, truncated, replayed or forged
    /// handshake message (or one for another protocol version). Nothing can be said back.
    Handshake(HandshakeError),
    /// A record failed authentication (forged, replayed, damaged): the channel is broken.
    Record(RecordError),
}

impl ConnError {
    pub fn code(self) -> ErrorCode {
        match self {
            ConnError::Decode(code) => code,
            ConnError::UnsupportedVersion { .. } => ErrorCode::UnsupportedVersion,
            ConnError::UnexpectedFrame => ErrorCode::UnexpectedFrame,
            ConnError::LoginTimeout => ErrorCode::HelloTimeout,
            ConnError::Idle => ErrorCode::Idle,
            ConnError::SlowConsumer => ErrorCode::SlowConsumer,
            ConnError::TextTooLong => ErrorCode::TextTooLong,
            ConnError::TooManyConnections => ErrorCode::TooManyConnections,
            ConnError::Handshake(_) => ErrorCode::SetupFailed,
            ConnError::Record(_) => ErrorCode::Malformed,
        }
    }
}

impl std::fmt::Display for ConnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnError::UnsupportedVersion { theirs } => {
                write!(f, "unsupported protocol version {theirs}")
            }
            ConnError::Handshake(error) => write!(f, "encrypted channel setup failed: {error}"),
            ConnError::Record(error) => error.fmt(f),
            other => other.code().fmt(f),
        }
    }
}

impl std::error::Error for ConnError {}

/// Counters for monitoring and for tests that must prove what went through the server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub connections: usize,
    pub online: usize,
    /// Chat messages forwarded to an online recipient.
    pub relayed: u64,
    /// Chat messages stored for an offline recipient.
    pub stored: u64,
    /// Text bytes of chat messages that went through the server either way.
    pub relayed_text_bytes: u64,
    /// File data bytes forwarded, and dropped for exceeding a user's relay budget.
    pub relayed_file_bytes: u64,
    pub throttled_file_bytes: u64,
}
