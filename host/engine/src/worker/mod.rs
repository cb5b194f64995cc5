//! A worker moves one partition: extract (with transforms) and load run as two concurrent
//! stages joined by a bounded channel, so both cores stay busy and memory stays bounded
//! whatever the input size. Each batch is committed with its checkpoint (see `commit`).
//!
//! - `open`: fresh instances of every step, opened, for one attempt;
//! - `extract`: the extract side (pull, check, transform, send);
//! - `transform`: the transforms and the rejects they make;
//! - this module: the attempt and the load side, which hands each batch to `commit`.

mod extract;
mod open;
mod transform;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use weir_runtime::HttpMeter;
use weir_runtime::types::Partition;
use weir_store::Totals;

use crate::columns::{self, RowsView};
use crate::commit::{BatchToCommit, CommitTarget};
use crate::context::RunContext;
use crate::error::WorkerError;
use crate::events::EventKind;
use crate::pipeline::ResolvedPipeline;
use extract::{ExtractSide, ProgressReport, StagedBatch};

/// Batches in flight between the extract and load stages. A few are enough to overlap the two
/// (measured: 4 gave the full pipelining gain) while keeping memory bounded.
const CHANNEL_DEPTH: usize = 4;

/// Time one attempt spent per stage, summed over its batches: logged at info level (`-v`)
/// under the target `weir::stages`, one line per partition, for `just bench`. The extract and
/// load stages overlap, so the sums add up to more than the wall time.
#[derive(Debug, Default, Clone, Copy)]
pub struct StageTimes {
    /// Creating plugin instances from their pre-instantiated components.
    instantiate: Duration,
    /// `next-batch` calls: guest parsing plus copying the batch out.
    extract: Duration,
    /// Host checks of each batch: layout, UTF-8, size bounds.
    check: Duration,
    /// `apply` calls of the transforms and the checks of their output.
    transform: Duration,
    /// The extract stage waiting for room in the channel (load is the bottleneck).
    send_wait: Duration,
    /// The load stage waiting for a batch (extract is the bottleneck).
    recv_wait: Duration,
    /// Writing rows: sinks' `write` and binding rows through the write plans.
    load: Duration,
    /// Begin, rejects, checkpoint save and commit.
    commit: Duration,
}

impl StageTimes {
    fn log(&self, pipeline: &str, partition: &str, total: Duration) {
        let ms = |d: Duration| (d.as_secs_f64() * 1e4).round() / 10.0;
        tracing::info!(
            target: "weir::stages",
            pipeline,
            partition,
            total_ms = ms(total),
            instantiate_ms = ms(self.instantiate),
            extract_ms = ms(self.extract),
            check_ms = ms(self.check),
            transform_ms = ms(self.transform),
            send_wait_ms = ms(self.send_wait),
            recv_wait_ms = ms(self.recv_wait),
            load_ms = ms(self.load),
            commit_ms = ms(self.commit),
            "stage times"
        );
    }
}

/// Move one partition from its checkpoint to the end of its data (one attempt; the
/// supervisor retries). The totals count what it committed, even if it fails later.
pub async fn run_worker(
    ctx: Arc<RunContext>,
    pipeline: Arc<ResolvedPipeline>,
    partition: Partition,
    fence: Option<i64>,
) -> (Totals, Result<(), WorkerError>) {
    let mut totals = Totals::default();
    let mut meters = Vec::new();
    let result = attempt(&ctx, &pipeline, &partition, fence, &mut totals, &mut meters).await;
    // Requests cost whether or not the attempt succeeded: report them either way.
    ctx.report_http_usage(Some(&partition.id), &meters);
    (totals, result)
}

async fn attempt(
    ctx: &Arc<RunContext>,
    pipeline: &Arc<ResolvedPipeline>,
    partition: &Partition,
    fence: Option<i64>,
    totals: &mut Totals,
    meters: &mut Vec<HttpMeter>,
) -> Result<(), WorkerError> {
    let started = Instant::now();
    let mut times = StageTimes::default();
    let cfg = &pipeline.config;
    let open::Opened {
        mut history,
        commit_db,
        checkpoint,
        mut extractor,
        source_schema,
        mut transforms,
        schema,
        mut plans,
        mut sinks,
        first_destination,
        rejects_db,
    } = open::open_steps(ctx, pipeline, partition, fence, &mut times, meters).await?;

    let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
    let extract_name = pipeline.extract.info.name.clone();
    let (batch_size, bounds) = (cfg.batch_size, cfg.bounds);
    let (progress_ctx, progress_partition) = (ctx.clone(), partition.id.clone());
    let extract_stage = tokio::spawn(async move {
        let mut times = StageTimes::default();
        let mut progress = ProgressReport::new(&progress_ctx, &progress_partition);
        let side = ExtractSide {
            extractor: &mut extractor,
            transforms: &mut transforms,
            source_schema: &source_schema,
            extract_name: &extract_name,
            batch_size,
            bounds,
        };
        let result = side.run(tx, &mut times, &mut progress).await;
        extractor.close().await;
        for step in &mut transforms {
            step.instance.close().await;
        }
        (result, times)
    });

    let mut target = CommitTarget {
        pipeline: &cfg.name,
        partition: &partition.id,
        run_id: &ctx.run_id,
        plans: &mut plans,
        sinks: &mut sinks,
        first_destination: &first_destination,
        history: &mut history,
        commit_db: commit_db.as_deref(),
        rejects_db: (&rejects_db.0, &rejects_db.1),
        last_checkpoint: checkpoint,
        fence,
    };
    let load_result = load_side(
        ctx,
        &partition.id,
        &schema,
        &mut target,
        rx,
        totals,
        &mut times,
    )
    .await;
    // If loading failed the receiver is gone and the extract stage stops at its next send.
    let (extract_result, extract_times) = extract_stage
        .await
        .map_err(|e| WorkerError::host(format!("extract stage panicked: {e}")))?;
    times.extract = extract_times.extract;
    times.check = extract_times.check;
    times.transform = extract_times.transform;
    times.send_wait = extract_times.send_wait;
    times.log(&cfg.name, &partition.id, started.elapsed());
    let mut finished = load_result.and(extract_result.map_err(WorkerError::from));
    if finished.is_ok() {
        for sink in &mut sinks {
            if let Err(e) = sink.instance.finish().await {
                finished = Err(e.into());
                break;
            }
        }
    }
    finished
}

/// Commit each staged batch, in order, and say so.
async fn load_side(
    ctx: &RunContext,
    partition: &str,
    schema: &weir_runtime::types::Schema,
    target: &mut CommitTarget<'_>,
    mut rx: mpsc::Receiver<StagedBatch>,
    totals: &mut Totals,
    times: &mut StageTimes,
) -> Result<(), WorkerError> {
    loop {
        let clock = Instant::now();
        let Some(mut batch) = rx.recv().await else {
            break;
        };
        times.recv_wait += clock.elapsed();
        // Cancellation takes effect between batches: a batch is committed whole or not begun.
        if ctx.is_cancelled() {
            return Err(WorkerError::Cancelled);
        }
        if batch.rows.row_count == 0 {
            // Every record of the batch was rejected before any transform ran: the rows still
            // have the source's columns, which need not be the load schema's.
            batch.rows = columns::empty_rows(schema);
        }
        let view = if batch.validated {
            RowsView::prevalidated(&batch.rows, schema)
        } else {
            RowsView::new(&batch.rows, schema)
        }
        .map_err(WorkerError::host)?;

        let clock = Instant::now();
        let committed = target
            .commit(BatchToCommit {
                rows: &batch.rows,
                view: &view,
                schema,
                positions: &batch.positions,
                source_rejects: &batch.source_rejects,
                rejects: &mut batch.rejects,
                checkpoint: &batch.checkpoint,
                progress: batch.progress,
            })
            .await?;
        times.load += committed.load_time;
        times.commit += clock.elapsed().saturating_sub(committed.load_time);
        let rejected = batch.rejects.len() as u64;
        *totals += Totals {
            rows_read: batch.rows_read,
            rows_loaded: committed.loaded,
            rows_rejected: rejected,
        };
        ctx.emit(
            Some(partition),
            EventKind::BatchCommitted {
                rows_in: batch.rows_read,
                rows_out: committed.loaded,
                rejected,
                bytes: batch.bytes,
                checkpoint: batch.checkpoint,
                done: batch.progress.done,
                total: batch.progress.total,
                filtered: batch.filtered,
                counters: batch.counters,
                destinations: committed.destinations,
            },
        );
    }
    Ok(())
}
