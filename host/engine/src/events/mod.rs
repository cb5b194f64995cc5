//! SyncEvents: the one way the outside world watches the engine (docs/design.md, "Events"). Each event type
//! is declared once, here; its name is serde's tag ([`name`]), and what it means for the run
//! records and the metrics is mapped beside it ([`effects`]). The [`bus`] sends every event to
//! the tracing log, the state database and subscribers, so none of them can drift apart.

mod bus;
mod effects;
mod name;

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::Serialize;
use weir_store::{DestinationCount, HttpUsage};

pub use bus::{EventBus, EventTap};
pub use effects::{MetricEffect, RunOutcome, to_record, unix_ms};

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
    /// On a cluster: this host took over the run lease of a host that stopped renewing it,
    /// and ends the run (`queued`: its partitions were queued, and go on where they are).
    RunAdopted {
        from: Option<String>,
        queued: bool,
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
    /// On a cluster: this host claimed the partition's lease (`epoch`, its fencing token),
    /// from the queue or, `taken_over_from`, from a host whose lease expired. `plugins`: the
    /// versions this host runs it with (hosts may differ during a rolling upgrade).
    PartitionClaimed {
        epoch: i64,
        taken_over_from: Option<String>,
        plugins: BTreeMap<String, String>,
    },
    /// On a cluster: a commit (or the start) of this partition was refused because another
    /// host claimed it with a newer epoch; this host stopped working on it.
    PartitionFenced {
        epoch: i64,
        error: String,
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
        /// Rows the transforms left out on purpose (filters); not rejects.
        #[serde(default, skip_serializing_if = "is_zero")]
        filtered: u64,
        /// Counts the transforms reported, by `<transform>.<name>`.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        counters: BTreeMap<String, u64>,
        /// Per destination (each write plan and sink): what it loaded and refused.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        destinations: BTreeMap<String, DestinationCount>,
    },
    /// What one worker's plugins did through one granted HTTP connection (at the worker's
    /// end, when they made requests).
    HttpUsage {
        connection: String,
        #[serde(flatten)]
        usage: HttpUsage,
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
    /// at most 100 per plugin instance (see `RunContext::log_sink`); the host log has them all.
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
    /// The event's type name (`batch_committed`): serde's `type` tag, as in the JSON, the SSE
    /// `event:` line and the event log.
    pub fn name(&self) -> &'static str {
        name::tag_of(self, "type").unwrap_or("unknown")
    }

    /// Cut every free-text field to at most `max` bytes, marked where cut. Errors and
    /// checkpoints can come from plugins; the event log and every SSE client keep them.
    fn cap_text(&mut self, max: usize) {
        let fields: Vec<&mut String> = match self {
            Self::PluginRejected { reason, .. } => vec![reason],
            Self::PipelineInvalid { error } => vec![error],
            Self::RunSkipped { reason } => vec![reason],
            Self::RunFailed { error, .. } => vec![error],
            Self::WorkerStarted { checkpoint } => checkpoint.iter_mut().collect(),
            Self::BatchCommitted { checkpoint, .. } => vec![checkpoint],
            Self::WorkerRetrying { error, .. } => vec![error],
            Self::WorkerFailed { error, .. } => vec![error],
            Self::PartitionFenced { error, .. } => vec![error],
            Self::PluginLog { message, .. } => vec![message],
            _ => Vec::new(),
        };
        for field in fields {
            if field.len() > max {
                *field = shorten(field, max);
            }
        }
    }
}

/// Longest free-text field of an event, in bytes (see [`EventKind::cap_text`]): a backstop
/// above the runtime's own caps on what a plugin hands over (16 KiB messages, 64 KiB
/// checkpoints by default), so a plugin's text is cut once, where it enters the host.
pub const MAX_EVENT_TEXT: usize = 96 * 1024;

/// `text` cut to at most `max` bytes (at a character boundary), marked when cut.
pub fn shorten(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes in all)", &text[..end], text.len())
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

fn unix_millis<S: serde::Serializer>(time: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    let ms = time
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    s.serialize_u64(ms)
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}
