//! PostgreSQL's binary forms of the values weir carries as canonical text: `numeric` (base
//! 10000 digits), `date` (days since 2000-01-01) and `timestamp[tz]` (microseconds since
//! 2000-01-01 UTC). Encoding checks the text, so a value the column cannot take is found on
//! the host, named with its reason, before anything is sent.

use chrono::{DateTime, NaiveDate, NaiveDateTime};

const NUMERIC_POS: u16 = 0x0000;
const NUMERIC_NEG: u16 = 0x4000;
const NUMERIC_NAN: u16 = 0xC000;
const NUMERIC_PINF: u16 = 0xD000;
const NUMERIC_NINF: u16 = 0xF000;
/// The largest display scale `numeric` keeps.
const MAX_SCALE: usize = 0x3FFF;

fn epoch_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(2000, 1, 1).expect("valid date")
}

/// A decimal as canonical text (`-1234.50`, also `+1`, `.5`, `1.`) in `numeric`'s binary form.
pub fn encode_numeric(text: &str, out: &mut Vec<u8>) -> Result<(), String> {
    let bad = || format!("{text:?} is not a decimal number");
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let (int_part, frac_part) = match digits.split_once('.') {
        Some((i, f)) => (i, f),
        None => (digits, ""),
    };
    if (int_part.is_empty() && frac_part.is_empty())
        || !int_part.bytes().all(|b| b.is_ascii_digit())
        || !frac_part.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    if frac_part.len() > MAX_SCALE {
        return Err(format!(
            "{text:?} has more than {MAX_SCALE} digits after the point"
        ));
    }
    let int_part = int_part.trim_start_matches('0');
    // Base-10000 groups, aligned on the decimal point.
    let int_pad = (4 - int_part.len() % 4) % 4;
    let frac_pad = (4 - frac_part.len() % 4) % 4;
    let mut groups: Vec<i16> = Vec::with_capacity((int_part.len() + frac_part.len()) / 4 + 2);
    let mut push_groups = |digits: &[u8]| {
        for chunk in digits.chunks(4) {
            let value = chunk
                .iter()
                .fold(0i16, |acc, d| acc * 10 + i16::from(d - b'0'));
            groups.push(value);
        }
    };
    let mut padded_int = vec![b'0'; int_pad];
    padded_int.extend_from_slice(int_part.as_bytes());
    push_groups(&padded_int);
    let int_groups = padded_int.len() / 4;
    let mut padded_frac = frac_part.as_bytes().to_vec();
    padded_frac.extend(std::iter::repeat_n(b'0', frac_pad));
    push_groups(&padded_frac);
    let mut weight = int_groups as i64 - 1;
    let leading = groups.iter().take_while(|&&g| g == 0).count();
    groups.drain(..leading);
    weight -= leading as i64;
    while groups.last() == Some(&0) {
        groups.pop();
    }
    if groups.is_empty() {
        weight = 0;
    }
    let weight = i16::try_from(weight).map_err(|_| format!("{text:?} is too large for numeric"))?;
    let sign = if negative && !groups.is_empty() {
        NUMERIC_NEG
    } else {
        NUMERIC_POS
    };
    out.extend_from_slice(&(groups.len() as i16).to_be_bytes());
    out.extend_from_slice(&weight.to_be_bytes());
    out.extend_from_slice(&sign.to_be_bytes());
    out.extend_from_slice(&(frac_part.len() as u16).to_be_bytes());
    for g in groups {
        out.extend_from_slice(&g.to_be_bytes());
    }
    Ok(())
}

/// `numeric`'s binary form as canonical text, keeping its scale (`12.50` stays `12.50`).
pub fn decode_numeric(raw: &[u8]) -> Result<String, String> {
    let word = |i: usize| -> Result<u16, String> {
        raw.get(i..i + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .ok_or_else(|| "truncated numeric".to_owned())
    };
    let ndigits = word(0)? as usize;
    let weight = word(2)? as i16 as i64;
    let sign = word(4)?;
    let dscale = word(6)? as usize;
    match sign {
        NUMERIC_NAN => return Ok("NaN".to_owned()),
        NUMERIC_PINF => return Ok("Infinity".to_owned()),
        NUMERIC_NINF => return Ok("-Infinity".to_owned()),
        _ => {}
    }
    let mut digits = Vec::with_capacity(ndigits);
    for i in 0..ndigits {
        digits.push(word(8 + 2 * i)?);
    }
    let group = |position: i64| -> u16 {
        usize::try_from(position)
            .ok()
            .and_then(|p| digits.get(p).copied())
            .unwrap_or(0)
    };
    let mut out = String::new();
    if sign == NUMERIC_NEG {
        out.push('-');
    }
    if weight < 0 {
        out.push('0');
    } else {
        out.push_str(&group(0).to_string());
        for i in 1..=weight {
            out.push_str(&format!("{:04}", group(i)));
        }
    }
    if dscale > 0 {
        out.push('.');
        let mut fraction = String::with_capacity(dscale + 4);
        let mut position = weight + 1;
        while fraction.len() < dscale {
            fraction.push_str(&format!("{:04}", group(position)));
            position += 1;
        }
        fraction.truncate(dscale);
        out.push_str(&fraction);
    }
    Ok(out)
}

/// `YYYY-MM-DD` as days since 2000-01-01.
pub fn encode_date(text: &str) -> Result<i32, String> {
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|e| format!("{text:?} is not a date (YYYY-MM-DD): {e}"))?;
    i32::try_from((date - epoch_date()).num_days())
        .map_err(|_| format!("{text:?} is out of range for date"))
}

pub fn decode_date(days: i32) -> String {
    match days {
        i32::MAX => "infinity".to_owned(),
        i32::MIN => "-infinity".to_owned(),
        _ => (epoch_date() + chrono::Duration::days(i64::from(days)))
            .format("%Y-%m-%d")
            .to_string(),
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.fff][Z|±HH:MM]` (a space for the `T` too) as microseconds since
/// 2000-01-01 UTC. Without a zone the time is taken as UTC.
pub fn encode_timestamp(text: &str) -> Result<i64, String> {
    let utc = if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        t.naive_utc()
    } else {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
            .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f"))
            .map_err(|e| {
                format!("{text:?} is not a timestamp (YYYY-MM-DDTHH:MM:SS[.fff][Z|±HH:MM]): {e}")
            })?
    };
    let epoch = epoch_date().and_hms_opt(0, 0, 0).expect("valid time");
    (utc - epoch)
        .num_microseconds()
        .ok_or_else(|| format!("{text:?} is out of range for timestamp"))
}

/// Microseconds since 2000-01-01 as `YYYY-MM-DDTHH:MM:SS[.ffffff]`, with `Z` when `utc`.
pub fn decode_timestamp(micros: i64, utc: bool) -> String {
    match micros {
        i64::MAX => return "infinity".to_owned(),
        i64::MIN => return "-infinity".to_owned(),
        _ => {}
    }
    let epoch = epoch_date().and_hms_opt(0, 0, 0).expect("valid time");
    let t = epoch + chrono::Duration::microseconds(micros);
    let mut out = t.format("%Y-%m-%dT%H:%M:%S%.f").to_string();
    if utc {
        out.push('Z');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(text: &str) -> String {
        let mut out = Vec::new();
        encode_numeric(text, &mut out).unwrap();
        decode_numeric(&out).unwrap()
    }

    #[test]
    fn numerics_round_trip_with_their_scale() {
        for (input, expect) in [
            ("-1234.50", "-1234.50"),
            ("0", "0"),
            ("0.00", "0.00"),
            ("-0.0", "0.0"),
            ("10000", "10000"),
            ("123456789.000123", "123456789.000123"),
            ("0.0001", "0.0001"),
            ("0.00001", "0.00001"),
            ("+7", "7"),
            (".5", "0.5"),
            ("00012.3", "12.3"),
            ("99999999999999999999.99", "99999999999999999999.99"),
        ] {
            assert_eq!(round_trip(input), expect, "{input}");
        }
    }

    #[test]
    fn numeric_encoding_matches_postgres() {
        // 1234.5: 2 groups (1234, 5000), weight 0, dscale 1.
        let mut out = Vec::new();
        encode_numeric("1234.5", &mut out).unwrap();
        assert_eq!(out, [0, 2, 0, 0, 0, 0, 0, 1, 0x04, 0xD2, 0x13, 0x88]);
    }

    #[test]
    fn bad_decimals_are_refused() {
        for bad in ["", "-", ".", "1,5", "1e5", "12,3x", "NaN", "1.2.3", " 1"] {
            assert!(encode_numeric(bad, &mut Vec::new()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn dates_and_timestamps_round_trip() {
        assert_eq!(encode_date("2000-01-02").unwrap(), 1);
        assert_eq!(
            decode_date(encode_date("2026-03-31").unwrap()),
            "2026-03-31"
        );
        assert!(encode_date("2026-02-30").is_err());
        let t = encode_timestamp("2026-03-31T12:34:56.789+02:00").unwrap();
        assert_eq!(decode_timestamp(t, true), "2026-03-31T10:34:56.789Z");
        let t = encode_timestamp("2026-03-31 12:34:56").unwrap();
        assert_eq!(decode_timestamp(t, false), "2026-03-31T12:34:56");
        assert!(encode_timestamp("yesterday").is_err());
    }
}
