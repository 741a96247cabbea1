//! Types used by both the client↔server and the peer↔peer families.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Longest user name accepted, in bytes.
pub const MAX_USER_NAME: usize = 32;

/// A validated account name: 1–32 ASCII letters, digits, `_`, `-` or `.`.
///
/// Validation also runs on deserialisation, so a name read off the wire is as trustworthy as one
/// built locally: it can be logged, used as a file name component or a map key without escaping.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct UserName(String);

// By hand rather than `into = "String"`, which would clone the name for every frame.
impl Serialize for UserName {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// Why a string is not a [`UserName`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum UserNameError {
    /// Names must not be empty.
    Empty,
    /// Longer than 32 bytes (`MAX_USER_NAME`).
    TooLong,
    /// Outside the allowed set, which keeps names safe in logs, paths and terminals.
    BadCharacter,
}

impl UserName {
    /// Checks `name`; the only way to make a `UserName`, so every one in the program is valid.
    pub fn new(name: impl Into<String>) -> Result<Self, UserNameError> {
        let name = name.into();
        if name.is_empty() {
            return Err(UserNameError::Empty);
        }
        if name.len() > MAX_USER_NAME {
            return Err(UserNameError::TooLong);
        }
        if !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        {
            return Err(UserNameError::BadCharacter);
        }
        Ok(UserName(name))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for UserName {
    type Error = UserNameError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        UserName::new(value)
    }
}

impl From<UserName> for String {
    fn from(value: UserName) -> Self {
        value.0
    }
}

impl fmt::Display for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl fmt::Display for UserNameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UserNameError::Empty => "user name is empty",
            UserNameError::TooLong => "user name is longer than 32 bytes",
            UserNameError::BadCharacter => "user name may only use ASCII letters, digits, _ - .",
        })
    }
}

impl std::error::Error for UserNameError {}

/// A chat message id, unique among the messages one client process sends.
///
/// Shown to users and reported in `delivered` events; the per-pair sequence number inside
/// [`Chat`] is what ordering and duplicate suppression use.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub struct MessageId(pub u64);

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// One chat message from a sender to a recipient, as it travels on either route.
///
/// `epoch` names the sender's process lifetime (drawn at random when its client core starts),
/// `seq` counts from 1 per (epoch, recipient). `first_unacked` is the sender's lowest
/// unacknowledged sequence number: everything below it was acknowledged by the recipient, which
/// lets a recipient that lost its state (restart) resynchronise without redelivering.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Chat {
    /// The sender's id, what the user sees; ordering does not use it.
    pub id: MessageId,
    /// The sender's process lifetime this message belongs to.
    pub epoch: u64,
    /// Position in the sender's sequence to this recipient, from 1.
    pub seq: u64,
    /// Everything of this epoch below it was acknowledged (see above).
    pub first_unacked: u64,
    /// What the user wrote.
    pub text: String,
}

/// Cumulative end-to-end acknowledgement: every message of `epoch` up to `through` arrived.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Ack {
    /// The sender's process lifetime acknowledged.
    pub epoch: u64,
    /// The highest sequence number received in order.
    pub through: u64,
}

/// Error codes carried in error frames, so the far side can tell a user why it was cut off.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ErrorCode {
    /// The far side speaks another protocol version.
    UnsupportedVersion,
    /// A frame did not decode.
    Malformed,
    /// A length prefix was over the frame limit.
    FrameTooLarge,
    /// A frame was valid but not allowed at this point.
    UnexpectedFrame,
    /// A frame needs a session, and there is none.
    NotLoggedIn,
    /// Hello, login or a link's setup took too long.
    HelloTimeout,
    /// A peer could not prove it is who it claims.
    SetupFailed,
    /// A peer connected whom the server never introduced.
    UnknownPeer,
    /// The far side read too slowly and its output bound filled.
    SlowConsumer,
    /// A chat message was over the text limit.
    TextTooLong,
    /// Nothing arrived within the heartbeat's bound.
    Idle,
    /// A connection limit was reached.
    TooManyConnections,
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorCode::UnsupportedVersion => "unsupported protocol version",
            ErrorCode::Malformed => "malformed frame",
            ErrorCode::FrameTooLarge => "frame too large",
            ErrorCode::UnexpectedFrame => "frame not allowed in this state",
            ErrorCode::NotLoggedIn => "not logged in",
            ErrorCode::HelloTimeout => "no hello or login in time",
            ErrorCode::SetupFailed => "peer authentication failed",
            ErrorCode::UnknownPeer => "no introduction for this peer",
            ErrorCode::SlowConsumer => "not reading fast enough",
            ErrorCode::TextTooLong => "message text too long",
            ErrorCode::Idle => "silent for too long",
            ErrorCode::TooManyConnections => "too many connections",
        })
    }
}

/// Why a login was refused.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub enum LoginRefusal {
    /// Wrong user name or password: retrying the same ones cannot help.
    BadCredentials,
    /// Registration asked for a name that exists.
    NameTaken,
    /// The server allows no registration.
    RegistrationClosed,
    /// Too many failed logins from this address lately: wait, then retry.
    TooManyAttempts,
    /// The server cannot take the login now: retry later.
    ServerBusy,
    /// A key login: this profile's key is not bound to the account (a new profile, another
    /// account's key, or a server whose data was reset). Logging in with the password once
    /// enrols it.
    KeyNotEnrolled,
    /// This profile's key was revoked by the server's owner. It is refused even with the
    /// right password: only a new profile (a new key) can be enrolled.
    KeyRevoked,
}

impl fmt::Display for LoginRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LoginRefusal::BadCredentials => "wrong user name or password",
            LoginRefusal::NameTaken => "that user name is already registered",
            LoginRefusal::RegistrationClosed => "this server does not allow registration",
            LoginRefusal::TooManyAttempts => "too many login attempts, try again later",
            LoginRefusal::ServerBusy => "server busy, try again later",
            LoginRefusal::KeyNotEnrolled => "this profile's key is not enrolled on the server",
            LoginRefusal::KeyRevoked => "the server's owner revoked this profile's key",
        })
    }
}

/// Why the server gave up on a message.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Undeliverable {
    /// The recipient has no account.
    NoSuchUser,
    /// The recipient has too many messages waiting already.
    RecipientFull,
}

impl fmt::Display for Undeliverable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Undeliverable::NoSuchUser => "no such user",
            Undeliverable::RecipientFull => "the recipient has too many messages waiting",
        })
    }
}

/// Why the server ended a session.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub enum KickReason {
    /// The same user logged in from somewhere else; the newest login wins.
    LoggedInElsewhere,
    /// The account was deleted by the server's operator.
    AccountRemoved,
}

impl fmt::Display for KickReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KickReason::LoggedInElsewhere => "logged in from another place",
            KickReason::AccountRemoved => "account removed",
        })
    }
}
