//! The plugin configuration: a JSON object from the pipeline's `extract.config`.
//!
//! Parsed by hand from a `serde_json::Value` rather than derived, so that every message names
//! the key and says what is allowed, and unknown keys (typos such as `delimeter`) are refused.

use crate::encoding::TextEncoding;
use crate::error::{Error, Result};
use crate::parser::{Dialect, Quotes};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// The configuration keys, in the order the docs list them.
pub const KEYS: &[&str] = &[
    "path",
    "delimiter",
    "quote",
    "escape",
    "has_header",
    "encoding",
    "columns",
    "types",
    "trim",
    "max_record_bytes",
    "quotes",
    "duplicate_headers",
    "settle_seconds",
    "verify",
];

/// The default of `settle_seconds`: long enough to cover a writer that flushes a line in
/// pieces (buffered writes, a slow network share), short enough that a finished file waits
/// for at most one more scheduled run.
pub const DEFAULT_SETTLE_SECONDS: u64 = 5;

/// Upper bound of `settle_seconds` (a day): beyond that a file is not being written, it is
/// abandoned.
pub const MAX_SETTLE_SECONDS: u64 = 86_400;

/// Upper bound of `max_record_bytes`: a record is held in memory whole, inside the plugin's
/// memory limit.
pub const MAX_RECORD_LIMIT: u64 = 64 * 1024 * 1024;

/// JSON Schema of the configuration, returned by `describe`.
pub const CONFIG_SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "csv-extract configuration",
  "type": "object",
  "additionalProperties": false,
  "required": ["path"],
  "properties": {
    "path": {"type": "string", "description": "Files to read: a directory (as listed in grants.read_dirs) plus a file-name glob with *, ? and [...], e.g. \"examples/bank-recon/inbox/*.csv\". One partition per matching file, in sorted order."},
    "delimiter": {"type": "string", "default": ",", "description": "Field separator: one ASCII character; \"tab\" or \"\\t\" for tab."},
    "quote": {"type": ["string", "null"], "default": "\"", "description": "Quote character; null turns quoting off."},
    "escape": {"type": ["string", "null"], "default": null, "description": "Escape character inside quoted fields (e.g. \"\\\\\"); by default quotes are escaped by doubling them."},
    "has_header": {"type": "boolean", "default": true, "description": "Whether the first record holds the column names."},
    "encoding": {"type": "string", "default": "utf-8", "description": "Text encoding: utf-8 (a byte order mark is skipped), windows-1252, latin-1 or another ASCII-compatible WHATWG label."},
    "columns": {"type": "array", "items": {"type": "string"}, "description": "Column names; required to name columns when has_header is false (default column_1, column_2, ...), and replaces the header's names otherwise."},
    "types": {"type": "object", "additionalProperties": {"enum": ["text", "integer", "real"]}, "description": "Kinds the extractor emits directly, by column name; other columns are text. Empty fields of integer and real columns are null."},
    "trim": {"type": "boolean", "default": false, "description": "Strip spaces and tabs around fields (outside quotes)."},
    "max_record_bytes": {"type": "integer", "minimum": 1, "maximum": 67108864, "default": 1048576, "description": "Longer records are rejected."},
    "quotes": {"enum": ["strict", "lenient"], "default": "strict", "description": "A quote where RFC 4180 allows none (inside an unquoted field, or text after a closing quote): \"strict\" makes the record a reject naming the column; \"lenient\" keeps that field exactly as written, quote characters included."},
    "duplicate_headers": {"enum": ["error", "rename"], "default": "error", "description": "Header names that repeat, exactly or ignoring case: \"error\" stops the file (bad-data) naming both columns; \"rename\" reads the later ones as name_2, name_3, ... and logs a warning saying which."},
    "settle_seconds": {"type": "integer", "minimum": 0, "maximum": 86400, "default": 5, "description": "A last record without a line break (or with a quoted field still open) is held back, neither loaded nor checkpointed, while the file was modified less than this many seconds ago, because a writer may still be appending to it; 0 reads it at once."},
    "verify": {"enum": ["window", "full"], "default": "window", "description": "What a resume checks before trusting a checkpoint: \"window\" the size, the header and the first 4 KiB and the 4 KiB before the offset; \"full\" also a hash of every byte before the offset, which re-reads them on every resume."}
  }
}"#;

/// The kind a column is emitted as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    /// UTF-8 text, as read.
    Text,
    /// 64-bit signed integer; an empty field is null.
    Integer,
    /// 64-bit float; an empty field is null.
    Real,
}

/// What to do with header names that repeat (exactly or ignoring case).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DuplicateHeaders {
    /// The file is `bad-data`, naming both columns.
    Error,
    /// Later ones become `name_2`, `name_3`, …, with a warning.
    Rename,
}

/// How much of the already-read file a resume checks against the checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    /// Size, header, first 4 KiB and the 4 KiB before the offset.
    Window,
    /// All of that plus a hash of every byte before the offset.
    Full,
}

/// A parsed, checked configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Directory plus file-name glob.
    pub path: String,
    /// How records are split.
    pub dialect: Dialect,
    /// Whether the first record holds the column names.
    pub has_header: bool,
    /// The files' text encoding.
    pub encoding: TextEncoding,
    /// Explicit column names.
    pub columns: Option<Vec<String>>,
    /// Non-text column kinds by name.
    pub types: BTreeMap<String, ColumnType>,
    /// Header names that repeat.
    pub duplicate_headers: DuplicateHeaders,
    /// How long a file must be unchanged before an unfinished last record is read.
    pub settle: Duration,
    /// What a resume checks.
    pub verify: Verify,
}

impl Config {
    /// Parse and check the configuration JSON.
    pub fn parse(json: &str) -> Result<Self> {
        let value: Value = serde_json::from_str(json)
            .map_err(|e| invalid(format!("the configuration is not valid JSON: {e}")))?;
        let Value::Object(map) = value else {
            return Err(invalid("the configuration must be a JSON object"));
        };
        if let Some(key) = map.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(invalid(format!(
                "unknown key \"{key}\" (known keys: {})",
                KEYS.join(", ")
            )));
        }

        let path = match map.get("path") {
            Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
            Some(_) => return Err(invalid("\"path\" must be a non-empty string")),
            None => return Err(invalid("missing required key \"path\"")),
        };
        let delimiter = match map.get("delimiter") {
            None => b',',
            Some(Value::String(s)) if s == "tab" || s == "\\t" => b'\t',
            Some(v) => single_byte("delimiter", v)?,
        };
        let quote = match map.get("quote") {
            None => Some(b'"'),
            Some(Value::Null) => None,
            Some(v) => Some(single_byte("quote", v)?),
        };
        let escape = match map.get("escape") {
            None | Some(Value::Null) => None,
            Some(v) => Some(single_byte("escape", v)?),
        };
        if quote == Some(delimiter) {
            return Err(invalid("\"quote\" and \"delimiter\" must differ"));
        }
        if escape == Some(delimiter) {
            return Err(invalid("\"escape\" and \"delimiter\" must differ"));
        }
        let max_record_bytes = match map.get("max_record_bytes") {
            None => 1024 * 1024,
            Some(v) => match v.as_u64() {
                Some(n) if (1..=MAX_RECORD_LIMIT).contains(&n) => n as usize,
                _ => {
                    return Err(invalid(format!(
                        "\"max_record_bytes\" must be an integer from 1 to {MAX_RECORD_LIMIT}"
                    )));
                }
            },
        };
        let quotes = match choice(&map, "quotes", &["strict", "lenient"])? {
            Some("lenient") => Quotes::Lenient,
            _ => Quotes::Strict,
        };
        let duplicate_headers = match choice(&map, "duplicate_headers", &["error", "rename"])? {
            Some("rename") => DuplicateHeaders::Rename,
            _ => DuplicateHeaders::Error,
        };
        let verify = match choice(&map, "verify", &["window", "full"])? {
            Some("full") => Verify::Full,
            _ => Verify::Window,
        };
        let settle_seconds = match map.get("settle_seconds") {
            None => DEFAULT_SETTLE_SECONDS,
            Some(v) => match v.as_u64() {
                Some(n) if n <= MAX_SETTLE_SECONDS => n,
                _ => {
                    return Err(invalid(format!(
                        "\"settle_seconds\" must be a whole number of seconds from 0 to \
                         {MAX_SETTLE_SECONDS}, got {v}"
                    )));
                }
            },
        };
        let encoding = match map.get("encoding") {
            None => TextEncoding::Utf8,
            Some(Value::String(s)) => TextEncoding::from_label(s).map_err(invalid)?,
            Some(_) => return Err(invalid("\"encoding\" must be a string")),
        };

        Ok(Self {
            path,
            dialect: Dialect {
                delimiter,
                quote,
                // Escaping the quote with itself is just the doubled-quote rule.
                escape: escape.filter(|&e| Some(e) != quote),
                trim: boolean(&map, "trim", false)?,
                max_record_bytes,
                quotes,
            },
            has_header: boolean(&map, "has_header", true)?,
            encoding,
            columns: columns(&map)?,
            types: types(&map)?,
            duplicate_headers,
            settle: Duration::from_secs(settle_seconds),
            verify,
        })
    }
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::InvalidConfig(msg.into())
}

/// A one-character option that must be a single ASCII byte (it is matched byte-wise).
fn single_byte(key: &str, v: &Value) -> Result<u8> {
    let bad = || {
        invalid(format!(
            "\"{key}\" must be a single ASCII character, got {v}"
        ))
    };
    let s = v.as_str().ok_or_else(bad)?;
    match s.as_bytes() {
        [b] if b.is_ascii() && *b != b'\r' && *b != b'\n' => Ok(*b),
        _ => Err(bad()),
    }
}

/// A key whose value is one of `allowed` strings; `None` when it is absent.
fn choice<'a>(map: &'a Map<String, Value>, key: &str, allowed: &[&str]) -> Result<Option<&'a str>> {
    match map.get(key) {
        None => Ok(None),
        Some(Value::String(s)) if allowed.contains(&s.as_str()) => Ok(Some(s)),
        Some(v) => Err(invalid(format!(
            "\"{key}\" must be {}, got {v}",
            allowed
                .iter()
                .map(|a| format!("\"{a}\""))
                .collect::<Vec<_>>()
                .join(" or ")
        ))),
    }
}

fn boolean(map: &Map<String, Value>, key: &str, default: bool) -> Result<bool> {
    match map.get(key) {
        None => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(v) => Err(invalid(format!("\"{key}\" must be true or false, got {v}"))),
    }
}

fn columns(map: &Map<String, Value>) -> Result<Option<Vec<String>>> {
    let Some(v) = map.get("columns") else {
        return Ok(None);
    };
    let bad = || invalid("\"columns\" must be a non-empty list of strings");
    let items = v.as_array().filter(|a| !a.is_empty()).ok_or_else(bad)?;
    let names = items
        .iter()
        .map(|n| n.as_str().map(str::to_owned).ok_or_else(bad))
        .collect::<Result<Vec<_>>>()?;
    // Names the operator wrote must be usable as they are: no policy renames them.
    if let Some((first, second)) = crate::header::first_duplicate(&names) {
        return Err(invalid(format!(
            "\"columns\" names two columns the same: {:?} (column {}) and {:?} (column {}); \
             names are compared ignoring case",
            names[first],
            first + 1,
            names[second],
            second + 1
        )));
    }
    Ok(Some(names))
}

fn types(map: &Map<String, Value>) -> Result<BTreeMap<String, ColumnType>> {
    let Some(v) = map.get("types") else {
        return Ok(BTreeMap::new());
    };
    let obj = v
        .as_object()
        .ok_or_else(|| invalid("\"types\" must be an object of column name to kind"))?;
    obj.iter()
        .map(|(col, kind)| {
            let t = match kind.as_str() {
                Some("text") => ColumnType::Text,
                Some("integer") => ColumnType::Integer,
                Some("real") => ColumnType::Real,
                _ => {
                    return Err(invalid(format!(
                        "\"types\".\"{col}\" must be \"text\", \"integer\" or \"real\", got {kind} \
                         (other kinds are a transform's job)"
                    )));
                }
            };
            Ok((col.clone(), t))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(json: &str) -> String {
        match Config::parse(json) {
            Err(Error::InvalidConfig(m)) => m,
            other => panic!("expected invalid-config, got {other:?}"),
        }
    }

    #[test]
    fn defaults() {
        let c = Config::parse(r#"{"path": "in/*.csv"}"#).unwrap();
        assert_eq!(c.path, "in/*.csv");
        assert_eq!(c.dialect, Dialect::default());
        assert!(c.has_header);
        assert_eq!(c.encoding, TextEncoding::Utf8);
        assert_eq!(c.columns, None);
        assert!(c.types.is_empty());
        assert_eq!(c.dialect.quotes, Quotes::Strict);
        assert_eq!(c.duplicate_headers, DuplicateHeaders::Error);
        assert_eq!(c.settle, Duration::from_secs(5));
        assert_eq!(c.verify, Verify::Window);
    }

    #[test]
    fn every_key() {
        let c = Config::parse(
            r#"{"path": "/d/x.csv", "delimiter": "tab", "quote": "'", "escape": "\\",
                "has_header": false, "encoding": "latin-1", "columns": ["a", "b"],
                "types": {"a": "integer", "b": "real"}, "trim": true, "max_record_bytes": 10,
                "quotes": "lenient", "duplicate_headers": "rename", "settle_seconds": 0,
                "verify": "full"}"#,
        )
        .unwrap();
        assert_eq!(
            c.dialect,
            Dialect {
                delimiter: b'\t',
                quote: Some(b'\''),
                escape: Some(b'\\'),
                trim: true,
                max_record_bytes: 10,
                quotes: Quotes::Lenient,
            }
        );
        assert_eq!(c.duplicate_headers, DuplicateHeaders::Rename);
        assert_eq!(c.settle, Duration::ZERO);
        assert_eq!(c.verify, Verify::Full);
        assert!(!c.has_header);
        assert_eq!(c.encoding.name(), "windows-1252");
        assert_eq!(c.columns.unwrap(), ["a", "b"]);
        assert_eq!(c.types["a"], ColumnType::Integer);
        for tab in [r#""\t""#, r#""\\t""#] {
            let c = Config::parse(&format!(r#"{{"path": "p", "delimiter": {tab}}}"#)).unwrap();
            assert_eq!(c.dialect.delimiter, b'\t');
        }
        let c = Config::parse(r#"{"path": "p", "quote": null, "escape": "\""}"#).unwrap();
        assert_eq!((c.dialect.quote, c.dialect.escape), (None, Some(b'"')));
        let c = Config::parse(r#"{"path": "p", "escape": "\""}"#).unwrap();
        assert_eq!(
            c.dialect.escape, None,
            "escape = quote means doubled quotes"
        );
    }

    #[test]
    fn rejects_bad_values_naming_the_key() {
        assert!(err(r#"{"path": "p", "delimeter": ";"}"#).contains("unknown key \"delimeter\""));
        assert!(err(r#"{}"#).contains("missing required key \"path\""));
        assert!(err(r#"{"path": "p", "delimiter": ";;"}"#).contains("\"delimiter\""));
        assert!(err(r#"{"path": "p", "delimiter": "§"}"#).contains("ASCII"));
        assert!(err(r#"{"path": "p", "delimiter": "\""}"#).contains("must differ"));
        assert!(err(r#"{"path": "p", "encoding": "ebcdic"}"#).contains("unknown encoding"));
        assert!(err(r#"{"path": "p", "types": {"a": "decimal"}}"#).contains("\"types\".\"a\""));
        assert!(err(r#"{"path": "p", "trim": "yes"}"#).contains("\"trim\""));
        assert!(err(r#"{"path": "p", "columns": []}"#).contains("\"columns\""));
        assert!(err(r#"{"path": "p", "max_record_bytes": 0}"#).contains("max_record_bytes"));
        assert_eq!(
            err(r#"{"path": "p", "quotes": "relaxed"}"#),
            "\"quotes\" must be \"strict\" or \"lenient\", got \"relaxed\""
        );
        assert!(err(r#"{"path": "p", "duplicate_headers": true}"#).contains("\"rename\""));
        assert!(err(r#"{"path": "p", "verify": "all"}"#).contains("\"window\" or \"full\""));
        for bad in ["-1", "1.5", "86401", "\"5\""] {
            let e = err(&format!(r#"{{"path": "p", "settle_seconds": {bad}}}"#));
            assert!(
                e.contains("\"settle_seconds\" must be a whole number"),
                "{e}"
            );
        }
        assert_eq!(
            err(r#"{"path": "p", "columns": ["id", "Name", "name"]}"#),
            "\"columns\" names two columns the same: \"Name\" (column 2) and \"name\" (column 3); \
             names are compared ignoring case"
        );
        assert!(err(r#"{"path": "p", "settel_seconds": 1}"#).contains("unknown key"));
        assert!(err(r#"[1]"#).contains("JSON object"));
        assert!(err(r#"{"path": "#).contains("not valid JSON"));
    }

    #[test]
    fn schema_is_json_listing_every_key() {
        let v: Value = serde_json::from_str(CONFIG_SCHEMA).unwrap();
        let props = v["properties"].as_object().unwrap();
        assert_eq!(props.len(), KEYS.len());
        assert!(KEYS.iter().all(|k| props.contains_key(*k)));
        // The documented defaults and choices are the ones `parse` applies and accepts.
        assert_eq!(props["settle_seconds"]["default"], DEFAULT_SETTLE_SECONDS);
        assert_eq!(props["settle_seconds"]["maximum"], MAX_SETTLE_SECONDS);
        for (key, default) in [
            ("quotes", "strict"),
            ("duplicate_headers", "error"),
            ("verify", "window"),
        ] {
            assert_eq!(props[key]["default"], default, "{key}");
            for choice in props[key]["enum"].as_array().unwrap() {
                let json = format!(r#"{{"path": "p", "{key}": {choice}}}"#);
                assert!(Config::parse(&json).is_ok(), "{json}");
            }
        }
    }
}
