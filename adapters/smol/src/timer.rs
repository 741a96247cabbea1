//! The one reusable timer each driver arms from its core's `poll_timeout`.

use async_io::Timer;
use std::time::Instant;

/// A single `async_io::Timer`, re-armed after every input.
///
/// Re-arming is skipped when the deadline is unchanged and has not fired yet, so a chatty
/// connection does not churn the reactor's timer table.
pub(crate) struct Alarm {
    timer: Timer,
    armed: Option<Instant>,
}

impl Alarm {
    pub fn new() -> Alarm {
        Alarm {
            timer: Timer::never(),
            armed: None,
        }
    }

    /// Fires at `deadline`, or never for `None`.
    pub fn arm(&mut self, deadline: Option<Instant>) {
        if deadline == self.armed {
            return;
        }
        match deadline {
            Some(at) => self.timer.set_at(at),
            None => self.timer = Timer::never(),
        }
        self.armed = deadline;
    }

    /// Waits for the armed deadline; pending forever when disarmed.
    pub async fn ring(&mut self) {
        (&mut self.timer).await;
        self.armed = None;
    }
}
