//! `requests_per_second`: requests of one grant are spaced evenly, across every instance that
//! shares it. A request over the rate waits for its slot; it never fails.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Hands out send times at most one per `interval` (tokio's clock, so tests can pause it).
#[derive(Debug)]
pub(crate) struct RateLimiter {
    interval: Duration,
    /// The earliest time the next request may go.
    next: Mutex<Option<Instant>>,
}

impl RateLimiter {
    pub(crate) fn per_second(rps: f64) -> Self {
        Self {
            interval: Duration::from_secs_f64(1.0 / rps),
            next: Mutex::new(None),
        }
    }

    /// Reserve the next slot and wait for it. A caller that gives up (its call was dropped)
    /// still used its slot, which only makes later requests more polite.
    pub(crate) async fn acquire(&self) -> Duration {
        let slot = self.reserve(Instant::now());
        let wait = slot.saturating_duration_since(Instant::now());
        tokio::time::sleep_until(slot).await;
        wait
    }

    fn reserve(&self, now: Instant) -> Instant {
        let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
        let slot = next.map_or(now, |n| n.max(now));
        *next = Some(slot + self.interval);
        slot
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn requests_are_spaced_by_the_rate_and_shared_across_callers() {
        let limiter = Arc::new(RateLimiter::per_second(4.0));
        let start = Instant::now();
        // Six callers at once (as six instances would): 0, 250, 500, … 1250 ms.
        let mut tasks = Vec::new();
        for _ in 0..6 {
            let limiter = limiter.clone();
            tasks.push(tokio::spawn(async move {
                limiter.acquire().await;
                Instant::now() - start
            }));
        }
        let mut times = Vec::new();
        for t in tasks {
            times.push(t.await.unwrap());
        }
        times.sort();
        let ms: Vec<u128> = times.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [0, 250, 500, 750, 1000, 1250]);
        // After a quiet second the next request goes at once: no burst is saved up.
        tokio::time::sleep(Duration::from_secs(5)).await;
        let before = Instant::now();
        assert_eq!(limiter.acquire().await, Duration::ZERO);
        assert_eq!(Instant::now(), before);
        let waited = limiter.acquire().await;
        assert_eq!(waited, Duration::from_millis(250));
    }
}
