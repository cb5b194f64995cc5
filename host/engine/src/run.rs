//! Runs (docs/design.md, "How a run moves data"): list the partitions, start one supervised
//! worker per partition up to `concurrency`, and sum up.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, Utc};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use weir_cluster::Lease;
use weir_runtime::Runtime;
use weir_runtime::types::Partition;
use weir_store::Totals;

use crate::context::RunContext;
use crate::events::{EventBus, EventKind};
use crate::lock::RunLock;
use crate::pipeline::{DatabaseAccess, ResolvedPipeline, Step};
use crate::shared::{self, SharedRun, Until};
pub use crate::supervisor::PartitionOutcome;
use crate::supervisor::supervise;

/// How a run ended.
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub run_id: String,
    pub pipeline: String,
    pub partitions: Vec<PartitionOutcome>,
    pub totals: Totals,
    pub elapsed: Duration,
    /// Set when the run failed before or besides its workers (e.g. `partitions` failed).
    pub error: Option<String>,
    /// On a cluster: this host stopped while the run went on; its run lease is handed over
    /// for another host to adopt, and no end was said.
    pub handed_over: bool,
}

impl RunSummary {
    /// Whether everything completed.
    pub fn succeeded(&self) -> bool {
        self.error.is_none() && self.partitions.iter().all(|p| p.error.is_none())
    }
}

/// A run id that sorts by time and does not collide: `20261127T101500Z-3f9a0c1d`, the start
/// second plus 32 random bits (two runs started in the same second by different processes
/// would otherwise share an id, and with it their rejects and records).
pub fn new_run_id() -> String {
    let now: DateTime<Utc> = SystemTime::now().into();
    let mut random = [0u8; 4];
    // A failing OS random source is not worth failing a run over: fall back to the clock.
    if getrandom::fill(&mut random).is_err() {
        random = now.timestamp_subsec_nanos().to_le_bytes();
    }
    format!(
        "{}-{:08x}",
        now.format("%Y%m%dT%H%M%SZ"),
        u32::from_le_bytes(random)
    )
}

/// A run of a host of a cluster: the run lease it holds, and what it shares the partitions
/// with. `adopted_from`: the run was taken over from that host, whose lease expired. `share`:
/// the partitions go to whichever hosts claim them (see [`shared::can_share`]); otherwise this
/// host runs them all.
pub struct ClusterRun {
    pub shared: SharedRun,
    pub lease: Lease,
    pub adopted_from: Option<Option<String>>,
    pub share: bool,
}

/// A run about to start: its context (for cancelling), the pipeline, and the pipeline's run
/// lock, held until the run ends so no other process runs the same pipeline meanwhile.
pub struct Run {
    pub ctx: Arc<RunContext>,
    pipeline: Arc<ResolvedPipeline>,
    lock: RunLock,
    clustered: Option<ClusterRun>,
}

impl Run {
    /// Prepare a run holding `lock`; nothing happens until [`Run::execute`].
    pub fn new(
        runtime: Arc<Runtime>,
        pipeline: Arc<ResolvedPipeline>,
        events: EventBus,
        lock: RunLock,
    ) -> Self {
        Self::with_id(runtime, pipeline, events, lock, new_run_id())
    }

    /// [`Run::new`] with an id chosen before (a cluster's run lease names the run).
    pub fn with_id(
        runtime: Arc<Runtime>,
        pipeline: Arc<ResolvedPipeline>,
        events: EventBus,
        lock: RunLock,
        run_id: String,
    ) -> Self {
        let ctx = Arc::new(RunContext::new(
            runtime,
            run_id,
            pipeline.config.name.clone(),
            events,
        ));
        Self {
            ctx,
            pipeline,
            lock,
            clustered: None,
        }
    }

    /// Share this run's partitions with the cluster's hosts (see `shared`).
    pub fn on_cluster(mut self, clustered: ClusterRun) -> Self {
        self.clustered = Some(clustered);
        self
    }

    /// Run every partition, up to `concurrency` at a time, each under its supervisor; the
    /// lock is released when it returns.
    pub async fn execute(self, trigger: &str) -> RunSummary {
        let summary = execute(self.ctx, self.pipeline, trigger, self.clustered).await;
        drop(self.lock);
        summary
    }
}

async fn execute(
    ctx: Arc<RunContext>,
    pipeline: Arc<ResolvedPipeline>,
    trigger: &str,
    clustered: Option<ClusterRun>,
) -> RunSummary {
    let started = Instant::now();
    let cfg = &pipeline.config;
    let mut summary = RunSummary {
        run_id: ctx.run_id.clone(),
        pipeline: cfg.name.clone(),
        partitions: Vec::new(),
        totals: Totals::default(),
        elapsed: Duration::ZERO,
        error: None,
        handed_over: false,
    };
    let ended = match clustered {
        Some(clustered) if clustered.share => {
            run_shared(&ctx, &pipeline, trigger, clustered, &mut summary).await
        }
        Some(ClusterRun {
            adopted_from: Some(from),
            ..
        }) => {
            ctx.emit(
                None,
                EventKind::RunAdopted {
                    from,
                    queued: false,
                },
            );
            run_here(&ctx, &pipeline, trigger, &mut summary).await
        }
        _ => run_here(&ctx, &pipeline, trigger, &mut summary).await,
    };
    summary.elapsed = started.elapsed();
    if let Err(error) = ended {
        ctx.emit(
            None,
            EventKind::RunFailed {
                error: error.clone(),
                rows_read: 0,
                rows_loaded: 0,
                rows_rejected: 0,
            },
        );
        summary.error = Some(error);
        return summary;
    }
    if summary.handed_over {
        // The run goes on on another host, which ends it.
        return summary;
    }
    summary
        .partitions
        .sort_by(|a, b| a.partition.cmp(&b.partition));
    let t = summary.totals;
    if let Some(limit) = cfg.max_rejects
        && t.rows_rejected > limit
    {
        summary.error = Some(format!(
            "{} rows rejected, more than max_rejects = {limit}",
            t.rows_rejected
        ));
    }
    if ctx.is_cancelled() {
        summary.error.get_or_insert_with(|| "run cancelled".into());
        ctx.emit(
            None,
            EventKind::RunCancelled {
                rows_read: t.rows_read,
                rows_loaded: t.rows_loaded,
                rows_rejected: t.rows_rejected,
            },
        );
    } else if summary.succeeded() {
        ctx.emit(
            None,
            EventKind::RunCompleted {
                rows_read: t.rows_read,
                rows_loaded: t.rows_loaded,
                rows_rejected: t.rows_rejected,
                seconds: summary.elapsed.as_secs_f64(),
            },
        );
    } else {
        let failed = summary
            .partitions
            .iter()
            .filter(|p| p.error.is_some())
            .count();
        let error = summary.error.clone().unwrap_or_else(|| {
            format!("{failed} of {} partitions failed", summary.partitions.len())
        });
        ctx.emit(
            None,
            EventKind::RunFailed {
                error,
                rows_read: t.rows_read,
                rows_loaded: t.rows_loaded,
                rows_rejected: t.rows_rejected,
            },
        );
    }
    summary
}

/// List the partitions and say the run started.
async fn start(
    ctx: &Arc<RunContext>,
    pipeline: &ResolvedPipeline,
    trigger: &str,
) -> Result<Vec<Partition>, String> {
    let partitions = list_partitions(ctx, pipeline).await?;
    ctx.emit(
        None,
        EventKind::RunStarted {
            trigger: trigger.to_owned(),
            partitions: partitions.len(),
            plugins: pipeline.plugin_versions(),
        },
    );
    Ok(partitions)
}

/// Ask the extractor for the pipeline's partitions.
async fn list_partitions(
    ctx: &Arc<RunContext>,
    pipeline: &ResolvedPipeline,
) -> Result<Vec<Partition>, String> {
    let access = DatabaseAccess::Run;
    let databases = pipeline.databases(access);
    let options = pipeline.options(
        Step::Extract,
        &pipeline.extract,
        None,
        (access, &databases),
        Some(ctx.log_sink(&pipeline.extract.info.name, None)),
    );
    let mut extractor = ctx
        .runtime
        .extractor(&pipeline.extract, options)
        .await
        .map_err(|e| e.to_string())?;
    let meter = extractor.http_meter();
    let partitions = extractor.partitions(&pipeline.config.extract.config).await;
    ctx.report_http_usage(None, &[meter]);
    partitions.map_err(|e| e.to_string())
}

/// Alone: every partition here, up to `concurrency` at a time.
async fn run_here(
    ctx: &Arc<RunContext>,
    pipeline: &Arc<ResolvedPipeline>,
    trigger: &str,
    summary: &mut RunSummary,
) -> Result<(), String> {
    let partitions = start(ctx, pipeline, trigger).await?;
    let permits = Arc::new(Semaphore::new(pipeline.config.concurrency));
    let mut workers = JoinSet::new();
    for partition in partitions {
        let (ctx, pipeline, permits) = (ctx.clone(), pipeline.clone(), permits.clone());
        workers.spawn(async move {
            let _permit = permits
                .acquire_owned()
                .await
                .expect("semaphore never closed");
            let id = partition.id.clone();
            let (totals, result) = supervise(ctx, pipeline, partition, None).await;
            PartitionOutcome {
                partition: id,
                totals,
                error: result.err().map(|stopped| stopped.to_string()),
            }
        });
    }
    while let Some(joined) = workers.join_next().await {
        let outcome = joined.unwrap_or_else(|e| PartitionOutcome {
            partition: "?".into(),
            totals: Totals::default(),
            error: Some(format!("worker panicked: {e}")),
        });
        summary.totals += outcome.totals;
        summary.partitions.push(outcome);
    }
    Ok(())
}

/// On a cluster, as the run lease holder: list and queue the partitions (unless the run was
/// adopted from a host that queued them), work on them with the other hosts, and sum up.
async fn run_shared(
    ctx: &Arc<RunContext>,
    pipeline: &Arc<ResolvedPipeline>,
    trigger: &str,
    clustered: ClusterRun,
    summary: &mut RunSummary,
) -> Result<(), String> {
    let cluster = &clustered.shared.cluster;
    let name = &pipeline.config.name;
    // The cluster database failing here leaves the run to whichever host adopts it next
    // (this one's lease lapses, or is let lapse): it is not failed for a database hiccup.
    let hand_over = |summary: &mut RunSummary, why: String| {
        tracing::warn!(
            pipeline = name,
            run = ctx.run_id,
            "{why}: handing the run over"
        );
        summary.handed_over = true;
        Ok(())
    };
    let queued = match &clustered.adopted_from {
        Some(_) => match cluster.run_progress(name, &ctx.run_id).await {
            Ok(progress) => progress.total > 0,
            Err(e) => return hand_over(summary, format!("cannot read the run's progress: {e}")),
        },
        None => false,
    };
    if let Some(from) = &clustered.adopted_from {
        ctx.emit(
            None,
            EventKind::RunAdopted {
                from: from.clone(),
                queued,
            },
        );
    }
    if !queued {
        let partitions = start(ctx, pipeline, trigger).await?;
        let listed: Vec<(String, Option<u64>)> =
            partitions.into_iter().map(|p| (p.id, p.size)).collect();
        match cluster.queue_partitions(&clustered.lease, &listed).await {
            Ok(true) => {}
            // Adopted meanwhile by another host (this one was paused): that host goes on.
            Ok(false) => {
                return hand_over(summary, "the run lease passed to another host".into());
            }
            Err(e) => return hand_over(summary, format!("cannot queue the partitions: {e}")),
        }
    }
    let until = Until::RunDone(&clustered.lease);
    let (local, progress) = shared::work(ctx, pipeline, &clustered.shared, until).await;
    summary.partitions = local;
    let stopping = *clustered.shared.stopping.borrow();
    match progress {
        Some(progress) => {
            summary.totals = shared::run_totals(&progress);
            if !progress.run_lease_is(&clustered.lease, cluster.host_id()) {
                // Adopted by another host (this one was cut off or paused past its lease):
                // that host ends the run.
                summary.handed_over = true;
            } else if stopping && !progress.finished() {
                summary.handed_over = true;
            } else if progress.unsuccessful > 0 && !ctx.is_cancelled() {
                summary.error = Some(format!(
                    "{} of {} partitions failed",
                    progress.unsuccessful, progress.total
                ));
            }
        }
        None => {
            for p in &summary.partitions {
                summary.totals += p.totals;
            }
            summary.handed_over = stopping;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::new_run_id;

    #[test]
    fn run_ids_sort_by_time_and_differ_within_a_second() {
        let ids: Vec<String> = (0..1000).map(|_| new_run_id()).collect();
        let first = &ids[0];
        assert_eq!(first.len(), "20261127T101500Z-3f9a0c1d".len(), "{first}");
        assert!(first.starts_with("20"), "{first}");
        assert_eq!(&first[8..9], "T");
        let distinct: std::collections::BTreeSet<&String> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len(), "a run id repeated");
    }
}
