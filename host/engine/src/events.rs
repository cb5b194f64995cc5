//! SyncEvents: the one way the outside world watches the engine. Every event also goes to the
//! tracing log from here, so logs and subscribers cannot drift apart.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use serde::Serialize;
use tokio::sync::broadcast;

/// What happened.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    EngineStarted {
        version: String,
        pipelines: usize,
    },
    PluginLoaded {
        plugin: String,
        version: String,
        kind: String,
        file: String,
        hash: String,
    },
    /// A file in the plugins folder could not be used. `kept_version`: the version loaded
    /// earlier from the same file, which stays in service.
    PluginRejected {
        file: String,
        reason: String,
        kept_version: Option<String>,
    },
    /// A plugin file changed while serving: new runs use `new_version`; runs in progress finish
    /// with the one they started with.
    PluginReplaced {
        plugin: String,
        kind: String,
        file: String,
        old_version: String,
        new_version: String,
        old_hash: String,
        new_hash: String,
    },
    /// A plugin file was deleted. Runs in progress finish with it; `used_by` are the pipelines
    /// whose configuration names it (they cannot start until it is back).
    PluginRemoved {
        plugin: String,
        version: String,
        kind: String,
        file: String,
        used_by: Vec<String>,
    },
    /// A pipeline can no longer run (a plugin it needs is gone or changed kind).
    PipelineInvalid {
        error: String,
    },
    /// A pipeline that could not run can run again.
    PipelineValid {},
    RunSkipped {
        reason: String,
    },
    RunStarted {
        trigger: String,
        partitions: usize,
        /// Name → version of every plugin the run uses.
        plugins: BTreeMap<String, String>,
    },
    RunCompleted {
        rows_read: u64,
        rows_loaded: u64,
        rows_rejected: u64,
        seconds: f64,
    },
    RunFailed {
        error: String,
        rows_read: u64,
        rows_loaded: u64,
        rows_rejected: u64,
    },
    WorkerStarted {
        checkpoint: Option<String>,
    },
    WorkerProgress {
        done: u64,
        total: Option<u64>,
    },
    BatchCommitted {
        rows_in: u64,
        rows_out: u64,
        rejected: u64,
        /// Row data read from the source for this batch: the extractor's column buffers plus
        /// the raw text of its rejects.
        bytes: u64,
        checkpoint: String,
        done: u64,
        total: Option<u64>,
    },
    WorkerCompleted {
        rows_read: u64,
        rows_loaded: u64,
        rows_rejected: u64,
    },
    WorkerRetrying {
        attempt: u32,
        delay_ms: u64,
        error: String,
    },
    WorkerFailed {
        error: String,
        retryable: bool,
        attempts: u32,
    },
    /// A line a plugin logged (`log` at info level or above, or a line of its stdout/stderr),
    /// at most [`crate::run::MAX_LOG_EVENTS`] per plugin instance; the host log has them all.
    PluginLog {
        plugin: String,
        /// `error`, `warn` or `info`.
        level: String,
        message: String,
    },
    /// The run was cancelled: the worker stopped at a batch boundary; the totals are what it
    /// committed before.
    WorkerCancelled {
        rows_read: u64,
        rows_loaded: u64,
        rows_rejected: u64,
    },
    RunCancelled {
        rows_read: u64,
        rows_loaded: u64,
        rows_rejected: u64,
    },
}

impl EventKind {
    /// The event's type name (`batch_committed`), as used in SSE `event:` lines.
    pub fn name(&self) -> &'static str {
        match self {
            Self::EngineStarted { .. } => "engine_started",
            Self::PluginLoaded { .. } => "plugin_loaded",
            Self::PluginRejected { .. } => "plugin_rejected",
            Self::PluginReplaced { .. } => "plugin_replaced",
            Self::PluginRemoved { .. } => "plugin_removed",
            Self::PipelineInvalid { .. } => "pipeline_invalid",
            Self::PipelineValid { .. } => "pipeline_valid",
            Self::RunSkipped { .. } => "run_skipped",
            Self::RunStarted { .. } => "run_started",
            Self::RunCompleted { .. } => "run_completed",
            Self::RunFailed { .. } => "run_failed",
            Self::WorkerStarted { .. } => "worker_started",
            Self::WorkerProgress { .. } => "worker_progress",
            Self::BatchCommitted { .. } => "batch_committed",
            Self::WorkerCompleted { .. } => "worker_completed",
            Self::WorkerRetrying { .. } => "worker_retrying",
            Self::WorkerFailed { .. } => "worker_failed",
            Self::WorkerCancelled { .. } => "worker_cancelled",
            Self::PluginLog { .. } => "plugin_log",
            Self::RunCancelled { .. } => "run_cancelled",
        }
    }
}

/// An event with its envelope.
#[derive(Debug, Clone, Serialize)]
pub struct SyncEvent {
    /// Monotonic within the process.
    pub id: u64,
    /// Unix time in milliseconds (what `new Date(ms)` takes).
    #[serde(serialize_with = "unix_millis")]
    pub time: SystemTime,
    pub pipeline: Option<String>,
    pub run: Option<String>,
    pub partition: Option<String>,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// Called synchronously for every event, in id order, before subscribers see it (the
/// persisted event log uses it, so a replay never misses what a live subscriber saw).
pub type EventTap = Arc<dyn Fn(&SyncEvent) + Send + Sync>;

/// Publishes events to the log, the tap and subscribers.
#[derive(Clone)]
pub struct EventBus {
    sender: broadcast::Sender<Arc<SyncEvent>>,
    next_id: Arc<AtomicU64>,
    tap: Option<EventTap>,
    /// Orders id assignment with tap and send, so ids reach everyone in increasing order.
    order: Arc<std::sync::Mutex<()>>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBus {
    /// A bus whose slow subscribers lose the oldest events past 4096 (they see `Lagged`).
    pub fn new() -> Self {
        Self::with_tap(1, None)
    }

    /// A bus whose ids start at `first_id` (to continue a persisted log) with an optional tap.
    pub fn with_tap(first_id: u64, tap: Option<EventTap>) -> Self {
        let (sender, _) = broadcast::channel(4096);
        Self {
            sender,
            next_id: Arc::new(AtomicU64::new(first_id)),
            tap,
            order: Arc::default(),
        }
    }

    /// Receive events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<SyncEvent>> {
        self.sender.subscribe()
    }

    /// Publish an event for a pipeline / run / partition.
    pub fn emit(&self, pipeline: &str, run: &str, partition: Option<&str>, kind: EventKind) {
        self.publish(Some(pipeline), Some(run), partition, kind);
    }

    /// Publish an event with any labels (engine and plugin events have no run).
    pub fn publish(
        &self,
        pipeline: Option<&str>,
        run: Option<&str>,
        partition: Option<&str>,
        kind: EventKind,
    ) {
        let _order = self.order.lock().unwrap_or_else(|p| p.into_inner());
        let event = SyncEvent {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            time: SystemTime::now(),
            pipeline: pipeline.map(str::to_owned),
            run: run.map(str::to_owned),
            partition: partition.map(str::to_owned),
            kind,
        };
        log(&event);
        if let Some(tap) = &self.tap {
            tap(&event);
        }
        // No subscribers is fine: the log above already has it.
        let _ = self.sender.send(Arc::new(event));
    }
}

fn log(event: &SyncEvent) {
    let pipeline = event.pipeline.as_deref().unwrap_or("-");
    let run = event.run.as_deref().unwrap_or("-");
    let partition = event.partition.as_deref().unwrap_or("-");
    match &event.kind {
        EventKind::WorkerFailed {
            error,
            retryable,
            attempts,
        } => {
            tracing::error!(
                pipeline,
                run,
                partition,
                retryable,
                attempts,
                "worker failed: {error}"
            )
        }
        EventKind::WorkerRetrying {
            attempt,
            delay_ms,
            error,
        } => {
            tracing::warn!(
                pipeline,
                run,
                partition,
                attempt,
                delay_ms,
                "worker failed, restarting: {error}"
            )
        }
        EventKind::RunFailed { error, .. } => tracing::error!(pipeline, run, "run failed: {error}"),
        EventKind::PluginRejected {
            file,
            reason,
            kept_version,
        } => match kept_version {
            Some(kept) => tracing::warn!(
                "plugin rejected: {file}: {reason} (version {kept} loaded earlier keeps serving)"
            ),
            None => tracing::warn!("plugin rejected: {file}: {reason}"),
        },
        EventKind::PipelineInvalid { error } => {
            tracing::error!(pipeline, "pipeline cannot run: {error}")
        }
        EventKind::BatchCommitted {
            rows_in,
            rows_out,
            rejected,
            ..
        } => tracing::debug!(
            pipeline,
            run,
            partition,
            rows_in,
            rows_out,
            rejected,
            "batch committed"
        ),
        // Already in the log, from the runtime, with the plugin's own level.
        EventKind::WorkerProgress { .. } | EventKind::PluginLog { .. } => {}
        kind => tracing::info!(
            pipeline,
            run,
            partition,
            event = kind.name(),
            "{}",
            serde_json::to_string(kind).unwrap_or_default()
        ),
    }
}

fn unix_millis<S: serde::Serializer>(time: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    let ms = time
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    s.serialize_u64(ms)
}
