//! The periodic sweep: one pass over every connection per `sweep_interval` sends the
//! heartbeats that are due and closes what missed a deadline (login too slow, peer silent).
//!
//! One timer for the whole server instead of one per connection: a sweep costs one pass, and
//! heartbeat timing is exact to within one `sweep_interval`.

use super::connection::Phase;
use super::output::ConnError;
use super::Server;
use crate::wire::ServerFrame;
use std::time::Instant;

impl Server {
    /// Runs the sweep if it is due; early calls do nothing.
    pub(super) fn sweep(&mut self, now: Instant) {
        let Some(due) = self.next_sweep else { return };
        if now < due {
            return;
        }
        self.limits.sweep(now);
        self.outbound.release_idle();
        self.next_sweep = if self.conns.is_empty() {
            None
        } else {
            Some(now + self.config.sweep_interval)
        };
        let heartbeat = self.config.heartbeat;
        let mut failed = Vec::new();
        let mut ping = Vec::new();
        for (conn, connection) in &self.conns {
            let online = matches!(connection.phase, Phase::Online(_));
            if !online && now >= connection.opened + self.config.login_timeout {
                failed.push((*conn, ConnError::LoginTimeout));
            } else if now >= connection.liveness.dead_at(&heartbeat) {
                failed.push((*conn, ConnError::Idle));
            } else if online && now >= connection.liveness.ping_at(&heartbeat) {
                ping.push(*conn);
            }
        }
        for conn in ping {
            self.send(conn, &ServerFrame::Ping, now);
        }
        for (conn, error) in failed {
            self.fail(conn, error, now);
        }
        self.sweep_groups(now);
    }
}
