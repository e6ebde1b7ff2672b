//! The hardware token API (docs/security-keys.md): administrators import seed files and list
//! the inventory; a user assigns a token to themself by serial number and two consecutive
//! codes, or an administrator does it for them. Handlers authenticate the session, translate
//! and delegate to [`crate::domain::tokens`].
//!
//! - `POST /api/v1/tokens/import` (admin): `{"content": "<file text>", "format": "pskc"|"csv",
//!   "psk": "HEX", "password": "…"}` → `{"imported", "hotp", "totp"}`.
//! - `GET /api/v1/tokens?after=SERIAL&limit=N` (admin): the inventory by serial.
//! - `POST /api/v1/mfa-devices/hardware` (own): `{"serial", "name", "code1", "code2"}` →
//!   `{"device", "token"}` like enabling a virtual device.
//! - `POST /api/v1/users/{name}/hardware-tokens` (admin): the same for a user.

use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use mamori_api as api;
use rand::rngs::OsRng;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use zeroize::Zeroizing;

use crate::domain::signin::Authenticated;
use crate::domain::tokens::{TokenAssignment, TokenFileFormat, TokenFileKey};
use crate::error::Error;
use crate::store::tokens::TokenListing;

use super::handlers::{device_wire, with_cookie, ApiJson, ApiQuery};
use super::{session_token, AdminSession, ApiResult, AppState, Meta};

/// `POST /api/v1/tokens/import`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportTokensRequest {
    /// The seed file's text (PSKC XML or CSV).
    pub content: String,
    /// `pskc` or `csv`; guessed from the content when absent.
    pub format: Option<String>,
    /// Pre-shared AES key in hexadecimal (RFC 6030 section 6.1).
    pub psk: Option<String>,
    /// Password of a PBKDF2-protected file (RFC 6030 section 6.2).
    pub password: Option<String>,
}

impl Drop for ImportTokensRequest {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.content.zeroize();
        self.psk.zeroize();
        self.password.zeroize();
    }
}

/// Answer of an import.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ImportTokensResponse {
    /// Tokens imported.
    pub imported: usize,
    /// Of which HOTP.
    pub hotp: usize,
    /// Of which TOTP.
    pub totp: usize,
}

/// A token of the inventory (never its secret).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenWire {
    /// Serial number.
    pub serial: String,
    /// `hotp` or `totp`.
    #[serde(rename = "type")]
    pub otp_type: String,
    /// Hash algorithm.
    pub algorithm: String,
    /// Code length.
    pub digits: i64,
    /// TOTP period.
    pub period: Option<i64>,
    /// HOTP counter the vendor recorded.
    pub counter: Option<i64>,
    /// Manufacturer.
    pub manufacturer: Option<String>,
    /// Model.
    pub model: Option<String>,
    /// Import time.
    pub imported_at: i64,
    /// Owner's user name, when assigned.
    pub assigned_to: Option<String>,
    /// The device name it was assigned as.
    pub device_name: Option<String>,
}

fn token_wire(l: TokenListing) -> TokenWire {
    let t = l.token;
    let hotp = t.otp_type == "hotp";
    TokenWire {
        period: (!hotp).then_some(t.period),
        counter: hotp.then_some(t.counter),
        serial: t.serial,
        otp_type: t.otp_type,
        algorithm: t.algorithm,
        digits: t.digits,
        manufacturer: t.manufacturer,
        model: t.model,
        imported_at: t.imported_at,
        assigned_to: l.assigned_to,
        device_name: l.device_name,
    }
}

/// `GET /api/v1/tokens` query.
#[derive(Debug, Deserialize, IntoParams)]
pub struct ListQuery {
    /// Serial to continue after.
    pub after: Option<String>,
    /// Page size (1..=1000, default 100).
    pub limit: Option<i64>,
}

/// `POST /api/v1/mfa-devices/hardware` and `/api/v1/users/{name}/hardware-tokens`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignTokenRequest {
    /// The serial number printed on the token.
    pub serial: String,
    /// Device name (unique per user).
    pub name: String,
    /// A code shown by the token.
    pub code1: String,
    /// The next code it shows.
    pub code2: String,
}

/// Largest import body: a seed file at the parser's limit, as JSON text (escaping may grow it).
const IMPORT_BODY_BYTES: usize = 2 * mamori_pskc::MAX_INPUT_BYTES;

/// The token routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/tokens/import",
            post(import).layer(DefaultBodyLimit::max(IMPORT_BODY_BYTES)),
        )
        .route("/api/v1/tokens", get(list))
        .route("/api/v1/mfa-devices/hardware", post(assign_own))
        .route(
            "/api/v1/users/{name}/hardware-tokens",
            post(assign_for_user),
        )
}

async fn authenticated(st: &AppState, headers: &HeaderMap) -> ApiResult<Authenticated> {
    let token = session_token(headers).ok_or(Error::Unauthenticated)?;
    Ok(st.svc.authenticate(&token, st.clock.now()).await?)
}

/// Import a seed file (administrators): whole or not at all.
#[utoipa::path(post, path = "/api/v1/tokens/import", tag = "hardware-tokens", request_body = ImportTokensRequest, responses((status = 200, body = ImportTokensResponse), (status = 400, description = "the file was refused; nothing was imported", body = api::ErrorBody), (status = 409, description = "a serial is already in the inventory; nothing was imported", body = api::ErrorBody), (status = 403, description = "administrators only", body = api::ErrorBody)), security(("session" = [])))]
pub async fn import(
    State(st): State<AppState>,
    m: Meta,
    // Before the body: a seed file may be 32 MiB, read only for an administrator.
    AdminSession(auth): AdminSession,
    ApiJson(req): ApiJson<ImportTokensRequest>,
) -> ApiResult<Json<ImportTokensResponse>> {
    let format = match &req.format {
        Some(f) => TokenFileFormat::parse(f)?,
        None => TokenFileFormat::sniff(req.content.as_bytes()),
    };
    let key = match (&req.psk, &req.password) {
        (Some(_), Some(_)) => {
            return Err(Error::InvalidInput("give either psk or password, not both".into()).into())
        }
        (Some(hex), None) => TokenFileKey::psk_hex(hex)?,
        (None, Some(p)) => TokenFileKey::Password(Zeroizing::new(p.as_bytes().to_vec())),
        (None, None) => TokenFileKey::None,
    };
    let s = st
        .svc
        .import_tokens(
            &auth.account.name,
            req.content.as_bytes(),
            format,
            &key,
            m.at(st.clock.now()),
            &mut OsRng,
        )
        .await?;
    Ok(Json(ImportTokensResponse {
        imported: s.imported,
        hotp: s.hotp,
        totp: s.totp,
    }))
}

/// The inventory by serial (administrators).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "hardware-tokens", params(ListQuery), responses((status = 200, body = [TokenWire]), (status = 403, description = "administrators only", body = api::ErrorBody)), security(("session" = [])))]
pub async fn list(
    State(st): State<AppState>,
    m: Meta,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<Vec<TokenWire>>> {
    let auth = authenticated(&st, &headers).await?;
    st.svc
        .require_admin(&auth, "list hardware tokens", st.clock.now(), &m.meta)
        .await?;
    let page = st
        .svc
        .list_tokens(q.after.as_deref(), q.limit.unwrap_or(100))
        .await?;
    Ok(Json(page.into_iter().map(token_wire).collect()))
}

/// Assign a token to oneself by serial and two consecutive codes; may complete a required
/// enrollment (a fresh full session).
#[utoipa::path(post, path = "/api/v1/mfa-devices/hardware", tag = "hardware-tokens", request_body = AssignTokenRequest, responses((status = 201, body = api::EnableDeviceResponse), (status = 400, description = "codes_not_consecutive or invalid input", body = api::ErrorBody), (status = 404, description = "unknown serial", body = api::ErrorBody), (status = 409, description = "token taken, name taken or device limit", body = api::ErrorBody), (status = 403, description = "recent_second_factor_required", body = api::ErrorBody)), security(("session" = [])))]
pub async fn assign_own(
    State(st): State<AppState>,
    m: Meta,
    headers: HeaderMap,
    ApiJson(req): ApiJson<AssignTokenRequest>,
) -> ApiResult<Response> {
    let auth = authenticated(&st, &headers).await?;
    let now = st.clock.now();
    let (device, proof) = st
        .svc
        .assign_token(&auth, None, assignment(&req), m.at(now), &mut OsRng)
        .await?;
    let renewed = match proof {
        Some(proof) => {
            st.svc
                .upgrade_after_enrollment(&auth, proof, now, &mut OsRng, &m.meta)
                .await?
        }
        None => None,
    };
    let body = (
        StatusCode::CREATED,
        Json(api::EnableDeviceResponse {
            device: device_wire(&device),
            token: renewed.as_ref().map(|s| s.token.to_string()),
        }),
    );
    Ok(match &renewed {
        Some(s) => with_cookie(&st, s, body),
        None => body.into_response(),
    })
}

/// The token an assignment request names.
fn assignment(req: &AssignTokenRequest) -> TokenAssignment<'_> {
    TokenAssignment {
        serial: &req.serial,
        name: &req.name,
        code1: &req.code1,
        code2: &req.code2,
    }
}

/// Assign a token to a user (administrators).
#[utoipa::path(post, path = "/api/v1/users/{name}/hardware-tokens", tag = "hardware-tokens", params(("name" = String, Path, description = "user name")), request_body = AssignTokenRequest, responses((status = 201, body = api::Device), (status = 400, description = "codes_not_consecutive or invalid input", body = api::ErrorBody), (status = 404, description = "unknown user or serial", body = api::ErrorBody), (status = 409, description = "token taken, name taken or device limit", body = api::ErrorBody), (status = 403, description = "administrators only", body = api::ErrorBody)), security(("session" = [])))]
pub async fn assign_for_user(
    State(st): State<AppState>,
    m: Meta,
    headers: HeaderMap,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<AssignTokenRequest>,
) -> ApiResult<(StatusCode, Json<api::Device>)> {
    let auth = authenticated(&st, &headers).await?;
    let (d, _) = st
        .svc
        .assign_token(
            &auth,
            Some(&name),
            assignment(&req),
            m.at(st.clock.now()),
            &mut OsRng,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(device_wire(&d))))
}
