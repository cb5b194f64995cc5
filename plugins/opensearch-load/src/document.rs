//! A row as `_bulk` lines: the action (`index` or, for a tombstone, `delete`) with the
//! document `_id`, the external version and the index, then the document itself.

use std::io::Write as _;

use base64::Engine as _;
use weir_sdk::{Cell, RowView, Schema};

use crate::config::{Config, VersionSource};

/// The largest `_id` OpenSearch and Elasticsearch accept, in bytes.
const MAX_ID_BYTES: usize = 512;

/// Appends rows as bulk lines, with the column names pre-encoded as JSON keys.
pub(crate) struct Encoder {
    /// `"name":` per column.
    keys: Vec<Vec<u8>>,
    /// `"_index":"…"`, once.
    index: Vec<u8>,
    /// Which columns are JSON documents (re-serialised so a line break inside cannot end the
    /// bulk line early).
    json: Vec<bool>,
    scratch: String,
}

/// What a row became.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    Index,
    Delete,
}

impl Encoder {
    pub(crate) fn new(schema: &Schema, config: &Config) -> Self {
        let keys = schema
            .columns
            .iter()
            .map(|c| {
                let mut key = serde_json::to_vec(&c.name).expect("a string serialises");
                key.push(b':');
                key
            })
            .collect();
        let mut index = b"\"_index\":".to_vec();
        serde_json::to_writer(&mut index, &config.index).expect("a string serialises");
        Self {
            keys,
            index,
            json: schema
                .columns
                .iter()
                .map(|c| c.kind == weir_sdk::Kind::Json)
                .collect(),
            scratch: String::new(),
        }
    }

    /// Append the bulk lines of `row` (at source `position`) to `out`. On `Err` (a reason for
    /// the row's reject) `out` is left as it was.
    pub(crate) fn encode(
        &mut self,
        row: &RowView<'_>,
        position: u64,
        config: &Config,
        out: &mut Vec<u8>,
    ) -> Result<Action, String> {
        let start = out.len();
        let result = self.encode_inner(row, position, config, out);
        if result.is_err() {
            out.truncate(start);
        }
        result
    }

    fn encode_inner(
        &mut self,
        row: &RowView<'_>,
        position: u64,
        config: &Config,
        out: &mut Vec<u8>,
    ) -> Result<Action, String> {
        let action = match config.deleted_by {
            Some(col) if is_tombstone(row.get(col)) => Action::Delete,
            _ => Action::Index,
        };
        let version = version(row, position, config)?;
        self.document_id(row, config)?;
        out.extend_from_slice(match action {
            Action::Index => b"{\"index\":{",
            Action::Delete => b"{\"delete\":{",
        });
        out.extend_from_slice(&self.index);
        out.extend_from_slice(b",\"_id\":");
        serde_json::to_writer(&mut *out, &self.scratch).expect("writing to a Vec");
        writeln!(
            out,
            ",\"version\":{version},\"version_type\":\"external\"}}}}"
        )
        .expect("writing to a Vec");
        if action == Action::Delete {
            return Ok(action);
        }
        out.push(b'{');
        for (col, key) in self.keys.iter().enumerate() {
            if col > 0 {
                out.push(b',');
            }
            out.extend_from_slice(key);
            match row.get(col) {
                Cell::Null => out.extend_from_slice(b"null"),
                Cell::Boolean(b) => out.extend_from_slice(if b { b"true" } else { b"false" }),
                Cell::Integer(i) => write!(out, "{i}").expect("writing to a Vec"),
                Cell::Real(r) if r.is_finite() => {
                    serde_json::to_writer(&mut *out, &r).expect("writing to a Vec");
                }
                Cell::Real(r) => {
                    return Err(format!(
                        "{}: {r} cannot be indexed (JSON has no such number)",
                        name(key)
                    ));
                }
                Cell::Text(s) if self.json[col] => {
                    let value: serde_json::Value = serde_json::from_str(s)
                        .map_err(|e| format!("{}: not a JSON document: {e}", name(key)))?;
                    serde_json::to_writer(&mut *out, &value).expect("writing to a Vec");
                }
                Cell::Text(s) => serde_json::to_writer(&mut *out, s).expect("writing to a Vec"),
                Cell::Blob(b) => {
                    out.push(b'"');
                    let encoded = base64::engine::general_purpose::STANDARD.encode(b);
                    out.extend_from_slice(encoded.as_bytes());
                    out.push(b'"');
                }
            }
        }
        out.extend_from_slice(b"}\n");
        Ok(action)
    }

    /// The `_id` into `self.scratch`: one key column's text, or several joined by `|` with `|`
    /// and `\` escaped by `\`, so two different keys never give one `_id`.
    fn document_id(&mut self, row: &RowView<'_>, config: &Config) -> Result<(), String> {
        use std::fmt::Write as _;
        let id = &mut self.scratch;
        id.clear();
        let several = config.key.len() > 1;
        for (n, (col, name)) in config.key.iter().enumerate() {
            if n > 0 {
                id.push('|');
            }
            let start = id.len();
            match row.get(*col) {
                Cell::Null => return Err(format!("key column `{name}` is null")),
                Cell::Text(s) => id.push_str(s),
                Cell::Integer(i) => write!(id, "{i}").expect("writing to a String"),
                Cell::Boolean(b) => write!(id, "{b}").expect("writing to a String"),
                other => {
                    return Err(format!(
                        "key column `{name}`: {} cannot be an _id",
                        other.describe()
                    ));
                }
            }
            if several && id[start..].contains(['|', '\\']) {
                let escaped = id[start..].replace('\\', "\\\\").replace('|', "\\|");
                id.truncate(start);
                id.push_str(&escaped);
            }
        }
        if id.is_empty() {
            return Err("the document _id is empty (an empty key)".into());
        }
        if id.len() > MAX_ID_BYTES {
            return Err(format!(
                "the document _id is {} bytes; the index accepts at most {MAX_ID_BYTES}",
                id.len()
            ));
        }
        Ok(())
    }
}

/// `"name":` back to `name`, for messages.
fn name(key: &[u8]) -> String {
    let quoted = &key[..key.len() - 1];
    serde_json::from_slice(quoted).unwrap_or_else(|_| String::from_utf8_lossy(quoted).into_owned())
}

/// Whether a tombstone column's value marks its row deleted: anything but null, false or 0
/// (the host's rule for write plans, so both destinations agree).
fn is_tombstone(cell: Cell<'_>) -> bool {
    !matches!(cell, Cell::Null | Cell::Boolean(false) | Cell::Integer(0))
}

/// The external version of a row.
fn version(row: &RowView<'_>, position: u64, config: &Config) -> Result<i64, String> {
    let (col, value) = match config.version {
        VersionSource::Position => {
            return i64::try_from(position)
                .map_err(|_| format!("source position {position} is too large for a version"));
        }
        VersionSource::Integer(col) => (col, row.integer(col)),
        VersionSource::Date(col) => (col, row.text(col).and_then(weir_sdk::time::parse_date)),
        VersionSource::Timestamp(col) => {
            (col, row.text(col).and_then(weir_sdk::time::parse_timestamp))
        }
    };
    let name = config.version_column.as_deref().unwrap_or_default();
    match value {
        Some(v) if v >= 0 => Ok(v),
        Some(v) => Err(format!(
            "version column `{name}`: {v} is negative (or before 1970); versions must be at least 0"
        )),
        None if row.is_null(col) => Err(format!("version column `{name}` is null")),
        None => Err(format!(
            "version column `{name}`: {} is not readable",
            row.get(col).describe()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RawConfig;
    use weir_sdk::{Column, Kind, RowsBuilder, RowsView};

    fn schema() -> Schema {
        Schema {
            columns: vec![
                Column::new("id", Kind::Text, false),
                Column::new("n", Kind::Integer, true),
                Column::new("x", Kind::Real, true),
                Column::new("ok", Kind::Boolean, true),
                Column::new("doc", Kind::Json, true),
                Column::new("raw", Kind::Blob, true),
                Column::new("updated_at", Kind::Timestamp, true),
                Column::new("deleted_at", Kind::Timestamp, true),
            ],
            primary_key: vec!["id".into()],
        }
    }

    fn config(extra: &str) -> Config {
        let raw: RawConfig =
            serde_json::from_str(&format!(r#"{{"connection": "s", "index": "idx"{extra}}}"#))
                .unwrap();
        raw.resolve(&schema()).unwrap()
    }

    type Row<'a> = (
        &'a str,
        Option<i64>,
        Option<f64>,
        Option<&'a str>,
        Option<&'a str>,
    );

    fn encode(config: &Config, rows: &[Row<'_>]) -> Vec<Result<String, String>> {
        let mut b = RowsBuilder::new(&schema());
        for (id, n, x, doc, deleted) in rows {
            b.push_row([
                Cell::Text(id),
                (*n).into(),
                (*x).into(),
                Cell::Boolean(true),
                (*doc).into(),
                Cell::Blob(b"hi"),
                Cell::Text("1970-01-01T00:00:02Z"),
                (*deleted).into(),
            ])
            .unwrap();
        }
        let rows = b.finish();
        let view = RowsView::new(&rows);
        let mut encoder = Encoder::new(&schema(), config);
        view.rows()
            .map(|row| {
                let mut out = Vec::new();
                encoder
                    .encode(&row, 40 + row.index() as u64, config, &mut out)
                    .map(|_| String::from_utf8(out).unwrap())
            })
            .collect()
    }

    #[test]
    fn a_row_is_an_index_action_and_its_document() {
        let lines = encode(
            &config(""),
            &[("a\"1", Some(7), Some(0.5), Some("{\n\"k\": [1]}"), None)],
        );
        assert_eq!(
            lines[0].as_deref().unwrap(),
            concat!(
                r#"{"index":{"_index":"idx","_id":"a\"1","version":40,"version_type":"external"}}"#,
                "\n",
                r#"{"id":"a\"1","n":7,"x":0.5,"ok":true,"doc":{"k":[1]},"raw":"aGk=","updated_at":"1970-01-01T00:00:02Z","deleted_at":null}"#,
                "\n"
            )
        );
    }

    #[test]
    fn tombstones_are_deletes_and_versions_come_from_the_column() {
        let c = config(r#", "version": "updated_at", "deleted_by": "deleted_at""#);
        let lines = encode(&c, &[("k", None, None, None, Some("2026-01-01T00:00:00Z"))]);
        assert_eq!(
            lines[0].as_deref().unwrap(),
            "{\"delete\":{\"_index\":\"idx\",\"_id\":\"k\",\"version\":2000000,\"version_type\":\"external\"}}\n"
        );
    }

    #[test]
    fn composite_keys_cannot_collide() {
        let c = config(r#", "key": ["id", "n"]"#);
        let lines = encode(
            &c,
            &[
                ("a|b", Some(1), None, None, None),
                ("a", Some(1), None, None, None),
            ],
        );
        assert!(
            lines[0].as_ref().unwrap().contains(r#""_id":"a\\|b|1""#),
            "{lines:?}"
        );
        assert!(
            lines[1].as_ref().unwrap().contains(r#""_id":"a|1""#),
            "{lines:?}"
        );
    }

    #[test]
    fn rows_that_cannot_be_documents_are_refused_with_a_reason() {
        let c = config(r#", "key": ["n"]"#);
        let lines = encode(
            &c,
            &[
                ("a", None, None, None, None),
                ("b", Some(1), Some(f64::NAN), None, None),
                ("c", Some(2), None, Some("{oops"), None),
            ],
        );
        assert_eq!(lines[0], Err("key column `n` is null".into()));
        assert_eq!(
            lines[1],
            Err("x: NaN cannot be indexed (JSON has no such number)".into())
        );
        assert!(
            lines[2]
                .as_ref()
                .unwrap_err()
                .starts_with("doc: not a JSON document"),
            "{lines:?}"
        );
        let c = config(r#", "version": "n""#);
        let lines = encode(
            &c,
            &[
                ("a", None, None, None, None),
                ("b", Some(-1), None, None, None),
            ],
        );
        assert_eq!(lines[0], Err("version column `n` is null".into()));
        assert!(
            lines[1].as_ref().unwrap_err().contains("-1 is negative"),
            "{lines:?}"
        );
    }
}
