//! What the JSON API (`crate::http`) and the web console (`crate::console`) share, so that
//! neither imports the other: the state handlers receive, the request extractors, cookie and
//! header names, origin checks and wire conversions. Nothing here routes a request; the
//! application is put together in [`crate::server::app`].

pub mod failure_limit;
pub mod origin;
pub mod request;
pub mod state;
pub mod wire;

pub use request::{
    cookie_value, session_credential, session_token, Credential, Meta, ALERT_HEADER,
    FORWARD_COOKIE, SESSION_COOKIE,
};
pub use state::{AppState, RateLimited};

/// The `Retry-After` of a 503 for a database that is out of reach (#21): long enough for a pool
/// to reconnect after a database restart, short enough that a person retrying by hand is not
/// kept waiting. Both edges answer with it.
pub const UNAVAILABLE_RETRY_SECS: u64 = 3;
