//! The OpenID provider's machine endpoints (#17, docs/oidc.md): discovery, JWKS, token,
//! userinfo, revocation (RFC 7009) and introspection (RFC 7662). Translation only: client
//! credentials are read from `Authorization: Basic` or the form, every rule is the domain's
//! (`domain/oidc.rs`). The browser endpoints (authorize, consent, logout) are the console's
//! (`console/pages_oidc.rs`). Answers follow the OAuth specifications (`{"error",
//! "error_description"}`), not the API's error format, and are never cached.

use axum::extract::rejection::StringRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use data_encoding::BASE64;
use mamori_api::oidc as wire;
use rand::rngs::OsRng;
use zeroize::Zeroizing;

use crate::domain::oidc::{
    ClientCredentials, OidcError, TokenParams, ACR_1FA, ACR_2FA, ACR_PHR, SCOPES,
};

use super::{AppState, Meta};
use crate::web::failure_limit;

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/oidc/jwks", get(jwks))
        .route("/oidc/token", axum::routing::post(token))
        .route("/oidc/userinfo", get(userinfo).post(userinfo_post))
        .route("/oidc/revoke", axum::routing::post(revoke))
        .route("/oidc/introspect", axum::routing::post(introspect))
}

fn no_store(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

/// An OAuth error answer: 401 for client and token errors (with the `WWW-Authenticate`
/// RFC 6749 §5.2 and RFC 6750 §3 ask for), 500 for the server's own, 400 otherwise.
fn oauth_error(e: &OidcError, basic: bool) -> Response {
    let status = match e {
        OidcError::InvalidClient | OidcError::InvalidToken => StatusCode::UNAUTHORIZED,
        OidcError::Other(inner) => {
            tracing::error!(error = %inner, "oidc: internal error");
            StatusCode::INTERNAL_SERVER_ERROR
        }
        _ => StatusCode::BAD_REQUEST,
    };
    let body = wire::OAuthError {
        error: e.code().into(),
        error_description: e.description(),
    };
    let mut r = (status, Json(body)).into_response();
    let challenge = match e {
        OidcError::InvalidClient if basic => Some(r#"Basic realm="mamori""#),
        OidcError::InvalidToken => Some(r#"Bearer error="invalid_token""#),
        _ => None,
    };
    if let Some(c) = challenge {
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(c));
    }
    no_store(r)
}

/// The form's fields; `None` when one is repeated (RFC 6749 §3.2: parameters must not be
/// included more than once).
fn form(body: &str) -> Option<Vec<(String, String)>> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (k, v) in url::form_urlencoded::parse(body.as_bytes()) {
        if out.iter().any(|(x, _)| x == k.as_ref()) {
            return None;
        }
        out.push((k.into_owned(), v.into_owned()));
    }
    Some(out)
}

fn field(f: &[(String, String)], name: &str) -> Option<String> {
    f.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
}

/// Client credentials from `Authorization: Basic` (RFC 6749 §2.3.1: both parts
/// form-urlencoded, then Base64) or from the form; both at once is refused (§2.3).
fn credentials(
    headers: &HeaderMap,
    f: &[(String, String)],
) -> Result<ClientCredentials, OidcError> {
    let form_id = field(f, "client_id");
    let form_secret = field(f, "client_secret").map(Zeroizing::new);
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "));
    let Some(b64) = basic else {
        return Ok(ClientCredentials {
            client_id: form_id,
            secret: form_secret,
            basic: false,
        });
    };
    if form_secret.is_some() {
        return Err(OidcError::InvalidRequest(
            "use one client authentication method, not Basic and the form together".into(),
        ));
    }
    let decoded = Zeroizing::new(
        BASE64
            .decode(b64.trim().as_bytes())
            .map_err(|_| OidcError::InvalidClient)?,
    );
    let text = std::str::from_utf8(&decoded).map_err(|_| OidcError::InvalidClient)?;
    let (id, secret) = text.split_once(':').ok_or(OidcError::InvalidClient)?;
    let dec = |s: &str| -> Result<String, OidcError> {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| OidcError::InvalidClient)
    };
    let id = dec(id)?;
    if form_id.as_ref().is_some_and(|f| f != &id) {
        return Err(OidcError::InvalidRequest(
            "client_id in the form differs from the Basic credentials".into(),
        ));
    }
    Ok(ClientCredentials {
        client_id: Some(id),
        secret: Some(Zeroizing::new(dec(secret)?)),
        basic: true,
    })
}

/// The answer when the limit on failed client authentication holds (docs/oidc.md "Limits"):
/// 429 with `Retry-After`. RFC 6749 defines no error for this at the token endpoint;
/// `temporarily_unavailable` (§4.1.2.1's "unable to handle the request due to a temporary
/// overloading") says "try again later" to every OAuth library, where `invalid_client` would
/// make a relying party with the right secret believe its secret is wrong, and RFC 8628's
/// `slow_down` means polling too fast.
fn too_many_failures(retry_after: u64) -> Response {
    let body = wire::OAuthError {
        error: "temporarily_unavailable".into(),
        error_description: format!(
            "too many failed client authentications; try again in {retry_after} seconds"
        ),
    };
    let mut r = (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    no_store(r)
}

/// The form of a client's request with its credentials, and the limiter keys it counts under;
/// or the answer that ends it: a body over `limits.body_bytes` (413), a repeated parameter,
/// credentials that cannot be read, or the limit on failed client authentication (429, before
/// the secret is looked at).
struct ClientRequest {
    form: Vec<(String, String)>,
    creds: ClientCredentials,
    keys: Vec<String>,
}

async fn client_request(
    st: &AppState,
    m: &Meta,
    headers: &HeaderMap,
    body: Result<String, StringRejection>,
    endpoint: &'static str,
) -> Result<ClientRequest, Response> {
    let body = body.map_err(|e| {
        count(endpoint, "invalid_request");
        let mut r = oauth_error(
            &OidcError::InvalidRequest(if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                "the request body is too large".into()
            } else {
                "the request body could not be read".into()
            }),
            false,
        );
        *r.status_mut() = e.status();
        r
    })?;
    let Some(form) = form(&body) else {
        count(endpoint, "invalid_request");
        return Err(oauth_error(
            &OidcError::InvalidRequest("a parameter was sent more than once".into()),
            false,
        ));
    };
    let creds = credentials(headers, &form);
    // A client id is a key only in the shape of one (registered ids are UUIDs): anything
    // else is refused as invalid_client anyway, and counts under the address alone.
    let client_key = creds
        .as_ref()
        .ok()
        .and_then(|c| c.client_id.as_deref())
        .filter(|id| {
            !id.is_empty()
                && id.len() <= 64
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    let keys = failure_limit::keys(m.ip, client_key);
    // Only the address is refused: a client id over its count is audited, not locked out (a
    // client id is public; see web/failure_limit.rs).
    let addresses: Vec<String> = keys
        .iter()
        .filter(|k| k.starts_with("addr "))
        .cloned()
        .collect();
    if let Some(wait) = st.oidc_client_limiter.blocked(&addresses) {
        count(endpoint, "rate_limited");
        return Err(too_many_failures(wait));
    }
    match creds {
        Ok(creds) => Ok(ClientRequest { form, creds, keys }),
        Err(e) => {
            if matches!(e, OidcError::InvalidClient) {
                client_failed(st, m, &keys, endpoint).await;
            }
            count(endpoint, e.code());
            Err(oauth_error(&e, true))
        }
    }
}

/// Counts a failed client authentication under the address and, when the request named a
/// registered client, under that client (made-up ids are not tracked: they would only fill
/// the table, and every guess is counted under its address anyway). A key it brings to the
/// limit is audited, once per window; the audit failing does not change the answer, and is
/// logged.
async fn client_failed(st: &AppState, m: &Meta, keys: &[String], endpoint: &'static str) {
    let mut keys = keys.to_vec();
    let mut name = None;
    if let Some(id) = keys.iter().find_map(|k| k.strip_prefix("client ")) {
        name = st.svc.oidc_client_name(id).await.ok().flatten();
    }
    if name.is_none() {
        keys.retain(|k| !k.starts_with("client "));
    }
    for key in st.oidc_client_limiter.fail(&keys) {
        let what = match (&name, key.starts_with("client ")) {
            (Some(n), true) => format!("client {n}"),
            _ => key,
        };
        if let Err(e) = st
            .svc
            .oidc_client_auth_limited(endpoint, &what, st.clock.now(), &m.meta)
            .await
        {
            tracing::warn!(error = %e, "oidc: auditing the client authentication limit failed");
        }
    }
}

fn list(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn count(what: &'static str, result: &'static str) {
    metrics::counter!("mamori_oidc_requests_total", "endpoint" => what, "result" => result)
        .increment(1);
}

/// OpenID Provider metadata (OpenID Connect Discovery 1.0 §3; RFC 8414).
#[utoipa::path(get, path = "/.well-known/openid-configuration", tag = "oidc", responses((status = 200, description = "the provider's metadata", body = mamori_api::oidc::Discovery)))]
pub async fn discovery(State(st): State<AppState>) -> Json<wire::Discovery> {
    let iss = st.svc.oidc_issuer();
    let at = |p: &str| format!("{iss}{p}");
    let auth_methods = list(&["client_secret_basic", "client_secret_post", "none"]);
    Json(wire::Discovery {
        authorization_endpoint: at("/oidc/authorize"),
        token_endpoint: at("/oidc/token"),
        userinfo_endpoint: at("/oidc/userinfo"),
        jwks_uri: at("/oidc/jwks"),
        revocation_endpoint: at("/oidc/revoke"),
        introspection_endpoint: at("/oidc/introspect"),
        end_session_endpoint: at("/oidc/logout"),
        issuer: iss,
        response_types_supported: list(&["code"]),
        response_modes_supported: list(&["query"]),
        grant_types_supported: list(&["authorization_code", "refresh_token"]),
        subject_types_supported: list(&["public"]),
        id_token_signing_alg_values_supported: list(&crate::domain::oidc_jwt::ALGS),
        scopes_supported: list(&SCOPES),
        token_endpoint_auth_methods_supported: auth_methods.clone(),
        revocation_endpoint_auth_methods_supported: auth_methods.clone(),
        introspection_endpoint_auth_methods_supported: auth_methods,
        code_challenge_methods_supported: list(&["S256"]),
        claims_supported: list(&[
            "iss",
            "sub",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "amr",
            "acr",
            "azp",
            "preferred_username",
            "name",
            "locale",
            "zoneinfo",
            "email",
            "email_verified",
            "groups",
        ]),
        acr_values_supported: list(&[ACR_1FA, ACR_2FA, ACR_PHR]),
        prompt_values_supported: list(&["none", "login", "consent"]),
        authorization_response_iss_parameter_supported: true,
        claims_parameter_supported: false,
        request_parameter_supported: false,
        request_uri_parameter_supported: false,
    })
}

/// The signing keys (RFC 7517 JWK Set).
#[utoipa::path(get, path = "/oidc/jwks", tag = "oidc", responses((status = 200, description = "{\"keys\": [JWK…]}: every key that signed a token still valid", body = Object)))]
pub async fn jwks(State(st): State<AppState>) -> Response {
    match st.svc.oidc_jwks(st.clock.now()).await {
        Ok(v) => Json(v).into_response(),
        Err(e) => oauth_error(&OidcError::Other(e), false),
    }
}

/// The token endpoint (RFC 6749 §4.1.3, §6): `authorization_code` and `refresh_token`.
#[utoipa::path(post, path = "/oidc/token", tag = "oidc", request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "grant_type, code, redirect_uri, code_verifier, refresh_token; client_id and client_secret unless in Authorization: Basic"), responses((status = 200, description = "tokens", body = mamori_api::oidc::TokenResponse), (status = 400, description = "invalid_request, invalid_grant, unsupported_grant_type", body = mamori_api::oidc::OAuthError), (status = 401, description = "invalid_client", body = mamori_api::oidc::OAuthError), (status = 413, description = "invalid_request: the body is larger than limits.body_bytes", body = mamori_api::oidc::OAuthError), (status = 429, description = "temporarily_unavailable: too many failed client authentications for this client or address (Retry-After)", body = mamori_api::oidc::OAuthError)))]
pub async fn token(
    State(st): State<AppState>,
    m: Meta,
    headers: HeaderMap,
    body: Result<String, StringRejection>,
) -> Response {
    let ClientRequest {
        form: f,
        creds,
        keys,
    } = match client_request(&st, &m, &headers, body, "token").await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let params = TokenParams {
        grant_type: field(&f, "grant_type"),
        code: field(&f, "code"),
        redirect_uri: field(&f, "redirect_uri"),
        code_verifier: field(&f, "code_verifier"),
        refresh_token: field(&f, "refresh_token"),
    };
    match st
        .svc
        .oidc_token(&creds, &params, st.clock.now(), &m.meta, &mut OsRng)
        .await
    {
        Ok(t) => {
            count("token", "success");
            no_store(
                Json(wire::TokenResponse {
                    access_token: t.access_token.to_string(),
                    token_type: "Bearer".into(),
                    expires_in: t.expires_in,
                    refresh_token: t.refresh_token.to_string(),
                    id_token: t.id_token,
                    scope: t.scope,
                })
                .into_response(),
            )
        }
        Err(e) => {
            if matches!(e, OidcError::InvalidClient) {
                client_failed(&st, &m, &keys, "token").await;
            }
            count("token", e.code());
            oauth_error(&e, creds.basic)
        }
    }
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string())
}

async fn userinfo_of(st: &AppState, token: Option<String>) -> Response {
    let Some(token) = token else {
        return oauth_error(&OidcError::InvalidToken, false);
    };
    match st.svc.oidc_userinfo(&token, st.clock.now()).await {
        Ok(v) => no_store(Json(v).into_response()),
        Err(e) => oauth_error(&e, false),
    }
}

/// UserInfo (OpenID Connect Core §5.3) with `Authorization: Bearer ACCESS_TOKEN`.
#[utoipa::path(get, path = "/oidc/userinfo", tag = "oidc", responses((status = 200, description = "the claims of the granted scopes", body = Object), (status = 401, description = "invalid_token (WWW-Authenticate: Bearer)", body = mamori_api::oidc::OAuthError)), security(("oidc_access_token" = [])))]
pub async fn userinfo(State(st): State<AppState>, headers: HeaderMap) -> Response {
    userinfo_of(&st, bearer(&headers)).await
}

/// UserInfo by POST (OpenID Connect Core §5.3.1): the bearer header, or `access_token` in
/// the form (RFC 6750 §2.2).
#[utoipa::path(post, path = "/oidc/userinfo", tag = "oidc", responses((status = 200, description = "the claims of the granted scopes", body = Object), (status = 401, description = "invalid_token", body = mamori_api::oidc::OAuthError)), security(("oidc_access_token" = [])))]
pub async fn userinfo_post(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let token = bearer(&headers).or_else(|| form(&body).and_then(|f| field(&f, "access_token")));
    userinfo_of(&st, token).await
}

/// Revocation (RFC 7009): the client's own access or refresh token; a refresh token ends
/// its whole grant. Unknown tokens are answered 200 too (§2.2).
#[utoipa::path(post, path = "/oidc/revoke", tag = "oidc", request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "token, token_type_hint; client authentication"), responses((status = 200, description = "revoked (or unknown)"), (status = 401, description = "invalid_client", body = mamori_api::oidc::OAuthError), (status = 413, description = "invalid_request: the body is larger than limits.body_bytes", body = mamori_api::oidc::OAuthError), (status = 429, description = "temporarily_unavailable: too many failed client authentications (Retry-After)", body = mamori_api::oidc::OAuthError)))]
pub async fn revoke(
    State(st): State<AppState>,
    m: Meta,
    headers: HeaderMap,
    body: Result<String, StringRejection>,
) -> Response {
    let ClientRequest {
        form: f,
        creds,
        keys,
    } = match client_request(&st, &m, &headers, body, "revoke").await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let Some(token) = field(&f, "token") else {
        count("revoke", "invalid_request");
        return oauth_error(&OidcError::InvalidRequest("token is missing".into()), false);
    };
    match st
        .svc
        .oidc_revoke(&creds, &token, st.clock.now(), &m.meta)
        .await
    {
        Ok(()) => {
            count("revoke", "success");
            no_store(StatusCode::OK.into_response())
        }
        Err(e) => {
            if matches!(e, OidcError::InvalidClient) {
                client_failed(&st, &m, &keys, "revoke").await;
            }
            count("revoke", e.code());
            oauth_error(&e, creds.basic)
        }
    }
}

/// Introspection (RFC 7662) for authenticated clients (resource servers are registered as
/// clients).
#[utoipa::path(post, path = "/oidc/introspect", tag = "oidc", request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "token; client authentication"), responses((status = 200, description = "{\"active\": true, …} or {\"active\": false}", body = Object), (status = 401, description = "invalid_client", body = mamori_api::oidc::OAuthError), (status = 413, description = "invalid_request: the body is larger than limits.body_bytes", body = mamori_api::oidc::OAuthError), (status = 429, description = "temporarily_unavailable: too many failed client authentications (Retry-After)", body = mamori_api::oidc::OAuthError)))]
pub async fn introspect(
    State(st): State<AppState>,
    m: Meta,
    headers: HeaderMap,
    body: Result<String, StringRejection>,
) -> Response {
    let ClientRequest {
        form: f,
        creds,
        keys,
    } = match client_request(&st, &m, &headers, body, "introspect").await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let Some(token) = field(&f, "token") else {
        count("introspect", "invalid_request");
        return oauth_error(&OidcError::InvalidRequest("token is missing".into()), false);
    };
    match st.svc.oidc_introspect(&creds, &token, st.clock.now()).await {
        Ok(v) => {
            count("introspect", "success");
            no_store(Json(v).into_response())
        }
        Err(e) => {
            if matches!(e, OidcError::InvalidClient) {
                client_failed(&st, &m, &keys, "introspect").await;
            }
            count("introspect", e.code());
            oauth_error(&e, creds.basic)
        }
    }
}
