//! From a local wall-clock fire time to the instant it fires, applying the DST rules described
//! in the crate docs.

use chrono::{DateTime, MappedLocalTime, NaiveDateTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;

/// Longest run of non-existent local time we look across. Real gaps are an hour (30 minutes on
/// Lord Howe Island); the longest on record is a whole skipped day (Samoa, 2011-12-30).
const MAX_GAP: TimeDelta = TimeDelta::hours(48);

/// The instant a matching local time fires:
/// - it exists once: that instant;
/// - it exists twice (clocks went back): the first (earlier) of the two, so it fires once;
/// - it does not exist (clocks went forward): the instant the gap ends, i.e. the first valid
///   local time after it, so it fires once, as soon as it can.
///
/// Every case is non-decreasing in `local`, which is what lets `Schedule::next_after` walk the
/// local times in order and stop at the first instant that is late enough.
pub(crate) fn fire_instant(tz: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
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
    use super::*;

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
