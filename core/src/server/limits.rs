//! Per-address limits: connections held open and failed logins per minute.
//!
//! Both are protocol decisions the server core can make from the remote address the driver
//! reports, so they live here (and are tested in the simulator) rather than in an adapter.

use crate::seeded_hash::{SeededMap, SeededState};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// The window failed logins are counted in.
const FAILURE_WINDOW: Duration = Duration::from_secs(60);

#[derive(Debug, Default)]
struct Address {
    connections: usize,
    /// Failed logins since `window_start`.
    failures: u32,
    window_start: Option<Instant>,
    /// Logins the host is checking right now: each may turn out a failure, so they count
    /// against the limit until answered (a burst of guesses must not all get through).
    checking: u32,
}

impl Address {
    fn count_failure(&mut self, now: Instant) {
        match self.window_start {
            Some(start) if now < start + FAILURE_WINDOW => self.failures += 1,
            _ => {
                self.window_start = Some(now);
                self.failures = 1;
            }
        }
    }

    /// Failures in a window still running at `now`.
    fn failures_now(&self, now: Instant) -> u32 {
        let live = self
            .window_start
            .is_some_and(|start| now < start + FAILURE_WINDOW);
        if live {
            self.failures
        } else {
            0
        }
    }
}

#[derive(Debug)]
pub(super) struct AddressLimits {
    addresses: SeededMap<IpAddr, Address>,
}

impl AddressLimits {
    pub fn new(hash: SeededState) -> Self {
        AddressLimits {
            addresses: SeededMap::with_hasher(hash),
        }
    }

    /// Counts a new connection; returns how many this address now holds.
    pub fn connected(&mut self, ip: IpAddr) -> usize {
        let address = self.addresses.entry(ip).or_default();
        address.connections += 1;
        address.connections
    }

    pub fn disconnected(&mut self, ip: IpAddr) {
        if let Some(address) = self.addresses.get_mut(&ip) {
            address.connections = address.connections.saturating_sub(1);
        }
    }

    pub fn check_started(&mut self, ip: IpAddr) {
        self.addresses.entry(ip).or_default().checking += 1;
    }

    /// The host answered a password check from `ip`; `failed` when the password was wrong.
    pub fn check_finished(&mut self, ip: IpAddr, failed: bool, now: Instant) {
        let address = self.addresses.entry(ip).or_default();
        address.checking = address.checking.saturating_sub(1);
        if failed {
            address.count_failure(now);
        }
    }

    /// The host answered a key login from `ip`; `failed` when the key was not enrolled or
    /// revoked. Key checks are never counted while under way: they cost an indexed lookup,
    /// not a hash, and a storm of honest returning clients behind one address (a NAT, a
    /// restarted server's whole office) must all get through. Only the keys that turn out
    /// wrong count.
    pub fn key_check_finished(&mut self, ip: IpAddr, failed: bool, now: Instant) {
        if failed {
            self.addresses.entry(ip).or_default().count_failure(now);
        }
    }

    /// Whether `ip` used up its failed logins for the current window, counting the password
    /// checks still under way as failures (a burst of guesses must not all get through).
    pub fn too_many_failures(&self, ip: IpAddr, max: u32, now: Instant) -> bool {
        self.addresses
            .get(&ip)
            .is_some_and(|a| a.failures_now(now) + a.checking >= max)
    }

    /// Whether `ip` used up its failed logins for the current window, counting only the
    /// logins that did fail: what a key login is held to (see `key_check_finished`).
    pub fn failed_too_often(&self, ip: IpAddr, max: u32, now: Instant) -> bool {
        self.addresses
            .get(&ip)
            .is_some_and(|a| a.failures_now(now) >= max)
    }

    /// Forgets addresses with no connection, no check under way and no live failure window,
    /// so the table stays as small as the set of addresses that matter now.
    pub fn sweep(&mut self, now: Instant) {
        self.addresses.retain(|_, a| {
            a.connections > 0
                || a.checking > 0
                || a.window_start
                    .is_some_and(|start| now < start + FAILURE_WINDOW)
        });
    }

    /// Connections counted over all addresses; equals the server's connection count.
    pub fn total_connections(&self) -> usize {
        self.addresses.values().map(|a| a.connections).sum()
    }
}
