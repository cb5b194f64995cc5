//! Column kinds from what the database declares, and values into cells of those kinds.

use weir_sdk::sql::Dialect;
use weir_sdk::{Cell, Kind, Value};

/// The kind of a column SQLite declares as `declared` (its type name, any case). Follows
/// SQLite's own affinity rules where they say enough, refined by the names people use for
/// dates, timestamps, booleans, decimals and JSON (SQLite stores those as text or numbers).
pub fn sqlite_kind(declared: &str) -> Kind {
    let t = declared.to_ascii_uppercase();
    if t.contains("BOOL") {
        Kind::Boolean
    } else if t.contains("DATETIME") || t.contains("TIMESTAMP") {
        Kind::Timestamp
    } else if t.contains("DATE") {
        Kind::Date
    } else if t.contains("DECIMAL") || t.contains("NUMERIC") {
        Kind::Decimal
    } else if t.contains("JSON") {
        Kind::Json
    } else if t.contains("INT") {
        Kind::Integer
    } else if t.contains("CHAR") || t.contains("CLOB") || t.contains("TEXT") {
        Kind::Text
    } else if t.contains("BLOB") {
        Kind::Blob
    } else if t.contains("REAL") || t.contains("FLOA") || t.contains("DOUB") {
        Kind::Real
    } else {
        // No declared type (or one SQLite gives NUMERIC affinity to): text holds any value.
        Kind::Text
    }
}

/// The kind of a PostgreSQL column of `information_schema.columns.data_type`.
pub fn postgres_kind(data_type: &str) -> Kind {
    match data_type {
        "smallint" | "integer" | "bigint" => Kind::Integer,
        "real" | "double precision" => Kind::Real,
        "numeric" => Kind::Decimal,
        "boolean" => Kind::Boolean,
        "date" => Kind::Date,
        t if t.starts_with("timestamp") => Kind::Timestamp,
        "json" | "jsonb" => Kind::Json,
        "bytea" => Kind::Blob,
        _ => Kind::Text,
    }
}

/// The PostgreSQL type a keyset parameter is cast to, so it compares as the column does (the
/// checkpoint keeps PostgreSQL values as text).
pub fn postgres_cast(kind: Kind) -> &'static str {
    match kind {
        Kind::Integer => "bigint",
        Kind::Real => "double precision",
        Kind::Decimal => "numeric",
        Kind::Boolean => "boolean",
        Kind::Date => "date",
        Kind::Timestamp => "timestamptz",
        Kind::Json | Kind::Blob | Kind::Text => "text",
    }
}

/// The cell of `value` for a column of `kind`: dates and timestamps are brought to their
/// canonical form (PostgreSQL writes `2026-01-05 10:00:00+00`, SQLite files often hold
/// `2026-01-05 10:00:00`); everything else goes as it is, and the builder refuses what the
/// column cannot hold.
pub fn cell(value: &Value, kind: Kind) -> Result<CellValue<'_>, String> {
    Ok(match (value, kind) {
        (Value::Null, _) => CellValue::Borrowed(Cell::Null),
        (Value::Text(s), Kind::Timestamp) => CellValue::Owned(canonical_timestamp(s)?),
        (Value::Text(s), Kind::Date) => {
            if !is_date(s) {
                return Err(format!("{s:?} is not a date (YYYY-MM-DD)"));
            }
            CellValue::Borrowed(Cell::Text(s))
        }
        (Value::Boolean(b), _) => CellValue::Borrowed(Cell::Boolean(*b)),
        (Value::Integer(i), _) => CellValue::Borrowed(Cell::Integer(*i)),
        (Value::Real(r), _) => CellValue::Borrowed(Cell::Real(*r)),
        (Value::Text(s), _) => CellValue::Borrowed(Cell::Text(s)),
        (Value::Blob(b), _) => CellValue::Borrowed(Cell::Blob(b)),
    })
}

/// A cell that borrows the value, or owns a rewritten text.
pub enum CellValue<'a> {
    Borrowed(Cell<'a>),
    Owned(String),
}

impl CellValue<'_> {
    pub fn as_cell(&self) -> Cell<'_> {
        match self {
            CellValue::Borrowed(c) => *c,
            CellValue::Owned(s) => Cell::Text(s),
        }
    }
}

fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

/// `YYYY-MM-DD[T ]HH:MM[:SS[.fff…]][Z|±HH[:MM]|±HHMM]` → `YYYY-MM-DDTHH:MM:SS[.fff…][Z|±HH:MM]`.
pub fn canonical_timestamp(s: &str) -> Result<String, String> {
    let bad = || format!("{s:?} is not a timestamp (YYYY-MM-DDTHH:MM:SS with an optional zone)");
    let (date, rest) = (s.get(..10).ok_or_else(bad)?, s.get(10..).ok_or_else(bad)?);
    if !is_date(date) {
        return Err(bad());
    }
    let rest = rest
        .strip_prefix('T')
        .or_else(|| rest.strip_prefix(' '))
        .ok_or_else(bad)?;
    // The clock: HH:MM, then optional :SS and fraction.
    let zone_at = rest.find(['Z', '+', '-']).unwrap_or(rest.len());
    let (clock, zone) = rest.split_at(zone_at);
    let digits = |t: &str, n: usize| t.len() == n && t.bytes().all(|c| c.is_ascii_digit());
    let mut parts = clock.splitn(3, ':');
    let (hh, mm) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if !digits(hh, 2) || !digits(mm, 2) {
        return Err(bad());
    }
    let seconds = match parts.next() {
        None => "00".to_owned(),
        Some(sec) => {
            let (whole, fraction) = sec.split_once('.').unwrap_or((sec, ""));
            if !digits(whole, 2) || !fraction.bytes().all(|c| c.is_ascii_digit()) {
                return Err(bad());
            }
            if fraction.is_empty() {
                whole.to_owned()
            } else {
                format!("{whole}.{fraction}")
            }
        }
    };
    let zone = match zone {
        "" | "Z" => zone.to_owned(),
        z => {
            let (sign, offset) = z.split_at(1);
            let (oh, om) = match offset.len() {
                2 => (offset, "00"),
                4 => offset.split_at(2),
                5 if offset.as_bytes()[2] == b':' => (&offset[..2], &offset[3..]),
                _ => return Err(bad()),
            };
            if !digits(oh, 2) || !digits(om, 2) {
                return Err(bad());
            }
            format!("{sign}{oh}:{om}")
        }
    };
    Ok(format!("{date}T{hh}:{mm}:{seconds}{zone}"))
}

/// What `dialect()` answered, as the messages name it.
pub fn dialect_name(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => "SQLite",
        Dialect::Postgresql => "PostgreSQL",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_declared_types_map_to_kinds() {
        for (declared, kind) in [
            ("INTEGER", Kind::Integer),
            ("bigint", Kind::Integer),
            ("VARCHAR(20)", Kind::Text),
            ("TEXT", Kind::Text),
            ("REAL", Kind::Real),
            ("DOUBLE PRECISION", Kind::Real),
            ("BLOB", Kind::Blob),
            ("BOOLEAN", Kind::Boolean),
            ("DATE", Kind::Date),
            ("DATETIME", Kind::Timestamp),
            ("TIMESTAMP", Kind::Timestamp),
            ("DECIMAL(10,2)", Kind::Decimal),
            ("NUMERIC", Kind::Decimal),
            ("JSON", Kind::Json),
            ("", Kind::Text),
        ] {
            assert_eq!(sqlite_kind(declared), kind, "{declared}");
        }
    }

    #[test]
    fn postgres_types_map_to_kinds() {
        assert_eq!(postgres_kind("bigint"), Kind::Integer);
        assert_eq!(postgres_kind("timestamp with time zone"), Kind::Timestamp);
        assert_eq!(
            postgres_kind("timestamp without time zone"),
            Kind::Timestamp
        );
        assert_eq!(postgres_kind("numeric"), Kind::Decimal);
        assert_eq!(postgres_kind("jsonb"), Kind::Json);
        assert_eq!(postgres_kind("uuid"), Kind::Text);
        assert_eq!(postgres_kind("character varying"), Kind::Text);
    }

    #[test]
    fn timestamps_come_out_canonical() {
        for (input, expected) in [
            ("2026-01-05 10:00:00+00", "2026-01-05T10:00:00+00:00"),
            (
                "2026-01-05 10:00:00.123456+05:30",
                "2026-01-05T10:00:00.123456+05:30",
            ),
            ("2026-01-05T10:00:00Z", "2026-01-05T10:00:00Z"),
            ("2026-01-05 10:00", "2026-01-05T10:00:00"),
            ("2026-01-05T10:00:07-0800", "2026-01-05T10:00:07-08:00"),
        ] {
            assert_eq!(canonical_timestamp(input).unwrap(), expected, "{input}");
        }
        for bad in [
            "2026-01-05",
            "yesterday",
            "2026-01-05 10",
            "2026-01-05 10:00:00+1",
        ] {
            assert!(canonical_timestamp(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dates_are_checked_and_numbers_pass_through() {
        assert!(cell(&Value::Text("2026-13".into()), Kind::Date).is_err());
        assert!(matches!(
            cell(&Value::Text("2026-01-05".into()), Kind::Date)
                .unwrap()
                .as_cell(),
            Cell::Text("2026-01-05")
        ));
        assert!(matches!(
            cell(&Value::Integer(3), Kind::Decimal).unwrap().as_cell(),
            Cell::Integer(3)
        ));
    }
}
