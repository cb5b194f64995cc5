//! `counting-sink`: a loader whose `open` returns a sink (the `sink` case of the loader
//! contract) that upserts every row by key into a granted database and counts how often each
//! key was written, so a test can see which rows the host sent again.
//!
//! Tables in `database` (created on the first `write`, never by `open`, so `weir validate`
//! leaves the database alone):
//!
//! - `sink_rows(key PRIMARY KEY, row TEXT, position INTEGER, writes INTEGER)`: one row per
//!   key; `row` is the row as a JSON object (column name → value; blobs as hex), `position`
//!   its source position, `writes` how many `write` calls carried the key (1 = written once;
//!   more = re-sent after a crash).
//! - `sink_calls(seq INTEGER PRIMARY KEY, call TEXT, rows INTEGER, first_key, last_key,
//!   checkpoint TEXT)`: one row per `write` (`call` = `write`) and `finish` (`finish`, with the
//!   rows this sink wrote over its lifetime), plus `crash` / `stall` when the sink misbehaves
//!   on purpose (below). `first_key`/`last_key`/`checkpoint` are those of the batch (null for
//!   `finish`).
//!
//! Misbehaviour on purpose, each once ever per database (the `crash` / `stall` row in
//! `sink_calls` disarms it; delete the row to arm it again). "Batch N" counts the batches
//! this sink instance was given, from 1:
//!
//! - `crash_after_batches = N`: in batch N + 1, AFTER upserting its rows, records `crash` and
//!   panics (`counting-sink: crash after writing batch N+1 (keys A..B) on purpose`). The host
//!   never commits that batch's checkpoint, so the next attempt sends the batch again.
//! - `stall_after_batches = N`: in batch N + 1, after upserting its rows, records `stall` and
//!   sleeps `stall_ms` (default 20000, under the default 30 s call timeout) before returning,
//!   so a test can SIGKILL weir between the sink's write and the batch's commit.
//!
//! `database` must be a granted database other than the history store's: the rows stand for
//! a destination outside the commit transaction. A row whose key is null fails the batch with
//! `bad-data`. Config keys: `database`, `key` (required); `crash_after_batches`,
//! `stall_after_batches`, `stall_ms`.

use std::time::Duration;

use serde::Deserialize;
use weir_sdk::sql::Connection;
use weir_sdk::{
    BatchView, Cell, Error, LoadTarget, PluginInfo, RowView, Schema, SinkLoader, Value,
};

const NAME: &str = "counting-sink";

const CONFIG_SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "counting-sink",
  "type": "object",
  "additionalProperties": false,
  "required": ["database", "key"],
  "properties": {
    "database": { "type": "string", "minLength": 1, "description": "granted database for sink_rows and sink_calls; not the history store's" },
    "key": { "type": "string", "minLength": 1, "description": "the column rows are upserted by" },
    "crash_after_batches": { "type": "integer", "minimum": 0, "description": "panic after writing batch N+1, once ever" },
    "stall_after_batches": { "type": "integer", "minimum": 0, "description": "sleep stall_ms after writing batch N+1, once ever" },
    "stall_ms": { "type": "integer", "minimum": 0, "default": 20000, "description": "how long a stall lasts" }
  }
}"#;

const SETUP: [&str; 2] = [
    "CREATE TABLE IF NOT EXISTS sink_rows (key PRIMARY KEY NOT NULL, row TEXT NOT NULL, position INTEGER NOT NULL, writes INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS sink_calls (seq INTEGER PRIMARY KEY, call TEXT NOT NULL, rows INTEGER, first_key, last_key, checkpoint TEXT)",
];

const UPSERT: &str = "INSERT INTO sink_rows (key, row, position, writes) VALUES (?1, ?2, ?3, 1) \
     ON CONFLICT (key) DO UPDATE SET row = excluded.row, position = excluded.position, writes = writes + 1";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    database: String,
    key: String,
    crash_after_batches: Option<u32>,
    stall_after_batches: Option<u32>,
    #[serde(default = "default_stall_ms")]
    stall_ms: u64,
}

fn default_stall_ms() -> u64 {
    20_000
}

/// The plugin.
pub struct CountingSink;

/// The sink of one stream.
pub struct Counter {
    config: Config,
    schema: Schema,
    key: usize,
    /// Opened (and the tables created) on the first `write`.
    db: Option<Connection>,
    /// Batches this sink was given.
    batches: u32,
    /// Rows this sink wrote.
    rows: u64,
}

fn sql_error(e: Error) -> Error {
    e.context(format_args!("{NAME}: sink database"))
}

impl SinkLoader for CountingSink {
    type Sink = Counter;

    fn describe() -> PluginInfo {
        PluginInfo {
            name: NAME.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "test plugin: a sink that upserts rows by key and counts writes per key"
                .into(),
            config_schema: CONFIG_SCHEMA.into(),
        }
    }

    fn open(config: &str, schema: Schema) -> Result<LoadTarget<Counter>, Error> {
        let config: Config = weir_sdk::parse_config(NAME, config)?;
        let key = schema.column_index(&config.key).ok_or_else(|| {
            Error::InvalidConfig(format!(
                "{NAME}: key column `{}` is not in the stream's schema; available columns: {}",
                config.key,
                schema.column_list()
            ))
        })?;
        Ok(LoadTarget::Sink(Counter {
            config,
            schema,
            key,
            db: None,
            batches: 0,
            rows: 0,
        }))
    }
}

impl Counter {
    fn db(&mut self) -> Result<&Connection, Error> {
        if self.db.is_none() {
            let db = Connection::open(&self.config.database).map_err(sql_error)?;
            for statement in SETUP {
                db.execute(statement, &[]).map_err(sql_error)?;
            }
            self.db = Some(db);
        }
        Ok(self.db.as_ref().expect("opened above"))
    }

    fn record(
        &mut self,
        call: &str,
        rows: u64,
        batch: Option<&BatchView<'_>>,
    ) -> Result<(), Error> {
        let key = self.key;
        let (first, last, checkpoint) = match batch {
            Some(b) if !b.is_empty() => (
                b.view().cell(0, key).into(),
                b.view().cell(b.len() - 1, key).into(),
                Value::Text(b.checkpoint().to_owned()),
            ),
            Some(b) => (
                Value::Null,
                Value::Null,
                Value::Text(b.checkpoint().to_owned()),
            ),
            None => (Value::Null, Value::Null, Value::Null),
        };
        let rows = Value::Integer(i64::try_from(rows).unwrap_or(i64::MAX));
        let call = Value::Text(call.to_owned());
        self.db()?
            .execute(
                "INSERT INTO sink_calls (call, rows, first_key, last_key, checkpoint) VALUES (?1, ?2, ?3, ?4, ?5)",
                &[call, rows, first, last, checkpoint],
            )
            .map_err(sql_error)?;
        Ok(())
    }

    /// Whether `call` (`crash`, `stall`) was recorded before, by any sink on this database.
    fn happened(&mut self, call: &str) -> Result<bool, Error> {
        let found = self
            .db()?
            .query(
                "SELECT 1 FROM sink_calls WHERE call = ?1",
                &[Value::Text(call.to_owned())],
            )
            .map_err(sql_error)?;
        Ok(!found.rows.is_empty())
    }

    /// Whether this batch is the one `after` (N) names, and the misbehaviour is still armed.
    fn due(&mut self, after: Option<u32>, call: &str) -> Result<bool, Error> {
        Ok(after.is_some_and(|n| self.batches == n.saturating_add(1)) && !self.happened(call)?)
    }
}

/// The row as a JSON object, column name → value.
fn row_json(schema: &Schema, row: &RowView<'_>) -> String {
    let object: serde_json::Map<String, serde_json::Value> = schema
        .columns
        .iter()
        .zip(row.cells())
        .map(|(column, cell)| {
            let value = match cell {
                Cell::Null => serde_json::Value::Null,
                Cell::Boolean(v) => v.into(),
                Cell::Integer(v) => v.into(),
                Cell::Real(v) => v.into(),
                Cell::Text(s) => s.into(),
                Cell::Blob(b) => b
                    .iter()
                    .map(|x| format!("{x:02x}"))
                    .collect::<String>()
                    .into(),
            };
            (column.name.clone(), value)
        })
        .collect();
    serde_json::Value::Object(object).to_string()
}

impl weir_sdk::Sink for Counter {
    fn write(
        &mut self,
        batch: &BatchView<'_>,
        _rejects: &mut weir_sdk::SinkRejects,
    ) -> Result<(), Error> {
        self.batches += 1;
        for (row, &position) in batch.rows().zip(batch.positions()) {
            let key = row.get(self.key);
            if key.is_null() {
                return Err(Error::BadData(format!(
                    "{NAME}: the row at position {position} has a null key `{}`",
                    self.config.key
                )));
            }
            let params = [
                key.into(),
                Value::Text(row_json(&self.schema, &row)),
                Value::Integer(i64::try_from(position).unwrap_or(i64::MAX)),
            ];
            self.db()?.execute(UPSERT, &params).map_err(sql_error)?;
        }
        self.rows += batch.len() as u64;
        self.record("write", batch.len() as u64, Some(batch))?;

        if self.due(self.config.crash_after_batches, "crash")? {
            self.record("crash", batch.len() as u64, Some(batch))?;
            panic!(
                "{NAME}: crash after writing batch {} (keys {}) on purpose",
                self.batches,
                key_range(batch, self.key)
            );
        }
        if self.due(self.config.stall_after_batches, "stall")? {
            self.record("stall", batch.len() as u64, Some(batch))?;
            weir_sdk::log::warn(&format!(
                "{NAME}: stalling {} ms after writing batch {} (keys {}) on purpose",
                self.config.stall_ms,
                self.batches,
                key_range(batch, self.key)
            ));
            std::thread::sleep(Duration::from_millis(self.config.stall_ms));
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), Error> {
        self.record("finish", self.rows, None)
    }
}

/// `first..last` of the batch's keys, for messages.
fn key_range(batch: &BatchView<'_>, key: usize) -> String {
    if batch.is_empty() {
        return "none".into();
    }
    let view = batch.view();
    format!(
        "{}..{}",
        view.cell(0, key).describe(),
        view.cell(batch.len() - 1, key).describe()
    )
}

weir_sdk::export_sink_loader!(CountingSink);

#[cfg(test)]
mod tests {
    use super::*;
    use weir_sdk::{Batch, Column, Kind, Progress, RowsBuilder};

    fn schema() -> Schema {
        Schema {
            columns: vec![
                Column::new("id", Kind::Integer, false),
                Column::new("name", Kind::Text, true),
                Column::new("raw", Kind::Blob, true),
            ],
            primary_key: vec!["id".into()],
        }
    }

    #[test]
    fn open_returns_a_sink_and_refuses_an_unknown_key() {
        let target = CountingSink::open(r#"{"database": "sink", "key": "id"}"#, schema()).unwrap();
        assert!(matches!(target, LoadTarget::Sink(Counter { key: 0, .. })));
        let Err(Error::InvalidConfig(m)) =
            CountingSink::open(r#"{"database": "sink", "key": "nope"}"#, schema())
        else {
            panic!("expected invalid-config");
        };
        assert_eq!(
            m,
            "counting-sink: key column `nope` is not in the stream's schema; available columns: id, name, raw"
        );
    }

    #[test]
    fn rows_become_json_objects() {
        let schema = schema();
        let mut out = RowsBuilder::with_capacity(&schema, 1);
        out.push_row([Cell::Integer(7), Cell::Null, Cell::Blob(&[0, 255])])
            .unwrap();
        let batch = Batch {
            rows: out.finish(),
            positions: vec![8],
            rejects: vec![],
            checkpoint: "8".into(),
            progress: Progress {
                done: 8,
                total: None,
            },
        };
        let view = BatchView::new(&batch);
        let row = view.rows().next().unwrap();
        assert_eq!(
            row_json(&schema, &row),
            r#"{"id":7,"name":null,"raw":"00ff"}"#
        );
        assert_eq!(key_range(&view, 0), "7..7");
    }
}
