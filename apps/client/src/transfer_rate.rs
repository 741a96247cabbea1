//! How fast a transfer goes and when it will be done, from its progress reports.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The rate is measured over about this much recent time, so it follows changes (a route
/// change, a throttled relay) within seconds without jumping at every report.
const WINDOW: Duration = Duration::from_secs(3);
/// Samples kept; progress comes every few hundred KiB, so this covers the window.
const MAX_SAMPLES: usize = 64;

#[derive(Debug, Default, Clone)]
pub struct TransferRate {
    /// `(when, bytes)`, oldest first.
    samples: VecDeque<(Instant, u64)>,
}

impl TransferRate {
    pub fn record(&mut self, now: Instant, bytes: u64) {
        while self.samples.len() >= MAX_SAMPLES
            || self
                .samples
                .front()
                .is_some_and(|(t, _)| now.duration_since(*t) > WINDOW && self.samples.len() > 1)
        {
            self.samples.pop_front();
        }
        self.samples.push_back((now, bytes));
    }

    /// Bytes per second over the recent samples; `None` until there are two.
    pub fn bytes_per_second(&self, now: Instant) -> Option<f64> {
        let (first_at, first) = *self.samples.front()?;
        let (_, last) = *self.samples.back()?;
        let elapsed = now.duration_since(first_at).as_secs_f64();
        (self.samples.len() > 1 && elapsed > 0.0)
            .then(|| last.saturating_sub(first) as f64 / elapsed)
    }

    /// Time left for the rest of `size`, at the recent rate.
    pub fn eta(&self, now: Instant, bytes: u64, size: u64) -> Option<Duration> {
        let rate = self.bytes_per_second(now)?;
        (rate > 0.0).then(|| Duration::from_secs_f64(size.saturating_sub(bytes) as f64 / rate))
    }
}

/// `1.5 MiB`, `320 KiB`, `12 B`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// `1:05:09`, `7:03`, `0:09`.
pub fn duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_is_the_slope_over_the_recent_samples() {
        let start = Instant::now();
        let mut rate = TransferRate::default();
        assert_eq!(rate.bytes_per_second(start), None);
        rate.record(start, 0);
        rate.record(start + Duration::from_secs(1), 1_000_000);
        let now = start + Duration::from_secs(2);
        rate.record(now, 2_000_000);
        assert_eq!(rate.bytes_per_second(now), Some(1_000_000.0));
        assert_eq!(
            rate.eta(now, 2_000_000, 5_000_000),
            Some(Duration::from_secs(3))
        );
        // Old samples fall out of the window: the rate follows a slowdown.
        let later = now + Duration::from_secs(10);
        rate.record(later, 2_500_000);
        assert!(rate.bytes_per_second(later).unwrap() < 100_000.0);
    }

    #[test]
    fn sizes_and_durations_read_like_people_write_them() {
        assert_eq!(bytes(12), "12 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(5 * 1024 * 1024), "5.0 MiB");
        assert_eq!(duration(Duration::from_secs(9)), "0:09");
        assert_eq!(duration(Duration::from_secs(423)), "7:03");
        assert_eq!(duration(Duration::from_secs(3909)), "1:05:09");
    }
}
