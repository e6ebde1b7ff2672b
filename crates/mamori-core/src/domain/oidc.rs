//! mamori as an OpenID Connect provider (#17, docs/oidc.md): the authorization code flow of
//! OpenID Connect Core 1.0 §3.1 on OAuth 2.0 (RFC 6749), with PKCE (RFC 7636), the `iss`
//! authorization response parameter (RFC 9207), refresh-token rotation with reuse detection,
//! revocation (RFC 7009) and introspection (RFC 7662).
//!
//! The edges (`http/oidc.rs`, `console/pages_oidc.rs`, `admin`) translate; every decision is
//! made here:
//!
//! - a client and its redirect URI are checked before anything else, and an unknown client or
//!   a redirect URI that is not one of its registered ones (exact string match) is never
//!   redirected to: [`AuthorizeRefusal::ErrorPage`] (RFC 6749 §4.1.2.1);
//! - a code is 60 seconds, single use, bound to its client, redirect URI, PKCE challenge and
//!   nonce, and redeemed by one conditional statement (`store/oidc.rs`); a second use revokes
//!   every token issued from it (RFC 6749 §4.1.2);
//! - a refresh token is used once; presenting it again revokes its whole grant;
//! - the ID token says what the console session actually used (`amr`, RFC 8176) and is
//!   signed with a key every node shares (sealed with the server key in the database).

use std::collections::BTreeSet;

use data_encoding::BASE64URL_NOPAD;
use hmac::{Hmac, Mac};
use rand::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::audit::Event;
use super::session::Authenticated;
use super::{new_id, new_token, token_hash, RequestMeta, Service};
use crate::clock::UnixTime;
use crate::error::{Error, Result};
use crate::store::oidc::{
    CodeRedemption, OidcClientRecord, OidcCodeRecord, OidcGrantRecord, OidcKeyRecord,
    OidcTokenRecord, Redemption, RefreshUse,
};
use crate::store::{AccountRecord, Redacted, SessionState};

pub use super::audit::kind::oidc as kind;
use super::oidc_jwt;

/// An authorization code lives 60 seconds (issue #17; RFC 6749 §4.1.2 recommends at most 10
/// minutes).
pub const CODE_SECS: i64 = 60;
/// Access tokens and ID tokens live 10 minutes.
pub const ACCESS_TOKEN_SECS: i64 = 10 * 60;
/// How long a retired signing key stays in the JWKS (and verifies `id_token_hint`s): the ID
/// tokens it signed live [`ACCESS_TOKEN_SECS`]; five more minutes cover relying parties that
/// verify with some clock leeway.
pub const RETIRED_KEY_SECS: i64 = ACCESS_TOKEN_SECS + 5 * 60;
/// A grant (and so every refresh token of it) ends 30 days after the code was redeemed.
pub const GRANT_SECS: i64 = 30 * 24 * 60 * 60;
/// Most redirect URIs (and post-logout URIs) a client may register.
pub const MAX_REDIRECT_URIS: usize = 10;
/// Longest redirect URI, client name, state or nonce accepted.
pub const MAX_URI_LEN: usize = 1024;
/// Longest `state` or `nonce`.
pub const MAX_PARAM_LEN: usize = 512;
/// Most clients.
pub const MAX_CLIENTS: usize = 500;
/// Most allowed users (and, separately, allowed groups) of one client.
pub const MAX_ALLOWED: usize = 100;
/// The scopes this provider knows; others are ignored (RFC 6749 §3.3 lets the server grant
/// fewer than asked).
pub const SCOPES: [&str; 5] = ["openid", "profile", "email", "groups", "offline_access"];
/// ACR of a session on a password alone.
pub const ACR_1FA: &str = "urn:mamori:acr:1fa";
/// ACR of a session with a second factor.
pub const ACR_2FA: &str = "urn:mamori:acr:2fa";
/// ACR of a session with a phishing-resistant second factor (security key, passkey).
pub const ACR_PHR: &str = "urn:mamori:acr:phr";

/// What a client requires of the session (its `require_factor`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequireFactor {
    /// A password alone is enough (where the server's `require_mfa` lets one sign in so).
    OneFactor,
    /// A second factor of any kind (the default).
    TwoFactor,
    /// A security key or passkey.
    PhishingResistant,
}

impl RequireFactor {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            RequireFactor::OneFactor => "one_factor",
            RequireFactor::TwoFactor => "two_factor",
            RequireFactor::PhishingResistant => "phishing_resistant",
        }
    }

    /// From the stored (or command-line) name.
    pub fn parse(s: &str) -> Result<RequireFactor> {
        match s {
            "one_factor" => Ok(RequireFactor::OneFactor),
            "two_factor" => Ok(RequireFactor::TwoFactor),
            "phishing_resistant" => Ok(RequireFactor::PhishingResistant),
            _ => Err(Error::InvalidInput(
                "require must be one_factor, two_factor or phishing_resistant".into(),
            )),
        }
    }

    /// The requirement an `acr` value of this provider names (`ACR_1FA`, `ACR_2FA`,
    /// `ACR_PHR`); other values are not this provider's.
    pub fn from_acr(acr: &str) -> Option<RequireFactor> {
        match acr {
            ACR_1FA => Some(RequireFactor::OneFactor),
            ACR_2FA => Some(RequireFactor::TwoFactor),
            ACR_PHR => Some(RequireFactor::PhishingResistant),
            _ => None,
        }
    }

    /// Whether a session whose `acr` is `acr` meets this requirement.
    pub fn met_by(self, acr: &str) -> bool {
        match self {
            RequireFactor::OneFactor => true,
            RequireFactor::TwoFactor => acr != ACR_1FA,
            RequireFactor::PhishingResistant => acr == ACR_PHR,
        }
    }
}

/// An OAuth 2.0 / OpenID Connect protocol error: the `error` code of RFC 6749 §4.1.2.1 and
/// §5.2 (and OpenID Connect Core §3.1.2.6, RFC 6750 §3.1) with a description. Never carries a
/// secret; the description is fixed text or names the parameter.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OidcError {
    /// A parameter is missing, repeated or malformed.
    #[error("invalid_request: {0}")]
    InvalidRequest(String),
    /// Client authentication failed (unknown client, wrong or missing secret).
    #[error("invalid_client: client authentication failed")]
    InvalidClient,
    /// The code or refresh token is invalid, expired, used, revoked, or was issued to another
    /// client or redirect URI, or the PKCE verifier does not match.
    #[error("invalid_grant: {0}")]
    InvalidGrant(&'static str),
    /// Not `authorization_code` or `refresh_token`.
    #[error("unsupported_grant_type: only authorization_code and refresh_token")]
    UnsupportedGrantType,
    /// The access token is invalid (userinfo, RFC 6750 §3.1).
    #[error("invalid_token: the access token is invalid or expired")]
    InvalidToken,
    /// Something else went wrong (store, key).
    #[error(transparent)]
    Other(#[from] Error),
}

impl OidcError {
    /// The `error` code.
    pub fn code(&self) -> &'static str {
        match self {
            OidcError::InvalidRequest(_) => "invalid_request",
            OidcError::InvalidClient => "invalid_client",
            OidcError::InvalidGrant(_) => "invalid_grant",
            OidcError::UnsupportedGrantType => "unsupported_grant_type",
            OidcError::InvalidToken => "invalid_token",
            OidcError::Other(_) => "server_error",
        }
    }

    /// The `error_description`.
    pub fn description(&self) -> String {
        match self {
            OidcError::InvalidRequest(d) => d.clone(),
            OidcError::InvalidGrant(d) => (*d).to_string(),
            OidcError::Other(_) => "the server could not answer".into(),
            e => e.to_string(),
        }
    }
}

/// A new client as an administrator describes it.
#[derive(Debug, Clone)]
pub struct NewClient {
    /// Unique name.
    pub name: String,
    /// Exact redirect URIs (at least one).
    pub redirect_uris: Vec<String>,
    /// Exact post-logout redirect URIs.
    pub post_logout_redirect_uris: Vec<String>,
    /// No secret; PKCE required.
    pub public: bool,
    /// No consent page.
    pub trusted: bool,
    /// What the session must have.
    pub require: RequireFactor,
    /// Allowed accounts (with `allowed_groups`; both empty: everyone).
    pub allowed_users: Vec<String>,
    /// Allowed groups.
    pub allowed_groups: Vec<String>,
    /// ID-token signing algorithm: `ES256` (the default) or `RS256`.
    pub alg: String,
}

/// A client just registered, or with a new secret: the secret is shown once.
pub struct ClientCreated {
    /// The client.
    pub client: OidcClientRecord,
    /// Its secret (confidential clients), never stored.
    pub secret: Option<Zeroizing<String>>,
}

/// A client the account shares something with (#17 consents, docs/oidc.md): a remembered
/// consent, live tokens, or both. What "Connected applications" in the console and
/// `GET /api/v1/me/oidc-consents` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectedApp {
    /// The client's id.
    pub client_id: String,
    /// The client's name.
    pub client_name: String,
    /// The scopes consented to; for a client without a consent (a trusted one), the scopes of
    /// its live grants.
    pub scopes: Vec<String>,
    /// When the consent was given; `None` for a trusted client (never asked).
    pub consented_at: Option<UnixTime>,
    /// When the newest live grant was issued (the last sign-in through this client), if any.
    pub last_granted_at: Option<UnixTime>,
    /// Live grants: token families whose refresh tokens still work.
    pub live_grants: usize,
}

/// The parameters of an authorization request as received (query or form).
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
pub struct AuthorizeParams {
    /// Must be `code`.
    pub response_type: Option<String>,
    /// The client.
    pub client_id: Option<String>,
    /// Exactly one of the client's.
    pub redirect_uri: Option<String>,
    /// Must contain `openid`.
    pub scope: Option<String>,
    /// Returned as is.
    pub state: Option<String>,
    /// Carried into the ID token.
    pub nonce: Option<String>,
    /// PKCE challenge.
    pub code_challenge: Option<String>,
    /// `S256` (the default `plain` is refused).
    pub code_challenge_method: Option<String>,
    /// `none`, `login`, `consent`.
    pub prompt: Option<String>,
    /// Seconds since sign-in after which a fresh sign-in is needed.
    pub max_age: Option<String>,
    /// RFC 6749 `response_mode`: only `query`.
    pub response_mode: Option<String>,
    /// OpenID Connect Core §3.1.2.1 `acr_values`, in order of preference.
    pub acr_values: Option<String>,
    /// A request object (§6.1), a reference to one (§6.2), or dynamic registration data:
    /// not supported, and refused as the specification says rather than ignored (the
    /// client would otherwise get an answer to a request it did not make).
    pub request: Option<String>,
    /// §6.2 `request_uri`.
    pub request_uri: Option<String>,
    /// §7.2.1 `registration`.
    pub registration: Option<String>,
}

impl AuthorizeParams {
    /// Reads a query string (or form body). RFC 6749 §3.1: a parameter sent more than once
    /// makes the request invalid; unknown parameters are ignored. `None` when repeated.
    pub fn from_query(q: &str) -> Option<AuthorizeParams> {
        let mut p = AuthorizeParams::default();
        for (k, v) in url::form_urlencoded::parse(q.as_bytes()) {
            let slot = match k.as_ref() {
                "response_type" => &mut p.response_type,
                "client_id" => &mut p.client_id,
                "redirect_uri" => &mut p.redirect_uri,
                "scope" => &mut p.scope,
                "state" => &mut p.state,
                "nonce" => &mut p.nonce,
                "code_challenge" => &mut p.code_challenge,
                "code_challenge_method" => &mut p.code_challenge_method,
                "prompt" => &mut p.prompt,
                "max_age" => &mut p.max_age,
                "response_mode" => &mut p.response_mode,
                "acr_values" => &mut p.acr_values,
                "request" => &mut p.request,
                "request_uri" => &mut p.request_uri,
                "registration" => &mut p.registration,
                _ => continue,
            };
            if slot.is_some() {
                return None;
            }
            *slot = Some(v.into_owned());
        }
        Some(p)
    }

    /// The same request as a query string, without `prompt`, `max_age` and `acr_values` when
    /// `fresh` (what the browser comes back with after the fresh sign-in they asked for: the
    /// request is answered with that sign-in, whatever it used, instead of asking again).
    pub fn to_query(&self, fresh: bool) -> String {
        let mut p = self.clone();
        if fresh {
            p.prompt = None;
            p.max_age = None;
            p.acr_values = None;
        }
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("response_type", &p.response_type),
            ("client_id", &p.client_id),
            ("redirect_uri", &p.redirect_uri),
            ("scope", &p.scope),
            ("state", &p.state),
            ("nonce", &p.nonce),
            ("code_challenge", &p.code_challenge),
            ("code_challenge_method", &p.code_challenge_method),
            ("prompt", &p.prompt),
            ("max_age", &p.max_age),
            ("response_mode", &p.response_mode),
            ("acr_values", &p.acr_values),
        ] {
            if let Some(v) = v {
                q.append_pair(k, v);
            }
        }
        q.finish()
    }
}

/// A checked authorization request: the client and redirect URI are known good.
#[derive(Debug, Clone)]
pub struct AuthorizeRequest {
    /// The client.
    pub client: OidcClientRecord,
    /// One of its redirect URIs.
    pub redirect_uri: String,
    /// Granted scopes (known ones, `openid` first).
    pub scopes: Vec<String>,
    /// `state`.
    pub state: Option<String>,
    /// `nonce`.
    pub nonce: Option<String>,
    /// S256 challenge.
    pub code_challenge: Option<String>,
    /// `prompt` values.
    pub prompt: BTreeSet<String>,
    /// `max_age`.
    pub max_age: Option<i64>,
    /// The first of the client's `acr_values` that this provider knows: the sign-in it would
    /// rather have (voluntary, OpenID Connect Core §3.1.2.1; the client's own `require` is
    /// what is mandatory).
    pub acr_wanted: Option<RequireFactor>,
}

/// Why an authorization request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizeRefusal {
    /// The client or redirect URI cannot be trusted: show an error page, never redirect.
    ErrorPage(String),
    /// Tell the client, at its redirect URI (with `state` and `iss`).
    Redirect(String),
}

/// What the authorization endpoint does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizeStep {
    /// Send the browser to the console's sign-in; `fresh`: end the current session first
    /// (`prompt=login`, `max_age` passed, or a stronger factor needed).
    SignIn {
        /// End the current session first.
        fresh: bool,
    },
    /// Ask the account to consent to these scopes.
    Consent {
        /// The scopes asked.
        scopes: Vec<String>,
    },
    /// Redirect to the client (with a code, or an error).
    Redirect(String),
}

/// How a client authenticated at the token, revocation or introspection endpoint.
#[derive(Clone, Default)]
pub struct ClientCredentials {
    /// `client_id` (from Basic or the form).
    pub client_id: Option<String>,
    /// `client_secret`.
    pub secret: Option<Zeroizing<String>>,
    /// Whether the credentials came in an `Authorization: Basic` header (the 401's
    /// `WWW-Authenticate` then names Basic, RFC 6749 §5.2).
    pub basic: bool,
}

/// The token request's form (RFC 6749 §4.1.3, §6).
#[derive(Clone, Default, serde::Deserialize)]
pub struct TokenParams {
    /// `authorization_code` or `refresh_token`.
    pub grant_type: Option<String>,
    /// The code.
    pub code: Option<String>,
    /// Must equal the authorization request's.
    pub redirect_uri: Option<String>,
    /// PKCE verifier.
    pub code_verifier: Option<String>,
    /// The refresh token.
    pub refresh_token: Option<String>,
}

/// A token response (RFC 6749 §5.1, OpenID Connect Core §3.1.3.3).
pub struct TokenResponse {
    /// Opaque access token.
    pub access_token: Zeroizing<String>,
    /// Seconds it lives.
    pub expires_in: i64,
    /// The next refresh token.
    pub refresh_token: Zeroizing<String>,
    /// Signed ID token.
    pub id_token: String,
    /// Granted scopes.
    pub scope: String,
}

// The secrets these carry (client secrets, codes, verifiers, tokens) never reach a log: their
// Debug shows only what is not secret.
impl std::fmt::Debug for ClientCreated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCreated")
            .field("client", &self.client)
            .field("secret", &self.secret.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("client_id", &self.client_id)
            .field("secret", &self.secret.as_ref().map(|_| "[redacted]"))
            .field("basic", &self.basic)
            .finish()
    }
}

impl std::fmt::Debug for TokenParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = |v: &Option<String>| v.as_ref().map(|_| "[redacted]");
        f.debug_struct("TokenParams")
            .field("grant_type", &self.grant_type)
            .field("code", &r(&self.code))
            .field("redirect_uri", &self.redirect_uri)
            .field("code_verifier", &r(&self.code_verifier))
            .field("refresh_token", &r(&self.refresh_token))
            .finish()
    }
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &"[redacted]")
            .field("expires_in", &self.expires_in)
            .field("refresh_token", &"[redacted]")
            .field("id_token", &"[redacted]")
            .field("scope", &self.scope)
            .finish()
    }
}

fn check_uri(u: &str) -> Result<()> {
    // RFC 6749 §3.1.2: absolute, no fragment. http only for loopback (RFC 8252 §7.3).
    let parsed =
        url::Url::parse(u).map_err(|_| Error::InvalidInput(format!("not an absolute URI: {u}")))?;
    // The review's definition of wildcard-looking (`%2A`, `{tenant}`, `.example.com` too), so
    // that registration never accepts what DR-OIDC-REDIRECT-WILDCARD would flag.
    if u.len() > MAX_URI_LEN
        || parsed.fragment().is_some()
        || mamori_review::deployment::wildcard_looking(u)
    {
        return Err(Error::InvalidInput(format!(
            "a redirect URI must be at most {MAX_URI_LEN} characters, without a fragment or wildcard: {u}"
        )));
    }
    let loopback = matches!(parsed.host_str(), Some("127.0.0.1" | "[::1]" | "localhost"));
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(Error::InvalidInput(format!(
            "a redirect URI must be https (or http on a loopback address): {u}"
        ))),
    }
}

fn check_list(what: &str, list: &[String], min: usize) -> Result<()> {
    if list.len() < min || list.len() > MAX_REDIRECT_URIS {
        return Err(Error::InvalidInput(format!(
            "{what}: between {min} and {MAX_REDIRECT_URIS} URIs"
        )));
    }
    list.iter().try_for_each(|u| check_uri(u))
}

/// The allow lists: names an account or a group could have (a misspelt entry would silently
/// let nobody in, or be mistaken for a rule), at most [`MAX_ALLOWED`] of each.
fn check_allowed(users: &[String], groups: &[String]) -> Result<()> {
    if users.len() > MAX_ALLOWED || groups.len() > MAX_ALLOWED {
        return Err(Error::InvalidInput(format!(
            "at most {MAX_ALLOWED} allowed users and {MAX_ALLOWED} allowed groups"
        )));
    }
    users
        .iter()
        .try_for_each(|u| super::check_name("an allowed user", u))?;
    groups
        .iter()
        .try_for_each(|g| super::groups::check_group_name(g))
}

/// Appends `pairs` to a redirect URI's query (keeping its own).
fn with_query(base: &str, pairs: &[(&str, &str)]) -> String {
    match url::Url::parse(base) {
        Ok(mut u) => {
            {
                let mut q = u.query_pairs_mut();
                for (k, v) in pairs {
                    q.append_pair(k, v);
                }
            }
            u.to_string()
        }
        // Registered URIs were parsed at registration; this cannot happen.
        Err(_) => base.to_string(),
    }
}

fn verify_pkce(verifier: &str, challenge: &str) -> bool {
    // RFC 7636 §4.1: 43-128 characters of [A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~".
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    // §4.6: BASE64URL-ENCODE(SHA256(ASCII(code_verifier))) == code_challenge.
    let computed = BASE64URL_NOPAD.encode(&Sha256::digest(verifier.as_bytes()));
    well_formed && bool::from(computed.as_bytes().ct_eq(challenge.as_bytes()))
}

fn sign_key_identity(kid: &str) -> Vec<u8> {
    format!("oidc_key:{kid}").into_bytes()
}

impl Service {
    /// The issuer: the public URL without a trailing slash.
    pub fn oidc_issuer(&self) -> String {
        self.policy.public_url.trim_end_matches('/').to_string()
    }

    /// The opaque, stable subject of an account: HMAC-SHA256 of its id with a key derived
    /// from the server key, so it reveals neither the name nor the id, and stays the same
    /// after a rename (OpenID Connect Core §8).
    pub fn oidc_subject(&self, account_id: &str) -> String {
        let key = self.key.derive(b"oidc subject");
        let mut out = String::new();
        if let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key.as_slice()) {
            mac.update(account_id.as_bytes());
            out = BASE64URL_NOPAD.encode(&mac.finalize().into_bytes());
        }
        out
    }

    // ----- clients -------------------------------------------------------------------

    /// Registers a client (administrators; the admin command line passes its own actor).
    pub async fn oidc_create_client<R: RngCore + CryptoRng + Send>(
        &self,
        new: NewClient,
        actor: &str,
        now: UnixTime,
        meta: &RequestMeta,
        rng: &mut R,
    ) -> Result<ClientCreated> {
        super::check_name("client name", &new.name)?;
        check_list("redirect URIs", &new.redirect_uris, 1)?;
        check_list(
            "post-logout redirect URIs",
            &new.post_logout_redirect_uris,
            0,
        )?;
        check_allowed(&new.allowed_users, &new.allowed_groups)?;
        if !oidc_jwt::ALGS.contains(&new.alg.as_str()) {
            return Err(Error::InvalidInput(
                "the signing algorithm must be ES256 or RS256".into(),
            ));
        }
        if self.store.list_oidc_clients().await?.len() >= MAX_CLIENTS {
            return Err(Error::Conflict(format!("at most {MAX_CLIENTS} clients")));
        }
        let (secret, hash) = if new.public {
            (None, None)
        } else {
            let (s, h) = new_token(rng);
            (Some(s), Some(Redacted::new(h)))
        };
        let client = OidcClientRecord {
            id: new_id(rng),
            name: new.name,
            secret_hash: hash,
            redirect_uris: new.redirect_uris,
            post_logout_redirect_uris: new.post_logout_redirect_uris,
            trusted: new.trusted,
            require_factor: new.require.as_str().into(),
            allowed_users: new.allowed_users,
            allowed_groups: new.allowed_groups,
            alg: new.alg.clone(),
            created_at: now,
            updated_at: now,
        };
        self.store.create_oidc_client(&client).await?;
        self.audit(
            now,
            meta,
            Event {
                kind: kind::CLIENT_CREATE,
                result: "success",
                account: None,
                actor: Some(actor),
                detail: Some(&client.name),
            },
        )
        .await?;
        Ok(ClientCreated { client, secret })
    }

    /// Every client.
    pub async fn oidc_clients(&self) -> Result<Vec<OidcClientRecord>> {
        self.store.list_oidc_clients().await
    }

    async fn client_named(&self, name: &str) -> Result<OidcClientRecord> {
        self.store
            .oidc_client_by_name(name)
            .await?
            .ok_or(Error::NotFound("client"))
    }

    /// Replaces a confidential client's secret; the new one is shown once.
    pub async fn oidc_rotate_client_secret<R: RngCore + CryptoRng + Send>(
        &self,
        name: &str,
        actor: &str,
        now: UnixTime,
        meta: &RequestMeta,
        rng: &mut R,
    ) -> Result<ClientCreated> {
        let client = self.client_named(name).await?;
        let (secret, hash) = new_token(rng);
        if !self
            .store
            .set_oidc_client_secret(&client.id, &hash, now)
            .await?
        {
            return Err(Error::InvalidInput(
                "a public client has no secret to rotate".into(),
            ));
        }
        self.audit(
            now,
            meta,
            Event {
                kind: kind::CLIENT_SECRET,
                result: "success",
                account: None,
                actor: Some(actor),
                detail: Some(&client.name),
            },
        )
        .await?;
        let client = self.client_named(name).await?;
        Ok(ClientCreated {
            client,
            secret: Some(secret),
        })
    }

    /// Deletes a client with its codes, grants, tokens and consents.
    pub async fn oidc_delete_client(
        &self,
        name: &str,
        actor: &str,
        now: UnixTime,
        meta: &RequestMeta,
    ) -> Result<()> {
        let client = self.client_named(name).await?;
        self.store.delete_oidc_client(&client.id).await?;
        self.audit(
            now,
            meta,
            Event {
                kind: kind::CLIENT_DELETE,
                result: "success",
                account: None,
                actor: Some(actor),
                detail: Some(&client.name),
            },
        )
        .await?;
        Ok(())
    }

    // ----- clients, by an administrator (API and console) ------------------------------
    //
    // The API and the console call these and nothing else, so neither edge decides who may
    // manage clients. Every one needs a full administrator session with MFA
    // ([`Service::require_admin`], which audits an administrator without MFA). Registering,
    // rotating a secret and deleting need a second factor from the last 5 minutes too
    // ([`Service::require_recent_factor`]): a stolen, stale administrator session could
    // otherwise register a trusted client (no consent page) with its own redirect URI and
    // collect the ID tokens of every signed-in user who follows a link, take over a trusted
    // client by replacing its secret, or end every sign-in of an application at once. Listing
    // shows no secret and needs no fresh factor. The admin command line runs as the server's
    // operator and calls the functions above with its own actor.

    /// Every client (administrators).
    pub async fn admin_oidc_clients(
        &self,
        admin: &Authenticated,
        now: UnixTime,
        meta: &RequestMeta,
    ) -> Result<Vec<OidcClientRecord>> {
        self.require_admin(admin, "list OpenID clients", now, meta)
            .await?;
        self.oidc_clients().await
    }

    /// An administrator registers a client; audited with the administrator as actor. Needs a
    /// second factor from the last 5 minutes (otherwise refused and audited as
    /// `recent_factor_required`).
    pub async fn admin_oidc_create_client<R: RngCore + CryptoRng + Send>(
        &self,
        admin: &Authenticated,
        new: NewClient,
        now: UnixTime,
        meta: &RequestMeta,
        rng: &mut R,
    ) -> Result<ClientCreated> {
        self.require_admin(admin, "register an OpenID client", now, meta)
            .await?;
        self.require_recent_factor(admin, kind::CLIENT_CREATE, &new.name, now, meta)
            .await?;
        self.oidc_create_client(new, &admin.account.name, now, meta, rng)
            .await
    }

    /// An administrator replaces a confidential client's secret (the old one stops working
    /// at once); audited with the administrator as actor. Needs a second factor from the last
    /// 5 minutes (otherwise refused and audited as `recent_factor_required`).
    pub async fn admin_oidc_rotate_client_secret<R: RngCore + CryptoRng + Send>(
        &self,
        admin: &Authenticated,
        name: &str,
        now: UnixTime,
        meta: &RequestMeta,
        rng: &mut R,
    ) -> Result<ClientCreated> {
        self.require_admin(admin, "rotate an OpenID client's secret", now, meta)
            .await?;
        self.require_recent_factor(admin, kind::CLIENT_SECRET, name, now, meta)
            .await?;
        self.oidc_rotate_client_secret(name, &admin.account.name, now, meta, rng)
            .await
    }

    /// An administrator deletes a client with its codes, grants, tokens and consents: needs a
    /// second factor from the last 5 minutes (otherwise refused and audited as
    /// `recent_factor_required`).
    pub async fn admin_oidc_delete_client(
        &self,
        admin: &Authenticated,
        name: &str,
        now: UnixTime,
        meta: &RequestMeta,
    ) -> Result<()> {
        self.require_admin(admin, "delete an OpenID client", now, meta)
            .await?;
        self.require_recent_factor(admin, kind::CLIENT_DELETE, name, now, meta)
            .await?;
        self.oidc_delete_client(name, &admin.account.name, now, meta)
            .await
    }

    /// Refuses (and audits under `kind` as `recent_factor_required`, with the administrator as
    /// actor and the client's name as detail) unless the administrator's second factor was
    /// given in the last 5 minutes. Checked before anything is looked up or changed, so the
    /// name is not checked yet: one that no client could have is left out of the audit.
    async fn require_recent_factor(
        &self,
        admin: &Authenticated,
        kind: &str,
        client: &str,
        now: UnixTime,
        meta: &RequestMeta,
    ) -> Result<()> {
        let recent = admin
            .session
            .second_factor_at
            .is_some_and(|t| now.saturating_sub(t) <= super::RECENT_FACTOR_SECS);
        if recent {
            return Ok(());
        }
        self.audit(
            now,
            meta,
            Event {
                kind,
                result: "recent_factor_required",
                account: None,
                actor: Some(&admin.account.name),
                detail: super::check_name("client name", client)
                    .is_ok()
                    .then_some(client),
            },
        )
        .await?;
        Err(Error::RecentSecondFactorRequired)
    }

    // ----- keys ----------------------------------------------------------------------

    /// The public keys of the JWKS: the active ones, and retired ones until the ID tokens
    /// they signed have expired ([`RETIRED_KEY_SECS`]).
    pub async fn oidc_jwks(&self, now: UnixTime) -> Result<serde_json::Value> {
        let keys: Vec<serde_json::Value> = self
            .store
            .oidc_keys()
            .await?
            .into_iter()
            .filter(|k| {
                k.retired_at
                    .is_none_or(|r| r.saturating_add(RETIRED_KEY_SECS) > now)
            })
            .filter_map(|k| serde_json::from_str(&k.public_jwk).ok())
            .collect();
        Ok(serde_json::json!({ "keys": keys }))
    }

    /// The active signing key of `alg`, generated (and stored sealed) on first use. Two nodes
    /// generating at once: the unique index keeps one, and both read it back. (An RSA key
    /// takes a moment to generate; it happens once per database.)
    async fn oidc_signing_key<R: RngCore + CryptoRng + Send>(
        &self,
        alg: &str,
        active_kid: Option<&str>,
        now: UnixTime,
        meta: &RequestMeta,
        rng: &mut R,
    ) -> Result<(String, std::sync::Arc<oidc_jwt::SigningKeyPair>)> {
        // A statement of this request already read which key is active (the code's
        // redemption does): this node's parsed copy of it serves without reading the keys.
        if let Some(kid) = active_kid {
            if let Some(pair) = self.cached_signer(kid) {
                return Ok((kid.to_string(), pair));
            }
        }
        let active = |keys: Vec<OidcKeyRecord>| {
            keys.into_iter()
                .find(|k| k.alg == alg && k.retired_at.is_none())
        };
        let key = match active(self.store.oidc_keys().await?) {
            Some(k) => k,
            None => {
                let g = oidc_jwt::generate(alg, rng)?;
                let sealed = self.key.seal(rng, &sign_key_identity(&g.kid), &g.private)?;
                let record = OidcKeyRecord {
                    kid: g.kid.clone(),
                    alg: alg.into(),
                    private_sealed: Redacted::new(sealed),
                    public_jwk: g.public_jwk,
                    created_at: now,
                    retired_at: None,
                };
                if self.store.insert_oidc_key(&record).await? {
                    self.audit(
                        now,
                        meta,
                        Event {
                            kind: kind::KEY_CREATE,
                            result: "success",
                            account: None,
                            actor: None,
                            detail: Some(&g.kid),
                        },
                    )
                    .await?;
                }
                active(self.store.oidc_keys().await?)
                    .ok_or_else(|| Error::Internal("no signing key after inserting one".into()))?
            }
        };
        // Parsed once per node and key: unsealing and parsing (an RSA key's above all) cost
        // more than the signature. A poisoned lock only loses the cache.
        if let Some(pair) = self.cached_signer(&key.kid) {
            return Ok((key.kid, pair));
        }
        let private = self
            .key
            .open(&sign_key_identity(&key.kid), key.private_sealed.expose())?;
        let pair = std::sync::Arc::new(oidc_jwt::SigningKeyPair::from_stored(&key.alg, &private)?);
        if let Ok(mut m) = self.oidc_signers.lock() {
            // Retired keys leave the cache with the next rotation's newcomer: a few at most.
            if m.len() >= 8 {
                m.clear();
            }
            m.insert(key.kid.clone(), pair.clone());
        }
        Ok((key.kid, pair))
    }

    /// This node's parsed signing key `kid`, if it has parsed it. A poisoned lock only loses
    /// the cache.
    fn cached_signer(&self, kid: &str) -> Option<std::sync::Arc<oidc_jwt::SigningKeyPair>> {
        self.oidc_signers
            .lock()
            .ok()
            .and_then(|m| m.get(kid).cloned())
    }

    /// Replaces active signing keys by new ones: every algorithm in use (`only_older_than`
    /// `None`, the administrator's command), or the keys created before a time (the
    /// housekeeping's schedule, `oidc_key_rotation_days`). The new key signs from now on; the
    /// old one stays published for [`RETIRED_KEY_SECS`]. Relying parties that meet a `kid` they
    /// do not know fetch the JWKS again (OpenID Connect Core §10.1.1). Of two nodes rotating
    /// the same key at once, one does (a conditional UPDATE). Returns (alg, old kid, new kid).
    pub async fn oidc_rotate_keys<R: RngCore + CryptoRng + Send>(
        &self,
        actor: Option<&str>,
        only_older_than: Option<UnixTime>,
        now: UnixTime,
        meta: &RequestMeta,
        rng: &mut R,
    ) -> Result<Vec<(String, String, String)>> {
        let mut done = Vec::new();
        let due =
            self.store.oidc_keys().await?.into_iter().filter(|k| {
                k.retired_at.is_none() && only_older_than.is_none_or(|t| k.created_at < t)
            });
        for old in due.collect::<Vec<_>>() {
            if !self.store.retire_oidc_key(&old.kid, now).await? {
                continue;
            }
            let (new_kid, _) = self
                .oidc_signing_key(&old.alg, None, now, meta, rng)
                .await?;
            let detail = format!("{} {} -> {}", old.alg, old.kid, new_kid);
            self.audit(
                now,
                meta,
                Event {
                    kind: kind::KEY_ROTATE,
                    result: "success",
                    account: None,
                    actor,
                    detail: Some(&detail),
                },
            )
            .await?;
            done.push((old.alg, old.kid, new_kid));
        }
        Ok(done)
    }

    /// The housekeeping's part: keys older than `oidc_key_rotation_days` are replaced, and
    /// retired keys past [`RETIRED_KEY_SECS`] deleted. How many keys were replaced.
    pub async fn oidc_key_housekeeping<R: RngCore + CryptoRng + Send>(
        &self,
        now: UnixTime,
        meta: &RequestMeta,
        rng: &mut R,
    ) -> Result<usize> {
        let days = i64::from(self.policy.oidc_key_rotation_days);
        let rotated = if days > 0 {
            let before = now.saturating_sub(days.saturating_mul(24 * 60 * 60));
            self.oidc_rotate_keys(None, Some(before), now, meta, rng)
                .await?
                .len()
        } else {
            0
        };
        self.store
            .delete_retired_oidc_keys(now.saturating_sub(RETIRED_KEY_SECS))
            .await?;
        Ok(rotated)
    }

    /// Verifies a JWS this provider signed (an `id_token_hint`); its claims.
    async fn oidc_verify(&self, token: &str) -> Result<Option<serde_json::Value>> {
        let jwks: Vec<String> = self
            .store
            .oidc_keys()
            .await?
            .into_iter()
            .map(|k| k.public_jwk)
            .collect();
        Ok(oidc_jwt::verify(&jwks, token))
    }

    // ----- authorization endpoint ----------------------------------------------------

    /// Checks an authorization request (OpenID Connect Core §3.1.2.2). The client and the
    /// redirect URI first: until both are known good, every refusal is an error page.
    pub async fn oidc_check_authorize(
        &self,
        p: &AuthorizeParams,
    ) -> std::result::Result<AuthorizeRequest, AuthorizeRefusal> {
        let page = |s: &str| AuthorizeRefusal::ErrorPage(s.to_string());
        let client_id = p
            .client_id
            .as_deref()
            .ok_or_else(|| page("the request names no client (client_id)"))?;
        let client = match self.store.oidc_client(client_id).await {
            Ok(Some(c)) => c,
            Ok(None) => return Err(page("this application is not registered with mamori")),
            Err(_) => return Err(page("the server could not answer; try again")),
        };
        let redirect_uri = match p.redirect_uri.as_deref() {
            Some(r) if client.redirect_uris.iter().any(|u| u == r) => r.to_string(),
            Some(_) => {
                return Err(page(
                    "the redirect URI is not one this application registered",
                ))
            }
            // OpenID Connect Core §3.1.2.1: redirect_uri is REQUIRED.
            None => return Err(page("the request has no redirect URI")),
        };
        let state = p.state.clone().filter(|s| !s.is_empty());
        let iss = self.oidc_issuer();
        let refuse = |error: &str, description: &str| {
            let mut pairs = vec![("error", error), ("error_description", description)];
            if let Some(s) = state.as_deref() {
                pairs.push(("state", s));
            }
            pairs.push(("iss", iss.as_str()));
            AuthorizeRefusal::Redirect(with_query(&redirect_uri, &pairs))
        };
        // OpenID Connect Core §3.1.2.6: the errors for what this provider does not support.
        for (given, error, what) in [
            (
                &p.request,
                "request_not_supported",
                "request objects are not supported",
            ),
            (
                &p.request_uri,
                "request_uri_not_supported",
                "request_uri is not supported",
            ),
            (
                &p.registration,
                "registration_not_supported",
                "the registration parameter is not supported",
            ),
        ] {
            if given.is_some() {
                return Err(refuse(error, what));
            }
        }
        if p.response_type.as_deref() != Some("code") {
            return Err(refuse(
                "unsupported_response_type",
                "only the authorization code flow (response_type=code)",
            ));
        }
        if p.response_mode.as_deref().is_some_and(|m| m != "query") {
            return Err(refuse("invalid_request", "only response_mode=query"));
        }
        let asked: Vec<&str> = p
            .scope
            .as_deref()
            .unwrap_or("")
            .split(' ')
            .filter(|s| !s.is_empty())
            .collect();
        if !asked.contains(&"openid") {
            return Err(refuse("invalid_scope", "the openid scope is required"));
        }
        let scopes: Vec<String> = SCOPES
            .iter()
            .filter(|s| asked.contains(s))
            .map(|s| s.to_string())
            .collect();
        let too_long = |v: &Option<String>| v.as_ref().is_some_and(|s| s.len() > MAX_PARAM_LEN);
        if too_long(&p.state) || too_long(&p.nonce) || too_long(&p.scope) || too_long(&p.acr_values)
        {
            return Err(refuse(
                "invalid_request",
                "state, nonce, scope and acr_values are at most 512 characters",
            ));
        }
        let acr_wanted = p
            .acr_values
            .as_deref()
            .unwrap_or("")
            .split(' ')
            .find_map(RequireFactor::from_acr);
        let code_challenge =
            match (
                p.code_challenge.as_deref(),
                p.code_challenge_method.as_deref(),
            ) {
                (None, None) if client.secret_hash.is_none() => {
                    return Err(refuse(
                        "invalid_request",
                        "a public client must use PKCE (code_challenge_method=S256)",
                    ))
                }
                (None, None) => None,
                // RFC 7636 §4.2: 43-128 characters; plain is refused (§7.2).
                (Some(c), Some("S256"))
                    if (43..=128).contains(&c.len())
                        && c.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b)) =>
                {
                    Some(c.to_string())
                }
                _ => return Err(refuse(
                    "invalid_request",
                    "PKCE needs code_challenge_method=S256 and a 43-128 character code_challenge",
                )),
            };
        let prompt: BTreeSet<String> = p
            .prompt
            .as_deref()
            .unwrap_or("")
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        if prompt.contains("none") && prompt.len() > 1 {
            return Err(refuse(
                "invalid_request",
                "prompt=none cannot be combined with other values",
            ));
        }
        let max_age = match p.max_age.as_deref() {
            None | Some("") => None,
            Some(m) => match m.parse::<i64>() {
                Ok(v) if v >= 0 => Some(v),
                _ => {
                    return Err(refuse(
                        "invalid_request",
                        "max_age must be a number of seconds",
                    ))
                }
            },
        };
        Ok(AuthorizeRequest {
            client,
            redirect_uri,
            scopes,
            state,
            nonce: p.nonce.clone().filter(|n| !n.is_empty()),
            code_challenge,
            prompt,
            max_age,
            acr_wanted,
        })
    }

    fn authorize_error(&self, req: &AuthorizeRequest, error: &str, description: &str) -> String {
        let iss = self.oidc_issuer();
        let mut pairs = vec![("error", error), ("error_description", description)];
        if let Some(s) = req.state.as_deref() {
            pairs.push(("state", s));
        }
        pairs.push(("iss", iss.as_str()));
        with_query(&req.redirect_uri, &pairs)
    }

    /// What the authorization endpoint does with a checked request and the console session
    /// of the browser (if any): sign in (again), ask consent, or redirect with a code.
    /// `just_signed_in`: the session's second factor was given moments ago, so asking for a
    /// fresh sign-in again would loop.
    pub async fn oidc_authorize<R: RngCore + CryptoRng + Send>(
        &self,
        req: &AuthorizeRequest,
        auth: Option<&Authenticated>,
        now: UnixTime,
        meta: &RequestMeta,
        rng: &mut R,
    ) -> Result<AuthorizeStep> {
        let none = req.prompt.contains("none");
        let Some(auth) = auth.filter(|a| a.session.state == SessionState::Full) else {
            // OpenID Connect Core §3.1.2.6.
            return Ok(if none {
                AuthorizeStep::Redirect(self.authorize_error(
                    req,
                    "login_required",
                    "no signed-in session",
                ))
            } else {
                AuthorizeStep::SignIn { fresh: false }
            });
        };
        let auth_time = auth.session.created_at;
        let stale = req
            .max_age
            .is_some_and(|m| now.saturating_sub(auth_time) > m);
        if req.prompt.contains("login") || stale {
            return Ok(if none {
                AuthorizeStep::Redirect(self.authorize_error(
                    req,
                    "login_required",
                    "the sign-in is older than max_age",
                ))
            } else {
                AuthorizeStep::SignIn { fresh: true }
            });
        }
        // What the session used (RFC 8176 §2): its password, and the kind its second factor
        // recorded (a security key or passkey is `hwk`, a code of any kind `otp`; a second
        // factor whose kind was not recorded is only `mfa`).
        let (amr, acr) = if auth.session.second_factor_at.is_none() {
            ("pwd", ACR_1FA)
        } else {
            match self
                .store
                .second_factor_kind(&auth.session.id)
                .await?
                .as_deref()
            {
                Some(super::factors::SECOND_FACTOR_SECURITY_KEY) => ("pwd hwk mfa", ACR_PHR),
                Some(super::factors::SECOND_FACTOR_OTP) => ("pwd otp mfa", ACR_2FA),
                _ => ("pwd mfa", ACR_2FA),
            }
        };
        let require = RequireFactor::parse(&req.client.require_factor)?;
        let name = auth.account.name.as_str();
        // A second factor given in the last minute: asking for a fresh sign-in again would
        // only loop (the account chose, or has, nothing stronger).
        let just_given = auth
            .session
            .second_factor_at
            .is_some_and(|t| now.saturating_sub(t) < 60);
        if !require.met_by(acr) {
            // A stronger factor is a step-up: a fresh sign-in, unless the account cannot give
            // one (no device) or just did (it has no security key).
            if auth.enabled_devices > 0 && !just_given && !none {
                return Ok(AuthorizeStep::SignIn { fresh: true });
            }
            self.audit(
                now,
                meta,
                Event::own(kind::AUTHORIZE, "factor_required", name).detail(&req.client.name),
            )
            .await?;
            return Ok(AuthorizeStep::Redirect(self.authorize_error(
                req,
                if none {
                    "interaction_required"
                } else {
                    "access_denied"
                },
                "this application needs a stronger second factor than this account used",
            )));
        }
        if !self
            .oidc_account_allowed(&req.client, &auth.account)
            .await?
        {
            self.audit(
                now,
                meta,
                Event::own(kind::AUTHORIZE, "denied", name).detail(&req.client.name),
            )
            .await?;
            return Ok(AuthorizeStep::Redirect(self.authorize_error(
                req,
                "access_denied",
                "this account may not use this application",
            )));
        }
        // The client's acr_values: a step-up (a fresh sign-in, once: the request resumed after
        // it no longer carries them) when the account can give what the client would rather
        // have; otherwise the sign-in stands and the ID token's `acr` says what it was (the
        // values are voluntary; the client decides what to make of a weaker `acr`).
        if let Some(want) = req.acr_wanted {
            if !want.met_by(acr) && !none {
                let can = match want {
                    RequireFactor::PhishingResistant => {
                        !self.security_keys(&auth.account).await?.is_empty()
                    }
                    _ => auth.enabled_devices > 0,
                };
                if can {
                    return Ok(AuthorizeStep::SignIn { fresh: true });
                }
            }
        }
        if !req.client.trusted {
            let consented = self
                .store
                .oidc_consent(&auth.account.id, &req.client.id)
                .await?
                .unwrap_or_default();
            let have: BTreeSet<&str> = consented.split(' ').collect();
            let covered = req.scopes.iter().all(|s| have.contains(s.as_str()));
            if !covered || req.prompt.contains("consent") {
                return Ok(if none {
                    AuthorizeStep::Redirect(self.authorize_error(
                        req,
                        "consent_required",
                        "the account has not agreed to share this",
                    ))
                } else {
                    AuthorizeStep::Consent {
                        scopes: req.scopes.clone(),
                    }
                });
            }
        }
        let (code, hash) = new_token(rng);
        self.store
            .create_oidc_code(&OidcCodeRecord {
                code_hash: Redacted::new(hash),
                client_id: req.client.id.clone(),
                account_id: auth.account.id.clone(),
                redirect_uri: req.redirect_uri.clone(),
                code_challenge: req.code_challenge.clone(),
                nonce: req.nonce.clone(),
                scope: req.scopes.join(" "),
                auth_time,
                amr: amr.into(),
                acr: acr.into(),
                created_at: now,
                expires_at: now.saturating_add(CODE_SECS),
            })
            .await?;
        self.audit(
            now,
            meta,
            Event::own(kind::AUTHORIZE, "success", name).detail(&req.client.name),
        )
        .await?;
        let iss = self.oidc_issuer();
        let mut pairs = vec![("code", code.as_str())];
        if let Some(s) = req.state.as_deref() {
            pairs.push(("state", s));
        }
        // RFC 9207 §2.
        pairs.push(("iss", iss.as_str()));
        Ok(AuthorizeStep::Redirect(with_query(
            &req.redirect_uri,
            &pairs,
        )))
    }

    /// The account's answer on the consent page: remembered (and audited) when given; a
    /// refusal redirects with `access_denied`.
    pub async fn oidc_consent<R: RngCore + CryptoRng + Send>(
        &self,
        req: &AuthorizeRequest,
        auth: &Authenticated,
        allow: bool,
        now: UnixTime,
        meta: &RequestMeta,
        rng: &mut R,
    ) -> Result<AuthorizeStep> {
        auth.require_full()?;
        let name = auth.account.name.as_str();
        let scope = req.scopes.join(" ");
        let detail = format!("{}: {scope}", req.client.name);
        if !allow {
            self.audit(
                now,
                meta,
                Event::own(kind::CONSENT, "refused", name).detail(&detail),
            )
            .await?;
            return Ok(AuthorizeStep::Redirect(self.authorize_error(
                req,
                "access_denied",
                "the account did not agree",
            )));
        }
        self.store
            .put_oidc_consent(&auth.account.id, &req.client.id, &scope, now)
            .await?;
        self.audit(
            now,
            meta,
            Event::own(kind::CONSENT, "success", name).detail(&detail),
        )
        .await?;
        let mut req = req.clone();
        req.prompt.remove("consent");
        self.oidc_authorize(&req, Some(auth), now, meta, rng).await
    }

    /// The clients the signed-in account has consented to or holds live tokens for, by
    /// name (#17: "remembered per account and revocable in the console"). Only the account's
    /// own: the store is asked by the session's account id.
    pub async fn oidc_connected_apps(
        &self,
        auth: &Authenticated,
        now: UnixTime,
    ) -> Result<Vec<ConnectedApp>> {
        auth.require_full()?;
        let account = &auth.account.id;
        let consents = self.store.oidc_consents_of(account).await?;
        let grants = self.store.oidc_live_grants_of(account, now).await?;
        let mut ids: BTreeSet<&str> = consents.iter().map(|c| c.client_id.as_str()).collect();
        ids.extend(grants.iter().map(|g| g.client_id.as_str()));
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            // A client deleted a moment ago takes its consents and grants with it.
            let Some(client) = self.store.oidc_client(id).await? else {
                continue;
            };
            let consent = consents.iter().find(|c| c.client_id == id);
            let live: Vec<&OidcGrantRecord> = grants.iter().filter(|g| g.client_id == id).collect();
            let scope_text = match consent {
                Some(c) => c.scope.clone(),
                None => live
                    .iter()
                    .map(|g| g.scope.as_str())
                    .collect::<Vec<_>>()
                    .join(" "),
            };
            let mentioned: BTreeSet<&str> = scope_text.split(' ').collect();
            out.push(ConnectedApp {
                client_id: client.id.clone(),
                // In the provider's order (openid first), each once.
                scopes: SCOPES
                    .iter()
                    .filter(|s| mentioned.contains(*s))
                    .map(|s| s.to_string())
                    .collect(),
                consented_at: consent.map(|c| c.created_at),
                last_granted_at: live.iter().map(|g| g.created_at).max(),
                live_grants: live.len(),
                client_name: client.name,
            });
        }
        out.sort_by(|a, b| a.client_name.cmp(&b.client_name));
        Ok(out)
    }

    /// The account takes back what it gave one client: its consent is deleted, every live
    /// grant (every access and refresh token) revoked and codes not yet redeemed deleted, in
    /// one transaction; audited as `oidc.consent` with result `revoked`. The console's
    /// "Revoke" and `DELETE /api/v1/me/oidc-consents/{client_id}` both come here. `NotFound`
    /// when the account has neither a consent nor a live grant for that client, so another
    /// account's client ids tell nothing (and only the session's own account is touched).
    pub async fn oidc_revoke_connected_app(
        &self,
        auth: &Authenticated,
        client_id: &str,
        now: UnixTime,
        meta: &RequestMeta,
    ) -> Result<ConnectedApp> {
        let app = self
            .oidc_connected_apps(auth, now)
            .await?
            .into_iter()
            .find(|a| a.client_id == client_id)
            .ok_or(Error::NotFound("connected application"))?;
        let done = self
            .store
            .revoke_oidc_access(&auth.account.id, &app.client_id, now)
            .await?;
        let detail = format!(
            "{}: {}; {} token families revoked",
            app.client_name,
            app.scopes.join(" "),
            done.grants
        );
        self.audit(
            now,
            meta,
            Event::own(kind::CONSENT, "revoked", &auth.account.name).detail(&detail),
        )
        .await?;
        Ok(app)
    }

    /// Whether the client's policy lets this account in: no list, or its name or one of its
    /// groups is listed.
    async fn oidc_account_allowed(
        &self,
        client: &OidcClientRecord,
        account: &AccountRecord,
    ) -> Result<bool> {
        if client.allowed_users.is_empty() && client.allowed_groups.is_empty() {
            return Ok(true);
        }
        if client.allowed_users.iter().any(|u| u == &account.name) {
            return Ok(true);
        }
        let groups = self.groups_of(account).await?;
        Ok(groups.iter().any(|g| client.allowed_groups.contains(g)))
    }

    // ----- token endpoint ------------------------------------------------------------

    /// Client authentication (RFC 6749 §2.3.1; `none` for public clients, OAuth 2.0 for
    /// Native Apps): the secret's SHA-256 compared in constant time.
    pub async fn oidc_authenticate_client(
        &self,
        creds: &ClientCredentials,
    ) -> std::result::Result<OidcClientRecord, OidcError> {
        let id = creds.client_id.as_deref().ok_or(OidcError::InvalidClient)?;
        let client = self
            .store
            .oidc_client(id)
            .await?
            .ok_or(OidcError::InvalidClient)?;
        match (&client.secret_hash, &creds.secret) {
            (Some(stored), Some(given)) => {
                let h = token_hash(given);
                if bool::from(h.ct_eq(stored.expose())) {
                    Ok(client)
                } else {
                    Err(OidcError::InvalidClient)
                }
            }
            (None, None) => Ok(client),
            _ => Err(OidcError::InvalidClient),
        }
    }

    /// The name of a registered client, if `id` is one (the edge's limit on failed client
    /// authentication tracks registered clients only).
    pub async fn oidc_client_name(&self, id: &str) -> Result<Option<String>> {
        Ok(self.store.oidc_client(id).await?.map(|c| c.name))
    }

    /// Audits that failed client authentication at `endpoint` reached its limit (the edge's
    /// limiter, docs/oidc.md "Limits") for `limited`: `client NAME` or `addr ADDRESS`.
    pub async fn oidc_client_auth_limited(
        &self,
        endpoint: &str,
        limited: &str,
        now: UnixTime,
        meta: &RequestMeta,
    ) -> Result<()> {
        let detail = format!("{endpoint}: {limited}");
        self.audit(
            now,
            meta,
            Event {
                kind: kind::CLIENT_AUTH_LIMITED,
                result: "rate_limited",
                account: None,
                actor: None,
                detail: Some(&detail),
            },
        )
        .await?;
        Ok(())
    }

    /// The token endpoint (RFC 6749 §4.1.3 and §6).
    pub async fn oidc_token<R: RngCore + CryptoRng + Send>(
        &self,
        creds: &ClientCredentials,
        p: &TokenParams,
        now: UnixTime,
        meta: &RequestMeta,
        rng: &mut R,
    ) -> std::result::Result<TokenResponse, OidcError> {
        let grant_type = p
            .grant_type
            .as_deref()
            .ok_or_else(|| OidcError::InvalidRequest("grant_type is missing".into()))?;
        if !matches!(grant_type, "authorization_code" | "refresh_token") {
            return Err(OidcError::UnsupportedGrantType);
        }
        let client = self.oidc_authenticate_client(creds).await?;
        if grant_type == "refresh_token" {
            return self.oidc_refresh(&client, p, now, meta, rng).await;
        }
        let code = p
            .code
            .as_deref()
            .ok_or_else(|| OidcError::InvalidRequest("code is missing".into()))?;
        let grant_id = new_id(rng);
        // The grant's first tokens are written by the redeeming statement (migration 0016).
        let (access, access_hash) = new_token(rng);
        let (refresh, refresh_hash) = new_token(rng);
        let redemption = Redemption {
            grant_id: &grant_id,
            grant_expires_at: now.saturating_add(GRANT_SECS),
            access_hash: &access_hash,
            access_expires_at: now.saturating_add(ACCESS_TOKEN_SECS),
            refresh_hash: &refresh_hash,
            signing_alg: &client.alg,
        };
        let redeemed = self
            .store
            .redeem_oidc_code(&token_hash(code), now, &redemption)
            .await?;
        let (c, account_name, active_kid) = match redeemed {
            CodeRedemption::Redeemed(r) => (r.code, r.account_name, r.active_kid),
            CodeRedemption::AlreadyUsed {
                grant_id: Some(g),
                client_id,
            } if client_id == client.id => {
                // RFC 6749 §4.1.2: a code used twice revokes what was issued from it.
                if let Some(grant) = self.store.oidc_grant(&g).await? {
                    self.store.revoke_oidc_grant(&g, now).await?;
                    self.audit_grant(&grant, kind::REUSE, "code_reuse", &client.name, now, meta)
                        .await?;
                }
                return Err(OidcError::InvalidGrant("the code was already used"));
            }
            _ => return Err(OidcError::InvalidGrant("the code is invalid or expired")),
        };
        // The code is spent whatever follows: a mismatch below is an attack or a bug of the
        // client, and the grant it started is revoked so nothing can be issued from it; its
        // first tokens, written with it and never handed out, end with it (a token is valid
        // only while its grant is).
        let refuse = |why: &'static str| OidcError::InvalidGrant(why);
        let mismatch = if c.client_id != client.id {
            Some(refuse("the code was issued to another client"))
        } else if p.redirect_uri.as_deref() != Some(c.redirect_uri.as_str()) {
            Some(refuse(
                "redirect_uri does not match the authorization request",
            ))
        } else {
            match (&c.code_challenge, p.code_verifier.as_deref()) {
                (Some(ch), Some(v)) if verify_pkce(v, ch) => None,
                (None, None) => None,
                _ => Some(refuse("the PKCE code_verifier does not match")),
            }
        };
        if let Some(e) = mismatch {
            self.store.revoke_oidc_grant(&grant_id, now).await?;
            return Err(e);
        }
        // The grant as the redeeming statement wrote it (store/oidc.rs), without reading it back.
        let grant = OidcGrantRecord {
            id: grant_id,
            client_id: c.client_id,
            account_id: c.account_id,
            scope: c.scope,
            auth_time: c.auth_time,
            amr: c.amr,
            acr: c.acr,
            created_at: now,
            expires_at: now.saturating_add(GRANT_SECS),
            revoked_at: None,
        };
        let signer = self
            .oidc_signing_key(&client.alg, active_kid.as_deref(), now, meta, rng)
            .await?;
        let resp = self.oidc_token_response(
            &client,
            &grant,
            c.nonce.as_deref(),
            signer,
            (access, refresh),
            now,
        )?;
        let name = account_name.as_deref();
        let event = Event {
            kind: kind::TOKEN,
            result: "success",
            account: name,
            actor: name,
            detail: Some(&client.name),
        };
        self.audit(now, meta, event).await?;
        Ok(resp)
    }

    async fn oidc_refresh<R: RngCore + CryptoRng + Send>(
        &self,
        client: &OidcClientRecord,
        p: &TokenParams,
        now: UnixTime,
        meta: &RequestMeta,
        rng: &mut R,
    ) -> std::result::Result<TokenResponse, OidcError> {
        let token = p
            .refresh_token
            .as_deref()
            .ok_or_else(|| OidcError::InvalidRequest("refresh_token is missing".into()))?;
        let invalid = OidcError::InvalidGrant("the refresh token is invalid, expired or revoked");
        let used = self
            .store
            .use_oidc_refresh_token(&token_hash(token), now)
            .await?;
        let (t, reused) = match used {
            RefreshUse::Rotated(t) => (t, false),
            RefreshUse::Reused(t) => (t, true),
            RefreshUse::Invalid => return Err(invalid),
        };
        let Some(grant) = self.store.oidc_grant(&t.grant_id).await? else {
            return Err(invalid);
        };
        if grant.client_id != client.id {
            return Err(invalid);
        }
        if reused {
            // A refresh token presented twice was copied: end the whole family.
            if self.store.revoke_oidc_grant(&grant.id, now).await? {
                self.audit_grant(
                    &grant,
                    kind::REUSE,
                    "refresh_reuse",
                    &client.name,
                    now,
                    meta,
                )
                .await?;
            }
            return Err(OidcError::InvalidGrant(
                "the refresh token was already used",
            ));
        }
        if grant.revoked_at.is_some() || grant.expires_at <= now {
            return Err(invalid);
        }
        // The account must still exist, be unlocked and be allowed by the client's policy
        // (an administrator may have taken it out of the client's groups since).
        let account = self.store.account_by_id(&grant.account_id).await?;
        let still = match &account {
            Some(a) => a.locked_at.is_none() && self.oidc_account_allowed(client, a).await?,
            None => false,
        };
        if !still {
            self.store.revoke_oidc_grant(&grant.id, now).await?;
            return Err(OidcError::InvalidGrant(
                "the account may no longer use this client",
            ));
        }
        let signer = self
            .oidc_signing_key(&client.alg, None, now, meta, rng)
            .await?;
        let resp = self.oidc_issue(client, &grant, signer, now, rng).await?;
        self.audit_grant(&grant, kind::REFRESH, "success", &client.name, now, meta)
            .await?;
        Ok(resp)
    }

    async fn audit_grant(
        &self,
        grant: &OidcGrantRecord,
        kind: &str,
        result: &str,
        client_name: &str,
        now: UnixTime,
        meta: &RequestMeta,
    ) -> Result<()> {
        let account = self.store.account_by_id(&grant.account_id).await?;
        let name = account.as_ref().map(|a| a.name.as_str());
        self.audit(
            now,
            meta,
            Event {
                kind,
                result,
                account: name,
                actor: name,
                detail: Some(client_name),
            },
        )
        .await?;
        Ok(())
    }

    /// Issues a new access token, refresh token and ID token of `grant` at a refresh (a code's
    /// redemption writes its first tokens itself). `signer`: the active key of the client's
    /// algorithm (`oidc_signing_key`).
    async fn oidc_issue<R: RngCore + CryptoRng + Send>(
        &self,
        client: &OidcClientRecord,
        grant: &OidcGrantRecord,
        signer: (String, std::sync::Arc<oidc_jwt::SigningKeyPair>),
        now: UnixTime,
        rng: &mut R,
    ) -> Result<TokenResponse> {
        let (access, access_hash) = new_token(rng);
        let (refresh, refresh_hash) = new_token(rng);
        let expires_at = now.saturating_add(ACCESS_TOKEN_SECS);
        let tokens: Vec<OidcTokenRecord> = [
            (access_hash, "access", expires_at),
            (refresh_hash, "refresh", grant.expires_at),
        ]
        .into_iter()
        .map(|(hash, kind, exp)| OidcTokenRecord {
            token_hash: Redacted::new(hash),
            kind: kind.into(),
            grant_id: grant.id.clone(),
            created_at: now,
            expires_at: exp,
            used_at: None,
            revoked_at: None,
        })
        .collect();
        self.store.create_oidc_tokens(&tokens).await?;
        // No nonce: a refresh is not an authentication request (OpenID Connect Core §12.2 as
        // corrected by the errata set: it may be absent from a refreshed ID token).
        self.oidc_token_response(client, grant, None, signer, (access, refresh), now)
    }

    /// The token endpoint's answer: the stored `(access, refresh)` tokens and an ID token of
    /// `grant` signed by `signer`, expiring with the access token.
    fn oidc_token_response(
        &self,
        client: &OidcClientRecord,
        grant: &OidcGrantRecord,
        nonce: Option<&str>,
        signer: (String, std::sync::Arc<oidc_jwt::SigningKeyPair>),
        (access, refresh): (Zeroizing<String>, Zeroizing<String>),
        now: UnixTime,
    ) -> Result<TokenResponse> {
        let expires_at = now.saturating_add(ACCESS_TOKEN_SECS);
        // OpenID Connect Core §2 (claims) and RFC 8176 (amr values).
        let mut claims = serde_json::json!({
            "iss": self.oidc_issuer(),
            "sub": self.oidc_subject(&grant.account_id),
            "aud": client.id,
            "azp": client.id,
            "exp": expires_at,
            "iat": now,
            "auth_time": grant.auth_time,
            "amr": grant.amr.split(' ').collect::<Vec<_>>(),
            "acr": grant.acr,
        });
        if let (Some(n), Some(obj)) = (nonce, claims.as_object_mut()) {
            obj.insert("nonce".into(), n.into());
        }
        let (kid, pair) = signer;
        let id_token = pair.sign(&kid, &claims)?;
        Ok(TokenResponse {
            access_token: access,
            expires_in: ACCESS_TOKEN_SECS,
            refresh_token: refresh,
            id_token,
            scope: grant.scope.clone(),
        })
    }

    /// A token and its grant if both are live (unexpired, unrevoked).
    async fn live_token(
        &self,
        token: &str,
        now: UnixTime,
    ) -> Result<Option<(OidcTokenRecord, OidcGrantRecord)>> {
        let Some(t) = self.store.oidc_token(&token_hash(token)).await? else {
            return Ok(None);
        };
        let live = t.revoked_at.is_none()
            && t.expires_at > now
            && (t.kind == "access" || t.used_at.is_none());
        if !live {
            return Ok(None);
        }
        let Some(g) = self.store.oidc_grant(&t.grant_id).await? else {
            return Ok(None);
        };
        if g.revoked_at.is_some() || g.expires_at <= now {
            return Ok(None);
        }
        Ok(Some((t, g)))
    }

    /// The UserInfo endpoint (OpenID Connect Core §5.3): the claims of the scopes granted.
    pub async fn oidc_userinfo(
        &self,
        access_token: &str,
        now: UnixTime,
    ) -> std::result::Result<serde_json::Value, OidcError> {
        let Some((t, g)) = self.live_token(access_token, now).await? else {
            return Err(OidcError::InvalidToken);
        };
        if t.kind != "access" {
            return Err(OidcError::InvalidToken);
        }
        let account = self
            .store
            .account_by_id(&g.account_id)
            .await?
            .ok_or(OidcError::InvalidToken)?;
        let scopes: BTreeSet<&str> = g.scope.split(' ').collect();
        let mut claims = serde_json::Map::new();
        claims.insert("sub".into(), self.oidc_subject(&account.id).into());
        if scopes.contains("profile") {
            let prefs = self.preferences(&account).await?;
            claims.insert("preferred_username".into(), account.name.clone().into());
            claims.insert("name".into(), account.name.clone().into());
            claims.insert(
                "locale".into(),
                super::preferences::language_code(prefs.language).into(),
            );
            claims.insert("zoneinfo".into(), prefs.time_zone.into());
        }
        if scopes.contains("email") {
            // Verified only when this very address was proven by a code sent to it
            // (verified_contacts, domain/contacts.rs); an administrator's entry is not.
            if let Some(e) = &account.email {
                let proven = self.store.verified_contacts(&account.id).await?;
                let verified = proven.iter().any(|(c, v)| c == "email" && v == e);
                claims.insert("email".into(), e.clone().into());
                claims.insert("email_verified".into(), verified.into());
            }
        }
        if scopes.contains("groups") {
            claims.insert("groups".into(), self.groups_of(&account).await?.into());
        }
        Ok(serde_json::Value::Object(claims))
    }

    /// Introspection (RFC 7662 §2): for an authenticated client, whether a token is active,
    /// and its claims if it is. An inactive or unknown token is `{"active": false}` only.
    pub async fn oidc_introspect(
        &self,
        creds: &ClientCredentials,
        token: &str,
        now: UnixTime,
    ) -> std::result::Result<serde_json::Value, OidcError> {
        self.oidc_authenticate_client(creds).await?;
        let inactive = serde_json::json!({"active": false});
        let Some((t, g)) = self.live_token(token, now).await? else {
            return Ok(inactive);
        };
        let Some(account) = self.store.account_by_id(&g.account_id).await? else {
            return Ok(inactive);
        };
        Ok(serde_json::json!({
            "active": true,
            "scope": g.scope,
            "client_id": g.client_id,
            "username": account.name,
            "token_type": if t.kind == "access" { "Bearer" } else { "refresh_token" },
            "exp": t.expires_at,
            "iat": t.created_at,
            "sub": self.oidc_subject(&account.id),
            "aud": g.client_id,
            "iss": self.oidc_issuer(),
        }))
    }

    /// Revocation (RFC 7009 §2.1): a client revokes one of its tokens; a refresh token takes
    /// its whole grant with it. Unknown tokens and other clients' tokens are answered the
    /// same way (§2.2: success), and change nothing.
    pub async fn oidc_revoke(
        &self,
        creds: &ClientCredentials,
        token: &str,
        now: UnixTime,
        meta: &RequestMeta,
    ) -> std::result::Result<(), OidcError> {
        let client = self.oidc_authenticate_client(creds).await?;
        let Some(t) = self.store.oidc_token(&token_hash(token)).await? else {
            return Ok(());
        };
        let Some(g) = self.store.oidc_grant(&t.grant_id).await? else {
            return Ok(());
        };
        if g.client_id != client.id {
            return Ok(());
        }
        let changed = if t.kind == "refresh" {
            self.store.revoke_oidc_grant(&g.id, now).await?
        } else {
            self.store
                .revoke_oidc_token(&token_hash(token), now)
                .await?
        };
        if changed {
            let detail = format!("{} {}", client.name, t.kind);
            self.audit_grant(&g, kind::REVOKE, "success", &detail, now, meta)
                .await?;
        }
        Ok(())
    }

    /// RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0 §2–3): where to send the
    /// browser afterwards — a registered post-logout URI of the client named by `client_id`
    /// or by the audience of a valid `id_token_hint`, with `state` — or `None` (the console
    /// then shows its sign-in page). A URI not registered for that client is never used.
    pub async fn oidc_logout_target(
        &self,
        client_id: Option<&str>,
        id_token_hint: Option<&str>,
        post_logout_redirect_uri: Option<&str>,
        state: Option<&str>,
    ) -> Result<Option<String>> {
        let Some(uri) = post_logout_redirect_uri else {
            return Ok(None);
        };
        let hinted = match id_token_hint {
            Some(t) => self
                .oidc_verify(t)
                .await?
                .and_then(|c| c.get("aud").and_then(|a| a.as_str()).map(str::to_string)),
            None => None,
        };
        let Some(id) = client_id.map(str::to_string).or(hinted.clone()) else {
            return Ok(None);
        };
        if hinted.as_ref().is_some_and(|h| h != &id) {
            return Ok(None);
        }
        let Some(client) = self.store.oidc_client(&id).await? else {
            return Ok(None);
        };
        if !client.post_logout_redirect_uris.iter().any(|u| u == uri) {
            return Ok(None);
        }
        Ok(Some(match state {
            Some(s) => with_query(uri, &[("state", s)]),
            None => uri.to_string(),
        }))
    }

    /// RP-initiated logout confirmed by the account: ends the console session (audited).
    pub async fn oidc_logout(
        &self,
        auth: &Authenticated,
        client_id: Option<&str>,
        now: UnixTime,
        meta: &RequestMeta,
    ) -> Result<()> {
        self.sign_out(auth, now, meta).await?;
        let client = match client_id {
            Some(id) => self.store.oidc_client(id).await?.map(|c| c.name),
            None => None,
        };
        self.audit(
            now,
            meta,
            Event::own(kind::LOGOUT, "success", &auth.account.name)
                .detail(client.as_deref().unwrap_or("-")),
        )
        .await?;
        Ok(())
    }

    /// Deletes expired codes, tokens and grants (housekeeping, every node).
    pub async fn purge_oidc(&self, now: UnixTime) -> Result<u64> {
        self.store.purge_oidc(now).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn pkce_s256_matches_the_rfc7636_appendix_b_example() {
        // RFC 7636 Appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(verify_pkce(verifier, challenge));
        assert!(!verify_pkce(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXK",
            challenge
        ));
        // Too short, even if it matched.
        let short = "abc";
        let c = BASE64URL_NOPAD.encode(&Sha256::digest(short.as_bytes()));
        assert!(!verify_pkce(short, &c));
    }

    #[test]
    fn redirect_uris_are_exact_https_or_loopback() {
        assert!(check_uri("https://app.example/cb").is_ok());
        assert!(check_uri("http://127.0.0.1:8080/cb").is_ok());
        assert!(check_uri("http://localhost/cb").is_ok());
        for bad in [
            "http://app.example/cb",
            "https://app.example/cb#x",
            "https://*.example/cb",
            "/cb",
            "javascript:alert(1)",
        ] {
            assert!(check_uri(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn query_is_appended_to_the_registered_uri() {
        assert_eq!(
            with_query(
                "https://a.example/cb?x=1",
                &[("code", "c d"), ("state", "s&")]
            ),
            "https://a.example/cb?x=1&code=c+d&state=s%26"
        );
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let creds = ClientCredentials {
            client_id: Some("id".into()),
            secret: Some(Zeroizing::new("s3cret-value".into())),
            basic: true,
        };
        let params = TokenParams {
            code: Some("c0de-value".into()),
            code_verifier: Some("ver1fier-value".into()),
            refresh_token: Some("refr3sh-value".into()),
            ..Default::default()
        };
        let resp = TokenResponse {
            access_token: Zeroizing::new("acc3ss-value".into()),
            expires_in: 1,
            refresh_token: Zeroizing::new("refr3sh-value".into()),
            id_token: "header.payl0ad.sig".into(),
            scope: "openid".into(),
        };
        let all = format!("{creds:?} {params:?} {resp:?}");
        for secret in ["s3cret", "c0de", "ver1fier", "refr3sh", "acc3ss", "payl0ad"] {
            assert!(!all.contains(secret), "{secret} in {all}");
        }
        assert!(all.contains("id"));
    }

    #[test]
    fn repeated_parameters_are_refused() {
        assert!(AuthorizeParams::from_query("client_id=a&client_id=b").is_none());
        let p = AuthorizeParams::from_query("client_id=a&x=1&x=2&scope=openid+email").unwrap();
        assert_eq!(p.client_id.as_deref(), Some("a"));
        assert_eq!(p.scope.as_deref(), Some("openid email"));
    }

    #[test]
    fn resumed_request_drops_prompt_and_max_age_only_when_fresh() {
        let p = AuthorizeParams {
            response_type: Some("code".into()),
            client_id: Some("c".into()),
            prompt: Some("login".into()),
            max_age: Some("0".into()),
            ..Default::default()
        };
        assert_eq!(p.to_query(true), "response_type=code&client_id=c");
        assert_eq!(
            p.to_query(false),
            "response_type=code&client_id=c&prompt=login&max_age=0"
        );
    }
}
