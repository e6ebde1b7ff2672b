//! The state every request handler shares, the JSON API's and the console's alike.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use metrics_exporter_prometheus::PrometheusHandle;

use crate::clock::Clock;
use crate::config::Limits;
use crate::domain::Service;

/// A per-address limit was reached: try again after this many seconds. Each edge answers it in
/// its own form (the API's `rate_limited` error, the console's page).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimited {
    /// Seconds until the next attempt is allowed (at least 1).
    pub retry_after_secs: u64,
}

/// Shared state of the HTTP layer.
#[derive(Clone)]
pub struct AppState {
    /// The domain service.
    pub svc: Arc<Service>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// Per-client-address limiter of the sign-in endpoints.
    pub sign_in_limiter: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    /// Per-client-address limiter of the validate API.
    pub validate_limiter: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    /// #17: failed client authentications at the OpenID token, revocation and introspection
    /// endpoints, per client address and per client id.
    pub oidc_client_limiter: Arc<super::failure_limit::FailureLimiter>,
    /// Prometheus exposition.
    pub metrics: Option<PrometheusHandle>,
    /// Add `Secure` to cookies (public URL is https).
    pub secure_cookies: bool,
}

impl AppState {
    /// Builds the state.
    pub fn new(
        svc: Arc<Service>,
        clock: Arc<dyn Clock>,
        limits: &Limits,
        metrics: Option<PrometheusHandle>,
    ) -> AppState {
        let per_minute = NonZeroU32::new(limits.sign_in_per_minute).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(limits.sign_in_burst).unwrap_or(NonZeroU32::MIN);
        let secure_cookies = svc.policy().public_url.starts_with("https://");
        let validate_quota = Quota::per_minute(
            NonZeroU32::new(limits.validate_per_minute).unwrap_or(NonZeroU32::MIN),
        )
        .allow_burst(NonZeroU32::new(limits.validate_burst).unwrap_or(NonZeroU32::MIN));
        AppState {
            svc,
            clock,
            sign_in_limiter: Arc::new(RateLimiter::keyed(
                Quota::per_minute(per_minute).allow_burst(burst),
            )),
            validate_limiter: Arc::new(RateLimiter::keyed(validate_quota)),
            oidc_client_limiter: Arc::new(super::failure_limit::FailureLimiter::new(
                limits.oidc_client_failures,
                std::time::Duration::from_secs(limits.oidc_client_failure_window_secs),
            )),
            metrics,
            secure_cookies,
        }
    }

    /// Applies the per-address sign-in limit.
    pub fn check_sign_in_rate(&self, addr: Option<IpAddr>) -> Result<(), RateLimited> {
        let Some(ip) = addr else { return Ok(()) };
        self.sign_in_limiter.check_key(&ip).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            RateLimited {
                retry_after_secs: wait.as_secs().saturating_add(1),
            }
        })
    }

    /// Applies the per-address limit of the validate API (`limits.validate_per_minute`).
    pub fn check_validate_rate(&self, addr: Option<IpAddr>) -> Result<(), RateLimited> {
        let Some(ip) = addr else { return Ok(()) };
        self.validate_limiter.check_key(&ip).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            RateLimited {
                retry_after_secs: wait.as_secs().saturating_add(1),
            }
        })
    }
}
