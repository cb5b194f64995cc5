//! One plugin `sql` call: its SQLite work runs on a blocking thread, under the plugin rules,
//! within the call's time and result limits, and stops when the guest call is abandoned.
//!
//! SQLite work inside the `async fn` of a host import would run on the async thread: the
//! call's timeout could not fire and epochs do not interrupt host code, so a runaway query
//! would hold the worker (and shutdown) forever. On a blocking thread the awaiting future can
//! be dropped; a progress handler stops the statement at the call's limit or when that happens.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, InterruptHandle};
use weir_bindings::sql::QueryResult;
use weir_bindings::types::{Error, Value};

use crate::error::{FaultKind, HostLimit};
use crate::grants::{SharedConnection, lock};
use crate::sql_guard::{self, PluginMode};
use crate::state::PluginState;

/// SQLite calls the progress handler every this many virtual-machine instructions: about a
/// microsecond of work, so a stop takes effect at once and the check costs nothing measurable.
const PROGRESS_EVERY: i32 = 1_000;

/// What a call may use.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SqlBudget {
    /// When the statement is stopped: the guest call's deadline, or one CPU limit from now if
    /// that comes first (a statement is CPU work done on the guest's behalf).
    deadline: Instant,
    /// How long that was, for the message.
    allowed: Duration,
    max_rows: usize,
    max_bytes: usize,
}

impl SqlBudget {
    pub(crate) fn deadline(&self) -> Instant {
        self.deadline
    }

    pub(crate) fn allowed(&self) -> Duration {
        self.allowed
    }

    pub(crate) fn max_rows(&self) -> usize {
        self.max_rows
    }

    pub(crate) fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    pub(crate) fn for_call(state: &PluginState) -> Self {
        let now = Instant::now();
        let deadline = state.call_deadline.min(now + state.limits.cpu_per_call);
        Self {
            deadline,
            allowed: deadline.saturating_duration_since(now),
            max_rows: state.limits.max_query_rows,
            max_bytes: state.limits.max_query_bytes,
        }
    }
}

/// `execute` or `query`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SqlWork {
    Execute,
    Query,
}

/// What a call produced.
pub(crate) enum SqlOutput {
    /// `execute`: rows changed.
    Changed(u64),
    /// `query`: the rows.
    Rows(QueryResult),
}

/// Shared between the awaiting future and the blocking thread.
#[derive(Default)]
struct Stop {
    /// The awaiting future is gone: stop as soon as possible.
    abandoned: AtomicBool,
    /// The statement ran past its deadline.
    timed_out: AtomicBool,
    /// Set while the blocking thread holds the connection and runs the statement, so an
    /// interrupt can only ever reach this call's statement, never the host's next one.
    running: Mutex<Option<InterruptHandle>>,
}

/// Stops the blocking work when the awaiting future is dropped (the guest call timed out or
/// was cancelled), releasing the connection for the host. Disarmed once the work finished.
struct AbandonOnDrop(Option<Arc<Stop>>);

impl Drop for AbandonOnDrop {
    fn drop(&mut self) {
        let Some(stop) = self.0.take() else {
            return;
        };
        stop.abandoned.store(true, Ordering::Relaxed);
        if let Some(handle) = &*stop.running.lock().unwrap_or_else(|p| p.into_inner()) {
            handle.interrupt();
        }
    }
}

/// Run one plugin statement. Guest-facing problems are the `Err` of the inner result; limits
/// the guest must not carry on past (time, an ended host transaction) are traps.
pub(crate) async fn run(
    shared: SharedConnection,
    database: String,
    work: SqlWork,
    statement: String,
    params: Vec<Value>,
    budget: SqlBudget,
) -> wasmtime::Result<Result<SqlOutput, Error>> {
    let stop = Arc::new(Stop::default());
    let mut guard = AbandonOnDrop(Some(stop.clone()));
    let task = tokio::task::spawn_blocking(move || {
        let conn = lock(&shared);
        let outcome = run_locked(&conn, &stop, &database, work, &statement, &params, budget);
        *stop.running.lock().unwrap_or_else(|p| p.into_inner()) = None;
        outcome
    });
    let outcome = task.await;
    guard.0 = None;
    outcome?
}

fn run_locked(
    conn: &Connection,
    stop: &Arc<Stop>,
    database: &str,
    work: SqlWork,
    statement: &str,
    params: &[Value],
    budget: SqlBudget,
) -> wasmtime::Result<Result<SqlOutput, Error>> {
    if stop.abandoned.load(Ordering::Relaxed) {
        return Ok(Err(Error::Other("abandoned".into())));
    }
    *stop.running.lock().unwrap_or_else(|p| p.into_inner()) = Some(conn.get_interrupt_handle());
    let watcher = stop.clone();
    conn.progress_handler(
        PROGRESS_EVERY,
        Some(move || {
            if watcher.abandoned.load(Ordering::Relaxed) {
                return true;
            }
            if Instant::now() >= budget.deadline {
                watcher.timed_out.store(true, Ordering::Relaxed);
                return true;
            }
            false
        }),
    );
    let in_host_transaction = !conn.is_autocommit();
    let outcome = {
        let _plugin = PluginMode::enter();
        execute(conn, work, statement, params, budget)
    };
    conn.progress_handler(0, None::<fn() -> bool>);
    if stop.timed_out.load(Ordering::Relaxed) && outcome.as_ref().is_err_and(is_interrupt) {
        // An interrupted write inside a transaction rolls the whole transaction back in
        // SQLite; the trap fails the batch, which is retried from its last checkpoint.
        return Err(HostLimit::trap(
            FaultKind::CpuLimit,
            format!(
                "sql: `{}` was stopped after {:.3} s, the call's limit",
                abbreviate(statement),
                budget.allowed.as_secs_f64()
            ),
        ));
    }
    if in_host_transaction && conn.is_autocommit() {
        // `INSERT OR ROLLBACK`, `ON CONFLICT ROLLBACK` or a `RAISE(ROLLBACK)` trigger ended the
        // worker's commit transaction without the authorizer seeing a ROLLBACK. Whatever the
        // guest did next would commit on its own (a checkpoint ahead of lost rows), so it must
        // not continue: the batch fails and is retried from the last committed checkpoint.
        return Err(HostLimit::trap(
            FaultKind::Trap,
            format!(
                "sql: `{}` ended the worker's open transaction on database \"{database}\" (ON CONFLICT ROLLBACK or RAISE(ROLLBACK)); the batch is rolled back",
                abbreviate(statement)
            ),
        ));
    }
    match outcome {
        Err(e) => Ok(Err(sql_error(database, statement, e))),
        Ok(out) => Ok(Ok(out)),
    }
}

fn is_interrupt(err: &SqlFailure) -> bool {
    matches!(err, SqlFailure::Sqlite(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::OperationInterrupted))
}

/// Why a statement failed: SQLite's reason, or a result cap.
enum SqlFailure {
    Sqlite(rusqlite::Error),
    TooLarge(String),
}

impl From<rusqlite::Error> for SqlFailure {
    fn from(e: rusqlite::Error) -> Self {
        Self::Sqlite(sql_guard::explain(e))
    }
}

fn execute(
    conn: &Connection,
    work: SqlWork,
    statement: &str,
    params: &[Value],
    budget: SqlBudget,
) -> Result<SqlOutput, SqlFailure> {
    // Uncached: a cached statement could be one the host prepared, authorized as the host.
    let mut stmt = sql_guard::prepare(conn, statement)?;
    let params = rusqlite::params_from_iter(params.iter().map(SqlValue));
    if work == SqlWork::Execute {
        let changed = stmt.execute(params)?;
        return Ok(SqlOutput::Changed(changed as u64));
    }
    let columns: Vec<String> = stmt.column_names().iter().map(|c| c.to_string()).collect();
    let width = columns.len();
    let mut rows_out = Vec::new();
    // What the result costs the host: each value's payload plus the value and row records.
    let mut bytes = columns.iter().map(String::len).sum::<usize>();
    let mut rows = stmt.query(params)?;
    while let Some(row) = rows.next()? {
        if rows_out.len() == budget.max_rows {
            return Err(SqlFailure::TooLarge(format!(
                "query returned more than limits.max_query_rows ({}) rows; add a LIMIT or page through it",
                budget.max_rows
            )));
        }
        bytes += size_of::<Vec<Value>>();
        let mut values = Vec::with_capacity(width);
        for i in 0..width {
            let value = row.get_ref(i)?;
            bytes += size_of::<Value>()
                + match value {
                    ValueRef::Text(t) | ValueRef::Blob(t) => t.len(),
                    _ => 0,
                };
            if bytes > budget.max_bytes {
                return Err(SqlFailure::TooLarge(format!(
                    "query result is larger than limits.max_query_bytes ({} bytes); select fewer or smaller values, or page through it",
                    budget.max_bytes
                )));
            }
            values.push(from_sql(value));
        }
        rows_out.push(values);
    }
    Ok(SqlOutput::Rows(QueryResult {
        columns,
        rows: rows_out,
    }))
}

/// Map a failure to the contract's error cases: a refusal by the rules is `access-denied`, a
/// locked database is worth retrying, a statement that does not prepare is the plugin's
/// configuration or code, a result over its cap is `bad-data`.
fn sql_error(database: &str, statement: &str, failure: SqlFailure) -> Error {
    use rusqlite::ErrorCode;
    let err = match failure {
        SqlFailure::TooLarge(why) => {
            return Error::BadData(format!("{why} (in `{}`)", abbreviate(statement)));
        }
        SqlFailure::Sqlite(e) => e,
    };
    let context = format!("(in `{}`)", abbreviate(statement));
    if sql_guard::is_denied(&err) {
        let why = match &err {
            rusqlite::Error::SqliteFailure(_, Some(why)) => why.clone(),
            other => other.to_string(),
        };
        return Error::AccessDenied(format!("{why} {context}"));
    }
    let message = format!("{err} {context}");
    match err.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => Error::Unavailable(message),
        Some(ErrorCode::ReadOnly) => Error::AccessDenied(format!(
            "database \"{database}\" is granted read-only: {message}"
        )),
        Some(ErrorCode::PermissionDenied | ErrorCode::CannotOpen) => Error::AccessDenied(message),
        _ if matches!(
            err,
            rusqlite::Error::SqlInputError { .. } | rusqlite::Error::MultipleStatement
        ) =>
        {
            Error::InvalidConfig(message)
        }
        _ => Error::Other(message),
    }
}

/// A statement for messages: whitespace collapsed, at most 120 characters.
pub(crate) fn abbreviate(statement: &str) -> String {
    const MAX: usize = 120;
    let flat = statement.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &flat[..cut]),
        None => flat,
    }
}

/// A WIT value bound as a SQL parameter.
pub struct SqlValue<'a>(pub &'a Value);

impl rusqlite::ToSql for SqlValue<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self.0 {
            Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Value::Boolean(b) => ToSqlOutput::Borrowed(ValueRef::Integer(i64::from(*b))),
            Value::Integer(i) => ToSqlOutput::Borrowed(ValueRef::Integer(*i)),
            Value::Real(r) => ToSqlOutput::Borrowed(ValueRef::Real(*r)),
            Value::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Value::Blob(b) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
        })
    }
}

/// A SQL result cell as a WIT value.
pub fn from_sql(value: ValueRef<'_>) -> Value {
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Integer(i),
        ValueRef::Real(r) => Value::Real(r),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    }
}

#[cfg(test)]
#[path = "sql_call_tests.rs"]
mod tests;
