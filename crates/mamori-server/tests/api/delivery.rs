//! Honest delivery (issue #15): a code that could not be sent is answered `503
//! delivery_failed`, audited and counted, and leaves no usable code; the phone step offers
//! "send again" and "call me instead" (a signed webhook with `channel: voice` and the digits
//! spaced for a speech engine) within a limit. Real binary, real SMTP conversations, real HTTP
//! webhook receivers on loopback.
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
use tokio::net::TcpListener;

const SECRET: &str = "a-webhook-secret-of-32-characters";

/// A phone gateway that always answers 500, counting the requests it got.
async fn failing_gateway() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let h = hits.clone();
    let app = axum::Router::new().route(
        "/sms",
        axum::routing::post(move || {
            let h = h.clone();
            async move {
                h.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                axum::http::StatusCode::INTERNAL_SERVER_ERROR
            }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/sms", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, hits)
}

struct World {
    srv: Server,
    sink: SmtpSink,
    root: String,
    _dir: tempfile::TempDir,
}

async fn world(phone_url: &str, extra: &[(&str, &str)]) -> World {
    let sink = SmtpSink::start().await;
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("phone-secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    let mut env = sink.env();
    for (k, v) in [
        ("MAMORI_PHONE_PROVIDER", "webhook"),
        ("MAMORI_PHONE_URL", phone_url),
        (
            "MAMORI_PHONE_SECRET_FILE",
            &secret_file.display().to_string(),
        ),
        ("MAMORI_LIMITS_SIGN_IN_PER_MINUTE", "10000"),
        ("MAMORI_LIMITS_SIGN_IN_BURST", "10000"),
        ("MAMORI_REQUIRE_MFA", "root"),
        ("MAMORI_RECOVERY_WAITING_PERIOD_HOURS", "0"),
    ] {
        env.push((k.into(), v.into()));
    }
    for (k, v) in extra {
        env.retain(|(key, _)| key != k);
        env.push(((*k).into(), (*v).into()));
    }
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let srv = Server::start(&dir.path().join("data"), None, &env);
    let root = srv.root_session().await;
    let (_, _, root) = srv.enroll(&root, "root-phone").await;
    World {
        srv,
        sink,
        root,
        _dir: dir,
    }
}

/// Creates `name` with both contacts and an enrolled device; returns a full session.
async fn user(w: &World, name: &str, phone: &str) -> String {
    let email = format!("{name}@example.test");
    let session = w
        .srv
        .new_user(
            &w.root,
            json!({"user": name, "email": email, "phone": phone}),
        )
        .await;
    let (_, _, full) = w.srv.enroll(&session, &format!("{name}-phone")).await;
    full
}

fn metric(text: &str, name: &str, channel: &str) -> u64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l.contains(&format!("channel=\"{channel}\"")))
        .filter(|l| l.contains("kind=\"code\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

async fn metrics(w: &World) -> String {
    let (s, v) = w.srv.get("/metrics", None).await;
    assert_eq!(s, 200);
    v.as_str().unwrap_or_default().to_string()
}

fn last_code_mail(sink: &SmtpSink) -> crate::recovery_common::Mail {
    sink.mails()
        .into_iter()
        .rfind(|m| m.header("Subject").is_some_and(|s| s.contains("code")))
        .unwrap()
}

fn verify_signature(h: &crate::recovery_common::Hook) {
    let ts = h.timestamp.clone().unwrap();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{ts}.{}", h.body).as_bytes());
    let expected = format!(
        "sha256={}",
        data_encoding::HEXLOWER.encode(&mac.finalize().into_bytes())
    );
    assert_eq!(h.signature.as_deref(), Some(expected.as_str()));
}

#[tokio::test]
async fn a_plain_relay_with_default_starttls_is_reported_not_sent() {
    let hook = WebhookReceiver::start().await;
    // The sink offers no STARTTLS; the server keeps the default `starttls`.
    let w = world(&hook.url, &[("MAMORI_SMTP_SECURITY", "starttls")]).await;
    let full = user(&w, "hanako", "+819012345678").await;
    let (s, v) = w
        .srv
        .post("/api/v1/me/contacts/email/verify", Some(&full), json!({}))
        .await;
    assert_eq!(s, 503, "{v}");
    assert_eq!(v["error"]["code"], "delivery_failed", "{v}");
    // Audited with a reason class, never the transport's text.
    let events = w.srv.audit(&w.root, "user=hanako&limit=1000").await;
    let failed: Vec<&Value> = events
        .iter()
        .filter(|e| e["kind"] == "delivery.failed")
        .collect();
    assert_eq!(failed.len(), 1, "{events:?}");
    let detail = failed[0]["detail"].as_str().unwrap();
    assert!(detail.starts_with("email: "), "{detail}");
    assert!(!detail.contains("127.0.0.1"), "{detail}");
    assert!(
        events
            .iter()
            .any(|e| e["kind"] == "contact.verify_start" && e["result"] == "delivery_failed")
            || events.iter().any(|e| e["result"] == "delivery_failed")
    );
    assert!(
        metric(
            &metrics(&w).await,
            "mamori_delivery_failures_total",
            "email"
        ) >= 1
    );
    // Nothing reached the sink.
    assert!(w.sink.mails().is_empty(), "{:?}", w.sink.mails().len());
}

#[tokio::test]
async fn a_failing_phone_gateway_is_reported_and_counted() {
    let (url, hits) = failing_gateway().await;
    let w = world(&url, &[]).await;
    let full = user(&w, "jiro", "+819011112222").await;
    let before = metric(&metrics(&w).await, "mamori_delivery_failures_total", "sms");
    let (s, v) = w
        .srv
        .post("/api/v1/me/contacts/phone/verify", Some(&full), json!({}))
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (503, Some("delivery_failed")),
        "{v}"
    );
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1);
    let events = w.srv.audit(&w.root, "user=jiro&limit=1000").await;
    assert!(events
        .iter()
        .any(|e| e["kind"] == "delivery.failed" && e["detail"] == "sms: rejected"));
    let after = metric(&metrics(&w).await, "mamori_delivery_failures_total", "sms");
    assert_eq!(after, before + 1);
    // Email still works and is counted as a success.
    let ok_before = metric(
        &metrics(&w).await,
        "mamori_delivery_successes_total",
        "email",
    );
    let (s, v) = w
        .srv
        .post("/api/v1/me/contacts/email/verify", Some(&full), json!({}))
        .await;
    assert_eq!(s, 202, "{v}");
    // Synchronous: the mail is already there when the answer comes.
    let codes = w
        .sink
        .mails()
        .iter()
        .filter(|m| {
            m.header("Subject")
                .is_some_and(|s| s.contains("verification code"))
        })
        .count();
    assert_eq!(codes, 1);
    let ok_after = metric(
        &metrics(&w).await,
        "mamori_delivery_successes_total",
        "email",
    );
    assert_eq!(ok_after, ok_before + 1);
}

#[tokio::test]
async fn the_phone_step_can_call_and_send_again_within_the_limit() {
    let hook = WebhookReceiver::start().await;
    let w = world(&hook.url, &[]).await;
    let phone = "+819087654321";
    let full = user(&w, "sakura", phone).await;
    // Verify both contacts.
    for channel in ["email", "phone"] {
        let (s, v) = w
            .srv
            .post(
                &format!("/api/v1/me/contacts/{channel}/verify"),
                Some(&full),
                json!({}),
            )
            .await;
        assert_eq!(s, 202, "{v}");
        let code = if channel == "email" {
            six_digits(&last_code_mail(&w.sink).body())
        } else {
            let h = hook.hooks().last().unwrap().clone();
            let v: Value = serde_json::from_str(&h.body).unwrap();
            assert_eq!(v["channel"], "sms");
            v["code"].as_str().unwrap().to_string()
        };
        let (s, v) = w
            .srv
            .post(
                &format!("/api/v1/me/contacts/{channel}/confirm"),
                Some(&full),
                json!({"code": code}),
            )
            .await;
        assert_eq!(s, 204, "{v}");
    }
    let (s, v) = w.srv.sign_in("sakura").await;
    assert_eq!(s, 200, "{v}");
    let ch = v["challenge"].as_str().unwrap().to_string();
    // Before the email step there is nothing to send again.
    let (s, v) = w
        .srv
        .post(
            "/api/v1/sign-in/recovery/phone/resend",
            None,
            json!({"challenge": ch, "channel": "voice"}),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    let (s, v) = w
        .srv
        .post("/api/v1/sign-in/recovery", None, json!({"challenge": ch}))
        .await;
    assert_eq!(s, 202, "{v}");
    assert_eq!(v["sent_to"], "s•••@example.test", "{v}");
    assert_eq!(v["channel"], "email");
    let email_code = six_digits(&last_code_mail(&w.sink).body());
    let (s, v) = w
        .srv
        .post(
            "/api/v1/sign-in/recovery/email",
            None,
            json!({"challenge": ch, "code": email_code}),
        )
        .await;
    assert_eq!(s, 202, "{v}");
    assert_eq!(v["sent_to"], "+81 ••• •••• 4321", "{v}");
    assert_eq!(v["channel"], "sms");
    let sms: Value = serde_json::from_str(&hook.hooks().last().unwrap().body).unwrap();
    let sms_code = sms["code"].as_str().unwrap().to_string();
    // Call me instead.
    let (s, v) = w
        .srv
        .post(
            "/api/v1/sign-in/recovery/phone/resend",
            None,
            json!({"challenge": ch, "channel": "voice"}),
        )
        .await;
    assert_eq!(s, 202, "{v}");
    assert_eq!(v["channel"], "voice");
    let h = hook.hooks().last().unwrap().clone();
    verify_signature(&h);
    let call: Value = serde_json::from_str(&h.body).unwrap();
    assert_eq!(call["channel"], "voice");
    assert_eq!(call["purpose"], "recovery_sign_in");
    let voice_code = call["code"].as_str().unwrap().to_string();
    let spaced: Vec<String> = voice_code.chars().map(String::from).collect();
    assert!(
        call["message"]
            .as_str()
            .unwrap()
            .contains(&spaced.join(" ")),
        "{call}"
    );
    // An unknown channel is refused and sends nothing.
    let n = hook.hooks().len();
    let (s, v) = w
        .srv
        .post(
            "/api/v1/sign-in/recovery/phone/resend",
            None,
            json!({"challenge": ch, "channel": "fax"}),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("invalid_input"))
    );
    assert_eq!(hook.hooks().len(), n);
    // Send again twice more (3 in all), then the limit.
    for _ in 0..2 {
        let (s, v) = w
            .srv
            .post(
                "/api/v1/sign-in/recovery/phone/resend",
                None,
                json!({"challenge": ch, "channel": "sms"}),
            )
            .await;
        assert_eq!(s, 202, "{v}");
    }
    let (s, v) = w
        .srv
        .post(
            "/api/v1/sign-in/recovery/phone/resend",
            None,
            json!({"challenge": ch}),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (429, Some("rate_limited")),
        "{v}"
    );
    assert_eq!(hook.hooks().len(), n + 2);
    let last: Value = serde_json::from_str(&hook.hooks().last().unwrap().body).unwrap();
    let last_code = last["code"].as_str().unwrap().to_string();
    // The replaced codes no longer work; the last one does.
    for old in [&sms_code, &voice_code] {
        if *old == last_code {
            continue;
        }
        let (s, _) = w
            .srv
            .post(
                "/api/v1/sign-in/recovery/phone",
                None,
                json!({"challenge": ch, "code": old}),
            )
            .await;
        assert_eq!(s, 401);
    }
    let (s, v) = w
        .srv
        .post(
            "/api/v1/sign-in/recovery/phone",
            None,
            json!({"challenge": ch, "code": last_code}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "recovery");
    let events = w.srv.audit(&w.root, "user=sakura&limit=1000").await;
    assert!(events
        .iter()
        .any(|e| e["kind"] == "recovery.resend" && e["result"] == "refused_limit"));
    assert!(
        metric(
            &metrics(&w).await,
            "mamori_delivery_successes_total",
            "voice"
        ) >= 1
    );
}
