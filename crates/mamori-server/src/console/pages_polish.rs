//! Console pages of issue #15's polish part: the account's language and time zone
//! (`/security/preferences`) and revoking a sync device from the credentials page
//! (`/security/sync-devices/{id}/revoke`). Handlers translate forms into `Service` calls; the
//! rules are in `domain/preferences.rs` and `domain/sync_devices.rs`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Form;
use serde::Deserialize;

use crate::domain::preferences::language_code;
use crate::store::DeviceKind;
use crate::web::AppState;

use super::i18n::LANG_COOKIE;
use super::views::{render, ConfirmView, DeviceChoice, Page, PreferencesView, ZoneChoice};
use super::{error_text, is_form_error, see_other, Ctx, Fail, PageResult};

/// Zones offered in the list (any IANA name may be typed).
const COMMON_ZONES: [&str; 12] = [
    "UTC",
    "Asia/Tokyo",
    "Asia/Seoul",
    "Asia/Shanghai",
    "Asia/Singapore",
    "Asia/Kolkata",
    "Europe/London",
    "Europe/Berlin",
    "America/New_York",
    "America/Chicago",
    "America/Los_Angeles",
    "Australia/Sydney",
];

async fn preferences_view(
    ctx: &Ctx,
    language: Option<String>,
    time_zone: Option<String>,
    error: Option<String>,
) -> Result<PreferencesView, Fail> {
    let auth = ctx.full()?;
    let p = ctx.st.svc.preferences(&auth.account).await?;
    let language = language.unwrap_or_else(|| language_code(p.language).to_string());
    Ok(PreferencesView {
        p: Page::new(ctx, "polish.preferences_title", "security"),
        language,
        time_zone: time_zone.unwrap_or(p.time_zone),
        zones: COMMON_ZONES
            .iter()
            .map(|z| ZoneChoice { name: z })
            .collect(),
        now_text: ctx
            .tr
            .tf("polish.preferences_now", &[("at", &ctx.when(ctx.now))]),
        error,
    })
}

pub async fn preferences_form(ctx: Ctx) -> PageResult {
    let v = preferences_view(&ctx, None, None, None).await?;
    Ok(render(&v, StatusCode::OK))
}

/// The preferences form.
#[derive(Deserialize)]
pub struct PreferencesForm {
    language: String,
    time_zone: String,
}

pub async fn preferences(
    ctx: Ctx,
    State(st): State<AppState>,
    Form(f): Form<PreferencesForm>,
) -> PageResult {
    let auth = ctx.full()?;
    match st
        .svc
        .set_preferences(auth, &f.language, &f.time_zone, ctx.now, &ctx.meta.meta)
        .await
    {
        Ok(p) => {
            let mut r = see_other("/security?done=preferences");
            // The sign-in page (before any session) then speaks the same language.
            ctx.set_cookie(
                &mut r,
                LANG_COOKIE,
                Some(language_code(p.language)),
                365 * 24 * 3600,
            );
            Ok(r)
        }
        Err(e) if is_form_error(&e) => {
            let v = preferences_view(
                &ctx,
                Some(f.language),
                Some(f.time_zone),
                Some(error_text(&ctx.tr, &e)),
            )
            .await?;
            Ok(render(&v, StatusCode::BAD_REQUEST))
        }
        Err(e) => Err(e.into()),
    }
}

fn recent_factor(ctx: &Ctx) -> bool {
    ctx.auth.as_ref().is_some_and(|a| {
        a.session
            .second_factor_at
            .is_some_and(|t| ctx.now.saturating_sub(t) <= crate::domain::RECENT_FACTOR_SECS)
    })
}

async fn revoke_view(ctx: &Ctx, id: &str, error: Option<String>) -> Result<ConfirmView, Fail> {
    let auth = ctx.full()?;
    let name = ctx
        .st
        .svc
        .session_sync_devices(auth)
        .await?
        .into_iter()
        .find(|d| d.id == id && d.revoked_at.is_none())
        .map(|d| d.name)
        .ok_or(Fail::Domain(crate::Error::NotFound("sync device")))?;
    let enabled = ctx.st.svc.enabled_devices(&auth.account).await?;
    let stale = !recent_factor(ctx);
    let otp = enabled.iter().any(|d| d.kind.is_otp());
    Ok(ConfirmView {
        p: Page::new(ctx, "polish.sync_revoke_title", "security"),
        heading: ctx.tr.tf("polish.sync_revoke_heading", &[("name", &name)]),
        explanation: ctx.tr.t("polish.sync_revoke_explanation"),
        action: format!("/security/sync-devices/{id}/revoke"),
        button: ctx.tr.t("polish.sync_revoke_button"),
        back: "/security".into(),
        // The domain requires a second factor from the last 5 minutes: a code is asked for
        // only when the session's is older (as on the administrators' deactivate page).
        needs_code: otp && stale,
        key_verify: stale && !otp && enabled.iter().any(|d| d.kind == DeviceKind::SecurityKey),
        devices: enabled
            .iter()
            .filter(|d| d.kind.is_otp())
            .map(|d| DeviceChoice {
                id: d.id.clone(),
                name: d.name.clone(),
            })
            .collect(),
        error,
    })
}

pub async fn sync_revoke_form(ctx: Ctx, Path(id): Path<String>) -> PageResult {
    let v = revoke_view(&ctx, &id, None).await?;
    Ok(render(&v, StatusCode::OK))
}

/// A fresh code, when the session's second factor is not recent.
#[derive(Deserialize)]
pub struct CodeForm {
    code: Option<String>,
    device: Option<String>,
}

pub async fn sync_revoke(
    ctx: Ctx,
    State(st): State<AppState>,
    Path(id): Path<String>,
    Form(f): Form<CodeForm>,
) -> PageResult {
    let auth = ctx.full()?;
    let mut fresh = auth.clone();
    let mut result = Ok(());
    let code: String = f
        .code
        .as_deref()
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    if !code.is_empty() && !recent_factor(&ctx) {
        let device = f.device.as_deref().filter(|s| !s.is_empty());
        result = st
            .svc
            .verify_in_session(auth, &code, device, ctx.now, &ctx.meta.meta)
            .await;
        // Verification just updated the session: the recency check sees it.
        fresh.session.second_factor_at = Some(ctx.now);
    }
    if result.is_ok() {
        result = st
            .svc
            .revoke_sync_device_in_session(&fresh, &id, ctx.now, &ctx.meta.meta)
            .await;
    }
    match result {
        Ok(()) => Ok(see_other("/security?done=sync_revoked")),
        Err(e) if is_form_error(&e) => {
            let v = revoke_view(&ctx, &id, Some(error_text(&ctx.tr, &e))).await?;
            Ok(render(&v, StatusCode::BAD_REQUEST))
        }
        Err(e) => Err(e.into()),
    }
}
