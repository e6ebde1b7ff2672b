//! The security-key API (docs/security-keys.md): the WebAuthn ceremonies as begin/finish pairs
//! for browsers and other clients alike. Handlers authenticate, translate the WebAuthn JSON and
//! delegate to [`crate::domain::webauthn`].
//!
//! - `POST /api/v1/mfa-devices/security-key/begin` (session): `{"name"}` → `{"ceremony",
//!   "options", "expires_at"}`; `…/finish`: `{"ceremony", "credential"}` → `{"device",
//!   "token"}` like enabling a virtual device.
//! - `POST /api/v1/sign-in/security-key/begin`: `{"challenge"}` → ceremony; `…/finish`:
//!   `{"challenge", "ceremony", "credential"}` → the sign-in answer (session cookie too).
//! - `POST /api/v1/session/verify/security-key/begin` (session): `{}` → ceremony; `…/finish`:
//!   `{"ceremony", "credential"}` → 204 (a fresh second factor, like `/session/verify`).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use mamori_api as api;
use mamori_api::webauthn as wire;
use rand::rngs::OsRng;
use webauthn_rs::prelude::{PublicKeyCredential, RegisterPublicKeyCredential};

use crate::domain::signin::Authenticated;
use crate::error::Error;

use super::handlers::{device_wire, with_cookie, ApiJson};
use super::{session_token, ApiResult, AppState, Meta};
use crate::web::wire::{begun_wire, parse_credential};

/// The security-key routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/mfa-devices/security-key/begin",
            post(register_begin),
        )
        .route(
            "/api/v1/mfa-devices/security-key/finish",
            post(register_finish),
        )
        .route("/api/v1/sign-in/security-key/begin", post(sign_in_begin))
        .route("/api/v1/sign-in/security-key/finish", post(sign_in_finish))
        .route(
            "/api/v1/session/verify/security-key/begin",
            post(verify_begin),
        )
        .route(
            "/api/v1/session/verify/security-key/finish",
            post(verify_finish),
        )
}

async fn authenticated(st: &AppState, headers: &HeaderMap) -> ApiResult<Authenticated> {
    let token = session_token(headers).ok_or(Error::Unauthenticated)?;
    Ok(st.svc.authenticate(&token, st.clock.now()).await?)
}

/// Begin registering a security key: options for `navigator.credentials.create()`.
#[utoipa::path(post, path = "/api/v1/mfa-devices/security-key/begin", tag = "security-keys", request_body = wire::RegisterBeginRequest, responses((status = 200, body = wire::CeremonyBegun), (status = 400, description = "invalid name", body = api::ErrorBody), (status = 409, description = "name taken or device limit", body = api::ErrorBody), (status = 403, description = "recent_second_factor_required", body = api::ErrorBody)), security(("session" = [])))]
pub async fn register_begin(
    State(st): State<AppState>,
    m: Meta,
    headers: HeaderMap,
    ApiJson(req): ApiJson<wire::RegisterBeginRequest>,
) -> ApiResult<Json<wire::CeremonyBegun>> {
    let auth = authenticated(&st, &headers).await?;
    let b = st
        .svc
        .webauthn_register_begin(
            &auth.account,
            &auth.session,
            req.name.trim(),
            m.at(st.clock.now()),
            &mut OsRng,
        )
        .await?;
    Ok(Json(begun_wire(b)?))
}

/// Finish registering: the key becomes an enabled device; may complete a required enrollment
/// (a fresh full session).
#[utoipa::path(post, path = "/api/v1/mfa-devices/security-key/finish", tag = "security-keys", request_body = wire::RegisterFinishRequest, responses((status = 201, body = api::EnableDeviceResponse), (status = 400, description = "invalid_ceremony or malformed credential", body = api::ErrorBody), (status = 401, description = "security_key_rejected", body = api::ErrorBody), (status = 409, description = "key already registered, name taken or device limit", body = api::ErrorBody)), security(("session" = [])))]
pub async fn register_finish(
    State(st): State<AppState>,
    m: Meta,
    headers: HeaderMap,
    ApiJson(req): ApiJson<wire::RegisterFinishRequest>,
) -> ApiResult<Response> {
    let auth = authenticated(&st, &headers).await?;
    let credential: RegisterPublicKeyCredential = parse_credential(req.credential)?;
    let now = st.clock.now();
    let (device, proof) = st
        .svc
        .webauthn_register_finish(
            &auth.account,
            &auth.session,
            &req.ceremony,
            &credential,
            m.at(now),
            &mut OsRng,
        )
        .await?;
    let renewed = st
        .svc
        .upgrade_after_enrollment(&auth, proof, now, &mut OsRng, &m.meta)
        .await?;
    let body = (
        StatusCode::CREATED,
        Json(api::EnableDeviceResponse {
            device: device_wire(&device),
            token: renewed.as_ref().map(|s| s.token.to_string()),
        }),
    );
    Ok(match &renewed {
        Some(s) => with_cookie(&st, s, body),
        None => body.into_response(),
    })
}

/// Begin the second-factor step of a sign-in with a security key: options for
/// `navigator.credentials.get()`.
#[utoipa::path(post, path = "/api/v1/sign-in/security-key/begin", tag = "security-keys", request_body = wire::SignInBeginRequest, responses((status = 200, body = wire::CeremonyBegun), (status = 401, description = "invalid_challenge", body = api::ErrorBody), (status = 404, description = "the account has no security key", body = api::ErrorBody), (status = 429, description = "rate_limited", body = api::ErrorBody)))]
pub async fn sign_in_begin(
    State(st): State<AppState>,
    m: Meta,
    ApiJson(req): ApiJson<wire::SignInBeginRequest>,
) -> ApiResult<Json<wire::CeremonyBegun>> {
    st.check_sign_in_rate(m.ip)?;
    let b = st
        .svc
        .webauthn_sign_in_begin(&req.challenge, st.clock.now(), &mut OsRng)
        .await?;
    Ok(Json(begun_wire(b)?))
}

/// Finish the second-factor step with the key's assertion.
#[utoipa::path(post, path = "/api/v1/sign-in/security-key/finish", tag = "security-keys", request_body = wire::SignInFinishRequest, responses((status = 200, body = api::SignInResponse), (status = 400, description = "invalid_ceremony or malformed credential", body = api::ErrorBody), (status = 401, description = "security_key_rejected or invalid_challenge", body = api::ErrorBody), (status = 423, description = "account_locked", body = api::ErrorBody), (status = 429, description = "rate_limited", body = api::ErrorBody)))]
pub async fn sign_in_finish(
    State(st): State<AppState>,
    m: Meta,
    ApiJson(req): ApiJson<wire::SignInFinishRequest>,
) -> ApiResult<Response> {
    st.check_sign_in_rate(m.ip)?;
    let credential: PublicKeyCredential = parse_credential(req.credential)?;
    let result = st
        .svc
        .webauthn_sign_in_finish(
            &req.challenge,
            &req.ceremony,
            &credential,
            m.at(st.clock.now()),
            &mut OsRng,
        )
        .await;
    // Counted like the code path of the MFA step (`mamori_sign_ins_total`).
    let (s, account) = match result {
        Ok(v) => v,
        Err(e) => {
            super::handlers::count("mfa_failed", "mamori_sign_ins_total");
            return Err(e.into());
        }
    };
    super::handlers::count("signed_in", "mamori_sign_ins_total");
    let n = st.svc.enabled_devices(&account).await?.len();
    let codes = st.svc.unused_recovery_codes(&account).await?;
    let body = api::SignInResponse::SignedIn {
        token: s.token.to_string(),
        expires_at: s.record.expires_at,
        alerts: crate::domain::accounts::alerts_for(&account, n, codes)
            .into_iter()
            .map(|a| api::Alert {
                kind: a.kind.into(),
                user: a.user,
                message: a.message,
            })
            .collect(),
    };
    Ok(with_cookie(&st, &s, Json(body)))
}

/// Begin giving a security key again within the session.
#[utoipa::path(post, path = "/api/v1/session/verify/security-key/begin", tag = "security-keys", responses((status = 200, body = wire::CeremonyBegun), (status = 404, description = "the account has no security key", body = api::ErrorBody)), security(("session" = [])))]
pub async fn verify_begin(
    State(st): State<AppState>,
    m: Meta,
    headers: HeaderMap,
) -> ApiResult<Json<wire::CeremonyBegun>> {
    let auth = authenticated(&st, &headers).await?;
    auth.require_full()?;
    st.check_sign_in_rate(m.ip)?;
    let b = st
        .svc
        .webauthn_verify_begin(&auth.account, &auth.session, st.clock.now(), &mut OsRng)
        .await?;
    Ok(Json(begun_wire(b)?))
}

/// Finish giving a security key within the session: a fresh second factor for the next 5
/// minutes.
#[utoipa::path(post, path = "/api/v1/session/verify/security-key/finish", tag = "security-keys", request_body = wire::VerifyFinishRequest, responses((status = 204, description = "verified"), (status = 400, description = "invalid_ceremony or malformed credential", body = api::ErrorBody), (status = 401, description = "security_key_rejected", body = api::ErrorBody), (status = 423, description = "account_locked", body = api::ErrorBody)), security(("session" = [])))]
pub async fn verify_finish(
    State(st): State<AppState>,
    m: Meta,
    headers: HeaderMap,
    ApiJson(req): ApiJson<wire::VerifyFinishRequest>,
) -> ApiResult<StatusCode> {
    let auth = authenticated(&st, &headers).await?;
    auth.require_full()?;
    st.check_sign_in_rate(m.ip)?;
    let credential: PublicKeyCredential = parse_credential(req.credential)?;
    st.svc
        .webauthn_verify_finish(
            &auth.account,
            &auth.session,
            &req.ceremony,
            &credential,
            st.clock.now(),
            &m.meta,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
