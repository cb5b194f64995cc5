//! The public surface the service and dashboard use: `describe`, `Display`, `upcoming`,
//! `missed_since`, shorthands and the default zone.

use chrono::{DateTime, Utc};
use weir_schedule::Schedule;

fn time(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

fn describe(expr: &str, zone: Option<&str>) -> String {
    Schedule::parse(expr, zone).unwrap().describe()
}

#[test]
fn describes_common_forms() {
    #[rustfmt::skip]
    let cases = [
        ("0 6 1 * *", Some("Europe/Zurich"), "at 06:00 on day 1 of every month (Europe/Zurich)"),
        ("* * * * *", None, "every minute (UTC)"),
        ("*/15 * * * *", None, "every 15 minutes (UTC)"),
        ("0 * * * *", None, "at minute 0 of every hour (UTC)"),
        ("5,35 * * * *", None, "at minutes 5 and 35 of every hour (UTC)"),
        ("0 */2 * * *", None, "at minute 0 of every 2nd hour (UTC)"),
        ("30 2 * * *", Some("America/New_York"), "at 02:30 every day (America/New_York)"),
        ("5,35 0 * * *", None, "at 00:05 and 00:35 every day (UTC)"),
        ("0,30 9,17 * * *", None, "at 09:00, 09:30, 17:00 and 17:30 every day (UTC)"),
        ("0,30 9-11,17 * * *", None, "at minutes 0 and 30 during hours 09 through 11 and 17 (UTC)"),
        ("0 0,3,6,9,12,15,18 * * *", None, "at minute 0 during hours 00, 03, 06, 09, 12, 15 and 18 (UTC)"),
        ("0 9,18 * * 1-5", None, "at 09:00 and 18:00 on Monday through Friday (UTC)"),
        ("*/5 9-17 * * mon-fri", None, "every 5 minutes between 09:00 and 17:59 on Monday through Friday (UTC)"),
        ("0 0 * * 0", None, "at 00:00 on Sunday (UTC)"),
        ("0 0 * * 7", None, "at 00:00 on Sunday (UTC)"),
        ("0 0 * * sat,sun", None, "at 00:00 on Saturday and Sunday (UTC)"),
        ("0 0 * * fri-sun", None, "at 00:00 on Friday through Sunday (UTC)"),
        ("0 0 1,15 * *", None, "at 00:00 on days 1 and 15 of every month (UTC)"),
        ("0 0 1,15 * sun", None, "at 00:00 on days 1 and 15 of the month or on Sunday (UTC)"),
        ("0 16 */2 * sat", None, "at 16:00 on every 2nd day of the month, but only on Saturday (UTC)"),
        ("0 0 * 1-3 *", None, "at 00:00 every day in January through March (UTC)"),
        ("0 0 1 */3 *", None, "at 00:00 on day 1 of every 3rd month (UTC)"),
        ("0 0 1 jan,jul *", None, "at 00:00 on day 1 of January and July (UTC)"),
        ("0 12 * jun-aug mon", None, "at 12:00 on Monday in June through August (UTC)"),
        ("*/10 * * * * *", None, "every 10 seconds (UTC)"),
        ("* * * * * *", None, "every second (UTC)"),
        ("30 * * * * *", None, "at second 30 every minute (UTC)"),
        ("30 0 6 * * *", None, "at 06:00:30 every day (UTC)"),
        ("0 0-30/10 * * * *", None, "every 10 minutes from minute 0 through 30 (UTC)"),
        ("@hourly", None, "at minute 0 of every hour (UTC)"),
        ("@daily", None, "at 00:00 every day (UTC)"),
        ("@midnight", None, "at 00:00 every day (UTC)"),
        ("@weekly", None, "at 00:00 on Sunday (UTC)"),
        ("@monthly", None, "at 00:00 on day 1 of every month (UTC)"),
        ("@yearly", None, "at 00:00 on day 1 of January (UTC)"),
        ("@annually", Some("Asia/Tokyo"), "at 00:00 on day 1 of January (Asia/Tokyo)"),
    ];
    for (expr, zone, want) in cases {
        assert_eq!(describe(expr, zone), want, "{expr:?}");
    }
}

#[test]
fn describes_the_day_extensions() {
    #[rustfmt::skip]
    let cases = [
        ("0 6 L * *", None, "at 06:00 on the last day of the month (UTC)"),
        ("0 6 LW * *", None, "at 06:00 on the last weekday of the month (UTC)"),
        ("0 6 15W * *", None, "at 06:00 on the weekday nearest the 15th of the month (UTC)"),
        ("0 6 1w * *", None, "at 06:00 on the weekday nearest the 1st of the month (UTC)"),
        ("0 6 1,15,L * *", None, "at 06:00 on days 1, 15 and the last day of the month (UTC)"),
        ("0 6 L,1 * *", None, "at 06:00 on day 1 and the last day of the month (UTC)"),
        ("0 6 L 2 *", None, "at 06:00 on the last day of February (UTC)"),
        ("0 6 LW */3 *", None, "at 06:00 on the last weekday of every 3rd month (UTC)"),
        ("0 9 * * MON#2", None, "at 09:00 on the second Monday of the month (UTC)"),
        ("0 9 * * 1#1", None, "at 09:00 on the first Monday of the month (UTC)"),
        ("0 9 * * 0#5,7#4", None, "at 09:00 on the fifth Sunday and the fourth Sunday of the month (UTC)"),
        ("0 9 * * 5L", None, "at 09:00 on the last Friday of the month (UTC)"),
        ("0 9 * * FRIL", None, "at 09:00 on the last Friday of the month (UTC)"),
        ("0 9 * * sat,5L", None, "at 09:00 on Saturday and the last Friday of the month (UTC)"),
        ("0 9 * mar MON#2", None, "at 09:00 on the second Monday in March (UTC)"),
        ("*/30 9-17 * * 5L", None, "every 30 minutes between 09:00 and 17:59 on the last Friday of the month (UTC)"),
        ("0 0 L * 5L", Some("Europe/Zurich"),
            "at 00:00 on the last day of the month or on the last Friday of the month (Europe/Zurich)"),
        ("0 0 */2 * 5L", None,
            "at 00:00 on every 2nd day of the month, but only on the last Friday of the month (UTC)"),
    ];
    for (expr, zone, want) in cases {
        assert_eq!(describe(expr, zone), want, "{expr:?}");
    }
}

#[test]
fn display_is_the_original_text() {
    for expr in ["0 6 1 * *", "@daily", "*/15  9-17 * * MON-FRI", "0 0 * * 7"] {
        let schedule = Schedule::parse(expr, Some("Europe/Zurich")).unwrap();
        assert_eq!(schedule.to_string(), expr);
        assert_eq!(schedule.expr(), expr);
    }
}

#[test]
fn zone_defaults_to_utc() {
    let schedule = Schedule::parse("0 6 * * *", None).unwrap();
    assert_eq!(schedule.timezone(), "UTC");
    assert_eq!(
        schedule.next_after(time("2024-01-01T00:00:00Z")),
        Some(time("2024-01-01T06:00:00Z"))
    );
    let zurich = Schedule::parse("0 6 * * *", Some("Europe/Zurich")).unwrap();
    assert_eq!(zurich.timezone(), "Europe/Zurich");
    assert_eq!(
        zurich.next_after(time("2024-01-01T00:00:00Z")),
        Some(time("2024-01-01T05:00:00Z"))
    );
}

#[test]
fn shorthands_match_their_expansions() {
    for (short, long) in [
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@monthly", "0 0 1 * *"),
        ("@weekly", "0 0 * * 0"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@hourly", "0 * * * *"),
        ("@DAILY", "0 0 * * *"),
    ] {
        let a = Schedule::parse(short, None).unwrap();
        let b = Schedule::parse(long, None).unwrap();
        let start = time("2023-12-30T13:17:00Z");
        assert_eq!(a.upcoming(start, 5), b.upcoming(start, 5), "{short}");
    }
}

#[test]
fn next_after_is_strict() {
    let schedule = Schedule::parse("0 6 * * *", None).unwrap();
    let six = time("2024-05-01T06:00:00Z");
    assert_eq!(schedule.next_after(six), Some(time("2024-05-02T06:00:00Z")));
    assert_eq!(
        schedule.next_after(six - chrono::TimeDelta::nanoseconds(1)),
        Some(six)
    );
}

#[test]
fn upcoming_lists_n_increasing_times() {
    let schedule = Schedule::parse("*/20 * * * *", None).unwrap();
    let got = schedule.upcoming(time("2024-05-01T23:30:00Z"), 4);
    let want: Vec<_> = [
        "2024-05-01T23:40:00Z",
        "2024-05-02T00:00:00Z",
        "2024-05-02T00:20:00Z",
        "2024-05-02T00:40:00Z",
    ]
    .into_iter()
    .map(time)
    .collect();
    assert_eq!(got, want);
    assert!(
        schedule
            .upcoming(time("2024-05-01T23:30:00Z"), 0)
            .is_empty()
    );
}

#[test]
fn missed_since_counts_fires_in_the_half_open_window() {
    let schedule = Schedule::parse("0 6 * * *", None).unwrap();
    let six = time("2024-05-01T06:00:00Z");
    // The window is (last, now]: a fire exactly at `now` was missed, one exactly at `last` was not.
    assert!(schedule.missed_since(time("2024-05-01T05:00:00Z"), six));
    assert!(!schedule.missed_since(six, time("2024-05-01T07:00:00Z")));
    assert!(!schedule.missed_since(time("2024-05-01T05:00:00Z"), time("2024-05-01T05:59:59Z")));
    // Down for three days: still just "missed" (the service runs one catch-up, not three).
    assert!(schedule.missed_since(six, time("2024-05-04T12:00:00Z")));
    // An empty or inverted window misses nothing.
    assert!(!schedule.missed_since(six, six));
    assert!(!schedule.missed_since(time("2024-05-02T00:00:00Z"), six));
}

#[test]
fn day_of_month_and_day_of_week_follow_vixie() {
    // Both restricted: either matches. 2024-06-03 is a Monday, 2024-06-15 a Saturday.
    let either = Schedule::parse("0 0 15 * mon", None).unwrap();
    assert_eq!(
        either.upcoming(time("2024-06-01T00:00:00Z"), 3),
        vec![
            time("2024-06-03T00:00:00Z"),
            time("2024-06-10T00:00:00Z"),
            time("2024-06-15T00:00:00Z"),
        ]
    );
    // One starts with `*`: both must match, a Monday that is day 1, 6, 11, ... of the month.
    // No June 2024 Monday (3, 10, 17, 24) qualifies; July 1 does.
    let both = Schedule::parse("0 0 */5 * mon", None).unwrap();
    assert_eq!(
        both.next_after(time("2024-06-01T00:00:00Z")),
        Some(time("2024-07-01T00:00:00Z"))
    );
}

#[test]
fn rare_schedules_are_found_far_ahead() {
    // Feb 29 that is also a Sunday (AND: day-of-week starts with `*`): 28 years apart.
    let schedule = Schedule::parse("0 0 29 2 */7", None).unwrap();
    assert_eq!(
        schedule.next_after(time("2004-03-01T00:00:00Z")),
        Some(time("2032-02-29T00:00:00Z"))
    );
}
