//! What a connection did, counted: requests, bytes, refusals, errors and status classes. A
//! grant's counters add up every instance sharing it; an instance also keeps its own.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Live counters (atomics), shared by the instances that count into them.
#[derive(Debug, Default)]
pub struct HttpCounters {
    requests: AtomicU64,
    response_bytes: AtomicU64,
    refused: AtomicU64,
    errors: AtomicU64,
    status: [AtomicU64; 5],
    throttled: AtomicU64,
    token_requests: AtomicU64,
    auth_retries: AtomicU64,
}

/// The counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HttpCountersSnapshot {
    /// Requests sent, or tried and failed in transport (a retry after a refreshed OAuth2 token
    /// counts again); not those the grant refused.
    pub requests: u64,
    /// Response body bytes handed to the plugin.
    pub response_bytes: u64,
    /// Requests the grant refused (host, path, headers, address).
    pub refused: u64,
    /// Requests or bodies that failed: connect, TLS, timeouts, the body cap, token fetches.
    pub errors: u64,
    /// Responses by status class: `[1xx, 2xx, 3xx, 4xx, 5xx]`.
    pub status: [u64; 5],
    /// 429 and 503 responses with a `Retry-After`.
    pub throttled: u64,
    /// OAuth2 token requests the host made.
    pub token_requests: u64,
    /// Requests sent again after a 401 with a refreshed token.
    pub auth_retries: u64,
}

/// One thing to count.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Count {
    Request,
    ResponseBytes(u64),
    Refused,
    Error,
    Status(u16),
    Throttled,
    TokenRequest,
    AuthRetry,
}

impl HttpCounters {
    pub(crate) fn add(&self, count: Count) {
        let (counter, n) = match count {
            Count::Request => (&self.requests, 1),
            Count::ResponseBytes(n) => (&self.response_bytes, n),
            Count::Refused => (&self.refused, 1),
            Count::Error => (&self.errors, 1),
            Count::Status(code) => {
                let class = usize::from(code / 100).clamp(1, 5) - 1;
                (&self.status[class], 1)
            }
            Count::Throttled => (&self.throttled, 1),
            Count::TokenRequest => (&self.token_requests, 1),
            Count::AuthRetry => (&self.auth_retries, 1),
        };
        counter.fetch_add(n, Relaxed);
    }

    /// The values now.
    pub fn snapshot(&self) -> HttpCountersSnapshot {
        HttpCountersSnapshot {
            requests: self.requests.load(Relaxed),
            response_bytes: self.response_bytes.load(Relaxed),
            refused: self.refused.load(Relaxed),
            errors: self.errors.load(Relaxed),
            status: std::array::from_fn(|i| self.status[i].load(Relaxed)),
            throttled: self.throttled.load(Relaxed),
            token_requests: self.token_requests.load(Relaxed),
            auth_retries: self.auth_retries.load(Relaxed),
        }
    }
}

impl HttpCountersSnapshot {
    /// What was counted between `earlier` and this snapshot (a run's share of a grant's
    /// counters, which run on for as long as the configuration is loaded).
    pub fn since(&self, earlier: &Self) -> Self {
        Self {
            requests: self.requests.saturating_sub(earlier.requests),
            response_bytes: self.response_bytes.saturating_sub(earlier.response_bytes),
            refused: self.refused.saturating_sub(earlier.refused),
            errors: self.errors.saturating_sub(earlier.errors),
            status: std::array::from_fn(|i| self.status[i].saturating_sub(earlier.status[i])),
            throttled: self.throttled.saturating_sub(earlier.throttled),
            token_requests: self.token_requests.saturating_sub(earlier.token_requests),
            auth_retries: self.auth_retries.saturating_sub(earlier.auth_retries),
        }
    }
}

impl std::ops::AddAssign for HttpCountersSnapshot {
    fn add_assign(&mut self, other: Self) {
        self.requests += other.requests;
        self.response_bytes += other.response_bytes;
        self.refused += other.refused;
        self.errors += other.errors;
        for (mine, theirs) in self.status.iter_mut().zip(other.status) {
            *mine += theirs;
        }
        self.throttled += other.throttled;
        self.token_requests += other.token_requests;
        self.auth_retries += other.auth_retries;
    }
}

/// Counters a request adds to: its grant's (shared) and its instance's own.
#[derive(Debug, Clone)]
pub(crate) struct Tally {
    pub shared: std::sync::Arc<HttpCounters>,
    pub instance: std::sync::Arc<HttpCounters>,
}

impl Tally {
    pub(crate) fn add(&self, count: Count) {
        self.shared.add(count);
        self.instance.add(count);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_counted_by_class() {
        let c = HttpCounters::default();
        for code in [100, 200, 204, 301, 404, 429, 503, 99, 700] {
            c.add(Count::Status(code));
        }
        assert_eq!(c.snapshot().status, [2, 2, 1, 2, 2]);
    }

    #[test]
    fn a_runs_share_is_the_difference_of_two_snapshots() {
        let c = HttpCounters::default();
        c.add(Count::Request);
        let start = c.snapshot();
        c.add(Count::Request);
        c.add(Count::ResponseBytes(10));
        c.add(Count::Status(200));
        let mut share = c.snapshot().since(&start);
        assert_eq!(
            (share.requests, share.response_bytes, share.status[1]),
            (1, 10, 1)
        );
        share += share;
        assert_eq!(share.requests, 2);
    }
}
