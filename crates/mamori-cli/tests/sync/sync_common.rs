//! Shared by the sync tests: a real `mamori-server` process on SQLite (the binary built next to
//! `mamori`; built on demand), its root account with several virtual MFA devices (one per
//! device sign-in, since each device accepts each time step once), and `mamori` sandboxes.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use mamori_testkit::process::{serve_command, server_binary_next_to, ServerProcess};
use serde_json::{json, Value};

pub use crate::support::{Out, Sandbox};

pub const SERVER_PASSWORD: &str = mamori_testkit::PASSWORD;
pub const PASSPHRASE: &str = "river stone maple quiet";

pub use mamori_testkit::{code as totp, now};

/// A running server, stopped when dropped.
pub struct Server {
    // Before `_dir`: the process stops before its data directory is removed.
    process: ServerProcess,
    pub url: String,
    pub data_dir: PathBuf,
    setup_link: String,
    http: reqwest::blocking::Client,
    _dir: tempfile::TempDir,
}

impl Server {
    pub fn start(env: &[(&str, &str)]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        std::fs::create_dir_all(&data_dir).unwrap();
        // This crate cannot name mamori-server's CARGO_BIN_EXE_: the one built next to `mamori`.
        let binary = server_binary_next_to(Path::new(env!("CARGO_BIN_EXE_mamori")));
        let mut cmd = serve_command(&binary, "127.0.0.1:0", &data_dir);
        cmd.env("MAMORI_LIMITS_MAX_DEVICES", "8")
            .env("MAMORI_PASSWORD_ARGON2_M_KIB", "1024");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let process = ServerProcess::spawn(cmd, &dir.path().join("server.log"));
        Server {
            url: process.listening.clone(),
            setup_link: process.setup_link.clone().unwrap_or_default(),
            process,
            data_dir,
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            _dir: dir,
        }
    }

    pub fn call(&self, method: &str, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut r = self.http.request(m, format!("{}{path}", self.url));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        if !body.is_null() {
            r = r.json(&body);
        }
        let resp = r.send().unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Sets root's password and enables `n` virtual MFA devices; returns their secrets. Enabled
    /// with the codes of the two previous steps, so each accepts the current step at sign-in.
    pub fn root_with_mfa(&self, n: usize) -> Vec<String> {
        let token = self.setup_link.split("token=").nth(1).unwrap().to_string();
        let (s, v) = self.call(
            "POST",
            "/api/v1/setup",
            None,
            json!({"token": token, "password": SERVER_PASSWORD}),
        );
        assert_eq!(s, 200, "{v}");
        let (s, v) = self.call(
            "POST",
            "/api/v1/sign-in",
            None,
            json!({"user": "root", "password": SERVER_PASSWORD}),
        );
        assert_eq!(s, 200, "{v}");
        let mut token = v["token"].as_str().unwrap().to_string();
        let mut secrets = Vec::new();
        for i in 0..n {
            let (s, v) = self.call(
                "POST",
                "/api/v1/mfa-devices/virtual",
                Some(&token),
                json!({"name": format!("phone{i}")}),
            );
            assert_eq!(s, 201, "{v}");
            let id = v["id"].as_str().unwrap().to_string();
            let secret = v["secret_base32"].as_str().unwrap().to_string();
            let t = now();
            let (s, v) = self.call(
                "POST",
                &format!("/api/v1/mfa-devices/{id}/enable"),
                Some(&token),
                json!({"code1": totp(&secret, t - 60), "code2": totp(&secret, t - 30)}),
            );
            assert_eq!(s, 200, "{v}");
            if let Some(t) = v["token"].as_str() {
                token = t.to_string();
            }
            secrets.push(secret);
        }
        secrets
    }

    /// The SQLite database file.
    pub fn db(&self) -> PathBuf {
        self.data_dir.join("mamori.db")
    }

    /// Runs SQL on the live database with the sqlite3 tool.
    pub fn sql(&self, sql: &str) -> String {
        let out = Command::new("sqlite3")
            .arg("-cmd")
            .arg(".timeout 10000")
            .arg(self.db())
            .arg(sql)
            .output()
            .expect("run sqlite3 (apt install sqlite3)");
        assert!(
            out.status.success(),
            "sqlite3: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

/// One authenticator device: a `mamori` sandbox with its own vault, plus files with the server
/// password and the sync passphrase.
pub struct Device {
    pub sb: Sandbox,
    pub name: String,
}

impl Device {
    pub fn new(name: &str) -> Device {
        let sb = Sandbox::new();
        sb.init();
        std::fs::write(sb.path("server-password"), format!("{SERVER_PASSWORD}\n")).unwrap();
        std::fs::write(sb.path("passphrase"), format!("{PASSPHRASE}\n")).unwrap();
        Device {
            sb,
            name: name.into(),
        }
    }

    pub fn run(&self, args: &[&str]) -> Out {
        self.run_env(args, &[])
    }

    /// [`Device::run`] with extra environment variables.
    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Out {
        let mut cmd = self.sb.cmd(args);
        cmd.env("MAMORI_TEST_SYNC_KDF", "fast");
        for (k, v) in env {
            cmd.env(k, v);
        }
        if let Some(dir) = std::env::var_os("MAMORI_SYNC_BENCH_BIN_DIR") {
            // Benchmarks: the same command with the release binaries.
            let mut other = Command::new(Path::new(&dir).join("mamori"));
            other.args(cmd.get_args()).env_clear().stdin(Stdio::null());
            for (k, v) in cmd.get_envs() {
                if let Some(v) = v {
                    other.env(k, v);
                }
            }
            cmd = other;
        }
        cmd.output().expect("run mamori").into()
    }

    pub fn file(&self, name: &str) -> String {
        self.sb.path(name).display().to_string()
    }

    fn sign_in_args(&self, server: &Server, code: &str) -> Vec<String> {
        vec![
            "--server".into(),
            server.url.clone(),
            "--account".into(),
            "root".into(),
            "--device-name".into(),
            self.name.clone(),
            "--code".into(),
            code.into(),
            "--server-password-file".into(),
            self.file("server-password"),
        ]
    }

    /// `mamori sync setup`; returns the recovery key printed on stdout.
    pub fn setup(&self, server: &Server, code: &str) -> String {
        let mut args: Vec<String> = vec!["sync".into(), "setup".into()];
        args.extend(self.sign_in_args(server, code));
        args.extend(["--passphrase-file".into(), self.file("passphrase")]);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = self.run(&refs).ok();
        out.stdout
            .lines()
            .find(|l| l.split('-').count() == 9)
            .expect("the recovery key on stdout")
            .to_string()
    }

    /// `mamori sync join` with extra arguments (passphrase or recovery key).
    pub fn join(&self, server: &Server, code: &str, extra: &[&str]) -> Out {
        let mut args: Vec<String> = vec!["sync".into(), "join".into()];
        args.extend(self.sign_in_args(server, code));
        args.extend(extra.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        self.run(&refs)
    }

    /// The vault as comparable JSON: entries by id without times that differ per device.
    pub fn accounts(&self) -> Vec<Value> {
        let out = self.run(&["list", "--json"]).ok();
        let v: Value = serde_json::from_str(&out.stdout).unwrap();
        let mut list: Vec<Value> = v["entries"]
            .as_array()
            .or_else(|| v["accounts"].as_array())
            .cloned()
            .unwrap_or_else(|| panic!("list --json shape: {v}"));
        for e in &mut list {
            if let Some(o) = e.as_object_mut() {
                o.remove("created");
                o.remove("updated");
            }
        }
        list.sort_by_key(|e| e["id"].as_str().unwrap_or_default().to_string());
        list
    }

    pub fn names(&self) -> Vec<String> {
        let mut n: Vec<String> = self
            .accounts()
            .iter()
            .map(|e| {
                format!(
                    "{}:{}",
                    e["issuer"].as_str().unwrap(),
                    e["account"].as_str().unwrap()
                )
            })
            .collect();
        n.sort();
        n
    }
}
