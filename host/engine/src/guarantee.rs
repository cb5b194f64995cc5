//! What delivery a pipeline gets, decided from what its steps say when opened: exactly-once
//! when every load writes through a write plan into the database the history store commits
//! to (rows, rejects and checkpoint in one transaction), at-least-once otherwise.

use weir_runtime::{LoadTarget, LogSink, PluginError, Runtime};

use crate::pipeline::{DatabaseAccess, ResolvedPipeline, Step};

/// A pipeline's delivery guarantee, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Guarantee {
    /// Rows, rejects and checkpoints commit together in `database`.
    ExactlyOnce { database: String, partitions: usize },
    /// Some writes are outside the checkpoint's transaction; `outside` says which.
    AtLeastOnce { outside: Vec<String> },
    /// The extractor found nothing to read yet, so the loads could not be opened.
    NoPartitions { commit_database: Option<String> },
}

impl std::fmt::Display for Guarantee {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ExactlyOnce {
                database,
                partitions,
            } => write!(
                f,
                "exactly-once: rows, rejects and checkpoints commit together in database {database} ({partitions} partitions)"
            ),
            Self::AtLeastOnce { outside } => write!(
                f,
                "at-least-once: {} outside the checkpoint's transaction; make those loads idempotent (upsert by key)",
                outside.join(", ")
            ),
            Self::NoPartitions { commit_database } => write!(
                f,
                "no partitions yet; checkpoints are saved in database {}",
                commit_database.as_deref().unwrap_or("(none)")
            ),
        }
    }
}

/// Open the pipeline's steps on its first partition, as `access` opens databases, and compare
/// where the loads write with where the checkpoint is saved. Nothing is read past `open`.
pub async fn delivery_guarantee(
    runtime: &Runtime,
    pipeline: &ResolvedPipeline,
    access: DatabaseAccess,
    logs: Option<LogSink>,
) -> Result<Guarantee, PluginError> {
    let cfg = &pipeline.config;
    let databases = pipeline.databases(access);
    let options =
        |step, plugin| pipeline.options(step, plugin, None, (access, &databases), logs.clone());
    let mut history = runtime
        .history_store(&pipeline.history, options(Step::History, &pipeline.history))
        .await?;
    let commit_db = history.open(&cfg.history.config).await?;
    let mut extractor = runtime
        .extractor(&pipeline.extract, options(Step::Extract, &pipeline.extract))
        .await?;
    let partitions = extractor.partitions(&cfg.extract.config).await?;
    let Some(first) = partitions.first() else {
        return Ok(Guarantee::NoPartitions {
            commit_database: commit_db,
        });
    };
    let mut schema = extractor.open(&cfg.extract.config, first, None).await?;
    for (step, plugin) in cfg.transforms.iter().zip(&pipeline.transforms) {
        let mut t = runtime
            .transformer(plugin, options(Step::Transform, plugin))
            .await?;
        schema = t.open(&step.config, &schema).await?;
    }
    let mut outside = Vec::new();
    for (step, plugin) in cfg.loads.iter().zip(&pipeline.loads) {
        let mut l = runtime.loader(plugin, options(Step::Load, plugin)).await?;
        match l.open(&step.config, &schema).await? {
            LoadTarget::SqlPlan(plan) if Some(&plan.database) == commit_db.as_ref() => {}
            LoadTarget::Plan(plan) if Some(&plan.database) == commit_db.as_ref() => {}
            LoadTarget::SqlPlan(weir_runtime::SqlPlan { database, .. })
            | LoadTarget::Plan(weir_runtime::WritePlan { database, .. }) => outside.push(format!(
                "{} writes to database {database}",
                plugin.info.name
            )),
            LoadTarget::Sink => outside.push(format!("{} is a sink", plugin.info.name)),
        }
    }
    Ok(match commit_db {
        Some(database) if outside.is_empty() => Guarantee::ExactlyOnce {
            database,
            partitions: partitions.len(),
        },
        None => Guarantee::AtLeastOnce {
            outside: vec!["the history store has no commit database".to_owned()],
        },
        Some(_) => Guarantee::AtLeastOnce { outside },
    })
}
