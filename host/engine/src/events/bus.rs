//! The event bus: ids, the tracing log, the tap (state database, metrics) and subscribers.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use tokio::sync::broadcast;

use super::{EventKind, MAX_EVENT_TEXT, SyncEvent};

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
        let mut kind = kind;
        kind.cap_text(MAX_EVENT_TEXT);
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
