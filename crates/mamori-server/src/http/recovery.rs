//! Recovery codes over the JSON API (docs/recovery.md). Signing in with a recovery code needs no
//! route of its own: `POST /api/v1/sign-in/mfa` accepts one in `code`.
//!
//! The wire types live here rather than in `mamori-api` for now; they are plain serde structs
//! with the same conventions.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use rand::rngs::OsRng;
use serde::{Deserialize, Serialize};

use super::handlers::ApiJson;
use super::{ApiResult, AppState, Auth, Meta};
use crate::domain::contacts::Channel;
use crate::domain::recovery::RecoveryStatus;

/// `GET /api/v1/recovery-codes`.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct RecoveryStatusResponse {
    /// Codes in the set (0: none made yet).
    pub total: usize,
    /// Unused codes.
    pub remaining: usize,
    /// When the set was made (Unix seconds).
    pub created_at: Option<i64>,
    /// Two or fewer remain: make a new set.
    pub low: bool,
}

impl From<RecoveryStatus> for RecoveryStatusResponse {
    fn from(s: RecoveryStatus) -> Self {
        RecoveryStatusResponse {
            total: s.total,
            remaining: s.remaining,
            created_at: s.created_at,
            low: s.low(),
        }
    }
}

/// `POST /api/v1/recovery-codes` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerateRequest {
    /// A current device code, when the session has not given one in the last 5 minutes.
    pub code: Option<String>,
    /// The device the code is from (optional).
    pub device_id: Option<String>,
}

/// `POST /api/v1/recovery-codes` answer: the codes, shown this once.
#[derive(Serialize)]
pub struct GenerateResponse {
    /// The codes, `XXXXX-XXXXX`.
    pub codes: Vec<String>,
    /// When they were made.
    pub created_at: i64,
}

/// How many recovery codes remain.
pub async fn status(
    State(st): State<AppState>,
    auth: Auth,
) -> ApiResult<Json<RecoveryStatusResponse>> {
    auth.require_full()?;
    Ok(Json(st.svc.recovery_status(&auth.account).await?.into()))
}

/// Make a new set (the old one stops working). Needs a second factor from the last 5 minutes:
/// the session's, or `code` given here.
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

/// One contact detail.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ContactWire {
    /// The value on the account.
    pub value: Option<String>,
    /// Whether exactly this value was proven with a code.
    pub verified: bool,
}

/// `GET /api/v1/me/contacts`.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ContactsResponse {
    /// Email address.
    pub email: ContactWire,
    /// Phone number.
    pub phone: ContactWire,
}

/// `POST /api/v1/me/contacts/{channel}/confirm` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmRequest {
    /// The 6-digit code that was sent.
    pub code: String,
}

/// The account's contact details and which are verified.
pub async fn contacts(State(st): State<AppState>, auth: Auth) -> ApiResult<Json<ContactsResponse>> {
    auth.require_full()?;
    let c = st.svc.contacts(&auth.account).await?;
    let w = |c: crate::domain::contacts::Contact| ContactWire {
        value: c.value,
        verified: c.verified,
    };
    Ok(Json(ContactsResponse {
        email: w(c.email),
        phone: w(c.phone),
    }))
}

/// Send a verification code to the email address or phone number (`channel`).
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

/// Prove the contact detail with the code that was sent.
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
