//! Write plans: how the host writes a loader's rows into a database it speaks, inside the
//! batch's transaction, so rows never cross into the loader.
//!
//! - `sql`: contract 0.1.0 plans, SQL the loader wrote, run under the plugin SQL rules
//!   (SQLite only: that SQL is SQLite's);
//! - `sqlite`: contract 0.2.0 declarative plans rendered for SQLite by the host;
//! - `postgres`: the same plans rendered for PostgreSQL (binary COPY, staged upserts);
//! - this module: the plan of one load step, migrations, and binding a batch's rows.

mod postgres;
mod sql;
mod sqlite;

use rusqlite::types::ToSqlOutput;
use rusqlite::{Connection, Statement};
use weir_runtime::sql_guard::{self, explain};
use weir_runtime::types::Schema;
use weir_runtime::{SharedConnection, SqlPlan, WritePlan, lock};
use weir_store::rejects::RejectRecord;

use crate::columns::RowsView;
use crate::db::Db;

/// A load step that returned a write plan. Its instance is no longer needed: the host
/// executes the plan itself.
pub struct PlanLoad {
    /// The loader's name, for rejects and messages.
    pub label: String,
    /// The granted database it writes to.
    pub database: String,
    /// Where the rows go, for per-destination counts: `sqlite-load → ledger.transactions`.
    pub destination: String,
    /// The database it writes to.
    pub db: Db,
    writer: Writer,
    /// Migrations still to apply, inside the next batch's transaction.
    pending_migrations: Vec<sqlite::Step>,
}

/// How the rows are written.
enum Writer {
    /// A 0.1.0 plan: the loader's own statement and parameter mapping.
    Sql(SqlPlan),
    /// A 0.2.0 plan rendered by the host for SQLite.
    Rendered(sqlite::Rendered),
    /// A 0.2.0 plan rendered by the host for PostgreSQL.
    Postgres(postgres::PgWriter),
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
    /// PostgreSQL failed the write (not a row's refusal: those are rejects).
    #[error("{}: {}", .0.context, .0.reason)]
    Postgres(postgres::WriteFailure),
}

/// How a 0.1.0 plan's destination is named in counts and messages: `sqlite-load → ledger`.
pub fn sql_destination(label: &str, plan: &SqlPlan) -> String {
    format!("{label} → {}", plan.database)
}

/// How a 0.2.0 plan's destination is named in counts and messages:
/// `sqlite-load → ledger.transactions`.
pub fn declared_destination(label: &str, plan: &WritePlan) -> String {
    format!("{label} → {}.{}", plan.database, plan.table)
}

impl PlanLoad {
    /// A 0.1.0 plan: its setup runs now (in its own transaction, under the plugin rules), and
    /// its statement must prepare and bind exactly the columns it maps.
    pub fn from_sql(
        label: String,
        plan: SqlPlan,
        conn: SharedConnection,
        schema: &Schema,
    ) -> Result<Self, String> {
        sql::run_setup(&conn, &plan).map_err(|e| format!("setup statement failed: {e}"))?;
        sql::check(&plan, schema, &lock(&conn))?;
        Ok(Self {
            destination: sql_destination(&label, &plan),
            label,
            database: plan.database.clone(),
            db: Db::Sqlite(conn),
            writer: Writer::Sql(plan),
            pending_migrations: Vec::new(),
        })
    }

    /// A 0.2.0 plan, rendered for the database's dialect; its migrations wait for the first
    /// batch's transaction.
    pub fn from_declared(
        label: String,
        plan: WritePlan,
        db: Db,
        schema: &Schema,
    ) -> Result<Self, String> {
        let (writer, pending_migrations) = match &db {
            Db::Sqlite(_) => {
                let rendered = sqlite::render(&plan, schema)?;
                let migrations = rendered.migrations.clone();
                (Writer::Rendered(rendered), migrations)
            }
            Db::Postgres(_) => (
                Writer::Postgres(postgres::render(&plan, schema)?),
                Vec::new(),
            ),
        };
        Ok(Self {
            destination: declared_destination(&label, &plan),
            label,
            database: plan.database.clone(),
            db,
            pending_migrations,
            writer,
        })
    }

    /// Write the batch inside the open transaction (applying the plan's migrations first, with
    /// the first batch). Rows the database refuses become rejects; returns rows written.
    pub async fn write(
        &mut self,
        rows: &RowsView<'_>,
        schema: &Schema,
        positions: &[u64],
        rejects: &mut Vec<RejectRecord>,
    ) -> Result<u64, PlanError> {
        let batch = BatchRows {
            rows,
            schema,
            positions,
            stage: &self.label,
        };
        match (&mut self.writer, &self.db) {
            (Writer::Postgres(writer), Db::Postgres(session)) => {
                let state = session.lock().await;
                writer
                    .write(state.client(), &batch, rejects)
                    .await
                    .map_err(PlanError::Postgres)
            }
            (_, Db::Sqlite(conn)) => {
                let conn = conn.clone();
                let db = lock(&conn);
                self.migrate(&db)?;
                self.execute(&db, rows, schema, positions, rejects)
            }
            (_, Db::Postgres(_)) => unreachable!("SQLite plans are only made for SQLite databases"),
        }
    }

    /// Apply the plan's migrations, once, inside the open transaction (the first batch's).
    /// Idempotent against another worker that applied them first.
    fn migrate(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        if let Writer::Rendered(rendered) = &self.writer {
            for step in &self.pending_migrations {
                sqlite::apply_migration(conn, &rendered.table, step)?;
            }
        }
        self.pending_migrations.clear();
        Ok(())
    }

    /// Bind every row of `rows` to the plan's statement inside the open transaction on `conn`.
    /// Rows the database refuses (constraint, type) become rejects — unless the refusal ended
    /// the transaction; returns rows written.
    fn execute(
        &self,
        conn: &Connection,
        rows: &RowsView<'_>,
        schema: &Schema,
        positions: &[u64],
        rejects: &mut Vec<RejectRecord>,
    ) -> Result<u64, PlanError> {
        let batch = BatchRows {
            rows,
            schema,
            positions,
            stage: &self.label,
        };
        match &self.writer {
            // SQL the plugin wrote runs under the plugin rules.
            Writer::Sql(plan) => sql_guard::as_plugin(conn, |sql| {
                let mut stmt = sql.prepare(&plan.statement)?;
                batch.bind_all(&mut stmt, &plan.params, || sql.is_autocommit(), rejects)
            }),
            // SQL the host rendered from checked names runs as the host's.
            Writer::Rendered(rendered) => {
                let mut stmt = conn.prepare_cached(&rendered.statement)?;
                let Some(delete) = &rendered.delete else {
                    return batch.bind_all(
                        &mut stmt,
                        &rendered.params,
                        || conn.is_autocommit(),
                        rejects,
                    );
                };
                let mut delete_stmt = conn.prepare_cached(&delete.statement)?;
                batch.bind_each(
                    &mut [
                        (&mut stmt, &rendered.params),
                        (&mut delete_stmt, &delete.params),
                    ],
                    |row| usize::from(is_tombstone(rows.value(row, delete.marker as usize))),
                    || conn.is_autocommit(),
                    rejects,
                )
            }
            Writer::Postgres(_) => unreachable!("PostgreSQL plans are written by `write`"),
        }
    }
}

/// Whether a tombstone column's value marks its row deleted: anything but null or false.
pub(super) fn is_tombstone(value: rusqlite::types::ValueRef<'_>) -> bool {
    use rusqlite::types::ValueRef;
    !matches!(value, ValueRef::Null | ValueRef::Integer(0))
}

/// The rows of one batch, and what a reject needs to say where it came from.
struct BatchRows<'a> {
    rows: &'a RowsView<'a>,
    schema: &'a Schema,
    positions: &'a [u64],
    stage: &'a str,
}

impl BatchRows<'_> {
    /// Record row `row` as refused, with why.
    fn reject(&self, rejects: &mut Vec<RejectRecord>, row: usize, reason: String) {
        rejects.push(RejectRecord {
            stage: self.stage.to_owned(),
            position: self.positions.get(row).copied(),
            reason,
            raw: self.rows.row_json(row, self.schema),
        });
    }

    fn bind_all(
        &self,
        stmt: &mut Statement<'_>,
        params: &[u32],
        autocommit: impl Fn() -> bool,
        rejects: &mut Vec<RejectRecord>,
    ) -> Result<u64, PlanError> {
        self.bind_each(&mut [(stmt, params)], |_| 0, autocommit, rejects)
    }

    /// Bind each row to the statement `pick` chooses for it (by index into `statements`, each
    /// with the batch columns of its parameters) and run it; rows the database refuses become
    /// rejects.
    fn bind_each(
        &self,
        statements: &mut [(&mut Statement<'_>, &[u32])],
        pick: impl Fn(usize) -> usize,
        autocommit: impl Fn() -> bool,
        rejects: &mut Vec<RejectRecord>,
    ) -> Result<u64, PlanError> {
        let mut written = 0;
        for row in 0..self.rows.row_count {
            let (stmt, params) = &mut statements[pick(row)];
            for (k, &col) in params.iter().enumerate() {
                stmt.raw_bind_parameter(
                    k + 1,
                    ToSqlOutput::Borrowed(self.rows.value(row, col as usize)),
                )?;
            }
            match stmt.raw_execute().map_err(explain) {
                Ok(_) => written += 1,
                Err(error) if is_row_error(&error) => {
                    if autocommit() {
                        return Err(PlanError::TransactionEnded {
                            position: self
                                .positions
                                .get(row)
                                .map_or_else(|| format!("#{row}"), u64::to_string),
                            error,
                        });
                    }
                    rejects.push(RejectRecord {
                        stage: self.stage.to_owned(),
                        position: self.positions.get(row).copied(),
                        reason: error.to_string(),
                        raw: self.rows.row_json(row, self.schema),
                    });
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(written)
    }
}

/// Whether a failed row insert is the row's fault (a reject) rather than the database's
/// (which fails the batch and is retried).
fn is_row_error(err: &rusqlite::Error) -> bool {
    matches!(
        err.sqlite_error_code(),
        Some(rusqlite::ErrorCode::ConstraintViolation | rusqlite::ErrorCode::TypeMismatch)
    )
}
