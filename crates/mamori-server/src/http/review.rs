//! `GET /api/v1/review`: the deployment's security review (administrators). The checks are in
//! `mamori_review::deployment`; the facts are gathered by `Service::security_review`.

use axum::extract::State;
use axum::Json;
use mamori_api::review::{ReviewFinding, ReviewResponse};
use mamori_review::{Outcome, Review, Severity};

use super::{ApiResult, AppState, Auth};
use crate::clock::UnixTime;

/// The wire form of a review.
pub fn review_wire(review: &Review, at: UnixTime) -> ReviewResponse {
    ReviewResponse {
        at,
        high_severity_failed: review.has_high_failure(),
        findings: review
            .findings
            .iter()
            .map(|f| ReviewFinding {
                id: f.id.to_string(),
                title: f.title.to_string(),
                severity: match f.severity {
                    Severity::Low => "low",
                    Severity::Medium => "medium",
                    Severity::High => "high",
                }
                .to_string(),
                outcome: match f.outcome {
                    Outcome::Pass => "pass",
                    Outcome::Fail => "fail",
                    Outcome::Undecidable => "undecidable",
                    Outcome::NotApplicable => "not_applicable",
                }
                .to_string(),
                affected: f.affected.clone(),
                remedy: f.remedy.clone(),
                link: f.link.clone(),
            })
            .collect(),
    }
}

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
