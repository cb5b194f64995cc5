//! What delivery each destination of a pipeline gets, decided from what its steps say when
//! opened, and the pipeline's as a whole (its weakest destination's):
//!
//! - **exactly-once**: a write plan into the database the history store commits to (rows,
//!   rejects and checkpoint in one transaction), or a sink that declares its writes idempotent
//!   by external version (a batch sent again after a crash comes back as version conflicts and
//!   changes nothing the destination holds);
//! - **at-least-once**: any other write plan (its database commits before the checkpoint's, so
//!   a crash in between writes the batch there again) or sink (written before the transaction).
//!
//! A sink declares its versioning in its config schema (`"x-weir-delivery":
//! "external-version"`, see docs/plugins.md): the host takes the plugin's word for it, as it
//! does for everything a plugin says it does with the rows it is given.

use weir_runtime::{LoadTarget, LogSink, PluginError, Runtime, WriteMode};

use crate::pipeline::{DatabaseAccess, ResolvedPipeline, Step};

/// The config-schema keyword by which a sink declares how replays affect its destination.
pub const DELIVERY_KEYWORD: &str = "x-weir-delivery";

/// Its value for a sink whose writes carry an external version the destination enforces.
pub const EXTERNAL_VERSION: &str = "external-version";

/// A pipeline's delivery guarantee, with the reason, per destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Guarantee {
    /// The steps opened on the first partition; each destination's guarantee.
    Destinations {
        /// The database the history store commits checkpoints to, if any.
        commit_database: Option<String>,
        partitions: usize,
        destinations: Vec<DestinationGuarantee>,
    },
    /// The extractor found nothing to read yet, so the loads could not be opened.
    NoPartitions { commit_database: Option<String> },
}

/// One destination's delivery and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestinationGuarantee {
    /// As runs count it: `sqlite-load → portal.patients`, or a sink's plugin name.
    pub destination: String,
    pub delivery: Delivery,
    /// Why, in words (`writes in the checkpoint's transaction in database portal`).
    pub reason: String,
    /// How the pipeline's summary names it when it is at-least-once
    /// (`sqlite-load writes to database other`, `counting-sink is a sink`).
    pub outside: String,
}

/// Exactly-once or at-least-once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    ExactlyOnce,
    AtLeastOnce,
}

impl std::fmt::Display for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Delivery::ExactlyOnce => "exactly-once",
            Delivery::AtLeastOnce => "at-least-once",
        })
    }
}

impl Guarantee {
    /// The pipeline's delivery: its weakest destination's (`None` before partitions exist).
    pub fn delivery(&self) -> Option<Delivery> {
        match self {
            Self::Destinations {
                commit_database,
                destinations,
                ..
            } => Some(
                if commit_database.is_some()
                    && destinations
                        .iter()
                        .all(|d| d.delivery == Delivery::ExactlyOnce)
                {
                    Delivery::ExactlyOnce
                } else {
                    Delivery::AtLeastOnce
                },
            ),
            Self::NoPartitions { .. } => None,
        }
    }

    /// One line per destination, `destination: delivery (reason)`.
    pub fn destination_lines(&self) -> Vec<String> {
        match self {
            Self::Destinations { destinations, .. } => destinations
                .iter()
                .map(|d| format!("{}: {} ({})", d.destination, d.delivery, d.reason))
                .collect(),
            Self::NoPartitions { .. } => Vec::new(),
        }
    }
}

/// The pipeline as a whole, on one line (the destinations' lines come after it).
impl std::fmt::Display for Guarantee {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Destinations {
                commit_database: None,
                ..
            } => f.write_str(
                "at-least-once: the history store has no commit database, so checkpoints are saved apart from the rows",
            ),
            Self::Destinations {
                commit_database: Some(database),
                partitions,
                destinations,
            } if self.delivery() == Some(Delivery::ExactlyOnce) => {
                write!(
                    f,
                    "exactly-once: rows, rejects and checkpoints commit together in database {database} ({partitions} partitions)"
                )?;
                let versioned: Vec<&str> = destinations
                    .iter()
                    .filter(|d| d.reason.starts_with(VERSIONED))
                    .map(|d| d.destination.as_str())
                    .collect();
                if !versioned.is_empty() {
                    let verb = if versioned.len() == 1 { "is" } else { "are" };
                    write!(
                        f,
                        "; {} {verb} idempotent by external version",
                        versioned.join(", ")
                    )?;
                }
                Ok(())
            }
            Self::Destinations { destinations, .. } => {
                let outside: Vec<&str> = destinations
                    .iter()
                    .filter(|d| d.delivery == Delivery::AtLeastOnce)
                    .map(|d| d.outside.as_str())
                    .collect();
                write!(
                    f,
                    "at-least-once: {} outside the checkpoint's transaction; make those loads idempotent (upsert by key)",
                    outside.join(", ")
                )
            }
            Self::NoPartitions { commit_database } => write!(
                f,
                "no partitions yet; checkpoints are saved in database {}",
                commit_database.as_deref().unwrap_or("(none)")
            ),
        }
    }
}

/// How a versioned sink's reason starts (the summary line picks those out by it).
const VERSIONED: &str = "a sink idempotent by external version";

/// Open the pipeline's steps on its first partition, as `access` opens databases, and compare
/// where each load writes with where the checkpoint is saved. Nothing is read past `open`.
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
    let mut destinations = Vec::new();
    for (step, plugin) in cfg.loads.iter().zip(&pipeline.loads) {
        let mut l = runtime.loader(plugin, options(Step::Load, plugin)).await?;
        let name = &plugin.info.name;
        let target = l.open(&step.config, &schema).await?;
        destinations.push(match target {
            LoadTarget::SqlPlan(plan) => plan_guarantee(
                crate::plan::sql_destination(name, &plan),
                name,
                &plan.database,
                commit_db.as_deref(),
                None,
            ),
            LoadTarget::Plan(plan) => plan_guarantee(
                crate::plan::declared_destination(name, &plan),
                name,
                &plan.database,
                commit_db.as_deref(),
                Some(plan.mode),
            ),
            LoadTarget::Sink => sink_guarantee(name, &plugin.info.config_schema),
        });
    }
    crate::pipeline::number_repeated_destinations(
        destinations.iter_mut().map(|d| &mut d.destination),
    );
    Ok(Guarantee::Destinations {
        commit_database: commit_db,
        partitions: partitions.len(),
        destinations,
    })
}

fn plan_guarantee(
    destination: String,
    plugin: &str,
    database: &str,
    commit_db: Option<&str>,
    mode: Option<WriteMode>,
) -> DestinationGuarantee {
    let (delivery, reason) = if Some(database) == commit_db {
        (
            Delivery::ExactlyOnce,
            format!("writes in the checkpoint's transaction in database {database}"),
        )
    } else {
        let replay = match mode {
            Some(WriteMode::Upsert) => "upsert by key makes that harmless",
            Some(WriteMode::Append) => "mode append then adds those rows twice",
            None => "the plan's SQL must make that harmless",
        };
        let checkpoints = commit_db.map_or_else(
            || "the checkpoint's store".to_owned(),
            |db| format!("database {db}"),
        );
        (
            Delivery::AtLeastOnce,
            format!(
                "database {database} commits before {checkpoints}: a crash between the two writes the batch there again; {replay}"
            ),
        )
    };
    DestinationGuarantee {
        destination,
        delivery,
        reason,
        outside: format!("{plugin} writes to database {database}"),
    }
}

fn sink_guarantee(plugin: &str, config_schema: &str) -> DestinationGuarantee {
    let declared = serde_json::from_str::<serde_json::Value>(config_schema)
        .ok()
        .and_then(|schema| {
            schema
                .get(DELIVERY_KEYWORD)
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        });
    let (delivery, reason) = if declared.as_deref() == Some(EXTERNAL_VERSION) {
        (
            Delivery::ExactlyOnce,
            format!(
                "{VERSIONED}: it writes before the checkpoint commits, and a batch sent to it again after a crash comes back as version conflicts, changing nothing"
            ),
        )
    } else {
        (
            Delivery::AtLeastOnce,
            "a sink, written before the checkpoint commits: a batch can be written again after a crash, so it must upsert by key".to_owned(),
        )
    };
    DestinationGuarantee {
        destination: plugin.to_owned(),
        delivery,
        reason,
        outside: format!("{plugin} is a sink"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sink_is_exactly_once_only_when_its_schema_declares_external_versions() {
        let versioned = sink_guarantee("search", r#"{"x-weir-delivery": "external-version"}"#);
        assert_eq!(versioned.delivery, Delivery::ExactlyOnce);
        assert!(
            versioned.reason.starts_with(VERSIONED),
            "{}",
            versioned.reason
        );
        for schema in [
            r#"{"type": "object"}"#,
            r#"{"x-weir-delivery": "hope"}"#,
            "not json",
        ] {
            let plain = sink_guarantee("counting-sink", schema);
            assert_eq!(plain.delivery, Delivery::AtLeastOnce, "{schema}");
            assert_eq!(plain.outside, "counting-sink is a sink");
        }
    }

    #[test]
    fn the_pipeline_gets_its_weakest_destinations_guarantee() {
        let in_commit_db = plan_guarantee("p → a.t".into(), "p", "a", Some("a"), None);
        let elsewhere = plan_guarantee(
            "p → b.t".into(),
            "p",
            "b",
            Some("a"),
            Some(WriteMode::Upsert),
        );
        assert_eq!(in_commit_db.delivery, Delivery::ExactlyOnce);
        assert_eq!(elsewhere.delivery, Delivery::AtLeastOnce);
        assert!(
            elsewhere
                .reason
                .contains("upsert by key makes that harmless")
        );
        let pipeline = |destinations: Vec<DestinationGuarantee>, commit: Option<&str>| {
            Guarantee::Destinations {
                commit_database: commit.map(str::to_owned),
                partitions: 1,
                destinations,
            }
        };
        let versioned = sink_guarantee("search", r#"{"x-weir-delivery": "external-version"}"#);
        let both = pipeline(vec![in_commit_db.clone(), versioned.clone()], Some("a"));
        assert_eq!(both.delivery(), Some(Delivery::ExactlyOnce));
        assert!(
            both.to_string()
                .ends_with("; search is idempotent by external version")
        );
        assert_eq!(both.destination_lines().len(), 2);
        let weaker = pipeline(vec![in_commit_db.clone(), elsewhere], Some("a"));
        assert_eq!(weaker.delivery(), Some(Delivery::AtLeastOnce));
        assert!(
            weaker
                .to_string()
                .contains("p writes to database b outside")
        );
        let no_commit_db = pipeline(vec![in_commit_db], None);
        assert_eq!(no_commit_db.delivery(), Some(Delivery::AtLeastOnce));
    }
}
