//! Conversions to the wire types of `mamori-api` that more than one edge uses (the JSON API,
//! the console's security-key pages, the admin command line).

use mamori_api as api;
use mamori_api::review::{ReviewFinding, ReviewResponse};
use mamori_review::{Outcome, Review, Severity};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::clock::UnixTime;
use crate::domain::webauthn::Begun;
use crate::error::Error;
use crate::store::AuditRecord;
use mamori_api::webauthn as wire;

/// Converts a stored audit record to the wire type.
pub fn audit_wire(r: AuditRecord) -> api::AuditEvent {
    let e = r.event;
    api::AuditEvent {
        id: r.id,
        at: e.at,
        account: e.account,
        actor: e.actor,
        client_addr: e.client_addr,
        user_agent: e.user_agent,
        kind: e.kind,
        result: e.result,
        detail: e.detail,
    }
}

/// The wire form of a review.
pub fn review_wire(review: &Review, at: UnixTime) -> ReviewResponse {
    ReviewResponse {
        at,
        high_severity_failed: review.has_high_failure(),
        findings: review
            .findings
            .iter()
            .map(|f| ReviewFinding {
                id: f.id.to_string(),
                title: f.title.to_string(),
                severity: match f.severity {
                    Severity::Low => "low",
                    Severity::Medium => "medium",
                    Severity::High => "high",
                }
                .to_string(),
                outcome: match f.outcome {
                    Outcome::Pass => "pass",
                    Outcome::Fail => "fail",
                    Outcome::Undecidable => "undecidable",
                    Outcome::NotApplicable => "not_applicable",
                }
                .to_string(),
                affected: f.affected.clone(),
                remedy: f.remedy.clone(),
                link: f.link.clone(),
            })
            .collect(),
    }
}

/// The wire form of a begun ceremony.
pub fn begun_wire<T: Serialize>(b: Begun<T>) -> Result<wire::CeremonyBegun, Error> {
    Ok(wire::CeremonyBegun {
        ceremony: b.ceremony,
        options: serde_json::to_value(&b.options)
            .map_err(|e| Error::Internal(format!("serialize options: {e}")))?,
        expires_at: b.expires_at,
    })
}

/// Reads the browser's `PublicKeyCredential` JSON; a malformed one is refused before the
/// ceremony is touched.
pub fn parse_credential<T: DeserializeOwned>(v: serde_json::Value) -> Result<T, Error> {
    serde_json::from_value(v).map_err(|_| {
        Error::InvalidInput(
            "credential must be the PublicKeyCredential of the ceremony, binary fields in Base64url"
                .into(),
        )
    })
}
