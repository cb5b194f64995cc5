//! Records to typed columns: declared fields or fields inferred from a first page, each value
//! converted to its column's kind or the row rejected naming the column and the reason.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use weir_sdk::{Cell, Column, Kind, RowsBuilder, Schema};

use crate::config::{self, Fields};
use crate::time::{self, Instant};

/// One column: its name, where its value is in a record, its kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnSpec {
    /// Column name.
    pub name: String,
    /// JSON pointer into the record.
    pub pointer: String,
    /// Kind, by its WIT name.
    #[serde(with = "kind_name")]
    pub kind: Kind,
}

mod kind_name {
    use serde::{Deserialize, Deserializer, Serializer};
    use weir_sdk::Kind;

    pub fn serialize<S: Serializer>(k: &Kind, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(k.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Kind, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// How a record says it was deleted.
#[derive(Debug, Clone, PartialEq)]
enum Tombstone {
    /// `field == value`; deleted_at is when the record was seen.
    Flag { pointer: String, value: Value },
    /// A non-null timestamp at `pointer` is deleted_at.
    At { pointer: String },
}

/// Records of one resource to rows of one schema.
#[derive(Debug, Clone)]
pub struct Mapping {
    columns: Vec<ColumnSpec>,
    /// Each column's pointer split into unescaped tokens once, not on every record:
    /// `Value::pointer` allocates two strings per token per call, which was a fifth of the
    /// extract call's time at 1,000 records a page.
    paths: Vec<Vec<String>>,
    tombstone: Option<Tombstone>,
    schema: Schema,
}

impl Mapping {
    /// The mapping of `columns`, plus the deleted-at column when `deleted` is configured. Key
    /// columns come first and are not nullable.
    pub fn new(
        mut columns: Vec<ColumnSpec>,
        primary_key: &[String],
        deleted: Option<&config::Deleted>,
    ) -> Self {
        // Key columns first, in key order: the table's first columns are its identity.
        columns.sort_by_key(|c| {
            primary_key
                .iter()
                .position(|k| *k == c.name)
                .unwrap_or(usize::MAX)
        });
        let mut schema_columns: Vec<Column> = columns
            .iter()
            .map(|c| Column::new(&c.name, c.kind, !primary_key.contains(&c.name)))
            .collect();
        let tombstone = deleted.map(|d| {
            schema_columns.push(Column::new(&d.column, Kind::Timestamp, true));
            match &d.value {
                Some(value) => Tombstone::Flag {
                    pointer: d.field.clone(),
                    value: value.clone(),
                },
                None => Tombstone::At {
                    pointer: d.field.clone(),
                },
            }
        });
        let schema = Schema {
            columns: schema_columns,
            primary_key: primary_key.to_vec(),
        };
        let paths = columns.iter().map(|c| tokens(&c.pointer)).collect();
        Mapping {
            paths,
            columns,
            tombstone,
            schema,
        }
    }

    /// The schema of every batch.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The data columns (without the deleted-at column).
    pub fn columns(&self) -> &[ColumnSpec] {
        &self.columns
    }

    /// Add `record` as a row, or say why it cannot be one (nothing is added then).
    pub fn push(&self, rows: &mut RowsBuilder, record: &Value, now: Instant) -> Result<(), String> {
        if !record.is_object() {
            return Err(format!("the record is {}, not an object", describe(record)));
        }
        let mut row = rows.row();
        for (i, (column, path)) in self.columns.iter().zip(&self.paths).enumerate() {
            let value = lookup(record, path).unwrap_or(&Value::Null);
            let cell = convert(column.kind, value)
                .map_err(|why| format!("column `{}`: {why}", column.name))?;
            row.set(i, cell.as_cell()).map_err(|e| e.to_string())?;
        }
        if let Some(tombstone) = &self.tombstone {
            let deleted_at = match tombstone {
                Tombstone::Flag { pointer, value } => {
                    (record.pointer(pointer) == Some(value)).then(|| now.to_rfc3339())
                }
                Tombstone::At { pointer } => match record.pointer(pointer) {
                    None | Some(Value::Null) => None,
                    Some(v) => Some(
                        match convert(Kind::Timestamp, v).map_err(|why| {
                            format!("column `{}` (from {pointer}): {why}", self.schema_deleted())
                        })? {
                            Out::Text(t) => t.into_owned(),
                            _ => unreachable!("a timestamp converts to text"),
                        },
                    ),
                },
            };
            row.set(self.columns.len(), deleted_at.as_deref())
                .map_err(|e| e.to_string())?;
        }
        row.commit().map_err(|e| e.to_string())
    }

    fn schema_deleted(&self) -> &str {
        self.schema
            .columns
            .last()
            .map_or("deleted_at", |c| c.name.as_str())
    }
}

/// A JSON pointer's reference tokens, unescaped (`"/a~1b/0"` → `["a/b", "0"]`); `""` has none.
fn tokens(pointer: &str) -> Vec<String> {
    if pointer.is_empty() {
        return Vec::new();
    }
    pointer
        .split('/')
        .skip(1)
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect()
}

/// `Value::pointer` over tokens split beforehand: the same value for the same pointer.
fn lookup<'a>(record: &'a Value, tokens: &[String]) -> Option<&'a Value> {
    tokens
        .iter()
        .try_fold(record, |target, token| match target {
            Value::Object(map) => map.get(token.as_str()),
            Value::Array(list) => {
                // RFC 6901 array indices: no sign, no leading zero (as serde_json reads them).
                if token.starts_with('+') || (token.starts_with('0') && token.len() != 1) {
                    return None;
                }
                list.get(token.parse::<usize>().ok()?)
            }
            _ => None,
        })
}

/// The columns a resource declares, or `None` when they are to be inferred.
pub fn declared(fields: &Fields) -> Option<Vec<ColumnSpec>> {
    match fields {
        Fields::Infer => None,
        Fields::Declared(fields) => Some(
            fields
                .iter()
                .map(|f| ColumnSpec {
                    name: f.name.clone(),
                    pointer: f.pointer.clone(),
                    kind: f.kind,
                })
                .collect(),
        ),
    }
}

/// A converted value, borrowing the record's text where it can.
enum Out<'a> {
    Null,
    Boolean(bool),
    Integer(i64),
    Real(f64),
    Text(Cow<'a, str>),
}

impl Out<'_> {
    fn as_cell(&self) -> Cell<'_> {
        match self {
            Out::Null => Cell::Null,
            Out::Boolean(b) => Cell::Boolean(*b),
            Out::Integer(i) => Cell::Integer(*i),
            Out::Real(r) => Cell::Real(*r),
            Out::Text(t) => Cell::Text(t),
        }
    }
}

/// `value` as a cell of `kind`, or why not (`"abc" is not an integer`).
fn convert(kind: Kind, value: &Value) -> Result<Out<'_>, String> {
    if value.is_null() {
        return Ok(Out::Null);
    }
    let not = |what: &str| format!("{} is not {what}", describe(value));
    match kind {
        Kind::Json => Ok(Out::Text(Cow::Owned(value.to_string()))),
        Kind::Text => match value {
            Value::String(s) => Ok(Out::Text(Cow::Borrowed(s))),
            Value::Number(n) => Ok(Out::Text(Cow::Owned(n.to_string()))),
            Value::Bool(b) => Ok(Out::Text(Cow::Owned(b.to_string()))),
            _ => Err(format!(
                "{} is not text (declare the field as json)",
                describe(value)
            )),
        },
        Kind::Integer => match value {
            Value::Number(n) => n
                .as_i64()
                .or_else(|| {
                    n.as_f64()
                        .filter(|f| f.fract() == 0.0 && f.abs() < 9.007_199_254_740_992e15)
                        .map(|f| f as i64)
                })
                .map(Out::Integer)
                .ok_or_else(|| not("a 64-bit integer")),
            Value::String(s) => s
                .trim()
                .parse()
                .map(Out::Integer)
                .map_err(|_| not("an integer")),
            _ => Err(not("an integer")),
        },
        Kind::Real => match value {
            Value::Number(n) => n.as_f64().map(Out::Real).ok_or_else(|| not("a number")),
            Value::String(s) => s
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .map(Out::Real)
                .ok_or_else(|| not("a number")),
            _ => Err(not("a number")),
        },
        Kind::Boolean => match value {
            Value::Bool(b) => Ok(Out::Boolean(*b)),
            Value::Number(n) if n.as_i64() == Some(0) => Ok(Out::Boolean(false)),
            Value::Number(n) if n.as_i64() == Some(1) => Ok(Out::Boolean(true)),
            Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(Out::Boolean(true)),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(Out::Boolean(false)),
            _ => Err(not("a boolean")),
        },
        Kind::Decimal => {
            let text: Cow<'_, str> = match value {
                Value::Number(n) => Cow::Owned(n.to_string()),
                Value::String(s) => Cow::Borrowed(s.trim()),
                _ => return Err(not("a decimal")),
            };
            if is_decimal(&text) {
                Ok(Out::Text(text))
            } else {
                Err(not("a decimal"))
            }
        }
        Kind::Date => match value {
            Value::String(s) if time::parse_date(s).is_some() => Ok(Out::Text(Cow::Borrowed(s))),
            _ => Err(not("a date (YYYY-MM-DD)")),
        },
        Kind::Timestamp => match value {
            Value::String(s) => time::parse_timestamp(s)
                .map(|t| {
                    if t.canonical == *s {
                        Out::Text(Cow::Borrowed(s))
                    } else {
                        Out::Text(Cow::Owned(t.canonical))
                    }
                })
                .ok_or_else(|| not("a timestamp (RFC 3339)")),
            _ => Err(not("a timestamp (RFC 3339)")),
        },
        Kind::Blob => Err("blob columns are not supported".into()),
    }
}

/// `-?digits[.digits]`: the contract's canonical decimal text.
fn is_decimal(s: &str) -> bool {
    let s = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = s.split_once('.').unwrap_or((s, "0"));
    !int.is_empty()
        && !frac.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
}

/// A value as a reject reason shows it: strings quoted and cut, containers by kind.
pub fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) if s.chars().count() > 60 => {
            format!("{:?}…", s.chars().take(60).collect::<String>())
        }
        Value::String(s) => format!("{s:?}"),
        Value::Array(a) => format!("an array of {}", a.len()),
        Value::Object(_) => "an object".into(),
    }
}

/// What the first page showed of one field.
#[derive(Default)]
struct Seen {
    booleans: usize,
    integers: usize,
    fractions: usize,
    dates: usize,
    timestamps: usize,
    texts: usize,
    containers: usize,
    nulls: usize,
}

/// Columns for the top-level fields of `records` (objects; others are skipped), in name order
/// (that of a parsed JSON object), each with the reason for its kind (for the run log). Key columns that no
/// record has are added as text so the key stays complete.
pub fn infer(records: &[Value], primary_key: &[String]) -> (Vec<ColumnSpec>, Vec<String>) {
    let mut names: Vec<String> = Vec::new();
    let mut seen: Vec<Seen> = Vec::new();
    for record in records {
        let Value::Object(map) = record else { continue };
        for (name, value) in map {
            let i = match names.iter().position(|n| n == name) {
                Some(i) => i,
                None => {
                    names.push(name.clone());
                    seen.push(Seen::default());
                    names.len() - 1
                }
            };
            let s = &mut seen[i];
            match value {
                Value::Null => s.nulls += 1,
                Value::Bool(_) => s.booleans += 1,
                Value::Number(n) if n.is_i64() || n.is_u64() => s.integers += 1,
                Value::Number(_) => s.fractions += 1,
                Value::String(t) if time::parse_date(t).is_some() => s.dates += 1,
                Value::String(t) if time::parse_timestamp(t).is_some() => s.timestamps += 1,
                Value::String(_) => s.texts += 1,
                Value::Array(_) | Value::Object(_) => s.containers += 1,
            }
        }
    }
    for key in primary_key {
        if !names.contains(key) {
            names.push(key.clone());
            seen.push(Seen::default());
        }
    }
    let mut columns = Vec::with_capacity(names.len());
    let mut reasons = Vec::with_capacity(names.len());
    for (name, s) in names.into_iter().zip(seen) {
        let non_null =
            s.booleans + s.integers + s.fractions + s.dates + s.timestamps + s.texts + s.containers;
        let only = |n: usize| n == non_null;
        let (kind, why) = if non_null == 0 {
            (
                Kind::Text,
                if s.nulls == 0 {
                    "absent from the first page".to_owned()
                } else {
                    format!("only nulls ({}) on the first page", s.nulls)
                },
            )
        } else if only(s.booleans) {
            (Kind::Boolean, format!("{non_null} booleans"))
        } else if only(s.integers) {
            (Kind::Integer, format!("{non_null} whole numbers"))
        } else if only(s.integers + s.fractions) {
            (
                Kind::Real,
                format!(
                    "numbers, {} with a fraction (declare decimal for exact amounts)",
                    s.fractions
                ),
            )
        } else if only(s.dates) {
            (Kind::Date, format!("{non_null} dates (YYYY-MM-DD)"))
        } else if only(s.timestamps) {
            (Kind::Timestamp, format!("{non_null} RFC 3339 timestamps"))
        } else if only(s.containers) {
            (Kind::Json, format!("{non_null} objects or arrays"))
        } else if s.containers == 0 {
            (Kind::Text, format!("{non_null} strings or mixed scalars"))
        } else {
            (
                Kind::Json,
                "objects or arrays mixed with scalars".to_owned(),
            )
        };
        reasons.push(format!("{name} {kind} ({why})"));
        columns.push(ColumnSpec {
            pointer: config::pointer(&name),
            name,
            kind,
        });
    }
    (columns, reasons)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use weir_sdk::RowsView;

    fn spec(name: &str, pointer: &str, kind: Kind) -> ColumnSpec {
        ColumnSpec {
            name: name.into(),
            pointer: pointer.into(),
            kind,
        }
    }

    fn now() -> Instant {
        Instant::parse("2026-05-01T12:00:00Z").unwrap()
    }

    #[test]
    fn declared_fields_map_nested_values_and_reject_what_does_not_fit() {
        let mapping = Mapping::new(
            vec![
                spec("name", "/name", Kind::Text),
                spec("id", "/id", Kind::Integer),
                spec("salary", "/salary", Kind::Decimal),
                spec("hired", "/hired", Kind::Date),
                spec("updated_at", "/updated_at", Kind::Timestamp),
                spec("manager", "/manager/id", Kind::Integer),
                spec("tags", "/tags", Kind::Json),
                spec("active", "/active", Kind::Boolean),
            ],
            &["id".into()],
            None,
        );
        assert_eq!(mapping.schema().columns[0].name, "id", "key first");
        assert!(!mapping.schema().columns[0].nullable);
        let mut rows = RowsBuilder::new(mapping.schema());
        let good = json!({"id": 7, "name": "Ada", "salary": 5100.5, "hired": "2020-02-29",
            "updated_at": "2026-04-30 10:00:00+02:00", "manager": {"id": "3"}, "tags": ["a"],
            "active": true});
        mapping.push(&mut rows, &good, now()).unwrap();
        let sparse = json!({"id": "8", "salary": "-12.50"});
        mapping.push(&mut rows, &sparse, now()).unwrap();

        for (record, reason) in [
            (
                json!({"id": 9, "salary": "12,5"}),
                r#"column `salary`: "12,5" is not a decimal"#,
            ),
            (
                json!({"id": 9, "hired": "2021-02-29"}),
                "column `hired`: \"2021-02-29\" is not a date (YYYY-MM-DD)",
            ),
            (
                json!({"id": 9, "updated_at": "soon"}),
                "column `updated_at`: \"soon\" is not a timestamp (RFC 3339)",
            ),
            (
                json!({"id": 9.5}),
                "column `id`: 9.5 is not a 64-bit integer",
            ),
            (
                json!({"id": 9, "name": {"first": "A"}}),
                "column `name`: an object is not text (declare the field as json)",
            ),
            (
                json!({"id": 9, "active": "yes"}),
                "column `active`: \"yes\" is not a boolean",
            ),
            (
                json!({"name": "no id"}),
                "id: null, but the column is not nullable",
            ),
            (json!([1, 2]), "the record is an array of 2, not an object"),
            (json!("x"), "the record is \"x\", not an object"),
        ] {
            assert_eq!(
                mapping.push(&mut rows, &record, now()).unwrap_err(),
                reason,
                "{record}"
            );
        }
        let rows = rows.finish();
        assert_eq!(rows.row_count, 2, "rejects add nothing");
        let view = RowsView::new(&rows);
        let col = |n: &str| mapping.schema().column_index(n).unwrap();
        assert_eq!(view.integer(0, col("id")), Some(7));
        assert_eq!(view.integer(1, col("id")), Some(8));
        assert_eq!(view.text(0, col("salary")), Some("5100.5"));
        assert_eq!(view.text(1, col("salary")), Some("-12.50"));
        assert_eq!(
            view.text(0, col("updated_at")),
            Some("2026-04-30T10:00:00+02:00")
        );
        assert_eq!(view.integer(0, col("manager")), Some(3));
        assert_eq!(view.text(0, col("tags")), Some(r#"["a"]"#));
        assert_eq!(view.boolean(0, col("active")), Some(true));
        assert!(view.cell(1, col("name")).is_null());
    }

    #[test]
    fn tombstones_set_deleted_at() {
        let flag = config::Deleted {
            field: "/deleted".into(),
            value: Some(json!(true)),
            column: "deleted_at".into(),
        };
        let m = Mapping::new(
            vec![spec("id", "/id", Kind::Integer)],
            &["id".into()],
            Some(&flag),
        );
        let mut rows = RowsBuilder::new(m.schema());
        m.push(&mut rows, &json!({"id": 1, "deleted": true}), now())
            .unwrap();
        m.push(&mut rows, &json!({"id": 2, "deleted": false}), now())
            .unwrap();
        m.push(&mut rows, &json!({"id": 3}), now()).unwrap();
        let rows = rows.finish();
        let view = RowsView::new(&rows);
        assert_eq!(
            view.text(0, 1),
            Some("2026-05-01T12:00:00Z"),
            "the time seen"
        );
        assert!(view.cell(1, 1).is_null() && view.cell(2, 1).is_null());

        let at = config::Deleted {
            field: "/deleted_at".into(),
            value: None,
            column: "removed".into(),
        };
        let m = Mapping::new(vec![spec("id", "/id", Kind::Integer)], &[], Some(&at));
        assert_eq!(m.schema().columns[1].name, "removed");
        let mut rows = RowsBuilder::new(m.schema());
        m.push(
            &mut rows,
            &json!({"id": 1, "deleted_at": "2026-04-01T00:00:00Z"}),
            now(),
        )
        .unwrap();
        m.push(&mut rows, &json!({"id": 2, "deleted_at": null}), now())
            .unwrap();
        assert_eq!(
            m.push(&mut rows, &json!({"id": 3, "deleted_at": "gone"}), now())
                .unwrap_err(),
            "column `removed` (from /deleted_at): \"gone\" is not a timestamp (RFC 3339)"
        );
        let rows = rows.finish();
        let view = RowsView::new(&rows);
        assert_eq!(view.text(0, 1), Some("2026-04-01T00:00:00Z"));
        assert!(view.cell(1, 1).is_null());
    }

    #[test]
    fn inference_types_each_field_and_says_why() {
        let page = vec![
            json!({"id": 1, "name": "Ada", "salary": 5100.5, "hired": "2020-01-02",
                   "updated_at": "2026-01-01T00:00:00Z", "manager": {"id": 2}, "active": true,
                   "note": null, "code": "A1"}),
            json!({"id": 2, "name": "Bob", "salary": 4000, "hired": "2021-03-04",
                   "updated_at": "2026-01-02T00:00:00+01:00", "manager": null, "active": false,
                   "note": null, "code": 7}),
            json!("not an object"),
        ];
        let (columns, reasons) = infer(&page, &["id".into(), "uid".into()]);
        let kinds: Vec<(&str, Kind)> = columns.iter().map(|c| (c.name.as_str(), c.kind)).collect();
        assert_eq!(
            kinds,
            vec![
                ("active", Kind::Boolean),
                ("code", Kind::Text),
                ("hired", Kind::Date),
                ("id", Kind::Integer),
                ("manager", Kind::Json),
                ("name", Kind::Text),
                ("note", Kind::Text),
                ("salary", Kind::Real),
                ("updated_at", Kind::Timestamp),
                ("uid", Kind::Text),
            ]
        );
        assert_eq!(reasons[3], "id integer (2 whole numbers)");
        assert_eq!(
            reasons[7],
            "salary real (numbers, 1 with a fraction (declare decimal for exact amounts))"
        );
        assert_eq!(reasons[6], "note text (only nulls (2) on the first page)");
        assert_eq!(reasons[9], "uid text (absent from the first page)");
        assert_eq!(reasons[1], "code text (2 strings or mixed scalars)");
        assert_eq!(columns[4].pointer, "/manager");

        let (none, _) = infer(&[], &[]);
        assert!(none.is_empty());
    }
}

#[cfg(test)]
mod pointer_tests {
    use super::*;

    #[test]
    fn split_pointers_find_what_value_pointer_finds() {
        let record = serde_json::json!({"a": {"b/c": [10, {"d~e": 1}], "": 2}, "0": 3, "x": null});
        for pointer in [
            "",
            "/a",
            "/a/b~1c",
            "/a/b~1c/0",
            "/a/b~1c/1/d~0e",
            "/a/",
            "/0",
            "/x",
            "/x/y",
            "/a/b~1c/01",
            "/a/b~1c/+1",
            "/a/b~1c/2",
            "/missing",
            "/a/b~1c/-",
        ] {
            assert_eq!(
                lookup(&record, &tokens(pointer)),
                record.pointer(pointer),
                "{pointer:?}"
            );
        }
    }
}
