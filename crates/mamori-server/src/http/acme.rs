//! Certificates from an ACME CA (RFC 8555, `[tls] acme`, #22), with `instant-acme` as the
//! protocol client and reqwest (rustls on ring, system roots plus `acme_ca_file`) as its HTTP.
//!
//! - The domain is `public_url`'s host. The challenge is HTTP-01 when `redirect_listen` is
//!   set (answered there), TLS-ALPN-01 otherwise (answered on the HTTPS listener by
//!   [`crate::http::tls::Certificates`] to `acme-tls/1` handshakes).
//! - The account's credentials and the certificate with its key are kept in
//!   `DATA_DIR/acme/` (files 0600, written aside and renamed into place).
//! - A task checks the certificate every `acme_check_secs` and orders a new one when less
//!   than a third of its lifetime remains (or none is stored, or it is for another name);
//!   the new one is served from the next handshake on, as a reloaded file is, so open
//!   connections are not dropped. A failed order keeps the certificate served and is retried
//!   at the next check (at most a minute later while none is served).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use http_body_util::BodyExt;
use instant_acme::{
    Account, AccountCredentials, BodyWrapper, BytesResponse, ChallengeType, HttpClient, Identifier,
    NewAccount, NewOrder, OrderStatus, RetryPolicy,
};
use rustls::pki_types::PrivateKeyDer;
use rustls::sign::CertifiedKey;
use zeroize::Zeroizing;

use crate::config::Config;
pub use crate::http::challenges::Challenges;
use crate::http::tls::{CertInfo, Certificates};

/// Why an order failed. Messages never quote a key.
#[derive(Debug, thiserror::Error)]
pub enum AcmeError {
    /// The CA or the network refused or failed (instant-acme's message, which quotes the
    /// CA's problem document).
    #[error("ACME: {0}")]
    Protocol(#[from] instant_acme::Error),
    /// `tls.acme_ca_file` cannot be used.
    #[error("tls.acme_ca_file {}: {reason}", path.display())]
    CaFile {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Reading or writing `DATA_DIR/acme`.
    #[error("ACME storage {}: {source}", path.display())]
    Storage {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The CA handed out something unusable, or the order ended invalid.
    #[error("ACME: {0}")]
    Order(String),
}

/// What ordering needs from the configuration.
#[derive(Debug, Clone)]
pub struct AcmeSettings {
    /// The domain (`public_url`'s host).
    pub domain: String,
    /// The directory URL.
    pub directory: String,
    /// `mailto:` contact, if configured.
    pub contact: Option<String>,
    /// Extra trusted CA certificates (PEM).
    pub ca_file: Option<PathBuf>,
    /// HTTP-01 (through the redirect listener) rather than TLS-ALPN-01.
    pub http01: bool,
    /// Where the account and certificate are kept.
    pub dir: PathBuf,
    /// How often the remaining lifetime is checked.
    pub check: Duration,
    /// Where the account and certificate are kept, shared by every node with PostgreSQL.
    pub storage: Storage,
}

/// Where ACME state is kept.
#[derive(Clone)]
pub enum Storage {
    /// `DATA_DIR/acme/`, files 0600 (one node).
    Files,
    /// The database, sealed with the server key; the node that orders holds a lease, the
    /// others serve what it stored.
    Database {
        /// The domain service (sealing, the lease).
        svc: Arc<crate::domain::Service>,
        /// This node's name in the lease.
        node: String,
    },
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Storage::Files => f.write_str("Files"),
            Storage::Database { node, .. } => write!(f, "Database({node})"),
        }
    }
}

/// How long a node may order before another may take over (a dead node's lease expires).
const LEASE_SECS: i64 = 600;

impl AcmeSettings {
    /// From a validated configuration with `tls.acme` on.
    pub fn from_config(config: &Config) -> Option<AcmeSettings> {
        if !config.tls.acme {
            return None;
        }
        let domain = crate::config::acme_domain(config.public_url.as_deref()?)?;
        Some(AcmeSettings {
            domain,
            directory: config.tls.acme_directory.trim().to_string(),
            contact: config
                .tls
                .acme_contact
                .as_ref()
                .map(|c| format!("mailto:{}", c.trim())),
            ca_file: config.tls.acme_ca_file.clone(),
            http01: config.tls.redirect_listen.is_some(),
            dir: config.data_dir().join("acme"),
            check: Duration::from_secs(config.tls.acme_check_secs.max(1)),
            storage: Storage::Files,
        })
    }

    /// Keeps the state in the database of `svc` when it is PostgreSQL (shared by nodes).
    pub fn with_service(mut self, svc: &Arc<crate::domain::Service>) -> AcmeSettings {
        if svc.backend_name() == "postgres" {
            let mut id = [0u8; 8];
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut id);
            self.storage = Storage::Database {
                svc: svc.clone(),
                node: data_encoding::HEXLOWER.encode(&id),
            };
        }
        self
    }

    fn db_account(&self) -> String {
        format!("acme:account:{}", self.directory)
    }

    fn db_cert(&self) -> String {
        format!("acme:certificate:{}", self.domain)
    }

    fn account_file(&self) -> PathBuf {
        self.dir.join("account.json")
    }

    fn cert_file(&self) -> PathBuf {
        self.dir.join(format!("{}.crt.pem", self.domain))
    }

    fn key_file(&self) -> PathBuf {
        self.dir.join(format!("{}.key.pem", self.domain))
    }
}

/// The certificate chain (PEM) stored for `config`'s ACME domain, if any (in the database
/// of `svc` when it is PostgreSQL).
pub async fn stored_chain(config: &Config, svc: &Arc<crate::domain::Service>) -> Option<String> {
    let s = AcmeSettings::from_config(config)?.with_service(svc);
    let (chain, _) = read_stored(&s).await?;
    Some(chain)
}

/// What is stored in the database under [`AcmeSettings::db_cert`].
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredCert {
    chain: String,
    key: String,
}

/// The stored chain and key (PEM), from the files or the database.
async fn read_stored(s: &AcmeSettings) -> Option<(String, Zeroizing<String>)> {
    match &s.storage {
        Storage::Files => {
            let chain = std::fs::read_to_string(s.cert_file()).ok()?;
            let key = Zeroizing::new(std::fs::read_to_string(s.key_file()).ok()?);
            Some((chain, key))
        }
        Storage::Database { svc, .. } => {
            let bytes = match svc.tls_state_get(&s.db_cert()).await {
                Ok(b) => b?,
                Err(e) => {
                    tracing::warn!(error = %e, "acme: reading the stored certificate failed");
                    return None;
                }
            };
            let stored: StoredCert = serde_json::from_slice(&bytes).ok()?;
            Some((stored.chain, Zeroizing::new(stored.key)))
        }
    }
}

/// Stores a new chain and key.
async fn write_stored(s: &AcmeSettings, chain: &str, key: &str) -> Result<(), AcmeError> {
    match &s.storage {
        Storage::Files => {
            std::fs::create_dir_all(&s.dir).map_err(|source| AcmeError::Storage {
                path: s.dir.clone(),
                source,
            })?;
            // The key first: a certificate on disk always has its key there.
            write_private(&s.key_file(), key.as_bytes())?;
            write_private(&s.cert_file(), chain.as_bytes())
        }
        Storage::Database { svc, .. } => {
            let json = Zeroizing::new(
                serde_json::to_vec(&StoredCert {
                    chain: chain.to_string(),
                    key: key.to_string(),
                })
                .map_err(|e| AcmeError::Order(e.to_string()))?,
            );
            svc.tls_state_put(&s.db_cert(), &json, now())
                .await
                .map_err(|e| AcmeError::Order(format!("storing the certificate: {e}")))
        }
    }
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// A chain and key in PEM, checked as certificate files are.
fn parse(chain: &str, key: &str) -> Result<CertifiedKey, AcmeError> {
    use rustls::pki_types::pem::PemObject;
    let bad = |w: &str| AcmeError::Order(format!("the stored certificate: {w}"));
    let certs = rustls::pki_types::CertificateDer::pem_slice_iter(chain.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| bad("no PEM certificate"))?;
    if certs.is_empty() {
        return Err(bad("no PEM certificate"));
    }
    let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).map_err(|_| bad("no PEM key"))?;
    let signer = rustls::crypto::ring::default_provider()
        .key_provider
        .load_private_key(key)
        .map_err(|_| bad("unsupported key"))?;
    let certified = CertifiedKey::new(certs, signer);
    match certified.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
            Ok(certified)
        }
        Err(_) => Err(bad("the key does not belong to the certificate")),
    }
}

/// instant-acme's HTTP through reqwest: rustls on ring, the system's roots plus
/// `acme_ca_file`, a bound on every request.
struct ReqwestHttp(reqwest::Client);

impl ReqwestHttp {
    fn new(ca_file: Option<&Path>) -> Result<ReqwestHttp, AcmeError> {
        let mut b = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("mamori-server/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = ca_file {
            let bad = |reason: String| AcmeError::CaFile {
                path: path.to_path_buf(),
                reason,
            };
            let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
            let certs =
                reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| bad(e.to_string()))?;
            if certs.is_empty() {
                return Err(bad("no PEM certificate in it".into()));
            }
            for c in certs {
                b = b.add_root_certificate(c);
            }
        }
        b.build()
            .map(ReqwestHttp)
            .map_err(|e| AcmeError::Order(format!("HTTP client: {e}")))
    }
}

impl HttpClient for ReqwestHttp {
    fn request(
        &self,
        req: axum::http::Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, instant_acme::Error>> + Send>> {
        let client = self.0.clone();
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let body = match body.collect().await {
                Ok(b) => b.to_bytes(),
                Err(never) => match never {},
            };
            let resp = client
                .request(parts.method, parts.uri.to_string())
                .headers(parts.headers)
                .body(body)
                .send()
                .await
                .map_err(|e| instant_acme::Error::Other(Box::new(e)))?;
            let mut out = axum::http::Response::builder().status(resp.status());
            if let Some(h) = out.headers_mut() {
                *h = resp.headers().clone();
            }
            let bytes = resp
                .bytes()
                .await
                .map_err(|e| instant_acme::Error::Other(Box::new(e)))?;
            let out = out
                .body(http_body_util::Full::new(bytes))
                .map_err(|e| instant_acme::Error::Other(Box::new(e)))?;
            Ok(BytesResponse::from(out))
        })
    }
}

/// Writes `data` to `path` with mode 0600, aside then renamed into place.
fn write_private(path: &Path, data: &[u8]) -> Result<(), AcmeError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let err = |source| AcmeError::Storage {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(err)?;
    f.write_all(data).map_err(err)?;
    f.sync_all().map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

/// The stored certificate and key, parsed; `None` when absent or unusable.
async fn load_stored(s: &AcmeSettings) -> Option<CertifiedKey> {
    let (chain, key) = read_stored(s).await?;
    match parse(&chain, &key) {
        Ok(k) => Some(k),
        Err(e) => {
            tracing::warn!(error = %e, "acme: the stored certificate cannot be used; ordering a new one");
            None
        }
    }
}

/// Whether `info` needs replacing at `now` (Unix seconds): for another name, or less than
/// a third of its lifetime left.
fn needs_renewal(info: &CertInfo, not_before: i64, domain: &str, now: i64) -> bool {
    let ours = info.names.iter().any(|n| {
        n.strip_prefix("DNS:")
            .is_some_and(|d| d.eq_ignore_ascii_case(domain))
    });
    let end = info.not_after.unix_timestamp();
    let lifetime = (end - not_before).max(1);
    !ours || end - now < lifetime / 3
}

fn not_before(key: &CertifiedKey) -> Option<i64> {
    let der = key.cert.first()?;
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
    Some(cert.validity().not_before.timestamp())
}

/// Whether `key` (the served or the stored certificate) must be replaced.
fn due(key: Option<&CertifiedKey>, s: &AcmeSettings) -> bool {
    let Some(key) = key else {
        return true;
    };
    let (Some(info), Some(nb)) = (
        key.cert.first().and_then(|c| CertInfo::of(c).ok()),
        not_before(key),
    ) else {
        return true;
    };
    needs_renewal(
        &info,
        nb,
        &s.domain,
        time::OffsetDateTime::now_utc().unix_timestamp(),
    )
}

/// The account: the stored one, else a new one (stored before it is used).
async fn account(s: &AcmeSettings) -> Result<Account, AcmeError> {
    let http =
        || ReqwestHttp::new(s.ca_file.as_deref()).map(|h| Box::new(h) as Box<dyn HttpClient>);
    let stored: Option<Zeroizing<Vec<u8>>> = match &s.storage {
        Storage::Files => std::fs::read(s.account_file()).ok().map(Zeroizing::new),
        Storage::Database { svc, .. } => svc
            .tls_state_get(&s.db_account())
            .await
            .map_err(|e| AcmeError::Order(format!("reading the account: {e}")))?,
    };
    if let Some(text) = stored {
        if let Ok(creds) = serde_json::from_slice::<AccountCredentials>(&text) {
            return Ok(Account::builder_with_http(http()?)
                .from_credentials(creds)
                .await?);
        }
        tracing::warn!("acme: the stored account cannot be read; creating a new one");
    }
    let contact: Vec<&str> = s.contact.as_deref().into_iter().collect();
    let (account, creds) = Account::builder_with_http(http()?)
        .create(
            &NewAccount {
                contact: &contact,
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            s.directory.clone(),
            None,
        )
        .await?;
    let json =
        Zeroizing::new(serde_json::to_vec(&creds).map_err(|e| AcmeError::Order(e.to_string()))?);
    match &s.storage {
        Storage::Files => {
            std::fs::create_dir_all(&s.dir).map_err(|source| AcmeError::Storage {
                path: s.dir.clone(),
                source,
            })?;
            write_private(&s.account_file(), &json)?;
        }
        Storage::Database { svc, .. } => svc
            .tls_state_put(&s.db_account(), &json, now())
            .await
            .map_err(|e| AcmeError::Order(format!("storing the account: {e}")))?,
    }
    tracing::info!(id = account.id(), "acme: created the account");
    Ok(account)
}

/// The TLS-ALPN-01 validation certificate for `domain` (RFC 8737 section 3).
fn alpn_certificate(domain: &str, digest: &[u8]) -> Result<CertifiedKey, AcmeError> {
    let bad = |e: rcgen::Error| AcmeError::Order(format!("validation certificate: {e}"));
    let key = rcgen::KeyPair::generate().map_err(bad)?;
    let mut p = rcgen::CertificateParams::new(vec![domain.to_string()]).map_err(bad)?;
    p.custom_extensions = vec![rcgen::CustomExtension::new_acme_identifier(digest)];
    let cert = p.self_signed(&key).map_err(bad)?;
    let der = PrivateKeyDer::try_from(key.serialize_der())
        .map_err(|e| AcmeError::Order(format!("validation key: {e}")))?;
    let signer = rustls::crypto::ring::default_provider()
        .key_provider
        .load_private_key(der)
        .map_err(|e| AcmeError::Order(format!("validation key: {e}")))?;
    Ok(CertifiedKey::new(vec![cert.der().clone()], signer))
}

/// Orders a certificate: (chain PEM, key PEM).
async fn order(
    s: &AcmeSettings,
    challenges: &Challenges,
) -> Result<(String, Zeroizing<String>), AcmeError> {
    let account = account(s).await?;
    let ids = [Identifier::Dns(s.domain.clone())];
    let mut order = account.new_order(&NewOrder::new(&ids)).await?;
    let kind = if s.http01 {
        ChallengeType::Http01
    } else {
        ChallengeType::TlsAlpn01
    };
    {
        let mut authzs = order.authorizations();
        while let Some(a) = authzs.next().await {
            let mut a = a?;
            if a.status == instant_acme::AuthorizationStatus::Valid {
                continue;
            }
            let mut ch = a
                .challenge(kind.clone())
                .ok_or_else(|| AcmeError::Order(format!("the CA offers no {kind:?} challenge")))?;
            let key_auth = ch.key_authorization();
            if s.http01 {
                challenges.put_http01(ch.token.clone(), key_auth.as_str().to_string());
            } else {
                let cert = alpn_certificate(&s.domain, key_auth.digest().as_ref())?;
                challenges.put_alpn(&s.domain, Arc::new(cert));
            }
            ch.set_ready().await?;
        }
    }
    let retry = RetryPolicy::new()
        .initial_delay(Duration::from_millis(250))
        .timeout(Duration::from_secs(90));
    let status = order.poll_ready(&retry).await?;
    if status != OrderStatus::Ready {
        return Err(AcmeError::Order(format!(
            "the order is {status:?}, not ready: the CA could not validate {} (see the CA's \
             problem in the order's authorization)",
            s.domain
        )));
    }
    let key = rcgen::KeyPair::generate()
        .map_err(|e| AcmeError::Order(format!("certificate key: {e}")))?;
    let mut p = rcgen::CertificateParams::new(vec![s.domain.clone()])
        .map_err(|e| AcmeError::Order(format!("CSR: {e}")))?;
    p.distinguished_name = rcgen::DistinguishedName::new();
    let csr = p
        .serialize_request(&key)
        .map_err(|e| AcmeError::Order(format!("CSR: {e}")))?;
    order.finalize_csr(csr.der()).await?;
    let chain = order.poll_certificate(&retry).await?;
    Ok((chain, Zeroizing::new(key.serialize_pem())))
}

/// Orders, stores and serves a new certificate.
async fn renew(
    s: &AcmeSettings,
    certs: &Certificates,
    challenges: &Challenges,
) -> Result<Option<CertInfo>, AcmeError> {
    let got = order(s, challenges).await;
    // Whatever happened, the challenges are no longer answered.
    challenges.clear();
    let (chain, key) = got?;
    let certified = parse(&chain, &key)?;
    write_stored(s, &chain, &key).await?;
    Ok(certs.set(certified))
}

/// One check: serves what another node stored, and orders when the certificate is due (with
/// the database, only under the lease).
async fn check(
    s: &AcmeSettings,
    certs: &Certificates,
    challenges: &Challenges,
) -> Result<Option<CertInfo>, AcmeError> {
    if let Storage::Database { svc, node } = &s.storage {
        // Another node may have renewed: serve the stored certificate if it is another one.
        if let Some(stored) = load_stored(s).await {
            let served = certs.current_key();
            let same = served.as_ref().and_then(|k| k.cert.first()) == stored.cert.first();
            if !same && !due(Some(&stored), s) {
                return Ok(certs.set(stored));
            }
        }
        if !due(certs.current_key().as_deref(), s) {
            return Ok(None);
        }
        let lease = format!("acme:order:{}", s.domain);
        let held = svc
            .tls_lease(&lease, node, now(), LEASE_SECS)
            .await
            .map_err(|e| AcmeError::Order(format!("the ordering lease: {e}")))?;
        if !held {
            tracing::debug!("acme: another node is ordering the certificate");
            return Ok(None);
        }
        tracing::info!(domain = %s.domain, directory = %s.directory, node = %node, "acme: ordering a certificate (this node holds the lease)");
        let r = renew(s, certs, challenges).await;
        if let Err(e) = svc.tls_lease_release(&lease, node).await {
            tracing::warn!(error = %e, "acme: releasing the ordering lease failed (it expires by itself)");
        }
        return r;
    }
    if !due(certs.current_key().as_deref(), s) {
        return Ok(None);
    }
    tracing::info!(domain = %s.domain, directory = %s.directory, "acme: ordering a certificate");
    renew(s, certs, challenges).await
}

/// Serves the stored certificate at start-up, if there is a usable one for the domain.
pub async fn start(s: &AcmeSettings, certs: &Certificates) -> Option<CertInfo> {
    let key = load_stored(s).await?;
    let expired = key
        .cert
        .first()
        .and_then(|c| CertInfo::of(c).ok())
        .is_none_or(|i| i.not_after.unix_timestamp() <= now());
    if expired {
        // Nothing worth serving: handshakes fail until the new one is obtained.
        return None;
    }
    certs.set(key)
}

/// Keeps a certificate served: checks at once, then every `s.check`.
pub fn spawn(
    s: AcmeSettings,
    certs: Arc<Certificates>,
    challenges: Arc<Challenges>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let mut wait = s.check;
            match check(&s, &certs, &challenges).await {
                Ok(Some(info)) => tracing::info!(
                    serial = %info.serial,
                    "tls: acme: serving a new certificate; {}",
                    info.describe()
                ),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "acme: ordering a certificate failed; still serving the previous one, if any");
                    if certs.current_key().is_none() {
                        wait = wait.min(Duration::from_secs(60));
                    }
                }
            }
            tokio::time::sleep(wait).await;
        }
    })
}

/// The end of validity (Unix seconds) of the certificate a server with `config` serves, read
/// without the server (the admin command line's review): the certificate file's first
/// certificate, or with ACME the stored one.
pub async fn configured_expiry(
    config: &crate::config::Config,
    svc: &Arc<crate::domain::Service>,
) -> Option<i64> {
    let pem = if let Some((cert, _)) = config.tls.files() {
        std::fs::read(cert).ok()?
    } else if config.tls.acme {
        stored_chain(config, svc).await?.into_bytes()
    } else {
        return None;
    };
    use rustls::pki_types::pem::PemObject;
    let first = rustls::pki_types::CertificateDer::pem_slice_iter(&pem)
        .next()?
        .ok()?;
    CertInfo::of(&first)
        .ok()
        .map(|i| i.not_after.unix_timestamp())
}
