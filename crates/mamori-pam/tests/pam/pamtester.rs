//! `pam_mamori.so` loaded by the real libpam through Debian's `pamtester`: the code is asked
//! through the PAM conversation and checked with the validate API of a real server.

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;

use mamori_testkit::{code as totp, now, wrong_code_near};

use crate::common::*;

fn secret(b32: &str) -> mamori_otp::Secret {
    mamori_otp::Secret::from_base32(b32).unwrap()
}

#[test]
fn a_right_code_signs_in_once_and_a_wrong_or_replayed_code_does_not() {
    let f = Fixture::start();
    let alice = f.user_with_device("alice");
    let svc = Service::with_module(&f.config(&f.server.listening, ""), "");

    let wrong = wrong_code_near(&secret(&alice), now(), 3);
    let (ok, out) = svc.authenticate("alice", &wrong);
    assert!(!ok, "a wrong code was accepted: {out}");
    assert!(out.contains("Authentication failure"), "{out}");

    let code = totp(&alice, now());
    let (ok, out) = svc.authenticate("alice", &code);
    assert!(ok, "the right code was refused: {out}");
    assert!(out.contains("Verification code"), "the prompt: {out}");
    assert!(!out.contains(&code), "the code is never echoed: {out}");

    let (ok, out) = svc.authenticate("alice", &code);
    assert!(!ok, "a replayed code was accepted: {out}");

    // A user with no account answers like a wrong code.
    let (ok, _) = svc.authenticate("nobody", &totp(&alice, now()));
    assert!(!ok);
    // Nothing typed.
    let (ok, _) = svc.authenticate("alice", "");
    assert!(!ok);
}

#[test]
fn a_local_user_is_mapped_to_a_mamori_user() {
    let f = Fixture::start();
    let alice = f.user_with_device("alice");
    let svc = Service::with_module(
        &f.config(&f.server.listening, "map = ops-alice alice\n"),
        "",
    );
    let (ok, out) = svc.authenticate("ops-alice", &totp(&alice, now()));
    assert!(ok, "the mapped user was refused: {out}");
}

#[test]
fn a_code_after_the_password_is_checked_and_the_password_alone_goes_on() {
    let f = Fixture::start();
    let alice = f.user_with_device("alice");
    // The next module in the stack sees PAM_AUTHTOK on stdin (pam_exec expose_authtok, which
    // writes it with its NUL) and accepts only the password without the code.
    let check = f.dir.path().join("check-password.sh");
    std::fs::write(
        &check,
        "pw=$(tr -d '\\000')\n[ \"$pw\" = \"correct horse\" ]\n",
    )
    .unwrap();
    let conf = f.config(&f.server.listening, "");
    let svc = Service::new(&format!(
        "auth requisite {} config={} code_in_password\n\
         auth required pam_exec.so expose_authtok quiet /bin/sh {}\n\
         account required pam_permit.so\n",
        module_path().display(),
        conf.display(),
        check.display()
    ));
    let code = totp(&alice, now());
    let (ok, out) = svc.authenticate("alice", &format!("correct horse{code}"));
    assert!(ok, "password + code refused: {out}");
    assert!(
        out.contains("Password and verification code"),
        "the prompt: {out}"
    );

    // Without a code at the end: refused before any request.
    let (ok, _) = svc.authenticate("alice", "correct horse");
    assert!(!ok);
    // A wrong password with the next right code: the code passes, the next module refuses.
    let (ok, _) = svc.authenticate("alice", &format!("wrong horse{}", totp(&alice, now() + 30)));
    assert!(!ok);
}

#[test]
fn an_unreachable_server_fails_closed() {
    let f = Fixture::start();
    let alice = f.user_with_device("alice");
    let code = totp(&alice, now());

    // A port nobody listens on: refused at once.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let svc = Service::with_module(&f.config(&closed_url, ""), "");
    let (ok, out) = svc.authenticate("alice", &code);
    assert!(!ok, "accepted with no server: {out}");

    // A server that takes the connection and never answers: the 2-second timeout ends it.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_url = format!("http://{}", silent.local_addr().unwrap());
    let svc = Service::with_module(&f.config(&silent_url, ""), "");
    let (ok, out) = svc.authenticate("alice", &code);
    assert!(!ok, "accepted with a silent server: {out}");
    drop(silent);

    // The code was never spent: the real server still takes it.
    let svc = Service::with_module(&f.config(&f.server.listening, ""), "");
    let (ok, out) = svc.authenticate("alice", &code);
    assert!(ok, "{out}");
}

#[test]
fn a_bad_configuration_or_key_fails_closed() {
    let f = Fixture::start();
    let alice = f.user_with_device("alice");
    let code = totp(&alice, now());

    // Readable by others: refused before anything is sent.
    let open = f.config(&f.server.listening, "");
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();
    let svc = Service::with_module(&open, "");
    assert!(!svc.authenticate("alice", &code).0);

    // A key the server does not know.
    let forged = f.dir.path().join("forged.conf");
    std::fs::write(
        &forged,
        format!(
            "url = {}\napp_key = mamori_ak_{}\n",
            f.server.listening,
            "0".repeat(43)
        ),
    )
    .unwrap();
    std::fs::set_permissions(&forged, std::fs::Permissions::from_mode(0o600)).unwrap();
    let svc = Service::with_module(&forged, "");
    assert!(!svc.authenticate("alice", &code).0);

    // An unknown module argument.
    let svc = Service::with_module(&f.config(&f.server.listening, ""), "fail_open");
    assert!(!svc.authenticate("alice", &code).0);
    // A missing file.
    let svc = Service::with_module(&f.dir.path().join("absent.conf"), "");
    assert!(!svc.authenticate("alice", &code).0);

    // And the code, never spent by any of these, still works with a good configuration.
    let svc = Service::with_module(&f.config(&f.server.listening, ""), "");
    assert!(svc.authenticate("alice", &code).0);
}

#[test]
fn no_device_allow_lets_a_user_without_a_device_in_and_still_checks_everyone_else() {
    let f = Fixture::start();
    let alice = f.user_with_device("alice");
    f.user_without_device("bob");
    let key = f.app_key(serde_json::json!({"name": "pam-hosts", "allow_no_device": true}));
    let svc = Service::with_module(
        &f.config_with_key(&f.server.listening, &key, "no_device = allow\n"),
        "",
    );

    // Bob has no device: in, without being asked for anything.
    let (ok, out) = svc.authenticate("bob", "");
    assert!(ok, "the user without a device was refused: {out}");
    assert!(
        !out.contains("Verification code"),
        "no prompt for a user without a device: {out}"
    );

    // Alice has one: asked, and her code checked (wrong refused, right accepted once).
    let wrong = wrong_code_near(&secret(&alice), now(), 3);
    let (ok, out) = svc.authenticate("alice", &wrong);
    assert!(!ok, "a wrong code was accepted: {out}");
    assert!(out.contains("Verification code"), "the prompt: {out}");
    let code = totp(&alice, now());
    let (ok, out) = svc.authenticate("alice", &code);
    assert!(ok, "the right code was refused: {out}");
    assert!(!out.contains(&code), "the code is never echoed: {out}");
    let (ok, _) = svc.authenticate("alice", &code);
    assert!(!ok, "a replayed code was accepted");
    // A name no account has is asked for a code like anyone with a device, and refused.
    let (ok, out) = svc.authenticate("nobody", &totp(&alice, now()));
    assert!(!ok, "an unknown user was let in: {out}");
    assert!(out.contains("Verification code"), "{out}");
}

#[test]
fn no_device_allow_fails_closed_without_the_permission_or_the_server() {
    let f = Fixture::start();
    let alice = f.user_with_device("alice");
    f.user_without_device("bob");
    let code = totp(&alice, now());

    // The fixture's key was made without allow_no_device: the server answers 403 and nobody
    // gets in, not even with a right code (which stays unspent).
    let svc = Service::with_module(&f.config(&f.server.listening, "no_device = allow\n"), "");
    let (ok, out) = svc.authenticate("bob", "");
    assert!(!ok, "let in through a key without the permission: {out}");
    let (ok, out) = svc.authenticate("alice", &code);
    assert!(!ok, "accepted through a key without the permission: {out}");
    assert!(
        !out.contains("Verification code"),
        "refused before asking: {out}"
    );

    // No server at all: refused at once, and within the timeout for a silent one.
    let key = f.app_key(serde_json::json!({"name": "pam-hosts", "allow_no_device": true}));
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let svc = Service::with_module(
        &f.config_with_key(&closed_url, &key, "no_device = allow\n"),
        "",
    );
    assert!(!svc.authenticate("bob", "").0, "let in with no server");
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_url = format!("http://{}", silent.local_addr().unwrap());
    let svc = Service::with_module(
        &f.config_with_key(&silent_url, &key, "no_device = allow\n"),
        "",
    );
    let started = std::time::Instant::now();
    assert!(!svc.authenticate("bob", "").0, "let in by a silent server");
    assert!(started.elapsed() < std::time::Duration::from_secs(15));
    drop(silent);

    // The code was never spent: with the permitted key and the real server it still works.
    let svc = Service::with_module(
        &f.config_with_key(&f.server.listening, &key, "no_device = allow\n"),
        "",
    );
    let (ok, out) = svc.authenticate("alice", &code);
    assert!(ok, "{out}");
}

#[test]
fn no_device_deny_refuses_a_user_without_a_device() {
    let f = Fixture::start();
    f.user_without_device("bob");
    // Even with a key that may ask: deny (also the default) does not ask, and bob has no code.
    let key = f.app_key(serde_json::json!({"name": "pam-hosts", "allow_no_device": true}));
    for extra in ["", "no_device = deny\n"] {
        let svc = Service::with_module(&f.config_with_key(&f.server.listening, &key, extra), "");
        let (ok, out) = svc.authenticate("bob", "123456");
        assert!(!ok, "{extra:?}: a user without a device was let in: {out}");
        assert!(out.contains("Verification code"), "{extra:?}: {out}");
    }
    // A value that is neither: the module refuses everyone (fail closed).
    let svc = Service::with_module(
        &f.config_with_key(&f.server.listening, &key, "no_device = yes\n"),
        "",
    );
    let (ok, out) = svc.authenticate("bob", "");
    assert!(!ok, "a bad no_device value let a user in: {out}");
}

/// A test CA and a server certificate for 127.0.0.1 and localhost: (CA PEM, chain PEM, key PEM).
fn test_pki(ca_name: &str) -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, ca_name);
    let ca = p.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    (
        ca.pem(),
        format!("{}{}", leaf.pem(), ca.pem()),
        key.serialize_pem(),
    )
}

#[test]
fn over_https_the_server_certificate_is_verified_with_the_configured_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, chain, key) = test_pki("mamori pam test CA");
    let (cert_file, key_file, ca_file) = (
        dir.path().join("cert.pem"),
        dir.path().join("key.pem"),
        dir.path().join("ca.pem"),
    );
    std::fs::write(&cert_file, chain).unwrap();
    std::fs::write(&key_file, key).unwrap();
    std::fs::write(&ca_file, &ca).unwrap();
    let other_ca = dir.path().join("other-ca.pem");
    std::fs::write(&other_ca, test_pki("someone else's CA").0).unwrap();
    let f = Fixture::start_with(
        dir,
        &[
            ("MAMORI_TLS_CERT_FILE", cert_file.as_path()),
            ("MAMORI_TLS_KEY_FILE", key_file.as_path()),
        ],
        Some(&ca),
    );
    let url = f.server.listening.clone();
    assert!(url.starts_with("https://"), "{url}");
    let alice = f.user_with_device("alice");
    let code = totp(&alice, now());

    // The Mozilla roots alone do not know the test CA; another CA does not sign this server.
    let svc = Service::with_module(&f.config(&url, ""), "");
    assert!(
        !svc.authenticate("alice", &code).0,
        "an unverified server was trusted"
    );
    let svc = Service::with_module(
        &f.config(&url, &format!("ca_file = {}\n", other_ca.display())),
        "",
    );
    assert!(
        !svc.authenticate("alice", &code).0,
        "the wrong CA was accepted"
    );

    let svc = Service::with_module(
        &f.config(&url, &format!("ca_file = {}\n", ca_file.display())),
        "",
    );
    let (ok, out) = svc.authenticate("alice", &code);
    assert!(ok, "refused with the right CA: {out}");
}
