//! Drives the Breeze protocol cores over real TCP with [smol](https://docs.rs/smol).
//!
//! This crate makes no protocol decisions. Each driver is one owner task holding its core by
//! `&mut`; it reads socket bytes into `handle_*`, drains `poll_transmit` to the sockets'
//! writer tasks (and reports `handle_written` once the bytes reach the kernel), performs
//! `poll_action` (connect, dial, close, check a password, store a message, read or write a
//! file), forwards
//! `poll_event`, and arms one reusable timer from `poll_timeout`. After every input it drains
//! transmits, then actions (transmits again before each action, so a close never overtakes
//! the bytes polled before it), then events, then re-arms the timer.
//!
//! Where things are:
//! - `server.rs`: [`ServerDriver`] / [`run_server`], the server's owner loop; `host.rs`: the
//!   [`ServerHost`] trait the application implements; `memory_host.rs`: [`MemoryHost`];
//!   `login_lanes.rs`: the threads login checks run on (one per core for password hashes,
//!   one for key logins).
//! - `client/`: the [`Client`] handle, its owner task and the task's loop;
//!   `client_options.rs`: [`ClientOptions`].
//! - files: `file_host.rs`, the [`FileHost`] trait the application implements (or takes
//!   [`DiskFiles`], `disk_files.rs`, with the names it gives files in `disk_names.rs`);
//!   `file_lanes.rs` runs the host's calls off the owner task, in order per transfer;
//!   `shared_file.rs` hashes a file to offer ([`SharedFile`]); `file_request.rs`:
//!   [`FileRequestError`].
//! - `socket.rs`: the reader and writer tasks of one socket; `listener.rs`: the accept loop;
//!   `admission.rs`: how many accepted connections may be logging in at once;
//!   `doorbell.rs`: how the owner wakes a socket's writer; `dial.rs`: connects with a
//!   timeout; `timer.rs`: the one timer; `seed.rs`: OS randomness.
//! - `logging.rs` (feature `logging`): the log setup the programs share, [`init_logging`].
//!
//! ```no_run
//! use breeze_core::server::ServerConfig;
//! use breeze_core::wire::UserName;
//! use breeze_smol::{Client, ClientOptions, MemoryHost, ServerDriver};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! smol::block_on(async {
//!     let listener = smol::net::TcpListener::bind("127.0.0.1:0").await?;
//!     let server = ServerDriver::new(listener, ServerConfig::default(), MemoryHost::welcoming());
//!     let addr = server.local_addr()?;
//!     let (stop, stopped) = async_channel::bounded::<()>(1);
//!     let serving = smol::spawn(server.run(async move {
//!         let _ = stopped.recv().await;
//!     }));
//!     let alice = Client::start(ClientOptions::new(addr, UserName::new("alice")?, "pw"))?;
//!     while let Some(event) = alice.next_event().await {
//!         println!("{event:?}");
//!     }
//!     drop(stop);
//!     serving.await?;
//!     Ok(())
//! })
//! # }
//! ```

mod admission;
mod client;
mod client_options;
mod dial;
mod disk_files;
mod disk_names;
mod doorbell;
mod file_host;
mod file_lanes;
mod file_request;
mod host;
mod listener;
#[cfg(feature = "logging")]
mod logging;
mod login_lanes;
mod memory_host;
mod read_pool;
mod seed;
mod server;
mod shared_file;
mod socket;
mod span_write;
mod timer;
mod write_behind;

pub use admission::DEFAULT_MAX_PENDING_LOGINS;
pub use client::{Client, PeerStatus};
pub use client_options::{ClientOptions, ConfigTweak};
pub use disk_files::{DiskFiles, Landed};
pub use file_host::{FileHost, FileOffer};
pub use file_request::FileRequestError;
pub use host::ServerHost;
#[cfg(feature = "logging")]
pub use logging::init_logging;
pub use memory_host::MemoryHost;
pub use seed::os_seed;

pub mod key_file;
pub use server::{run_server, ServerDriver, ServerStats};
pub use shared_file::SharedFile;
