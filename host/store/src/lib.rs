//! The state database of `weir serve` (docs/design.md, "Service mode"): the persisted event log with bounded
//! retention, and run records *derived from those events* in the same transaction, so the
//! event stream and the run table cannot disagree.
//!
//! Writes go through one writer thread fed by a channel: the engine's event tap only
//! serialises and sends, never waits on the disk. Readers (the API) use their own connection;
//! SQLite's WAL lets them read while the writer commits. [`Store::wait_persisted`] lets a
//! reader wait until every event published so far is on disk — the SSE replay needs that to
//! hand over to the live stream without a gap.

pub mod fences;
mod pg_tables;
pub mod rejects;
mod schema;
mod state;
mod writer;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use anyhow::Context as _;
use rusqlite::{Connection, OptionalExtension as _, params};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

pub use rejects::{RejectPage, RejectRow, rejects_page, rejects_page_postgres};
pub use state::{StateStore, StoreFuture};

/// One event as stored and as sent over SSE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub id: u64,
    /// Unix time in milliseconds.
    pub time_ms: i64,
    pub pipeline: Option<String>,
    pub run: Option<String>,
    pub partition: Option<String>,
    /// The event type, e.g. `batch_committed` (SSE `event:`).
    pub kind: String,
    /// The whole event as JSON, exactly as it was published (SSE `data:`).
    pub data: String,
}

/// What an event changes in the run records. The engine maps its event enum to this in one
/// place; the store applies it in the transaction that stores the event.
#[derive(Debug, Clone, PartialEq)]
pub enum RunChange {
    /// The event is not about a run's progress.
    None,
    /// A run began; its record is created. `plugins`: name → version of every plugin it uses.
    Started {
        trigger: String,
        partitions: u64,
        plugins: BTreeMap<String, String>,
    },
    /// A partition's worker (re)started from `checkpoint`.
    WorkerStarted { checkpoint: Option<String> },
    /// One batch committed in a partition.
    Batch {
        rows_read: u64,
        rows_loaded: u64,
        rows_rejected: u64,
        /// Rows the transforms left out on purpose (filters).
        rows_filtered: u64,
        /// Row data read from the source.
        bytes: u64,
        checkpoint: String,
        /// Counts the transforms reported, by `<transform>.<name>`.
        counters: BTreeMap<String, u64>,
        /// What each destination loaded and refused.
        destinations: BTreeMap<String, DestinationCount>,
    },
    /// What a worker's plugins did through one granted HTTP connection.
    Http {
        connection: String,
        usage: HttpUsage,
    },
    /// A partition finished; `totals` when the worker reports them.
    WorkerEnded {
        status: PartitionStatus,
        error: Option<String>,
        totals: Option<Totals>,
    },
    /// The run finished.
    Ended {
        status: RunStatus,
        error: Option<String>,
        totals: Totals,
    },
}

/// What one destination (a write plan or a sink) did with the rows it was given.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestinationCount {
    pub loaded: u64,
    pub rejected: u64,
}

impl std::ops::AddAssign for DestinationCount {
    fn add_assign(&mut self, other: Self) {
        self.loaded += other.loaded;
        self.rejected += other.rejected;
    }
}

/// Requests through one granted HTTP connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpUsage {
    /// Requests sent.
    pub requests: u64,
    /// Response body bytes received.
    pub response_bytes: u64,
    /// Requests that failed in transport (connect, TLS, timeouts, body cap).
    pub errors: u64,
    /// Requests the grant refused.
    pub refused: u64,
    /// Responses that asked to retry (429/503 with `Retry-After`) and requests sent again
    /// with a refreshed token.
    pub retried: u64,
}

impl std::ops::AddAssign for HttpUsage {
    fn add_assign(&mut self, other: Self) {
        self.requests += other.requests;
        self.response_bytes += other.response_bytes;
        self.errors += other.errors;
        self.refused += other.refused;
        self.retried += other.retried;
    }
}

/// The parts of a run record that are maps: kept as one JSON document.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunDetails {
    /// Counts the transforms reported, by `<transform>.<name>`.
    #[serde(default)]
    pub counters: BTreeMap<String, u64>,
    /// Per destination, what it loaded and refused.
    #[serde(default)]
    pub destinations: BTreeMap<String, DestinationCount>,
    /// Per granted HTTP connection, what the run's plugins did through it.
    #[serde(default)]
    pub http: BTreeMap<String, HttpUsage>,
}

impl RunDetails {
    fn is_empty(&self) -> bool {
        self.counters.is_empty() && self.destinations.is_empty() && self.http.is_empty()
    }
}

/// Rows read, loaded and rejected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub rows_read: u64,
    pub rows_loaded: u64,
    pub rows_rejected: u64,
}

/// How a run ended (or that it has not yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    Running,
    Completed,
    Failed,
    Cancelled,
    /// Still `running` when the engine stopped without finishing it (crash, kill -9).
    Interrupted,
}

impl std::ops::AddAssign for Totals {
    fn add_assign(&mut self, other: Self) {
        self.rows_read += other.rows_read;
        self.rows_loaded += other.rows_loaded;
        self.rows_rejected += other.rows_rejected;
    }
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Interrupted => "interrupted",
        }
    }
}

/// How a partition of a run ended (or that it has not yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartitionStatus {
    Running,
    Completed,
    Failed,
    /// Stopped at a batch boundary because its run was cancelled.
    Cancelled,
}

impl PartitionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }
}

/// An event to store, with its effect on the run records.
#[derive(Debug, Clone)]
pub struct Record {
    pub event: StoredEvent,
    pub change: RunChange,
}

/// One run, as derived from its events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunRecord {
    pub id: String,
    pub pipeline: String,
    /// `schedule`, `manual`, `catch-up`; `None` if the run failed before it started.
    pub trigger: Option<String>,
    /// `running`, `completed`, `failed`, `cancelled` or `interrupted`.
    pub status: String,
    pub started_ms: i64,
    pub ended_ms: Option<i64>,
    pub partitions: Option<u64>,
    pub rows_read: u64,
    pub rows_loaded: u64,
    pub rows_rejected: u64,
    /// Rows the transforms left out on purpose (filters).
    pub rows_filtered: u64,
    pub batches: u64,
    /// Row data read from the source by the committed batches.
    pub bytes: u64,
    pub error: Option<String>,
    /// The plugin versions the run used, name → version (`None` if it failed before starting).
    pub plugins: Option<BTreeMap<String, String>>,
    /// Per destination, per HTTP connection and per transform count.
    pub details: RunDetails,
    /// The host that started it (clustered state only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

/// One partition of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionRecord {
    pub partition: String,
    pub status: String,
    pub rows_read: u64,
    pub rows_loaded: u64,
    pub rows_rejected: u64,
    pub batches: u64,
    /// Row data read from the source by the committed batches.
    pub bytes: u64,
    /// The last committed checkpoint (or the one the worker started from).
    pub checkpoint: Option<String>,
    pub error: Option<String>,
    /// The host that ran it last (clustered state only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Name → version of the plugins that host ran it with (clustered state only: hosts may
    /// differ during a rolling upgrade).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugins: Option<std::collections::BTreeMap<String, String>>,
}

/// How much history to keep.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// Newest events kept; older ones are deleted as new ones arrive.
    pub events: u64,
    /// Newest runs kept (with their partitions).
    pub runs: u64,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            events: 100_000,
            runs: 10_000,
        }
    }
}

/// Which events a reader wants.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub pipeline: Option<String>,
    pub run: Option<String>,
}

impl EventFilter {
    /// Whether a live event passes the filter (the replay filters in SQL, the same way).
    pub fn matches(&self, pipeline: Option<&str>, run: Option<&str>) -> bool {
        self.pipeline.as_deref().is_none_or(|p| pipeline == Some(p))
            && self.run.as_deref().is_none_or(|r| run == Some(r))
    }
}

/// The state database of one host: a SQLite file.
pub struct Store {
    reader: Reader,
    sender: Mutex<mpsc::Sender<Record>>,
    last_id_at_open: u64,
    submitted: AtomicU64,
    persisted: watch::Receiver<u64>,
}

impl Store {
    /// Open (or create) the database, mark runs left `running` by a previous process as
    /// `interrupted`, and start the writer thread.
    pub fn open(path: &Path, retention: Retention) -> anyhow::Result<Self> {
        let fail = || format!("cannot open the state database {}", path.display());
        let conn = schema::open(path).with_context(fail)?;
        let last_id: u64 = conn
            .query_row("SELECT coalesce(max(id), 0) FROM events", [], |r| r.get(0))
            .with_context(fail)?;
        let interrupted = conn
            .execute(
                "UPDATE runs SET status = 'interrupted', error = coalesce(error, \
                 'the engine stopped while the run was in progress') WHERE status = 'running'",
                [],
            )
            .with_context(fail)?;
        if interrupted > 0 {
            tracing::warn!(
                runs = interrupted,
                "runs left running by the previous process are marked interrupted"
            );
        }
        let (persisted_tx, persisted) = watch::channel(last_id);
        let sender = writer::spawn(conn, retention, persisted_tx).with_context(fail)?;
        let read = schema::open(path).with_context(fail)?;
        Ok(Self {
            reader: Reader {
                path: Arc::new(path.to_owned()),
                conn: Arc::new(Mutex::new(read)),
            },
            sender: Mutex::new(sender),
            last_id_at_open: last_id,
            submitted: AtomicU64::new(last_id),
            persisted,
        })
    }

    /// The file this store lives in.
    pub fn path(&self) -> &Path {
        &self.reader.path
    }

    /// The newest event id when the store was opened (the bus continues after it).
    pub fn last_event_id(&self) -> u64 {
        self.last_id_at_open
    }

    /// Queue an event for writing. Call in id order (the event bus's tap does).
    pub fn record(&self, record: Record) {
        let id = record.event.id;
        let sender = self.sender.lock().unwrap_or_else(|p| p.into_inner());
        if sender.send(record).is_err() {
            tracing::error!(id, "state database writer is gone; event not persisted");
        }
        self.submitted.fetch_max(id, Ordering::SeqCst);
    }

    /// The newest event id queued so far.
    pub fn submitted(&self) -> u64 {
        self.submitted.load(Ordering::SeqCst)
    }

    /// The newest event id on disk.
    pub fn persisted(&self) -> u64 {
        *self.persisted.borrow()
    }

    /// Wait until every event up to `id` is on disk (or given up on after a write error,
    /// which is logged: a reader must not hang on a broken disk).
    pub async fn wait_persisted(&self, id: u64) {
        let mut rx = self.persisted.clone();
        let _ = rx.wait_for(|&done| done >= id).await;
    }

    /// Wait until everything queued so far is on disk.
    pub async fn flush(&self) {
        self.wait_persisted(self.submitted()).await;
    }

    /// Up to `limit` events with id > `after` that pass `filter`, oldest first.
    pub fn events_after(
        &self,
        after: u64,
        filter: &EventFilter,
        limit: usize,
    ) -> anyhow::Result<Vec<StoredEvent>> {
        self.reader.events_after(after, filter, limit)
    }

    /// The oldest event still kept, if any.
    pub fn oldest_event_id(&self) -> anyhow::Result<Option<u64>> {
        self.reader.oldest_event_id()
    }

    /// Runs, newest first, of one pipeline or all.
    pub fn runs(
        &self,
        pipeline: Option<&str>,
        limit: usize,
        offset: usize,
    ) -> anyhow::Result<Vec<RunRecord>> {
        self.reader.runs(pipeline, limit, offset)
    }

    /// The newest run of a pipeline.
    pub fn last_run(&self, pipeline: &str) -> anyhow::Result<Option<RunRecord>> {
        Ok(self.runs(Some(pipeline), 1, 0)?.pop())
    }

    /// One run with its partitions.
    pub fn run(&self, id: &str) -> anyhow::Result<Option<(RunRecord, Vec<PartitionRecord>)>> {
        self.reader.run(id)
    }

    /// Run `f` with the reader on the blocking pool (SQLite calls block).
    fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Reader) -> anyhow::Result<T> + Send + 'static,
    ) -> StoreFuture<'_, anyhow::Result<T>> {
        let reader = self.reader.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || f(&reader))
                .await
                .map_err(|e| anyhow::anyhow!("state database read task failed: {e}"))?
        })
    }
}

impl StateStore for Store {
    fn location(&self) -> String {
        self.reader.path.display().to_string()
    }

    fn first_bus_id(&self) -> u64 {
        self.last_id_at_open + 1
    }

    fn record(&self, record: Record) {
        Store::record(self, record);
    }

    fn submitted(&self) -> u64 {
        Store::submitted(self)
    }

    fn wait_persisted(&self, id: u64) -> StoreFuture<'_, ()> {
        Box::pin(Store::wait_persisted(self, id))
    }

    fn newest_event_id(&self) -> u64 {
        self.persisted()
    }

    fn shared_feed(&self) -> Option<watch::Receiver<u64>> {
        None
    }

    fn events_after(
        &self,
        after: u64,
        filter: EventFilter,
        limit: usize,
    ) -> StoreFuture<'_, anyhow::Result<Vec<StoredEvent>>> {
        self.blocking(move |r| r.events_after(after, &filter, limit))
    }

    fn oldest_event_id(&self) -> StoreFuture<'_, anyhow::Result<Option<u64>>> {
        self.blocking(Reader::oldest_event_id)
    }

    fn runs(
        &self,
        pipeline: Option<String>,
        limit: usize,
        offset: usize,
    ) -> StoreFuture<'_, anyhow::Result<Vec<RunRecord>>> {
        self.blocking(move |r| r.runs(pipeline.as_deref(), limit, offset))
    }

    fn run(
        &self,
        id: String,
    ) -> StoreFuture<'_, anyhow::Result<Option<(RunRecord, Vec<PartitionRecord>)>>> {
        self.blocking(move |r| r.run(&id))
    }
}

/// The read side of the state database: its own connection (WAL lets it read while the writer
/// commits), shared by clones.
#[derive(Clone)]
struct Reader {
    path: Arc<PathBuf>,
    conn: Arc<Mutex<Connection>>,
}

impl Reader {
    fn read<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> anyhow::Result<T> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&conn)
            .with_context(|| format!("failed to read the state database {}", self.path.display()))
    }

    /// Up to `limit` events with id > `after` that pass `filter`, oldest first.
    fn events_after(
        &self,
        after: u64,
        filter: &EventFilter,
        limit: usize,
    ) -> anyhow::Result<Vec<StoredEvent>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, time_ms, pipeline, run, partition, kind, data FROM events
                 WHERE id > ?1 AND (?2 IS NULL OR pipeline = ?2) AND (?3 IS NULL OR run = ?3)
                 ORDER BY id LIMIT ?4",
            )?;
            stmt.query_map(
                params![after, filter.pipeline, filter.run, limit as i64],
                |r| {
                    Ok(StoredEvent {
                        id: r.get(0)?,
                        time_ms: r.get(1)?,
                        pipeline: r.get(2)?,
                        run: r.get(3)?,
                        partition: r.get(4)?,
                        kind: r.get(5)?,
                        data: r.get(6)?,
                    })
                },
            )?
            .collect()
        })
    }

    /// The oldest event still kept, if any.
    fn oldest_event_id(&self) -> anyhow::Result<Option<u64>> {
        self.read(|c| c.query_row("SELECT min(id) FROM events", [], |r| r.get(0)))
    }

    /// Runs, newest first, of one pipeline or all.
    fn runs(
        &self,
        pipeline: Option<&str>,
        limit: usize,
        offset: usize,
    ) -> anyhow::Result<Vec<RunRecord>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {RUN_COLUMNS} FROM runs WHERE (?1 IS NULL OR pipeline = ?1)
                 ORDER BY started_ms DESC, id DESC LIMIT ?2 OFFSET ?3"
            ))?;
            stmt.query_map(params![pipeline, limit as i64, offset as i64], run_row)?
                .collect()
        })
    }

    /// One run with its partitions.
    fn run(&self, id: &str) -> anyhow::Result<Option<(RunRecord, Vec<PartitionRecord>)>> {
        self.read(|c| {
            let Some(run) = c
                .query_row(
                    &format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1"),
                    [id],
                    run_row,
                )
                .optional()?
            else {
                return Ok(None);
            };
            let mut stmt = c.prepare_cached(
                "SELECT partition, status, rows_read, rows_loaded, rows_rejected, batches,
                        checkpoint, error, bytes
                 FROM run_partitions WHERE run_id = ?1 ORDER BY partition",
            )?;
            let partitions = stmt
                .query_map([id], |r| {
                    Ok(PartitionRecord {
                        partition: r.get(0)?,
                        status: r.get(1)?,
                        rows_read: r.get(2)?,
                        rows_loaded: r.get(3)?,
                        rows_rejected: r.get(4)?,
                        batches: r.get(5)?,
                        checkpoint: r.get(6)?,
                        error: r.get(7)?,
                        bytes: r.get(8)?,
                        host: None,
                        plugins: None,
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            Ok(Some((run, partitions)))
        })
    }
}

const RUN_COLUMNS: &str = "id, pipeline, trigger, status, started_ms, ended_ms, partitions, \
     rows_read, rows_loaded, rows_rejected, batches, error, plugins, bytes, rows_filtered, details";

fn run_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RunRecord> {
    Ok(RunRecord {
        id: r.get(0)?,
        pipeline: r.get(1)?,
        trigger: r.get(2)?,
        status: r.get(3)?,
        started_ms: r.get(4)?,
        ended_ms: r.get(5)?,
        partitions: r.get(6)?,
        rows_read: r.get(7)?,
        rows_loaded: r.get(8)?,
        rows_rejected: r.get(9)?,
        batches: r.get(10)?,
        error: r.get(11)?,
        plugins: r
            .get::<_, Option<String>>(12)?
            .and_then(|text| serde_json::from_str(&text).ok()),
        bytes: r.get(13)?,
        rows_filtered: r.get(14)?,
        details: r
            .get::<_, Option<String>>(15)?
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default(),
        host: None,
    })
}

#[cfg(test)]
mod tests;
