//! The parsed expression and the wall-clock search: which local date-times match, and the
//! first one after a given local time. Time zones come later (see `zone.rs`).

use chrono::{Datelike, NaiveDate, NaiveDateTime, TimeDelta, Timelike};

use crate::days::days_in_month;
use crate::error::ScheduleErrorKind;
use crate::field::{Field, FieldKind};

/// How far ahead to look before concluding nothing matches. The Gregorian calendar repeats
/// every 400 years, so a pattern with no match in that window has none at all; in practice a
/// match is found within a few years (the rarest real case, Feb 29 on a given weekday, recurs
/// every 28 years).
const SEARCH_YEARS: i32 = 400;

/// A cron expression broken into its six fields. Five-field expressions get seconds = `0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Spec {
    pub(crate) has_seconds: bool,
    pub(crate) second: Field,
    pub(crate) minute: Field,
    pub(crate) hour: Field,
    pub(crate) day_of_month: Field,
    pub(crate) month: Field,
    pub(crate) day_of_week: Field,
}

impl Spec {
    /// Parses an expression: a shorthand or 5/6 whitespace-separated fields.
    pub(crate) fn parse(expr: &str) -> Result<Self, ScheduleErrorKind> {
        let expr = expr.trim();
        if expr.is_empty() {
            return Err(ScheduleErrorKind::Empty);
        }
        let expanded;
        let text = if expr.starts_with('@') {
            expanded = shorthand(expr)?;
            expanded
        } else {
            expr
        };
        let fields: Vec<&str> = text.split_whitespace().collect();
        let (has_seconds, second, rest) = match fields.len() {
            5 => (false, "0", &fields[..]),
            6 => (true, fields[0], &fields[1..]),
            found => return Err(ScheduleErrorKind::FieldCount { found }),
        };
        let spec = Self {
            has_seconds,
            second: Field::parse(FieldKind::Second, second)?,
            minute: Field::parse(FieldKind::Minute, rest[0])?,
            hour: Field::parse(FieldKind::Hour, rest[1])?,
            day_of_month: Field::parse(FieldKind::DayOfMonth, rest[2])?,
            month: Field::parse(FieldKind::Month, rest[3])?,
            day_of_week: Field::parse(FieldKind::DayOfWeek, rest[4])?,
        };
        spec.check_can_fire()?;
        Ok(spec)
    }

    /// Vixie cron's day rule: if either day field starts with `*` both must match (so a `*`
    /// field is a no-op); if both are restricted, either may match.
    pub(crate) fn days_are_ored(&self) -> bool {
        !self.day_of_month.star && !self.day_of_week.star
    }

    /// Whether the job follows the wall clock across daylight-saving changes (runs in both
    /// passes of a repeated hour, never for a skipped one) rather than naming fixed clock times.
    /// Vixie cron's test, which cronsim copies: the minute or the hour field starts with `*`
    /// (its `MIN_STAR`/`HR_STAR` flags), so `*/15 * * * *` and `@hourly` follow the wall clock
    /// while `0,15,30,45 2 * * *` and `0-59/15 2 * * *` name fixed times.
    pub(crate) fn follows_wall_clock(&self) -> bool {
        self.minute.star || self.hour.star
    }

    fn day_matches(&self, date: NaiveDate) -> bool {
        let dom = self.day_of_month.matches_date(date);
        let dow = self.day_of_week.matches_date(date);
        if self.days_are_ored() {
            dom || dow
        } else {
            dom && dow
        }
    }

    /// Refuses a pattern no date can match. With OR the day-of-week items always match some
    /// day (a plain weekday every week; `d#n` and `dL` in some month of some year). With AND
    /// some chosen day of the month must exist in some chosen month; for plain days that is
    /// enough (any date falls on every weekday in some year, Feb 29 included), but the
    /// extensions tie days to weekdays (`LW` is never a Saturday, `*/20` is never the second
    /// Monday), so then we search: the calendar repeats every 400 years, as far as
    /// `next_local` looks.
    fn check_can_fire(&self) -> Result<(), ScheduleErrorKind> {
        if self.days_are_ored() {
            return Ok(());
        }
        if !self
            .month
            .bits
            .values()
            .any(|m| self.day_of_month.some_day_exists_in(m))
        {
            return Err(ScheduleErrorKind::NeverFires);
        }
        let extensions = !self.day_of_month.rules.is_empty() || !self.day_of_week.rules.is_empty();
        let start = NaiveDate::from_ymd_opt(2000, 1, 1).and_then(|d| d.and_hms_opt(0, 0, 0));
        if extensions && start.and_then(|t| self.next_local(t)).is_none() {
            return Err(ScheduleErrorKind::NoMatchingDay);
        }
        Ok(())
    }

    /// The first matching wall-clock time strictly after `after` (whole seconds; any fraction
    /// of `after` is dropped, which is the same as rounding it down since fire times are whole).
    pub(crate) fn next_local(&self, after: NaiveDateTime) -> Option<NaiveDateTime> {
        let start = after.with_nanosecond(0)? + TimeDelta::seconds(1);
        let mut c = Cursor::from(start);
        let limit = start.year() + SEARCH_YEARS;
        // Each step either accepts the current unit or moves the cursor to the start of the
        // next candidate for it, resetting the smaller units; `continue` re-checks from the top
        // because moving can roll over into a larger unit.
        loop {
            if c.year > limit {
                return None;
            }
            match self.month.bits.next_from(c.month) {
                Some(m) if m == c.month => {}
                Some(m) => c.set_month(m),
                None => {
                    c.next_year();
                    continue;
                }
            }
            if c.day > days_in_month(c.year, c.month) {
                c.next_month();
                continue;
            }
            if !self.day_matches(NaiveDate::from_ymd_opt(c.year, c.month, c.day)?) {
                c.next_day();
                continue;
            }
            match self.hour.bits.next_from(c.hour) {
                Some(h) if h == c.hour => {}
                Some(h) => c.set_hour(h),
                None => {
                    c.next_day();
                    continue;
                }
            }
            match self.minute.bits.next_from(c.minute) {
                Some(m) if m == c.minute => {}
                Some(m) => c.set_minute(m),
                None => {
                    c.set_hour(c.hour + 1);
                    continue;
                }
            }
            match self.second.bits.next_from(c.second) {
                Some(s) => c.second = s,
                None => {
                    c.set_minute(c.minute + 1);
                    continue;
                }
            }
            return c.to_naive();
        }
    }
}

/// The six expansions from crontab(5).
fn shorthand(expr: &str) -> Result<&'static str, ScheduleErrorKind> {
    Ok(match expr.to_ascii_lowercase().as_str() {
        "@yearly" | "@annually" => "0 0 1 1 *",
        "@monthly" => "0 0 1 * *",
        "@weekly" => "0 0 * * 0",
        "@daily" | "@midnight" => "0 0 * * *",
        "@hourly" => "0 * * * *",
        _ => {
            return Err(ScheduleErrorKind::UnknownShorthand {
                token: expr.to_owned(),
            });
        }
    })
}

/// A wall-clock position whose units may temporarily overflow (hour 24, day 32, month 13);
/// the search loop normalises them as it goes.
struct Cursor {
    year: i32,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
}

impl From<NaiveDateTime> for Cursor {
    fn from(t: NaiveDateTime) -> Self {
        Self {
            year: t.year(),
            month: t.month(),
            day: t.day(),
            hour: t.hour(),
            minute: t.minute(),
            second: t.second(),
        }
    }
}

impl Cursor {
    fn next_year(&mut self) {
        self.year += 1;
        self.set_month(1);
    }

    fn set_month(&mut self, month: u32) {
        self.month = month;
        self.set_day(1);
    }

    fn next_month(&mut self) {
        if self.month == 12 {
            self.next_year();
        } else {
            self.set_month(self.month + 1);
        }
    }

    fn set_day(&mut self, day: u32) {
        self.day = day;
        self.set_hour(0);
    }

    fn next_day(&mut self) {
        self.set_day(self.day + 1);
    }

    fn set_hour(&mut self, hour: u32) {
        self.hour = hour;
        self.set_minute(0);
    }

    fn set_minute(&mut self, minute: u32) {
        self.minute = minute;
        self.second = 0;
    }

    fn to_naive(&self) -> Option<NaiveDateTime> {
        NaiveDate::from_ymd_opt(self.year, self.month, self.day)?.and_hms_opt(
            self.hour,
            self.minute,
            self.second,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    fn next(expr: &str, after: &str) -> String {
        let spec = Spec::parse(expr).unwrap();
        spec.next_local(naive(after)).unwrap().to_string()
    }

    #[test]
    fn rolls_over_every_unit() {
        assert_eq!(
            next("* * * * *", "2012-12-31 23:59:00"),
            "2013-01-01 00:00:00"
        );
        assert_eq!(
            next("0 * * * * *", "2012-12-31 23:59:45"),
            "2013-01-01 00:00:00"
        );
        assert_eq!(
            next("0 0 31 * *", "2024-04-01 00:00:00"),
            "2024-05-31 00:00:00"
        );
    }

    #[test]
    fn leap_day_waits_for_a_leap_year() {
        assert_eq!(
            next("0 0 29 2 *", "2097-01-01 00:00:00"),
            "2104-02-29 00:00:00"
        );
    }

    #[test]
    fn day_fields_or_and_and() {
        // 2024-06-03 is a Monday.
        assert_eq!(
            next("0 0 15 * mon", "2024-06-01 00:00:00"),
            "2024-06-03 00:00:00"
        );
        assert_eq!(
            next("0 0 */2 * mon", "2024-06-01 00:00:00"),
            "2024-06-03 00:00:00"
        );
        assert_eq!(
            next("0 0 */2 * tue", "2024-06-01 00:00:00"),
            "2024-06-11 00:00:00"
        );
    }

    #[test]
    fn rare_dates_are_found() {
        // Feb 29 on a Sunday (AND, because day-of-week starts with `*`): 2032 after 2004.
        assert_eq!(
            next("0 0 29 2 */7", "2004-03-01 00:00:00"),
            "2032-02-29 00:00:00"
        );
    }

    #[test]
    fn wall_clock_jobs_are_told_by_the_first_character() {
        for (expr, wall_clock) in [
            ("*/15 * * * *", true),
            ("0 * * * *", true),
            ("@hourly", true),
            ("*/10 2 * * *", true),
            ("5 */2 * * *", true),
            ("* * * * * *", true),
            ("30 2 * * *", false),
            ("0,15,30,45 2 * * *", false),
            ("0-59/15 1-3 * * *", false),
            ("@daily", false),
            ("@weekly", false),
            // Seconds do not count: Vixie has none, and this still names the time 02:30.
            ("*/10 30 2 * * *", false),
        ] {
            let spec = Spec::parse(expr).unwrap();
            assert_eq!(spec.follows_wall_clock(), wall_clock, "{expr}");
        }
    }

    #[test]
    fn never_firing_patterns_are_rejected() {
        assert_eq!(
            Spec::parse("0 0 30 2 *"),
            Err(ScheduleErrorKind::NeverFires)
        );
        assert_eq!(
            Spec::parse("0 0 31 4,6 *"),
            Err(ScheduleErrorKind::NeverFires)
        );
        assert!(
            Spec::parse("0 0 31 2 mon").is_ok(),
            "weekday rescues it (OR)"
        );
        assert!(Spec::parse("0 0 29 2 *").is_ok());
        assert_eq!(
            Spec::parse("0 0 31W 4,6 *"),
            Err(ScheduleErrorKind::NeverFires)
        );
        // The last weekday is never on a weekend; the 1st and 21st are never a second Monday.
        assert_eq!(
            Spec::parse("0 0 LW * */6"),
            Err(ScheduleErrorKind::NoMatchingDay)
        );
        assert_eq!(
            Spec::parse("0 0 */20 * MON#2"),
            Err(ScheduleErrorKind::NoMatchingDay)
        );
        assert!(
            Spec::parse("0 0 L * */6").is_ok(),
            "a month can end on Sunday"
        );
        // Feb has a fifth Monday only when Feb 29 is one (2016, 2044): rare, not never.
        assert!(Spec::parse("0 0 * 2 MON#5").is_ok());
    }

    #[test]
    fn extensions_find_their_days() {
        // 2024-05-31 is a Friday, 2024-06-30 a Sunday (last weekday: Friday 28th).
        assert_eq!(
            next("0 0 L * *", "2024-05-31 00:00:00"),
            "2024-06-30 00:00:00"
        );
        assert_eq!(
            next("0 0 LW * *", "2024-05-31 00:00:00"),
            "2024-06-28 00:00:00"
        );
        assert_eq!(
            next("0 0 1W * *", "2024-05-02 00:00:00"),
            "2024-06-03 00:00:00"
        );
        assert_eq!(
            next("0 0 * * MON#2", "2024-06-01 00:00:00"),
            "2024-06-10 00:00:00"
        );
        assert_eq!(
            next("0 0 * * 5L", "2024-06-01 00:00:00"),
            "2024-06-28 00:00:00"
        );
        // Both day fields restricted: OR, so the 1st or the last Friday, whichever is first.
        assert_eq!(
            next("0 0 1 * 5L", "2024-06-01 00:00:00"),
            "2024-06-28 00:00:00"
        );
        // `*/2` ANDs: the last Friday that is an odd day. June 28, July 26 and August 30 are
        // even; September 27 is odd.
        assert_eq!(
            next("0 0 */2 * 5L", "2024-06-01 00:00:00"),
            "2024-09-27 00:00:00"
        );
        // The fifth Monday of February: 2016-02-29, then 2044-02-29.
        assert_eq!(
            next("0 0 * 2 MON#5", "2016-03-01 00:00:00"),
            "2044-02-29 00:00:00"
        );
    }
}
