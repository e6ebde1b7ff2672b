//! The console side of the waiting period of alternative-factor recovery (docs/recovery.md,
//! "Waiting period"; #15 recovery): the page shown when a proof of email and phone has to wait,
//! and the cancel link's pages (`GET /recovery/cancel?token=…` shows a confirmation and changes
//! nothing; `POST /recovery/cancel` cancels).

use askama::Template;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::Form;
use serde::Deserialize;

use crate::clock::UnixTime;
use crate::domain::notify::utc;
use crate::domain::recovery_wait::CancelView;

use super::views::{render, Page};
use super::{Ctx, PageResult};

#[derive(Template)]
#[template(path = "recovery_wait.html")]
struct WaitView {
    p: Page,
    messages: Vec<String>,
    cancel_token: Option<String>,
}

/// The page after a proof of email and phone that has to wait (`started`: this proof started
/// the waiting period; otherwise it was running and is not over yet).
pub fn pending_page(ctx: &Ctx, ready_at: UnixTime, started: bool) -> PageResult {
    let ready = utc(ready_at);
    let first = if started {
        ctx.tr.tf("recovery_wait.started", &[("ready", &ready)])
    } else {
        ctx.tr.tf("recovery_wait.not_ready", &[("ready", &ready)])
    };
    let v = WaitView {
        p: Page::new(ctx, "recovery_wait.title", ""),
        messages: vec![
            first,
            ctx.tr.t("recovery_wait.come_back"),
            ctx.tr.t("recovery_wait.have_factor"),
        ],
        cancel_token: None,
    };
    Ok(render(&v, StatusCode::ACCEPTED))
}

/// Query and form of the cancel link.
#[derive(Deserialize)]
pub struct TokenForm {
    #[serde(default)]
    token: String,
}

fn invalid(ctx: &Ctx) -> PageResult {
    let v = WaitView {
        p: Page::new(ctx, "recovery_wait.cancel_title", ""),
        messages: vec![ctx.tr.t("recovery_wait.invalid")],
        cancel_token: None,
    };
    Ok(render(&v, StatusCode::NOT_FOUND))
}

/// `GET /recovery/cancel?token=…`: what would be cancelled, and the button. No state change, so
/// a mail scanner following the link cancels nothing.
pub async fn cancel_form(ctx: Ctx, Query(q): Query<TokenForm>) -> PageResult {
    match ctx.st.svc.recovery_cancel_view(&q.token).await? {
        CancelView::Pending { account, ready_at } => {
            let v = WaitView {
                p: Page::new(&ctx, "recovery_wait.cancel_title", ""),
                messages: vec![ctx.tr.tf(
                    "recovery_wait.cancel_intro",
                    &[("account", &account), ("ready", &utc(ready_at))],
                )],
                cancel_token: Some(q.token),
            };
            Ok(render(&v, StatusCode::OK))
        }
        CancelView::Invalid => invalid(&ctx),
    }
}

/// `POST /recovery/cancel`: cancels the pending recovery of the token (single use).
pub async fn cancel(ctx: Ctx, Form(f): Form<TokenForm>) -> PageResult {
    if !ctx
        .st
        .svc
        .cancel_recovery_by_token(&f.token, ctx.now, &ctx.meta.meta)
        .await?
    {
        return invalid(&ctx);
    }
    let v = WaitView {
        p: Page::new(&ctx, "recovery_wait.cancel_title", ""),
        messages: vec![ctx.tr.t("recovery_wait.cancelled")],
        cancel_token: None,
    };
    Ok(render(&v, StatusCode::OK))
}
