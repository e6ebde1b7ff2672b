//! "My security credentials": password change, MFA devices (the Assign MFA device wizard,
//! resync, remove after a fresh code) and the account's sessions.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Form;
use rand::rngs::OsRng;
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::error::Error;
use crate::store::SessionState;
use crate::web::AppState;

use super::pages_auth::{notice, Done};
use super::views::{
    render, ConfirmView, DeviceChoice, DeviceRow, MfaEnableView, MfaNewView, MfaResyncView, Page,
    SecurityView, SessionRow,
};
use super::{error_text, is_form_error, see_other, Ctx, Fail, PageResult};

async fn overview_view(
    ctx: &Ctx,
    notice: Option<String>,
    password_error: Option<String>,
) -> Result<SecurityView, Fail> {
    let auth = ctx.full()?;
    let tr = ctx.tr;
    let devices = ctx.st.svc.list_devices(&auth.account).await?;
    let sessions = ctx.st.svc.list_sessions(auth).await?;
    let max = ctx.st.svc.policy().max_devices;
    Ok(SecurityView {
        p: Page::new(ctx, "security.title", "security"),
        can_add: devices.len() < max as usize,
        limit_text: tr.tf(
            "security.device_limit",
            &[
                ("count", &devices.len().to_string()),
                ("max", &max.to_string()),
            ],
        ),
        devices: devices.iter().map(|d| DeviceRow::new(&tr, d)).collect(),
        sync_devices: ctx
            .st
            .svc
            .session_sync_devices(auth)
            .await?
            .iter()
            .map(|d| super::views::SyncRow::new(d, ctx))
            .collect(),
        connected_apps: ctx
            .st
            .svc
            .oidc_connected_apps(auth, ctx.now)
            .await?
            .iter()
            .map(|a| super::views::ConnectedRow::new(a, ctx))
            .collect(),
        sessions: sessions
            .iter()
            .map(|s| SessionRow::new(s, &auth.session.id, ctx))
            .collect(),
        notice,
        password_error,
        min_length: ctx.st.svc.policy().password.min_length.to_string(),
    })
}

pub async fn overview(ctx: Ctx, Query(q): Query<Done>) -> PageResult {
    let n = notice(&ctx, q.done.as_deref());
    let v = overview_view(&ctx, n, None).await?;
    Ok(render(&v, StatusCode::OK))
}

/// The password form.
#[derive(Deserialize)]
pub struct PasswordForm {
    current: String,
    new: String,
    confirm: String,
}

pub async fn change_password(
    ctx: Ctx,
    State(st): State<AppState>,
    Form(f): Form<PasswordForm>,
) -> PageResult {
    let auth = ctx.full()?;
    let result = if f.new != f.confirm {
        Err(ctx.tr.t("errors.password_mismatch"))
    } else if st.check_sign_in_rate(ctx.meta.ip).is_err() {
        // The per-address limit of the sign-in endpoints; its window is a minute.
        Err(error_text(&ctx.tr, &Error::RateLimited { retry_after: 60 }))
    } else {
        match st
            .svc
            .change_password(
                auth,
                Zeroizing::new(f.current),
                Zeroizing::new(f.new),
                ctx.now,
                &mut OsRng,
                &ctx.meta.meta,
            )
            .await
        {
            Ok(()) => Ok(()),
            Err(Error::InvalidCredentials) => Err(ctx.tr.t("errors.current_password")),
            Err(e) if is_form_error(&e) => Err(error_text(&ctx.tr, &e)),
            Err(e) => return Err(e.into()),
        }
    };
    match result {
        Ok(()) => Ok(see_other("/security?done=password")),
        Err(msg) => {
            let v = overview_view(&ctx, None, Some(msg)).await?;
            Ok(render(&v, StatusCode::BAD_REQUEST))
        }
    }
}

pub async fn new_device_form(ctx: Ctx) -> PageResult {
    ctx.signed_in()?;
    let v = MfaNewView {
        p: Page::new(&ctx, "wizard.title", "security"),
        name: String::new(),
        error: None,
    };
    Ok(render(&v, StatusCode::OK))
}

/// Step 1 of the wizard.
#[derive(Deserialize)]
pub struct NewDeviceForm {
    name: String,
    kind: Option<String>,
}

pub async fn new_device(
    ctx: Ctx,
    State(st): State<AppState>,
    Form(f): Form<NewDeviceForm>,
) -> PageResult {
    let auth = ctx.signed_in()?;
    let name = f.name.trim().to_string();
    // A device of this name whose setup was left unfinished: continue it rather than refuse
    // the name.
    if let Some(d) = st
        .svc
        .list_devices(&auth.account)
        .await?
        .into_iter()
        .find(|d| d.name == name && d.enabled_at.is_none() && d.kind.is_otp())
    {
        return Ok(see_other(&format!("/security/mfa/{}/enable", d.id)));
    }
    let step2 = match f.kind.as_deref() {
        Some("hardware_otp") => Some("/security/mfa/hardware"),
        Some("security_key") => Some("/security/mfa/security-key"),
        _ => None,
    };
    if let Some(step2) = step2 {
        // Step 2 for a hardware token: its serial and two codes (pages_tokens.rs); for a
        // security key: the browser's WebAuthn prompt (pages_webauthn.rs).
        const KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
            .remove(b'-')
            .remove(b'_')
            .remove(b'.');
        let q = percent_encoding::utf8_percent_encode(&name, KEEP).to_string();
        return Ok(see_other(&format!("{step2}?name={q}")));
    }
    let error = if f.kind.as_deref().unwrap_or("virtual") != "virtual" {
        // Security keys arrive in a later release; the choice is shown but disabled, so only a
        // crafted request gets here.
        Some(ctx.tr.t("errors.kind_unavailable"))
    } else {
        match st
            .svc
            .create_virtual_device(auth, &name, ctx.now, &mut OsRng, &ctx.meta.meta)
            .await
        {
            Ok(d) => {
                return Ok(see_other(&format!("/security/mfa/{}/enable", d.device.id)));
            }
            Err(e) if is_form_error(&e) => Some(error_text(&ctx.tr, &e)),
            Err(e) => return Err(e.into()),
        }
    };
    let v = MfaNewView {
        p: Page::new(&ctx, "wizard.title", "security"),
        name,
        error,
    };
    Ok(render(&v, StatusCode::BAD_REQUEST))
}

async fn enable_view(
    ctx: &Ctx,
    id: &str,
    code1: String,
    code2: String,
    error: Option<String>,
) -> Result<MfaEnableView, Fail> {
    let auth = ctx.signed_in()?;
    let pending = match ctx
        .st
        .svc
        .pending_enrollment(auth, id, ctx.now, &ctx.meta.meta)
        .await
    {
        Ok(p) => p,
        // An enabled device (e.g. the back button after success): back to the overview.
        Err(Error::InvalidDeviceState(_)) => return Err(Fail::Redirect("/security".into())),
        Err(e) => return Err(e.into()),
    };
    let b64 = data_encoding::BASE64.encode(&pending.qr_png);
    Ok(MfaEnableView {
        p: Page::new(ctx, "wizard.title", "security"),
        device_id: pending.device.id.clone(),
        device_name: pending.device.name.clone(),
        qr_data_uri: format!("data:image/png;base64,{b64}"),
        secret: grouped(&pending.secret_base32),
        issuer_account: format!(
            "{} ({})",
            ctx.st.svc.policy().service_name,
            auth.account.name
        ),
        code1,
        code2,
        error,
    })
}

/// The Base32 secret in groups of four for reading aloud or typing.
fn grouped(secret: &str) -> String {
    secret
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

pub async fn enable_form(ctx: Ctx, Path(id): Path<String>) -> PageResult {
    let v = enable_view(&ctx, &id, String::new(), String::new(), None).await?;
    Ok(render(&v, StatusCode::OK))
}

/// Two consecutive codes.
#[derive(Deserialize)]
pub struct TwoCodes {
    code1: String,
    code2: String,
}

fn digits(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

pub async fn enable(
    ctx: Ctx,
    headers: axum::http::HeaderMap,
    State(st): State<AppState>,
    Path(id): Path<String>,
    Form(f): Form<TwoCodes>,
) -> PageResult {
    let auth = ctx.signed_in()?;
    let (c1, c2) = (digits(&f.code1), digits(&f.code2));
    match st
        .svc
        .enable_device(auth, &id, &c1, &c2, ctx.now, &ctx.meta.meta)
        .await
    {
        Ok((_, proof)) => {
            let renewed = st
                .svc
                .upgrade_after_enrollment(auth, proof, ctx.now, &mut OsRng, &ctx.meta.meta)
                .await?;
            let mut r =
                super::after_enrollment(&headers, renewed.is_some(), "/security?done=mfa_assigned");
            if let Some(s) = renewed {
                ctx.set_session(&mut r, &s.token, s.record.expires_at - s.record.created_at);
            }
            Ok(r)
        }
        Err(e) if is_form_error(&e) => {
            let msg = error_text(&ctx.tr, &e);
            // The codes are kept so the person sees what they typed.
            let v = enable_view(&ctx, &id, c1, c2, Some(msg)).await?;
            Ok(render(&v, StatusCode::BAD_REQUEST))
        }
        Err(e) => Err(e.into()),
    }
}

async fn own_device(ctx: &Ctx, id: &str) -> Result<crate::store::DeviceRecord, Fail> {
    let auth = ctx.signed_in()?;
    ctx.st
        .svc
        .list_devices(&auth.account)
        .await?
        .into_iter()
        .find(|d| d.id == id)
        .ok_or(Fail::NotFound)
}

pub async fn resync_form(ctx: Ctx, Path(id): Path<String>) -> PageResult {
    ctx.full_or_recovery()?;
    let d = own_device(&ctx, &id).await?;
    let v = MfaResyncView {
        p: Page::new(&ctx, "resync.title", "security"),
        device_id: d.id,
        device_name: d.name,
        error: None,
    };
    Ok(render(&v, StatusCode::OK))
}

pub async fn resync(
    ctx: Ctx,
    State(st): State<AppState>,
    Path(id): Path<String>,
    Form(f): Form<TwoCodes>,
) -> PageResult {
    let auth = ctx.full_or_recovery()?;
    let d = own_device(&ctx, &id).await?;
    match st
        .svc
        .resync_device(
            auth,
            &id,
            &digits(&f.code1),
            &digits(&f.code2),
            ctx.now,
            &ctx.meta.meta,
        )
        .await
    {
        Ok(_) => Ok(see_other("/security?done=mfa_resynced")),
        Err(e) if is_form_error(&e) => {
            let v = MfaResyncView {
                p: Page::new(&ctx, "resync.title", "security"),
                device_id: d.id,
                device_name: d.name,
                error: Some(error_text(&ctx.tr, &e)),
            };
            Ok(render(&v, StatusCode::BAD_REQUEST))
        }
        Err(e) => Err(e.into()),
    }
}

async fn remove_view(
    ctx: &Ctx,
    d: &crate::store::DeviceRecord,
    error: Option<String>,
) -> Result<ConfirmView, Fail> {
    let auth = ctx.signed_in()?;
    let enabled = ctx.st.svc.enabled_devices(&auth.account).await?;
    Ok(ConfirmView {
        p: Page::new(ctx, "remove.title", "security"),
        heading: ctx.tr.tf("remove.heading", &[("name", &d.name)]),
        // #15 polish: a recovery session has no code field (the device is lost); its e-mail
        // and phone codes were the proof.
        explanation: if auth.session.state == SessionState::Recovery {
            ctx.tr.t("polish.remove_explanation_recovery")
        } else {
            ctx.tr.t("remove.explanation")
        },
        action: format!("/security/mfa/{}/remove", d.id),
        button: ctx.tr.t("remove.button"),
        back: "/security".into(),
        // Only one-time codes are typed here; an account with security keys alone confirms with
        // the key it signed in with in the last 5 minutes (the domain checks the recency). A
        // recovery session's email and phone codes stand in for the lost device's code or key.
        needs_code: enabled.iter().any(|d| d.kind.is_otp())
            && auth.session.state != SessionState::Recovery,
        key_verify: auth.session.state != SessionState::Recovery
            && !enabled.iter().any(|d| d.kind.is_otp())
            && enabled
                .iter()
                .any(|d| d.kind == crate::store::DeviceKind::SecurityKey)
            && auth
                .session
                .second_factor_at
                .is_none_or(|t| ctx.now.saturating_sub(t) > crate::domain::RECENT_FACTOR_SECS),
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

pub async fn remove_form(ctx: Ctx, Path(id): Path<String>) -> PageResult {
    let d = own_device(&ctx, &id).await?;
    let v = remove_view(&ctx, &d, None).await?;
    Ok(render(&v, StatusCode::OK))
}

/// A fresh code confirming a sensitive change.
#[derive(Deserialize)]
pub struct CodeForm {
    code: Option<String>,
    device: Option<String>,
}

pub async fn remove(
    ctx: Ctx,
    State(st): State<AppState>,
    Path(id): Path<String>,
    Form(f): Form<CodeForm>,
) -> PageResult {
    let auth = ctx.signed_in()?;
    let d = own_device(&ctx, &id).await?;
    let has_mfa = auth.session.state != SessionState::Recovery
        && st
            .svc
            .enabled_devices(&auth.account)
            .await?
            .iter()
            .any(|d| d.kind.is_otp());
    let mut result = Ok(());
    if has_mfa {
        let code = digits(f.code.as_deref().unwrap_or(""));
        let device = f.device.as_deref().filter(|s| !s.is_empty());
        result = st
            .svc
            .verify_in_session(auth, &code, device, ctx.now, &ctx.meta.meta)
            .await;
    }
    if result.is_ok() {
        // Verification just updated the session: read it again for the recency check.
        let mut fresh = auth.clone();
        if has_mfa {
            fresh.session.second_factor_at = Some(ctx.now);
        }
        result = st
            .svc
            .delete_device(&fresh, None, &id, ctx.now, &ctx.meta.meta)
            .await
            .map(|_| ());
    }
    match result {
        Ok(()) => Ok(see_other("/security?done=mfa_removed")),
        Err(e) if is_form_error(&e) => {
            let v = remove_view(&ctx, &d, Some(error_text(&ctx.tr, &e))).await?;
            Ok(render(&v, StatusCode::BAD_REQUEST))
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn revoke_session(
    ctx: Ctx,
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> PageResult {
    let auth = ctx.full()?;
    st.svc
        .revoke_session(auth, &id, ctx.now, &ctx.meta.meta)
        .await?;
    Ok(see_other("/security?done=session_revoked"))
}

/// #17 consents: "Revoke" in Connected applications (CSRF-checked like every console form).
/// The domain decides everything: only the session's own account, the consent deleted and
/// every live token of that client revoked, audited.
pub async fn revoke_connected_app(
    ctx: Ctx,
    State(st): State<AppState>,
    Path(client_id): Path<String>,
) -> PageResult {
    let auth = ctx.full()?;
    st.svc
        .oidc_revoke_connected_app(auth, &client_id, ctx.now, &ctx.meta.meta)
        .await?;
    Ok(see_other("/security?done=oidc_revoked"))
}
