//! A plain-English reading of a schedule for the dashboard, e.g.
//! "at 06:00 on day 1 of every month (Europe/Zurich)". It aims to be right for the common forms
//! and never wrong for the rest: anything unusual is spelled out item by item.

use crate::field::{Field, FieldKind, Part};
use crate::spec::Spec;

const MONTH_NAMES: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const WEEKDAY_NAMES: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// `d#n` in words, for n = 1 to 5.
const NTH_NAMES: [&str; 5] = ["first", "second", "third", "fourth", "fifth"];

/// Beyond this many clock times (`at 09:00, 09:30, ...`) the fields are described one by one.
const MAX_LISTED_TIMES: usize = 6;

/// Describes `spec` in words, followed by the zone name in parentheses.
pub(crate) fn describe(spec: &Spec, zone: &str) -> String {
    let (time, fixed_times) = time_phrase(spec);
    let days = day_phrase(spec, fixed_times);
    format!("{time}{days} ({zone})")
}

/// The time-of-day part, and whether it names fixed clock times (which then read better with
/// "every day" after them).
fn time_phrase(spec: &Spec) -> (String, bool) {
    if let (Some(s), Some(minutes), Some(hours)) = (
        spec.second.single(),
        singles(&spec.minute),
        singles(&spec.hour),
    ) && minutes.len() * hours.len() <= MAX_LISTED_TIMES
    {
        let times: Vec<String> = hours
            .iter()
            .flat_map(|h| minutes.iter().map(move |m| (h, m)))
            .map(|(h, m)| match s {
                0 => format!("{h:02}:{m:02}"),
                s => format!("{h:02}:{m:02}:{s:02}"),
            })
            .collect();
        return (format!("at {}", join(&times)), true);
    }
    let mut text = Vec::new();
    let seconds_vary = spec.second.single().is_none();
    if seconds_vary {
        text.push(every_or_at(&spec.second, "second"));
    } else if let Some(s @ 1..) = spec.second.single() {
        text.push(format!("at second {s}"));
    }
    let minute_is_interval = matches!(
        spec.minute.parts[..],
        [Part::Every { .. }] | [Part::Range { step: 2.., .. }]
    );
    if !(seconds_vary && spec.minute.is_all()) {
        text.push(every_or_at(&spec.minute, "minute"));
    }
    if let Some(hours) = hour_phrase(&spec.hour, minute_is_interval || seconds_vary) {
        text.push(hours);
    }
    (text.join(" "), false)
}

/// `every second`, `every 10 minutes`, `every 10 minutes from minute 0 through 30`,
/// `at minute 5`, `at minutes 0 and 30`, ...
fn every_or_at(field: &Field, unit: &str) -> String {
    match field.parts[..] {
        [Part::Every { step: 1 }] => format!("every {unit}"),
        [Part::Every { step }] => format!("every {step} {unit}s"),
        [Part::Range { lo, hi, step }] if step > 1 => {
            format!("every {step} {unit}s from {unit} {lo} through {hi}")
        }
        [Part::Value(v)] => format!("at {unit} {v}"),
        _ => format!("at {unit}s {}", list(field)),
    }
}

/// Which hours, or `None` when the minute phrase already says it all (`every 15 minutes`).
fn hour_phrase(hour: &Field, minutes_are_interval: bool) -> Option<String> {
    match hour.parts[..] {
        [Part::Every { step: 1 }] if minutes_are_interval => None,
        [Part::Every { step: 1 }] => Some("of every hour".to_owned()),
        [Part::Every { step }] => Some(format!("of every {} hour", ordinal(step))),
        [Part::Value(h)] => Some(format!("between {h:02}:00 and {h:02}:59")),
        [Part::Range { lo, hi, step: 1 }] => Some(format!("between {lo:02}:00 and {hi:02}:59")),
        _ => Some(format!("during hours {}", list(hour))),
    }
}

/// The date part: which days, and in which months.
fn day_phrase(spec: &Spec, fixed_times: bool) -> String {
    let dom = !spec.day_of_month.is_all();
    let dow = !spec.day_of_week.is_all();
    let month_all = spec.month.is_all();
    let months = month_list(&spec.month);
    match (dom, dow) {
        (false, false) if month_all && fixed_times => " every day".to_owned(),
        (false, false) if month_all => String::new(),
        (false, false) => format!(" every day in {months}"),
        // "of the month" for the extensions: "the last day of every month" would suggest one
        // last day shared by all months.
        (true, false) if month_all && has_extension(&spec.day_of_month) => {
            format!(" on {} of the month", days_of_month(spec))
        }
        (true, false) if month_all => format!(" on {} of every month", days_of_month(spec)),
        (true, false) => format!(" on {} of {months}", days_of_month(spec)),
        (false, true) => format!(" on {}{}", weekdays(spec), in_months(spec)),
        (true, true) if spec.days_are_ored() => format!(
            " on {} of the month or on {}{}",
            days_of_month(spec),
            weekdays(spec),
            in_months(spec)
        ),
        (true, true) => format!(
            " on {} of the month, but only on {}{}",
            days_of_month(spec),
            weekdays(spec),
            in_months(spec)
        ),
    }
}

fn in_months(spec: &Spec) -> String {
    if spec.month.is_all() {
        String::new()
    } else {
        format!(" in {}", month_list(&spec.month))
    }
}

fn month_list(month: &Field) -> String {
    match month.parts[..] {
        [Part::Every { step }] if step > 1 => format!("every {} month", ordinal(step)),
        _ => list(month),
    }
}

fn days_of_month(spec: &Spec) -> String {
    let field = &spec.day_of_month;
    match field.parts[..] {
        [Part::Every { step }] => format!("every {} day", ordinal(step)),
        [Part::Value(d)] => format!("day {d}"),
        _ => {
            // Numbered days first, so "days 1, 15 and the last day" reads whatever the order
            // the items were written in.
            let (extensions, plain): (Vec<Part>, Vec<Part>) =
                field.parts.iter().partition(|p| p.is_extension());
            let words = |parts: &[Part]| {
                parts
                    .iter()
                    .map(|&p| item_words(field.kind, p))
                    .collect::<Vec<_>>()
            };
            let all = [words(&plain), words(&extensions)].concat();
            match plain[..] {
                [] => join(&all),
                [Part::Value(_)] => format!("day {}", join(&all)),
                _ => format!("days {}", join(&all)),
            }
        }
    }
}

fn weekdays(spec: &Spec) -> String {
    match spec.day_of_week.parts[..] {
        [Part::Every { step }] => format!("every {} day of the week", ordinal(step)),
        // "the second Monday" alone could be read as the second Monday from now.
        _ if has_extension(&spec.day_of_week) && spec.month.is_all() => {
            format!("{} of the month", list(&spec.day_of_week))
        }
        _ => list(&spec.day_of_week),
    }
}

fn has_extension(field: &Field) -> bool {
    field.parts.iter().any(|p| p.is_extension())
}

/// The field's values if it is a plain list of single values (`6`, `9,12,18`).
fn singles(field: &Field) -> Option<Vec<u32>> {
    field
        .parts
        .iter()
        .all(|p| matches!(p, Part::Value(_)))
        .then(|| field.bits.values().collect())
}

/// Each list item in words: `1`, `1 through 5`, `every 2nd from 1 through 9`.
fn list(field: &Field) -> String {
    let items: Vec<String> = field
        .parts
        .iter()
        .map(|&part| item_words(field.kind, part))
        .collect();
    join(&items)
}

/// One list item in words: `1`, `every 2nd from 1 through 9`, `the last day`, `the second
/// Monday`, `the weekday nearest the 15th`.
fn item_words(kind: FieldKind, part: Part) -> String {
    let name = |v: u32| value_name(kind, v);
    match part {
        Part::Every { step: 1 } => "every value".to_owned(),
        Part::Every { step } => format!("every {}", ordinal(step)),
        Part::Value(v) => name(v),
        Part::Range { lo, hi, step: 1 } => format!("{} through {}", name(lo), name(hi)),
        Part::Range { lo, hi, step } => {
            format!(
                "every {} from {} through {}",
                ordinal(step),
                name(lo),
                name(hi)
            )
        }
        Part::LastDay => "the last day".to_owned(),
        Part::LastWeekday => "the last weekday".to_owned(),
        Part::NearestWeekday(day) => format!("the weekday nearest the {}", ordinal(day)),
        Part::Nth { weekday, nth } => format!(
            "the {} {}",
            NTH_NAMES[nth as usize - 1],
            WEEKDAY_NAMES[weekday as usize % 7]
        ),
        Part::LastOf(weekday) => format!("the last {}", WEEKDAY_NAMES[weekday as usize % 7]),
    }
}

fn value_name(kind: FieldKind, v: u32) -> String {
    match kind {
        FieldKind::Month => MONTH_NAMES[v as usize - 1].to_owned(),
        FieldKind::DayOfWeek => WEEKDAY_NAMES[v as usize % 7].to_owned(),
        FieldKind::Hour => format!("{v:02}"),
        _ => v.to_string(),
    }
}

/// `a`, `a and b`, `a, b and c`.
fn join(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

fn ordinal(n: u32) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinals() {
        let got: Vec<String> = [1, 2, 3, 4, 11, 12, 13, 21, 22, 23, 101]
            .into_iter()
            .map(ordinal)
            .collect();
        assert_eq!(
            got,
            [
                "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "23rd", "101st"
            ]
        );
    }

    #[test]
    fn joins() {
        let items = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(join(&items(&["a"])), "a");
        assert_eq!(join(&items(&["a", "b"])), "a and b");
        assert_eq!(join(&items(&["a", "b", "c"])), "a, b and c");
    }
}
