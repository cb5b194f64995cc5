//! Parse errors: each message names the schedule, the field and the offending token. Several
//! inputs come from croniter's `testError`, `test_overflow`, `test_invalid_zerorepeat` and
//! wrap-around range tests, and from robfig/cron's unsatisfiable `TestNext` cases.

use weir_schedule::{Schedule, ScheduleErrorKind};

/// The full message for `expr` (UTC), which must fail to parse.
fn error(expr: &str) -> String {
    match Schedule::parse(expr, None) {
        Ok(s) => panic!("{expr:?} parsed, as {:?}", s.describe()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn out_of_range_values_name_the_field_and_range() {
    let cases = [
        ("0 25 * * *", "hour 25 is out of range 0-23"),
        ("60 * * * *", "minute 60 is out of range 0-59"),
        ("* * 0 * *", "day-of-month 0 is out of range 1-31"),
        ("* * 32 * *", "day-of-month 32 is out of range 1-31"),
        ("* * 5-100 * *", "day-of-month 100 is out of range 1-31"),
        ("* * * 13 *", "month 13 is out of range 1-12"),
        ("* * * 0 *", "month 0 is out of range 1-12"),
        ("* * * * 8", "day-of-week 8 is out of range 0-7"),
        ("60 * * * * *", "second 60 is out of range 0-59"),
        ("0-10000000 * * * *", "minute 10000000 is out of range 0-59"),
        (
            "99999999999999999999 * * * *",
            "minute 99999999999999999999 is out of range 0-59",
        ),
    ];
    for (expr, want) in cases {
        assert_eq!(error(expr), format!("schedule \"{expr}\": {want}"));
    }
}

#[test]
fn bad_tokens_are_quoted() {
    let cases = [
        ("a * * * *", r#"minute "a" is not a number"#),
        ("-90 * * * *", r#"minute "-90" is not a number"#),
        ("1-1_0 * * * *", r#"minute "1_0" is not a number"#),
        ("0-1& * * * *", r#"minute "1&" is not a number"#),
        ("* mon * * *", r#"hour "mon" is not a number"#),
        ("/5 * * * *", r#"minute "/5" is not a number"#),
        (
            "* * * janu-jun *",
            r#"month "janu" is not a number or a name (jan-dec)"#,
        ),
        (
            "* * * * funday",
            r#"day-of-week "funday" is not a number or a name (sun-sat)"#,
        ),
        (
            "0 0 1 * ?",
            r#"day-of-week "?" is not a number or a name (sun-sat)"#,
        ),
        ("0 0 L * *", r#"day-of-month "L" is not a number"#),
    ];
    for (expr, want) in cases {
        assert_eq!(error(expr), format!("schedule \"{expr}\": {want}"));
    }
}

#[test]
fn bad_steps() {
    for (expr, item) in [
        ("*/0 * * * *", "*/0"),
        ("0-10/ * * * *", "0-10/"),
        ("0-10/error * * * *", "0-10/error"),
        ("*/-1 * * * *", "*/-1"),
    ] {
        assert_eq!(
            error(expr),
            format!(
                "schedule \"{expr}\": minute step in \"{item}\" must be a whole number of at least 1"
            )
        );
    }
}

#[test]
fn wrap_around_ranges_are_rejected() {
    // croniter accepts these (test_mth_ranges_from, test_sunday_ranges_from); Vixie cron does not.
    for (expr, field, range) in [
        ("0 0 1 Nov-Mar *", "month", "Nov-Mar"),
        ("0 0 1 Apr-Mar/3 *", "month", "Apr-Mar"),
        ("0 0 * * Thu-Tue/2", "day-of-week", "Thu-Tue"),
        ("0 22-2 * * *", "hour", "22-2"),
    ] {
        assert_eq!(
            error(expr),
            format!(
                "schedule \"{expr}\": {field} range \"{range}\" is reversed (cron ranges do not \
                 wrap around; use a list such as \"22-23,0-2\")"
            )
        );
    }
}

#[test]
fn structure_errors() {
    let cases = [
        ("", "is empty"),
        ("   ", "is empty"),
        (
            "* * * *",
            "expected 5 fields (minute hour day-of-month month day-of-week) or 6 with leading \
             seconds, found 4",
        ),
        (
            "0 0 1 * * 0 2060",
            "expected 5 fields (minute hour day-of-month month day-of-week) or 6 with leading \
             seconds, found 7",
        ),
        ("1,,2 * * * *", r#"minute "1,,2" has an empty list item"#),
        ("1, * * * *", r#"minute "1," has an empty list item"#),
        (
            "@fortnightly",
            r#"unknown shorthand "@fortnightly" (expected @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly)"#,
        ),
        (
            "@reboot",
            r#"unknown shorthand "@reboot" (expected @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly)"#,
        ),
    ];
    for (expr, want) in cases {
        assert_eq!(error(expr), format!("schedule \"{expr}\": {want}"));
    }
}

#[test]
fn schedules_that_never_fire_are_rejected() {
    // robfig/cron TestNext "Unsatisfiable": it returns the zero time; we refuse to parse.
    for expr in [
        "0 0 0 30 Feb *",
        "0 0 0 31 Apr *",
        "0 0 30 2 *",
        "0 0 31 2,4,6 *",
    ] {
        assert_eq!(
            error(expr),
            format!(
                "schedule \"{expr}\": never fires: no chosen day of the month exists in any chosen month"
            )
        );
    }
    // A restricted weekday rescues it (Vixie OR), so this one is valid.
    assert!(Schedule::parse("0 0 30 2 mon", None).is_ok());
}

#[test]
fn unknown_time_zones_are_named() {
    for zone in ["Mars/Olympus_Mons", "", "europe/zurich"] {
        let err = Schedule::parse("0 6 * * *", Some(zone)).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "schedule \"0 6 * * *\": unknown time zone \"{zone}\" (expected an IANA name such as \"Europe/Zurich\")"
            )
        );
        assert_eq!(
            err.kind(),
            &ScheduleErrorKind::UnknownTimeZone {
                zone: zone.to_owned()
            }
        );
    }
}

#[test]
fn errors_expose_their_parts() {
    let err = Schedule::parse("0 25 * * *", None).unwrap_err();
    assert_eq!(err.expr(), "0 25 * * *");
    assert_eq!(
        err.kind(),
        &ScheduleErrorKind::OutOfRange {
            field: "hour",
            token: "25".to_owned(),
            min: 0,
            max: 23
        }
    );
}

#[test]
fn messages_are_lowercase_after_the_prefix() {
    for expr in ["0 25 * * *", "a * * * *", "* * * *", "@x", "0 0 30 2 *"] {
        let message = error(expr);
        let detail = message.split_once(": ").unwrap().1;
        assert!(detail.starts_with(|c: char| c.is_lowercase()), "{message}");
    }
}
