//! The configuration, checked against the stream's schema when the sink opens (nothing is
//! sent then: `weir validate` opens loaders too).

use serde::Deserialize;
use weir_sdk::{Kind, Schema};

/// The plugin's configuration (a pipeline's `load.config`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    /// The `grants.http` connection of the cluster.
    connection: String,
    /// The index (or alias) documents go to.
    index: String,
    /// Columns whose values make the document `_id`; default: the stream's primary key.
    key: Option<Vec<String>>,
    /// A column whose value grows with every change of a row (integer, date or timestamp):
    /// the external version. Default: the row's source position.
    version: Option<String>,
    /// A tombstone column: a row where it is set (not null, not false/0) deletes its document.
    deleted_by: Option<String>,
    /// The index's mappings, as sent when it is created (default: derived from the schema).
    mappings: Option<serde_json::Map<String, serde_json::Value>>,
    /// The index's settings, as sent when it is created.
    settings: Option<serde_json::Map<String, serde_json::Value>>,
    /// Create the index when it is missing (default true). False: it must exist, or a
    /// template on the cluster must create it on the first write.
    #[serde(default = "yes")]
    create_index: bool,
    /// At most this many documents per `_bulk` request (default 1000).
    #[serde(default = "default_max_docs")]
    bulk_max_docs: usize,
    /// At most this many bytes per `_bulk` request body (default 5 MiB); a single larger
    /// document goes alone.
    #[serde(default = "default_max_bytes")]
    bulk_max_bytes: usize,
    /// `refresh` of each bulk request: `false` (default), `true` or `wait_for`.
    #[serde(default)]
    refresh: Refresh,
}

fn yes() -> bool {
    true
}

fn default_max_docs() -> usize {
    1000
}

fn default_max_bytes() -> usize {
    5 * 1024 * 1024
}

/// When written documents become visible to searches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Refresh {
    /// At the cluster's next periodic refresh (fastest; what bulk loads should use).
    #[default]
    False,
    /// At once, before the request returns.
    True,
    /// The request returns after the next refresh.
    WaitFor,
}

impl Refresh {
    pub(crate) fn query(self) -> &'static str {
        match self {
            Refresh::False => "",
            Refresh::True => "?refresh=true",
            Refresh::WaitFor => "?refresh=wait_for",
        }
    }
}

/// JSON Schema of [`RawConfig`], for `describe`. `x-weir-delivery` tells the host that every
/// write carries an external version the index enforces, so a replayed batch changes nothing:
/// `weir validate` states this destination as exactly-once.
pub(crate) const CONFIG_SCHEMA: &str = r##"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "opensearch-load",
  "x-weir-delivery": "external-version",
  "description": "Rows as documents of an OpenSearch or Elasticsearch index through the _bulk API: _id from the key, version_type=external (a replayed batch never overwrites newer data), tombstones as deletes.",
  "type": "object",
  "additionalProperties": false,
  "required": ["connection", "index"],
  "properties": {
    "connection": { "type": "string", "description": "the grants.http connection of the cluster" },
    "index": { "type": "string", "description": "index or alias (lowercase)" },
    "key": { "type": "array", "items": { "type": "string" }, "minItems": 1, "description": "columns of the document _id (default: the stream's primary key)" },
    "version": { "type": "string", "description": "integer, date or timestamp column that grows with every change (default: the row's source position)" },
    "deleted_by": { "type": "string", "description": "tombstone column: set (not null/false) deletes the document" },
    "mappings": { "type": "object", "description": "mappings of the index when created (default: derived from the schema, dynamic strict)" },
    "settings": { "type": "object", "description": "settings of the index when created" },
    "create_index": { "type": "boolean", "default": true, "description": "create the index when missing; false: it or a template must exist" },
    "bulk_max_docs": { "type": "integer", "minimum": 1, "default": 1000 },
    "bulk_max_bytes": { "type": "integer", "minimum": 1024, "default": 5242880 },
    "refresh": { "enum": ["false", "true", "wait_for"], "default": "false" }
  }
}"##;

/// Where a document's external version comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VersionSource {
    /// The row's source position (its line, for files).
    Position,
    /// An integer column (at least 0).
    Integer(usize),
    /// A date column: days since 1970-01-01.
    Date(usize),
    /// A timestamp column: microseconds since 1970-01-01T00:00:00Z.
    Timestamp(usize),
}

/// The configuration resolved against the schema.
#[derive(Debug)]
pub(crate) struct Config {
    pub index: String,
    /// Key columns (indexes) and names.
    pub key: Vec<(usize, String)>,
    pub version: VersionSource,
    /// The version column's name, when there is one (for messages).
    pub version_column: Option<String>,
    pub deleted_by: Option<usize>,
    pub mappings: Option<serde_json::Map<String, serde_json::Value>>,
    pub settings: Option<serde_json::Map<String, serde_json::Value>>,
    pub create_index: bool,
    pub bulk_max_docs: usize,
    pub bulk_max_bytes: usize,
    pub refresh: Refresh,
}

impl RawConfig {
    /// The connection's name, before the rest is checked.
    pub(crate) fn connection(&self) -> &str {
        &self.connection
    }

    /// Check the configuration against `schema`; errors name the key and say what is allowed.
    pub(crate) fn resolve(self, schema: &Schema) -> Result<Config, String> {
        check_index_name(&self.index)?;
        if self.connection.is_empty() {
            return Err("connection: name a grants.http connection of this pipeline".into());
        }
        let column = |key: &str, name: &str| {
            schema.column_index(name).ok_or_else(|| {
                format!(
                    "{key}: no column `{name}` in the stream; available: {}",
                    schema.column_list()
                )
            })
        };
        let key_names = match self.key {
            Some(names) if !names.is_empty() => names,
            Some(_) => return Err("key: list at least one column".into()),
            None if !schema.primary_key.is_empty() => schema.primary_key.clone(),
            None => {
                return Err(format!(
                    "key: the stream has no primary key; name the columns of the document _id (key = [\"id\"]) so that a batch sent again replaces its documents instead of adding copies; available: {}",
                    schema.column_list()
                ));
            }
        };
        let mut key = Vec::with_capacity(key_names.len());
        for name in key_names {
            let index = column("key", &name)?;
            if matches!(
                schema.columns[index].kind,
                Kind::Blob | Kind::Real | Kind::Json
            ) {
                return Err(format!(
                    "key: column `{name}` is {}; a key must be text, integer, decimal, date, timestamp or boolean",
                    schema.columns[index].kind
                ));
            }
            key.push((index, name));
        }
        let version = match &self.version {
            None => VersionSource::Position,
            Some(name) => {
                let index = column("version", name)?;
                match schema.columns[index].kind {
                    Kind::Integer => VersionSource::Integer(index),
                    Kind::Date => VersionSource::Date(index),
                    Kind::Timestamp => VersionSource::Timestamp(index),
                    other => {
                        return Err(format!(
                            "version: column `{name}` is {other}; the version must be an integer, date or timestamp column that grows with every change of a row"
                        ));
                    }
                }
            }
        };
        let deleted_by = self
            .deleted_by
            .as_deref()
            .map(|name| column("deleted_by", name))
            .transpose()?;
        if self.bulk_max_docs == 0 {
            return Err("bulk_max_docs: must be at least 1".into());
        }
        if self.bulk_max_bytes < 1024 {
            return Err("bulk_max_bytes: must be at least 1024".into());
        }
        if self.mappings.is_some() && !self.create_index {
            return Err(
                "mappings: only used when the plugin creates the index; remove it or set create_index = true"
                    .into(),
            );
        }
        Ok(Config {
            index: self.index,
            key,
            version,
            version_column: self.version,
            deleted_by,
            mappings: self.mappings,
            settings: self.settings,
            create_index: self.create_index,
            bulk_max_docs: self.bulk_max_docs,
            bulk_max_bytes: self.bulk_max_bytes,
            refresh: self.refresh,
        })
    }
}

/// OpenSearch's and Elasticsearch's rules for index names, so a bad one fails at `weir
/// validate` instead of on the first batch.
fn check_index_name(name: &str) -> Result<(), String> {
    let problem = if name.is_empty() {
        "is empty"
    } else if name.len() > 255 {
        "is longer than 255 bytes"
    } else if name == "." || name == ".." {
        "cannot be . or .."
    } else if name.starts_with(['-', '_', '+']) {
        "cannot start with -, _ or +"
    } else if name.chars().any(|c| c.is_uppercase()) {
        "must be lowercase"
    } else if name.chars().any(|c| {
        matches!(
            c,
            '\\' | '/' | '*' | '?' | '"' | '<' | '>' | '|' | ' ' | ',' | '#' | ':'
        ) || c.is_control()
    }) {
        r#"cannot contain \ / * ? " < > | , # : or spaces"#
    } else {
        return Ok(());
    };
    Err(format!("index: {name:?} {problem}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_sdk::Column;

    fn schema() -> Schema {
        Schema {
            columns: vec![
                Column::new("id", Kind::Integer, false),
                Column::new("name", Kind::Text, true),
                Column::new("updated_at", Kind::Timestamp, true),
                Column::new("deleted_at", Kind::Timestamp, true),
                Column::new("score", Kind::Real, true),
            ],
            primary_key: vec!["id".into()],
        }
    }

    fn resolve(json: &str) -> Result<Config, String> {
        let raw: RawConfig = serde_json::from_str(json).map_err(|e| e.to_string())?;
        raw.resolve(&schema())
    }

    #[test]
    fn the_schema_declares_external_versions_to_the_host() {
        let schema: serde_json::Value = serde_json::from_str(CONFIG_SCHEMA).unwrap();
        assert_eq!(schema["x-weir-delivery"], "external-version");
    }

    #[test]
    fn defaults_take_the_primary_key_and_the_position() {
        let c = resolve(r#"{"connection": "search", "index": "patients"}"#).unwrap();
        assert_eq!(c.key, [(0, "id".to_owned())]);
        assert_eq!(c.version, VersionSource::Position);
        assert_eq!((c.bulk_max_docs, c.bulk_max_bytes), (1000, 5 * 1024 * 1024));
        assert_eq!((c.create_index, c.refresh), (true, Refresh::False));
        let c = resolve(
            r#"{"connection": "s", "index": "p", "key": ["name", "id"], "version": "updated_at",
                "deleted_by": "deleted_at", "refresh": "wait_for"}"#,
        )
        .unwrap();
        assert_eq!(c.key.iter().map(|k| k.0).collect::<Vec<_>>(), [1, 0]);
        assert_eq!(c.version, VersionSource::Timestamp(2));
        assert_eq!(
            (c.deleted_by, c.refresh.query()),
            (Some(3), "?refresh=wait_for")
        );
    }

    #[test]
    fn mistakes_name_the_key_and_what_is_allowed() {
        for (json, message) in [
            (
                r#"{"connection": "s", "index": "Patients"}"#,
                r#"index: "Patients" must be lowercase"#,
            ),
            (r#"{"connection": "s", "index": "a/b"}"#, "cannot contain"),
            (r#"{"connection": "s", "index": "_x"}"#, "cannot start with"),
            (
                r#"{"connection": "", "index": "p"}"#,
                "connection: name a grants.http connection",
            ),
            (
                r#"{"connection": "s", "index": "p", "key": ["nope"]}"#,
                "key: no column `nope` in the stream; available: id, name",
            ),
            (
                r#"{"connection": "s", "index": "p", "key": ["score"]}"#,
                "key: column `score` is real",
            ),
            (
                r#"{"connection": "s", "index": "p", "version": "name"}"#,
                "version: column `name` is text; the version must be an integer, date or timestamp",
            ),
            (
                r#"{"connection": "s", "index": "p", "deleted_by": "gone"}"#,
                "deleted_by: no column `gone`",
            ),
            (
                r#"{"connection": "s", "index": "p", "bulk_max_bytes": 10}"#,
                "bulk_max_bytes: must be at least 1024",
            ),
            (
                r#"{"connection": "s", "index": "p", "create_index": false, "mappings": {}}"#,
                "mappings: only used when the plugin creates the index",
            ),
            (
                r#"{"connection": "s", "index": "p", "refresh": "sometimes"}"#,
                "unknown variant `sometimes`",
            ),
        ] {
            let err = resolve(json).map(|_| ()).unwrap_err();
            assert!(err.contains(message), "{json}\n{err}");
        }
        let no_key = Schema {
            primary_key: vec![],
            ..schema()
        };
        let raw: RawConfig = serde_json::from_str(r#"{"connection": "s", "index": "p"}"#).unwrap();
        let err = raw.resolve(&no_key).unwrap_err();
        assert!(
            err.starts_with("key: the stream has no primary key"),
            "{err}"
        );
    }
}
