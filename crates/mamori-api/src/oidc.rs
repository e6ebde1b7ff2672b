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

// ----- client administration (`/api/v1/oidc/clients`, administrators) ----------------------
// These use the API's own error format: they are the API's, not the OAuth endpoints'.

/// A registered client as `GET /api/v1/oidc/clients` lists it: never its secret or the
/// secret's hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OidcClient {
    /// The `client_id`.
    pub client_id: String,
    /// The unique name the administrator gave it.
    pub name: String,
    /// Exact redirect URIs.
    pub redirect_uris: Vec<String>,
    /// Exact post-logout redirect URIs.
    pub post_logout_redirect_uris: Vec<String>,
    /// No secret (PKCE required).
    pub public: bool,
    /// No consent page.
    pub trusted: bool,
    /// `one_factor`, `two_factor` or `phishing_resistant`.
    pub require: String,
    /// Accounts allowed by name (with `allowed_groups`; both empty: everyone).
    pub allowed_users: Vec<String>,
    /// Groups allowed.
    pub allowed_groups: Vec<String>,
    /// ID-token signing algorithm, `ES256` or `RS256`.
    pub alg: String,
    /// When it was registered (Unix seconds).
    pub created_at: i64,
    /// When it last changed (secret rotation; Unix seconds).
    pub updated_at: i64,
}

/// `POST /api/v1/oidc/clients`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOidcClientRequest {
    /// Unique name: 1-64 letters, digits and `+=,.@_-`.
    pub name: String,
    /// Exact redirect URIs, 1 to 10 (https, or http on a loopback address; no fragment, no
    /// wildcard).
    pub redirect_uris: Vec<String>,
    /// Exact post-logout redirect URIs, at most 10.
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    /// A public client (no secret; PKCE required), e.g. a native application.
    #[serde(default)]
    pub public: bool,
    /// A first-party client: no consent page.
    #[serde(default)]
    pub trusted: bool,
    /// What the sign-in must have used: `two_factor` (the default), `phishing_resistant` or
    /// `one_factor`.
    #[serde(default)]
    pub require: Option<String>,
    /// Only these accounts (with `allowed_groups`; both empty: everyone), at most 100.
    #[serde(default)]
    pub allowed_users: Vec<String>,
    /// Only accounts in these groups, at most 100.
    #[serde(default)]
    pub allowed_groups: Vec<String>,
    /// ID-token signing algorithm: `ES256` (the default) or `RS256`.
    #[serde(default)]
    pub alg: Option<String>,
}

/// A client just registered (201) or given a new secret (200). The secret is shown only
/// here; the server keeps its hash.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct OidcClientCreated {
    /// The client.
    pub client: OidcClient,
    /// Its secret, for `client_secret_basic` or `client_secret_post`; absent for a public
    /// client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

// By hand, so that a response logged with `{:?}` does not carry the secret.
impl std::fmt::Debug for OidcClientCreated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcClientCreated")
            .field("client", &self.client)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
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
