//! From local wall-clock matches to the instants a schedule fires, with Vixie cron's two
//! daylight-saving rules (crate docs, "Time zones and daylight saving"):
//!
//! - a *fixed-time* job names clock times, so each matching reading fires once: a reading the
//!   clocks skip fires when the gap ends, a reading they repeat fires at its first occurrence;
//! - a *wall-clock* job (minute or hour field starting with `*`) fires at every instant whose
//!   local reading matches: nothing for skipped readings, both passes of repeated ones.
//!
//! Both walks take the local search as a function (`next_local`: the first matching reading
//! strictly after a given one), so this file knows nothing about cron syntax.

use chrono::{DateTime, MappedLocalTime, NaiveDateTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;

/// Longest run of non-existent local time we look across. Real gaps are an hour (30 minutes on
/// Lord Howe Island); the longest on record is a whole skipped day (Samoa, 2011-12-30).
const MAX_GAP: TimeDelta = TimeDelta::hours(48);

/// The first fire of a fixed-time job strictly after `t`.
pub(crate) fn next_at_fixed_time(
    tz: Tz,
    t: DateTime<Utc>,
    next_local: impl Fn(NaiveDateTime) -> Option<NaiveDateTime>,
) -> Option<DateTime<Utc>> {
    // Readings map to instants in non-decreasing order (see `fire_instant`), and no reading at
    // or before `t`'s own can fire after `t`. So walk the readings from there and take the
    // first whose instant is late enough; more than one step happens only when `t` lies in the
    // second pass of a repeated stretch, whose readings already fired in the first.
    let mut local = t.with_timezone(&tz).naive_local();
    loop {
        local = next_local(local)?;
        let at = fire_instant(tz, local)?;
        if at > t {
            return Some(at);
        }
    }
}

/// The first fire of a wall-clock job strictly after `t`: the first instant after `t` whose
/// local reading matches.
pub(crate) fn next_on_wall_clock(
    tz: Tz,
    t: DateTime<Utc>,
    next_local: impl Fn(NaiveDateTime) -> Option<NaiveDateTime>,
) -> Option<DateTime<Utc>> {
    let local = t.with_timezone(&tz).naive_local();
    // Readings increase with time except once per fall-back, when the clocks re-read a stretch.
    // If `t` is in the first pass of such a stretch, what follows it is: the rest of the first
    // pass, then the whole stretch again, then readings past it.
    if let MappedLocalTime::Ambiguous(a, b) = tz.from_local_datetime(&local) {
        let (first, second) = (a.min(b).to_utc(), a.max(b).to_utc());
        if t < second {
            // The next match, if it is still in this first pass (its first instant comes before
            // `t`'s second pass; a match in next year's repeated stretch does not).
            if let Some(m) = next_local(local)
                && let MappedLocalTime::Ambiguous(a, b) = tz.from_local_datetime(&m)
                && a.min(b).to_utc() < second
            {
                return Some(a.min(b).to_utc());
            }
            // Nothing more in the first pass: walk again from a reading just before the
            // stretch began (the clocks go back by `second - first`), now keeping only
            // instants after `t`, which puts the second pass first.
            return walk_forward(tz, t, local - (second - first), next_local);
        }
    }
    walk_forward(tz, t, local, next_local)
}

/// The first instant after `t` whose reading matches, walking readings from `from`, given that
/// no repeated stretch both starts before `from` and has readings to re-read after `t`.
fn walk_forward(
    tz: Tz,
    t: DateTime<Utc>,
    mut from: NaiveDateTime,
    next_local: impl Fn(NaiveDateTime) -> Option<NaiveDateTime>,
) -> Option<DateTime<Utc>> {
    loop {
        from = next_local(from)?;
        match tz.from_local_datetime(&from) {
            MappedLocalTime::Single(at) if at > t => return Some(at.to_utc()),
            MappedLocalTime::Ambiguous(a, b) => {
                // Each pass of a repeated reading is a fire; the earlier one if it is still
                // to come.
                let (first, second) = (a.min(b).to_utc(), a.max(b).to_utc());
                if first > t {
                    return Some(first);
                }
                if second > t {
                    return Some(second);
                }
            }
            // Before `t` (only while walking up to a second pass), or a reading the clocks skip:
            // a wall-clock job has no run there (Vixie runs such jobs only at times that
            // exist).
            MappedLocalTime::Single(_) | MappedLocalTime::None => {}
        }
    }
}

/// The instant a fixed-time job's matching reading fires:
/// - it exists once: that instant;
/// - it exists twice (clocks went back): the first (earlier) of the two, so it fires once;
/// - it does not exist (clocks went forward): the instant the gap ends, i.e. the first valid
///   local time after it, so it fires once, as soon as it can.
///
/// Every case is non-decreasing in `local`, which is what lets `next_at_fixed_time` walk the
/// readings in order and stop at the first instant that is late enough.
fn fire_instant(tz: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    match tz.from_local_datetime(&local) {
        MappedLocalTime::Single(t) => Some(t.to_utc()),
        MappedLocalTime::Ambiguous(first, second) => Some(first.min(second).to_utc()),
        MappedLocalTime::None => gap_end(tz, local),
    }
}

/// The instant the gap containing `local` ends.
fn gap_end(tz: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    let exists = |t: NaiveDateTime| tz.from_local_datetime(&t).earliest();
    // Whole minutes find the end quickly; then halve down to the exact second, because a few
    // historical offsets (local mean time) were not whole minutes.
    let mut missing = local;
    let mut found = loop {
        let probe = missing + TimeDelta::minutes(1);
        if probe - local > MAX_GAP {
            return None;
        }
        if exists(probe).is_some() {
            break probe;
        }
        missing = probe;
    };
    while found - missing > TimeDelta::seconds(1) {
        let mid = missing + TimeDelta::seconds((found - missing).num_seconds() / 2);
        if exists(mid).is_some() {
            found = mid;
        } else {
            missing = mid;
        }
    }
    exists(found).map(|t| t.to_utc())
}

#[cfg(test)]
mod tests {
    use chrono::{Datelike, Timelike, Weekday};

    use super::*;

    /// The local search for `from/step * * * *`, standing in for `Spec::next_local`.
    fn every_minutes(step: u32, from: u32) -> impl Fn(NaiveDateTime) -> Option<NaiveDateTime> {
        move |after| {
            let mut t = after.with_second(0)?.with_nanosecond(0)? + TimeDelta::minutes(1);
            while t.minute() % step != from {
                t += TimeDelta::minutes(1);
            }
            Some(t)
        }
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    /// The next `n` fires of a walk, as UTC strings.
    fn fires(
        walk: impl Fn(DateTime<Utc>) -> Option<DateTime<Utc>>,
        start: &str,
        n: usize,
    ) -> Vec<String> {
        let mut t = utc(start);
        (0..n)
            .map(|_| {
                t = walk(t).unwrap();
                t.format("%H:%M").to_string()
            })
            .collect()
    }

    /// Lord Howe Island goes back only 30 minutes (2024-04-07, 02:00 +11:00 -> 01:30 +10:30), so
    /// a repeated stretch shorter than an hour is handled too. 14:25Z is 01:25 +11:00.
    #[test]
    fn half_hour_fall_back_on_both_walks() {
        let tz = chrono_tz::Australia::Lord_Howe;
        // Wall clock: 01:30, 01:40, 01:50 in each pass, so a steady 10-minute rhythm.
        let wall = |t| next_on_wall_clock(tz, t, every_minutes(10, 0));
        assert_eq!(
            fires(wall, "2024-04-06T14:25:00Z", 7),
            [
                "14:30", "14:40", "14:50", "15:00", "15:10", "15:20", "15:30"
            ]
        );
        // Fixed time: the first pass only, then 02:00 +10:30, 40 minutes after 01:50 +11:00.
        let fixed = |t| next_at_fixed_time(tz, t, every_minutes(10, 0));
        assert_eq!(
            fires(fixed, "2024-04-06T14:25:00Z", 4),
            ["14:30", "14:40", "14:50", "15:30"]
        );
    }

    #[test]
    fn wall_clock_walk_starting_in_either_pass() {
        let new_york = chrono_tz::America::New_York;
        let wall = |t| next_on_wall_clock(new_york, t, every_minutes(30, 0));
        // 01:40 EDT (first pass, no match left in it): the second pass's 01:00 EST comes next.
        assert_eq!(fires(wall, "2024-11-03T05:40:00Z", 2), ["06:00", "06:30"]);
        // 01:10 EST (second pass): 01:30 EST, and never the first pass again.
        assert_eq!(fires(wall, "2024-11-03T06:10:00Z", 2), ["06:30", "07:00"]);
        // 01:10 EDT (first pass): the rest of the first pass comes before the second.
        assert_eq!(
            fires(wall, "2024-11-03T05:10:00Z", 3),
            ["05:30", "06:00", "06:30"]
        );
    }

    #[test]
    fn wall_clock_walk_does_not_jump_to_next_years_repeated_hour() {
        // 01:00 and 01:30 on the first Sunday of November only, a reading repeated every year:
        // from 01:40 EDT on 2024-11-03 the next fire is 01:00 EST that night, not 2025's.
        let new_york = chrono_tz::America::New_York;
        let first_sunday_of_november_at_one = |after: NaiveDateTime| {
            let mut t = every_minutes(30, 0)(after)?;
            while !(t.hour() == 1 && t.month() == 11 && t.day() <= 7 && t.weekday() == Weekday::Sun)
            {
                t = every_minutes(30, 0)(t)?;
            }
            Some(t)
        };
        let wall = |t| next_on_wall_clock(new_york, t, first_sunday_of_november_at_one);
        assert_eq!(fires(wall, "2024-11-03T05:40:00Z", 2), ["06:00", "06:30"]);
    }

    #[test]
    fn wall_clock_walk_skips_a_gap_without_catching_up() {
        // Europe/Zurich 2024-03-31: 02:00 CET -> 03:00 CEST. 00:50Z is 01:50 CET; the job runs
        // at :10, :30 and :50, none of which is 03:00.
        let zurich = chrono_tz::Europe::Zurich;
        let wall = |t| next_on_wall_clock(zurich, t, every_minutes(20, 10));
        assert_eq!(fires(wall, "2024-03-31T00:50:00Z", 2), ["01:10", "01:30"]);
        // The fixed walk fires 02:10, 02:30 and 02:50 together when the gap ends, once.
        let fixed = |t| next_at_fixed_time(zurich, t, every_minutes(20, 10));
        assert_eq!(
            fires(fixed, "2024-03-31T00:50:00Z", 3),
            ["01:00", "01:10", "01:30"]
        );
    }

    fn at(tz: Tz, local: &str) -> String {
        let local = NaiveDateTime::parse_from_str(local, "%Y-%m-%d %H:%M:%S").unwrap();
        fire_instant(tz, local).unwrap().to_rfc3339()
    }

    #[test]
    fn skipped_time_fires_when_the_gap_ends() {
        let zurich = chrono_tz::Europe::Zurich;
        assert_eq!(
            at(zurich, "2024-03-31 02:30:00"),
            "2024-03-31T01:00:00+00:00"
        );
        assert_eq!(
            at(zurich, "2024-03-31 02:00:00"),
            "2024-03-31T01:00:00+00:00"
        );
        assert_eq!(
            at(zurich, "2024-03-31 03:00:00"),
            "2024-03-31T01:00:00+00:00"
        );
    }

    #[test]
    fn repeated_time_fires_at_its_first_occurrence() {
        let zurich = chrono_tz::Europe::Zurich;
        assert_eq!(
            at(zurich, "2024-10-27 02:30:00"),
            "2024-10-27T00:30:00+00:00"
        );
    }

    #[test]
    fn a_skipped_day_is_crossed() {
        // Samoa skipped 2011-12-30 entirely, moving from UTC-10 to UTC+14.
        let apia = chrono_tz::Pacific::Apia;
        assert_eq!(at(apia, "2011-12-30 12:00:00"), "2011-12-30T10:00:00+00:00");
    }
}
