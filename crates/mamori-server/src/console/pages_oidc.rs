//! The browser side of the OpenID provider (#17, docs/oidc.md): the authorization endpoint,
//! the consent page and RP-initiated logout. They use the console session (single sign-on
//! across clients) and its sign-in; every decision is the domain's (`domain/oidc.rs`).
//!
//! - `GET|POST /oidc/authorize`: a request whose client or redirect URI is not registered
//!   gets an error page and is never redirected; without a (good enough) session, the
//!   request is kept in a short-lived cookie and the browser signs in, after which the
//!   dashboard sends it back here (`returning`); then the consent page (clients not marked
//!   trusted) or the redirect with `code`, `state` and `iss`.
//! - `POST /oidc/consent`: the account's answer (CSRF-checked like every console form).
//! - `GET /oidc/logout` asks, `POST /oidc/logout` ends the console session and goes to a
//!   registered post-logout URI of the client, or to the sign-in page.

use askama::Template;
use axum::extract::RawQuery;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::Form;
use rand::rngs::OsRng;
use serde::Deserialize;

use crate::domain::oidc::{AuthorizeParams, AuthorizeRefusal, AuthorizeStep};

use super::views::{render, scope_text, Page};
use super::{read_cookie, see_other, Ctx, PageResult};

/// The cookie that keeps an authorization request during a sign-in.
pub const RETURN_COOKIE: &str = "mamori_oidc";
/// How long a sign-in may take before the request is forgotten.
const RETURN_SECS: i64 = 10 * 60;
/// Where the request is resumed.
const AUTHORIZE_PATH: &str = "/oidc/authorize";
/// The one console POST without a CSRF token (see [`authorize_post`]).
pub const AUTHORIZE_POST: &str = AUTHORIZE_PATH;

#[derive(Template)]
#[template(path = "oidc.html")]
struct OidcView {
    p: Page,
    messages: Vec<String>,
    /// Consent: the client's name and the scopes' descriptions.
    consent: Option<ConsentView>,
    /// Logout confirmation: the query to post back.
    logout: Option<String>,
}

struct ConsentView {
    intro: String,
    scopes: Vec<String>,
    request: String,
}

/// Whether a sign-in is on its way back to an authorization request (the dashboard's check).
pub fn returning(headers: &HeaderMap) -> Option<String> {
    let v = read_cookie(headers, RETURN_COOKIE).filter(|v| !v.is_empty())?;
    let q = percent_encoding::percent_decode_str(&v)
        .decode_utf8()
        .ok()?;
    // Only ever our own path with a query we wrote (AuthorizeParams::to_query).
    AuthorizeParams::from_query(&q)?;
    Some(format!("{AUTHORIZE_PATH}?{q}"))
}

fn return_cookie(ctx: &Ctx, query: &str, max_age: i64) -> Option<HeaderValue> {
    let v: String =
        percent_encoding::utf8_percent_encode(query, percent_encoding::NON_ALPHANUMERIC).collect();
    let sec = if ctx.secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{RETURN_COOKIE}={v}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{sec}"
    ))
    .ok()
}

fn error_page(ctx: &Ctx, detail: &str) -> Response {
    let v = OidcView {
        p: Page::new(ctx, "oidc.error_title", ""),
        messages: vec![ctx.tr.t("oidc.error_intro"), detail.to_string()],
        consent: None,
        logout: None,
    };
    render(&v, StatusCode::BAD_REQUEST)
}

/// How a step's redirect to the client is given: a redirect for a request the client sent, a
/// page that refreshes onward after the console's own consent form (the CSP's `form-action
/// 'self'` would stop a redirect chain leaving the origin, see `pages_forward::continue_to`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum After {
    Request,
    Form,
}

/// The client's address of a step: a redirect, or after a form a page that refreshes to it.
fn onward(ctx: &Ctx, to: &str, after: After) -> Response {
    match after {
        After::Request => see_other(to),
        After::Form => super::pages_forward::continue_to(ctx, to, "oidc.continue_intro"),
    }
}

/// The answer to one step: redirects clear the kept request.
fn step_response(
    ctx: &Ctx,
    step: AuthorizeStep,
    params: &AuthorizeParams,
    after: After,
) -> PageResult {
    match step {
        AuthorizeStep::Redirect(to) => {
            let mut r = onward(ctx, &to, after);
            if let Some(c) = return_cookie(ctx, "", 0) {
                r.headers_mut().append(header::SET_COOKIE, c);
            }
            Ok(r)
        }
        AuthorizeStep::SignIn { fresh } => {
            let mut r = see_other("/sign-in");
            if let Some(c) = return_cookie(ctx, &params.to_query(fresh), RETURN_SECS) {
                r.headers_mut().append(header::SET_COOKIE, c);
            }
            Ok(r)
        }
        AuthorizeStep::Consent { .. } => Err(super::Fail::Domain(crate::Error::Internal(
            "consent is rendered by its caller".into(),
        ))),
    }
}

/// Whether the browser says this request comes from another site's page
/// (`Sec-Fetch-Site: cross-site`, Fetch Metadata Request Headers).
fn from_another_site(headers: &HeaderMap) -> bool {
    headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"cross-site")
}

/// The console's session cookie is `SameSite=Strict`, so a browser sent here by a client on
/// another site (a redirect or a link from the application) does not send it: the request
/// looks signed out although the browser is signed in, and single sign-on would ask for the
/// password again. Such a request without a session is answered by a page of ours that
/// refreshes to the same address; that navigation starts on this origin, so the browser sends
/// the cookie. It changes nothing by itself and cannot loop: the second request is not
/// cross-site. Browsers without Fetch Metadata, and clients that are not browsers, go on
/// as before.
fn same_site_again(ctx: &Ctx, headers: &HeaderMap, to: &str) -> Option<Response> {
    (ctx.auth.is_none() && from_another_site(headers))
        .then(|| super::pages_forward::continue_to(ctx, to, "oidc.continue_intro"))
}

async fn authorize_params(
    ctx: Ctx,
    headers: &HeaderMap,
    params: Option<AuthorizeParams>,
) -> PageResult {
    let Some(params) = params else {
        return Ok(error_page(&ctx, "a parameter was sent more than once"));
    };
    let req = match ctx.st.svc.oidc_check_authorize(&params).await {
        Ok(r) => r,
        Err(AuthorizeRefusal::ErrorPage(why)) => return Ok(error_page(&ctx, &why)),
        Err(AuthorizeRefusal::Redirect(to)) => return Ok(see_other(&to)),
    };
    // Only a request that is good so far comes back (a bad one gets its answer at once).
    if let Some(r) = same_site_again(
        &ctx,
        headers,
        &format!("{AUTHORIZE_PATH}?{}", params.to_query(false)),
    ) {
        return Ok(r);
    }
    let auth = ctx.auth.as_ref();
    let step = ctx
        .st
        .svc
        .oidc_authorize(&req, auth, ctx.now, &ctx.meta.meta, &mut OsRng)
        .await?;
    match step {
        AuthorizeStep::SignIn { fresh } => {
            if let Some(a) = auth {
                if fresh || a.session.state != crate::store::SessionState::Full {
                    // A fresh sign-in (prompt=login, max_age, a stronger factor) ends this
                    // session first; an enrollment-only session goes to the dashboard, which
                    // leads it through enrollment and then back here.
                    if fresh {
                        ctx.st.svc.sign_out(a, ctx.now, &ctx.meta.meta).await?;
                    }
                    let mut r = step_response(
                        &ctx,
                        AuthorizeStep::SignIn { fresh },
                        &params,
                        After::Request,
                    )?;
                    if fresh {
                        ctx.set_cookie(&mut r, crate::web::SESSION_COOKIE, None, 0);
                    } else {
                        r.headers_mut()
                            .insert(header::LOCATION, HeaderValue::from_static("/"));
                    }
                    return Ok(r);
                }
            }
            step_response(
                &ctx,
                AuthorizeStep::SignIn { fresh },
                &params,
                After::Request,
            )
        }
        AuthorizeStep::Consent { scopes } => {
            let v = OidcView {
                p: Page::new(&ctx, "oidc.consent_title", ""),
                messages: vec![],
                consent: Some(ConsentView {
                    intro: ctx
                        .tr
                        .tf("oidc.consent_intro", &[("client", &req.client.name)]),
                    scopes: scopes.iter().map(|s| scope_text(&ctx, s)).collect(),
                    request: params.to_query(false),
                }),
                logout: None,
            };
            Ok(render(&v, StatusCode::OK))
        }
        step => step_response(&ctx, step, &params, After::Request),
    }
}

/// `GET /oidc/authorize`.
pub async fn authorize(ctx: Ctx, headers: HeaderMap, RawQuery(q): RawQuery) -> PageResult {
    let params = AuthorizeParams::from_query(q.as_deref().unwrap_or(""));
    authorize_params(ctx, &headers, params).await
}

/// `POST /oidc/authorize` (OpenID Connect Core §3.1.2.1: the same request as a form). Sent
/// by the client's page from another site, so it carries no CSRF token (`console_layer`
/// exempts this path; the request changes nothing the GET could not).
pub async fn authorize_post(ctx: Ctx, headers: HeaderMap, body: String) -> PageResult {
    if super::form_has_control(body.as_bytes()) {
        return Ok(error_page(&ctx, "the request contains control characters"));
    }
    let params = AuthorizeParams::from_query(&body);
    authorize_params(ctx, &headers, params).await
}

/// The consent form.
#[derive(Deserialize)]
pub struct ConsentForm {
    request: String,
    decision: String,
}

/// `POST /oidc/consent`.
pub async fn consent(ctx: Ctx, Form(f): Form<ConsentForm>) -> PageResult {
    let auth = ctx.full()?;
    let Some(params) = AuthorizeParams::from_query(&f.request) else {
        return Ok(error_page(&ctx, "a parameter was sent more than once"));
    };
    let req = match ctx.st.svc.oidc_check_authorize(&params).await {
        Ok(r) => r,
        Err(AuthorizeRefusal::ErrorPage(why)) => return Ok(error_page(&ctx, &why)),
        Err(AuthorizeRefusal::Redirect(to)) => return Ok(onward(&ctx, &to, After::Form)),
    };
    let step = ctx
        .st
        .svc
        .oidc_consent(
            &req,
            auth,
            f.decision == "allow",
            ctx.now,
            &ctx.meta.meta,
            &mut OsRng,
        )
        .await?;
    step_response(&ctx, step, &params, After::Form)
}

/// The logout request (query or form).
#[derive(Deserialize, Default)]
pub struct LogoutQuery {
    id_token_hint: Option<String>,
    client_id: Option<String>,
    post_logout_redirect_uri: Option<String>,
    state: Option<String>,
}

fn logout_query(q: &LogoutQuery) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in [
        ("id_token_hint", &q.id_token_hint),
        ("client_id", &q.client_id),
        ("post_logout_redirect_uri", &q.post_logout_redirect_uri),
        ("state", &q.state),
    ] {
        if let Some(v) = v {
            s.append_pair(k, v);
        }
    }
    s.finish()
}

/// `GET /oidc/logout`: asks before ending the session (RP-Initiated Logout 1.0 §3: the OP
/// should confirm, or a link on any site could sign people out); without a session, goes
/// straight on.
pub async fn logout_form(
    ctx: Ctx,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<LogoutQuery>,
) -> PageResult {
    // Without this, a client's logout link would find no session (the cookie is not sent
    // from another site), clear the cookie and leave the session itself alive.
    if let Some(r) = same_site_again(
        &ctx,
        &headers,
        &format!("/oidc/logout?{}", logout_query(&q)),
    ) {
        return Ok(r);
    }
    if ctx.auth.is_none() {
        return logout_finish(&ctx, &q).await;
    }
    let v = OidcView {
        p: Page::new(&ctx, "oidc.logout_title", ""),
        messages: vec![ctx.tr.t("oidc.logout_intro")],
        consent: None,
        logout: Some(logout_query(&q)),
    };
    Ok(render(&v, StatusCode::OK))
}

/// The confirmation form.
#[derive(Deserialize)]
pub struct LogoutForm {
    request: String,
}

/// `POST /oidc/logout`.
pub async fn logout(ctx: Ctx, Form(f): Form<LogoutForm>) -> PageResult {
    let q: LogoutQuery = serde_urlencoded_like(&f.request);
    if let Some(a) = &ctx.auth {
        ctx.st
            .svc
            .oidc_logout(a, q.client_id.as_deref(), ctx.now, &ctx.meta.meta)
            .await?;
    }
    logout_finish(&ctx, &q).await
}

fn serde_urlencoded_like(s: &str) -> LogoutQuery {
    let mut q = LogoutQuery::default();
    for (k, v) in url::form_urlencoded::parse(s.as_bytes()) {
        let v = Some(v.into_owned());
        match k.as_ref() {
            "id_token_hint" => q.id_token_hint = v,
            "client_id" => q.client_id = v,
            "post_logout_redirect_uri" => q.post_logout_redirect_uri = v,
            "state" => q.state = v,
            _ => {}
        }
    }
    q
}

async fn logout_finish(ctx: &Ctx, q: &LogoutQuery) -> PageResult {
    let target = ctx
        .st
        .svc
        .oidc_logout_target(
            q.client_id.as_deref(),
            q.id_token_hint.as_deref(),
            q.post_logout_redirect_uri.as_deref(),
            q.state.as_deref(),
        )
        .await?;
    // The client's address after the confirmation form: by a refresh (`After::Form`).
    let mut r = match target.as_deref() {
        Some(to) => super::pages_forward::continue_to(ctx, to, "oidc.continue_signed_out"),
        None => see_other("/sign-in?done=signed_out"),
    };
    ctx.set_cookie(&mut r, crate::web::SESSION_COOKIE, None, 0);
    super::pages_forward::clear_cookies(ctx, &mut r);
    Ok(r)
}
