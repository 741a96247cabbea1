//! File transfer state, one struct per transfer and direction.
//!
//! The core never touches a file: it asks its host to read chunks ([`Outgoing`]'s side),
//! to write them and to check the content hash ([`Incoming`]'s side), and moves bytes over
//! whichever route is up. The sender keeps only what the receiver granted credit for, so
//! memory is bounded by the window on both sides whatever the file size; the receiver accepts
//! bytes strictly in order, so a route change costs at most one window of re-sending, from
//! the last offset the receiver accepted.

mod incoming;
mod outgoing;

pub use incoming::{ChunkVerdict, InPhase, Incoming};
pub use outgoing::{OutPhase, Outgoing};

/// Bytes in one chunk: a chunk frame stays well under the 64 KiB frame limit.
pub const CHUNK_SIZE: usize = 32 * 1024;
/// Bytes the sender asks its host to read at once, sent as chunks that are slices of the read:
/// one host call per eight chunks.
pub const READ_SIZE: usize = 8 * CHUNK_SIZE;

/// Which way a transfer goes, from this client's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// We send the file.
    Sending,
    /// We receive the file.
    Receiving,
}
