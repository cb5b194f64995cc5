//! [`StateStore`]: where `weir serve` keeps its event log and run records, seen the same way by
//! the service (which writes) and the API (which reads), whichever database holds them: the
//! SQLite file of one host ([`crate::Store`]), or PostgreSQL shared by a cluster of hosts
//! (`weir-cluster`).
//!
//! Two kinds of id meet here. The event bus numbers the events of this process (`Record`'s
//! `event.id`, in which [`StateStore::record`], [`StateStore::submitted`] and
//! [`StateStore::flush`] count); clients see the ids of the log ([`StoredEvent::id`],
//! [`StateStore::newest_event_id`]). In SQLite they are the same numbers; in a cluster the
//! log gives ids from one sequence shared by every host, so `Last-Event-ID` means the same on
//! any host.

use std::future::Future;
use std::pin::Pin;

use tokio::sync::watch;

use crate::{EventFilter, PartitionRecord, Record, RunRecord, StoredEvent};

/// A future the store returns (boxed, so the trait can be used as `dyn StateStore`).
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The event log and run records of `weir serve`.
pub trait StateStore: Send + Sync {
    /// Where it is, for messages (a file, or a redacted URL).
    fn location(&self) -> String;

    /// The first id the event bus should give (SQLite continues its log's numbering; a shared
    /// log numbers events itself, so the bus starts at 1).
    fn first_bus_id(&self) -> u64;

    /// Queue an event for writing, in bus id order; never waits on the database.
    fn record(&self, record: Record);

    /// The newest bus id queued so far.
    fn submitted(&self) -> u64;

    /// Wait until every event up to bus id `id` is written (or given up on after an error
    /// that was logged: a reader must not hang on a broken database).
    fn wait_persisted(&self, id: u64) -> StoreFuture<'_, ()>;

    /// Wait until everything queued so far is written.
    fn flush(&self) -> StoreFuture<'_, ()> {
        let upto = self.submitted();
        self.wait_persisted(upto)
    }

    /// The newest event id in the log as clients see it (`Last-Event-ID`).
    fn newest_event_id(&self) -> u64;

    /// When other processes write to the log too (a cluster), the newest id in the log,
    /// updated as events arrive from any host; the event stream follows the log then, instead
    /// of this process's bus. `None` when this process is the only writer.
    fn shared_feed(&self) -> Option<watch::Receiver<u64>>;

    /// Up to `limit` events with id > `after` that pass `filter`, oldest first.
    fn events_after(
        &self,
        after: u64,
        filter: EventFilter,
        limit: usize,
    ) -> StoreFuture<'_, anyhow::Result<Vec<StoredEvent>>>;

    /// The oldest event still kept, if any.
    fn oldest_event_id(&self) -> StoreFuture<'_, anyhow::Result<Option<u64>>>;

    /// Runs, newest first, of one pipeline or all.
    fn runs(
        &self,
        pipeline: Option<String>,
        limit: usize,
        offset: usize,
    ) -> StoreFuture<'_, anyhow::Result<Vec<RunRecord>>>;

    /// One run with its partitions.
    #[allow(
        clippy::type_complexity,
        reason = "a pair read together, named by the method"
    )]
    fn run(
        &self,
        id: String,
    ) -> StoreFuture<'_, anyhow::Result<Option<(RunRecord, Vec<PartitionRecord>)>>>;

    /// The newest run of each pipeline named (in that order).
    fn last_runs(
        &self,
        pipelines: Vec<String>,
    ) -> StoreFuture<'_, anyhow::Result<Vec<Option<RunRecord>>>> {
        Box::pin(async move {
            let mut out = Vec::with_capacity(pipelines.len());
            for name in pipelines {
                out.push(self.runs(Some(name), 1, 0).await?.pop());
            }
            Ok(out)
        })
    }
}
