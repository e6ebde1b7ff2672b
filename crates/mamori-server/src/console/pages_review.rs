//! The Security review page (administrators): every deployment check with its result, the
//! accounts or settings at fault, and the action that fixes it. The checks are
//! `mamori_review::deployment`'s; titles and remedies are translated here by check id
//! (`review_checks.<ID>_title` / `_remedy` in both catalogs).

use axum::http::StatusCode;
use mamori_review::{Outcome, Severity};

use super::i18n::Tr;
use super::views::{render, Page, ReviewRow, ReviewView};
use super::{Ctx, PageResult};

/// #15 polish: the order rows are shown in: failures first, the most severe first, then the
/// undecidable checks, then the passed ones (the review's own order within each group).
fn rank(f: &mamori_review::Finding) -> (u8, u8) {
    let outcome = match f.outcome {
        Outcome::Fail => 0,
        Outcome::Undecidable => 1,
        Outcome::Pass => 2,
        // Checks that do not apply to this deployment come last.
        Outcome::NotApplicable => 3,
    };
    let severity = match f.severity {
        Severity::High => 0,
        Severity::Medium => 1,
        Severity::Low => 2,
    };
    (outcome, severity)
}

/// #15 polish: one "affected" line of `mamori_review::deployment` in the page's language. The
/// review crate writes them in English for scripts and the admin command line; each of its
/// shapes has a `review_details.*` entry in both catalogs. Setting lines such as
/// `password.min_length = 12` are configuration syntax and stay as they are; an unknown shape
/// is shown unchanged rather than guessed at.
pub fn translate_detail(tr: &Tr, s: &str) -> String {
    let fixed = [
        (
            "session cookies are sent without Secure",
            "review_details.insecure_cookies",
        ),
        (
            "phone.provider = \"log\" writes codes into the server log",
            "review_details.phone_log",
        ),
        ("the audit log is empty", "review_details.audit_empty"),
        (
            "email delivery is not configured (smtp.host)",
            "review_details.email_delivery_missing",
        ),
        (
            "phone delivery is not configured (phone.provider)",
            "review_details.phone_delivery_missing",
        ),
    ];
    for (en, key) in fixed {
        if s == en {
            return tr.t(key);
        }
    }
    if let Some(url) = s
        .strip_prefix("public URL ")
        .and_then(|r| r.strip_suffix(" is not https"))
    {
        return tr.tf("review_details.not_https", &[("url", url)]);
    }
    // #18 forward authentication.
    if let Some(host) = s
        .strip_prefix("http://")
        .and_then(|r| r.strip_suffix(" is protected without HTTPS"))
    {
        return tr.tf("review_details.fwd_plain_http", &[("host", host)]);
    }
    if let Some((n, host)) = s
        .strip_prefix("rule ")
        .and_then(|r| r.strip_suffix(')'))
        .and_then(|r| r.split_once(" ("))
        .filter(|(n, _)| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
    {
        return tr.tf("review_details.fwd_rule", &[("n", n), ("host", host)]);
    }
    // #17 the OpenID provider: "client NAME: URI" and "client NAME". A client name has only
    // the characters of `check_name` (no spaces, colons or parentheses), which tells these
    // apart from an account's line such as "client (3 left)".
    let client_name = |n: &str| {
        !n.is_empty()
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
    };
    if let Some(rest) = s.strip_prefix("client ") {
        match rest.split_once(": ") {
            Some((name, uri)) if client_name(name) => {
                return tr.tf(
                    "review_details.oidc_client_uri",
                    &[("name", name), ("uri", uri)],
                )
            }
            None if client_name(rest) => {
                return tr.tf("review_details.oidc_client", &[("name", rest)])
            }
            _ => {}
        }
    }
    if let Some(rest) = s.strip_prefix("the oldest event is ") {
        if let Some((old, keep)) = rest
            .strip_suffix(" days should be kept")
            .and_then(|r| r.split_once(" days old, but "))
        {
            return tr.tf("review_details.retention", &[("old", old), ("keep", keep)]);
        }
    }
    // "NAME (what)": the name is everything before the last " (".
    let Some((name, what)) = s.strip_suffix(')').and_then(|r| r.rsplit_once(" (")) else {
        return s.to_string();
    };
    let n = |prefix: &str, suffix: &str| {
        what.strip_prefix(prefix)
            .and_then(|r| r.strip_suffix(suffix))
            .filter(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit()))
            .map(str::to_string)
    };
    let (key, count) = if let Some(d) = n("", " left") {
        ("review_details.codes_left", d)
    } else if let Some(d) = n("last sign-in ", " days ago") {
        ("review_details.last_sign_in", d)
    } else if let Some(d) = n("never signed in, created ", " days ago") {
        ("review_details.never_signed_in", d)
    } else if let Some(d) = n("last used ", " days ago") {
        ("review_details.last_used", d)
    } else if let Some(d) = n("never used, created ", " days ago") {
        ("review_details.never_used", d)
    } else if let Some(d) = n("", " days old") {
        ("review_details.days_old", d)
    } else {
        let key = match what {
            "email unverified" => "review_details.email_unverified",
            "phone unverified" => "review_details.phone_unverified",
            "email and phone unverified" => "review_details.both_unverified",
            _ => return s.to_string(),
        };
        return tr.tf(key, &[("name", name)]);
    };
    tr.tf(key, &[("name", name), ("n", &count)])
}

pub async fn review(ctx: Ctx) -> PageResult {
    ctx.admin().await?;
    let review = ctx.st.svc.security_review(ctx.now).await?;
    let p = Page::new(&ctx, "review.title", "review");
    let mut findings: Vec<&mamori_review::Finding> = review.findings.iter().collect();
    findings.sort_by_key(|f| rank(f));
    let rows = findings
        .into_iter()
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
                outcome_class: match f.outcome {
                    Outcome::Pass => "pass",
                    Outcome::Fail => "fail",
                    Outcome::Undecidable => "undecidable",
                    Outcome::NotApplicable => "not-applicable",
                },
                affected: f
                    .affected
                    .iter()
                    .map(|a| translate_detail(&p.tr, a))
                    .collect(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::i18n::Lang;

    /// Every shape `mamori_review::deployment` writes, as it writes it.
    const ENGLISH: [&str; 17] = [
        "alice (2 left)",
        "alice (email unverified)",
        "alice (phone unverified)",
        "alice (email and phone unverified)",
        "alice (last sign-in 50 days ago)",
        "alice (never signed in, created 60 days ago)",
        "ci key (last used 46 days ago)",
        "ci key (never used, created 47 days ago)",
        "ci key (91 days old)",
        "public URL http://localhost:8080 is not https",
        "session cookies are sent without Secure",
        "phone.provider = \"log\" writes codes into the server log",
        "the oldest event is 3 days old, but 10 days should be kept",
        "the audit log is empty",
        "bob (a) (2 left)",
        // #17
        "client grafana: https://*.example.com/cb",
        "client wiki",
    ];

    #[test]
    fn every_detail_shape_is_translated() {
        let ja = Tr::new(Lang::Ja);
        for en in ENGLISH {
            let t = translate_detail(&ja, en);
            assert_ne!(t, en, "{en} is not translated");
            assert!(!t.contains('{'), "{en} -> {t}: a placeholder is left");
            // Only names, numbers and addresses stay in Latin letters.
            for word in [
                "left",
                "days",
                "unverified",
                "never",
                "audit",
                "cookies",
                "oldest",
            ] {
                assert!(!t.contains(word), "{en} -> {t}");
            }
        }
        assert_eq!(
            translate_detail(&ja, "password.min_length = 12"),
            "password.min_length = 12"
        );
        let en = Tr::new(Lang::En);
        assert_eq!(translate_detail(&en, "alice (2 left)"), "alice (2 left)");
        // #17: an account named "client" keeps its own shape.
        assert_eq!(
            translate_detail(&ja, "client (2 left)"),
            translate_detail(&ja, "x (2 left)").replacen('x', "client", 1)
        );
        assert_eq!(
            translate_detail(&en, "client wiki: http://wiki.example/cb"),
            "client wiki: http://wiki.example/cb"
        );
        assert_eq!(
            translate_detail(&en, "alice (email and phone unverified)"),
            "alice (email and phone unverified)"
        );
    }
}
