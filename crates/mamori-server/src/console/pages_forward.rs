//! `/sso` (issue #18, docs/forward-auth.md): where the forward-auth endpoint sends a browser
//! that is not signed in for a protected application. With a safe return address (`rd`, on a
//! protected domain: `Rules::safe_return_url`):
//!
//! - not signed in: the address is kept in a short-lived cookie and the browser goes to the
//!   normal sign-in (password, then a code, a security key or recovery, in either language);
//!   every sign-in ends on the dashboard, which sends it back here;
//! - signed in with a full session: the session's forward-auth token is issued in the
//!   single-sign-on cookie (scoped to `[forward_auth] cookie_domain`, `HttpOnly`,
//!   `SameSite=Lax`, `Secure` when the application is https) and the browser goes back;
//! - signed in, but the rule asks for a fresher or a phishing-resistant second factor: an
//!   account with a security key confirms with it on a page here, in the same session, and
//!   comes back to `/sso`; otherwise the session ends and the browser signs in again (a
//!   sign-in is the console's step-up for every kind of factor), unless that cannot help: an
//!   account without any second factor, or one that has just given a code for a rule that
//!   wants a key, is refused (403) with what to do.
//!
//! Anything else is refused without a redirect (no open redirect).

use axum::extract::Query;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use rand::rngs::OsRng;
use serde::Deserialize;

use crate::domain::forward_auth::{Decision, Target};
use crate::store::{DeviceKind, SessionState};
use crate::web::FORWARD_COOKIE;
use crate::Error;

use super::views::{render, ContinueView, Page, SsoStepUpView};
use super::{read_cookie, see_other, Ctx, Fail, PageResult};

/// The cookie that keeps the return address during a sign-in.
pub const RETURN_COOKIE: &str = "mamori_rd";
/// How long a sign-in may take before the return address is forgotten.
const RETURN_SECS: i64 = 10 * 60;
/// A second factor this recent is not asked again: the rule wants a kind the account did not
/// use (a security key), and signing in again would loop.
const JUST_GIVEN_SECS: i64 = 60;

/// `?rd=`.
#[derive(Deserialize)]
pub struct SsoQuery {
    rd: Option<String>,
}

/// A `Set-Cookie` value of the single-sign-on or return cookie: `Lax`, because the browser
/// arrives here from another host (the protected application) by a top-level navigation.
fn lax_cookie(
    name: &str,
    value: &str,
    max_age: i64,
    domain: Option<&str>,
    secure: bool,
) -> Option<HeaderValue> {
    let domain = domain.map(|d| format!("; Domain={d}")).unwrap_or_default();
    let sec = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{domain}{sec}"
    ))
    .ok()
}

/// Clears the single-sign-on and return cookies (sign-out).
pub fn clear_cookies(ctx: &Ctx, resp: &mut Response) {
    let domain = ctx
        .st
        .svc
        .forward_rules()
        .cookie_domain()
        .map(str::to_string);
    for c in [
        lax_cookie(FORWARD_COOKIE, "", 0, domain.as_deref(), false),
        lax_cookie(RETURN_COOKIE, "", 0, None, false),
    ]
    .into_iter()
    .flatten()
    {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
}

/// Sends the browser on to `to` with a page that refreshes to it ([`ContinueView`]) rather
/// than a redirect: the end of every form (sign-in, a key step-up, consent, logout) whose
/// journey goes on to another site. `intro` is the catalog key of what happened.
pub fn continue_to(ctx: &Ctx, to: &str, intro: &str) -> Response {
    let p = Page::new(ctx, "sso.continue_title", "");
    let intro = p.tr.t(intro);
    render(
        &ContinueView {
            p,
            to: to.to_string(),
            intro,
        },
        StatusCode::OK,
    )
}

/// [`continue_to`] `/sso`, after a sign-in or a step-up.
pub fn continue_to_sso(ctx: &Ctx) -> Response {
    continue_to(ctx, "/sso", "sso.continue_intro")
}

/// Whether a sign-in is on its way back to a protected application (the dashboard's check).
pub fn returning(headers: &HeaderMap) -> bool {
    read_cookie(headers, RETURN_COOKIE).is_some_and(|v| !v.is_empty())
}

/// GET `/sso?rd=URL`.
pub async fn sso(ctx: Ctx, headers: HeaderMap, Query(q): Query<SsoQuery>) -> PageResult {
    let rules = ctx.st.svc.forward_rules();
    let raw = q.rd.or_else(|| {
        read_cookie(&headers, RETURN_COOKIE).and_then(|v| {
            percent_encoding::percent_decode_str(&v)
                .decode_utf8()
                .ok()
                .map(|s| s.into_owned())
        })
    });
    let Some(url) = raw.as_deref().and_then(|r| rules.safe_return_url(r)) else {
        return Err(Fail::Domain(Error::InvalidInput(
            "the return address is not on a protected domain".into(),
        )));
    };
    let secure_app = url.starts_with("https://");
    let remember = |mut r: Response| {
        let v: String =
            percent_encoding::utf8_percent_encode(&url, percent_encoding::NON_ALPHANUMERIC)
                .collect();
        if let Some(c) = lax_cookie(RETURN_COOKIE, &v, RETURN_SECS, None, ctx.secure) {
            r.headers_mut().append(header::SET_COOKIE, c);
        }
        r
    };
    let Some(auth) = ctx
        .auth
        .as_ref()
        .filter(|a| a.session.state == SessionState::Full)
    else {
        return Ok(remember(see_other("/sign-in")));
    };
    let target = Target::parse(&url, "GET")?;
    let who = ctx.st.svc.forward_session_of(auth.clone()).await?;
    let decision = ctx
        .st
        .svc
        .forward_decide(&target, Some(&who), ctx.now, &ctx.meta.meta)
        .await?;
    let has_key = matches!(decision, Decision::StepUp { .. })
        && ctx
            .st
            .svc
            .enabled_devices(&auth.account)
            .await?
            .iter()
            .any(|d| d.kind == DeviceKind::SecurityKey);
    match decision {
        Decision::Deny { .. } => Err(Fail::Domain(Error::Forbidden(
            "the access rules do not let this account in".into(),
        ))),
        // An account without a second factor (require_mfa = "root") cannot step up by
        // signing in again: that would loop. It must assign a device first.
        Decision::StepUp { .. } if auth.session.second_factor_at.is_none() => {
            Err(Fail::Domain(Error::Forbidden(
                "this application asks for a second factor: assign an MFA device under My \
                 security credentials first"
                    .into(),
            )))
        }
        // With a security key, the step-up happens here, in the session: the key satisfies
        // every rule (fresh, and phishing-resistant), and back on /sso the rule lets it in.
        Decision::StepUp { .. } if has_key => {
            let host = target.host.clone();
            let p = Page::new(&ctx, "sso.step_up_title", "");
            let intro = p.tr.tf("sso.step_up_intro", &[("host", &host)]);
            Ok(remember(render(
                &SsoStepUpView { p, intro },
                StatusCode::OK,
            )))
        }
        Decision::StepUp { .. }
            if auth
                .session
                .second_factor_at
                .is_some_and(|t| ctx.now.saturating_sub(t) < JUST_GIVEN_SECS) =>
        {
            Err(Fail::Domain(Error::Forbidden(
                "this application asks for a security key or passkey as the second factor: \
                 register one under My security credentials"
                    .into(),
            )))
        }
        Decision::StepUp { .. } => {
            ctx.st.svc.sign_out(auth, ctx.now, &ctx.meta.meta).await?;
            let mut r = remember(see_other("/sign-in"));
            ctx.set_cookie(&mut r, crate::web::SESSION_COOKIE, None, 0);
            Ok(r)
        }
        Decision::Allow { .. } | Decision::SignIn => {
            let token = ctx
                .st
                .svc
                .issue_forward_token(auth, &target.host, ctx.now, &ctx.meta.meta, &mut OsRng)
                .await?;
            let max_age = auth.session.expires_at.saturating_sub(ctx.now).max(0);
            let mut r = see_other(&url);
            if let Some(c) = lax_cookie(
                FORWARD_COOKIE,
                &token,
                max_age,
                rules.cookie_domain(),
                secure_app,
            ) {
                r.headers_mut().append(header::SET_COOKIE, c);
            }
            if let Some(c) = lax_cookie(RETURN_COOKIE, "", 0, None, ctx.secure) {
                r.headers_mut().append(header::SET_COOKIE, c);
            }
            Ok(r)
        }
    }
}
