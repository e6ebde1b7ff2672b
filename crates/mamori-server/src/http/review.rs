//! `GET /api/v1/review`: the deployment's security review (administrators). The checks are in
//! `mamori_review::deployment`; the facts are gathered by `Service::security_review`.

use axum::extract::State;
use axum::Json;
use mamori_api::review::ReviewResponse;

use super::{ApiResult, AppState, Auth};
use crate::web::wire::review_wire;

/// The security review of this deployment (administrators).
#[utoipa::path(get, path = "/api/v1/review", tag = "administration", responses((status = 200, body = ReviewResponse), (status = 403, description = "forbidden", body = mamori_api::ErrorBody), (status = 401, description = "not signed in", body = mamori_api::ErrorBody)), security(("session" = [])))]
pub async fn review(
    State(st): State<AppState>,
    auth: Auth,
    m: crate::http::Meta,
) -> ApiResult<Json<ReviewResponse>> {
    let now = st.clock.now();
    st.svc
        .require_admin(&auth, "security review", now, &m.meta)
        .await?;
    let review = st.svc.security_review(now).await?;
    Ok(Json(review_wire(&review, now)))
}
