//! One cron field: its syntax (lists, ranges, steps, names) and the set of values it accepts.

use chrono::{Datelike, NaiveDate};

use crate::days::{self, DayRules};
use crate::error::ScheduleErrorKind;

/// Which of the six fields a piece of text belongs to; decides range, names and error wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FieldKind {
    Second,
    Minute,
    Hour,
    DayOfMonth,
    Month,
    DayOfWeek,
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const WEEKDAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

impl FieldKind {
    /// The name used in error messages.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Second => "second",
            Self::Minute => "minute",
            Self::Hour => "hour",
            Self::DayOfMonth => "day-of-month",
            Self::Month => "month",
            Self::DayOfWeek => "day-of-week",
        }
    }

    /// Values that may be written. Day-of-week accepts 7 as a second spelling of Sunday.
    fn bounds(self) -> (u32, u32) {
        match self {
            Self::Second | Self::Minute => (0, 59),
            Self::Hour => (0, 23),
            Self::DayOfMonth => (1, 31),
            Self::Month => (1, 12),
            Self::DayOfWeek => (0, 7),
        }
    }

    /// What `*` (and the open end of `N/step`) spans. For day-of-week this stops at Saturday so
    /// that `1/2` means Mon, Wed, Fri (as robfig/cron reads it) and Sunday is not counted twice.
    fn span(self) -> (u32, u32) {
        match self {
            Self::DayOfWeek => (0, 6),
            other => other.bounds(),
        }
    }

    fn names(self) -> &'static [&'static str] {
        match self {
            Self::Month => &MONTHS,
            Self::DayOfWeek => &WEEKDAYS,
            _ => &[],
        }
    }

    fn expected(self) -> &'static str {
        match self {
            Self::Month => "a number or a name (jan-dec)",
            Self::DayOfWeek => "a number or a name (sun-sat)",
            _ => "a number",
        }
    }
}

/// A set of small numbers (bit n set = value n accepted). Every field fits in 64 bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Bits(u64);

impl Bits {
    pub(crate) fn contains(self, v: u32) -> bool {
        v < 64 && self.0 & (1 << v) != 0
    }

    /// The smallest accepted value that is `>= v`.
    pub(crate) fn next_from(self, v: u32) -> Option<u32> {
        if v >= 64 {
            return None;
        }
        let rest = self.0 & (u64::MAX << v);
        (rest != 0).then(|| rest.trailing_zeros())
    }

    pub(crate) fn first(self) -> Option<u32> {
        self.next_from(0)
    }

    pub(crate) fn values(self) -> impl Iterator<Item = u32> {
        (0..64).filter(move |&v| self.contains(v))
    }

    pub(crate) fn insert(&mut self, v: u32) {
        self.0 |= 1 << v;
    }
}

/// One comma-separated item as written, kept for [`crate::Schedule::describe`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    /// `*`, or `*/step` when `step > 1`.
    Every { step: u32 },
    /// A single value.
    Value(u32),
    /// `lo-hi`, `lo-hi/step` or `lo/step` (which runs to the end of the field).
    Range { lo: u32, hi: u32, step: u32 },
    /// Day-of-month `L`: the last day of the month.
    LastDay,
    /// Day-of-month `LW`: the last Monday-to-Friday day of the month.
    LastWeekday,
    /// Day-of-month `nW`: the weekday nearest day `n` of the month.
    NearestWeekday(u32),
    /// Day-of-week `d#n`: the `nth` (1-5) `weekday` (0 = Sunday) of the month.
    Nth { weekday: u32, nth: u32 },
    /// Day-of-week `dL`: the last `weekday` (0 = Sunday) of the month.
    LastOf(u32),
}

impl Part {
    /// One of the day extensions (`L`, `LW`, `nW`, `d#n`, `dL`), which no bit set can hold.
    pub(crate) fn is_extension(self) -> bool {
        !matches!(
            self,
            Self::Every { .. } | Self::Value(_) | Self::Range { .. }
        )
    }
}

/// A parsed field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Field {
    pub(crate) kind: FieldKind,
    pub(crate) bits: Bits,
    /// The extension items (day fields only), which depend on the month and year.
    pub(crate) rules: DayRules,
    /// The text starts with `*`. Vixie cron uses exactly this test to decide whether the day
    /// fields are "restricted" (`*/2` is not), and so whether they combine with OR or AND.
    pub(crate) star: bool,
    pub(crate) parts: Vec<Part>,
}

impl Field {
    /// Parses one whitespace-free field.
    pub(crate) fn parse(kind: FieldKind, text: &str) -> Result<Self, ScheduleErrorKind> {
        let mut bits = Bits::default();
        let mut rules = DayRules::default();
        let mut parts = Vec::new();
        for item in text.split(',') {
            if item.is_empty() {
                return Err(ScheduleErrorKind::EmptyItem {
                    field: kind.name(),
                    token: text.to_owned(),
                });
            }
            let part = match days::parse_item(kind, item) {
                Some(extension) => extension?,
                None => {
                    parse_item(kind, item).map_err(|e| days::explain_misplaced(kind, item, e))?
                }
            };
            if part.is_extension() {
                rules.add(part);
            } else {
                add_part(kind, part, &mut bits);
            }
            parts.push(part);
        }
        Ok(Self {
            kind,
            bits,
            rules,
            star: text.starts_with('*'),
            parts,
        })
    }

    /// Whether `date` is one of the days this day-of-month or day-of-week field names.
    pub(crate) fn matches_date(&self, date: NaiveDate) -> bool {
        match self.kind {
            FieldKind::DayOfWeek => {
                self.bits.contains(date.weekday().num_days_from_sunday())
                    || self.rules.match_day_of_week(date)
            }
            _ => self.bits.contains(date.day()) || self.rules.match_day_of_month(date),
        }
    }

    /// Whether a day this day-of-month field names exists in `month` in some year (2000 below
    /// is a leap year, so February has its 29th).
    pub(crate) fn some_day_exists_in(&self, month: u32) -> bool {
        self.bits
            .first()
            .is_some_and(|day| day <= days::days_in_month(2000, month))
            || self.rules.exist_in(month)
    }

    /// The field written as a single `*`.
    pub(crate) fn is_all(&self) -> bool {
        self.parts == [Part::Every { step: 1 }]
    }

    /// The field is exactly one value, e.g. `30`.
    pub(crate) fn single(&self) -> Option<u32> {
        match self.parts[..] {
            [Part::Value(v)] => Some(fold(self.kind, v)),
            _ => None,
        }
    }
}

/// Day-of-week 7 is Sunday, stored as 0.
fn fold(kind: FieldKind, v: u32) -> u32 {
    if kind == FieldKind::DayOfWeek && v == 7 {
        0
    } else {
        v
    }
}

fn add_part(kind: FieldKind, part: Part, bits: &mut Bits) {
    let (lo, hi, step) = match part {
        Part::Every { step } => {
            let (lo, hi) = kind.span();
            (lo, hi, step)
        }
        Part::Value(v) => (v, v, 1),
        Part::Range { lo, hi, step } => (lo, hi, step),
        // Kept in `DayRules` instead.
        _ => return,
    };
    (lo..=hi)
        .step_by(step as usize)
        .for_each(|v| bits.insert(fold(kind, v)));
}

fn parse_item(kind: FieldKind, item: &str) -> Result<Part, ScheduleErrorKind> {
    let (base, step) = match item.split_once('/') {
        Some((base, step)) => (base, Some(parse_step(kind, item, step)?)),
        None => (item, None),
    };
    if base == "*" {
        return Ok(Part::Every {
            step: step.unwrap_or(1),
        });
    }
    // An empty end (`-90`, `5-`, `/5`) would otherwise be reported as `""`, which says nothing.
    if base.is_empty() || base.starts_with('-') || base.ends_with('-') {
        return Err(not_a_value(kind, item));
    }
    let (lo, hi) = match base.split_once('-') {
        Some((lo, hi)) => {
            let lo = parse_value(kind, lo)?;
            let mut hi = parse_value(kind, hi)?;
            // `fri-sun` reads naturally and is not a wrap-around: Sunday is also 7.
            if kind == FieldKind::DayOfWeek && hi == 0 && lo > 0 {
                hi = 7;
            }
            if lo > hi {
                return Err(ScheduleErrorKind::ReversedRange {
                    field: kind.name(),
                    token: base.to_owned(),
                });
            }
            (lo, hi)
        }
        None => {
            let v = parse_value(kind, base)?;
            match step {
                // `N/step` runs from N to the end of the field, as in robfig/cron and croniter
                // (Vixie cron itself rejects it).
                Some(_) => (v, kind.span().1.max(v)),
                None => return Ok(Part::Value(v)),
            }
        }
    };
    Ok(Part::Range {
        lo,
        hi,
        step: step.unwrap_or(1),
    })
}

fn parse_step(kind: FieldKind, item: &str, step: &str) -> Result<u32, ScheduleErrorKind> {
    match step.parse::<u32>() {
        Ok(n) if n >= 1 && step.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(ScheduleErrorKind::BadStep {
            field: kind.name(),
            token: item.to_owned(),
        }),
    }
}

pub(crate) fn parse_value(kind: FieldKind, token: &str) -> Result<u32, ScheduleErrorKind> {
    let (min, max) = kind.bounds();
    if !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit()) {
        // Digits that overflow u32 are simply out of range too.
        return match token.parse::<u32>() {
            Ok(v) if (min..=max).contains(&v) => Ok(v),
            _ => Err(ScheduleErrorKind::OutOfRange {
                field: kind.name(),
                token: token.to_owned(),
                min,
                max,
            }),
        };
    }
    let lower = token.to_ascii_lowercase();
    kind.names()
        .iter()
        .position(|name| *name == lower)
        // Months are numbered from 1, weekdays from 0 (Sunday).
        .map(|i| i as u32 + min)
        .ok_or_else(|| not_a_value(kind, token))
}

fn not_a_value(kind: FieldKind, token: &str) -> ScheduleErrorKind {
    ScheduleErrorKind::NotAValue {
        field: kind.name(),
        token: token.to_owned(),
        expected: kind.expected(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(kind: FieldKind, text: &str) -> Vec<u32> {
        Field::parse(kind, text).unwrap().bits.values().collect()
    }

    #[test]
    fn lists_ranges_and_steps() {
        assert_eq!(values(FieldKind::Minute, "*/15"), [0, 15, 30, 45]);
        assert_eq!(values(FieldKind::Minute, "1-10/2"), [1, 3, 5, 7, 9]);
        assert_eq!(values(FieldKind::Minute, "5/20"), [5, 25, 45]);
        assert_eq!(values(FieldKind::Hour, "1,3,2-4"), [1, 2, 3, 4]);
        assert_eq!(values(FieldKind::DayOfMonth, "*/10"), [1, 11, 21, 31]);
    }

    #[test]
    fn names_and_sunday() {
        assert_eq!(values(FieldKind::Month, "JAN,mar-May"), [1, 3, 4, 5]);
        assert_eq!(values(FieldKind::DayOfWeek, "mon-fri"), [1, 2, 3, 4, 5]);
        assert_eq!(values(FieldKind::DayOfWeek, "7"), [0]);
        assert_eq!(values(FieldKind::DayOfWeek, "5-7"), [0, 5, 6]);
        assert_eq!(values(FieldKind::DayOfWeek, "fri-sun"), [0, 5, 6]);
        assert_eq!(values(FieldKind::DayOfWeek, "1/2"), [1, 3, 5]);
        assert_eq!(values(FieldKind::DayOfWeek, "*"), [0, 1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn star_flag_follows_the_first_character() {
        assert!(Field::parse(FieldKind::DayOfMonth, "*/2").unwrap().star);
        assert!(!Field::parse(FieldKind::DayOfMonth, "1-31").unwrap().star);
    }

    #[test]
    fn bits_next_from() {
        let bits = Field::parse(FieldKind::Minute, "3-5").unwrap().bits;
        assert_eq!(bits.next_from(0), Some(3));
        assert_eq!(bits.next_from(5), Some(5));
        assert_eq!(bits.next_from(6), None);
        assert_eq!(bits.next_from(64), None);
    }
}
