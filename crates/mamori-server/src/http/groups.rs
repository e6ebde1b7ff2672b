//! `GET /api/v1/users/{name}/groups`, `PUT`/`DELETE /api/v1/users/{name}/groups/{group}`
//! (issue #18): an administrator reads and changes an account's groups. Translation only; the
//! rules (administrators with MFA, names, the limit of 32, audit) are `domain/groups.rs`'s.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, put};
use axum::{Json, Router};
use mamori_api::groups::GroupsResponse;

use super::{ApiResult, AppState, Meta, Session};

/// The routes (each authenticates its own session).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/users/{name}/groups", get(list))
        .route(
            "/api/v1/users/{name}/groups/{group}",
            put(add).delete(remove),
        )
}

/// Administrators: an account's groups.
#[utoipa::path(get, path = "/api/v1/users/{name}/groups", tag = "administration", params(("name" = String, Path, description = "user name")), responses((status = 200, body = GroupsResponse), (status = 401, description = "not signed in", body = mamori_api::ErrorBody), (status = 403, description = "forbidden or admin_without_mfa", body = mamori_api::ErrorBody), (status = 404, description = "no such user", body = mamori_api::ErrorBody)), security(("session" = [])))]
pub async fn list(
    State(st): State<AppState>,
    Session(auth): Session,
    m: Meta,
    Path(name): Path<String>,
) -> ApiResult<Json<GroupsResponse>> {
    let groups = st
        .svc
        .user_groups(&auth, &name, st.clock.now(), &m.meta)
        .await?;
    Ok(Json(GroupsResponse { user: name, groups }))
}

/// Administrators: put an account in a group (1 to 64 characters of `a-z`, `0-9`, `-`, `_`,
/// `.`; at most 32 groups per account). 201 when added, 200 when it already was in it.
#[utoipa::path(put, path = "/api/v1/users/{name}/groups/{group}", tag = "administration", params(("name" = String, Path, description = "user name"), ("group" = String, Path, description = "group name")), responses((status = 201, description = "added", body = GroupsResponse), (status = 200, description = "already in the group", body = GroupsResponse), (status = 400, description = "invalid_input: not a group name", body = mamori_api::ErrorBody), (status = 401, description = "not signed in", body = mamori_api::ErrorBody), (status = 403, description = "forbidden or admin_without_mfa", body = mamori_api::ErrorBody), (status = 404, description = "no such user", body = mamori_api::ErrorBody), (status = 409, description = "conflict: the account has 32 groups", body = mamori_api::ErrorBody)), security(("session" = [])))]
pub async fn add(
    State(st): State<AppState>,
    Session(auth): Session,
    m: Meta,
    Path((name, group)): Path<(String, String)>,
) -> ApiResult<(StatusCode, Json<GroupsResponse>)> {
    let now = st.clock.now();
    let added = st
        .svc
        .add_user_group(&auth, &name, &group, now, &m.meta)
        .await?;
    let groups = st.svc.user_groups(&auth, &name, now, &m.meta).await?;
    let status = if added {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(GroupsResponse { user: name, groups })))
}

/// Administrators: take an account out of a group.
#[utoipa::path(delete, path = "/api/v1/users/{name}/groups/{group}", tag = "administration", params(("name" = String, Path, description = "user name"), ("group" = String, Path, description = "group name")), responses((status = 204, description = "removed"), (status = 401, description = "not signed in", body = mamori_api::ErrorBody), (status = 403, description = "forbidden or admin_without_mfa", body = mamori_api::ErrorBody), (status = 404, description = "no such user, or not in the group", body = mamori_api::ErrorBody)), security(("session" = [])))]
pub async fn remove(
    State(st): State<AppState>,
    Session(auth): Session,
    m: Meta,
    Path((name, group)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    st.svc
        .remove_user_group(&auth, &name, &group, st.clock.now(), &m.meta)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
