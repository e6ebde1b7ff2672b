//! #22: a security key registered and used in headless Chromium against the server's own HTTPS
//! on a real name (`https://mamori.test:PORT`, not `localhost`): the certificate is made here by
//! a test CA (rcgen) and served with `[tls] cert_file`/`key_file`; that CA is trusted for this
//! browser only (an NSS database in the browser's own `HOME`), the name resolved to loopback by
//! Chromium's `--host-resolver-rules`. WebAuthn works only in a secure context with a valid
//! certificate, so the key ceremony is the proof that the origin is a real HTTPS one.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use mamori_testkit::browser::{trust_ca, with_browser, Options};

use super::common::Server;
use super::forward_auth::free_port;
use super::tls::{ca, leaf_until, write_pair};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_registers_and_uses_a_security_key_on_an_https_name() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca();
    let (chain, key, _) = leaf_until(&ca, 1, &["mamori.test"], None);
    let (cert_file, key_file) = write_pair(&dir.path().join("tls"), &chain, &key);
    let port = free_port();
    let public = format!("https://mamori.test:{port}");
    let srv = Server::start_on(
        &format!("127.0.0.1:{port}"),
        &dir.path().join("data"),
        None,
        &[
            ("MAMORI_TLS_CERT_FILE", cert_file.to_str().unwrap()),
            ("MAMORI_TLS_KEY_FILE", key_file.to_str().unwrap()),
            ("MAMORI_PUBLIC_URL", &public),
            ("MAMORI_REQUIRE_MFA", "root"),
        ],
    );
    let link = srv.setup_link.clone().expect("a setup link on first start");
    assert!(link.starts_with(&public), "{link}");
    let home = dir.path().join("home");
    let ca_pem = dir.path().join("ca.pem");
    std::fs::write(&ca_pem, ca.cert.pem()).unwrap();
    trust_ca(&home, &ca_pem);
    let opts = Options {
        host_resolver_rules: Some("MAP mamori.test 127.0.0.1".into()),
        home: Some(home),
        ..Default::default()
    };
    with_browser("https-security-key", &public, opts, move |b| async move {
        b.set_password_from_link(&link).await;
        b.sign_in_password("root").await;
        assert_eq!(b.path().await, "/");
        let at = b.driver.current_url().await.unwrap();
        assert_eq!((at.scheme(), at.host_str()), ("https", Some("mamori.test")));
        b.add_virtual_authenticator("ctap2").await;
        b.goto("/security/mfa/new").await;
        b.fill("name", "desk-key").await;
        b.el("kind-key").await.click().await.unwrap();
        b.click("continue").await;
        b.click("register-key").await;
        assert_eq!(b.path().await, "/security?done=key_added");
        let table = b.text("devices").await;
        assert!(table.contains("desk-key"), "{table}");
        b.shot("registered").await;
        // Sign in again with the key at the second step.
        b.sign_out().await;
        b.sign_in_password("root").await;
        assert_eq!(b.path().await, "/sign-in/mfa");
        b.click("use-key").await;
        assert_eq!(b.path().await, "/");
    })
    .await;
    drop(srv);
}
