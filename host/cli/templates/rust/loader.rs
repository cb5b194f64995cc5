//! `{{name}}`: a weir loader. Writes every column of the stream into a table of a granted
//! database, replacing rows with the same primary key.
//!
//! It returns a write plan: it says which table, which columns of which kinds, and how (append,
//! or upsert by key); the host creates the table, writes the rows itself inside the transaction
//! that also saves the checkpoint, so the rows never cross into the plugin and delivery is
//! exactly once when the history store commits to the same database. The same plan works on
//! SQLite and PostgreSQL.
//!
//! Config: `database` (a key of the pipeline's `grants.databases`) and `table`.

use serde::Deserialize;
use weir_sdk::{Error, Loader, Migration, PlanColumn, PluginInfo, Schema, WriteMode, WritePlan};

const NAME: &str = "{{name}}";

/// The pipeline's `config` table for this plugin, as JSON.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    database: String,
    table: String,
}

const CONFIG_SCHEMA: &str = r#"{
  "type": "object",
  "additionalProperties": false,
  "required": ["database", "table"],
  "properties": {
    "database": { "type": "string", "description": "granted database (a key of grants.databases)" },
    "table": { "type": "string", "description": "table to write, created when missing" }
  }
}"#;

/// The plugin.
pub struct Plugin;

fn plan(config: Config, schema: &Schema) -> WritePlan {
    let key = schema.primary_key.clone();
    WritePlan {
        database: config.database,
        table: config.table,
        columns: schema
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| PlanColumn {
                name: c.name.clone(),
                kind: c.kind,
                nullable: !key.contains(&c.name),
                source: i as u32,
            })
            .collect(),
        mode: if key.is_empty() {
            WriteMode::Append
        } else {
            WriteMode::Upsert
        },
        key,
        // `create table if not exists`, applied by the host with the first batch. A loader
        // that also adds columns to an existing table reads its columns through `weir_sdk::sql`
        // here and lists `Migration::AddColumn` for the missing ones.
        migrations: vec![Migration::CreateTable],
        full_text: Vec::new(),
        deleted_by: None,
    }
}

impl Loader for Plugin {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: NAME.to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            description: "{{description}}".to_owned(),
            config_schema: CONFIG_SCHEMA.to_owned(),
        }
    }

    fn open(config: &str, schema: Schema) -> Result<WritePlan, Error> {
        let config: Config = weir_sdk::parse_config(NAME, config)?;
        if schema.columns.is_empty() {
            return Err(Error::InvalidConfig(format!(
                "{NAME}: the stream has no columns"
            )));
        }
        Ok(plan(config, &schema))
    }
}

weir_sdk::export_loader!(Plugin);

#[cfg(test)]
mod tests {
    use super::*;
    use weir_sdk::{Column, Kind};

    #[test]
    fn plans_a_table_and_an_upsert_of_every_column() {
        let schema = Schema {
            columns: vec![
                Column::new("id", Kind::Integer, false),
                Column::new("name", Kind::Text, true),
            ],
            primary_key: vec!["id".into()],
        };
        let plan = Plugin::open(r#"{"database": "db", "table": "people"}"#, schema).unwrap();
        assert_eq!((plan.database.as_str(), plan.table.as_str()), ("db", "people"));
        assert_eq!(plan.mode, WriteMode::Upsert);
        assert_eq!(plan.key, ["id"]);
        let columns: Vec<(&str, Kind, bool, u32)> = plan
            .columns
            .iter()
            .map(|c| (c.name.as_str(), c.kind, c.nullable, c.source))
            .collect();
        assert_eq!(
            columns,
            [("id", Kind::Integer, false, 0), ("name", Kind::Text, true, 1)]
        );
        assert_eq!(plan.migrations, [Migration::CreateTable]);
    }

    #[test]
    fn a_missing_table_is_invalid_config() {
        let err = Plugin::open(
            r#"{"database": "db"}"#,
            Schema {
                columns: vec![],
                primary_key: vec![],
            },
        )
        .unwrap_err();
        assert!(
            matches!(&err, Error::InvalidConfig(m) if m.contains("missing field `table`")),
            "{err:?}"
        );
    }
}
