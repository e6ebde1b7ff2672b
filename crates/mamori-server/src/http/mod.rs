//! The JSON API under `/api/v1`, `/healthz` and `/metrics`. Handlers translate wire types to
//! domain calls and back: they read the clock (the only place besides startup and the admin
//! CLI), pick the OS random generator, and delegate every rule to [`crate::domain`].

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::Router;
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use mamori_api::ErrorCode;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::clock::Clock;
use crate::config::Limits;
use crate::domain::signin::Authenticated;
use crate::domain::{RequestMeta, Service};

pub mod conn;
pub mod edge;
pub mod error;
pub(crate) mod handlers;
pub mod openapi;
// #15 polish
pub mod preferences;
pub mod recovery;
mod review;
pub mod sync;
pub mod tokens;
pub mod webauthn;

pub use error::{ApiError, ApiResult};
pub use handlers::audit_wire;
pub use review::review_wire;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "mamori_session";
/// Header carrying the security alert on every response to an account without MFA.
pub const ALERT_HEADER: &str = "x-mamori-alert";

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
            metrics,
            secure_cookies,
        }
    }

    /// Applies the per-address sign-in limit.
    pub fn check_sign_in_rate(&self, addr: Option<IpAddr>) -> ApiResult<()> {
        let Some(ip) = addr else { return Ok(()) };
        self.sign_in_limiter.check_key(&ip).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            ApiError::rate_limited(wait.as_secs().saturating_add(1))
        })
    }

    /// Applies the per-address limit of the validate API (`limits.validate_per_minute`).
    pub fn check_validate_rate(&self, addr: Option<IpAddr>) -> ApiResult<()> {
        let Some(ip) = addr else { return Ok(()) };
        self.validate_limiter.check_key(&ip).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            ApiError::rate_limited(wait.as_secs().saturating_add(1))
        })
    }
}

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

/// The request's authenticated session, found from its headers alone, so a handler taking it
/// before its body extractor authenticates before a byte of the body is read (the session
/// middleware's, when the route has it).
pub struct Session(pub Authenticated);

impl FromRequestParts<AppState> for Session {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, ApiError> {
        if let Some(a) = parts.extensions.get::<Authenticated>() {
            return Ok(Session(a.clone()));
        }
        let token = session_token(&parts.headers).ok_or(crate::Error::Unauthenticated)?;
        Ok(Session(st.svc.authenticate(&token, st.clock.now()).await?))
    }
}

/// Like [`Session`], and refused unless an administrator's full session: large bodies meant
/// for administrators (hardware token seed files) are never read for anyone else.
pub struct AdminSession(pub Authenticated);

impl FromRequestParts<AppState> for AdminSession {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, ApiError> {
        let Session(auth) = Session::from_request_parts(parts, st).await?;
        let Meta { meta, .. } = Meta::from_request_parts(parts, st)
            .await
            .map_err(|e: std::convert::Infallible| -> ApiError { match e {} })?;
        st.svc
            .require_admin(&auth, "administrative request", st.clock.now(), &meta)
            .await?;
        Ok(AdminSession(auth))
    }
}

/// Authenticates the request's session, makes it available to handlers, and adds the security
/// alert header to the response for accounts without MFA.
async fn require_session(State(st): State<AppState>, mut req: Request, next: Next) -> Response {
    let Some(token) = session_token(req.headers()) else {
        return ApiError::from(crate::Error::Unauthenticated).into_response();
    };
    let auth = match st.svc.authenticate(&token, st.clock.now()).await {
        Ok(a) => a,
        Err(e) => return ApiError::from(e).into_response(),
    };
    // A recovery session may only manage MFA devices: decided here for every route, not per
    // handler (docs/recovery.md).
    if auth.session.state == crate::store::SessionState::Recovery {
        let path = req.extensions().get::<MatchedPath>().map(|p| p.as_str());
        if !path.is_some_and(|p| recovery::recovery_session_allows(req.method(), p)) {
            return recovery::restricted();
        }
    }
    // Recovery codes only decide `single_mfa_device`, which the header never carries, so the
    // per-request path does not read them.
    let alert =
        crate::domain::accounts::alerts_for(&auth.account, auth.enabled_devices as usize, 0)
            .into_iter()
            .find(|a| a.kind != "single_mfa_device")
            .map(|a| a.kind);
    req.extensions_mut().insert(auth);
    let mut resp = next.run(req).await;
    if let Some(kind) = alert {
        resp.headers_mut()
            .insert(ALERT_HEADER, HeaderValue::from_static(kind));
    }
    resp
}

/// Answers 408 in the API's error format when a request takes longer than the limit.
async fn timeout(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(r) => r,
        Err(_) => ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            ErrorCode::Timeout,
            "the request took too long",
        )
        .into_response(),
    }
}

/// Records request latency by route and status.
async fn observe(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let start = Instant::now();
    let resp = next.run(req).await;
    metrics::histogram!(
        "mamori_http_request_duration_seconds",
        "method" => method,
        "route" => route,
        "status" => resp.status().as_u16().to_string()
    )
    .record(start.elapsed().as_secs_f64());
    resp
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        ErrorCode::NotFound,
        "no such endpoint",
    )
}

/// The whole application.
pub fn router(state: AppState, limits: &Limits) -> Router {
    use handlers as h;
    let session_routes = Router::new()
        .route("/api/v1/me", get(h::me))
        .route("/api/v1/me/password", post(h::change_password))
        .route("/api/v1/sign-out", post(h::sign_out))
        .route("/api/v1/session/verify", post(h::verify))
        .route("/api/v1/sessions", get(h::list_sessions))
        .route(
            "/api/v1/sessions/{id}",
            axum::routing::delete(h::revoke_session),
        )
        .route("/api/v1/mfa-devices", get(h::list_devices))
        .route(
            "/api/v1/mfa-devices/virtual",
            post(h::create_virtual_device),
        )
        .route("/api/v1/mfa-devices/{id}/enable", post(h::enable_device))
        .route("/api/v1/mfa-devices/{id}/resync", post(h::resync_device))
        .route(
            "/api/v1/mfa-devices/{id}",
            patch(h::rename_device).delete(h::delete_device),
        )
        .route("/api/v1/users", get(h::list_users).post(h::create_user))
        .route("/api/v1/users/{name}/reset-mfa", post(h::reset_mfa))
        .route(
            "/api/v1/users/{name}/mfa-devices/{id}",
            axum::routing::delete(h::admin_delete_device),
        )
        .route(
            "/api/v1/app-keys",
            get(h::list_app_keys).post(h::create_app_key),
        )
        .route(
            "/api/v1/app-keys/{id}",
            axum::routing::delete(h::revoke_app_key),
        )
        .route("/api/v1/alerts", get(h::alerts))
        .route("/api/v1/review", get(review::review))
        .route(
            "/api/v1/recovery-codes",
            get(recovery::status).post(recovery::generate),
        )
        .route("/api/v1/me/contacts", get(recovery::contacts))
        .route(
            "/api/v1/me/contacts/{channel}/verify",
            post(recovery::verify_contact),
        )
        .route(
            "/api/v1/me/contacts/{channel}/confirm",
            post(recovery::confirm_contact),
        )
        .route("/api/v1/audit", get(h::audit))
        // #15 contacts
        .route(
            "/api/v1/me/contacts/{channel}",
            axum::routing::put(recovery::set_my_contact).delete(recovery::remove_my_contact),
        )
        .route(
            "/api/v1/users/{name}/contacts/{channel}",
            axum::routing::put(recovery::set_user_contact).delete(recovery::remove_user_contact),
        )
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            require_session,
        ));
    Router::new()
        .route("/healthz", get(h::healthz))
        .route("/metrics", get(h::metrics))
        .route("/api/v1/openapi.json", get(openapi::serve))
        .route("/api/v1/setup", post(h::setup))
        .route("/api/v1/sign-in", post(h::sign_in))
        .route("/api/v1/sign-in/mfa", post(h::sign_in_mfa))
        .route("/api/v1/sign-in/recovery", post(recovery::recovery_start))
        .route(
            "/api/v1/sign-in/recovery/email",
            post(recovery::recovery_email),
        )
        .route(
            "/api/v1/sign-in/recovery/phone",
            post(recovery::recovery_phone),
        )
        // #15 delivery
        .route(
            "/api/v1/sign-in/recovery/phone/resend",
            post(recovery::recovery_phone_resend),
        )
        .route("/api/v1/validate", post(h::validate))
        .merge(session_routes)
        .merge(sync::router(&state))
        .merge(tokens::router())
        .merge(webauthn::router())
        // #15 polish
        .merge(preferences::router())
        .merge(crate::console::router(state.clone()))
        .fallback_service(crate::console::fallback(state.clone(), || async {
            not_found().await.into_response()
        }))
        .layer(DefaultBodyLimit::max(limits.body_bytes))
        // Before routing reaches any handler or session check: forgery, control characters,
        // no-store (`edge.rs`).
        .layer(middleware::from_fn_with_state(
            state.clone(),
            edge::api_edge,
        ))
        .layer(middleware::from_fn_with_state(
            Duration::from_secs(limits.request_timeout_secs.max(1)),
            timeout,
        ))
        .layer(middleware::from_fn(observe))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

/// The authenticated session of a request (inserted by the session middleware).
pub type Auth = axum::Extension<Authenticated>;
