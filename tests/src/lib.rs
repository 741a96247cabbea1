//! A deterministic simulator for Breeze: one server core and any number of client cores on a
//! virtual network with a virtual clock.
//!
//! The network carries byte streams with latency and jitter, splits them into arbitrary chunks,
//! can cut the direct path between two clients in one or both directions (bytes stall, as on a
//! real partition, and flow again on heal unless a side gave up first), can refuse a client's
//! P2P port, and can crash and restart the server (its store survives, as a disk would) or a
//! client. Everything derives from one seed: the same seed replays the same run.
//!
//! It drives the cores only through their public API, like any other runtime would, which is
//! the proof that the core needs nothing else. Fuzz targets and property tests reuse it.
//!
//! With the `loopback` feature it also holds [`loopback`], the kit of the tests that run the
//! smol drivers over real sockets instead.

pub mod crowd;
mod disk;
pub mod group_model;
#[cfg(feature = "loopback")]
pub mod loopback;
pub mod model;
mod network;
mod sim;
mod store;

pub use disk::Disk;
pub use network::{NetConfig, RawId};
pub use sim::{GroupReceived, LoginCheck, Node, Received, Sim, SimConfig, FALLBACK_ALLOWANCE};
pub use store::MemoryStore;
