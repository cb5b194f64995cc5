//! A service that is one host of a cluster (`engine.cluster`): the run lease makes one run per
//! pipeline cluster-wide, a cron fire is claimed once whichever host sees it first, and a
//! heartbeat keeps this host registered and its leases renewed. The partitions of a run are
//! shared (`crate::shared`): a poller claims partitions of runs other hosts hold, and adopts
//! the run of a host whose run lease lapsed (it died or was cut off), which then goes on here
//! from where its partitions are. A run whose lease is lost is cancelled here; a partition
//! whose lease is lost is refused its next commit by the fence.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use weir_cluster::{Cluster, ClusterError, Lease, RunClaim};

use super::{Service, ServiceError};
use crate::context::RunContext;
use crate::events::EventKind;
use crate::pipeline::ResolvedPipeline;
use crate::run::{ClusterRun, Run};
use crate::shared::{self, LeaseBook, SharedRun, Until};

/// Partitions of another host's run that this host works on.
struct Helping {
    run_id: String,
    ctx: Arc<RunContext>,
    task: JoinHandle<()>,
}

/// This host's membership: the cluster, the run leases it holds (by pipeline), the partition
/// leases, and the runs of other hosts it helps with.
pub(super) struct Membership {
    pub(super) cluster: Arc<Cluster>,
    held: Mutex<BTreeMap<String, Lease>>,
    book: LeaseBook,
    helping: Mutex<BTreeMap<String, Helping>>,
    /// An operator asked this host to drain (`weir cluster drain`): it takes no new runs or
    /// partitions, and leaves the cron fires to the other hosts; work in progress finishes.
    draining: Arc<AtomicBool>,
}

impl Membership {
    pub(super) fn new(cluster: Arc<Cluster>) -> Self {
        Self {
            cluster,
            held: Mutex::default(),
            book: LeaseBook::default(),
            helping: Mutex::default(),
            draining: Arc::new(AtomicBool::new(false)),
        }
    }

    fn held(&self) -> MutexGuard<'_, BTreeMap<String, Lease>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn helping(&self) -> MutexGuard<'_, BTreeMap<String, Helping>> {
        self.helping.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What a run of this host shares its partitions with.
    fn shared(&self, service: &Service) -> SharedRun {
        SharedRun {
            cluster: self.cluster.clone(),
            book: self.book.clone(),
            stopping: service.shutdown.subscribe(),
            draining: self.draining.clone(),
        }
    }

    /// A run of `pipeline` on this host under the run lease `lease` (`adopted_from`: taken
    /// over).
    pub(super) fn cluster_run(
        &self,
        lease: Lease,
        adopted_from: Option<Option<String>>,
        service: &Service,
        pipeline: &ResolvedPipeline,
    ) -> ClusterRun {
        ClusterRun {
            shared: self.shared(service),
            lease,
            adopted_from,
            share: shared::can_share(pipeline),
        }
    }

    /// Let the run lease lapse now: the run goes on, and another host adopts it.
    pub(super) async fn hand_over(&self, lease: Lease) {
        self.held().remove(&lease.pipeline);
        if let Err(e) = self.cluster.hand_over_run(&lease).await {
            tracing::warn!(
                pipeline = lease.pipeline,
                "cannot hand the run over; its lease lapses by itself: {e}"
            );
        }
    }

    /// Ask the work on other hosts' runs to stop (shutting down): the partitions stop at a
    /// batch boundary and go back to the queue.
    pub(super) fn cancel_helping(&self) {
        for help in self.helping().values() {
            help.ctx.cancel();
        }
    }

    /// [`Membership::cancel_helping`], and wait for it.
    pub(super) async fn stop_helping(&self) {
        let helping: Vec<Helping> = std::mem::take(&mut *self.helping()).into_values().collect();
        for help in &helping {
            help.ctx.cancel();
        }
        for help in helping {
            if let Err(e) = help.task.await {
                tracing::error!(run = help.run_id, "helping task failed: {e}");
            }
        }
    }

    /// Give a run lease back at the end of its run (it lapses by itself if this fails).
    pub(super) async fn release(&self, lease: Lease) {
        {
            let mut held = self.held();
            if held.get(&lease.pipeline) == Some(&lease) {
                held.remove(&lease.pipeline);
            }
        }
        // Tried until it works or the lease would have lapsed anyway: a lapsed lease of a run
        // that ended would be adopted, and the run said to end twice.
        let started = Instant::now();
        let mut pause = Duration::from_millis(100);
        loop {
            match self.cluster.release_run(&lease).await {
                Ok(true) => return,
                Ok(false) => {
                    tracing::warn!(
                        pipeline = lease.pipeline,
                        run = lease.run_id,
                        "the run lease had already passed to another host when the run ended"
                    );
                    return;
                }
                Err(e) if started.elapsed() + pause < self.cluster.lease_duration() => {
                    tracing::warn!(
                        pipeline = lease.pipeline,
                        "cannot release the run lease yet (trying again): {e}"
                    );
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(2));
                }
                Err(e) => {
                    tracing::error!(
                        pipeline = lease.pipeline,
                        run = lease.run_id,
                        "cannot release the run lease; it lapses, and another host may adopt the \
                         ended run: {e}"
                    );
                    return;
                }
            }
        }
    }
}

impl Service {
    /// Take the pipeline's run lease for the run `run_id`, or adopt the run of a host that
    /// stopped renewing its run lease (`Some(previous holder)`: the run goes on here under its
    /// own id, from where its partitions are). Another host's live run refuses the trigger,
    /// said by a `RunSkipped` event as a run in progress here would be.
    pub(super) async fn claim_run_lease(
        &self,
        membership: &Membership,
        pipeline: &str,
        run_id: &str,
        trigger: &str,
    ) -> Result<(Lease, Option<Option<String>>), ServiceError> {
        let cluster = &membership.cluster;
        if membership.draining.load(Ordering::Relaxed) {
            return Err(ServiceError::Draining {
                host: cluster.host_id().to_owned(),
            });
        }
        match cluster.claim_run(pipeline, run_id).await {
            Ok(RunClaim::Started(lease)) => {
                membership.held().insert(pipeline.to_owned(), lease.clone());
                Ok((lease, None))
            }
            Ok(RunClaim::Adopted {
                lease,
                previous_owner,
            }) => {
                tracing::warn!(
                    pipeline,
                    run = lease.run_id,
                    from = previous_owner.as_deref().unwrap_or("?"),
                    "{trigger} trigger: adopted the run of a host that stopped renewing its run \
                     lease; it goes on here"
                );
                membership.held().insert(pipeline.to_owned(), lease.clone());
                Ok((lease, Some(previous_owner)))
            }
            Ok(RunClaim::Busy { owner, run_id }) => {
                // No holder: another host is starting or ending a run of it this instant.
                let reason = match (&owner, &run_id) {
                    (Some(owner), Some(run_id)) => format!(
                        "{trigger} trigger: run {run_id} is running on {}",
                        weir_cluster::describe_owner(owner)
                    ),
                    _ => format!(
                        "{trigger} trigger: another host is starting or ending a run of it; \
                         trigger again"
                    ),
                };
                let owner = owner.unwrap_or_else(|| "?".into());
                let run_id = run_id.unwrap_or_default();
                self.events
                    .publish(Some(pipeline), None, None, EventKind::RunSkipped { reason });
                Err(ServiceError::RunningOnHost {
                    pipeline: pipeline.to_owned(),
                    run_id,
                    host: owner,
                })
            }
            Err(e) => Err(self.cluster_unreachable(pipeline, trigger, e)),
        }
    }

    fn cluster_unreachable(&self, pipeline: &str, trigger: &str, e: ClusterError) -> ServiceError {
        let reason = format!("{trigger} trigger: no run lease: {e}");
        self.events.publish(
            Some(pipeline),
            None,
            None,
            EventKind::RunSkipped {
                reason: reason.clone(),
            },
        );
        ServiceError::Cluster(reason)
    }

    /// Whether this host runs the cron fire of `pipeline` at `scheduled_ms` (Unix ms): the first
    /// host to claim it does. Alone, always.
    pub(super) async fn claim_fire(&self, pipeline: &str, scheduled_ms: i64) -> bool {
        let Some(membership) = &self.cluster else {
            return true;
        };
        if membership.draining.load(Ordering::Relaxed) {
            tracing::debug!(pipeline, "draining: leaving this fire to the other hosts");
            return false;
        }
        match membership.cluster.claim_fire(pipeline, scheduled_ms).await {
            Ok(true) => true,
            Ok(false) => {
                tracing::debug!(pipeline, "another host took this scheduled fire");
                false
            }
            Err(e) => {
                tracing::error!(pipeline, "scheduled fire skipped: {e}");
                false
            }
        }
    }

    /// Heartbeat every third of the lease until shutdown: renew the run leases held, cancel
    /// the runs whose lease was lost, and those an operator asked any host to cancel. When the
    /// database stays unreachable for a whole lease, another host may take the leases over,
    /// so the runs here stop too.
    pub(super) fn start_heartbeat_task(self: &Arc<Self>) {
        let Some(membership) = &self.cluster else {
            return;
        };
        let lease_time = membership.cluster.lease_duration();
        let period = (lease_time / 3).max(Duration::from_millis(200));
        let service = self.clone();
        tokio::spawn(async move {
            // Until shutdown is done, not begun: the runs and partitions still finishing
            // their batches keep their leases.
            let mut closed = service.closed.subscribe();
            let mut last_ok = Instant::now();
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(period) => {}
                    _ = closed.wait_for(|closed| *closed) => return,
                }
                let Some(membership) = &service.cluster else {
                    return;
                };
                let held: Vec<Lease> = membership.held().values().cloned().collect();
                let partitions = membership.book.all();
                let all: Vec<Lease> = held.iter().chain(&partitions).cloned().collect();
                match membership.cluster.heartbeat(&all).await {
                    Ok(beat) => {
                        last_ok = Instant::now();
                        let was = membership.draining.swap(beat.draining, Ordering::Relaxed);
                        if was != beat.draining {
                            if beat.draining {
                                tracing::warn!(
                                    "draining: no new runs or partitions on this host; work in progress finishes"
                                );
                            } else {
                                tracing::info!("no longer draining: taking runs again");
                            }
                        }
                        for (pipeline, partition) in beat.lost {
                            if partition != weir_cluster::RUN_PARTITION {
                                // Its worker's next commit is refused by the fence.
                                tracing::error!(
                                    pipeline,
                                    partition,
                                    "the partition's lease passed to another host"
                                );
                                if let Some(lease) = partitions
                                    .iter()
                                    .find(|l| l.pipeline == pipeline && l.partition == partition)
                                {
                                    membership.book.remove(lease);
                                }
                                continue;
                            }
                            service.run_lease_lost(&pipeline);
                        }
                        for pipeline in beat.cancelled {
                            service.cancel_pipeline(&pipeline);
                        }
                    }
                    Err(e @ ClusterError::HostIdInUse { .. }) => {
                        tracing::error!("{e}; cancelling the runs here");
                        for lease in &held {
                            service.cancel_pipeline(&lease.pipeline);
                        }
                    }
                    Err(e) => {
                        tracing::warn!("heartbeat failed: {e}");
                        if last_ok.elapsed() >= lease_time {
                            for lease in &held {
                                service.run_lease_lost(&lease.pipeline);
                            }
                        }
                    }
                }
            }
        });
    }

    /// Look for work of the cluster every poll interval until shutdown: adopt the runs whose
    /// holder stopped renewing their lease, and help with the partitions of other hosts' runs.
    pub(super) fn start_partition_poller(self: &Arc<Self>) {
        let Some(membership) = &self.cluster else {
            return;
        };
        let poll = shared::poll_interval(membership.cluster.lease_duration());
        let service = self.clone();
        tokio::spawn(async move {
            let mut shutdown = service.shutdown.subscribe();
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(poll) => {}
                    _ = shutdown.wait_for(|stopping| *stopping) => return,
                }
                let Some(membership) = &service.cluster else {
                    return;
                };
                if membership.draining.load(Ordering::Relaxed) {
                    continue;
                }
                match membership.cluster.orphaned_runs().await {
                    Ok(orphans) => {
                        for (pipeline, run_id) in orphans {
                            service.adopt(membership, &pipeline, &run_id).await;
                        }
                    }
                    Err(e) => tracing::warn!("cannot look for runs to adopt: {e}"),
                }
                match membership.cluster.claimable_runs().await {
                    Ok(runs) => {
                        for (pipeline, run_id) in runs {
                            service.help(membership, &pipeline, &run_id);
                        }
                    }
                    Err(e) => tracing::warn!("cannot look for partitions to claim: {e}"),
                }
            }
        });
    }

    /// Take over the run `run_id` of `pipeline`, whose holder stopped renewing its lease, and
    /// end it here (its partitions go on where they are).
    async fn adopt(self: &Arc<Self>, membership: &Membership, pipeline: &str, run_id: &str) {
        let _starting = self.starting.lock().await;
        if *self.shutdown.borrow() || self.active().contains_key(pipeline) {
            return;
        }
        // Helping with it already: adopting now would run twice `concurrency` partitions of
        // it here. The helping loop ends when nothing is left to claim; another host, or this
        // one then, adopts the run.
        if membership
            .helping()
            .get(pipeline)
            .is_some_and(|h| !h.task.is_finished())
        {
            return;
        }
        let Ok(resolved) = self.runnable(pipeline) else {
            return;
        };
        let Ok(lock) = self.locks.try_lock(pipeline) else {
            return;
        };
        let (lease, from) = match membership.cluster.adopt_run(pipeline, run_id).await {
            Ok(Some(adopted)) => adopted,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(pipeline, run = run_id, "cannot adopt the run: {e}");
                return;
            }
        };
        tracing::warn!(
            pipeline,
            run = run_id,
            from = from.as_deref().unwrap_or("?"),
            "adopted the run of a host that stopped renewing its run lease"
        );
        membership.held().insert(pipeline.to_owned(), lease.clone());
        let clustered = membership.cluster_run(lease.clone(), Some(from), self, &resolved);
        let launched = super::Launched {
            adopted: true,
            shared: clustered.share,
        };
        let run = Run::with_id(
            self.runtime.clone(),
            resolved,
            self.events.clone(),
            lock,
            run_id.to_owned(),
        )
        .on_cluster(clustered);
        if let Err(e) = self
            .launch(pipeline, run, Some(lease), "takeover", launched)
            .await
        {
            tracing::warn!(pipeline, run = run_id, "cannot go on with the run: {e}");
        }
    }

    /// Work on partitions of another host's run `run_id` of `pipeline`, in the background,
    /// until none is left to claim (one helping task per pipeline).
    fn help(self: &Arc<Self>, membership: &Membership, pipeline: &str, run_id: &str) {
        if *self.shutdown.borrow() || self.active().contains_key(pipeline) {
            return;
        }
        let Ok(resolved) = self.runnable(pipeline) else {
            return;
        };
        let mut helping = membership.helping();
        if helping.get(pipeline).is_some_and(|h| !h.task.is_finished()) {
            return;
        }
        let ctx = Arc::new(RunContext::new(
            self.runtime.clone(),
            run_id.to_owned(),
            pipeline.to_owned(),
            self.events.clone(),
        ));
        let shared = membership.shared(self);
        let task_ctx = ctx.clone();
        let task = tokio::spawn(async move {
            shared::work(&task_ctx, &resolved, &shared, Until::NothingToClaim).await;
        });
        helping.insert(
            pipeline.to_owned(),
            Helping {
                run_id: run_id.to_owned(),
                ctx,
                task,
            },
        );
    }

    /// Ask whichever host runs `run_id` of `pipeline` to cancel it (at its next heartbeat).
    /// `Ok(false)`: not clustered, or that run is not in progress anywhere.
    pub async fn cancel_elsewhere(
        &self,
        pipeline: &str,
        run_id: &str,
    ) -> Result<bool, ServiceError> {
        let Some(membership) = &self.cluster else {
            return Ok(false);
        };
        membership
            .cluster
            .request_cancel(pipeline, run_id)
            .await
            .map_err(|e| ServiceError::Cluster(e.to_string()))
    }

    /// Whether an operator asked this host to drain.
    pub fn draining(&self) -> bool {
        self.cluster
            .as_ref()
            .is_some_and(|m| m.draining.load(Ordering::Relaxed))
    }

    /// The run lease of `pipeline` passed to another host, or may have (no heartbeat for a
    /// whole lease). A run whose partitions run here unshared has no other fence: it is
    /// cancelled. A shared run goes on: each partition's own lease and the fence of its
    /// commits decide, and its loop leaves the run's end to the run lease's holder.
    fn run_lease_lost(&self, pipeline: &str) {
        let shared = self.active().get(pipeline).is_some_and(|run| run.shared);
        if shared {
            tracing::warn!(
                pipeline,
                "the run lease may have passed to another host: the partitions here go on under \
                 their own leases; that host ends the run"
            );
        } else {
            tracing::error!(
                pipeline,
                "the run lease may have passed to another host: cancelling the run here"
            );
            self.cancel_pipeline(pipeline);
        }
    }

    /// Cancel the run in progress of `pipeline` here, if any.
    fn cancel_pipeline(&self, pipeline: &str) {
        if let Some(run) = self.active().get(pipeline) {
            run.ctx.cancel();
        }
    }
}
