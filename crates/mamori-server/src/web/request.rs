//! What a request carries that both edges read: its client address and user agent, and its
//! session credential (bearer token or cookie).

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;

use crate::domain::RequestMeta;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "mamori_session";
/// Name of the forward-auth single-sign-on cookie (#18): a token good only for forward-auth
/// checks, scoped to `[forward_auth] cookie_domain`, set by the console's `/sso`.
pub const FORWARD_COOKIE: &str = "mamori_sso";
/// Header carrying the security alert on every response to an account without MFA.
pub const ALERT_HEADER: &str = "x-mamori-alert";

/// The client address and user agent of a request.
#[derive(Debug, Clone)]
pub struct Meta {
    /// For the domain and the audit log.
    pub meta: RequestMeta,
    /// The client IP (rate limits).
    pub ip: Option<IpAddr>,
}

impl Meta {
    /// The domain's view of this request, decided at `now`.
    pub fn at(&self, now: crate::clock::UnixTime) -> crate::domain::Request<'_> {
        crate::domain::Request::new(now, &self.meta)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Meta {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(256).collect());
        Ok(Meta {
            meta: RequestMeta {
                client_addr: ip.map(|i| i.to_string()),
                user_agent,
            },
            ip,
        })
    }
}

/// Where a request's session token came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// `Authorization: Bearer TOKEN`: sent deliberately by a client, never by a browser on its
    /// own.
    Bearer,
    /// The session cookie: a browser attaches it to every request to this server, so a
    /// state-changing request carrying it must prove it is not forged (`edge::cross_site`).
    Cookie,
}

/// The session token of a request and where it came from: `Authorization: Bearer TOKEN`, else
/// the session cookie.
pub fn session_credential(headers: &axum::http::HeaderMap) -> Option<(String, Credential)> {
    if let Some(v) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        if let Some(t) = v.strip_prefix("Bearer ") {
            return Some((t.trim().to_string(), Credential::Bearer));
        }
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| (v.to_string(), Credential::Cookie))
}

/// The session token of a request: `Authorization: Bearer TOKEN`, else the session cookie.
pub fn session_token(headers: &axum::http::HeaderMap) -> Option<String> {
    session_credential(headers).map(|(t, _)| t)
}

/// The value of the cookie `name` (the first one), if the request has it.
pub fn cookie_value(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}
