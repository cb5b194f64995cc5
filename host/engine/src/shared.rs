//! A run whose partitions the hosts of a cluster share (docs/cluster.md; `weir_cluster` keeps
//! the leases). The host holding the run lease lists and queues the partitions; every host
//! with free slots for the pipeline (its `concurrency`) claims some, up to a fair share and
//! the pipeline's `cluster_concurrency`, and runs each under its supervisor with the lease's
//! epoch as the fence of its commits. A partition whose holder stopped renewing its lease is
//! claimed by another host after the lease expires, and resumes from its last committed
//! checkpoint.
//!
//! [`work`] is the loop of one host for one run: the run lease holder's ends when every
//! partition is done ([`Until::RunDone`]); a helping host's when it finds nothing left to
//! claim ([`Until::NothingToClaim`]).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;
use weir_cluster::{ClaimLimits, Cluster, Lease, RunProgress};
use weir_runtime::types::Partition;
use weir_store::Totals;

use crate::context::RunContext;
use crate::events::EventKind;
use crate::pipeline::ResolvedPipeline;
use crate::supervisor::{PartitionOutcome, Stopped, supervise};

/// The partition leases this host holds, which its heartbeat renews.
#[derive(Clone, Default)]
pub struct LeaseBook(Arc<Mutex<BTreeMap<(String, String), Lease>>>);

impl LeaseBook {
    fn book(&self) -> MutexGuard<'_, BTreeMap<(String, String), Lease>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn insert(&self, lease: Lease) {
        self.book().insert(lease.key(), lease);
    }

    /// Forget `lease` (only that epoch of it).
    pub fn remove(&self, lease: &Lease) {
        let mut book = self.book();
        if book.get(&lease.key()) == Some(lease) {
            book.remove(&lease.key());
        }
    }

    /// Every lease held, for the heartbeat.
    pub fn all(&self) -> Vec<Lease> {
        self.book().values().cloned().collect()
    }
}

/// What a host brings to the runs it shares.
#[derive(Clone)]
pub struct SharedRun {
    pub cluster: Arc<Cluster>,
    pub book: LeaseBook,
    /// True once the host is shutting down: its unfinished partitions are handed back to the
    /// queue (another host resumes them) rather than closed as cancelled.
    pub stopping: watch::Receiver<bool>,
    /// Set while an operator has the host drain (`weir cluster drain`): it claims no more
    /// partitions; those it holds finish.
    pub draining: Arc<AtomicBool>,
}

/// When a host's loop for one run ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until<'a> {
    /// Every partition of the run is done, or the run lease (this one) passed to another
    /// host: the run lease holder.
    RunDone(&'a Lease),
    /// Nothing is left to claim and nothing runs here (a helping host).
    NothingToClaim,
}

/// Whether a pipeline's partitions may run on different hosts: only if every database it
/// writes is a server every host reaches (PostgreSQL). A SQLite file is each host's own, so
/// the run lease holder runs every partition of such a pipeline itself (its checkpoints are in
/// that file).
pub fn can_share(pipeline: &ResolvedPipeline) -> bool {
    shares_with(&pipeline.config.grants)
}

/// [`can_share`] from a pipeline's grants.
pub fn shares_with(grants: &weir_runtime::Grants) -> bool {
    grants.databases.is_empty() && !grants.postgres.is_empty()
}

/// How often a host looks for partitions to claim and at the run's progress: a sixth of the
/// lease, between 100 ms and 1 s (a takeover waits for the lease to expire, then this long).
pub fn poll_interval(lease: Duration) -> Duration {
    (lease / 6).clamp(Duration::from_millis(100), Duration::from_secs(1))
}

/// Claim and run partitions of the run `ctx.run_id` until `until`. Returns the partitions run
/// here and the run's progress at the end (`None` if the cluster database could not say).
pub async fn work(
    ctx: &Arc<RunContext>,
    pipeline: &Arc<ResolvedPipeline>,
    shared: &SharedRun,
    until: Until<'_>,
) -> (Vec<PartitionOutcome>, Option<RunProgress>) {
    let cluster = &shared.cluster;
    let cfg = &pipeline.config;
    let poll = poll_interval(cluster.lease_duration());
    let plugins_json = serde_json::to_string(&pipeline.plugin_versions()).unwrap_or_default();
    let mut workers: JoinSet<(Lease, PartitionOutcome, Option<Stopped>)> = JoinSet::new();
    // Which lease each worker task runs, for a worker that panics (its task returns nothing).
    let mut running: BTreeMap<tokio::task::Id, Lease> = BTreeMap::new();
    let mut outcomes = Vec::new();
    let mut cancel_sent = false;
    loop {
        let mut claimed_any = false;
        let free = cfg.concurrency.saturating_sub(workers.len());
        let taking = !ctx.is_cancelled()
            && !*shared.stopping.borrow()
            && !shared.draining.load(Ordering::Relaxed);
        if free > 0 && taking {
            let limits = ClaimLimits {
                host_free: free,
                cluster_limit: cfg.cluster_concurrency,
            };
            // Never "take over" a lease of this host's own: its heartbeat renews it (it may
            // have lapsed while the database was away), and its worker still runs.
            let mine: Vec<String> = shared
                .book
                .all()
                .into_iter()
                .filter(|l| l.pipeline == cfg.name)
                .map(|l| l.partition)
                .collect();
            match cluster
                .claim_partitions(&cfg.name, &ctx.run_id, limits, &plugins_json, &mine)
                .await
            {
                Ok(claims) => {
                    for claim in claims {
                        claimed_any = true;
                        let lease = claim.lease;
                        ctx.emit(
                            Some(&lease.partition),
                            EventKind::PartitionClaimed {
                                epoch: lease.epoch,
                                taken_over_from: claim.taken_over_from,
                                plugins: pipeline.plugin_versions(),
                            },
                        );
                        shared.book.insert(lease.clone());
                        let partition = Partition {
                            id: lease.partition.clone(),
                            size: claim.size,
                        };
                        let (ctx, pipeline) = (ctx.clone(), pipeline.clone());
                        let task_lease = lease.clone();
                        let handle = workers.spawn(async move {
                            let (totals, result) =
                                supervise(ctx, pipeline, partition, Some(task_lease.epoch)).await;
                            let outcome = PartitionOutcome {
                                partition: task_lease.partition.clone(),
                                totals,
                                error: result.as_ref().err().map(Stopped::to_string),
                            };
                            (task_lease, outcome, result.err())
                        });
                        running.insert(handle.id(), lease);
                    }
                }
                Err(e) => tracing::warn!(
                    pipeline = cfg.name,
                    run = ctx.run_id,
                    "cannot claim partitions (trying again): {e}"
                ),
            }
        }
        let progress = match cluster.run_progress(&cfg.name, &ctx.run_id).await {
            Ok(progress) => Some(progress),
            Err(e) => {
                tracing::warn!(pipeline = cfg.name, "cannot read the run's progress: {e}");
                None
            }
        };
        if let Some(p) = &progress {
            // An operator's cancel reaches every host here; a run lease that moved on (the
            // run ended or was closed elsewhere) leaves nothing to do.
            if (p.cancel_requested || !p.current) && !ctx.is_cancelled() {
                ctx.cancel();
            }
        }
        if let Until::RunDone(lease) = until
            && ctx.is_cancelled()
            && !cancel_sent
            && !*shared.stopping.borrow()
        {
            // Cancelled here: the other hosts stop their partitions of it too (unless the
            // run is another host's now). Tried again at the next poll if the database fails.
            match cluster.cancel_own_run(lease).await {
                Ok(_) => cancel_sent = true,
                Err(e) => tracing::warn!(pipeline = cfg.name, "cannot pass the cancel on: {e}"),
            }
        }
        if workers.is_empty() {
            let done = match until {
                Until::NothingToClaim => !claimed_any,
                Until::RunDone(lease) => match &progress {
                    Some(p) => {
                        p.finished()
                            || !p.run_lease_is(lease, cluster.host_id())
                            || (ctx.is_cancelled() && p.held == 0)
                    }
                    None => false,
                },
            };
            // Stopping: what is not done stays queued for the other hosts.
            if done || (*shared.stopping.borrow() && ctx.is_cancelled()) {
                return (outcomes, progress);
            }
        }
        tokio::select! {
            Some(joined) = workers.join_next_with_id(), if !workers.is_empty() => {
                let (lease, outcome, stopped) = match joined {
                    Ok((id, ended)) => {
                        running.remove(&id);
                        ended
                    }
                    Err(e) => {
                        // Its lease must not stay renewed forever: the partition failed here.
                        let Some(lease) = running.remove(&e.id()) else {
                            continue;
                        };
                        let error = format!("the partition's worker panicked: {e}");
                        tracing::error!(pipeline = cfg.name, partition = lease.partition, "{error}");
                        let outcome = PartitionOutcome {
                            partition: lease.partition.clone(),
                            // What it committed died with it (the batches' events have it).
                            totals: Totals::default(),
                            error: Some(error.clone()),
                        };
                        (lease, outcome, Some(Stopped::Failed(error)))
                    }
                };
                end_partition(shared, &lease, &outcome, stopped.as_ref()).await;
                outcomes.push(outcome);
            }
            _ = tokio::time::sleep(poll) => {}
            _ = ctx.cancelled(), if !ctx.is_cancelled() => {}
        }
    }
}

/// Record how a partition ended here: done (completed, failed, cancelled), handed back
/// (this host is stopping), or given up (fenced: another host holds it now).
async fn end_partition(
    shared: &SharedRun,
    lease: &Lease,
    outcome: &PartitionOutcome,
    stopped: Option<&Stopped>,
) {
    let cluster = &shared.cluster;
    shared.book.remove(lease);
    let result = match stopped {
        None => {
            cluster
                .finish_partition(lease, "completed", outcome.totals)
                .await
        }
        Some(Stopped::Failed(_)) => {
            cluster
                .finish_partition(lease, "failed", outcome.totals)
                .await
        }
        Some(Stopped::Cancelled) if *shared.stopping.borrow() => {
            let handed = cluster.hand_back(lease).await;
            if matches!(handed, Ok(true)) {
                let _ = cluster.add_partition_totals(lease, outcome.totals).await;
            }
            handed
        }
        Some(Stopped::Cancelled) => {
            cluster
                .finish_partition(lease, "cancelled", outcome.totals)
                .await
        }
        Some(Stopped::Fenced(_)) => Ok(false),
    };
    match result {
        Ok(true) => {}
        Ok(false) => {
            // Another host holds the partition now: what this one committed before still
            // counts in the run's sums.
            tracing::warn!(
                pipeline = lease.pipeline,
                partition = lease.partition,
                epoch = lease.epoch,
                "the partition's lease had passed to another host"
            );
            if let Err(e) = cluster.add_partition_totals(lease, outcome.totals).await {
                tracing::warn!("cannot record the partition's rows: {e}");
            }
        }
        Err(e) => tracing::warn!(
            pipeline = lease.pipeline,
            partition = lease.partition,
            "cannot record the partition's end (its lease lapses by itself): {e}"
        ),
    }
}

/// The totals of a whole shared run, from its progress.
pub fn run_totals(progress: &RunProgress) -> Totals {
    Totals {
        rows_read: progress.rows_read.max(0) as u64,
        rows_loaded: progress.rows_loaded.max(0) as u64,
        rows_rejected: progress.rows_rejected.max(0) as u64,
    }
}
