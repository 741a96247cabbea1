//! The Breeze server app: everything around the protocol core that touches the outside world.
//!
//! For now this is the persistent [`store`] (accounts and offline messages in embedded SQLite);
//! the binary in `main.rs` uses it for the `user` subcommands and, later, for serving.

pub mod store;

pub use store::{
    OfflineMessage, Store, StoreError, StoreOptions, Verdict, MAX_OFFLINE_PER_RECIPIENT,
};
