//! The weir engine: configuration, pipelines, runs, workers and the exactly-once commit
//! protocol. Plugins are reached only through `weir-runtime`.

pub mod columns;
pub mod commit;
pub mod config;
pub mod events;
pub mod run;
pub mod service;
pub mod supervisor;
mod worker;

pub use config::{Config, ConfigError, PipelineConfig};
pub use events::{EventBus, EventKind, SyncEvent};
pub use run::{PartitionOutcome, ResolvedPipeline, RunSummary, run_pipeline};
pub use supervisor::RestartPolicy;
pub use worker::{Totals, WorkerError};
