//! A database a worker's batches commit to, whichever the grant names: a SQLite file (the
//! shared connection) or a PostgreSQL server (the attempt's session). The commit protocol
//! (`commit`) is written once against this handle.

use std::sync::Arc;

use weir_runtime::{PgSession, SharedConnection, lock};
use weir_store::fences::{self, Stamp};
use weir_store::rejects::{self, RejectContext, RejectRecord};

use crate::error::WorkerError;

/// One granted database, as the worker holds it.
#[derive(Clone)]
pub enum Db {
    Sqlite(SharedConnection),
    Postgres(PgSession),
}

impl Db {
    /// Whether both lead to the same connection.
    pub fn same(&self, other: &Db) -> bool {
        match (self, other) {
            (Self::Sqlite(a), Self::Sqlite(b)) => Arc::ptr_eq(a, b),
            (Self::Postgres(a), Self::Postgres(b)) => a.grant().name == b.grant().name,
            _ => false,
        }
    }

    /// Begin the batch's transaction. SQLite: `BEGIN IMMEDIATE` takes the file's write lock.
    /// PostgreSQL: `BEGIN`, and on the commit database (`partition_lock`) an advisory lock on
    /// the partition, which serializes its writers the same way.
    pub async fn begin(
        &self,
        name: &str,
        partition_lock: Option<(&str, &str)>,
    ) -> Result<(), WorkerError> {
        let context = format!("failed to begin the commit transaction on database \"{name}\"");
        match self {
            Self::Sqlite(conn) => lock(conn)
                .execute_batch("BEGIN IMMEDIATE")
                .map_err(|e| WorkerError::sqlite(&context, &e)),
            Self::Postgres(session) => session
                .lock()
                .await
                .begin(partition_lock)
                .await
                .map_err(|e| WorkerError::postgres(&context, &e)),
        }
    }

    /// Commit the batch's transaction.
    pub async fn commit(&self, name: &str) -> Result<(), WorkerError> {
        let context = format!("commit failed on database \"{name}\"");
        match self {
            Self::Sqlite(conn) => lock(conn)
                .execute_batch("COMMIT")
                .map_err(|e| WorkerError::sqlite(&context, &e)),
            Self::Postgres(session) => session
                .lock()
                .await
                .commit()
                .await
                .map_err(|e| WorkerError::postgres(&context, &e)),
        }
    }

    /// Roll back the batch's transaction if one is open.
    pub async fn rollback(&self) {
        match self {
            Self::Sqlite(conn) => {
                let db = lock(conn);
                if !db.is_autocommit() {
                    let _ = db.execute_batch("ROLLBACK");
                }
            }
            Self::Postgres(session) => session.lock().await.rollback().await,
        }
    }

    /// Whether the transaction the host began is still open: on SQLite a trigger or a
    /// plugin's `ON CONFLICT ROLLBACK` may have ended it; on PostgreSQL plugins cannot end it,
    /// and an aborted one is caught by the commit itself.
    pub async fn in_transaction(&self) -> bool {
        match self {
            Self::Sqlite(conn) => !lock(conn).is_autocommit(),
            Self::Postgres(session) => session.lock().await.in_transaction(),
        }
    }

    /// Create the rejects table if needed (outside any batch).
    pub async fn ensure_rejects_table(&self) -> Result<(), WorkerError> {
        let context = "failed to create the rejects table";
        match self {
            Self::Sqlite(conn) => {
                rejects::ensure_table(&lock(conn)).map_err(|e| WorkerError::sqlite(context, &e))
            }
            Self::Postgres(session) => {
                let state = session.lock().await;
                rejects::ensure_table_postgres(state.client(), state.in_transaction())
                    .await
                    .map_err(|e| WorkerError::postgres(context, &e))
            }
        }
    }

    /// Record rejects inside the batch's open transaction.
    pub async fn insert_rejects(
        &self,
        ctx: &RejectContext<'_>,
        records: &[RejectRecord],
    ) -> Result<(), WorkerError> {
        let context = "failed to record rejects";
        match self {
            Self::Sqlite(conn) => rejects::insert(&lock(conn), ctx, records)
                .map_err(|e| WorkerError::sqlite(context, &e)),
            Self::Postgres(session) => {
                let state = session.lock().await;
                rejects::insert_postgres(state.client(), ctx, records)
                    .await
                    .map_err(|e| WorkerError::postgres(context, &e))
            }
        }
    }

    /// Raise the partition's fence to this worker's lease epoch, outside any batch (a clustered
    /// worker does this before it reads its checkpoint; see `weir_store::fences`).
    pub async fn stamp_fence(
        &self,
        pipeline: &str,
        partition: &str,
        epoch: i64,
    ) -> Result<Stamp, WorkerError> {
        let context = "failed to record the partition's lease epoch (fence)";
        match self {
            Self::Sqlite(conn) => fences::stamp(&lock(conn), pipeline, partition, epoch)
                .map_err(|e| WorkerError::sqlite(context, &e)),
            Self::Postgres(session) => {
                let state = session.lock().await;
                fences::stamp_postgres(state.client(), pipeline, partition, epoch)
                    .await
                    .map_err(|e| WorkerError::postgres(context, &e))
            }
        }
    }

    /// Inside the batch's open transaction: whether the epoch is still the partition's newest.
    pub async fn check_fence(
        &self,
        pipeline: &str,
        partition: &str,
        epoch: i64,
    ) -> Result<Stamp, WorkerError> {
        let context = "failed to check the partition's lease epoch (fence)";
        match self {
            Self::Sqlite(conn) => fences::check(&lock(conn), pipeline, partition, epoch)
                .map_err(|e| WorkerError::sqlite(context, &e)),
            Self::Postgres(session) => {
                let state = session.lock().await;
                fences::check_postgres(state.client(), pipeline, partition, epoch)
                    .await
                    .map_err(|e| WorkerError::postgres(context, &e))
            }
        }
    }
}
