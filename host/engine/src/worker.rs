//! A worker moves one partition: extract (with transforms) and load run as two concurrent
//! stages joined by a bounded channel, so both cores stay busy and memory stays bounded
//! whatever the input size. Each batch is committed with its checkpoint (see `commit`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use weir_runtime::types::{Batch, Partition, Progress, Rows, Schema, SourceReject};
use weir_runtime::{
    CallSite, Databases, ExtractorInstance, FaultKind, HistoryInstance, InstanceOptions,
    LoadTarget, LoaderInstance, Plugin, PluginError, SharedConnection, TransformerInstance,
    WritePlan, lock,
};

use crate::columns::{self, RowsView, SizeBounds};
use crate::commit::{self, RejectContext, RejectRecord};
use crate::events::EventKind;
use crate::run::{ResolvedPipeline, RunContext};

/// Batches in flight between the extract and load stages. A few are enough to overlap the two
/// (measured: 4 gave the full pipelining gain) while keeping memory bounded.
const CHANNEL_DEPTH: usize = 4;

/// Totals of one partition.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    pub rows_read: u64,
    pub rows_loaded: u64,
    pub rows_rejected: u64,
}

impl std::ops::AddAssign for Totals {
    fn add_assign(&mut self, other: Self) {
        self.rows_read += other.rows_read;
        self.rows_loaded += other.rows_loaded;
        self.rows_rejected += other.rows_rejected;
    }
}

/// Time one attempt spent per stage, summed over its batches: logged at info level (`-v`)
/// under the target `weir::stages`, one line per partition, for `just bench`. The extract and
/// load stages overlap, so the sums add up to more than the wall time.
#[derive(Debug, Default, Clone, Copy)]
struct StageTimes {
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
    /// Binding and inserting rows through the write plans.
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

/// Why a worker stopped early.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error(transparent)]
    Plugin(#[from] PluginError),
    #[error("{0}")]
    Host(String),
    #[error("run cancelled")]
    Cancelled,
}

impl WorkerError {
    /// Whether another attempt may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Plugin(e) => e.kind.is_retryable(),
            Self::Host(_) => true,
            Self::Cancelled => false,
        }
    }
}

fn host_err(context: &str) -> impl Fn(rusqlite::Error) -> WorkerError + '_ {
    move |e| WorkerError::Host(format!("{context}: {e}"))
}

/// What the extract stage hands the load stage.
struct StagedBatch {
    rows: Rows,
    positions: Vec<u64>,
    source_rejects: Vec<SourceReject>,
    rejects: Vec<RejectRecord>,
    checkpoint: String,
    progress: Progress,
    rows_read: u64,
    /// Row data the extractor handed over: its batch's buffers plus the raw text of its rejects.
    bytes: u64,
    /// The rows are the extractor's, as [`RowsView::new`] checked them (no transform ran), so
    /// the load stage need not check their text again.
    validated: bool,
}

/// A load step that returned a write plan. Its instance is no longer needed: the host executes
/// the plan itself.
struct PlanLoad {
    label: String,
    plan: WritePlan,
    conn: SharedConnection,
}

/// A load step that returned a sink; the instance stays alive to receive batches.
struct SinkLoad {
    instance: LoaderInstance,
}

/// Move one partition from its checkpoint to the end of its data.
pub async fn run_worker(
    ctx: Arc<RunContext>,
    pipeline: Arc<ResolvedPipeline>,
    partition: Partition,
) -> (Totals, Result<(), WorkerError>) {
    let mut totals = Totals::default();
    let result = attempt(&ctx, &pipeline, partition, &mut totals).await;
    (totals, result)
}

/// One attempt; `totals` counts what it committed, even if it fails later.
async fn attempt(
    ctx: &Arc<RunContext>,
    pipeline: &Arc<ResolvedPipeline>,
    partition: Partition,
    totals: &mut Totals,
) -> Result<(), WorkerError> {
    let started = Instant::now();
    let mut times = StageTimes::default();
    let cfg = &pipeline.config;
    let databases =
        Databases::new(cfg.grants.databases.clone()).with_options(cfg.database_options.clone());
    let options = |plugin: &Plugin| InstanceOptions {
        site: CallSite {
            plugin: plugin.label(),
            pipeline: Some(cfg.name.clone()),
            partition: Some(partition.id.clone()),
            logs: Some(ctx.log_sink(&plugin.info.name, Some(&partition.id))),
        },
        limits: &cfg.limits,
        grants: &cfg.grants,
        databases: databases.clone(),
    };
    let no_dirs = weir_runtime::Grants {
        read_dirs: Vec::new(),
        databases: cfg.grants.databases.clone(),
    };
    // Only extractors get directories; every other step gets databases only.
    let options_no_dirs = |plugin: &Plugin| InstanceOptions {
        grants: &no_dirs,
        ..options(plugin)
    };

    let clock = Instant::now();
    let mut history: HistoryInstance = ctx
        .runtime
        .history_store(&pipeline.history, options_no_dirs(&pipeline.history))
        .await?;
    times.instantiate += clock.elapsed();
    let commit_db = history.open(&cfg.history.config).await?;
    let checkpoint = history.load(&cfg.name, &partition.id).await?;
    ctx.emit(
        Some(&partition.id),
        EventKind::WorkerStarted {
            checkpoint: checkpoint.clone(),
        },
    );

    let clock = Instant::now();
    let mut extractor: ExtractorInstance = ctx
        .runtime
        .extractor(&pipeline.extract, options(&pipeline.extract))
        .await?;
    times.instantiate += clock.elapsed();
    let mut schema = extractor
        .open(&cfg.extract.config, &partition, checkpoint.as_deref())
        .await?;
    let source_schema = schema.clone();

    let mut transforms = Vec::new();
    for (step, plugin) in cfg.transforms.iter().zip(&pipeline.transforms) {
        let clock = Instant::now();
        let mut instance: TransformerInstance = ctx
            .runtime
            .transformer(plugin, options_no_dirs(plugin))
            .await?;
        times.instantiate += clock.elapsed();
        let input = schema.clone();
        schema = instance.open(&step.config, &input).await?;
        transforms.push((plugin.info.name.clone(), instance, input));
    }

    let mut plans = Vec::new();
    let mut sinks = Vec::new();
    for (step, plugin) in cfg.loads.iter().zip(&pipeline.loads) {
        let label = plugin.label();
        let clock = Instant::now();
        let mut instance = ctx.runtime.loader(plugin, options_no_dirs(plugin)).await?;
        times.instantiate += clock.elapsed();
        match instance.open(&step.config, &schema).await? {
            LoadTarget::Sink => sinks.push(SinkLoad { instance }),
            LoadTarget::Plan(plan) => {
                let conn = match databases.connection(&plan.database) {
                    Some(Ok(conn)) => conn,
                    Some(Err(e)) => return Err(WorkerError::Host(format!("{e:#}"))),
                    None => {
                        return Err(PluginError::contract(
                            &label,
                            "open",
                            format!("write plan targets database \"{}\", which this pipeline does not grant", plan.database),
                        )
                        .into());
                    }
                };
                commit::run_setup(&conn, &plan).map_err(|e| {
                    WorkerError::Host(format!("{label}: setup statement failed: {e}"))
                })?;
                commit::check_plan(&plan, &schema, &lock(&conn))
                    .map_err(|e| PluginError::contract(&label, "open", e))?;
                plans.push(PlanLoad {
                    label: plugin.info.name.clone(),
                    plan,
                    conn,
                });
            }
        }
    }

    // Rejects live next to the checkpoint so they commit with it.
    let rejects_db_name = commit_db
        .clone()
        .or_else(|| plans.first().map(|p| p.plan.database.clone()));
    let Some(rejects_db_name) = rejects_db_name else {
        return Err(WorkerError::Host(
            "no database to record rejects in: the history store has no commit database and no load writes to one".into(),
        ));
    };
    let rejects_conn = match databases.connection(&rejects_db_name) {
        Some(Ok(conn)) => conn,
        Some(Err(e)) => return Err(WorkerError::Host(format!("{e:#}"))),
        None => {
            return Err(WorkerError::Host(format!(
                "database \"{rejects_db_name}\" is not granted"
            )));
        }
    };
    commit::ensure_rejects_table(&lock(&rejects_conn))
        .map_err(host_err("failed to create the rejects table"))?;

    let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
    let extract_name = pipeline.extract.info.name.clone();
    let batch_size = cfg.batch_size;
    let bounds = cfg.bounds;
    let (progress_ctx, progress_partition) = (ctx.clone(), partition.id.clone());
    let extract_stage = tokio::spawn(async move {
        let mut times = StageTimes::default();
        let mut progress = ProgressReport::new(&progress_ctx, &progress_partition);
        let result = extract_stage(
            &mut extractor,
            &mut transforms,
            &source_schema,
            &extract_name,
            batch_size,
            &bounds,
            tx,
            &mut times,
            &mut progress,
        )
        .await;
        extractor.close().await;
        for (_, t, _) in &mut transforms {
            t.close().await;
        }
        (result, times)
    });

    let load_result = load_stage(
        ctx,
        &cfg.name,
        &partition.id,
        &schema,
        &plans,
        &mut sinks,
        &mut history,
        commit_db.as_deref(),
        (&rejects_db_name, &rejects_conn),
        rx,
        totals,
        &mut times,
    )
    .await;
    // If loading failed the receiver is gone and the extract stage stops at its next send.
    let (extract_result, extract_times) = extract_stage
        .await
        .map_err(|e| WorkerError::Host(format!("extract stage panicked: {e}")))?;
    times.extract = extract_times.extract;
    times.check = extract_times.check;
    times.transform = extract_times.transform;
    times.send_wait = extract_times.send_wait;
    times.log(&cfg.name, &partition.id, started.elapsed());
    load_result?;
    extract_result?;
    for sink in &mut sinks {
        sink.instance.finish().await?;
    }
    Ok(())
}

/// Pull batches, run them through the transforms and hand them to the load stage.
#[allow(
    clippy::too_many_arguments,
    reason = "one call site; a struct would only rename these"
)]
async fn extract_stage(
    extractor: &mut ExtractorInstance,
    transforms: &mut [(String, TransformerInstance, Schema)],
    source_schema: &Schema,
    extract_name: &str,
    batch_size: u32,
    bounds: &SizeBounds,
    tx: mpsc::Sender<StagedBatch>,
    times: &mut StageTimes,
    report: &mut ProgressReport<'_>,
) -> Result<(), WorkerError> {
    loop {
        let clock = Instant::now();
        let Some(batch) = extractor.next_batch(batch_size).await? else {
            break;
        };
        times.extract += clock.elapsed();
        report.read(&batch.progress);
        let clock = Instant::now();
        let Batch {
            mut rows,
            mut positions,
            rejects: source_rejects,
            checkpoint,
            progress,
        } = batch;
        if positions.len() != rows.row_count as usize {
            return Err(PluginError::contract(
                extract_name,
                "next-batch",
                format!(
                    "batch has {} rows but {} positions",
                    rows.row_count,
                    positions.len()
                ),
            )
            .into());
        }
        RowsView::new(&rows, source_schema)
            .map_err(|e| PluginError::contract(extract_name, "next-batch", e))?;
        let rows_read = u64::from(rows.row_count) + source_rejects.len() as u64;
        let mut rejects: Vec<RejectRecord> = source_rejects
            .iter()
            .map(|r| RejectRecord {
                stage: extract_name.to_owned(),
                position: Some(r.position),
                reason: r.reason.clone(),
                raw: r.raw.clone(),
            })
            .collect();
        // Bounds before anything else touches the rows: a batch too large to handle fails the
        // worker; a single oversized row becomes a reject with its position.
        let size = columns::batch_bytes(&rows);
        let bytes = (size + source_rejects.iter().map(|r| r.raw.len()).sum::<usize>()) as u64;
        if size > bounds.max_batch_bytes {
            return Err(PluginError {
                plugin: extract_name.to_owned(),
                call: "next-batch",
                kind: FaultKind::BadData,
                message: format!(
                    "batch of {size} bytes exceeds max_batch_bytes ({}); lower batch_size or raise limits.max_batch_bytes",
                    bounds.max_batch_bytes
                ),
            }
            .into());
        }
        let verdict = columns::oversized_rows(&rows, source_schema, bounds);
        if verdict.iter().any(Option::is_some) {
            let keep: Vec<bool> = verdict.iter().map(Option::is_none).collect();
            for (row, reason) in verdict.into_iter().enumerate() {
                if let Some(reason) = reason {
                    rejects.push(RejectRecord {
                        stage: extract_name.to_owned(),
                        position: positions.get(row).copied(),
                        reason,
                        raw: "(not kept: too large)".into(),
                    });
                }
            }
            rows = columns::filter_rows(&rows, &keep);
            positions = positions
                .into_iter()
                .zip(&keep)
                .filter_map(|(p, &k)| k.then_some(p))
                .collect();
        }
        times.check += clock.elapsed();
        let clock = Instant::now();
        let mut validated = true;
        for (name, transform, input_schema) in transforms.iter_mut() {
            if rows.row_count == 0 {
                break;
            }
            let out = transform.apply(&rows).await?;
            validated = false;
            let mut refused: Vec<bool> = vec![false; rows.row_count as usize];
            // Only needed for the rejects' raw rows; most batches have none.
            let input_view = if out.rejects.is_empty() {
                None
            } else {
                Some(
                    RowsView::new(&rows, input_schema)
                        .map_err(|e| PluginError::contract(name, "apply", e))?,
                )
            };
            for reject in &out.rejects {
                let index = reject.index as usize;
                if index >= refused.len() || refused[index] {
                    return Err(PluginError::contract(
                        name,
                        "apply",
                        format!("reject index {index} is out of range or repeated"),
                    )
                    .into());
                }
                refused[index] = true;
                rejects.push(RejectRecord {
                    stage: name.clone(),
                    position: positions.get(index).copied(),
                    reason: reject.reason.clone(),
                    raw: input_view
                        .as_ref()
                        .map(|v| v.row_json(index, input_schema))
                        .unwrap_or_default(),
                });
            }
            let kept = refused.len() - out.rejects.len();
            if out.rows.row_count as usize != kept {
                return Err(PluginError::contract(
                    name,
                    "apply",
                    format!(
                        "returned {} rows for {} input rows and {} rejects",
                        out.rows.row_count,
                        refused.len(),
                        out.rejects.len()
                    ),
                )
                .into());
            }
            // Output rows keep input order, so their positions are the survivors' positions.
            positions = positions
                .into_iter()
                .zip(&refused)
                .filter_map(|(p, &r)| (!r).then_some(p))
                .collect();
            rows = out.rows;
        }
        times.transform += clock.elapsed();
        let staged = StagedBatch {
            rows,
            positions,
            source_rejects,
            rejects,
            checkpoint,
            progress,
            rows_read,
            bytes,
            validated,
        };
        let clock = Instant::now();
        if tx.send(staged).await.is_err() {
            break; // the load stage stopped; its error is reported there
        }
        times.send_wait += clock.elapsed();
    }
    Ok(())
}

/// `worker_progress` events from the extract side: how far reading has got, ahead of what is
/// committed (`batch_committed` says that). At most one a second per worker, so a fast source
/// does not double the event log; a slow load still shows reading moving.
struct ProgressReport<'a> {
    ctx: &'a RunContext,
    partition: &'a str,
    last: Instant,
}

impl<'a> ProgressReport<'a> {
    const EVERY: Duration = Duration::from_secs(1);

    fn new(ctx: &'a RunContext, partition: &'a str) -> Self {
        // The first batch is reported only after a second: quick partitions need no progress.
        Self {
            ctx,
            partition,
            last: Instant::now(),
        }
    }

    fn read(&mut self, progress: &Progress) {
        if self.last.elapsed() < Self::EVERY {
            return;
        }
        self.last = Instant::now();
        self.ctx.emit(
            Some(self.partition),
            EventKind::WorkerProgress {
                done: progress.done,
                total: progress.total,
            },
        );
    }
}

/// Commit each staged batch: rows, rejects and checkpoint in one transaction.
#[allow(
    clippy::too_many_arguments,
    reason = "one call site; a struct would only rename these"
)]
async fn load_stage(
    ctx: &RunContext,
    pipeline: &str,
    partition: &str,
    schema: &Schema,
    plans: &[PlanLoad],
    sinks: &mut [SinkLoad],
    history: &mut HistoryInstance,
    commit_db: Option<&str>,
    rejects_db: (&str, &SharedConnection),
    mut rx: mpsc::Receiver<StagedBatch>,
    totals: &mut Totals,
    times: &mut StageTimes,
) -> Result<(), WorkerError> {
    let reject_ctx = RejectContext {
        pipeline,
        partition,
        run_id: &ctx.run_id,
    };
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
        .map_err(WorkerError::Host)?;

        // Sinks are outside the transaction: at-least-once, before the commit.
        if !sinks.is_empty() {
            let as_batch = Batch {
                rows: batch.rows.clone(),
                positions: batch.positions.clone(),
                rejects: batch.source_rejects.clone(),
                checkpoint: batch.checkpoint.clone(),
                progress: batch.progress,
            };
            for sink in sinks.iter_mut() {
                sink.instance.write(&as_batch).await?;
            }
        }

        // Every database this batch touches, the commit database last.
        let mut dbs: BTreeMap<&str, &SharedConnection> = BTreeMap::new();
        for load in plans {
            dbs.insert(load.plan.database.as_str(), &load.conn);
        }
        dbs.insert(rejects_db.0, rejects_db.1);
        let ordered: Vec<(&str, &SharedConnection)> = dbs
            .iter()
            .filter(|(name, _)| Some(**name) != commit_db)
            .chain(dbs.iter().filter(|(name, _)| Some(**name) == commit_db))
            .map(|(n, c)| (*n, *c))
            .collect();

        let mut begun: Vec<&SharedConnection> = Vec::new();
        let clock = Instant::now();
        let mut load_time = Duration::ZERO;
        let outcome: Result<u64, WorkerError> = async {
            for (_, conn) in &ordered {
                lock(conn)
                    .execute_batch("BEGIN IMMEDIATE")
                    .map_err(host_err("failed to begin the commit transaction"))?;
                begun.push(conn);
            }
            let mut loaded = None;
            let load_clock = Instant::now();
            for load in plans {
                let n = commit::execute_plan(
                    &lock(&load.conn),
                    &load.plan,
                    &view,
                    schema,
                    &batch.positions,
                    &load.label,
                    &mut batch.rejects,
                )
                .map_err(|e| {
                    WorkerError::Host(format!(
                        "{}: writing to database \"{}\" failed: {e}",
                        load.label, load.plan.database
                    ))
                })?;
                loaded.get_or_insert(n);
            }
            load_time = load_clock.elapsed();
            commit::insert_rejects(&lock(rejects_db.1), &reject_ctx, &batch.rejects)
                .map_err(host_err("failed to record rejects"))?;
            // Inside the commit database's open transaction: the checkpoint commits with the rows.
            if commit_db.is_some() {
                history.save(pipeline, partition, &batch.checkpoint).await?;
            }
            for (_, conn) in &ordered {
                lock(conn)
                    .execute_batch("COMMIT")
                    .map_err(host_err("commit failed"))?;
                begun.retain(|c| !Arc::ptr_eq(c, conn));
            }
            if commit_db.is_none() {
                history.save(pipeline, partition, &batch.checkpoint).await?;
            }
            Ok(loaded.unwrap_or(view.row_count as u64))
        }
        .await;
        times.load += load_time;
        times.commit += clock.elapsed().saturating_sub(load_time);
        let loaded = match outcome {
            Ok(n) => n,
            Err(e) => {
                for conn in begun {
                    let _ = lock(conn).execute_batch("ROLLBACK");
                }
                return Err(e);
            }
        };
        let rejected = batch.rejects.len() as u64;
        *totals += Totals {
            rows_read: batch.rows_read,
            rows_loaded: loaded,
            rows_rejected: rejected,
        };
        ctx.emit(
            Some(partition),
            EventKind::BatchCommitted {
                rows_in: batch.rows_read,
                rows_out: loaded,
                rejected,
                bytes: batch.bytes,
                checkpoint: batch.checkpoint,
                done: batch.progress.done,
                total: batch.progress.total,
            },
        );
    }
    Ok(())
}
