//! View models: one askama template struct per page, built from domain records by the
//! handlers, and the shared [`Page`] frame (title, language switcher, navigation, CSRF token).

use askama::Template;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::clock::UnixTime;
use crate::store::{DeviceKind, DeviceRecord, SessionRecord};

use super::i18n::{Lang, Tr};
use super::{Ctx, ErrText, ErrorPage};

/// One entry of the language switcher.
pub struct LangChoice {
    /// Tag.
    pub code: &'static str,
    /// Its own name.
    pub name: &'static str,
    /// Whether it is the page's language.
    pub current: bool,
}

/// The frame every page shares.
pub struct Page {
    /// Strings.
    pub tr: Tr,
    /// `lang` attribute.
    pub lang: &'static str,
    /// CSRF token for forms.
    pub csrf: String,
    /// Page title (translated).
    pub title: String,
    /// Signed-in user name.
    pub user: Option<String>,
    /// Administrator navigation.
    pub admin: bool,
    /// Full session (otherwise only the dashboard and enrollment are reachable).
    pub full: bool,
    /// Active navigation item.
    pub nav: &'static str,
    /// Where the language switcher returns to.
    pub next: String,
    /// Languages.
    pub langs: Vec<LangChoice>,
}

impl Page {
    fn frame(tr: Tr, csrf: &str, title_key: &str, next: &str) -> Page {
        Page {
            tr,
            lang: tr.lang().code(),
            csrf: csrf.to_string(),
            title: tr.t(title_key),
            user: None,
            admin: false,
            full: false,
            nav: "",
            next: next.to_string(),
            langs: Lang::ALL
                .iter()
                .map(|l| LangChoice {
                    code: l.code(),
                    name: l.native_name(),
                    current: *l == tr.lang(),
                })
                .collect(),
        }
    }

    /// The frame for a request, with the signed-in user's navigation.
    pub fn new(ctx: &Ctx, title_key: &str, nav: &'static str) -> Page {
        let mut p = Page::frame(ctx.tr, &ctx.csrf, title_key, &ctx.path);
        if let Some(a) = &ctx.auth {
            p.user = Some(a.account.name.clone());
            p.full = a.session.state == crate::store::SessionState::Full;
            // Administrative pages only for an administrator with MFA (`require_admin`).
            p.admin = p.full && a.is_admin();
        }
        p.nav = nav;
        p
    }
}

/// Renders a template as an HTML response.
pub fn render<T: Template>(t: &T, status: StatusCode) -> Response {
    match t.render() {
        Ok(html) => {
            let mut r = (status, html).into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            r
        }
        Err(e) => {
            tracing::error!(error = %e, "console: template failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error: see the server log",
            )
                .into_response()
        }
    }
}

/// `2026-11-28 18:30 UTC`.
pub fn when(t: UnixTime) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| d.format(&fmt).ok())
        .unwrap_or_else(|| t.to_string())
}

/// `2026-11-28 18:30:05`.
pub fn when_secs(t: UnixTime) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| d.format(&fmt).ok())
        .unwrap_or_else(|| t.to_string())
}

/// A device as a table row.
pub struct DeviceRow {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Kind, translated.
    pub kind: String,
    /// Serial.
    pub serial: String,
    /// Enabled (else pending).
    pub enabled: bool,
    /// Enable date or "pending".
    pub enabled_text: String,
    /// Last use or "never".
    pub last_used: String,
    /// OTP device (can be resynchronised).
    pub otp: bool,
}

impl DeviceRow {
    /// From a record.
    pub fn new(tr: &Tr, d: &DeviceRecord) -> DeviceRow {
        let kind = match d.kind {
            DeviceKind::Virtual => tr.t("device.kind_virtual"),
            DeviceKind::SecurityKey => tr.t("device.kind_security_key"),
            DeviceKind::HardwareOtp => tr.t("device.kind_hardware"),
        };
        DeviceRow {
            id: d.id.clone(),
            name: d.name.clone(),
            kind,
            serial: d.serial.clone(),
            enabled: d.enabled_at.is_some(),
            enabled_text: d
                .enabled_at
                .map(when)
                .unwrap_or_else(|| tr.t("device.pending")),
            last_used: d
                .last_used_at
                .map(when)
                .unwrap_or_else(|| tr.t("device.never")),
            otp: d.kind.is_otp(),
        }
    }
}

/// A session as a table row.
pub struct SessionRow {
    /// Id.
    pub id: String,
    /// Sign-in time.
    pub created: String,
    /// Last activity.
    pub last_seen: String,
    /// Address.
    pub addr: String,
    /// Browser.
    pub agent: String,
    /// This request's session.
    pub current: bool,
}

impl SessionRow {
    /// From a record.
    pub fn new(s: &SessionRecord, current: &str, ctx: &Ctx) -> SessionRow {
        SessionRow {
            id: s.id.clone(),
            created: ctx.when(s.created_at),
            last_seen: ctx.when(s.last_seen_at),
            addr: s.client_addr.clone().unwrap_or_default(),
            agent: s
                .user_agent
                .as_deref()
                .unwrap_or("")
                .chars()
                .take(80)
                .collect(),
            current: s.id == current,
        }
    }
}

/// A device that can answer a code prompt.
pub struct DeviceChoice {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
}

/// An alert banner with the action that fixes it.
pub struct AlertView {
    /// What is wrong.
    pub text: String,
    /// The fixing action's label.
    pub action: String,
    /// Where the action is.
    pub href: String,
    /// `danger` or `warning`.
    pub level: &'static str,
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorView {
    pub p: Page,
    pub status: u16,
    pub what: String,
    pub todo: String,
}

fn err_text(tr: &Tr, t: &ErrText) -> String {
    match t {
        ErrText::Key(k) => tr.t(k),
        ErrText::Secs(k, s) => tr.tf(k, &[("secs", &s.to_string())]),
    }
}

/// Renders an error page (called by the console middleware).
pub(super) fn render_error(
    tr: Tr,
    csrf: &str,
    e: &ErrorPage,
    auth: Option<&crate::domain::signin::Authenticated>,
) -> Response {
    let mut p = Page::frame(tr, csrf, "errors.title", "/");
    // Signed-in people keep their navigation (and the way to sign out).
    if let Some(a) = auth {
        p.user = Some(a.account.name.clone());
        p.full = a.session.state == crate::store::SessionState::Full;
        p.admin = p.full && a.is_admin();
    }
    p.title = format!("{} {}", e.status.as_u16(), tr.t("errors.title"));
    let v = ErrorView {
        p,
        status: e.status.as_u16(),
        what: err_text(&tr, &e.what),
        todo: err_text(&tr, &e.todo),
    };
    let mut r = render(&v, e.status);
    if let Some(s) = e.retry_after {
        if let Ok(v) = HeaderValue::from_str(&s.max(1).to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    r
}

#[derive(Template)]
#[template(path = "sign_in.html")]
pub struct SignInView {
    pub p: Page,
    pub user: String,
    pub error: Option<String>,
    pub notice: Option<String>,
}

#[derive(Template)]
#[template(path = "mfa.html")]
pub struct MfaView {
    pub p: Page,
    pub account: String,
    pub devices: Vec<DeviceChoice>,
    pub selected: String,
    pub error: Option<String>,
    /// The account has a security key: offer "Use security key".
    pub security_key: bool,
}

#[derive(Template)]
#[template(path = "troubleshoot.html")]
pub struct TroubleshootView {
    pub p: Page,
}

#[derive(Template)]
#[template(path = "setup.html")]
pub struct SetupView {
    pub p: Page,
    pub token: String,
    pub account: String,
    pub min_length: String,
    pub pw_hint: String,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
pub struct DashboardView {
    pub p: Page,
    pub greeting: String,
    pub alerts: Vec<AlertView>,
    pub enrollment_required: bool,
    pub devices_text: String,
    pub notice: Option<String>,
}

#[derive(Template)]
#[template(path = "security.html")]
pub struct SecurityView {
    pub p: Page,
    pub devices: Vec<DeviceRow>,
    /// #15 polish: the account's sync devices.
    pub sync_devices: Vec<SyncRow>,
    /// #17 consents: the OpenID clients the account shares something with.
    pub connected_apps: Vec<ConnectedRow>,
    pub sessions: Vec<SessionRow>,
    pub notice: Option<String>,
    pub password_error: Option<String>,
    pub can_add: bool,
    pub limit_text: String,
    pub min_length: String,
}

#[derive(Template)]
#[template(path = "mfa_new.html")]
pub struct MfaNewView {
    pub p: Page,
    pub name: String,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "mfa_enable.html")]
pub struct MfaEnableView {
    pub p: Page,
    pub device_id: String,
    pub device_name: String,
    pub qr_data_uri: String,
    pub secret: String,
    pub issuer_account: String,
    pub code1: String,
    pub code2: String,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "mfa_resync.html")]
pub struct MfaResyncView {
    pub p: Page,
    pub device_id: String,
    pub device_name: String,
    pub error: Option<String>,
}

/// A page that sends the browser on by a refresh instead of a redirect: the end of every
/// console form whose journey leaves for another site (#17, #18). Chromium applies the
/// console's CSP `form-action 'self'` to every redirect that follows a form submission, so a
/// redirect chain from a sign-in, a consent or a logout form to an application would be
/// blocked; a refresh is a navigation of its own.
#[derive(Template)]
#[template(path = "continue.html")]
pub struct ContinueView {
    pub p: Page,
    /// Where to go: a same-origin path, or an address the domain already checked (a
    /// registered redirect URI, a safe return address).
    pub to: String,
    /// What happened, in the page's language.
    pub intro: String,
}

#[derive(Template)]
#[template(path = "sso_step_up.html")]
pub struct SsoStepUpView {
    pub p: Page,
    /// "APP asks for your security key" in the page's language.
    pub intro: String,
}

#[derive(Template)]
#[template(path = "confirm.html")]
pub struct ConfirmView {
    pub p: Page,
    pub heading: String,
    pub explanation: String,
    pub action: String,
    pub button: String,
    pub back: String,
    pub needs_code: bool,
    pub devices: Vec<DeviceChoice>,
    pub error: Option<String>,
    /// Offer "Confirm with security key" (a key-only account whose second factor is stale).
    pub key_verify: bool,
}

/// A user in the administrators' list.
pub struct UserRow {
    pub name: String,
    pub role: String,
    pub mfa: String,
    pub no_mfa: bool,
    pub lockout_risk: bool,
    pub locked: bool,
    pub password_set: bool,
    pub created: String,
}

/// A user just created: the setup link is shown once.
pub struct CreatedUser {
    pub name: String,
    pub link: String,
}

#[derive(Template)]
#[template(path = "users.html")]
pub struct UsersView {
    pub p: Page,
    pub users: Vec<UserRow>,
    pub created: Option<CreatedUser>,
    pub error: Option<String>,
    pub form_name: String,
    pub form_email: String,
    pub form_phone: String,
    pub form_admin: bool,
}

#[derive(Template)]
#[template(path = "user.html")]
pub struct UserView {
    pub p: Page,
    pub name: String,
    pub role: String,
    pub email: String,
    pub phone: String,
    pub created: String,
    pub locked: bool,
    pub devices: Vec<DeviceRow>,
    pub notice: Option<String>,
    /// #18: the account's groups, and the error of the last group change.
    pub groups: Vec<String>,
    pub group_error: Option<String>,
}

/// An application key in the list.
pub struct KeyRow {
    pub id: String,
    pub name: String,
    pub created: String,
    pub created_by: String,
    pub revoked: bool,
    pub allow_root: bool,
    /// May tell accounts without an MFA device (`allow_no_device`).
    pub allow_no_device: bool,
    /// "Revoke the key of NAME" (the button's accessible name).
    pub revoke_label: String,
}

#[derive(Template)]
#[template(path = "app_keys.html")]
pub struct AppKeysView {
    pub p: Page,
    pub keys: Vec<KeyRow>,
    pub created_name: String,
    pub created_key: String,
    pub error: Option<String>,
    pub notice: Option<String>,
}

/// One audit event.
pub struct AuditRow {
    pub at: String,
    pub account: String,
    pub actor: String,
    pub kind: String,
    pub result: String,
    pub ok: bool,
    pub detail: String,
    pub addr: String,
}

/// A choice in the event-kind filter.
pub struct KindChoice {
    pub value: &'static str,
    pub selected: bool,
}

#[derive(Template)]
#[template(path = "audit.html")]
pub struct AuditView {
    pub p: Page,
    pub rows: Vec<AuditRow>,
    pub admin: bool,
    pub account: String,
    pub kinds: Vec<KindChoice>,
    pub any_kind: bool,
    pub from: String,
    pub to: String,
    pub error: Option<String>,
    pub count_text: String,
    pub truncated_text: Option<String>,
}

/// One check on the Security review page.
pub struct ReviewRow {
    pub id: String,
    pub title: String,
    pub severity: String,
    pub severity_class: &'static str,
    pub outcome: String,
    pub passed: bool,
    /// The row's and result's class (colour): `pass`, `fail`, `undecidable` or
    /// `not-applicable`.
    pub outcome_class: &'static str,
    pub affected: Vec<String>,
    pub remedy: String,
    /// The console page that fixes it (documentation references are named in the remedy).
    pub link: Option<String>,
}

#[derive(Template)]
#[template(path = "review.html")]
pub struct ReviewView {
    pub p: Page,
    pub rows: Vec<ReviewRow>,
    pub summary: String,
    pub high_failed: bool,
}

// #15 polish

/// A sync device on the credentials page.
pub struct SyncRow {
    pub id: String,
    pub name: String,
    pub created: String,
    pub last_seen: String,
    /// "Revoked at …" (translated); `None`: still active.
    pub revoked: Option<String>,
}

impl SyncRow {
    /// From a record, times in the account's zone.
    pub fn new(d: &crate::store::sync::SyncDeviceRecord, ctx: &Ctx) -> SyncRow {
        SyncRow {
            id: d.id.clone(),
            name: d.name.clone(),
            created: ctx.when(d.created_at),
            last_seen: d
                .last_seen_at
                .map_or_else(|| ctx.tr.t("polish.sync_never"), |t| ctx.when(t)),
            revoked: d
                .revoked_at
                .map(|t| ctx.tr.tf("polish.sync_revoked_at", &[("at", &ctx.when(t))])),
        }
    }
}

/// #17 consents: one row of "Connected applications".
pub struct ConnectedRow {
    /// The client's id (the revoke form's path).
    pub client_id: String,
    /// The client's name.
    pub name: String,
    /// What it receives, one line per scope (translated).
    pub receives: Vec<String>,
    /// When the consent was given, or that it was never asked (translated).
    pub allowed: String,
    /// The newest live sign-in, or that none is active (translated).
    pub last: String,
}

/// What a scope gives the client, in the page's language (the consent page and the
/// security page's "Connected applications").
pub(super) fn scope_text(ctx: &Ctx, scope: &str) -> String {
    match scope {
        "openid" => ctx.tr.t("oidc.scope_openid"),
        "profile" => ctx.tr.t("oidc.scope_profile"),
        "email" => ctx.tr.t("oidc.scope_email"),
        "groups" => ctx.tr.t("oidc.scope_groups"),
        _ => ctx.tr.t("oidc.scope_offline_access"),
    }
}

impl ConnectedRow {
    /// From the domain's answer, times in the account's zone.
    pub fn new(a: &crate::domain::oidc::ConnectedApp, ctx: &Ctx) -> ConnectedRow {
        ConnectedRow {
            client_id: a.client_id.clone(),
            name: a.client_name.clone(),
            receives: a.scopes.iter().map(|s| scope_text(ctx, s)).collect(),
            allowed: a
                .consented_at
                .map_or_else(|| ctx.tr.t("oidc.apps_trusted"), |t| ctx.when(t)),
            last: a
                .last_granted_at
                .map_or_else(|| ctx.tr.t("oidc.apps_no_live"), |t| ctx.when(t)),
        }
    }
}

/// A time zone offered in the preferences form.
pub struct ZoneChoice {
    pub name: &'static str,
}

#[derive(Template)]
#[template(path = "preferences.html")]
pub struct PreferencesView {
    pub p: Page,
    pub language: String,
    pub time_zone: String,
    pub zones: Vec<ZoneChoice>,
    /// The current time in the chosen zone, so the user sees the effect.
    pub now_text: String,
    pub error: Option<String>,
}
