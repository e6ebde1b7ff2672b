//! Route handlers: parse, call the domain with the time and the OS random generator, convert.

use std::time::Instant;

use axum::extract::{FromRequest, FromRequestParts, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use mamori_api as api;
use rand::rngs::OsRng;
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::domain::accounts::{Alert, NewUser};
use crate::domain::appkeys::{AppKeyPermissions, ValidateStatus, Validation};
use crate::domain::signin::{NewSession, PasswordOutcome};
use crate::error::Error;
use crate::store::{AccountRecord, AppKeyRecord, AuditFilter, DeviceRecord, Role, SessionRecord};

use super::{ApiError, ApiResult, AppState, Auth, Meta, SESSION_COOKIE};
use crate::web::wire::audit_wire;

/// JSON body with errors in the API's format (400 malformed, 413 too large, 400 invalid_input
/// for a control character in a string: see [`super::edge::json_has_control`]).
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        // The content type is checked before the body is read.
        if !super::edge::is_json(req.headers()) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                api::ErrorCode::MalformedRequest,
                "malformed request: expected a body with Content-Type: application/json",
            ));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|r| {
                if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        api::ErrorCode::PayloadTooLarge,
                        "the request body is too large",
                    )
                } else {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        api::ErrorCode::MalformedRequest,
                        format!("malformed request: {}", r.body_text()),
                    )
                }
            })?;
        if super::edge::json_has_control(&bytes) {
            return Err(Error::InvalidInput(
                "text fields must not contain control characters".into(),
            )
            .into());
        }
        let Json(v) = Json::<T>::from_bytes(&bytes)?;
        Ok(ApiJson(v))
    }
}

/// Query string with errors in the API's format.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

fn alert_wire(a: Alert) -> api::Alert {
    api::Alert {
        kind: a.kind.into(),
        user: a.user,
        message: a.message,
    }
}

pub(super) fn device_wire(d: &DeviceRecord) -> api::Device {
    api::Device {
        id: d.id.clone(),
        kind: d.kind.as_str().into(),
        name: d.name.clone(),
        serial: d.serial.clone(),
        created_at: d.created_at,
        enabled_at: d.enabled_at,
        last_used_at: d.last_used_at,
    }
}

fn session_wire(s: &SessionRecord, current: &str) -> api::Session {
    api::Session {
        id: s.id.clone(),
        created_at: s.created_at,
        last_seen_at: s.last_seen_at,
        client_addr: s.client_addr.clone(),
        user_agent: s.user_agent.clone(),
        current: s.id == current,
    }
}

fn user_wire(a: &AccountRecord, mfa_devices: u32) -> api::User {
    api::User {
        id: a.id.clone(),
        user: a.name.clone(),
        role: a.role.as_str().into(),
        email: a.email.clone(),
        phone: a.phone.clone(),
        created_at: a.created_at,
        password_enabled: a.password_hash.is_some(),
        mfa_devices,
        locked: a.locked_at.is_some(),
    }
}

fn cookie(st: &AppState, token: &str, max_age: i64) -> Option<HeaderValue> {
    let secure = if st.secure_cookies { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    ))
    .ok()
}

pub(super) fn with_cookie(st: &AppState, s: &NewSession, body: impl IntoResponse) -> Response {
    let mut resp = body.into_response();
    let max_age = s.record.expires_at - s.record.created_at;
    if let Some(c) = cookie(st, &s.token, max_age) {
        resp.headers_mut().insert(header::SET_COOKIE, c);
    }
    resp
}

pub(super) fn count(result: &'static str, name: &'static str) {
    metrics::counter!(name, "result" => result).increment(1);
}

/// Liveness: the database answers.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = api::Health)))]
pub async fn healthz(State(st): State<AppState>) -> ApiResult<Json<api::Health>> {
    // A cheap query proves the database answers.
    st.svc.health_check().await?;
    Ok(Json(api::Health {
        status: "ok".into(),
    }))
}

/// Prometheus metrics (text exposition format).
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "metrics", content_type = "text/plain")))]
pub async fn metrics(State(st): State<AppState>) -> Response {
    match &st.metrics {
        Some(h) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            h.render(),
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Choose a password with a one-time setup link token.
#[utoipa::path(post, path = "/api/v1/setup", tag = "sign-in", request_body = api::SetupRequest, responses((status = 200, body = api::SetupResponse), (status = 400, description = "weak_password", body = api::ErrorBody), (status = 401, description = "invalid_setup_token", body = api::ErrorBody), (status = 429, description = "rate_limited", body = api::ErrorBody)))]
pub async fn setup(
    State(st): State<AppState>,
    m: Meta,
    ApiJson(req): ApiJson<api::SetupRequest>,
) -> ApiResult<Json<api::SetupResponse>> {
    st.check_sign_in_rate(m.ip)?;
    let account = st
        .svc
        .complete_setup(
            &req.token,
            Zeroizing::new(req.password),
            st.clock.now(),
            &mut OsRng,
            &m.meta,
        )
        .await?;
    Ok(Json(api::SetupResponse { user: account.name }))
}

/// The password step of a sign-in.
#[utoipa::path(post, path = "/api/v1/sign-in", tag = "sign-in", request_body = api::SignInRequest, responses((status = 200, body = api::SignInResponse), (status = 401, description = "invalid_credentials", body = api::ErrorBody), (status = 429, description = "rate_limited", body = api::ErrorBody)))]
pub async fn sign_in(
    State(st): State<AppState>,
    m: Meta,
    ApiJson(req): ApiJson<api::SignInRequest>,
) -> ApiResult<Response> {
    if let Err(e) = st.check_sign_in_rate(m.ip) {
        count("rate_limited", "mamori_sign_ins_total");
        return Err(e.into());
    }
    let outcome = st
        .svc
        .sign_in_password(
            &req.user,
            Zeroizing::new(req.password),
            st.clock.now(),
            &mut OsRng,
            &m.meta,
        )
        .await;
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => {
            count("invalid_credentials", "mamori_sign_ins_total");
            return Err(e.into());
        }
    };
    Ok(match outcome {
        PasswordOutcome::MfaRequired { challenge, devices } => {
            count("mfa_required", "mamori_sign_ins_total");
            Json(api::SignInResponse::MfaRequired {
                challenge: challenge.to_string(),
                devices: devices
                    .iter()
                    .map(|d| api::ChallengeDevice {
                        id: d.id.clone(),
                        name: d.name.clone(),
                        kind: d.kind.as_str().into(),
                    })
                    .collect(),
            })
            .into_response()
        }
        PasswordOutcome::Session(b) => {
            let (s, account) = *b;
            let n = st.svc.enabled_devices(&account).await?.len();
            let codes = st.svc.unused_recovery_codes(&account).await?;
            let alerts = crate::domain::accounts::alerts_for(&account, n, codes)
                .into_iter()
                .map(alert_wire)
                .collect();
            let body = if s.record.state == crate::store::SessionState::Full {
                count("signed_in_without_mfa", "mamori_sign_ins_total");
                api::SignInResponse::SignedIn {
                    token: s.token.to_string(),
                    expires_at: s.record.expires_at,
                    alerts,
                }
            } else {
                count("enrollment_required", "mamori_sign_ins_total");
                api::SignInResponse::MfaEnrollmentRequired {
                    token: s.token.to_string(),
                    expires_at: s.record.expires_at,
                    alerts,
                }
            };
            with_cookie(&st, &s, Json(body))
        }
    })
}

/// The code step of a sign-in: answer the challenge.
#[utoipa::path(post, path = "/api/v1/sign-in/mfa", tag = "sign-in", request_body = api::MfaRequest, responses((status = 200, body = api::SignInResponse), (status = 401, description = "invalid_code or invalid_challenge", body = api::ErrorBody), (status = 423, description = "account_locked", body = api::ErrorBody), (status = 429, description = "rate_limited", body = api::ErrorBody)))]
pub async fn sign_in_mfa(
    State(st): State<AppState>,
    m: Meta,
    ApiJson(req): ApiJson<api::MfaRequest>,
) -> ApiResult<Response> {
    st.check_sign_in_rate(m.ip)?;
    let result = st
        .svc
        .sign_in_mfa(
            &req.challenge,
            &req.code,
            req.device_id.as_deref(),
            st.clock.now(),
            &mut OsRng,
            &m.meta,
        )
        .await;
    let (s, account) = match result {
        Ok(v) => v,
        Err(e) => {
            count("mfa_failed", "mamori_sign_ins_total");
            return Err(e.into());
        }
    };
    count("signed_in", "mamori_sign_ins_total");
    let n = st.svc.enabled_devices(&account).await?.len();
    let codes = st.svc.unused_recovery_codes(&account).await?;
    let body = api::SignInResponse::SignedIn {
        token: s.token.to_string(),
        expires_at: s.record.expires_at,
        alerts: crate::domain::accounts::alerts_for(&account, n, codes)
            .into_iter()
            .map(alert_wire)
            .collect(),
    };
    Ok(with_cookie(&st, &s, Json(body)))
}

/// Validate a user's one-time code (application key as bearer token).
#[utoipa::path(post, path = "/api/v1/validate", tag = "validate", request_body = api::ValidateRequest, responses((status = 200, body = api::ValidateResponse), (status = 401, description = "invalid_app_key", body = api::ErrorBody), (status = 429, description = "rate_limited (per client address, limits.validate_per_minute)", body = api::ErrorBody)), security(("app_key" = [])))]
pub async fn validate(
    State(st): State<AppState>,
    headers: HeaderMap,
    m: Meta,
    ApiJson(req): ApiJson<api::ValidateRequest>,
) -> ApiResult<Json<api::ValidateResponse>> {
    let start = Instant::now();
    if let Err(e) = st.check_validate_rate(m.ip) {
        count("rate_limited", "mamori_validations_total");
        return Err(e.into());
    }
    let app = match app_from_headers(&st, &headers).await {
        Ok(a) => a,
        Err(e) => {
            count("invalid_app_key", "mamori_validations_total");
            return Err(e.into());
        }
    };
    let v = st
        .svc
        .validate(&app, &req.user, &req.code, st.clock.now(), &m.meta)
        .await?;
    let (result, reason) = match v {
        Validation::Accept => ("accept", None),
        Validation::RejectInvalidCode => ("reject", Some("invalid_code")),
        Validation::RejectLocked => ("reject", Some("account_locked")),
        Validation::RejectThrottled(_) => ("reject", Some("throttled")),
    };
    count(reason.unwrap_or("accept"), "mamori_validations_total");
    metrics::histogram!("mamori_validate_duration_seconds").record(start.elapsed().as_secs_f64());
    Ok(Json(api::ValidateResponse {
        result: result.into(),
        reason: reason.map(str::to_string),
    }))
}

/// The application whose key is the request's bearer token (unrevoked keys only).
async fn app_from_headers(st: &AppState, headers: &HeaderMap) -> Result<AppKeyRecord, Error> {
    let key = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(Error::InvalidAppKey)?;
    st.svc.app_for_key(key.trim()).await
}

/// Whether a user must give a code, asked before asking for one (application key created with
/// `allow_no_device`; the PAM module's `no_device = allow`). `no_device` only for an existing,
/// unlocked account without an enabled MFA device (root only with `allow_root` too);
/// `code_required` for everything else, unknown names included. The rule is
/// `Service::validate_status`.
#[utoipa::path(post, path = "/api/v1/validate/status", tag = "validate", request_body = api::ValidateStatusRequest, responses((status = 200, body = api::ValidateStatusResponse), (status = 400, description = "malformed or invalid input", body = api::ErrorBody), (status = 401, description = "invalid_app_key", body = api::ErrorBody), (status = 403, description = "forbidden: the key was not created with allow_no_device", body = api::ErrorBody), (status = 429, description = "rate_limited (per client address, limits.validate_per_minute, shared with /api/v1/validate)", body = api::ErrorBody)), security(("app_key" = [])))]
pub async fn validate_status(
    State(st): State<AppState>,
    headers: HeaderMap,
    m: Meta,
    ApiJson(req): ApiJson<api::ValidateStatusRequest>,
) -> ApiResult<Json<api::ValidateStatusResponse>> {
    st.check_validate_rate(m.ip)?;
    let app = app_from_headers(&st, &headers).await?;
    let status = match st
        .svc
        .validate_status(&app, &req.user, st.clock.now(), &m.meta)
        .await?
    {
        ValidateStatus::NoDevice => "no_device",
        ValidateStatus::CodeRequired => "code_required",
    };
    Ok(Json(api::ValidateStatusResponse {
        status: status.into(),
    }))
}

/// The signed-in account with its security alerts.
#[utoipa::path(get, path = "/api/v1/me", tag = "session", responses((status = 200, body = api::MeResponse), (status = 400, description = "malformed or invalid input", body = api::ErrorBody), (status = 401, description = "not signed in", body = api::ErrorBody)), security(("session" = [])))]
pub async fn me(State(st): State<AppState>, auth: Auth) -> ApiResult<Json<api::MeResponse>> {
    let a = &auth.account;
    Ok(Json(api::MeResponse {
        id: a.id.clone(),
        user: a.name.clone(),
        role: a.role.as_str().into(),
        email: a.email.clone(),
        phone: a.phone.clone(),
        mfa_devices: auth.enabled_devices,
        alerts: st
            .svc
            .account_alerts(&auth)
            .await?
            .into_iter()
            .map(alert_wire)
            .collect(),
    }))
}

/// Change the password; every other session and every sync device token of the account end.
#[utoipa::path(post, path = "/api/v1/me/password", tag = "session", request_body = api::ChangePasswordRequest, responses((status = 204, description = "changed"), (status = 400, description = "malformed or invalid input", body = api::ErrorBody), (status = 401, description = "not signed in, or invalid_credentials (wrong current password)", body = api::ErrorBody), (status = 423, description = "account_locked", body = api::ErrorBody), (status = 429, description = "rate_limited", body = api::ErrorBody)), security(("session" = [])))]
pub async fn change_password(
    State(st): State<AppState>,
    auth: Auth,
    m: Meta,
    ApiJson(req): ApiJson<api::ChangePasswordRequest>,
) -> ApiResult<StatusCode> {
    auth.require_full()?;
    st.check_sign_in_rate(m.ip)?;
    st.svc
        .change_password(
            &auth,
            Zeroizing::new(req.current_password),
            Zeroizing::new(req.new_password),
            st.clock.now(),
            &mut OsRng,
            &m.meta,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// End this session.
#[utoipa::path(post, path = "/api/v1/sign-out", tag = "session", responses((status = 204, description = "signed out"), (status = 400, description = "malformed or invalid input", body = api::ErrorBody), (status = 401, description = "not signed in", body = api::ErrorBody)), security(("session" = [])))]
pub async fn sign_out(State(st): State<AppState>, auth: Auth, m: Meta) -> ApiResult<Response> {
    st.svc.sign_out(&auth, st.clock.now(), &m.meta).await?;
    let mut resp = StatusCode::NO_CONTENT.into_response();
    if let Some(c) = cookie(&st, "", 0) {
        resp.headers_mut().insert(header::SET_COOKIE, c);
    }
    Ok(resp)
}

/// Give a second factor again (needed within 5 minutes before changing factors).
#[utoipa::path(post, path = "/api/v1/session/verify", tag = "session", request_body = api::VerifyRequest, responses((status = 204, description = "verified"), (status = 400, description = "malformed or invalid input", body = api::ErrorBody), (status = 401, description = "not signed in", body = api::ErrorBody)), security(("session" = [])))]
pub async fn verify(
    State(st): State<AppState>,
    auth: Auth,
    m: Meta,
    ApiJson(req): ApiJson<api::VerifyRequest>,
) -> ApiResult<StatusCode> {
    auth.require_full()?;
    st.check_sign_in_rate(m.ip)?;
    st.svc
        .verify_in_session(
            &auth,
            &req.code,
            req.device_id.as_deref(),
            st.clock.now(),
            &m.meta,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Own sessions.
#[utoipa::path(get, path = "/api/v1/sessions", tag = "session", responses((status = 200, body = Vec<api::Session>), (status = 400, description = "malformed or invalid input", body = api::ErrorBody), (status = 401, description = "not signed in", body = api::ErrorBody)), security(("session" = [])))]
pub async fn list_sessions(
    State(st): State<AppState>,
    auth: Auth,
) -> ApiResult<Json<Vec<api::Session>>> {
    auth.require_full()?;
    let list = st.svc.list_sessions(&auth).await?;
    Ok(Json(
        list.iter()
            .map(|s| session_wire(s, &auth.session.id))
            .collect(),
    ))
}

/// Revoke one of your sessions.
#[utoipa::path(delete, path = "/api/v1/sessions/{id}", tag = "session", params(("id" = String, Path, description = "device or session id")), responses((status = 204, description = "revoked"), (status = 404, description = "not_found", body = api::ErrorBody), (status = 400, description = "malformed or invalid input", body = api::ErrorBody), (status = 401, description = "not signed in", body = api::ErrorBody)), security(("session" = [])))]
pub async fn revoke_session(
    State(st): State<AppState>,
    auth: Auth,
    m: Meta,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    auth.require_full()?;
    st.svc
        .revoke_session(&auth, &id, st.clock.now(), &m.meta)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Own MFA devices.
#[utoipa::path(get, path = "/api/v1/mfa-devices", tag = "mfa-devices", responses((status = 200, body = Vec<api::Device>), (status = 400, description = "malformed or invalid input", body = api::ErrorBody), (status = 401, description = "not signed in", body = api::ErrorBody)), security(("session" = [])))]
pub async fn list_devices(
    State(st): State<AppState>,
    auth: Auth,
) -> ApiResult<Json<Vec<api::Device>>> {
    let list = st.svc.list_devices(&auth.account).await?;
    Ok(Json(list.iter().map(device_wire).collect()))
}

/// Create a virtual MFA device (secret, URI and QR shown once).
#[utoipa::path(post, path = "/api/v1/mfa-devices/virtual", tag = "mfa-devices", request_body = api::CreateVirtualDeviceRequest, responses((status = 201, body = api::CreateVirtualDeviceResponse), (status = 409, description = "conflict or device_limit_reached", body = api::ErrorBody), (status = 403, description = "recent_second_factor_required", body = api::ErrorBody), (status = 400, description = "malformed or invalid input", body = api::ErrorBody), (status = 401, description = "not signed in", body = api::ErrorBody)), security(("session" = [])))]
pub async fn create_virtual_device(
    State(st): State<AppState>,
    auth: Auth,
    m: Meta,
    ApiJson(req): ApiJson<api::CreateVirtualDeviceRequest>,
) -> ApiResult<(StatusCode, Json<api::CreateVirtualDeviceResponse>)> {
    let d = st
        .svc
        .create_virtual_device(&auth, &req.name, st.clock.now(), &mut OsRng, &m.meta)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(api::CreateVirtualDeviceResponse {
            id: d.device.id.clone(),
            serial: d.device.serial.clone(),
            secret_base32: d.secret_base32.to_string(),
            otpauth_uri: d.uri.to_string(),
            qr_svg: d.qr_svg.to_string(),
            qr_png_base64: data_encoding::BASE64.encode(&d.qr_png),
        }),
    ))
}

/// Enable a device with two consecutive codes.
#[utoipa::path(post, path = "/api/v1/mfa-devices/{id}/enable", tag = "mfa-devices", params(("id" = String, Path, description = "device or session id")), request_body = api::TwoCodesRequest, responses((status = 200, body = api::EnableDeviceResponse), (status = 409, description = "invalid_device_state", body = api::ErrorBody), (status = 400, description = "malformed or invalid input", body = api::ErrorBody), (status = 401, description = "not signed in", body = api::ErrorBody)), security(("session" = [])))]
pub async fn enable_device(
    State(st): State<AppState>,
    auth: Auth,
    m: Meta,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<api::TwoCodesRequest>,
) -> ApiResult<Response> {
    let now = st.clock.now();
    let (device, proof) = st
        .svc
        .enable_device(&auth, &id, &req.code1, &req.code2, now, &m.meta)
        .await?;
    let renewed = st
        .svc
        .upgrade_after_enrollment(&auth, proof, now, &mut OsRng, &m.meta)
        .await?;
    let body = Json(api::EnableDeviceResponse {
        device: device_wire(&device),
        token: renewed.as_ref().map(|s| s.token.to_string()),
    });
    Ok(match &renewed {
        Some(s) => with_cookie(&st, s, body),
        None => body.into_response(),
    })
}

/// Resynchronise a device with two consecutive codes.
#[utoipa::path(post, path = "/api/v1/mfa-devices/{id}/resync", tag = "mfa-devices", params(("id" = String, Path, description = "device or session id")), request_body = api::TwoCodesRequest, responses((status = 200, body = api::Device), (status = 400, description = "malformed or invalid input", body = api::ErrorBody), (status = 401, description = "not signed in", body = api::ErrorBody)), security(("session" = [])))]
pub async fn resync_device(
    State(st): State<AppState>,
    auth: Auth,
    m: Meta,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<api::TwoCodesRequest>,
) -> ApiResult<Json<api::Device>> {
    let d = st
        .svc
        .resync_device(&auth, &id, &req.code1, &req.code2, st.clock.now(), &m.meta)
        .await?;
    Ok(Json(device_wire(&d)))
}

/// Rename a device.
#[utoipa::path(patch, path = "/api/v1/mfa-devices/{id}", tag = "mfa-devices", params(("id" = String, Path, description = "device or session id")), request_body = api::RenameDeviceRequest, responses((status = 200, body = api::Device), (status = 409, description = "conflict", body = api::ErrorBody), (status = 400, description = "malformed or invalid input", body = api::ErrorBody), (status = 401, description = "not signed in", body = api::ErrorBody)), security(("session" = [])))]
pub async fn rename_device(
    State(st): State<AppState>,
    auth: Auth,
    m: Meta,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<api::RenameDeviceRequest>,
) -> ApiResult<Json<api::Device>> {
    let d = st
        .svc
        .rename_device(&auth, &id, &req.name, st.clock.now(), &m.meta)
        .await?;
    Ok(Json(device_wire(&d)))
}

/// Delete (deactivate) a device; needs a second factor from the last 5 minutes.
#[utoipa::path(delete, path = "/api/v1/mfa-devices/{id}", tag = "mfa-devices", params(("id" = String, Path, description = "device or session id")), responses((status = 204, description = "deleted"), (status = 403, description = "recent_second_factor_required", body = api::ErrorBody), (status = 400, description = "malformed or invalid input", body = api::ErrorBody), (status = 401, description = "not signed in", body = api::ErrorBody)), security(("session" = [])))]
pub async fn delete_device(
    State(st): State<AppState>,
    auth: Auth,
    m: Meta,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    st.svc
        .delete_device(&auth, None, &id, st.clock.now(), &m.meta)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deactivate one device of another user (administrators, with a second factor of their own
/// from the last 5 minutes; never root's). The user's sessions end and the user is told.
#[utoipa::path(delete, path = "/api/v1/users/{name}/mfa-devices/{id}", tag = "users", params(("name" = String, Path, description = "user name"), ("id" = String, Path, description = "device id")), responses((status = 204, description = "deactivated"), (status = 403, description = "forbidden (not an administrator, or root's device) or recent_second_factor_required", body = api::ErrorBody), (status = 404, description = "unknown user or device", body = api::ErrorBody), (status = 401, description = "not signed in", body = api::ErrorBody)), security(("session" = [])))]
pub async fn admin_delete_device(
    State(st): State<AppState>,
    auth: Auth,
    m: Meta,
    Path((name, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    st.svc
        .delete_device(&auth, Some(&name), &id, st.clock.now(), &m.meta)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// All users with MFA status (administrators).
#[utoipa::path(get, path = "/api/v1/users", tag = "administration", responses((status = 200, body = Vec<api::User>), (status = 403, description = "forbidden", body = api::ErrorBody), (status = 400, description = "malformed or invalid input", body = api::ErrorBody), (status = 401, description = "not signed in", body = api::ErrorBody)), security(("session" = [])))]
pub async fn list_users(
    State(st): State<AppState>,
    auth: Auth,
    m: Meta,
) -> ApiResult<Json<Vec<api::User>>> {
    st.svc
        .require_admin(&auth, "list users", st.clock.now(), &m.meta)
        .await?;
    let users = st.svc.list_users().await?;
    Ok(Json(
        users
            .iter()
            .map(|u| user_wire(&u.account, u.enabled_devices))
            .collect(),
    ))
}

/// Create a user and its one-time setup link (administrators).
#[utoipa::path(post, path = "/api/v1/users", tag = "administration", request_body = api::CreateUserRequest, responses((status = 201, body = api::CreateUserResponse), (status = 409, description = "conflict", body = api::ErrorBody), (status = 400, description = "malformed or invalid input", body = api::ErrorBody), (status = 401, description = "not signed in", body = api::ErrorBody)), security(("session" = [])))]
pub async fn create_user(
    State(st): State<AppState>,
    auth: Auth,
    m: Meta,
    ApiJson(req): ApiJson<api::CreateUserRequest>,
) -> ApiResult<(StatusCode, Json<api::CreateUserResponse>)> {
    st.svc
        .require_admin(&auth, "create a user", st.clock.now(), &m.meta)
        .await?;
    let role = Role::parse(req.role.as_deref().unwrap_or("user"))?;
    let (account, link) = st
        .svc
        .create_user(
            &auth.account.name,
            NewUser {
                name: &req.user,
                role,
                email: req.email.as_deref(),
                phone: req.phone.as_deref(),
            },
            m.at(st.clock.now()),
            &mut OsRng,
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(api::CreateUserResponse {
            user: user_wire(&account, 0),
            setup_link: link.to_string(),
        }),
    ))
}

/// Remove all MFA devices of a user, unlock it and end its sessions (administrators).
#[utoipa::path(post, path = "/api/v1/users/{name}/reset-mfa", tag = "administration", params(("name" = String, Path, description = "user name")), responses((status = 204, description = "reset"), (status = 404, description = "not_found", body = api::ErrorBody), (status = 400, description = "malformed or invalid input", body = api::ErrorBody), (status = 401, description = "not signed in", body = api::ErrorBody)), security(("session" = [])))]
pub async fn reset_mfa(
    State(st): State<AppState>,
    auth: Auth,
    m: Meta,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    st.svc
        .admin_reset_mfa(&auth, &name, st.clock.now(), &m.meta)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Create an application key for the validate API (shown once; administrators).
#[utoipa::path(post, path = "/api/v1/app-keys", tag = "administration", request_body = api::CreateAppKeyRequest, responses((status = 201, body = api::CreateAppKeyResponse), (status = 403, description = "forbidden", body = api::ErrorBody), (status = 400, description = "malformed or invalid input", body = api::ErrorBody), (status = 401, description = "not signed in", body = api::ErrorBody)), security(("session" = [])))]
pub async fn create_app_key(
    State(st): State<AppState>,
    auth: Auth,
    m: Meta,
    ApiJson(req): ApiJson<api::CreateAppKeyRequest>,
) -> ApiResult<(StatusCode, Json<api::CreateAppKeyResponse>)> {
    st.svc
        .require_admin(&auth, "create an application key", st.clock.now(), &m.meta)
        .await?;
    let (record, key) = st
        .svc
        .new_app_key(
            &auth.account.name,
            &req.name,
            AppKeyPermissions {
                allow_root: req.allow_root,
                allow_no_device: req.allow_no_device,
            },
            st.clock.now(),
            &mut OsRng,
            &m.meta,
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(api::CreateAppKeyResponse {
            id: record.id,
            name: record.name,
            key: key.to_string(),
            allow_root: record.allow_root,
            allow_no_device: record.allow_no_device,
        }),
    ))
}

fn app_key_wire(k: AppKeyRecord) -> api::AppKey {
    api::AppKey {
        id: k.id,
        name: k.name,
        created_at: k.created_at,
        created_by: k.created_by,
        revoked_at: k.revoked_at,
        allow_root: k.allow_root,
        allow_no_device: k.allow_no_device,
    }
}

/// Application keys, revoked ones included, oldest first (administrators; no key material).
#[utoipa::path(get, path = "/api/v1/app-keys", tag = "administration", responses((status = 200, body = Vec<api::AppKey>), (status = 403, description = "forbidden", body = api::ErrorBody), (status = 401, description = "not signed in", body = api::ErrorBody)), security(("session" = [])))]
pub async fn list_app_keys(
    State(st): State<AppState>,
    auth: Auth,
    m: Meta,
) -> ApiResult<Json<Vec<api::AppKey>>> {
    let keys = st.svc.app_keys(&auth, st.clock.now(), &m.meta).await?;
    Ok(Json(keys.into_iter().map(app_key_wire).collect()))
}

/// Revoke an application key: it answers `invalid_app_key` from then on (administrators; a
/// second factor from the last 5 minutes if the administrator has MFA).
#[utoipa::path(delete, path = "/api/v1/app-keys/{id}", tag = "administration", params(("id" = String, Path, description = "application key id")), responses((status = 200, body = api::AppKey), (status = 403, description = "forbidden or recent_second_factor_required", body = api::ErrorBody), (status = 404, description = "not_found (unknown or already revoked)", body = api::ErrorBody), (status = 401, description = "not signed in", body = api::ErrorBody)), security(("session" = [])))]
pub async fn revoke_app_key(
    State(st): State<AppState>,
    auth: Auth,
    m: Meta,
    Path(id): Path<String>,
) -> ApiResult<Json<api::AppKey>> {
    let key = st
        .svc
        .admin_revoke_app_key(&auth, &id, st.clock.now(), &m.meta)
        .await?;
    Ok(Json(app_key_wire(key)))
}

/// Security alerts: all accounts for administrators, your own otherwise.
#[utoipa::path(get, path = "/api/v1/alerts", tag = "administration", responses((status = 200, body = api::AlertsResponse), (status = 400, description = "malformed or invalid input", body = api::ErrorBody), (status = 401, description = "not signed in", body = api::ErrorBody)), security(("session" = [])))]
pub async fn alerts(
    State(st): State<AppState>,
    auth: Auth,
) -> ApiResult<Json<api::AlertsResponse>> {
    let alerts = if auth.is_admin() {
        st.svc.all_alerts().await?
    } else {
        st.svc.account_alerts(&auth).await?
    };
    Ok(Json(api::AlertsResponse {
        alerts: alerts.into_iter().map(alert_wire).collect(),
    }))
}

/// Query of `GET /api/v1/audit`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct AuditQuery {
    /// Only events about this user.
    pub user: Option<String>,
    /// Only this kind, or kinds starting with it when it ends in `.`.
    pub kind: Option<String>,
    /// Only events after this id (paging).
    pub after: Option<i64>,
    /// Page size, 1–1000 (default 100).
    pub limit: Option<i64>,
}

/// Audit events, oldest first, paged (administrators see all; users their own).
#[utoipa::path(get, path = "/api/v1/audit", tag = "administration", params(AuditQuery), responses((status = 200, body = api::AuditPage), (status = 400, description = "malformed or invalid input", body = api::ErrorBody), (status = 401, description = "not signed in", body = api::ErrorBody)), security(("session" = [])))]
pub async fn audit(
    State(st): State<AppState>,
    auth: Auth,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult<Json<api::AuditPage>> {
    let user = auth.audit_scope(q.user)?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let events = st
        .svc
        .audit_events(&AuditFilter {
            account: user,
            kind: q.kind,
            after: q.after,
            limit,
        })
        .await?;
    let full = i64::try_from(events.len()).unwrap_or(0) == limit;
    let next_after = if full {
        events.last().map(|e| e.id)
    } else {
        None
    };
    Ok(Json(api::AuditPage {
        events: events.into_iter().map(audit_wire).collect(),
        next_after,
    }))
}
