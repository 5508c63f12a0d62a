//! UTC timestamps in RFC 3339, without a date-time dependency.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A point in time as reports show it: `2026-11-28T03:46:26.123Z`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(pub Duration);

impl Timestamp {
    pub fn now() -> Self {
        Timestamp(SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default())
    }

    /// `20261128T034626Z`: sortable, and safe in a file name.
    pub fn compact(&self) -> String {
        let (y, mo, d, h, mi, s) = civil(self.0.as_secs());
        format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z")
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (y, mo, d, h, mi, s) = civil(self.0.as_secs());
        let ms = self.0.subsec_millis();
        write!(f, "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}Z")
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Seconds since the epoch to (year, month, day, hour, minute, second), proleptic Gregorian
/// (Howard Hinnant's days-from-civil inverse).
fn civil(secs: u64) -> (i64, u32, u32, u32, u32, u32) {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        m,
        d,
        (rem / 3600) as u32,
        (rem % 3600 / 60) as u32,
        (rem % 60) as u32,
    )
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date, or `None` when it is not one.
pub fn parse_date(text: &str) -> Option<i64> {
    let mut parts = text.trim().split('-');
    let (y, m, d): (i64, u32, u32) = (
        parts.next()?.parse().ok()?,
        parts.next()?.parse().ok()?,
        parts.next()?.parse().ok()?,
    );
    if parts.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&d) || !(1970..=9999).contains(&y) {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm), the inverse of `civil` above.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

/// Today as days since 1970-01-01.
pub fn today() -> i64 {
    (Timestamp::now().0.as_secs() / 86_400) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_parse_to_days() {
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(parse_date("2026-11-28"), Some(20_785));
        assert_eq!(parse_date("2026-13-01"), None);
        assert_eq!(parse_date("2026-11"), None);
        assert_eq!(parse_date("soon"), None);
    }

    #[test]
    fn formats_known_instants() {
        assert_eq!(Timestamp(Duration::ZERO).to_string(), "1970-01-01T00:00:00.000Z");
        let t = Timestamp(Duration::from_millis(1_795_837_586_123));
        assert_eq!(t.to_string(), "2026-11-28T03:46:26.123Z");
        assert_eq!(t.compact(), "20261128T034626Z");
        // A leap day.
        assert_eq!(
            Timestamp(Duration::from_secs(951_782_400)).to_string(),
            "2000-02-29T00:00:00.000Z"
        );
    }
}
