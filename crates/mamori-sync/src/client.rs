//! A blocking HTTP client for the account service's sign-in and sync API, over `https://`
//! (rustls with the Mozilla roots, plus the certificates of [`CA_FILE_ENV`] for a private CA) or
//! plain `http://` (docs/sync-protocol.md, "Transport").

use std::error::Error as _;
use std::time::Duration;

use mamori_api::sync as wire;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use zeroize::Zeroizing;

use crate::SyncError;

/// A client for one server.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    http: reqwest::blocking::Client,
}

/// Result of the password step.
#[derive(Debug)]
pub enum SignIn {
    /// A second factor is needed: answer this challenge.
    Challenge(Zeroizing<String>),
    /// Signed in without a second factor (sync refuses to register such sessions).
    Session(Zeroizing<String>),
}

/// Environment variable naming a PEM file of extra trusted root certificates, for a server whose
/// certificate comes from a private CA (common for self-hosted services). The Mozilla roots stay
/// trusted too.
pub const CA_FILE_ENV: &str = "MAMORI_SYNC_CA_FILE";

/// The extra roots of [`CA_FILE_ENV`], if it is set.
fn extra_roots() -> Result<Vec<reqwest::Certificate>, SyncError> {
    let Some(path) = std::env::var_os(CA_FILE_ENV).filter(|p| !p.is_empty()) else {
        return Ok(Vec::new());
    };
    let path = std::path::PathBuf::from(path);
    let pem = std::fs::read(&path).map_err(|e| {
        SyncError::InvalidInput(format!("cannot read {CA_FILE_ENV}={}: {e}", path.display()))
    })?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
        SyncError::InvalidInput(format!(
            "{CA_FILE_ENV}={} is not a PEM certificate file: {e}",
            path.display()
        ))
    })?;
    if certs.is_empty() {
        return Err(SyncError::InvalidInput(format!(
            "{CA_FILE_ENV}={} holds no PEM certificate",
            path.display()
        )));
    }
    Ok(certs)
}

/// reqwest's error with its causes ("error sending request: … invalid peer certificate:
/// UnknownIssuer"), so a TLS failure says why; URLs are left out and hold no secrets anyway.
fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

impl Client {
    /// A client for `base` (`https://host[:port]` or `http://host:port`, no trailing slash
    /// needed). An `https://` client never follows a redirect to `http://`.
    pub fn new(base: &str) -> Result<Client, SyncError> {
        let base = base.trim_end_matches('/').to_string();
        let https = base.starts_with("https://");
        if !https && !base.starts_with("http://") {
            return Err(SyncError::InvalidInput(format!(
                "the server URL must start with https:// or http://, not {base:?}"
            )));
        }
        let mut builder = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("mamori-sync/", env!("CARGO_PKG_VERSION")))
            .https_only(https);
        for cert in extra_roots()? {
            builder = builder.add_root_certificate(cert);
        }
        let http = builder.build().map_err(|e| SyncError::Network {
            url: base.clone(),
            reason: describe(e),
        })?;
        Ok(Client { base, http })
    }

    /// The server URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&B>,
    ) -> Result<T, SyncError> {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().map_err(|e| SyncError::Network {
            url: self.base.clone(),
            reason: describe(e),
        })?;
        let status = resp.status().as_u16();
        let text = resp.text().map_err(|e| SyncError::Network {
            url: self.base.clone(),
            reason: describe(e),
        })?;
        if !(200..300).contains(&status) {
            let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            let code = v
                .pointer("/error/code")
                .and_then(Value::as_str)
                .unwrap_or("unknown")
                .to_string();
            let message = v
                .pointer("/error/message")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| format!("HTTP {status}"));
            return Err(SyncError::Server {
                status,
                code,
                message,
            });
        }
        let text = if text.is_empty() { "null" } else { &text };
        serde_json::from_str(text).map_err(|e| SyncError::Protocol(format!("{path}: {e}")))
    }

    /// `POST /api/v1/sign-in`.
    pub fn sign_in(&self, user: &str, password: &str) -> Result<SignIn, SyncError> {
        let v: Value = self.call(
            reqwest::Method::POST,
            "/api/v1/sign-in",
            None,
            Some(&serde_json::json!({"user": user, "password": password})),
        )?;
        match v.get("status").and_then(Value::as_str) {
            Some("mfa_required") => Ok(SignIn::Challenge(Zeroizing::new(
                v.get("challenge")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            ))),
            Some(_) => Ok(SignIn::Session(Zeroizing::new(
                v.get("token")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            ))),
            None => Err(SyncError::Protocol("sign-in answer without status".into())),
        }
    }

    /// `POST /api/v1/sign-in/mfa`: returns the session token.
    pub fn sign_in_mfa(&self, challenge: &str, code: &str) -> Result<Zeroizing<String>, SyncError> {
        let v: Value = self.call(
            reqwest::Method::POST,
            "/api/v1/sign-in/mfa",
            None,
            Some(&serde_json::json!({"challenge": challenge, "code": code})),
        )?;
        Ok(Zeroizing::new(
            v.get("token")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        ))
    }

    /// `POST /api/v1/sign-out` (best effort after registering).
    pub fn sign_out(&self, session: &str) {
        let _: Result<Value, _> = self.call(
            reqwest::Method::POST,
            "/api/v1/sign-out",
            Some(session),
            Some(&serde_json::json!({})),
        );
    }

    /// `POST /api/v1/sync/devices` with a session token.
    pub fn register_device(
        &self,
        session: &str,
        name: &str,
    ) -> Result<wire::RegisterDeviceResponse, SyncError> {
        self.call(
            reqwest::Method::POST,
            "/api/v1/sync/devices",
            Some(session),
            Some(&wire::RegisterDeviceRequest { name: name.into() }),
        )
    }

    /// `GET /api/v1/sync/devices`.
    pub fn devices(&self, token: &str) -> Result<Vec<wire::SyncDevice>, SyncError> {
        let r: wire::SyncDevicesResponse = self.call::<(), _>(
            reqwest::Method::GET,
            "/api/v1/sync/devices",
            Some(token),
            None,
        )?;
        Ok(r.devices)
    }

    // #15 recovery
    /// `POST /api/v1/sync/recovery/cancel`: cancels the account's pending recovery by email and
    /// phone. A `not_found` server error means none is pending.
    pub fn cancel_recovery(&self, token: &str) -> Result<(), SyncError> {
        let _: Value = self.call::<(), _>(
            reqwest::Method::POST,
            "/api/v1/sync/recovery/cancel",
            Some(token),
            None,
        )?;
        Ok(())
    }

    /// `DELETE /api/v1/sync/devices/{id}`.
    pub fn revoke(&self, token: &str, device_id: &str) -> Result<(), SyncError> {
        let _: Value = self.call::<(), _>(
            reqwest::Method::DELETE,
            &format!("/api/v1/sync/devices/{device_id}"),
            Some(token),
            None,
        )?;
        Ok(())
    }

    /// `GET /api/v1/sync/keys`; `None` when no keys were uploaded yet.
    pub fn keys(&self, token: &str) -> Result<Option<wire::SyncKeys>, SyncError> {
        match self.call::<(), _>(reqwest::Method::GET, "/api/v1/sync/keys", Some(token), None) {
            Ok(k) => Ok(Some(k)),
            Err(SyncError::Server { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `PUT /api/v1/sync/keys`.
    pub fn put_keys(
        &self,
        token: &str,
        req: &wire::PutSyncKeysRequest,
    ) -> Result<wire::SyncKeys, SyncError> {
        self.call(
            reqwest::Method::PUT,
            "/api/v1/sync/keys",
            Some(token),
            Some(req),
        )
    }

    /// `GET /api/v1/sync/items?since=&limit=`.
    pub fn pull(
        &self,
        token: &str,
        since: i64,
        limit: u32,
    ) -> Result<wire::PullResponse, SyncError> {
        self.call::<(), _>(
            reqwest::Method::GET,
            &format!("/api/v1/sync/items?since={since}&limit={limit}"),
            Some(token),
            None,
        )
    }

    /// `POST /api/v1/sync/items`.
    pub fn push(
        &self,
        token: &str,
        items: Vec<wire::PushItem>,
    ) -> Result<wire::PushResponse, SyncError> {
        self.call(
            reqwest::Method::POST,
            "/api/v1/sync/items",
            Some(token),
            Some(&wire::PushRequest { items }),
        )
    }
}
