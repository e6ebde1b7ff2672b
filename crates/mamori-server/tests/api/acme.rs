//! #22: certificates from an ACME CA, against Pebble (Let's Encrypt's ACME test server, the
//! Debian package `pebble`) started here on loopback with real validation
//! (`PEBBLE_VA_ALWAYS_VALID=0`): its validation authority resolves every name to 127.0.0.1
//! through `pebble-challtestsrv`'s DNS server (same package) and connects to the ports of
//! this test's server (`httpPort`/`tlsPort`). The server obtains a certificate for
//! `mfa.mamori.test`, serves it (a client trusting only Pebble's issuing root accepts it),
//! renews it when a third of its short lifetime remains, and keeps answering requests on a
//! connection opened before the renewal.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mamori_testkit::process::{free_port, serve_command, ServerProcess};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const DOMAIN: &str = "mfa.mamori.test";

/// A child process killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Pebble and its DNS server, with the CA of Pebble's own HTTPS listener.
struct Pebble {
    _dns: Proc,
    _pebble: Proc,
    directory: String,
    management: u16,
    /// The CA of Pebble's listeners (given to the server as `acme_ca_file`).
    ca_file: PathBuf,
    ca_pem: String,
}

fn wait_port(port: u16, what: &str, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not start: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Starts Pebble issuing certificates valid `validity_secs`, validating HTTP-01 on
/// `http_port` and TLS-ALPN-01 on `tls_port`.
fn pebble(dir: &Path, http_port: u16, tls_port: u16, validity_secs: u64) -> Pebble {
    std::fs::create_dir_all(dir).unwrap();
    // Pebble's own HTTPS certificate, from a CA made here.
    let ca_key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name
        .push(DnType::CommonName, "pebble listener test CA");
    let ca = p.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    let (cert_file, key_file, ca_file) = (
        dir.join("pebble.crt"),
        dir.join("pebble.key"),
        dir.join("pebble-ca.crt"),
    );
    std::fs::write(&cert_file, leaf.pem()).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    std::fs::write(&ca_file, ca.pem()).unwrap();

    let dns_port = free_port();
    let dns_log = dir.join("dns.log");
    let dns = Proc(
        Command::new("pebble-challtestsrv")
            .args(["-dns01", &format!("127.0.0.1:{dns_port}")])
            .args(["-management", &format!("127.0.0.1:{}", free_port())])
            .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
            .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
            .stdout(Stdio::from(std::fs::File::create(&dns_log).unwrap()))
            .stderr(Stdio::from(
                std::fs::File::create(dir.join("dns.err")).unwrap(),
            ))
            .spawn()
            .expect("pebble-challtestsrv (Debian package pebble, .ci/run)"),
    );
    let (listen, management) = (free_port(), free_port());
    let config = serde_json::json!({"pebble": {
        "listenAddress": format!("127.0.0.1:{listen}"),
        "managementListenAddress": format!("127.0.0.1:{management}"),
        "certificate": cert_file,
        "privateKey": key_file,
        "httpPort": http_port,
        "tlsPort": tls_port,
        "ocspResponderURL": "",
        "externalAccountBindingRequired": false,
        "certificateValidityPeriod": validity_secs,
    }});
    let config_file = dir.join("pebble.json");
    std::fs::write(&config_file, config.to_string()).unwrap();
    let log = dir.join("pebble.log");
    let pebble = Proc(
        Command::new("pebble")
            .arg("-config")
            .arg(&config_file)
            .args(["-dnsserver", &format!("127.0.0.1:{dns_port}")])
            // Real validation, without Pebble's random waits; no random nonce rejections or
            // reused authorizations, so each order validates its challenge.
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_VA_ALWAYS_VALID", "0")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .env("PEBBLE_AUTHZREUSE", "0")
            .stdout(Stdio::from(std::fs::File::create(&log).unwrap()))
            .stderr(Stdio::from(
                std::fs::OpenOptions::new().append(true).open(&log).unwrap(),
            ))
            .spawn()
            .expect("pebble (Debian package pebble, .ci/run)"),
    );
    wait_port(listen, "pebble", &log);
    wait_port(management, "pebble management", &log);
    Pebble {
        _dns: dns,
        _pebble: pebble,
        directory: format!("https://127.0.0.1:{listen}/dir"),
        management,
        ca_file,
        ca_pem: ca.pem(),
    }
}

impl Pebble {
    /// The root Pebble issues under (random for each Pebble run), from its management API.
    async fn issuing_root(&self) -> Vec<u8> {
        let client = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(self.ca_pem.as_bytes()).unwrap())
            .tls_built_in_root_certs(false)
            .build()
            .unwrap();
        let pem = client
            .get(format!("https://127.0.0.1:{}/roots/0", self.management))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        use rustls::pki_types::pem::PemObject;
        CertificateDer::from_pem_slice(pem.as_bytes())
            .unwrap()
            .to_vec()
    }
}

fn client_config(root: &[u8]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(root.to_vec())).unwrap();
    let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(cfg)
}

type Tls = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

/// A verified TLS connection to `DOMAIN` on `port`, or the handshake's error.
async fn connect(port: u16, root: &[u8]) -> Result<Tls, String> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| e.to_string())?;
    tokio_rustls::TlsConnector::from(client_config(root))
        .connect(ServerName::try_from(DOMAIN).unwrap(), tcp)
        .await
        .map_err(|e| e.to_string())
}

fn leaf_of(tls: &Tls) -> Vec<u8> {
    tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

/// One `GET /healthz` on an open HTTP/1.1 connection: the status.
async fn healthz(tls: &mut Tls) -> u16 {
    tls.write_all(
        format!("GET /healthz HTTP/1.1\r\nHost: {DOMAIN}\r\nConnection: keep-alive\r\n\r\n")
            .as_bytes(),
    )
    .await
    .unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = tls.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the connection was closed");
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        if let Some(head_end) = text.find("\r\n\r\n") {
            let len: usize = text[..head_end]
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            if buf.len() >= head_end + 4 + len {
                return text[9..12].parse().unwrap();
            }
        }
    }
}

fn start_server(dir: &Path, port: u16, p: &Pebble, extra: &[(&str, &str)]) -> ServerProcess {
    start_node(dir, port, port, p, extra)
}

/// A server listening on `port`, with the public URL's port `public_port` (nodes behind one
/// address share it).
fn start_node(
    dir: &Path,
    port: u16,
    public_port: u16,
    p: &Pebble,
    extra: &[(&str, &str)],
) -> ServerProcess {
    let binary = Path::new(env!("CARGO_BIN_EXE_mamori-server"));
    let mut cmd = serve_command(binary, &format!("127.0.0.1:{port}"), dir);
    cmd.env(
        "MAMORI_PUBLIC_URL",
        format!("https://{DOMAIN}:{public_port}"),
    )
    .env("MAMORI_TLS_ACME", "true")
    .env("MAMORI_TLS_ACME_DIRECTORY", &p.directory)
    .env("MAMORI_TLS_ACME_CA_FILE", &p.ca_file)
    .env("MAMORI_TLS_ACME_CONTACT", "ops@mamori.test")
    .env("MAMORI_TLS_ACME_CHECK_SECS", "1");
    for (k, v) in extra {
        cmd.env(k, v);
    }
    ServerProcess::spawn(cmd, &dir.join("server.log"))
}

/// Waits (`secs`) until a fresh connection is served a certificate Pebble's root verifies
/// and that differs from `not`; returns it.
async fn wait_certificate(
    port: u16,
    root: &[u8],
    not: Option<&[u8]>,
    secs: u64,
    log: &Path,
) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Ok(tls) = connect(port, root).await {
            let leaf = leaf_of(&tls);
            if Some(leaf.as_slice()) != not {
                return leaf;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no (new) certificate served; server log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn file_mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn obtains_serves_and_renews_with_tls_alpn_01_without_dropping_connections() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // 90 s certificates: renewed when less than 30 s remain.
    let p = pebble(&dir.path().join("pebble"), free_port(), port, 90);
    let data = dir.path().join("data");
    let mut srv = start_server(&data, port, &p, &[]);
    let log = data.join("server.log");
    let root = p.issuing_root().await;

    let first = wait_certificate(port, &root, None, 60, &log).await;
    let (_, cert) = x509_parser::parse_x509_certificate(&first).unwrap();
    let san = cert.subject_alternative_name().unwrap().unwrap();
    assert_eq!(
        format!("{:?}", san.value.general_names),
        format!("[DNSName(\"{DOMAIN}\")]")
    );
    let lifetime = cert.validity().not_after.timestamp() - cert.validity().not_before.timestamp();
    assert!(lifetime <= 91, "{lifetime}");

    // Stored in the data directory, private.
    let acme = data.join("acme");
    for f in [
        "account.json",
        &format!("{DOMAIN}.crt.pem"),
        &format!("{DOMAIN}.key.pem"),
    ] {
        assert_eq!(file_mode(&acme.join(f)), 0o600, "{f}");
    }
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("acme: created the account"), "{text}");
    assert!(!text.contains("PRIVATE KEY"));
    // Nothing listens on Pebble's HTTP-01 port: TLS-ALPN-01 on the HTTPS listener validated.
    let pebble_log = std::fs::read_to_string(dir.path().join("pebble/pebble.log")).unwrap();
    assert!(!pebble_log.contains("validate w/ HTTP"), "{pebble_log}");
    assert!(
        pebble_log.contains("set VALID by completed challenge"),
        "{pebble_log}"
    );

    // A connection opened now keeps answering across the renewal.
    let mut open = connect(port, &root).await.unwrap();
    assert_eq!(leaf_of(&open), first);
    assert_eq!(healthz(&mut open).await, 200);
    let deadline = Instant::now() + Duration::from_secs(120);
    let renewed = loop {
        assert_eq!(healthz(&mut open).await, 200);
        if let Ok(tls) = connect(port, &root).await {
            let leaf = leaf_of(&tls);
            if leaf != first {
                break leaf;
            }
        }
        assert!(
            Instant::now() < deadline,
            "never renewed:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(healthz(&mut open).await, 200);
    assert_eq!(
        leaf_of(&open),
        first,
        "the open connection keeps its certificate"
    );
    let (_, cert2) = x509_parser::parse_x509_certificate(&renewed).unwrap();
    assert_ne!(cert2.raw_serial(), cert.raw_serial());
    assert!(srv.stop());

    // A restart serves the stored certificate at once (no new account).
    let stored = std::fs::read_to_string(acme.join(format!("{DOMAIN}.crt.pem"))).unwrap();
    let mut srv = start_server(&data, port, &p, &[]);
    let now = connect(port, &root).await.unwrap();
    let served = leaf_of(&now);
    use rustls::pki_types::pem::PemObject;
    let on_disk = CertificateDer::pem_slice_iter(stored.as_bytes())
        .next()
        .unwrap()
        .unwrap()
        .to_vec();
    // The stored one, or (if it got within a third of its life meanwhile) its successor.
    assert!(
        served == on_disk || served != first,
        "served the first certificate again"
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        text.matches("acme: created the account").count(),
        1,
        "{text}"
    );
    assert!(srv.stop());
}

#[tokio::test]
async fn obtains_with_http_01_through_the_redirect_listener() {
    let dir = tempfile::tempdir().unwrap();
    let (port, plain) = (free_port(), free_port());
    let p = pebble(&dir.path().join("pebble"), plain, free_port(), 3600);
    let data = dir.path().join("data");
    let plain_addr = format!("127.0.0.1:{plain}");
    let mut srv = start_server(
        &data,
        port,
        &p,
        &[("MAMORI_TLS_REDIRECT_LISTEN", plain_addr.as_str())],
    );
    let log = data.join("server.log");
    let root = p.issuing_root().await;
    let leaf = wait_certificate(port, &root, None, 60, &log).await;
    let (_, cert) = x509_parser::parse_x509_certificate(&leaf).unwrap();
    assert!(
        cert.issuer().to_string().contains("Pebble"),
        "{}",
        cert.issuer()
    );
    // Pebble's TLS-ALPN-01 port is closed: only HTTP-01 can have validated.
    let text = std::fs::read_to_string(dir.path().join("pebble/pebble.log")).unwrap();
    assert!(text.contains("Attempting to validate w/ HTTP"), "{text}");
    // After the order the redirect listener redirects the challenge path too.
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("http://{plain_addr}/.well-known/acme-challenge/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 308);
    assert!(srv.stop());
}

#[tokio::test]
async fn two_postgresql_nodes_one_orders_and_both_serve_the_same_certificate() {
    let db = mamori_server::testing::TempDatabase::create()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (port_a, port_b) = (free_port(), free_port());
    let p = pebble(&dir.path().join("pebble"), free_port(), port_a, 3600);
    // One data directory for the server key, as nodes share theirs (docs/server.md).
    let data = dir.path().join("data");
    let db_arg = ("MAMORI_DATABASE", db.url.as_str());
    let mut a = start_node(&data, port_a, port_a, &p, &[db_arg]);
    let log = data.join("server.log");
    let root = p.issuing_root().await;
    let leaf = wait_certificate(port_a, &root, None, 60, &log).await;

    // Nothing is written to the data directory: the state is in the database, sealed.
    assert!(!data.join("acme").join(format!("{DOMAIN}.key.pem")).exists());
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let rows: Vec<(String, Vec<u8>)> = sqlx::query_as("SELECT name, value FROM tls_state")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(rows.len(), 2, "the account and the certificate");
    for (name, value) in &rows {
        let text = String::from_utf8_lossy(value);
        assert!(
            !text.contains("BEGIN") && !text.contains("key_pkcs8"),
            "{name} is not sealed"
        );
    }
    pool.close().await;

    // The second node serves the same certificate without ordering one.
    let mut b = start_node(&data, port_b, port_a, &p, &[db_arg]);
    let served_b = wait_certificate(port_b, &root, None, 30, &log).await;
    assert_eq!(served_b, leaf);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let pebble_log = std::fs::read_to_string(dir.path().join("pebble/pebble.log")).unwrap();
    assert_eq!(
        pebble_log.matches("Issued certificate serial").count(),
        1,
        "{pebble_log}"
    );
    assert_eq!(pebble_log.matches("There are now 1 accounts").count(), 1);
    assert!(a.stop());
    assert!(b.stop());
}
