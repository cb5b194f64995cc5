//! Cron schedules for `weir serve`: parse a pipeline's `schedule`, compute its fire times in its
//! time zone, and say in words when it runs (DESIGN §7).
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
//! (`fri-mon` is an error, as in Vixie cron). `?`, `L`, `W` and `#` are not supported.
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
//! An expression names *local wall-clock times* in its IANA zone (default UTC). Each matching
//! wall-clock time fires exactly once:
//!
//! - **Skipped (clocks go forward).** A local time inside the gap fires once, at the instant the
//!   gap ends. Several skipped times fire together, once. Example, Europe/Zurich on 2024-03-31
//!   (02:00 jumps to 03:00): `30 2 * * *` fires at 03:00 CEST (01:00Z); `0 * * * *` fires at
//!   01:00 CET then 03:00 CEST; `*/15 * * * *` fires at 01:45 CET then 03:00 CEST. This is how
//!   Vixie cron treats fixed-time jobs ("run soon after the change", cron(8)); unlike Vixie we
//!   apply it to interval jobs too, which at most adds the one run at the end of the gap.
//! - **Repeated (clocks go back).** A local time that occurs twice fires at its first
//!   occurrence only, never twice. Example, Europe/Zurich on 2024-10-27 (03:00 CEST goes back
//!   to 02:00 CET): `30 2 * * *` fires at 02:30 CEST (00:30Z) only; `0 * * * *` fires at 02:00
//!   CEST then 03:00 CET, two real hours later; `*/15 * * * *` fires up to 02:45 CEST, then
//!   03:00 CET, 75 real minutes later. Vixie cron also runs interval jobs in the repeated hour;
//!   we do not, because DESIGN §7 asks that a repeated hour fire once, and a pause of one hour
//!   a year is harmless for a sync while a duplicated run is not.
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
//!   (`0 16 */2 * sat` fires on 2023-05-03, a Wednesday) and, on purpose (OCPS), runs interval
//!   jobs in both copies of a repeated hour (`*/15` in America/New_York on 2024-11-03:
//!   01:45 EDT, then 01:00 EST). Its errors do not name the field and token.
//!
//! Wrapping either would mean re-filtering its output, so this crate has its own matcher: each
//! field is a bit set, the search advances field by field from the largest unit (skipping whole
//! months, days, hours, minutes that cannot match), and `zone.rs` maps each local match to an
//! instant with the rules above. The reference table in `tests/reference.rs` is the evidence.

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
        // Local matches map to instants in non-decreasing order (see `zone::fire_instant`), and
        // no local time at or before `t`'s own wall-clock reading can fire after `t`. So walk
        // the local matches from there and take the first whose instant is late enough; more
        // than one step happens only when `t` lies in a repeated hour.
        let mut local = t.with_timezone(&self.tz).naive_local();
        loop {
            local = self.spec.next_local(local)?;
            let at = zone::fire_instant(self.tz, local)?;
            if at > t {
                return Some(at);
            }
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
