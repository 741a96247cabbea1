//! Firing a core's due timers, the step both stream harnesses take before checking the core.

use arbitrary::Result;
use std::time::Instant;

/// A core's timer, as a driver sees it.
pub(crate) trait Timer {
    fn poll_timeout(&self) -> Option<Instant>;
    fn handle_timeout(&mut self, now: Instant);
}

impl Timer for breeze_core::Client {
    fn poll_timeout(&self) -> Option<Instant> {
        breeze_core::Client::poll_timeout(self)
    }
    fn handle_timeout(&mut self, now: Instant) {
        breeze_core::Client::handle_timeout(self, now)
    }
}

impl Timer for breeze_core::Server {
    fn poll_timeout(&self) -> Option<Instant> {
        breeze_core::Server::poll_timeout(self)
    }
    fn handle_timeout(&mut self, now: Instant) {
        breeze_core::Server::handle_timeout(self, now)
    }
}

/// Drains `harness`, then fires the timers of its core (`core`) due at `now` until none is,
/// draining after each. Checks that `handle_timeout(now)` always moves the deadline past
/// `now` (a deadline left due would spin a driver), and that the timers settle.
pub(crate) fn fire_due<H, C: Timer>(
    harness: &mut H,
    now: Instant,
    core: fn(&mut H) -> &mut C,
    mut drain: impl FnMut(&mut H) -> Result<()>,
) -> Result<()> {
    drain(harness)?;
    let mut rounds = 0;
    while core(harness).poll_timeout().is_some_and(|due| due <= now) {
        core(harness).handle_timeout(now);
        if let Some(next) = core(harness).poll_timeout() {
            assert!(
                next > now,
                "handle_timeout(now) left poll_timeout() at or before now ({:?} <= now)",
                now - next
            );
        }
        drain(harness)?;
        rounds += 1;
        assert!(rounds < 100, "timers never settle");
    }
    Ok(())
}
