//! Daylight-saving transitions in two zones, both directions, for the schedule shapes a
//! pipeline is likely to use: hourly, daily at a time inside the transition, every 15 minutes.
//!
//! Europe/Zurich 2024: 03-31 02:00 CET -> 03:00 CEST (skipped 02:00-02:59),
//!                     10-27 03:00 CEST -> 02:00 CET (02:00-02:59 twice).
//! America/New_York 2024: 03-10 02:00 EST -> 03:00 EDT (skipped 02:00-02:59),
//!                        11-03 02:00 EDT -> 01:00 EST (01:00-01:59 twice).
//!
//! The rules (crate docs, Vixie/Debian cron): a *fixed-time* job (neither minute nor hour starts
//! with `*`) fires a skipped time once when the gap ends and a repeated time once, at its first
//! occurrence; a *wall-clock* job (minute or hour starts with `*`) fires whenever the clock
//! shows a matching time: never for a skipped one, in both passes of a repeated one.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, NaiveDate, Offset, TimeDelta, Utc};
use chrono_tz::Tz;
use weir_schedule::Schedule;

const ZURICH: &str = "Europe/Zurich";
const NEW_YORK: &str = "America/New_York";

fn time(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

/// The next `want.len()` fire times after `start`, checked against `want` (RFC 3339 with the
/// local offset, which is how the expectations read best).
fn assert_fires(expr: &str, zone: &str, start: &str, want: &[&str]) {
    let schedule = Schedule::parse(expr, Some(zone)).unwrap();
    let tz: Tz = zone.parse().unwrap();
    let got: Vec<String> = schedule
        .upcoming(time(start), want.len())
        .iter()
        .map(|t| t.with_timezone(&tz).to_rfc3339())
        .collect();
    assert_eq!(got, want, "{expr:?} in {zone} after {start}");
}

#[test]
fn zurich_spring_forward() {
    assert_fires(
        "0 * * * *",
        ZURICH,
        "2024-03-31T00:30:00+01:00",
        &[
            "2024-03-31T01:00:00+01:00",
            "2024-03-31T03:00:00+02:00",
            "2024-03-31T04:00:00+02:00",
        ],
    );
    assert_fires(
        "30 2 * * *",
        ZURICH,
        "2024-03-29T12:00:00+01:00",
        &[
            "2024-03-30T02:30:00+01:00",
            "2024-03-31T03:00:00+02:00",
            "2024-04-01T02:30:00+02:00",
        ],
    );
    assert_fires(
        "*/15 * * * *",
        ZURICH,
        "2024-03-31T01:30:00+01:00",
        &[
            "2024-03-31T01:45:00+01:00",
            "2024-03-31T03:00:00+02:00",
            "2024-03-31T03:15:00+02:00",
        ],
    );
    // A wall-clock job gets no catch-up run for 02:30: the clock never shows it.
    assert_fires(
        "30 * * * *",
        ZURICH,
        "2024-03-31T00:45:00+01:00",
        &["2024-03-31T01:30:00+01:00", "2024-03-31T03:30:00+02:00"],
    );
    // ... and one that only runs during the skipped hour has no run that day at all.
    assert_fires(
        "*/10 2 * * *",
        ZURICH,
        "2024-03-30T12:00:00+01:00",
        &["2024-04-01T02:00:00+02:00"],
    );
}

#[test]
fn zurich_fall_back() {
    // Wall-clock jobs run in both passes of 02:00-02:59.
    assert_fires(
        "0 * * * *",
        ZURICH,
        "2024-10-27T00:30:00+02:00",
        &[
            "2024-10-27T01:00:00+02:00",
            "2024-10-27T02:00:00+02:00",
            "2024-10-27T02:00:00+01:00",
            "2024-10-27T03:00:00+01:00",
        ],
    );
    assert_fires(
        "30 2 * * *",
        ZURICH,
        "2024-10-26T12:00:00+02:00",
        &["2024-10-27T02:30:00+02:00", "2024-10-28T02:30:00+01:00"],
    );
    assert_fires(
        "*/15 * * * *",
        ZURICH,
        "2024-10-27T02:30:00+02:00",
        &[
            "2024-10-27T02:45:00+02:00",
            "2024-10-27T02:00:00+01:00",
            "2024-10-27T02:15:00+01:00",
        ],
    );
}

#[test]
fn new_york_spring_forward() {
    assert_fires(
        "0 * * * *",
        NEW_YORK,
        "2024-03-10T00:30:00-05:00",
        &[
            "2024-03-10T01:00:00-05:00",
            "2024-03-10T03:00:00-04:00",
            "2024-03-10T04:00:00-04:00",
        ],
    );
    assert_fires(
        "30 2 * * *",
        NEW_YORK,
        "2024-03-09T12:00:00-05:00",
        &["2024-03-10T03:00:00-04:00", "2024-03-11T02:30:00-04:00"],
    );
    assert_fires(
        "*/15 * * * *",
        NEW_YORK,
        "2024-03-10T01:30:00-05:00",
        &[
            "2024-03-10T01:45:00-05:00",
            "2024-03-10T03:00:00-04:00",
            "2024-03-10T03:15:00-04:00",
        ],
    );
}

#[test]
fn new_york_fall_back() {
    assert_fires(
        "0 * * * *",
        NEW_YORK,
        "2024-11-03T00:30:00-04:00",
        &[
            "2024-11-03T01:00:00-04:00",
            "2024-11-03T01:00:00-05:00",
            "2024-11-03T02:00:00-05:00",
        ],
    );
    // 02:30 is not repeated in New York (01:xx is); it simply fires once.
    assert_fires(
        "30 2 * * *",
        NEW_YORK,
        "2024-11-02T12:00:00-04:00",
        &["2024-11-03T02:30:00-05:00", "2024-11-04T02:30:00-05:00"],
    );
    assert_fires(
        "30 1 * * *",
        NEW_YORK,
        "2024-11-02T12:00:00-04:00",
        &["2024-11-03T01:30:00-04:00", "2024-11-04T01:30:00-05:00"],
    );
    assert_fires(
        "*/15 * * * *",
        NEW_YORK,
        "2024-11-03T01:30:00-04:00",
        &[
            "2024-11-03T01:45:00-04:00",
            "2024-11-03T01:00:00-05:00",
            "2024-11-03T01:15:00-05:00",
        ],
    );
}

/// What decides the rule is the first character of the minute and hour fields (Vixie's
/// `MIN_STAR`/`HR_STAR`), not which minutes they name: the same four times a hour, written two
/// ways, behave differently.
#[test]
fn the_first_character_decides_fixed_or_wall_clock() {
    // Spring: the fixed list fires once at the end of the gap, the step not at all.
    assert_fires(
        "0,15,30,45 2 * * *",
        NEW_YORK,
        "2024-03-09T12:00:00-05:00",
        &["2024-03-10T03:00:00-04:00", "2024-03-11T02:00:00-04:00"],
    );
    assert_fires(
        "*/15 2 * * *",
        NEW_YORK,
        "2024-03-09T12:00:00-05:00",
        &["2024-03-11T02:00:00-04:00"],
    );
    // A range with a step does not start with `*`, so it is fixed-time too.
    assert_fires(
        "0-59/15 2 * * *",
        NEW_YORK,
        "2024-03-09T12:00:00-05:00",
        &["2024-03-10T03:00:00-04:00", "2024-03-11T02:00:00-04:00"],
    );
    // Fall: the fixed list runs in the first pass only, the step in both.
    assert_fires(
        "0,30 1 * * *",
        NEW_YORK,
        "2024-11-02T12:00:00-04:00",
        &[
            "2024-11-03T01:00:00-04:00",
            "2024-11-03T01:30:00-04:00",
            "2024-11-04T01:00:00-05:00",
        ],
    );
    assert_fires(
        "*/30 1 * * *",
        NEW_YORK,
        "2024-11-02T12:00:00-04:00",
        &[
            "2024-11-03T01:00:00-04:00",
            "2024-11-03T01:30:00-04:00",
            "2024-11-03T01:00:00-05:00",
            "2024-11-03T01:30:00-05:00",
            "2024-11-04T01:00:00-05:00",
        ],
    );
    // A `*` hour with a fixed minute is a wall-clock job too: this is @hourly.
    assert_fires(
        "5 * * * *",
        NEW_YORK,
        "2024-11-03T01:30:00-04:00",
        &["2024-11-03T01:05:00-05:00", "2024-11-03T02:05:00-05:00"],
    );
}

/// The two examples: `@hourly` in New York on 2026-11-01 must not skip a real hour, and
/// `*/15` must not leave a 75-minute gap.
#[test]
fn no_real_hour_is_skipped_on_a_fall_back_day() {
    let schedule = Schedule::parse("@hourly", Some(NEW_YORK)).unwrap();
    let fires = schedule.upcoming(time("2026-11-01T04:00:00Z"), 4);
    let gaps: Vec<i64> = fires
        .windows(2)
        .map(|w| (w[1] - w[0]).num_minutes())
        .collect();
    assert_eq!(gaps, [60, 60, 60]);
    assert_eq!(fires[0], time("2026-11-01T05:00:00Z"), "01:00 EDT");
    assert_eq!(fires[1], time("2026-11-01T06:00:00Z"), "01:00 EST");
    let schedule = Schedule::parse("*/15 * * * *", Some(NEW_YORK)).unwrap();
    let fires = schedule.upcoming(time("2026-11-01T04:00:00Z"), 12);
    assert!(
        fires
            .windows(2)
            .all(|w| w[1] - w[0] == TimeDelta::minutes(15)),
        "{fires:?}"
    );
}

/// The service may (re)start during the second pass of a repeated hour: a fixed-time job must
/// not fire again for times it passed in the first pass; a wall-clock job simply goes on.
#[test]
fn starting_inside_the_repeated_hour() {
    assert_fires(
        "*/15 * * * *",
        NEW_YORK,
        "2024-11-03T01:10:00-05:00",
        &["2024-11-03T01:15:00-05:00"],
    );
    assert_fires(
        "30 1 * * *",
        NEW_YORK,
        "2024-11-03T01:10:00-05:00",
        &["2024-11-04T01:30:00-05:00"],
    );
    // Started in the first pass after the last match of the hour: the second pass comes next.
    assert_fires(
        "10 * * * *",
        NEW_YORK,
        "2024-11-03T01:50:00-04:00",
        &["2024-11-03T01:10:00-05:00", "2024-11-03T02:10:00-05:00"],
    );
    assert_fires(
        "30 2 * * *",
        ZURICH,
        "2024-10-27T02:10:00+01:00",
        &["2024-10-28T02:30:00+01:00"],
    );
}

/// The run at the end of a gap is not repeated by the matching time right after it.
#[test]
fn starting_at_the_end_of_a_gap() {
    assert_fires(
        "*/15 * * * *",
        ZURICH,
        "2024-03-31T03:00:00+02:00",
        &["2024-03-31T03:15:00+02:00"],
    );
}

#[test]
fn per_second_schedules_cross_both_transitions() {
    assert_fires(
        "* * * * * *",
        ZURICH,
        "2024-03-31T01:59:59+01:00",
        &["2024-03-31T03:00:00+02:00", "2024-03-31T03:00:01+02:00"],
    );
    // Every second of the repeated hour fires twice, once per pass.
    assert_fires(
        "* * * * * *",
        ZURICH,
        "2024-10-27T02:59:59+02:00",
        &["2024-10-27T02:00:00+01:00", "2024-10-27T02:00:01+01:00"],
    );
    // A fixed time of day written with seconds follows the fixed-time rule like its 5-field
    // twin `30 2 * * *` (cronsim treats every 6-field job as a wall-clock job; see the README).
    assert_fires(
        "30 30 2 * * *",
        ZURICH,
        "2024-03-31T00:00:00+01:00",
        &["2024-03-31T03:00:00+02:00"],
    );
}

/// Over a whole year, count fires per local date: a skipped hour loses a fixed-time job's runs
/// to one run at the end of the gap and a wall-clock job's runs altogether; a repeated hour adds
/// none to a fixed-time job and a second pass to a wall-clock job; no day is missed.
#[test]
fn a_year_of_fires_per_local_day() {
    for (zone, spring, fall) in [
        (ZURICH, (2024, 3, 31), (2024, 10, 27)),
        (NEW_YORK, (2024, 3, 10), (2024, 11, 3)),
    ] {
        let spring = NaiveDate::from_ymd_opt(spring.0, spring.1, spring.2).unwrap();
        let fall = NaiveDate::from_ymd_opt(fall.0, fall.1, fall.2).unwrap();
        for (expr, normal, on_spring, on_fall) in [
            ("30 2 * * *", 1, 1, 1),
            // The skipped 02:00 collapses into the 03:00 run, which fires anyway.
            ("0 1-3 * * *", 3, 2, 3),
            ("0 * * * *", 24, 23, 25),
            ("30 * * * *", 24, 23, 25),
            ("*/15 * * * *", 96, 92, 100),
        ] {
            let per_day = fires_per_local_day(expr, zone, 2024);
            assert_eq!(per_day.len(), 366, "{expr:?} in {zone}: a day had no fire");
            for (day, count) in per_day {
                let want = match day {
                    d if d == spring => on_spring,
                    d if d == fall => on_fall,
                    _ => normal,
                };
                assert_eq!(count, want, "{expr:?} in {zone} on {day}");
            }
        }
    }
}

fn fires_per_local_day(expr: &str, zone: &str, year: i32) -> BTreeMap<NaiveDate, usize> {
    let schedule = Schedule::parse(expr, Some(zone)).unwrap();
    let tz: Tz = zone.parse().unwrap();
    let first_local = NaiveDate::from_ymd_opt(year, 1, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0);
    // One second before local midnight on Jan 1, so a fire at 00:00:00 counts.
    let mut t = first_local
        .and_then(|t| t.and_local_timezone(tz).single())
        .unwrap()
        .to_utc()
        - TimeDelta::seconds(1);
    let mut per_day = BTreeMap::new();
    loop {
        let next = schedule.next_after(t).unwrap();
        assert!(next > t, "fire times must strictly increase");
        let day = next.with_timezone(&tz).date_naive();
        if day.year() != year {
            return per_day;
        }
        *per_day.entry(day).or_default() += 1;
        t = next;
    }
}

/// A wall-clock job fires exactly at the instants whose local reading matches, checked minute
/// by minute over two days around every 2026 clock change in five zones (Santiago's at
/// midnight, Lord Howe's by 30 minutes). Whether a reading matches is asked of the same
/// expression in UTC, where readings and instants are one and the same.
#[test]
fn wall_clock_jobs_fire_exactly_when_the_clock_shows_a_match() {
    let zones = [
        NEW_YORK,
        ZURICH,
        "Australia/Sydney",
        "America/Santiago",
        "Australia/Lord_Howe",
    ];
    let exprs = [
        "*/15 * * * *",
        "20 * * * *",
        "*/10 1,2 * * *",
        "0 */2 * * *",
        "*/30 23,0 * * *",
        "5 * * * 0",
        "*/20 * 1-3 * * *",
    ];
    for zone in zones {
        let tz: Tz = zone.parse().unwrap();
        for change in clock_changes(tz, 2026) {
            let (from, to) = (change - TimeDelta::days(1), change + TimeDelta::days(1));
            for expr in exprs {
                let local = Schedule::parse(expr, Some(zone)).unwrap();
                let reading = Schedule::parse(expr, None).unwrap();
                let step = if expr.split_whitespace().count() == 6 {
                    TimeDelta::seconds(20)
                } else {
                    TimeDelta::minutes(1)
                };
                let shows_a_match = |u: DateTime<Utc>| {
                    let r = u.with_timezone(&tz).naive_local().and_utc();
                    reading.next_after(r - TimeDelta::seconds(1)) == Some(r)
                };
                let mut want = Vec::new();
                let mut u = from + step;
                while u <= to {
                    if shows_a_match(u) {
                        want.push(u);
                    }
                    u += step;
                }
                let mut got = Vec::new();
                let mut t = from;
                while let Some(next) = local.next_after(t).filter(|n| *n <= to) {
                    got.push(next);
                    t = next;
                }
                assert_eq!(got, want, "{expr:?} in {zone} around {change}");
            }
        }
    }
}

/// The instants in `year` at which `tz` changes its offset (to the minute).
fn clock_changes(tz: Tz, year: i32) -> Vec<DateTime<Utc>> {
    let offset = |u: DateTime<Utc>| u.with_timezone(&tz).offset().fix();
    let mut changes = Vec::new();
    let mut u = NaiveDate::from_ymd_opt(year, 1, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc();
    while u.year() == year {
        let next = u + TimeDelta::minutes(30);
        if offset(next) != offset(u) {
            changes.push(next);
        }
        u = next;
    }
    changes
}
