//! `weir:plugin@0.2.0`'s host imports. `log` is 0.1.0's; `sql` is 0.1.0's plus `dialect`.

use wasmtime::component::Resource;
use weir_bindings::SqlConnection;
use weir_bindings::types::{Error, Value};
use weir_bindings::v0_1_0;
use weir_bindings::v0_2_0::{log, sql};

use crate::state::PluginState;

impl log::Host for PluginState {
    async fn log(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        let level = match level {
            log::Level::Trace => v0_1_0::log::Level::Trace,
            log::Level::Debug => v0_1_0::log::Level::Debug,
            log::Level::Info => v0_1_0::log::Level::Info,
            log::Level::Warn => v0_1_0::log::Level::Warn,
            log::Level::Error => v0_1_0::log::Level::Error,
        };
        v0_1_0::log::Host::log(self, level, message).await
    }
}

impl sql::Host for PluginState {}

impl sql::HostConnection for PluginState {
    async fn open(
        &mut self,
        name: String,
    ) -> wasmtime::Result<Result<Resource<SqlConnection>, Error>> {
        crate::contract::v0_1_0::open_connection(self, name).await
    }

    async fn dialect(&mut self, conn: Resource<SqlConnection>) -> wasmtime::Result<sql::Dialect> {
        let name = wasmtime_wasi::WasiView::ctx(self)
            .table
            .get(&conn)?
            .database
            .clone();
        Ok(if self.databases.is_postgres(&name) {
            sql::Dialect::Postgresql
        } else {
            sql::Dialect::Sqlite
        })
    }

    async fn execute(
        &mut self,
        conn: Resource<SqlConnection>,
        statement: String,
        params: Vec<Value>,
    ) -> wasmtime::Result<Result<u64, Error>> {
        v0_1_0::sql::HostConnection::execute(self, conn, statement, params).await
    }

    async fn query(
        &mut self,
        conn: Resource<SqlConnection>,
        statement: String,
        params: Vec<Value>,
    ) -> wasmtime::Result<Result<sql::QueryResult, Error>> {
        let result = v0_1_0::sql::HostConnection::query(self, conn, statement, params).await?;
        Ok(result.map(|r| sql::QueryResult {
            columns: r.columns,
            rows: r.rows,
        }))
    }

    async fn drop(&mut self, conn: Resource<SqlConnection>) -> wasmtime::Result<()> {
        v0_1_0::sql::HostConnection::drop(self, conn).await
    }
}
