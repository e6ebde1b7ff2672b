//! #19: `POST /api/v1/validate/status`, the question the PAM module's `no_device = allow` asks
//! before it asks for a code, against the real binary on SQLite and PostgreSQL:
//!
//! - only a key created with `allow_no_device` (API, admin command line) may ask; any other
//!   key is refused with 403 `forbidden` (audited), whoever it asks about;
//! - `no_device` only for an existing, unlocked account without an enabled device, and for root
//!   only with a key that also has `allow_root`; a user with a device, a locked one, a name no
//!   account has and a name no account can have all answer the same `code_required`;
//! - asking counts no failure and creates no phantom history; every `no_device` answer is
//!   audited with the application as actor;
//! - the permission is given and listed by the API, the console and the admin command line.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::process::Command;

use crate::common::*;
use serde_json::{json, Value};

/// The status answer for `user` asked with `key`: (HTTP status, body).
async fn status(srv: &Server, key: &str, user: &str) -> (u16, Value) {
    srv.post("/api/v1/validate/status", Some(key), json!({"user": user}))
        .await
}

/// The `status` of a 200 answer.
async fn answer(srv: &Server, key: &str, user: &str) -> String {
    let (s, v) = status(srv, key, user).await;
    assert_eq!(s, 200, "{user}: {v}");
    v["status"].as_str().unwrap().to_string()
}

/// Runs one statement on the server's database.
async fn sql(srv: &Server, database: Option<&str>, q: &str) -> u64 {
    use sqlx::Connection;
    match database {
        Some(url) => {
            let mut c = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::query(q)
                .execute(&mut c)
                .await
                .unwrap()
                .rows_affected()
        }
        None => {
            let url = format!("sqlite://{}", srv.data_dir.join("mamori.db").display());
            let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
            sqlx::query(q)
                .execute(&mut c)
                .await
                .unwrap()
                .rows_affected()
        }
    }
}

/// One count read from the server's database.
async fn count(srv: &Server, database: Option<&str>, q: &str) -> i64 {
    use sqlx::Connection;
    match database {
        Some(url) => {
            let mut c = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::query_scalar::<_, i64>(q)
                .fetch_one(&mut c)
                .await
                .unwrap()
        }
        None => {
            let url = format!("sqlite://{}", srv.data_dir.join("mamori.db").display());
            let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
            sqlx::query_scalar::<_, i64>(q)
                .fetch_one(&mut c)
                .await
                .unwrap()
        }
    }
}

/// `mamori-server admin ARGS` on the server's data directory and database: stdout.
fn admin(srv: &Server, database: Option<&str>, args: &[&str]) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mamori-server"));
    cmd.arg("admin")
        .args(args)
        .arg("--data-dir")
        .arg(&srv.data_dir);
    if let Some(db) = database {
        cmd.arg("--database").arg(db);
    }
    let out = cmd.env_remove("MAMORI_CONFIG").output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "admin {args:?}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

async fn story(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let database = backend.url().map(str::to_string);
    let db = database.as_deref();
    let srv = Server::start(
        &dir.path().join("data"),
        db,
        &[
            // Users without a device sign in on their password (they are what this is about).
            ("MAMORI_REQUIRE_MFA", "root"),
            ("MAMORI_LIMITS_SIGN_IN_PER_MINUTE", "10000"),
            ("MAMORI_LIMITS_SIGN_IN_BURST", "10000"),
        ],
    );
    let root = srv.root_session().await;
    let (_, _, root) = srv.enroll(&root, "phone").await;
    srv.new_user(&root, json!({"user": "nodev"})).await;
    let t = srv.new_user(&root, json!({"user": "withdev"})).await;
    srv.enroll(&t, "phone").await;
    srv.new_user(&root, json!({"user": "locked"})).await;
    let n = sql(
        &srv,
        db,
        "UPDATE accounts SET locked_at = 1, mfa_failures = 5 WHERE name = 'locked'",
    )
    .await;
    assert_eq!(n, 1);

    // Keys: the permission is opt-in over the API and on the command line, and listed.
    let (s, v) = srv
        .post("/api/v1/app-keys", Some(&root), json!({"name": "vpn"}))
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["allow_no_device"], false, "{v}");
    let plain = v["key"].as_str().unwrap().to_string();
    let (s, v) = srv
        .post(
            "/api/v1/app-keys",
            Some(&root),
            json!({"name": "pam", "allow_no_device": true}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(
        (&v["allow_no_device"], &v["allow_root"]),
        (&json!(true), &json!(false))
    );
    let pam = v["key"].as_str().unwrap().to_string();
    let out = admin(
        &srv,
        db,
        &[
            "create-app-key",
            "pam-root",
            "--allow-root",
            "--allow-no-device",
        ],
    );
    assert!(out.contains("tell accounts without MFA devices"), "{out}");
    let pam_root = out.lines().last().unwrap().trim().to_string();
    assert!(pam_root.starts_with("mamori_ak_"), "{out}");
    // The console's form: the checkbox, and the permission in the list.
    let (s, page) = console_request(
        &srv,
        &srv.url,
        &root,
        "/app-keys",
        Some(&[("name", "console-pam"), ("allow_no_device", "1")]),
    )
    .await;
    assert_eq!(s, 201, "{page}");
    assert!(
        page.contains("May tell users without an MFA device"),
        "{page}"
    );
    let (s, v) = srv.get("/api/v1/app-keys", Some(&root)).await;
    assert_eq!(s, 200, "{v}");
    // (Keys made in the same second are listed in id order: compare by name.)
    let mut listed: Vec<(String, bool, bool)> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["name"].as_str().unwrap().to_string(),
                k["allow_root"].as_bool().unwrap(),
                k["allow_no_device"].as_bool().unwrap(),
            )
        })
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        vec![
            ("console-pam".to_string(), false, true),
            ("pam".to_string(), false, true),
            ("pam-root".to_string(), true, true),
            ("vpn".to_string(), false, false),
        ]
    );
    let out = admin(&srv, db, &["list-app-keys", "--json"]);
    let mut cli: Vec<(String, bool)> = out
        .lines()
        .map(|l| {
            let k = serde_json::from_str::<Value>(l).unwrap();
            (
                k["name"].as_str().unwrap().to_string(),
                k["allow_no_device"].as_bool().unwrap(),
            )
        })
        .collect();
    cli.sort();
    assert_eq!(
        cli,
        vec![
            ("console-pam".to_string(), true),
            ("pam".to_string(), true),
            ("pam-root".to_string(), true),
            ("vpn".to_string(), false),
        ],
        "{out}"
    );

    // The permitted key: no_device only for the account without a device.
    assert_eq!(answer(&srv, &pam, "nodev").await, "no_device");
    let with_device = status(&srv, &pam, "withdev").await;
    assert_eq!(with_device.0, 200);
    assert_eq!(with_device.1, json!({"status": "code_required"}));
    // A name no account has, or can have, answers exactly as an account with a device.
    for name in ["nobody", "not a name!", ""] {
        assert_eq!(status(&srv, &pam, name).await, with_device, "{name:?}");
    }
    assert_eq!(answer(&srv, &pam, "locked").await, "code_required");
    assert_eq!(answer(&srv, &pam, "root").await, "code_required");
    assert_eq!(answer(&srv, &pam_root, "root").await, "code_required");

    // A key without the permission: 403, whoever it asks about (nothing told either way).
    for name in ["nodev", "withdev", "nobody"] {
        let (s, v) = status(&srv, &plain, name).await;
        assert_eq!(s, 403, "{v}");
        assert_eq!(v["error"]["code"], "forbidden", "{v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("allow_no_device"),
            "{v}"
        );
    }
    let (s, v) = status(&srv, "mamori_ak_guess", "nodev").await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (401, Some("invalid_app_key"))
    );
    let (s, v) = srv
        .post("/api/v1/validate/status", None, json!({"user": "nodev"}))
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (401, Some("invalid_app_key"))
    );

    // Asking counts nothing: no failure for accounts, no phantom history for names.
    let failures = count(
        &srv,
        db,
        "SELECT COUNT(*) FROM accounts WHERE mfa_failures <> 0",
    )
    .await;
    assert_eq!(failures, 1, "only the account locked by hand has failures");
    let phantoms = count(&srv, db, "SELECT COUNT(*) FROM validate_phantoms").await;
    assert_eq!(phantoms, 0);

    // Audited: each no_device answer with the application as actor, each refusal; nothing for
    // the code_required answers. The key's permission in its creation event.
    let events = srv.audit(&root, "kind=validate.no_device").await;
    let mut got: Vec<(String, String, String)> = events
        .iter()
        .map(|e| {
            (
                e["result"].as_str().unwrap().to_string(),
                e["account"].as_str().unwrap_or("-").to_string(),
                e["actor"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    got.sort();
    let mut want = vec![
        ("refused_permission".into(), "-".into(), "app:vpn".into()),
        ("refused_permission".into(), "-".into(), "app:vpn".into()),
        ("refused_permission".into(), "-".into(), "app:vpn".into()),
        ("success".into(), "nodev".into(), "app:pam".into()),
    ];
    want.sort();
    assert_eq!(got, want, "{events:?}");
    let created = srv.audit(&root, "kind=app_key.create").await;
    let details: Vec<&str> = created
        .iter()
        .filter_map(|e| e["detail"].as_str())
        .collect();
    assert!(details.contains(&"pam (allow_no_device)"), "{details:?}");
    assert!(
        details.contains(&"pam-root (allow_root, allow_no_device)"),
        "{details:?}"
    );

    // Root without a device: only a key with allow_root too is told.
    let n = sql(
        &srv,
        db,
        "DELETE FROM devices WHERE account_id = (SELECT id FROM accounts WHERE name = 'root')",
    )
    .await;
    assert_eq!(n, 1);
    assert_eq!(answer(&srv, &pam, "root").await, "code_required");
    assert_eq!(answer(&srv, &pam_root, "root").await, "no_device");
    // (Read from the table: root, now without MFA, administers nothing through the API.)
    let told = count(
        &srv,
        db,
        "SELECT COUNT(*) FROM audit WHERE kind = 'validate.no_device' AND result = 'success' \
         AND account = 'root' AND actor = 'app:pam-root'",
    )
    .await;
    assert_eq!(told, 1);
}

#[tokio::test]
async fn validate_status_on_sqlite() {
    story(Backend::Sqlite).await;
}

#[tokio::test]
async fn validate_status_on_postgres() {
    story(Backend::postgres().await).await;
}

/// The status shares the validate API's per-address limit: asking is no way around it.
#[tokio::test]
async fn validate_status_shares_the_validate_limit() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(
        &dir.path().join("data"),
        None,
        &[
            ("MAMORI_LIMITS_VALIDATE_PER_MINUTE", "1"),
            ("MAMORI_LIMITS_VALIDATE_BURST", "2"),
        ],
    );
    let root = srv.root_session().await;
    let (_, _, root) = srv.enroll(&root, "phone").await;
    let (s, v) = srv
        .post(
            "/api/v1/app-keys",
            Some(&root),
            json!({"name": "pam", "allow_no_device": true}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let key = v["key"].as_str().unwrap().to_string();
    let (s, v) = srv
        .post(
            "/api/v1/validate",
            Some(&key),
            json!({"user": "root", "code": "123456"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(answer(&srv, &key, "root").await, "code_required");
    let (s, h, v) = srv
        .call(
            "POST",
            "/api/v1/validate/status",
            Some(&key),
            Some(json!({"user": "root"})),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (429, Some("rate_limited")),
        "{v}"
    );
    assert!(h.get("retry-after").is_some());
    // And the other way round: the validate API is limited too now.
    let (s, _) = srv
        .post(
            "/api/v1/validate",
            Some(&key),
            json!({"user": "root", "code": "123456"}),
        )
        .await;
    assert_eq!(s, 429);
}
