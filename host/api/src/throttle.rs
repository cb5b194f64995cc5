//! Wrong tokens, counted per client address: after [`LoginLimit::max_failures`] within
//! [`LoginLimit::window`], every token check from that address (login or bearer, right or
//! wrong) is refused with `429` for [`LoginLimit::lockout`]. Refusing right tokens too is the
//! point: otherwise the answer during a lockout would still say which guess was right.
//!
//! Memory is bounded: at most [`MAX_CLIENTS`] addresses are tracked (IPv6 by /64, the block one
//! host usually has). When the table is full of live entries, new addresses share one overflow
//! entry, so a flood from many addresses locks itself out instead of pushing older entries out.
//! A success does not clear the count: a script with the right token behind the same NAT as a
//! guesser must not reset the guesser's budget.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Addresses tracked at most.
const MAX_CLIENTS: usize = 4096;

/// When wrong tokens lock an address out.
#[derive(Debug, Clone, Copy)]
pub struct LoginLimit {
    /// Wrong tokens allowed within `window`; the next check is refused.
    pub max_failures: u32,
    pub window: Duration,
    /// How long token checks are refused once `max_failures` is reached.
    pub lockout: Duration,
}

impl Default for LoginLimit {
    fn default() -> Self {
        Self {
            max_failures: 5,
            window: Duration::from_secs(60),
            lockout: Duration::from_secs(300),
        }
    }
}

/// The time source; tests pass one they can move forward.
pub type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

/// Who is counted: an address (IPv6 reduced to its /64), or the overflow entry (also used when
/// the address is unknown, as in tests without a socket).
type ClientKey = Option<IpAddr>;

#[derive(Debug)]
struct Entry {
    failures: u32,
    window_start: Instant,
    locked_until: Option<Instant>,
}

/// The per-address counts.
pub struct LoginThrottle {
    limit: LoginLimit,
    clock: Clock,
    clients: Mutex<HashMap<ClientKey, Entry>>,
}

impl LoginThrottle {
    pub fn new(limit: LoginLimit, clock: Clock) -> Self {
        Self {
            limit,
            clock,
            clients: Mutex::default(),
        }
    }

    /// `Err(retry after)` while `client` is locked out.
    pub fn check(&self, client: Option<IpAddr>) -> Result<(), Duration> {
        let now = (self.clock)();
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        let key = self.key(&mut clients, client, now);
        match clients.get(&key).and_then(|e| e.locked_until) {
            Some(until) if until > now => Err(until - now),
            _ => Ok(()),
        }
    }

    /// Count a wrong token from `client`.
    pub fn failed(&self, client: Option<IpAddr>) {
        let now = (self.clock)();
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        let key = self.key(&mut clients, client, now);
        let entry = clients.entry(key).or_insert(Entry {
            failures: 0,
            window_start: now,
            locked_until: None,
        });
        if now.duration_since(entry.window_start) >= self.limit.window {
            entry.failures = 0;
            entry.window_start = now;
        }
        entry.failures += 1;
        if entry.failures >= self.limit.max_failures {
            entry.locked_until = Some(now + self.limit.lockout);
            entry.failures = 0;
            entry.window_start = now;
            let client = key.map_or_else(|| "unknown or overflow".to_owned(), |ip| ip.to_string());
            tracing::warn!(
                %client,
                lockout_seconds = self.limit.lockout.as_secs(),
                "{} wrong API tokens within {} s: refusing token checks from this address",
                self.limit.max_failures,
                self.limit.window.as_secs()
            );
        }
    }

    /// The entry `client` is counted under: its own if tracked or if there is room (after
    /// dropping entries that no longer matter), else the overflow entry.
    fn key(
        &self,
        clients: &mut HashMap<ClientKey, Entry>,
        client: Option<IpAddr>,
        now: Instant,
    ) -> ClientKey {
        let key = client.map(normalise);
        if key.is_none() || clients.contains_key(&key) || clients.len() < MAX_CLIENTS {
            return key;
        }
        let window = self.limit.window;
        clients.retain(|k, e| {
            k.is_none()
                || e.locked_until.is_some_and(|until| until > now)
                || now.duration_since(e.window_start) < window
        });
        if clients.len() < MAX_CLIENTS {
            key
        } else {
            None
        }
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.clients.lock().unwrap().len()
    }
}

/// IPv4-mapped IPv6 as IPv4; other IPv6 addresses reduced to their /64.
fn normalise(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
        },
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    /// A clock that only moves when told to.
    pub(crate) fn manual_clock() -> (Clock, Arc<AtomicU64>) {
        let start = Instant::now();
        let offset_ms = Arc::new(AtomicU64::new(0));
        let offset = offset_ms.clone();
        let clock: Clock =
            Arc::new(move || start + Duration::from_millis(offset.load(Ordering::SeqCst)));
        (clock, offset_ms)
    }

    fn advance(offset: &AtomicU64, by: Duration) {
        offset.fetch_add(by.as_millis() as u64, Ordering::SeqCst);
    }

    const A: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1)));
    const B: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2)));

    #[test]
    fn locks_after_max_failures_within_the_window_and_only_that_address() {
        let (clock, offset) = manual_clock();
        let throttle = LoginThrottle::new(LoginLimit::default(), clock);
        for _ in 0..4 {
            throttle.failed(A);
            assert_eq!(throttle.check(A), Ok(()));
        }
        throttle.failed(A);
        assert_eq!(throttle.check(A), Err(Duration::from_secs(300)));
        assert_eq!(throttle.check(B), Ok(()));
        advance(&offset, Duration::from_secs(299));
        assert_eq!(throttle.check(A), Err(Duration::from_secs(1)));
        advance(&offset, Duration::from_secs(1));
        assert_eq!(throttle.check(A), Ok(()));
        // After the lockout the count starts again from zero.
        throttle.failed(A);
        assert_eq!(throttle.check(A), Ok(()));
    }

    #[test]
    fn failures_spread_beyond_the_window_do_not_lock() {
        let (clock, offset) = manual_clock();
        let throttle = LoginThrottle::new(LoginLimit::default(), clock);
        for _ in 0..20 {
            throttle.failed(A);
            throttle.failed(A);
            advance(&offset, Duration::from_secs(31));
            assert_eq!(throttle.check(A), Ok(()));
        }
    }

    #[test]
    fn memory_is_bounded_and_a_flood_of_addresses_shares_one_entry() {
        let (clock, offset) = manual_clock();
        let throttle = LoginThrottle::new(LoginLimit::default(), clock);
        let address = |i: usize| Some(IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i as u32)));
        for i in 0..MAX_CLIENTS {
            throttle.failed(address(i));
        }
        assert_eq!(throttle.tracked(), MAX_CLIENTS);
        // The table is full of live entries: newcomers are counted together.
        for i in 0..5 {
            throttle.failed(address(MAX_CLIENTS + i));
        }
        assert_eq!(throttle.tracked(), MAX_CLIENTS + 1);
        assert!(throttle.check(address(MAX_CLIENTS + 100)).is_err());
        assert_eq!(throttle.check(address(0)), Ok(()));
        // Once the old entries expire they make room again.
        advance(&offset, Duration::from_secs(61));
        throttle.failed(address(MAX_CLIENTS + 200));
        assert!(throttle.tracked() <= 2, "{}", throttle.tracked());
        assert_eq!(throttle.check(address(MAX_CLIENTS + 200)), Ok(()));
    }

    #[test]
    fn ipv6_is_counted_per_64_and_mapped_ipv4_as_ipv4() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            normalise(ip("2001:db8:1:2:aaaa::1")),
            normalise(ip("2001:db8:1:2:bbbb::2"))
        );
        assert_ne!(
            normalise(ip("2001:db8:1:2::1")),
            normalise(ip("2001:db8:1:3::1"))
        );
        assert_eq!(normalise(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
    }
}
