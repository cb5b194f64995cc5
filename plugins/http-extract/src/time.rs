//! Dates and timestamps as JSON APIs write them, parsed to instants for watermarks and written
//! back in the contract's canonical text (`YYYY-MM-DDTHH:MM:SS[.fff][Z|±HH:MM]`).

/// A point in time: seconds and nanoseconds since 1970-01-01T00:00:00Z.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant {
    /// Seconds since the epoch (negative before 1970).
    pub secs: i64,
    /// Nanoseconds within the second.
    pub nanos: u32,
}

/// A parsed timestamp: its instant and its canonical text (offset kept as written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timestamp {
    /// When.
    pub instant: Instant,
    /// `YYYY-MM-DDTHH:MM:SS[.f…][Z|±HH:MM]`.
    pub canonical: String,
}

impl Instant {
    /// Parse an RFC 3339-like timestamp: `YYYY-MM-DD[T| ]HH:MM[:SS[.f…]][Z|±HH[:]MM]`; without
    /// an offset it is taken as UTC. `None` for anything else, dates alone included.
    pub fn parse(s: &str) -> Option<Instant> {
        parse_timestamp(s).map(|t| t.instant)
    }

    /// The instant `seconds` earlier.
    pub fn minus_seconds(self, seconds: u64) -> Instant {
        Instant {
            secs: self
                .secs
                .saturating_sub(i64::try_from(seconds).unwrap_or(i64::MAX)),
            nanos: self.nanos,
        }
    }

    /// `YYYY-MM-DDTHH:MM:SS[.f…]Z`, fraction digits only as many as needed.
    pub fn to_rfc3339(self) -> String {
        let days = self.secs.div_euclid(86_400);
        let rem = self.secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        let mut s = format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60
        );
        if self.nanos > 0 {
            let frac = format!("{:09}", self.nanos);
            s.push('.');
            s.push_str(frac.trim_end_matches('0'));
        }
        s.push('Z');
        s
    }

    /// The current time by the wall clock (WASI's in a component).
    pub fn now() -> Instant {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Instant {
            secs: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            nanos: d.subsec_nanos(),
        }
    }
}

/// Parse a timestamp (see [`Instant::parse`]) keeping its canonical text.
pub fn parse_timestamp(s: &str) -> Option<Timestamp> {
    let b = s.trim().as_bytes();
    let (y, m, d) = date_part(b.get(..10)?)?;
    if !matches!(b.get(10), Some(b'T' | b't' | b' ')) {
        return None;
    }
    let hh = two(b, 11)?;
    if b.get(13) != Some(&b':') {
        return None;
    }
    let mm = two(b, 14)?;
    let mut i = 16;
    let mut ss = 0;
    if b.get(i) == Some(&b':') {
        ss = two(b, 17)?;
        i = 19;
    }
    // 60 is a leap second: accepted and read as the next second's start, as most systems do.
    if hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    let mut nanos = 0u32;
    let mut frac = "";
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        let mut end = start;
        while b.get(end).is_some_and(u8::is_ascii_digit) {
            end += 1;
        }
        if end == start {
            return None;
        }
        frac = std::str::from_utf8(&b[start..end]).ok()?;
        let digits: String = frac.chars().chain("000000000".chars()).take(9).collect();
        nanos = digits.parse().ok()?;
        i = end;
    }
    let (offset_secs, offset_text) = match &b[i..] {
        [] => (0, "Z".to_owned()),
        [b'Z' | b'z'] => (0, "Z".to_owned()),
        [sign @ (b'+' | b'-'), rest @ ..] => {
            let (oh, om) = match rest {
                [h1, h2, b':', m1, m2] | [h1, h2, m1, m2] => {
                    (digits2(*h1, *h2)?, digits2(*m1, *m2)?)
                }
                [h1, h2] => (digits2(*h1, *h2)?, 0),
                _ => return None,
            };
            if oh > 23 || om > 59 {
                return None;
            }
            let secs = i64::from(oh * 3600 + om * 60);
            let sign_char = char::from(*sign);
            if secs == 0 {
                (0, "Z".to_owned())
            } else {
                let secs = if *sign == b'-' { -secs } else { secs };
                (secs, format!("{sign_char}{oh:02}:{om:02}"))
            }
        }
        _ => return None,
    };
    let days = days_from_civil(y, m, d);
    let secs = days * 86_400 + i64::from(hh * 3600 + mm * 60 + ss) - offset_secs;
    let mut canonical = format!(
        "{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}",
        y = y,
        m = m,
        d = d
    );
    if !frac.is_empty() {
        canonical.push('.');
        canonical.push_str(frac);
    }
    canonical.push_str(&offset_text);
    Some(Timestamp {
        instant: Instant { secs, nanos },
        canonical,
    })
}

/// A calendar date `YYYY-MM-DD` (exactly), checked against the calendar.
pub fn parse_date(s: &str) -> Option<(i64, u32, u32)> {
    let b = s.as_bytes();
    if b.len() != 10 {
        return None;
    }
    date_part(b)
}

fn date_part(b: &[u8]) -> Option<(i64, u32, u32)> {
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let y = i64::from(two(b, 0)? * 100 + two(b, 2)?);
    let m = two(b, 5)?;
    let d = two(b, 8)?;
    if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
        return None;
    }
    Some((y, m, d))
}

fn two(b: &[u8], at: usize) -> Option<u32> {
    digits2(*b.get(at)?, *b.get(at + 1)?)
}

fn digits2(a: u8, b: u8) -> Option<u32> {
    (a.is_ascii_digit() && b.is_ascii_digit())
        .then(|| u32::from(a - b'0') * 10 + u32::from(b - b'0'))
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_usual_spellings_to_one_instant() {
        let utc = Instant::parse("2026-03-01T08:00:00Z").unwrap();
        for s in [
            "2026-03-01T08:00:00Z",
            "2026-03-01T08:00:00",
            "2026-03-01 08:00:00",
            "2026-03-01T08:00Z",
            "2026-03-01T10:00:00+02:00",
            "2026-03-01T10:00:00+0200",
            "2026-03-01T03:00:00-05",
            "2026-03-01t08:00:00.000z",
        ] {
            assert_eq!(Instant::parse(s), Some(utc), "{s}");
        }
        assert_eq!(utc.secs, 1_772_352_000);
        assert_eq!(utc.to_rfc3339(), "2026-03-01T08:00:00Z");
        let frac = Instant::parse("1969-12-31T23:59:59.25Z").unwrap();
        assert_eq!((frac.secs, frac.nanos), (-1, 250_000_000));
        assert_eq!(frac.to_rfc3339(), "1969-12-31T23:59:59.25Z");
        for bad in [
            "2026-03-01",
            "2026-02-30T00:00:00Z",
            "2026-03-01T24:00:00Z",
            "2026-03-01T08:00:00+2",
            "2026-03-01T08:00:00.Z",
            "yesterday",
            "1772352000",
        ] {
            assert_eq!(Instant::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn canonical_text_keeps_the_offset_and_fraction() {
        let t = parse_timestamp("2026-03-01 10:00:00.5+0200").unwrap();
        assert_eq!(t.canonical, "2026-03-01T10:00:00.5+02:00");
        assert_eq!(
            parse_timestamp("2026-03-01T10:00-00:00").unwrap().canonical,
            "2026-03-01T10:00:00Z"
        );
    }

    #[test]
    fn dates_follow_the_calendar() {
        assert_eq!(parse_date("2024-02-29"), Some((2024, 2, 29)));
        assert_eq!(parse_date("2023-02-29"), None);
        assert_eq!(parse_date("2000-02-29"), Some((2000, 2, 29)));
        assert_eq!(parse_date("1900-02-29"), None);
        assert_eq!(parse_date("2024-2-9"), None);
        assert_eq!(parse_date("2024-02-09T00:00:00Z"), None);
    }

    #[test]
    fn days_round_trip() {
        for days in [-800_000, -1, 0, 1, 11_016, 20_513, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(
            Instant::parse("2026-03-01T08:00:30Z")
                .unwrap()
                .minus_seconds(3600)
                .to_rfc3339(),
            "2026-03-01T07:00:30Z"
        );
    }
}
