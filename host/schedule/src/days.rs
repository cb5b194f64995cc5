//! The day extensions that Quartz, Cronos and croner users write every day, which Vixie cron does
//! not have: their syntax, their calendar rules, and the errors for misplaced ones.
//!
//! - day-of-month `L`: the last day of the month;
//! - day-of-month `LW`: the last weekday (Monday to Friday) of the month;
//! - day-of-month `nW`: the weekday nearest day `n`, never crossing into another month (a
//!   Saturday 1st moves to Monday 3rd, a Sunday that ends the month to Friday); no run in a month
//!   that has no day `n`, as with a plain `n`;
//! - day-of-week `d#n`: the `n`th (1-5) weekday `d` of the month, e.g. `MON#2`, `1#1`;
//! - day-of-week `dL`: the last weekday `d` of the month, e.g. `5L` or `FRIL`.
//!
//! Each is one list item (`1,15,L` and `MON#1,FRIL` are fine); none takes a range or a step.
//! They do not change how the two day fields combine: `L` does not start with `*`, so
//! `0 0 L * 5L` fires on the last day of the month *or* on its last Friday.

use chrono::{Datelike, NaiveDate, Weekday};

use crate::error::ScheduleErrorKind;
use crate::field::{Bits, FieldKind, Part, parse_value};

const ONLY_IN_DAY_FIELDS: &str = "L, W and # are only allowed in day-of-month and day-of-week";
const SINGLE_DAY: &str = "L, W and # apply to a single day, not to a range or a step";
const W_NEEDS_A_DAY: &str = "W needs a day before it, e.g. 15W for the weekday nearest the 15th";
const L_ALONE_IN_DAY_OF_MONTH: &str = "in day-of-month L stands alone (L, LW); the last Friday \
                                       of the month is 5L in day-of-week";
const HASH_IN_DAY_OF_MONTH: &str = "# belongs in day-of-week, e.g. MON#2 for the second Monday";
const W_IN_DAY_OF_WEEK: &str = "W belongs in day-of-month, e.g. 15W or LW";
const L_NEEDS_A_WEEKDAY: &str =
    "L in day-of-week needs a weekday before it, e.g. 5L or FRIL for the last Friday";
const DAY_OF_MONTH_FORMS: &str = "day-of-month takes L, LW or a day followed by W, e.g. 15W";
const DAY_OF_WEEK_FORMS: &str = "day-of-week takes a weekday followed by #1-#5 or by L, e.g. \
                                 MON#2 or 5L";

/// The extension items of one day field, ready to test dates against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct DayRules {
    last_day: bool,
    last_weekday: bool,
    /// Days `n` written as `nW`.
    nearest: Bits,
    /// `nth[n - 1]`: the weekdays (0 = Sunday) written as `d#n`.
    nth: [Bits; 5],
    /// Weekdays written as `dL`.
    last_of: Bits,
}

impl DayRules {
    /// Records an extension item; plain items are the caller's.
    pub(crate) fn add(&mut self, part: Part) {
        match part {
            Part::LastDay => self.last_day = true,
            Part::LastWeekday => self.last_weekday = true,
            Part::NearestWeekday(day) => self.nearest.insert(day),
            Part::Nth { weekday, nth } => self.nth[nth as usize - 1].insert(weekday),
            Part::LastOf(weekday) => self.last_of.insert(weekday),
            Part::Every { .. } | Part::Value(_) | Part::Range { .. } => {}
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Whether some item can name a day of month `month` in some year (2000 below is a leap
    /// year, so February has its 29th).
    pub(crate) fn exist_in(&self, month: u32) -> bool {
        self.last_day
            || self.last_weekday
            || self
                .nearest
                .first()
                .is_some_and(|day| day <= days_in_month(2000, month))
    }

    /// Whether `date` is one of the days named by the day-of-month items.
    pub(crate) fn match_day_of_month(&self, date: NaiveDate) -> bool {
        let (year, month, day) = (date.year(), date.month(), date.day());
        let last = days_in_month(year, month);
        (self.last_day && day == last)
            || (self.last_weekday && day == last_weekday(year, month))
            // `nW` lands at most two days from `n` (a Saturday 1st moves to the 3rd, a Sunday
            // 31st to the 29th), so only those `n` need checking.
            || (day.saturating_sub(2).max(1)..=day + 2).any(|n| {
                self.nearest.contains(n) && nearest_weekday(year, month, n) == Some(day)
            })
    }

    /// Whether `date` is one of the days named by the day-of-week items.
    pub(crate) fn match_day_of_week(&self, date: NaiveDate) -> bool {
        let weekday = date.weekday().num_days_from_sunday();
        let nth = (date.day() - 1) / 7;
        self.nth[nth as usize].contains(weekday)
            || (self.last_of.contains(weekday)
                && date.day() + 7 > days_in_month(date.year(), date.month()))
    }
}

/// Parses `item` if it uses the extension syntax (`L`, `W`, `#`); `None` means it does not and
/// the plain parser should have it. Errors for a marker in the wrong place or form come from
/// here too, so the user hears what the marker means rather than "not a number".
pub(crate) fn parse_item(kind: FieldKind, item: &str) -> Option<Result<Part, ScheduleErrorKind>> {
    let upper = item.to_ascii_uppercase();
    // `WED` is the one name with a marker letter in it.
    if !upper.replace("WED", "").contains(['L', 'W', '#']) {
        return None;
    }
    match kind {
        FieldKind::DayOfMonth | FieldKind::DayOfWeek if upper.contains(['-', '/', '*']) => {
            Some(Err(misplaced(kind, item, SINGLE_DAY)))
        }
        FieldKind::DayOfMonth => Some(day_of_month_item(item, &upper)),
        FieldKind::DayOfWeek => Some(day_of_week_item(item, &upper)),
        // Other fields: let the plain parser try first (month names such as `jul` contain an
        // `L`); see `explain_misplaced`.
        _ => None,
    }
}

/// Rewords a plain parse error for an item that looks like an extension in a field that takes
/// none, e.g. `minute "L"`.
pub(crate) fn explain_misplaced(
    kind: FieldKind,
    item: &str,
    error: ScheduleErrorKind,
) -> ScheduleErrorKind {
    let has_marker = item.to_ascii_uppercase().contains(['L', 'W', '#']);
    match error {
        ScheduleErrorKind::NotAValue { .. } if has_marker => {
            misplaced(kind, item, ONLY_IN_DAY_FIELDS)
        }
        other => other,
    }
}

fn day_of_month_item(item: &str, upper: &str) -> Result<Part, ScheduleErrorKind> {
    let kind = FieldKind::DayOfMonth;
    match upper {
        "L" => return Ok(Part::LastDay),
        "LW" => return Ok(Part::LastWeekday),
        "W" => return Err(misplaced(kind, item, W_NEEDS_A_DAY)),
        _ => {}
    }
    if upper.contains('#') {
        return Err(misplaced(kind, item, HASH_IN_DAY_OF_MONTH));
    }
    if let Some(day) = upper.strip_suffix('W')
        && day.bytes().all(|b| b.is_ascii_digit())
    {
        return parse_value(kind, &item[..day.len()]).map(Part::NearestWeekday);
    }
    if upper.ends_with('L') {
        return Err(misplaced(kind, item, L_ALONE_IN_DAY_OF_MONTH));
    }
    Err(misplaced(kind, item, DAY_OF_MONTH_FORMS))
}

fn day_of_week_item(item: &str, upper: &str) -> Result<Part, ScheduleErrorKind> {
    let kind = FieldKind::DayOfWeek;
    if let Some((weekday, nth_text)) = item.split_once('#') {
        let weekday = parse_weekday(weekday, item)?;
        // Digits only: `u32::from_str` would also take `+2`.
        let digits = nth_text.bytes().all(|b| b.is_ascii_digit());
        return match nth_text.parse::<u32>() {
            Ok(nth @ 1..=5) if digits => Ok(Part::Nth { weekday, nth }),
            _ => Err(ScheduleErrorKind::BadNth {
                token: item.to_owned(),
            }),
        };
    }
    if upper == "L" {
        return Err(misplaced(kind, item, L_NEEDS_A_WEEKDAY));
    }
    if upper.ends_with('L') {
        return parse_weekday(&item[..item.len() - 1], item).map(Part::LastOf);
    }
    if upper.replace("WED", "").contains('W') {
        return Err(misplaced(kind, item, W_IN_DAY_OF_WEEK));
    }
    Err(misplaced(kind, item, DAY_OF_WEEK_FORMS))
}

/// The weekday before `#` or `L`, Sunday as 0 whether written 0 or 7.
fn parse_weekday(text: &str, item: &str) -> Result<u32, ScheduleErrorKind> {
    if text.is_empty() {
        return Err(misplaced(FieldKind::DayOfWeek, item, DAY_OF_WEEK_FORMS));
    }
    parse_value(FieldKind::DayOfWeek, text).map(|v| v % 7)
}

fn misplaced(kind: FieldKind, item: &str, hint: &'static str) -> ScheduleErrorKind {
    ScheduleErrorKind::MisplacedExtension {
        field: kind.name(),
        token: item.to_owned(),
        hint,
    }
}

pub(crate) fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        2 if NaiveDate::from_ymd_opt(year, 2, 29).is_some() => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// The weekday of a date the callers know exists (the fallback is never used).
fn weekday(year: i32, month: u32, day: u32) -> Weekday {
    NaiveDate::from_ymd_opt(year, month, day).map_or(Weekday::Mon, |d| d.weekday())
}

/// The last Monday-to-Friday day of the month.
fn last_weekday(year: i32, month: u32) -> u32 {
    let last = days_in_month(year, month);
    match weekday(year, month, last) {
        Weekday::Sat => last - 1,
        Weekday::Sun => last - 2,
        _ => last,
    }
}

/// The Monday-to-Friday day nearest day `day` within the same month (Quartz's `W`), or `None`
/// if the month has no such day.
fn nearest_weekday(year: i32, month: u32, day: u32) -> Option<u32> {
    let last = days_in_month(year, month);
    if day > last {
        return None;
    }
    Some(match weekday(year, month, day) {
        // Friday would be in the previous month: take Monday instead.
        Weekday::Sat if day == 1 => 3,
        Weekday::Sat => day - 1,
        // Monday would be in the next month: take Friday instead.
        Weekday::Sun if day == last => day - 2,
        Weekday::Sun => day + 1,
        _ => day,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(kind: FieldKind, items: &[&str]) -> DayRules {
        let mut rules = DayRules::default();
        for item in items {
            rules.add(parse_item(kind, item).unwrap().unwrap());
        }
        rules
    }

    /// The days of `month` that `items` of field `kind` name.
    fn days(kind: FieldKind, items: &[&str], year: i32, month: u32) -> Vec<u32> {
        let rules = rules(kind, items);
        (1..=days_in_month(year, month))
            .filter(|&d| {
                let date = NaiveDate::from_ymd_opt(year, month, d).unwrap();
                match kind {
                    FieldKind::DayOfMonth => rules.match_day_of_month(date),
                    _ => rules.match_day_of_week(date),
                }
            })
            .collect()
    }

    #[test]
    fn last_day_and_last_weekday() {
        let dom = FieldKind::DayOfMonth;
        assert_eq!(days(dom, &["L"], 2024, 2), [29]);
        assert_eq!(days(dom, &["L"], 2023, 2), [28]);
        assert_eq!(days(dom, &["l"], 2024, 4), [30]);
        // 2024-08-31 is a Saturday, 2024-03-31 a Sunday, 2024-10-31 a Thursday.
        assert_eq!(days(dom, &["LW"], 2024, 8), [30]);
        assert_eq!(days(dom, &["LW"], 2024, 3), [29]);
        assert_eq!(days(dom, &["LW"], 2024, 10), [31]);
    }

    #[test]
    fn nearest_weekday_stays_in_the_month() {
        let dom = FieldKind::DayOfMonth;
        // 2024-06-15 is a Saturday: Friday 14th. 2024-09-15 a Sunday: Monday 16th.
        assert_eq!(days(dom, &["15W"], 2024, 6), [14]);
        assert_eq!(days(dom, &["15W"], 2024, 9), [16]);
        assert_eq!(days(dom, &["15W"], 2024, 5), [15]);
        // 2024-06-01 is a Saturday: not Friday May 31st but Monday June 3rd.
        assert_eq!(days(dom, &["1W"], 2024, 6), [3]);
        // 2024-03-31 is a Sunday: not Monday April 1st but Friday March 29th.
        assert_eq!(days(dom, &["31W"], 2024, 3), [29]);
        // April has no 31st, so 31W does not fire in April (as plain 31 does not).
        assert_eq!(days(dom, &["31W"], 2024, 4), [] as [u32; 0]);
        // Two items may land on the same day: 2024-06-15 (Sat) and 14 both give the 14th.
        assert_eq!(days(dom, &["14W", "15W"], 2024, 6), [14]);
    }

    #[test]
    fn nth_and_last_weekday_of_the_month() {
        let dow = FieldKind::DayOfWeek;
        // June 2024: Mondays 3, 10, 17, 24; Fridays 7, 14, 21, 28; Sundays 2, 9, 16, 23, 30.
        assert_eq!(days(dow, &["MON#2"], 2024, 6), [10]);
        assert_eq!(days(dow, &["1#1"], 2024, 6), [3]);
        assert_eq!(days(dow, &["0#5"], 2024, 6), [30]);
        assert_eq!(days(dow, &["7#5"], 2024, 6), [30]);
        assert_eq!(days(dow, &["mon#5"], 2024, 6), [] as [u32; 0]);
        assert_eq!(days(dow, &["5L"], 2024, 6), [28]);
        assert_eq!(days(dow, &["FRIL"], 2024, 6), [28]);
        assert_eq!(days(dow, &["7L", "WED#1"], 2024, 6), [5, 30]);
    }

    #[test]
    fn names_with_marker_letters_are_plain() {
        assert!(parse_item(FieldKind::DayOfWeek, "WED").is_none());
        assert!(parse_item(FieldKind::DayOfWeek, "mon-wed").is_none());
        assert!(parse_item(FieldKind::Month, "jul").is_none());
        assert!(parse_item(FieldKind::DayOfMonth, "15").is_none());
    }

    #[test]
    fn misplaced_markers_say_where_they_belong() {
        let hint = |kind, item| match parse_item(kind, item) {
            Some(Err(ScheduleErrorKind::MisplacedExtension { hint, .. })) => hint,
            other => panic!("{item}: {other:?}"),
        };
        assert_eq!(hint(FieldKind::DayOfMonth, "W"), W_NEEDS_A_DAY);
        assert_eq!(hint(FieldKind::DayOfMonth, "5L"), L_ALONE_IN_DAY_OF_MONTH);
        assert_eq!(hint(FieldKind::DayOfMonth, "1#2"), HASH_IN_DAY_OF_MONTH);
        assert_eq!(hint(FieldKind::DayOfMonth, "L-2"), SINGLE_DAY);
        assert_eq!(hint(FieldKind::DayOfMonth, "1-5W"), SINGLE_DAY);
        assert_eq!(hint(FieldKind::DayOfMonth, "LX"), DAY_OF_MONTH_FORMS);
        assert_eq!(hint(FieldKind::DayOfWeek, "L"), L_NEEDS_A_WEEKDAY);
        assert_eq!(hint(FieldKind::DayOfWeek, "15W"), W_IN_DAY_OF_WEEK);
        assert_eq!(hint(FieldKind::DayOfWeek, "LW"), W_IN_DAY_OF_WEEK);
        assert_eq!(hint(FieldKind::DayOfWeek, "MON-FRI#2"), SINGLE_DAY);
        assert_eq!(hint(FieldKind::DayOfWeek, "#2"), DAY_OF_WEEK_FORMS);
    }
}
