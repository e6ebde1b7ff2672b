//! #17 consents (docs/oidc.md "Connected applications"): the signed-in account lists the
//! OpenID clients it shares something with and takes back what it gave one of them. Own
//! account only, under `/api/v1/me/` like the account's other own resources; the rules
//! (full session, only the session's account, what revoking ends, the audit) are the
//! domain's `oidc_connected_apps` and `oidc_revoke_connected_app`, which the console's
//! "Connected applications" calls too.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use mamori_api::oidc as wire;

use super::{ApiResult, AppState, Auth, Meta};

/// The routes (behind the session middleware: see `http::routes`).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/me/oidc-consents", get(list))
        .route("/api/v1/me/oidc-consents/{client_id}", delete(revoke))
}

fn wire(a: crate::domain::oidc::ConnectedApp) -> wire::ConnectedApp {
    wire::ConnectedApp {
        client_id: a.client_id,
        client_name: a.client_name,
        scopes: a.scopes,
        consented_at: a.consented_at,
        last_granted_at: a.last_granted_at,
        live_grants: u64::try_from(a.live_grants).unwrap_or(u64::MAX),
    }
}

/// The OpenID clients this account has consented to or holds live tokens for.
#[utoipa::path(get, path = "/api/v1/me/oidc-consents", tag = "oidc", responses((status = 200, body = mamori_api::oidc::ConnectedAppsResponse), (status = 401, description = "not signed in", body = mamori_api::ErrorBody), (status = 403, description = "mfa_enrollment_required or recovery_session_restricted", body = mamori_api::ErrorBody)), security(("session" = [])))]
pub async fn list(
    State(st): State<AppState>,
    auth: Auth,
) -> ApiResult<Json<wire::ConnectedAppsResponse>> {
    let apps = st.svc.oidc_connected_apps(&auth, st.clock.now()).await?;
    Ok(Json(wire::ConnectedAppsResponse {
        applications: apps.into_iter().map(wire).collect(),
    }))
}

/// Revoke an OpenID client's access to this account: its consent is forgotten and every
/// access and refresh token it holds for the account stops working (audited `oidc.consent`,
/// result `revoked`).
#[utoipa::path(delete, path = "/api/v1/me/oidc-consents/{client_id}", tag = "oidc", params(("client_id" = String, Path, description = "the client's id")), responses((status = 204, description = "revoked"), (status = 404, description = "not_found: this account has no consent or live token for that client", body = mamori_api::ErrorBody), (status = 401, description = "not signed in", body = mamori_api::ErrorBody), (status = 403, description = "mfa_enrollment_required or recovery_session_restricted", body = mamori_api::ErrorBody)), security(("session" = [])))]
pub async fn revoke(
    State(st): State<AppState>,
    auth: Auth,
    m: Meta,
    Path(client_id): Path<String>,
) -> ApiResult<StatusCode> {
    st.svc
        .oidc_revoke_connected_app(&auth, &client_id, st.clock.now(), &m.meta)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
