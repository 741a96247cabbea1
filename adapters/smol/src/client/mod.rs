//! The client driver: a [`Client`] handle (`handle.rs`) on one owner task that holds the
//! [`breeze_core::Client`] and wires it to the server socket, the peer sockets, the P2P
//! listener, the file host (through `file_lanes.rs`) and the timer.
//!
//! - `handle.rs`: [`Client`], what the application calls; each call is a message of
//!   `commands.rs` to the owner task, which handles it there.
//! - `owner.rs`: the owner task's state; `owner_loop.rs`: its loop (wait, feed the core, drain
//!   it) and how it performs the core's actions.
//! - `sockets.rs`: socket reports and connect results in, sockets opened and closed.
//! - `files.rs`: the file-host bookkeeping (offers kept for `accept_file`, the host's calls
//!   queued per transfer, its answers handed to the core).

mod commands;
mod files;
mod groups;
mod handle;
mod owner;
mod owner_loop;
mod sockets;

pub use commands::PeerStatus;
pub use handle::Client;
