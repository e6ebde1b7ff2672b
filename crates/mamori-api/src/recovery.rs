//! Wire types of signing in with alternative factors (`/api/v1/sign-in/recovery…`,
//! docs/recovery.md): the email code, then the phone code, then a recovery session that may only
//! manage MFA devices.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /api/v1/sign-in/recovery`: start with the challenge of the password step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecoveryStartRequest {
    /// The challenge from `POST /api/v1/sign-in` (`mfa_required`).
    pub challenge: String,
}

/// `POST /api/v1/sign-in/recovery/email` and `/phone`: a code for the current step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecoveryCodeRequest {
    /// The challenge from `POST /api/v1/sign-in`.
    pub challenge: String,
    /// The 6-digit code that was sent.
    pub code: String,
}

/// `202` answer of the start and of the email step: which code was sent and until when it is
/// valid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RecoveryStepResponse {
    /// `email_code` (a code went to the verified email address) or `phone_code` (a code went
    /// to the verified phone number).
    pub next: String,
    /// When that code expires, Unix seconds.
    pub expires_at: i64,
}

/// `200` answer of the phone step: the recovery session (also set as the session cookie).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RecoverySessionResponse {
    /// Always `recovery`: the session may only manage MFA devices.
    pub status: String,
    /// Bearer token of the recovery session.
    pub token: String,
    /// When it ends at the latest, Unix seconds.
    pub expires_at: i64,
}
