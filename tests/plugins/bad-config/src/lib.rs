//! `bad-config`: a transformer whose `open` always fails with
//! `invalid-config("bad-config: key \"x\" is always wrong (on purpose)")`, whatever the config
//! and the input schema. `describe` works. The host must fail the worker at once (no retry)
//! and report the message.
//!
//! Config keys: none are read; `x` is the key the message blames.

use weir_sdk::{Error, PluginInfo, Rows, Schema, Transformed};

const NAME: &str = "bad-config";

const CONFIG_SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "bad-config",
  "type": "object",
  "properties": {
    "x": { "description": "whatever it is, `open` says it is wrong" }
  }
}"#;

/// The plugin.
pub struct BadConfig;

/// No transform is ever opened.
pub enum NoTransform {}

impl weir_sdk::Transformer for BadConfig {
    type Transform = NoTransform;

    fn describe() -> PluginInfo {
        PluginInfo {
            name: NAME.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "test plugin: open always fails with invalid-config".into(),
            config_schema: CONFIG_SCHEMA.into(),
        }
    }

    fn open(_config: &str, _input: Schema) -> Result<NoTransform, Error> {
        Err(Error::InvalidConfig(format!(
            "{NAME}: key \"x\" is always wrong (on purpose)"
        )))
    }
}

impl weir_sdk::Transform for NoTransform {
    fn output_schema(&self) -> Schema {
        match *self {}
    }

    fn apply(&mut self, _input: Rows) -> Result<Transformed, Error> {
        match *self {}
    }
}

weir_sdk::export_transformer!(BadConfig);
