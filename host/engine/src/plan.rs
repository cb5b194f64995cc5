//! Write plans: how the host writes a loader's rows into a database it speaks, inside the
//! batch's transaction, so rows never cross into the loader.
//!
//! A contract-0.1 plan carries SQL the loader wrote (setup DDL and the per-row statement).
//! The host runs it, but as the plugin's: prepared uncached under the plugin rules of
//! `weir_runtime::sql_guard`, so a plan can do no more than the loader's own `sql` calls.

use rusqlite::Connection;
use rusqlite::types::ToSqlOutput;
use weir_runtime::sql_guard::{self, explain};
use weir_runtime::types::Schema;
use weir_runtime::{SharedConnection, WritePlan, lock};
use weir_store::rejects::RejectRecord;

use crate::columns::RowsView;

/// A load step that returned a write plan. Its instance is no longer needed: the host
/// executes the plan itself.
pub struct PlanLoad {
    /// The loader's name, for rejects and messages.
    pub label: String,
    pub plan: WritePlan,
    pub conn: SharedConnection,
}

/// Why writing a batch through a plan failed.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    /// A row's error made SQLite roll back the whole transaction (a `RAISE(ROLLBACK)` trigger,
    /// `ON CONFLICT ROLLBACK`): the rows before it are gone too, so the batch must fail and be
    /// retried from the last committed checkpoint, never go on as if only the row failed.
    #[error(
        "row at position {position} ended the transaction ({error}); the batch was rolled back"
    )]
    TransactionEnded {
        position: String,
        error: rusqlite::Error,
    },
}

/// Run a plan's setup statements (DDL) in their own transaction, before the first batch.
pub fn run_setup(conn: &SharedConnection, plan: &WritePlan) -> rusqlite::Result<()> {
    let mut db = lock(conn);
    let tx = db.transaction()?;
    sql_guard::as_plugin(&tx, |sql| {
        plan.setup
            .iter()
            .try_for_each(|statement| sql.execute_batch(statement))
    })?;
    tx.commit()
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
    let count = sql_guard::as_plugin(conn, |sql| {
        sql.prepare(&plan.statement)
            .map(|stmt| stmt.parameter_count())
    })
    .map_err(|e| format!("write plan statement does not prepare: {e}"))?;
    if count != plan.params.len() {
        return Err(format!(
            "write plan statement has {count} parameters but maps {}",
            plan.params.len()
        ));
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
/// Rows the database refuses (constraint, type) become rejects — unless the refusal ended the
/// transaction; returns rows written.
pub fn execute_plan(
    conn: &Connection,
    plan: &WritePlan,
    rows: &RowsView<'_>,
    schema: &Schema,
    positions: &[u64],
    stage: &str,
    rejects: &mut Vec<RejectRecord>,
) -> Result<u64, PlanError> {
    sql_guard::as_plugin(conn, |sql| {
        let mut stmt = sql.prepare(&plan.statement)?;
        let mut written = 0;
        for row in 0..rows.row_count {
            for (k, &col) in plan.params.iter().enumerate() {
                stmt.raw_bind_parameter(
                    k + 1,
                    ToSqlOutput::Borrowed(rows.value(row, col as usize)),
                )?;
            }
            match stmt.raw_execute().map_err(explain) {
                Ok(_) => written += 1,
                Err(error) if is_row_error(&error) => {
                    if sql.is_autocommit() {
                        return Err(PlanError::TransactionEnded {
                            position: positions
                                .get(row)
                                .map_or_else(|| format!("#{row}"), u64::to_string),
                            error,
                        });
                    }
                    rejects.push(RejectRecord {
                        stage: stage.to_owned(),
                        position: positions.get(row).copied(),
                        reason: error.to_string(),
                        raw: rows.row_json(row, schema),
                    });
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(written)
    })
}
