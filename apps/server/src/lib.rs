//! The Breeze server app: everything around the protocol core that touches the outside world.
//!
//! The server's static key on disk ([`key_file`]), the persistent [`store`] (accounts and
//! offline messages in embedded SQLite) and the
//! [`host`] that lets the smol server driver use it; the binary in `main.rs` uses them for the
//! `user` subcommands and for serving (`serve.rs`).

pub mod host;
pub mod key_file;
pub mod store;

pub use store::{
    OfflineMessage, Store, StoreError, StoreOptions, Verdict, MAX_OFFLINE_PER_RECIPIENT,
};
