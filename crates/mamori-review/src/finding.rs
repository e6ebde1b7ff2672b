use std::fmt;

use serde::Serialize;

/// How bad a failed check is. Ordered: `Low < Medium < High`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Hygiene; fix when convenient.
    Low,
    /// A weakness an attacker could use with some other foothold.
    Medium,
    /// Directly exploitable or contrary to the baseline (e.g. CIS "MFA for the root user").
    High,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
        })
    }
}

/// Whether a check passed, failed, could not be decided from the data at hand, or does not
/// apply to this deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Nothing found.
    Pass,
    /// Something to fix; see `affected` and `remedy`.
    Fail,
    /// The input cannot answer this check (said plainly rather than guessed).
    Undecidable,
    /// The check does not apply to this deployment (e.g. recovery delivery when that recovery
    /// is switched off); `remedy` says why. Neither a pass nor a failure: the thing it guards
    /// does not exist here.
    NotApplicable,
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable identifier, e.g. `CR-ROOT-MFA`; scripts may depend on it.
    pub id: &'static str,
    /// What the check asks, in one line.
    pub title: &'static str,
    /// Severity if it fails.
    pub severity: Severity,
    /// Pass, fail, undecidable or not applicable.
    pub outcome: Outcome,
    /// The users, keys or settings at fault (empty when passing).
    pub affected: Vec<String>,
    /// What to do about a failure, or why the check cannot be decided.
    pub remedy: String,
    /// Where the fix is made (a console path or a documentation reference), if anywhere.
    pub link: Option<String>,
}

/// A complete review: every check, in a stable order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Review {
    /// Every check that was run.
    pub findings: Vec<Finding>,
}

impl Review {
    /// Failed checks of high severity: a script should stop on these.
    pub fn has_high_failure(&self) -> bool {
        self.findings
            .iter()
            .any(|f| f.outcome == Outcome::Fail && f.severity == Severity::High)
    }

    /// High-severity checks the input could not decide. Not a pass: a script that stops on
    /// high-severity failures should not call such a review clean either.
    pub fn has_high_undecidable(&self) -> bool {
        self.findings
            .iter()
            .any(|f| f.outcome == Outcome::Undecidable && f.severity == Severity::High)
    }

    /// Counts of (passed, failed, undecidable, not applicable) checks.
    pub fn counts(&self) -> (usize, usize, usize, usize) {
        let count = |o| self.findings.iter().filter(|f| f.outcome == o).count();
        (
            count(Outcome::Pass),
            count(Outcome::Fail),
            count(Outcome::Undecidable),
            count(Outcome::NotApplicable),
        )
    }
}
