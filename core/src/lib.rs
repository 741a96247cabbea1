//! Breeze's protocol core: the wire format and the server and client state machines, with no
//! IO of any kind.
//!
//! Nothing in this crate opens a socket, reads a clock, touches a file, spawns a thread or reads
//! the environment. Time comes in as a `now` argument on every input; randomness comes from a
//! seed given at construction. That makes the whole protocol testable on a virtual clock and a
//! virtual network, and lets any runtime drive it.
//!
//! # How to drive me
//!
//! A [`Server`] and each [`Client`] are fed with `handle_*` inputs (bytes, connection events,
//! answers to their requests, timeouts) and drained with `poll_transmit` (bytes to write),
//! `poll_action` (IO to perform: connect, dial, close, check a password, store a message),
//! `poll_event` (what to show or log) and `poll_timeout` (when to call `handle_timeout`). The
//! complete lists, and the [ordering rules](Client#ordering-rules) both follow, are on the
//! [`Client`] and [`Server`] structs. The example runs a server and two clients in memory,
//! with instant delivery and one shared clock, until alice's message reaches bob over their
//! direct channel; `examples/blocking_client.rs` drives real sockets from plain threads:
//!
//! ```
//! use breeze_core::client::{self, Action as ClientAction, Client, ClientConfig, Destination, LinkId};
//! use breeze_core::secure::IdentityKey;
//! use breeze_core::server::{Action as ServerAction, ConnId, Server, ServerConfig};
//! use breeze_core::wire::UserName;
//! use breeze_core::Via;
//! use std::collections::HashMap;
//! use std::time::{Duration, Instant};
//!
//! let mut now = Instant::now();
//! // Every party has a static key; the host keeps it (here: made up on the spot).
//! let mut server = Server::new(ServerConfig::default(), IdentityKey::from_secret([9; 32]), [0; 32]);
//! let name = |n: &str| UserName::new(n).unwrap();
//! // Each client gets a server connection id, and listens on "127.0.0.1:<port>".
//! let mut clients = vec![
//!     Client::new(ClientConfig::new(name("alice"), "pw", 7001), IdentityKey::from_secret([1; 32]), [1; 32], now),
//!     Client::new(ClientConfig::new(name("bob"), "pw", 7002), IdentityKey::from_secret([2; 32]), [2; 32], now),
//! ];
//! // Each end of a peer link, (client index, link id), maps to the other end.
//! let mut links: HashMap<(usize, LinkId), (usize, LinkId)> = HashMap::new();
//! let mut next_link = 0;
//! let mut received = None;
//! for _round in 0..50 {
//!     // Drive every client: wire its outputs to the server and to the other client.
//!     for i in 0..clients.len() {
//!         while let Some(t) = clients[i].poll_transmit() {
//!             // Bytes: only a host answering reads with file spans gets anything else.
//!             let bytes = t.unwrap_bytes();
//!             match t.to {
//!                 Destination::Server => server.handle_bytes(ConnId(i as u64), bytes, now),
//!                 Destination::Peer(link) => {
//!                     let (j, other) = links[&(i, link)];
//!                     clients[j].handle_link_bytes(other, bytes, now);
//!                 }
//!             }
//!             clients[i].handle_written(t.to, bytes.len());
//!         }
//!         while let Some(action) = clients[i].poll_action() {
//!             match action {
//!                 ClientAction::ConnectServer => {
//!                     server.handle_connected(ConnId(i as u64), "127.0.0.1:50000".parse().unwrap(), now);
//!                     clients[i].handle_server_connected(now);
//!                 }
//!                 ClientAction::Dial { peer, addr } => {
//!                     let j = (addr.port() - 7001) as usize;
//!                     let (a, b) = (LinkId(next_link), LinkId(next_link + 1));
//!                     next_link += 2;
//!                     links.insert((i, a), (j, b));
//!                     links.insert((j, b), (i, a));
//!                     clients[j].handle_accepted(b, "127.0.0.1:60000".parse().unwrap(), now);
//!                     clients[i].handle_dialed(a, &peer, now);
//!                 }
//!                 _ => {}
//!             }
//!         }
//!         while let Some(event) = clients[i].poll_event() {
//!             if let client::Event::Message { from, text, route, .. } = event {
//!                 received = Some((from, text, route));
//!             }
//!         }
//!     }
//!     // Drive the server: credentials are checked by the host (here: everyone is welcome).
//!     while let Some(t) = server.poll_transmit() {
//!         let bytes = t.unwrap_bytes();
//!         clients[t.to.0 as usize].handle_server_bytes(bytes, now);
//!         server.handle_written(t.to, bytes.len());
//!     }
//!     while let Some(action) = server.poll_action() {
//!         match action {
//!             ServerAction::CheckLogin { conn, .. } => server.handle_login_checked(conn, Ok(()), now),
//!             ServerAction::LoadOffline { user } => server.handle_offline_loaded(&user, vec![], now),
//!             _ => {}
//!         }
//!     }
//!     while server.poll_event().is_some() {}
//!     // Once the direct channel is up, alice says hello.
//!     if clients[0].route_to(&name("bob")) == Some(client::Route::Direct)
//!         && clients[0].unacknowledged(&name("bob")) == 0
//!         && received.is_none()
//!     {
//!         clients[0].send(&name("bob"), "hi bob".into(), now).unwrap();
//!     }
//!     if received.is_some() {
//!         break;
//!     }
//!     now += Duration::from_millis(10);
//!     for c in clients.iter_mut() {
//!         c.handle_timeout(now);
//!     }
//!     server.handle_timeout(now);
//! }
//! assert_eq!(received, Some((name("alice"), "hi bob".to_string(), Via::Direct)));
//! ```

#![warn(missing_docs)]

pub mod backoff;
pub mod client;
pub mod codec;
pub mod delivery;
pub mod liveness;
mod outbound;
pub mod password;
pub mod rng;
pub mod secure;
mod seeded_hash;
pub mod server;
pub mod transfer;
pub mod transmit;
pub mod wire;

pub use client::Client;
pub use delivery::Via;
pub use server::Server;
pub use transmit::{Payload, Transmit};
