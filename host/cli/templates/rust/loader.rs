//! `{{name}}`: a weir loader. Writes every column of the stream into a table of a granted
//! SQLite database, replacing rows with the same primary key.
//!
//! It returns a write plan: the host runs the statements itself, inside the transaction that
//! also saves the checkpoint, so the rows never cross into the plugin and delivery is
//! exactly once when the history store commits to the same database.
//!
//! Config: `database` (a key of the pipeline's `grants.databases`) and `table`.

use serde::Deserialize;
use weir_sdk::sql::quote_identifier;
use weir_sdk::{Error, Kind, Loader, PluginInfo, Schema, WritePlan};

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

fn sqlite_type(kind: Kind) -> &'static str {
    match kind {
        Kind::Integer | Kind::Boolean => "INTEGER",
        Kind::Real => "REAL",
        Kind::Blob => "BLOB",
        _ => "TEXT",
    }
}

fn plan(config: Config, schema: &Schema) -> WritePlan {
    let table = quote_identifier(&config.table);
    let names: Vec<String> = schema
        .columns
        .iter()
        .map(|c| quote_identifier(&c.name))
        .collect();
    let mut columns: Vec<String> = schema
        .columns
        .iter()
        .zip(&names)
        .map(|(c, name)| format!("{name} {}", sqlite_type(c.kind)))
        .collect();
    if !schema.primary_key.is_empty() {
        let key: Vec<String> = schema
            .primary_key
            .iter()
            .map(|k| quote_identifier(k))
            .collect();
        columns.push(format!("PRIMARY KEY ({})", key.join(", ")));
    }
    let params: Vec<String> = (1..=names.len()).map(|i| format!("?{i}")).collect();
    WritePlan {
        database: config.database,
        // Runs before every stream, so it must be idempotent.
        setup: vec![format!(
            "CREATE TABLE IF NOT EXISTS {table} ({})",
            columns.join(", ")
        )],
        statement: format!(
            "INSERT OR REPLACE INTO {table} ({}) VALUES ({})",
            names.join(", "),
            params.join(", ")
        ),
        // Parameter ?k is bound to batch column params[k - 1].
        params: (0..names.len() as u32).collect(),
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
    use weir_sdk::Column;

    #[test]
    fn plans_a_table_and_an_upsert_of_every_column() {
        let schema = Schema {
            columns: vec![
                Column::new("id", Kind::Integer, false),
                Column::new("na\"me", Kind::Text, true),
            ],
            primary_key: vec!["id".into()],
        };
        let plan = Plugin::open(r#"{"database": "db", "table": "people"}"#, schema).unwrap();
        assert_eq!(plan.database, "db");
        assert_eq!(
            plan.setup,
            [
                r#"CREATE TABLE IF NOT EXISTS "people" ("id" INTEGER, "na""me" TEXT, PRIMARY KEY ("id"))"#
            ]
        );
        assert_eq!(
            plan.statement,
            r#"INSERT OR REPLACE INTO "people" ("id", "na""me") VALUES (?1, ?2)"#
        );
        assert_eq!(plan.params, [0, 1]);
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
