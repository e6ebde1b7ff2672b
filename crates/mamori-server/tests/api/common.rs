//! Test harness: starts the real `mamori-server` binary on 127.0.0.1:0 with a temporary data
//! directory (and optionally a PostgreSQL database), talks to it over real HTTP with reqwest,
//! and computes codes with mamori-otp from the secrets the server returns.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mamori_otp::{Generator, OtpParams, Secret};
use serde_json::{json, Value};

pub use mamori_server::testing::TempDatabase;

/// A strong password used for every test account.
pub const PASSWORD: &str = "lantern-orbit-velvet-42";

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A running server process, stopped with SIGTERM when dropped.
pub struct Server {
    child: Child,
    pub url: String,
    pub setup_link: Option<String>,
    pub data_dir: PathBuf,
    pub client: reqwest::Client,
}

impl Server {
    /// Starts a server with a data directory and optional database URL and extra environment.
    pub fn start(data_dir: &Path, database: Option<&str>, env: &[(&str, &str)]) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mamori-server"));
        cmd.arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(data_dir);
        if let Some(db) = database {
            cmd.arg("--database").arg(db);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        std::fs::create_dir_all(data_dir).unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(data_dir.join("server.log"))
            .unwrap();
        cmd.env_remove("MAMORI_CONFIG")
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        let mut child = cmd.spawn().expect("start mamori-server");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut setup = None;
            let mut sent = false;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(l) = line.strip_prefix("setup link: ") {
                    setup = Some(l.to_string());
                }
                if let Some(u) = line.strip_prefix("listening on ") {
                    if !sent {
                        let _ = tx.send((u.to_string(), setup.clone()));
                        sent = true;
                    }
                }
            }
        });
        let (url, setup_link) = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| {
                let log = std::fs::read_to_string(data_dir.join("server.log")).unwrap_or_default();
                panic!("server did not start; log:\n{log}")
            });
        Server {
            child,
            url,
            setup_link,
            data_dir: data_dir.to_path_buf(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
        }
    }

    /// The server process's id (to look at its open files in `/proc`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits for a clean exit; returns whether it exited successfully.
    pub fn stop(&mut self) -> bool {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        for _ in 0..100 {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        false
    }

    /// A request with an optional bearer token and JSON body; returns status, headers and body.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.client.request(method, format!("{}{path}", self.url));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, headers, value)
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
        let (s, _, v) = self.call("POST", path, token, Some(body)).await;
        (s, v)
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let (s, _, v) = self.call("GET", path, token, None).await;
        (s, v)
    }

    /// The setup token from the printed link.
    pub fn setup_token(&self) -> String {
        let link = self.setup_link.clone().expect("a setup link was printed");
        link.split("token=").nth(1).unwrap().to_string()
    }

    /// Sets root's password from the printed setup link and signs in: returns the
    /// (enrollment-only) token.
    pub async fn root_session(&self) -> String {
        let (s, v) = self
            .post(
                "/api/v1/setup",
                None,
                json!({"token": self.setup_token(), "password": PASSWORD}),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        let (s, v) = self.sign_in("root").await;
        assert_eq!(s, 200, "{v}");
        v["token"].as_str().unwrap().to_string()
    }

    pub async fn sign_in(&self, user: &str) -> (u16, Value) {
        self.post(
            "/api/v1/sign-in",
            None,
            json!({"user": user, "password": PASSWORD}),
        )
        .await
    }

    /// Creates and enables a virtual device; returns (device id, secret, full token).
    pub async fn enroll(&self, token: &str, name: &str) -> (String, String, String) {
        let (s, v) = self
            .post(
                "/api/v1/mfa-devices/virtual",
                Some(token),
                json!({"name": name}),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        let id = v["id"].as_str().unwrap().to_string();
        let secret = v["secret_base32"].as_str().unwrap().to_string();
        let t = now();
        let (s, v) = self
            .post(
                &format!("/api/v1/mfa-devices/{id}/enable"),
                Some(token),
                json!({"code1": code(&secret, t - 30), "code2": code(&secret, t)}),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        let full = v["token"].as_str().unwrap_or(token).to_string();
        (id, secret, full)
    }

    /// Password + code sign-in; returns the session token.
    pub async fn sign_in_with_code(&self, user: &str, code: &str) -> (u16, Value) {
        let (s, v) = self.sign_in(user).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["status"], "mfa_required", "{v}");
        self.post(
            "/api/v1/sign-in/mfa",
            None,
            json!({"challenge": v["challenge"], "code": code}),
        )
        .await
    }

    /// Audit events (as root/admin token).
    pub async fn audit(&self, token: &str, query: &str) -> Vec<Value> {
        let (s, v) = self
            .get(&format!("/api/v1/audit?{query}"), Some(token))
            .await;
        assert_eq!(s, 200, "{v}");
        v["events"].as_array().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop();
        }
    }
}

/// The TOTP code of a Base32 secret at a Unix time.
pub fn code(secret: &str, at: u64) -> String {
    let s = Secret::from_base32(secret).unwrap();
    Generator::new(&s, OtpParams::totp())
        .unwrap()
        .at_time(at)
        .to_string()
}

/// Which database a test runs on.
pub enum Backend {
    Sqlite,
    Postgres(TempDatabase),
}

impl Backend {
    pub async fn postgres() -> Backend {
        Backend::Postgres(
            TempDatabase::create()
                .await
                .expect("create a PostgreSQL test database"),
        )
    }

    pub fn url(&self) -> Option<&str> {
        match self {
            Backend::Sqlite => None,
            Backend::Postgres(db) => Some(&db.url),
        }
    }
}

/// A six-digit code valid for no step near `at` (a "wrong code" that is never right by chance).
pub fn wrong_code(secret: &str, at: u64) -> String {
    let near: Vec<String> = (0..31).map(|k| code(secret, at + 30 * k - 450)).collect();
    (0..10)
        .map(|d: u32| d.to_string().repeat(6))
        .find(|c| !near.contains(c))
        .unwrap()
}
