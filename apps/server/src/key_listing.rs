//! `breeze-server account keys USER`: one line per profile key of an account, as the owner
//! reads it to decide what to revoke.
//!
//! ```text
//! 98dd:d8b2:027d:…  added 2026-12-07 22:50:01 UTC  last login 2026-12-08 09:12:44 UTC  good
//! 1c2f:0a9e:77b1:…  added 2026-11-02 08:00:00 UTC  last login 2026-11-30 17:01:09 UTC  revoked 2026-12-01 10:00:00 UTC
//! ```
//!
//! The fingerprint is the one `breeze-server account revoke USER FINGERPRINT` takes, and the
//! one a user's client names when the key is refused.

use breeze_server::AccountKey;

/// The line for `key`.
pub fn line(key: &AccountKey) -> String {
    let state = match key.revoked {
        Some(at) => format!("revoked {}", utc(at)),
        None => "good".to_owned(),
    };
    format!(
        "{}  added {}  last login {}  {state}",
        key.key.fingerprint(),
        utc(key.added),
        utc(key.last_login)
    )
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS UTC` (the proleptic Gregorian calendar).
pub fn utc(unix: i64) -> String {
    let (days, secs) = (unix.div_euclid(86_400), unix.rem_euclid(86_400));
    // Days since 1970-01-01 to a civil date (H. Hinnant's `civil_from_days`).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use breeze_core::secure::PublicKey;

    #[test]
    fn times_are_utc_calendar_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_796_683_801), "2026-12-07 22:50:01 UTC");
    }

    #[test]
    fn a_line_names_the_fingerprint_and_whether_the_key_is_good() {
        let key = PublicKey([3; 32]);
        let mut listed = AccountKey {
            key,
            added: 0,
            last_login: 60,
            revoked: None,
        };
        let good = line(&listed);
        assert!(good.starts_with(&key.fingerprint().to_string()), "{good}");
        assert!(
            good.ends_with("last login 1970-01-01 00:01:00 UTC  good"),
            "{good}"
        );
        listed.revoked = Some(3600);
        assert!(line(&listed).ends_with("revoked 1970-01-01 01:00:00 UTC"));
    }
}
