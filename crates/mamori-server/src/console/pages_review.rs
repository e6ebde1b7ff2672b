//! The Security review page (administrators): every deployment check with its result, the
//! accounts or settings at fault, and the action that fixes it. The checks are
//! `mamori_review::deployment`'s; titles and remedies are translated here by check id
//! (`review_checks.<ID>_title` / `_remedy` in both catalogs).

use axum::http::StatusCode;
use mamori_review::{Outcome, Severity};

use super::views::{render, Page, ReviewRow, ReviewView};
use super::{Ctx, PageResult};

pub async fn review(ctx: Ctx) -> PageResult {
    ctx.admin().await?;
    let review = ctx.st.svc.security_review(ctx.now).await?;
    let p = Page::new(&ctx, "review.title", "review");
    let rows = review
        .findings
        .iter()
        .map(|f| {
            let key = |part: &str| format!("review_checks.{}_{part}", f.id.replace('-', "_"));
            ReviewRow {
                id: f.id.to_string(),
                title: p.tr.t(&key("title")),
                severity: p.tr.t(match f.severity {
                    Severity::Low => "review.severity_low",
                    Severity::Medium => "review.severity_medium",
                    Severity::High => "review.severity_high",
                }),
                severity_class: match f.severity {
                    Severity::Low => "low",
                    Severity::Medium => "medium",
                    Severity::High => "high",
                },
                outcome: p.tr.t(match f.outcome {
                    Outcome::Pass => "review.pass",
                    Outcome::Fail => "review.fail",
                    Outcome::Undecidable => "review.undecidable",
                    Outcome::NotApplicable => "review.not_applicable",
                }),
                passed: f.outcome == Outcome::Pass,
                row_class: match f.outcome {
                    Outcome::Pass => "pass",
                    Outcome::Fail => "fail",
                    Outcome::Undecidable => "undecidable",
                    Outcome::NotApplicable => "not-applicable",
                },
                affected: f.affected.clone(),
                // A check that does not apply says why instead of what to fix.
                remedy: p.tr.t(&key(if f.outcome == Outcome::NotApplicable {
                    "not_applicable"
                } else {
                    "remedy"
                })),
                link: f.link.clone().filter(|l| !l.starts_with("/docs/")),
            }
        })
        .collect();
    let (pass, fail, undecided, not_applicable) = review.counts();
    let summary = p.tr.tf(
        "review.summary",
        &[
            ("pass", &pass.to_string()),
            ("fail", &fail.to_string()),
            ("undecided", &undecided.to_string()),
            ("not_applicable", &not_applicable.to_string()),
        ],
    );
    let v = ReviewView {
        p,
        rows,
        summary,
        high_failed: review.has_high_failure(),
    };
    Ok(render(&v, StatusCode::OK))
}
