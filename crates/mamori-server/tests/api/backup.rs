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
