//! Verified contact details against the real binary: the email code arrives over a real SMTP
//! conversation at an in-test sink, the phone code as an HMAC-signed JSON POST at an in-test
//! webhook receiver (signature checked here with the shared secret); guessed, exhausted and
//! reused codes are refused and audited, and a new code brings no fresh attempts within the
//! hour.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::common::*;
use crate::recovery_common::{six_digits, SmtpSink, WebhookReceiver};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};

const SECRET: &str = "a-webhook-secret-of-32-characters";

fn has(events: &[Value], kind: &str, result: &str) -> bool {
    events
        .iter()
        .any(|e| e["kind"] == kind && e["result"] == result)
}

#[tokio::test]
async fn email_and_phone_are_proven_with_codes() {
    let sink = SmtpSink::start().await;
    let hook = WebhookReceiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("phone-secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    let mut env = sink.env();
    env.push(("MAMORI_PHONE_PROVIDER".into(), "webhook".into()));
    env.push(("MAMORI_PHONE_URL".into(), hook.url.clone()));
    env.push((
        "MAMORI_PHONE_SECRET_FILE".into(),
        secret_file.display().to_string(),
    ));
    // Wrong codes count in the account's failure counter; no waiting between them here.
    env.push(("MAMORI_LOCKOUT_DELAY_BASE_SECS".into(), "0".into()));
    // Password-only accounts sign in fully here (#15 made require_mfa = "all" the default).
    env.push(("MAMORI_REQUIRE_MFA".into(), "root".into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let srv = Server::start(&dir.path().join("data"), None, &env);
    let root = srv.root_session().await;
    let (_, _, root) = srv.enroll(&root, "root-phone").await;
    let (s, v) = srv
        .post(
            "/api/v1/users",
            Some(&root),
            json!({"user": "carol", "email": "carol@example.test", "phone": "+81 90 1234 5678"}),
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
    srv.post(
        "/api/v1/setup",
        None,
        json!({"token": token, "password": PASSWORD}),
    )
    .await;
    let (_, v) = srv.sign_in("carol").await;
    let carol = v["token"].as_str().unwrap().to_string();

    let (s, v) = srv.get("/api/v1/me/contacts", Some(&carol)).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (
            v["email"]["verified"].as_bool(),
            v["phone"]["verified"].as_bool()
        ),
        (Some(false), Some(false))
    );

    // Email: a guess is refused, the code from the email works once.
    let (s, v) = srv
        .post("/api/v1/me/contacts/email/verify", Some(&carol), json!({}))
        .await;
    assert_eq!(s, 202, "{v}");
    let mail = sink
        .wait_for("carol@example.test", "Your verification code")
        .await;
    let code = six_digits(&mail.body());
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let (s, v) = srv
        .post(
            "/api/v1/me/contacts/email/confirm",
            Some(&carol),
            json!({"code": wrong}),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (401, Some("invalid_code")),
        "{v}"
    );
    let (s, v) = srv
        .post(
            "/api/v1/me/contacts/email/confirm",
            Some(&carol),
            json!({"code": code}),
        )
        .await;
    assert_eq!(s, 204, "{v}");
    let (s, _) = srv
        .post(
            "/api/v1/me/contacts/email/confirm",
            Some(&carol),
            json!({"code": code}),
        )
        .await;
    assert_eq!(s, 401, "a code works once");

    // Phone: the signed webhook message.
    let (s, v) = srv
        .post("/api/v1/me/contacts/phone/verify", Some(&carol), json!({}))
        .await;
    assert_eq!(s, 202, "{v}");
    let h = hook.wait_for(1).await;
    let body: Value = serde_json::from_str(&h.body).unwrap();
    assert_eq!(body["version"], 1);
    // #15 contacts: stored and sent in E.164.
    assert_eq!(body["to"], "+819012345678");
    assert_eq!(body["purpose"], "contact_verification");
    let ts = h.timestamp.clone().unwrap();
    assert_eq!(ts, body["timestamp"].to_string());
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{ts}.{}", h.body).as_bytes());
    let expected = format!(
        "sha256={}",
        data_encoding::HEXLOWER.encode(&mac.finalize().into_bytes())
    );
    assert_eq!(h.signature.as_deref(), Some(expected.as_str()), "signature");
    let phone_code = body["code"].as_str().unwrap().to_string();
    assert!(body["message"].as_str().unwrap().contains(&phone_code));

    // Attempts are limited: five wrong codes, then even the right one is refused.
    let wrong = if phone_code == "000000" {
        "111111"
    } else {
        "000000"
    };
    for _ in 0..5 {
        let (s, _) = srv
            .post(
                "/api/v1/me/contacts/phone/confirm",
                Some(&carol),
                json!({"code": wrong}),
            )
            .await;
        assert_eq!(s, 401);
    }
    let (s, _) = srv
        .post(
            "/api/v1/me/contacts/phone/confirm",
            Some(&carol),
            json!({"code": phone_code}),
        )
        .await;
    assert_eq!(s, 401, "the code is used up after five attempts");
    // A new code would bring no fresh attempts: while the hour's budget is used up, nothing is
    // sent.
    let (s, v) = srv
        .post("/api/v1/me/contacts/phone/verify", Some(&carol), json!({}))
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (429, Some("rate_limited"))
    );
    // An hour later (moved back in the database) a new code proves the number.
    {
        use sqlx::Connection;
        let url = format!("sqlite://{}", srv.data_dir.join("mamori.db").display());
        let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query("UPDATE verification_codes SET window_start = window_start - 3601")
            .execute(&mut c)
            .await
            .unwrap();
    }
    srv.post("/api/v1/me/contacts/phone/verify", Some(&carol), json!({}))
        .await;
    let h = hook.wait_for(2).await;
    assert_eq!(hook.hooks().len(), 2, "the refused request sent nothing");
    let body: Value = serde_json::from_str(&h.body).unwrap();
    let (s, v) = srv
        .post(
            "/api/v1/me/contacts/phone/confirm",
            Some(&carol),
            json!({"code": body["code"]}),
        )
        .await;
    assert_eq!(s, 204, "{v}");

    let (_, v) = srv.get("/api/v1/me/contacts", Some(&carol)).await;
    assert_eq!(
        (
            v["email"]["verified"].as_bool(),
            v["phone"]["verified"].as_bool()
        ),
        (Some(true), Some(true)),
        "{v}"
    );
    let (s, _) = srv
        .post("/api/v1/me/contacts/fax/verify", Some(&carol), json!({}))
        .await;
    assert_eq!(s, 404);

    let events = srv.audit(&root, "account=carol&limit=1000").await;
    assert!(has(&events, "contact.verify_start", "success"));
    assert!(has(&events, "contact.verify", "failure"));
    assert!(has(&events, "contact.verify", "no_code"));
    assert!(has(&events, "contact.verify", "success"));
    assert!(has(&events, "contact.verify_start", "refused_attempts"));
    // No code in any detail.
    for e in &events {
        let d = e["detail"].as_str().unwrap_or("");
        assert!(!d.contains(&code) && !d.contains(&phone_code), "{e}");
    }
}
