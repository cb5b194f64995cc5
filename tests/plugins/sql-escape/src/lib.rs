//! `sql-escape`: a plugin that tries, from its `open`, every way out of its database grant
//! through the host's `sql` import, and reports each attempt. Built three times by
//! `just test-plugins`, once per plugin kind that gets databases:
//!
//! | file                         | kind          | name                   |
//! |------------------------------|---------------|------------------------|
//! | `sql_escape_transform.wasm`  | transformer   | `sql-escape-transform` |
//! | `sql_escape_load.wasm`       | loader        | `sql-escape-load`      |
//! | `sql_escape_history.wasm`    | history store | `sql-escape-history`   |
//!
//! Config: `database` (a granted database name, required), `outside` (a directory outside
//! every grant, where ATTACH / VACUUM INTO would create files; required), `mode`:
//!
//! - `"escape"` (default): run every statement of [`ATTEMPTS`]; log one line per attempt,
//!   `sql-escape: <attempt>: refused: <host error>` or `sql-escape: <attempt>: ESCAPED`; then
//!   fail `open` with `access-denied("sql-escape: all N attempts were refused")` if every one was
//!   refused with `access-denied`, else `other("sql-escape: ESCAPED: <attempts>")`.
//! - `"runaway"`: log `sql-escape: runaway query starts`, then `query` a recursive CTE that
//!   never ends (`count(*)` over an endless series); return whatever the host says.
//! - `"runaway-rows"`: the same, selecting every row of the endless series.
//! - `"postgres"`: like `"escape"`, with the PostgreSQL attempts of [`PG_ATTEMPTS`] (the
//!   grant must be a PostgreSQL database; `outside` is unused there).
//!
//! Attempts that need a host table expect `_weir_rejects` to exist (run any pipeline on the
//! database first): otherwise SQLite answers "no such table" before the rules are asked.

use serde::Deserialize;
use weir_sdk::sql::Connection;
use weir_sdk::{Error, PluginInfo};

#[cfg(feature = "transform")]
const NAME: &str = "sql-escape-transform";
#[cfg(feature = "load")]
const NAME: &str = "sql-escape-load";
#[cfg(feature = "history")]
const NAME: &str = "sql-escape-history";

const CONFIG_SCHEMA: &str = r#"{
  "type": "object",
  "additionalProperties": false,
  "required": ["database", "outside"],
  "properties": {
    "database": { "type": "string" },
    "outside": { "type": "string" },
    "mode": { "enum": ["escape", "runaway", "runaway-rows", "postgres"] }
  }
}"#;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    database: String,
    outside: String,
    #[serde(default = "default_mode")]
    mode: String,
}

fn default_mode() -> String {
    "escape".into()
}

/// How an attempt reaches the host.
#[derive(Clone, Copy)]
enum Via {
    Execute,
    Query,
}

/// The attempts, by name: (name, statement with `{outside}` for the outside directory, via).
const ATTEMPTS: &[(&str, &str, Via)] = &[
    (
        "attach",
        "ATTACH DATABASE '{outside}/attached.db' AS x",
        Via::Execute,
    ),
    ("vacuum", "VACUUM", Via::Execute),
    (
        "vacuum-into",
        "VACUUM INTO '{outside}/copy.db'",
        Via::Execute,
    ),
    ("detach", "DETACH DATABASE main", Via::Execute),
    ("begin", "BEGIN", Via::Execute),
    ("commit", "COMMIT", Via::Execute),
    ("end", "END", Via::Execute),
    ("rollback", "ROLLBACK", Via::Execute),
    ("savepoint", "SAVEPOINT sp", Via::Execute),
    ("release", "RELEASE sp", Via::Execute),
    ("rollback-to", "ROLLBACK TO sp", Via::Execute),
    ("journal-off", "PRAGMA journal_mode=OFF", Via::Query),
    (
        "max-page-count",
        "PRAGMA max_page_count=2147483646",
        Via::Query,
    ),
    ("writable-schema", "PRAGMA writable_schema=ON", Via::Query),
    ("synchronous-off", "PRAGMA synchronous=OFF", Via::Query),
    (
        "database-list",
        "SELECT file FROM pragma_database_list",
        Via::Query,
    ),
    (
        "load-extension",
        "SELECT load_extension('{outside}/evil.so')",
        Via::Query,
    ),
    (
        "trigger",
        "CREATE TRIGGER sql_escape AFTER INSERT ON _weir_rejects BEGIN DELETE FROM _weir_rejects; END",
        Via::Execute,
    ),
    (
        "temp-trigger",
        "CREATE TEMP TRIGGER sql_escape AFTER INSERT ON main._weir_rejects BEGIN SELECT 1; END",
        Via::Execute,
    ),
    (
        "temp-shadow",
        "CREATE TEMP TABLE _weir_rejects (x)",
        Via::Execute,
    ),
    (
        "rejects-insert",
        "INSERT INTO _weir_rejects (pipeline, partition, run_id, stage, reason, raw) VALUES ('x', 'x', 'x', 'x', 'forged', 'x')",
        Via::Execute,
    ),
    ("rejects-delete", "DELETE FROM _weir_rejects", Via::Execute),
    (
        "rejects-update",
        "UPDATE _weir_rejects SET reason = 'forged'",
        Via::Execute,
    ),
    ("rejects-drop", "DROP TABLE _weir_rejects", Via::Execute),
    (
        "rejects-alter",
        "ALTER TABLE _weir_rejects ADD COLUMN forged TEXT",
        Via::Execute,
    ),
    (
        "rejects-index",
        "CREATE INDEX sql_escape ON _weir_rejects (reason)",
        Via::Execute,
    ),
    (
        "virtual-table",
        "CREATE VIRTUAL TABLE sql_escape USING fts5(x)",
        Via::Execute,
    ),
];

/// The ways out of a PostgreSQL grant: end or split the host's transaction, change the
/// session, reach the server's files and programs, run code, take the host's locks, leave the
/// granted schema, write the host's tables.
const PG_ATTEMPTS: &[(&str, &str, Via)] = &[
    ("begin", "BEGIN", Via::Execute),
    ("commit", "COMMIT", Via::Execute),
    ("end", "END", Via::Execute),
    ("rollback", "ROLLBACK", Via::Execute),
    ("savepoint", "SAVEPOINT sp", Via::Execute),
    ("release", "RELEASE SAVEPOINT sp", Via::Execute),
    (
        "prepare-transaction",
        "PREPARE TRANSACTION 'x'",
        Via::Execute,
    ),
    ("set-role", "SET ROLE postgres", Via::Execute),
    (
        "set-session-authorization",
        "SET SESSION AUTHORIZATION postgres",
        Via::Execute,
    ),
    (
        "set-search-path",
        "SET search_path TO pg_temp, public",
        Via::Execute,
    ),
    ("reset", "RESET ALL", Via::Execute),
    (
        "set-config",
        "SELECT set_config('search_path', 'pg_temp', false)",
        Via::Query,
    ),
    (
        "copy-to-program",
        "COPY (SELECT 1) TO PROGRAM 'touch /tmp/sql-escape'",
        Via::Execute,
    ),
    ("copy-from-file", "COPY t FROM '/etc/passwd'", Via::Execute),
    (
        "read-file",
        "SELECT pg_read_file('/etc/passwd')",
        Via::Query,
    ),
    ("do", "DO $$ BEGIN PERFORM 1; END $$", Via::Execute),
    ("call", "CALL p()", Via::Execute),
    ("listen", "LISTEN ch", Via::Execute),
    ("notify", "NOTIFY ch", Via::Execute),
    (
        "grant",
        "GRANT ALL ON SCHEMA public TO PUBLIC",
        Via::Execute,
    ),
    (
        "create-function",
        "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
        Via::Execute,
    ),
    ("create-extension", "CREATE EXTENSION dblink", Via::Execute),
    (
        "create-role",
        "CREATE ROLE intruder SUPERUSER",
        Via::Execute,
    ),
    (
        "alter-system",
        "ALTER SYSTEM SET log_statement = 'none'",
        Via::Execute,
    ),
    ("vacuum", "VACUUM", Via::Execute),
    ("advisory-lock", "SELECT pg_advisory_lock(1)", Via::Query),
    (
        "other-schema",
        "CREATE TABLE pg_temp.sneaky (x int)",
        Via::Execute,
    ),
    (
        "other-schema-read",
        "SELECT * FROM elsewhere.secrets",
        Via::Query,
    ),
    ("two-statements", "SELECT 1; COMMIT", Via::Query),
    ("rejects-delete", "DELETE FROM _weir_rejects", Via::Execute),
    ("rejects-drop", "DROP TABLE _weir_rejects", Via::Execute),
    (
        "rejects-index-drop",
        "DROP INDEX _weir_rejects_by_run",
        Via::Execute,
    ),
];

const RUNAWAY_COUNT: &str =
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c";
const RUNAWAY_ROWS: &str =
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c";

fn describe() -> PluginInfo {
    PluginInfo {
        name: NAME.into(),
        version: env!("CARGO_PKG_VERSION").into(),
        description: "test plugin: tries to leave its database grant through sql".into(),
        config_schema: CONFIG_SCHEMA.into(),
    }
}

/// What `open` does, whatever the kind: it never succeeds.
fn open(config: &str) -> Error {
    let config: Config = match weir_sdk::parse_config(NAME, config) {
        Ok(c) => c,
        Err(e) => return e,
    };
    let db = match Connection::open(&config.database) {
        Ok(db) => db,
        Err(e) => return e.context(format_args!("{NAME}: cannot open {}", config.database)),
    };
    match config.mode.as_str() {
        "runaway" | "runaway-rows" => {
            weir_sdk::log::info(&format!("{NAME}: runaway query starts"));
            let sql = if config.mode == "runaway" {
                RUNAWAY_COUNT
            } else {
                RUNAWAY_ROWS
            };
            match db.query(sql, &[]) {
                Ok(result) => Error::Other(format!(
                    "{NAME}: the runaway query returned {} rows",
                    result.rows.len()
                )),
                Err(e) => e,
            }
        }
        "postgres" => escape(&db, PG_ATTEMPTS, ""),
        _ => escape(&db, ATTEMPTS, &config.outside),
    }
}

fn escape(db: &Connection, attempts: &[(&str, &str, Via)], outside: &str) -> Error {
    let mut escaped = Vec::new();
    for (name, statement, via) in attempts {
        let statement = statement.replace("{outside}", outside.trim_end_matches('/'));
        let outcome = match via {
            Via::Execute => db.execute(&statement, &[]).map(drop),
            Via::Query => db.query(&statement, &[]).map(drop),
        };
        match outcome {
            Err(Error::AccessDenied(why)) => {
                weir_sdk::log::info(&format!("{NAME}: {name}: refused: {why}"));
            }
            Err(other) => {
                weir_sdk::log::warn(&format!(
                    "{NAME}: {name}: ESCAPED (failed, not refused: {other:?})"
                ));
                escaped.push(*name);
            }
            Ok(()) => {
                weir_sdk::log::warn(&format!("{NAME}: {name}: ESCAPED"));
                escaped.push(*name);
            }
        }
    }
    if escaped.is_empty() {
        Error::AccessDenied(format!(
            "{NAME}: all {} attempts were refused",
            attempts.len()
        ))
    } else {
        Error::Other(format!("{NAME}: ESCAPED: {}", escaped.join(", ")))
    }
}

/// The plugin.
pub struct SqlEscape;

/// Never made: `open` always fails.
pub enum Never {}

#[cfg(feature = "transform")]
mod kind {
    use super::*;
    use weir_sdk::{Rows, Schema, Transformed};

    impl weir_sdk::Transformer for SqlEscape {
        type Transform = Never;
        fn describe() -> PluginInfo {
            describe()
        }
        fn open(config: &str, _input: Schema) -> Result<Never, Error> {
            Err(open(config))
        }
    }

    impl weir_sdk::Transform for Never {
        fn output_schema(&self) -> Schema {
            match *self {}
        }
        fn apply(&mut self, _input: Rows) -> Result<Transformed, Error> {
            match *self {}
        }
    }

    weir_sdk::export_transformer!(SqlEscape);
}

#[cfg(feature = "load")]
mod kind {
    use super::*;
    use weir_sdk::{Schema, WritePlan};

    impl weir_sdk::Loader for SqlEscape {
        fn describe() -> PluginInfo {
            describe()
        }
        fn open(config: &str, _schema: Schema) -> Result<WritePlan, Error> {
            Err(open(config))
        }
    }

    weir_sdk::export_loader!(SqlEscape);
}

#[cfg(feature = "history")]
mod kind {
    use super::*;
    use weir_sdk::CheckpointEntry;

    impl weir_sdk::HistoryStore for SqlEscape {
        type History = Never;
        fn describe() -> PluginInfo {
            describe()
        }
        fn open(config: &str) -> Result<Never, Error> {
            Err(open(config))
        }
    }

    impl weir_sdk::History for Never {
        fn commit_database(&self) -> Option<String> {
            match *self {}
        }
        fn load(&mut self, _: &str, _: &str) -> Result<Option<String>, Error> {
            match *self {}
        }
        fn save(&mut self, _: &str, _: &str, _: &str) -> Result<(), Error> {
            match *self {}
        }
        fn entries(&mut self, _: Option<&str>) -> Result<Vec<CheckpointEntry>, Error> {
            match *self {}
        }
        fn reset(&mut self, _: &str, _: Option<&str>) -> Result<u32, Error> {
            match *self {}
        }
    }

    weir_sdk::export_history_store!(SqlEscape);
}
