//! `weir:plugin@0.1.0`'s host imports, `log` and `sql`: thin trait impls; the SQL work itself
//! is in [`crate::sql_call`], the rules in [`crate::sql_guard`].

use wasmtime::component::Resource;
use weir_bindings::SqlConnection;
use weir_bindings::v0_1_0::log::{self, Level};
use weir_bindings::v0_1_0::sql::{self, QueryResult};
use weir_bindings::v0_1_0::types::{self, Error, Value};

use crate::error::{FaultKind, HostLimit};
use crate::limits::MAX_SQL_CONNECTIONS;
use crate::pg_call;
use crate::sql_call::{self, SqlBudget, SqlOutput, SqlWork};
use crate::state::{PluginState, emit_plugin_log};

impl types::Host for PluginState {}

impl log::Host for PluginState {
    async fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        let level = match level {
            Level::Trace => tracing::Level::TRACE,
            Level::Debug => tracing::Level::DEBUG,
            Level::Info => tracing::Level::INFO,
            Level::Warn => tracing::Level::WARN,
            Level::Error => tracing::Level::ERROR,
        };
        let message = crate::caps::truncate_text(message, self.limits.max_message_bytes);
        emit_plugin_log(&self.site, level, &message);
        Ok(())
    }
}

impl sql::Host for PluginState {}

/// Open a connection to a granted database for a plugin (either contract version; 0.1.0
/// refuses PostgreSQL grants before it gets here).
pub(crate) async fn open_connection(
    state: &mut PluginState,
    name: String,
) -> wasmtime::Result<Result<Resource<SqlConnection>, Error>> {
    if state.sql_connections >= MAX_SQL_CONNECTIONS {
        return Err(HostLimit::trap(
            FaultKind::Trap,
            format!(
                "opened more than {MAX_SQL_CONNECTIONS} sql connections at once; drop the ones no longer needed"
            ),
        ));
    }
    if !state.databases.is_granted(&name) {
        return Ok(Err(Error::AccessDenied(format!(
            "database \"{name}\" is not granted to this pipeline (granted: {}); add it to grants.databases",
            list_or_none(&state.databases.names())
        ))));
    }
    if state.databases.is_postgres(&name) {
        // Checks a connection out of the grant's pool now, so a server that is down is
        // reported where the plugin can say which database it could not reach.
        if let Some(Err(e)) = state.databases.postgres(&name).await {
            return Ok(Err(Error::Unavailable(e.to_string())));
        }
        let handle = wasmtime_wasi::WasiView::ctx(state)
            .table
            .push(SqlConnection { database: name })?;
        state.sql_connections += 1;
        return Ok(Ok(handle));
    }
    // Opening may wait for another worker's WAL switch: not on an async thread.
    let databases = state.databases.clone();
    let opened = {
        let name = name.clone();
        tokio::task::spawn_blocking(move || databases.connection(&name).map(|r| r.map(drop)))
            .await?
    };
    if let Some(Err(e)) = opened {
        return Ok(Err(Error::Unavailable(format!("{e:#}"))));
    }
    let handle = wasmtime_wasi::WasiView::ctx(state)
        .table
        .push(SqlConnection { database: name })?;
    state.sql_connections += 1;
    Ok(Ok(handle))
}

impl sql::HostConnection for PluginState {
    async fn open(
        &mut self,
        name: String,
    ) -> wasmtime::Result<Result<Resource<SqlConnection>, Error>> {
        // A 0.1.0 plugin cannot ask for the dialect, so its SQL is SQLite's: say so at once
        // rather than let PostgreSQL fail on its first pragma.
        if self.databases.is_postgres(&name) {
            return Ok(Err(Error::AccessDenied(format!(
                "database \"{name}\" is PostgreSQL, and this plugin was built against contract 0.1.0, whose `sql` speaks SQLite only; use a build against contract 0.2.0 (weir:plugin@0.2.0, which has sql.dialect())"
            ))));
        }
        open_connection(self, name).await
    }

    async fn execute(
        &mut self,
        conn: Resource<SqlConnection>,
        statement: String,
        params: Vec<Value>,
    ) -> wasmtime::Result<Result<u64, Error>> {
        let (shared, database) = match self.connection_of(&conn).await? {
            Ok(Granted::Sqlite(shared, database)) => (shared, database),
            Ok(Granted::Postgres(session)) => {
                let out = pg_call::run(self, &session, SqlWork::Execute, &statement, params);
                return Ok(out.await?.map(|out| match out {
                    SqlOutput::Changed(n) => n,
                    SqlOutput::Rows(_) => 0,
                }));
            }
            Err(e) => return Ok(Err(e)),
        };
        let budget = SqlBudget::for_call(self);
        let out = sql_call::run(
            shared,
            database,
            SqlWork::Execute,
            statement,
            params,
            budget,
        );
        Ok(out.await?.map(|out| match out {
            SqlOutput::Changed(n) => n,
            SqlOutput::Rows(_) => 0,
        }))
    }

    async fn query(
        &mut self,
        conn: Resource<SqlConnection>,
        statement: String,
        params: Vec<Value>,
    ) -> wasmtime::Result<Result<QueryResult, Error>> {
        let out = match self.connection_of(&conn).await? {
            Ok(Granted::Sqlite(shared, database)) => {
                let budget = SqlBudget::for_call(self);
                sql_call::run(shared, database, SqlWork::Query, statement, params, budget).await?
            }
            Ok(Granted::Postgres(session)) => {
                pg_call::run(self, &session, SqlWork::Query, &statement, params).await?
            }
            Err(e) => return Ok(Err(e)),
        };
        Ok(out.map(|out| match out {
            SqlOutput::Rows(rows) => rows,
            SqlOutput::Changed(_) => QueryResult {
                columns: Vec::new(),
                rows: Vec::new(),
            },
        }))
    }

    async fn drop(&mut self, conn: Resource<SqlConnection>) -> wasmtime::Result<()> {
        wasmtime_wasi::WasiView::ctx(self).table.delete(conn)?;
        self.sql_connections = self.sql_connections.saturating_sub(1);
        Ok(())
    }
}

/// What a `sql` handle leads to.
pub(crate) enum Granted {
    /// The shared SQLite connection, and the grant's name.
    Sqlite(crate::grants::SharedConnection, String),
    /// The worker attempt's PostgreSQL session.
    Postgres(weir_postgres::PgSession),
}

impl PluginState {
    /// The connection behind a handle.
    pub(crate) async fn connection_of(
        &mut self,
        conn: &Resource<SqlConnection>,
    ) -> wasmtime::Result<Result<Granted, Error>> {
        let name = wasmtime_wasi::WasiView::ctx(self)
            .table
            .get(conn)?
            .database
            .clone();
        if self.databases.is_postgres(&name) {
            return Ok(match self.databases.postgres(&name).await {
                Some(Ok(session)) => Ok(Granted::Postgres(session)),
                Some(Err(e)) => Err(Error::Unavailable(e.to_string())),
                None => Err(Error::AccessDenied(format!(
                    "database \"{name}\" is not granted"
                ))),
            });
        }
        Ok(match self.databases.connection(&name) {
            Some(Ok(shared)) => Ok(Granted::Sqlite(shared, name)),
            Some(Err(e)) => Err(Error::Unavailable(format!("{e:#}"))),
            None => Err(Error::AccessDenied(format!(
                "database \"{name}\" is not granted"
            ))),
        })
    }
}

fn list_or_none(names: &[&str]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}
