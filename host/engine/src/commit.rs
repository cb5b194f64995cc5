//! The commit protocol (DESIGN §4): per batch, the loads' rows, the rejects and the checkpoint
//! go into the commit database in ONE transaction. A crash at any instant leaves either the
//! whole batch with its checkpoint or neither.

use rusqlite::Connection;
use rusqlite::types::ToSqlOutput;
use weir_runtime::types::Schema;
use weir_runtime::{SharedConnection, WritePlan, lock};

use crate::columns::RowsView;

/// The rejects table every commit database gets.
pub const REJECTS_TABLE: &str = "_weir_rejects";

/// A row that did not make it, with where it came from.
#[derive(Debug, Clone)]
pub struct RejectRecord {
    /// Which step refused it: `csv-extract`, `map-transform`, `sqlite-load`.
    pub stage: String,
    /// Source position (line), when known.
    pub position: Option<u64>,
    pub reason: String,
    /// The raw record, or the row's values as JSON.
    pub raw: String,
}

/// Create the rejects table if needed. Idempotent.
pub fn ensure_rejects_table(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS {REJECTS_TABLE} (
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
        CREATE INDEX IF NOT EXISTS {REJECTS_TABLE}_by_run ON {REJECTS_TABLE} (pipeline, run_id);"
    ))
}

/// Run a plan's setup statements (DDL) in their own transaction, before the first batch.
pub fn run_setup(conn: &SharedConnection, plan: &WritePlan) -> rusqlite::Result<()> {
    let mut db = lock(conn);
    let tx = db.transaction()?;
    for statement in &plan.setup {
        tx.execute_batch(statement)?;
    }
    tx.commit()
}

/// Identifies the rows of a reject: pipeline, partition (its file), run.
pub struct RejectContext<'a> {
    pub pipeline: &'a str,
    pub partition: &'a str,
    pub run_id: &'a str,
}

/// Write rejects through an open transaction.
pub fn insert_rejects(
    conn: &Connection,
    ctx: &RejectContext<'_>,
    rejects: &[RejectRecord],
) -> rusqlite::Result<()> {
    if rejects.is_empty() {
        return Ok(());
    }
    let mut stmt = conn.prepare_cached(&format!(
        "INSERT INTO {REJECTS_TABLE} (pipeline, partition, run_id, file, line, stage, reason, raw)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
    ))?;
    for r in rejects {
        stmt.execute(rusqlite::params![
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

/// Whether a failed row insert is the row's fault (a reject) rather than the database's
/// (which fails the batch and is retried).
fn is_row_error(err: &rusqlite::Error) -> bool {
    matches!(
        err.sqlite_error_code(),
        Some(rusqlite::ErrorCode::ConstraintViolation | rusqlite::ErrorCode::TypeMismatch)
    )
}

/// Bind every row of `rows` to the plan's statement inside the open transaction on `conn`.
/// Rows the database refuses (constraint, type) become rejects; returns rows written.
pub fn execute_plan(
    conn: &Connection,
    plan: &WritePlan,
    rows: &RowsView<'_>,
    schema: &Schema,
    positions: &[u64],
    stage: &str,
    rejects: &mut Vec<RejectRecord>,
) -> rusqlite::Result<u64> {
    let mut stmt = conn.prepare_cached(&plan.statement)?;
    let mut written = 0;
    for row in 0..rows.row_count {
        for (k, &col) in plan.params.iter().enumerate() {
            stmt.raw_bind_parameter(k + 1, ToSqlOutput::Borrowed(rows.value(row, col as usize)))?;
        }
        match stmt.raw_execute() {
            Ok(_) => written += 1,
            Err(e) if is_row_error(&e) => rejects.push(RejectRecord {
                stage: stage.to_owned(),
                position: positions.get(row).copied(),
                reason: e.to_string(),
                raw: rows.row_json(row, schema),
            }),
            Err(e) => return Err(e),
        }
    }
    Ok(written)
}

/// Check a plan fits the batch schema before any row is bound.
pub fn check_plan(plan: &WritePlan, schema: &Schema, conn: &Connection) -> Result<(), String> {
    if let Some(bad) = plan
        .params
        .iter()
        .find(|&&c| c as usize >= schema.columns.len())
    {
        return Err(format!(
            "write plan binds column {bad}, but the batch has {} columns",
            schema.columns.len()
        ));
    }
    let stmt = conn
        .prepare(&plan.statement)
        .map_err(|e| format!("write plan statement does not prepare: {e}"))?;
    if stmt.parameter_count() != plan.params.len() {
        return Err(format!(
            "write plan statement has {} parameters but maps {}",
            stmt.parameter_count(),
            plan.params.len()
        ));
    }
    Ok(())
}
