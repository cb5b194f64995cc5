//! `huge-row`: an extractor of rows that each carry one text value of `bytes` bytes, to test
//! the host's bounds on value size, row size and batch size.
//!
//! One partition, `p`: `rows` rows, `id` = 0, 1, … (integer, primary key) and `payload` (text,
//! `bytes` × `x`), position = id + 1. With the defaults that is ONE batch holding ONE 64 MiB
//! value (max value / row bytes); many rows of a moderate size make a batch that is too big
//! while each row is fine (max batch bytes). A batch holds up to the host's `max_rows` rows
//! (fewer if its text would pass 4 GiB). The checkpoint after a batch is the next id, in
//! decimal; `open` resumes there (`bad-data` for a checkpoint that is not a number ≤ `rows`).
//!
//! The payload lives in guest memory once (built straight into the batch buffer), so a
//! 64 MiB value needs a little over 64 MiB of the instance's memory cap; a `bytes` × rows per
//! batch beyond the cap traps like `alloc-bomb`.
//!
//! Config keys: `bytes` (optional, default 67108864 = 64 MiB), `rows` (optional, default 1).

use serde::Deserialize;
use weir_sdk::{
    Batch, Column, ColumnData, ColumnVector, Error, Kind, Partition, PluginInfo, Progress, Rows,
    Schema, VarWidth,
};

const NAME: &str = "huge-row";

const CONFIG_SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "huge-row",
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "bytes": { "type": "integer", "minimum": 0, "maximum": 4294967295, "default": 67108864, "description": "size of each row's text value, bytes" },
    "rows": { "type": "integer", "minimum": 0, "default": 1, "description": "how many such rows" }
  }
}"#;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default = "default_bytes")]
    bytes: u32,
    #[serde(default = "default_rows")]
    rows: u32,
}

fn default_bytes() -> u32 {
    64 << 20
}

fn default_rows() -> u32 {
    1
}

/// The plugin.
pub struct HugeRow;

/// The reader of partition `p`.
pub struct Stream {
    config: Config,
    /// The next id to produce.
    next: u32,
}

impl weir_sdk::Extractor for HugeRow {
    type Reader = Stream;

    fn describe() -> PluginInfo {
        PluginInfo {
            name: NAME.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "test plugin: rows with one text value of a configured size".into(),
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
        Ok(Stream { config, next })
    }
}

impl weir_sdk::Reader for Stream {
    fn schema(&self) -> Schema {
        Schema {
            columns: vec![
                Column::new("id", Kind::Integer, false),
                Column::new("payload", Kind::Text, false),
            ],
            primary_key: vec!["id".into()],
        }
    }

    fn next_batch(&mut self, max_rows: u32) -> Result<Option<Batch>, Error> {
        let Config { bytes, rows } = self.config;
        let start = self.next;
        if start >= rows {
            return Ok(None);
        }
        // Text end offsets are u32: keep a batch's text below 4 GiB.
        let fit = u32::MAX.checked_div(bytes).unwrap_or(u32::MAX);
        let count = (rows - start).min(max_rows.max(1)).min(fit.max(1));
        let end = start + count;
        let ends = (1..=count).map(|i| i * bytes).collect();
        let data = vec![b'x'; count as usize * bytes as usize];
        self.next = end;
        Ok(Some(Batch {
            rows: Rows {
                row_count: count,
                columns: vec![
                    ColumnVector {
                        data: ColumnData::Integer((start..end).map(i64::from).collect()),
                        nulls: None,
                    },
                    ColumnVector {
                        data: ColumnData::Text(VarWidth { data, ends }),
                        nulls: None,
                    },
                ],
            },
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

weir_sdk::export_extractor!(HugeRow);
