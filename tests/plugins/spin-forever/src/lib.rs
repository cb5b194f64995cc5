//! `spin-forever`: an extractor whose `next-batch` never returns, so the host must stop the call
//! within its deadline, discard the instance and fail (or restart) the worker.
//!
//! `partitions` returns one partition, `p`; `open` succeeds at any checkpoint; the schema is
//! one nullable text column, `value`. Then `next-batch` never returns:
//!
//! - `"mode": "spin"` (the default) burns CPU in a loop the optimiser cannot remove. No host
//!   call is made, so only the CPU deadline (epoch interruption) can stop it.
//! - `"mode": "sleep"` blocks in a WASI sleep, i.e. inside a host call, where epoch
//!   interruption does not reach; only the wall-clock timeout per call can stop it.
//!
//! Config keys: `mode` (optional, `"spin"` or `"sleep"`). Nothing else is accepted.

use std::time::Duration;

use serde::Deserialize;
use weir_sdk::{Batch, Column, Error, Kind, Partition, PluginInfo, Schema};

const NAME: &str = "spin-forever";

const CONFIG_SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "spin-forever",
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "mode": { "enum": ["spin", "sleep"], "default": "spin", "description": "spin: CPU loop (stopped by the CPU deadline); sleep: blocked in a host call (stopped by the wall-clock timeout)" }
  }
}"#;

/// How `next-batch` never returns.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Mode {
    #[default]
    Spin,
    Sleep,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default)]
    mode: Mode,
}

/// The plugin.
pub struct SpinForever;

/// The reader of partition `p`.
pub struct Spinner {
    mode: Mode,
}

impl weir_sdk::Extractor for SpinForever {
    type Reader = Spinner;

    fn describe() -> PluginInfo {
        PluginInfo {
            name: NAME.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "test plugin: next-batch loops forever (CPU spin or WASI sleep)".into(),
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

    fn open(config: &str, _partition: Partition, _cp: Option<String>) -> Result<Spinner, Error> {
        let Config { mode } = weir_sdk::parse_config(NAME, config)?;
        Ok(Spinner { mode })
    }
}

impl weir_sdk::Reader for Spinner {
    fn schema(&self) -> Schema {
        Schema {
            columns: vec![Column::new("value", Kind::Text, true)],
            primary_key: vec![],
        }
    }

    fn next_batch(&mut self, _max_rows: u32) -> Result<Option<Batch>, Error> {
        match self.mode {
            Mode::Spin => {
                let mut counter: u64 = 0;
                loop {
                    counter = counter.wrapping_add(1);
                    std::hint::black_box(counter);
                }
            }
            Mode::Sleep => loop {
                std::thread::sleep(Duration::from_secs(3600));
            },
        }
    }
}

weir_sdk::export_extractor!(SpinForever);
