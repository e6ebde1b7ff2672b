//! Security keys (WebAuthn/FIDO2): the begin/finish ceremonies of registration and of the
//! second-factor step (`docs/security-keys.md`).
//!
//! The WebAuthn dictionaries themselves are passed through as JSON objects in the shape the
//! browser API uses (binary fields as Base64url): `options` holds `{"publicKey": …}` for
//! `navigator.credentials.create()`/`get()`, and `credential` the resulting
//! `PublicKeyCredential` with its `ArrayBuffer`s encoded as Base64url.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /api/v1/mfa-devices/security-key/begin`: start registering a security key.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterBeginRequest {
    /// The name the key gets (unique per user).
    pub name: String,
}

/// A ceremony just begun: pass `options` to the authenticator, then send its answer with the
/// `ceremony` id to the matching finish endpoint within 5 minutes. Single use.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CeremonyBegun {
    /// Ceremony id for the finish request.
    pub ceremony: String,
    /// `{"publicKey": PublicKeyCredentialCreationOptions | PublicKeyCredentialRequestOptions}`.
    #[schema(value_type = Object)]
    pub options: serde_json::Value,
    /// When the ceremony expires (Unix seconds).
    pub expires_at: i64,
}

/// `POST /api/v1/mfa-devices/security-key/finish`: the authenticator's answer to a
/// registration.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterFinishRequest {
    /// Ceremony id from the begin answer.
    pub ceremony: String,
    /// The `PublicKeyCredential` from `navigator.credentials.create()` (attestation response).
    #[schema(value_type = Object)]
    pub credential: serde_json::Value,
}

/// `POST /api/v1/sign-in/security-key/begin`: start the second-factor step with a security key.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignInBeginRequest {
    /// The challenge from `POST /api/v1/sign-in`.
    pub challenge: String,
}

/// `POST /api/v1/sign-in/security-key/finish`: the authenticator's assertion.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignInFinishRequest {
    /// The challenge from `POST /api/v1/sign-in`.
    pub challenge: String,
    /// Ceremony id from the begin answer.
    pub ceremony: String,
    /// The `PublicKeyCredential` from `navigator.credentials.get()` (assertion response).
    #[schema(value_type = Object)]
    pub credential: serde_json::Value,
}

/// `POST /api/v1/session/verify/security-key/finish`: an assertion given again within a
/// session (a fresh second factor before a sensitive change).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyFinishRequest {
    /// Ceremony id from the begin answer.
    pub ceremony: String,
    /// The `PublicKeyCredential` from `navigator.credentials.get()`.
    #[schema(value_type = Object)]
    pub credential: serde_json::Value,
}
