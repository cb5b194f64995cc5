//! `alloc-bomb`: an extractor whose `next-batch` keeps allocating memory toward 4 GiB, so the
//! host's memory cap per instance must stop it with a trap while the host's RSS stays bounded.
//!
//! `partitions` returns one partition, `p`; `open` succeeds; the schema is one nullable text
//! column, `value`. The first `next-batch` allocates chunks of `chunk_mib` MiB and writes every
//! byte of each (so the pages are really resident, not just reserved), keeping them all, until
//! `limit_mib` MiB are held. When the cap refuses to grow linear memory, the allocator aborts:
//! a trap. If it ever gets to `limit_mib` the call returns
//! `other("alloc-bomb: holds N MiB and nothing stopped it")`, which a test should treat as a
//! failure of the cap. (wasm32 memory ends at 4 GiB, so the default limit is never reached.)
//!
//! Config keys: `chunk_mib` (optional, default 16), `limit_mib` (optional, default 4096).

use serde::Deserialize;
use weir_sdk::{Batch, Column, Error, Kind, Partition, PluginInfo, Schema};

const NAME: &str = "alloc-bomb";

const CONFIG_SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "alloc-bomb",
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "chunk_mib": { "type": "integer", "minimum": 1, "maximum": 1024, "default": 16, "description": "size of each allocation, MiB" },
    "limit_mib": { "type": "integer", "minimum": 1, "default": 4096, "description": "stop (and fail with `other`) once this much is held, MiB" }
  }
}"#;

const MIB: u64 = 1 << 20;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default = "default_chunk_mib")]
    chunk_mib: u64,
    #[serde(default = "default_limit_mib")]
    limit_mib: u64,
}

fn default_chunk_mib() -> u64 {
    16
}

fn default_limit_mib() -> u64 {
    4096
}

impl Config {
    fn parse(config: &str) -> Result<Self, Error> {
        let parsed: Self = weir_sdk::parse_config(NAME, config)?;
        if !(1..=1024).contains(&parsed.chunk_mib) || parsed.limit_mib == 0 {
            return Err(Error::InvalidConfig(format!(
                "{NAME}: `chunk_mib` must be 1..=1024 and `limit_mib` at least 1"
            )));
        }
        Ok(parsed)
    }
}

/// The plugin.
pub struct AllocBomb;

/// The reader of partition `p`: holds everything it allocated.
pub struct Bomb {
    config: Config,
    hoard: Vec<Vec<u8>>,
}

impl weir_sdk::Extractor for AllocBomb {
    type Reader = Bomb;

    fn describe() -> PluginInfo {
        PluginInfo {
            name: NAME.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "test plugin: next-batch allocates and touches memory toward 4 GiB".into(),
            config_schema: CONFIG_SCHEMA.into(),
        }
    }

    fn partitions(config: &str) -> Result<Vec<Partition>, Error> {
        Config::parse(config)?;
        Ok(vec![Partition {
            id: "p".into(),
            size: None,
        }])
    }

    fn open(config: &str, _partition: Partition, _cp: Option<String>) -> Result<Bomb, Error> {
        Ok(Bomb {
            config: Config::parse(config)?,
            hoard: Vec::new(),
        })
    }
}

impl weir_sdk::Reader for Bomb {
    fn schema(&self) -> Schema {
        Schema {
            columns: vec![Column::new("value", Kind::Text, true)],
            primary_key: vec![],
        }
    }

    fn next_batch(&mut self, _max_rows: u32) -> Result<Option<Batch>, Error> {
        let Config {
            chunk_mib,
            limit_mib,
        } = self.config;
        weir_sdk::log::info(&format!(
            "{NAME}: allocating {chunk_mib} MiB chunks toward {limit_mib} MiB"
        ));
        // u64 arithmetic: 4096 MiB does not fit a wasm32 usize.
        let mut held_mib: u64 = 0;
        while held_mib < limit_mib {
            let bytes = usize::try_from(chunk_mib * MIB).expect("chunk_mib ≤ 1024");
            let mut chunk = Vec::with_capacity(bytes);
            // A non-zero fill writes every page, so the memory is resident on the host.
            chunk.resize(bytes, 0xA5_u8);
            self.hoard.push(std::hint::black_box(chunk));
            held_mib += chunk_mib;
        }
        Err(Error::Other(format!(
            "{NAME}: holds {held_mib} MiB and nothing stopped it"
        )))
    }
}

weir_sdk::export_extractor!(AllocBomb);
