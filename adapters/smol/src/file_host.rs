//! What the client driver asks of the application embedding it for file transfers: the bytes.

use breeze_core::client::Direction;
use breeze_core::transmit::FileSpan;
use breeze_core::wire::{FileName, TransferId, UserName};
use std::io;
use std::path::Path;

/// An offer a peer made, as the core announced it (`Event::File(FileEvent::Offered)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileOffer {
    pub from: UserName,
    pub id: TransferId,
    /// Already checked by the core: one path component, no separators, no reserved names.
    pub name: FileName,
    pub size: u64,
    /// BLAKE3 of the whole content.
    pub hash: [u8; 32],
}

/// Performs the client core's file actions (`Action::ReadFile`, `WriteFile`, `VerifyFile`) and
/// the preparations the embedding API asks for ([`Client::offer_file`](crate::Client::offer_file),
/// [`Client::accept_file`](crate::Client::accept_file)).
///
/// Every method may block (disk IO, hashing): the driver calls them on smol's blocking thread
/// pool, never on the task that owns the core. Calls for one transfer (one direction, peer and
/// id) run one at a time, in the order the core asked for them, each after the previous one
/// returned; calls for different transfers may run concurrently. So for one transfer the host
/// sees `share`, then `read`s, then `release`; or `receive`, then `write`s at increasing
/// offsets, then `verify`, then `release`.
///
/// [`DiskFiles`](crate::DiskFiles) is the implementation for files in directories on disk.
pub trait FileHost: Send + Sync + 'static {
    /// `id` is about to be offered from `path` (`size` bytes when it was hashed); later
    /// `read`s for `id` come from there.
    fn share(&self, id: TransferId, path: &Path, size: u64) -> io::Result<()>;

    /// Up to `len` bytes at `offset` of the file shared as `id`; fewer only at its end.
    fn read(&self, id: TransferId, offset: u64, len: usize) -> io::Result<Vec<u8>>;

    /// Instead of [`read`](FileHost::read), for chunks going over a direct channel: the same
    /// bytes as a span of the open file, for the driver to send from the file itself
    /// (`sendfile`, so they never pass through the process), or `Ok(None)` to be asked to
    /// `read` them. The span's `file` must be a `std::fs::File`, and the driver writes spans
    /// on Linux only. The default makes none.
    fn read_span(&self, id: TransferId, offset: u64, len: usize) -> io::Result<Option<FileSpan>> {
        let _ = (id, offset, len);
        Ok(None)
    }

    /// The user accepted `offer` into the directory `dir`: get ready to write it, and say how
    /// many of its bytes are already held from an earlier attempt (the transfer resumes
    /// there), or 0. The bytes held are not checked here: the content hash at the end is.
    fn receive(&self, offer: &FileOffer, dir: &Path) -> io::Result<u64>;

    /// Writes `data` at `offset` of `from`'s file `id`. Offsets follow each other: each write
    /// starts where the previous one ended (or where `receive` said to resume).
    fn write(&self, from: &UserName, id: TransferId, offset: u64, data: &[u8]) -> io::Result<()>;

    /// Every byte is written: checks the file against the offered hash and, only when it
    /// matches, gives it its final name. `Ok(false)` for a mismatch (the file must not be
    /// presented as complete); an error counts as a mismatch.
    fn verify(&self, from: &UserName, id: TransferId) -> io::Result<bool>;

    /// The transfer is over, one way or another (done, declined, cancelled, failed, or
    /// refused before it started): let go of it. An unfinished incoming file should be kept
    /// where a later `receive` of the same offer finds it and resumes.
    fn release(&self, peer: &UserName, id: TransferId, direction: Direction);
}
