//! `admin backup` of a running server's SQLite database and `admin restore` into a fresh data
//! directory: every device, the application key and a recovery code work on the restored
//! server; a restore with another server key is refused with one line and leaves nothing; a
//! backup never overwrites a file; a forced restore onto a database a server holds open is
//! refused (docs/reliability.md).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use crate::common::*;
use serde_json::json;

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

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn a_backup_of_a_running_server_restores_every_factor_and_key() {
    let tmp = tempfile::tempdir().unwrap();
    let live = tmp.path().join("live");
    let srv = Server::start(&live, None, &[]);
    let root = srv.root_session().await;
    let (_, root_secret, root) = srv.enroll(&root, "root-phone").await;
    let (s, v) = srv
        .post("/api/v1/app-keys", Some(&root), json!({"name": "vpn"}))
        .await;
    assert_eq!(s, 201, "{v}");
    let app_key = v["key"].as_str().unwrap().to_string();
    let alice = srv.new_user(&root, json!({"user": "alice"})).await;
    let (_, alice_secret, alice) = srv.enroll(&alice, "alice-phone").await;
    let (s, v) = srv
        .post("/api/v1/recovery-codes", Some(&alice), json!({}))
        .await;
    assert_eq!(s, 201, "{v}");
    let recovery = v["codes"][0].as_str().unwrap().to_string();

    // Online: the server keeps running (and answering) while the copy is made.
    let file = tmp.path().join("mamori-backup.db");
    let key_file = tmp.path().join("mamori-backup.db.key");
    let (ok, out, err) = admin(&live, &["backup", file.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.contains("database copied to"), "{out}");
    assert_eq!((mode(&file), mode(&key_file)), (0o600, 0o600));
    let (s, v) = srv.get("/api/v1/me", Some(&alice)).await;
    assert_eq!(s, 200, "{v}");
    let events = srv.audit(&root, "kind=admin.backup").await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["actor"], "admin-cli");

    // A second backup to the same name is refused and leaves the first one as it was.
    let before = (
        std::fs::read(&file).unwrap(),
        std::fs::read(&key_file).unwrap(),
    );
    let (ok, _, err) = admin(&live, &["backup", file.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("already exists"), "{err}");
    let after = (
        std::fs::read(&file).unwrap(),
        std::fs::read(&key_file).unwrap(),
    );
    assert!(before == after, "the existing backup was changed");

    // A forced restore onto the database the running server holds open is refused.
    let (ok, _, err) = admin(&live, &["restore", file.to_str().unwrap(), "--force"]);
    assert!(!ok);
    assert!(err.contains("is in use"), "{err}");

    // The wrong key: one clear line, and no database (nor key) left in the target.
    let other = tmp.path().join("other");
    let (ok, _, err) = admin(&other, &["setup-root"]);
    assert!(ok, "{err}");
    let wrong_target = tmp.path().join("wrong");
    let other_key = other.join("server.key");
    let (ok, _, err) = admin(
        &wrong_target,
        &[
            "restore",
            file.to_str().unwrap(),
            "--key",
            other_key.to_str().unwrap(),
        ],
    );
    assert!(!ok);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("restore refused"), "{err}");
    assert!(err.contains("is not the key"), "{err}");
    let left: Vec<_> = std::fs::read_dir(&wrong_target)
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left behind: {left:?}");

    // Into a fresh data directory, with the key saved beside the copy.
    let fresh = tmp.path().join("fresh");
    let (ok, out, err) = admin(&fresh, &["restore", file.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.contains("restored"), "{out}");
    assert_eq!(mode(&fresh.join("server.key")), 0o600);
    // Not twice: the restored database is now live.
    let (ok, _, err) = admin(&fresh, &["restore", file.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("already exists"), "{err}");

    let restored = Server::start(&fresh, None, &[]);
    // The next time step: the current one may have been accepted before the backup.
    let (s, v) = restored
        .post(
            "/api/v1/validate",
            Some(&app_key),
            json!({"user": "alice", "code": code(&alice_secret, now() + 30)}),
        )
        .await;
    assert_eq!((s, v["result"].as_str()), (200, Some("accept")), "{v}");
    let (s, v) = restored
        .sign_in_with_code("root", &code(&root_secret, now() + 30))
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = restored.sign_in_with_code("alice", &recovery).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = restored
        .get("/api/v1/me", Some(v["token"].as_str().unwrap()))
        .await;
    assert_eq!(s, 200, "{v}");
}

/// The URL for PostgreSQL's own tools: the same database, without the driver's query options.
fn libpq_url(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

/// PostgreSQL: the documented procedure (docs/server.md) — `pg_dump --format=custom` of a
/// running server's database, `pg_restore --clean --if-exists` into a fresh database — and a
/// server with the same key on the restored database: every device code, the security key and
/// a recovery code still sign in, the application key validates. A server started on it with
/// another key refuses to start, with one clear line.
#[tokio::test]
async fn a_pg_dump_restores_every_factor_and_a_wrong_key_is_refused() {
    use crate::webauthn_api::{assert_with, attest, finish_sign_in, key_challenge, new_key};
    let env = crate::webauthn_api::env();
    let tmp = tempfile::tempdir().unwrap();
    let live_dir = tmp.path().join("live");
    let live_db = TempDatabase::create().await.unwrap();
    let srv = Server::start(&live_dir, Some(&live_db.url), &env);
    let root = srv.root_session().await;
    let (_, root_secret, root) = srv.enroll(&root, "root-phone").await;
    let mut key = new_key();
    let (s, begun) = srv
        .post(
            "/api/v1/mfa-devices/security-key/begin",
            Some(&root),
            json!({"name": "root-key"}),
        )
        .await;
    assert_eq!(s, 200, "{begun}");
    let credential = attest(&mut key, &begun);
    let (s, v) = srv
        .post(
            "/api/v1/mfa-devices/security-key/finish",
            Some(&root),
            json!({"ceremony": begun["ceremony"], "credential": credential}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = srv
        .post("/api/v1/app-keys", Some(&root), json!({"name": "vpn"}))
        .await;
    assert_eq!(s, 201, "{v}");
    let app_key = v["key"].as_str().unwrap().to_string();
    let alice = srv.new_user(&root, json!({"user": "alice"})).await;
    let (_, alice_secret, alice) = srv.enroll(&alice, "alice-phone").await;
    let (s, v) = srv
        .post("/api/v1/recovery-codes", Some(&alice), json!({}))
        .await;
    assert_eq!(s, 201, "{v}");
    let recovery = v["codes"][0].as_str().unwrap().to_string();

    // The dump, taken while the server runs (pg_dump reads one snapshot).
    let dump = tmp.path().join("mamori.dump");
    let out = Command::new("pg_dump")
        .arg("--format=custom")
        .arg(format!("--file={}", dump.display()))
        .arg(libpq_url(&live_db.url))
        .output()
        .expect("run pg_dump");
    assert!(
        out.status.success(),
        "pg_dump: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (s, v) = srv.get("/api/v1/me", Some(&alice)).await;
    assert_eq!(s, 200, "the server kept serving during the dump: {v}");

    // Restored into a fresh database, exactly as docs/server.md says.
    let restored_db = TempDatabase::create().await.unwrap();
    let out = Command::new("pg_restore")
        .args(["--clean", "--if-exists"])
        .arg(format!("--dbname={}", libpq_url(&restored_db.url)))
        .arg(&dump)
        .output()
        .expect("run pg_restore");
    assert!(
        out.status.success(),
        "pg_restore: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Another key (a different installation's): the server refuses to start, in one line,
    // and the restored database is not touched (the right key still works below).
    let other = tmp.path().join("other");
    let (ok, _, err) = admin(&other, &["setup-root"]);
    assert!(ok, "{err}");
    let wrong_dir = tmp.path().join("wrong");
    std::fs::create_dir_all(&wrong_dir).unwrap();
    std::fs::copy(other.join("server.key"), wrong_dir.join("server.key")).unwrap();
    let log = tmp.path().join("wrong.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_mamori-server"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&wrong_dir)
        .arg("--database")
        .arg(&restored_db.url)
        .env_remove("MAMORI_CONFIG")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("run mamori-server");
    // It must exit by itself; a server that starts serving instead is killed and fails.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "the server kept running with the wrong key: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let out = std::process::Output {
        status,
        stdout: Vec::new(),
        stderr: std::fs::read(&log).unwrap(),
    };
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "started with the wrong key: {err}");
    assert!(
        err.contains("this server key file is not the one this database was created with"),
        "{err}"
    );
    // One error line (the log may say what sqlx noticed before it).
    let errors: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("mamori-server:"))
        .collect();
    assert_eq!(errors.len(), 1, "one error line: {err}");
    assert!(
        !err.contains(" ERROR ") && !err.contains(" WARN "),
        "only the one error: {err}"
    );

    // The right key (the live node's data directory holds it; a restore puts it in each
    // node's data directory): every factor works.
    drop(srv);
    let key_dir = tmp.path().join("restored");
    std::fs::create_dir_all(&key_dir).unwrap();
    std::fs::copy(live_dir.join("server.key"), key_dir.join("server.key")).unwrap();
    let restored = Server::start(&key_dir, Some(&restored_db.url), &env);
    // The next time step: the current one may have been accepted before the dump.
    let (s, v) = restored
        .post(
            "/api/v1/validate",
            Some(&app_key),
            json!({"user": "alice", "code": code(&alice_secret, now() + 30)}),
        )
        .await;
    assert_eq!((s, v["result"].as_str()), (200, Some("accept")), "{v}");
    let (s, v) = restored
        .sign_in_with_code("root", &code(&root_secret, now() + 30))
        .await;
    assert_eq!(s, 200, "the device code: {v}");
    let (challenge, begun) = key_challenge(&restored, "root").await;
    let assertion = assert_with(&mut key, &begun);
    let (s, v) = finish_sign_in(&restored, &challenge, &begun["ceremony"], assertion).await;
    assert_eq!(s, 200, "the security key: {v}");
    let (s, v) = restored.sign_in_with_code("alice", &recovery).await;
    assert_eq!(s, 200, "the recovery code: {v}");
    let (s, v) = restored
        .get("/api/v1/me", Some(v["token"].as_str().unwrap()))
        .await;
    assert_eq!(s, 200, "{v}");
}
