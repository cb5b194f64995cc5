//! The scheduler: one task per pipeline with a schedule, which sleeps until each fire time
//! and triggers a run (skipped, with an event, when the previous one still runs).

use std::sync::Arc;
use std::time::SystemTime;

use chrono::{DateTime, Utc};
use weir_schedule::Schedule;

use super::{Service, ServiceError};
use crate::config::CatchUp;

impl Service {
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
            match self
                .store
                .runs(Some(name.clone()), 1, 0)
                .await
                .map(|mut r| r.pop())
            {
                Ok(Some(last)) => {
                    let last_start =
                        DateTime::from_timestamp_millis(last.started_ms).unwrap_or(now);
                    if schedule.missed_since(last_start, now) {
                        tracing::info!(
                            pipeline = name,
                            "a scheduled run was missed; catching up once"
                        );
                        // Named by the first missed fire, which every host of a cluster reads
                        // from the same last run: one catch-up cluster-wide.
                        let missed = schedule.next_after(last_start).unwrap_or(now);
                        self.fire(&name, "catch-up", missed).await;
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
            self.fire(&name, "schedule", next).await;
            // After a stall (suspend, clock jump) fires in the past are skipped, not run in a
            // burst: catching up is the catch-up policy's job, at startup.
            after = next.max(now_utc());
        }
    }

    /// Run the fire scheduled at `at`, unless another host of the cluster took it.
    async fn fire(self: &Arc<Self>, pipeline: &str, trigger: &str, at: DateTime<Utc>) {
        if !self.claim_fire(pipeline, at.timestamp_millis()).await {
            return;
        }
        match self.trigger(pipeline, trigger).await {
            // Each of these is already said by an event (or is shutdown).
            Ok(_)
            | Err(
                ServiceError::AlreadyRunning { .. }
                | ServiceError::Locked(_)
                | ServiceError::RunningOnHost { .. }
                | ServiceError::Cluster(_)
                | ServiceError::Draining { .. }
                | ServiceError::InvalidPipeline { .. }
                | ServiceError::ShuttingDown,
            ) => {}
            Err(e) => tracing::error!(pipeline, "{trigger} run not started: {e}"),
        }
    }
}

/// The wall clock as chrono sees it (chrono's own `clock` feature is not built).
fn now_utc() -> DateTime<Utc> {
    SystemTime::now().into()
}
