//! The long-running service behind `weir serve` (DESIGN §7–§8): it holds the configuration,
//! the runtime and plugins, the resolved pipelines, the event bus and the runs in progress,
//! runs the scheduler, and watches the plugins folder. The HTTP API is a thin layer over it.
//!
//! Plugins can change while serving. The catalog and the pipelines resolved against it form
//! one [`Plugins`] snapshot, swapped whole when a file in the plugins folder changes: a run
//! takes the resolved pipeline (and so the `Arc`s of its plugins) when it starts and keeps
//! them to the end, so runs in progress finish on the version they started with.
//!
//! Every event goes through the bus's tap to the state database (and to any observers, such
//! as metrics) before a subscriber sees it; run records are derived from those events by the
//! store, in one place ([`to_record`]), so the event log and the run table cannot drift.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use weir_runtime::{Catalog, CheckpointEntry, FileEvent, Plugin, PluginChange, Runtime};
use weir_schedule::Schedule;
use weir_store::{PartitionStatus, Record, RunChange, RunStatus, Store, StoredEvent, Totals};

use crate::config::{CatchUp, Config, PipelineConfig};
use crate::events::{EventBus, EventKind, EventTap, SyncEvent};
use crate::run::{ResolvedPipeline, Run, RunContext};

/// A pipeline as the service knows it.
pub struct PipelineEntry {
    pub config: PipelineConfig,
    /// Its parsed schedule, if it has one (config validation already parsed it once).
    pub schedule: Option<Schedule>,
}

/// The plugins in service and every pipeline resolved against them; replaced whole when the
/// plugins folder changes.
pub struct Plugins {
    pub catalog: Catalog,
    /// Pipeline name → its plugins, or why they could not be resolved (the pipeline then does
    /// not run, but is still listed, with the reason).
    pub resolved: BTreeMap<String, Result<Arc<ResolvedPipeline>, String>>,
}

impl Plugins {
    fn resolve(config: &Config, catalog: Catalog) -> Self {
        let resolved = config
            .pipelines
            .iter()
            .map(|p| {
                let resolved = ResolvedPipeline::resolve(config, &p.name, &catalog).map(Arc::new);
                (p.name.clone(), resolved)
            })
            .collect();
        Self { catalog, resolved }
    }

    /// The pipeline's plugins, or why it cannot run.
    pub fn resolved(&self, pipeline: &str) -> Option<&Result<Arc<ResolvedPipeline>, String>> {
        self.resolved.get(pipeline)
    }
}

/// A run in progress.
#[derive(Debug, Clone)]
pub struct ActiveRunInfo {
    pub run_id: String,
    pub trigger: String,
    pub started: SystemTime,
}

struct ActiveRun {
    info: ActiveRunInfo,
    ctx: Arc<RunContext>,
    task: Option<JoinHandle<()>>,
}

/// Why the service refused a request. The API maps each case to a status code.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("no pipeline named \"{0}\"")]
    UnknownPipeline(String),
    #[error("pipeline \"{pipeline}\" cannot run: {reason}")]
    InvalidPipeline { pipeline: String, reason: String },
    #[error("pipeline \"{pipeline}\" is running (run {run_id})")]
    AlreadyRunning { pipeline: String, run_id: String },
    #[error("the engine is shutting down")]
    ShuttingDown,
    #[error(transparent)]
    Plugin(#[from] weir_runtime::PluginError),
}

/// The service.
pub struct Service {
    config: Config,
    runtime: Arc<Runtime>,
    plugins: RwLock<Arc<Plugins>>,
    pipelines: Vec<PipelineEntry>,
    events: EventBus,
    store: Arc<Store>,
    active: Mutex<BTreeMap<String, ActiveRun>>,
    /// Set when shutdown begins: no new runs.
    shutdown: watch::Sender<bool>,
    /// Set when shutdown is done (runs stopped, events on disk): event streams end.
    closed: watch::Sender<bool>,
    started: Instant,
}

impl Service {
    /// Wire the bus to the store (ids continue after the newest stored event) and to
    /// `observers`, announce the engine and its plugins, and resolve every pipeline. Nothing
    /// runs until [`Service::start_scheduler`] or [`Service::trigger`].
    pub fn new(
        config: Config,
        runtime: Arc<Runtime>,
        catalog: Catalog,
        store: Arc<Store>,
        observers: Vec<EventTap>,
    ) -> Arc<Self> {
        let tap_store = store.clone();
        let tap: EventTap = Arc::new(move |event: &SyncEvent| {
            tap_store.record(to_record(event));
            for observer in &observers {
                observer(event);
            }
        });
        let events = EventBus::with_tap(store.last_event_id() + 1, Some(tap));
        events.publish(
            None,
            None,
            None,
            EventKind::EngineStarted {
                version: env!("CARGO_PKG_VERSION").to_owned(),
                pipelines: config.pipelines.len(),
            },
        );
        for plugin in catalog.plugins.values() {
            events.publish(None, None, None, loaded_event(plugin));
        }
        for rejected in &catalog.rejected {
            events.publish(
                None,
                None,
                None,
                EventKind::PluginRejected {
                    file: rejected.file.display().to_string(),
                    reason: rejected.reason.clone(),
                    kept_version: None,
                },
            );
        }
        let plugins = Plugins::resolve(&config, catalog);
        for (name, resolved) in &plugins.resolved {
            if let Err(reason) = resolved {
                tracing::error!(pipeline = name, "pipeline will not run: {reason}");
            }
        }
        let pipelines = config
            .pipelines
            .iter()
            .map(|p| PipelineEntry {
                config: p.clone(),
                schedule: p
                    .schedule
                    .as_deref()
                    .and_then(|expr| Schedule::parse(expr, p.timezone.as_deref()).ok()),
            })
            .collect();
        Arc::new(Self {
            config,
            runtime,
            plugins: RwLock::new(Arc::new(plugins)),
            pipelines,
            events,
            store,
            active: Mutex::default(),
            shutdown: watch::Sender::new(false),
            closed: watch::Sender::new(false),
            started: Instant::now(),
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The plugins in service now, and the pipelines resolved against them.
    pub fn plugins(&self) -> Arc<Plugins> {
        self.plugins
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn events(&self) -> &EventBus {
        &self.events
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Every pipeline, in config order.
    pub fn pipelines(&self) -> &[PipelineEntry] {
        &self.pipelines
    }

    pub fn pipeline(&self, name: &str) -> Option<&PipelineEntry> {
        self.pipelines.iter().find(|p| p.config.name == name)
    }

    fn active(&self) -> MutexGuard<'_, BTreeMap<String, ActiveRun>> {
        self.active.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The run in progress of a pipeline.
    pub fn active_run(&self, pipeline: &str) -> Option<ActiveRunInfo> {
        self.active().get(pipeline).map(|r| r.info.clone())
    }

    /// How many runs are in progress.
    pub fn active_count(&self) -> usize {
        self.active().len()
    }

    /// Becomes `true` once shutdown is complete: the runs have stopped and their last
    /// events are on disk (event streams end on it, after delivering those events).
    pub fn closed_signal(&self) -> watch::Receiver<bool> {
        self.closed.subscribe()
    }

    /// The pipeline resolved against the plugins in service now.
    fn runnable(&self, name: &str) -> Result<Arc<ResolvedPipeline>, ServiceError> {
        self.plugins()
            .resolved(name)
            .ok_or_else(|| ServiceError::UnknownPipeline(name.to_owned()))?
            .clone()
            .map_err(|reason| ServiceError::InvalidPipeline {
                pipeline: name.to_owned(),
                reason,
            })
    }

    /// Start a run of `pipeline` now, unless one is in progress: then, by the overlap policy
    /// `skip`, emit `RunSkipped` and refuse. Returns the new run's id at once; the run goes on
    /// in the background and reports through events.
    pub fn trigger(
        self: &Arc<Self>,
        pipeline: &str,
        trigger: &str,
    ) -> Result<String, ServiceError> {
        let resolved = match self.runnable(pipeline) {
            Ok(resolved) => resolved,
            Err(e @ ServiceError::InvalidPipeline { .. }) => {
                // Said as an event too: a scheduled trigger has no caller to tell.
                self.events.publish(
                    Some(pipeline),
                    None,
                    None,
                    EventKind::RunSkipped {
                        reason: format!("{trigger} trigger: {e}"),
                    },
                );
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        let mut active = self.active();
        if *self.shutdown.borrow() {
            return Err(ServiceError::ShuttingDown);
        }
        if let Some(running) = active.get(pipeline) {
            let run_id = running.info.run_id.clone();
            self.events.publish(
                Some(pipeline),
                None,
                None,
                EventKind::RunSkipped {
                    reason: format!("{trigger} trigger: run {run_id} is still running"),
                },
            );
            return Err(ServiceError::AlreadyRunning {
                pipeline: pipeline.to_owned(),
                run_id,
            });
        }
        let run = Run::new(self.runtime.clone(), resolved, self.events.clone());
        let ctx = run.ctx.clone();
        let run_id = ctx.run_id.clone();
        let service = self.clone();
        let (name, id, how) = (pipeline.to_owned(), run_id.clone(), trigger.to_owned());
        // The entry is inserted before the lock is released, so the task's removal (which
        // takes the lock) always comes after it.
        let task = tokio::spawn(async move {
            run.execute(&how).await;
            let mut active = service.active();
            if active.get(&name).is_some_and(|r| r.info.run_id == id) {
                active.remove(&name);
            }
        });
        active.insert(
            pipeline.to_owned(),
            ActiveRun {
                info: ActiveRunInfo {
                    run_id: run_id.clone(),
                    trigger: trigger.to_owned(),
                    started: SystemTime::now(),
                },
                ctx,
                task: Some(task),
            },
        );
        Ok(run_id)
    }

    /// Ask a run in progress to stop at its next batch boundary; returns its pipeline, or
    /// `None` if no run with that id is in progress.
    pub fn cancel(&self, run_id: &str) -> Option<String> {
        let active = self.active();
        let (pipeline, run) = active.iter().find(|(_, r)| r.info.run_id == run_id)?;
        run.ctx.cancel();
        Some(pipeline.clone())
    }

    /// The checkpoints the pipeline's history store keeps.
    pub async fn checkpoints(&self, pipeline: &str) -> Result<Vec<CheckpointEntry>, ServiceError> {
        let resolved = self.runnable(pipeline)?;
        let mut history = resolved.open_history(&self.runtime).await?;
        Ok(history.entries(Some(pipeline)).await?)
    }

    /// Forget the pipeline's checkpoints (or one partition's). Refused while it runs: the run
    /// would save its next checkpoint right over the reset.
    pub async fn reset_checkpoints(
        &self,
        pipeline: &str,
        partition: Option<&str>,
    ) -> Result<u32, ServiceError> {
        let resolved = self.runnable(pipeline)?;
        if let Some(run) = self.active_run(pipeline) {
            return Err(ServiceError::AlreadyRunning {
                pipeline: pipeline.to_owned(),
                run_id: run.run_id,
            });
        }
        let mut history = resolved.open_history(&self.runtime).await?;
        Ok(history.reset(pipeline, partition).await?)
    }

    /// Start one scheduler task per pipeline with a schedule. Each first starts a catch-up
    /// run if a fire was missed since the pipeline's last recorded run (unless
    /// `catch_up = "skip"`), then sleeps until each next fire time. A pipeline that cannot run
    /// when its time comes (a plugin it needs is missing) skips that fire with a `RunSkipped`
    /// event saying why; a plugin dropped in later makes the next fire run.
    pub fn start_scheduler(self: &Arc<Self>) {
        for entry in &self.pipelines {
            let Some(schedule) = &entry.schedule else {
                continue;
            };
            let service = self.clone();
            let (name, schedule) = (entry.config.name.clone(), schedule.clone());
            let catch_up = entry.config.catch_up;
            tokio::spawn(async move { service.schedule_loop(name, schedule, catch_up).await });
        }
    }

    async fn schedule_loop(self: Arc<Self>, name: String, schedule: Schedule, catch_up: CatchUp) {
        let mut shutdown = self.shutdown.subscribe();
        let now = now_utc();
        if catch_up == CatchUp::Once {
            match self.store.last_run(&name) {
                Ok(Some(last)) => {
                    let last_start =
                        DateTime::from_timestamp_millis(last.started_ms).unwrap_or(now);
                    if schedule.missed_since(last_start, now) {
                        tracing::info!(
                            pipeline = name,
                            "a scheduled run was missed; catching up once"
                        );
                        self.fire(&name, "catch-up");
                    }
                }
                // Never ran: nothing was missed that we know of.
                Ok(None) => {}
                Err(e) => tracing::error!(pipeline = name, "cannot check for missed runs: {e:#}"),
            }
        }
        let mut after = now;
        while let Some(next) = schedule.next_after(after) {
            let wait = (next - now_utc()).to_std().unwrap_or_default();
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.wait_for(|stopping| *stopping) => return,
            }
            self.fire(&name, "schedule");
            // After a stall (suspend, clock jump) fires in the past are skipped, not run in a
            // burst: catching up is the catch-up policy's job, at startup.
            after = next.max(now_utc());
        }
    }

    fn fire(self: &Arc<Self>, pipeline: &str, trigger: &str) {
        match self.trigger(pipeline, trigger) {
            // Each of these is already said by an event (or is shutdown).
            Ok(_)
            | Err(
                ServiceError::AlreadyRunning { .. }
                | ServiceError::InvalidPipeline { .. }
                | ServiceError::ShuttingDown,
            ) => {}
            Err(e) => tracing::error!(pipeline, "{trigger} run not started: {e}"),
        }
    }

    /// Watch the plugins folder (DESIGN §5: drop-in plugins): a new or changed `.wasm` file,
    /// once written whole, is validated and compiled and becomes the version new runs use; one
    /// that fails never replaces a working version; a deleted one is taken out of service.
    /// Each change is an event. Ends at shutdown.
    pub fn watch_plugins(self: &Arc<Self>) -> anyhow::Result<()> {
        let dir = self.config.engine.plugins_dir.clone();
        let mut files = weir_runtime::watch_dir(&dir, weir_runtime::SETTLE).map_err(|e| {
            anyhow::anyhow!("cannot watch the plugins folder {}: {e}", dir.display())
        })?;
        let service = self.clone();
        let mut shutdown = self.shutdown.subscribe();
        tokio::spawn(async move {
            loop {
                let event = tokio::select! {
                    event = files.recv() => event,
                    _ = shutdown.wait_for(|stopping| *stopping) => return,
                };
                match event {
                    Some(FileEvent::Changed(path)) => service.plugin_file_changed(&path).await,
                    Some(FileEvent::Removed(path)) => service.plugin_file_removed(&path),
                    None => return,
                }
            }
        });
        Ok(())
    }

    /// Load `file` and fold it into the plugins in service.
    pub async fn plugin_file_changed(&self, file: &Path) {
        let outcome = self.runtime.load_file(file).await;
        // Only the watcher task changes the snapshot, so nothing changes it between this read
        // and the swap below.
        let mut catalog = self.plugins().catalog.clone();
        let change = catalog.apply_load(file, outcome);
        self.swap_catalog(catalog, change);
    }

    /// Take the plugin loaded from `file` out of service (runs using it finish with it).
    pub fn plugin_file_removed(&self, file: &Path) {
        let mut catalog = self.plugins().catalog.clone();
        match catalog.apply_removal(file) {
            Some(change) => self.swap_catalog(catalog, change),
            // A file that never loaded: only its rejection is forgotten.
            None => {
                self.swap_catalog_quietly(catalog);
            }
        }
    }

    fn swap_catalog_quietly(&self, catalog: Catalog) -> (Arc<Plugins>, Arc<Plugins>) {
        let new = Arc::new(Plugins::resolve(&self.config, catalog));
        let mut current = self.plugins.write().unwrap_or_else(|p| p.into_inner());
        let old = std::mem::replace(&mut *current, new.clone());
        (old, new)
    }

    /// Put `catalog` in service, then say what changed: the plugin event first, then each
    /// pipeline that became unable (or able again) to run.
    fn swap_catalog(&self, catalog: Catalog, change: PluginChange) {
        let path = |p: &Path| p.display().to_string();
        let kind = match change {
            PluginChange::Loaded(plugin) => loaded_event(&plugin),
            PluginChange::Replaced { old, new } => EventKind::PluginReplaced {
                plugin: new.info.name.clone(),
                kind: new.kind.to_string(),
                file: path(&new.file),
                old_version: old.info.version.clone(),
                new_version: new.info.version.clone(),
                old_hash: old.hash.clone(),
                new_hash: new.hash.clone(),
            },
            PluginChange::Rejected { file, reason, kept } => EventKind::PluginRejected {
                file: path(&file),
                reason,
                kept_version: kept.map(|p| p.info.version.clone()),
            },
            PluginChange::Removed(plugin) => EventKind::PluginRemoved {
                used_by: self.pipelines_using(&plugin.info.name),
                plugin: plugin.info.name.clone(),
                version: plugin.info.version.clone(),
                kind: plugin.kind.to_string(),
                file: path(&plugin.file),
            },
            // The same content again: nothing to swap, nothing to say.
            PluginChange::Unchanged(_) => return,
        };
        let (old, new) = self.swap_catalog_quietly(catalog);
        self.events.publish(None, None, None, kind);
        for (name, now) in &new.resolved {
            let before = old.resolved(name);
            match (before.map(Result::is_ok), now) {
                (Some(true), Err(error)) => self.events.publish(
                    Some(name),
                    None,
                    None,
                    EventKind::PipelineInvalid {
                        error: error.clone(),
                    },
                ),
                (Some(false), Ok(_)) => {
                    self.events
                        .publish(Some(name), None, None, EventKind::PipelineValid {})
                }
                _ => {}
            }
        }
    }

    /// The pipelines whose configuration names the plugin.
    pub fn pipelines_using(&self, plugin: &str) -> Vec<String> {
        self.config.pipelines_using(plugin)
    }

    /// Stop: no new runs; cancel the runs in progress (they stop at a batch boundary, so a
    /// batch is either committed or not written at all) and wait for them; flush the event log.
    pub async fn shutdown(&self) {
        self.shutdown.send_replace(true);
        let tasks: Vec<JoinHandle<()>> = self
            .active()
            .values_mut()
            .filter_map(|run| {
                run.ctx.cancel();
                run.task.take()
            })
            .collect();
        for task in tasks {
            if let Err(e) = task.await {
                tracing::error!("run task failed: {e}");
            }
        }
        self.store.flush().await;
        self.closed.send_replace(true);
    }
}

/// `plugin_loaded` for a plugin put in service (at startup or when its file appeared).
fn loaded_event(plugin: &Plugin) -> EventKind {
    EventKind::PluginLoaded {
        plugin: plugin.info.name.clone(),
        version: plugin.info.version.clone(),
        kind: plugin.kind.to_string(),
        file: plugin.file.display().to_string(),
        hash: plugin.hash.clone(),
    }
}

/// The wall clock as chrono sees it (chrono's own `clock` feature is not built).
fn now_utc() -> DateTime<Utc> {
    SystemTime::now().into()
}

/// Milliseconds since the Unix epoch.
pub fn unix_ms(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// An event as the store keeps it, with what it changes in the run records. The one mapping
/// from events to run records.
pub fn to_record(event: &SyncEvent) -> Record {
    let totals = |rows_read, rows_loaded, rows_rejected| Totals {
        rows_read,
        rows_loaded,
        rows_rejected,
    };
    let change = match &event.kind {
        EventKind::RunStarted {
            trigger,
            partitions,
            plugins,
        } => RunChange::Started {
            trigger: trigger.clone(),
            partitions: *partitions as u64,
            plugins: plugins.clone(),
        },
        EventKind::WorkerStarted { checkpoint } => RunChange::WorkerStarted {
            checkpoint: checkpoint.clone(),
        },
        EventKind::BatchCommitted {
            rows_in,
            rows_out,
            rejected,
            bytes,
            checkpoint,
            ..
        } => RunChange::Batch {
            rows_read: *rows_in,
            rows_loaded: *rows_out,
            rows_rejected: *rejected,
            bytes: *bytes,
            checkpoint: checkpoint.clone(),
        },
        EventKind::WorkerCompleted {
            rows_read,
            rows_loaded,
            rows_rejected,
        } => RunChange::WorkerEnded {
            status: PartitionStatus::Completed,
            error: None,
            totals: Some(totals(*rows_read, *rows_loaded, *rows_rejected)),
        },
        EventKind::WorkerCancelled {
            rows_read,
            rows_loaded,
            rows_rejected,
        } => RunChange::WorkerEnded {
            status: PartitionStatus::Cancelled,
            error: None,
            totals: Some(totals(*rows_read, *rows_loaded, *rows_rejected)),
        },
        EventKind::WorkerFailed { error, .. } => RunChange::WorkerEnded {
            status: PartitionStatus::Failed,
            error: Some(error.clone()),
            totals: None,
        },
        EventKind::RunCompleted {
            rows_read,
            rows_loaded,
            rows_rejected,
            ..
        } => RunChange::Ended {
            status: RunStatus::Completed,
            error: None,
            totals: totals(*rows_read, *rows_loaded, *rows_rejected),
        },
        EventKind::RunFailed {
            error,
            rows_read,
            rows_loaded,
            rows_rejected,
        } => RunChange::Ended {
            status: RunStatus::Failed,
            error: Some(error.clone()),
            totals: totals(*rows_read, *rows_loaded, *rows_rejected),
        },
        EventKind::RunCancelled {
            rows_read,
            rows_loaded,
            rows_rejected,
        } => RunChange::Ended {
            status: RunStatus::Cancelled,
            error: Some("run cancelled".into()),
            totals: totals(*rows_read, *rows_loaded, *rows_rejected),
        },
        #[allow(
            unreachable_patterns,
            reason = "EventKind grows; new kinds change no run"
        )]
        _ => RunChange::None,
    };
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
        change,
    }
}
