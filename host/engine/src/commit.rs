//! The commit protocol (docs/design.md, "The commit protocol"): per batch, the loads' rows,
//! the rejects and the checkpoint go into the commit database in ONE transaction. A crash at
//! any instant leaves either the whole batch with its checkpoint or neither.
//!
//! For one batch, in order:
//! 1. sinks (destinations outside every transaction) get the batch first: at-least-once;
//! 2. `BEGIN` on every database the batch touches, the commit database last — SQLite's
//!    `BEGIN IMMEDIATE` takes the file's write lock, PostgreSQL's commit database takes an
//!    advisory lock on the partition — so what follows is atomic with respect to other
//!    writers of the partition (see `db`);
//! 3. the write plans' rows, each refused row a reject — a refusal that ended the
//!    transaction fails the batch instead;
//! 4. the rejects into `_weir_rejects`;
//! 5. on a cluster, the fence: this worker's lease epoch must still be the partition's newest
//!    in the commit database (`weir_store::fences`), else another host owns it now;
//! 6. the checkpoint compare-and-set: the partition's stored checkpoint must still be the one
//!    this batch started from (another run, or an operator's reset, may have moved it);
//! 7. the history store's `save`, inside the commit database's transaction;
//! 8. `COMMIT` everywhere — or `ROLLBACK` everywhere the batch began, on any failure.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use weir_runtime::types::{Batch, Progress, Rows, Schema, SourceReject};
use weir_runtime::{HistoryInstance, LoaderInstance};
use weir_store::DestinationCount;
use weir_store::rejects::{RejectContext, RejectRecord};

use crate::columns::RowsView;
use crate::db::Db;
use crate::error::WorkerError;
use crate::plan::{PlanError, PlanLoad};

/// A load step that returned a sink; the instance stays alive to receive batches.
pub struct SinkLoad {
    /// The loader's name, for rejects.
    pub name: String,
    /// Its name among the pipeline's destinations, for per-destination counts.
    pub destination: String,
    pub instance: LoaderInstance,
}

/// Where one worker's batches go, and where they commit.
pub struct CommitTarget<'a> {
    pub pipeline: &'a str,
    pub partition: &'a str,
    pub run_id: &'a str,
    pub plans: &'a mut [PlanLoad],
    pub sinks: &'a mut [SinkLoad],
    /// The destination whose rows written are the batch's "loaded": the pipeline's first load.
    pub first_destination: &'a str,
    pub history: &'a mut HistoryInstance,
    /// The database the history store saves to, when it has one: the batch commits there.
    pub commit_db: Option<&'a str>,
    /// The database the rejects go to (the commit database, else the first plan's).
    pub rejects_db: (&'a str, &'a Db),
    /// The checkpoint the next batch starts from: what the history store held when the worker
    /// started, then each committed batch's.
    pub last_checkpoint: Option<String>,
    /// On a cluster: the partition lease's epoch, checked inside each batch's transaction on
    /// the commit database (stamped there when the worker started).
    pub fence: Option<i64>,
}

/// One batch as the load side has it.
pub struct BatchToCommit<'a> {
    pub rows: &'a Rows,
    pub view: &'a RowsView<'a>,
    pub schema: &'a Schema,
    pub positions: &'a [u64],
    pub source_rejects: &'a [SourceReject],
    pub rejects: &'a mut Vec<RejectRecord>,
    pub checkpoint: &'a str,
    pub progress: Progress,
}

/// What committing a batch took.
pub struct Committed {
    /// Rows the pipeline's first load wrote (the others' are in `destinations`).
    pub loaded: u64,
    /// Per destination ("plugin → database.table", or a sink's name): rows written and refused.
    pub destinations: BTreeMap<String, DestinationCount>,
    /// Time spent writing rows: sinks' `write` and binding rows through the write plans.
    pub load_time: Duration,
}

impl CommitTarget<'_> {
    /// Commit one batch: everything or nothing (see the module docs for the steps).
    pub async fn commit(&mut self, batch: BatchToCommit<'_>) -> Result<Committed, WorkerError> {
        let sink_clock = Instant::now();
        let mut destinations = BTreeMap::new();
        if !self.sinks.is_empty() {
            let as_batch = Batch {
                rows: batch.rows.clone(),
                positions: batch.positions.to_vec(),
                rejects: batch.source_rejects.to_vec(),
                checkpoint: batch.checkpoint.to_owned(),
                progress: batch.progress,
            };
            for sink in self.sinks.iter_mut() {
                let refused = sink.instance.write(&as_batch).await?;
                destinations.insert(
                    sink.destination.clone(),
                    DestinationCount {
                        loaded: batch.view.row_count as u64 - refused.len() as u64,
                        rejected: refused.len() as u64,
                    },
                );
                for reject in refused {
                    let index = reject.index as usize;
                    batch.rejects.push(RejectRecord {
                        stage: sink.name.clone(),
                        position: batch.positions.get(index).copied(),
                        reason: reject.reason,
                        raw: batch.view.row_json(index, batch.schema),
                    });
                }
            }
        }
        let sink_time = sink_clock.elapsed();
        let ordered = self.databases_in_order();
        let mut begun: Vec<&Db> = Vec::new();
        let mut load_time = Duration::ZERO;
        let outcome = self
            .in_transaction(
                &ordered,
                &mut begun,
                batch,
                &mut load_time,
                &mut destinations,
            )
            .await;
        if outcome.is_err() {
            for db in begun {
                db.rollback().await;
            }
        }
        outcome.map(|()| Committed {
            loaded: destinations
                .get(self.first_destination)
                .map_or(0, |d: &DestinationCount| d.loaded),
            destinations,
            load_time: sink_time + load_time,
        })
    }

    /// Every database this batch touches, the commit database last: if a commit elsewhere
    /// fails, the checkpoint is not saved and the batch is retried (at-least-once there).
    fn databases_in_order(&self) -> Vec<(String, Db)> {
        let mut dbs: BTreeMap<&str, &Db> = BTreeMap::new();
        for load in self.plans.iter() {
            dbs.insert(load.database.as_str(), &load.db);
        }
        dbs.insert(self.rejects_db.0, self.rejects_db.1);
        let commit_db = self.commit_db;
        dbs.iter()
            .filter(|(name, _)| Some(**name) != commit_db)
            .chain(dbs.iter().filter(|(name, _)| Some(**name) == commit_db))
            .map(|(n, db)| ((*n).to_owned(), (*db).clone()))
            .collect()
    }

    async fn in_transaction<'c>(
        &mut self,
        ordered: &'c [(String, Db)],
        begun: &mut Vec<&'c Db>,
        batch: BatchToCommit<'_>,
        load_time: &mut Duration,
        destinations: &mut BTreeMap<String, DestinationCount>,
    ) -> Result<(), WorkerError> {
        for (name, db) in ordered {
            // The commit database's lock serializes the writers of this partition.
            let partition_lock =
                (Some(name.as_str()) == self.commit_db).then_some((self.pipeline, self.partition));
            db.begin(name, partition_lock).await?;
            begun.push(db);
        }
        let clock = Instant::now();
        for load in self.plans.iter_mut() {
            let context = format!(
                "{}: writing to database \"{}\" failed",
                load.label, load.database
            );
            let rejected_before = batch.rejects.len();
            // A 0.2.0 plan's schema changes commit with its first batch.
            let n = load
                .write(batch.view, batch.schema, batch.positions, batch.rejects)
                .await
                .map_err(|e| match e {
                    PlanError::Sqlite(e) => WorkerError::sqlite(&context, &e),
                    ended @ PlanError::TransactionEnded { .. } => {
                        WorkerError::host(format!("{context}: {ended}"))
                    }
                    PlanError::Postgres(failure) => WorkerError::Host {
                        message: format!("{context}: {}: {}", failure.context, failure.reason),
                        retryable: failure.retryable,
                    },
                })?;
            destinations.insert(
                load.destination.clone(),
                DestinationCount {
                    loaded: n,
                    rejected: (batch.rejects.len() - rejected_before) as u64,
                },
            );
        }
        *load_time = clock.elapsed();
        let reject_ctx = RejectContext {
            pipeline: self.pipeline,
            partition: self.partition,
            run_id: self.run_id,
        };
        self.rejects_db
            .1
            .insert_rejects(&reject_ctx, batch.rejects)
            .await?;

        if self.commit_db.is_some() {
            // Inside the commit database's open transaction, whose write lock no other writer
            // can take meanwhile: fence, load, compare and save are one atomic step.
            if let (Some(epoch), Some((_, commit_db))) = (self.fence, ordered.last()) {
                check_fence(commit_db, self.pipeline, self.partition, epoch).await?;
            }
            self.check_checkpoint_unchanged().await?;
            self.history
                .save(self.pipeline, self.partition, batch.checkpoint)
                .await?;
        }
        still_in_transaction(ordered).await?;
        for (name, db) in ordered {
            db.commit(name).await?;
            begun.retain(|c| !c.same(db));
        }
        if self.commit_db.is_none() {
            // The history store keeps checkpoints outside these databases: at-least-once, and
            // the compare-and-set is only as good as the store's own atomicity.
            self.check_checkpoint_unchanged().await?;
            self.history
                .save(self.pipeline, self.partition, batch.checkpoint)
                .await?;
        }
        self.last_checkpoint = Some(batch.checkpoint.to_owned());
        Ok(())
    }

    /// The compare of the checkpoint compare-and-set.
    async fn check_checkpoint_unchanged(&mut self) -> Result<(), WorkerError> {
        let stored = self.history.load(self.pipeline, self.partition).await?;
        if stored == self.last_checkpoint {
            return Ok(());
        }
        Err(WorkerError::Conflict(format!(
            "another run advanced this partition: its checkpoint is no longer the one this batch started from (expected {}, found {}); this batch was rolled back",
            describe_checkpoint(self.last_checkpoint.as_deref()),
            describe_checkpoint(stored.as_deref()),
        )))
    }
}

/// The fence: a host paused past its lease, whose partition another host claimed since,
/// holds an older epoch than the one stamped there.
async fn check_fence(
    commit_db: &Db,
    pipeline: &str,
    partition: &str,
    epoch: i64,
) -> Result<(), WorkerError> {
    match commit_db.check_fence(pipeline, partition, epoch).await? {
        weir_store::fences::Stamp::Taken => Ok(()),
        weir_store::fences::Stamp::Superseded { newer } => Err(WorkerError::Fenced(format!(
            "{}; this batch was rolled back",
            weir_store::fences::explain(partition, epoch, newer)
        ))),
    }
}

/// Every transaction the batch began must still be open before the commit: a plugin's
/// statement or a trigger that rolled one back would otherwise let the rest commit alone.
async fn still_in_transaction(ordered: &[(String, Db)]) -> Result<(), WorkerError> {
    for (name, db) in ordered {
        if !db.in_transaction().await {
            return Err(WorkerError::host(format!(
                "the transaction on database \"{name}\" ended before the commit (rolled back by a trigger or a statement); the batch was rolled back"
            )));
        }
    }
    Ok(())
}

fn describe_checkpoint(checkpoint: Option<&str>) -> String {
    match checkpoint {
        None => "none".to_owned(),
        Some(c) => format!("`{}`", crate::events::shorten(c, 80)),
    }
}
