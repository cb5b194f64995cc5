#!/usr/bin/env python3
"""Generate cronsim_cases.tsv: next-fire reference cases for weir-schedule from cronsim.

cronsim simulates Debian/Vixie cron, daylight-saving rules included; see its source,
`CronSim.__init__` (which jobs get the fixed-time handling) and `__next__` (the fix-up of
non-existent and repeated local times). Pinned versions, because the output depends on them:

    pip install cronsim==2.8 tzdata==2025.2
    python3 host/schedule/tests/reference/generate.py   # Python 3.10 or later; 3.11.7 here

Needs no network once those are installed. It rewrites cronsim_cases.tsv beside this file;
`cargo test -p weir-schedule --test cronsim` checks weir against it.

- tzdata 2025.2 is IANA tzdb 2025b, the release bundled in chrono-tz 0.10.4, so both sides
  read the same rules. The system zone files are ignored (`reset_tzpath`) for the same reason.
- cronsim has no `@` shorthands; they are expanded as in crontab(5) before asking it, and the
  case keeps the shorthand, which weir must accept.
- cronsim 2.8 has no `nW` (nearest weekday). Those cases are computed by `nearest_weekday`
  below, Quartz's rule, and marked `rule` instead of `cronsim`; they are counted apart.

Columns: id, source (cronsim or rule), tags (dst: the clocks change within a day of the start
or of a fire; ext: L, W or #; six: six fields), expression, zone, start, fires.
Times are RFC 3339 with the local offset cronsim reports.
"""

import calendar
import functools
import importlib.metadata
import random
import sys
import zoneinfo
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from cronsim import CronSim

CRONSIM_VERSION = "2.8"
TZDATA_VERSION = "2025.2"
UTC = timezone.utc
OUT = Path(__file__).with_name("cronsim_cases.tsv")

SHORTHANDS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

# Zones with daylight saving, both hemispheres, transitions at different local hours: New York
# at 02:00, Zurich 02:00/03:00, London 01:00/02:00, Sydney 02:00/03:00, Santiago at midnight
# (the repeated hour is 23:00 the day before), Lord Howe by 30 minutes.
DST_ZONES = [
    "America/New_York",
    "Europe/Zurich",
    "Europe/London",
    "Australia/Sydney",
    "America/Santiago",
    "Australia/Lord_Howe",
]

# Around one transition, `{h}` is the hour the clocks skip or repeat, `{hm}`/`{hp}` the hours
# before and after it. Fixed-time jobs first (neither minute nor hour starts with `*`), then
# wall-clock jobs, then six-field ones. The number is how many fires to record.
DST_EXPRESSIONS = [
    ("30 {h} * * *", 3),
    ("0 {h} * * *", 3),
    ("0,30 {h} * * *", 4),
    ("0-59/20 {h} * * *", 4),
    ("15 {hm},{h},{hp} * * *", 5),
    ("@daily", 3),
    ("@hourly", 6),
    ("20 * * * *", 6),
    ("*/15 * * * *", 12),
    ("*/10 {h} * * *", 8),
    ("*/30 {h},{hp} * * *", 6),
    ("0 */2 * * *", 4),
    ("5 {h} * * 0-6", 3),
    ("0 30 {h} * * *", 3),
    ("0 */20 * * * *", 10),
    ("*/20 * {h} * * *", 6),
]

# Common shapes away from transitions, in zones with and without daylight saving.
PLAIN_EXPRESSIONS = [
    "* * * * *",
    "*/5 * * * *",
    "*/7 * * * *",
    "1-10/3 * * * *",
    "5,35 * * * *",
    "0 * * * *",
    "0 */3 * * *",
    "23 0-20/2 * * *",
    "0 6 * * *",
    "30 2 * * *",
    "0 9,18 * * 1-5",
    "*/5 9-17 * * mon-fri",
    "0 22 * * 1-5",
    "5 4 * * sun",
    "0 0 * * 7",
    "0 0 * * 5-7",
    "0 0 * * sat,sun",
    "0 0 1,15 * *",
    "0 0 1,15 * sun",
    "0 16 */2 * sat",
    "0 0 */5 * mon",
    "0 0 1 */3 *",
    "0 0 1 jan,jul *",
    "0 12 * jun-aug mon",
    "30 3 31 * *",
    "0 0 29 2 *",
    "0 0 29 2 mon",
    "15 10 * * 1/2",
    "0 6 1 * *",
    "@weekly",
    "@monthly",
    "@yearly",
    "@midnight",
    "*/10 * * * * *",
    "15,45 30 6 * * *",
    "0 0 0 1 * *",
]
PLAIN_ZONES = ["UTC", "Asia/Tokyo", "Asia/Kolkata", "America/New_York", "Europe/Zurich"]

# The extensions cronsim 2.8 knows: L and LW in day-of-month, d#n and dL in day-of-week.
EXTENSION_EXPRESSIONS = [
    "0 0 L * *",
    "0 0 LW * *",
    "0 12 L 2 *",
    "0 0 1,L * *",
    "0 0 15,LW * *",
    "30 8 L */3 *",
    "0 0 LW 1-6 *",
    "0 9 * * 5L",
    "0 9 * * 0L",
    "0 9 * * 7L",
    "0 9 * * MON#2",
    "0 9 * * 1#1",
    "0 9 * * 0#5",
    "0 9 * * 7#1",
    "0 9 * * FRI#3,MON#1",
    "0 9 * * 1#1,5L",
    "0 0 L * 5L",
    "0 0 */2 * 5L",
    "0 0 1 * MON#2",
    "0 0 * 2 MON#5",
    "*/30 9 * * 3#2",
    "0 0 L * */6",
]

# Extensions on the days the clocks change: the first Sunday of November in New York
# (2026-11-01), the second Sunday of March there (2026-03-08), the last Sunday of March and
# October in Zurich, the first Sunday of April and October in Sydney.
DST_EXTENSION_CASES = [
    ("30 1 * * 0#1", "America/New_York", "2026-10-01T00:00:00-04:00", 3),
    ("*/30 1 * * SUN#1", "America/New_York", "2026-11-01T00:00:00-04:00", 5),
    ("0 2 * * SUN#2", "America/New_York", "2026-03-01T00:00:00-05:00", 3),
    ("*/20 2 * * 0#2", "America/New_York", "2026-03-07T00:00:00-05:00", 4),
    ("30 2 * * 0L", "Europe/Zurich", "2026-03-01T00:00:00+01:00", 3),
    ("*/20 2 * * 7L", "Europe/Zurich", "2026-10-24T00:00:00+02:00", 7),
    ("30 2 * * 0#1", "Australia/Sydney", "2026-04-01T00:00:00+11:00", 3),
    ("*/30 2 * * 0#1", "Australia/Sydney", "2026-10-01T00:00:00+10:00", 4),
    ("0 0 L * *", "America/Santiago", "2026-01-15T00:00:00-03:00", 12),
    ("0 2 LW * *", "Europe/London", "2026-01-15T00:00:00+00:00", 12),
]

# Wall-clock jobs whose next day starts in a gap: Santiago skips 00:00-00:59 on 2026-09-06
# and Havana on 2026-03-08, so the day's first reading is 01:00.
MIDNIGHT_GAP_CASES = [
    ("*/30 0 * * 0", "America/Santiago", "2026-09-04T12:00:00-04:00", 4),
    ("0 0-2 * * 0", "America/Havana", "2026-03-06T12:00:00-05:00", 4),
]

# nW cases, computed by `nearest_weekday` (cronsim 2.8 has no W): fixed times in UTC.
NEAREST_WEEKDAY_CASES = [
    ("0 0 15W * *", "2024-01-01T00:00:00+00:00", 12),
    ("0 0 1W * *", "2024-01-01T00:00:00+00:00", 12),
    ("0 0 31W * *", "2024-01-01T00:00:00+00:00", 8),
    ("0 0 30W * *", "2024-01-01T00:00:00+00:00", 8),
    ("0 9 1W,15W * *", "2025-01-01T00:00:00+00:00", 12),
    ("30 6 28W 2 *", "2024-01-01T00:00:00+00:00", 4),
    ("0 12 2W * *", "2025-05-01T00:00:00+00:00", 12),
]


def main() -> None:
    check_versions()
    zoneinfo.reset_tzpath(to=[])
    rng = random.Random(13)
    cases = []
    for zone in DST_ZONES:
        for instant, before, after in transitions(zone, 2026):
            cases += dst_cases(zone, instant, before, after)
    # One more year for the two zones the issue names, so a second set of dates is covered.
    for zone in ["America/New_York", "Australia/Sydney"]:
        for instant, before, after in transitions(zone, 2025):
            cases += dst_cases(zone, instant, before, after)[::3]
    for expr in PLAIN_EXPRESSIONS:
        for zone in rng.sample(PLAIN_ZONES, 2):
            start = random_start(rng, zone)
            cases.append(cronsim_case(expr, zone, start, 5))
    for expr in EXTENSION_EXPRESSIONS:
        zone = rng.choice(PLAIN_ZONES)
        cases.append(cronsim_case(expr, zone, random_start(rng, zone), 12))
    for expr, zone, start, n in DST_EXTENSION_CASES:
        start = datetime.fromisoformat(start).astimezone(tzinfo(zone))
        cases.append(cronsim_case(expr, zone, start, n))
    for expr, zone, start, n in MIDNIGHT_GAP_CASES:
        start = datetime.fromisoformat(start).astimezone(tzinfo(zone))
        cases.append(cronsim_case(expr, zone, start, n))
    for expr, start, n in NEAREST_WEEKDAY_CASES:
        cases.append(nearest_weekday_case(expr, datetime.fromisoformat(start), n))
    write(cases)


def check_versions() -> None:
    for package, pinned in [("cronsim", CRONSIM_VERSION), ("tzdata", TZDATA_VERSION)]:
        found = importlib.metadata.version(package)
        if found != pinned:
            sys.exit(f"{package} {found} is installed; the cases are pinned to {pinned}")


@functools.cache
def transitions(zone: str, year: int) -> list[tuple[datetime, timedelta, timedelta]]:
    """Each change of UTC offset in `year`: (instant, offset before, offset after)."""
    tz = zoneinfo.ZoneInfo(zone)
    found = []
    t = datetime(year, 1, 1, tzinfo=UTC)
    before = t.astimezone(tz).utcoffset()
    # Every real transition is on a quarter hour.
    while t.year == year:
        t += timedelta(minutes=15)
        offset = t.astimezone(tz).utcoffset()
        if offset != before:
            found.append((t, before, offset))
            before = offset
    return found


def dst_cases(zone, instant, before, after) -> list[dict]:
    # The hour of the first local reading the clocks skip (spring) or repeat (fall).
    first_odd_reading = (instant + min(before, after)).replace(tzinfo=None)
    h = first_odd_reading.hour
    hours = {"h": h, "hm": (h - 1) % 24, "hp": (h + 1) % 24}
    starts = [instant - timedelta(hours=2)]
    if after < before:
        # Fall: also start in the second pass, as a restarted service would.
        starts.append(instant + timedelta(minutes=10))
    tz = zoneinfo.ZoneInfo(zone)
    return [
        cronsim_case(template.format(**hours), zone, start.astimezone(tz), n)
        for template, n in DST_EXPRESSIONS
        for start in starts
    ]


def random_start(rng: random.Random, zone: str) -> datetime:
    seconds = rng.randrange(0, 4 * 365 * 86400) // 60 * 60
    instant = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)
    return instant.astimezone(tzinfo(zone))


def tzinfo(zone: str):
    # cronsim skips its daylight-saving handling only for `datetime.timezone.utc`.
    return UTC if zone == "UTC" else zoneinfo.ZoneInfo(zone)


def cronsim_case(expr: str, zone: str, start: datetime, n: int) -> dict:
    it = CronSim(SHORTHANDS.get(expr.lower(), expr), start)
    fires = [next(it) for _ in range(n)]
    return case("cronsim", expr, zone, start, fires)


def nearest_weekday(year: int, month: int, day: int) -> int | None:
    """Quartz's `W`: the Monday-to-Friday day nearest `day`, within the month."""
    last = calendar.monthrange(year, month)[1]
    if day > last:
        return None
    weekday = date(year, month, day).weekday()  # Monday = 0
    if weekday == 5:
        return 3 if day == 1 else day - 1
    if weekday == 6:
        return day - 2 if day == last else day + 1
    return day


def nearest_weekday_case(expr: str, start: datetime, n: int) -> dict:
    minute, hour, days, months, _ = expr.split()
    wanted = [int(d.removesuffix("W")) for d in days.split(",")]
    fires = []
    day = start.date()
    while len(fires) < n:
        if months == "*" or day.month == int(months):
            targets = {nearest_weekday(day.year, day.month, d) for d in wanted}
            at = datetime(day.year, day.month, day.day, int(hour), int(minute), tzinfo=UTC)
            if day.day in targets and at > start:
                fires.append(at)
        day += timedelta(days=1)
    return case("rule", expr, "UTC", start, fires)


def case(source: str, expr: str, zone: str, start: datetime, fires: list) -> dict:
    tags = []
    if zone != "UTC" and near_a_transition(zone, start, fires):
        tags.append("dst")
    day_fields = " ".join(expr.split()[-3::2]).upper().replace("WED", "")
    if not expr.startswith("@") and any(marker in day_fields for marker in "LW#"):
        tags.append("ext")
    if len(expr.split()) == 6:
        tags.append("six")
    return {
        "source": source,
        "tags": ",".join(tags) or "-",
        "expr": expr,
        "zone": zone,
        "start": start.isoformat(),
        "fires": " ".join(f.isoformat() for f in fires),
    }


def near_a_transition(zone: str, start: datetime, fires: list) -> bool:
    """Whether the clocks change within a day of the start or of a fire (a monthly job's year of
    fires spans two changes without being near either)."""
    times = [t.astimezone(UTC) for t in [start, *fires]]
    return any(
        abs(t - change) <= timedelta(days=1)
        for year in range(times[0].year, times[-1].year + 1)
        for change, _, _ in transitions(zone, year)
        for t in times
    )


def write(cases: list[dict]) -> None:
    columns = ["source", "tags", "expr", "zone", "start", "fires"]
    with OUT.open("w") as out:
        out.write(
            f"# Generated by generate.py from cronsim {CRONSIM_VERSION} and tzdata "
            f"{TZDATA_VERSION} (tzdb 2025b); do not edit.\n"
        )
        out.write("\t".join(["id", *columns]) + "\n")
        for i, c in enumerate(cases, 1):
            out.write("\t".join([f"c{i:03}", *(c[k] for k in columns)]) + "\n")
    dst = sum("dst" in c["tags"] for c in cases)
    ext = sum("ext" in c["tags"] for c in cases)
    print(f"{len(cases)} cases ({dst} around DST, {ext} with extensions) -> {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
