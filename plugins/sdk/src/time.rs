//! Dates and timestamps in the contract's canonical text (`2026-01-31`,
//! `2026-01-31T08:00:00.250+01:00`) as numbers that compare correctly: days since 1970-01-01,
//! and microseconds since 1970-01-01T00:00:00Z. For filters, versions and range checks.
//!
//! ```
//! use weir_sdk::time::{parse_date, parse_timestamp};
//! assert_eq!(parse_date("1970-01-02"), Some(1));
//! assert_eq!(parse_timestamp("1970-01-01T01:00:01+01:00"), Some(1_000_000));
//! ```

/// `YYYY-MM-DD` → days since 1970-01-01; `None` when it is not a valid date in that form.
pub fn parse_date(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let year = digits(&b[0..4])?;
    let month = digits(&b[5..7])?;
    let day = digits(&b[8..10])?;
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    Some(days_from_civil(year, month, day))
}

/// `YYYY-MM-DD[T ]HH:MM:SS[.fff…][Z|±HH:MM]` → microseconds since the epoch, UTC. Without an
/// offset the time is read as UTC; fraction digits past the sixth are truncated. A date alone
/// is its midnight (UTC). `None` for anything else.
pub fn parse_timestamp(text: &str) -> Option<i64> {
    if text.len() == 10 {
        return parse_date(text).map(|d| d * 86_400_000_000);
    }
    let b = text.as_bytes();
    if b.len() < 19 || !(b[10] == b'T' || b[10] == b' ') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let days = parse_date(text.get(..10)?)?;
    let hour = digits(&b[11..13])?;
    let minute = digits(&b[14..16])?;
    let second = digits(&b[17..19])?;
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut rest = &b[19..];
    let mut micros = 0i64;
    if let Some(fraction) = rest.strip_prefix(b".") {
        let len = fraction.iter().take_while(|c| c.is_ascii_digit()).count();
        if len == 0 {
            return None;
        }
        // Digits past the sixth are below a microsecond: truncated.
        for (i, &c) in fraction[..len].iter().enumerate().take(6) {
            micros += i64::from(c - b'0') * 10i64.pow(5 - i as u32);
        }
        rest = &fraction[len..];
    }
    let offset_seconds = match rest {
        [] | [b'Z'] | [b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let hours = digits(&[*h1, *h2])?;
            let minutes = digits(&[*m1, *m2])?;
            let seconds = hours * 3600 + minutes * 60;
            if *sign == b'-' { -seconds } else { seconds }
        }
        _ => return None,
    };
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_seconds;
    Some(seconds * 1_000_000 + micros)
}

fn digits(b: &[u8]) -> Option<i64> {
    b.iter().try_fold(0i64, |n, &c| {
        c.is_ascii_digit().then(|| n * 10 + i64::from(c - b'0'))
    })
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_count_days_from_the_epoch() {
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(parse_date("1970-01-02"), Some(1));
        assert_eq!(parse_date("1969-12-31"), Some(-1));
        assert_eq!(parse_date("2000-03-01"), Some(11_017));
        assert_eq!(parse_date("2024-02-29"), Some(19_782));
        for bad in [
            "2023-02-29",
            "2026-13-01",
            "2026-1-01",
            "2026-01-00",
            "20260101",
            "x",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn timestamps_are_utc_microseconds() {
        assert_eq!(parse_timestamp("1970-01-01T00:00:01Z"), Some(1_000_000));
        assert_eq!(parse_timestamp("1970-01-01 00:00:01"), Some(1_000_000));
        assert_eq!(parse_timestamp("1970-01-01T00:00:00.25"), Some(250_000));
        assert_eq!(
            parse_timestamp("1970-01-01T00:00:00.1234567"),
            Some(123_456)
        );
        assert_eq!(
            parse_timestamp("1970-01-01T01:00:00+01:00"),
            parse_timestamp("1970-01-01T00:00:00Z")
        );
        assert_eq!(
            parse_timestamp("1969-12-31T23:00:00-01:00"),
            Some(0),
            "an offset west of UTC"
        );
        assert_eq!(parse_timestamp("1970-01-02"), Some(86_400_000_000));
        for bad in [
            "1970-01-01T24:00:00",
            "1970-01-01T00:00",
            "1970-01-01T00:00:00+1",
            "1970-01-01T00:00:00.",
        ] {
            assert_eq!(parse_timestamp(bad), None, "{bad}");
        }
    }
}
