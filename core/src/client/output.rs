//! What the client core asks of its host, and what it tells the user.

use super::LinkId;
use crate::delivery::Via;
use crate::secure::{Fingerprint, HandshakeError, PublicKey, RecordError};
use crate::transfer::Direction;
use crate::wire::{
    ClosingReason, ErrorCode, FileName, KickReason, LoginRefusal, MessageId, TransferId,
    Undeliverable, UserName,
};
use bytes::Bytes;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

/// Where a [`Transmit`](crate::Transmit) goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Destination {
    /// The client's one server connection (whichever socket is current).
    Server,
    /// A peer link, by the id the host picked for it.
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
    /// `handle_dialed`, or `handle_dial_failed`. Never asked for while direct channels are off.
    Dial {
        /// Who the link is for: `handle_dialed` names it again.
        peer: UserName,
        /// Where the server's introduction says the peer listens.
        addr: SocketAddr,
    },
    /// Close a peer link once the transmits already polled for it are written.
    CloseLink {
        /// The link to close.
        link: LinkId,
    },
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
        /// The transfer, as the host's offer named it.
        id: TransferId,
        /// Where in the file the read starts.
        offset: u64,
        /// How many bytes to read (fewer only at the end of the file).
        len: usize,
        /// The chunks go over a direct channel, so a file span may answer instead of bytes.
        direct: bool,
    },
    /// Write `data` at `offset` of the file `from` is sending as `id` (to a temporary name);
    /// answer with `handle_file_written` or `handle_file_write_failed`. Writes come in order.
    WriteFile {
        /// The sender, which with `id` names the transfer.
        from: UserName,
        /// The transfer, unique per sender.
        id: TransferId,
        /// Where in the file the data goes; writes come in order, without gaps.
        offset: u64,
        /// The chunk's bytes, a slice of what the transport read (no copy).
        data: Bytes,
    },
    /// Every byte is written: check the file against the offered hash, and only then give
    /// it its real name; answer with `handle_file_verified`.
    VerifyFile {
        /// The sender, which with `id` names the transfer.
        from: UserName,
        /// The transfer.
        id: TransferId,
    },
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
    /// A dial to the peer started, for the reason given: the route is `Connecting`, messages
    /// still go by relay.
    Dialing(Opening),
    /// A direct channel was authenticated, opened for the reason given: the route is `Direct`.
    ChannelUp(Opening),
    /// The dial or the channel's setup failed: back to `Relay`, and a redial after a backoff.
    DialFailed,
    /// The direct channel ended; what it carried unacknowledged goes again by relay.
    ChannelLost(LinkError),
    /// The direct channel carried nothing but heartbeats for `channel_idle` and was closed in
    /// order (by either side); it opens again when there is something to send.
    Idle,
    /// The direct channel was closed in order to make room for a channel to another peer
    /// (by either side: each holds at most `max_direct_channels`).
    Evicted,
    /// The server says the peer is offline.
    PeerOffline,
}

/// Why a direct channel was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Opening {
    /// The online peers fit under `max_direct_channels`, so every one gets a channel (as at
    /// login on a small LAN): of a pair, the smaller name dials.
    WithinCap,
    /// This side has something for the peer: a message or file to send, something received
    /// from it through the relay, or the user opened the conversation.
    OnDemand,
    /// The peer dialled this side.
    ByPeer,
}

impl fmt::Display for Opening {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Opening::WithinCap => "within the channel cap",
            Opening::OnDemand => "on demand",
            Opening::ByPeer => "the peer dialled",
        })
    }
}

impl fmt::Display for RouteReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteReason::Dialing(why) => write!(f, "dialling the peer ({why})"),
            RouteReason::ChannelUp(why) => write!(f, "direct channel authenticated ({why})"),
            RouteReason::DialFailed => f.write_str("could not reach the peer directly"),
            RouteReason::ChannelLost(error) => write!(f, "direct channel lost: {error}"),
            RouteReason::Idle => f.write_str("direct channel closed: idle"),
            RouteReason::Evicted => {
                f.write_str("direct channel closed to make room for another peer")
            }
            RouteReason::PeerOffline => f.write_str("peer went offline"),
        }
    }
}

/// Why a peer link ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LinkError {
    /// The peer's bytes did not decode.
    Decode(ErrorCode),
    /// The peer speaks another protocol version.
    UnsupportedVersion {
        /// The version it speaks.
        theirs: u16,
    },
    /// The peer could not prove it holds the secret the server gave this pair.
    SetupFailed,
    /// No introduction for the claimed peer arrived before the setup deadline.
    UnknownPeer,
    /// The peer took longer than `setup_timeout` to authenticate.
    SetupTimeout,
    /// The peer sent nothing for longer than the heartbeat allows.
    Idle,
    /// The peer reads too slowly: its output bound filled.
    SlowConsumer,
    /// The peer sent a frame that makes no sense at this point.
    UnexpectedFrame,
    /// The peer sent a chat message longer than `max_text_len`.
    TextTooLong,
    /// The peer closed the connection (or said goodbye).
    Closed,
    /// The peer reported an error.
    Remote(ErrorCode),
    /// A second channel to the same peer won the tie-break.
    Replaced,
    /// More links than `max_links` were open.
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
    /// Closed in order by either side, for the reason given: not a failure.
    Orderly(ClosingReason),
    /// Refused at once: this client holds `max_direct_channels` already and every one of
    /// them is busy (carrying unacknowledged messages or a file).
    AtCapacity,
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
            LinkError::TurnedOff | LinkError::AtCapacity => return None,
            // The `Closing` frame already said why.
            LinkError::Orderly(_) => return None,
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
            LinkError::Orderly(ClosingReason::Idle) => f.write_str("closed: idle"),
            LinkError::Orderly(_) => f.write_str("closed to make room for another peer"),
            LinkError::AtCapacity => f.write_str("every direct channel is busy"),
        }
    }
}

impl std::error::Error for LinkError {}

/// Why the server connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerLinkError {
    /// The host could not connect.
    ConnectFailed,
    /// The server closed the connection.
    Closed,
    /// The server sent nothing for longer than the heartbeat allows.
    Idle,
    /// The server did not answer hello and login within `login_timeout`.
    LoginTimeout,
    /// The server's bytes did not decode.
    Decode(ErrorCode),
    /// The server speaks another protocol version.
    UnsupportedVersion {
        /// The version it speaks.
        theirs: u16,
    },
    /// The server sent a frame that makes no sense at this point.
    UnexpectedFrame,
    /// The server reported an error.
    Remote(ErrorCode),
    /// The server is going down; it may come back.
    ShuttingDown,
    /// The server reads too slowly: the output bound filled.
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
    /// A message to oneself: nobody would acknowledge it.
    ToSelf,
    /// Longer than `max_text_len`, which the peer and the server refuse too.
    TextTooLong {
        /// The message's length in bytes.
        len: usize,
        /// The limit in bytes.
        max: usize,
    },
    /// Too many unacknowledged messages to this recipient already.
    Backlog,
    /// Logged out, kicked or refused: this client sends nothing more.
    Stopped,
    /// Not a member of that group (or no such group).
    NotInGroup,
    /// That needs the server, which is not connected now.
    ServerUnavailable,
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
            SendError::NotInGroup => f.write_str("you are not in that group"),
            SendError::ServerUnavailable => f.write_str("not connected to the server"),
        }
    }
}

impl std::error::Error for SendError {}

/// Why a file transfer could not be started or changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileError {
    /// A file to oneself: nobody would receive it.
    ToSelf,
    /// Logged out, kicked or refused: this client transfers nothing more.
    Stopped,
    /// A transfer with this id is still going on.
    DuplicateId,
    /// More than `max_transfers` are active in this direction.
    TooManyTransfers,
    /// No transfer with this peer and id is known (or it was forgotten).
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
    /// The host could not read the file: the transfer is cancelled.
    ReadFailed,
    /// The host could not write the file: the transfer is cancelled, the partial file kept.
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
    /// The server accepted the login; the online list follows (see `PresenceComplete`).
    LoggedIn {
        /// Who is logged in.
        user: UserName,
    },
    /// A password login succeeded, so the server bound this profile's key to the account:
    /// from now on the client logs in with the key alone (its reconnects already do), and
    /// the host can remember that the profile needs no password. Comes just before
    /// `LoggedIn`.
    Enrolled {
        /// The account the key is enrolled for.
        user: UserName,
    },
    /// The login was refused for good (wrong password, name taken, a key not enrolled or
    /// revoked…): the client stops. After `KeyNotEnrolled` the host may get the password and
    /// call [`Client::log_in_with_password`](super::Client::log_in_with_password).
    LoginFailed {
        /// Why, as the server said it.
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
        /// Why, as the server said it.
        reason: KickReason,
    },
    /// Something about a group: a change, a message, delivery progress, a refusal.
    Group(super::GroupEvent),
    /// A user came online or went offline, as the server says.
    Presence {
        /// Who.
        user: UserName,
        /// Online now.
        online: bool,
    },
    /// The server no longer tells this client whether `user` is online: it filled up, and
    /// this client does not watch `user` (it never wrote to, heard from or opened them). A
    /// host stops showing `user` as online; it is not a logout. Watching `user` again
    /// ([`Client::watch`](crate::Client::watch)) brings their presence back.
    PresenceUnknown {
        /// Who.
        user: UserName,
    },
    /// The server's whole online list has arrived after a login: every `Presence` event it
    /// brings came before this one, so a host can now show the list as complete (or start
    /// what waits for a peer to be online). Again after every re-login.
    PresenceComplete {
        /// Other users the list holds.
        online: usize,
        /// The list holds everyone online and every later change will be told (a small
        /// server); else it holds the watched users only (see [`Client::watch`]).
        ///
        /// [`Client::watch`]: super::Client::watch
        everyone: bool,
    },
    /// The route to a peer changed.
    Route {
        /// The peer.
        peer: UserName,
        /// The route messages to it take from now on.
        route: Route,
        /// Why it changed.
        reason: RouteReason,
    },
    /// A chat message, released in order and exactly once per sender.
    Message {
        /// The sender.
        from: UserName,
        /// The sender's id for it, as `Delivered` reports it on the sender's side.
        id: MessageId,
        /// What the sender wrote.
        text: String,
        /// How it arrived.
        route: Via,
    },
    /// The recipient acknowledged a message: it will not be sent again.
    Delivered {
        /// The recipient.
        to: UserName,
        /// The id `send` returned.
        id: MessageId,
        /// How it went: `Relay` also for a message the server stored and delivered later.
        route: Via,
    },
    /// The recipient is offline; the server stored the message for their next login.
    Stored {
        /// The recipient.
        to: UserName,
        /// The id `send` returned.
        id: MessageId,
    },
    /// The server gave up on a message: it will never be delivered.
    Undeliverable {
        /// The recipient.
        to: UserName,
        /// The id `send` returned.
        id: MessageId,
        /// Why the server gave up.
        reason: Undeliverable,
    },
    /// A file transfer moved on; one variant per step (see [`FileEvent`]).
    File(FileEvent),
    /// A peer link was refused or dropped for misbehaving (not for ordinary loss).
    PeerRejected {
        /// Who the link claimed to be with, if it got that far.
        claimed: Option<UserName>,
        /// What it did wrong.
        error: LinkError,
    },
    /// `logout` finished: the client stops.
    LoggedOut,
    /// First contact with a server no key was pinned for: this is its key. The host pins it
    /// (stores it in the profile) so that later connections accept only this key.
    ServerKeyLearned {
        /// The key to pin.
        key: PublicKey,
    },
    /// The server presented a key other than the pinned one. Nothing was sent (not even the
    /// user name, let alone the password) and the client stops: someone may be impersonating
    /// the server, or its key was replaced, which only the user may accept.
    ServerKeyChanged {
        /// The fingerprint this client trusts (pinned earlier, or given by the user).
        expected: Fingerprint,
        /// The key this server holds now.
        presented: PublicKey,
    },
    /// Something the relay delivered as `from`'s did not open: forged or altered on the way
    /// (by the server, or by whoever holds its key), or sealed to a key this profile does not
    /// hold. It was dropped; nothing of it reached the user.
    ForgedRelay {
        /// Who it claimed to come from.
        from: UserName,
    },
    /// Messages to `user` cannot be sealed yet: the account never logged in with a key. They
    /// wait here, unsent, until `user` is online (or this client logs in again and asks).
    AwaitingKey {
        /// The recipient.
        user: UserName,
    },
    /// The server vouched for a key of `user` that this client had not seen before: the host
    /// remembers it, to notice a change later.
    PeerKeyLearned {
        /// Whose key.
        user: UserName,
        /// The key to remember.
        key: PublicKey,
    },
    /// `user` now has a key other than the one remembered: a new profile or device, or someone
    /// impersonating them. The new key is used from now on (the server vouches for it); the
    /// user should compare fingerprints (`verify`) before trusting it.
    PeerKeyChanged {
        /// Whose key.
        user: UserName,
        /// The key remembered.
        old: PublicKey,
        /// The key the server vouches for now.
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
        /// The sender.
        from: UserName,
        /// The sender's id for the transfer: answer with it.
        id: TransferId,
        /// The file's name, already safe to use as a file name.
        name: FileName,
        /// Its size in bytes.
        size: u64,
        /// Its BLAKE3 hash, which the host checks the received file against.
        hash: [u8; 32],
    },
    /// The receiver accepted one of our offers.
    Accepted {
        /// The receiver.
        to: UserName,
        /// The transfer.
        id: TransferId,
        /// Where the receiver wants the data to start (what it already holds).
        offset: u64,
    },
    /// The receiver declined one of our offers.
    Declined {
        /// The receiver.
        to: UserName,
        /// The transfer.
        id: TransferId,
    },
    /// The peer cancelled.
    Cancelled {
        /// The other side.
        peer: UserName,
        /// The transfer.
        id: TransferId,
        /// Which way it was going.
        direction: Direction,
    },
    /// `bytes` of `size` are through (accepted by the receiver, or written here).
    Progress {
        /// The other side.
        peer: UserName,
        /// The transfer.
        id: TransferId,
        /// Which way it goes.
        direction: Direction,
        /// Bytes through so far.
        bytes: u64,
        /// The file's size.
        size: u64,
        /// The route the latest chunks took.
        route: Via,
    },
    /// The transfer is complete; `verified` is false when the content hash did not match.
    Done {
        /// The other side.
        peer: UserName,
        /// The transfer.
        id: TransferId,
        /// Which way it went.
        direction: Direction,
        /// The received file matched the offered hash.
        verified: bool,
    },
    /// The transfer ended without completing.
    Failed {
        /// The other side.
        peer: UserName,
        /// The transfer.
        id: TransferId,
        /// Which way it was going.
        direction: Direction,
        /// Why.
        failure: FileFailure,
    },
}
