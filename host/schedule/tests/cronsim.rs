//! Next-fire times checked against cases generated from cronsim, a simulation of Debian/Vixie
//! cron with its daylight-saving rules (`tests/reference/generate.py`, which pins cronsim 2.8
//! and tzdata 2025.2, the tzdb release chrono-tz 0.10.4 bundles). The `nW` cases come from the
//! generator's own rule (cronsim has no `W`) and are counted apart.
//!
//! Every case must agree, except those in `DELIBERATE`. Those are not waved through: each
//! reason comes with a check that the difference is exactly that one (the README lists them).

use std::collections::BTreeSet;

use chrono::{DateTime, FixedOffset, Offset, TimeDelta, Utc};
use chrono_tz::Tz;
use weir_schedule::Schedule;

const CASES: &str = include_str!("reference/cronsim_cases.tsv");

/// Why weir answers differently from cronsim on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    /// A 6-field fixed-time job: cronsim applies Debian's fixed-time rule to 5-field
    /// expressions only; weir to both, so `0 30 2 * * *` behaves as `30 2 * * *`.
    SixFieldFixedTime,
    /// Started in the second pass of a repeated hour, cronsim's fixed-time mode answers with a
    /// time from the first pass, before the start; weir answers after the start and, as Vixie,
    /// does not re-run the job in the repeated hour.
    CronsimAnswersBeforeTheStart,
    /// cronsim moves a wall-clock job by whole real hours, so across Lord Howe's 30-minute
    /// change it misses a time the clock shows (02:00 +10:30 on 2026-04-05).
    HalfHourChange,
    /// cronsim fires a wall-clock job at a midnight that does not exist (Santiago, 2026-09-06,
    /// 00:00 jumps to 01:00); Vixie runs wall-clock jobs only at times the clock shows.
    MidnightThatDoesNotExist,
    /// `N/S` in day-of-week (not Vixie syntax) runs to Saturday in weir, as in robfig/cron and
    /// croniter; cronsim runs it to 7, a second Sunday, so its `1/2` includes Sundays.
    WeekdayStepEnd,
}

/// The cases weir answers differently on purpose: (id, expression, why).
#[rustfmt::skip]
const DELIBERATE: &[(&str, &str, Reason)] = &[
    ("c014", "0 30 2 * * *", Reason::SixFieldFixedTime),
    ("c018", "30 1 * * *", Reason::CronsimAnswersBeforeTheStart),
    ("c022", "0,30 1 * * *", Reason::CronsimAnswersBeforeTheStart),
    ("c024", "0-59/20 1 * * *", Reason::CronsimAnswersBeforeTheStart),
    ("c026", "15 0,1,2 * * *", Reason::CronsimAnswersBeforeTheStart),
    ("c043", "0 30 1 * * *", Reason::SixFieldFixedTime),
    ("c044", "0 30 1 * * *", Reason::SixFieldFixedTime),
    ("c062", "0 30 2 * * *", Reason::SixFieldFixedTime),
    ("c066", "30 2 * * *", Reason::CronsimAnswersBeforeTheStart),
    ("c070", "0,30 2 * * *", Reason::CronsimAnswersBeforeTheStart),
    ("c072", "0-59/20 2 * * *", Reason::CronsimAnswersBeforeTheStart),
    ("c074", "15 1,2,3 * * *", Reason::CronsimAnswersBeforeTheStart),
    ("c091", "0 30 2 * * *", Reason::SixFieldFixedTime),
    ("c092", "0 30 2 * * *", Reason::SixFieldFixedTime),
    ("c110", "0 30 1 * * *", Reason::SixFieldFixedTime),
    ("c114", "30 1 * * *", Reason::CronsimAnswersBeforeTheStart),
    ("c118", "0,30 1 * * *", Reason::CronsimAnswersBeforeTheStart),
    ("c120", "0-59/20 1 * * *", Reason::CronsimAnswersBeforeTheStart),
    ("c122", "15 0,1,2 * * *", Reason::CronsimAnswersBeforeTheStart),
    ("c139", "0 30 1 * * *", Reason::SixFieldFixedTime),
    ("c140", "0 30 1 * * *", Reason::SixFieldFixedTime),
    ("c146", "30 2 * * *", Reason::CronsimAnswersBeforeTheStart),
    ("c150", "0,30 2 * * *", Reason::CronsimAnswersBeforeTheStart),
    ("c152", "0-59/20 2 * * *", Reason::CronsimAnswersBeforeTheStart),
    ("c154", "15 1,2,3 * * *", Reason::CronsimAnswersBeforeTheStart),
    ("c171", "0 30 2 * * *", Reason::SixFieldFixedTime),
    ("c172", "0 30 2 * * *", Reason::SixFieldFixedTime),
    ("c190", "0 30 2 * * *", Reason::SixFieldFixedTime),
    ("c194", "30 23 * * *", Reason::CronsimAnswersBeforeTheStart),
    ("c198", "0,30 23 * * *", Reason::CronsimAnswersBeforeTheStart),
    ("c200", "0-59/20 23 * * *", Reason::CronsimAnswersBeforeTheStart),
    ("c202", "15 22,23,0 * * *", Reason::CronsimAnswersBeforeTheStart),
    ("c219", "0 30 23 * * *", Reason::SixFieldFixedTime),
    ("c220", "0 30 23 * * *", Reason::SixFieldFixedTime),
    ("c238", "0 30 0 * * *", Reason::SixFieldFixedTime),
    ("c263", "0 */2 * * *", Reason::HalfHourChange),
    ("c264", "0 */2 * * *", Reason::HalfHourChange),
    ("c298", "15 0,1,2 * * *", Reason::CronsimAnswersBeforeTheStart),
    ("c304", "0 30 1 * * *", Reason::SixFieldFixedTime),
    ("c309", "15 1,2,3 * * *", Reason::CronsimAnswersBeforeTheStart),
    ("c315", "0 30 2 * * *", Reason::SixFieldFixedTime),
    ("c377", "15 10 * * 1/2", Reason::WeekdayStepEnd),
    ("c378", "15 10 * * 1/2", Reason::WeekdayStepEnd),
    ("c427", "*/30 0 * * 0", Reason::MidnightThatDoesNotExist),
];

/// One row of the data file.
struct Case<'a> {
    id: &'a str,
    source: &'a str,
    tags: &'a str,
    expr: &'a str,
    zone: &'a str,
    start: &'a str,
    fires: Vec<&'a str>,
}

impl Case<'_> {
    fn tagged(&self, tag: &str) -> bool {
        self.tags.split(',').any(|t| t == tag)
    }

    fn tz(&self) -> Tz {
        self.zone.parse().unwrap()
    }

    fn start(&self) -> DateTime<Utc> {
        time(self.start)
    }

    /// cronsim's (or the rule's) answer.
    fn theirs(&self) -> Vec<DateTime<Utc>> {
        self.fires.iter().map(|s| time(s)).collect()
    }

    /// weir's answer for this case's expression, or for `expr` in its place.
    fn weir(&self, expr: &str) -> Vec<DateTime<Utc>> {
        Schedule::parse(expr, Some(self.zone))
            .unwrap_or_else(|e| panic!("{}: {e}", self.id))
            .upcoming(self.start(), self.fires.len())
    }
}

fn cases() -> Vec<Case<'static>> {
    CASES
        .lines()
        .filter(|line| !line.starts_with('#'))
        .skip(1)
        .map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            assert_eq!(cols.len(), 7, "bad row: {line}");
            Case {
                id: cols[0],
                source: cols[1],
                tags: cols[2],
                expr: cols[3],
                zone: cols[4],
                start: cols[5],
                fires: cols[6].split(' ').collect(),
            }
        })
        .collect()
}

fn time(s: &str) -> DateTime<Utc> {
    labelled(s).to_utc()
}

/// A time with the offset it was written with.
fn labelled(s: &str) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(s).unwrap_or_else(|e| panic!("bad time {s:?}: {e}"))
}

/// Checks that weir's answer `ours` differs from the case's in exactly the way `reason` says.
fn check_reason(reason: Reason, case: &Case, ours: &[DateTime<Utc>]) -> Result<(), String> {
    let theirs = case.theirs();
    let ok = |holds: bool, what: &str| if holds { Ok(()) } else { Err(what.to_owned()) };
    match reason {
        Reason::SixFieldFixedTime => {
            let fields: Vec<&str> = case.expr.split_whitespace().collect();
            ok(
                fields.len() == 6
                    && fields[0] == "0"
                    && !fields[1..3].iter().any(|f| f.starts_with('*')),
                "not a 6-field fixed-time job with second 0",
            )?;
            // The same as its 5-field twin, whose own cases agree with cronsim.
            ok(
                ours == case.weir(&fields[1..].join(" ")),
                "differs from its 5-field twin",
            )
        }
        Reason::CronsimAnswersBeforeTheStart => {
            ok(
                theirs[0] <= case.start(),
                "cronsim's first answer is after the start",
            )?;
            // Past its early answers, cronsim agrees.
            let after: Vec<_> = theirs.into_iter().filter(|t| *t > case.start()).collect();
            ok(ours.starts_with(&after), "differs after the start too")
        }
        Reason::HalfHourChange => {
            // weir only adds fires, each in the hour after a 30-minute change of offset.
            let tz = case.tz();
            let offset = |t: DateTime<Utc>| {
                TimeDelta::seconds(t.with_timezone(&tz).offset().fix().local_minus_utc().into())
            };
            let last = *ours.last().unwrap();
            ok(
                theirs
                    .iter()
                    .filter(|t| **t <= last)
                    .all(|t| ours.contains(t)),
                "weir drops one of cronsim's fires",
            )?;
            let extra: Vec<_> = ours.iter().filter(|t| !theirs.contains(t)).collect();
            ok(
                !extra.is_empty()
                    && extra.iter().all(|&&t| {
                        let change = offset(t - TimeDelta::hours(1)) - offset(t);
                        change == TimeDelta::minutes(30)
                    }),
                "an extra fire is not just after a 30-minute change",
            )
        }
        Reason::MidnightThatDoesNotExist => {
            // cronsim's extra fires are labelled with a local time the zone does not have.
            let tz = case.tz();
            let last = *ours.last().unwrap();
            ok(
                ours.iter()
                    .filter(|t| **t <= *theirs.last().unwrap())
                    .all(|t| theirs.contains(t)),
                "weir adds a fire",
            )?;
            let extra: Vec<_> = case
                .fires
                .iter()
                .filter(|s| time(s) <= last && !ours.contains(&time(s)))
                .collect();
            ok(
                !extra.is_empty()
                    && extra.iter().all(|s| {
                        let label = labelled(s);
                        label.naive_local() != label.with_timezone(&tz).naive_local()
                    }),
                "a dropped fire is at a time that exists",
            )
        }
        Reason::WeekdayStepEnd => {
            use chrono::Datelike;
            let tz = case.tz();
            let is_sunday =
                |t: &DateTime<Utc>| t.with_timezone(&tz).weekday() == chrono::Weekday::Sun;
            ok(
                case.expr
                    .split_whitespace()
                    .nth(4)
                    .is_some_and(|f| !f.starts_with('*') && f.contains('/')),
                "day-of-week is not N/S",
            )?;
            let without_sundays: Vec<_> =
                theirs.iter().copied().filter(|t| !is_sunday(t)).collect();
            ok(
                without_sundays.len() < theirs.len() && ours.starts_with(&without_sundays),
                "cronsim's answer is not weir's plus Sundays",
            )
        }
    }
}

#[test]
fn every_case_agrees_or_is_a_deliberate_difference() {
    let cases = cases();
    let mut problems = Vec::new();
    let mut agreements = 0;
    for case in &cases {
        let ours = case.weir(case.expr);
        let deliberate = DELIBERATE.iter().find(|(id, _, _)| *id == case.id);
        match deliberate {
            None if ours == case.theirs() => agreements += 1,
            None => problems.push(format!(
                "{} {:?} in {} after {}:\n  theirs: {}\n  weir:   {}",
                case.id,
                case.expr,
                case.zone,
                case.start,
                case.fires.join(" "),
                ours.iter()
                    .map(|t| t.with_timezone(&case.tz()).to_rfc3339())
                    .collect::<Vec<_>>()
                    .join(" ")
            )),
            Some((_, expr, reason)) => {
                if expr != &case.expr {
                    problems.push(format!(
                        "{}: DELIBERATE names {expr:?}, the data file {:?} (regenerated?)",
                        case.id, case.expr
                    ));
                } else if ours == case.theirs() {
                    problems.push(format!("{}: listed as deliberate but agrees", case.id));
                } else if let Err(why) = check_reason(*reason, case, &ours) {
                    problems.push(format!("{}: not a {reason:?} difference: {why}", case.id));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert_eq!(agreements + DELIBERATE.len(), cases.len());

    let count = |f: &dyn Fn(&Case) -> bool| cases.iter().filter(|c| f(c)).count();
    let zones: BTreeSet<&str> = cases.iter().map(|c| c.zone).collect();
    let dst_zones: BTreeSet<&str> = cases
        .iter()
        .filter(|c| c.tagged("dst"))
        .map(|c| c.zone)
        .collect();
    let from_cronsim = count(&|c| c.source == "cronsim");
    println!(
        "{agreements} of {} cases agree ({} deliberate differences); {from_cronsim} from cronsim, \
         {} from the nW rule; {} around DST in {} zones; {} with extensions; {} zones in all",
        cases.len(),
        DELIBERATE.len(),
        cases.len() - from_cronsim,
        count(&|c| c.tagged("dst")),
        dst_zones.len(),
        count(&|c| c.tagged("ext")),
        zones.len(),
    );
    // What the issue asks of the data: enough cases, a third around DST in three zones or more
    // (one southern), and the extensions.
    assert!(cases.len() >= 200);
    assert!(count(&|c| c.tagged("dst")) * 3 >= cases.len());
    assert!(dst_zones.len() >= 3);
    assert!(dst_zones.contains("Australia/Sydney") && dst_zones.contains("America/Santiago"));
    let items = |c: &Case<'static>| -> Vec<&'static str> {
        let fields: Vec<&'static str> = c.expr.split_whitespace().collect();
        fields.iter().flat_map(|f| f.split(',')).collect()
    };
    let uses = |what: &str, test: fn(&str) -> bool| {
        assert!(
            cases.iter().any(|c| items(c).into_iter().any(test)),
            "no case uses {what}"
        );
    };
    uses("L", |i| i == "L");
    uses("LW", |i| i == "LW");
    uses("nW", |i| {
        i.ends_with('W') && i.starts_with(|c: char| c.is_ascii_digit())
    });
    uses("d#n", |i| i.contains('#'));
    uses("dL", |i| {
        i.ends_with('L') && i.starts_with(|c: char| c.is_ascii_digit())
    });
}

/// The reasons are not a free pass: each check rejects a difference of another kind.
#[test]
fn reason_checks_reject_other_differences() {
    let cases = cases();
    let case = cases.iter().find(|c| c.id == "c001").unwrap();
    let mut wrong = case.theirs();
    wrong[0] += TimeDelta::minutes(1);
    for reason in [
        Reason::SixFieldFixedTime,
        Reason::CronsimAnswersBeforeTheStart,
        Reason::HalfHourChange,
        Reason::MidnightThatDoesNotExist,
        Reason::WeekdayStepEnd,
    ] {
        assert!(check_reason(reason, case, &wrong).is_err(), "{reason:?}");
    }
}
