//! #22: HTTPS from certificate files, over real TLS on loopback with certificates made here
//! (rcgen): served with HSTS and `Secure` cookies, refused in plain HTTP, renewed on disk and
//! picked up without a restart (by polling and on SIGHUP), a broken renewal ignored, bad
//! files refused at start with the file named.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SerialNumber};
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::json;

use super::common::*;

pub struct Ca {
    pub cert: rcgen::Certificate,
    key: KeyPair,
}

pub fn ca() -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name
        .push(DnType::CommonName, "mamori test CA");
    let cert = p.self_signed(&key).unwrap();
    Ca { cert, key }
}

/// A leaf for `localhost` and 127.0.0.1 (plus `extra`): (chain PEM, key PEM, leaf DER).
fn leaf(ca: &Ca, serial: u64, extra: &[&str]) -> (String, String, Vec<u8>) {
    leaf_until(ca, serial, extra, None)
}

/// As [`leaf`], valid until `not_after` (rcgen's default, 4096, when `None`).
pub fn leaf_until(
    ca: &Ca,
    serial: u64,
    extra: &[&str],
    not_after: Option<time::OffsetDateTime>,
) -> (String, String, Vec<u8>) {
    let key = KeyPair::generate().unwrap();
    let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    names.extend(extra.iter().map(|s| s.to_string()));
    let mut p = CertificateParams::new(names).unwrap();
    if let Some(t) = not_after {
        p.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(1);
        p.not_after = t;
    }
    p.serial_number = Some(SerialNumber::from(serial));
    p.distinguished_name
        .push(DnType::CommonName, format!("mamori test {serial}"));
    let cert = p.signed_by(&key, &ca.cert, &ca.key).unwrap();
    // The chain as a CA hands it out: leaf first, then the issuer.
    let chain = format!("{}{}", cert.pem(), ca.cert.pem());
    (chain, key.serialize_pem(), cert.der().to_vec())
}

/// Replaces a file the way renewal tools do (write aside, rename over).
fn replace(path: &Path, text: &str) {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

pub fn write_pair(dir: &Path, chain: &str, key: &str) -> (PathBuf, PathBuf) {
    std::fs::create_dir_all(dir).unwrap();
    let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
    replace(&c, chain);
    replace(&k, key);
    (c, k)
}

fn https_client(ca: &Ca) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.cert.pem().as_bytes()).unwrap())
        .tls_built_in_root_certs(false)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

fn start(data: &Path, cert: &Path, key: &Path, reload_secs: &str) -> Server {
    let srv = Server::start(
        data,
        None,
        &[
            ("MAMORI_TLS_CERT_FILE", cert.to_str().unwrap()),
            ("MAMORI_TLS_KEY_FILE", key.to_str().unwrap()),
            ("MAMORI_TLS_RELOAD_SECS", reload_secs),
        ],
    );
    assert!(srv.url.starts_with("https://127.0.0.1:"), "{}", srv.url);
    srv
}

fn port(srv: &Server) -> u16 {
    srv.url.rsplit(':').next().unwrap().parse().unwrap()
}

/// The certificate a fresh TLS connection is served (checked against the test CA), and the
/// negotiated ALPN protocol.
async fn peer_cert(port: u16, ca: &Ca) -> (Vec<u8>, Option<Vec<u8>>) {
    peer_cert_offering(port, ca, &[b"h2", b"http/1.1"]).await
}

/// As [`peer_cert`], offering the ALPN protocols `alpn`.
async fn peer_cert_offering(port: u16, ca: &Ca, alpn: &[&[u8]]) -> (Vec<u8>, Option<Vec<u8>>) {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(ca.cert.der().to_vec()))
        .unwrap();
    let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let (_, conn) = tls.get_ref();
    (
        conn.peer_certificates().unwrap()[0].to_vec(),
        conn.alpn_protocol().map(|p| p.to_vec()),
    )
}

/// Waits (15 s) until new connections are served `want`.
async fn wait_served(port: u16, ca: &Ca, want: &[u8]) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if peer_cert(port, ca).await.0 == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the new certificate was never served"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn log_of(srv: &Server) -> String {
    std::fs::read_to_string(srv.data_dir.join("server.log")).unwrap_or_default()
}

#[tokio::test]
async fn serves_https_with_hsts_and_secure_cookies_and_refuses_plain_http() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca();
    let (chain, key, der) = leaf(&ca, 1, &[]);
    let (c, k) = write_pair(&dir.path().join("tls"), &chain, &key);
    let mut srv = start(&dir.path().join("data"), &c, &k, "10");
    srv.client = https_client(&ca);

    let (s, h, _) = srv.call("GET", "/healthz", None, None).await;
    assert_eq!(s, 200);
    assert_eq!(h["strict-transport-security"], "max-age=31536000");
    let (served, alpn) = peer_cert(port(&srv), &ca).await;
    assert_eq!(served, der);
    // A client offering both gets HTTP/2.
    assert_eq!(alpn.as_deref(), Some(&b"h2"[..]));

    // Signing in works over HTTPS, and the session cookie is `Secure` (public URL https).
    let (s, v) = srv
        .post(
            "/api/v1/setup",
            None,
            json!({"token": srv.setup_token(), "password": PASSWORD}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, h, v) = srv
        .call(
            "POST",
            "/api/v1/sign-in",
            None,
            Some(json!({"user": "root", "password": PASSWORD})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let cookie = h["set-cookie"].to_str().unwrap();
    assert!(cookie.contains("; Secure"), "{cookie}");
    assert!(h.contains_key("strict-transport-security"));
    assert!(srv
        .setup_link
        .as_deref()
        .unwrap()
        .starts_with("https://localhost:"));

    // Plain HTTP to the TLS port gets no answer.
    let plain = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap()
        .get(format!("http://127.0.0.1:{}/healthz", port(&srv)))
        .send()
        .await;
    match plain {
        Err(_) => {}
        Ok(r) => assert!(!r.status().is_success(), "{}", r.status()),
    }

    // The real counterpart: curl trusting the test CA.
    if Command::new("curl").arg("--version").output().is_ok() {
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca.cert.pem()).unwrap();
        let out = Command::new("curl")
            .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
            .arg(&ca_file)
            .arg(format!("{}/healthz", srv.url))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "200", "{out:?}");
    }
    assert!(log_of(&srv).contains("tls: serving certificate for"));
    assert!(srv.stop());
}

#[tokio::test]
async fn a_renewed_certificate_is_served_without_a_restart_and_a_broken_one_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca();
    let (chain, key, der1) = leaf(&ca, 1, &[]);
    let tls_dir = dir.path().join("tls");
    let (c, k) = write_pair(&tls_dir, &chain, &key);
    let mut srv = start(&dir.path().join("data"), &c, &k, "1");
    srv.client = https_client(&ca);
    assert_eq!(peer_cert(port(&srv), &ca).await.0, der1);

    // Renewed on disk: another serial and name, another key.
    let (chain2, key2, der2) = leaf(&ca, 2, &["renewed.test"]);
    write_pair(&tls_dir, &chain2, &key2);
    wait_served(port(&srv), &ca, &der2).await;
    let (s, _, _) = srv.call("GET", "/healthz", None, None).await;
    assert_eq!(s, 200);

    // A broken renewal: the previous certificate stays, with a warning that quotes no key.
    replace(&c, "not a certificate\n");
    let deadline = Instant::now() + Duration::from_secs(15);
    while !log_of(&srv).contains("reloading the certificate failed") {
        assert!(Instant::now() < deadline, "no warning: {}", log_of(&srv));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(peer_cert(port(&srv), &ca).await.0, der2);
    // A certificate that does not match the key on disk is refused too.
    let (chain3, _, _) = leaf(&ca, 3, &[]);
    replace(&c, &chain3);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(peer_cert(port(&srv), &ca).await.0, der2);
    let log = log_of(&srv);
    assert!(log.contains("does not belong"), "{log}");
    assert!(!log.contains("PRIVATE KEY"), "{log}");
    let key_body = key2.lines().nth(1).unwrap();
    assert!(!log.contains(key_body), "{log}");
    assert!(srv.stop());
}

#[tokio::test]
async fn sighup_reloads_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca();
    let (chain, key, der1) = leaf(&ca, 1, &[]);
    let tls_dir = dir.path().join("tls");
    let (c, k) = write_pair(&tls_dir, &chain, &key);
    // Polling an hour apart: only the signal can explain a reload within the test.
    let mut srv = start(&dir.path().join("data"), &c, &k, "3600");
    assert_eq!(peer_cert(port(&srv), &ca).await.0, der1);
    let (chain2, key2, der2) = leaf(&ca, 2, &[]);
    write_pair(&tls_dir, &chain2, &key2);
    let st = Command::new("kill")
        .arg("-HUP")
        .arg(srv.pid().to_string())
        .status()
        .unwrap();
    assert!(st.success());
    wait_served(port(&srv), &ca, &der2).await;
    // SIGHUP reloads; it does not stop the server.
    assert!(srv.stop());
}

/// Runs `serve` expecting it to refuse to start: returns its standard error.
fn refused(data: &Path, env: &[(&str, &str)]) -> String {
    let binary = Path::new(env!("CARGO_BIN_EXE_mamori-server"));
    let mut cmd = mamori_testkit::process::serve_command(binary, "127.0.0.1:0", data);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(!status.success());
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the server started with {env:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    err
}

#[test]
fn bad_files_refuse_start_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let ca = ca();
    let (chain_a, _key_a, _) = leaf(&ca, 1, &[]);
    let (_, key_b, _) = leaf(&ca, 2, &[]);
    let (c, k) = write_pair(&dir.path().join("tls"), &chain_a, &key_b);
    let (cs, ks) = (c.to_str().unwrap(), k.to_str().unwrap());

    let err = refused(
        &data,
        &[("MAMORI_TLS_CERT_FILE", cs), ("MAMORI_TLS_KEY_FILE", ks)],
    );
    assert!(err.contains(ks) && err.contains("does not belong"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(!err.contains("PRIVATE KEY"), "{err}");

    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let es = empty.to_str().unwrap();
    let err = refused(
        &data,
        &[("MAMORI_TLS_CERT_FILE", es), ("MAMORI_TLS_KEY_FILE", ks)],
    );
    assert!(err.contains("tls.cert_file") && err.contains(es), "{err}");

    // The certificate given as the key.
    let err = refused(
        &data,
        &[("MAMORI_TLS_CERT_FILE", cs), ("MAMORI_TLS_KEY_FILE", cs)],
    );
    assert!(err.contains("no PEM private key"), "{err}");

    let missing = dir.path().join("missing.pem");
    let ms = missing.to_str().unwrap();
    let err = refused(
        &data,
        &[("MAMORI_TLS_CERT_FILE", cs), ("MAMORI_TLS_KEY_FILE", ms)],
    );
    assert!(err.contains("tls.key_file") && err.contains(ms), "{err}");

    let err = refused(&data, &[("MAMORI_TLS_CERT_FILE", cs)]);
    assert!(err.contains("tls.key_file"), "{err}");

    let err = refused(
        &data,
        &[
            ("MAMORI_TLS_CERT_FILE", cs),
            ("MAMORI_TLS_KEY_FILE", ks),
            ("MAMORI_PUBLIC_URL", "http://mfa.example.com"),
        ],
    );
    assert!(err.contains("public_url"), "{err}");
}

/// A TLS ClientHello as a client of `version` (0x0301 TLS 1.0 … 0x0303 TLS 1.2) writes it,
/// with ECDHE-ECDSA/RSA AES-GCM and CBC suites, P-256 and X25519, and no `supported_versions`
/// extension (so the server sees exactly `version`).
fn client_hello(version: u16) -> Vec<u8> {
    fn ext(out: &mut Vec<u8>, kind: u16, body: &[u8]) {
        out.extend_from_slice(&kind.to_be_bytes());
        out.extend_from_slice(&(body.len() as u16).to_be_bytes());
        out.extend_from_slice(body);
    }
    let mut exts = Vec::new();
    // supported_groups: x25519, secp256r1.
    ext(&mut exts, 0x000a, &[0, 4, 0x00, 0x1d, 0x00, 0x17]);
    // ec_point_formats: uncompressed.
    ext(&mut exts, 0x000b, &[1, 0]);
    // signature_algorithms: ecdsa_secp256r1_sha256, rsa_pss_rsae_sha256, rsa_pkcs1_sha256.
    ext(
        &mut exts,
        0x000d,
        &[0, 6, 0x04, 0x03, 0x08, 0x04, 0x04, 0x01],
    );
    let mut body = Vec::new();
    body.extend_from_slice(&version.to_be_bytes());
    body.extend_from_slice(&[7u8; 32]);
    body.push(0); // no session id
    let suites: [u16; 4] = [0xc02b, 0xc02f, 0xc009, 0xc013];
    body.extend_from_slice(&((suites.len() * 2) as u16).to_be_bytes());
    for s in suites {
        body.extend_from_slice(&s.to_be_bytes());
    }
    body.extend_from_slice(&[1, 0]); // compression: null only
    body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    body.extend_from_slice(&exts);
    let mut hs = vec![1u8];
    hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(&body);
    let mut rec = vec![0x16, 0x03, 0x01];
    rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    rec.extend_from_slice(&hs);
    rec
}

/// Sends `hello` and returns the first record's header byte and first two body bytes.
async fn first_record(port: u16, hello: &[u8]) -> (u8, [u8; 2]) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    tcp.write_all(hello).await.unwrap();
    let mut head = [0u8; 7];
    tokio::time::timeout(Duration::from_secs(15), tcp.read_exact(&mut head))
        .await
        .expect("no answer to the ClientHello")
        .unwrap();
    (head[0], [head[5], head[6]])
}

#[tokio::test]
async fn speaks_h2_and_http11_and_refuses_tls_before_1_2() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca();
    let (chain, key, der) = leaf(&ca, 1, &[]);
    let (c, k) = write_pair(&dir.path().join("tls"), &chain, &key);
    let mut srv = start(&dir.path().join("data"), &c, &k, "10");
    let p = port(&srv);

    // ALPN: h2 when offered, HTTP/1.1 for a client that offers only it.
    let (served, alpn) = peer_cert_offering(p, &ca, &[b"h2", b"http/1.1"]).await;
    assert_eq!(served, der);
    assert_eq!(alpn.as_deref(), Some(&b"h2"[..]));
    let (_, alpn) = peer_cert_offering(p, &ca, &[b"http/1.1"]).await;
    assert_eq!(alpn.as_deref(), Some(&b"http/1.1"[..]));
    let (_, alpn) = peer_cert_offering(p, &ca, &[]).await;
    assert_eq!(alpn, None);

    // Requests over HTTP/2, with the same headers as over HTTP/1.1.
    let client = https_client(&ca);
    for _ in 0..3 {
        let r = client
            .get(format!("{}/healthz", srv.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.version(), reqwest::Version::HTTP_2);
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["strict-transport-security"], "max-age=31536000");
    }
    let r = client
        .post(format!("{}/api/v1/sign-in", srv.url))
        .json(&json!({"user": "root", "password": "wrong password here"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.status(), 401);
    let h1 = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.cert.pem().as_bytes()).unwrap())
        .tls_built_in_root_certs(false)
        .http1_only()
        .build()
        .unwrap();
    let r = h1.get(format!("{}/healthz", srv.url)).send().await.unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_11);
    assert_eq!(r.status(), 200);

    // curl, the real counterpart, negotiates HTTP/2 too.
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.cert.pem()).unwrap();
    let out = Command::new("curl")
        .args([
            "-sS",
            "--http2",
            "-o",
            "/dev/null",
            "-w",
            "%{http_version} %{http_code}",
        ])
        .arg("--cacert")
        .arg(&ca_file)
        .arg(format!("{}/healthz", srv.url))
        .output()
        .expect("curl is installed (.ci/run)");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "2 200", "{out:?}");

    // TLS 1.2 is answered with a ServerHello (handshake record)...
    let (kind, _) = first_record(p, &client_hello(0x0303)).await;
    assert_eq!(kind, 0x16, "a TLS 1.2 client must get a ServerHello");
    // ... TLS 1.1 and 1.0 with a fatal protocol_version alert.
    for version in [0x0302u16, 0x0301] {
        let (kind, alert) = first_record(p, &client_hello(version)).await;
        assert_eq!(kind, 0x15, "version {version:#06x} was not refused");
        assert_eq!(alert, [2, 70], "version {version:#06x}");
    }
    assert!(srv.stop());
}

#[tokio::test]
async fn the_redirect_listener_only_redirects_to_the_public_url() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca();
    let (chain, key, _) = leaf(&ca, 1, &[]);
    let (c, k) = write_pair(&dir.path().join("tls"), &chain, &key);
    let plain_port = mamori_testkit::process::free_port();
    let plain_addr = format!("127.0.0.1:{plain_port}");
    let mut srv = Server::start(
        &dir.path().join("data"),
        None,
        &[
            ("MAMORI_TLS_CERT_FILE", c.to_str().unwrap()),
            ("MAMORI_TLS_KEY_FILE", k.to_str().unwrap()),
            ("MAMORI_TLS_REDIRECT_LISTEN", plain_addr.as_str()),
        ],
    );
    let public = format!("https://localhost:{}", port(&srv));
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap();
    for (method, path) in [
        ("GET", "/"),
        ("GET", "/console/sign-in?next=%2Fconsole"),
        ("POST", "/api/v1/sign-in"),
        ("GET", "//evil.example/x"),
        ("GET", "/.well-known/acme-challenge/not-ours"),
    ] {
        let r = plain
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                format!("http://{plain_addr}{path}"),
            )
            // Whatever the client says its host is, the target is the public URL.
            .header("host", "evil.example")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 308, "{method} {path}");
        assert_eq!(r.headers()["location"], format!("{public}{path}").as_str());
        assert!(r.headers().get("set-cookie").is_none());
    }
    // A request line in absolute form gives its path only.
    let out = Command::new("curl")
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{redirect_url}",
        ])
        .args(["--request-target", "http://evil.example/abs?x=1"])
        .arg(format!("http://{plain_addr}/"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("308 {public}/abs?x=1"),
        "{out:?}"
    );
    // Following the redirect ends on the HTTPS server.
    let follow = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.cert.pem().as_bytes()).unwrap())
        .tls_built_in_root_certs(false)
        .resolve(
            "localhost",
            format!("127.0.0.1:{}", port(&srv)).parse().unwrap(),
        )
        .build()
        .unwrap();
    let r = follow
        .get(format!("http://{plain_addr}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.url().as_str(), format!("{public}/healthz"));
    assert!(srv.stop());
    // Both listeners are closed at shutdown.
    assert!(std::net::TcpStream::connect(&plain_addr).is_err());
}

#[test]
fn a_taken_redirect_port_refuses_start() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca();
    let (chain, key, _) = leaf(&ca, 1, &[]);
    let (c, k) = write_pair(&dir.path().join("tls"), &chain, &key);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let err = refused(
        &dir.path().join("data"),
        &[
            ("MAMORI_TLS_CERT_FILE", c.to_str().unwrap()),
            ("MAMORI_TLS_KEY_FILE", k.to_str().unwrap()),
            ("MAMORI_TLS_REDIRECT_LISTEN", addr.as_str()),
        ],
    );
    assert!(
        err.contains("tls.redirect_listen") && err.contains(&addr),
        "{err}"
    );
}

/// The value of a metric line without labels.
fn gauge(metrics: &str, name: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

fn review_outcome(review: &serde_json::Value, id: &str) -> (String, serde_json::Value) {
    let f = review["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == id)
        .unwrap_or_else(|| panic!("no {id} in {review}"));
    (
        f["outcome"].as_str().unwrap().to_string(),
        f["affected"].clone(),
    )
}

#[tokio::test]
async fn certificate_expiry_is_printed_exported_and_reviewed() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca();
    // Whole seconds: what a certificate holds.
    let soon = time::OffsetDateTime::from_unix_timestamp(
        time::OffsetDateTime::now_utc().unix_timestamp() + 10 * 86_400 + 1800,
    )
    .unwrap();
    let (chain, key, _) = leaf_until(&ca, 1, &[], Some(soon));
    let tls_dir = dir.path().join("tls");
    let (c, k) = write_pair(&tls_dir, &chain, &key);
    let mut srv = start(&dir.path().join("data"), &c, &k, "1");
    srv.client = https_client(&ca);

    // Start-up names the certificate: subject, issuer, expiry.
    let until = soon
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let log = log_of(&srv);
    let line = log
        .lines()
        .find(|l| l.contains("tls: serving certificate for"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(line.contains("CN=mamori test 1"), "{line}");
    assert!(line.contains("issued by CN=mamori test CA"), "{line}");
    assert!(line.contains(&format!("valid until {until}")), "{line}");

    let (s, m) = srv.get("/metrics", None).await;
    assert_eq!(s, 200);
    let m = m.as_str().unwrap().to_string();
    assert_eq!(
        gauge(&m, "mamori_tls_certificate_expiry_timestamp_seconds"),
        Some(soon.unix_timestamp() as f64),
        "{m}"
    );

    let token = srv.root_session().await;
    let (_, _, full) = srv.enroll(&token, "phone").await;
    let (s, review) = srv.get("/api/v1/review", Some(&full)).await;
    assert_eq!(s, 200, "{review}");
    let (outcome, affected) = review_outcome(&review, "DR-TLS-CERT-EXPIRY");
    assert_eq!(outcome, "fail");
    assert_eq!(
        affected,
        json!(["the certificate expires in 10 days (240 hours)"])
    );
    assert_eq!(review_outcome(&review, "DR-SECURE-TRANSPORT").0, "pass");
    // The command line reviews the same certificate, read from the file.
    let out = Command::new(env!("CARGO_BIN_EXE_mamori-server"))
        .args(["admin", "review", "--json", "--data-dir"])
        .arg(dir.path().join("data"))
        .env_remove("MAMORI_CONFIG")
        .env("MAMORI_TLS_CERT_FILE", &c)
        .env("MAMORI_TLS_KEY_FILE", &k)
        .output()
        .unwrap();
    let cli: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        review_outcome(&cli, "DR-TLS-CERT-EXPIRY"),
        ("fail".to_string(), affected)
    );

    // Renewed: 90 days. The gauge and the review follow without a restart.
    let later = time::OffsetDateTime::from_unix_timestamp(
        time::OffsetDateTime::now_utc().unix_timestamp() + 90 * 86_400,
    )
    .unwrap();
    let (chain2, key2, der2) = leaf_until(&ca, 2, &[], Some(later));
    write_pair(&tls_dir, &chain2, &key2);
    wait_served(port(&srv), &ca, &der2).await;
    let (_, m) = srv.get("/metrics", None).await;
    assert_eq!(
        gauge(
            m.as_str().unwrap(),
            "mamori_tls_certificate_expiry_timestamp_seconds"
        ),
        Some(later.unix_timestamp() as f64)
    );
    let (_, review) = srv.get("/api/v1/review", Some(&full)).await;
    assert_eq!(review_outcome(&review, "DR-TLS-CERT-EXPIRY").0, "pass");
    assert!(srv.stop());
}

#[tokio::test]
async fn without_built_in_tls_the_expiry_check_does_not_apply() {
    let dir = tempfile::tempdir().unwrap();
    let mut srv = Server::start(dir.path(), None, &[]);
    let token = srv.root_session().await;
    let (_, _, full) = srv.enroll(&token, "phone").await;
    let (s, review) = srv.get("/api/v1/review", Some(&full)).await;
    assert_eq!(s, 200, "{review}");
    assert_eq!(
        review_outcome(&review, "DR-TLS-CERT-EXPIRY").0,
        "not_applicable"
    );
    let (_, m) = srv.get("/metrics", None).await;
    assert_eq!(
        gauge(
            m.as_str().unwrap(),
            "mamori_tls_certificate_expiry_timestamp_seconds"
        ),
        None
    );
    assert!(srv.stop());
}
