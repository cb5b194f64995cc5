//! One-for-one supervision of workers: a failed worker restarts from its last committed
//! checkpoint with exponential backoff and jitter, within a restart budget.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How a pipeline's workers are restarted. Defaults are documented in the README.
#[derive(Debug, Clone, PartialEq)]
pub struct RestartPolicy {
    /// Restarts allowed within `window` before the worker fails for good.
    pub max_restarts: u32,
    /// The sliding window the budget counts restarts in.
    pub window: Duration,
    /// Delay before the first restart; doubles with every further restart…
    pub backoff_min: Duration,
    /// …up to this.
    pub backoff_max: Duration,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        Self {
            max_restarts: 5,
            window: Duration::from_secs(600),
            backoff_min: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
        }
    }
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
    fn zero_restarts_fails_at_once() {
        assert!(
            RestartBudget::new(policy(0), 1)
                .next_delay(Instant::now())
                .is_none()
        );
    }
}
