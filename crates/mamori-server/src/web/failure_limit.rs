//! #17: the limit on failed client authentication at the OpenID token, revocation and
//! introspection endpoints (docs/oidc.md "Limits"): counted per client address and per client
//! id; only an address is ever refused (see `http/oidc.rs`).
//!
//! Only failures count: a relying party that authenticates correctly may make as many token
//! requests as its users cause (that load is the request timeout's and the connection limit's
//! business), while whoever guesses a client's secret is stopped after
//! `limits.oidc_client_failures` wrong ones per `limits.oidc_client_failure_window_secs` from
//! one address. Once an address is over its limit every request from it is refused until its
//! window ends, right secret or not. A client id over its count is audited (someone is guessing
//! that client's secret) but never refused: client ids are not secret (they travel in browser
//! addresses), so refusing one would let anyone lock a real application out of its token
//! endpoint, while guessing a 256-bit secret gains nothing from the extra attempts.
//!
//! The sign-in limiter (`governor`, in [`super::AppState`]) spends a cell on every request and
//! has no way to look at a key without spending one; counting failures needs exactly that look
//! before the secret is checked. Hence this small fixed-window counter, on the monotonic clock.
//! Per node, like the other limiters: N nodes allow N times the failures.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most keys tracked at once: beyond, windows that ended are dropped first; if every key is in
/// a live window, a new key is not tracked (the addresses already tracked stay limited).
const MAX_KEYS: usize = 100_000;

struct Window {
    start: Instant,
    failures: u32,
}

/// A fixed-window counter of failures per key.
pub struct FailureLimiter {
    max: u32,
    window: Duration,
    keys: Mutex<HashMap<String, Window>>,
}

/// The keys a request is counted under: its client address and the client it named.
pub fn keys(addr: Option<IpAddr>, known_client: Option<&str>) -> Vec<String> {
    let mut out = Vec::with_capacity(2);
    match addr {
        Some(IpAddr::V4(a)) => out.push(format!("addr {a}")),
        // An IPv6 host usually has a whole /64 to itself: the prefix is the address.
        Some(IpAddr::V6(a)) => {
            let [s0, s1, s2, s3, ..] = a.segments();
            out.push(format!("addr {s0:x}:{s1:x}:{s2:x}:{s3:x}::/64"));
        }
        None => {}
    }
    if let Some(c) = known_client {
        out.push(format!("client {c}"));
    }
    out
}

impl FailureLimiter {
    /// `max` failures (at least 1) per `window` (the configuration keeps it 1 s to a day).
    pub fn new(max: u32, window: Duration) -> FailureLimiter {
        FailureLimiter {
            max: max.max(1),
            window: window.max(Duration::from_millis(1)),
            keys: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Window>> {
        // The map holds counters only: a panic elsewhere leaves nothing half-written.
        self.keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Seconds until the first of `keys` that is over its limit may try again (at least 1),
    /// or `None` when none is.
    pub fn blocked(&self, keys: &[String]) -> Option<u64> {
        let map = self.lock();
        let now = Instant::now();
        keys.iter()
            .filter_map(|k| map.get(k))
            .filter(|w| w.failures >= self.max)
            .filter_map(|w| (w.start + self.window).checked_duration_since(now))
            .filter(|left| !left.is_zero())
            .map(|left| {
                left.as_secs()
                    .saturating_add(u64::from(left.subsec_nanos() > 0))
            })
            .max()
            .map(|s| s.max(1))
    }

    /// Counts one failure under each key; the keys this failure brought to the limit (each is
    /// reported once per window, for the audit log).
    pub fn fail(&self, keys: &[String]) -> Vec<String> {
        let mut map = self.lock();
        let now = Instant::now();
        let mut reached = Vec::new();
        for k in keys {
            if !map.contains_key(k) && map.len() >= MAX_KEYS {
                let window = self.window;
                map.retain(|_, w| now.duration_since(w.start) < window);
                if map.len() >= MAX_KEYS {
                    continue;
                }
            }
            let w = map.entry(k.clone()).or_insert(Window {
                start: now,
                failures: 0,
            });
            if now.duration_since(w.start) >= self.window {
                *w = Window {
                    start: now,
                    failures: 0,
                };
            }
            w.failures = w.failures.saturating_add(1);
            if w.failures == self.max {
                reached.push(k.clone());
            }
        }
        reached
    }

    /// Forgets windows that ended (housekeeping, every minute).
    pub fn retain_recent(&self) {
        let now = Instant::now();
        let window = self.window;
        self.lock()
            .retain(|_, w| now.duration_since(w.start) < window);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn only_failures_count_and_the_limit_holds_until_the_window_ends() {
        let l = FailureLimiter::new(3, Duration::from_millis(200));
        let k = keys(Some("192.0.2.7".parse().unwrap()), Some("c1"));
        assert_eq!(k, ["addr 192.0.2.7", "client c1"]);
        assert_eq!(l.blocked(&k), None);
        assert!(l.fail(&k).is_empty());
        assert!(l.fail(&k).is_empty());
        assert_eq!(l.blocked(&k), None, "two of three");
        assert_eq!(l.fail(&k), k, "the third reaches the limit, once");
        assert_eq!(l.blocked(&k), Some(1));
        assert!(l.fail(&k).is_empty(), "reported once per window");
        // Another address for the same client is refused too; another client from a fresh
        // address is not.
        let other_addr = keys(Some("192.0.2.8".parse().unwrap()), Some("c1"));
        assert_eq!(l.blocked(&other_addr), Some(1));
        let other = keys(Some("192.0.2.9".parse().unwrap()), Some("c2"));
        assert_eq!(l.blocked(&other), None);
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(l.blocked(&k), None, "the window ended");
        l.retain_recent();
        assert!(l.lock().is_empty());
    }

    #[test]
    fn ipv6_addresses_count_by_their_64_prefix() {
        let a = keys(Some("2001:db8:1:2:aaaa::1".parse().unwrap()), None);
        let b = keys(Some("2001:db8:1:2:bbbb::2".parse().unwrap()), None);
        assert_eq!(a, b);
        assert_eq!(a, ["addr 2001:db8:1:2::/64"]);
    }
}
