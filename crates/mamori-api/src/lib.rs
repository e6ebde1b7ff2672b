//! Request, response and error types of the mamori account service's JSON API (`/api/v1`).
//!
//! This crate holds wire types only: serde structs and the error-code enum, no logic. The server
//! converts between these and its domain types at the HTTP edge; clients (the web console, the
//! `mamori` CLI, other applications) deserialize them. Times are Unix seconds (UTC).
#![forbid(unsafe_code)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
#![warn(missing_docs)]

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub mod recovery;
pub mod review;
pub mod sync;
pub mod webauthn;
// #15 polish
pub mod groups;
// #17 the OpenID provider
pub mod oidc;
pub mod preferences;

/// Every error code the API returns, as the `error.code` string of an [`ErrorBody`].
///
/// The HTTP status for each is fixed and documented in `docs/api.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// 400: the body is not valid JSON or misses a field.
    MalformedRequest,
    /// 400: a field has an invalid value (the message names it).
    InvalidInput,
    /// 413: the request body is larger than the configured limit.
    PayloadTooLarge,
    /// 401: wrong user name or password (deliberately not saying which).
    InvalidCredentials,
    /// 401: no session, or the session expired or was revoked.
    Unauthenticated,
    /// 403: the session may not do this (not an administrator, or MFA enrollment is required first).
    Forbidden,
    /// 403: MFA enrollment is required before anything else.
    MfaEnrollmentRequired,
    /// 401: the sign-in challenge is unknown, used or expired.
    InvalidChallenge,
    /// 401: the one-time code is wrong (or was already used).
    InvalidCode,
    /// 400: both codes are valid but not for consecutive time steps.
    CodesNotConsecutive,
    /// 403: a second factor given within the last 5 minutes is needed for this change.
    RecentSecondFactorRequired,
    /// 423: the account is locked after too many failed second-factor attempts.
    AccountLocked,
    /// 429: too many attempts; retry after the `Retry-After` header's seconds.
    RateLimited,
    /// 404: no such resource (or not yours).
    NotFound,
    /// 409: the name is already taken.
    Conflict,
    /// 409: the account already has the maximum number of MFA devices.
    DeviceLimitReached,
    /// 409: the device is in the wrong state (e.g. enabling an enabled device).
    InvalidDeviceState,
    /// 400: the password does not meet the policy (the message says why).
    WeakPassword,
    /// 401: the setup token is unknown, used or expired.
    InvalidSetupToken,
    /// 401: the application key is missing, unknown or revoked.
    InvalidAppKey,
    /// 408/503: the request took too long.
    Timeout,
    /// 403: a recovery session (signed in with alternative factors) may only manage MFA
    /// devices until a new device is enabled.
    RecoverySessionRestricted,
    /// 400: the security-key ceremony is unknown, already finished, expired or not this
    /// session's: begin again.
    InvalidCeremony,
    /// 401: the security key's answer was not accepted (wrong key, bad signature, or a
    /// signature counter that did not move forward).
    SecurityKeyRejected,
    /// 403: a state-changing request authenticated by the session cookie was not a same-origin
    /// JSON request (`Content-Type: application/json`, or `X-Requested-With` without a body, and
    /// no foreign `Origin`): it may have been forged by another site.
    CrossSiteRequest,
    // #15 delivery
    /// 503: a code could not be sent (the mail server or phone gateway failed or did not
    /// answer in time); nothing was sent and no usable code was left behind: try again later or
    /// use another way.
    DeliveryFailed,
    /// 500: an internal error; details are in the server log, never in the response.
    Internal,
    // #15 defaults
    /// 403: an administrator without an enabled MFA device of their own may not use
    /// administrative functions (whatever `require_mfa` says): enroll a device first.
    AdminWithoutMfa,

    // #15 contacts
    /// 400: the phone number is not a valid number (for the server's default region when it
    /// has no `+` country code); it is stored and sent in E.164 form (`+819012345678`).
    InvalidPhoneNumber,

    // #21 faults
    /// 503: the database was unreachable or could not write (a restart, a lost connection, a
    /// full disk); retry after the `Retry-After` seconds.
    Unavailable,
}

impl ErrorCode {
    /// Every code, in declaration order (for the test that holds docs/api.md to this enum).
    pub const ALL: [ErrorCode; 30] = [
        ErrorCode::MalformedRequest,
        ErrorCode::InvalidInput,
        ErrorCode::PayloadTooLarge,
        ErrorCode::InvalidCredentials,
        ErrorCode::Unauthenticated,
        ErrorCode::Forbidden,
        ErrorCode::MfaEnrollmentRequired,
        ErrorCode::InvalidChallenge,
        ErrorCode::InvalidCode,
        ErrorCode::CodesNotConsecutive,
        ErrorCode::RecentSecondFactorRequired,
        ErrorCode::AccountLocked,
        ErrorCode::RateLimited,
        ErrorCode::NotFound,
        ErrorCode::Conflict,
        ErrorCode::DeviceLimitReached,
        ErrorCode::InvalidDeviceState,
        ErrorCode::WeakPassword,
        ErrorCode::InvalidSetupToken,
        ErrorCode::InvalidAppKey,
        ErrorCode::Timeout,
        ErrorCode::RecoverySessionRestricted,
        ErrorCode::InvalidCeremony,
        ErrorCode::SecurityKeyRejected,
        ErrorCode::CrossSiteRequest,
        ErrorCode::DeliveryFailed,
        ErrorCode::Internal,
        ErrorCode::AdminWithoutMfa,
        ErrorCode::InvalidPhoneNumber,
        ErrorCode::Unavailable,
    ];

    /// Its place in [`ErrorCode::ALL`]. The match is exhaustive, so a new variant needs an arm
    /// here, and an index past the end of `ALL` fails the test below until `ALL` has it too.
    #[cfg(test)]
    fn position(self) -> usize {
        match self {
            ErrorCode::MalformedRequest => 0,
            ErrorCode::InvalidInput => 1,
            ErrorCode::PayloadTooLarge => 2,
            ErrorCode::InvalidCredentials => 3,
            ErrorCode::Unauthenticated => 4,
            ErrorCode::Forbidden => 5,
            ErrorCode::MfaEnrollmentRequired => 6,
            ErrorCode::InvalidChallenge => 7,
            ErrorCode::InvalidCode => 8,
            ErrorCode::CodesNotConsecutive => 9,
            ErrorCode::RecentSecondFactorRequired => 10,
            ErrorCode::AccountLocked => 11,
            ErrorCode::RateLimited => 12,
            ErrorCode::NotFound => 13,
            ErrorCode::Conflict => 14,
            ErrorCode::DeviceLimitReached => 15,
            ErrorCode::InvalidDeviceState => 16,
            ErrorCode::WeakPassword => 17,
            ErrorCode::InvalidSetupToken => 18,
            ErrorCode::InvalidAppKey => 19,
            ErrorCode::Timeout => 20,
            ErrorCode::RecoverySessionRestricted => 21,
            ErrorCode::InvalidCeremony => 22,
            ErrorCode::SecurityKeyRejected => 23,
            ErrorCode::CrossSiteRequest => 24,
            ErrorCode::DeliveryFailed => 25,
            ErrorCode::Internal => 26,
            ErrorCode::AdminWithoutMfa => 27,
            ErrorCode::InvalidPhoneNumber => 28,
            ErrorCode::Unavailable => 29,
        }
    }

    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::MalformedRequest => "malformed_request",
            ErrorCode::InvalidInput => "invalid_input",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::InvalidCredentials => "invalid_credentials",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::MfaEnrollmentRequired => "mfa_enrollment_required",
            ErrorCode::InvalidChallenge => "invalid_challenge",
            ErrorCode::InvalidCode => "invalid_code",
            ErrorCode::CodesNotConsecutive => "codes_not_consecutive",
            ErrorCode::RecentSecondFactorRequired => "recent_second_factor_required",
            ErrorCode::AccountLocked => "account_locked",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Conflict => "conflict",
            ErrorCode::DeviceLimitReached => "device_limit_reached",
            ErrorCode::InvalidDeviceState => "invalid_device_state",
            ErrorCode::WeakPassword => "weak_password",
            ErrorCode::InvalidSetupToken => "invalid_setup_token",
            ErrorCode::InvalidAppKey => "invalid_app_key",
            ErrorCode::Timeout => "timeout",
            ErrorCode::RecoverySessionRestricted => "recovery_session_restricted",
            ErrorCode::InvalidCeremony => "invalid_ceremony",
            ErrorCode::SecurityKeyRejected => "security_key_rejected",
            ErrorCode::CrossSiteRequest => "cross_site_request",
            // #15 delivery
            ErrorCode::DeliveryFailed => "delivery_failed",
            ErrorCode::Internal => "internal",
            // #15 defaults
            ErrorCode::AdminWithoutMfa => "admin_without_mfa",

            // #15 contacts
            ErrorCode::InvalidPhoneNumber => "invalid_phone_number",
            // #21 faults
            ErrorCode::Unavailable => "unavailable",
        }
    }
}

/// The body of every error response: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// The error inside an [`ErrorBody`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Machine-readable code.
    pub code: ErrorCode,
    /// One sentence for people: what is wrong and what to do.
    pub message: String,
}

/// A security alert about the account posture.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Alert {
    /// `root_without_mfa`, `user_without_mfa` or `single_mfa_device`.
    pub kind: String,
    /// The account concerned.
    pub user: String,
    /// A sentence for people.
    pub message: String,
}

/// `POST /api/v1/setup`: choose the password of an account from its one-time setup link.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SetupRequest {
    /// The token from the setup link.
    pub token: String,
    /// The new password.
    pub password: String,
}

/// Answer to a successful setup.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SetupResponse {
    /// The account whose password was set.
    pub user: String,
}

/// `POST /api/v1/sign-in`: the password step.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SignInRequest {
    /// User name.
    pub user: String,
    /// Password.
    pub password: String,
}

/// A device offered in a sign-in challenge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ChallengeDevice {
    /// Device id.
    pub id: String,
    /// Device name.
    pub name: String,
    /// Device kind: `virtual`, `security_key` or `hardware_otp`.
    pub kind: String,
}

/// Answer to a sign-in step.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum SignInResponse {
    /// The password was right and the account has MFA: send a code with the challenge.
    MfaRequired {
        /// Opaque challenge for `POST /api/v1/sign-in/mfa` (valid 5 minutes).
        challenge: String,
        /// The enabled devices that can answer.
        devices: Vec<ChallengeDevice>,
    },
    /// Signed in. The token also arrives as the `mamori_session` cookie.
    SignedIn {
        /// Bearer token for API clients.
        token: String,
        /// Session expiry (absolute), Unix seconds.
        expires_at: i64,
        /// Security alerts for this account (e.g. no MFA).
        alerts: Vec<Alert>,
    },
    /// The policy requires MFA: the session may only enroll a device until one is enabled.
    MfaEnrollmentRequired {
        /// Bearer token of the restricted session.
        token: String,
        /// Session expiry (absolute), Unix seconds.
        expires_at: i64,
        /// Security alerts for this account.
        alerts: Vec<Alert>,
    },
}

/// `POST /api/v1/sign-in/mfa`: the code step.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MfaRequest {
    /// The challenge from the password step.
    pub challenge: String,
    /// The one-time code.
    pub code: String,
    /// Optional device id; without it every enabled OTP device is tried.
    #[serde(default)]
    pub device_id: Option<String>,
}

/// `POST /api/v1/session/verify`: give a second factor again (needed before sensitive changes).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VerifyRequest {
    /// The one-time code.
    pub code: String,
    /// Optional device id.
    #[serde(default)]
    pub device_id: Option<String>,
}

/// The signed-in account.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MeResponse {
    /// Account id.
    pub id: String,
    /// User name.
    pub user: String,
    /// `admin` or `user`.
    pub role: String,
    /// Contact email.
    pub email: Option<String>,
    /// Contact phone.
    pub phone: Option<String>,
    /// Number of enabled MFA devices.
    pub mfa_devices: u32,
    /// Security alerts for this account.
    pub alerts: Vec<Alert>,
}

/// `POST /api/v1/me/password`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChangePasswordRequest {
    /// The current password.
    pub current_password: String,
    /// The new password.
    pub new_password: String,
}

/// `POST /api/v1/mfa-devices/virtual`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreateVirtualDeviceRequest {
    /// Device name, unique per user (1–64 characters: letters, digits, `+=,.@_-`).
    pub name: String,
}

/// A new virtual MFA device, not yet enabled. The secret is shown only here.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreateVirtualDeviceResponse {
    /// Device id.
    pub id: String,
    /// Serial, `mamori:mfa/USER/NAME`.
    pub serial: String,
    /// The Base32 seed.
    pub secret_base32: String,
    /// `otpauth://totp/...` with the configured issuer.
    pub otpauth_uri: String,
    /// QR code of the URI as an SVG document.
    pub qr_svg: String,
    /// QR code of the URI as a PNG image, Base64.
    pub qr_png_base64: String,
}

/// `POST /api/v1/mfa-devices/{id}/enable` and `/resync`: two consecutive codes.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TwoCodesRequest {
    /// The first code.
    pub code1: String,
    /// The next code shown after it.
    pub code2: String,
}

/// Answer to enabling a device: the device, and the new session token (the session was renewed).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EnableDeviceResponse {
    /// The device.
    pub device: Device,
    /// A fresh full session token replacing the one used (also set as cookie).
    pub token: Option<String>,
}

/// `PATCH /api/v1/mfa-devices/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RenameDeviceRequest {
    /// The new name.
    pub name: String,
}

/// An MFA device as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Device {
    /// Device id.
    pub id: String,
    /// `virtual`, `security_key` or `hardware_otp`.
    pub kind: String,
    /// Name.
    pub name: String,
    /// Serial.
    pub serial: String,
    /// When created.
    pub created_at: i64,
    /// When enabled, if it is.
    pub enabled_at: Option<i64>,
    /// When last used to sign in or validate.
    pub last_used_at: Option<i64>,
}

/// A session as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Session {
    /// Public session id (not the token).
    pub id: String,
    /// When created.
    pub created_at: i64,
    /// Last activity.
    pub last_seen_at: i64,
    /// Client address at sign-in.
    pub client_addr: Option<String>,
    /// User agent at sign-in.
    pub user_agent: Option<String>,
    /// Whether this is the session making the request.
    pub current: bool,
}

/// `POST /api/v1/users` (administrators).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreateUserRequest {
    /// User name (1–64 characters: letters, digits, `+=,.@_-`).
    pub user: String,
    /// `admin` or `user` (default `user`).
    #[serde(default)]
    pub role: Option<String>,
    /// Contact email.
    #[serde(default)]
    pub email: Option<String>,
    /// Contact phone.
    #[serde(default)]
    pub phone: Option<String>,
}

/// A new account and its one-time setup link (valid 1 hour).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreateUserResponse {
    /// The account.
    pub user: User,
    /// Link where the user chooses a password.
    pub setup_link: String,
}

/// An account as listed to administrators.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct User {
    /// Account id.
    pub id: String,
    /// User name.
    pub user: String,
    /// `admin` or `user`.
    pub role: String,
    /// Contact email.
    pub email: Option<String>,
    /// Contact phone.
    pub phone: Option<String>,
    /// When created.
    pub created_at: i64,
    /// Whether a password is set.
    pub password_enabled: bool,
    /// Enabled MFA devices.
    pub mfa_devices: u32,
    /// Whether the account is locked after failed second-factor attempts.
    pub locked: bool,
}

/// `POST /api/v1/app-keys` (administrators).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreateAppKeyRequest {
    /// A name for the application (e.g. `vpn`).
    pub name: String,
    /// Whether the key may validate root's codes (default false: for root it answers as for
    /// an unknown user, so the application cannot lock root out).
    #[serde(default)]
    pub allow_root: bool,
    /// Whether the key may ask whether an account has no MFA device (`POST
    /// /api/v1/validate/status`, the PAM module's `no_device = allow`; default false: such a key
    /// is refused there and learns nothing about accounts).
    #[serde(default)]
    pub allow_no_device: bool,
}

/// A new application key. The key is shown only here.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreateAppKeyResponse {
    /// Key id.
    pub id: String,
    /// Name.
    pub name: String,
    /// The key, to send as `Authorization: Bearer KEY` to `/api/v1/validate`.
    pub key: String,
    /// Whether the key may validate root's codes.
    pub allow_root: bool,
    /// Whether the key may ask whether an account has no MFA device.
    pub allow_no_device: bool,
}

/// An application key in `GET /api/v1/app-keys` (never the key itself, which only exists
/// hashed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AppKey {
    /// Key id (for `DELETE /api/v1/app-keys/{id}`).
    pub id: String,
    /// Name of the application.
    pub name: String,
    /// When created.
    pub created_at: i64,
    /// Who created it (an administrator, or `admin-cli`).
    pub created_by: Option<String>,
    /// When revoked; a revoked key answers `invalid_app_key`.
    pub revoked_at: Option<i64>,
    /// Whether the key may validate root's codes.
    pub allow_root: bool,
    /// Whether the key may ask whether an account has no MFA device.
    #[serde(default)]
    pub allow_no_device: bool,
}

/// `POST /api/v1/validate` (application key).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ValidateRequest {
    /// User name.
    pub user: String,
    /// The one-time code.
    pub code: String,
}

/// Answer of the validate API (always 200 for a well-formed, authorised request).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ValidateResponse {
    /// `accept` or `reject`.
    pub result: String,
    /// For a reject: `invalid_code` (also unknown users and accounts without devices),
    /// `account_locked` or `throttled`.
    pub reason: Option<String>,
}

/// `POST /api/v1/validate/status` (application key with `allow_no_device`): must this user give
/// a code?
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ValidateStatusRequest {
    /// User name.
    pub user: String,
}

/// Answer of `POST /api/v1/validate/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ValidateStatusResponse {
    /// `no_device`: the account exists, is not locked and has no enabled MFA device (the
    /// application may let the user in without a code, if it chose to); `code_required`:
    /// anything else, unknown names included — ask for a code and validate it.
    pub status: String,
}

/// Security alerts (administrators): the whole installation.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AlertsResponse {
    /// The alerts.
    pub alerts: Vec<Alert>,
}

/// One audit event. Never contains secrets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuditEvent {
    /// Sequence number (increasing).
    pub id: i64,
    /// Unix seconds.
    pub at: i64,
    /// The account concerned, if any.
    pub account: Option<String>,
    /// Who did it (a user name, `app:NAME`, `admin-cli` or `system`).
    pub actor: Option<String>,
    /// Client address.
    pub client_addr: Option<String>,
    /// User agent.
    pub user_agent: Option<String>,
    /// Event kind, e.g. `sign_in.password`, `mfa.enable`, `validate`.
    pub kind: String,
    /// `success` or `failure` (or a refusal reason such as `replay`, `locked`).
    pub result: String,
    /// Extra non-secret detail (a device name, a reason).
    pub detail: Option<String>,
}

/// A page of audit events, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditPage {
    /// The events.
    pub events: Vec<AuditEvent>,
    /// Pass as `after` to get the next page; absent when this page was the last.
    pub next_after: Option<i64>,
}

/// `GET /healthz`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: String,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn all_lists_every_code_once() {
        for (i, code) in ErrorCode::ALL.iter().enumerate() {
            assert_eq!(code.position(), i, "{code:?}");
        }
    }

    #[test]
    fn error_codes_serialize_as_their_documented_strings() {
        // The error table of docs/api.md: `| `code` | status | when |` rows.
        let doc =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/api.md"))
                .unwrap();
        let documented: std::collections::BTreeSet<&str> = doc
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split_once("` | "))
            // Only the error table's rows: the second column is an HTTP status.
            .filter(|(_, rest)| {
                rest.get(..4)
                    .is_some_and(|s| s.ends_with(' ') && s[..3].bytes().all(|b| b.is_ascii_digit()))
            })
            .map(|(code, _)| code)
            .collect();
        for code in ErrorCode::ALL {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert!(
                documented.contains(code.as_str()),
                "{} is missing from the error table of docs/api.md",
                code.as_str()
            );
        }
        let known: std::collections::BTreeSet<&str> =
            ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        let extra: Vec<&&str> = documented.difference(&known).collect();
        assert!(
            extra.is_empty(),
            "docs/api.md documents codes the API does not have: {extra:?}"
        );
    }

    #[test]
    fn sign_in_response_is_tagged_by_status() {
        let r = SignInResponse::MfaRequired {
            challenge: "c".into(),
            devices: vec![],
        };
        let v: serde_json::Value = serde_json::to_value(&r).unwrap();
        assert_eq!(v["status"], "mfa_required");
        assert_eq!(v["challenge"], "c");
    }
}
