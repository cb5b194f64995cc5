//! `{{name}}`: a weir transform. Trims the whitespace around the text of some columns and
//! rejects rows where a required one ends up empty.
//!
//! Config: `columns` (default: every text column) and `required` (default: none).

use serde::Deserialize;
use weir_sdk::{
    Cell, Error, Kind, PluginInfo, Rows, Schema, Transform, Transformed, Transformer, map_rows,
};

const NAME: &str = "{{name}}";

/// The pipeline's `config` table for this plugin, as JSON.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Config {
    /// Text columns to trim; empty = every text column.
    columns: Vec<String>,
    /// Columns that must not be empty after trimming.
    required: Vec<String>,
}

const CONFIG_SCHEMA: &str = r#"{
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "columns": { "type": "array", "items": { "type": "string" }, "description": "text columns to trim (default: all)" },
    "required": { "type": "array", "items": { "type": "string" }, "description": "columns that must not end up empty" }
  }
}"#;

/// The plugin.
pub struct Plugin;

/// The transform of one stream: what `open` worked out, per column.
pub struct Trim {
    schema: Schema,
    trim: Vec<bool>,
    required: Vec<bool>,
}

impl Transformer for Plugin {
    type Transform = Trim;

    fn describe() -> PluginInfo {
        PluginInfo {
            name: NAME.to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            description: "{{description}}".to_owned(),
            config_schema: CONFIG_SCHEMA.to_owned(),
        }
    }

    fn open(config: &str, input: Schema) -> Result<Trim, Error> {
        let config: Config = weir_sdk::parse_config(NAME, config)?;
        for name in config.columns.iter().chain(&config.required) {
            if input.column_index(name).is_none() {
                return Err(Error::InvalidConfig(format!(
                    "{NAME}: no column `{name}` in {}",
                    input.column_list()
                )));
            }
        }
        let listed = |names: &[String], name: &String| names.contains(name);
        let trim = input
            .columns
            .iter()
            .map(|c| {
                c.kind == Kind::Text
                    && (config.columns.is_empty() || listed(&config.columns, &c.name))
            })
            .collect();
        let required = input
            .columns
            .iter()
            .map(|c| listed(&config.required, &c.name))
            .collect();
        Ok(Trim {
            schema: input,
            trim,
            required,
        })
    }
}

impl Transform for Trim {
    fn output_schema(&self) -> Schema {
        self.schema.clone()
    }

    fn apply(&mut self, input: Rows) -> Result<Transformed, Error> {
        Ok(map_rows(&input, &self.schema, |row, out| {
            for (col, cell) in row.cells().enumerate() {
                let cell = match cell {
                    Cell::Text(s) if self.trim[col] => Cell::Text(s.trim()),
                    cell => cell,
                };
                if self.required[col] && matches!(cell, Cell::Null | Cell::Text("")) {
                    // An `Err` rejects this row only; the host records it with its position.
                    return Err(format!("{}: empty", self.schema.columns[col].name));
                }
                out.set(col, cell)?;
            }
            Ok(())
        }))
    }
}

weir_sdk::export_transformer!(Plugin);

#[cfg(test)]
mod tests {
    use super::*;
    use weir_sdk::{Column, RowsBuilder, RowsView};

    fn schema() -> Schema {
        Schema {
            columns: vec![
                Column::new("id", Kind::Integer, false),
                Column::new("name", Kind::Text, true),
            ],
            primary_key: vec!["id".into()],
        }
    }

    #[test]
    fn trims_text_and_rejects_empty_required_cells() {
        let mut builder = RowsBuilder::new(&schema());
        builder
            .push_row([Cell::Integer(1), Cell::Text("  Ada ")])
            .unwrap();
        builder
            .push_row([Cell::Integer(2), Cell::Text("   ")])
            .unwrap();
        builder.push_row([Cell::Integer(3), Cell::Null]).unwrap();
        let mut t = Plugin::open(r#"{"required": ["name"]}"#, schema()).unwrap();

        let out = t.apply(builder.finish()).unwrap();
        let view = RowsView::new(&out.rows);
        assert_eq!(view.len(), 1);
        assert_eq!(
            (view.integer(0, 0), view.text(0, 1)),
            (Some(1), Some("Ada"))
        );
        let rejects: Vec<_> = out
            .rejects
            .iter()
            .map(|r| (r.index, r.reason.as_str()))
            .collect();
        assert_eq!(rejects, [(1, "name: empty"), (2, "name: empty")]);
    }

    #[test]
    fn unknown_columns_and_keys_are_invalid_config() {
        let err = Plugin::open(r#"{"columns": ["nmae"]}"#, schema())
            .err()
            .unwrap();
        assert!(
            matches!(&err, Error::InvalidConfig(m) if m.contains("no column `nmae`")),
            "{err:?}"
        );
        let err = Plugin::open(r#"{"colums": []}"#, schema()).err().unwrap();
        assert!(matches!(err, Error::InvalidConfig(_)));
    }
}
