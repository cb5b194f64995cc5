//! Runs: resolve a pipeline's plugins, list partitions, start one worker per partition up to
//! `concurrency`, and sum up.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;
use weir_runtime::{
    CallSite, Catalog, Databases, Grants, HistoryInstance, InstanceOptions, LogSink, Plugin,
    PluginKind, Runtime,
};

use crate::config::{Config, PipelineConfig, StepConfig};
use crate::events::{EventBus, EventKind};
use crate::supervisor::RestartBudget;
use crate::worker::{Totals, WorkerError, run_worker};

/// A pipeline whose steps were matched to loaded plugins of the right kind.
pub struct ResolvedPipeline {
    pub config: PipelineConfig,
    pub extract: Arc<Plugin>,
    pub transforms: Vec<Arc<Plugin>>,
    pub loads: Vec<Arc<Plugin>>,
    pub history: Arc<Plugin>,
}

/// A step that does not name a usable plugin.
fn resolve_step(
    config: &Config,
    pipeline: &PipelineConfig,
    catalog: &Catalog,
    step: &StepConfig,
    kind: PluginKind,
) -> Result<Arc<Plugin>, String> {
    let at = format!("{}:{}", config.file.display(), step.line);
    match catalog.get(&step.plugin) {
        Some(plugin) if plugin.kind == kind => Ok(plugin.clone()),
        Some(plugin) => Err(format!(
            "{at}: pipeline \"{}\": plugin \"{}\" is a {}, but this step needs a {kind}",
            pipeline.name, step.plugin, plugin.kind
        )),
        None => {
            let rejected = catalog
                .rejected
                .iter()
                .filter(|r| {
                    r.file
                        .file_stem()
                        .is_some_and(|s| s.to_string_lossy().replace('_', "-") == step.plugin)
                })
                .map(|r| format!(" ({} was rejected: {})", r.file.display(), r.reason))
                .collect::<String>();
            let available: Vec<&str> = catalog
                .plugins
                .values()
                .filter(|p| p.kind == kind)
                .map(|p| p.info.name.as_str())
                .collect();
            Err(format!(
                "{at}: pipeline \"{}\": unknown {kind} plugin \"{}\"{rejected}; loaded {kind}s: {}",
                pipeline.name,
                step.plugin,
                if available.is_empty() {
                    "none".to_owned()
                } else {
                    available.join(", ")
                }
            ))
        }
    }
}

impl ResolvedPipeline {
    /// Match every step to a loaded plugin of the right kind, and check the grants exist.
    pub fn resolve(config: &Config, name: &str, catalog: &Catalog) -> Result<Self, String> {
        let pipeline = config.pipeline(name).ok_or_else(|| {
            let names: Vec<&str> = config.pipelines.iter().map(|p| p.name.as_str()).collect();
            format!(
                "{}: no pipeline named \"{name}\" (pipelines: {})",
                config.file.display(),
                if names.is_empty() {
                    "none".to_owned()
                } else {
                    names.join(", ")
                }
            )
        })?;
        let mut problems = Vec::new();
        let mut one =
            |step: &StepConfig, kind| match resolve_step(config, pipeline, catalog, step, kind) {
                Ok(p) => Some(p),
                Err(e) => {
                    problems.push(e);
                    None
                }
            };
        let extract = one(&pipeline.extract, PluginKind::Extractor);
        let transforms: Vec<_> = pipeline
            .transforms
            .iter()
            .map(|s| one(s, PluginKind::Transformer))
            .collect();
        let loads: Vec<_> = pipeline
            .loads
            .iter()
            .map(|s| one(s, PluginKind::Loader))
            .collect();
        let history = one(&pipeline.history, PluginKind::HistoryStore);
        for dir in &pipeline.grants.read_dirs {
            if !dir.host_path.is_dir() {
                problems.push(format!(
                    "{}:{}: pipeline \"{}\": granted directory {} does not exist",
                    config.file.display(),
                    pipeline.line,
                    pipeline.name,
                    dir.host_path.display()
                ));
            }
        }
        for (db, path) in &pipeline.grants.databases {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
                && !parent.is_dir()
            {
                problems.push(format!(
                    "{}:{}: pipeline \"{}\": database \"{db}\" is in {}, which does not exist",
                    config.file.display(),
                    pipeline.line,
                    pipeline.name,
                    parent.display()
                ));
            }
        }
        if !problems.is_empty() {
            return Err(problems.join("\n"));
        }
        Ok(Self {
            config: pipeline.clone(),
            extract: extract.expect("no problems"),
            transforms: transforms
                .into_iter()
                .map(|p| p.expect("no problems"))
                .collect(),
            loads: loads.into_iter().map(|p| p.expect("no problems")).collect(),
            history: history.expect("no problems"),
        })
    }

    /// Every plugin it uses, name → version (what a run record notes).
    pub fn plugin_versions(&self) -> BTreeMap<String, String> {
        std::iter::once(&self.extract)
            .chain(&self.transforms)
            .chain(&self.loads)
            .chain(std::iter::once(&self.history))
            .map(|p| (p.info.name.clone(), p.info.version.clone()))
            .collect()
    }

    /// A history-store instance for operator commands (checkpoints list/reset).
    pub async fn open_history(
        &self,
        runtime: &Runtime,
    ) -> Result<HistoryInstance, weir_runtime::PluginError> {
        let grants = Grants {
            read_dirs: Vec::new(),
            databases: self.config.grants.databases.clone(),
        };
        let mut history = runtime
            .history_store(
                &self.history,
                InstanceOptions {
                    site: CallSite {
                        plugin: self.history.label(),
                        pipeline: Some(self.config.name.clone()),
                        partition: None,
                        logs: None,
                    },
                    limits: &self.config.limits,
                    grants: &grants,
                    databases: Databases::new(self.config.grants.databases.clone())
                        .with_options(self.config.database_options.clone()),
                },
            )
            .await?;
        history.open(&self.config.history.config).await?;
        Ok(history)
    }
}

/// Shared by the workers of one run.
pub struct RunContext {
    pub runtime: Arc<Runtime>,
    pub run_id: String,
    pub pipeline: String,
    pub events: EventBus,
    cancelled: AtomicBool,
    cancel_notify: Notify,
}

/// Plugin log lines that become events, per plugin instance; the rest only go to the host log,
/// so a chatty plugin cannot flood the event log.
pub const MAX_LOG_EVENTS: u32 = 100;

/// Longest message of a `plugin_log` event, in bytes (the host log keeps the whole line).
const MAX_LOG_EVENT_BYTES: usize = 2_000;

impl RunContext {
    /// Where an instance of `plugin` (its name) logs: info, warn and error lines become
    /// `plugin_log` events of this run, up to [`MAX_LOG_EVENTS`], then one event saying the rest
    /// are in the host log only.
    pub fn log_sink(self: &Arc<Self>, plugin: &str, partition: Option<&str>) -> LogSink {
        let ctx = self.clone();
        let (plugin, partition) = (plugin.to_owned(), partition.map(str::to_owned));
        let sent = AtomicU32::new(0);
        LogSink(Arc::new(move |level, message| {
            let level = match level {
                tracing::Level::ERROR => "error",
                tracing::Level::WARN => "warn",
                tracing::Level::INFO => "info",
                _ => return,
            };
            let n = sent.fetch_add(1, Ordering::Relaxed);
            let message = match n.cmp(&MAX_LOG_EVENTS) {
                std::cmp::Ordering::Less => shorten(message, MAX_LOG_EVENT_BYTES),
                std::cmp::Ordering::Equal => format!(
                    "more than {MAX_LOG_EVENTS} log lines from this plugin instance; the rest are in the host log only"
                ),
                std::cmp::Ordering::Greater => return,
            };
            ctx.emit(
                partition.as_deref(),
                EventKind::PluginLog {
                    plugin: plugin.clone(),
                    level: level.to_owned(),
                    message,
                },
            );
        }))
    }

    /// Publish an event of this run.
    pub fn emit(&self, partition: Option<&str>, kind: EventKind) {
        self.events
            .emit(&self.pipeline, &self.run_id, partition, kind);
    }

    /// Ask the workers to stop at their next batch boundary.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
        self.cancel_notify.notify_waiters();
    }

    /// Resolves once the run is cancelled.
    pub async fn cancelled(&self) {
        loop {
            let notified = self.cancel_notify.notified();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }
}

/// How one partition ended.
#[derive(Debug, Clone)]
pub struct PartitionOutcome {
    pub partition: String,
    pub totals: Totals,
    pub error: Option<String>,
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub run_id: String,
    pub pipeline: String,
    pub partitions: Vec<PartitionOutcome>,
    pub totals: Totals,
    pub elapsed: Duration,
    /// Set when the run failed before or besides its workers (e.g. `partitions` failed).
    pub error: Option<String>,
}

impl RunSummary {
    /// Whether everything completed.
    pub fn succeeded(&self) -> bool {
        self.error.is_none() && self.partitions.iter().all(|p| p.error.is_none())
    }
}

/// A run id that sorts by time: `20261127T101500Z-3f9a`.
pub fn new_run_id() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z-{:04x}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        now.subsec_nanos() as u16 ^ std::process::id() as u16
    )
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (Howard Hinnant's algorithm).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// A run about to start: its context (for cancelling) and the pipeline.
pub struct Run {
    pub ctx: Arc<RunContext>,
    pipeline: Arc<ResolvedPipeline>,
}

impl Run {
    /// Prepare a run; nothing happens until [`Run::execute`].
    pub fn new(runtime: Arc<Runtime>, pipeline: Arc<ResolvedPipeline>, events: EventBus) -> Self {
        let ctx = Arc::new(RunContext {
            runtime,
            run_id: new_run_id(),
            pipeline: pipeline.config.name.clone(),
            events,
            cancelled: AtomicBool::new(false),
            cancel_notify: Notify::new(),
        });
        Self { ctx, pipeline }
    }

    /// Run every partition, up to `concurrency` at a time, each under its supervisor.
    pub async fn execute(self, trigger: &str) -> RunSummary {
        execute(self.ctx, self.pipeline, trigger).await
    }
}

/// Run a pipeline once (see [`Run`] to keep a handle for cancelling).
pub async fn run_pipeline(
    runtime: Arc<Runtime>,
    pipeline: Arc<ResolvedPipeline>,
    events: EventBus,
    trigger: &str,
) -> RunSummary {
    Run::new(runtime, pipeline, events).execute(trigger).await
}

/// Run one partition's worker until it completes, fails for good, or the run is cancelled.
async fn supervise(
    ctx: Arc<RunContext>,
    pipeline: Arc<ResolvedPipeline>,
    partition: weir_runtime::types::Partition,
) -> (Totals, Result<(), String>) {
    let seed = ctx
        .run_id
        .bytes()
        .chain(partition.id.bytes())
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
    let mut budget = RestartBudget::new(pipeline.config.restart.clone(), seed);
    // Rows committed by attempts that failed later still count: they are in the database.
    let mut totals = Totals::default();
    loop {
        let (attempt_totals, result) =
            run_worker(ctx.clone(), pipeline.clone(), partition.clone()).await;
        totals += attempt_totals;
        let error = match result {
            Ok(()) => {
                ctx.emit(
                    Some(&partition.id),
                    EventKind::WorkerCompleted {
                        rows_read: totals.rows_read,
                        rows_loaded: totals.rows_loaded,
                        rows_rejected: totals.rows_rejected,
                    },
                );
                return (totals, Ok(()));
            }
            Err(e) => e,
        };
        let fail = |message: String, retryable: bool, attempts: u32| {
            ctx.emit(
                Some(&partition.id),
                EventKind::WorkerFailed {
                    error: message.clone(),
                    retryable,
                    attempts,
                },
            );
            (totals, Err(message))
        };
        if matches!(error, WorkerError::Cancelled) {
            return cancelled(&ctx, &partition.id, totals);
        }
        if !error.is_retryable() {
            return fail(error.to_string(), false, budget.attempts());
        }
        let Some(delay) = budget.next_delay(Instant::now()) else {
            let policy = &pipeline.config.restart;
            let message = format!(
                "gave up after {} attempts (restart budget: {} restarts within {} s); last error: {error}",
                budget.attempts(),
                policy.max_restarts,
                policy.window.as_secs()
            );
            return fail(message, true, budget.attempts());
        };
        ctx.emit(
            Some(&partition.id),
            EventKind::WorkerRetrying {
                attempt: budget.attempts(),
                delay_ms: delay.as_millis() as u64,
                error: error.to_string(),
            },
        );
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = ctx.cancelled() => return cancelled(&ctx, &partition.id, totals),
        }
    }
}

/// `text` cut to at most `max` bytes (at a character boundary), marked when cut.
fn shorten(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes in all)", &text[..end], text.len())
}

/// The end of a worker stopped by cancelling its run (not a failure: nothing went wrong).
fn cancelled(ctx: &RunContext, partition: &str, totals: Totals) -> (Totals, Result<(), String>) {
    ctx.emit(
        Some(partition),
        EventKind::WorkerCancelled {
            rows_read: totals.rows_read,
            rows_loaded: totals.rows_loaded,
            rows_rejected: totals.rows_rejected,
        },
    );
    (totals, Err(WorkerError::Cancelled.to_string()))
}

async fn execute(
    ctx: Arc<RunContext>,
    pipeline: Arc<ResolvedPipeline>,
    trigger: &str,
) -> RunSummary {
    let started = Instant::now();
    let runtime = ctx.runtime.clone();
    let cfg = &pipeline.config;
    let mut summary = RunSummary {
        run_id: ctx.run_id.clone(),
        pipeline: cfg.name.clone(),
        partitions: Vec::new(),
        totals: Totals::default(),
        elapsed: Duration::ZERO,
        error: None,
    };

    let partitions = async {
        let mut extractor = runtime
            .extractor(
                &pipeline.extract,
                InstanceOptions {
                    site: CallSite {
                        plugin: pipeline.extract.label(),
                        pipeline: Some(cfg.name.clone()),
                        partition: None,
                        logs: Some(ctx.log_sink(&pipeline.extract.info.name, None)),
                    },
                    limits: &cfg.limits,
                    grants: &cfg.grants,
                    databases: Databases::default(),
                },
            )
            .await?;
        extractor.partitions(&cfg.extract.config).await
    }
    .await;
    let partitions = match partitions {
        Ok(p) => p,
        Err(e) => {
            let error = e.to_string();
            ctx.emit(
                None,
                EventKind::RunFailed {
                    error: error.clone(),
                    rows_read: 0,
                    rows_loaded: 0,
                    rows_rejected: 0,
                },
            );
            summary.error = Some(error);
            summary.elapsed = started.elapsed();
            return summary;
        }
    };
    ctx.emit(
        None,
        EventKind::RunStarted {
            trigger: trigger.to_owned(),
            partitions: partitions.len(),
            plugins: pipeline.plugin_versions(),
        },
    );

    let permits = Arc::new(Semaphore::new(cfg.concurrency));
    let mut workers = JoinSet::new();
    for partition in partitions {
        let (ctx, pipeline, permits) = (ctx.clone(), pipeline.clone(), permits.clone());
        workers.spawn(async move {
            let _permit = permits
                .acquire_owned()
                .await
                .expect("semaphore never closed");
            let id = partition.id.clone();
            let (totals, result) = supervise(ctx, pipeline, partition).await;
            PartitionOutcome {
                partition: id,
                totals,
                error: result.err(),
            }
        });
    }
    while let Some(joined) = workers.join_next().await {
        let outcome = joined.unwrap_or_else(|e| PartitionOutcome {
            partition: "?".into(),
            totals: Totals::default(),
            error: Some(format!("worker panicked: {e}")),
        });
        summary.totals += outcome.totals;
        summary.partitions.push(outcome);
    }
    summary
        .partitions
        .sort_by(|a, b| a.partition.cmp(&b.partition));
    summary.elapsed = started.elapsed();
    let t = summary.totals;
    if let Some(limit) = cfg.max_rejects
        && t.rows_rejected > limit
    {
        summary.error = Some(format!(
            "{} rows rejected, more than max_rejects = {limit}",
            t.rows_rejected
        ));
    }
    if ctx.is_cancelled() {
        summary.error.get_or_insert_with(|| "run cancelled".into());
        ctx.emit(
            None,
            EventKind::RunCancelled {
                rows_read: t.rows_read,
                rows_loaded: t.rows_loaded,
                rows_rejected: t.rows_rejected,
            },
        );
    } else if summary.succeeded() {
        ctx.emit(
            None,
            EventKind::RunCompleted {
                rows_read: t.rows_read,
                rows_loaded: t.rows_loaded,
                rows_rejected: t.rows_rejected,
                seconds: summary.elapsed.as_secs_f64(),
            },
        );
    } else {
        let failed = summary
            .partitions
            .iter()
            .filter(|p| p.error.is_some())
            .count();
        let error = summary.error.clone().unwrap_or_else(|| {
            format!("{failed} of {} partitions failed", summary.partitions.len())
        });
        ctx.emit(
            None,
            EventKind::RunFailed {
                error,
                rows_read: t.rows_read,
                rows_loaded: t.rows_loaded,
                rows_rejected: t.rows_rejected,
            },
        );
    }
    summary
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn plugin_log_lines_become_events_up_to_the_cap_then_one_notice() {
        let events = EventBus::new();
        let mut rx = events.subscribe();
        let ctx = Arc::new(RunContext {
            runtime: Arc::new(Runtime::new(None).unwrap()),
            run_id: "r1".into(),
            pipeline: "p".into(),
            events,
            cancelled: AtomicBool::new(false),
            cancel_notify: Notify::new(),
        });
        let LogSink(sink) = ctx.log_sink("chatty", Some("a.csv"));
        sink(tracing::Level::DEBUG, "debug lines stay in the host log");
        sink(tracing::Level::ERROR, &"x".repeat(5_000));
        for i in 0..(MAX_LOG_EVENTS + 50) {
            sink(tracing::Level::INFO, &format!("line {i}"));
        }
        let mut got = Vec::new();
        while let Ok(event) = rx.try_recv() {
            let EventKind::PluginLog {
                plugin,
                level,
                message,
            } = &event.kind
            else {
                panic!("{event:?}");
            };
            assert_eq!(
                (plugin.as_str(), event.partition.as_deref()),
                ("chatty", Some("a.csv"))
            );
            got.push((level.clone(), message.clone()));
        }
        assert_eq!(
            got.len() as u32,
            MAX_LOG_EVENTS + 1,
            "the cap, then one notice"
        );
        assert_eq!(got[0].0, "error");
        assert!(got[0].1.ends_with("… (5000 bytes in all)"), "{}", got[0].1);
        assert!(got[0].1.len() < MAX_LOG_EVENT_BYTES + 40);
        assert_eq!(got[1], ("info".to_owned(), "line 0".to_owned()));
        assert!(
            got.last()
                .unwrap()
                .1
                .contains("the rest are in the host log only")
        );
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(20_513), (2026, 3, 1));
    }
}
