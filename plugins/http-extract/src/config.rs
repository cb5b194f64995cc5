//! The configuration: the pipeline's `extract.config` table, as JSON.
//!
//! Derived with serde and `deny_unknown_fields` at every level, so a typo (`paginte`) is an
//! `invalid-config` naming the key; [`Config::parse`] then checks what serde cannot (pointers,
//! names, the keys that depend on each other).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;
use weir_sdk::{Error, Kind};

/// The plugin's name, as messages start.
pub const NAME: &str = "http-extract";

/// Default cap on one response body.
pub const DEFAULT_MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// JSON Schema of the configuration, returned by `describe`.
pub const CONFIG_SCHEMA: &str = r##"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "http-extract configuration",
  "type": "object",
  "additionalProperties": false,
  "required": ["connection", "resources"],
  "$defs": {
    "pointer": {"type": "string", "description": "A JSON pointer into a record or body (\"/manager/id\"); a plain name (\"updated_at\") means \"/updated_at\"."},
    "kind": {"enum": ["text", "integer", "real", "boolean", "decimal", "date", "timestamp", "json"]}
  },
  "properties": {
    "connection": {"type": "string", "minLength": 1, "description": "The name of a connection in the pipeline's grants.http; requests go to http://<connection>/<path> and the host adds the credentials."},
    "headers": {"type": "object", "additionalProperties": {"type": "string"}, "description": "Extra request headers (never Authorization: the host sends the grant's credentials)."},
    "max_body_bytes": {"type": "integer", "minimum": 1024, "default": 16777216, "description": "A larger response body is bad-data."},
    "resources": {
      "type": "array", "minItems": 1,
      "items": {
        "type": "object",
        "additionalProperties": false,
        "required": ["name", "path"],
        "properties": {
          "name": {"type": "string", "pattern": "^[A-Za-z0-9_-]+$", "description": "The resource's name: its partition id (or the start of it, with a parent)."},
          "path": {"type": "string", "description": "Path under the connection (\"employees\"); \"{param}\" is replaced by the parent's value."},
          "records": {"type": "string", "default": "", "description": "JSON pointer to the array of records in a response body; \"\" when the body is the array."},
          "params": {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]}, "description": "Query parameters of every request."},
          "fields": {"oneOf": [{"const": "infer"}, {"type": "object", "additionalProperties": {"oneOf": [{"$ref": "#/$defs/kind"}, {"type": "object", "additionalProperties": false, "required": ["type"], "properties": {"pointer": {"$ref": "#/$defs/pointer"}, "type": {"$ref": "#/$defs/kind"}}}]}}], "default": "infer", "description": "Columns: name = kind (the record's field of that name) or name = {pointer, type}; \"infer\" types the first page's top-level fields and logs why."},
          "primary_key": {"type": "array", "items": {"type": "string"}, "default": [], "description": "Column names of the key (an upsert load's key); never null."},
          "paginate": {
            "type": "object", "default": {"type": "none"},
            "required": ["type"],
            "description": "none | page_number {page_param=\"page\", size_param, size, start=1} | offset {offset_param=\"offset\", limit_param=\"limit\", limit=100, start=0} | cursor {cursor (pointer), param=\"cursor\"} | next_url {next (pointer)} | link_header | keyset {param=\"after\"} (needs incremental). Every kind stops at an empty page; a repeated request or page is handled by on_repeat.",
            "properties": {"type": {"enum": ["none", "page_number", "offset", "cursor", "next_url", "link_header", "keyset"]}}
          },
          "on_repeat": {"enum": ["fail", "stop"], "default": "fail", "description": "A next cursor or URL already fetched in this pass, or a page identical to the one before: \"fail\" stops the partition as bad-data after the rows before it; \"stop\" ends the pass there with a warning."},
          "incremental": {
            "type": "object", "additionalProperties": false, "required": ["field", "param"],
            "properties": {
              "field": {"$ref": "#/$defs/pointer", "description": "The watermark: a timestamp (RFC 3339) or integer Unix-seconds field of each record."},
              "param": {"type": "string", "description": "The query parameter of the lower bound (\"updated_since\"); the server must return records whose field is >= it."},
              "lookback_seconds": {"type": "integer", "minimum": 0, "default": 0, "description": "Each pass asks from this long before the last watermark, to catch rows committed late with an older timestamp."},
              "start": {"type": "string", "description": "Lower bound of the first pass (RFC 3339); by default the first pass sends no bound."},
              "format": {"enum": ["rfc3339", "unix"], "default": "rfc3339", "description": "How the bound is written in the query."},
              "tie_breaker": {"$ref": "#/$defs/pointer", "description": "Orders records with equal watermarks (default: the single primary-key column's field)."}
            }
          },
          "parent": {
            "type": "object", "additionalProperties": false, "required": ["resource", "key", "param"],
            "properties": {
              "resource": {"type": "string", "description": "Another resource of this config; one partition per record of it."},
              "key": {"$ref": "#/$defs/pointer", "description": "The parent record's value to pass (\"/id\")."},
              "param": {"type": "string", "description": "Query parameter for the value, or {param} in path."}
            }
          },
          "deleted": {
            "type": "object", "additionalProperties": false, "required": ["field"],
            "properties": {
              "field": {"$ref": "#/$defs/pointer", "description": "A tombstone flag (with value) or a deleted-at timestamp (without)."},
              "value": {"description": "The flag's value meaning deleted (true); deleted_at is then the time the record was seen."},
              "column": {"type": "string", "default": "deleted_at", "description": "The timestamp column that marks a deleted row."}
            }
          },
          "extract": {"type": "boolean", "default": true, "description": "false: only a parent of other resources, not a partition of its own."}
        }
      }
    }
  }
}"##;

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The granted connection's name: the authority of every request.
    pub connection: String,
    /// Extra request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Cap on one response body.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// The resources, in partition order.
    pub resources: Vec<Resource>,
}

fn default_max_body_bytes() -> usize {
    DEFAULT_MAX_BODY_BYTES
}

fn yes() -> bool {
    true
}

/// One REST resource (a collection of records).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resource {
    /// Partition id, or its prefix with a parent.
    pub name: String,
    /// Path under the connection.
    pub path: String,
    /// Pointer to the records array.
    #[serde(default)]
    pub records: String,
    /// Query parameters of every request, rendered as text.
    #[serde(default, deserialize_with = "params")]
    pub params: Vec<(String, String)>,
    /// Declared columns, or inference.
    #[serde(default)]
    pub fields: Fields,
    /// Key columns.
    #[serde(default)]
    pub primary_key: Vec<String>,
    /// How pages follow each other.
    #[serde(default)]
    pub paginate: Paginate,
    /// What a repeated page does.
    #[serde(default)]
    pub on_repeat: OnRepeat,
    /// The watermark, for incremental passes.
    pub incremental: Option<Incremental>,
    /// Partitions from another resource's records.
    pub parent: Option<Parent>,
    /// Tombstones.
    pub deleted: Option<Deleted>,
    /// Whether the resource is a partition itself.
    #[serde(default = "yes")]
    pub extract: bool,
}

/// `fields`: declared columns (in the order received) or `"infer"`.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Fields {
    /// Type the first page's top-level fields.
    #[default]
    Infer,
    /// Name → where and what.
    Declared(Vec<Field>),
}

/// One declared column.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// Column name.
    pub name: String,
    /// Where in the record.
    pub pointer: String,
    /// Column kind.
    pub kind: Kind,
}

/// How the pages of a resource follow each other.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Paginate {
    /// One request.
    #[default]
    None,
    /// `?page=N&per_page=S`.
    PageNumber {
        /// Page parameter.
        #[serde(default = "page_param")]
        page_param: String,
        /// Page-size parameter, if sent.
        size_param: Option<String>,
        /// Page size, if sent.
        size: Option<u32>,
        /// The first page's number.
        #[serde(default = "one")]
        start: u64,
    },
    /// `?offset=N&limit=L`; the offset grows by the records received.
    Offset {
        /// Offset parameter.
        #[serde(default = "offset_param")]
        offset_param: String,
        /// Limit parameter.
        #[serde(default = "limit_param")]
        limit_param: String,
        /// Page size.
        #[serde(default = "hundred")]
        limit: u32,
        /// The first offset.
        #[serde(default)]
        start: u64,
    },
    /// A token in the body, sent back as a parameter.
    Cursor {
        /// Pointer to the next token in the body.
        cursor: String,
        /// Parameter that carries it.
        #[serde(default = "cursor_param")]
        param: String,
    },
    /// The next page's URL in the body.
    NextUrl {
        /// Pointer to it.
        next: String,
    },
    /// RFC 8288 `Link: <…>; rel="next"`.
    LinkHeader,
    /// The next page asks from the last record's watermark and key.
    Keyset {
        /// Parameter of the last record's key.
        #[serde(default = "after_param")]
        param: String,
    },
}

impl Paginate {
    /// The kind's name, as the config spells it.
    pub fn kind(&self) -> &'static str {
        match self {
            Paginate::None => "none",
            Paginate::PageNumber { .. } => "page_number",
            Paginate::Offset { .. } => "offset",
            Paginate::Cursor { .. } => "cursor",
            Paginate::NextUrl { .. } => "next_url",
            Paginate::LinkHeader => "link_header",
            Paginate::Keyset { .. } => "keyset",
        }
    }
}

fn page_param() -> String {
    "page".into()
}
fn offset_param() -> String {
    "offset".into()
}
fn limit_param() -> String {
    "limit".into()
}
fn cursor_param() -> String {
    "cursor".into()
}
fn after_param() -> String {
    "after".into()
}
fn one() -> u64 {
    1
}
fn hundred() -> u32 {
    100
}

/// What a repeated request or page does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OnRepeat {
    /// `bad-data` after the rows before it.
    #[default]
    Fail,
    /// End the pass with a warning.
    Stop,
}

/// The watermark of incremental passes.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Incremental {
    /// Pointer to the watermark field.
    pub field: String,
    /// Query parameter of the lower bound.
    pub param: String,
    /// How far before the watermark a pass starts.
    #[serde(default)]
    pub lookback_seconds: u64,
    /// The first pass's lower bound.
    pub start: Option<String>,
    /// How the bound is written.
    #[serde(default)]
    pub format: SinceFormat,
    /// Pointer to the tie-breaker.
    pub tie_breaker: Option<String>,
}

/// How a lower bound is written in the query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SinceFormat {
    /// `2026-01-31T08:00:00Z`.
    #[default]
    Rfc3339,
    /// Seconds since 1970.
    Unix,
}

/// Partitions from another resource.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Parent {
    /// The parent resource's name.
    pub resource: String,
    /// Pointer to the value in each parent record.
    pub key: String,
    /// Query parameter (or `{param}` in the path).
    pub param: String,
}

/// Tombstones.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deleted {
    /// Pointer to the flag or the timestamp.
    pub field: String,
    /// The flag value meaning deleted; `None`: the field is a deleted-at timestamp.
    pub value: Option<Value>,
    /// The column.
    #[serde(default = "deleted_column")]
    pub column: String,
}

fn deleted_column() -> String {
    "deleted_at".into()
}

fn params<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<(String, String)>, D::Error> {
    let map = serde_json::Map::<String, Value>::deserialize(d)?;
    map.into_iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k, s)),
            Value::Number(n) => Ok((k, n.to_string())),
            Value::Bool(b) => Ok((k, b.to_string())),
            _ => Err(serde::de::Error::custom(format!(
                "params.{k}: must be a string, number or boolean"
            ))),
        })
        .collect()
}

impl<'de> Deserialize<'de> for Fields {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        match Value::deserialize(d)? {
            Value::String(s) if s == "infer" => Ok(Fields::Infer),
            Value::Object(map) => map
                .into_iter()
                .map(|(name, spec)| field(name, spec).map_err(D::Error::custom))
                .collect::<Result<Vec<_>, _>>()
                .map(Fields::Declared),
            _ => Err(D::Error::custom(
                "fields: expected \"infer\" or a table of name = kind",
            )),
        }
    }
}

fn field(name: String, spec: Value) -> Result<Field, String> {
    let kind = |v: &Value| -> Result<Kind, String> {
        let s = v
            .as_str()
            .ok_or_else(|| format!("fields.{name}: the type must be a string"))?;
        let kind: Kind = s.parse().map_err(|e| format!("fields.{name}: {e}"))?;
        if kind == Kind::Blob {
            return Err(format!(
                "fields.{name}: JSON has no blobs; use text or json"
            ));
        }
        Ok(kind)
    };
    match &spec {
        Value::String(_) => Ok(Field {
            pointer: pointer(&name),
            kind: kind(&spec)?,
            name,
        }),
        Value::Object(map) => {
            if let Some(k) = map.keys().find(|k| *k != "pointer" && *k != "type") {
                return Err(format!(
                    "fields.{name}: unknown key `{k}`, expected `pointer` or `type`"
                ));
            }
            let ty = map
                .get("type")
                .ok_or_else(|| format!("fields.{name}: missing `type`"))?;
            let ptr = match map.get("pointer") {
                None => pointer(&name),
                Some(Value::String(p)) => pointer(p),
                Some(_) => return Err(format!("fields.{name}: `pointer` must be a string")),
            };
            Ok(Field {
                kind: kind(ty)?,
                pointer: ptr,
                name,
            })
        }
        _ => Err(format!(
            "fields.{name}: expected a kind (\"integer\") or {{ pointer, type }}"
        )),
    }
}

/// A config pointer as a JSON pointer: `"updated_at"` → `"/updated_at"`; `""` and `"/a/b"`
/// as they are. A plain name is one key, so a `/` or `~` in it is escaped.
pub fn pointer(p: &str) -> String {
    if p.is_empty() || p.starts_with('/') {
        p.to_owned()
    } else {
        format!("/{}", p.replace('~', "~0").replace('/', "~1"))
    }
}

fn invalid(message: impl std::fmt::Display) -> Error {
    Error::InvalidConfig(format!("{NAME}: {message}"))
}

impl Config {
    /// Parse and check the configuration JSON.
    pub fn parse(json: &str) -> Result<Self, Error> {
        let mut config: Config = weir_sdk::parse_config(NAME, json)?;
        config.check()?;
        for r in &mut config.resources {
            r.records = pointer(&r.records);
            if let Some(inc) = &mut r.incremental {
                inc.field = pointer(&inc.field);
                inc.tie_breaker = inc.tie_breaker.as_deref().map(pointer);
            }
            if let Some(p) = &mut r.parent {
                p.key = pointer(&p.key);
            }
            if let Some(d) = &mut r.deleted {
                d.field = pointer(&d.field);
            }
            match &mut r.paginate {
                Paginate::Cursor { cursor, .. } => *cursor = pointer(cursor),
                Paginate::NextUrl { next } => *next = pointer(next),
                _ => {}
            }
        }
        Ok(config)
    }

    /// The resource called `name`.
    pub fn resource(&self, name: &str) -> Option<&Resource> {
        self.resources.iter().find(|r| r.name == name)
    }

    fn check(&self) -> Result<(), Error> {
        let authority_ok = !self.connection.is_empty()
            && self
                .connection
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
        if !authority_ok {
            return Err(invalid(format!(
                "connection {:?}: must be the name of a connection in grants.http \
                 (letters, digits, - _ .)",
                self.connection
            )));
        }
        if let Some(name) = self
            .headers
            .keys()
            .find(|h| h.eq_ignore_ascii_case("authorization"))
        {
            return Err(invalid(format!(
                "headers.{name}: the host sends the grant's credentials; a plugin may not set them"
            )));
        }
        if self.max_body_bytes < 1024 {
            return Err(invalid("max_body_bytes: must be at least 1024"));
        }
        if self.resources.is_empty() {
            return Err(invalid("resources: at least one is needed"));
        }
        for (i, r) in self.resources.iter().enumerate() {
            let at = format!("resources[{i}] ({})", r.name);
            let name_ok = !r.name.is_empty()
                && r.name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !name_ok {
                return Err(invalid(format!(
                    "{at}: name: letters, digits, - and _ only (it becomes the partition id)"
                )));
            }
            if self.resources[..i].iter().any(|o| o.name == r.name) {
                return Err(invalid(format!("{at}: name: used twice")));
            }
            if r.path.contains("://") {
                return Err(invalid(format!(
                    "{at}: path: a path under the connection, not a URL (the grant holds the URL)"
                )));
            }
            if let Fields::Declared(fields) = &r.fields {
                if fields.is_empty() {
                    return Err(invalid(format!(
                        "{at}: fields: empty; declare some or \"infer\""
                    )));
                }
                for key in &r.primary_key {
                    if !fields.iter().any(|f| &f.name == key) {
                        return Err(invalid(format!(
                            "{at}: primary_key: `{key}` is not one of the fields"
                        )));
                    }
                }
            }
            if let Some(d) = &r.deleted {
                let clash = matches!(&r.fields, Fields::Declared(f) if f.iter().any(|f| f.name == d.column));
                if clash {
                    return Err(invalid(format!(
                        "{at}: deleted.column: `{}` is also a field; name the column otherwise",
                        d.column
                    )));
                }
            }
            match (&r.paginate, &r.incremental) {
                (Paginate::Keyset { .. }, None) => {
                    return Err(invalid(format!(
                        "{at}: paginate: keyset pages by the watermark: it needs `incremental`"
                    )));
                }
                (Paginate::Keyset { .. }, Some(inc))
                    if inc.tie_breaker.is_none() && r.primary_key.len() != 1 =>
                {
                    return Err(invalid(format!(
                        "{at}: paginate: keyset needs incremental.tie_breaker \
                         (or a primary_key of one column)"
                    )));
                }
                (
                    Paginate::PageNumber {
                        size, size_param, ..
                    },
                    _,
                ) if size.is_some() != size_param.is_some() => {
                    return Err(invalid(format!(
                        "{at}: paginate: size and size_param go together"
                    )));
                }
                (Paginate::Offset { limit: 0, .. }, _) => {
                    return Err(invalid(format!("{at}: paginate: limit must be at least 1")));
                }
                _ => {}
            }
            if let Some(start) = r.incremental.as_ref().and_then(|i| i.start.as_ref())
                && crate::time::Instant::parse(start).is_none()
            {
                return Err(invalid(format!(
                    "{at}: incremental.start: {start:?} is not an RFC 3339 timestamp"
                )));
            }
            if let Some(p) = &r.parent {
                let Some(parent) = self.resource(&p.resource) else {
                    return Err(invalid(format!(
                        "{at}: parent.resource: no resource named `{}`",
                        p.resource
                    )));
                };
                if parent.parent.is_some() || parent.name == r.name {
                    return Err(invalid(format!(
                        "{at}: parent.resource: `{}` has a parent itself; one level only",
                        p.resource
                    )));
                }
            }
        }
        if self.resources.iter().all(|r| !r.extract) {
            return Err(invalid("resources: every one says extract = false"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Config, Error> {
        Config::parse(json)
    }

    fn message(e: Error) -> String {
        match e {
            Error::InvalidConfig(m) => m,
            other => panic!("not invalid-config: {other:?}"),
        }
    }

    #[test]
    fn a_full_config_parses_with_its_defaults() {
        let c = parse(
            r#"{"connection": "hr", "resources": [
                {"name": "org-units", "path": "org-units", "extract": false,
                 "paginate": {"type": "cursor", "cursor": "meta/next"}},
                {"name": "employees", "path": "employees", "records": "data",
                 "params": {"status": "active", "per": 5, "x": true},
                 "fields": {"id": "integer", "manager": {"pointer": "/manager/id", "type": "integer"}},
                 "primary_key": ["id"],
                 "paginate": {"type": "page_number", "size_param": "per_page", "size": 100},
                 "incremental": {"field": "updated_at", "param": "updated_since", "lookback_seconds": 60},
                 "parent": {"resource": "org-units", "key": "id", "param": "org_unit"},
                 "deleted": {"field": "deleted", "value": true}}
            ]}"#,
        )
        .unwrap();
        assert_eq!(c.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
        let org = &c.resources[0];
        assert_eq!(org.fields, Fields::Infer);
        assert!(!org.extract);
        assert_eq!(
            org.paginate,
            Paginate::Cursor {
                cursor: "/meta~1next".into(),
                param: "cursor".into()
            },
            "a plain name is one key"
        );
        let e = &c.resources[1];
        assert_eq!(e.records, "/data");
        assert_eq!(
            e.params,
            vec![
                ("per".to_owned(), "5".to_owned()),
                ("status".to_owned(), "active".to_owned()),
                ("x".to_owned(), "true".to_owned())
            ]
        );
        let Fields::Declared(fields) = &e.fields else {
            panic!("declared")
        };
        assert_eq!(fields[1].pointer, "/manager/id");
        assert_eq!(fields[0].pointer, "/id");
        assert_eq!(
            e.paginate,
            Paginate::PageNumber {
                page_param: "page".into(),
                size_param: Some("per_page".into()),
                size: Some(100),
                start: 1
            }
        );
        let inc = e.incremental.as_ref().unwrap();
        assert_eq!(
            (inc.field.as_str(), inc.lookback_seconds),
            ("/updated_at", 60)
        );
        assert_eq!(inc.format, SinceFormat::Rfc3339);
        assert_eq!(e.parent.as_ref().unwrap().key, "/id");
        let d = e.deleted.as_ref().unwrap();
        assert_eq!(
            (d.field.as_str(), d.column.as_str()),
            ("/deleted", "deleted_at")
        );
        assert_eq!(d.value, Some(Value::Bool(true)));
    }

    #[test]
    fn typos_and_contradictions_are_invalid_config() {
        let base = |resource: &str| format!(r#"{{"connection": "hr", "resources": [{resource}]}}"#);
        for (json, expected) in [
            (
                base(r#"{"name": "e", "path": "e", "paginte": {}}"#),
                "unknown field `paginte`",
            ),
            (
                base(r#"{"name": "e", "path": "e", "paginate": {"type": "pages"}}"#),
                "unknown variant `pages`",
            ),
            (
                base(r#"{"name": "e", "path": "e", "paginate": {"type": "cursor", "cursor": "/c", "parm": "x"}}"#),
                "unknown field `parm`",
            ),
            (
                base(r#"{"name": "e", "path": "e", "fields": {"id": "int"}}"#),
                "fields.id: unknown kind \"int\"",
            ),
            (
                base(r#"{"name": "e", "path": "e", "fields": {"id": {"type": "integer", "ptr": "/x"}}}"#),
                "fields.id: unknown key `ptr`",
            ),
            (
                base(r#"{"name": "e", "path": "e", "fields": {"id": "integer"}, "primary_key": ["key"]}"#),
                "primary_key: `key` is not one of the fields",
            ),
            (
                base(r#"{"name": "e", "path": "e", "paginate": {"type": "keyset"}}"#),
                "keyset pages by the watermark",
            ),
            (
                base(r#"{"name": "e", "path": "https://hr.example.com/e"}"#),
                "not a URL",
            ),
            (
                base(r#"{"name": "e f", "path": "e"}"#),
                "letters, digits",
            ),
            (
                base(r#"{"name": "e", "path": "e", "parent": {"resource": "x", "key": "id", "param": "p"}}"#),
                "no resource named `x`",
            ),
            (
                base(r#"{"name": "e", "path": "e", "incremental": {"field": "u", "param": "s", "start": "yesterday"}}"#),
                "is not an RFC 3339 timestamp",
            ),
            (
                base(r#"{"name": "e", "path": "e", "params": {"a": [1]}}"#),
                "params.a: must be a string",
            ),
            (
                r#"{"connection": "hr", "headers": {"Authorization": "Bearer x"}, "resources": [{"name": "e", "path": "e"}]}"#.into(),
                "a plugin may not set them",
            ),
            (
                r#"{"connection": "https://hr", "resources": [{"name": "e", "path": "e"}]}"#.into(),
                "must be the name of a connection",
            ),
        ] {
            let m = message(parse(&json).unwrap_err());
            assert!(m.contains(expected), "{json}\n→ {m}");
            assert!(m.starts_with("http-extract: "), "{m}");
        }
    }

    #[test]
    fn the_schema_is_json() {
        let v: Value = serde_json::from_str(CONFIG_SCHEMA).unwrap();
        assert_eq!(v["properties"]["max_body_bytes"]["default"], 16777216);
    }

    #[test]
    fn pointers_from_names() {
        assert_eq!(pointer("updated_at"), "/updated_at");
        assert_eq!(pointer("a/b~c"), "/a~1b~0c");
        assert_eq!(pointer("/a/b"), "/a/b");
        assert_eq!(pointer(""), "");
    }
}
