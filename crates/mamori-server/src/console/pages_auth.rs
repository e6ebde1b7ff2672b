//! Signing in and out: sign-in (password), the MFA page, troubleshooting, the one-time setup
//! link, sign-out, the language switcher, and the dashboard with the security alerts.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Form;
use rand::rngs::OsRng;
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::domain::signin::PasswordOutcome;
use crate::domain::CHALLENGE_SECS;
use crate::store::{Role, SessionState};
use crate::web::AppState;

use super::i18n::{Lang, LANG_COOKIE};
use super::views::{
    render, AlertView, DashboardView, DeviceChoice, MfaView, Page, SetupView, SignInView,
    TroubleshootView,
};
use super::{error_text, is_form_error, see_other, Ctx, Fail, PageResult, CHALLENGE_COOKIE};

/// Query of pages that show a one-line notice after a redirect (only known notices).
#[derive(Debug, Deserialize, Default)]
pub struct Done {
    pub(super) done: Option<String>,
}

/// The translated notice for a `?done=` value; unknown values show nothing.
pub(super) fn notice(ctx: &Ctx, done: Option<&str>) -> Option<String> {
    let key = match done? {
        "signed_out" => "notices.signed_out",
        "setup" => "notices.setup_done",
        "setup_signed_in" => "account_policy.setup_signed_in",
        "mfa_assigned" => "notices.mfa_assigned",
        "mfa_removed" => "notices.mfa_removed",
        "mfa_resynced" => "notices.mfa_resynced",
        "password" => "notices.password_changed",
        "session_revoked" => "notices.session_revoked",
        "device_deactivated" => "notices.device_deactivated",
        "key_revoked" => "notices.key_revoked",
        "enroll_first" => "notices.enroll_first",
        // #15 polish
        "key_added" => "polish.key_added",
        "sync_revoked" => "polish.sync_revoked",
        "preferences" => "polish.preferences_saved",
        // #18
        "group_added" => "groups.added",
        "group_removed" => "groups.removed",
        // #17 consents
        "oidc_revoked" => "oidc.apps_revoked",
        _ => return None,
    };
    Some(ctx.tr.t(key))
}

pub async fn dashboard(
    ctx: Ctx,
    headers: axum::http::HeaderMap,
    Query(q): Query<Done>,
) -> PageResult {
    let auth = ctx.signed_in()?;
    // #18: a sign-in that began at a protected application goes back to it (every way of
    // signing in ends here).
    if auth.session.state == SessionState::Full && super::pages_forward::returning(&headers) {
        return Ok(super::pages_forward::continue_to_sso(&ctx));
    }
    // #17: so does a sign-in that began at an OpenID client's authorization request.
    if auth.session.state == SessionState::Full {
        if let Some(to) = super::pages_oidc::returning(&headers) {
            // By a refresh: the authorization request ends in a redirect to the client, which
            // after the sign-in form would fall under the CSP's `form-action 'self'`.
            return Ok(super::pages_forward::continue_to(
                &ctx,
                &to,
                "sso.continue_intro",
            ));
        }
    }
    let tr = ctx.tr;
    let enrollment_required = auth.session.state != SessionState::Full;
    let own = ctx.st.svc.account_alerts(auth).await?;
    let mut alerts: Vec<AlertView> = own
        .iter()
        .map(|a| match a.kind {
            "root_without_mfa" => AlertView {
                text: tr.t("alerts.root_without_mfa"),
                action: tr.t("alerts.assign_action"),
                href: "/security/mfa/new".into(),
                level: "danger",
            },
            "single_mfa_device" => AlertView {
                text: tr.t("alerts.own_single_device"),
                action: tr.t("alerts.add_second_action"),
                href: "/security/mfa/new".into(),
                level: "warning",
            },
            _ => AlertView {
                text: tr.t("alerts.own_without_mfa"),
                action: tr.t("alerts.assign_action"),
                href: "/security/mfa/new".into(),
                level: "danger",
            },
        })
        .collect();
    // An administrator without MFA may sign in (require_mfa permitting) but not administer:
    // lead them to enrollment first (root's own alert already says so).
    if auth.account.role == Role::Admin
        && auth.enabled_devices == 0
        && auth.account.name != crate::domain::ROOT
    {
        alerts.insert(
            0,
            AlertView {
                text: tr.t("account_policy.admin_enroll_alert"),
                action: tr.t("alerts.assign_action"),
                href: "/security/mfa/new".into(),
                level: "danger",
            },
        );
    }
    // #15 contacts: root is asked for its contact details on its own dashboard.
    if !enrollment_required
        && auth.account.name == crate::domain::ROOT
        && ctx.st.svc.root_contacts_alert().await?.is_some()
    {
        alerts.push(AlertView {
            text: tr.t("contact_change.root_contacts"),
            action: tr.t("contact_change.root_contacts_action"),
            href: "/security/contacts".into(),
            level: "warning",
        });
    }
    if !enrollment_required && auth.is_admin() {
        for a in ctx.st.svc.all_alerts().await? {
            if a.user == auth.account.name {
                continue;
            }
            let (key, level) = match a.kind {
                // #15 contacts
                "root_without_verified_contacts" => {
                    ("contact_change.root_contacts_other", "warning")
                }
                "single_mfa_device" => ("alerts.user_single_device", "warning"),
                _ => ("alerts.user_without_mfa", "danger"),
            };
            alerts.push(AlertView {
                text: tr.tf(key, &[("user", &a.user)]),
                action: tr.t("alerts.review_user_action"),
                href: format!("/users/{}", a.user),
                level,
            });
        }
    }
    let n = auth.enabled_devices.to_string();
    let v = DashboardView {
        p: Page::new(&ctx, "dashboard.title", "dashboard"),
        greeting: tr.tf("dashboard.signed_in_as", &[("user", &auth.account.name)]),
        alerts,
        enrollment_required,
        devices_text: tr.tf("dashboard.devices", &[("count", &n)]),
        notice: notice(&ctx, q.done.as_deref()),
    };
    Ok(render(&v, StatusCode::OK))
}

pub async fn sign_in_form(ctx: Ctx, Query(q): Query<Done>) -> PageResult {
    if ctx.auth.is_some() {
        return Ok(see_other("/"));
    }
    let v = SignInView {
        p: Page::new(&ctx, "sign_in.title", ""),
        user: String::new(),
        error: None,
        notice: notice(&ctx, q.done.as_deref()),
    };
    Ok(render(&v, StatusCode::OK))
}

/// The sign-in form.
#[derive(Deserialize)]
pub struct SignInForm {
    user: String,
    password: String,
}

pub async fn sign_in(
    ctx: Ctx,
    State(st): State<AppState>,
    Form(f): Form<SignInForm>,
) -> PageResult {
    let show = |ctx: &Ctx, error: String, status: StatusCode| {
        let v = SignInView {
            p: Page::new(ctx, "sign_in.title", ""),
            user: f.user.clone(),
            error: Some(error),
            notice: None,
        };
        render(&v, status)
    };
    if st.check_sign_in_rate(ctx.meta.ip).is_err() {
        // The per-address limit of the API's sign-in endpoints; its window is a minute.
        let e = crate::Error::RateLimited { retry_after: 60 };
        let mut r = show(&ctx, error_text(&ctx.tr, &e), StatusCode::TOO_MANY_REQUESTS);
        r.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            axum::http::HeaderValue::from_static("60"),
        );
        return Ok(r);
    }
    let outcome = st
        .svc
        .sign_in_password(
            f.user.trim(),
            Zeroizing::new(f.password.clone()),
            ctx.now,
            &mut OsRng,
            &ctx.meta.meta,
        )
        .await;
    match outcome {
        Ok(PasswordOutcome::MfaRequired { challenge, .. }) => {
            let mut r = see_other("/sign-in/mfa");
            ctx.set_cookie(&mut r, CHALLENGE_COOKIE, Some(&challenge), CHALLENGE_SECS);
            Ok(r)
        }
        Ok(PasswordOutcome::Session(b)) => {
            let (s, _) = *b;
            let mut r = see_other("/");
            ctx.set_session(&mut r, &s.token, s.record.expires_at - s.record.created_at);
            Ok(r)
        }
        Err(e) if is_form_error(&e) => {
            let status = StatusCode::UNAUTHORIZED;
            Ok(show(&ctx, error_text(&ctx.tr, &e), status))
        }
        Err(e) => Err(e.into()),
    }
}

pub(super) fn challenge_of(headers: &axum::http::HeaderMap) -> Option<String> {
    super::read_cookie(headers, CHALLENGE_COOKIE).filter(|c| !c.is_empty())
}

pub(super) fn mfa_view(
    ctx: &Ctx,
    account: String,
    devices: &[crate::store::DeviceRecord],
    selected: String,
    error: Option<String>,
) -> MfaView {
    MfaView {
        p: Page::new(ctx, "mfa.title", ""),
        account,
        devices: devices
            .iter()
            .filter(|d| d.kind.is_otp())
            .map(|d| DeviceChoice {
                id: d.id.clone(),
                name: d.name.clone(),
            })
            .collect(),
        selected,
        error,
        security_key: devices
            .iter()
            .any(|d| d.kind == crate::store::DeviceKind::SecurityKey),
    }
}

pub async fn mfa_form(ctx: Ctx, headers: axum::http::HeaderMap) -> PageResult {
    let Some(challenge) = challenge_of(&headers) else {
        return Ok(see_other("/sign-in"));
    };
    let (account, devices) = ctx.st.svc.challenge_devices(&challenge, ctx.now).await?;
    let v = mfa_view(&ctx, account.name, &devices, String::new(), None);
    Ok(render(&v, StatusCode::OK))
}

/// The MFA form.
#[derive(Deserialize)]
pub struct MfaForm {
    code: String,
    device: Option<String>,
}

pub async fn mfa(
    ctx: Ctx,
    State(st): State<AppState>,
    headers: axum::http::HeaderMap,
    Form(f): Form<MfaForm>,
) -> PageResult {
    let Some(challenge) = challenge_of(&headers) else {
        return Ok(see_other("/sign-in"));
    };
    let device = f.device.as_deref().filter(|d| !d.is_empty());
    let code: String = f.code.chars().filter(|c| !c.is_whitespace()).collect();
    let result = match st.check_sign_in_rate(ctx.meta.ip) {
        Err(_) => Err(crate::Error::RateLimited { retry_after: 60 }),
        Ok(()) => {
            st.svc
                .sign_in_mfa(
                    &challenge,
                    &code,
                    device,
                    ctx.now,
                    &mut OsRng,
                    &ctx.meta.meta,
                )
                .await
        }
    };
    match result {
        Ok((s, _)) => {
            let mut r = see_other("/");
            ctx.set_cookie(&mut r, CHALLENGE_COOKIE, None, 0);
            ctx.set_session(&mut r, &s.token, s.record.expires_at - s.record.created_at);
            Ok(r)
        }
        Err(e) if is_form_error(&e) => {
            let (account, devices) = st.svc.challenge_devices(&challenge, ctx.now).await?;
            let v = mfa_view(
                &ctx,
                account.name,
                &devices,
                device.unwrap_or("").to_string(),
                Some(error_text(&ctx.tr, &e)),
            );
            Ok(render(&v, StatusCode::UNAUTHORIZED))
        }
        Err(e) => {
            // The challenge is spent or expired: the error page, and the cookie goes.
            let mut r = axum::response::IntoResponse::into_response(Fail::from(e));
            ctx.set_cookie(&mut r, CHALLENGE_COOKIE, None, 0);
            Ok(r)
        }
    }
}

pub async fn troubleshoot(ctx: Ctx) -> PageResult {
    let v = TroubleshootView {
        p: Page::new(&ctx, "troubleshoot.title", ""),
    };
    Ok(render(&v, StatusCode::OK))
}

/// Query of the setup link.
#[derive(Deserialize)]
pub struct SetupQuery {
    token: Option<String>,
}

fn setup_view(ctx: &Ctx, token: String, account: String, error: Option<String>) -> SetupView {
    SetupView {
        p: Page::new(ctx, "setup.title", ""),
        token,
        account,
        min_length: ctx.st.svc.policy().password.min_length.to_string(),
        pw_hint: ctx.tr.tf(
            "setup.password_hint",
            &[("min", &ctx.st.svc.policy().password.min_length.to_string())],
        ),
        error,
    }
}

pub async fn setup_form(ctx: Ctx, Query(q): Query<SetupQuery>) -> PageResult {
    let token = q.token.unwrap_or_default();
    let account = ctx.st.svc.setup_link_account(&token, ctx.now).await?;
    let v = setup_view(&ctx, token, account.name, None);
    Ok(render(&v, StatusCode::OK))
}

/// The setup form.
#[derive(Deserialize)]
pub struct SetupForm {
    token: String,
    password: String,
    confirm: String,
}

pub async fn setup(ctx: Ctx, State(st): State<AppState>, Form(f): Form<SetupForm>) -> PageResult {
    let account = st.svc.setup_link_account(&f.token, ctx.now).await?;
    if f.password != f.confirm {
        let v = setup_view(
            &ctx,
            f.token,
            account.name,
            Some(ctx.tr.t("errors.password_mismatch")),
        );
        return Ok(render(&v, StatusCode::BAD_REQUEST));
    }
    if st.check_sign_in_rate(ctx.meta.ip).is_err() {
        return Err(Fail::Domain(crate::Error::RateLimited { retry_after: 60 }));
    }
    // #15 polish: the language the setup page is read in becomes the account's (only if it has
    // none; the link's holder is the account's owner either way).
    let lang = crate::domain::preferences::parse_language(ctx.tr.lang().code())?;
    st.svc.adopt_language(&account, lang, ctx.now).await?;
    match st
        .svc
        .complete_setup(
            &f.token,
            Zeroizing::new(f.password),
            ctx.now,
            &mut OsRng,
            &ctx.meta.meta,
        )
        .await
    {
        Ok(account) => {
            // The person who just chose the password is signed in with it (the same rule as
            // the password step: a second factor if the account has devices, else an
            // enrollment-only or password-only session per require_mfa). Choosing a password
            // ended every other session of the account.
            match st
                .svc
                .sign_in_after_setup(account, ctx.now, &mut OsRng, &ctx.meta.meta)
                .await?
            {
                PasswordOutcome::MfaRequired { challenge, .. } => {
                    let mut r = see_other("/sign-in/mfa");
                    ctx.set_cookie(&mut r, crate::web::SESSION_COOKIE, None, 0);
                    ctx.set_cookie(&mut r, CHALLENGE_COOKIE, Some(&challenge), CHALLENGE_SECS);
                    Ok(r)
                }
                PasswordOutcome::Session(b) => {
                    let (s, _) = *b;
                    let mut r = see_other("/?done=setup_signed_in");
                    ctx.set_session(&mut r, &s.token, s.record.expires_at - s.record.created_at);
                    Ok(r)
                }
            }
        }
        Err(e) if is_form_error(&e) => {
            let v = setup_view(&ctx, f.token, account.name, Some(error_text(&ctx.tr, &e)));
            Ok(render(&v, StatusCode::BAD_REQUEST))
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn sign_out(ctx: Ctx) -> PageResult {
    if let Some(a) = &ctx.auth {
        ctx.st.svc.sign_out(a, ctx.now, &ctx.meta.meta).await?;
    }
    let mut r = see_other("/sign-in?done=signed_out");
    ctx.set_cookie(&mut r, crate::web::SESSION_COOKIE, None, 0);
    // #18: the single-sign-on cookie goes too (its token already ended with the session).
    super::pages_forward::clear_cookies(&ctx, &mut r);
    Ok(r)
}

/// The language switcher's form.
#[derive(Deserialize)]
pub struct LangForm {
    lang: String,
    next: Option<String>,
}

/// Only paths of this server are followed: `/` then letters, digits and the path and query
/// characters of RFC 3986 (`-._~!$&'()*+,;=:@/?%`), never `//` or `/\\` at the start (a
/// browser reads both as another host). Anything else, including the tab, CR and LF that
/// browsers strip (`/\t/evil.example` would become `//evil.example`) and backslashes anywhere,
/// goes to `/`.
fn local_path(next: Option<&str>) -> &str {
    let safe = |c: char| c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=:@/?%".contains(c);
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && n.chars().all(safe) => n,
        _ => "/",
    }
}

pub async fn switch_language(ctx: Ctx, Form(f): Form<LangForm>) -> PageResult {
    let lang = Lang::parse(&f.lang).unwrap_or(Lang::En);
    // #15 polish: signed in, the switcher changes the account's language (which the console
    // follows and e-mails are written in); the cookie keeps it for the next sign-in page.
    if let Some(a) = &ctx.auth {
        let l = crate::domain::preferences::parse_language(lang.code())?;
        ctx.st
            .svc
            .set_language(&a.account, l, ctx.now, &ctx.meta.meta)
            .await?;
    }
    let mut r = see_other(local_path(f.next.as_deref()));
    // Remembered for a year.
    ctx.set_cookie(&mut r, LANG_COOKIE, Some(lang.code()), 365 * 24 * 3600);
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::local_path;

    #[test]
    fn only_local_paths_are_followed() {
        assert_eq!(local_path(Some("/security?x=1")), "/security?x=1");
        assert_eq!(
            local_path(Some("/audit?user=a%40b&kind=mfa.")),
            "/audit?user=a%40b&kind=mfa."
        );
        assert_eq!(local_path(Some("/")), "/");
        assert_eq!(local_path(None), "/");
        for evil in [
            "//evil.example/",
            "https://evil.example/",
            "/\\evil.example",
            "/\\/evil.example",
            "\\\\evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "/\r\n/evil.example",
            "/security\r\nSet-Cookie: x=1",
            "%2F%2Fevil.example",
            "/%0D%0ALocation:%20x\n",
            "javascript:alert(1)",
            " /security",
            "/security#x",
            "/\u{0}",
            "/\u{3000}/evil",
            "",
        ] {
            assert_eq!(local_path(Some(evil)), "/", "{evil:?}");
        }
        // Encoded slashes stay a path of this server: browsers do not decode them in Location.
        assert_eq!(
            local_path(Some("/%2F%2Fevil.example")),
            "/%2F%2Fevil.example"
        );
    }
}
