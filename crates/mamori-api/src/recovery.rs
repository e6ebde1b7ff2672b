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
    // #15 delivery
    /// Where the code went, masked (`t•••@example.com`, `+81 ••• •••• 5678`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_to: Option<String>,
    /// How the code went: `email`, `sms` or `voice` (a phone call that reads it out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
}

// #15 delivery
/// `POST /api/v1/sign-in/recovery/phone/resend`: send the phone code again, as a text message
/// or as a call ("call me instead").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecoveryResendRequest {
    /// The challenge from `POST /api/v1/sign-in`.
    pub challenge: String,
    /// `sms` (default) or `voice`.
    #[serde(default)]
    pub channel: Option<String>,
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

/// `GET /api/v1/recovery-codes`: how many recovery codes remain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
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

/// `POST /api/v1/recovery-codes` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GenerateRequest {
    /// A current device code, when the session has not given one in the last 5 minutes.
    pub code: Option<String>,
    /// The device the code is from (optional).
    pub device_id: Option<String>,
}

/// `POST /api/v1/recovery-codes` answer: the codes, shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct GenerateResponse {
    /// The codes, `XXXXX-XXXXX`.
    pub codes: Vec<String>,
    /// When they were made.
    pub created_at: i64,
}

/// One contact detail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ContactWire {
    /// The value on the account.
    pub value: Option<String>,
    /// Whether exactly this value was proven with a code.
    pub verified: bool,
    /// A new value waiting for the code sent to it (`PUT /api/v1/me/contacts/{channel}`);
    /// it replaces `value` once confirmed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<String>,
}

/// `GET /api/v1/me/contacts`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ContactsResponse {
    /// Email address.
    pub email: ContactWire,
    /// Phone number.
    pub phone: ContactWire,
}

/// `POST /api/v1/me/contacts/{channel}/confirm` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmRequest {
    /// The 6-digit code that was sent.
    pub code: String,
}

// #15 recovery
/// `202` answer of the phone step when the waiting period applies (docs/recovery.md): no
/// session yet. `status` is `pending` when this proof started the waiting period, `not_ready`
/// when it was already running; prove email and phone again after `ready_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RecoveryPendingResponse {
    /// `pending` or `not_ready`.
    pub status: String,
    /// From when the recovery can be completed, Unix seconds.
    pub ready_at: i64,
}

// #15 contacts

/// `PUT /api/v1/me/contacts/{channel}` and `PUT /api/v1/users/{name}/contacts/{channel}` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetContactRequest {
    /// The new email address, or phone number (with `+` and country code, or as dialled in the
    /// server's `phone.default_region`; stored in E.164).
    pub value: String,
}

/// The answer to a contact change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SetContactResponse {
    /// `code_sent` (your own change: confirm with the code sent to the new value) or
    /// `set_unverified` (an administrator's change: the user proves the value later).
    pub status: String,
    /// The value in stored form (a phone number in E.164).
    pub value: String,
}
