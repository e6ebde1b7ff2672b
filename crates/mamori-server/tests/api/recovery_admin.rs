//! Administrator reset and root recovery against the real binary: an administrator with a
//! fresh second factor resets a user's MFA (devices and recovery codes gone, the user must
//! enroll at the next sign-in, notified by email over SMTP); root cannot be reset by an
//! administrator; `mamori-server admin recover-root` on the host is the last resort, loudly
//! audited.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::process::Command;

use crate::common::*;
use crate::recovery_common::SmtpSink;
use serde_json::{json, Value};

fn has(events: &[Value], kind: &str, result: &str) -> bool {
    events
        .iter()
        .any(|e| e["kind"] == kind && e["result"] == result)
}

#[tokio::test]
async fn administrator_reset_and_root_recovery() {
    let sink = SmtpSink::start().await;
    let env = sink.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(dir.path(), None, &env);
    let root = srv.root_session().await;
    let (_, _, root) = srv.enroll(&root, "root-phone").await;

    // bob with a device and recovery codes.
    let (s, v) = srv
        .post(
            "/api/v1/users",
            Some(&root),
            json!({"user": "bob", "email": "bob@example.test"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let token = v["setup_link"]
        .as_str()
        .unwrap()
        .split("token=")
        .nth(1)
        .unwrap()
        .to_string();
    let (s, _) = srv
        .post(
            "/api/v1/setup",
            None,
            json!({"token": token, "password": PASSWORD}),
        )
        .await;
    assert_eq!(s, 200);
    let (_, v) = srv.sign_in("bob").await;
    let (_, _, bob) = srv.enroll(v["token"].as_str().unwrap(), "bob-phone").await;
    let (s, _) = srv
        .post("/api/v1/recovery-codes", Some(&bob), json!({}))
        .await;
    assert_eq!(s, 201);

    // Only administrators; root cannot be reset by an administrator.
    let (s, v) = srv
        .post("/api/v1/users/root/reset-mfa", Some(&bob), json!({}))
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (403, Some("forbidden")),
        "{v}"
    );
    let (s, v) = srv
        .post("/api/v1/users/root/reset-mfa", Some(&root), json!({}))
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (403, Some("forbidden")),
        "{v}"
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("recover-root"),
        "{v}"
    );

    // Root's session gave its factor seconds ago: the reset of bob goes through.
    let (s, v) = srv
        .post("/api/v1/users/bob/reset-mfa", Some(&root), json!({}))
        .await;
    assert_eq!(s, 204, "{v}");
    let mail = sink
        .wait_for("bob@example.test", "an administrator reset your MFA")
        .await;
    assert!(mail.body().contains("\"root\""), "{}", mail.body());
    // bob's session ended; at the next sign-in bob may only enroll.
    let (s, _) = srv.get("/api/v1/me", Some(&bob)).await;
    assert_eq!(s, 401);
    let (s, v) = srv.sign_in("bob").await;
    assert_eq!(
        (s, v["status"].as_str()),
        (200, Some("mfa_enrollment_required")),
        "{v}"
    );
    let restricted = v["token"].as_str().unwrap().to_string();
    let (s, _) = srv.get("/api/v1/recovery-codes", Some(&restricted)).await;
    assert_eq!(s, 403);
    let (_, _, bob) = srv.enroll(&restricted, "bob-new-phone").await;
    // The old recovery codes went with the reset.
    let (_, v) = srv.get("/api/v1/recovery-codes", Some(&bob)).await;
    assert_eq!(v["total"], 0, "{v}");
    // Enrolled: the mark is gone, the next sign-in asks for a code again.
    let (_, v) = srv.sign_in("bob").await;
    assert_eq!(v["status"], "mfa_required", "{v}");

    let events = srv.audit(&root, "limit=1000").await;
    assert!(has(&events, "mfa.reset", "refused_root"));
    assert!(has(&events, "mfa.reset", "success"));

    // recover-root on the host: root's devices go, a one-time link is printed, and root must
    // enroll after choosing a password.
    let out = Command::new(env!("CARGO_BIN_EXE_mamori-server"))
        .arg("admin")
        .arg("recover-root")
        .arg("--data-dir")
        .arg(dir.path())
        .env_remove("MAMORI_CONFIG")
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("WARNING"), "{stdout}");
    let link = stdout.trim().rsplit(' ').next().unwrap();
    let token = link.split("token=").nth(1).unwrap();
    let (s, _) = srv.get("/api/v1/me", Some(&root)).await;
    assert_eq!(s, 401, "root's sessions ended");
    let (s, v) = srv
        .post(
            "/api/v1/setup",
            None,
            json!({"token": token, "password": PASSWORD}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = srv.sign_in("root").await;
    assert_eq!(
        (s, v["status"].as_str()),
        (200, Some("mfa_enrollment_required")),
        "{v}"
    );
    let (_, _, root) = srv
        .enroll(v["token"].as_str().unwrap(), "root-new-phone")
        .await;
    let events = srv.audit(&root, "limit=1000").await;
    let rec = events
        .iter()
        .find(|e| e["kind"] == "account.recover_root")
        .expect("recover-root is audited");
    assert_eq!(rec["result"], "success");
    assert!(
        rec["detail"]
            .as_str()
            .unwrap()
            .contains("1 devices removed"),
        "{rec}"
    );
}
