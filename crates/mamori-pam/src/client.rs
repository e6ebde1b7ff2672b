//! Calls to the server's validate API (`POST /api/v1/validate`, and with `no_device = allow`
//! `POST /api/v1/validate/status` first; docs/api.md) with a synchronous client: no threads and no runtime inside sshd or sudo. The server's certificate
//! is checked against the Mozilla root set plus the configured CA file.

use std::sync::Arc;

use mamori_api::{
    ValidateRequest, ValidateResponse, ValidateStatusRequest, ValidateStatusResponse,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use crate::config::Config;
use crate::error::ClientError;

/// What the server said of the code.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    /// `invalid_code`, `account_locked` or `throttled` (docs/api.md).
    Reject(String),
}

/// Whether the user must give a code (`POST /api/v1/validate/status`).
#[derive(Debug, PartialEq, Eq)]
pub enum Status {
    /// The account exists, is not locked and has no MFA device.
    NoDevice,
    /// Anything else, unknown users included.
    CodeRequired,
}

/// Asks the server whether `code` is right for `user` now.
pub fn validate(cfg: &Config, user: &str, code: &str) -> Result<Verdict, ClientError> {
    let body = ValidateRequest {
        user: user.to_string(),
        code: code.to_string(),
    };
    let resp = post(cfg, "/api/v1/validate", &body)?;
    let v: ValidateResponse = resp.into_json().map_err(|_| ClientError::BadAnswer)?;
    match (v.result.as_str(), v.reason) {
        ("accept", _) => Ok(Verdict::Accept),
        ("reject", Some(reason)) => Ok(Verdict::Reject(reason)),
        _ => Err(ClientError::BadAnswer),
    }
}

/// Asks the server whether `user` must give a code at all (the key needs `allow_no_device`:
/// without it the server answers 403, an error like any other).
pub fn status(cfg: &Config, user: &str) -> Result<Status, ClientError> {
    let body = ValidateStatusRequest {
        user: user.to_string(),
    };
    let resp = post(cfg, "/api/v1/validate/status", &body)?;
    let v: ValidateStatusResponse = resp.into_json().map_err(|_| ClientError::BadAnswer)?;
    match v.status.as_str() {
        "no_device" => Ok(Status::NoDevice),
        "code_required" => Ok(Status::CodeRequired),
        _ => Err(ClientError::BadAnswer),
    }
}

/// One POST with the application key; a 2xx answer, or the error.
fn post(
    cfg: &Config,
    path: &str,
    body: &impl serde::Serialize,
) -> Result<ureq::Response, ClientError> {
    let agent = ureq::AgentBuilder::new()
        .timeout(cfg.timeout)
        .tls_config(tls_config(cfg)?)
        .redirects(0)
        .user_agent(concat!("pam_mamori/", env!("CARGO_PKG_VERSION")))
        .build();
    let answer = agent
        .post(&format!("{}{path}", cfg.url))
        .set("Authorization", &format!("Bearer {}", cfg.app_key.as_str()))
        .send_json(body);
    match answer {
        Ok(resp) => Ok(resp),
        Err(ureq::Error::Status(status, resp)) => {
            let code = resp
                .into_json::<serde_json::Value>()
                .ok()
                .and_then(|v| error_code(&v))
                .unwrap_or_else(|| "error".into());
            Err(ClientError::Refused { status, code })
        }
        Err(ureq::Error::Transport(t)) => Err(ClientError::Unreachable(t.kind().to_string())),
    }
}

/// The error code of an error body, `{"error": {"code": CODE, "message": ...}}` (or the older
/// `{"error": CODE}`); only a short lowercase code is kept, never the message, which may echo
/// input.
fn error_code(v: &serde_json::Value) -> Option<String> {
    let e = v.get("error")?;
    e.as_str()
        .or_else(|| e.get("code").and_then(|c| c.as_str()))
        .filter(|c| {
            !c.is_empty() && c.len() <= 64 && c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
        })
        .map(str::to_string)
}

fn tls_config(cfg: &Config) -> Result<Arc<rustls::ClientConfig>, ClientError> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = &cfg.ca_file {
        let shown = path.display().to_string();
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| ClientError::CaFile(shown.clone(), e.to_string()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ClientError::CaFile(shown.clone(), e.to_string()))?;
        if certs.is_empty() {
            return Err(ClientError::CaFile(shown, "no certificate in it".into()));
        }
        for c in certs {
            roots
                .add(c)
                .map_err(|e| ClientError::CaFile(shown.clone(), e.to_string()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Unreachable(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::error_code;
    use serde_json::json;

    #[test]
    fn only_a_short_error_code_is_kept() {
        let v = json!({"error": {"code": "forbidden", "message": "the key ..."}});
        assert_eq!(error_code(&v).as_deref(), Some("forbidden"));
        assert_eq!(
            error_code(&json!({"error": "rate_limited"})).as_deref(),
            Some("rate_limited")
        );
        assert_eq!(error_code(&json!({"error": {"code": "Not A Code"}})), None);
        assert_eq!(error_code(&json!({"other": 1})), None);
    }
}
