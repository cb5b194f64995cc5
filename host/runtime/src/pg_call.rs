//! One plugin `sql` call on a PostgreSQL grant: the contract's values in and out, the call's
//! budget, and the contract's error cases. The rules and the session are weir-postgres's.

use weir_bindings::sql::QueryResult;
use weir_bindings::types::{Error, Value};
use weir_postgres::values::Cell;
use weir_postgres::{Budget, Output, PgSession, PluginSqlError, Work};

use crate::error::{FaultKind, HostLimit};
use crate::sql_call::{SqlBudget, SqlOutput, SqlWork, abbreviate};
use crate::state::PluginState;

/// Run one plugin statement on `session`. A statement stopped at the call's limit traps, as
/// on SQLite: inside the host's transaction the batch then fails and is retried.
pub(crate) fn run<'a>(
    state: &PluginState,
    session: &'a PgSession,
    work: SqlWork,
    statement: &'a str,
    params: Vec<Value>,
) -> impl Future<Output = wasmtime::Result<Result<SqlOutput, Error>>> + Send + 'a {
    // What the call needs from the store, taken now: the state is not `Sync`.
    let budget = SqlBudget::for_call(state);
    let host_tables = state.databases.host_tables().to_vec();
    run_with(session, work, statement, params, budget, host_tables)
}

async fn run_with(
    session: &PgSession,
    work: SqlWork,
    statement: &str,
    params: Vec<Value>,
    budget: SqlBudget,
    host_tables: Vec<String>,
) -> wasmtime::Result<Result<SqlOutput, Error>> {
    let params: Vec<Cell> = params.into_iter().map(cell).collect();
    let work = match work {
        SqlWork::Execute => Work::Execute,
        SqlWork::Query => Work::Query,
    };
    let outcome = session
        .plugin_statement(
            work,
            statement,
            &params,
            &host_tables,
            Budget {
                deadline: budget.deadline(),
                max_rows: budget.max_rows(),
                max_bytes: budget.max_bytes(),
            },
        )
        .await;
    let context = format!("(in `{}`)", abbreviate(statement));
    let database = &session.grant().name;
    Ok(match outcome {
        Ok(Output::Changed(n)) => Ok(SqlOutput::Changed(n)),
        Ok(Output::Rows { columns, rows }) => Ok(SqlOutput::Rows(QueryResult {
            columns,
            rows: rows
                .into_iter()
                .map(|row| row.into_iter().map(value).collect())
                .collect(),
        })),
        Err(PluginSqlError::TimedOut) => {
            return Err(HostLimit::trap(
                FaultKind::CpuLimit,
                format!(
                    "sql: `{}` was stopped after {:.3} s, the call's limit (cancelled on the server)",
                    abbreviate(statement),
                    budget.allowed().as_secs_f64()
                ),
            ));
        }
        Err(PluginSqlError::Denied(why)) => Err(Error::AccessDenied(format!(
            "database \"{database}\": {why} {context}"
        ))),
        Err(PluginSqlError::NotPermitted(why)) => Err(Error::AccessDenied(format!(
            "database \"{database}\": {why} {context}"
        ))),
        Err(PluginSqlError::Invalid(why)) => Err(Error::InvalidConfig(format!("{why} {context}"))),
        Err(PluginSqlError::Unavailable(why)) => Err(Error::Unavailable(format!(
            "database \"{database}\": {why} {context}"
        ))),
        Err(PluginSqlError::TooLarge(why)) => Err(Error::BadData(format!("{why} {context}"))),
        Err(PluginSqlError::Other(why)) => Err(Error::Other(format!("{why} {context}"))),
    })
}

fn cell(value: Value) -> Cell {
    match value {
        Value::Null => Cell::Null,
        Value::Boolean(b) => Cell::Boolean(b),
        Value::Integer(i) => Cell::Integer(i),
        Value::Real(r) => Cell::Real(r),
        Value::Text(t) => Cell::Text(t),
        Value::Blob(b) => Cell::Blob(b),
    }
}

fn value(cell: Cell) -> Value {
    match cell {
        Cell::Null => Value::Null,
        Cell::Boolean(b) => Value::Boolean(b),
        Cell::Integer(i) => Value::Integer(i),
        Cell::Real(r) => Value::Real(r),
        Cell::Text(t) => Value::Text(t),
        Cell::Blob(b) => Value::Blob(b),
    }
}
