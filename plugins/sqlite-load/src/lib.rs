//! `sqlite-load`: append or upsert rows into a table of a granted database — SQLite or
//! PostgreSQL, whichever the grant is (`dialect()`) — optionally with a full-text index of some
//! columns.
//!
//! A write-plan loader: `open` inspects the table through the host's `sql` import (reading
//! only) and returns a declarative plan: the columns, the key, the migrations (create the
//! table, add missing columns) and the full-text columns. The host applies the migrations and
//! writes every batch itself inside the commit transaction, so rows never enter this plugin.

mod plan;

use serde::Deserialize;
use weir_sdk::sql::{Connection, Dialect};
use weir_sdk::{Error, Loader, PluginInfo, Schema, Value, WritePlan};

use crate::plan::{ColumnInfo, ExistingTable};

const NAME: &str = "sqlite-load";

/// How rows are written.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Mode {
    /// Plain inserts.
    #[default]
    Append,
    /// Insert, or update the row with the same key: idempotent, so re-running a file is safe.
    Upsert,
}

/// The plugin's configuration (one entry of a pipeline's `load`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SqliteLoadConfig {
    /// Name of the granted database (a key of the pipeline's `grants.databases`).
    database: String,
    /// Target table; created when missing.
    table: String,
    #[serde(default)]
    mode: Mode,
    /// Upsert key columns; defaults to the stream schema's primary key.
    key: Option<Vec<String>>,
    /// Text columns kept in an SQLite FTS5 index (`<table>_fts`) in the same transaction as
    /// the rows, searchable with `MATCH`.
    #[serde(default)]
    fts: Vec<String>,
    /// A tombstone column (upsert only): a row where it holds a value other than null or false
    /// deletes the table's row with its key instead of being written.
    deleted_by: Option<String>,
}

const CONFIG_SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "sqlite-load",
  "type": "object",
  "additionalProperties": false,
  "required": ["database", "table"],
  "properties": {
    "database": { "type": "string", "minLength": 1, "description": "granted database (a key of grants.databases)" },
    "table": { "type": "string", "minLength": 1, "description": "target table, created when missing, missing columns added" },
    "mode": { "enum": ["append", "upsert"], "default": "append", "description": "plain inserts, or insert-or-update by key" },
    "key": { "type": "array", "items": { "type": "string" }, "minItems": 1, "uniqueItems": true, "description": "upsert key columns (default: the stream's primary key)" },
    "fts": { "type": "array", "items": { "type": "string" }, "uniqueItems": true, "default": [], "description": "text columns kept in an FTS5 full-text index <table>_fts, in the rows' own transaction" },
    "deleted_by": { "type": "string", "minLength": 1, "description": "upsert only: a tombstone column (e.g. deleted_at); a row where it is set (not null, not false) deletes the row with its key" }
  }
}"#;

/// The plugin.
pub struct SqliteLoad;

impl Loader for SqliteLoad {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: NAME.to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            description:
                "append or upsert rows into a table of a granted SQLite or PostgreSQL database"
                    .to_owned(),
            config_schema: CONFIG_SCHEMA.to_owned(),
        }
    }

    fn open(config: &str, schema: Schema) -> Result<WritePlan, Error> {
        let config: SqliteLoadConfig = weir_sdk::parse_config(NAME, config)?;
        let (database, table) = (&config.database, &config.table);
        let db = Connection::open(database)
            .map_err(|e| e.context(format_args!("{NAME}: cannot open database `{database}`")))?;
        let existing = match db.dialect() {
            Dialect::Postgresql => inspect_postgres(&db, table),
            _ => inspect(&db, table),
        }
        .map_err(|e| {
            e.context(format_args!(
                "{NAME}: cannot inspect table `{table}` in `{database}`"
            ))
        })?;
        let plan = plan::plan(&config, &schema, existing.as_ref())?;
        for migration in &plan.migrations {
            let what = match migration {
                weir_sdk::Migration::CreateTable => format!("create table `{table}`"),
                weir_sdk::Migration::AddColumn(c) => {
                    format!("add column `{}` to `{table}`", c.name)
                }
            };
            weir_sdk::log::debug(&format!("{NAME}: will {what} with the first batch"));
        }
        Ok(plan)
    }
}

/// The table's columns and unique keys, or `None` when it does not exist. Uses the pragmas'
/// table-valued forms so the table name is a bound parameter, not spliced SQL.
fn inspect(db: &Connection, table: &str) -> Result<Option<ExistingTable>, Error> {
    let name = [Value::Text(table.to_owned())];
    let info = db.query(
        r#"SELECT name, pk, "notnull", type FROM pragma_table_info(?1)"#,
        &name,
    )?;
    if info.rows.is_empty() {
        return Ok(None);
    }
    let info: Vec<ColumnInfo> = info
        .rows
        .iter()
        .map(|row| {
            let text = |i: usize| row.get(i).and_then(Value::as_text).unwrap_or_default();
            let integer = |i: usize| row.get(i).and_then(Value::as_integer).unwrap_or_default();
            ColumnInfo {
                name: text(0).to_owned(),
                pk: integer(1),
                not_null: integer(2) != 0,
                declared_type: text(3).to_owned(),
            }
        })
        .collect();
    let pk_index = db.query(
        "SELECT 1 FROM pragma_index_list(?1) WHERE origin = 'pk'",
        &name,
    )?;
    let nullable = plan::nullable_columns(&info, !pk_index.rows.is_empty());
    let mut primary_key: Vec<(i64, String)> = info
        .iter()
        .filter(|c| c.pk > 0)
        .map(|c| (c.pk, c.name.clone()))
        .collect();
    let columns = info.into_iter().map(|c| c.name).collect();
    primary_key.sort();
    let mut unique_keys = vec![primary_key.into_iter().map(|(_, c)| c).collect::<Vec<_>>()];

    // Expression columns of an index have no name; "<expression>" then matches no key column.
    let indexes = db.query(
        r#"SELECT il.name, ifnull(ii.name, '<expression>') FROM pragma_index_list(?1) AS il
           JOIN pragma_index_info(il.name) AS ii
           WHERE il."unique" = 1 AND il.partial = 0 ORDER BY il.name, ii.seqno"#,
        &name,
    )?;
    let mut current: Option<&str> = None;
    for row in &indexes.rows {
        let (Some(index), Some(column)) = (
            row.first().and_then(Value::as_text),
            row.get(1).and_then(Value::as_text),
        ) else {
            continue;
        };
        if current != Some(index) {
            current = Some(index);
            unique_keys.push(Vec::new());
        }
        unique_keys
            .last_mut()
            .expect("pushed above")
            .push(column.to_owned());
    }
    unique_keys.retain(|k| !k.is_empty());
    Ok(Some(ExistingTable {
        columns,
        unique_keys,
        nullable,
    }))
}

/// The table's columns and unique keys on PostgreSQL, from the catalog (the grant's schema is
/// the session's `search_path`, so `to_regclass` finds the table the host will write), or
/// `None` when it does not exist. The name is a bound parameter, quoted by `quote_ident`.
fn inspect_postgres(db: &Connection, table: &str) -> Result<Option<ExistingTable>, Error> {
    let name = [Value::Text(table.to_owned())];
    let info = db.query(
        "SELECT a.attname::text, a.attnotnull FROM pg_catalog.pg_attribute a
         WHERE a.attrelid = to_regclass(quote_ident(?1)) AND a.attnum > 0 AND NOT a.attisdropped
         ORDER BY a.attnum",
        &name,
    )?;
    if info.rows.is_empty() {
        return Ok(None);
    }
    let mut columns = Vec::new();
    let mut nullable = Vec::new();
    for row in &info.rows {
        let column = row.first().and_then(Value::as_text).unwrap_or_default();
        if row.get(1) != Some(&Value::Boolean(true)) {
            // PostgreSQL has no nullable-key quirks: a primary key column is NOT NULL.
            nullable.push((column.to_owned(), plan::Nullable::Plain));
        }
        columns.push(column.to_owned());
    }
    // The primary key and every unique index without a predicate or an expression, each with
    // its columns in index order: the conflict targets an upsert may name.
    let indexes = db.query(
        "SELECT i.indexrelid::bigint, a.attname::text FROM pg_catalog.pg_index i
         JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
         WHERE i.indrelid = to_regclass(quote_ident(?1)) AND i.indisunique
           AND i.indpred IS NULL AND i.indexprs IS NULL
         ORDER BY i.indisprimary DESC, i.indexrelid, array_position(i.indkey::int2[], a.attnum)",
        &name,
    )?;
    let mut unique_keys: Vec<Vec<String>> = Vec::new();
    let mut current = None;
    for row in &indexes.rows {
        let (Some(index), Some(column)) = (
            row.first().and_then(Value::as_integer),
            row.get(1).and_then(Value::as_text),
        ) else {
            continue;
        };
        if current != Some(index) {
            current = Some(index);
            unique_keys.push(Vec::new());
        }
        unique_keys
            .last_mut()
            .expect("pushed above")
            .push(column.to_owned());
    }
    Ok(Some(ExistingTable {
        columns,
        unique_keys,
        nullable,
    }))
}

weir_sdk::export_loader!(SqliteLoad);

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(config: &str) -> Result<SqliteLoadConfig, Error> {
        weir_sdk::parse_config(NAME, config)
    }

    #[test]
    fn config_parses_modes_and_refuses_unknown_keys() {
        let c = parse(r#"{"database": "ledger", "table": "t"}"#).unwrap();
        assert_eq!((c.mode, c.key), (Mode::Append, None));
        let c = parse(r#"{"database": "ledger", "table": "t", "mode": "upsert", "key": ["id"]}"#)
            .unwrap();
        assert_eq!((c.mode, c.key), (Mode::Upsert, Some(vec!["id".to_owned()])));
        let err = parse(r#"{"database": "ledger", "table": "t", "mode": "merge"}"#).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidConfig(m) if m.contains("unknown variant `merge`")),
            "{err:?}"
        );
        let err = parse(r#"{"database": "ledger", "table": "t", "keys": []}"#).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidConfig(m) if m.starts_with("sqlite-load: invalid config: unknown field `keys`")),
            "{err:?}"
        );
    }

    #[test]
    fn config_schema_is_json() {
        let schema: serde_json::Value = serde_json::from_str(CONFIG_SCHEMA).unwrap();
        assert_eq!(schema["properties"]["mode"]["default"], "append");
    }
}
