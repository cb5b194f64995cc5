//! The weir engine: configuration, pipelines, runs, workers and the exactly-once commit
//! protocol. Plugins are reached only through `weir-runtime`. docs/design.md maps the modules
//! and the arrows allowed between them.

pub mod columns;
pub mod commit;
pub mod config;
pub mod context;
pub mod db;
pub mod error;
pub mod events;
pub mod guarantee;
pub mod lock;
pub mod pipeline;
pub mod plan;
pub mod run;
pub mod service;
pub mod shared;
pub mod supervisor;
pub mod validate;
mod worker;

pub use config::RestartPolicy;
pub use config::{Config, ConfigError, PipelineConfig};
pub use error::WorkerError;
pub use events::{EventBus, EventKind, SyncEvent};
pub use pipeline::{DatabaseAccess, ResolvedPipeline, Step};
pub use run::{PartitionOutcome, Run, RunSummary};
pub use weir_store::Totals;
