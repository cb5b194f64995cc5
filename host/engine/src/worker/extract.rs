//! The extract side of a worker: pull batches from the extractor, check them where they leave
//! the plugin (layout, UTF-8, size bounds), run them through the transforms, and hand them to
//! the load side through the bounded channel.

use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use weir_runtime::types::{Batch, Progress, Rows, Schema, SourceReject};
use weir_runtime::{ExtractorInstance, FaultKind, PluginError};
use weir_store::rejects::RejectRecord;

use super::StageTimes;
use super::transform::{self, InFlight, TransformStep};
use crate::columns::{self, RowsView, SizeBounds};
use crate::context::RunContext;
use crate::events::EventKind;

/// What the extract side hands the load side: one batch, checked and transformed.
pub struct StagedBatch {
    pub rows: Rows,
    pub positions: Vec<u64>,
    pub source_rejects: Vec<SourceReject>,
    pub rejects: Vec<RejectRecord>,
    pub checkpoint: String,
    pub progress: Progress,
    pub rows_read: u64,
    /// Row data the extractor handed over: its batch's buffers plus the raw text of its rejects.
    pub bytes: u64,
    /// The rows are the extractor's, as [`RowsView::new`] checked them (no transform ran), so
    /// the load side need not check their text again.
    pub validated: bool,
    /// Rows the transforms filtered out on purpose.
    pub filtered: u64,
    /// Counts the transforms reported, by `<transform>.<name>`.
    pub counters: std::collections::BTreeMap<String, u64>,
}

/// The extractor and transforms of one worker, and how to read from them.
pub struct ExtractSide<'a> {
    pub extractor: &'a mut ExtractorInstance,
    pub transforms: &'a mut [TransformStep],
    pub source_schema: &'a Schema,
    pub extract_name: &'a str,
    pub batch_size: u32,
    pub bounds: SizeBounds,
}

impl ExtractSide<'_> {
    /// Pull, check and transform batches until the partition ends or the load side stops
    /// listening (its error is reported there).
    pub async fn run(
        self,
        tx: mpsc::Sender<StagedBatch>,
        times: &mut StageTimes,
        report: &mut ProgressReport<'_>,
    ) -> Result<(), PluginError> {
        loop {
            let clock = Instant::now();
            let Some(batch) = self
                .extractor
                .next_batch_within(self.batch_size, self.bounds.max_batch_bytes)
                .await?
            else {
                break;
            };
            times.extract += clock.elapsed();
            report.read(&batch.progress);
            let clock = Instant::now();
            let staged = self.check(batch)?;
            times.check += clock.elapsed();
            let clock = Instant::now();
            let staged = staged
                .transformed(self.transforms, self.bounds.max_batch_bytes)
                .await?;
            times.transform += clock.elapsed();
            let clock = Instant::now();
            if tx.send(staged).await.is_err() {
                break;
            }
            times.send_wait += clock.elapsed();
        }
        Ok(())
    }

    /// Check a batch as it leaves the extractor. A batch too large to handle fails the worker;
    /// a single oversized row becomes a reject with its position.
    fn check(&self, batch: Batch) -> Result<Checked, PluginError> {
        let name = self.extract_name;
        let Batch {
            mut rows,
            mut positions,
            rejects: source_rejects,
            checkpoint,
            progress,
        } = batch;
        if positions.len() != rows.row_count as usize {
            return Err(PluginError::contract(
                name,
                "next-batch",
                format!(
                    "batch has {} rows but {} positions",
                    rows.row_count,
                    positions.len()
                ),
            ));
        }
        RowsView::new(&rows, self.source_schema)
            .map_err(|e| PluginError::contract(name, "next-batch", e))?;
        let rows_read = u64::from(rows.row_count) + source_rejects.len() as u64;
        let mut rejects: Vec<RejectRecord> = source_rejects
            .iter()
            .map(|r| RejectRecord {
                stage: name.to_owned(),
                position: Some(r.position),
                reason: r.reason.clone(),
                raw: r.raw.clone(),
            })
            .collect();
        let size = columns::batch_bytes(&rows);
        let bytes = (size + source_rejects.iter().map(|r| r.raw.len()).sum::<usize>()) as u64;
        if size > self.bounds.max_batch_bytes {
            return Err(PluginError {
                plugin: name.to_owned(),
                call: "next-batch",
                kind: FaultKind::BadData,
                message: format!(
                    "batch of {size} bytes exceeds max_batch_bytes ({}); lower batch_size or raise limits.max_batch_bytes",
                    self.bounds.max_batch_bytes
                ),
                retry_after: None,
            });
        }
        let verdict = columns::oversized_rows(&rows, self.source_schema, &self.bounds);
        if verdict.iter().any(Option::is_some) {
            let keep: Vec<bool> = verdict.iter().map(Option::is_none).collect();
            for (row, reason) in verdict.into_iter().enumerate() {
                if let Some(reason) = reason {
                    rejects.push(RejectRecord {
                        stage: name.to_owned(),
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
        Ok(Checked {
            in_flight: InFlight {
                rows,
                positions,
                untouched: true,
                filtered: 0,
                counters: Default::default(),
            },
            source_rejects,
            rejects,
            checkpoint,
            progress,
            rows_read,
            bytes,
        })
    }
}

/// A batch that passed the host's checks, before the transforms.
struct Checked {
    in_flight: InFlight,
    source_rejects: Vec<SourceReject>,
    rejects: Vec<RejectRecord>,
    checkpoint: String,
    progress: Progress,
    rows_read: u64,
    bytes: u64,
}

impl Checked {
    /// Through the transforms. A batch always goes on, even with zero rows left: its
    /// checkpoint and rejects must commit.
    async fn transformed(
        mut self,
        transforms: &mut [TransformStep],
        max_bytes: usize,
    ) -> Result<StagedBatch, PluginError> {
        let out =
            transform::apply_all(transforms, self.in_flight, &mut self.rejects, max_bytes).await?;
        Ok(StagedBatch {
            validated: out.untouched,
            filtered: out.filtered,
            counters: out.counters,
            rows: out.rows,
            positions: out.positions,
            source_rejects: self.source_rejects,
            rejects: self.rejects,
            checkpoint: self.checkpoint,
            progress: self.progress,
            rows_read: self.rows_read,
            bytes: self.bytes,
        })
    }
}

/// `worker_progress` events from the extract side: how far reading has got, ahead of what is
/// committed (`batch_committed` says that). At most one a second per worker, so a fast source
/// does not double the event log; a slow load still shows reading moving.
pub struct ProgressReport<'a> {
    ctx: &'a RunContext,
    partition: &'a str,
    last: Instant,
}

impl<'a> ProgressReport<'a> {
    const EVERY: Duration = Duration::from_secs(1);

    pub fn new(ctx: &'a RunContext, partition: &'a str) -> Self {
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
