//! Recovery codes over real HTTP against the real binary, on SQLite and on PostgreSQL, with
//! email notifications delivered over a real SMTP conversation to an in-test sink: make a set,
//! sign in with a code (lenient input), a reused, a guessed and an old set's code refused,
//! concurrent use of one code, the low-codes flag, audit entries and notification emails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::common::*;
use crate::recovery_common::SmtpSink;
use serde_json::{json, Value};

fn has(events: &[Value], kind: &str, result: &str) -> bool {
    events
        .iter()
        .any(|e| e["kind"] == kind && e["result"] == result)
}

/// Root (with a device) creates alice with an email address; alice sets her password and
/// enrolls a device. Returns (root token, alice's full token, alice's secret).
async fn alice(srv: &Server) -> (String, String, String) {
    let root = srv.root_session().await;
    let (_, _, root) = srv.enroll(&root, "root-phone").await;
    let t = srv
        .new_user(
            &root,
            json!({"user": "alice", "email": "alice@example.test"}),
        )
        .await;
    let (_, secret, full) = srv.enroll(&t, "alice-phone").await;
    (root, full, secret)
}

async fn sign_in_with(srv: &Server, code: &str) -> (u16, Value) {
    srv.sign_in_with_code("alice", code).await
}

async fn story(backend: Backend) {
    let sink = SmtpSink::start().await;
    let mut env = sink.env();
    // Many sign-ins from one address in a few seconds: raise the per-address limit.
    env.push(("MAMORI_LIMITS_SIGN_IN_PER_MINUTE".into(), "1000".into()));
    env.push(("MAMORI_LIMITS_SIGN_IN_BURST".into(), "1000".into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(dir.path(), backend.url(), &env);
    let (root, alice_token, _secret) = alice(&srv).await;
    sink.wait_for("alice@example.test", "an MFA device was added")
        .await;

    // No set yet.
    let (s, v) = srv.get("/api/v1/recovery-codes", Some(&alice_token)).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (v["total"].as_u64(), v["low"].as_bool()),
        (Some(0), Some(false))
    );

    // A set of ten distinct codes in the display form.
    let (s, v) = srv
        .post("/api/v1/recovery-codes", Some(&alice_token), json!({}))
        .await;
    assert_eq!(s, 201, "{v}");
    let codes: Vec<String> = v["codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    assert_eq!(codes.len(), 10);
    let distinct: std::collections::HashSet<_> = codes.iter().collect();
    assert_eq!(distinct.len(), 10);
    for c in &codes {
        assert_eq!(c.len(), 11, "{c}");
        assert_eq!(&c[5..6], "-");
        assert!(c
            .chars()
            .filter(|ch| *ch != '-')
            .all(|ch| "23456789ABCDEFGHJKLMNPQRSTUVWXYZ".contains(ch)));
    }
    let m = sink
        .wait_for("alice@example.test", "new recovery codes were made")
        .await;
    // The notification never carries the codes.
    for c in &codes {
        assert!(!m.data.contains(c.as_str()));
    }
    let (_, v) = srv.get("/api/v1/recovery-codes", Some(&alice_token)).await;
    assert_eq!(
        (v["total"].as_u64(), v["remaining"].as_u64()),
        (Some(10), Some(10))
    );

    // Sign in with a code typed in lower case without the dash.
    let typed = codes[0].replace('-', "").to_lowercase();
    let (s, v) = sign_in_with(&srv, &typed).await;
    assert_eq!(s, 200, "{v}");
    let session = v["token"].as_str().unwrap().to_string();
    let (s, v) = srv.get("/api/v1/me", Some(&session)).await;
    assert_eq!(s, 200, "{v}");
    let m = sink
        .wait_for("alice@example.test", "a recovery code was used")
        .await;
    let body = m.body();
    assert!(body.contains("9 unused codes remain"), "{body}");
    assert!(body.contains("127.0.0.1"), "{body}");
    assert!(body.contains("If this was NOT you"), "{body}");

    // The same code again: refused.
    let (s, v) = sign_in_with(&srv, &codes[0]).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (401, Some("invalid_code")),
        "{v}"
    );
    // A guessed code: refused.
    let (s, v) = sign_in_with(&srv, "ABCDE-FGHJK").await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (401, Some("invalid_code")),
        "{v}"
    );

    // Two sign-ins racing with one code: exactly one wins.
    let (_, a) = srv.sign_in("alice").await;
    let (_, b) = srv.sign_in("alice").await;
    let (ra, rb) = tokio::join!(
        srv.post(
            "/api/v1/sign-in/mfa",
            None,
            json!({"challenge": a["challenge"], "code": codes[1]})
        ),
        srv.post(
            "/api/v1/sign-in/mfa",
            None,
            json!({"challenge": b["challenge"], "code": codes[1]})
        )
    );
    let wins = [ra.0, rb.0].iter().filter(|s| **s == 200).count();
    assert_eq!(wins, 1, "{ra:?} {rb:?}");

    // Use codes until two remain: the low flag.
    for c in &codes[2..8] {
        let (s, v) = sign_in_with(&srv, c).await;
        assert_eq!(s, 200, "{v}");
    }
    let (_, v) = srv.get("/api/v1/recovery-codes", Some(&session)).await;
    assert_eq!(
        (v["remaining"].as_u64(), v["low"].as_bool()),
        (Some(2), Some(true)),
        "{v}"
    );

    // A new set: the old set's unused codes stop working. The session gave its factor (the
    // recovery code) moments ago, so no code is needed.
    let (s, v) = srv
        .post("/api/v1/recovery-codes", Some(&session), json!({}))
        .await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = sign_in_with(&srv, &codes[9]).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (401, Some("invalid_code")),
        "{v}"
    );
    let (_, v) = srv.get("/api/v1/recovery-codes", Some(&session)).await;
    assert_eq!(
        (v["remaining"].as_u64(), v["low"].as_bool()),
        (Some(10), Some(false))
    );

    // Audit: each use, the reuse and the guess.
    let events = srv.audit(&root, "account=alice&limit=1000").await;
    assert!(has(&events, "recovery.codes_generate", "success"));
    assert!(has(&events, "recovery.code_use", "success"));
    assert!(has(&events, "recovery.code_use", "reused"));
    assert!(has(&events, "recovery.code_use", "failure"));
    assert!(events
        .iter()
        .any(|e| e["kind"] == "sign_in.mfa" && e["detail"] == "recovery code"));
    // No code appears in the audit log.
    let all = serde_json::to_string(&events).unwrap();
    for c in &codes {
        assert!(!all.contains(c.as_str()) && !all.contains(&c.replace('-', "")));
    }
}

#[tokio::test]
async fn recovery_codes_on_sqlite() {
    story(Backend::Sqlite).await;
}

#[tokio::test]
async fn recovery_codes_on_postgres() {
    story(Backend::postgres().await).await;
}

/// Codes need an enabled device, and a guess budget shared with device codes: after the
/// lock, even a right code is refused.
#[tokio::test]
async fn guessing_recovery_codes_locks_the_account() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(
        dir.path(),
        None,
        &[
            ("MAMORI_LOCKOUT_LOCK_AFTER", "3"),
            ("MAMORI_LOCKOUT_DELAY_BASE_SECS", "0"),
        ],
    );
    let root = srv.root_session().await;
    // An enrollment-only session cannot make codes.
    let (s, v) = srv
        .post("/api/v1/recovery-codes", Some(&root), json!({}))
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (403, Some("mfa_enrollment_required")),
        "{v}"
    );
    let (_, _, root) = srv.enroll(&root, "phone").await;
    let (s, v) = srv
        .post("/api/v1/recovery-codes", Some(&root), json!({}))
        .await;
    assert_eq!(s, 201, "{v}");
    let good = v["codes"][0].as_str().unwrap().to_string();
    for guess in ["ABCDE-FGHJK", "ABCDE-FGHJM", "ABCDE-FGHJN"] {
        let (s, _) = srv.sign_in_with_code("root", guess).await;
        assert!(s == 401 || s == 423, "{s}");
    }
    let (s, v) = srv.sign_in_with_code("root", &good).await;
    assert_eq!(v["error"]["code"], "account_locked", "{s} {v}");
}
