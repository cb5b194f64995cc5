//! The connection one worker attempt holds to a granted PostgreSQL database, shared by its
//! plugins' `sql` calls and the host's commit, so a history store's `save` runs inside the
//! transaction that also holds the batch's rows (as the shared SQLite connection does).
//!
//! The host's transaction state lives here, not in the server's reply: plugin statements
//! cannot begin or end transactions (see `guard`), so the flag is exact. A plugin statement
//! inside the host's transaction runs under a savepoint, so its failure is rolled back alone
//! and the transaction goes on — SQLite's behaviour, which PostgreSQL only gives with one.

use std::sync::Arc;
use std::time::Instant;

use futures_util::{TryStreamExt as _, pin_mut};
use tokio::sync::{Mutex, MutexGuard};
use tokio_postgres::Client;
use tokio_postgres::error::SqlState;

use crate::grant::PgGrant;
use crate::guard::{self, Rules};
use crate::pool::PooledClient;
use crate::values::{Cell, Param};
use crate::{PgError, explain, placeholders};

/// How the session is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionMode {
    /// A run: the host begins and commits a transaction per batch.
    Run,
    /// `weir validate`: one transaction from the start, never committed, so whatever the
    /// plugins' `open` does (a history store's `CREATE TABLE`) leaves nothing behind.
    Validation,
    /// Reading for the API: one read-only transaction, never committed.
    ReadOnly,
}

/// A checked-out connection and the host's transaction state on it.
pub struct SessionState {
    pooled: PooledClient,
    in_transaction: bool,
    /// Temporary staging tables this session created (they live as long as the connection).
    pub staging: std::collections::HashSet<String>,
}

/// One worker attempt's session on a granted database. Clones share it.
#[derive(Clone)]
pub struct PgSession {
    grant: PgGrant,
    state: Arc<Mutex<SessionState>>,
}

/// The advisory lock class of weir's per-partition commit lock ("weir" in ASCII).
const LOCK_CLASS: i32 = 0x7765_6972;

impl std::fmt::Debug for PgSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgSession")
            .field("grant", &self.grant.name)
            .finish()
    }
}

impl PgSession {
    /// Check a connection out of the grant's pool.
    pub async fn open(grant: &PgGrant, mode: SessionMode) -> Result<Self, PgError> {
        let pooled = grant.pool.checkout().await?;
        let mut state = SessionState {
            pooled,
            in_transaction: false,
            staging: Default::default(),
        };
        let begin = match mode {
            SessionMode::Run => None,
            SessionMode::Validation => Some("BEGIN"),
            SessionMode::ReadOnly => Some("BEGIN READ ONLY"),
        };
        if let Some(begin) = begin {
            state.pooled.clean = false;
            state
                .client()
                .batch_execute(begin)
                .await
                .map_err(|e| PgError::query(&grant.name, "failed to begin", &e))?;
            state.in_transaction = true;
        }
        Ok(Self {
            grant: grant.clone(),
            state: Arc::new(Mutex::new(state)),
        })
    }

    pub fn grant(&self) -> &PgGrant {
        &self.grant
    }

    /// The session for the host's own statements (waits for a plugin statement to finish).
    pub async fn lock(&self) -> MutexGuard<'_, SessionState> {
        self.state.lock().await
    }

    /// Run one plugin statement under the grant's rules and the call's budget.
    pub async fn plugin_statement(
        &self,
        work: Work,
        statement: &str,
        params: &[Cell],
        host_tables: &[String],
        budget: Budget,
    ) -> Result<Output, PluginSqlError> {
        let sql = placeholders::rewrite(statement);
        let rules = Rules {
            schema: &self.grant.spec.schema,
            read_only: self.grant.spec.read_only,
            host_tables,
        };
        guard::check(&sql, &rules).map_err(PluginSqlError::Denied)?;
        let state = self.state.lock().await;
        let client = state.client();
        let in_transaction = state.in_transaction;
        if in_transaction {
            client
                .batch_execute("SAVEPOINT weir_plugin")
                .await
                .map_err(|e| classify(&e))?;
        }
        let cancel = CancelOnDrop {
            token: Some(client.cancel_token()),
            tls: state.pooled.tls(),
        };
        let outcome = tokio::time::timeout_at(
            budget.deadline.into(),
            run(client, work, &sql, params, budget),
        )
        .await;
        let outcome = match outcome {
            Ok(result) => {
                cancel.disarm();
                result
            }
            // Wait for the server to take the cancel request: the trap that follows may end the
            // process, and a statement whose client vanished runs on until it next sends a row.
            Err(_elapsed) => {
                cancel.cancel_now().await;
                Err(PluginSqlError::TimedOut)
            }
        };
        if in_transaction {
            let end = if outcome.is_ok() {
                "RELEASE SAVEPOINT weir_plugin"
            } else {
                "ROLLBACK TO SAVEPOINT weir_plugin; RELEASE SAVEPOINT weir_plugin"
            };
            if let Err(e) = client.batch_execute(end).await {
                // The host's transaction is unusable now; the commit will fail and the batch is
                // retried from its checkpoint.
                return Err(PluginSqlError::Unavailable(explain(&e)));
            }
        }
        outcome
    }
}

impl SessionState {
    pub fn client(&self) -> &Client {
        self.pooled.client()
    }

    /// Whether the host's transaction is open.
    pub fn in_transaction(&self) -> bool {
        self.in_transaction
    }

    /// `BEGIN`, and on the commit database the partition's advisory lock: writers of one
    /// partition queue here, so load, compare and save of the checkpoint are atomic (SQLite's
    /// `BEGIN IMMEDIATE` does this for a whole file).
    pub async fn begin(
        &mut self,
        partition_lock: Option<(&str, &str)>,
    ) -> Result<(), tokio_postgres::Error> {
        self.pooled.clean = false;
        self.client().batch_execute("BEGIN").await?;
        self.in_transaction = true;
        if let Some((pipeline, partition)) = partition_lock {
            let key = lock_key(pipeline, partition);
            self.client()
                .execute("SELECT pg_advisory_xact_lock($1, $2)", &[&LOCK_CLASS, &key])
                .await?;
        }
        Ok(())
    }

    /// Check the transaction is still good (no failed statement left it aborted, in which
    /// state PostgreSQL answers `COMMIT` with a silent rollback), then commit.
    pub async fn commit(&mut self) -> Result<(), tokio_postgres::Error> {
        self.client().batch_execute("SELECT 1").await?;
        self.client().batch_execute("COMMIT").await?;
        self.in_transaction = false;
        self.pooled.clean = true;
        Ok(())
    }

    /// Roll back if a transaction is open; a connection that cannot is not reused.
    pub async fn rollback(&mut self) {
        if !self.in_transaction {
            return;
        }
        if self.client().batch_execute("ROLLBACK").await.is_ok() {
            self.in_transaction = false;
            self.pooled.clean = true;
        }
    }
}

/// A stable 32-bit key for (pipeline, partition): FNV-1a, so every host agrees on it.
fn lock_key(pipeline: &str, partition: &str) -> i32 {
    let mut hash: u32 = 0x811C_9DC5;
    for b in pipeline.bytes().chain([0]).chain(partition.bytes()) {
        hash ^= u32::from(b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash as i32
}

/// Asks the server to cancel the running statement unless disarmed (the call finished).
struct CancelOnDrop {
    token: Option<tokio_postgres::CancelToken>,
    tls: tokio_postgres_rustls::MakeRustlsConnect,
}

impl CancelOnDrop {
    fn disarm(mut self) {
        self.token = None;
    }

    /// Send the cancel request now and wait (a few seconds at most) until the server took it.
    async fn cancel_now(mut self) {
        if let Some(token) = self.token.take() {
            let request = token.cancel_query(self.tls.clone());
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), request).await;
        }
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(token) = self.token.take() {
            let tls = self.tls.clone();
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(async move {
                    let _ = token.cancel_query(tls).await;
                });
            }
        }
    }
}

/// `execute` or `query`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    Execute,
    Query,
}

/// What a call may use.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub deadline: Instant,
    pub max_rows: usize,
    pub max_bytes: usize,
}

/// What a call produced.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    Changed(u64),
    Rows {
        columns: Vec<String>,
        rows: Vec<Vec<Cell>>,
    },
}

/// Why a plugin statement failed, in the contract's terms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PluginSqlError {
    /// Refused by the rules.
    #[error("{0}")]
    Denied(String),
    /// The server refused a write on a read-only grant, or lacked the privilege.
    #[error("{0}")]
    NotPermitted(String),
    /// Does not prepare: syntax, a missing table or column, wrong parameter count.
    #[error("{0}")]
    Invalid(String),
    /// Worth retrying: the connection, a lock, a serialization failure.
    #[error("{0}")]
    Unavailable(String),
    /// A result over `max_query_rows` or `max_query_bytes`.
    #[error("{0}")]
    TooLarge(String),
    /// Ran past the call's deadline; the server was asked to cancel it.
    #[error("statement ran past the call's limit and was cancelled")]
    TimedOut,
    #[error("{0}")]
    Other(String),
}

async fn run(
    client: &Client,
    work: Work,
    sql: &str,
    params: &[Cell],
    budget: Budget,
) -> Result<Output, PluginSqlError> {
    let stmt = client.prepare(sql).await.map_err(|e| classify(&e))?;
    if stmt.params().len() != params.len() {
        return Err(PluginSqlError::Invalid(format!(
            "statement has {} parameters but {} values were given",
            stmt.params().len(),
            params.len()
        )));
    }
    let bound = params.iter().map(Param);
    if work == Work::Execute {
        let changed = client
            .execute_raw(&stmt, bound)
            .await
            .map_err(|e| classify(&e))?;
        return Ok(Output::Changed(changed));
    }
    let columns: Vec<String> = stmt.columns().iter().map(|c| c.name().to_owned()).collect();
    let mut bytes = columns.iter().map(String::len).sum::<usize>();
    let stream = client
        .query_raw(&stmt, bound)
        .await
        .map_err(|e| classify(&e))?;
    pin_mut!(stream);
    let mut rows = Vec::new();
    while let Some(row) = stream.try_next().await.map_err(|e| classify(&e))? {
        if rows.len() == budget.max_rows {
            return Err(PluginSqlError::TooLarge(format!(
                "query returned more than limits.max_query_rows ({}) rows; add a LIMIT or page through it",
                budget.max_rows
            )));
        }
        bytes += size_of::<Vec<Cell>>();
        let mut values = Vec::with_capacity(columns.len());
        for i in 0..columns.len() {
            let cell: Cell = row
                .try_get(i)
                .map_err(|e| PluginSqlError::Invalid(explain(&e)))?;
            bytes += size_of::<Cell>() + cell.payload_len();
            if bytes > budget.max_bytes {
                return Err(PluginSqlError::TooLarge(format!(
                    "query result is larger than limits.max_query_bytes ({} bytes); select fewer or smaller values, or page through it",
                    budget.max_bytes
                )));
            }
            values.push(cell);
        }
        rows.push(values);
    }
    Ok(Output::Rows { columns, rows })
}

/// A server or connection error in the contract's terms.
fn classify(e: &tokio_postgres::Error) -> PluginSqlError {
    let message = explain(e);
    let Some(code) = e.code() else {
        return if e.is_closed() || e.as_db_error().is_none() {
            PluginSqlError::Unavailable(message)
        } else {
            PluginSqlError::Other(message)
        };
    };
    if *code == SqlState::READ_ONLY_SQL_TRANSACTION {
        return PluginSqlError::NotPermitted(format!(
            "the database is granted read-only: {message}"
        ));
    }
    if *code == SqlState::INSUFFICIENT_PRIVILEGE {
        return PluginSqlError::NotPermitted(message);
    }
    match &code.code()[..2] {
        "42" => PluginSqlError::Invalid(message),
        "08" | "40" | "53" | "57" | "55" => PluginSqlError::Unavailable(message),
        _ => PluginSqlError::Other(message),
    }
}

#[cfg(test)]
mod tests {
    use super::lock_key;

    #[test]
    fn lock_keys_are_stable_and_separate_pipeline_from_partition() {
        assert_eq!(lock_key("p", "a"), lock_key("p", "a"));
        assert_ne!(lock_key("p", "ab"), lock_key("pa", "b"));
    }
}
