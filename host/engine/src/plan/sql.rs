//! Contract 0.1.0 write plans: SQL the loader wrote (setup DDL and the per-row statement). The
//! host runs it, but as the plugin's: prepared uncached under the plugin rules of
//! `weir_runtime::sql_guard`, so a plan can do no more than the loader's own `sql` calls.

use rusqlite::Connection;
use weir_runtime::sql_guard;
use weir_runtime::types::Schema;
use weir_runtime::{SharedConnection, SqlPlan, lock};

/// Run a plan's setup statements (DDL) in their own transaction, before the first batch.
pub(super) fn run_setup(conn: &SharedConnection, plan: &SqlPlan) -> rusqlite::Result<()> {
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
pub(super) fn check(plan: &SqlPlan, schema: &Schema, conn: &Connection) -> Result<(), String> {
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
