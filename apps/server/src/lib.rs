//! The Breeze server app: everything around the protocol core that touches the outside world.
//!
//! The server's static key ([`key_path`]), the persistent [`store`] (accounts and
//! offline messages in embedded SQLite) and the
//! [`host`] that lets the smol server driver use it; the binary in `main.rs` uses them for the
//! `user` subcommands and for serving (`serve.rs`).

pub mod host;
pub mod store;

/// Where the server keeps its static key, inside the data directory.
pub fn key_path(data: &std::path::Path) -> std::path::PathBuf {
    data.join("server.key")
}

pub use store::{
    AccountKey, Binding, KeyCheck, OfflineMessage, PasswordHashing, RevokeError, Store, StoreError,
    StoreOptions, Verdict, MAX_OFFLINE_PER_RECIPIENT,
};
