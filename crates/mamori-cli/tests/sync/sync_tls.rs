//! `mamori sync` over `https://`: a real `mamori-server` behind a TLS-terminating proxy that
//! this test runs (rustls, with a certificate for `localhost` from a throwaway CA made here).
//! The client must refuse the server until the CA is trusted through `MAMORI_SYNC_CA_FILE`, and
//! then set up and join sync through it exactly as over plain HTTP.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use crate::sync_common::{now, totp, Device, Server};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// Writes `ca.pem` into `dir` and returns a TLS server configuration for `localhost` whose
/// certificate that CA signed.
fn certificates(dir: &Path) -> rustls::ServerConfig {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();

    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &ca, &ca_key)
        .unwrap();
    let chain = vec![CertificateDer::from(leaf.der().to_vec())];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap()
}

/// Accepts TLS on a free loopback port and relays each connection to `upstream` in plain TCP,
/// on a thread of its own for the rest of the test. Returns the port.
fn tls_proxy(config: rustls::ServerConfig, upstream: SocketAddr) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    // A client that refuses the certificate ends the handshake: nothing to relay.
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let Ok(mut up) = tokio::net::TcpStream::connect(upstream).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut up).await;
                });
            }
        });
    });
    port
}

/// A failed run's one error line (besides the test-only KDF warning).
fn refused(out: crate::sync_common::Out) -> String {
    assert_ne!(out.code, 0, "succeeded: {}", out.stdout);
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| !l.contains("MAMORI_TEST_SYNC_KDF"))
        .collect();
    assert_eq!(lines.len(), 1, "one error line: {}", out.stderr);
    lines[0].to_string()
}

fn sign_in_args(d: &Device, url: &str, code: &str) -> Vec<String> {
    vec![
        "--server".into(),
        url.into(),
        "--account".into(),
        "root".into(),
        "--device-name".into(),
        d.name.clone(),
        "--code".into(),
        code.into(),
        "--server-password-file".into(),
        d.file("server-password"),
        "--passphrase-file".into(),
        d.file("passphrase"),
    ]
}

#[test]
fn sync_works_through_https_once_the_private_ca_is_trusted() {
    let server = Server::start(&[]);
    let mfa = server.root_with_mfa(2);
    let dir = tempfile::tempdir().unwrap();
    let config = certificates(dir.path());
    let upstream: SocketAddr = server.url.trim_start_matches("http://").parse().unwrap();
    let url = format!("https://localhost:{}", tls_proxy(config, upstream));
    let ca = dir.path().join("ca.pem").display().to_string();
    let trust = [("MAMORI_SYNC_CA_FILE", ca.as_str())];

    let a = Device::new("laptop");
    a.run(&[
        "add",
        "--issuer",
        "GitHub",
        "--account",
        "alice@example.com",
        "--secret",
        "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
    ])
    .ok();
    let t = now();

    // Without the CA the certificate is unknown: refused, with the reason, and nothing saved.
    let mut setup: Vec<String> = vec!["sync".into(), "setup".into()];
    setup.extend(sign_in_args(&a, &url, &totp(&mfa[0], t)));
    let refs: Vec<&str> = setup.iter().map(String::as_str).collect();
    let out = refused(a.run(&refs));
    assert!(
        out.contains("invalid peer certificate: UnknownIssuer"),
        "the error says why: {out}"
    );
    let status = a.run(&["sync", "status"]);
    assert!(
        !status.stdout.contains(&url),
        "a refused setup saves no server: {}",
        status.stdout
    );

    // A CA file that is not PEM is named as such.
    std::fs::write(dir.path().join("junk.pem"), "not a certificate").unwrap();
    let junk = dir.path().join("junk.pem").display().to_string();
    let out = refused(a.run_env(&refs, &[("MAMORI_SYNC_CA_FILE", junk.as_str())]));
    assert!(out.contains("MAMORI_SYNC_CA_FILE"), "{out}");

    // Trusted: setup, then a second device joins through the same proxy and gets the entry.
    let out = a.run_env(&refs, &trust).ok();
    assert!(
        out.stdout.lines().any(|l| l.split('-').count() == 9),
        "the recovery key is printed: {}",
        out.stdout
    );
    let b = Device::new("phone");
    let mut join: Vec<String> = vec!["sync".into(), "join".into()];
    join.extend(sign_in_args(&b, &url, &totp(&mfa[1], t)));
    let refs: Vec<&str> = join.iter().map(String::as_str).collect();
    b.run_env(&refs, &trust).ok();
    assert_eq!(b.names(), vec!["GitHub:alice@example.com".to_string()]);
    a.run_env(&["sync"], &trust).ok();
    assert_eq!(a.names(), b.names());
}
