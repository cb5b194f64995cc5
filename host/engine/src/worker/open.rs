//! Setting up one worker attempt: fresh instances of every step, opened in pipeline order,
//! each given what its step may use (see `pipeline`), plus the databases its batches commit to.

use std::time::Instant;

use weir_runtime::types::{Partition, Schema};
use weir_runtime::{
    Databases, ExtractorInstance, HistoryInstance, HttpMeter, LoadTarget, PluginError,
};

use super::StageTimes;
use super::transform::{self, TransformStep};
use crate::commit::SinkLoad;
use crate::context::RunContext;
use crate::db::Db;
use crate::error::WorkerError;
use crate::events::EventKind;
use crate::pipeline::{DatabaseAccess, ResolvedPipeline, Step};
use crate::plan::PlanLoad;

/// One attempt's opened steps.
pub struct Opened {
    pub history: HistoryInstance,
    /// Where the history store saves: the batch commits there.
    pub commit_db: Option<String>,
    /// The checkpoint the partition resumes from.
    pub checkpoint: Option<String>,
    pub extractor: ExtractorInstance,
    /// The extractor's schema.
    pub source_schema: Schema,
    pub transforms: Vec<TransformStep>,
    /// The schema the loads receive (the last transform's output).
    pub schema: Schema,
    pub plans: Vec<PlanLoad>,
    pub sinks: Vec<SinkLoad>,
    /// The first load of the pipeline's destination name: its count is the run's "loaded".
    pub first_destination: String,
    /// Where rejects are written, with the checkpoint: the commit database, else the first
    /// write plan's.
    pub rejects_db: (String, Db),
}

/// Instantiate and open every step for `partition`, in pipeline order.
pub async fn open_steps(
    ctx: &std::sync::Arc<RunContext>,
    pipeline: &ResolvedPipeline,
    partition: &Partition,
    fence: Option<i64>,
    times: &mut StageTimes,
    meters: &mut Vec<HttpMeter>,
) -> Result<Opened, WorkerError> {
    let cfg = &pipeline.config;
    let access = DatabaseAccess::Run;
    let databases = pipeline.databases(access);
    let runtime = &ctx.runtime;
    let options = |step, plugin: &weir_runtime::Plugin| {
        pipeline.options(
            step,
            plugin,
            Some(&partition.id),
            (access, &databases),
            Some(ctx.log_sink(&plugin.info.name, Some(&partition.id))),
        )
    };

    let clock = Instant::now();
    let mut history = runtime
        .history_store(&pipeline.history, options(Step::History, &pipeline.history))
        .await?;
    times.instantiate += clock.elapsed();
    let commit_db = history.open(&cfg.history.config).await?;
    if let (Some(epoch), Some(name)) = (fence, &commit_db) {
        // Before the checkpoint is read: a host still committing under an older epoch either
        // committed before this (its checkpoint is read below) or is refused from now on.
        stamp_fence(&databases, name, &cfg.name, &partition.id, epoch).await?;
    }
    let checkpoint = history.load(&cfg.name, &partition.id).await?;
    ctx.emit(
        Some(&partition.id),
        EventKind::WorkerStarted {
            checkpoint: checkpoint.clone(),
        },
    );

    let clock = Instant::now();
    let mut extractor = runtime
        .extractor(&pipeline.extract, options(Step::Extract, &pipeline.extract))
        .await?;
    times.instantiate += clock.elapsed();
    meters.push(extractor.http_meter());
    let mut schema = extractor
        .open(&cfg.extract.config, partition, checkpoint.as_deref())
        .await?;
    let source_schema = schema.clone();

    let mut transforms = Vec::new();
    for (step, plugin) in cfg.transforms.iter().zip(&pipeline.transforms) {
        let clock = Instant::now();
        let mut instance = runtime
            .transformer(plugin, options(Step::Transform, plugin))
            .await?;
        times.instantiate += clock.elapsed();
        let input = schema.clone();
        schema = instance.open(&step.config, &input).await?;
        let projection = instance.projection().await?;
        if let Some(projection) = &projection {
            transform::check_projection(projection, &input, &schema)
                .map_err(|e| PluginError::contract(&plugin.label(), "projection", e))?;
        }
        transforms.push(TransformStep {
            name: plugin.info.name.clone(),
            instance,
            input,
            projection,
        });
    }

    let mut plans: Vec<PlanLoad> = Vec::new();
    let mut sinks: Vec<SinkLoad> = Vec::new();
    // The first load's destination, in pipeline order (numbering repeats below never renames
    // a name's first use).
    let mut first_destination = None;
    for (step, plugin) in cfg.loads.iter().zip(&pipeline.loads) {
        let label = plugin.label();
        let clock = Instant::now();
        let mut instance = runtime.loader(plugin, options(Step::Load, plugin)).await?;
        times.instantiate += clock.elapsed();
        meters.push(instance.http_meter());
        match instance.open(&step.config, &schema).await? {
            LoadTarget::Sink => sinks.push(SinkLoad {
                name: plugin.info.name.clone(),
                destination: plugin.info.name.clone(),
                instance,
            }),
            LoadTarget::SqlPlan(plan) => {
                let conn = match plan_connection(&databases, &plan.database, &label).await? {
                    Db::Sqlite(conn) => conn,
                    Db::Postgres(_) => {
                        return Err(PluginError::contract(
                            &label,
                            "open",
                            format!(
                                "database \"{}\" is PostgreSQL, but this loader returned a contract 0.1.0 write plan, which is SQLite SQL; use a loader built on contract 0.2.0 (e.g. sql-load), whose declarative plan the host renders for PostgreSQL",
                                plan.database
                            ),
                        )
                        .into());
                    }
                };
                let load = PlanLoad::from_sql(plugin.info.name.clone(), plan, conn, &schema)
                    .map_err(|e| PluginError::contract(&label, "open", e))?;
                plans.push(load);
            }
            LoadTarget::Plan(plan) => {
                let db = plan_connection(&databases, &plan.database, &label).await?;
                let load = PlanLoad::from_declared(plugin.info.name.clone(), plan, db, &schema)
                    .map_err(|e| PluginError::contract(&label, "open", e))?;
                plans.push(load);
            }
        }
        if first_destination.is_none() {
            // After the first load, exactly one of the two lists holds one entry.
            first_destination = plans
                .first()
                .map(|p| p.destination.clone())
                .or_else(|| sinks.first().map(|s| s.destination.clone()));
        }
    }

    crate::pipeline::number_repeated_destinations(
        plans
            .iter_mut()
            .map(|p| &mut p.destination)
            .chain(sinks.iter_mut().map(|s| &mut s.destination)),
    );

    let rejects_db_name = commit_db
        .clone()
        .or_else(|| plans.first().map(|p| p.database.clone()))
        .ok_or_else(|| WorkerError::Host {
            message: "no database to record rejects in: the history store has no commit database and no load writes to one".into(),
            retryable: false,
        })?;
    let rejects_conn = granted(&databases, &rejects_db_name)
        .await
        .map_err(|e| match e {
            Granted::Missing => WorkerError::Host {
                message: format!("database \"{rejects_db_name}\" is not granted"),
                retryable: false,
            },
            Granted::Failed(e) => e,
        })?;
    rejects_conn.ensure_rejects_table().await?;

    Ok(Opened {
        history,
        commit_db,
        checkpoint,
        extractor,
        source_schema,
        transforms,
        schema,
        plans,
        sinks,
        first_destination: first_destination.unwrap_or_default(),
        rejects_db: (rejects_db_name, rejects_conn),
    })
}

/// Raise the partition's fence in the commit database to `epoch`; refused if a newer epoch
/// is there (another host claimed the partition since this one did).
async fn stamp_fence(
    databases: &Databases,
    commit_db: &str,
    pipeline: &str,
    partition: &str,
    epoch: i64,
) -> Result<(), WorkerError> {
    let db = granted(databases, commit_db).await.map_err(|e| match e {
        Granted::Missing => WorkerError::Host {
            message: format!("commit database \"{commit_db}\" is not granted"),
            retryable: false,
        },
        Granted::Failed(e) => e,
    })?;
    match db.stamp_fence(pipeline, partition, epoch).await? {
        weir_store::fences::Stamp::Taken => Ok(()),
        weir_store::fences::Stamp::Superseded { newer } => Err(WorkerError::Fenced(
            weir_store::fences::explain(partition, epoch, newer),
        )),
    }
}

/// The database a write plan targets, which must be granted.
async fn plan_connection(
    databases: &Databases,
    database: &str,
    label: &str,
) -> Result<Db, WorkerError> {
    granted(databases, database).await.map_err(|e| match e {
        Granted::Missing => PluginError::contract(
            label,
            "open",
            format!(
                "write plan targets database \"{database}\", which this pipeline does not grant"
            ),
        )
        .into(),
        Granted::Failed(e) => e,
    })
}

enum Granted {
    Missing,
    Failed(WorkerError),
}

/// The worker's connection to a granted database: the shared SQLite connection, or the
/// attempt's PostgreSQL session. Failing to connect is retried (the server may be restarting).
async fn granted(databases: &Databases, name: &str) -> Result<Db, Granted> {
    if databases.is_postgres(name) {
        return match databases.postgres(name).await {
            Some(Ok(session)) => Ok(Db::Postgres(session)),
            Some(Err(e)) => Err(Granted::Failed(WorkerError::Host {
                message: e.to_string(),
                retryable: e.is_retryable(),
            })),
            None => Err(Granted::Missing),
        };
    }
    match databases.connection(name) {
        Some(Ok(conn)) => Ok(Db::Sqlite(conn)),
        Some(Err(e)) => Err(Granted::Failed(WorkerError::host(format!("{e:#}")))),
        None => Err(Granted::Missing),
    }
}
