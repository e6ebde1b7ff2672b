//! One call to the server's validate API (`POST /api/v1/validate`, docs/api.md) with a
//! synchronous client: no threads and no runtime inside sshd or sudo. The server's certificate
//! is checked against the Mozilla root set plus the configured CA file.

use std::sync::Arc;

use mamori_api::{ValidateRequest, ValidateResponse};
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

/// Asks the server whether `code` is right for `user` now.
pub fn validate(cfg: &Config, user: &str, code: &str) -> Result<Verdict, ClientError> {
    let agent = ureq::AgentBuilder::new()
        .timeout(cfg.timeout)
        .tls_config(tls_config(cfg)?)
        .redirects(0)
        .user_agent(concat!("pam_mamori/", env!("CARGO_PKG_VERSION")))
        .build();
    let body = ValidateRequest {
        user: user.to_string(),
        code: code.to_string(),
    };
    let answer = agent
        .post(&format!("{}/api/v1/validate", cfg.url))
        .set("Authorization", &format!("Bearer {}", cfg.app_key.as_str()))
        .send_json(&body);
    match answer {
        Ok(resp) => {
            let v: ValidateResponse = resp.into_json().map_err(|_| ClientError::BadAnswer)?;
            match (v.result.as_str(), v.reason) {
                ("accept", _) => Ok(Verdict::Accept),
                ("reject", Some(reason)) => Ok(Verdict::Reject(reason)),
                _ => Err(ClientError::BadAnswer),
            }
        }
        Err(ureq::Error::Status(status, resp)) => {
            // The error body is `{"error": CODE, ...}`; only the code is kept (never echoed input).
            let code = resp
                .into_json::<serde_json::Value>()
                .ok()
                .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
                .filter(|c| c.len() <= 64 && c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
                .unwrap_or_else(|| "error".into());
            Err(ClientError::Refused { status, code })
        }
        Err(ureq::Error::Transport(t)) => Err(ClientError::Unreachable(t.kind().to_string())),
    }
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
