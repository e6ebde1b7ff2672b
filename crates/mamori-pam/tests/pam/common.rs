//! Shared by the PAM tests: a real `mamori-server` process (SQLite) on loopback with root, an
//! application key and accounts with devices; module configurations; PAM service files.
//!
//! libpam reads `/etc/pam.d/SERVICE` only, so each test writes a service file of its own there
//! (unique name, removed when the test ends): the tests run as root, as CI does.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mamori_testkit::process::{serve_command, server_binary_next_to, ServerProcess};
use mamori_testkit::{code as totp, now, PASSWORD};
use serde_json::{json, Value};

/// target/debug (or target/release): the test binary lives in its `deps/`.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

/// The module built with this test binary: cargo leaves the cdylib beside it in `deps/` (the
/// copy in target/debug is refreshed only by `cargo build`, so it may be stale).
pub fn module_path() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let p = exe.with_file_name("libpam_mamori.so");
    assert!(p.exists(), "{} not built", p.display());
    p
}

/// A running server with root (one device) and an application key.
pub struct Fixture {
    pub server: ServerProcess,
    http: reqwest::blocking::Client,
    root_token: String,
    app_key: String,
    pub dir: tempfile::TempDir,
}

impl Fixture {
    pub fn start() -> Fixture {
        Fixture::start_with(tempfile::tempdir().unwrap(), &[], None)
    }

    /// A server started with `env` in `dir`; `ca_pem` is trusted by the test's own client.
    pub fn start_with(
        dir: tempfile::TempDir,
        env: &[(&str, &Path)],
        ca_pem: Option<&str>,
    ) -> Fixture {
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

    pub fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Value,
        want: u16,
    ) -> Value {
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
    pub fn enroll(&self, token: &str) -> (String, Option<String>) {
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
    pub fn user_with_device(&self, name: &str) -> String {
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

    /// A new account NAME with a password and no device at all.
    pub fn user_without_device(&self, name: &str) {
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
    }

    /// A new application key made with the JSON `body` of `POST /api/v1/app-keys`.
    pub fn app_key(&self, body: Value) -> String {
        let v = self.call(
            "POST",
            "/api/v1/app-keys",
            Some(&self.root_token),
            body,
            201,
        );
        v["key"].as_str().unwrap().to_string()
    }

    /// Writes a module configuration (mode 0600) with `extra` lines; returns its path.
    pub fn config(&self, url: &str, extra: &str) -> PathBuf {
        self.config_with_key(url, &self.app_key, extra)
    }

    /// [`Fixture::config`] with another application key.
    pub fn config_with_key(&self, url: &str, key: &str, extra: &str) -> PathBuf {
        let p = self.dir.path().join(format!("pam-{}.conf", next_id()));
        std::fs::write(
            &p,
            format!("url = {url}\napp_key = {key}\ntimeout = 2\n{extra}"),
        )
        .unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        p
    }
}

pub fn next_id() -> usize {
    static N: AtomicUsize = AtomicUsize::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// `/etc/pam.d/mamori-test-PID-N`, removed when dropped.
pub struct Service {
    pub name: String,
    path: PathBuf,
}

impl Service {
    pub fn new(lines: &str) -> Service {
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

    pub fn with_module(config: &Path, args: &str) -> Service {
        Service::new(&format!(
            "auth required {} config={} {args}\naccount required pam_permit.so\n",
            module_path().display(),
            config.display()
        ))
    }

    /// `pamtester SERVICE USER authenticate` with `input` as what the person types.
    /// Returns whether authentication succeeded, and what pamtester printed.
    pub fn authenticate(&self, user: &str, input: &str) -> (bool, String) {
        let mut child = Command::new("pamtester")
            .args(["-v", &self.name, user, "authenticate"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run pamtester (apt install pamtester)");
        // A module that decides without asking (failing closed, say) may let pamtester exit
        // before it reads anything: a closed pipe is then not an error of the test.
        let written = child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{input}\n").as_bytes());
        if let Err(e) = written {
            assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
        }
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
