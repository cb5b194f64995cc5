//! Cron schedules for `weir serve`: parse a pipeline's `schedule`, compute its fire times in its
//! time zone, and say in words when it runs (README, "Schedules").
//!
//! # Syntax
//!
//! - 5 fields, `minute hour day-of-month month day-of-week`, as in crontab(5);
//! - 6 fields, the same with a leading `second`;
//! - `@yearly` (= `@annually`), `@monthly`, `@weekly`, `@daily` (= `@midnight`), `@hourly`,
//!   with crontab(5)'s expansions (`@weekly` is Sunday 00:00).
//!
//! Each field is a comma-separated list of `*`, `N`, `A-B`, `*/S`, `A-B/S` or `N/S` (from `N` to
//! the end of the field, as in robfig/cron and croniter). Month and day-of-week also take
//! three-letter English names in any case (`jan`, `Mon-Fri`). Day-of-week 0 and 7 are both
//! Sunday, and a range may end on Sunday (`fri-sun`); otherwise ranges never wrap around
//! (`fri-mon` is an error, as in Vixie cron). `?` is not supported.
//!
//! The day fields also take the extensions of Quartz, Cronos and croner, one per list item:
//! day-of-month `L` (the last day of the month), `LW` (its last weekday) and `15W` (the weekday
//! nearest the 15th, never crossing into another month); day-of-week `MON#2` or `1#2` (the
//! second Monday of the month) and `5L` or `FRIL` (its last Friday). See `days.rs` for the
//! exact rules.
//!
//! # Day-of-month and day-of-week
//!
//! Vixie semantics, as cronie and Vixie cron implement them: if either day field *starts with
//! `*`*, a day must match both (so a plain `*` has no effect); if both are restricted, a day
//! matching either fires. Note that `*/2` starts with `*` and therefore ANDs: `0 16 */2 * sat`
//! fires on odd-numbered Saturdays only. (croniter calls this `implement_cron_bug`; robfig/cron
//! and croner OR instead. We follow what real crontabs do.)
//!
//! # Time zones and daylight saving
//!
//! An expression names *local wall-clock times* in its IANA zone (default UTC). Around
//! daylight-saving changes it behaves as Vixie and Debian cron do (cron(8): only jobs "that run
//! at a particular time (not specified as @hourly, nor with '*' in the hour or minute
//! specifier)" get the special handling; "jobs which are specified with wildcards are run based
//! on the new time immediately"), which is also what cronsim simulates. So there are two kinds
//! of job, told apart by the *first character* of the minute and hour fields:
//!
//! - **Fixed-time jobs**: neither field starts with `*` (`30 2 * * *`, `0 9,17 * * 1-5`,
//!   `0-59/15 2 * * *`, `@daily`, `@weekly`). Each matching reading fires exactly once. One the
//!   clocks skip fires at the instant the gap ends (several skipped ones fire together, once);
//!   one the clocks repeat fires at its first occurrence only. America/New_York, 2026-03-08
//!   (02:00 EST jumps to 03:00 EDT): `30 2 * * *` fires at 03:00 EDT. 2026-11-01 (02:00 EDT
//!   goes back to 01:00 EST): `30 1 * * *` fires at 01:30 EDT and not at 01:30 EST.
//! - **Wall-clock jobs**: the minute or the hour field starts with `*` (`*/15 * * * *`,
//!   `0 * * * *`, `@hourly`, `5 */2 * * *`, `*/10 2 * * *`). They fire at every instant whose
//!   local reading matches: nothing for skipped readings (no catch-up run at the end of the
//!   gap), both passes of repeated ones. New York again: on 2026-03-08 `30 * * * *` fires at
//!   01:30 EST then 03:30 EDT and `*/10 2 * * *` not at all; on 2026-11-01 `@hourly` fires at
//!   01:00 EDT, 01:00 EST, 02:00 EST (25 runs that day) and `*/15 * * * *` at 01:45 EDT then
//!   01:00 EST, keeping its 15-minute rhythm.
//!
//! The same rule applies to 6-field expressions (cronsim applies Debian's rule to 5-field ones
//! only and treats every 6-field job as a wall-clock job; we do not, so that adding a seconds
//! field never makes a daily job skip a spring-forward day or run twice on a fall-back day).
//!
//! # Why not the `cron` crate (or `croner`)
//!
//! The design card named `cron`. A throwaway check of `cron` 0.17.0 and `croner` 4.0.3 against
//! the reference cases (robfig/cron `spec_test.go`, croniter `test_croniter.py`) found:
//!
//! - `cron` rejects every 5-field expression (`0 6 * * *` is a parse error: seconds are
//!   mandatory). It ANDs the day fields (`0 * * 1,15 * Sun` after 2012-06-14T23:59:59 gives
//!   2012-07-01, not 2012-06-15; `0 0 0 1 * wed` after 2010-01-25 gives 2010-09-01, not
//!   2010-01-27). Its weekdays are Quartz-numbered 1-7 from Sunday (`1` is Sunday, `0` is a
//!   parse error, `7` is Saturday). Across DST it drops a daily 02:30 run on the spring-forward
//!   day and runs it twice on the fall-back day (Europe/Zurich, 2024).
//! - `croner` parses 5 fields and ORs the day fields, but treats `*/2` as restricted
//!   (`0 16 */2 * sat` fires on 2023-05-03, a Wednesday). Its errors do not name the field and
//!   token.
//!
//! Wrapping either would mean re-filtering its output, so this crate has its own matcher: each
//! field is a bit set, the search advances field by field from the largest unit (skipping whole
//! months, days, hours, minutes that cannot match), and `zone.rs` maps each local match to an
//! instant with the rules above. The evidence: the hand-transcribed table in
//! `tests/reference.rs` and the cases generated from cronsim in `tests/reference/`.

mod days;
mod describe;
mod error;
mod field;
mod spec;
mod zone;

use std::fmt;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

pub use error::{ScheduleError, ScheduleErrorKind};
use spec::Spec;

/// A parsed pipeline schedule: a cron expression plus the IANA time zone it is read in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    expr: String,
    tz: Tz,
    spec: Spec,
}

impl Schedule {
    /// Parses `expr` (see the crate docs for the syntax) in time zone `tz`, an IANA name such as
    /// `Europe/Zurich`; `None` means UTC.
    ///
    /// Errors name the schedule, the field and the offending token, e.g.
    /// `schedule "0 25 * * *": hour 25 is out of range 0-23`. An expression that can never
    /// fire (`0 0 30 2 *`) is an error too, rather than a pipeline that silently never runs.
    pub fn parse(expr: &str, tz: Option<&str>) -> Result<Self, ScheduleError> {
        let spec = Spec::parse(expr).map_err(|kind| ScheduleError::new(expr, kind))?;
        let tz = match tz {
            None => Tz::UTC,
            Some(name) => name.parse::<Tz>().map_err(|_| {
                ScheduleError::new(
                    expr,
                    ScheduleErrorKind::UnknownTimeZone {
                        zone: name.to_owned(),
                    },
                )
            })?,
        };
        Ok(Self {
            expr: expr.to_owned(),
            tz,
            spec,
        })
    }

    /// The first fire time strictly after `t`, or `None` if there is none within the next 400
    /// years (only possible near the end of chrono's calendar, since never-firing expressions
    /// are rejected by [`Schedule::parse`]).
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let next_local = |after| self.spec.next_local(after);
        if self.spec.follows_wall_clock() {
            zone::next_on_wall_clock(self.tz, t, next_local)
        } else {
            zone::next_at_fixed_time(self.tz, t, next_local)
        }
    }

    /// The next `n` fire times after `t`, in order (fewer only if the schedule runs out).
    pub fn upcoming(&self, t: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        let mut times = Vec::with_capacity(n);
        let mut last = t;
        while times.len() < n {
            match self.next_after(last) {
                Some(next) => {
                    times.push(next);
                    last = next;
                }
                None => break,
            }
        }
        times
    }

    /// Whether at least one fire time lies in `(last, now]`: the schedule was due while the
    /// engine was not running it. The service uses this to start at most one catch-up run.
    pub fn missed_since(&self, last: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        self.next_after(last).is_some_and(|next| next <= now)
    }

    /// When the schedule fires, in words, ending with the zone, e.g.
    /// `at 06:00 on day 1 of every month (Europe/Zurich)`.
    pub fn describe(&self) -> String {
        describe::describe(&self.spec, self.tz.name())
    }

    /// The expression exactly as given to [`Schedule::parse`].
    pub fn expr(&self) -> &str {
        &self.expr
    }

    /// The IANA name of the schedule's time zone (`UTC` by default).
    pub fn timezone(&self) -> &'static str {
        self.tz.name()
    }
}

/// The expression exactly as it was written (without the zone).
impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.expr)
    }
}
