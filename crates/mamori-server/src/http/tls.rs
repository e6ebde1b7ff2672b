//! Built-in HTTPS from certificate files (`[tls]`, docs/server.md "HTTPS"), with rustls on
//! ring (no OpenSSL, no aws-lc).
//!
//! The certificate is held by [`Certificates`], the rustls certificate resolver, behind a
//! lock that each handshake reads once: a renewal done outside the server (certbot, step, a
//! corporate CA) replaces the files, and the next handshake after the reload serves the new
//! certificate while connections already open keep theirs. A reload that fails (files half
//! written, a key that does not match) keeps the previous certificate, so a botched renewal
//! never takes the server down; only start-up refuses bad files.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_rustls::TlsAcceptor;
use zeroize::Zeroizing;

use crate::http::challenges::Challenges;

/// Why certificate files cannot be served. Messages name the file and the setting, and never
/// quote the key file's contents.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file cannot be read (missing, permissions).
    #[error("{setting} {}: cannot read it: {source}", path.display())]
    Unreadable {
        /// `tls.cert_file` or `tls.key_file`.
        setting: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The certificate file holds no usable PEM certificate.
    #[error("tls.cert_file {}: no PEM certificate in it ({reason})", path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
        /// What the PEM reader or the certificate parser said.
        reason: String,
    },
    /// The key file holds no PEM private key of a kind rustls reads.
    // The PEM reader's own message is left out: it may quote a line of the file.
    #[error("tls.key_file {}: no PEM private key in it (PKCS#8, PKCS#1 or SEC1 expected)", path.display())]
    NoKey {
        /// The file.
        path: PathBuf,
    },
    /// The key is of a kind or size ring cannot sign with.
    #[error("tls.key_file {}: unsupported private key: {reason}", path.display())]
    UnsupportedKey {
        /// The file.
        path: PathBuf,
        /// What rustls said (it names the kinds tried, not the key).
        reason: String,
    },
    /// The private key does not belong to the first certificate of the chain.
    #[error("tls.key_file {}: this private key does not belong to the certificate in tls.cert_file {}", key.display(), cert.display())]
    Mismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// rustls refused the server configuration.
    #[error("TLS configuration: {0}")]
    Setup(String),
}

/// The cryptography of every TLS connection: ring's default provider (TLS 1.3, and TLS 1.2
/// with ECDHE and AEAD suites only). Named explicitly rather than the process default, which
/// rustls cannot choose when another crate enables a second provider.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads and checks a certificate chain and its key.
pub fn load(cert_path: &Path, key_path: &Path) -> Result<CertifiedKey, TlsError> {
    let cert_pem = std::fs::read(cert_path).map_err(|source| TlsError::Unreadable {
        setting: "tls.cert_file",
        path: cert_path.to_path_buf(),
        source,
    })?;
    let no_cert = |reason: String| TlsError::NoCertificate {
        path: cert_path.to_path_buf(),
        reason,
    };
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| no_cert(e.to_string()))?;
    let Some(leaf) = chain.first() else {
        return Err(no_cert("the file is empty or holds something else".into()));
    };
    CertInfo::of(leaf).map_err(no_cert)?;
    // The file's bytes are wiped when dropped; the parsed key zeroizes itself.
    let key_pem =
        Zeroizing::new(
            std::fs::read(key_path).map_err(|source| TlsError::Unreadable {
                setting: "tls.key_file",
                path: key_path.to_path_buf(),
                source,
            })?,
        );
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| TlsError::NoKey {
        path: key_path.to_path_buf(),
    })?;
    let signer =
        provider()
            .key_provider
            .load_private_key(key)
            .map_err(|e| TlsError::UnsupportedKey {
                path: key_path.to_path_buf(),
                reason: e.to_string(),
            })?;
    let certified = CertifiedKey::new(chain, signer);
    match certified.keys_match() {
        Ok(()) => Ok(certified),
        // rustls cannot compare some key kinds; the handshake itself still works.
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => Ok(certified),
        Err(rustls::Error::InconsistentKeys(_)) => Err(TlsError::Mismatch {
            cert: cert_path.to_path_buf(),
            key: key_path.to_path_buf(),
        }),
        Err(e) => Err(no_cert(e.to_string())),
    }
}

/// What start-up and reloads say about a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// Subject distinguished name.
    pub subject: String,
    /// Subject alternative names (`DNS:…`, `IP:…`).
    pub names: Vec<String>,
    /// Issuer distinguished name.
    pub issuer: String,
    /// Serial number in hex.
    pub serial: String,
    /// End of validity.
    pub not_after: time::OffsetDateTime,
}

impl CertInfo {
    /// Parses the end-entity certificate.
    pub fn of(der: &CertificateDer<'_>) -> Result<CertInfo, String> {
        use x509_parser::extensions::GeneralName;
        let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref())
            .map_err(|e| format!("not an X.509 certificate: {e}"))?;
        let mut names = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for n in &san.value.general_names {
                match n {
                    GeneralName::DNSName(d) => names.push(format!("DNS:{d}")),
                    GeneralName::IPAddress(b) => {
                        let ip = match b.len() {
                            4 => <[u8; 4]>::try_from(*b).ok().map(std::net::IpAddr::from),
                            16 => <[u8; 16]>::try_from(*b).ok().map(std::net::IpAddr::from),
                            _ => None,
                        };
                        if let Some(ip) = ip {
                            names.push(format!("IP:{ip}"));
                        }
                    }
                    other => names.push(other.to_string()),
                }
            }
        }
        Ok(CertInfo {
            subject: cert.subject().to_string(),
            names,
            issuer: cert.issuer().to_string(),
            serial: cert.raw_serial_as_string(),
            not_after: cert.validity().not_after.to_datetime(),
        })
    }

    /// The start-up line, without its `tls: ` prefix.
    pub fn describe(&self) -> String {
        let until = self
            .not_after
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|_| self.not_after.to_string());
        let names = if self.names.is_empty() {
            String::new()
        } else {
            format!(" ({})", self.names.join(", "))
        };
        format!(
            "serving certificate for {}{names}, issued by {}, valid until {until}",
            self.subject, self.issuer
        )
    }
}

/// What identifies a version of a file for the reload check: modification time, size and
/// inode (a renewal that renames a new file into place may keep the time to the second).
type Stamp = Option<(std::time::SystemTime, u64, u64)>;

fn stamp(path: &Path) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    // `metadata` follows symbolic links: certbot's `live/` links point at new files.
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len(), m.ino()))
}

/// The served certificate: the rustls resolver, and what reloads or replaces it.
#[derive(Debug)]
pub struct Certificates {
    /// The certificate and key files (`None` with ACME, which calls [`Certificates::set`]).
    files: Option<(PathBuf, PathBuf)>,
    /// `None` only with ACME before its first certificate: handshakes fail until then.
    current: RwLock<Option<Arc<CertifiedKey>>>,
    /// The served certificate's end of validity (Unix seconds), for the review and metrics.
    expiry: Arc<AtomicI64>,
    /// With ACME: TLS-ALPN-01 validation certificates, served to `acme-tls/1` handshakes.
    challenges: Option<Arc<Challenges>>,
}

/// The gauge `/metrics` exports the served certificate's expiry in (Unix seconds).
pub const EXPIRY_GAUGE: &str = "mamori_tls_certificate_expiry_timestamp_seconds";

/// The ALPN protocol of TLS-ALPN-01 validation handshakes (RFC 8737).
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

impl Certificates {
    /// Loads the files; an error here refuses start-up.
    pub fn open(cert_path: &Path, key_path: &Path) -> Result<Certificates, TlsError> {
        let key = load(cert_path, key_path)?;
        let certs = Certificates {
            files: Some((cert_path.to_path_buf(), key_path.to_path_buf())),
            current: RwLock::new(None),
            expiry: Arc::new(AtomicI64::new(0)),
            challenges: None,
        };
        certs.put(Arc::new(key));
        Ok(certs)
    }

    /// With ACME: nothing served until [`Certificates::set`], and the TLS-ALPN-01
    /// challenges of `challenges` answered.
    pub fn for_acme(challenges: Arc<Challenges>) -> Certificates {
        Certificates {
            files: None,
            current: RwLock::new(None),
            expiry: Arc::new(AtomicI64::new(0)),
            challenges: Some(challenges),
        }
    }

    /// The served certificate and key, if any.
    pub fn current_key(&self) -> Option<Arc<CertifiedKey>> {
        self.current()
    }

    fn current(&self) -> Option<Arc<CertifiedKey>> {
        // A poisoned lock still holds a whole `Arc` (it is only ever replaced whole).
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Serves `key` from the next handshake on (connections already open keep theirs).
    fn put(&self, key: Arc<CertifiedKey>) -> Option<CertInfo> {
        let info = key.cert.first().and_then(|c| CertInfo::of(c).ok());
        if let Some(i) = &info {
            self.expiry
                .store(i.not_after.unix_timestamp(), Ordering::Relaxed);
        }
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(key);
        self.publish();
        info
    }

    /// Serves a certificate obtained by ACME (checked as files are: the key must match).
    pub fn set(&self, key: CertifiedKey) -> Option<CertInfo> {
        self.put(Arc::new(key))
    }

    /// The served certificate's expiry, shared with the review ([`crate::domain::Service`]).
    pub fn expiry(&self) -> Arc<AtomicI64> {
        self.expiry.clone()
    }

    /// Sets the `/metrics` gauge of the served certificate's expiry (once the metrics
    /// recorder is installed, then at every change).
    pub fn publish(&self) {
        let t = self.expiry.load(Ordering::Relaxed);
        if t != 0 {
            metrics::gauge!(EXPIRY_GAUGE).set(t as f64);
        }
    }

    /// What is served now.
    pub fn info(&self) -> Option<CertInfo> {
        let key = self.current()?;
        CertInfo::of(key.cert.first()?).ok()
    }

    /// Reads the files again and serves them if they are good; otherwise keeps the
    /// certificate served so far.
    pub fn reload(&self) -> Result<Option<CertInfo>, TlsError> {
        let Some((cert, key)) = &self.files else {
            return Ok(self.info());
        };
        let key = Arc::new(load(cert, key)?);
        Ok(self.put(key))
    }

    fn stamps(&self) -> (Stamp, Stamp) {
        match &self.files {
            Some((c, k)) => (stamp(c), stamp(k)),
            None => (None, None),
        }
    }

    /// The acceptor of the server's connections: TLS 1.2 and 1.3 only (rustls has no older
    /// version), no client certificates, ALPN `h2` then `http/1.1` (a client that names
    /// neither gets HTTP/1.1).
    pub fn acceptor(self: &Arc<Self>) -> Result<TlsAcceptor, TlsError> {
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Setup(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        if self.challenges.is_some() {
            // Only a validation handshake offers it, and it offers nothing else (RFC 8737).
            config.alpn_protocols.push(ACME_TLS_ALPN.to_vec());
        }
        Ok(TlsAcceptor::from(Arc::new(config)))
    }

    /// Reloads when either file changes (checked every `every`) and on SIGHUP, until the
    /// task is aborted.
    pub fn spawn_reloader(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let certs = self.clone();
        // The files as they are now, next to the certificate just loaded: taken here rather than
        // when the task first runs, which on a busy machine can be after a renewal was written
        // (that renewal would then look already seen, and never be loaded).
        let mut seen = certs.stamps();
        tokio::spawn(async move {
            let mut hangup =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                let hup = async {
                    match hangup.as_mut() {
                        Some(s) => s.recv().await,
                        None => std::future::pending().await,
                    }
                };
                let why = tokio::select! {
                    _ = tick.tick() => {
                        let now = certs.stamps();
                        if now == seen {
                            continue;
                        }
                        // Remembered even when the reload fails: a renewal that writes the
                        // certificate, then the key, changes the key's stamp again and is
                        // retried then; a broken file is not re-read every tick.
                        seen = now;
                        "the certificate files changed"
                    }
                    Some(()) = hup => {
                        seen = certs.stamps();
                        "SIGHUP"
                    }
                };
                match certs.reload() {
                    Ok(Some(info)) => tracing::info!(
                        reason = why,
                        serial = %info.serial,
                        "tls: reloaded; {}",
                        info.describe()
                    ),
                    Ok(None) => tracing::info!(reason = why, "tls: reloaded the certificate"),
                    Err(e) => tracing::warn!(
                        reason = why,
                        error = %e,
                        "tls: reloading the certificate failed; still serving the previous one"
                    ),
                }
            }
        })
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        if let Some(ch) = &self.challenges {
            let validation = hello
                .alpn()
                .is_some_and(|mut protos| protos.any(|p| p == ACME_TLS_ALPN));
            if validation {
                // The validation certificate, or no handshake at all: never the real one
                // on that protocol (RFC 8737 section 3).
                return ch.alpn(hello.server_name()?);
            }
        }
        self.current()
    }
}
