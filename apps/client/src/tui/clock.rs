//! Message times as the chat screen shows them: `HH:MM` in the user's time zone, and a date
//! line where the day changes. The zone is part of the screen's state, so tests draw in UTC
//! whatever the machine's zone is.

use chrono::{DateTime, FixedOffset, Local, NaiveDateTime};

/// The time zone times are shown in.
#[derive(Debug, Clone, Copy)]
pub enum Zone {
    /// The machine's (TZ, /etc/localtime), with its summer time on the day of each message.
    Local,
    /// A fixed offset: the tests draw in UTC.
    #[cfg_attr(not(test), allow(dead_code))]
    Fixed(FixedOffset),
}

impl Zone {
    /// Coordinated universal time.
    #[cfg(test)]
    pub fn utc() -> Zone {
        use chrono::{Offset, Utc};
        Zone::Fixed(Utc.fix())
    }

    /// `at_ms` (milliseconds since the Unix epoch) on the wall clock of this zone.
    fn wall(self, at_ms: i64) -> NaiveDateTime {
        let utc = DateTime::from_timestamp_millis(at_ms).unwrap_or_default();
        match self {
            Zone::Local => utc.with_timezone(&Local).naive_local(),
            Zone::Fixed(offset) => utc.with_timezone(&offset).naive_local(),
        }
    }

    /// `14:05`.
    pub fn time(self, at_ms: i64) -> String {
        self.wall(at_ms).format("%H:%M").to_string()
    }

    /// The day, to tell two times apart: equal for times on the same local day.
    pub fn day(self, at_ms: i64) -> chrono::NaiveDate {
        self.wall(at_ms).date()
    }

    /// `Monday 7 December 2026`, for the line between two days.
    pub fn day_line(self, at_ms: i64) -> String {
        self.wall(at_ms).format("%A %-d %B %Y").to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_days_follow_the_zone() {
        // 2026-12-07T23:30:00Z
        let at = 1_796_686_200_000;
        assert_eq!(Zone::utc().time(at), "23:30");
        assert_eq!(Zone::utc().day_line(at), "Monday 7 December 2026");
        let paris = Zone::Fixed(FixedOffset::east_opt(3600).unwrap());
        assert_eq!(paris.time(at), "00:30");
        assert_eq!(paris.day_line(at), "Tuesday 8 December 2026");
        assert_ne!(paris.day(at), Zone::utc().day(at));
    }
}
