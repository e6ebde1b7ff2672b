//! Recovery codes over the JSON API (docs/recovery.md). Signing in with a recovery code needs no
//! route of its own: `POST /api/v1/sign-in/mfa` accepts one in `code`.
//!
//! The wire types are in `mamori_api::recovery`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use rand::rngs::OsRng;

use super::handlers::ApiJson;
use super::{ApiResult, AppState, Auth, Meta};
use crate::domain::contacts::Channel;
use crate::domain::recovery::RecoveryStatus;

pub use mamori_api::recovery::{
    ConfirmRequest, ContactWire, ContactsResponse, GenerateRequest, GenerateResponse,
    RecoveryStatusResponse,
};

fn status_wire(s: RecoveryStatus) -> RecoveryStatusResponse {
    RecoveryStatusResponse {
        total: s.total,
        remaining: s.remaining,
        created_at: s.created_at,
        low: s.low(),
    }
}

/// How many recovery codes remain.
#[utoipa::path(get, path = "/api/v1/recovery-codes", tag = "recovery", responses((status = 200, body = RecoveryStatusResponse), (status = 401, description = "not signed in", body = mamori_api::ErrorBody), (status = 403, description = "mfa_enrollment_required or recovery_session_restricted", body = mamori_api::ErrorBody)), security(("session" = [])))]
pub async fn status(
    State(st): State<AppState>,
    auth: Auth,
) -> ApiResult<Json<RecoveryStatusResponse>> {
    auth.require_full()?;
    Ok(Json(status_wire(
        st.svc.recovery_status(&auth.account).await?,
    )))
}

/// Make a new set (the old one stops working). Needs a second factor from the last 5 minutes:
/// the session's, or `code` given here.
#[utoipa::path(post, path = "/api/v1/recovery-codes", tag = "recovery", request_body = GenerateRequest, responses((status = 201, body = GenerateResponse), (status = 403, description = "recent_second_factor_required", body = mamori_api::ErrorBody), (status = 409, description = "invalid_device_state: no enabled device", body = mamori_api::ErrorBody), (status = 401, description = "not signed in, or invalid_code", body = mamori_api::ErrorBody)), security(("session" = [])))]
pub async fn generate(
    State(st): State<AppState>,
    auth: Auth,
    m: Meta,
    ApiJson(req): ApiJson<GenerateRequest>,
) -> ApiResult<(StatusCode, Json<GenerateResponse>)> {
    auth.require_full()?;
    let now = st.clock.now();
    let mut auth = auth.0;
    if let Some(code) = req.code.as_deref() {
        st.svc
            .verify_in_session(&auth, code, req.device_id.as_deref(), now, &m.meta)
            .await?;
        auth.session.second_factor_at = Some(now);
    }
    let set = st
        .svc
        .generate_recovery_codes(&auth, now, &mut OsRng, &m.meta)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(GenerateResponse {
            codes: set.codes.iter().map(|c| c.to_string()).collect(),
            created_at: set.created_at,
        }),
    ))
}

/// The account's contact details and which are verified.
#[utoipa::path(get, path = "/api/v1/me/contacts", tag = "recovery", responses((status = 200, body = ContactsResponse), (status = 401, description = "not signed in", body = mamori_api::ErrorBody)), security(("session" = [])))]
pub async fn contacts(State(st): State<AppState>, auth: Auth) -> ApiResult<Json<ContactsResponse>> {
    auth.require_full()?;
    let c = st.svc.contacts_at(&auth.account, st.clock.now()).await?;
    let w = |c: crate::domain::contacts::Contact| ContactWire {
        value: c.value,
        verified: c.verified,
        pending: c.pending,
    };
    Ok(Json(ContactsResponse {
        email: w(c.email),
        phone: w(c.phone),
    }))
}

/// Send a verification code to the email address or phone number (`channel`).
#[utoipa::path(post, path = "/api/v1/me/contacts/{channel}/verify", tag = "recovery", params(("channel" = String, Path, description = "email or phone")), responses((status = 202, description = "a code was sent"), (status = 403, description = "forbidden: the channel is not configured", body = mamori_api::ErrorBody), (status = 400, description = "the account has no such contact", body = mamori_api::ErrorBody)), security(("session" = [])))]
pub async fn verify_contact(
    State(st): State<AppState>,
    auth: Auth,
    m: Meta,
    Path(channel): Path<String>,
) -> ApiResult<StatusCode> {
    let channel = Channel::parse(&channel)?;
    st.svc
        .start_contact_verification(&auth, channel, st.clock.now(), &mut OsRng, &m.meta)
        .await?;
    Ok(StatusCode::ACCEPTED)
}

/// Prove the contact detail with the code that was sent; when a change is pending (`PUT
/// /api/v1/me/contacts/{channel}`), the code confirms the change: the new value replaces the
/// old one, proven, and the old address is told.
#[utoipa::path(post, path = "/api/v1/me/contacts/{channel}/confirm", tag = "recovery", params(("channel" = String, Path, description = "email or phone")), request_body = ConfirmRequest, responses((status = 204, description = "proven (or the pending change made)"), (status = 401, description = "invalid_code", body = mamori_api::ErrorBody)), security(("session" = [])))]
pub async fn confirm_contact(
    State(st): State<AppState>,
    auth: Auth,
    m: Meta,
    Path(channel): Path<String>,
    ApiJson(req): ApiJson<ConfirmRequest>,
) -> ApiResult<StatusCode> {
    let channel = Channel::parse(&channel)?;
    st.svc
        .confirm_contact(&auth, channel, &req.code, st.clock.now(), &m.meta)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- #15 contacts: changing and removing contact details -----------------------------------

use crate::domain::contacts::ContactChangeOutcome;
pub use mamori_api::recovery::{SetContactRequest, SetContactResponse};

async fn set_contact_for(
    st: &AppState,
    auth: &Auth,
    m: &Meta,
    user: Option<&str>,
    channel: &str,
    req: &SetContactRequest,
) -> ApiResult<(StatusCode, Json<SetContactResponse>)> {
    let channel = Channel::parse(channel)?;
    let now = st.clock.now();
    let value = st.svc.normalize_contact(channel, &req.value)?;
    let outcome = st
        .svc
        .start_contact_change(auth, user, channel, &req.value, m.at(now), &mut OsRng)
        .await?;
    let (status, text) = match outcome {
        ContactChangeOutcome::CodeSent => (StatusCode::ACCEPTED, "code_sent"),
        ContactChangeOutcome::SetUnverified => (StatusCode::OK, "set_unverified"),
    };
    Ok((
        status,
        Json(SetContactResponse {
            status: text.into(),
            value,
        }),
    ))
}

/// Set (add or replace) your email address or phone number: needs a second factor from the
/// last 5 minutes when the account has MFA; refused in recovery and enrollment-only sessions.
/// The new value is pending until confirmed with the code sent to it (`POST
/// /api/v1/me/contacts/{channel}/confirm`).
#[utoipa::path(put, path = "/api/v1/me/contacts/{channel}", tag = "recovery", params(("channel" = String, Path, description = "email or phone")), request_body = SetContactRequest, responses((status = 202, description = "a code was sent to the new value", body = SetContactResponse), (status = 400, description = "invalid_input (email) or invalid_phone_number", body = mamori_api::ErrorBody), (status = 403, description = "recent_second_factor_required, recovery_session_restricted, mfa_enrollment_required, or forbidden (the channel is not configured)", body = mamori_api::ErrorBody), (status = 429, description = "rate_limited", body = mamori_api::ErrorBody)), security(("session" = [])))]
pub async fn set_my_contact(
    State(st): State<AppState>,
    auth: Auth,
    m: Meta,
    Path(channel): Path<String>,
    ApiJson(req): ApiJson<SetContactRequest>,
) -> ApiResult<(StatusCode, Json<SetContactResponse>)> {
    set_contact_for(&st, &auth, &m, None, &channel, &req).await
}

/// Remove your email address or phone number (same rule as setting one); the removed address
/// is told.
#[utoipa::path(delete, path = "/api/v1/me/contacts/{channel}", tag = "recovery", params(("channel" = String, Path, description = "email or phone")), responses((status = 204, description = "removed"), (status = 404, description = "no such contact", body = mamori_api::ErrorBody), (status = 403, description = "recent_second_factor_required, recovery_session_restricted or mfa_enrollment_required", body = mamori_api::ErrorBody)), security(("session" = [])))]
pub async fn remove_my_contact(
    State(st): State<AppState>,
    auth: Auth,
    m: Meta,
    Path(channel): Path<String>,
) -> ApiResult<StatusCode> {
    let channel = Channel::parse(&channel)?;
    st.svc
        .remove_contact(&auth, None, channel, st.clock.now(), &m.meta)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Administrators: set another account's email address or phone number. Needs the
/// administrator's second factor from the last 5 minutes; never root's. The value is stored
/// unverified: it counts for recovery only once the user proves it.
#[utoipa::path(put, path = "/api/v1/users/{name}/contacts/{channel}", tag = "users", params(("name" = String, Path, description = "user name"), ("channel" = String, Path, description = "email or phone")), request_body = SetContactRequest, responses((status = 200, description = "set, unverified", body = SetContactResponse), (status = 400, description = "invalid_input (email) or invalid_phone_number", body = mamori_api::ErrorBody), (status = 403, description = "forbidden or recent_second_factor_required", body = mamori_api::ErrorBody), (status = 404, description = "no such user", body = mamori_api::ErrorBody)), security(("session" = [])))]
pub async fn set_user_contact(
    State(st): State<AppState>,
    auth: Auth,
    m: Meta,
    Path((name, channel)): Path<(String, String)>,
    ApiJson(req): ApiJson<SetContactRequest>,
) -> ApiResult<(StatusCode, Json<SetContactResponse>)> {
    set_contact_for(&st, &auth, &m, Some(&name), &channel, &req).await
}

/// Administrators: remove another account's email address or phone number (same rule).
#[utoipa::path(delete, path = "/api/v1/users/{name}/contacts/{channel}", tag = "users", params(("name" = String, Path, description = "user name"), ("channel" = String, Path, description = "email or phone")), responses((status = 204, description = "removed"), (status = 403, description = "forbidden or recent_second_factor_required", body = mamori_api::ErrorBody), (status = 404, description = "no such user or contact", body = mamori_api::ErrorBody)), security(("session" = [])))]
pub async fn remove_user_contact(
    State(st): State<AppState>,
    auth: Auth,
    m: Meta,
    Path((name, channel)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let channel = Channel::parse(&channel)?;
    st.svc
        .remove_contact(&auth, Some(&name), channel, st.clock.now(), &m.meta)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- Signing in with alternative factors (docs/recovery.md) --------------------------------

use axum::http::Method;
use axum::response::{IntoResponse, Response};
use mamori_api::recovery as wire;

use crate::domain::recovery_signin::{RecoveryOutcome, StepStarted};

fn step_wire(s: StepStarted) -> (StatusCode, Json<wire::RecoveryStepResponse>) {
    (
        StatusCode::ACCEPTED,
        Json(wire::RecoveryStepResponse {
            next: s.next.as_str().into(),
            expires_at: s.expires_at,
            sent_to: Some(s.sent_to),
            channel: Some(s.channel.into()),
        }),
    )
}

/// Start signing in with alternative factors: a code goes to the verified email address.
#[utoipa::path(post, path = "/api/v1/sign-in/recovery", tag = "sign-in", request_body = wire::RecoveryStartRequest, responses((status = 202, body = wire::RecoveryStepResponse), (status = 401, description = "invalid_challenge", body = mamori_api::ErrorBody), (status = 403, description = "forbidden: the policy is off, the contacts are not both verified, or email/phone are not configured", body = mamori_api::ErrorBody), (status = 429, description = "rate_limited", body = mamori_api::ErrorBody), (status = 503, description = "delivery_failed: the email could not be sent; no usable code was left", body = mamori_api::ErrorBody)))]
pub async fn recovery_start(
    State(st): State<AppState>,
    m: Meta,
    ApiJson(req): ApiJson<wire::RecoveryStartRequest>,
) -> ApiResult<(StatusCode, Json<wire::RecoveryStepResponse>)> {
    st.check_sign_in_rate(m.ip)?;
    let s = st
        .svc
        .start_recovery_sign_in(&req.challenge, st.clock.now(), &mut OsRng, &m.meta)
        .await?;
    Ok(step_wire(s))
}

/// The email code: when right, a code goes to the verified phone number.
#[utoipa::path(post, path = "/api/v1/sign-in/recovery/email", tag = "sign-in", request_body = wire::RecoveryCodeRequest, responses((status = 202, body = wire::RecoveryStepResponse), (status = 401, description = "invalid_code or invalid_challenge", body = mamori_api::ErrorBody), (status = 423, description = "account_locked", body = mamori_api::ErrorBody), (status = 429, description = "rate_limited", body = mamori_api::ErrorBody), (status = 503, description = "delivery_failed: the email code was accepted but the phone code could not be sent; use /phone/resend", body = mamori_api::ErrorBody)))]
pub async fn recovery_email(
    State(st): State<AppState>,
    m: Meta,
    ApiJson(req): ApiJson<wire::RecoveryCodeRequest>,
) -> ApiResult<(StatusCode, Json<wire::RecoveryStepResponse>)> {
    st.check_sign_in_rate(m.ip)?;
    let s = st
        .svc
        .recovery_email_code(
            &req.challenge,
            &req.code,
            st.clock.now(),
            &mut OsRng,
            &m.meta,
        )
        .await?;
    Ok(step_wire(s))
}

/// The phone code: when right, a recovery session begins (MFA device management only).
#[utoipa::path(post, path = "/api/v1/sign-in/recovery/phone", tag = "sign-in", request_body = wire::RecoveryCodeRequest, responses((status = 200, body = wire::RecoverySessionResponse), (status = 202, description = "the waiting period applies: no session yet (status pending or not_ready)", body = wire::RecoveryPendingResponse), (status = 401, description = "invalid_code or invalid_challenge", body = mamori_api::ErrorBody), (status = 423, description = "account_locked", body = mamori_api::ErrorBody), (status = 429, description = "rate_limited", body = mamori_api::ErrorBody)))]
pub async fn recovery_phone(
    State(st): State<AppState>,
    m: Meta,
    ApiJson(req): ApiJson<wire::RecoveryCodeRequest>,
) -> ApiResult<Response> {
    st.check_sign_in_rate(m.ip)?;
    let outcome = st
        .svc
        .recovery_phone_code(
            &req.challenge,
            &req.code,
            st.clock.now(),
            &mut OsRng,
            &m.meta,
        )
        .await?;
    // #15 recovery: the waiting period answers 202 without a session.
    let s = match outcome {
        RecoveryOutcome::Session(s, _) => s,
        RecoveryOutcome::Pending { ready_at, started } => {
            let body = wire::RecoveryPendingResponse {
                status: if started { "pending" } else { "not_ready" }.into(),
                ready_at,
            };
            return Ok((StatusCode::ACCEPTED, Json(body)).into_response());
        }
    };
    let body = Json(wire::RecoverySessionResponse {
        status: "recovery".into(),
        token: s.token.to_string(),
        expires_at: s.record.expires_at,
    });
    Ok(super::handlers::with_cookie(&st, &s, body))
}

// #15 delivery
/// "Send again" / "call me instead" on the phone step: a new phone code by text message
/// (`sms`) or by a call that reads it out (`voice`); the previous phone code stops working.
#[utoipa::path(post, path = "/api/v1/sign-in/recovery/phone/resend", tag = "sign-in", request_body = wire::RecoveryResendRequest, responses((status = 202, body = wire::RecoveryStepResponse), (status = 400, description = "invalid_input: unknown channel, or no phone step to send again", body = mamori_api::ErrorBody), (status = 401, description = "invalid_challenge", body = mamori_api::ErrorBody), (status = 403, description = "forbidden: no verified phone number any more", body = mamori_api::ErrorBody), (status = 423, description = "account_locked", body = mamori_api::ErrorBody), (status = 429, description = "rate_limited: at most 3 per hour", body = mamori_api::ErrorBody), (status = 503, description = "delivery_failed: the gateway failed; no usable code was left", body = mamori_api::ErrorBody)))]
pub async fn recovery_phone_resend(
    State(st): State<AppState>,
    m: Meta,
    ApiJson(req): ApiJson<wire::RecoveryResendRequest>,
) -> ApiResult<(StatusCode, Json<wire::RecoveryStepResponse>)> {
    st.check_sign_in_rate(m.ip)?;
    let channel = crate::domain::delivery::PhoneChannel::parse(req.channel.as_deref())?;
    let s = st
        .svc
        .resend_recovery_phone_code(&req.challenge, channel, st.clock.now(), &mut OsRng, &m.meta)
        .await?;
    Ok(step_wire(s))
}

/// The API a recovery session may use: MFA device management, who am I, and sign-out
/// (`path` is the route pattern). Everything else answers `recovery_session_restricted`.
pub fn recovery_session_allows(method: &Method, path: &str) -> bool {
    matches!(
        (method.as_str(), path),
        ("GET", "/api/v1/me")
            | ("POST", "/api/v1/sign-out")
            | ("GET", "/api/v1/mfa-devices")
            | ("POST", "/api/v1/mfa-devices/virtual")
            | ("POST", "/api/v1/mfa-devices/hardware")
            | ("POST", "/api/v1/mfa-devices/{id}/enable")
            | ("POST", "/api/v1/mfa-devices/{id}/resync")
            | ("DELETE", "/api/v1/mfa-devices/{id}")
            // The security-key registration routes authenticate on their own (outside
            // `require_session`) and allow a recovery session too; listed for completeness.
            | ("POST", "/api/v1/mfa-devices/security-key/begin")
            | ("POST", "/api/v1/mfa-devices/security-key/finish")
    )
}

/// The refusal of a request outside [`recovery_session_allows`].
pub fn restricted() -> Response {
    super::ApiError::from(crate::Error::RecoverySessionRestricted).into_response()
}
