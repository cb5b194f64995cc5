//! `{{name}}`: a weir history store. Keeps one checkpoint per (pipeline, partition) in a
//! table of a granted SQLite database, through the host's `sql` import.
//!
//! `commit_database` names that database, so when the loads write to it too the host saves
//! each checkpoint in the batch's own transaction: exactly once.
//!
//! Config: `database` (a key of the pipeline's `grants.databases`) and `table`.

use serde::Deserialize;
use weir_sdk::sql::{Connection, QueryResult, quote_identifier};
use weir_sdk::{CheckpointEntry, Error, History, HistoryStore, PluginInfo, Value};

const NAME: &str = "{{name}}";

/// The pipeline's `config` table for this plugin, as JSON.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    database: String,
    #[serde(default = "default_table")]
    table: String,
}

fn default_table() -> String {
    "{{crate}}_checkpoints".to_owned()
}

const CONFIG_SCHEMA: &str = r#"{
  "type": "object",
  "additionalProperties": false,
  "required": ["database"],
  "properties": {
    "database": { "type": "string", "description": "granted database (a key of grants.databases)" },
    "table": { "type": "string", "default": "{{crate}}_checkpoints" }
  }
}"#;

/// The statements of one checkpoint table. Plain strings, so unit tests can check them: only
/// a host has databases, and natively the `sql` import panics.
#[derive(Debug)]
struct Statements {
    create: String,
    load: String,
    save: String,
    entries: String,
    reset: String,
}

impl Statements {
    fn new(table: &str) -> Self {
        let t = quote_identifier(table);
        Self {
            create: format!(
                r#"CREATE TABLE IF NOT EXISTS {t} ("pipeline" TEXT NOT NULL, "partition" TEXT NOT NULL, "checkpoint" TEXT NOT NULL, "updated_at" TEXT NOT NULL, PRIMARY KEY ("pipeline", "partition"))"#
            ),
            load: format!(
                r#"SELECT "checkpoint" FROM {t} WHERE "pipeline" = ?1 AND "partition" = ?2"#
            ),
            save: format!(
                r#"INSERT OR REPLACE INTO {t} VALUES (?1, ?2, ?3, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))"#
            ),
            entries: format!(
                r#"SELECT "pipeline", "partition", "checkpoint", "updated_at" FROM {t} WHERE ?1 IS NULL OR "pipeline" = ?1 ORDER BY 1, 2"#
            ),
            reset: format!(
                r#"DELETE FROM {t} WHERE "pipeline" = ?1 AND (?2 IS NULL OR "partition" = ?2)"#
            ),
        }
    }
}

/// The plugin.
pub struct Plugin;

/// An open store.
pub struct Checkpoints {
    db: Connection,
    database: String,
    sql: Statements,
}

fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

fn optional(s: Option<&str>) -> Value {
    s.map_or(Value::Null, text)
}

fn cell(result: &QueryResult, row: usize, col: usize) -> String {
    result.rows[row][col]
        .as_text()
        .unwrap_or_default()
        .to_owned()
}

impl HistoryStore for Plugin {
    type History = Checkpoints;

    fn describe() -> PluginInfo {
        PluginInfo {
            name: NAME.to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            description: "{{description}}".to_owned(),
            config_schema: CONFIG_SCHEMA.to_owned(),
        }
    }

    fn open(config: &str) -> Result<Checkpoints, Error> {
        let config: Config = weir_sdk::parse_config(NAME, config)?;
        let sql = Statements::new(&config.table);
        let db = Connection::open(&config.database).map_err(|e| e.context(NAME))?;
        db.execute(&sql.create, &[]).map_err(|e| e.context(NAME))?;
        Ok(Checkpoints {
            db,
            database: config.database,
            sql,
        })
    }
}

impl History for Checkpoints {
    fn commit_database(&self) -> Option<String> {
        Some(self.database.clone())
    }

    fn load(&mut self, pipeline: &str, partition: &str) -> Result<Option<String>, Error> {
        let result = self
            .db
            .query(&self.sql.load, &[text(pipeline), text(partition)])?;
        Ok((!result.rows.is_empty()).then(|| cell(&result, 0, 0)))
    }

    fn save(&mut self, pipeline: &str, partition: &str, checkpoint: &str) -> Result<(), Error> {
        let params = [text(pipeline), text(partition), text(checkpoint)];
        self.db.execute(&self.sql.save, &params)?;
        Ok(())
    }

    fn entries(&mut self, pipeline: Option<&str>) -> Result<Vec<CheckpointEntry>, Error> {
        let result = self.db.query(&self.sql.entries, &[optional(pipeline)])?;
        Ok((0..result.rows.len())
            .map(|row| CheckpointEntry {
                pipeline: cell(&result, row, 0),
                partition: cell(&result, row, 1),
                checkpoint: cell(&result, row, 2),
                updated_at: cell(&result, row, 3),
            })
            .collect())
    }

    fn reset(&mut self, pipeline: &str, partition: Option<&str>) -> Result<u32, Error> {
        let changed = self
            .db
            .execute(&self.sql.reset, &[text(pipeline), optional(partition)])?;
        Ok(u32::try_from(changed).unwrap_or(u32::MAX))
    }
}

weir_sdk::export_history_store!(Plugin);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_quote_the_table_name() {
        let sql = Statements::new("my \"checkpoints\"");
        assert!(
            sql.create
                .starts_with(r#"CREATE TABLE IF NOT EXISTS "my ""checkpoints""" ("#)
        );
        assert!(sql.save.contains("INSERT OR REPLACE"));
    }

    #[test]
    fn config_needs_a_database() {
        let err = weir_sdk::parse_config::<Config>(NAME, "{}").unwrap_err();
        assert!(
            matches!(&err, Error::InvalidConfig(m) if m.contains("missing field `database`")),
            "{err:?}"
        );
        let config: Config = weir_sdk::parse_config(NAME, r#"{"database": "db"}"#).unwrap();
        assert_eq!(config.table, default_table());
    }
}
