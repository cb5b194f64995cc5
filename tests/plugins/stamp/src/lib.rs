//! A transformer that copies every column and adds `stamp`, a text column holding the plugin's
//! own version: the rows a run loaded say which version of the plugin transformed them. Built
//! twice by `just test-plugins`, as 1.0.0 (`stamp.wasm`) and as 2.0.0 (`stamp_v2.wasm`), for
//! the tests that replace a plugin while `weir serve` runs.
//!
//! `pause_ms` sleeps that long in every `apply` (through WASI's monotonic clock, so the host
//! waits without spinning), which makes a run last long enough to replace the plugin under it.

use weir_sdk::{
    Column, Error, Kind, PluginInfo, Rows, Schema, Transform, Transformed, Transformer, map_rows,
};

const VERSION: &str = if cfg!(feature = "v2") {
    "2.0.0"
} else {
    "1.0.0"
};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default)]
    pause_ms: u64,
}

/// The plugin.
pub struct Stamp;

/// One stream: the output schema and the pause.
pub struct StampTransform {
    output: Schema,
    pause: std::time::Duration,
}

impl Transformer for Stamp {
    type Transform = StampTransform;

    fn describe() -> PluginInfo {
        PluginInfo {
            name: "stamp".into(),
            version: VERSION.into(),
            description: "adds a `stamp` column holding this plugin's version".into(),
            config_schema: r#"{"type":"object","properties":{"pause_ms":{"type":"integer","minimum":0}},"additionalProperties":false}"#.into(),
        }
    }

    fn open(config: &str, input: Schema) -> Result<StampTransform, Error> {
        let Config { pause_ms } = weir_sdk::parse_config("stamp", config)?;
        let mut output = input;
        output.columns.push(Column {
            name: "stamp".into(),
            kind: Kind::Text,
            nullable: false,
        });
        Ok(StampTransform {
            output,
            pause: std::time::Duration::from_millis(pause_ms),
        })
    }
}

impl Transform for StampTransform {
    fn output_schema(&self) -> Schema {
        self.output.clone()
    }

    fn apply(&mut self, input: Rows) -> Result<Transformed, Error> {
        if !self.pause.is_zero() {
            std::thread::sleep(self.pause);
        }
        let stamp = self.output.columns.len() - 1;
        Ok(map_rows(&input, &self.output, |row, out| {
            for (c, cell) in row.cells().enumerate() {
                out.set(c, cell)?;
            }
            out.set(stamp, VERSION)?;
            Ok(())
        }))
    }
}

weir_sdk::export_transformer!(Stamp);
