//! `lift-bomb`: an extractor whose results cost the host much more memory to copy out than they
//! cost the guest, as a raw guest can make them. One partition, `p`; `mode` says how:
//!
//! - `"aliased"`: `next-batch` returns ONE row of `columns` text columns whose buffers all
//!   point at the same `mib` MiB of guest memory. The guest holds `mib` MiB; a host that copies
//!   each list it is handed would hold `columns` × `mib` MiB.
//! - `"error"`: `call` (`"open"` or `"next-batch"`) fails with `other` carrying a message of
//!   `mib` MiB of `e`.
//! - `"checkpoint"`: `next-batch` returns an empty batch whose checkpoint is `mib` MiB of `c`.
//!
//! Config keys: `mode` (required), `mib` (default 32), `columns` (default 64), `call`
//! (default `"next-batch"`). The schema is `columns` text columns `c0`, `c1`, ….
//!
//! The aliasing is built with `Vec::from_raw_parts` on one allocation, which no safe guest
//! would do: the guest's post-return would free it once per list. A host that refuses the
//! result while lifting never runs post-return, so the guest is never asked to.

use serde::Deserialize;
use weir_sdk::{
    Batch, Column, ColumnData, ColumnVector, Error, Kind, Partition, PluginInfo, Progress, Rows,
    Schema, VarWidth,
};

const NAME: &str = "lift-bomb";

const CONFIG_SCHEMA: &str = r#"{
  "type": "object",
  "additionalProperties": false,
  "required": ["mode"],
  "properties": {
    "mode": { "enum": ["aliased", "error", "checkpoint"] },
    "mib": { "type": "integer", "minimum": 1 },
    "columns": { "type": "integer", "minimum": 1 },
    "call": { "enum": ["open", "next-batch"] }
  }
}"#;

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct Config {
    mode: String,
    #[serde(default = "default_mib")]
    mib: usize,
    #[serde(default = "default_columns")]
    columns: usize,
    #[serde(default = "default_call")]
    call: String,
}

fn default_mib() -> usize {
    32
}
fn default_columns() -> usize {
    64
}
fn default_call() -> String {
    "next-batch".into()
}

fn huge_error(mib: usize) -> Error {
    Error::Other("e".repeat(mib << 20))
}

/// The plugin.
pub struct LiftBomb;

/// The reader of `p`.
pub struct Bomb {
    config: Config,
}

impl weir_sdk::Extractor for LiftBomb {
    type Reader = Bomb;

    fn describe() -> PluginInfo {
        PluginInfo {
            name: NAME.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "test plugin: results that cost the host more than the guest".into(),
            config_schema: CONFIG_SCHEMA.into(),
        }
    }

    fn partitions(config: &str) -> Result<Vec<Partition>, Error> {
        weir_sdk::parse_config::<Config>(NAME, config)?;
        Ok(vec![Partition {
            id: "p".into(),
            size: None,
        }])
    }

    fn open(config: &str, _: Partition, _: Option<String>) -> Result<Bomb, Error> {
        let config: Config = weir_sdk::parse_config(NAME, config)?;
        if config.mode == "error" && config.call == "open" {
            return Err(huge_error(config.mib));
        }
        Ok(Bomb { config })
    }
}

impl weir_sdk::Reader for Bomb {
    fn schema(&self) -> Schema {
        Schema {
            columns: (0..self.config.columns)
                .map(|i| Column {
                    name: format!("c{i}"),
                    kind: Kind::Text,
                    nullable: false,
                })
                .collect(),
            primary_key: Vec::new(),
        }
    }

    fn next_batch(&mut self, _max_rows: u32) -> Result<Option<Batch>, Error> {
        let bytes = self.config.mib << 20;
        match self.config.mode.as_str() {
            "error" => Err(huge_error(self.config.mib)),
            "checkpoint" => Ok(Some(batch(
                Rows {
                    row_count: 0,
                    columns: (0..self.config.columns)
                        .map(|_| text_column(Vec::new(), Vec::new()))
                        .collect(),
                },
                Vec::new(),
                "c".repeat(bytes),
            ))),
            _ => {
                let mut buffer = std::mem::ManuallyDrop::new(vec![b'x'; bytes]);
                let (ptr, len, cap) = (buffer.as_mut_ptr(), buffer.len(), buffer.capacity());
                let columns = (0..self.config.columns)
                    .map(|_| {
                        // SAFETY: none — every vector owns the same allocation on purpose (see
                        // the crate docs); none of them is ever read or freed by this guest.
                        let alias = unsafe { Vec::from_raw_parts(ptr, len, cap) };
                        text_column(alias, vec![len as u32])
                    })
                    .collect();
                let rows = Rows {
                    row_count: 1,
                    columns,
                };
                Ok(Some(batch(rows, vec![1], "1".into())))
            }
        }
    }
}

fn text_column(data: Vec<u8>, ends: Vec<u32>) -> ColumnVector {
    ColumnVector {
        data: ColumnData::Text(VarWidth { data, ends }),
        nulls: None,
    }
}

fn batch(rows: Rows, positions: Vec<u64>, checkpoint: String) -> Batch {
    Batch {
        rows,
        positions,
        rejects: Vec::new(),
        checkpoint,
        progress: Progress {
            done: 0,
            total: None,
        },
    }
}

weir_sdk::export_extractor!(LiftBomb);
