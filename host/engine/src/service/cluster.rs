//! A service that is one host of a cluster (`engine.cluster`): the run lease makes one run per
//! pipeline cluster-wide, a cron fire is claimed once whichever host sees it first, and a
//! heartbeat keeps this host registered and its run leases renewed. A run whose lease is lost
//! (another host took it over after this one stopped renewing) is cancelled here; a run lease
//! of a host that died lapses after `lease_seconds`, and the next trigger on any host closes
//! that run as failed and starts a new one from the last committed checkpoint.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use weir_cluster::{Cluster, ClusterError, Lease, RunClaim};

use super::{Service, ServiceError};
use crate::events::EventKind;

/// This host's membership: the cluster and the run leases it holds, by pipeline.
pub(super) struct Membership {
    pub(super) cluster: Arc<Cluster>,
    held: Mutex<BTreeMap<String, Lease>>,
    /// An operator asked this host to drain (`weir cluster drain`): it takes no new runs, and
    /// leaves the cron fires to the other hosts; runs in progress finish.
    draining: AtomicBool,
}

impl Membership {
    pub(super) fn new(cluster: Arc<Cluster>) -> Self {
        Self {
            cluster,
            held: Mutex::default(),
            draining: AtomicBool::new(false),
        }
    }

    fn held(&self) -> MutexGuard<'_, BTreeMap<String, Lease>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Give a run lease back at the end of its run (it lapses by itself if this fails).
    pub(super) async fn release(&self, lease: Lease) {
        {
            let mut held = self.held();
            if held.get(&lease.pipeline) == Some(&lease) {
                held.remove(&lease.pipeline);
            }
        }
        match self.cluster.release_run(&lease).await {
            Ok(true) => {}
            Ok(false) => tracing::warn!(
                pipeline = lease.pipeline,
                run = lease.run_id,
                "the run lease had already passed to another host when the run ended"
            ),
            Err(e) => tracing::warn!(
                pipeline = lease.pipeline,
                "cannot release the run lease; it lapses by itself: {e}"
            ),
        }
    }
}

impl Service {
    /// Take the pipeline's run lease for the run `run_id`. A run of a host that stopped
    /// renewing its lease is closed as failed first (its committed batches stay; the new run
    /// resumes from their checkpoints). Another host's live run refuses the trigger, said by a
    /// `RunSkipped` event as a run in progress here would be.
    pub(super) async fn claim_run_lease(
        &self,
        membership: &Membership,
        pipeline: &str,
        run_id: &str,
        trigger: &str,
    ) -> Result<Lease, ServiceError> {
        let cluster = &membership.cluster;
        if membership.draining.load(Ordering::Relaxed) {
            return Err(ServiceError::Draining {
                host: cluster.host_id().to_owned(),
            });
        }
        // Twice at most: an adopted run is closed and its lease released, then claimed anew.
        for _ in 0..2 {
            match cluster.claim_run(pipeline, run_id).await {
                Ok(RunClaim::Started(lease)) => {
                    membership.held().insert(pipeline.to_owned(), lease.clone());
                    return Ok(lease);
                }
                Ok(RunClaim::Adopted {
                    lease,
                    previous_owner,
                }) => {
                    let host = previous_owner.unwrap_or_else(|| "?".into());
                    tracing::warn!(
                        pipeline,
                        run = lease.run_id,
                        host,
                        "run lease lapsed: closing that run as failed"
                    );
                    self.events.publish(
                        Some(pipeline),
                        Some(&lease.run_id),
                        None,
                        EventKind::RunFailed {
                            error: format!(
                                "host \"{host}\" stopped renewing the run lease (it stopped or \
                                 lost the cluster database); host \"{}\" closed the run. \
                                 Batches it committed stay; the next run resumes from their \
                                 checkpoints",
                                cluster.host_id()
                            ),
                            rows_read: 0,
                            rows_loaded: 0,
                            rows_rejected: 0,
                        },
                    );
                    membership.release(lease).await;
                }
                Ok(RunClaim::Busy { owner, run_id }) => {
                    let owner = owner.unwrap_or_else(|| "?".into());
                    let run_id = run_id.unwrap_or_default();
                    self.events.publish(
                        Some(pipeline),
                        None,
                        None,
                        EventKind::RunSkipped {
                            reason: format!(
                                "{trigger} trigger: run {run_id} is running on host \"{owner}\""
                            ),
                        },
                    );
                    return Err(ServiceError::RunningOnHost {
                        pipeline: pipeline.to_owned(),
                        run_id,
                        host: owner,
                    });
                }
                Err(e) => return Err(self.cluster_unreachable(pipeline, trigger, e)),
            }
        }
        Err(ServiceError::Cluster(format!(
            "the run lease of pipeline \"{pipeline}\" changed hands while it was claimed; \
             trigger again"
        )))
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
            let mut shutdown = service.shutdown.subscribe();
            let mut last_ok = Instant::now();
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(period) => {}
                    _ = shutdown.wait_for(|stopping| *stopping) => return,
                }
                let Some(membership) = &service.cluster else {
                    return;
                };
                let held: Vec<Lease> = membership.held().values().cloned().collect();
                match membership.cluster.heartbeat(&held).await {
                    Ok(beat) => {
                        last_ok = Instant::now();
                        let was = membership.draining.swap(beat.draining, Ordering::Relaxed);
                        if was != beat.draining {
                            if beat.draining {
                                tracing::warn!(
                                    "draining: no new runs on this host; runs in progress finish"
                                );
                            } else {
                                tracing::info!("no longer draining: taking runs again");
                            }
                        }
                        for (pipeline, _) in beat.lost {
                            tracing::error!(
                                pipeline,
                                "the run lease passed to another host: cancelling the run here"
                            );
                            service.cancel_pipeline(&pipeline);
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
                                tracing::error!(
                                    pipeline = lease.pipeline,
                                    "no heartbeat for a whole lease: another host may run the \
                                     pipeline now, cancelling the run here"
                                );
                                service.cancel_pipeline(&lease.pipeline);
                            }
                        }
                    }
                }
            }
        });
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

    /// Cancel the run in progress of `pipeline` here, if any.
    fn cancel_pipeline(&self, pipeline: &str) {
        if let Some(run) = self.active().get(pipeline) {
            run.ctx.cancel();
        }
    }
}
