//! `mamori review …`: reviews that need no vault. The checks are `mamori-review`'s.

use std::io::Read;

use anyhow::{bail, Context};
use mamori_review::credential_report;
use mamori_review::{Outcome, Review, Severity};

use crate::cli::{CredentialReportArgs, GlobalArgs, ReviewCommand};

/// A high-severity check failed: `main` exits 1.
#[derive(Debug)]
pub struct HighSeverityFailed;

impl std::fmt::Display for HighSeverityFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a high-severity check failed")
    }
}

impl std::error::Error for HighSeverityFailed {}

/// No high-severity check failed, but one could not be decided (e.g. a report without a root
/// row). Not clean: `main` exits with [`EXIT_UNDECIDABLE`].
#[derive(Debug)]
pub struct HighSeverityUndecidable {
    ids: Vec<&'static str>,
}

impl std::fmt::Display for HighSeverityUndecidable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "this report cannot decide the high-severity checks {}; see each check's reason",
            self.ids.join(", ")
        )
    }
}

impl std::error::Error for HighSeverityUndecidable {}

/// Exit status of a review whose high-severity checks did not fail but were not all decided.
pub const EXIT_UNDECIDABLE: u8 = 4;

pub fn run(_g: &GlobalArgs, cmd: ReviewCommand) -> anyhow::Result<()> {
    match cmd {
        ReviewCommand::CredentialReport(args) => credential(args),
        #[cfg(feature = "aws")]
        ReviewCommand::Aws(args) => super::aws::review(args),
    }
}

fn credential(args: CredentialReportArgs) -> anyhow::Result<()> {
    let mut bytes = Vec::new();
    std::fs::File::open(&args.file)
        .and_then(|f| {
            f.take(credential_report::MAX_REPORT_BYTES as u64 + 1)
                .read_to_end(&mut bytes)
        })
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let report = credential_report::parse(&bytes)
        .with_context(|| format!("{} is not a valid credential report", args.file.display()))?;
    let now = match args.at {
        Some(t) => time::OffsetDateTime::from_unix_timestamp(t).context("--at is out of range")?,
        None => time::OffsetDateTime::now_utc(),
    };
    if report.users.is_empty() {
        bail!("{} has a header but no users", args.file.display());
    }
    let options = credential_report::Options {
        root_use_days: args.root_use_days,
    };
    let review = credential_report::review_with(&report, now, &options);
    finish(&review, report.users.len(), args.json)
}

/// Prints a review (text or JSON) and turns its high-severity outcome into the exit status.
pub fn finish(review: &Review, users: usize, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(review)?);
    } else {
        print_text(review, users);
    }
    // A failure outranks an undecidable check: exit 1 says more than exit 4.
    if review.has_high_failure() {
        return Err(HighSeverityFailed.into());
    }
    if review.has_high_undecidable() {
        let ids = review
            .findings
            .iter()
            .filter(|f| f.outcome == Outcome::Undecidable && f.severity == Severity::High)
            .map(|f| f.id)
            .collect();
        return Err(HighSeverityUndecidable { ids }.into());
    }
    Ok(())
}

fn print_text(review: &Review, users: usize) {
    for f in &review.findings {
        let mark = match f.outcome {
            Outcome::Pass => "PASS",
            Outcome::Fail => "FAIL",
            Outcome::Undecidable => "N/A ",
            // No credential-report or account check has this outcome (it exists for deployment checks
            // that do not apply); shown distinctly should one ever appear.
            Outcome::NotApplicable => "SKIP",
        };
        println!("{mark}  [{}] {}  ({})", f.severity, f.title, f.id);
        for a in &f.affected {
            println!("        - {a}");
        }
        if f.outcome != Outcome::Pass {
            let label = if f.outcome == Outcome::Fail {
                "fix"
            } else {
                "why"
            };
            println!("        {label}: {}", f.remedy);
        }
        if let Some(link) = &f.link {
            println!("        see: {link}");
        }
    }
    // Credential-report checks always apply: the fourth count (not applicable) is zero.
    let (pass, fail, undecided, _) = review.counts();
    println!("{users} users reviewed: {pass} passed, {fail} failed, {undecided} cannot be decided from a credential report");
}
