//! The long-running service behind `weir serve` (docs/design.md, "Service mode"): it holds
//! the configuration, the runtime and plugins, the resolved pipelines, the event bus and the
//! runs in progress. The HTTP API is a thin layer over it.
//!
//! - this module: the state, triggering and cancelling runs, checkpoints, shutdown;
//! - `scheduler`: one task per scheduled pipeline, catch-up after downtime;
//! - `plugins`: the plugins folder watched while serving, and the snapshot swap;
//! - `cluster`: one host of several (`engine.cluster`): run leases, fires claimed once,
//!   heartbeats.
//!
//! Every event goes through the bus's tap to the state database (and to any observers, such
//! as metrics) before a subscriber sees it; run records are derived from those events by the
//! store (`events::to_record`), so the event log and the run table cannot drift.

mod cluster;
mod plugins;
mod scheduler;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::watch;
use tokio::task::JoinHandle;
use weir_runtime::{Catalog, CheckpointEntry, Plugin, Runtime};
use weir_schedule::Schedule;
use weir_store::StateStore;

use crate::config::{Config, PipelineConfig};
use crate::context::RunContext;
use crate::events::{EventBus, EventKind, EventTap, SyncEvent, to_record};
use crate::lock::{LockError, RunLocks};
use crate::pipeline::{DatabaseAccess, ResolvedPipeline};
use crate::run::{Run, new_run_id};
use cluster::Membership;

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
    /// On a cluster: its partitions are shared, each fenced by its own lease, so losing the
    /// run lease does not stop them (see `cluster`).
    shared: bool,
}

/// How a run of a clustered host was started.
#[derive(Debug, Clone, Copy, Default)]
struct Launched {
    /// Taken over from a host that stopped renewing its run lease.
    adopted: bool,
    /// Its partitions are shared by the hosts.
    shared: bool,
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
    /// Another process (a `weir run`, another `weir serve`) runs the pipeline.
    #[error(transparent)]
    Locked(#[from] LockError),
    /// Another host of the cluster runs the pipeline.
    #[error("pipeline \"{pipeline}\" is running on host \"{host}\" (run {run_id})")]
    RunningOnHost {
        pipeline: String,
        run_id: String,
        host: String,
    },
    /// An operator asked this host to drain.
    #[error(
        "host \"{host}\" is draining (weir cluster drain): it takes no new runs; trigger on another host"
    )]
    Draining { host: String },
    /// The cluster database could not be asked.
    #[error("{0}")]
    Cluster(String),
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
    store: Arc<dyn StateStore>,
    locks: RunLocks,
    /// Set when this host is one of a cluster.
    cluster: Option<Membership>,
    /// Held while a run is being started: the checks, the lease claim (which awaits the
    /// database) and the insert into `active` happen as one step.
    starting: tokio::sync::Mutex<()>,
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
        store: Arc<dyn StateStore>,
        observers: Vec<EventTap>,
    ) -> Arc<Self> {
        Self::with_cluster(config, runtime, catalog, store, observers, None)
    }

    /// [`Service::new`] for one host of a cluster (`store` is then the cluster's); call
    /// [`Service::start_heartbeat`] once serving.
    pub fn with_cluster(
        config: Config,
        runtime: Arc<Runtime>,
        catalog: Catalog,
        store: Arc<dyn StateStore>,
        observers: Vec<EventTap>,
        cluster: Option<Arc<weir_cluster::Cluster>>,
    ) -> Arc<Self> {
        let tap_store = store.clone();
        let tap: EventTap = Arc::new(move |event: &SyncEvent| {
            tap_store.record(to_record(event));
            for observer in &observers {
                observer(event);
            }
        });
        let events = EventBus::with_tap(store.first_bus_id(), Some(tap));
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
        let config_lock_dir = config.engine.lock_dir.clone();
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
            locks: RunLocks::new(&config_lock_dir),
            cluster: cluster.map(Membership::new),
            starting: tokio::sync::Mutex::new(()),
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

    /// The event log and run records (SQLite, or the cluster's PostgreSQL).
    pub fn store(&self) -> &Arc<dyn StateStore> {
        &self.store
    }

    /// The cluster this host is one of, if any.
    pub fn cluster(&self) -> Option<&Arc<weir_cluster::Cluster>> {
        self.cluster.as_ref().map(|m| &m.cluster)
    }

    /// Keep this host's registration and leases alive, and share the cluster's runs: adopt
    /// the runs of hosts that stopped, help with other hosts' partitions (a cluster host
    /// only; alone, it does nothing).
    pub fn start_heartbeat(self: &Arc<Self>) {
        self.start_heartbeat_task();
        self.start_partition_poller();
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
    /// In a cluster the pipeline's run lease is claimed first: a run on another host refuses
    /// the trigger the same way.
    pub async fn trigger(
        self: &Arc<Self>,
        pipeline: &str,
        trigger: &str,
    ) -> Result<String, ServiceError> {
        let _starting = self.starting.lock().await;
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
        if *self.shutdown.borrow() {
            return Err(ServiceError::ShuttingDown);
        }
        let running = self.active().get(pipeline).map(|r| r.info.run_id.clone());
        if let Some(run_id) = running {
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
        let lock = match self.locks.try_lock(pipeline) {
            Ok(lock) => lock,
            Err(e) => {
                self.events.publish(
                    Some(pipeline),
                    None,
                    None,
                    EventKind::RunSkipped {
                        reason: format!("{trigger} trigger: {e}"),
                    },
                );
                return Err(e.into());
            }
        };
        let mut run_id = new_run_id();
        let mut lease = None;
        let mut adopted_from = None;
        if let Some(membership) = &self.cluster {
            let (claimed, adopted) = self
                .claim_run_lease(membership, pipeline, &run_id, trigger)
                .await?;
            // An adopted run keeps its id.
            run_id = claimed.run_id.clone();
            adopted_from = adopted;
            lease = Some(claimed);
        }
        let clustered = match (&self.cluster, &lease) {
            (Some(membership), Some(lease)) => {
                Some(membership.cluster_run(lease.clone(), adopted_from, self, &resolved))
            }
            _ => None,
        };
        let mut run = Run::with_id(
            self.runtime.clone(),
            resolved,
            self.events.clone(),
            lock,
            run_id,
        );
        let launched = Launched {
            adopted: clustered.as_ref().is_some_and(|c| c.adopted_from.is_some()),
            shared: clustered.as_ref().is_some_and(|c| c.share),
        };
        if let Some(clustered) = clustered {
            run = run.on_cluster(clustered);
        }
        self.launch(pipeline, run, lease, trigger, launched).await
    }

    /// Put a run in `active` and start it; its run lease (on a cluster) is released at its
    /// end, or handed over if it goes on elsewhere.
    async fn launch(
        self: &Arc<Self>,
        pipeline: &str,
        run: Run,
        lease: Option<weir_cluster::Lease>,
        trigger: &str,
        launched: Launched,
    ) -> Result<String, ServiceError> {
        let run_id = run.ctx.run_id.clone();
        let ctx = run.ctx.clone();
        let service = self.clone();
        let (name, id, how) = (pipeline.to_owned(), run_id.clone(), trigger.to_owned());
        let mut active = self.active();
        // Shutdown may have begun while the lease was claimed: it waits only for the runs it
        // found, so this one must not start.
        if *self.shutdown.borrow() {
            if let (Some(membership), Some(lease)) = (&self.cluster, lease) {
                drop(active);
                if launched.adopted {
                    // That run goes on: another host adopts it.
                    membership.hand_over(lease).await;
                } else {
                    membership.release(lease).await;
                }
            }
            return Err(ServiceError::ShuttingDown);
        }
        // The entry is inserted before the lock is released, so the task's removal (which
        // takes the lock) always comes after it.
        let task = tokio::spawn(async move {
            let summary = run.execute(&how).await;
            if let (Some(membership), Some(lease)) = (&service.cluster, lease) {
                if summary.handed_over {
                    membership.hand_over(lease).await;
                } else {
                    membership.release(lease).await;
                }
            }
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
                shared: launched.shared,
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

    /// The checkpoints the pipeline's history store keeps. Read-only: a GET writes nothing,
    /// so a history store that would have to create its table first (it has never saved a
    /// checkpoint in an existing file) is refused the write, and that means none.
    pub async fn checkpoints(&self, pipeline: &str) -> Result<Vec<CheckpointEntry>, ServiceError> {
        let resolved = self.runnable(pipeline)?;
        let mut history = match resolved
            .open_history(&self.runtime, DatabaseAccess::ReadOnly)
            .await
        {
            Ok(history) => history,
            Err(e) if e.kind == weir_runtime::FaultKind::AccessDenied => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        Ok(history.entries(Some(pipeline)).await?)
    }

    /// Forget the pipeline's checkpoints (or one partition's). Refused while it runs, here or
    /// in another process: the reset holds the pipeline's run lock, so no run can start
    /// between the check and the reset (and a run's next batch would fail its checkpoint
    /// compare-and-set rather than save over the reset).
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
        let _lock = self.locks.try_lock(pipeline)?;
        let mut history = resolved
            .open_history(&self.runtime, DatabaseAccess::Run)
            .await?;
        Ok(history.reset(pipeline, partition).await?)
    }

    /// Stop: no new runs; cancel the runs in progress (they stop at a batch boundary, so a
    /// batch is either committed or not written at all) and wait for them; flush the event log.
    pub async fn shutdown(&self) {
        self.shutdown.send_replace(true);
        if let Some(membership) = &self.cluster {
            // Partitions helped with stop at their next batch boundary too (awaited below).
            membership.cancel_helping();
        }
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
        if let Some(membership) = &self.cluster {
            // Partitions helped with here go back to the queue for the other hosts.
            membership.stop_helping().await;
        }
        if let Some(membership) = &self.cluster
            && let Err(e) = membership.cluster.leave().await
        {
            tracing::warn!("cannot record leaving the cluster: {e}");
        }
        self.store.flush().await;
        self.closed.send_replace(true);
    }
}

/// `plugin_loaded` for a plugin put in service (at startup or when its file appeared).
pub(crate) fn loaded_event(plugin: &Plugin) -> EventKind {
    EventKind::PluginLoaded {
        plugin: plugin.info.name.clone(),
        version: plugin.info.version.clone(),
        kind: plugin.kind.to_string(),
        file: plugin.file.display().to_string(),
        hash: plugin.hash.clone(),
    }
}
