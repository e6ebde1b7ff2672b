//! Signing in with alternative factors in the console (docs/recovery.md): *Troubleshoot MFA →
//! Sign in using alternative factors* (the email code, then the phone code), the recovery
//! session's page, the restriction of a recovery session to MFA device management (applied by
//! the console middleware through [`recovery_scope`]), and the contact verification pages under
//! *My security credentials*.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::IntoResponse;
use axum::Form;
use rand::rngs::OsRng;
use serde::Deserialize;

use crate::domain::contacts::Channel;
use crate::domain::recovery_signin::RecoveryOutcome;
use crate::error::Error;
use crate::store::SessionState;
use crate::web::AppState;

use super::views::{render, Page};
use super::{error_text, see_other, Ctx, Fail, PageResult, CHALLENGE_COOKIE};

/// The recovery session's page.
pub const RECOVERY_HOME: &str = "/security/recovery-session";

/// What the console does with a request of a recovery session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// MFA device management (and sign-out, language, static files): served.
    Allow,
    /// The start page or My security credentials: go to the recovery session's page.
    Home,
    /// Anything else: refused (403).
    Refuse,
}

/// The console pages a recovery session may open.
pub fn recovery_scope(method: &Method, path: &str) -> Scope {
    let device_page = |rest: &str| {
        let mut parts = rest.split('/');
        matches!(
            (parts.next(), parts.next(), parts.next()),
            (Some(id), Some("enable" | "resync" | "remove"), None) if !id.is_empty()
        )
    };
    match path {
        "/security/mfa/new"
        | "/security/mfa/hardware"
        | "/security/mfa/security-key"
        | "/security/mfa/security-key/begin"
        | "/security/mfa/security-key/finish"
        | RECOVERY_HOME
        | "/sign-out"
        | "/lang" => Scope::Allow,
        p if p.starts_with("/static/") && method == Method::GET => Scope::Allow,
        p if p.strip_prefix("/security/mfa/").is_some_and(device_page) => Scope::Allow,
        "/" | "/security" | "/sign-in" if method == Method::GET => Scope::Home,
        _ => Scope::Refuse,
    }
}

#[derive(Template)]
#[template(path = "alternative_sign_in.html")]
struct AltView {
    p: Page,
    /// `start`, `email` or `phone`.
    step: &'static str,
    error: Option<String>,
    // #15 delivery
    /// "Sent to t•••@example.com." for the current step.
    sent_to: Option<String>,
    /// A call is on its way.
    notice: Option<String>,
}

fn challenge_of(headers: &axum::http::HeaderMap) -> Option<String> {
    super::read_cookie(headers, CHALLENGE_COOKIE).filter(|c| !c.is_empty())
}

fn alt_page(
    ctx: &Ctx,
    step: &'static str,
    error: Option<String>,
    status: StatusCode,
) -> PageResult {
    let v = AltView {
        p: Page::new(ctx, "alternative.title", ""),
        step,
        error,
        sent_to: None,
        notice: None,
    };
    Ok(render(&v, status))
}

// #15 delivery
/// A code step's page with the masked address or number the code went to.
async fn alt_step_page(
    ctx: &Ctx,
    challenge: &str,
    step: &'static str,
    error: Option<String>,
    notice: Option<String>,
    status: StatusCode,
) -> PageResult {
    let targets = ctx
        .st
        .svc
        .recovery_sign_in_targets(challenge, ctx.now)
        .await
        .ok();
    let to = targets.and_then(|(e, p)| if step == "email" { e } else { p });
    let notice = notice.map(|n| ctx.tr.tf(&n, &[("to", to.as_deref().unwrap_or(""))]));
    let v = AltView {
        p: Page::new(ctx, "alternative.title", ""),
        step,
        error,
        sent_to: to.map(|t| ctx.tr.tf("delivery.sent_to", &[("to", &t)])),
        notice,
    };
    Ok(render(&v, status))
}

/// The errors shown inside the form; the rest become the error page (and the challenge
/// cookie goes when the challenge is spent or expired).
fn alt_error(ctx: &Ctx, step: &'static str, e: Error) -> PageResult {
    match e {
        // #15 delivery: nothing was sent. At the email step's answer the email code was
        // accepted and only the phone message failed: the user is at the phone step.
        Error::DeliveryFailed(channel) => alt_page(
            ctx,
            if channel == "email" { step } else { "phone" },
            Some(error_text(&ctx.tr, &e)),
            StatusCode::SERVICE_UNAVAILABLE,
        ),
        Error::InvalidCode | Error::InvalidInput(_) | Error::RateLimited { .. } => alt_page(
            ctx,
            step,
            Some(error_text(&ctx.tr, &e)),
            StatusCode::UNAUTHORIZED,
        ),
        // #15 contacts
        Error::Forbidden(m) if m == crate::domain::recovery_signin::ROOT_WITHOUT_CONTACTS => {
            alt_page(
                ctx,
                "start",
                Some(ctx.tr.t("contact_change.root_not_available")),
                StatusCode::FORBIDDEN,
            )
        }
        Error::Forbidden(_) => alt_page(
            ctx,
            "start",
            Some(ctx.tr.t("alternative.not_available")),
            StatusCode::FORBIDDEN,
        ),
        e => {
            let clear = matches!(e, Error::InvalidChallenge);
            let mut r = Fail::from(e).into_response();
            if clear {
                ctx.set_cookie(&mut r, CHALLENGE_COOKIE, None, 0);
            }
            Ok(r)
        }
    }
}

/// `GET /sign-in/alternative`: what will happen, and the button that sends the email code.
pub async fn start_form(ctx: Ctx, headers: axum::http::HeaderMap) -> PageResult {
    if challenge_of(&headers).is_none() {
        return Ok(see_other("/sign-in"));
    }
    alt_page(&ctx, "start", None, StatusCode::OK)
}

/// `POST /sign-in/alternative`: sends the email code.
pub async fn start(
    ctx: Ctx,
    State(st): State<AppState>,
    headers: axum::http::HeaderMap,
) -> PageResult {
    let Some(challenge) = challenge_of(&headers) else {
        return Ok(see_other("/sign-in"));
    };
    let result = match st.check_sign_in_rate(ctx.meta.ip) {
        Err(_) => Err(Error::RateLimited { retry_after: 60 }),
        Ok(()) => {
            st.svc
                .start_recovery_sign_in(&challenge, ctx.now, &mut OsRng, &ctx.meta.meta)
                .await
        }
    };
    match result {
        Ok(_) => Ok(see_other("/sign-in/alternative/email")),
        Err(e) => alt_error(&ctx, "start", e),
    }
}

/// A code form.
#[derive(Deserialize)]
pub struct CodeForm {
    code: String,
}

/// `GET /sign-in/alternative/email`.
pub async fn email_form(ctx: Ctx, headers: axum::http::HeaderMap) -> PageResult {
    let Some(challenge) = challenge_of(&headers) else {
        return Ok(see_other("/sign-in"));
    };
    alt_step_page(&ctx, &challenge, "email", None, None, StatusCode::OK).await
}

/// `POST /sign-in/alternative/email`: the email code; the phone code is then sent.
pub async fn email(
    ctx: Ctx,
    State(st): State<AppState>,
    headers: axum::http::HeaderMap,
    Form(f): Form<CodeForm>,
) -> PageResult {
    let Some(challenge) = challenge_of(&headers) else {
        return Ok(see_other("/sign-in"));
    };
    let result = match st.check_sign_in_rate(ctx.meta.ip) {
        Err(_) => Err(Error::RateLimited { retry_after: 60 }),
        Ok(()) => {
            st.svc
                .recovery_email_code(&challenge, &f.code, ctx.now, &mut OsRng, &ctx.meta.meta)
                .await
        }
    };
    match result {
        Ok(_) => Ok(see_other("/sign-in/alternative/phone")),
        Err(e) => alt_error(&ctx, "email", e),
    }
}

/// `GET /sign-in/alternative/phone`.
pub async fn phone_form(
    ctx: Ctx,
    headers: axum::http::HeaderMap,
    axum::extract::Query(q): axum::extract::Query<PhoneQuery>,
) -> PageResult {
    let Some(challenge) = challenge_of(&headers) else {
        return Ok(see_other("/sign-in"));
    };
    let notice = (q.sent.as_deref() == Some("voice")).then(|| "delivery.voice_sent".to_string());
    alt_step_page(&ctx, &challenge, "phone", None, notice, StatusCode::OK).await
}

// #15 delivery
/// Query of the phone step's page.
#[derive(Deserialize, Default)]
pub struct PhoneQuery {
    sent: Option<String>,
}

/// The form of "send again" / "call me instead".
#[derive(Deserialize)]
pub struct ResendForm {
    channel: String,
}

/// `POST /sign-in/alternative/phone/resend`: a new phone code by text or by a call.
pub async fn phone_resend(
    ctx: Ctx,
    State(st): State<AppState>,
    headers: axum::http::HeaderMap,
    Form(f): Form<ResendForm>,
) -> PageResult {
    let Some(challenge) = challenge_of(&headers) else {
        return Ok(see_other("/sign-in"));
    };
    let result = match st.check_sign_in_rate(ctx.meta.ip) {
        Err(_) => Err(Error::RateLimited { retry_after: 60 }),
        Ok(()) => match crate::domain::delivery::PhoneChannel::parse(Some(&f.channel)) {
            Ok(channel) => {
                st.svc
                    .resend_recovery_phone_code(
                        &challenge,
                        channel,
                        ctx.now,
                        &mut OsRng,
                        &ctx.meta.meta,
                    )
                    .await
            }
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(s) => Ok(see_other(&format!(
            "/sign-in/alternative/phone?sent={}",
            s.channel
        ))),
        Err(e) => alt_error(&ctx, "phone", e),
    }
}

/// `POST /sign-in/alternative/phone`: the phone code; a recovery session begins.
pub async fn phone(
    ctx: Ctx,
    State(st): State<AppState>,
    headers: axum::http::HeaderMap,
    Form(f): Form<CodeForm>,
) -> PageResult {
    let Some(challenge) = challenge_of(&headers) else {
        return Ok(see_other("/sign-in"));
    };
    let result = match st.check_sign_in_rate(ctx.meta.ip) {
        Err(_) => Err(Error::RateLimited { retry_after: 60 }),
        Ok(()) => {
            st.svc
                .recovery_phone_code(&challenge, &f.code, ctx.now, &mut OsRng, &ctx.meta.meta)
                .await
        }
    };
    match result {
        // #15 recovery: the waiting period applies; the challenge is spent.
        Ok(RecoveryOutcome::Pending { ready_at, started }) => {
            let mut r = super::pages_recovery_wait::pending_page(&ctx, ready_at, started)?;
            ctx.set_cookie(&mut r, CHALLENGE_COOKIE, None, 0);
            Ok(r)
        }
        Ok(RecoveryOutcome::Session(s, _)) => {
            let mut r = see_other(RECOVERY_HOME);
            ctx.set_cookie(&mut r, CHALLENGE_COOKIE, None, 0);
            ctx.set_session(&mut r, &s.token, s.record.expires_at - s.record.created_at);
            Ok(r)
        }
        Err(e) => alt_error(&ctx, "phone", e),
    }
}

/// A device on the recovery session's page.
struct RecoveryDevice {
    id: String,
    name: String,
    enabled: bool,
}

#[derive(Template)]
#[template(path = "recovery_session.html")]
struct RecoverySessionView {
    p: Page,
    devices: Vec<RecoveryDevice>,
    ends: String,
}

/// `GET /security/recovery-session`: what a recovery session can do, the devices (remove the
/// lost one), and assigning a new device, which ends the recovery session.
pub async fn session_page(ctx: Ctx) -> PageResult {
    let auth = ctx.signed_in()?;
    if auth.session.state != SessionState::Recovery {
        return Ok(see_other("/security"));
    }
    let devices = ctx
        .st
        .svc
        .list_devices(&auth.account)
        .await?
        .into_iter()
        .map(|d| RecoveryDevice {
            enabled: d.enabled_at.is_some(),
            id: d.id,
            name: d.name,
        })
        .collect();
    let v = RecoverySessionView {
        p: Page::new(&ctx, "recovery_session.title", "security"),
        devices,
        ends: ctx.tr.tf(
            "recovery_session.ends",
            &[("at", &ctx.when(auth.session.expires_at))],
        ),
    };
    Ok(render(&v, StatusCode::OK))
}

// ---- Contact verification (My security credentials → Contact details) ----------------------

struct ContactRow {
    channel: &'static str,
    label: String,
    value: String,
    has_value: bool,
    verified: bool,
    /// #15 contacts: a new value waiting for its code.
    pending: Option<String>,
}

#[derive(Template)]
#[template(path = "contacts.html")]
struct ContactsView {
    p: Page,
    rows: Vec<ContactRow>,
    notice: Option<String>,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "contact_confirm.html")]
struct ConfirmView {
    p: Page,
    channel: &'static str,
    heading: String,
    error: Option<String>,
}

/// Query of the contacts page.
#[derive(Deserialize, Default)]
pub struct ContactsQuery {
    done: Option<String>,
}

async fn contacts_view(
    ctx: &Ctx,
    notice: Option<String>,
    error: Option<String>,
) -> Result<ContactsView, Fail> {
    let auth = ctx.full()?;
    let c = ctx.st.svc.contacts_at(&auth.account, ctx.now).await?;
    let row =
        |channel: &'static str, label: &str, c: crate::domain::contacts::Contact| ContactRow {
            channel,
            label: ctx.tr.t(label),
            has_value: c.value.is_some(),
            value: c.value.unwrap_or_else(|| ctx.tr.t("contacts.none")),
            verified: c.verified,
            pending: c.pending,
        };
    Ok(ContactsView {
        p: Page::new(ctx, "contacts.title", "security"),
        rows: vec![
            row("email", "contacts.email", c.email),
            row("phone", "contacts.phone", c.phone),
        ],
        notice,
        error,
    })
}

/// `GET /security/contacts`.
pub async fn contacts_page(
    ctx: Ctx,
    axum::extract::Query(q): axum::extract::Query<ContactsQuery>,
) -> PageResult {
    let notice = match q.done.as_deref() {
        Some("verified") => Some(ctx.tr.t("contacts.verified_notice")),
        Some("removed") => Some(ctx.tr.t("contact_change.removed_notice")),
        _ => None,
    };
    let v = contacts_view(&ctx, notice, None).await?;
    Ok(render(&v, StatusCode::OK))
}

/// `POST /security/contacts/{channel}/verify`: sends a code.
pub async fn contact_send(ctx: Ctx, Path(channel): Path<String>) -> PageResult {
    let auth = ctx.full()?;
    let channel = Channel::parse(&channel)?;
    let result = ctx
        .st
        .svc
        .start_contact_verification(auth, channel, ctx.now, &mut OsRng, &ctx.meta.meta)
        .await;
    match result {
        Ok(()) => Ok(see_other(&format!(
            "/security/contacts/{}/confirm",
            channel.as_str()
        ))),
        Err(e @ (Error::Forbidden(_) | Error::InvalidInput(_))) => {
            let msg = match e {
                Error::Forbidden(_) => ctx.tr.t("contacts.not_configured"),
                _ => ctx.tr.t("contacts.no_value"),
            };
            let v = contacts_view(&ctx, None, Some(msg)).await?;
            Ok(render(&v, StatusCode::BAD_REQUEST))
        }
        Err(e) => Err(e.into()),
    }
}

fn confirm_view(ctx: &Ctx, channel: Channel, error: Option<String>) -> ConfirmView {
    let key = match channel {
        Channel::Email => "contacts.confirm_email",
        Channel::Phone => "contacts.confirm_phone",
    };
    ConfirmView {
        p: Page::new(ctx, "contacts.confirm_title", "security"),
        channel: channel.as_str(),
        heading: ctx.tr.t(key),
        error,
    }
}

/// `GET /security/contacts/{channel}/confirm`.
pub async fn contact_confirm_form(ctx: Ctx, Path(channel): Path<String>) -> PageResult {
    ctx.full()?;
    let channel = Channel::parse(&channel)?;
    Ok(render(&confirm_view(&ctx, channel, None), StatusCode::OK))
}

/// `POST /security/contacts/{channel}/confirm`: proves the value with the code.
pub async fn contact_confirm(
    ctx: Ctx,
    Path(channel): Path<String>,
    Form(f): Form<CodeForm>,
) -> PageResult {
    let auth = ctx.full()?;
    let channel = Channel::parse(&channel)?;
    match ctx
        .st
        .svc
        .confirm_contact(auth, channel, &f.code, ctx.now, &ctx.meta.meta)
        .await
    {
        Ok(()) => Ok(see_other("/security/contacts?done=verified")),
        Err(e @ (Error::InvalidCode | Error::InvalidInput(_))) => {
            let v = confirm_view(&ctx, channel, Some(error_text(&ctx.tr, &e)));
            Ok(render(&v, StatusCode::UNAUTHORIZED))
        }
        Err(e) => Err(e.into()),
    }
}

// ---- #15 contacts: changing and removing contact details ----------------------------------

/// The change form: the new value, and an MFA code when the session's second factor is older
/// than 5 minutes (the same fresh-factor step as other factor changes).
#[derive(Deserialize)]
pub struct ChangeForm {
    value: String,
    #[serde(default)]
    code: Option<String>,
}

/// The remove form: an MFA code when needed.
#[derive(Deserialize)]
pub struct RemoveForm {
    #[serde(default)]
    code: Option<String>,
}

/// Verifies the optional MFA code in the form, making the session's factor fresh for this
/// request.
async fn fresh_with_code(
    ctx: &Ctx,
    code: Option<&str>,
) -> Result<crate::domain::signin::Authenticated, Error> {
    let mut auth = ctx.full().map_err(|_| Error::Unauthenticated)?.clone();
    let code: String = code
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    if !code.is_empty() {
        ctx.st
            .svc
            .verify_in_session(&auth, &code, None, ctx.now, &ctx.meta.meta)
            .await?;
        auth.session.second_factor_at = Some(ctx.now);
    }
    Ok(auth)
}

/// `POST /security/contacts/{channel}/change`: holds the new value pending and sends a code to
/// it; the code is entered on the confirm page.
pub async fn contact_change(
    ctx: Ctx,
    Path(channel): Path<String>,
    Form(f): Form<ChangeForm>,
) -> PageResult {
    ctx.full()?;
    let channel = Channel::parse(&channel)?;
    let result = async {
        let auth = fresh_with_code(&ctx, f.code.as_deref()).await?;
        ctx.st
            .svc
            .start_contact_change(&auth, None, channel, &f.value, ctx.req(), &mut OsRng)
            .await
    }
    .await;
    match result {
        Ok(_) => Ok(see_other(&format!(
            "/security/contacts/{}/confirm",
            channel.as_str()
        ))),
        Err(e) if crate::console::is_form_error(&e) || matches!(e, Error::Forbidden(_)) => {
            let msg = match &e {
                Error::Forbidden(_) => ctx.tr.t("contacts.not_configured"),
                Error::RecentSecondFactorRequired => ctx.tr.t("contact_change.need_code"),
                other => error_text(&ctx.tr, other),
            };
            let v = contacts_view(&ctx, None, Some(msg)).await?;
            Ok(render(&v, StatusCode::BAD_REQUEST))
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /security/contacts/{channel}/remove`.
pub async fn contact_remove(
    ctx: Ctx,
    Path(channel): Path<String>,
    Form(f): Form<RemoveForm>,
) -> PageResult {
    ctx.full()?;
    let channel = Channel::parse(&channel)?;
    let result = async {
        let auth = fresh_with_code(&ctx, f.code.as_deref()).await?;
        ctx.st
            .svc
            .remove_contact(&auth, None, channel, ctx.now, &ctx.meta.meta)
            .await
    }
    .await;
    match result {
        Ok(()) => Ok(see_other("/security/contacts?done=removed")),
        Err(e) if crate::console::is_form_error(&e) => {
            let msg = match &e {
                Error::RecentSecondFactorRequired => ctx.tr.t("contact_change.need_code"),
                other => error_text(&ctx.tr, other),
            };
            let v = contacts_view(&ctx, None, Some(msg)).await?;
            Ok(render(&v, StatusCode::BAD_REQUEST))
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recovery_session_reaches_only_device_management() {
        let get = Method::GET;
        let post = Method::POST;
        for p in [
            "/security/mfa/new",
            "/security/mfa/abc/enable",
            "/security/mfa/abc/remove",
            "/security/mfa/abc/resync",
            RECOVERY_HOME,
            "/static/console.css",
        ] {
            assert_eq!(recovery_scope(&get, p), Scope::Allow, "{p}");
        }
        assert_eq!(recovery_scope(&post, "/sign-out"), Scope::Allow);
        assert_eq!(recovery_scope(&get, "/"), Scope::Home);
        assert_eq!(recovery_scope(&get, "/security"), Scope::Home);
        for p in [
            "/security/password",
            "/security/recovery-codes",
            "/security/contacts",
            "/security/sessions/x/revoke",
            "/security/mfa//enable",
            "/security/mfa/a/b/enable",
            "/users",
            "/audit",
            "/review",
            "/app-keys",
        ] {
            assert_eq!(recovery_scope(&post, p), Scope::Refuse, "{p}");
        }
        assert_eq!(recovery_scope(&post, "/static/x"), Scope::Refuse);
        assert_eq!(recovery_scope(&get, "/audit"), Scope::Refuse);
    }
}
