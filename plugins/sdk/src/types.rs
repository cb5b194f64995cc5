//! Conveniences on the contract's own types.

use std::fmt;
use std::str::FromStr;

use crate::{Column, Error, Kind, Schema, Value};

impl Error {
    /// The message, whatever the case.
    pub fn message(&self) -> &str {
        match self {
            Error::InvalidConfig(m)
            | Error::Unavailable(m)
            | Error::AccessDenied(m)
            | Error::BadData(m)
            | Error::Other(m) => m,
        }
    }

    /// The same error (so the same retry policy) with `context: ` before its message, e.g. an
    /// error from the `sql` import with the plugin and the table that was being set up.
    pub fn context(self, context: impl fmt::Display) -> Self {
        let wrap = |m: String| format!("{context}: {m}");
        match self {
            Error::InvalidConfig(m) => Error::InvalidConfig(wrap(m)),
            Error::Unavailable(m) => Error::Unavailable(wrap(m)),
            Error::AccessDenied(m) => Error::AccessDenied(wrap(m)),
            Error::BadData(m) => Error::BadData(wrap(m)),
            Error::Other(m) => Error::Other(wrap(m)),
        }
    }
}

impl Schema {
    /// The position of column `name`.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// Column `name`.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The column names joined with `, `, for "unknown column; available: …" messages.
    pub fn column_list(&self) -> String {
        let names: Vec<&str> = self.columns.iter().map(|c| c.name.as_str()).collect();
        names.join(", ")
    }
}

impl Column {
    /// A column named `name`.
    pub fn new(name: impl Into<String>, kind: Kind, nullable: bool) -> Self {
        Self {
            name: name.into(),
            kind,
            nullable,
        }
    }
}

impl Kind {
    /// Every kind, in WIT order.
    pub const ALL: [Kind; 9] = [
        Kind::Text,
        Kind::Integer,
        Kind::Real,
        Kind::Boolean,
        Kind::Decimal,
        Kind::Date,
        Kind::Timestamp,
        Kind::Blob,
        Kind::Json,
    ];

    /// The kind's WIT name (`timestamp`).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Text => "text",
            Kind::Integer => "integer",
            Kind::Real => "real",
            Kind::Boolean => "boolean",
            Kind::Decimal => "decimal",
            Kind::Date => "date",
            Kind::Timestamp => "timestamp",
            Kind::Blob => "blob",
            Kind::Json => "json",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses a kind's WIT name, as plugin configs spell it.
impl FromStr for Kind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
                format!("unknown kind {s:?}; expected one of {}", names.join(", "))
            })
    }
}

impl Value {
    /// Whether the value is null.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The text, if this is a text value.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, if this is an integer value.
    pub fn as_integer(&self) -> Option<i64> {
        match self {
            Value::Integer(v) => Some(*v),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_keeps_the_case() {
        let e = Error::Unavailable("database is locked".into()).context("sqlite-history: save");
        assert_eq!(
            e,
            Error::Unavailable("sqlite-history: save: database is locked".into())
        );
        assert_eq!(e.message(), "sqlite-history: save: database is locked");
    }

    #[test]
    fn kinds_round_trip_through_their_names() {
        for kind in Kind::ALL {
            assert_eq!(kind.as_str().parse::<Kind>(), Ok(kind));
        }
        let err = "money".parse::<Kind>().unwrap_err();
        assert!(
            err.starts_with(r#"unknown kind "money"; expected one of text, integer"#),
            "{err}"
        );
    }

    #[test]
    fn finds_columns_by_name() {
        let schema = Schema {
            columns: vec![
                Column::new("a", Kind::Text, true),
                Column::new("b", Kind::Date, false),
            ],
            primary_key: vec![],
        };
        assert_eq!(schema.column_index("b"), Some(1));
        assert_eq!(schema.column("b").map(|c| c.kind), Some(Kind::Date));
        assert_eq!(schema.column_index("c"), None);
        assert_eq!(schema.column_list(), "a, b");
    }
}
