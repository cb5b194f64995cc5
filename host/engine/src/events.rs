//! SyncEvents: the one way the outside world watches the engine. Every event also goes to the
//! tracing log from here, so logs and subscribers cannot drift apart.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use serde::Serialize;
use tokio::sync::broadcast;

/// What happened.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    RunStarted {
        trigger: String,
        partitions: usize,
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
            Self::RunStarted { .. } => "run_started",
            Self::RunCompleted { .. } => "run_completed",
            Self::RunFailed { .. } => "run_failed",
            Self::WorkerStarted { .. } => "worker_started",
            Self::WorkerProgress { .. } => "worker_progress",
            Self::BatchCommitted { .. } => "batch_committed",
            Self::WorkerCompleted { .. } => "worker_completed",
            Self::WorkerRetrying { .. } => "worker_retrying",
            Self::WorkerFailed { .. } => "worker_failed",
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

/// Publishes events to subscribers and the log.
#[derive(Clone)]
pub struct EventBus {
    sender: broadcast::Sender<Arc<SyncEvent>>,
    next_id: Arc<AtomicU64>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBus {
    /// A bus whose slow subscribers lose the oldest events past 4096 (they see `Lagged`).
    pub fn new() -> Self {
        let (sender, _) = broadcast::channel(4096);
        Self {
            sender,
            next_id: Arc::new(AtomicU64::new(1)),
        }
    }

    /// Receive events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<SyncEvent>> {
        self.sender.subscribe()
    }

    /// Publish an event for a pipeline / run / partition.
    pub fn emit(&self, pipeline: &str, run: &str, partition: Option<&str>, kind: EventKind) {
        let event = SyncEvent {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            time: SystemTime::now(),
            pipeline: Some(pipeline.to_owned()),
            run: Some(run.to_owned()),
            partition: partition.map(str::to_owned),
            kind,
        };
        log(&event);
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
        EventKind::WorkerProgress { .. } => {}
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
