//! `GET`/`PUT /api/v1/me/preferences` (issue #15): the account's language and time zone.
//! Translation only; the rules (full session, validation, audit) are
//! `domain/preferences.rs`'s.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use mamori_api::preferences::{PreferencesRequest, PreferencesResponse};

use crate::domain::preferences::{language_code, Preferences};

use super::handlers::ApiJson;
use super::{ApiResult, AppState, Meta, Session};

/// The routes (each authenticates its own session).
pub fn router() -> Router<AppState> {
    Router::new().route(
        "/api/v1/me/preferences",
        get(preferences).put(set_preferences),
    )
}

fn wire(p: Preferences) -> PreferencesResponse {
    PreferencesResponse {
        language: language_code(p.language).into(),
        language_chosen: p.language_chosen,
        time_zone: p.time_zone,
    }
}

/// The account's language and time zone.
#[utoipa::path(get, path = "/api/v1/me/preferences", tag = "session", responses((status = 200, body = PreferencesResponse), (status = 401, description = "not signed in", body = mamori_api::ErrorBody), (status = 403, description = "mfa_enrollment_required or recovery_session_restricted", body = mamori_api::ErrorBody)), security(("session" = [])))]
pub async fn preferences(
    State(st): State<AppState>,
    Session(auth): Session,
) -> ApiResult<Json<PreferencesResponse>> {
    auth.require_full()?;
    Ok(Json(wire(st.svc.preferences(&auth.account).await?)))
}

/// Change the account's language (`en`, `ja`) and time zone (an IANA name); both are
/// validated before anything changes. E-mails and phone texts to the account use the language
/// from then on.
#[utoipa::path(put, path = "/api/v1/me/preferences", tag = "session", request_body = PreferencesRequest, responses((status = 200, body = PreferencesResponse), (status = 400, description = "invalid_input: unknown language or time zone; nothing changed", body = mamori_api::ErrorBody), (status = 401, description = "not signed in", body = mamori_api::ErrorBody), (status = 403, description = "mfa_enrollment_required or recovery_session_restricted", body = mamori_api::ErrorBody)), security(("session" = [])))]
pub async fn set_preferences(
    State(st): State<AppState>,
    Session(auth): Session,
    m: Meta,
    ApiJson(req): ApiJson<PreferencesRequest>,
) -> ApiResult<Json<PreferencesResponse>> {
    let now = st.clock.now();
    let p = st
        .svc
        .set_preferences(&auth, &req.language, &req.time_zone, now, &m.meta)
        .await?;
    Ok(Json(wire(p)))
}
