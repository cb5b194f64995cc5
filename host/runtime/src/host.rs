//! The host side of the `log` and `sql` imports.

use rusqlite::types::{ToSqlOutput, ValueRef};
use wasmtime::component::Resource;
use weir_bindings::SqlConnection;
use weir_bindings::log::{self, Level};
use weir_bindings::sql::{self, QueryResult};
use weir_bindings::types::{self, Error, Value};

use crate::grants::lock;
use crate::state::{PluginState, emit_plugin_log};

impl types::Host for PluginState {}

impl log::Host for PluginState {
    async fn log(&mut self, level: Level, message: String) {
        let level = match level {
            Level::Trace => tracing::Level::TRACE,
            Level::Debug => tracing::Level::DEBUG,
            Level::Info => tracing::Level::INFO,
            Level::Warn => tracing::Level::WARN,
            Level::Error => tracing::Level::ERROR,
        };
        emit_plugin_log(&self.site, level, &message);
    }
}

impl sql::Host for PluginState {}

impl sql::HostConnection for PluginState {
    async fn open(&mut self, name: String) -> Result<Resource<SqlConnection>, Error> {
        match self.databases.connection(&name) {
            None => {
                return Err(Error::AccessDenied(format!(
                    "database \"{name}\" is not granted to this pipeline (granted: {}); add it to grants.databases",
                    list_or_none(&self.databases.names())
                )));
            }
            Some(Err(e)) => return Err(Error::Unavailable(format!("{e:#}"))),
            Some(Ok(_)) => {}
        }
        self.table_push(SqlConnection { database: name })
    }

    async fn execute(
        &mut self,
        conn: Resource<SqlConnection>,
        statement: String,
        params: Vec<Value>,
    ) -> Result<u64, Error> {
        let shared = self.connection_of(&conn)?;
        let db = lock(&shared);
        let mut stmt = db
            .prepare_cached(&statement)
            .map_err(|e| sql_error(&statement, e))?;
        let changed = stmt
            .execute(rusqlite::params_from_iter(params.iter().map(SqlValue)))
            .map_err(|e| sql_error(&statement, e))?;
        Ok(changed as u64)
    }

    async fn query(
        &mut self,
        conn: Resource<SqlConnection>,
        statement: String,
        params: Vec<Value>,
    ) -> Result<QueryResult, Error> {
        let shared = self.connection_of(&conn)?;
        let db = lock(&shared);
        let mut stmt = db
            .prepare_cached(&statement)
            .map_err(|e| sql_error(&statement, e))?;
        let columns: Vec<String> = stmt.column_names().iter().map(|c| c.to_string()).collect();
        let width = columns.len();
        let mut rows_out = Vec::new();
        let mut rows = stmt
            .query(rusqlite::params_from_iter(params.iter().map(SqlValue)))
            .map_err(|e| sql_error(&statement, e))?;
        while let Some(row) = rows.next().map_err(|e| sql_error(&statement, e))? {
            let mut values = Vec::with_capacity(width);
            for i in 0..width {
                let value = row.get_ref(i).map_err(|e| sql_error(&statement, e))?;
                values.push(from_sql(value));
            }
            rows_out.push(values);
        }
        Ok(QueryResult {
            columns,
            rows: rows_out,
        })
    }

    async fn drop(&mut self, conn: Resource<SqlConnection>) -> wasmtime::Result<()> {
        self.ctx_table().delete(conn)?;
        Ok(())
    }
}

impl PluginState {
    fn ctx_table(&mut self) -> &mut wasmtime::component::ResourceTable {
        wasmtime_wasi::WasiView::ctx(self).table
    }

    fn table_push(&mut self, conn: SqlConnection) -> Result<Resource<SqlConnection>, Error> {
        self.ctx_table()
            .push(conn)
            .map_err(|e| Error::Other(format!("too many open connections: {e}")))
    }

    fn connection_of(
        &mut self,
        conn: &Resource<SqlConnection>,
    ) -> Result<crate::grants::SharedConnection, Error> {
        let name = self
            .ctx_table()
            .get(conn)
            .map_err(|e| Error::Other(format!("invalid connection handle: {e}")))?
            .database
            .clone();
        match self.databases.connection(&name) {
            Some(Ok(shared)) => Ok(shared),
            Some(Err(e)) => Err(Error::Unavailable(format!("{e:#}"))),
            None => Err(Error::AccessDenied(format!(
                "database \"{name}\" is not granted"
            ))),
        }
    }
}

fn list_or_none(names: &[&str]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

/// Map a SQLite failure to the contract's error cases: a locked database is worth retrying, a
/// statement that does not prepare is the plugin's configuration or code.
fn sql_error(statement: &str, err: rusqlite::Error) -> Error {
    use rusqlite::ErrorCode;
    let message = format!("{err} (in `{}`)", abbreviate(statement));
    match err.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => Error::Unavailable(message),
        Some(ErrorCode::ReadOnly | ErrorCode::PermissionDenied | ErrorCode::CannotOpen) => {
            Error::AccessDenied(message)
        }
        _ if matches!(err, rusqlite::Error::SqlInputError { .. }) => Error::InvalidConfig(message),
        _ => Error::Other(message),
    }
}

fn abbreviate(statement: &str) -> String {
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
