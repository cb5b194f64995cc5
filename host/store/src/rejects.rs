//! Rejects live where the rows went: the `_weir_rejects` table of a pipeline's commit database,
//! committed with the batch (docs/design.md, "The commit protocol"). This module owns the
//! table: its schema, the insert the engine runs inside a batch's transaction, and the paged
//! reads of the API.

use std::path::PathBuf;

use anyhow::Context as _;
use rusqlite::{Connection, OptionalExtension as _, params};
use serde::Serialize;

/// The rejects table every commit database gets. Host-owned: plugins may not write it.
pub const TABLE: &str = "_weir_rejects";

/// A row that did not make it, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectRecord {
    /// Which step refused it: `csv-extract`, `map-transform`, `sqlite-load`.
    pub stage: String,
    /// Source position (line), when known.
    pub position: Option<u64>,
    pub reason: String,
    /// The raw record, or the row's values as JSON.
    pub raw: String,
}

/// Identifies the rows of a reject: pipeline, partition (its file), run.
pub struct RejectContext<'a> {
    pub pipeline: &'a str,
    pub partition: &'a str,
    pub run_id: &'a str,
}

/// Create the rejects table if needed. Idempotent.
pub fn ensure_table(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS {TABLE} (
            id INTEGER PRIMARY KEY,
            pipeline TEXT NOT NULL,
            partition TEXT NOT NULL,
            run_id TEXT NOT NULL,
            file TEXT,
            line INTEGER,
            stage TEXT NOT NULL,
            reason TEXT NOT NULL,
            raw TEXT NOT NULL,
            created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
        ) STRICT;
        CREATE INDEX IF NOT EXISTS {TABLE}_by_run ON {TABLE} (pipeline, run_id);"
    ))
}

/// Whether the table exists (a database the pipeline has not committed to yet has none).
pub fn table_exists(conn: &Connection) -> rusqlite::Result<bool> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [TABLE],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// Write rejects through the batch's open transaction.
pub fn insert(
    conn: &Connection,
    ctx: &RejectContext<'_>,
    rejects: &[RejectRecord],
) -> rusqlite::Result<()> {
    if rejects.is_empty() {
        return Ok(());
    }
    let mut stmt = conn.prepare_cached(&format!(
        "INSERT INTO {TABLE} (pipeline, partition, run_id, file, line, stage, reason, raw)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
    ))?;
    for r in rejects {
        stmt.execute(params![
            ctx.pipeline,
            ctx.partition,
            ctx.run_id,
            ctx.partition,
            r.position.map(|p| p as i64),
            r.stage,
            r.reason,
            r.raw
        ])?;
    }
    Ok(())
}

/// The rejects table on PostgreSQL: the same columns, `created_at` a `timestamptz`.
/// Concurrent workers create it under an advisory lock (PostgreSQL's `IF NOT EXISTS` races
/// on the catalog otherwise).
pub async fn ensure_table_postgres(
    client: &weir_postgres::tokio_postgres::Client,
    in_transaction: bool,
) -> Result<(), weir_postgres::tokio_postgres::Error> {
    let create = format!(
        "CREATE TABLE IF NOT EXISTS {TABLE} (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            pipeline text NOT NULL,
            partition text NOT NULL,
            run_id text NOT NULL,
            file text,
            line bigint,
            stage text NOT NULL,
            reason text NOT NULL,
            raw text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX IF NOT EXISTS {TABLE}_by_run ON {TABLE} (pipeline, run_id);"
    );
    if in_transaction {
        return client.batch_execute(&create).await;
    }
    crate::pg_tables::create_once(client, TABLE, &create).await
}

/// Write rejects through the batch's open transaction on PostgreSQL, in one binary COPY.
pub async fn insert_postgres(
    client: &weir_postgres::tokio_postgres::Client,
    ctx: &RejectContext<'_>,
    rejects: &[RejectRecord],
) -> Result<(), weir_postgres::tokio_postgres::Error> {
    use weir_postgres::copy::{CellRef, CopyBuffer, Target};
    if rejects.is_empty() {
        return Ok(());
    }
    // PostgreSQL text cannot hold NUL; a raw record from a binary file can.
    let clean = |s: &str| s.replace('\0', "\u{FFFD}");
    let mut copy = CopyBuffer::new();
    for r in rejects {
        let (stage, reason, raw) = (clean(&r.stage), clean(&r.reason), clean(&r.raw));
        let line = r
            .position
            .map_or(CellRef::Null, |p| CellRef::Integer(p as i64));
        let cells = [
            (CellRef::Text(ctx.pipeline.as_bytes()), Target::Text),
            (CellRef::Text(ctx.partition.as_bytes()), Target::Text),
            (CellRef::Text(ctx.run_id.as_bytes()), Target::Text),
            (CellRef::Text(ctx.partition.as_bytes()), Target::Text),
            (line, Target::Int8),
            (CellRef::Text(stage.as_bytes()), Target::Text),
            (CellRef::Text(reason.as_bytes()), Target::Text),
            (CellRef::Text(raw.as_bytes()), Target::Text),
        ];
        copy.row(cells.into_iter())
            .expect("text without NUL and integers always encode");
    }
    copy.finish();
    weir_postgres::copy::copy_in(
        client,
        &format!(
            "COPY {TABLE} (pipeline, partition, run_id, file, line, stage, reason, raw) FROM STDIN (FORMAT binary)"
        ),
        copy.take(),
    )
    .await
    .map(drop)
}

/// Continue `page` (from `rejects_page`, with `skip` what is left of its offset) with the
/// rejects of `run_id` in PostgreSQL databases, in the order given: a read-only transaction on
/// each, databases without the table skipped. Errors name the grant, never its password.
pub async fn rejects_page_postgres(
    page: &mut RejectPage,
    mut skip: u64,
    databases: &[(String, weir_postgres::PgGrant)],
    pipeline: &str,
    run_id: &str,
) -> anyhow::Result<()> {
    for (name, grant) in databases {
        let session =
            weir_postgres::PgSession::open(grant, weir_postgres::SessionMode::ReadOnly).await?;
        let state = session.lock().await;
        let client = state.client();
        let failed = |e: weir_postgres::tokio_postgres::Error| {
            anyhow::anyhow!(
                "cannot read rejects from database \"{name}\": {}",
                weir_postgres::explain(&e)
            )
        };
        let exists: bool = client
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&TABLE])
            .await
            .map_err(failed)?
            .get(0);
        if !exists {
            continue;
        }
        let count: i64 = client
            .query_one(
                &format!("SELECT count(*) FROM {TABLE} WHERE pipeline = $1 AND run_id = $2"),
                &[&pipeline, &run_id],
            )
            .await
            .map_err(failed)?
            .get(0);
        let count = count as u64;
        let wanted = page.limit.saturating_sub(page.rejects.len() as u64);
        if wanted > 0 && skip < count {
            let rows = client
                .query(
                    &format!(
                        "SELECT partition, file, line, stage, reason, raw,
                                to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')
                         FROM {TABLE} WHERE pipeline = $1 AND run_id = $2
                         ORDER BY file, line, id LIMIT $3 OFFSET $4"
                    ),
                    &[&pipeline, &run_id, &(wanted as i64), &(skip as i64)],
                )
                .await
                .map_err(failed)?;
            for r in rows {
                page.rejects.push(RejectRow {
                    database: name.clone(),
                    partition: r.get(0),
                    file: r.get(1),
                    line: r.get(2),
                    stage: r.get(3),
                    reason: r.get(4),
                    raw: r.get(5),
                    created_at: r.get(6),
                });
            }
        }
        page.total += count;
        skip = skip.saturating_sub(count);
    }
    Ok(())
}

/// One rejected row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RejectRow {
    /// The granted database it is in.
    pub database: String,
    pub partition: String,
    pub file: Option<String>,
    pub line: Option<i64>,
    /// Which step refused it.
    pub stage: String,
    pub reason: String,
    /// The raw record (or the row's values as JSON).
    pub raw: String,
    pub created_at: String,
}

/// A page of rejects and how many there are in all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RejectPage {
    pub total: u64,
    pub offset: u64,
    pub limit: u64,
    pub rejects: Vec<RejectRow>,
}

/// Rejects of `run_id` of `pipeline`, ordered by database, file and line, skipping `offset`.
/// `databases` are (name, file) of the pipeline's grants; files that do not exist yet or have
/// no rejects table are skipped. Opened read-only: this never creates or changes a file.
///
/// `open` opens each existing file for reading; the caller decides how, so that a read creates
/// no companion file (`weir_runtime::open_snapshot` does that).
pub fn rejects_page(
    databases: &[(String, PathBuf)],
    pipeline: &str,
    run_id: &str,
    offset: u64,
    limit: u64,
    open: &dyn Fn(&std::path::Path) -> anyhow::Result<Connection>,
) -> anyhow::Result<RejectPage> {
    let mut page = RejectPage {
        total: 0,
        offset,
        limit,
        rejects: Vec::new(),
    };
    // `skip` is what is left of the offset after the databases already passed.
    let mut skip = offset;
    for (name, path) in databases {
        if !path.is_file() {
            continue;
        }
        let conn = open(path)
            .with_context(|| format!("cannot open database \"{name}\" ({})", path.display()))?;
        let mut read = || -> rusqlite::Result<Option<u64>> {
            if !table_exists(&conn)? {
                return Ok(None);
            }
            let count: u64 = conn.query_row(
                &format!("SELECT count(*) FROM {TABLE} WHERE pipeline = ?1 AND run_id = ?2"),
                params![pipeline, run_id],
                |r| r.get(0),
            )?;
            let wanted = limit.saturating_sub(page.rejects.len() as u64);
            if wanted > 0 && skip < count {
                let mut stmt = conn.prepare(&format!(
                    "SELECT partition, file, line, stage, reason, raw, created_at FROM {TABLE}
                     WHERE pipeline = ?1 AND run_id = ?2
                     ORDER BY file, line, id LIMIT ?3 OFFSET ?4"
                ))?;
                let rows = stmt.query_map(params![pipeline, run_id, wanted, skip], |r| {
                    Ok(RejectRow {
                        database: name.clone(),
                        partition: r.get(0)?,
                        file: r.get(1)?,
                        line: r.get(2)?,
                        stage: r.get(3)?,
                        reason: r.get(4)?,
                        raw: r.get(5)?,
                        created_at: r.get(6)?,
                    })
                })?;
                for row in rows {
                    page.rejects.push(row?);
                }
            }
            Ok(Some(count))
        };
        let count = read()
            .with_context(|| {
                format!(
                    "cannot read rejects from database \"{name}\" ({})",
                    path.display()
                )
            })?
            .unwrap_or(0);
        page.total += count;
        skip = skip.saturating_sub(count);
    }
    Ok(page)
}
