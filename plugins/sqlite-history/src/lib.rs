//! `sqlite-history`: one checkpoint per (pipeline, partition) in a table of a granted database
//! — SQLite or PostgreSQL, whichever the grant is (`dialect()`) — through the host's `sql`
//! import. The statements are the same on both but for the table's definition.
//!
//! When that database is also the one the loads write to, the host saves each checkpoint in
//! the batch's own commit transaction: exactly-once delivery.

mod time;

use serde::Deserialize;
use weir_sdk::sql::{Connection, Dialect, quote_identifier};
use weir_sdk::{CheckpointEntry, Error, History, HistoryStore, PluginInfo, Value};

const NAME: &str = "sqlite-history";

/// The plugin's configuration (a pipeline's `history.config`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SqliteHistoryConfig {
    /// Name of the granted database (a key of the pipeline's `grants.databases`).
    database: String,
    /// Table holding the checkpoints; created when missing.
    #[serde(default = "default_table")]
    table: String,
}

fn default_table() -> String {
    "_weir_checkpoints".to_owned()
}

const CONFIG_SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "sqlite-history",
  "type": "object",
  "additionalProperties": false,
  "required": ["database"],
  "properties": {
    "database": { "type": "string", "minLength": 1, "description": "granted database (a key of grants.databases)" },
    "table": { "type": "string", "minLength": 1, "default": "_weir_checkpoints", "description": "checkpoint table, created when missing" }
  }
}"#;

impl SqliteHistoryConfig {
    fn parse(config: &str) -> Result<Self, Error> {
        let parsed: Self = weir_sdk::parse_config(NAME, config)?;
        if parsed.database.is_empty() || parsed.table.is_empty() {
            return Err(Error::InvalidConfig(format!(
                "{NAME}: `database` and `table` must not be empty"
            )));
        }
        Ok(parsed)
    }
}

/// The SQL of one checkpoint table, built once per store because the table name is spliced in.
#[derive(Debug, PartialEq)]
struct Statements {
    create: String,
    load: String,
    save: String,
    entries_all: String,
    entries_of_pipeline: String,
    reset_pipeline: String,
    reset_partition: String,
}

impl Statements {
    fn for_table(table: &str, dialect: Dialect) -> Self {
        let t = quote_identifier(table);
        // SQLite: STRICT so a value of the wrong type is refused, not stored; PostgreSQL's
        // columns are typed already.
        let (text_type, strict) = match dialect {
            Dialect::Postgresql => ("text", ""),
            _ => ("TEXT", " STRICT"),
        };
        // `partition` is an SQLite keyword (window functions), so column names are quoted too.
        let columns = r#""pipeline", "partition", "checkpoint", "updated_at""#;
        Self {
            create: format!(
                r#"CREATE TABLE IF NOT EXISTS {t} ("pipeline" {text_type} NOT NULL, "partition" {text_type} NOT NULL, "checkpoint" {text_type} NOT NULL, "updated_at" {text_type} NOT NULL, PRIMARY KEY ("pipeline", "partition")){strict}"#
            ),
            load: format!(
                r#"SELECT "checkpoint" FROM {t} WHERE "pipeline" = ?1 AND "partition" = ?2"#
            ),
            save: format!(
                r#"INSERT INTO {t} ({columns}) VALUES (?1, ?2, ?3, ?4) ON CONFLICT ("pipeline", "partition") DO UPDATE SET "checkpoint" = excluded."checkpoint", "updated_at" = excluded."updated_at""#
            ),
            entries_all: format!(r#"SELECT {columns} FROM {t} ORDER BY "pipeline", "partition""#),
            entries_of_pipeline: format!(
                r#"SELECT {columns} FROM {t} WHERE "pipeline" = ?1 ORDER BY "partition""#
            ),
            reset_pipeline: format!(r#"DELETE FROM {t} WHERE "pipeline" = ?1"#),
            reset_partition: format!(
                r#"DELETE FROM {t} WHERE "pipeline" = ?1 AND "partition" = ?2"#
            ),
        }
    }
}

/// The plugin.
pub struct SqliteHistory;

/// An open checkpoint table.
pub struct Checkpoints {
    db: Connection,
    database: String,
    table: String,
    sql: Statements,
}

impl HistoryStore for SqliteHistory {
    type History = Checkpoints;

    fn describe() -> PluginInfo {
        PluginInfo {
            name: NAME.to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            description: "checkpoints in a table of a granted SQLite or PostgreSQL database"
                .to_owned(),
            config_schema: CONFIG_SCHEMA.to_owned(),
        }
    }

    fn open(config: &str) -> Result<Checkpoints, Error> {
        let SqliteHistoryConfig { database, table } = SqliteHistoryConfig::parse(config)?;
        let db = Connection::open(&database)
            .map_err(|e| e.context(format_args!("{NAME}: cannot open database `{database}`")))?;
        let dialect = db.dialect();
        let sql = Statements::for_table(&table, dialect);
        // PostgreSQL refuses any CREATE in a read-only transaction (listing checkpoints opens
        // one), even when the table exists: look first.
        if dialect == Dialect::Postgresql && table_exists(&db, &table)? {
            return Ok(Checkpoints {
                db,
                database,
                table,
                sql,
            });
        }
        if let Err(e) = db.execute(&sql.create, &[]) {
            // Workers (of one host or several) creating the table at once: PostgreSQL's
            // IF NOT EXISTS still fails the later ones on its catalog; the table is there then.
            let created_meanwhile =
                dialect == Dialect::Postgresql && table_exists(&db, &table).unwrap_or(false);
            if !created_meanwhile {
                return Err(e.context(format_args!(
                    "{NAME}: cannot create table `{table}` in `{database}`"
                )));
            }
        }
        Ok(Checkpoints {
            db,
            database,
            table,
            sql,
        })
    }
}

/// Whether `table` exists in the grant's schema (PostgreSQL).
fn table_exists(db: &Connection, table: &str) -> Result<bool, Error> {
    let found = db
        .query(
            "SELECT to_regclass(quote_ident(?1)) IS NOT NULL",
            &[Value::Text(table.to_owned())],
        )
        .map_err(|e| e.context(format_args!("{NAME}: cannot look for table `{table}`")))?;
    Ok(found.rows.first().and_then(|r| r.first()) == Some(&Value::Boolean(true)))
}

impl Checkpoints {
    /// Context for an error of the `sql` import: plugin, what it was doing, table.
    fn failed(&self, action: &str) -> impl FnOnce(Error) -> Error {
        move |e| {
            e.context(format_args!(
                "{NAME}: cannot {action} in `{}`.`{}`",
                self.database, self.table
            ))
        }
    }
}

fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

impl History for Checkpoints {
    fn commit_database(&self) -> Option<String> {
        Some(self.database.clone())
    }

    fn load(&mut self, pipeline: &str, partition: &str) -> Result<Option<String>, Error> {
        let result = self
            .db
            .query(&self.sql.load, &[text(pipeline), text(partition)])
            .map_err(self.failed("load a checkpoint"))?;
        Ok(result
            .rows
            .first()
            .and_then(|row| row.first()?.as_text().map(str::to_owned)))
    }

    fn save(&mut self, pipeline: &str, partition: &str, checkpoint: &str) -> Result<(), Error> {
        let params = [
            text(pipeline),
            text(partition),
            text(checkpoint),
            Value::Text(time::now_rfc3339()),
        ];
        self.db
            .execute(&self.sql.save, &params)
            .map_err(self.failed("save a checkpoint"))?;
        Ok(())
    }

    fn entries(&mut self, pipeline: Option<&str>) -> Result<Vec<CheckpointEntry>, Error> {
        let result = match pipeline {
            Some(p) => self.db.query(&self.sql.entries_of_pipeline, &[text(p)]),
            None => self.db.query(&self.sql.entries_all, &[]),
        }
        .map_err(self.failed("list checkpoints"))?;
        result
            .rows
            .iter()
            .map(|row| match row.as_slice() {
                [
                    Value::Text(pipeline),
                    Value::Text(partition),
                    Value::Text(checkpoint),
                    Value::Text(updated_at),
                ] => Ok(CheckpointEntry {
                    pipeline: pipeline.clone(),
                    partition: partition.clone(),
                    checkpoint: checkpoint.clone(),
                    updated_at: updated_at.clone(),
                }),
                // The table is STRICT and NOT NULL, so only a foreign table of that name gets here.
                other => Err(Error::BadData(format!(
                    "{NAME}: unexpected row in `{}`.`{}`: {other:?}",
                    self.database, self.table
                ))),
            })
            .collect()
    }

    fn reset(&mut self, pipeline: &str, partition: Option<&str>) -> Result<u32, Error> {
        let changed = match partition {
            Some(p) => self
                .db
                .execute(&self.sql.reset_partition, &[text(pipeline), text(p)]),
            None => self.db.execute(&self.sql.reset_pipeline, &[text(pipeline)]),
        }
        .map_err(self.failed("reset checkpoints"))?;
        Ok(u32::try_from(changed).unwrap_or(u32::MAX))
    }
}

weir_sdk::export_history_store!(SqliteHistory);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_the_table_and_refuses_unknown_keys() {
        let c = SqliteHistoryConfig::parse(r#"{"database": "ledger"}"#).unwrap();
        assert_eq!(
            (c.database.as_str(), c.table.as_str()),
            ("ledger", "_weir_checkpoints")
        );
        let err =
            SqliteHistoryConfig::parse(r#"{"database": "ledger", "tabel": "x"}"#).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidConfig(m) if m.contains("unknown field `tabel`")),
            "{err:?}"
        );
        let err = SqliteHistoryConfig::parse("{}").unwrap_err();
        assert!(
            matches!(&err, Error::InvalidConfig(m) if m.contains("missing field `database`")),
            "{err:?}"
        );
        assert!(SqliteHistoryConfig::parse(r#"{"database": ""}"#).is_err());
    }

    #[test]
    fn statements_quote_the_table() {
        let sql = Statements::for_table(r#"my "odd" table"#, Dialect::Sqlite);
        assert!(
            sql.create
                .starts_with(r#"CREATE TABLE IF NOT EXISTS "my ""odd"" table" ("#)
        );
        assert!(
            sql.create
                .ends_with(r#"PRIMARY KEY ("pipeline", "partition")) STRICT"#)
        );
        assert_eq!(
            sql.reset_partition,
            r#"DELETE FROM "my ""odd"" table" WHERE "pipeline" = ?1 AND "partition" = ?2"#
        );
        assert!(
            sql.save
                .contains(r#"ON CONFLICT ("pipeline", "partition") DO UPDATE SET"#)
        );
    }

    #[test]
    fn postgresql_tables_are_not_strict() {
        let sql = Statements::for_table("_weir_checkpoints", Dialect::Postgresql);
        assert_eq!(
            sql.create,
            r#"CREATE TABLE IF NOT EXISTS "_weir_checkpoints" ("pipeline" text NOT NULL, "partition" text NOT NULL, "checkpoint" text NOT NULL, "updated_at" text NOT NULL, PRIMARY KEY ("pipeline", "partition"))"#
        );
        // The same statements otherwise: `?N` placeholders become `$N` in the host.
        assert_eq!(
            sql.save,
            Statements::for_table("_weir_checkpoints", Dialect::Sqlite).save
        );
    }

    #[test]
    fn config_schema_is_json() {
        let schema: serde_json::Value = serde_json::from_str(CONFIG_SCHEMA).unwrap();
        assert_eq!(schema["required"][0], "database");
    }
}
