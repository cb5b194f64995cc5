//! Dates and timestamps in a strftime subset, to canonical text.

/// One item of a date pattern.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Item {
    Literal(char),
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
}

/// A date or timestamp pattern in a strftime subset: `%Y` (4 digits), `%m`, `%d`, `%H`, `%M`,
/// `%S` (1 or 2 digits), `%%`, and literal characters.
#[derive(Debug)]
pub(crate) struct DateFormat {
    pattern: String,
    items: Vec<Item>,
}

/// Year, month, day, hour, minute, second.
type Fields = [u32; 6];

impl DateFormat {
    /// Parse `pattern`; `for_timestamp` also requires `%H` and `%M`.
    pub(crate) fn new(pattern: &str, for_timestamp: bool) -> Result<Self, String> {
        let mut items = Vec::new();
        let mut chars = pattern.chars();
        while let Some(c) = chars.next() {
            items.push(match c {
                '%' => match chars.next() {
                    Some('Y') => Item::Year,
                    Some('m') => Item::Month,
                    Some('d') => Item::Day,
                    Some('H') => Item::Hour,
                    Some('M') => Item::Minute,
                    Some('S') => Item::Second,
                    Some('%') => Item::Literal('%'),
                    other => {
                        let found = other.map_or("a lone %".to_owned(), |c| format!("%{c}"));
                        return Err(format!(
                            "unsupported {found} in {pattern:?}; supported: %Y %m %d %H %M %S %%"
                        ));
                    }
                },
                c => Item::Literal(c),
            });
        }
        let mut needed = vec![(Item::Year, "%Y"), (Item::Month, "%m"), (Item::Day, "%d")];
        if for_timestamp {
            needed.extend([(Item::Hour, "%H"), (Item::Minute, "%M")]);
        }
        for (item, name) in needed {
            if !items.contains(&item) {
                return Err(format!("{pattern:?} has no {name}"));
            }
        }
        Ok(Self {
            pattern: pattern.to_owned(),
            items,
        })
    }

    /// The pattern as configured, for reject reasons.
    pub(crate) fn pattern(&self) -> &str {
        &self.pattern
    }

    /// `YYYY-MM-DD` into `out` (time fields in the pattern are parsed, then dropped).
    pub(crate) fn date(&self, value: &str, out: &mut String) -> bool {
        if self.items == ISO_DATE && iso_date(value) {
            // Already canonical: `YYYY-MM-DD` with every digit present.
            out.push_str(value);
            return true;
        }
        let Some([y, mo, d, ..]) = self.fields(value) else {
            return false;
        };
        push_date(out, y, mo, d);
        true
    }

    /// `YYYY-MM-DDTHH:MM:SS` into `out`.
    pub(crate) fn timestamp(&self, value: &str, out: &mut String) -> bool {
        let Some([y, mo, d, h, mi, s]) = self.fields(value) else {
            return false;
        };
        push_date(out, y, mo, d);
        out.push('T');
        push_digits(out, h, 2);
        out.push(':');
        push_digits(out, mi, 2);
        out.push(':');
        push_digits(out, s, 2);
        true
    }

    fn fields(&self, value: &str) -> Option<Fields> {
        let mut fields: Fields = [0, 1, 1, 0, 0, 0];
        let mut rest = value;
        for item in &self.items {
            let (slot, min_digits, max_digits) = match item {
                Item::Literal(c) => {
                    rest = rest.strip_prefix(*c)?;
                    continue;
                }
                Item::Year => (0, 4, 4),
                Item::Month => (1, 1, 2),
                Item::Day => (2, 1, 2),
                Item::Hour => (3, 1, 2),
                Item::Minute => (4, 1, 2),
                Item::Second => (5, 1, 2),
            };
            let len = rest
                .bytes()
                .take(max_digits)
                .take_while(u8::is_ascii_digit)
                .count();
            if len < min_digits {
                return None;
            }
            fields[slot] = rest[..len].parse().ok()?;
            rest = &rest[len..];
        }
        let [year, month, day, hour, minute, second] = fields;
        let valid = rest.is_empty()
            && (1..=12).contains(&month)
            && (1..=days_in_month(year, month)).contains(&day)
            && hour < 24
            && minute < 60
            && second < 60;
        valid.then_some(fields)
    }
}

/// The items of `%Y-%m-%d`.
const ISO_DATE: [Item; 5] = [
    Item::Year,
    Item::Literal('-'),
    Item::Month,
    Item::Literal('-'),
    Item::Day,
];

/// Whether `value` is a valid date written exactly `YYYY-MM-DD`, the canonical form.
fn iso_date(value: &str) -> bool {
    let b = value.as_bytes();
    let digit = |i: usize| b[i].is_ascii_digit();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    if ![0, 1, 2, 3, 5, 6, 8, 9].into_iter().all(digit) {
        return false;
    }
    let num = |range: std::ops::Range<usize>| {
        b[range]
            .iter()
            .fold(0u32, |n, &d| n * 10 + u32::from(d - b'0'))
    };
    let (year, month, day) = (num(0..4), num(5..7), num(8..10));
    (1..=12).contains(&month) && (1..=days_in_month(year, month)).contains(&day)
}

/// `YYYY-MM-DD`; `write!` would do, but formatting machinery is most of a date cast's time.
fn push_date(out: &mut String, year: u32, month: u32, day: u32) {
    push_digits(out, year, 4);
    out.push('-');
    push_digits(out, month, 2);
    out.push('-');
    push_digits(out, day, 2);
}

/// `n` as exactly `width` decimal digits, zero-padded (`n` has at most `width` digits: the
/// parser reads at most that many).
fn push_digits(out: &mut String, mut n: u32, width: usize) {
    let mut digits = [b'0'; 4];
    for slot in digits[..width].iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
    }
    out.extend(digits[..width].iter().map(|&d| char::from(d)));
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_timestamps() {
        let de = DateFormat::new("%d.%m.%Y", false).unwrap();
        let mut out = String::new();
        assert!(de.date("31.01.2026", &mut out));
        assert_eq!(out, "2026-01-31");
        out.clear();
        assert!(de.date("1.2.2026", &mut out), "one-digit day and month");
        assert_eq!(out, "2026-02-01");
        for bad in [
            "31.02.2026",
            "29.02.2025",
            "31.13.2026",
            "00.01.2026",
            "31.01.26",
            "31.01.2026x",
            "31-01-2026",
        ] {
            assert!(
                !de.date(bad, &mut String::new()),
                "{bad:?} should not parse"
            );
        }
        assert!(de.date("29.02.2024", &mut String::new()), "leap year");
        assert!(
            !de.date("29.02.1900", &mut String::new()),
            "not a leap year"
        );

        let ts = DateFormat::new("%d.%m.%Y %H:%M", true).unwrap();
        out.clear();
        assert!(ts.timestamp("31.01.2026 7:05", &mut out));
        assert_eq!(out, "2026-01-31T07:05:00");
        assert!(!ts.timestamp("31.01.2026 24:00", &mut String::new()));
    }

    #[test]
    fn iso_dates_take_the_short_way_to_the_same_answer() {
        let iso = DateFormat::new("%Y-%m-%d", false).unwrap();
        for value in [
            "2026-01-31",
            "2024-02-29",
            "2025-02-29",
            "1900-02-29",
            "2000-02-29",
            "2026-13-01",
            "2026-00-10",
            "2026-04-31",
            "2026-1-5",
            "2026-01-5",
            "0000-01-01",
            "2026-01-31x",
            "2026/01/31",
            "20260131",
            "２０２６-01-31",
        ] {
            let mut fast = String::new();
            let fast_ok = iso.date(value, &mut fast);
            let mut slow = String::new();
            let slow_ok = iso.fields(value).is_some_and(|[y, m, d, ..]| {
                push_date(&mut slow, y, m, d);
                true
            });
            assert_eq!((fast_ok, fast), (slow_ok, slow), "{value:?}");
        }
    }

    #[test]
    fn date_patterns_are_checked() {
        assert_eq!(
            DateFormat::new("%d.%m.%y", false).unwrap_err(),
            r#"unsupported %y in "%d.%m.%y"; supported: %Y %m %d %H %M %S %%"#
        );
        assert_eq!(
            DateFormat::new("%d.%m.%Y", true).unwrap_err(),
            r#""%d.%m.%Y" has no %H"#
        );
        assert!(DateFormat::new("%m/%Y", false).is_err());
        assert!(DateFormat::new("%Y%", false).is_err());
        let literal = DateFormat::new("%Y-%m-%d%%", false).unwrap();
        assert!(literal.date("2026-01-31%", &mut String::new()));
    }
}
