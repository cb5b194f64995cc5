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
    ];
    for (expr, want) in cases {
        assert_eq!(error(expr), format!("schedule \"{expr}\": {want}"));
    }
}

#[test]
fn malformed_day_extensions_name_the_field_and_item() {
    #[rustfmt::skip]
    let cases = [
        // Out of range, as for a plain value.
        ("0 0 32W * *", "day-of-month 32 is out of range 1-31"),
        ("0 0 0W * *", "day-of-month 0 is out of range 1-31"),
        ("0 0 * * 8L", "day-of-week 8 is out of range 0-7"),
        ("0 0 * * 9#1", "day-of-week 9 is out of range 0-7"),
        ("0 0 * * MON#6", r#"day-of-week "MON#6": the number after # must be 1-5 (the first to the fifth such weekday of the month)"#),
        ("0 0 * * MON#0", r#"day-of-week "MON#0": the number after # must be 1-5 (the first to the fifth such weekday of the month)"#),
        ("0 0 * * MON#", r#"day-of-week "MON#": the number after # must be 1-5 (the first to the fifth such weekday of the month)"#),
        ("0 0 * * MON#+2", r#"day-of-week "MON#+2": the number after # must be 1-5 (the first to the fifth such weekday of the month)"#),
        ("0 0 * * FUN#2", r#"day-of-week "FUN" is not a number or a name (sun-sat)"#),
        // In a field that takes none.
        ("L * * * *", r#"minute "L" is not allowed here: L, W and # are only allowed in day-of-month and day-of-week"#),
        ("0 L * * *", r#"hour "L" is not allowed here: L, W and # are only allowed in day-of-month and day-of-week"#),
        ("0 0 1 L *", r#"month "L" is not allowed here: L, W and # are only allowed in day-of-month and day-of-week"#),
        ("0 0 1 1#2 *", r#"month "1#2" is not allowed here: L, W and # are only allowed in day-of-month and day-of-week"#),
        ("15W 0 1 * * *", r#"second "15W" is not allowed here: L, W and # are only allowed in day-of-month and day-of-week"#),
        // In the other day field, or in a form neither takes.
        ("0 0 5L * *", r#"day-of-month "5L" is not allowed here: in day-of-month L stands alone (L, LW); the last Friday of the month is 5L in day-of-week"#),
        ("0 0 MON#2 * *", r##"day-of-month "MON#2" is not allowed here: # belongs in day-of-week, e.g. MON#2 for the second Monday"##),
        ("0 0 W * *", r#"day-of-month "W" is not allowed here: W needs a day before it, e.g. 15W for the weekday nearest the 15th"#),
        ("0 0 * * 15W", r#"day-of-week "15W" is not allowed here: W belongs in day-of-month, e.g. 15W or LW"#),
        ("0 0 * * L", r#"day-of-week "L" is not allowed here: L in day-of-week needs a weekday before it, e.g. 5L or FRIL for the last Friday"#),
        ("0 0 L-3 * *", r#"day-of-month "L-3" is not allowed here: L, W and # apply to a single day, not to a range or a step"#),
        ("0 0 1-5W * *", r#"day-of-month "1-5W" is not allowed here: L, W and # apply to a single day, not to a range or a step"#),
        ("0 0 * * MON-FRI#2", r##"day-of-week "MON-FRI#2" is not allowed here: L, W and # apply to a single day, not to a range or a step"##),
        ("0 0 * * */2L", r#"day-of-week "*/2L" is not allowed here: L, W and # apply to a single day, not to a range or a step"#),
        // A list reports the bad item, not the whole field.
        ("0 0 1,L,40W * *", "day-of-month 40 is out of range 1-31"),
        // Never fires: both fields must match (one starts with `*`) and they never agree.
        ("0 0 LW * */6", "never fires: no chosen day of the month ever falls on a chosen day of the week"),
        ("0 0 31W 2 *", "never fires: no chosen day of the month exists in any chosen month"),
    ];
    for (expr, want) in cases {
        assert_eq!(error(expr), format!("schedule \"{expr}\": {want}"));
    }
    // Names that contain a marker letter are plain names.
    for expr in [
        "0 0 1 jul *",
        "0 0 * * wed",
        "0 0 * * WED#3",
        "0 0 * * wedl",
    ] {
        assert!(Schedule::parse(expr, None).is_ok(), "{expr}");
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
