//! The JSON API under `/api/v1`, `/healthz` and `/metrics`. Handlers translate wire types to
//! domain calls and back: they read the clock (the only place besides startup and the admin
//! CLI), pick the OS random generator, and delegate every rule to [`crate::domain`].

use std::time::{Duration, Instant};

use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::Router;
use mamori_api::ErrorCode;

use crate::domain::signin::Authenticated;

pub mod acme;
pub mod challenges;
pub mod conn;
pub mod edge;
pub mod error;
pub mod forward_auth;
pub mod groups;
pub(crate) mod handlers;
// #17 the OpenID provider
pub mod oidc;
pub mod oidc_clients;
pub mod oidc_consents;
pub mod openapi;
// #15 polish
pub mod preferences;
pub mod recovery;
pub mod redirect;
mod review;
pub mod sync;
pub mod tls;
pub mod tokens;
pub mod webauthn;

/// The shared state and extractors, re-exported for the handlers (defined in [`crate::web`]).
pub use crate::web::{
    session_credential, session_token, AppState, Credential, Meta, ALERT_HEADER, SESSION_COOKIE,
};
pub use error::{ApiError, ApiResult};

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
pub async fn timeout(State(limit): State<Duration>, req: Request, next: Next) -> Response {
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
pub async fn observe(req: Request, next: Next) -> Response {
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

/// The API's answer for an address under `/api/` that no route takes.
pub async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        ErrorCode::NotFound,
        "no such endpoint",
    )
}

/// The JSON API's routes (the application, with the console and the layers every request
/// passes, is put together in [`crate::server::app`]).
pub fn routes(state: &AppState) -> Router<AppState> {
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
        // #17 consents: the account's own connected applications.
        .merge(oidc_consents::router())
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
        // #19: the PAM module's no_device = allow
        .route("/api/v1/validate/status", post(h::validate_status))
        .merge(session_routes)
        .merge(sync::router(state))
        .merge(tokens::router())
        .merge(webauthn::router())
        // #15 polish
        .merge(preferences::router())
        // #18 forward authentication
        .merge(groups::router())
        .merge(forward_auth::router())
        // #17 the OpenID provider
        .merge(oidc::router())
        .merge(oidc_clients::router())
}

/// The authenticated session of a request (inserted by the session middleware).
pub type Auth = axum::Extension<Authenticated>;
