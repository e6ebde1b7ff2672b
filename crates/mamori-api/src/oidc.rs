//! The OpenID provider's JSON (#17, docs/oidc.md): discovery (OpenID Connect Discovery 1.0
//! §3), the token response (RFC 6749 §5.1, OpenID Connect Core §3.1.3.3) and the OAuth error
//! body (RFC 6749 §5.2). These follow the OAuth specifications, not the API's own
//! `{"error": {"code", …}}` format, because relying parties' libraries read them.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `/.well-known/openid-configuration`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Discovery {
    /// The public URL.
    pub issuer: String,
    /// `/oidc/authorize`.
    pub authorization_endpoint: String,
    /// `/oidc/token`.
    pub token_endpoint: String,
    /// `/oidc/userinfo`.
    pub userinfo_endpoint: String,
    /// `/oidc/jwks`.
    pub jwks_uri: String,
    /// `/oidc/revoke` (RFC 7009).
    pub revocation_endpoint: String,
    /// `/oidc/introspect` (RFC 7662).
    pub introspection_endpoint: String,
    /// `/oidc/logout` (RP-Initiated Logout 1.0).
    pub end_session_endpoint: String,
    /// `["code"]`.
    pub response_types_supported: Vec<String>,
    /// `["query"]`.
    pub response_modes_supported: Vec<String>,
    /// `authorization_code`, `refresh_token`.
    pub grant_types_supported: Vec<String>,
    /// `["public"]`.
    pub subject_types_supported: Vec<String>,
    /// `["ES256", "RS256"]` (each client signs with one).
    pub id_token_signing_alg_values_supported: Vec<String>,
    /// The scopes.
    pub scopes_supported: Vec<String>,
    /// `client_secret_basic`, `client_secret_post`, `none`.
    pub token_endpoint_auth_methods_supported: Vec<String>,
    /// Same, for revocation.
    pub revocation_endpoint_auth_methods_supported: Vec<String>,
    /// Same, for introspection.
    pub introspection_endpoint_auth_methods_supported: Vec<String>,
    /// `["S256"]`.
    pub code_challenge_methods_supported: Vec<String>,
    /// The claims the ID token and userinfo may carry.
    pub claims_supported: Vec<String>,
    /// The ACR values.
    pub acr_values_supported: Vec<String>,
    /// `none`, `login`, `consent`.
    pub prompt_values_supported: Vec<String>,
    /// RFC 9207: `true`.
    pub authorization_response_iss_parameter_supported: bool,
    /// `false`: no `claims` request parameter.
    pub claims_parameter_supported: bool,
    /// `false`: no request objects.
    pub request_parameter_supported: bool,
    /// `false`.
    pub request_uri_parameter_supported: bool,
}

/// A successful token response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    /// Opaque access token (for userinfo).
    pub access_token: String,
    /// `Bearer`.
    pub token_type: String,
    /// Seconds the access token lives.
    pub expires_in: i64,
    /// The next refresh token (each is used once).
    pub refresh_token: String,
    /// The signed ID token (JWS compact).
    pub id_token: String,
    /// The granted scopes.
    pub scope: String,
}

/// An OAuth error (RFC 6749 §5.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OAuthError {
    /// `invalid_request`, `invalid_client`, `invalid_grant`, `unsupported_grant_type`,
    /// `invalid_token`, `server_error`.
    pub error: String,
    /// What is wrong, in English.
    pub error_description: String,
}

/// #17 consents: a client the signed-in account has consented to or holds live tokens for
/// (`GET /api/v1/me/oidc-consents`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ConnectedApp {
    /// The client's id (the path parameter of the `DELETE`).
    pub client_id: String,
    /// The client's name.
    pub client_name: String,
    /// The scopes shared: those consented to, or for a trusted client (never asked) those of
    /// its live tokens.
    pub scopes: Vec<String>,
    /// Unix seconds the consent was given; absent for a trusted client.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub consented_at: Option<i64>,
    /// Unix seconds of the newest live grant (the last sign-in through this client).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub last_granted_at: Option<i64>,
    /// Token families whose refresh tokens still work.
    pub live_grants: u64,
}

/// `GET /api/v1/me/oidc-consents`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ConnectedAppsResponse {
    /// By client name.
    pub applications: Vec<ConnectedApp>,
}
