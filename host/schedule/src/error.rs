//! Parse errors. Each names the schedule text, the field and the offending token, so a
//! message in `weir validate` output or an API response is enough to fix the config.

/// A schedule that could not be parsed, with the text it came from.
///
/// Displays as `schedule "<text>": <what is wrong>`, e.g.
/// `schedule "0 25 * * *": hour 25 is out of range 0-23`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("schedule \"{expr}\": {kind}")]
pub struct ScheduleError {
    expr: String,
    kind: ScheduleErrorKind,
}

impl ScheduleError {
    pub(crate) fn new(expr: &str, kind: ScheduleErrorKind) -> Self {
        Self {
            expr: expr.to_owned(),
            kind,
        }
    }

    /// The schedule text as it was given.
    pub fn expr(&self) -> &str {
        &self.expr
    }

    /// What is wrong with it.
    pub fn kind(&self) -> &ScheduleErrorKind {
        &self.kind
    }
}

/// What is wrong with a schedule. `field` is one of `second`, `minute`, `hour`,
/// `day-of-month`, `month` or `day-of-week`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScheduleErrorKind {
    /// Nothing but whitespace.
    #[error("is empty")]
    Empty,
    /// Neither 5 nor 6 fields.
    #[error(
        "expected 5 fields (minute hour day-of-month month day-of-week) \
         or 6 with leading seconds, found {found}"
    )]
    FieldCount {
        /// How many whitespace-separated fields there were.
        found: usize,
    },
    /// An `@` word that is not one of the supported shorthands.
    #[error(
        "unknown shorthand \"{token}\" (expected @yearly, @annually, @monthly, @weekly, \
         @daily, @midnight or @hourly)"
    )]
    UnknownShorthand {
        /// The word as written.
        token: String,
    },
    /// A list with an empty item, e.g. `1,,2` or a trailing comma.
    #[error("{field} \"{token}\" has an empty list item")]
    EmptyItem {
        /// The field's name.
        field: &'static str,
        /// The whole field as written.
        token: String,
    },
    /// A value that is neither a number nor (for month and day-of-week) a known name.
    #[error("{field} \"{token}\" is not {expected}")]
    NotAValue {
        /// The field's name.
        field: &'static str,
        /// The value as written.
        token: String,
        /// What would have been accepted, e.g. `a number` or `a number or a name (jan-dec)`.
        expected: &'static str,
    },
    /// A number outside the field's range.
    #[error("{field} {token} is out of range {min}-{max}")]
    OutOfRange {
        /// The field's name.
        field: &'static str,
        /// The number as written.
        token: String,
        /// Smallest allowed value.
        min: u32,
        /// Largest allowed value.
        max: u32,
    },
    /// A range whose start is after its end; cron ranges do not wrap around.
    #[error(
        "{field} range \"{token}\" is reversed (cron ranges do not wrap around; \
         use a list such as \"22-23,0-2\")"
    )]
    ReversedRange {
        /// The field's name.
        field: &'static str,
        /// The range as written.
        token: String,
    },
    /// A `/step` that is not a whole number of at least 1.
    #[error("{field} step in \"{token}\" must be a whole number of at least 1")]
    BadStep {
        /// The field's name.
        field: &'static str,
        /// The item as written, e.g. `*/0`.
        token: String,
    },
    /// `L`, `W` or `#` in a field or a form that does not take it, e.g. `L` in the minute field,
    /// `5L` in day-of-month, `1-5W`.
    #[error("{field} \"{token}\" is not allowed here: {hint}")]
    MisplacedExtension {
        /// The field's name.
        field: &'static str,
        /// The item as written.
        token: String,
        /// Where the marker belongs or how it is written, e.g. `W belongs in day-of-month`.
        hint: &'static str,
    },
    /// A day-of-week `d#n` whose `n` is not 1-5, e.g. `MON#6`.
    #[error(
        "day-of-week \"{token}\": the number after # must be 1-5 (the first to the fifth such \
         weekday of the month)"
    )]
    BadNth {
        /// The item as written.
        token: String,
    },
    /// The day-of-month and month fields name no date that exists (e.g. `0 0 30 2 *`), and the
    /// day-of-week field cannot rescue it, so the schedule would silently never run.
    #[error("never fires: no chosen day of the month exists in any chosen month")]
    NeverFires,
    /// Both day fields must match (one starts with `*`), and no chosen day of the month ever
    /// falls on a chosen weekday, e.g. `0 0 LW * */6` (the last weekday is never a weekend day).
    #[error("never fires: no chosen day of the month ever falls on a chosen day of the week")]
    NoMatchingDay,
    /// A time zone that is not in the IANA database.
    #[error("unknown time zone \"{zone}\" (expected an IANA name such as \"Europe/Zurich\")")]
    UnknownTimeZone {
        /// The zone as written.
        zone: String,
    },
}
