//! A file about to be offered: its name, size, content hash and transfer id.

use crate::file_request::FileRequestError;
use breeze_core::wire::{FileName, TransferId};
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

/// Bytes read per call while hashing.
const HASH_BUFFER: usize = 256 * 1024;

/// What [`Client::offer_file`](crate::Client::offer_file) offered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedFile {
    pub id: TransferId,
    /// The file's own name, as the receiver sees it.
    pub name: FileName,
    pub size: u64,
    /// BLAKE3 of the content.
    pub hash: [u8; 32],
    /// Where it is read from (made absolute).
    pub path: PathBuf,
}

impl SharedFile {
    /// Hashes the file at `path` (this blocks: run it off any async task) and derives its
    /// transfer id from where it is, its size, its modification time and its content. The
    /// same file offered again, also by a restarted sender, gets the same id, which is what
    /// lets the receiver resume; a file changed in between gets another.
    pub fn fingerprint(path: &Path) -> Result<SharedFile, FileRequestError> {
        let path = std::fs::canonicalize(path)?;
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .ok_or_else(|| {
                FileRequestError::Io(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "the path does not end in a file name that is valid UTF-8",
                ))
            })?;
        let name = FileName::new(name).map_err(FileRequestError::BadName)?;
        let mut file = File::open(&path)?;
        let metadata = file.metadata()?;
        if !metadata.is_file() {
            return Err(FileRequestError::Io(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a regular file",
            )));
        }
        let mut hasher = blake3::Hasher::new();
        let mut buffer = vec![0u8; HASH_BUFFER];
        let mut size = 0u64;
        loop {
            let n = match file.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => n,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(error.into()),
            };
            hasher.update(&buffer[..n]);
            size += n as u64;
        }
        let hash = *hasher.finalize().as_bytes();
        let modified = metadata
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .unwrap_or_default();
        let mut id = blake3::Hasher::new_derive_key("breeze 2024 file transfer id");
        id.update(path.as_os_str().as_encoded_bytes());
        id.update(&[0]);
        id.update(&size.to_le_bytes());
        id.update(&modified.as_secs().to_le_bytes());
        id.update(&modified.subsec_nanos().to_le_bytes());
        id.update(&hash);
        let id = u64::from_le_bytes(id.finalize().as_bytes()[..8].try_into().expect("8 bytes"));
        Ok(SharedFile {
            id: TransferId(id),
            name,
            size,
            hash,
            path,
        })
    }
}
