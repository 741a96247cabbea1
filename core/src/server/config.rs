//! Server tunables, with the defaults a LAN deployment wants.

use super::FileRelayLimit;
use crate::codec::DEFAULT_MAX_FRAME;
use crate::liveness::Heartbeat;
use std::time::Duration;

/// The server's timing and bounds. Start from the default and change what differs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Heartbeat timing on every client connection.
    pub heartbeat: Heartbeat,
    /// A new connection must finish hello and login within this (slowloris defence).
    pub login_timeout: Duration,
    /// How often connections are swept for heartbeats and deadlines. Heartbeat timing is exact
    /// to within one sweep; a sweep costs one pass over the connections.
    pub sweep_interval: Duration,
    /// The largest frame sent or accepted, checked from the length prefix.
    pub max_frame: usize,
    /// Bytes queued or unwritten per connection before it is dropped as a slow consumer.
    pub max_pending_output: usize,
    /// The longest chat message relayed; a longer one closes its sender's connection.
    pub max_text_len: usize,
    /// Online users per presence frame: the list is sent in pages, never one giant frame.
    pub presence_page: usize,
    /// A session that logs in while fewer than this many others are online hears about every
    /// login and logout (a small office sees everyone); later sessions hear only about the
    /// users they watch. It bounds the sessions told about every change, so a login costs the
    /// same whether a thousand or ten thousand are online.
    pub presence_everyone_below: usize,
    /// Once this many are online, the everyone sessions become watching sessions: each gets
    /// a fresh list of the users it watches and hears only of them from then on. So a client
    /// that logged in to a quiet server does not go on to hold a record of every user of a
    /// busy one. Above `presence_everyone_below`, so a server around that size does not
    /// switch back and forth.
    pub presence_everyone_until: usize,
    /// Presence changes are gathered for this long and sent together, one frame per observer.
    pub presence_batch: Duration,
    /// Users one session may watch; more are ignored.
    pub max_watched: usize,
    /// Connections open at once, logged in or not; more are turned away.
    pub max_connections: usize,
    /// Connections one IP address may hold open (before login included).
    pub max_connections_per_ip: usize,
    /// Failed logins one IP address may make per minute before it is refused without a
    /// password check (password guessing; also spares the host's hashing).
    pub max_login_failures_per_ip: u32,
    /// Clients may create accounts by logging in with `register: true`.
    pub open_registration: bool,
    /// Per-user budget for relayed file data.
    pub file_relay: FileRelayLimit,
    /// Members one group may have, the owner included.
    pub max_group_members: usize,
    /// Groups one user may be in.
    pub max_groups_per_user: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            heartbeat: Heartbeat::default(),
            login_timeout: Duration::from_secs(10),
            sweep_interval: Duration::from_millis(500),
            max_frame: DEFAULT_MAX_FRAME,
            max_pending_output: 4 * 1024 * 1024,
            max_text_len: 16 * 1024,
            presence_page: 256,
            presence_everyone_below: 200,
            presence_everyone_until: 400,
            presence_batch: Duration::from_millis(50),
            max_watched: 2_000,
            max_connections: 100_000,
            max_connections_per_ip: 64,
            max_login_failures_per_ip: 10,
            open_registration: false,
            file_relay: FileRelayLimit::default(),
            max_group_members: 500,
            max_groups_per_user: 100,
        }
    }
}
