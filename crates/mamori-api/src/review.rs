//! `GET /api/v1/review`: the security review of the deployment (administrators).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReviewFinding {
    /// Stable id, e.g. `DR-ROOT-MFA`.
    pub id: String,
    /// What the check asks.
    pub title: String,
    /// `low`, `medium` or `high`.
    pub severity: String,
    /// `pass`, `fail`, `undecidable` or `not_applicable` (the check does not apply to this
    /// deployment, e.g. recovery delivery when that recovery is off).
    pub outcome: String,
    /// Accounts, keys or settings at fault.
    pub affected: Vec<String>,
    /// What to do.
    pub remedy: String,
    /// Console path (or documentation reference) where the fix is made.
    pub link: Option<String>,
}

/// The whole review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReviewResponse {
    /// Unix seconds when the review ran.
    pub at: i64,
    /// Whether a high-severity check failed.
    pub high_severity_failed: bool,
    /// Every check, in a stable order.
    pub findings: Vec<ReviewFinding>,
}
