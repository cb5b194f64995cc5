//! Tables of the state database. `user_version` says which layout a file has, so a later
//! version can migrate it instead of guessing.

use std::path::Path;

use rusqlite::Connection;

/// 1: events, runs, run_partitions. 2: `runs.plugins` (the plugin versions a run used),
/// `runs.bytes` and `run_partitions.bytes` (row data read). 3: `runs.rows_filtered` and
/// `runs.details` (per destination, per HTTP connection, transform counts).
const VERSION: i64 = 3;

/// Open the file, create the tables if needed, and set the pragmas every connection uses.
pub(crate) fn open(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    // WAL: the API reads while the writer commits. NORMAL: an OS crash may lose the last
    // events, never corrupt the file — the data itself is committed elsewhere, exactly once.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version == 1 {
        conn.execute_batch(
            "BEGIN;
            ALTER TABLE runs ADD COLUMN plugins TEXT;
            ALTER TABLE runs ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0;
            ALTER TABLE run_partitions ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0;
            PRAGMA user_version = 2;
            COMMIT;",
        )?;
    }
    if version == 1 || version == 2 {
        conn.execute_batch(
            "BEGIN;
            ALTER TABLE runs ADD COLUMN rows_filtered INTEGER NOT NULL DEFAULT 0;
            ALTER TABLE runs ADD COLUMN details TEXT;
            PRAGMA user_version = 3;
            COMMIT;",
        )?;
    } else if version < VERSION {
        conn.execute_batch(
            "BEGIN;
            CREATE TABLE IF NOT EXISTS events (
                id INTEGER PRIMARY KEY,
                time_ms INTEGER NOT NULL,
                pipeline TEXT,
                run TEXT,
                partition TEXT,
                kind TEXT NOT NULL,
                data TEXT NOT NULL
            ) STRICT;
            CREATE INDEX IF NOT EXISTS events_by_pipeline ON events (pipeline, id);
            CREATE INDEX IF NOT EXISTS events_by_run ON events (run, id);
            CREATE TABLE IF NOT EXISTS runs (
                id TEXT PRIMARY KEY,
                pipeline TEXT NOT NULL,
                trigger TEXT,
                status TEXT NOT NULL,
                started_ms INTEGER NOT NULL,
                ended_ms INTEGER,
                partitions INTEGER,
                rows_read INTEGER NOT NULL DEFAULT 0,
                rows_loaded INTEGER NOT NULL DEFAULT 0,
                rows_rejected INTEGER NOT NULL DEFAULT 0,
                batches INTEGER NOT NULL DEFAULT 0,
                error TEXT,
                plugins TEXT,
                bytes INTEGER NOT NULL DEFAULT 0,
                rows_filtered INTEGER NOT NULL DEFAULT 0,
                details TEXT
            ) STRICT;
            CREATE INDEX IF NOT EXISTS runs_by_pipeline ON runs (pipeline, started_ms);
            CREATE INDEX IF NOT EXISTS runs_by_start ON runs (started_ms);
            CREATE TABLE IF NOT EXISTS run_partitions (
                run_id TEXT NOT NULL,
                partition TEXT NOT NULL,
                status TEXT NOT NULL,
                rows_read INTEGER NOT NULL DEFAULT 0,
                rows_loaded INTEGER NOT NULL DEFAULT 0,
                rows_rejected INTEGER NOT NULL DEFAULT 0,
                batches INTEGER NOT NULL DEFAULT 0,
                bytes INTEGER NOT NULL DEFAULT 0,
                checkpoint TEXT,
                error TEXT,
                PRIMARY KEY (run_id, partition)
            ) STRICT, WITHOUT ROWID;
            PRAGMA user_version = 3;
            COMMIT;",
        )?;
    } else if version > VERSION {
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
            Some(format!(
                "the file was written by a newer weir (layout {version}, this one knows {VERSION})"
            )),
        ));
    }
    Ok(conn)
}
