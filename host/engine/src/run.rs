//! Runs (docs/design.md, "How a run moves data"): list the partitions, start one supervised
//! worker per partition up to `concurrency`, and sum up.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, Utc};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use weir_runtime::Runtime;
use weir_store::Totals;

use crate::context::RunContext;
use crate::events::{EventBus, EventKind};
use crate::lock::RunLock;
use crate::pipeline::{DatabaseAccess, ResolvedPipeline, Step};
use crate::supervisor::supervise;

/// How one partition ended.
#[derive(Debug, Clone)]
pub struct PartitionOutcome {
    pub partition: String,
    pub totals: Totals,
    pub error: Option<String>,
}

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

/// A run about to start: its context (for cancelling), the pipeline, and the pipeline's run
/// lock, held until the run ends so no other process runs the same pipeline meanwhile.
pub struct Run {
    pub ctx: Arc<RunContext>,
    pipeline: Arc<ResolvedPipeline>,
    lock: RunLock,
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
        }
    }

    /// Run every partition, up to `concurrency` at a time, each under its supervisor; the
    /// lock is released when it returns.
    pub async fn execute(self, trigger: &str) -> RunSummary {
        let summary = execute(self.ctx, self.pipeline, trigger).await;
        drop(self.lock);
        summary
    }
}

async fn execute(
    ctx: Arc<RunContext>,
    pipeline: Arc<ResolvedPipeline>,
    trigger: &str,
) -> RunSummary {
    let started = Instant::now();
    let runtime = ctx.runtime.clone();
    let cfg = &pipeline.config;
    let mut summary = RunSummary {
        run_id: ctx.run_id.clone(),
        pipeline: cfg.name.clone(),
        partitions: Vec::new(),
        totals: Totals::default(),
        elapsed: Duration::ZERO,
        error: None,
    };

    let partitions = async {
        let access = DatabaseAccess::Run;
        let databases = pipeline.databases(access);
        let options = pipeline.options(
            Step::Extract,
            &pipeline.extract,
            None,
            (access, &databases),
            Some(ctx.log_sink(&pipeline.extract.info.name, None)),
        );
        let mut extractor = runtime.extractor(&pipeline.extract, options).await?;
        let meter = extractor.http_meter();
        let partitions = extractor.partitions(&cfg.extract.config).await;
        ctx.report_http_usage(None, &[meter]);
        partitions
    }
    .await;
    let partitions = match partitions {
        Ok(p) => p,
        Err(e) => {
            let error = e.to_string();
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
            summary.elapsed = started.elapsed();
            return summary;
        }
    };
    ctx.emit(
        None,
        EventKind::RunStarted {
            trigger: trigger.to_owned(),
            partitions: partitions.len(),
            plugins: pipeline.plugin_versions(),
        },
    );

    let permits = Arc::new(Semaphore::new(cfg.concurrency));
    let mut workers = JoinSet::new();
    for partition in partitions {
        let (ctx, pipeline, permits) = (ctx.clone(), pipeline.clone(), permits.clone());
        workers.spawn(async move {
            let _permit = permits
                .acquire_owned()
                .await
                .expect("semaphore never closed");
            let id = partition.id.clone();
            let (totals, result) = supervise(ctx, pipeline, partition).await;
            PartitionOutcome {
                partition: id,
                totals,
                error: result.err(),
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
    summary
        .partitions
        .sort_by(|a, b| a.partition.cmp(&b.partition));
    summary.elapsed = started.elapsed();
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
