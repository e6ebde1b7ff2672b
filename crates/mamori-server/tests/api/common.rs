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

use std::path::{Path, PathBuf};
use std::time::Duration;

use mamori_otp::Secret;
use mamori_testkit::process::{serve_command, ServerProcess};
use serde_json::{json, Value};

pub use mamori_testkit::{code, now, PASSWORD};

pub use mamori_server::testing::TempDatabase;

/// A running server process, stopped with SIGTERM when dropped.
pub struct Server {
    process: ServerProcess,
    pub url: String,
    pub setup_link: Option<String>,
    pub data_dir: PathBuf,
    pub client: reqwest::Client,
}

impl Server {
    /// Starts a server with a data directory and optional database URL and extra environment.
    pub fn start(data_dir: &Path, database: Option<&str>, env: &[(&str, &str)]) -> Server {
        Server::start_on("127.0.0.1:0", data_dir, database, env)
    }

    /// Like [`Server::start`], listening on `listen` (a port chosen beforehand, when the
    /// configuration must name it: #18's public URL on a test host name).
    pub fn start_on(
        listen: &str,
        data_dir: &Path,
        database: Option<&str>,
        env: &[(&str, &str)],
    ) -> Server {
        let binary = Path::new(env!("CARGO_BIN_EXE_mamori-server"));
        let mut cmd = serve_command(binary, listen, data_dir);
        if let Some(db) = database {
            cmd.arg("--database").arg(db);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let process = ServerProcess::spawn(cmd, &data_dir.join("server.log"));
        Server {
            url: process.listening.clone(),
            setup_link: process.setup_link.clone(),
            process,
            data_dir: data_dir.to_path_buf(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
        }
    }

    /// The server process's id (to look at its open files in `/proc`).
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Sends SIGTERM and waits for a clean exit; returns whether it exited successfully.
    pub fn stop(&mut self) -> bool {
        self.process.stop()
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

    /// An administrator (`admin`'s token) creates the account described by `body` (the JSON of
    /// `POST /api/v1/users`: `user`, optional `role`, `email`, `phone`); the new user sets
    /// [`PASSWORD`] from the setup link and signs in. Returns that session's token (full or
    /// enrollment-only, as the policy decides for an account without a device).
    pub async fn new_user(&self, admin: &str, body: Value) -> String {
        let name = body["user"]
            .as_str()
            .expect("body names the user")
            .to_string();
        let (s, v) = self.post("/api/v1/users", Some(admin), body).await;
        assert_eq!(s, 201, "{v}");
        let link = v["setup_link"].as_str().expect("a setup link");
        let token = link.split("token=").nth(1).expect("the link has a token");
        let (s, v) = self
            .post(
                "/api/v1/setup",
                None,
                json!({"token": token, "password": PASSWORD}),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        let (s, v) = self.sign_in(&name).await;
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
    mamori_testkit::wrong_code_near(&Secret::from_base32(secret).unwrap(), at, 15)
}

/// A console request with the session cookie: a GET of `path`, or (with `form`) a POST of the
/// form with the CSRF token from the console's cookie and page, from `origin`, as a browser
/// sends it.
pub async fn console_request(
    srv: &Server,
    origin: &str,
    session: &str,
    path: &str,
    form: Option<&[(&str, &str)]>,
) -> (u16, String) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let url = format!("{}{path}", srv.url);
    let Some(fields) = form else {
        let resp = client
            .get(&url)
            .header("cookie", format!("mamori_session={session}"))
            .send()
            .await
            .unwrap();
        return (resp.status().as_u16(), resp.text().await.unwrap());
    };
    // Any page hands out the CSRF cookie and token.
    let resp = client
        .get(format!("{}/sign-in", srv.url))
        .send()
        .await
        .unwrap();
    let csrf = csrf_cookie(resp.headers());
    let mut body: Vec<(&str, &str)> = vec![("csrf", csrf.as_str())];
    body.extend_from_slice(fields);
    let resp = client
        .post(&url)
        .header(
            "cookie",
            format!("mamori_session={session}; mamori_csrf={csrf}"),
        )
        .header("origin", origin)
        .form(&body)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// The value of the `mamori_csrf` cookie the console sets in a response (any page hands it out).
pub fn csrf_cookie(headers: &reqwest::header::HeaderMap) -> String {
    headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("mamori_csrf="))
        .map(|v| v.split(';').next().unwrap_or_default().to_string())
        .expect("a CSRF cookie")
}
