//! Signing in with alternative factors against the real binary (docs/recovery.md), on SQLite and
//! PostgreSQL: the email code arrives over a real SMTP conversation at an in-test sink, the phone
//! code as an HMAC-signed webhook POST at an in-test receiver. Covers the whole lost-device story
//! over the API, the recovery session's restriction to MFA device management, and the abuse
//! cases: a step skipped, guessed, reused and used-up codes, parallel guesses, the lock, the
//! policy and unverified contacts.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Duration;

use crate::common::*;
use crate::recovery_common::{six_digits, Mail, SmtpSink, WebhookReceiver};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};

/// The phone gateway's shared secret (the webhook receiver's signatures are checked with it).
pub(crate) const SECRET: &str = "a-webhook-secret-of-32-characters";

struct World {
    srv: Server,
    sink: SmtpSink,
    hook: WebhookReceiver,
    root: String,
    _dir: tempfile::TempDir,
}

/// The server environment that delivers email codes to `sink` over SMTP and phone codes to
/// `hook` as signed webhooks; writes the shared secret to `secret_file`. (Shared with the
/// SIGTERM test, whose recoveries cross a restart.)
pub(crate) fn delivery_env(
    sink: &SmtpSink,
    hook: &WebhookReceiver,
    secret_file: &std::path::Path,
) -> Vec<(String, String)> {
    std::fs::write(secret_file, format!("{SECRET}\n")).unwrap();
    let mut env = sink.env();
    for (k, v) in [
        ("MAMORI_PHONE_PROVIDER", "webhook"),
        ("MAMORI_PHONE_URL", hook.url.as_str()),
        (
            "MAMORI_PHONE_SECRET_FILE",
            &secret_file.display().to_string(),
        ),
    ] {
        env.push((k.into(), v.into()));
    }
    env
}

async fn world(database: Option<&str>, extra: &[(&str, &str)]) -> World {
    let sink = SmtpSink::start().await;
    let hook = WebhookReceiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut env = delivery_env(&sink, &hook, &dir.path().join("phone-secret"));
    for (k, v) in [
        // Many sign-in steps from one address in a few seconds.
        ("MAMORI_LIMITS_SIGN_IN_PER_MINUTE", "10000"),
        ("MAMORI_LIMITS_SIGN_IN_BURST", "10000"),
        // No waiting between failures: the tests count failures, not delays.
        ("MAMORI_LOCKOUT_DELAY_BASE_SECS", "0"),
        // These tests walk recovery straight through (the waiting period: recovery_wait.rs).
        ("MAMORI_RECOVERY_WAITING_PERIOD_HOURS", "0"),
    ] {
        env.push((k.into(), v.into()));
    }
    for (k, v) in extra {
        env.push(((*k).into(), (*v).into()));
    }
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let srv = Server::start(&dir.path().join("data"), database, &env);
    let root = srv.root_session().await;
    let (_, _, root) = srv.enroll(&root, "root-phone").await;
    World {
        srv,
        sink,
        hook,
        root,
        _dir: dir,
    }
}

/// The `n`-th (1-based) mail to `to` whose subject contains `subject`.
pub(crate) async fn nth_mail(sink: &SmtpSink, to: &str, subject: &str, n: usize) -> Mail {
    for _ in 0..400 {
        let found: Vec<Mail> = sink
            .mails()
            .into_iter()
            .filter(|m| {
                m.to.iter().any(|t| t == to)
                    && m.header("Subject").is_some_and(|s| s.contains(subject))
            })
            .collect();
        if let Some(m) = found.get(n - 1) {
            return m.clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("mail {n} to {to} about {subject:?} did not arrive");
}

/// The `n`-th (1-based) webhook message to `to` for `purpose`, with its signature checked.
pub(crate) async fn nth_phone_message(
    hook: &WebhookReceiver,
    to: &str,
    purpose: &str,
    n: usize,
) -> Value {
    for _ in 0..400 {
        let found: Vec<(crate::recovery_common::Hook, Value)> = hook
            .hooks()
            .into_iter()
            .map(|h| {
                let v: Value = serde_json::from_str(&h.body).unwrap();
                (h, v)
            })
            .filter(|(_, v)| v["to"] == to.replace(' ', "") && v["purpose"] == purpose)
            .collect();
        if let Some((h, v)) = found.get(n - 1) {
            let ts = h.timestamp.clone().unwrap();
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
            mac.update(format!("{ts}.{}", h.body).as_bytes());
            let expected = format!(
                "sha256={}",
                data_encoding::HEXLOWER.encode(&mac.finalize().into_bytes())
            );
            assert_eq!(h.signature.as_deref(), Some(expected.as_str()));
            return v.clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("phone message {n} to {to} for {purpose} did not arrive");
}

/// Creates `user` with contacts, sets the password, enrolls a device and proves the contacts
/// listed in `verify`. Returns (device id, secret, full session token).
async fn user(w: &World, name: &str, phone: &str, verify: &[&str]) -> (String, String, String) {
    user_on(&w.srv, &w.sink, &w.hook, &w.root, name, phone, verify).await
}

/// [`user`] on any server whose codes go to `sink` and `hook`, created by the administrator
/// `admin`; the address is `NAME@example.test`.
pub(crate) async fn user_on(
    srv: &Server,
    sink: &SmtpSink,
    hook: &WebhookReceiver,
    admin: &str,
    name: &str,
    phone: &str,
    verify: &[&str],
) -> (String, String, String) {
    let email = format!("{name}@example.test");
    let session = srv
        .new_user(admin, json!({"user": name, "email": email, "phone": phone}))
        .await;
    let (id, secret, full) = srv.enroll(&session, &format!("{name}-old-phone")).await;
    for channel in verify {
        let (s, v) = srv
            .post(
                &format!("/api/v1/me/contacts/{channel}/verify"),
                Some(&full),
                json!({}),
            )
            .await;
        assert_eq!(s, 202, "{v}");
        let code = if *channel == "email" {
            six_digits(
                &nth_mail(sink, &email, "Your verification code", 1)
                    .await
                    .body(),
            )
        } else {
            nth_phone_message(hook, phone, "contact_verification", 1).await["code"]
                .as_str()
                .unwrap()
                .to_string()
        };
        let (s, v) = srv
            .post(
                &format!("/api/v1/me/contacts/{channel}/confirm"),
                Some(&full),
                json!({"code": code}),
            )
            .await;
        assert_eq!(s, 204, "{v}");
    }
    (id, secret, full)
}

async fn challenge(w: &World, name: &str) -> String {
    let (s, v) = w.srv.sign_in(name).await;
    assert_eq!(
        (s, v["status"].as_str()),
        (200, Some("mfa_required")),
        "{v}"
    );
    v["challenge"].as_str().unwrap().to_string()
}

fn other_than(code: &str) -> &'static str {
    if code == "000000" {
        "111111"
    } else {
        "000000"
    }
}

fn error_code(v: &Value) -> Option<&str> {
    v["error"]["code"].as_str()
}

fn has(events: &[Value], kind: &str, result: &str) -> bool {
    events
        .iter()
        .any(|e| e["kind"] == kind && e["result"] == result)
}

/// The stored recovery sign-in rows, read from the database itself: (id, step, code_hash).
async fn recovery_rows(w: &World, database: Option<&str>) -> Vec<(String, String, Vec<u8>)> {
    use sqlx::{Connection, Row};
    let q = "SELECT id, step, code_hash FROM recovery_signins";
    let rows = match database {
        Some(url) => {
            let mut c = sqlx::PgConnection::connect(url).await.unwrap();
            let rows = sqlx::query(q).fetch_all(&mut c).await.unwrap();
            rows.iter()
                .map(|r| (r.get("id"), r.get("step"), r.get("code_hash")))
                .collect()
        }
        None => {
            let url = format!(
                "sqlite://{}?mode=ro",
                w.srv.data_dir.join("mamori.db").display()
            );
            let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
            let rows = sqlx::query(q).fetch_all(&mut c).await.unwrap();
            rows.iter()
                .map(|r| (r.get("id"), r.get("step"), r.get("code_hash")))
                .collect()
        }
    };
    rows
}

async fn lost_phone_story(database: Option<&str>) {
    let w = world(database, &[]).await;
    let phone = "+81 90 1111 2222";
    let (old_id, _, old_session) = user(&w, "carol", phone, &["email", "phone"]).await;
    let email = "carol@example.test";
    let ch = challenge(&w, "carol").await;

    // Step 2 without step 1: nothing to answer.
    let (s, v) = w
        .srv
        .post(
            "/api/v1/sign-in/recovery/phone",
            None,
            json!({"challenge": ch, "code": "123456"}),
        )
        .await;
    assert_eq!((s, error_code(&v)), (401, Some("invalid_code")), "{v}");
    // A made-up challenge cannot start anything.
    let (s, v) = w
        .srv
        .post(
            "/api/v1/sign-in/recovery",
            None,
            json!({"challenge": "not-a-challenge"}),
        )
        .await;
    assert_eq!((s, error_code(&v)), (401, Some("invalid_challenge")), "{v}");

    // Step 1: the email code.
    let (s, v) = w
        .srv
        .post("/api/v1/sign-in/recovery", None, json!({"challenge": ch}))
        .await;
    assert_eq!((s, v["next"].as_str()), (202, Some("email_code")), "{v}");
    assert!(
        v["expires_at"].as_i64().unwrap() > now() as i64 + 500,
        "{v}"
    );
    let mail = nth_mail(&w.sink, email, "Your sign-in code", 1).await;
    let email_code = six_digits(&mail.body());
    // Still no phone step before the email code was given.
    let (s, _) = w
        .srv
        .post(
            "/api/v1/sign-in/recovery/phone",
            None,
            json!({"challenge": ch, "code": email_code}),
        )
        .await;
    assert_eq!(s, 401, "the email code does not answer the phone step");
    let (s, v) = w
        .srv
        .post(
            "/api/v1/sign-in/recovery/email",
            None,
            json!({"challenge": ch, "code": other_than(&email_code)}),
        )
        .await;
    assert_eq!((s, error_code(&v)), (401, Some("invalid_code")), "{v}");
    let (s, v) = w
        .srv
        .post(
            "/api/v1/sign-in/recovery/email",
            None,
            json!({"challenge": ch, "code": email_code}),
        )
        .await;
    assert_eq!((s, v["next"].as_str()), (202, Some("phone_code")), "{v}");
    // The email code is spent.
    let (s, _) = w
        .srv
        .post(
            "/api/v1/sign-in/recovery/email",
            None,
            json!({"challenge": ch, "code": email_code}),
        )
        .await;
    assert_eq!(s, 401, "an email code works once");

    // Step 2: the phone code, through the signed webhook.
    let msg = nth_phone_message(&w.hook, phone, "recovery_sign_in", 1).await;
    let phone_code = msg["code"].as_str().unwrap().to_string();
    assert!(msg["message"].as_str().unwrap().contains(&phone_code));
    // Stored: only SHA-256 of row id, step and code; the email code's hash is gone.
    let rows = recovery_rows(&w, database).await;
    assert_eq!(rows.len(), 1, "one row per challenge");
    let (id, step, hash) = &rows[0];
    assert_eq!(step, "phone");
    let expected: Vec<u8> =
        <sha2::Sha256 as sha2::Digest>::digest(format!("{id}:phone:{phone_code}").as_bytes())
            .to_vec();
    assert_eq!(hash, &expected);
    let (s, v) = w
        .srv
        .post(
            "/api/v1/sign-in/recovery/phone",
            None,
            json!({"challenge": ch, "code": other_than(&phone_code)}),
        )
        .await;
    assert_eq!((s, error_code(&v)), (401, Some("invalid_code")), "{v}");
    let (s, headers, v) = w
        .srv
        .call(
            "POST",
            "/api/v1/sign-in/recovery/phone",
            None,
            Some(json!({"challenge": ch, "code": phone_code})),
        )
        .await;
    assert_eq!((s, v["status"].as_str()), (200, Some("recovery")), "{v}");
    assert!(headers
        .get("set-cookie")
        .and_then(|c| c.to_str().ok())
        .is_some_and(|c| c.starts_with("mamori_session=")));
    let rec = v["token"].as_str().unwrap().to_string();
    assert!(v["expires_at"].as_i64().unwrap() <= now() as i64 + 30 * 60 + 5);
    // The challenge is consumed: the phone code cannot make a second session.
    let (s, v) = w
        .srv
        .post(
            "/api/v1/sign-in/recovery/phone",
            None,
            json!({"challenge": ch, "code": phone_code}),
        )
        .await;
    assert_eq!((s, error_code(&v)), (401, Some("invalid_challenge")), "{v}");

    // The recovery session reaches MFA device management and nothing else.
    let (s, v) = w.srv.get("/api/v1/me", Some(&rec)).await;
    assert_eq!((s, v["user"].as_str()), (200, Some("carol")), "{v}");
    let (s, v) = w.srv.get("/api/v1/mfa-devices", Some(&rec)).await;
    assert_eq!(s, 200, "{v}");
    for (method, path, body) in [
        ("GET", "/api/v1/sessions", None),
        (
            "POST",
            "/api/v1/me/password",
            Some(json!({"current_password": PASSWORD, "new_password": "another-long-password-1"})),
        ),
        ("GET", "/api/v1/recovery-codes", None),
        ("POST", "/api/v1/recovery-codes", Some(json!({}))),
        ("GET", "/api/v1/me/contacts", None),
        ("POST", "/api/v1/me/contacts/email/verify", Some(json!({}))),
        ("GET", "/api/v1/alerts", None),
        (
            "POST",
            "/api/v1/session/verify",
            Some(json!({"code": "123456"})),
        ),
        ("GET", "/api/v1/users", None),
        ("GET", "/api/v1/audit", None),
        ("GET", "/api/v1/review", None),
        ("POST", "/api/v1/app-keys", Some(json!({"name": "x"}))),
        (
            "PATCH",
            &format!("/api/v1/mfa-devices/{old_id}") as &str,
            Some(json!({"name": "renamed"})),
        ),
        ("GET", "/api/v1/tokens", None),
        (
            "POST",
            "/api/v1/sync/devices",
            Some(json!({"name": "laptop"})),
        ),
    ] {
        let (s, _, v) = w.srv.call(method, path, Some(&rec), body).await;
        assert_eq!(
            (s, error_code(&v)),
            (403, Some("recovery_session_restricted")),
            "{method} {path}: {v}"
        );
    }
    // The console applies the same restriction to the same session (as a cookie).
    let console = |method: reqwest::Method, path: &str| {
        w.srv
            .client
            .request(method, format!("{}{path}", w.srv.url))
            .header("cookie", format!("mamori_session={rec}"))
            .send()
    };
    for path in [
        "/security/recovery-codes",
        "/security/contacts",
        "/users",
        "/audit",
        "/app-keys",
        "/review",
        "/security/mfa/hardware/x",
    ] {
        let r = console(reqwest::Method::GET, path).await.unwrap();
        assert_eq!(r.status().as_u16(), 403, "{path}");
        assert!(r
            .text()
            .await
            .unwrap()
            .contains("can only manage MFA devices"));
    }
    for path in [
        "/security/password",
        "/users",
        "/security/contacts/email/verify",
    ] {
        let r = console(reqwest::Method::POST, path).await.unwrap();
        assert_eq!(r.status().as_u16(), 403, "POST {path}");
    }
    for (path, lands) in [
        ("/", "/security/recovery-session"),
        ("/security", "/security/recovery-session"),
        ("/security/recovery-session", "/security/recovery-session"),
        ("/security/mfa/new", "/security/mfa/new"),
    ] {
        let r = console(reqwest::Method::GET, path).await.unwrap();
        assert_eq!(
            (r.status().as_u16(), r.url().path()),
            (200, lands),
            "{path}"
        );
    }
    // #15 recovery: granting the recovery session signed every other session out.
    let (s, _) = w.srv.get("/api/v1/me", Some(&old_session)).await;
    assert_eq!(s, 401);

    // Remove the lost device without a code from it, then enroll a new one.
    let (s, _, v) = w
        .srv
        .call(
            "DELETE",
            &format!("/api/v1/mfa-devices/{old_id}"),
            Some(&rec),
            None,
        )
        .await;
    assert_eq!(s, 204, "{v}");
    let (s, v) = w
        .srv
        .post(
            "/api/v1/mfa-devices/virtual",
            Some(&rec),
            json!({"name": "carol-new-phone"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let new_id = v["id"].as_str().unwrap().to_string();
    let new_secret = v["secret_base32"].as_str().unwrap().to_string();
    let t = now();
    let (s, v) = w
        .srv
        .post(
            &format!("/api/v1/mfa-devices/{new_id}/enable"),
            Some(&rec),
            json!({"code1": code(&new_secret, t - 30), "code2": code(&new_secret, t)}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let full = v["token"].as_str().unwrap().to_string();
    assert_ne!(full, rec);

    // Every other session ended; the new full session is the only one.
    for t in [&rec, &old_session] {
        let (s, _) = w.srv.get("/api/v1/me", Some(t)).await;
        assert_eq!(s, 401, "the old and the recovery session are revoked");
    }
    let (s, v) = w.srv.get("/api/v1/sessions", Some(&full)).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v.as_array().unwrap().len(), 1, "{v}");

    // Notices: started and completed, with the client address and what to do.
    for subject in [
        "a sign-in with alternative factors was started",
        "a sign-in with alternative factors was completed",
    ] {
        let body = nth_mail(&w.sink, email, subject, 1).await.body();
        assert!(body.contains("Client address: 127.0.0.1"), "{body}");
        assert!(body.contains("If this was NOT you"), "{body}");
        assert!(!body.contains(&email_code) && !body.contains(&phone_code));
    }
    let done = nth_mail(&w.sink, email, "was completed", 1).await.body();
    assert!(done.contains("\"carol-new-phone\""), "{done}");

    // The audit trail, without any code.
    let events = w.srv.audit(&w.root, "account=carol&limit=1000").await;
    for (kind, result) in [
        ("recovery.start", "success"),
        ("recovery.email", "failure"),
        ("recovery.email", "success"),
        ("recovery.email", "no_code"),
        ("recovery.phone", "no_code"),
        ("recovery.phone", "failure"),
        ("recovery.phone", "success"),
        ("mfa.delete", "success"),
        ("mfa.enable", "success"),
        ("recovery.complete", "success"),
    ] {
        assert!(has(&events, kind, result), "{kind}/{result} missing");
    }
    for e in &events {
        let d = e["detail"].as_str().unwrap_or("");
        assert!(!d.contains(&email_code) && !d.contains(&phone_code), "{e}");
    }

    // Sign-in with the new device works as usual.
    let (s, v) = w
        .srv
        .sign_in_with_code("carol", &code(&new_secret, now() + 30))
        .await;
    assert_eq!((s, v["status"].as_str()), (200, Some("signed_in")), "{v}");
}

#[tokio::test]
async fn lost_phone_story_on_sqlite() {
    lost_phone_story(None).await;
}

#[tokio::test]
async fn lost_phone_story_on_postgres() {
    let db = Backend::postgres().await;
    lost_phone_story(db.url()).await;
}

/// The attempt count and the lock are decided by the database (one conditional update per
/// guess), so the parallel guesses run on both backends: PostgreSQL serves them truly in
/// parallel, SQLite through its one writer.
async fn guesses_are_limited_counted_and_lock_the_account(database: Option<&str>) {
    let w = world(database, &[("MAMORI_LOCKOUT_LOCK_AFTER", "12")]).await;
    // Contacts not both verified: refused before anything is sent.
    user(&w, "dave", "+81 90 3333 4444", &["email"]).await;
    let ch = challenge(&w, "dave").await;
    let (s, v) = w
        .srv
        .post("/api/v1/sign-in/recovery", None, json!({"challenge": ch}))
        .await;
    assert_eq!((s, error_code(&v)), (403, Some("forbidden")), "{v}");

    let phone = "+81 90 5555 6666";
    user(&w, "erin", phone, &["email", "phone"]).await;
    let email = "erin@example.test";
    let ch = challenge(&w, "erin").await;
    let (s, _) = w
        .srv
        .post("/api/v1/sign-in/recovery", None, json!({"challenge": ch}))
        .await;
    assert_eq!(s, 202);
    let right = six_digits(
        &nth_mail(&w.sink, email, "Your sign-in code", 1)
            .await
            .body(),
    );
    let wrong = other_than(&right);
    // Ten parallel guesses: the code takes exactly five attempts.
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let client = w.srv.client.clone();
        let url = format!("{}/api/v1/sign-in/recovery/email", w.srv.url);
        let body = json!({"challenge": ch, "code": wrong});
        set.spawn(async move {
            let r = client.post(url).json(&body).send().await.unwrap();
            let s = r.status().as_u16();
            let v: Value = r.json().await.unwrap();
            (s, v)
        });
    }
    while let Some(r) = set.join_next().await {
        let (s, v) = r.unwrap();
        assert_eq!((s, error_code(&v)), (401, Some("invalid_code")), "{v}");
    }
    // Used up: even the right code is refused now.
    let (s, _) = w
        .srv
        .post(
            "/api/v1/sign-in/recovery/email",
            None,
            json!({"challenge": ch, "code": right}),
        )
        .await;
    assert_eq!(s, 401, "the code is used up after five attempts");
    let events = w.srv.audit(&w.root, "account=erin&limit=1000").await;
    let failures = events
        .iter()
        .filter(|e| e["kind"] == "recovery.email" && e["result"] == "failure")
        .count();
    assert_eq!(failures, 5, "exactly five attempts were counted");
    assert!(events.iter().any(|e| e["kind"] == "recovery.email"
        && e["result"] == "failure"
        && e["detail"] == "attempt 5 of 5"));
    assert!(has(&events, "recovery.email", "no_code"));
    // Starting again sends a new code; the failures keep counting toward the lock (12).
    let (s, _) = w
        .srv
        .post("/api/v1/sign-in/recovery", None, json!({"challenge": ch}))
        .await;
    assert_eq!(s, 202);
    let right = six_digits(
        &nth_mail(&w.sink, email, "Your sign-in code", 2)
            .await
            .body(),
    );
    let wrong = other_than(&right);
    for _ in 0..5 {
        let (s, _) = w
            .srv
            .post(
                "/api/v1/sign-in/recovery/email",
                None,
                json!({"challenge": ch, "code": wrong}),
            )
            .await;
        assert_eq!(s, 401);
    }
    let (s, _) = w
        .srv
        .post("/api/v1/sign-in/recovery", None, json!({"challenge": ch}))
        .await;
    assert_eq!(s, 202);
    let right = six_digits(
        &nth_mail(&w.sink, email, "Your sign-in code", 3)
            .await
            .body(),
    );
    let (s, v) = w
        .srv
        .post(
            "/api/v1/sign-in/recovery/email",
            None,
            json!({"challenge": ch, "code": other_than(&right)}),
        )
        .await;
    assert_eq!(s, 401, "{v}");
    let (s, v) = w
        .srv
        .post(
            "/api/v1/sign-in/recovery/email",
            None,
            json!({"challenge": ch, "code": other_than(&right)}),
        )
        .await;
    assert_eq!((s, error_code(&v)), (423, Some("account_locked")), "{v}");
    // Locked: the right code does not help, and nothing new can be started.
    let (s, v) = w
        .srv
        .post(
            "/api/v1/sign-in/recovery/email",
            None,
            json!({"challenge": ch, "code": right}),
        )
        .await;
    assert_eq!((s, error_code(&v)), (423, Some("account_locked")), "{v}");
    let events = w.srv.audit(&w.root, "account=erin&limit=1000").await;
    assert!(has(&events, "account.lock", "success"));
    assert!(has(&events, "recovery.email", "locked"));
    let events = w.srv.audit(&w.root, "account=dave&limit=1000").await;
    assert!(has(&events, "recovery.start", "refused_contacts"));
}

#[tokio::test]
async fn guesses_are_limited_counted_and_lock_the_account_on_sqlite() {
    guesses_are_limited_counted_and_lock_the_account(None).await;
}

#[tokio::test]
async fn guesses_are_limited_counted_and_lock_the_account_on_postgres() {
    let db = Backend::postgres().await;
    guesses_are_limited_counted_and_lock_the_account(db.url()).await;
}

#[tokio::test]
async fn the_policy_can_turn_it_off() {
    let w = world(None, &[("MAMORI_RECOVERY_ALTERNATIVE_FACTORS", "off")]).await;
    user(&w, "frank", "+81 90 7777 8888", &["email", "phone"]).await;
    let ch = challenge(&w, "frank").await;
    let (s, v) = w
        .srv
        .post("/api/v1/sign-in/recovery", None, json!({"challenge": ch}))
        .await;
    assert_eq!((s, error_code(&v)), (403, Some("forbidden")), "{v}");
    let events = w.srv.audit(&w.root, "account=frank&limit=1000").await;
    assert!(has(&events, "recovery.start", "refused_policy"));
    // The endpoints and their wire types are in the OpenAPI document.
    let (s, doc) = w.srv.get("/api/v1/openapi.json", None).await;
    assert_eq!(s, 200);
    for p in [
        "/api/v1/sign-in/recovery",
        "/api/v1/sign-in/recovery/email",
        "/api/v1/sign-in/recovery/phone",
        "/api/v1/recovery-codes",
        "/api/v1/me/contacts",
        "/api/v1/me/contacts/{channel}/verify",
        "/api/v1/me/contacts/{channel}/confirm",
    ] {
        assert!(doc["paths"][p].is_object(), "{p} missing");
    }
    let schemas = &doc["components"]["schemas"];
    assert!(schemas["RecoverySessionResponse"].is_object());
    assert!(schemas["ErrorCode"]
        .to_string()
        .contains("recovery_session_restricted"));
    // Nothing was sent. Codes are delivered before the answer (#15: a code is never reported
    // as sent before the mail server took it), so a sent code would already be in the sink;
    // no waiting needed, and none would prove more.
    assert!(!w.sink.mails().iter().any(|m| m
        .header("Subject")
        .is_some_and(|s| s.contains("sign-in code"))));
}

/// RFC 2047 encoded words (`=?utf-8?b?…?=` and `=?utf-8?q?…?=`) of a header, decoded.
fn decode_header(v: &str) -> String {
    // White space between two encoded words is not part of the text; any other is.
    let mut out = String::new();
    let mut prev_encoded = None;
    for word in v.split_whitespace() {
        let parts: Vec<&str> = word.split('?').collect();
        let encoded = parts.len() == 5 && parts[0] == "=" && parts[4] == "=";
        if prev_encoded.is_some() && !(encoded && prev_encoded == Some(true)) {
            out.push(' ');
        }
        if encoded {
            let bytes = if parts[2].eq_ignore_ascii_case("b") {
                data_encoding::BASE64.decode(parts[3].as_bytes()).unwrap()
            } else {
                crate::recovery_common::decode_qp(&parts[3].replace('_', " ")).into_bytes()
            };
            out.push_str(&String::from_utf8(bytes).unwrap());
        } else {
            out.push_str(word);
        }
        prev_encoded = Some(encoded);
    }
    out
}

/// The body of a mail, decoded from base64 or quoted-printable.
fn decoded_body(m: &Mail) -> String {
    let base64 = m
        .header("Content-Transfer-Encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("base64"));
    if base64 {
        let raw = m.data.split_once("\r\n\r\n").unwrap().1;
        let joined: String = raw.split_whitespace().collect();
        String::from_utf8(data_encoding::BASE64.decode(joined.as_bytes()).unwrap()).unwrap()
    } else {
        m.body()
    }
}

/// The `n`-th mail to `to` whose decoded subject contains `subject`.
async fn nth_mail_decoded(sink: &SmtpSink, to: &str, subject: &str, n: usize) -> Mail {
    for _ in 0..400 {
        let found: Vec<Mail> = sink
            .mails()
            .into_iter()
            .filter(|m| {
                m.to.iter().any(|t| t == to)
                    && m.header("Subject")
                        .is_some_and(|s| decode_header(&s).contains(subject))
            })
            .collect();
        if let Some(m) = found.get(n - 1) {
            return m.clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got: Vec<_> = sink
        .mails()
        .iter()
        .filter_map(|m| m.header("Subject").map(|s| decode_header(&s)))
        .collect();
    panic!("no mail to {to} about {subject:?}; got {got:?}");
}

#[tokio::test]
async fn emails_are_in_the_configured_language() {
    let w = world(None, &[("MAMORI_RECOVERY_DEFAULT_LANGUAGE", "ja")]).await;
    let phone = "+81 90 2468 1357";
    let (s, v) = w
        .srv
        .post(
            "/api/v1/users",
            Some(&w.root),
            json!({"user": "ivy", "email": "ivy@example.test", "phone": phone}),
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
    w.srv
        .post(
            "/api/v1/setup",
            None,
            json!({"token": token, "password": PASSWORD}),
        )
        .await;
    let (_, v) = w.srv.sign_in("ivy").await;
    let session = v["token"].as_str().unwrap().to_string();
    let (_, _, full) = w.srv.enroll(&session, "ivy-phone").await;
    let added = nth_mail_decoded(
        &w.sink,
        "ivy@example.test",
        "MFA デバイスが追加されました",
        1,
    )
    .await;
    let body = decoded_body(&added);
    assert!(
        body.contains("「ivy-phone」") && body.contains("ご自身の操作でない場合"),
        "{body}"
    );
    // The contact code email and the phone text are Japanese too.
    w.srv
        .post("/api/v1/me/contacts/email/verify", Some(&full), json!({}))
        .await;
    let mail = nth_mail_decoded(&w.sink, "ivy@example.test", "確認コード", 1).await;
    let c = six_digits(&decoded_body(&mail));
    let (s, _) = w
        .srv
        .post(
            "/api/v1/me/contacts/email/confirm",
            Some(&full),
            json!({"code": c}),
        )
        .await;
    assert_eq!(s, 204);
    w.srv
        .post("/api/v1/me/contacts/phone/verify", Some(&full), json!({}))
        .await;
    let msg = nth_phone_message(&w.hook, phone, "contact_verification", 1).await;
    assert!(
        msg["message"].as_str().unwrap().contains("確認コード"),
        "{msg}"
    );
    let (s, _) = w
        .srv
        .post(
            "/api/v1/me/contacts/phone/confirm",
            Some(&full),
            json!({"code": msg["code"]}),
        )
        .await;
    assert_eq!(s, 204);
    // The sign-in code and the started notice.
    let ch = challenge(&w, "ivy").await;
    let (s, _) = w
        .srv
        .post("/api/v1/sign-in/recovery", None, json!({"challenge": ch}))
        .await;
    assert_eq!(s, 202);
    let code_mail = nth_mail_decoded(&w.sink, "ivy@example.test", "サインイン用コード", 1).await;
    assert!(decoded_body(&code_mail).contains("10 分間有効"));
    let started = nth_mail_decoded(
        &w.sink,
        "ivy@example.test",
        "代替要素によるサインインが開始されました",
        1,
    )
    .await;
    let body = decoded_body(&started);
    assert!(body.contains("クライアントのアドレス: 127.0.0.1"), "{body}");
}

/// Password, then the email code, then the phone code: the token of a recovery session for
/// `name` (the `n`-th recovery sign-in of that user in this world).
async fn recovery_session(w: &World, name: &str, phone: &str, n: usize) -> String {
    let email = format!("{name}@example.test");
    let ch = challenge(w, name).await;
    let (s, v) = w
        .srv
        .post("/api/v1/sign-in/recovery", None, json!({"challenge": ch}))
        .await;
    assert_eq!(s, 202, "{v}");
    let code = six_digits(
        &nth_mail(&w.sink, &email, "Your sign-in code", n)
            .await
            .body(),
    );
    let (s, v) = w
        .srv
        .post(
            "/api/v1/sign-in/recovery/email",
            None,
            json!({"challenge": ch, "code": code}),
        )
        .await;
    assert_eq!(s, 202, "{v}");
    let msg = nth_phone_message(&w.hook, phone, "recovery_sign_in", n).await;
    let (s, v) = w
        .srv
        .post(
            "/api/v1/sign-in/recovery/phone",
            None,
            json!({"challenge": ch, "code": msg["code"]}),
        )
        .await;
    assert_eq!((s, v["status"].as_str()), (200, Some("recovery")), "{v}");
    v["token"].as_str().unwrap().to_string()
}

/// A user who lost the phone may enroll a security key as the new device: the key's
/// registration ends the recovery session exactly as enabling a virtual device does (full
/// session, every other session revoked), and the key then answers the MFA step.
#[tokio::test]
async fn a_security_key_enrolled_in_a_recovery_session_ends_it() {
    use webauthn_authenticator_rs::softtoken::SoftToken;
    use webauthn_authenticator_rs::WebauthnAuthenticator;
    use webauthn_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse, Url};

    let origin = "https://mamori.test";
    let w = world(None, &[("MAMORI_PUBLIC_URL", origin)]).await;
    let phone = "+81 90 5555 0101";
    let (_, _, old_full) = user(&w, "kenji", phone, &["email", "phone"]).await;
    let recovery = recovery_session(&w, "kenji", phone, 1).await;
    let (s, v) = w.srv.get("/api/v1/sessions", Some(&recovery)).await;
    assert_eq!(
        (s, error_code(&v)),
        (403, Some("recovery_session_restricted")),
        "{v}"
    );

    // Register a (software) security key from the recovery session.
    let mut key = SoftToken::new(true).unwrap().0;
    let url = Url::parse(origin).unwrap();
    let (s, begun) = w
        .srv
        .post(
            "/api/v1/mfa-devices/security-key/begin",
            Some(&recovery),
            json!({"name": "yubikey-new"}),
        )
        .await;
    assert_eq!(s, 200, "{begun}");
    let ccr: CreationChallengeResponse = serde_json::from_value(begun["options"].clone()).unwrap();
    let credential = serde_json::to_value(key.do_registration(url.clone(), ccr).unwrap()).unwrap();
    let (s, v) = w
        .srv
        .post(
            "/api/v1/mfa-devices/security-key/finish",
            Some(&recovery),
            json!({"ceremony": begun["ceremony"], "credential": credential}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let full = v["token"].as_str().expect("a new full session").to_string();

    // The recovery session and the old session are gone; the new one is full.
    for gone in [&recovery, &old_full] {
        let (s, _) = w.srv.get("/api/v1/me", Some(gone)).await;
        assert_eq!(s, 401, "revoked");
    }
    let (s, v) = w.srv.get("/api/v1/sessions", Some(&full)).await;
    assert_eq!(s, 200, "{v}");
    let (_, v) = w
        .srv
        .get("/api/v1/audit?kind=recovery.complete", Some(&w.root))
        .await;
    assert!(
        v["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "recovery.complete"
                && e["account"] == "kenji"
                && e["result"] == "success"),
        "{v}"
    );

    // The key answers the MFA step of the next sign-in.
    let ch = challenge(&w, "kenji").await;
    let (s, begun) = w
        .srv
        .post(
            "/api/v1/sign-in/security-key/begin",
            None,
            json!({"challenge": ch}),
        )
        .await;
    assert_eq!(s, 200, "{begun}");
    let rcr: RequestChallengeResponse = serde_json::from_value(begun["options"].clone()).unwrap();
    let assertion = serde_json::to_value(key.do_authentication(url, rcr).unwrap()).unwrap();
    let (s, v) = w
        .srv
        .post(
            "/api/v1/sign-in/security-key/finish",
            None,
            json!({"challenge": ch, "ceremony": begun["ceremony"], "credential": assertion}),
        )
        .await;
    assert_eq!((s, v["status"].as_str()), (200, Some("signed_in")), "{v}");
}

/// Each start sends an email, so starts are limited per account (5 an hour), whatever the
/// client address: the sixth is refused with Retry-After, audited, and sends nothing.
#[tokio::test]
async fn starts_per_account_are_limited() {
    let w = world(None, &[]).await;
    let email = "fumi@example.test";
    user(&w, "fumi", "+81 90 7777 8888", &["email", "phone"]).await;
    for n in 1..=5 {
        let ch = challenge(&w, "fumi").await;
        let (s, v) = w
            .srv
            .post("/api/v1/sign-in/recovery", None, json!({"challenge": ch}))
            .await;
        assert_eq!(s, 202, "start {n}: {v}");
        nth_mail(&w.sink, email, "Your sign-in code", n).await;
    }
    let ch = challenge(&w, "fumi").await;
    let (s, headers, v) = w
        .srv
        .call(
            "POST",
            "/api/v1/sign-in/recovery",
            None,
            Some(json!({"challenge": ch})),
        )
        .await;
    assert_eq!((s, error_code(&v)), (429, Some("rate_limited")), "{v}");
    let retry: u64 = headers
        .get("retry-after")
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.parse().ok())
        .expect("Retry-After");
    assert!((3500..=3600).contains(&retry), "{retry}");
    let events = w.srv.audit(&w.root, "user=fumi&kind=recovery.start").await;
    assert_eq!(
        events.iter().filter(|e| e["result"] == "success").count(),
        5
    );
    assert!(has(&events, "recovery.start", "refused_limit"));
    // Nothing more was sent: codes are delivered before the answer, so the refused sixth start
    // would already be in the sink.
    let sent = w
        .sink
        .mails()
        .into_iter()
        .filter(|m| {
            m.to.iter().any(|t| t == email)
                && m.header("Subject")
                    .is_some_and(|s| s.contains("Your sign-in code"))
        })
        .count();
    assert_eq!(sent, 5);
}

/// A hardware token assigned (serial + two consecutive codes) in a recovery session ends it the
/// same way: a full session, every other session revoked.
#[tokio::test]
async fn a_hardware_token_assigned_in_a_recovery_session_ends_it() {
    use mamori_otp::{Algorithm, Generator, OtpKind, OtpParams, Secret};

    let w = world(None, &[]).await;
    let secret = [0x5a_u8; 20];
    let hotp = |counter: u64| {
        let p = OtpParams {
            kind: OtpKind::Hotp,
            algorithm: Algorithm::Sha1,
            digits: 6,
            period: 30,
            counter: 0,
        };
        Generator::new(&Secret::from_bytes(secret.to_vec()).unwrap(), p)
            .unwrap()
            .at_counter(counter)
            .to_string()
    };
    let csv = format!(
        "serial,secret_hex,type,digits,period_or_counter\nRC-0001,{},hotp,6,5\n",
        data_encoding::HEXLOWER.encode(&secret)
    );
    let (s, v) = w
        .srv
        .post(
            "/api/v1/tokens/import",
            Some(&w.root),
            json!({"content": csv}),
        )
        .await;
    assert_eq!(s, 200, "{v}");

    let phone = "+81 90 2222 3434";
    let (_, _, old_full) = user(&w, "gen", phone, &["email", "phone"]).await;
    let recovery = recovery_session(&w, "gen", phone, 1).await;
    let (s, v) = w
        .srv
        .post(
            "/api/v1/mfa-devices/hardware",
            Some(&recovery),
            json!({"serial": "RC-0001", "name": "keyfob", "code1": hotp(6), "code2": hotp(7)}),
        )
        .await;
    assert!((200..300).contains(&s), "{s} {v}");
    let full = v["token"].as_str().expect("a new full session").to_string();
    for gone in [&recovery, &old_full] {
        let (s, _) = w.srv.get("/api/v1/me", Some(gone)).await;
        assert_eq!(s, 401, "revoked");
    }
    let (s, v) = w.srv.get("/api/v1/sessions", Some(&full)).await;
    assert_eq!(s, 200, "{v}");
    let events = w
        .srv
        .audit(&w.root, "user=gen&kind=recovery.complete")
        .await;
    assert!(has(&events, "recovery.complete", "success"), "{events:?}");
    // The token answers the next sign-in.
    let (s, v) = w.srv.sign_in_with_code("gen", &hotp(8)).await;
    assert_eq!((s, v["status"].as_str()), (200, Some("signed_in")), "{v}");
}

// ---- #15 recovery: the waiting period, notices with cancel, revocation at the grant --------

/// Proves email and phone for `name` (the `n`-th codes) and returns the phone step's answer.
async fn prove(w: &World, name: &str, phone: &str, n: usize) -> (u16, Value) {
    let email = format!("{name}@example.test");
    let ch = challenge(w, name).await;
    let (s, v) = w
        .srv
        .post("/api/v1/sign-in/recovery", None, json!({"challenge": ch}))
        .await;
    assert_eq!(s, 202, "{v}");
    let code = six_digits(
        &nth_mail(&w.sink, &email, "Your sign-in code", n)
            .await
            .body(),
    );
    let (s, v) = w
        .srv
        .post(
            "/api/v1/sign-in/recovery/email",
            None,
            json!({"challenge": ch, "code": code}),
        )
        .await;
    assert_eq!(s, 202, "{v}");
    let msg = nth_phone_message(&w.hook, phone, "recovery_sign_in", n).await;
    w.srv
        .post(
            "/api/v1/sign-in/recovery/phone",
            None,
            json!({"challenge": ch, "code": msg["code"]}),
        )
        .await
}

/// The cancel token of the `n`-th "recovery started" notice mailed to `name`, checked against
/// the phone notice too.
async fn cancel_token(w: &World, name: &str, phone: &str, n: usize) -> String {
    let body = nth_mail(
        &w.sink,
        &format!("{name}@example.test"),
        "recovery started",
        n,
    )
    .await
    .body();
    let token = body
        .split("/recovery/cancel?token=")
        .nth(1)
        .unwrap()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect::<String>();
    assert_eq!(token.len(), 43, "{body}");
    let text = nth_phone_message(&w.hook, phone, "recovery_notice", n).await;
    assert!(text["message"].as_str().unwrap().contains(&token), "{text}");
    token
}

/// Opens the cancel link (GET: nothing changes) and presses the button (POST).
async fn cancel_by_link(w: &World, token: &str) -> (u16, u16) {
    let r = w
        .srv
        .client
        .get(format!("{}/recovery/cancel?token={token}", w.srv.url))
        .send()
        .await
        .unwrap();
    let get = r.status().as_u16();
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|h| h.to_str().ok())
        .find(|c| c.starts_with("mamori_csrf="))
        .map(|c| c.split(';').next().unwrap().to_string())
        .unwrap();
    let csrf = cookie.trim_start_matches("mamori_csrf=").to_string();
    let post = w
        .srv
        .client
        .post(format!("{}/recovery/cancel", w.srv.url))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str()), ("token", token)])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    (get, post)
}

async fn register_sync(w: &World, session: &str, name: &str) -> String {
    let (s, v) = w
        .srv
        .post("/api/v1/sync/devices", Some(session), json!({"name": name}))
        .await;
    assert_eq!(s, 201, "{v}");
    v["token"].as_str().unwrap().to_string()
}

async fn waiting_period_story(database: Option<&str>) {
    let w = world(database, &[("MAMORI_RECOVERY_WAITING_PERIOD_SECS", "4")]).await;
    let phone = "+81 90 5555 0101";
    let (_, secret, keep) = user(&w, "wanda", phone, &["email", "phone"]).await;
    let sync = register_sync(&w, &keep, "wanda-laptop").await;

    // Other factors (a sync device): proving email and phone only starts the waiting period.
    let (s, v) = prove(&w, "wanda", phone, 1).await;
    assert_eq!((s, v["status"].as_str()), (202, Some("pending")), "{v}");
    assert!(v.get("token").is_none(), "{v}");
    let token = cancel_token(&w, "wanda", phone, 1).await;
    // The sync device is told, and nothing was revoked yet.
    let (s, v) = w.srv.get("/api/v1/sync/items?since=0", Some(&sync)).await;
    assert_eq!(s, 200, "{v}");
    assert!(v["recovery_pending_until"].as_i64().is_some(), "{v}");
    let (s, _) = w.srv.get("/api/v1/me", Some(&keep)).await;
    assert_eq!(s, 200);

    // A second proof before ready_at: not ready yet.
    let (s, v) = prove(&w, "wanda", phone, 2).await;
    assert_eq!((s, v["status"].as_str()), (202, Some("not_ready")), "{v}");

    // A wrong token is refused; the right one cancels once (GET alone changes nothing).
    assert_eq!(
        cancel_by_link(&w, "A".repeat(43).as_str()).await,
        (404, 404)
    );
    let r = w
        .srv
        .client
        .get(format!("{}/recovery/cancel?token={token}", w.srv.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.text().await.unwrap().contains("cancel-recovery"));
    let (s, _) = w.srv.get("/api/v1/sync/items?since=0", Some(&sync)).await;
    assert_eq!(s, 200);
    assert_eq!(cancel_by_link(&w, &token).await, (200, 200));
    assert_eq!(cancel_by_link(&w, &token).await, (404, 404), "single use");
    let (_, v) = w.srv.get("/api/v1/sync/items?since=0", Some(&sync)).await;
    assert!(v.get("recovery_pending_until").is_none(), "{v}");

    // Started again; a sign-in with the existing device cancels it.
    let (s, v) = prove(&w, "wanda", phone, 3).await;
    assert_eq!((s, v["status"].as_str()), (202, Some("pending")), "{v}");
    let ch = challenge(&w, "wanda").await;
    let (s, v) = w
        .srv
        .post(
            "/api/v1/sign-in/mfa",
            None,
            json!({"challenge": ch, "code": code(&secret, now() + 30)}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let events = w.srv.audit(&w.root, "account=wanda&limit=1000").await;
    let cancels: Vec<&str> = events
        .iter()
        .filter(|e| e["kind"] == "recovery.cancel" && e["result"] == "success")
        .filter_map(|e| e["detail"].as_str())
        .collect();
    assert!(cancels.contains(&"cancel link"), "{cancels:?}");
    assert!(
        cancels.contains(&"sign-in with an existing factor"),
        "{cancels:?}"
    );

    // Started again, then completed after ready_at: the session is granted, and every other
    // session and sync token is revoked.
    let (s, v) = prove(&w, "wanda", phone, 4).await;
    assert_eq!((s, v["status"].as_str()), (202, Some("pending")), "{v}");
    let ready_at = v["ready_at"].as_u64().unwrap();
    // The waiting period is the condition itself: wait for the clock to pass it.
    while now() <= ready_at {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (s, v) = prove(&w, "wanda", phone, 5).await;
    assert_eq!((s, v["status"].as_str()), (200, Some("recovery")), "{v}");
    let (s, _) = w.srv.get("/api/v1/me", Some(&keep)).await;
    assert_eq!(s, 401, "the other session is revoked at the grant");
    let (s, _) = w.srv.get("/api/v1/sync/items?since=0", Some(&sync)).await;
    assert_eq!(s, 401, "the sync token is revoked at the grant");
    let granted = nth_mail(
        &w.sink,
        "wanda@example.test",
        "a recovery session was granted",
        1,
    )
    .await
    .body();
    assert!(granted.contains("Review your remaining"), "{granted}");
    let events = w.srv.audit(&w.root, "account=wanda&limit=1000").await;
    for (kind, result) in [
        ("recovery.pending", "success"),
        ("recovery.pending", "not_ready"),
        ("recovery.granted", "success"),
        ("sync.device_revoke", "success"),
    ] {
        assert!(has(&events, kind, result), "{kind}/{result} missing");
    }
}

#[tokio::test]
async fn waiting_period_story_on_sqlite() {
    waiting_period_story(None).await;
}

#[tokio::test]
async fn waiting_period_story_on_postgres() {
    let db = Backend::postgres().await;
    waiting_period_story(db.url()).await;
}

/// The definition: a single device and nothing else recovers at once; a sync device makes the
/// recovery wait, and the sync device's token cancels it (once).
#[tokio::test]
async fn the_waiting_period_applies_only_with_other_factors() {
    let w = world(None, &[("MAMORI_RECOVERY_WAITING_PERIOD_SECS", "3600")]).await;
    let (nphone, sphone) = ("+81 90 5555 0202", "+81 90 5555 0303");
    user(&w, "nora", nphone, &["email", "phone"]).await;
    let (s, v) = prove(&w, "nora", nphone, 1).await;
    assert_eq!((s, v["status"].as_str()), (200, Some("recovery")), "{v}");

    let (_, _, keep) = user(&w, "sam", sphone, &["email", "phone"]).await;
    let sync = register_sync(&w, &keep, "sam-laptop").await;
    let (s, v) = prove(&w, "sam", sphone, 1).await;
    assert_eq!((s, v["status"].as_str()), (202, Some("pending")), "{v}");
    let (s, _, v) = w
        .srv
        .call("POST", "/api/v1/sync/recovery/cancel", Some(&sync), None)
        .await;
    assert_eq!(s, 204, "{v}");
    let (s, _, v) = w
        .srv
        .call("POST", "/api/v1/sync/recovery/cancel", Some(&sync), None)
        .await;
    assert_eq!((s, error_code(&v)), (404, Some("not_found")), "{v}");
    let (s, _, _) = w
        .srv
        .call(
            "POST",
            "/api/v1/sync/recovery/cancel",
            Some("made-up"),
            None,
        )
        .await;
    assert_eq!(s, 401);
    let events = w.srv.audit(&w.root, "account=sam&limit=1000").await;
    assert!(events.iter().any(|e| e["kind"] == "recovery.cancel"
        && e["detail"].as_str() == Some("sync device sam-laptop")));
}
