//! Parsing source text into typed values: numbers in local notations, dates (see `date`),
//! yes/no words. Pure functions, tested natively.

use serde::Deserialize;
use weir_sdk::Kind;

use crate::date::DateFormat;

/// A target type of the `types` config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Cast {
    Text,
    Integer,
    Real,
    Decimal,
    Date,
    Timestamp,
    Boolean,
}

impl Cast {
    /// The kind of an output column of this type.
    pub(crate) fn kind(self) -> Kind {
        match self {
            Cast::Text => Kind::Text,
            Cast::Integer => Kind::Integer,
            Cast::Real => Kind::Real,
            Cast::Decimal => Kind::Decimal,
            Cast::Date => Kind::Date,
            Cast::Timestamp => Kind::Timestamp,
            Cast::Boolean => Kind::Boolean,
        }
    }
}

/// A converted value; canonical text (decimals, dates, timestamps) is in the caller's buffer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Converted {
    Integer(i64),
    Real(f64),
    Boolean(bool),
    /// The canonical text was written to the buffer.
    Text,
}

/// Everything a cast needs besides the value, built once per transform from the config.
#[derive(Debug)]
pub(crate) struct Casts {
    pub(crate) number: NumberFormat,
    pub(crate) date: Vec<DateFormat>,
    pub(crate) timestamp: Vec<DateFormat>,
    pub(crate) boolean: BooleanWords,
}

impl Casts {
    /// Convert `value` (non-empty, surrounding whitespace already trimmed) to `cast`. Canonical
    /// text goes into `buf`, which is cleared first. `Err` is the reject reason without the
    /// column name: `"12,x" is not a decimal (decimal comma)`.
    pub(crate) fn convert(
        &self,
        cast: Cast,
        value: &str,
        buf: &mut String,
    ) -> Result<Converted, String> {
        buf.clear();
        let converted = match cast {
            Cast::Text => {
                buf.push_str(value);
                Some(Converted::Text)
            }
            Cast::Integer => self.number.integer(value).map(Converted::Integer),
            Cast::Real => self.number.real(value, buf).map(Converted::Real),
            Cast::Decimal => self.number.decimal(value, buf).then_some(Converted::Text),
            Cast::Date => self
                .date
                .iter()
                .any(|f| f.date(value, buf))
                .then_some(Converted::Text),
            Cast::Timestamp => self
                .timestamp
                .iter()
                .any(|f| f.timestamp(value, buf))
                .then_some(Converted::Text),
            Cast::Boolean => self.boolean.parse(value).map(Converted::Boolean),
        };
        converted.ok_or_else(|| self.failure(cast, value))
    }

    fn failure(&self, cast: Cast, value: &str) -> String {
        let what = match cast {
            Cast::Text => "text",
            Cast::Integer => "an integer",
            Cast::Real => "a number",
            Cast::Decimal => "a decimal",
            Cast::Date => "a date",
            Cast::Timestamp => "a timestamp",
            Cast::Boolean => "a boolean",
        };
        let hint = match cast {
            Cast::Integer | Cast::Real | Cast::Decimal => self.number.hint.clone(),
            Cast::Date => patterns(&self.date),
            Cast::Timestamp => patterns(&self.timestamp),
            Cast::Boolean => Some(self.boolean.hint()),
            Cast::Text => None,
        };
        match hint {
            Some(hint) => format!("{value:?} is not {what} ({hint})"),
            None => format!("{value:?} is not {what}"),
        }
    }
}

fn patterns(formats: &[DateFormat]) -> Option<String> {
    let patterns: Vec<&str> = formats.iter().map(|f| f.pattern()).collect();
    Some(format!("expected {}", patterns.join(" or ")))
}

/// How numbers are written in the source.
#[derive(Debug)]
pub(crate) struct NumberFormat {
    point: char,
    /// Characters that may separate groups of three digits in the integer part.
    separators: Vec<char>,
    /// Said in reject reasons, so a user sees which notation was expected.
    hint: Option<String>,
}

impl NumberFormat {
    /// `decimal_comma`: `1.234,56` (`,` decimal point, `.` thousands separator).
    /// `thousands`: one more separator character; `" "` also accepts the no-break spaces
    /// spreadsheets write.
    pub(crate) fn new(decimal_comma: bool, thousands: Option<&str>) -> Result<Self, String> {
        let point = if decimal_comma { ',' } else { '.' };
        let mut separators = if decimal_comma { vec!['.'] } else { Vec::new() };
        let mut hints = if decimal_comma {
            vec!["decimal comma".to_owned()]
        } else {
            Vec::new()
        };
        if let Some(t) = thousands {
            let mut chars = t.chars();
            let (Some(c), None) = (chars.next(), chars.next()) else {
                return Err(format!(
                    "`thousands_separator` must be one character, not {t:?}"
                ));
            };
            if c == point || c.is_ascii_digit() || c == '-' || c == '+' {
                return Err(format!(
                    "`thousands_separator` {t:?} cannot be a digit, a sign or the decimal point"
                ));
            }
            separators.push(c);
            if c == ' ' {
                separators.extend(['\u{a0}', '\u{202f}']);
            }
            hints.push(format!("thousands separator {t:?}"));
        }
        let hint = (!hints.is_empty()).then(|| hints.join(", "));
        Ok(Self {
            point,
            separators,
            hint,
        })
    }

    /// Split into sign, integer digits (separators still in) and fraction digits, checking
    /// that separators sit between groups of three: `1.5` with a decimal comma is a typo for
    /// `1,5` far more often than fifteen, so it is rejected.
    fn split<'s>(&self, value: &'s str) -> Option<(bool, &'s str, &'s str)> {
        let (negative, unsigned) = match value.as_bytes().first()? {
            b'-' => (true, &value[1..]),
            b'+' => (false, &value[1..]),
            _ => (false, value),
        };
        let (int, frac) = unsigned.split_once(self.point).unwrap_or((unsigned, ""));
        if int.is_empty() && frac.is_empty() || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if self.separators.is_empty() {
            // No grouping to check (the common case): digits only.
            return int
                .bytes()
                .all(|b| b.is_ascii_digit())
                .then_some((negative, int, frac));
        }
        let mut groups = int.split(|c| self.separators.contains(&c));
        let first = groups.next()?;
        let grouped = int.len() != first.len();
        let first_ok = first.bytes().all(|b| b.is_ascii_digit())
            && !(grouped && (first.is_empty() || first.len() > 3));
        let rest_ok = groups.all(|g| g.len() == 3 && g.bytes().all(|b| b.is_ascii_digit()));
        (first_ok && rest_ok).then_some((negative, int, frac))
    }

    /// Canonical decimal text into `out`: `-1234.50` (no separators, `.` point, no leading
    /// zeros, fraction digits kept, no sign on zero).
    pub(crate) fn decimal(&self, value: &str, out: &mut String) -> bool {
        let Some((negative, int, frac)) = self.split(value) else {
            return false;
        };
        let digits = int
            .chars()
            .filter(char::is_ascii_digit)
            .skip_while(|&c| c == '0');
        if negative
            && int
                .chars()
                .chain(frac.chars())
                .any(|c| c.is_ascii_digit() && c != '0')
        {
            out.push('-');
        }
        let before = out.len();
        out.extend(digits);
        if out.len() == before {
            out.push('0');
        }
        if !frac.is_empty() {
            out.push('.');
            out.push_str(frac);
        }
        true
    }

    /// A whole number; a fraction of zeros (`12,00`) is still whole.
    pub(crate) fn integer(&self, value: &str) -> Option<i64> {
        let (negative, int, frac) = self.split(value)?;
        if int.is_empty() || frac.bytes().any(|b| b != b'0') {
            return None;
        }
        let digits = int.bytes().filter(u8::is_ascii_digit);
        if digits.clone().count() <= 18 {
            // Cannot overflow: no checked (in WebAssembly: 128-bit library) multiplication.
            let v = digits.fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0'));
            return Some(if negative { -v } else { v });
        }
        // Accumulate negatively so i64::MIN fits, then flip.
        let mut acc: i64 = 0;
        for d in digits {
            acc = acc.checked_mul(10)?.checked_sub(i64::from(d - b'0'))?;
        }
        if negative {
            Some(acc)
        } else {
            acc.checked_neg()
        }
    }

    /// A real number, parsed from the canonical decimal (`buf` is scratch space).
    pub(crate) fn real(&self, value: &str, buf: &mut String) -> Option<f64> {
        if self.separators.is_empty() {
            if let Some(v) = u8::try_from(self.point)
                .ok()
                .and_then(|point| weir_sdk::exact_decimal(value.as_bytes(), point))
            {
                // The canonical decimal has no negative zero.
                return Some(if v == 0.0 { 0.0 } else { v });
            }
            if self.point == '.' {
                // Already in Rust's notation once `split` accepts it: parse it as it is (the
                // canonical decimal differs only in ways that do not change the number), and
                // give zero no sign, as the canonical decimal does.
                self.split(value)?;
                if let Ok(v) = value.parse::<f64>() {
                    return Some(if v == 0.0 { 0.0 } else { v });
                }
            }
        }
        buf.clear();
        if !self.decimal(value, buf) {
            return None;
        }
        buf.parse().ok()
    }
}

/// The words a boolean column accepts, compared ignoring ASCII case.
#[derive(Debug)]
pub(crate) struct BooleanWords {
    true_words: Vec<String>,
    false_words: Vec<String>,
}

impl Default for BooleanWords {
    fn default() -> Self {
        let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect();
        Self {
            true_words: words(&["true", "yes", "1", "ja"]),
            false_words: words(&["false", "no", "0", "nein"]),
        }
    }
}

impl BooleanWords {
    pub(crate) fn new(true_words: Vec<String>, false_words: Vec<String>) -> Result<Self, String> {
        if true_words.is_empty() || false_words.is_empty() {
            return Err("`boolean` needs at least one word in `true` and in `false`".to_owned());
        }
        if let Some(both) = true_words
            .iter()
            .find(|t| false_words.iter().any(|f| f.eq_ignore_ascii_case(t)))
        {
            return Err(format!("`boolean`: {both:?} is both true and false"));
        }
        Ok(Self {
            true_words,
            false_words,
        })
    }

    fn parse(&self, value: &str) -> Option<bool> {
        let is = |words: &[String]| words.iter().any(|w| w.eq_ignore_ascii_case(value));
        if is(&self.true_words) {
            Some(true)
        } else if is(&self.false_words) {
            Some(false)
        } else {
            None
        }
    }

    fn hint(&self) -> String {
        let words: Vec<&str> = self
            .true_words
            .iter()
            .chain(&self.false_words)
            .map(String::as_str)
            .collect();
        format!("expected {}", words.join("/"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn casts(decimal_comma: bool, thousands: Option<&str>) -> Casts {
        Casts {
            number: NumberFormat::new(decimal_comma, thousands).unwrap(),
            date: vec![DateFormat::new("%Y-%m-%d", false).unwrap()],
            timestamp: vec![DateFormat::new("%Y-%m-%dT%H:%M:%S", true).unwrap()],
            boolean: BooleanWords::default(),
        }
    }

    fn decimal(c: &Casts, v: &str) -> Result<String, String> {
        let mut buf = String::new();
        c.convert(Cast::Decimal, v, &mut buf).map(|_| buf)
    }

    #[test]
    fn decimals_with_a_decimal_comma() {
        let c = casts(true, None);
        assert_eq!(decimal(&c, "1.234,56").unwrap(), "1234.56");
        assert_eq!(decimal(&c, "-1.234,50").unwrap(), "-1234.50");
        assert_eq!(decimal(&c, "+12,5").unwrap(), "12.5");
        assert_eq!(decimal(&c, "0,05").unwrap(), "0.05");
        assert_eq!(decimal(&c, ",5").unwrap(), "0.5");
        assert_eq!(decimal(&c, "007").unwrap(), "7");
        assert_eq!(decimal(&c, "1.000.000").unwrap(), "1000000");
        assert_eq!(decimal(&c, "-0,00").unwrap(), "0.00", "zero has no sign");
        assert_eq!(
            decimal(&c, "12,x").unwrap_err(),
            r#""12,x" is not a decimal (decimal comma)"#
        );
        for bad in [
            "1.5", "12.34,5", "1,2,3", "-", "", ",", "1.23.456", "1e5", "--1", "12 345",
        ] {
            assert!(decimal(&c, bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn decimals_with_a_decimal_point_and_separators() {
        let c = casts(false, Some("'"));
        assert_eq!(decimal(&c, "1'234.50").unwrap(), "1234.50");
        assert_eq!(decimal(&c, "-1'234'567.5").unwrap(), "-1234567.5");
        assert_eq!(decimal(&c, "3.14159").unwrap(), "3.14159");
        assert_eq!(
            decimal(&c, "1'23.5").unwrap_err(),
            r#""1'23.5" is not a decimal (thousands separator "'")"#
        );
        assert!(decimal(&c, "1,5").is_err());
        let spaced = casts(true, Some(" "));
        assert_eq!(decimal(&spaced, "1 234,5").unwrap(), "1234.5");
        assert_eq!(
            decimal(&spaced, "1\u{a0}234\u{202f}567,5").unwrap(),
            "1234567.5"
        );
        assert_eq!(
            decimal(&spaced, "x").unwrap_err(),
            r#""x" is not a decimal (decimal comma, thousands separator " ")"#
        );
        assert!(
            decimal(&casts(false, None), "1'234").is_err(),
            "no separator unless configured"
        );
    }

    #[test]
    fn plain_reals_parse_as_their_canonical_decimal_does() {
        let number = NumberFormat::new(false, None).unwrap();
        let mut buf = String::new();
        for v in [
            "0.1",
            "0.30000000000000004",
            "123456789012345",
            "1234567890123456",
            "9007199254740993",
            "0.0000000000000000000001",
            "0.00000000000000000000001",
            "99999999999999.9",
            "4.35",
            "2.675",
            "1.005",
            "-999999.99",
            "00000000000000000000000000001.5",
            "1234.56",
            "-1234.56",
            "+3.25",
            "007.50",
            ".5",
            "-.5",
            "5.",
            "-0.00",
            "0",
            "-0",
            "12345678901234567890.123456789",
            "1e5",
            "",
            "-",
            ".",
            "1.2.3",
            "1,5",
            "inf",
            "NaN",
            " 1",
        ] {
            let mut canonical = String::new();
            let slow = number
                .decimal(v, &mut canonical)
                .then(|| canonical.parse::<f64>().ok())
                .flatten();
            let fast = number.real(v, &mut buf);
            assert_eq!(
                fast.map(f64::to_bits),
                slow.map(f64::to_bits),
                "{v:?}: {fast:?} vs {slow:?}"
            );
        }
    }

    #[test]
    fn separator_config_is_checked() {
        assert!(NumberFormat::new(true, Some(",")).is_err());
        assert!(NumberFormat::new(false, Some(".")).is_err());
        assert!(NumberFormat::new(false, Some("ab")).is_err());
        assert!(NumberFormat::new(false, Some("")).is_err());
        assert!(NumberFormat::new(false, Some(",")).is_ok());
    }

    #[test]
    fn integers_and_reals() {
        let c = casts(true, None);
        let mut buf = String::new();
        let mut convert = |cast, v| c.convert(cast, v, &mut buf);
        assert_eq!(
            convert(Cast::Integer, "1.234"),
            Ok(Converted::Integer(1234))
        );
        assert_eq!(
            convert(Cast::Integer, "-12,00"),
            Ok(Converted::Integer(-12))
        );
        assert_eq!(
            convert(Cast::Integer, "-9.223.372.036.854.775.808"),
            Ok(Converted::Integer(i64::MIN))
        );
        assert_eq!(
            convert(Cast::Integer, "9.223.372.036.854.775.808"),
            Err(r#""9.223.372.036.854.775.808" is not an integer (decimal comma)"#.to_owned())
        );
        assert_eq!(
            convert(Cast::Integer, "1,5"),
            Err(r#""1,5" is not an integer (decimal comma)"#.to_owned())
        );
        assert_eq!(
            convert(Cast::Real, "-1.234,5"),
            Ok(Converted::Real(-1234.5))
        );
        assert_eq!(
            convert(Cast::Real, "abc"),
            Err(r#""abc" is not a number (decimal comma)"#.to_owned())
        );
        let plain = casts(false, None);
        assert_eq!(
            plain.convert(Cast::Integer, "42", &mut buf),
            Ok(Converted::Integer(42))
        );
        assert_eq!(
            plain.convert(Cast::Integer, "4x", &mut buf),
            Err(r#""4x" is not an integer"#.to_owned())
        );
    }

    #[test]
    fn dates_and_timestamps_cast_to_canonical_text() {
        let c = casts(false, None);
        let mut buf = String::new();
        assert_eq!(
            c.convert(Cast::Timestamp, "2026-01-31T23:59:59", &mut buf),
            Ok(Converted::Text)
        );
        assert_eq!(buf, "2026-01-31T23:59:59");
        assert_eq!(
            c.convert(Cast::Date, "31.01.2026", &mut buf),
            Err(r#""31.01.2026" is not a date (expected %Y-%m-%d)"#.to_owned())
        );
    }

    #[test]
    fn booleans() {
        let c = casts(false, None);
        let mut buf = String::new();
        for (v, b) in [
            ("JA", true),
            ("Nein", false),
            ("1", true),
            ("false", false),
            ("Yes", true),
        ] {
            assert_eq!(
                c.convert(Cast::Boolean, v, &mut buf),
                Ok(Converted::Boolean(b)),
                "{v}"
            );
        }
        assert_eq!(
            c.convert(Cast::Boolean, "maybe", &mut buf),
            Err(r#""maybe" is not a boolean (expected true/yes/1/ja/false/no/0/nein)"#.to_owned())
        );
        let custom = BooleanWords::new(vec!["X".into()], vec!["-".into()]).unwrap();
        assert_eq!(
            (custom.parse("x"), custom.parse("-"), custom.parse("ja")),
            (Some(true), Some(false), None)
        );
        assert!(BooleanWords::new(vec!["y".into()], vec!["Y".into()]).is_err());
        assert!(BooleanWords::new(vec![], vec!["n".into()]).is_err());
    }
}
