//! What can go wrong in the store.

use std::fmt;
use std::path::PathBuf;

use breeze_core::wire::UserNameError;

/// An error from [`Store`](super::Store).
///
/// The account and bound variants (`UserExists`, `UnknownUser`, `RecipientFull`, `BadName`,
/// `EmptyPassword`) are expected outcomes a caller reports to a user; the others mean the
/// database or the data directory is unusable.
#[derive(Debug)]
#[non_exhaustive]
pub enum StoreError {
    /// The data directory could not be created.
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    /// SQLite failed (I/O, a locked or corrupt database, …).
    Sqlite(rusqlite::Error),
    /// The database was written by a newer Breeze whose schema this build does not know.
    SchemaTooNew { found: u32, supported: u32 },
    /// Hashing failed, or a stored password hash is not a valid PHC string.
    Hash(argon2::password_hash::Error),
    /// `add_user`/`register`: an account with this name already exists.
    UserExists(String),
    /// The named account does not exist (e.g. the recipient of an offline message).
    UnknownUser(String),
    /// The recipient already has the maximum number of offline messages stored.
    RecipientFull(String),
    /// The name is not a valid user name.
    BadName { name: String, reason: UserNameError },
    /// Accounts must have a non-empty password.
    EmptyPassword,
    /// No memory could be mapped for a password hash.
    Memory(std::io::Error),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::DataDir { path, source } => {
                write!(
                    f,
                    "cannot create data directory {}: {source}",
                    path.display()
                )
            }
            StoreError::Sqlite(e) => write!(f, "database error: {e}"),
            StoreError::SchemaTooNew { found, supported } => write!(
                f,
                "database schema version {found} is newer than this build supports ({supported})"
            ),
            StoreError::Hash(e) => write!(f, "password hashing failed: {e}"),
            StoreError::UserExists(name) => write!(f, "user {name} already exists"),
            StoreError::UnknownUser(name) => write!(f, "no user named {name:?}"),
            StoreError::RecipientFull(name) => {
                write!(f, "too many offline messages stored for {name}")
            }
            StoreError::BadName { name, reason } => write!(f, "bad user name {name:?}: {reason}"),
            StoreError::EmptyPassword => f.write_str("the password is empty"),
            StoreError::Memory(e) => write!(f, "no memory for password hashing: {e}"),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::DataDir { source, .. } => Some(source),
            StoreError::Sqlite(e) => Some(e),
            StoreError::Hash(e) => Some(e),
            StoreError::BadName { reason, .. } => Some(reason),
            StoreError::Memory(e) => Some(e),
            StoreError::SchemaTooNew { .. }
            | StoreError::UserExists(_)
            | StoreError::UnknownUser(_)
            | StoreError::RecipientFull(_)
            | StoreError::EmptyPassword => None,
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Sqlite(e)
    }
}

impl From<argon2::password_hash::Error> for StoreError {
    fn from(e: argon2::password_hash::Error) -> Self {
        StoreError::Hash(e)
    }
}
