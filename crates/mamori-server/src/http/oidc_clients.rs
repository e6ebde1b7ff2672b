//! `GET`/`POST /api/v1/oidc/clients`, `POST /api/v1/oidc/clients/{name}/secret`, `DELETE
//! /api/v1/oidc/clients/{name}` (#17, docs/oidc.md): administrators register and manage the
//! OpenID provider's clients. Translation only; who may (administrators with MFA, and a recent
//! second factor to register, rotate a secret or delete), the checks of every field and the audit are `domain/oidc.rs`'s.
//! Unlike the OAuth endpoints of `http/oidc.rs`, these answer in the API's error format.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use mamori_api::oidc::{CreateOidcClientRequest, OidcClient, OidcClientCreated};
use rand::rngs::OsRng;

use crate::domain::oidc::{ClientCreated, NewClient, RequireFactor};
use crate::store::oidc::OidcClientRecord;

use super::handlers::ApiJson;
use super::{ApiResult, AppState, Meta, Session};

/// The routes (each authenticates its own session).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/oidc/clients", get(list).post(create))
        .route("/api/v1/oidc/clients/{name}", axum::routing::delete(delete))
        .route("/api/v1/oidc/clients/{name}/secret", post(rotate_secret))
}

/// A client on the wire: everything but the secret's hash.
pub fn client_wire(c: OidcClientRecord) -> OidcClient {
    OidcClient {
        client_id: c.id,
        public: c.secret_hash.is_none(),
        name: c.name,
        redirect_uris: c.redirect_uris,
        post_logout_redirect_uris: c.post_logout_redirect_uris,
        trusted: c.trusted,
        require: c.require_factor,
        allowed_users: c.allowed_users,
        allowed_groups: c.allowed_groups,
        alg: c.alg,
        created_at: c.created_at,
        updated_at: c.updated_at,
    }
}

fn created_wire(c: ClientCreated) -> OidcClientCreated {
    OidcClientCreated {
        client: client_wire(c.client),
        client_secret: c.secret.map(|s| s.to_string()),
    }
}

/// Administrators: every registered client, oldest first (never a secret).
#[utoipa::path(get, path = "/api/v1/oidc/clients", tag = "administration", responses((status = 200, body = Vec<OidcClient>), (status = 401, description = "not signed in", body = mamori_api::ErrorBody), (status = 403, description = "forbidden or admin_without_mfa", body = mamori_api::ErrorBody)), security(("session" = [])))]
pub async fn list(
    State(st): State<AppState>,
    Session(auth): Session,
    m: Meta,
) -> ApiResult<Json<Vec<OidcClient>>> {
    let clients = st
        .svc
        .admin_oidc_clients(&auth, st.clock.now(), &m.meta)
        .await?;
    Ok(Json(clients.into_iter().map(client_wire).collect()))
}

/// Administrators: register a client (a second factor from the last 5 minutes). The answer
/// carries its `client_id` and, for a confidential client, its secret: shown only here.
#[utoipa::path(post, path = "/api/v1/oidc/clients", tag = "administration", request_body = CreateOidcClientRequest, responses((status = 201, body = OidcClientCreated), (status = 400, description = "invalid_input: a name, redirect URI, allowed user or group, require or alg that is not accepted", body = mamori_api::ErrorBody), (status = 401, description = "not signed in", body = mamori_api::ErrorBody), (status = 403, description = "forbidden, admin_without_mfa or recent_second_factor_required", body = mamori_api::ErrorBody), (status = 409, description = "conflict: the name is taken, or there are 500 clients", body = mamori_api::ErrorBody)), security(("session" = [])))]
pub async fn create(
    State(st): State<AppState>,
    Session(auth): Session,
    m: Meta,
    ApiJson(req): ApiJson<CreateOidcClientRequest>,
) -> ApiResult<(StatusCode, Json<OidcClientCreated>)> {
    let new = NewClient {
        name: req.name,
        redirect_uris: req.redirect_uris,
        post_logout_redirect_uris: req.post_logout_redirect_uris,
        public: req.public,
        trusted: req.trusted,
        require: RequireFactor::parse(req.require.as_deref().unwrap_or("two_factor"))?,
        allowed_users: req.allowed_users,
        allowed_groups: req.allowed_groups,
        alg: req.alg.unwrap_or_else(|| "ES256".into()),
    };
    let created = st
        .svc
        .admin_oidc_create_client(&auth, new, st.clock.now(), &m.meta, &mut OsRng)
        .await?;
    Ok((StatusCode::CREATED, Json(created_wire(created))))
}

/// Administrators: replace a confidential client's secret (a second factor from the last 5
/// minutes). The old one stops working at once; the new one is shown only here.
#[utoipa::path(post, path = "/api/v1/oidc/clients/{name}/secret", tag = "administration", params(("name" = String, Path, description = "client name")), responses((status = 200, body = OidcClientCreated), (status = 400, description = "invalid_input: a public client has no secret", body = mamori_api::ErrorBody), (status = 401, description = "not signed in", body = mamori_api::ErrorBody), (status = 403, description = "forbidden, admin_without_mfa or recent_second_factor_required", body = mamori_api::ErrorBody), (status = 404, description = "no such client", body = mamori_api::ErrorBody)), security(("session" = [])))]
pub async fn rotate_secret(
    State(st): State<AppState>,
    Session(auth): Session,
    m: Meta,
    Path(name): Path<String>,
) -> ApiResult<Json<OidcClientCreated>> {
    let created = st
        .svc
        .admin_oidc_rotate_client_secret(&auth, &name, st.clock.now(), &m.meta, &mut OsRng)
        .await?;
    Ok(Json(created_wire(created)))
}

/// Administrators: delete a client with its codes, tokens, grants and consents (a second
/// factor from the last 5 minutes).
#[utoipa::path(delete, path = "/api/v1/oidc/clients/{name}", tag = "administration", params(("name" = String, Path, description = "client name")), responses((status = 204, description = "deleted"), (status = 401, description = "not signed in", body = mamori_api::ErrorBody), (status = 403, description = "forbidden, admin_without_mfa or recent_second_factor_required", body = mamori_api::ErrorBody), (status = 404, description = "no such client", body = mamori_api::ErrorBody)), security(("session" = [])))]
pub async fn delete(
    State(st): State<AppState>,
    Session(auth): Session,
    m: Meta,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    st.svc
        .admin_oidc_delete_client(&auth, &name, st.clock.now(), &m.meta)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
