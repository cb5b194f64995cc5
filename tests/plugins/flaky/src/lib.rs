//! `flaky`: an extractor whose first `fail_first` opens fail as `unavailable` (retryable), and
//! which then streams its rows normally, so supervision must retry it and finish the run.
//!
//! Every `open` first appends a row to table `flaky_calls (attempt INTEGER PRIMARY KEY, at_ms
//! INTEGER NOT NULL)` in the granted `counter_db` database (`at_ms` = wall-clock milliseconds
//! since the Unix epoch, so a test can also check the backoff between attempts). While the
//! number of rows i ≤ `fail_first` it returns
//! `unavailable("flaky: attempt i of K fails on purpose")` (K = `fail_first`). `partitions`
//! never fails and counts nothing.
//!
//! Once open, one partition `p` yields rows `id` = 0, 1, …, `rows` − 1 (integer, primary key)
//! with `label` = `"row <id>"` (text), position = id + 1, in batches of the host's `max_rows`.
//! The checkpoint after a batch is the next id, in decimal; `open` resumes there (`bad-data`
//! for a checkpoint that is not a number ≤ `rows`).
//!
//! `counter_db` should be a granted database OTHER than the commit database, so no commit or
//! rollback of a batch interferes with the counter. Empty `flaky_calls` to reset it.
//!
//! Config keys: `rows`, `fail_first`, `counter_db`. All required.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use weir_sdk::sql::Connection;
use weir_sdk::{
    Batch, Cell, Column, Error, Kind, Partition, PluginInfo, Progress, RowsBuilder, Schema, Value,
};

const NAME: &str = "flaky";

const CONFIG_SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "flaky",
  "type": "object",
  "additionalProperties": false,
  "required": ["rows", "fail_first", "counter_db"],
  "properties": {
    "rows": { "type": "integer", "minimum": 0, "description": "rows in the stream: ids 0..rows" },
    "fail_first": { "type": "integer", "minimum": 0, "description": "how many opens fail with `unavailable` before one succeeds" },
    "counter_db": { "type": "string", "minLength": 1, "description": "granted database counting the opens (table flaky_calls); not the commit database" }
  }
}"#;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    rows: u32,
    fail_first: u32,
    counter_db: String,
}

/// Record one more `open` and return how many there have been, this one included.
fn count_open(database: &str) -> Result<i64, Error> {
    let context = |e: Error| e.context(format_args!("{NAME}: counter database"));
    let db = Connection::open(database).map_err(context)?;
    db.execute(
        "CREATE TABLE IF NOT EXISTS flaky_calls \
         (attempt INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL)",
        &[],
    )
    .map_err(context)?;
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    db.execute(
        "INSERT INTO flaky_calls (at_ms) VALUES (?1)",
        &[Value::Integer(now_ms)],
    )
    .map_err(context)?;
    let count = db
        .query("SELECT count(*) FROM flaky_calls", &[])
        .map_err(context)?;
    count
        .rows
        .first()
        .and_then(|row| row.first())
        .and_then(Value::as_integer)
        .ok_or_else(|| Error::Other(format!("{NAME}: count(*) returned no integer")))
}

/// The plugin.
pub struct Flaky;

/// The reader of partition `p`.
pub struct Stream {
    rows: u32,
    /// The next id to produce.
    next: u32,
    schema: Schema,
}

impl weir_sdk::Extractor for Flaky {
    type Reader = Stream;

    fn describe() -> PluginInfo {
        PluginInfo {
            name: NAME.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "test plugin: the first K opens fail as unavailable, then rows stream"
                .into(),
            config_schema: CONFIG_SCHEMA.into(),
        }
    }

    fn partitions(config: &str) -> Result<Vec<Partition>, Error> {
        let config: Config = weir_sdk::parse_config(NAME, config)?;
        Ok(vec![Partition {
            id: "p".into(),
            size: Some(config.rows.into()),
        }])
    }

    fn open(config: &str, _partition: Partition, cp: Option<String>) -> Result<Stream, Error> {
        let config: Config = weir_sdk::parse_config(NAME, config)?;
        let attempt = count_open(&config.counter_db)?;
        let k = config.fail_first;
        if attempt <= i64::from(k) {
            return Err(Error::Unavailable(format!(
                "{NAME}: attempt {attempt} of {k} fails on purpose"
            )));
        }
        let next = match cp.as_deref() {
            None => 0,
            Some(text) => text
                .parse()
                .ok()
                .filter(|&n| n <= config.rows)
                .ok_or_else(|| {
                    Error::BadData(format!(
                        "{NAME}: checkpoint {text:?} is not a next id in 0..={}",
                        config.rows
                    ))
                })?,
        };
        let schema = Schema {
            columns: vec![
                Column::new("id", Kind::Integer, false),
                Column::new("label", Kind::Text, false),
            ],
            primary_key: vec!["id".into()],
        };
        Ok(Stream {
            rows: config.rows,
            next,
            schema,
        })
    }
}

impl weir_sdk::Reader for Stream {
    fn schema(&self) -> Schema {
        self.schema.clone()
    }

    fn next_batch(&mut self, max_rows: u32) -> Result<Option<Batch>, Error> {
        let start = self.next;
        if start >= self.rows {
            return Ok(None);
        }
        let end = start.saturating_add(max_rows.max(1)).min(self.rows);
        let mut out = RowsBuilder::with_capacity(&self.schema, (end - start) as usize);
        for id in start..end {
            let label = format!("row {id}");
            out.push_row([Cell::Integer(id.into()), Cell::Text(&label)])
                .map_err(|e| Error::Other(format!("{NAME}: {e}")))?;
        }
        self.next = end;
        Ok(Some(Batch {
            rows: out.finish(),
            positions: (start..end).map(|id| u64::from(id) + 1).collect(),
            rejects: vec![],
            checkpoint: end.to_string(),
            progress: Progress {
                done: end.into(),
                total: Some(self.rows.into()),
            },
        }))
    }
}

weir_sdk::export_extractor!(Flaky);
