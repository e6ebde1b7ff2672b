//! `pam_mamori.so` loaded by the real libpam through Debian's `pamtester`, against a real
//! `mamori-server` process (SQLite) on loopback: the code is asked through the PAM
//! conversation and checked with the validate API.
//!
//! pamtester reads `/etc/pam.d/SERVICE` only, so each test writes a service file of its own
//! there (unique name, removed when the test ends): the tests run as root, as CI does.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mamori_testkit::process::{serve_command, server_binary_next_to, ServerProcess};
use mamori_testkit::{code as totp, now, wrong_code_near, PASSWORD};
use serde_json::{json, Value};

/// target/debug (or target/release): the test binary lives in its `deps/`.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

/// The module built with this test binary: cargo leaves the cdylib beside it in `deps/` (the
/// copy in target/debug is refreshed only by `cargo build`, so it may be stale).
fn module_path() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let p = exe.with_file_name("libpam_mamori.so");
    assert!(p.exists(), "{} not built", p.display());
    p
}

/// A running server with root (one device) and an application key.
struct Fixture {
    server: ServerProcess,
    http: reqwest::blocking::Client,
    root_token: String,
    app_key: String,
    dir: tempfile::TempDir,
}

impl Fixture {
    fn start() -> Fixture {
        Fixture::start_with(tempfile::tempdir().unwrap(), &[], None)
    }

    /// A server started with `env` in `dir`; `ca_pem` is trusted by the test's own client.
    fn start_with(dir: tempfile::TempDir, env: &[(&str, &Path)], ca_pem: Option<&str>) -> Fixture {
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        let bin = server_binary_next_to(&profile_dir().join("pamtester"));
        let mut cmd = serve_command(&bin, "127.0.0.1:0", &data);
        cmd.env("MAMORI_PASSWORD_ARGON2_M_KIB", "1024");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let server = ServerProcess::spawn(cmd, &dir.path().join("server.log"));
        let mut http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(30));
        if let Some(pem) = ca_pem {
            http =
                http.add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap());
        }
        let http = http.build().unwrap();
        let mut f = Fixture {
            server,
            http,
            root_token: String::new(),
            app_key: String::new(),
            dir,
        };
        let link = f.server.setup_link.clone().unwrap();
        let token = link.split("token=").nth(1).unwrap().to_string();
        f.call(
            "POST",
            "/api/v1/setup",
            None,
            json!({"token": token, "password": PASSWORD}),
            200,
        );
        let v = f.call(
            "POST",
            "/api/v1/sign-in",
            None,
            json!({"user": "root", "password": PASSWORD}),
            200,
        );
        f.root_token = v["token"].as_str().unwrap().to_string();
        let root = f.root_token.clone();
        // Administrators must have a device before any administrative call (#15).
        let (_, t) = f.enroll(&root);
        if let Some(t) = t {
            f.root_token = t;
        }
        let root = f.root_token.clone();
        let v = f.call(
            "POST",
            "/api/v1/app-keys",
            Some(&root),
            json!({"name": "pam-test"}),
            201,
        );
        f.app_key = v["key"].as_str().unwrap().to_string();
        f
    }

    fn call(&self, method: &str, path: &str, token: Option<&str>, body: Value, want: u16) -> Value {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut r = self
            .http
            .request(m, format!("{}{path}", self.server.listening));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        if !body.is_null() {
            r = r.json(&body);
        }
        let resp = r.send().unwrap();
        let status = resp.status().as_u16();
        let v: Value = serde_json::from_str(&resp.text().unwrap()).unwrap_or(Value::Null);
        assert_eq!(status, want, "{method} {path}: {v}");
        v
    }

    /// Enrols a virtual device for the session's account with the codes of the two previous
    /// steps (so the current step is still unused); returns its secret and any new token.
    fn enroll(&self, token: &str) -> (String, Option<String>) {
        let v = self.call(
            "POST",
            "/api/v1/mfa-devices/virtual",
            Some(token),
            json!({"name": "phone"}),
            201,
        );
        let id = v["id"].as_str().unwrap().to_string();
        let secret = v["secret_base32"].as_str().unwrap().to_string();
        let t = now();
        let v = self.call(
            "POST",
            &format!("/api/v1/mfa-devices/{id}/enable"),
            Some(token),
            json!({"code1": totp(&secret, t - 60), "code2": totp(&secret, t - 30)}),
            200,
        );
        (secret, v["token"].as_str().map(str::to_string))
    }

    /// A new account NAME with a password and one enabled device; returns the device's secret.
    fn user_with_device(&self, name: &str) -> String {
        let v = self.call(
            "POST",
            "/api/v1/users",
            Some(&self.root_token),
            json!({"user": name}),
            201,
        );
        let link = v["setup_link"].as_str().unwrap();
        let token = link.split("token=").nth(1).unwrap();
        self.call(
            "POST",
            "/api/v1/setup",
            None,
            json!({"token": token, "password": PASSWORD}),
            200,
        );
        let v = self.call(
            "POST",
            "/api/v1/sign-in",
            None,
            json!({"user": name, "password": PASSWORD}),
            200,
        );
        self.enroll(v["token"].as_str().unwrap()).0
    }

    /// Writes a module configuration (mode 0600) with `extra` lines; returns its path.
    fn config(&self, url: &str, extra: &str) -> PathBuf {
        let p = self.dir.path().join(format!("pam-{}.conf", next_id()));
        std::fs::write(
            &p,
            format!(
                "url = {url}\napp_key = {}\ntimeout = 2\n{extra}",
                self.app_key
            ),
        )
        .unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        p
    }
}

fn next_id() -> usize {
    static N: AtomicUsize = AtomicUsize::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// `/etc/pam.d/mamori-test-PID-N`, removed when dropped.
struct Service {
    name: String,
    path: PathBuf,
}

impl Service {
    fn new(lines: &str) -> Service {
        let name = format!("mamori-test-{}-{}", std::process::id(), next_id());
        let path = Path::new("/etc/pam.d").join(&name);
        std::fs::write(&path, lines).unwrap_or_else(|e| {
            panic!(
                "cannot write {} ({e}): these tests run as root, as CI does",
                path.display()
            )
        });
        Service { name, path }
    }

    fn with_module(config: &Path, args: &str) -> Service {
        Service::new(&format!(
            "auth required {} config={} {args}\naccount required pam_permit.so\n",
            module_path().display(),
            config.display()
        ))
    }

    /// `pamtester SERVICE USER authenticate` with `input` as what the person types.
    /// Returns whether authentication succeeded, and what pamtester printed.
    fn authenticate(&self, user: &str, input: &str) -> (bool, String) {
        let mut child = Command::new("pamtester")
            .args(["-v", &self.name, user, "authenticate"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run pamtester (apt install pamtester)");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{input}\n").as_bytes())
            .unwrap();
        // A bound on the wait: a module that hangs fails the test instead of hanging it.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            if Instant::now() > deadline {
                child.kill().unwrap();
                panic!("pamtester did not finish within 30 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let out = child.wait_with_output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

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
