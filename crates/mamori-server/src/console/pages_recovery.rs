//! Recovery codes in the console (docs/recovery.md): the page under My security credentials
//! (how many remain, the alert at two or fewer, making a new set), the page that shows a new
//! set once (copy, download as text, print), and signing in with a recovery code from
//! Troubleshoot MFA.

use askama::Template;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use rand::rngs::OsRng;
use serde::Deserialize;

use crate::domain::recovery::RecoveryCode;
use crate::domain::RECENT_FACTOR_SECS;
use crate::error::Error;
use crate::web::AppState;

use super::views::{render, Page};
use super::{error_text, is_form_error, see_other, Ctx, Fail, PageResult, CHALLENGE_COOKIE};

const SCRIPT: &str = include_str!("../../static/recovery.js");
const PRINT_CSS: &str = include_str!("../../static/recovery-print.css");

#[derive(Template)]
#[template(path = "recovery_codes.html")]
struct CodesView {
    p: Page,
    status_text: String,
    low: bool,
    none: bool,
    has_device: bool,
    need_code: bool,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "recovery_codes_new.html")]
struct NewCodesView {
    p: Page,
    codes: Vec<String>,
    download_href: String,
}

#[derive(Template)]
#[template(path = "recovery_sign_in.html")]
struct SignInView {
    p: Page,
    error: Option<String>,
}

async fn codes_view(ctx: &Ctx, error: Option<String>) -> Result<CodesView, Fail> {
    let auth = ctx.full()?;
    let s = ctx.st.svc.recovery_status(&auth.account).await?;
    let tr = ctx.tr;
    let recent = auth
        .session
        .second_factor_at
        .is_some_and(|t| ctx.now.saturating_sub(t) <= RECENT_FACTOR_SECS);
    Ok(CodesView {
        p: Page::new(ctx, "recovery.title", "security"),
        status_text: tr.tf(
            "recovery.remaining",
            &[
                ("remaining", &s.remaining.to_string()),
                ("total", &s.total.to_string()),
            ],
        ),
        low: s.low(),
        none: s.total == 0,
        has_device: auth.enabled_devices > 0,
        need_code: !recent,
        error,
    })
}

pub async fn codes_page(ctx: Ctx) -> PageResult {
    let v = codes_view(&ctx, None).await?;
    Ok(render(&v, StatusCode::OK))
}

/// The form that makes a new set.
#[derive(Deserialize)]
pub struct GenerateForm {
    code: Option<String>,
}

/// Percent-encodes text for a `data:` URL.
fn data_url_text(text: &str) -> String {
    // Every byte but letters, digits and '-' is escaped (RFC 3986 section 2.1).
    const KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC.remove(b'-');
    format!(
        "data:text/plain;charset=utf-8,{}",
        percent_encoding::utf8_percent_encode(text, KEEP)
    )
}

pub async fn generate(ctx: Ctx, Form(f): Form<GenerateForm>) -> PageResult {
    let mut auth = ctx.full()?.clone();
    let code: String = f
        .code
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let result = async {
        if !code.is_empty() {
            ctx.st
                .svc
                .verify_in_session(&auth, &code, None, ctx.now, &ctx.meta.meta)
                .await?;
            auth.session.second_factor_at = Some(ctx.now);
        }
        ctx.st
            .svc
            .generate_recovery_codes(&auth, ctx.now, &mut OsRng, &ctx.meta.meta)
            .await
    }
    .await;
    match result {
        Ok(set) => {
            let codes: Vec<String> = set.codes.iter().map(|c| c.to_string()).collect();
            let mut text = ctx.tr.tf(
                "recovery.file_header",
                &[
                    ("user", &auth.account.name),
                    ("service", &ctx.st.svc.policy().service_name),
                ],
            );
            text.push_str("\n\n");
            for c in &codes {
                text.push_str(c);
                text.push('\n');
            }
            let v = NewCodesView {
                p: Page::new(&ctx, "recovery.new_title", "security"),
                download_href: data_url_text(&text),
                codes,
            };
            Ok(render(&v, StatusCode::OK))
        }
        Err(e) if is_form_error(&e) || matches!(e, Error::InvalidDeviceState(_)) => {
            let v = codes_view(&ctx, Some(error_text(&ctx.tr, &e))).await?;
            Ok(render(&v, StatusCode::BAD_REQUEST))
        }
        Err(e) => Err(e.into()),
    }
}

fn challenge_of(headers: &axum::http::HeaderMap) -> Option<String> {
    super::read_cookie(headers, CHALLENGE_COOKIE).filter(|c| !c.is_empty())
}

pub async fn sign_in_form(ctx: Ctx, headers: axum::http::HeaderMap) -> PageResult {
    if challenge_of(&headers).is_none() {
        return Ok(see_other("/sign-in"));
    }
    let v = SignInView {
        p: Page::new(&ctx, "recovery.sign_in_title", ""),
        error: None,
    };
    Ok(render(&v, StatusCode::OK))
}

/// The recovery-code form.
#[derive(Deserialize)]
pub struct SignInForm {
    code: String,
}

pub async fn sign_in(
    ctx: Ctx,
    State(st): State<AppState>,
    headers: axum::http::HeaderMap,
    Form(f): Form<SignInForm>,
) -> PageResult {
    let Some(challenge) = challenge_of(&headers) else {
        return Ok(see_other("/sign-in"));
    };
    let result = if RecoveryCode::parse(&f.code).is_none() {
        Err(Error::InvalidInput(ctx.tr.t("recovery.bad_format")))
    } else if st.check_sign_in_rate(ctx.meta.ip).is_err() {
        Err(Error::RateLimited { retry_after: 60 })
    } else {
        st.svc
            .sign_in_mfa(
                &challenge,
                &f.code,
                None,
                ctx.now,
                &mut OsRng,
                &ctx.meta.meta,
            )
            .await
    };
    match result {
        Ok((s, _)) => {
            let mut r = see_other("/security/recovery-codes");
            ctx.set_cookie(&mut r, CHALLENGE_COOKIE, None, 0);
            ctx.set_session(&mut r, &s.token, s.record.expires_at - s.record.created_at);
            Ok(r)
        }
        Err(e) if is_form_error(&e) => {
            let v = SignInView {
                p: Page::new(&ctx, "recovery.sign_in_title", ""),
                error: Some(match &e {
                    Error::InvalidInput(m) => m.clone(),
                    _ => error_text(&ctx.tr, &e),
                }),
            };
            Ok(render(&v, StatusCode::UNAUTHORIZED))
        }
        Err(e) => {
            let mut r = Fail::from(e).into_response();
            ctx.set_cookie(&mut r, CHALLENGE_COOKIE, None, 0);
            Ok(r)
        }
    }
}

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

pub async fn print_css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        PRINT_CSS,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn download_text_is_percent_encoded() {
        assert_eq!(
            data_url_text("AB-12\nx y"),
            "data:text/plain;charset=utf-8,AB-12%0Ax%20y"
        );
    }
}
