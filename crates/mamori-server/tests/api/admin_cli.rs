//! The admin command line against a real data directory, next to a running server: setup-root,
//! create-user, list-users (MFA column), create-app-key, reset-mfa, audit as JSON lines and
//! `audit --follow`; JSON logs; one clear error line for a bad configuration.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::*;
use serde_json::{json, Value};

fn admin(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mamori-server"))
        .arg("admin")
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .env_remove("MAMORI_CONFIG")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[tokio::test]
async fn admin_commands_work_on_the_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(dir.path(), None, &[("MAMORI_LOG_FORMAT", "json")]);

    // setup-root prints a fresh link; the first-start link still works too (both unused).
    let (ok, out, err) = admin(dir.path(), &["setup-root"]);
    assert!(ok, "{err}");
    let link = out.trim().rsplit(' ').next().unwrap();
    assert!(link.contains("/setup?token="), "{out}");
    let token = link.split("token=").nth(1).unwrap();
    let (s, v) = srv
        .post(
            "/api/v1/setup",
            None,
            json!({"token": token, "password": PASSWORD}),
        )
        .await;
    assert_eq!(s, 200, "{v}");

    let (ok, out, err) = admin(
        dir.path(),
        &[
            "create-user",
            "alice",
            "--role",
            "admin",
            "--email",
            "alice@example.com",
        ],
    );
    assert!(ok, "{err}");
    assert!(
        out.starts_with("created user alice (admin); setup link"),
        "{out}"
    );
    let (ok, _, err) = admin(dir.path(), &["create-user", "alice"]);
    assert!(!ok);
    assert!(
        err.starts_with("mamori-server: ") && err.contains("already exists"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let (ok, _, err) = admin(dir.path(), &["create-user", "bob", "--role", "king"]);
    assert!(!ok && err.contains("role"), "{err}");

    // Root enrolls a device over HTTP; the list shows the MFA column.
    let (_, v) = srv.sign_in("root").await;
    let restricted = v["token"].as_str().unwrap().to_string();
    let (_, secret, _) = srv.enroll(&restricted, "phone").await;
    let (ok, out, _) = admin(dir.path(), &["list-users"]);
    assert!(ok);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("USER") && lines[0].contains("MFA"),
        "{out}"
    );
    let root_line = lines.iter().find(|l| l.starts_with("root ")).unwrap();
    assert!(root_line.contains("Virtual"), "{root_line}");
    let alice_line = lines.iter().find(|l| l.starts_with("alice ")).unwrap();
    assert!(alice_line.contains("Not enabled"), "{alice_line}");
    let (_, out, _) = admin(dir.path(), &["list-users", "--json"]);
    let users: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let root = users.iter().find(|u| u["user"] == "root").unwrap();
    assert_eq!(
        (root["mfa"].as_str(), root["mfa_devices"].as_u64()),
        (Some("Virtual"), Some(1))
    );

    // An application key made on the command line works against the running server (for root
    // only with --allow-root).
    let (ok, out, _) = admin(
        dir.path(),
        &["create-app-key", "ssh-gateway", "--allow-root"],
    );
    assert!(ok);
    let key = out.lines().last().unwrap().trim().to_string();
    assert!(key.starts_with("mamori_ak_"), "{out}");
    let (s, v) = srv
        .post(
            "/api/v1/validate",
            Some(&key),
            json!({"user": "root", "code": code(&secret, now() + 30)}),
        )
        .await;
    assert_eq!((s, v["result"].as_str()), (200, Some("accept")), "{v}");

    // audit --follow prints new events as they happen.
    let mut follow = Command::new(env!("CARGO_BIN_EXE_mamori-server"))
        .args(["admin", "audit", "--follow", "--kind", "account."])
        .arg("--data-dir")
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = follow.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    while let Ok(l) = rx.recv_timeout(Duration::from_secs(10)) {
        let v: Value = serde_json::from_str(&l).unwrap();
        let done = v["account"] == "alice" && v["kind"] == "account.create";
        seen.push(v);
        if done {
            break;
        }
    }
    assert!(seen
        .iter()
        .any(|e| e["kind"] == "account.create" && e["account"] == "alice"));
    let (ok, _, _) = admin(dir.path(), &["create-user", "carol"]);
    assert!(ok);
    // Skip the rest of the backlog; the new event must arrive while following.
    let v = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("--follow printed the new event");
        let v: Value = serde_json::from_str(&line).unwrap();
        if v["account"] == "carol" && v["kind"] == "account.create" {
            break v;
        }
    };
    assert_eq!(v["actor"], "admin-cli");
    let _ = follow.kill();
    let _ = follow.wait();

    // reset-mfa, then the whole audit as JSON lines.
    let (ok, out, _) = admin(dir.path(), &["reset-mfa", "root"]);
    assert!(
        ok && out.starts_with("removed 1 MFA devices of root"),
        "{out}"
    );
    let (ok, out, _) = admin(dir.path(), &["audit"]);
    assert!(ok);
    let events: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ids: Vec<i64> = events.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    for k in [
        "account.setup_link",
        "account.setup",
        "mfa.enable",
        "app_key.create",
        "validate",
        "mfa.reset",
    ] {
        assert!(events.iter().any(|e| e["kind"] == k), "missing {k}");
    }
    assert!(!out.contains(&secret) && !out.contains(&key) && !out.contains(PASSWORD));
    let (_, out, _) = admin(dir.path(), &["audit", "--user", "carol"]);
    assert!(
        out.lines().all(|l| l.contains("\"account\":\"carol\"")),
        "{out}"
    );

    // The server logs JSON lines.
    drop(srv);
    let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap();
    let mut n = 0;
    for line in log.lines() {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}"));
        assert!(v["level"].is_string());
        n += 1;
    }
    assert!(n >= 2, "{log}");
    assert!(!log.contains(&secret) && !log.contains(PASSWORD));
}

#[test]
fn a_bad_configuration_gives_one_clear_line_and_a_failure_code() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mamori-server"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("MAMORI_REQUIRE_MFA", "sometimes")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("MAMORI_REQUIRE_MFA"), "{err}");
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, "database = \"mysql://x\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mamori-server"))
        .args(["admin", "list-users", "--config"])
        .arg(&cfg)
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("sqlite://") && err.contains("postgres://"),
        "{err}"
    );
}
