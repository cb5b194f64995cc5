//! One-for-one supervision of workers (docs/design.md, "Supervision"): a failed worker
//! restarts from its last committed checkpoint with exponential backoff and jitter, within a
//! restart budget; errors that will not fix themselves fail it at once.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use weir_runtime::types::Partition;
use weir_store::Totals;

use crate::config::RestartPolicy;
use crate::context::RunContext;
use crate::error::WorkerError;
use crate::events::EventKind;
use crate::pipeline::ResolvedPipeline;
use crate::worker::run_worker;

/// How one partition ended.
#[derive(Debug, Clone)]
pub struct PartitionOutcome {
    pub partition: String,
    pub totals: Totals,
    pub error: Option<String>,
}

/// Why a partition's worker stopped before the end of its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stopped {
    /// For good: an error another attempt cannot fix, or the restart budget is spent.
    Failed(String),
    /// The run was cancelled (or the host is stopping): it stopped at a batch boundary.
    Cancelled,
    /// On a cluster: another host took the partition over (see `commit`).
    Fenced(String),
}

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Failed(message) | Self::Fenced(message) => f.write_str(message),
            Self::Cancelled => f.write_str(&WorkerError::Cancelled.to_string()),
        }
    }
}

/// Run one partition's worker until it completes, fails for good, or the run is cancelled.
/// The totals count every attempt's committed batches: they are in the database. `fence`: on
/// a cluster, the partition lease's epoch (see `commit`); a fenced worker stops at once.
pub async fn supervise(
    ctx: Arc<RunContext>,
    pipeline: Arc<ResolvedPipeline>,
    partition: Partition,
    fence: Option<i64>,
) -> (Totals, Result<(), Stopped>) {
    let seed = ctx
        .run_id
        .bytes()
        .chain(partition.id.bytes())
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
    let mut budget = RestartBudget::new(pipeline.config.restart.clone(), seed);
    let mut totals = Totals::default();
    loop {
        let (attempt_totals, result) =
            run_worker(ctx.clone(), pipeline.clone(), partition.clone(), fence).await;
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
            (totals, Err(Stopped::Failed(message)))
        };
        if matches!(error, WorkerError::Cancelled) {
            return cancelled(&ctx, &partition.id, totals);
        }
        if let WorkerError::Fenced(message) = &error {
            ctx.emit(
                Some(&partition.id),
                EventKind::PartitionFenced {
                    epoch: fence.unwrap_or_default(),
                    error: message.clone(),
                },
            );
            return (totals, Err(Stopped::Fenced(message.clone())));
        }
        if !error.is_retryable() {
            return fail(error.to_string(), false, budget.attempts());
        }
        let Some(delay) = budget
            .next_delay(Instant::now())
            .map(|delay| at_least_retry_after(delay, &error))
        else {
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

/// A server that answered 429/503 with `Retry-After` (kept on the plugin's `unavailable` error)
/// is not asked again sooner than it said.
fn at_least_retry_after(delay: Duration, error: &WorkerError) -> Duration {
    match error {
        WorkerError::Plugin(e) => delay.max(e.retry_after.unwrap_or_default()),
        _ => delay,
    }
}

/// The end of a worker stopped by cancelling its run (not a failure: nothing went wrong).
fn cancelled(ctx: &RunContext, partition: &str, totals: Totals) -> (Totals, Result<(), Stopped>) {
    ctx.emit(
        Some(partition),
        EventKind::WorkerCancelled {
            rows_read: totals.rows_read,
            rows_loaded: totals.rows_loaded,
            rows_rejected: totals.rows_rejected,
        },
    );
    (totals, Err(Stopped::Cancelled))
}

/// The restart bookkeeping of one worker.
pub struct RestartBudget {
    policy: RestartPolicy,
    restarts: VecDeque<Instant>,
    consecutive: u32,
    seed: u64,
}

impl RestartBudget {
    pub fn new(policy: RestartPolicy, seed: u64) -> Self {
        Self {
            policy,
            restarts: VecDeque::new(),
            consecutive: 0,
            seed: seed | 1,
        }
    }

    /// Record a failure at `now`: `Some(delay)` to restart after, or `None` when the budget is
    /// spent.
    pub fn next_delay(&mut self, now: Instant) -> Option<Duration> {
        while self
            .restarts
            .front()
            .is_some_and(|t| now.duration_since(*t) > self.policy.window)
        {
            self.restarts.pop_front();
        }
        if self.restarts.len() as u32 >= self.policy.max_restarts {
            return None;
        }
        self.restarts.push_back(now);
        let exp = self
            .policy
            .backoff_min
            .saturating_mul(1u32 << self.consecutive.min(16))
            .min(self.policy.backoff_max);
        self.consecutive += 1;
        // Full jitter in [exp/2, exp]: restarts of many workers that failed together (a locked
        // database) spread out instead of colliding again.
        let jitter = self.random() % 1000;
        Some(exp / 2 + exp.mul_f64(jitter as f64 / 2000.0))
    }

    /// Attempts so far (the first run counts as one).
    pub fn attempts(&self) -> u32 {
        self.consecutive + 1
    }

    fn random(&mut self) -> u64 {
        // xorshift64: jitter needs spread, not cryptographic quality.
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        self.seed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(max: u32) -> RestartPolicy {
        RestartPolicy {
            max_restarts: max,
            window: Duration::from_secs(60),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_millis(1000),
        }
    }

    #[test]
    fn backoff_grows_exponentially_with_jitter_and_is_capped() {
        let mut budget = RestartBudget::new(policy(10), 42);
        let now = Instant::now();
        let delays: Vec<Duration> = (0..6).map(|_| budget.next_delay(now).unwrap()).collect();
        let caps = [100, 200, 400, 800, 1000, 1000];
        for (d, cap) in delays.iter().zip(caps) {
            let cap = Duration::from_millis(cap);
            assert!(
                *d >= cap / 2 && *d <= cap,
                "{d:?} not in [{:?}, {cap:?}]",
                cap / 2
            );
        }
        assert_eq!(budget.attempts(), 7);
    }

    #[test]
    fn budget_is_spent_within_the_window_and_refills_after_it() {
        let mut budget = RestartBudget::new(policy(2), 7);
        let t0 = Instant::now();
        assert!(budget.next_delay(t0).is_some());
        assert!(budget.next_delay(t0).is_some());
        assert!(budget.next_delay(t0).is_none());
        assert!(budget.next_delay(t0 + Duration::from_secs(61)).is_some());
    }

    #[test]
    fn a_retry_after_is_a_floor_for_the_backoff() {
        let mut error =
            weir_runtime::PluginError::contract("\"http-extract\" 0.2.0", "next-batch", "429");
        error.kind = weir_runtime::FaultKind::Unavailable;
        let short = Duration::from_millis(500);
        assert_eq!(
            at_least_retry_after(short, &WorkerError::Plugin(error.clone())),
            short
        );
        error.retry_after = Some(Duration::from_secs(7));
        let error = WorkerError::Plugin(error);
        assert_eq!(at_least_retry_after(short, &error), Duration::from_secs(7));
        assert_eq!(
            at_least_retry_after(Duration::from_secs(9), &error),
            Duration::from_secs(9)
        );
        assert_eq!(
            at_least_retry_after(short, &WorkerError::host("busy")),
            short
        );
    }

    #[test]
    fn zero_restarts_fails_at_once() {
        assert!(
            RestartBudget::new(policy(0), 1)
                .next_delay(Instant::now())
                .is_none()
        );
    }
}
