//! The "Assign MFA device" wizard's hardware token page: the serial number printed on the token
//! and two consecutive codes (docs/security-keys.md). The rules live in
//! [`crate::domain::tokens`]; this page only translates the form and the errors.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Form;
use rand::rngs::OsRng;
use serde::Deserialize;

use crate::domain::tokens::TokenAssignment;
use crate::error::Error;
use crate::web::AppState;

use super::views::{render, Page};
use super::{error_text, is_form_error, Ctx, PageResult};

/// The hardware token form.
#[derive(Template)]
#[template(path = "mfa_hardware.html")]
pub struct MfaHardwareView {
    /// Frame.
    pub p: Page,
    /// Device name chosen in step 1.
    pub name: String,
    /// Serial typed so far.
    pub serial: String,
    /// Error of the last attempt.
    pub error: Option<String>,
}

/// `?name=` from step 1.
#[derive(Deserialize)]
pub struct NameQuery {
    name: Option<String>,
}

/// GET `/security/mfa/hardware`.
pub async fn form(ctx: Ctx, Query(q): Query<NameQuery>) -> PageResult {
    ctx.signed_in()?;
    let v = MfaHardwareView {
        p: Page::new(&ctx, "hardware.title", "security"),
        name: q.name.unwrap_or_default(),
        serial: String::new(),
        error: None,
    };
    Ok(render(&v, StatusCode::OK))
}

/// The submitted form.
#[derive(Deserialize)]
pub struct AssignForm {
    name: String,
    serial: String,
    code1: String,
    code2: String,
}

fn digits(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

/// POST `/security/mfa/hardware`.
pub async fn assign(
    ctx: Ctx,
    headers: axum::http::HeaderMap,
    State(st): State<AppState>,
    Form(f): Form<AssignForm>,
) -> PageResult {
    let auth = ctx.signed_in()?;
    let name = f.name.trim().to_string();
    let serial = f.serial.trim().to_string();
    let result = st
        .svc
        .assign_token(
            auth,
            None,
            TokenAssignment {
                serial: &serial,
                name: &name,
                code1: &digits(&f.code1),
                code2: &digits(&f.code2),
            },
            ctx.req(),
            &mut OsRng,
        )
        .await;
    let error = match result {
        Ok((_, proof)) => {
            let renewed = match proof {
                Some(proof) => {
                    st.svc
                        .upgrade_after_enrollment(auth, proof, ctx.now, &mut OsRng, &ctx.meta.meta)
                        .await?
                }
                None => None,
            };
            let mut r =
                super::after_enrollment(&headers, renewed.is_some(), "/security?done=mfa_assigned");
            if let Some(s) = renewed {
                ctx.set_session(&mut r, &s.token, s.record.expires_at - s.record.created_at);
            }
            return Ok(r);
        }
        // An unknown serial and a token held by someone else read the same, so that the form
        // does not tell which serials exist.
        Err(Error::NotFound(_)) => ctx.tr.t("hardware.unknown_serial"),
        Err(Error::Conflict(m)) if m.contains("token") => ctx.tr.t("hardware.unknown_serial"),
        Err(e) if is_form_error(&e) => error_text(&ctx.tr, &e),
        Err(e) => return Err(e.into()),
    };
    let v = MfaHardwareView {
        p: Page::new(&ctx, "hardware.title", "security"),
        name,
        serial,
        error: Some(error),
    };
    Ok(render(&v, StatusCode::BAD_REQUEST))
}
