//! What each event means beyond itself: the change it makes to the run records in the state
//! database, and the change it makes to the metrics. Both mappings live here, beside the
//! events, so a new event type is declared and mapped in one module.

use std::time::{SystemTime, UNIX_EPOCH};

use weir_store::{PartitionStatus, Record, RunChange, RunStatus, StoredEvent, Totals};

use super::{EventKind, SyncEvent};

/// How a run ended, as the metrics count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunOutcome {
    Completed,
    Failed,
    Cancelled,
}

/// What an event changes in the metrics (the API's `/metrics` applies it).
#[derive(Debug, Clone, PartialEq)]
pub enum MetricEffect {
    /// Nothing to count.
    None,
    /// A run began (the active-runs gauge, the start of its duration).
    RunStarted,
    /// A run ended; `seconds` when the event says how long it took.
    RunEnded {
        outcome: RunOutcome,
        seconds: Option<f64>,
    },
    /// A batch committed.
    Batch {
        rows_read: u64,
        rows_loaded: u64,
        rows_rejected: u64,
    },
    /// A worker attempt failed with a plugin or host error (retried or not).
    WorkerError,
    /// A due or requested run was not started.
    RunSkipped,
    /// A plugin file could not be used.
    PluginRejected,
    /// Requests through a granted HTTP connection.
    Http {
        connection: String,
        usage: weir_store::HttpUsage,
    },
}

impl EventKind {
    /// This event's effect on the metrics.
    pub fn metric(&self) -> MetricEffect {
        match self {
            Self::RunStarted { .. } => MetricEffect::RunStarted,
            Self::RunCompleted { seconds, .. } => MetricEffect::RunEnded {
                outcome: RunOutcome::Completed,
                seconds: Some(*seconds),
            },
            Self::RunFailed { .. } => MetricEffect::RunEnded {
                outcome: RunOutcome::Failed,
                seconds: None,
            },
            Self::RunCancelled { .. } => MetricEffect::RunEnded {
                outcome: RunOutcome::Cancelled,
                seconds: None,
            },
            Self::BatchCommitted {
                rows_in,
                rows_out,
                rejected,
                ..
            } => MetricEffect::Batch {
                rows_read: *rows_in,
                rows_loaded: *rows_out,
                rows_rejected: *rejected,
            },
            Self::HttpUsage { connection, usage } => MetricEffect::Http {
                connection: connection.clone(),
                usage: *usage,
            },
            Self::WorkerRetrying { .. } | Self::WorkerFailed { .. } => MetricEffect::WorkerError,
            Self::RunSkipped { .. } => MetricEffect::RunSkipped,
            Self::PluginRejected { .. } => MetricEffect::PluginRejected,
            Self::EngineStarted { .. }
            | Self::PluginLoaded { .. }
            | Self::PluginReplaced { .. }
            | Self::PluginRemoved { .. }
            | Self::PipelineInvalid { .. }
            | Self::PipelineValid {}
            | Self::WorkerStarted { .. }
            | Self::PartitionClaimed { .. }
            | Self::PartitionFenced { .. }
            | Self::RunAdopted { .. }
            | Self::WorkerProgress { .. }
            | Self::WorkerCompleted { .. }
            | Self::WorkerCancelled { .. }
            | Self::PluginLog { .. } => MetricEffect::None,
        }
    }

    /// This event's change to the run records.
    pub fn run_change(&self) -> RunChange {
        let totals = |rows_read, rows_loaded, rows_rejected| Totals {
            rows_read,
            rows_loaded,
            rows_rejected,
        };
        match self {
            Self::RunStarted {
                trigger,
                partitions,
                plugins,
            } => RunChange::Started {
                trigger: trigger.clone(),
                partitions: *partitions as u64,
                plugins: plugins.clone(),
            },
            Self::WorkerStarted { checkpoint } => RunChange::WorkerStarted {
                checkpoint: checkpoint.clone(),
            },
            Self::BatchCommitted {
                rows_in,
                rows_out,
                rejected,
                bytes,
                checkpoint,
                filtered,
                counters,
                destinations,
                ..
            } => RunChange::Batch {
                rows_read: *rows_in,
                rows_loaded: *rows_out,
                rows_rejected: *rejected,
                rows_filtered: *filtered,
                bytes: *bytes,
                checkpoint: checkpoint.clone(),
                counters: counters.clone(),
                destinations: destinations.clone(),
            },
            Self::HttpUsage { connection, usage } => RunChange::Http {
                connection: connection.clone(),
                usage: *usage,
            },
            Self::WorkerCompleted {
                rows_read,
                rows_loaded,
                rows_rejected,
            } => RunChange::WorkerEnded {
                status: PartitionStatus::Completed,
                error: None,
                totals: Some(totals(*rows_read, *rows_loaded, *rows_rejected)),
            },
            Self::WorkerCancelled {
                rows_read,
                rows_loaded,
                rows_rejected,
            } => RunChange::WorkerEnded {
                status: PartitionStatus::Cancelled,
                error: None,
                totals: Some(totals(*rows_read, *rows_loaded, *rows_rejected)),
            },
            Self::WorkerFailed { error, .. } => RunChange::WorkerEnded {
                status: PartitionStatus::Failed,
                error: Some(error.clone()),
                totals: None,
            },
            Self::RunCompleted {
                rows_read,
                rows_loaded,
                rows_rejected,
                ..
            } => RunChange::Ended {
                status: RunStatus::Completed,
                error: None,
                totals: totals(*rows_read, *rows_loaded, *rows_rejected),
            },
            Self::RunFailed {
                error,
                rows_read,
                rows_loaded,
                rows_rejected,
            } => RunChange::Ended {
                status: RunStatus::Failed,
                error: Some(error.clone()),
                totals: totals(*rows_read, *rows_loaded, *rows_rejected),
            },
            Self::RunCancelled {
                rows_read,
                rows_loaded,
                rows_rejected,
            } => RunChange::Ended {
                status: RunStatus::Cancelled,
                error: Some("run cancelled".into()),
                totals: totals(*rows_read, *rows_loaded, *rows_rejected),
            },
            Self::EngineStarted { .. }
            | Self::RunAdopted { .. }
            | Self::PartitionClaimed { .. }
            | Self::PartitionFenced { .. }
            | Self::PluginLoaded { .. }
            | Self::PluginRejected { .. }
            | Self::PluginReplaced { .. }
            | Self::PluginRemoved { .. }
            | Self::PipelineInvalid { .. }
            | Self::PipelineValid {}
            | Self::RunSkipped { .. }
            | Self::WorkerProgress { .. }
            | Self::WorkerRetrying { .. }
            | Self::PluginLog { .. } => RunChange::None,
        }
    }
}

/// An event as the store keeps it, with what it changes in the run records.
pub fn to_record(event: &SyncEvent) -> Record {
    Record {
        event: StoredEvent {
            id: event.id,
            time_ms: unix_ms(event.time),
            pipeline: event.pipeline.clone(),
            run: event.run.clone(),
            partition: event.partition.clone(),
            kind: event.kind.name().to_owned(),
            data: serde_json::to_string(event).unwrap_or_default(),
        },
        change: event.kind.run_change(),
    }
}

/// Milliseconds since the Unix epoch.
pub fn unix_ms(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
