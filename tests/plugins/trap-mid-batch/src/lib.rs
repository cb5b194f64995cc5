//! `trap-mid-batch`: a deterministic extractor that panics (a trap) in one chosen batch, once.
//!
//! One partition, `p`: rows `id` = 0, 1, …, `rows` − 1 (integer, primary key) with `label` =
//! `"row <id>"` (text), position = id + 1. The checkpoint after a batch is the next id, in
//! decimal; `open` resumes there (`bad-data` for a checkpoint that is not a number ≤ `rows`).
//!
//! Batches follow a fixed grid of `batch` ids: batch k (counted from 0, from the start of the
//! stream, whatever the checkpoint and the number of calls) holds ids `k·batch ..
//! (k+1)·batch`. A `next-batch` never crosses the grid; it returns fewer rows when the host's
//! `max_rows` is smaller. When asked for batch `panic_at_batch` for the first time ever it
//! records that in the `marker_db` database (`trap_marker(k INTEGER PRIMARY KEY)`, row k) and
//! then panics: `trap-mid-batch: panic in batch K (ids A..B) on purpose`. Once the marker row
//! exists, that batch is produced normally. So:
//!
//! - without restart, exactly the ids below `panic_at_batch · batch` are committed;
//! - a supervisor that restarts the worker from the last committed checkpoint ends with
//!   exactly `rows` rows, ids 0..`rows`, no duplicates.
//!
//! `marker_db` must be a granted database OTHER than the one the loads and the history store
//! commit to: the marker must survive the rollback of the batch that panicked. Delete its
//! `trap_marker` row (or the file) to arm the trap again.
//!
//! Config keys: `rows`, `batch` (≥ 1), `panic_at_batch`, `marker_db`. All required.

use serde::Deserialize;
use weir_sdk::sql::Connection;
use weir_sdk::{
    Batch, Cell, Column, Error, Kind, Partition, PluginInfo, Progress, RowsBuilder, Schema, Value,
};

const NAME: &str = "trap-mid-batch";

const CONFIG_SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "trap-mid-batch",
  "type": "object",
  "additionalProperties": false,
  "required": ["rows", "batch", "panic_at_batch", "marker_db"],
  "properties": {
    "rows": { "type": "integer", "minimum": 0, "description": "rows in the stream: ids 0..rows" },
    "batch": { "type": "integer", "minimum": 1, "description": "ids per batch: batch k holds ids k*batch..(k+1)*batch" },
    "panic_at_batch": { "type": "integer", "minimum": 0, "description": "the batch (from 0) that panics the first time it is produced" },
    "marker_db": { "type": "string", "minLength": 1, "description": "granted database recording the panic; not the commit database" }
  }
}"#;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    rows: u32,
    batch: u32,
    panic_at_batch: u32,
    marker_db: String,
}

/// The plugin.
pub struct TrapMidBatch;

/// The reader of partition `p`.
pub struct Stream {
    config: Config,
    markers: Connection,
    /// The next id to produce.
    next: u32,
    schema: Schema,
}

impl Stream {
    fn context(e: Error) -> Error {
        e.context(format_args!("{NAME}: marker database"))
    }

    /// Whether the panic already happened once (on any earlier attempt).
    fn panicked_before(&self) -> Result<bool, Error> {
        let k = Value::Integer(self.config.panic_at_batch.into());
        let found = self
            .markers
            .query("SELECT k FROM trap_marker WHERE k = ?1", &[k])
            .map_err(Self::context)?;
        Ok(!found.rows.is_empty())
    }

    fn mark(&self) -> Result<(), Error> {
        let k = Value::Integer(self.config.panic_at_batch.into());
        self.markers
            .execute("INSERT OR IGNORE INTO trap_marker (k) VALUES (?1)", &[k])
            .map_err(Self::context)?;
        Ok(())
    }
}

impl weir_sdk::Extractor for TrapMidBatch {
    type Reader = Stream;

    fn describe() -> PluginInfo {
        PluginInfo {
            name: NAME.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "test plugin: a deterministic stream that panics once in a chosen batch"
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
        if config.batch == 0 {
            return Err(Error::InvalidConfig(format!("{NAME}: `batch` must be ≥ 1")));
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
        let markers = Connection::open(&config.marker_db).map_err(Stream::context)?;
        markers
            .execute(
                "CREATE TABLE IF NOT EXISTS trap_marker (k INTEGER PRIMARY KEY)",
                &[],
            )
            .map_err(Stream::context)?;
        let schema = Schema {
            columns: vec![
                Column::new("id", Kind::Integer, false),
                Column::new("label", Kind::Text, false),
            ],
            primary_key: vec!["id".into()],
        };
        Ok(Stream {
            config,
            markers,
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
        let Config {
            rows,
            batch,
            panic_at_batch,
            ..
        } = self.config;
        let start = self.next;
        if start >= rows {
            return Ok(None);
        }
        let k = start / batch;
        let grid_end = (u64::from(k) + 1) * u64::from(batch);
        let end = grid_end
            .min(rows.into())
            .min(u64::from(start) + u64::from(max_rows.max(1)));
        let end = u32::try_from(end).expect("end ≤ rows, a u32");
        if k == panic_at_batch && !self.panicked_before()? {
            self.mark()?;
            panic!(
                "{NAME}: panic in batch {k} (ids {}..{}) on purpose",
                u64::from(k) * u64::from(batch),
                grid_end.min(rows.into())
            );
        }
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
                total: Some(rows.into()),
            },
        }))
    }
}

weir_sdk::export_extractor!(TrapMidBatch);
