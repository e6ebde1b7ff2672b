//! `GET /api/v1/forward-auth` (issue #18, docs/forward-auth.md): the sub-request a reverse
//! proxy sends before each request to a protected application. Translation only: the address
//! is read by `Target`, the session checked by `Service::authenticate_forward` (the guard
//! every session passes) and the answer decided by the rules (`domain/forward_auth.rs`).
//!
//! Conventions:
//! - nginx `auth_request`: `X-Original-URL` (and `X-Original-Method`); a sign-in is asked
//!   for with `401`, which nginx's `error_page 401` turns into the redirect.
//! - Caddy `forward_auth`, Traefik `ForwardAuth`: `X-Forwarded-Proto`, `-Host`, `-Uri` and
//!   `-Method`; a sign-in is asked for with `302` to the console's `/sso`, which the proxy
//!   passes to the browser.
//! - `?mode=status` or `?mode=redirect` chooses either answer whatever the headers.
//!
//! Both carry `Location:` with the sign-in address. `403` when the rule denies the account;
//! `200` with `Remote-User`, `Remote-Email`, `Remote-Name` and `Remote-Groups` when it
//! allows.

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use mamori_api::ErrorCode;
use serde::Deserialize;

use crate::domain::forward_auth::{Decision, Target};

use super::{ApiError, AppState, Meta};

/// Name of the single-sign-on cookie (scoped to `[forward_auth] cookie_domain`).
pub use crate::web::FORWARD_COOKIE;

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/forward-auth", get(check))
}

/// `?mode=`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ForwardQuery {
    /// `status` (401 for a needed sign-in) or `redirect` (302); default: `status` with
    /// `X-Original-URL`, `redirect` with `X-Forwarded-*`.
    mode: Option<String>,
}

fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// The address asked about and whether the convention is nginx's (status answers).
fn target_of(h: &HeaderMap) -> Result<(Target, bool), crate::Error> {
    let method = header_str(h, "x-original-method")
        .or_else(|| header_str(h, "x-forwarded-method"))
        .unwrap_or("GET");
    if let Some(url) = header_str(h, "x-original-url") {
        return Ok((Target::parse(url, method)?, true));
    }
    match (
        header_str(h, "x-forwarded-proto"),
        header_str(h, "x-forwarded-host"),
        header_str(h, "x-forwarded-uri"),
    ) {
        (Some(p), Some(host), Some(uri)) => Ok((Target::from_parts(p, host, uri, method)?, false)),
        _ => Err(crate::Error::InvalidInput(
            "forward-auth needs X-Original-URL, or X-Forwarded-Proto, -Host and -Uri".into(),
        )),
    }
}

/// The console's sign-in address that returns to `url` afterwards.
pub fn sign_in_location(public_url: &str, url: &str) -> String {
    let rd: String =
        percent_encoding::utf8_percent_encode(url, percent_encoding::NON_ALPHANUMERIC).collect();
    format!("{}/sso?rd={rd}", public_url.trim_end_matches('/'))
}

fn count(result: &'static str) {
    metrics::counter!("mamori_forward_auth_checks_total", "result" => result).increment(1);
}

/// Whether a request to a protected application may pass (for the reverse proxy).
#[utoipa::path(get, path = "/api/v1/forward-auth", tag = "forward-auth", params(ForwardQuery, ("X-Original-URL" = Option<String>, Header, description = "nginx: the original request's absolute URL"), ("X-Original-Method" = Option<String>, Header, description = "nginx: its method"), ("X-Forwarded-Proto" = Option<String>, Header, description = "Caddy/Traefik: scheme"), ("X-Forwarded-Host" = Option<String>, Header, description = "Caddy/Traefik: host"), ("X-Forwarded-Uri" = Option<String>, Header, description = "Caddy/Traefik: path and query"), ("X-Forwarded-Method" = Option<String>, Header, description = "Caddy/Traefik: method")), responses((status = 200, description = "allowed: Remote-User, Remote-Email, Remote-Name, Remote-Groups headers"), (status = 302, description = "sign in (or give the second factor again) first: Location is the sign-in page"), (status = 401, description = "sign in first (nginx convention): Location is the sign-in page"), (status = 403, description = "the rule denies this account", body = mamori_api::ErrorBody), (status = 400, description = "invalid_input: no or a bad address", body = mamori_api::ErrorBody), (status = 429, description = "rate_limited: too many requests with a cookie that is not signed in", body = mamori_api::ErrorBody)), security(("forward_cookie" = [])))]
pub async fn check(
    State(st): State<AppState>,
    m: Meta,
    Query(q): Query<ForwardQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let now = st.clock.now();
    let (target, nginx) = target_of(&headers)?;
    let redirect = match q.mode.as_deref() {
        Some("status") => false,
        Some("redirect") => true,
        None => !nginx,
        Some(_) => {
            return Err(crate::Error::InvalidInput("mode must be status or redirect".into()).into())
        }
    };
    let auth = match crate::web::cookie_value(&headers, FORWARD_COOKIE).filter(|t| !t.is_empty()) {
        None => None,
        Some(token) => match st.svc.authenticate_forward(&token, now).await {
            Ok(a) => Some(a),
            Err(crate::Error::Unauthenticated) => {
                // A cookie that is not (or no longer) a session: the sign-in limit of the
                // address, so tokens cannot be tried at the speed of the allowed path.
                if let Err(l) = st.check_sign_in_rate(m.ip) {
                    return Err(crate::Error::RateLimited {
                        retry_after: l.retry_after_secs,
                    }
                    .into());
                }
                None
            }
            Err(e) => return Err(e.into()),
        },
    };
    let decision = st
        .svc
        .forward_decide(&target, auth.as_deref(), now, &m.meta)
        .await?;
    let location = || sign_in_location(&st.svc.policy().public_url, &target.url);
    match decision {
        Decision::Allow { .. } => {
            count("allow");
            let mut r = StatusCode::OK.into_response();
            // Always all four, empty on a bypass without a session: the proxy then overwrites
            // whatever the client sent under these names, and Caddy (2.6) copies an empty
            // value instead of its unreplaced placeholder.
            let (user, email, groups) = match &auth {
                Some(w) => (
                    w.auth.account.name.as_str(),
                    w.auth.account.email.as_deref().unwrap_or(""),
                    w.groups.join(","),
                ),
                None => ("", "", String::new()),
            };
            let h = r.headers_mut();
            let mut put = |name: &'static str, value: &str| {
                if let Ok(v) = HeaderValue::from_str(value) {
                    h.insert(name, v);
                }
            };
            put("remote-user", user);
            put("remote-name", user);
            put("remote-email", email);
            put("remote-groups", &groups);
            Ok(r)
        }
        Decision::SignIn | Decision::StepUp { .. } => {
            count(if matches!(decision, Decision::SignIn) {
                "sign_in"
            } else {
                "step_up"
            });
            let status = if redirect {
                StatusCode::FOUND
            } else {
                StatusCode::UNAUTHORIZED
            };
            let mut r = status.into_response();
            if let Ok(v) = HeaderValue::from_str(&location()) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            Ok(r)
        }
        Decision::Deny { .. } => {
            count("deny");
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                ErrorCode::Forbidden,
                "the access rules do not let this account in",
            ))
        }
    }
}
