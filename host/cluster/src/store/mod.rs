//! The cluster's event log and run records in PostgreSQL: what every host's API, event stream
//! and dashboard read, whichever host ran what.
//!
//! - this module: [`PgStore`] and its reads (a [`StateStore`]);
//! - `writer`: one task per host storing its events in batches, ids from the shared counter,
//!   run records changed in the same transaction, retried across database restarts;
//! - `feed`: the newest id in the log, from `LISTEN weir_events` (every writer notifies in its
//!   transaction), so a host's event stream shows the other hosts' events within moments.

mod feed;
mod writer;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_postgres::Row;
use weir_store::{
    EventFilter, PartitionRecord, Record, Retention, RunRecord, StateStore, StoreFuture,
    StoredEvent,
};

use crate::ClusterError;
use crate::db::Db;

/// How long reads may take.
const READ_DEADLINE: Duration = Duration::from_secs(10);

/// How long a clean shutdown waits for the last events to be written (the database may be
/// down; the runs' data is committed elsewhere, this is only their record).
const FLUSH_LIMIT: Duration = Duration::from_secs(10);

/// The event log and run records in the cluster database.
pub struct PgStore {
    reads: Db,
    sender: mpsc::UnboundedSender<Record>,
    submitted: AtomicU64,
    /// The newest bus id written (this process's numbering).
    persisted: watch::Receiver<u64>,
    /// The newest id in the log (the cluster's numbering).
    feed: watch::Receiver<u64>,
    feed_task: JoinHandle<()>,
}

impl Drop for PgStore {
    fn drop(&mut self) {
        // The writer ends by itself once the sender is gone and its queue is written.
        self.feed_task.abort();
    }
}

impl PgStore {
    pub(crate) async fn open(
        db: Arc<Db>,
        host_id: &str,
        incarnation: &str,
        retention: Retention,
    ) -> Result<Self, ClusterError> {
        let reads = db.sibling(READ_DEADLINE);
        let newest = reads
            .conn()
            .await?
            .run("reading the newest event id", async |c| {
                let row = c
                    .query_one("SELECT coalesce(max(id), 0) FROM weir_events", &[])
                    .await?;
                Ok(row.get::<_, i64>(0))
            })
            .await?;
        let (feed_tx, feed) = watch::channel(newest as u64);
        let (persisted_tx, persisted) = watch::channel(0);
        let sender = writer::spawn(
            db.sibling(writer::DEADLINE),
            writer::Origin {
                host: host_id.to_owned(),
                origin: format!("{host_id}/{incarnation}"),
            },
            retention,
            persisted_tx,
            feed_tx.clone(),
        );
        let feed_task = tokio::spawn(feed::follow(db, feed_tx));
        Ok(Self {
            reads,
            sender,
            submitted: AtomicU64::new(0),
            persisted,
            feed,
            feed_task,
        })
    }

    async fn read<T: Send>(
        &self,
        context: &str,
        work: impl AsyncFnOnce(&mut tokio_postgres::Client) -> Result<T, tokio_postgres::Error>,
    ) -> anyhow::Result<T> {
        let conn = self.reads.conn().await?;
        Ok(conn.run(context, work).await?)
    }
}

impl StateStore for PgStore {
    fn location(&self) -> String {
        self.reads.shown.clone()
    }

    fn first_bus_id(&self) -> u64 {
        1
    }

    fn record(&self, record: Record) {
        let id = record.event.id;
        if self.sender.send(record).is_err() {
            tracing::error!(id, "cluster event writer is gone; event not stored");
        }
        self.submitted.fetch_max(id, Ordering::SeqCst);
    }

    fn submitted(&self) -> u64 {
        self.submitted.load(Ordering::SeqCst)
    }

    fn wait_persisted(&self, id: u64) -> StoreFuture<'_, ()> {
        let mut rx = self.persisted.clone();
        Box::pin(async move {
            let _ = rx.wait_for(|&done| done >= id).await;
        })
    }

    fn flush(&self) -> StoreFuture<'_, ()> {
        let upto = self.submitted();
        Box::pin(async move {
            if tokio::time::timeout(FLUSH_LIMIT, self.wait_persisted(upto))
                .await
                .is_err()
            {
                tracing::warn!(
                    "events not yet stored in the cluster database after {} s; giving up \
                     waiting for them",
                    FLUSH_LIMIT.as_secs()
                );
            }
        })
    }

    fn newest_event_id(&self) -> u64 {
        *self.feed.borrow()
    }

    fn shared_feed(&self) -> Option<watch::Receiver<u64>> {
        Some(self.feed.clone())
    }

    fn events_after(
        &self,
        after: u64,
        filter: EventFilter,
        limit: usize,
    ) -> StoreFuture<'_, anyhow::Result<Vec<StoredEvent>>> {
        Box::pin(async move {
            let rows = self
                .read("reading events", async |c| {
                    c.query(
                        "SELECT id, time_ms, pipeline, run, partition, kind, data
                         FROM weir_events
                         WHERE id > $1 AND ($2::text IS NULL OR pipeline = $2)
                           AND ($3::text IS NULL OR run = $3)
                         ORDER BY id LIMIT $4",
                        &[
                            &(after as i64),
                            &filter.pipeline,
                            &filter.run,
                            &(limit as i64),
                        ],
                    )
                    .await
                })
                .await?;
            Ok(rows
                .iter()
                .map(|r| StoredEvent {
                    id: r.get::<_, i64>(0) as u64,
                    time_ms: r.get(1),
                    pipeline: r.get(2),
                    run: r.get(3),
                    partition: r.get(4),
                    kind: r.get(5),
                    data: r.get(6),
                })
                .collect())
        })
    }

    fn oldest_event_id(&self) -> StoreFuture<'_, anyhow::Result<Option<u64>>> {
        Box::pin(async move {
            let oldest = self
                .read("reading the oldest event id", async |c| {
                    Ok(c.query_one("SELECT min(id) FROM weir_events", &[])
                        .await?
                        .get::<_, Option<i64>>(0))
                })
                .await?;
            Ok(oldest.map(|id| id as u64))
        })
    }

    fn runs(
        &self,
        pipeline: Option<String>,
        limit: usize,
        offset: usize,
    ) -> StoreFuture<'_, anyhow::Result<Vec<RunRecord>>> {
        Box::pin(async move {
            let rows = self
                .read("reading runs", async |c| {
                    c.query(
                        &format!(
                            "SELECT {RUN_COLUMNS} FROM weir_runs
                             WHERE ($1::text IS NULL OR pipeline = $1)
                             ORDER BY started_ms DESC, id DESC LIMIT $2 OFFSET $3"
                        ),
                        &[&pipeline, &(limit as i64), &(offset as i64)],
                    )
                    .await
                })
                .await?;
            Ok(rows.iter().map(run_record).collect())
        })
    }

    fn run(
        &self,
        id: String,
    ) -> StoreFuture<'_, anyhow::Result<Option<(RunRecord, Vec<PartitionRecord>)>>> {
        Box::pin(async move {
            let (run, partitions) = self
                .read("reading a run", async |c| {
                    let run = c
                        .query_opt(
                            &format!("SELECT {RUN_COLUMNS} FROM weir_runs WHERE id = $1"),
                            &[&id],
                        )
                        .await?;
                    let partitions = c
                        .query(
                            "SELECT partition, status, rows_read, rows_loaded, rows_rejected,
                                 batches, checkpoint, error, bytes, host, plugins
                             FROM weir_run_partitions WHERE run_id = $1 ORDER BY partition",
                            &[&id],
                        )
                        .await?;
                    Ok((run, partitions))
                })
                .await?;
            let Some(run) = run else {
                return Ok(None);
            };
            let partitions = partitions
                .iter()
                .map(|r| PartitionRecord {
                    partition: r.get(0),
                    status: r.get(1),
                    rows_read: r.get::<_, i64>(2) as u64,
                    rows_loaded: r.get::<_, i64>(3) as u64,
                    rows_rejected: r.get::<_, i64>(4) as u64,
                    batches: r.get::<_, i64>(5) as u64,
                    checkpoint: r.get(6),
                    error: r.get(7),
                    bytes: r.get::<_, i64>(8) as u64,
                    host: r.get(9),
                    plugins: r
                        .get::<_, Option<String>>(10)
                        .and_then(|p| serde_json::from_str(&p).ok()),
                })
                .collect();
            Ok(Some((run_record(&run), partitions)))
        })
    }
}

const RUN_COLUMNS: &str = "id, pipeline, trigger, status, started_ms, ended_ms, partitions, \
     rows_read, rows_loaded, rows_rejected, batches, error, plugins, bytes, rows_filtered, details, host";

fn run_record(r: &Row) -> RunRecord {
    RunRecord {
        id: r.get(0),
        pipeline: r.get(1),
        trigger: r.get(2),
        status: r.get(3),
        started_ms: r.get(4),
        ended_ms: r.get(5),
        partitions: r.get::<_, Option<i64>>(6).map(|n| n as u64),
        rows_read: r.get::<_, i64>(7) as u64,
        rows_loaded: r.get::<_, i64>(8) as u64,
        rows_rejected: r.get::<_, i64>(9) as u64,
        batches: r.get::<_, i64>(10) as u64,
        error: r.get(11),
        plugins: r
            .get::<_, Option<String>>(12)
            .and_then(|text| serde_json::from_str(&text).ok()),
        bytes: r.get::<_, i64>(13) as u64,
        rows_filtered: r.get::<_, i64>(14) as u64,
        details: r
            .get::<_, Option<String>>(15)
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default(),
        host: r.get(16),
    }
}
