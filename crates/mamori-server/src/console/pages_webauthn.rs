//! Security keys in the console (docs/security-keys.md): the "Add security key" page and "Use
//! security key" at the MFA step. `static/webauthn.js` posts each form's fields to a `begin`
//! route (JSON answer: the ceremony and the options for the browser's WebAuthn API), then submits
//! the form with the key's answer to the `finish` route. The rules live in
//! [`crate::domain::webauthn`]; these handlers translate forms and errors.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use rand::rngs::OsRng;
use serde::Deserialize;
use webauthn_rs::prelude::{PublicKeyCredential, RegisterPublicKeyCredential};

use crate::error::Error;
use crate::web::wire::{begun_wire, parse_credential};
use crate::web::AppState;

use super::pages_auth::{challenge_of, mfa_view};
use super::views::{render, Page};
use super::{error_text, is_form_error, see_other, Ctx, PageResult, CHALLENGE_COOKIE};

const SCRIPT: &str = include_str!("../../static/webauthn.js");

/// GET `/static/webauthn.js`.
pub async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        SCRIPT,
    )
        .into_response()
}

/// The "Add a security key" page.
#[derive(Template)]
#[template(path = "mfa_security_key.html")]
pub struct SecurityKeyView {
    /// Frame.
    pub p: Page,
    /// Device name.
    pub name: String,
    /// Error of the last attempt.
    pub error: Option<String>,
}

/// `?name=` from step 1 of the wizard.
#[derive(Deserialize)]
pub struct NameQuery {
    name: Option<String>,
}

fn page(ctx: &Ctx, name: String, error: Option<String>) -> SecurityKeyView {
    SecurityKeyView {
        p: Page::new(ctx, "security_key.title", "security"),
        name,
        error,
    }
}

/// The sentence for an error of a security-key ceremony.
fn key_error_text(ctx: &Ctx, e: &Error) -> Option<String> {
    match e {
        Error::SecurityKeyRejected => Some(ctx.tr.t("security_key.rejected")),
        Error::InvalidCeremony => Some(ctx.tr.t("security_key.expired")),
        Error::Forbidden(m) if m.contains("public URL") => Some(ctx.tr.t("security_key.no_domain")),
        Error::NotFound(_) => Some(ctx.tr.t("security_key.rejected")),
        Error::InvalidInput(m) if m.contains("credential") => Some(ctx.tr.t("security_key.failed")),
        e if is_form_error(e) => Some(error_text(&ctx.tr, e)),
        _ => None,
    }
}

/// A begin route's JSON error: `{"error": "<sentence>"}` (the script shows it).
fn json_error(ctx: &Ctx, e: Error) -> PageResult {
    match key_error_text(ctx, &e) {
        Some(text) => Ok((
            StatusCode::BAD_REQUEST,
            Json(serde_json::json!({ "error": text })),
        )
            .into_response()),
        None => Err(e.into()),
    }
}

/// GET `/security/mfa/security-key`.
pub async fn form(ctx: Ctx, Query(q): Query<NameQuery>) -> PageResult {
    ctx.signed_in()?;
    let v = page(&ctx, q.name.unwrap_or_default(), None);
    Ok(render(&v, StatusCode::OK))
}

/// The begin form of a registration.
#[derive(Deserialize)]
pub struct BeginForm {
    name: String,
}

/// POST `/security/mfa/security-key/begin` (from the script): JSON.
pub async fn register_begin(
    ctx: Ctx,
    State(st): State<AppState>,
    Form(f): Form<BeginForm>,
) -> PageResult {
    let auth = ctx.signed_in()?;
    let result = st
        .svc
        .webauthn_register_begin(
            &auth.account,
            &auth.session,
            f.name.trim(),
            ctx.req(),
            &mut OsRng,
        )
        .await;
    match result.map(begun_wire) {
        Ok(Ok(b)) => Ok(Json(b).into_response()),
        Ok(Err(e)) => Err(e.into()),
        Err(e) => json_error(&ctx, e),
    }
}

/// The finish form (filled by the script).
#[derive(Deserialize)]
pub struct FinishForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    ceremony: String,
    #[serde(default)]
    credential: String,
}

/// POST `/security/mfa/security-key/finish`.
pub async fn register_finish(
    ctx: Ctx,
    headers: axum::http::HeaderMap,
    State(st): State<AppState>,
    Form(f): Form<FinishForm>,
) -> PageResult {
    let auth = ctx.signed_in()?;
    let result = match serde_json::from_str(&f.credential)
        .map_err(|_| Error::InvalidInput("credential".into()))
        .and_then(parse_credential::<RegisterPublicKeyCredential>)
    {
        Ok(credential) => {
            st.svc
                .webauthn_register_finish(
                    &auth.account,
                    &auth.session,
                    &f.ceremony,
                    &credential,
                    ctx.req(),
                    &mut OsRng,
                )
                .await
        }
        Err(e) => Err(e),
    };
    let error = match result {
        Ok((_, proof)) => {
            let renewed = st
                .svc
                .upgrade_after_enrollment(auth, proof, ctx.now, &mut OsRng, &ctx.meta.meta)
                .await?;
            let mut r =
                super::after_enrollment(&headers, renewed.is_some(), "/security?done=key_added");
            if let Some(s) = renewed {
                ctx.set_session(&mut r, &s.token, s.record.expires_at - s.record.created_at);
            }
            return Ok(r);
        }
        Err(e) => match key_error_text(&ctx, &e) {
            Some(text) => text,
            None => return Err(e.into()),
        },
    };
    let v = page(&ctx, f.name.trim().to_string(), Some(error));
    Ok(render(&v, StatusCode::BAD_REQUEST))
}

/// POST `/sign-in/security-key/begin` (from the script): JSON, for the pending sign-in of the
/// challenge cookie.
pub async fn sign_in_begin(ctx: Ctx, State(st): State<AppState>, headers: HeaderMap) -> PageResult {
    let Some(challenge) = challenge_of(&headers) else {
        return json_error(&ctx, Error::InvalidCeremony);
    };
    if st.check_sign_in_rate(ctx.meta.ip).is_err() {
        return json_error(&ctx, Error::RateLimited { retry_after: 60 });
    }
    match st
        .svc
        .webauthn_sign_in_begin(&challenge, ctx.now, &mut OsRng)
        .await
        .map(begun_wire)
    {
        Ok(Ok(b)) => Ok(Json(b).into_response()),
        Ok(Err(e)) => Err(e.into()),
        Err(Error::InvalidChallenge) => json_error(&ctx, Error::InvalidCeremony),
        Err(e) => json_error(&ctx, e),
    }
}

/// POST `/sign-in/security-key/finish`.
pub async fn sign_in_finish(
    ctx: Ctx,
    State(st): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<FinishForm>,
) -> PageResult {
    let Some(challenge) = challenge_of(&headers) else {
        return Ok(see_other("/sign-in"));
    };
    let result = match st.check_sign_in_rate(ctx.meta.ip) {
        Err(_) => Err(Error::RateLimited { retry_after: 60 }),
        Ok(()) => match serde_json::from_str(&f.credential)
            .map_err(|_| Error::InvalidInput("credential".into()))
            .and_then(parse_credential::<PublicKeyCredential>)
        {
            Ok(credential) => {
                st.svc
                    .webauthn_sign_in_finish(
                        &challenge,
                        &f.ceremony,
                        &credential,
                        ctx.req(),
                        &mut OsRng,
                    )
                    .await
            }
            Err(e) => Err(e),
        },
    };
    match result {
        Ok((s, _)) => {
            let mut r = see_other("/");
            ctx.set_cookie(&mut r, CHALLENGE_COOKIE, None, 0);
            ctx.set_session(&mut r, &s.token, s.record.expires_at - s.record.created_at);
            Ok(r)
        }
        Err(e @ (Error::InvalidChallenge | Error::AccountLocked)) => {
            // The challenge is spent or expired, or the account locked: the error page, and the
            // cookie goes.
            let mut r = super::Fail::from(e).into_response();
            ctx.set_cookie(&mut r, CHALLENGE_COOKIE, None, 0);
            Ok(r)
        }
        Err(e) => {
            let Some(text) = key_error_text(&ctx, &e) else {
                return Err(e.into());
            };
            let (account, devices) = st.svc.challenge_devices(&challenge, ctx.now).await?;
            let v = mfa_view(&ctx, account.name, &devices, String::new(), Some(text));
            Ok(render(&v, StatusCode::UNAUTHORIZED))
        }
    }
}

/// POST `/security/verify/security-key/begin` (from the script): JSON, a step-up with a key
/// within the session.
pub async fn verify_begin(ctx: Ctx, State(st): State<AppState>) -> PageResult {
    let auth = ctx.full()?;
    if st.check_sign_in_rate(ctx.meta.ip).is_err() {
        return json_error(&ctx, Error::RateLimited { retry_after: 60 });
    }
    match st
        .svc
        .webauthn_verify_begin(&auth.account, &auth.session, ctx.now, &mut OsRng)
        .await
        .map(begun_wire)
    {
        Ok(Ok(b)) => Ok(Json(b).into_response()),
        Ok(Err(e)) => Err(e.into()),
        Err(e) => json_error(&ctx, e),
    }
}

/// The step-up finish form (filled by the script).
#[derive(Deserialize)]
pub struct VerifyForm {
    #[serde(default)]
    ceremony: String,
    #[serde(default)]
    credential: String,
    #[serde(default)]
    back: String,
}

/// Where a step-up returns to: a page of the security section, of the users' pages or of the
/// OpenID clients' page (an administrator's confirmation or registration form), or `/sso`
/// (forward authentication's step-up), else the overview.
fn back_to(back: &str) -> &str {
    // `/sso`: the forward-auth step-up page (#18), which goes on to the application.
    if back == "/sso" {
        return back;
    }
    let ok = (back.starts_with("/security/")
        || back.starts_with("/users/")
        || back == "/oidc-clients"
        || back.starts_with("/oidc-clients/"))
        && !back.contains("//")
        && back
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/-_.?=&".contains(&b));
    if ok {
        back
    } else {
        "/security"
    }
}

/// POST `/security/verify/security-key/finish`: records a fresh second factor, then back to the
/// page that asked (e.g. removing a device).
pub async fn verify_finish(
    ctx: Ctx,
    State(st): State<AppState>,
    Form(f): Form<VerifyForm>,
) -> PageResult {
    let auth = ctx.full()?;
    let result = match st.check_sign_in_rate(ctx.meta.ip) {
        Err(_) => Err(Error::RateLimited { retry_after: 60 }),
        Ok(()) => match serde_json::from_str(&f.credential)
            .map_err(|_| Error::InvalidInput("credential".into()))
            .and_then(parse_credential::<PublicKeyCredential>)
        {
            Ok(credential) => {
                st.svc
                    .webauthn_verify_finish(
                        &auth.account,
                        &auth.session,
                        &f.ceremony,
                        &credential,
                        ctx.now,
                        &ctx.meta.meta,
                    )
                    .await
            }
            Err(e) => Err(e),
        },
    };
    match result {
        // Forward authentication's step-up goes on to the application: by a refresh, not a
        // redirect (see `pages_forward::continue_to_sso`).
        Ok(()) if back_to(&f.back) == "/sso" => Ok(super::pages_forward::continue_to_sso(&ctx)),
        Ok(()) => Ok(see_other(back_to(&f.back))),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::back_to;

    #[test]
    fn a_step_up_returns_only_to_the_security_pages() {
        assert_eq!(
            back_to("/security/mfa/abc-1/remove"),
            "/security/mfa/abc-1/remove"
        );
        assert_eq!(
            back_to("/users/alice/devices/abc-1/deactivate"),
            "/users/alice/devices/abc-1/deactivate"
        );
        assert_eq!(back_to("/oidc-clients"), "/oidc-clients");
        assert_eq!(
            back_to("/oidc-clients/wiki/secret"),
            "/oidc-clients/wiki/secret"
        );
        assert_eq!(back_to("/sso"), "/sso");
        assert_eq!(back_to("/sso?rd=https://evil.example/"), "/security");
        for bad in [
            "https://evil.example/",
            "//evil.example/security/",
            "/security//evil",
            "/app-keys",
            "/oidc-clients.evil",
            "/security/\"><script>",
            "",
        ] {
            assert_eq!(back_to(bad), "/security", "{bad}");
        }
    }
}
