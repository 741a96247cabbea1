//! Why a file request of the embedding API (offer, accept, decline, cancel) failed.

use breeze_core::client::FileError;
use breeze_core::wire::FileNameError;
use std::fmt;
use std::io;

#[derive(Debug)]
#[non_exhaustive]
pub enum FileRequestError {
    /// The file or directory could not be read, created or written.
    Io(io::Error),
    /// The file's name cannot be offered as it is (see [`FileName`](breeze_core::wire::FileName)).
    BadName(FileNameError),
    /// The core refused (no such transfer, already answered, too many transfers…).
    Refused(FileError),
}

impl fmt::Display for FileRequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileRequestError::Io(error) => error.fmt(f),
            FileRequestError::BadName(error) => error.fmt(f),
            FileRequestError::Refused(error) => error.fmt(f),
        }
    }
}

impl std::error::Error for FileRequestError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FileRequestError::Io(error) => Some(error),
            FileRequestError::BadName(error) => Some(error),
            FileRequestError::Refused(error) => Some(error),
        }
    }
}

impl From<io::Error> for FileRequestError {
    fn from(error: io::Error) -> Self {
        FileRequestError::Io(error)
    }
}

impl From<FileError> for FileRequestError {
    fn from(error: FileError) -> Self {
        FileRequestError::Refused(error)
    }
}
