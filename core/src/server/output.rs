//! What the server core asks of its host, and what it reports.

use super::groups::StoredGroupMessage;
use super::ConnId;
use crate::password::Password;
use crate::secure::{HandshakeError, PublicKey, RecordError};
use crate::wire::{
    ErrorCode, GroupId, GroupInfo, KickReason, LoginRefusal, SealedChat, Undeliverable, UserName,
};
use std::net::SocketAddr;
use std::sync::Arc;

/// Work the host performs for the core. Drain with [`Server::poll_action`](super::Server::poll_action).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
#[must_use]
pub enum Action {
    /// Close the socket once the transmits already polled for it are written.
    Close {
        /// The connection to close.
        conn: ConnId,
    },
    /// Check the credentials (or create the account when `register`), then call
    /// [`Server::handle_login_checked`](super::Server::handle_login_checked). `key` is the
    /// static key the client proved it holds in the handshake: once the password is right,
    /// the host binds it to the account (it is what peers will be told this user is), which
    /// enrols it for key logins; a key the owner revoked is refused (`KeyRevoked`) even
    /// with the right password. This is the expensive check (a password hash): run it off
    /// the core's thread, on a bounded pool.
    CheckLogin {
        /// The connection asking; name it in the answer.
        conn: ConnId,
        /// The account.
        user: UserName,
        /// The password to check (or to set, with `register`). Never log it.
        password: Password,
        /// Create the account instead of checking it.
        register: bool,
        /// The key the client proved in the handshake, to bind to the account.
        key: PublicKey,
    },
    /// A key login: is `key` bound to `user` and not revoked? Answer with
    /// [`Server::handle_login_checked`](super::Server::handle_login_checked):
    /// `Err(KeyNotEnrolled)` for a key not bound to that account (or no such account: the
    /// two are not told apart), `Err(KeyRevoked)` for one the owner revoked. No password is
    /// involved: this is an indexed lookup, so the host may answer it at once, without
    /// queueing it behind password checks.
    CheckKeyLogin {
        /// The connection asking; name it in the answer.
        conn: ConnId,
        /// The account.
        user: UserName,
        /// The key the client proved in the handshake.
        key: PublicKey,
    },
    /// Persist a message for an offline recipient, then answer with
    /// [`Server::handle_offline_stored`](super::Server::handle_offline_stored).
    StoreOffline {
        /// The recipient, offline now.
        to: UserName,
        /// The message, to hand back in `handle_offline_loaded` at the recipient's next login.
        message: OfflineChat,
    },
    /// Look up the key `user` logged in with last, then call
    /// [`Server::handle_key_loaded`](super::Server::handle_key_loaded).
    LoadKey {
        /// Who asked.
        conn: ConnId,
        /// Whose key.
        user: UserName,
    },
    /// Load what is stored for `user`, then call
    /// [`Server::handle_offline_loaded`](super::Server::handle_offline_loaded).
    LoadOffline {
        /// Who just logged in.
        user: UserName,
    },
    /// Save a group as it is after a change (create it, or replace what was saved), and raise
    /// the highest group id saved to its id in the same transaction (handed back at start in
    /// [`SavedGroups`](super::SavedGroups), so that the id is never given to another group);
    /// then answer with [`Server::handle_group_saved`](super::Server::handle_group_saved).
    /// Refuse with `GroupError::NoSuchUser` if one of `joined` has no account. With no members
    /// the group ends: store no more messages for it, but keep those stored for recipients who
    /// have not acknowledged them (they are served as any backlog), and keep the group's
    /// record, with no members, until the last of them is acknowledged.
    SaveGroup {
        /// The group after the change.
        info: GroupInfo,
        /// Who joins with this change: their accounts must exist.
        joined: Vec<UserName>,
    },
    /// Store a group message for each of its recipients (with each one's envelope), and the
    /// group's `next_order` and the sender's last (epoch, seq) with it, in one transaction;
    /// then answer with [`Server::handle_group_stored`](super::Server::handle_group_stored),
    /// `stored` false if it could not or the group has ended.
    StoreGroupMessage {
        /// The message.
        message: Arc<StoredGroupMessage>,
        /// The place the group's next message gets.
        next_order: u64,
    },
    /// Delete a stored group message for every recipient (it was stored after an earlier
    /// message of its sender was lost, and will be sent again).
    DeleteGroupMessage {
        /// The group.
        group: GroupId,
        /// Its place.
        order: u64,
    },
    /// Load what is stored for `user` in each group after the place given (after 0 for a group
    /// not listed), in order per group, at most `limit` messages, each with the user's
    /// envelope only; then call
    /// [`Server::handle_group_backlog_loaded`](super::Server::handle_group_backlog_loaded).
    LoadGroupBacklog {
        /// Whose.
        user: UserName,
        /// Per group, the last place already sent.
        after: Vec<(GroupId, u64)>,
        /// The page size.
        limit: usize,
    },
    /// `user` has everything of `group` up to `through`: delete its copies.
    AckGroup {
        /// Who acknowledged.
        user: UserName,
        /// The group.
        group: GroupId,
        /// Through which place.
        through: u64,
    },
    /// The recipient acknowledged: delete what it covers.
    DeleteOffline {
        /// The recipient whose store it is.
        to: UserName,
        /// The sender of the acknowledged messages.
        from: UserName,
        /// Their epoch.
        epoch: u64,
        /// Every stored message of that epoch up to this sequence number is delivered.
        through: u64,
    },
}

/// A chat message kept for an offline recipient: sealed by its sender, so the store holds no
/// text, with the sender's key (the recipient may never have been introduced to the sender).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfflineChat {
    /// The sender, told `Stored` once the store has it.
    pub from: UserName,
    /// The sender's key, which the recipient opens the message with.
    pub key: PublicKey,
    /// The message.
    pub chat: SealedChat,
}

/// What became of a message the host was asked to store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreOutcome {
    /// The message is safe: the sender is told it will be delivered later.
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
    /// A session started.
    LoggedIn {
        /// Its connection.
        conn: ConnId,
        /// Who.
        user: UserName,
        /// Where peers will dial them.
        endpoint: SocketAddr,
    },
    /// A login was refused (the client was told why).
    LoginRefused {
        /// Its connection.
        conn: ConnId,
        /// Who tried.
        user: UserName,
        /// Why.
        reason: LoginRefusal,
    },
    /// A user who just logged in was given the online users it may dial (endpoints and keys):
    /// everyone online on a small server, else the users it watches.
    Introduced {
        /// Who logged in.
        user: UserName,
        /// How many online users it was given.
        listed: usize,
        /// It hears about every login and logout (see `presence_everyone_below`).
        everyone: bool,
    },
    /// The server filled up (`presence_everyone_until`): a session that heard about everyone
    /// now hears only of whom it watches, and was given that list afresh.
    EveryoneEnded {
        /// Whose session.
        user: UserName,
        /// How many online users its new list holds.
        listed: usize,
    },
    /// A group was created or changed (saved and in force), or ended (no members).
    GroupSaved {
        /// The group.
        group: GroupId,
        /// Its name.
        name: String,
        /// How many members it has now.
        members: usize,
        /// Who changed it.
        by: UserName,
    },
    /// A session ended.
    LoggedOut {
        /// Whose.
        user: UserName,
        /// Why.
        reason: LogoutReason,
    },
    /// A connection was closed by the core because of what it sent (or did not send).
    ConnectionFailed {
        /// The connection.
        conn: ConnId,
        /// Why.
        error: ConnError,
    },
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogoutReason {
    /// The client logged out, or the server ended the session on purpose.
    Requested,
    /// The socket closed without a goodbye.
    Disconnected,
    /// The server kicked the user, telling the client why.
    Kicked(KickReason),
    /// The core closed the connection for what it sent (or did not send).
    Failed(ConnError),
}

/// Why the core closed one connection. The connection's peer is told the matching
/// [`ErrorCode`] when it can still be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnError {
    /// The client's bytes did not decode.
    Decode(ErrorCode),
    /// The client speaks another protocol version.
    UnsupportedVersion {
        /// The version it speaks.
        theirs: u16,
    },
    /// The client sent a frame not allowed at this point.
    UnexpectedFrame,
    /// Hello and login did not finish within `login_timeout`.
    LoginTimeout,
    /// The client sent nothing for longer than the heartbeat allows.
    Idle,
    /// The client reads too slowly: its output bound filled.
    SlowConsumer,
    /// A chat message was over `max_text_len`.
    TextTooLong,
    /// A connection limit (in all, or per address) was reached.
    TooManyConnections,
    /// The encrypted channel could not be set up: a garbled, truncated, replayed or forged
    /// handshake message (or one for another protocol version). Nothing can be said back.
    Handshake(HandshakeError),
    /// A record failed authentication (forged, replayed, damaged): the channel is broken.
    Record(RecordError),
}

impl ConnError {
    /// What the client is told in its error frame.
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
    /// Connections open now, logged in or not.
    pub connections: usize,
    /// Users online now.
    pub online: usize,
    /// Chat messages forwarded to an online recipient.
    pub relayed: u64,
    /// Chat messages stored for an offline recipient.
    pub stored: u64,
    /// Text bytes of chat messages that went through the server either way.
    pub relayed_text_bytes: u64,
    /// File data bytes forwarded.
    pub relayed_file_bytes: u64,
    /// File data bytes dropped for exceeding a user's relay budget (the sender resends them).
    pub throttled_file_bytes: u64,
    /// Groups that exist now.
    pub groups: usize,
    /// Memberships now (members summed over groups).
    pub group_members: usize,
    /// Group messages taken (given a place in their group's order).
    pub group_taken: u64,
    /// Copies of group messages sent to members.
    pub group_delivered: u64,
    /// Frames queued for clients, of every kind.
    pub frames_sent: u64,
    /// Presence frames (online lists and batches of changes) queued for clients.
    pub presence_frames: u64,
    /// Users listed in those frames, summed: what presence costs in entries.
    pub presence_entries: u64,
}
