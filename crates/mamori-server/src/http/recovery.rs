//! Recovery codes over the JSON API (docs/recovery.md). Signing in with a recovery code needs no
//! route of its own: `POST /api/v1/sign-in/mfa` accepts one in `code`.
//!
//! The wire types live here rather than in `mamori-api` for now; they are plain serde structs
//! with the same conventions.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use rand::rngs::OsRng;
use serde::{Deserialize, Serialize};

use super::handlers::ApiJson;
use super::{ApiResult, AppState, Auth, Meta};
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
