//! The account service's story over real HTTP against the real binary, on SQLite and on
//! PostgreSQL: root setup → alert → create device → enable with two consecutive codes → sign
//! out → password + code → session; and the rules around it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::common::*;
use serde_json::{json, Value};

fn kinds(events: &[Value]) -> Vec<(String, String)> {
    events
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_string(),
                e["result"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn has(events: &[Value], kind: &str, result: &str) -> bool {
    kinds(events).iter().any(|(k, r)| k == kind && r == result)
}

async fn story(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(dir.path(), backend.url(), &[("MAMORI_REQUIRE_MFA", "root")]);

    // Setup link: a weak password is refused and leaves the link usable.
    let token = srv.setup_token();
    let (s, v) = srv
        .post(
            "/api/v1/setup",
            None,
            json!({"token": token, "password": "password1234"}),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("weak_password")),
        "{v}"
    );
    let (s, _) = srv
        .post(
            "/api/v1/setup",
            None,
            json!({"token": "bogus", "password": PASSWORD}),
        )
        .await;
    assert_eq!(s, 401);
    let (s, v) = srv
        .post(
            "/api/v1/setup",
            None,
            json!({"token": token, "password": PASSWORD}),
        )
        .await;
    assert_eq!((s, v["user"].as_str()), (200, Some("root")), "{v}");
    let (s, v) = srv
        .post(
            "/api/v1/setup",
            None,
            json!({"token": token, "password": PASSWORD}),
        )
        .await;
    assert_eq!(
        v["error"]["code"], "invalid_setup_token",
        "single use: {s} {v}"
    );

    // Wrong user and wrong password: the same answer.
    let (s1, v1) = srv
        .post(
            "/api/v1/sign-in",
            None,
            json!({"user": "root", "password": "wrong-password-123"}),
        )
        .await;
    let (s2, v2) = srv
        .post(
            "/api/v1/sign-in",
            None,
            json!({"user": "nobody", "password": "wrong-password-123"}),
        )
        .await;
    assert_eq!((s1, &v1), (s2, &v2));
    assert_eq!(v1["error"]["code"], "invalid_credentials");

    // Password sign-in: root without MFA must enroll first, and carries the alert.
    let (s, headers, v) = srv
        .call(
            "POST",
            "/api/v1/sign-in",
            None,
            Some(json!({"user": "root", "password": PASSWORD})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "mfa_enrollment_required");
    assert_eq!(v["alerts"][0]["kind"], "root_without_mfa");
    let cookie = headers["set-cookie"].to_str().unwrap();
    assert!(
        cookie.starts_with("mamori_session=") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    assert!(cookie.contains("SameSite=Strict"));
    let restricted = v["token"].as_str().unwrap().to_string();
    let (s, h, v) = srv.call("GET", "/api/v1/me", Some(&restricted), None).await;
    assert_eq!(s, 200);
    assert_eq!(h["x-mamori-alert"], "root_without_mfa");
    assert_eq!(v["alerts"][0]["kind"], "root_without_mfa");
    let (s, v) = srv.get("/api/v1/users", Some(&restricted)).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (403, Some("mfa_enrollment_required"))
    );
    // The cookie works as well as the bearer token.
    let resp = srv
        .client
        .get(format!("{}/api/v1/me", srv.url))
        .header("cookie", format!("mamori_session={restricted}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    // Create a virtual device: serial, secret, URI with the issuer, QR as SVG and PNG.
    let (s, v) = srv
        .post(
            "/api/v1/mfa-devices/virtual",
            Some(&restricted),
            json!({"name": "phone"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["serial"], "mamori:mfa/root/phone");
    let secret = v["secret_base32"].as_str().unwrap().to_string();
    assert_eq!(secret.len(), 32, "160-bit secret");
    let uri = v["otpauth_uri"].as_str().unwrap();
    assert!(uri.starts_with("otpauth://totp/mamori:root?"), "{uri}");
    assert!(uri.contains("issuer=mamori"), "{uri}");
    assert!(v["qr_svg"].as_str().unwrap().contains("<svg"));
    let png = data_encoding::BASE64
        .decode(v["qr_png_base64"].as_str().unwrap().as_bytes())
        .unwrap();
    assert_eq!(mamori_otp::qr::decode(&png).unwrap(), vec![uri.to_string()]);
    let id = v["id"].as_str().unwrap().to_string();
    let (s, _) = srv
        .post(
            "/api/v1/mfa-devices/virtual",
            Some(&restricted),
            json!({"name": "phone"}),
        )
        .await;
    assert_eq!(s, 409, "name unique per user");
    let (s, v) = srv
        .post(
            "/api/v1/mfa-devices/virtual",
            Some(&restricted),
            json!({"name": "bad name!"}),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("invalid_input"))
    );

    // Enable: valid but non-consecutive codes get their own error; wrong codes another.
    let t = now();
    let enable = format!("/api/v1/mfa-devices/{id}/enable");
    let (s, v) = srv
        .post(
            &enable,
            Some(&restricted),
            json!({"code1": code(&secret, t - 90), "code2": code(&secret, t)}),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("codes_not_consecutive")),
        "{v}"
    );
    let (s, v) = srv
        .post(
            &enable,
            Some(&restricted),
            json!({"code1": "000000", "code2": "000001"}),
        )
        .await;
    assert_eq!(v["error"]["code"], "invalid_code", "{s} {v}");
    let (s, v) = srv
        .post(
            &enable,
            Some(&restricted),
            json!({"code1": code(&secret, t - 30), "code2": code(&secret, t)}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert!(v["device"]["enabled_at"].is_i64());
    let full = v["token"].as_str().unwrap().to_string();
    // The restricted session was replaced.
    assert_eq!(srv.get("/api/v1/me", Some(&restricted)).await.0, 401);
    let (s, h, v) = srv.call("GET", "/api/v1/me", Some(&full), None).await;
    assert_eq!(s, 200);
    assert!(h.get("x-mamori-alert").is_none());
    assert_eq!(v["mfa_devices"], 1);
    assert_eq!(v["alerts"][0]["kind"], "single_mfa_device");
    let (s, v) = srv
        .post(&enable, Some(&full), json!({"code1": "1", "code2": "2"}))
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (409, Some("invalid_device_state"))
    );

    // Sign out; the session is gone.
    let (s, _) = srv.post("/api/v1/sign-out", Some(&full), json!({})).await;
    assert_eq!(s, 204);
    assert_eq!(srv.get("/api/v1/me", Some(&full)).await.0, 401);

    // Password, then the challenge names the device, then a wrong code, then the right one.
    let (s, v) = srv.sign_in("root").await;
    assert_eq!(s, 200);
    assert_eq!(v["status"], "mfa_required");
    assert_eq!(v["devices"][0]["name"], "phone");
    assert_eq!(v["devices"][0]["kind"], "virtual");
    let challenge = v["challenge"].clone();
    let (s, v) = srv
        .post(
            "/api/v1/sign-in/mfa",
            None,
            json!({"challenge": challenge, "code": wrong_code(&secret, now())}),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (401, Some("invalid_code"))
    );
    let (s, v) = srv
        .post(
            "/api/v1/sign-in/mfa",
            None,
            json!({"challenge": challenge, "code": "12"}),
        )
        .await;
    // A code that fits no device is a wrong answer like any other, counted and audited
    // (issue #14: refusing it as malformed let guesses go uncounted).
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (401, Some("invalid_code"))
    );
    let good = code(&secret, now() + 30);
    let (s, v) = srv
        .post(
            "/api/v1/sign-in/mfa",
            None,
            json!({"challenge": challenge, "code": good}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "signed_in");
    let session = v["token"].as_str().unwrap().to_string();
    assert_eq!(srv.get("/api/v1/me", Some(&session)).await.0, 200);
    // The challenge was consumed.
    let (s, v) = srv
        .post(
            "/api/v1/sign-in/mfa",
            None,
            json!({"challenge": challenge, "code": good}),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (401, Some("invalid_challenge"))
    );

    // Replay: the same code on a new challenge is refused, and logged as a replay.
    let (s, v) = srv.sign_in_with_code("root", &good).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (401, Some("invalid_code")),
        "{v}"
    );

    // Sessions: list and revoke own.
    let (s, list) = srv.get("/api/v1/sessions", Some(&session)).await;
    assert_eq!(s, 200);
    let list = list.as_array().unwrap();
    assert!(list.iter().any(|x| x["current"] == true));

    // Audit entries for each step, and never a secret.
    let events = srv.audit(&session, "limit=1000").await;
    for (k, r) in [
        ("account.create", "success"),
        ("account.setup", "success"),
        ("sign_in.password", "failure"),
        ("sign_in.password", "success"),
        ("mfa.create", "success"),
        ("mfa.enable", "not_consecutive"),
        ("mfa.enable", "failure"),
        ("mfa.enable", "success"),
        ("session.sign_out", "success"),
        ("sign_in.mfa", "failure"),
        ("sign_in.mfa", "success"),
        ("sign_in.mfa", "replay"),
    ] {
        assert!(
            has(&events, k, r),
            "missing audit {k}/{r} in {:?}",
            kinds(&events)
        );
    }
    let text = serde_json::to_string(&events).unwrap();
    assert!(!text.contains(&secret) && !text.contains(PASSWORD) && !text.contains(&good));
    let e = events.iter().find(|e| e["kind"] == "sign_in.mfa").unwrap();
    assert_eq!(e["account"], "root");
    assert_eq!(e["client_addr"], "127.0.0.1");
    assert!(e["at"].as_i64().unwrap() > 1_700_000_000);
    let page = srv.audit(&session, "kind=mfa.&limit=2").await;
    assert_eq!(page.len(), 2);
    assert!(page
        .iter()
        .all(|e| e["kind"].as_str().unwrap().starts_with("mfa.")));

    // Validate API: an administrator creates a key (allowed to validate root, which keys are
    // not by default); good key and code accept, replay and bad key do not.
    let (s, v) = srv
        .post(
            "/api/v1/app-keys",
            Some(&session),
            json!({"name": "vpn", "allow_root": true}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let key = v["key"].as_str().unwrap().to_string();
    let code3 = code(&secret, now() + 60);
    let (s, v) = srv
        .post(
            "/api/v1/validate",
            Some(&key),
            json!({"user": "root", "code": code3}),
        )
        .await;
    assert_eq!((s, v["result"].as_str()), (200, Some("accept")), "{v}");
    let (s, v) = srv
        .post(
            "/api/v1/validate",
            Some(&key),
            json!({"user": "root", "code": code3}),
        )
        .await;
    assert_eq!(
        (s, v["result"].as_str(), v["reason"].as_str()),
        (200, Some("reject"), Some("invalid_code"))
    );
    let (s, v) = srv
        .post(
            "/api/v1/validate",
            Some("mamori_ak_wrong"),
            json!({"user": "root", "code": code3}),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (401, Some("invalid_app_key"))
    );
    let (s, _) = srv
        .post(
            "/api/v1/validate",
            None,
            json!({"user": "root", "code": code3}),
        )
        .await;
    assert_eq!(s, 401);
    let (s, v) = srv
        .post(
            "/api/v1/validate",
            Some(&key),
            json!({"user": "ghost", "code": "123456"}),
        )
        .await;
    assert_eq!((s, v["result"].as_str()), (200, Some("reject")));
    let events = srv.audit(&session, "kind=validate&limit=1000").await;
    assert!(has(&events, "validate", "success"));
    assert!(has(&events, "validate", "replay"));
    assert!(has(&events, "validate", "unknown_user"));
    assert!(events.iter().any(|e| e["user_agent"] == "app:vpn"));

    // Security alerts (administrator view) and the user list.
    let (s, v) = srv
        .post(
            "/api/v1/users",
            Some(&session),
            json!({"user": "alice", "email": "alice@example.com"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    assert!(v["setup_link"].as_str().unwrap().contains("/setup?token="));
    let (_, v) = srv.get("/api/v1/alerts", Some(&session)).await;
    let alerts: Vec<(&str, &str)> = v["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["kind"].as_str().unwrap(), a["user"].as_str().unwrap()))
        .collect();
    assert!(
        alerts.contains(&("user_without_mfa", "alice")),
        "{alerts:?}"
    );
    assert!(
        alerts.contains(&("single_mfa_device", "root")),
        "{alerts:?}"
    );
    let (_, users) = srv.get("/api/v1/users", Some(&session)).await;
    let alice = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["user"] == "alice")
        .unwrap();
    assert_eq!(
        (
            alice["mfa_devices"].as_u64(),
            alice["password_enabled"].as_bool()
        ),
        (Some(0), Some(false))
    );

    // Graceful shutdown on SIGTERM.
    let mut srv = srv;
    assert!(srv.stop(), "clean exit on SIGTERM");
}

#[tokio::test]
async fn story_on_sqlite() {
    story(Backend::Sqlite).await;
}

#[tokio::test]
async fn story_on_postgres() {
    story(Backend::postgres().await).await;
}

/// Device limit, deletion needing a recent second factor, resync, rename, lock after repeated
/// failures (lowered threshold), a non-root user without MFA signing in with the alert.
async fn rules(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(
        dir.path(),
        backend.url(),
        &[
            ("MAMORI_LIMITS_MAX_DEVICES", "3"),
            // bob signs in on his password alone (#15 made "all" the default).
            ("MAMORI_REQUIRE_MFA", "root"),
            ("MAMORI_LOCKOUT_LOCK_AFTER", "4"),
            ("MAMORI_LOCKOUT_DELAY_AFTER", "10"),
            ("MAMORI_LIMITS_SIGN_IN_BURST", "100"),
        ],
    );
    let restricted = srv.root_session().await;
    let (_, _, root) = srv.enroll(&restricted, "phone").await;
    // A user signs in on two clients with the password alone (no MFA yet: allowed, with alert).
    let (s, v) = srv
        .post("/api/v1/users", Some(&root), json!({"user": "bob"}))
        .await;
    assert_eq!(s, 201, "{v}");
    let link = v["setup_link"].as_str().unwrap();
    let tok = link.split("token=").nth(1).unwrap();
    let (s, _) = srv
        .post(
            "/api/v1/setup",
            None,
            json!({"token": tok, "password": PASSWORD}),
        )
        .await;
    assert_eq!(s, 200);
    let (s, v) = srv.sign_in("bob").await;
    assert_eq!((s, v["status"].as_str()), (200, Some("signed_in")), "{v}");
    assert_eq!(v["alerts"][0]["kind"], "user_without_mfa");
    let bob_a = v["token"].as_str().unwrap().to_string();
    let (_, v) = srv.sign_in("bob").await;
    let bob_b = v["token"].as_str().unwrap().to_string();
    // Non-administrators may not list users.
    assert_eq!(srv.get("/api/v1/users", Some(&bob_a)).await.0, 403);

    // Device limit: 3 devices (pending ones count).
    let (id1, secret1, _) = srv.enroll(&bob_a, "one").await;
    for name in ["two", "three"] {
        let (s, v) = srv
            .post(
                "/api/v1/mfa-devices/virtual",
                Some(&bob_a),
                json!({"name": name}),
            )
            .await;
        assert_eq!(s, 201, "{v}");
    }
    let (s, v) = srv
        .post(
            "/api/v1/mfa-devices/virtual",
            Some(&bob_a),
            json!({"name": "four"}),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (409, Some("device_limit_reached")),
        "{v}"
    );
    let (_, list) = srv.get("/api/v1/mfa-devices", Some(&bob_a)).await;
    assert_eq!(list.as_array().unwrap().len(), 3);

    // Session B never gave a second factor: deleting needs one within the last 5 minutes,
    // and so does adding a device now that the account has MFA.
    let del = format!("/api/v1/mfa-devices/{id1}");
    let (s, _, v) = srv.call("DELETE", &del, Some(&bob_b), None).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (403, Some("recent_second_factor_required")),
        "{v}"
    );
    let (s, v) = srv
        .post(
            "/api/v1/mfa-devices/virtual",
            Some(&bob_b),
            json!({"name": "x"}),
        )
        .await;
    assert_eq!(v["error"]["code"], "recent_second_factor_required", "{s}");
    let (s, v) = srv
        .post(
            "/api/v1/session/verify",
            Some(&bob_b),
            json!({"code": code(&secret1, now() + 30)}),
        )
        .await;
    assert_eq!(s, 204, "{v}");

    // Rename (serial follows), resync with two consecutive later codes.
    let (s, v) = srv
        .call("PATCH", &del, Some(&bob_b), Some(json!({"name": "laptop"})))
        .await
        .pipe(|(s, _, v)| (s, v));
    assert_eq!(
        (s, v["serial"].as_str()),
        (200, Some("mamori:mfa/bob/laptop")),
        "{v}"
    );
    let t = now();
    let (s, v) = srv
        .post(
            &format!("{del}/resync"),
            Some(&bob_b),
            json!({"code1": code(&secret1, t + 90), "code2": code(&secret1, t + 120)}),
        )
        .await;
    assert_eq!(s, 200, "{v}");

    // Now deletion works in session B.
    let (s, _, v) = srv.call("DELETE", &del, Some(&bob_b), None).await;
    assert_eq!(s, 204, "{v}");
    let (_, list) = srv.get("/api/v1/mfa-devices", Some(&bob_b)).await;
    assert_eq!(list.as_array().unwrap().len(), 2);

    // Lock after 4 consecutive failures (configured lower than the default 100): even the
    // right code is refused afterwards, until an administrator resets MFA.
    let (_, _, v) = srv.call("GET", "/api/v1/me", Some(&root), None).await;
    assert_eq!(v["user"], "root");
    let root_secret_check = srv.get("/api/v1/mfa-devices", Some(&root)).await.1;
    assert_eq!(root_secret_check.as_array().unwrap().len(), 1);
    let (s, v) = srv
        .post("/api/v1/users", Some(&root), json!({"user": "carol"}))
        .await;
    assert_eq!(s, 201);
    let tok = v["setup_link"]
        .as_str()
        .unwrap()
        .split("token=")
        .nth(1)
        .unwrap()
        .to_string();
    srv.post(
        "/api/v1/setup",
        None,
        json!({"token": tok, "password": PASSWORD}),
    )
    .await;
    let (_, v) = srv.sign_in("carol").await;
    let carol = v["token"].as_str().unwrap().to_string();
    let (_, carol_secret, _) = srv.enroll(&carol, "phone").await;
    let (_, v) = srv.sign_in("carol").await;
    let challenge = v["challenge"].clone();
    for i in 0..4 {
        let (s, v) = srv
            .post(
                "/api/v1/sign-in/mfa",
                None,
                json!({"challenge": challenge, "code": wrong_code(&carol_secret, now())}),
            )
            .await;
        let expected = if i < 3 {
            "invalid_code"
        } else {
            "account_locked"
        };
        assert_eq!(v["error"]["code"], expected, "attempt {i}: {s} {v}");
    }
    let (s, v) = srv
        .post(
            "/api/v1/sign-in/mfa",
            None,
            json!({"challenge": challenge, "code": code(&carol_secret, now() + 30)}),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (423, Some("account_locked"))
    );
    let (_, users) = srv.get("/api/v1/users", Some(&root)).await;
    let c = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["user"] == "carol")
        .unwrap();
    assert_eq!(c["locked"], true);
    let events = srv.audit(&root, "user=carol&limit=1000").await;
    assert!(has(&events, "account.lock", "success"));
    assert!(has(&events, "sign_in.mfa", "locked"));
    let (s, _) = srv
        .post("/api/v1/users/carol/reset-mfa", Some(&root), json!({}))
        .await;
    assert_eq!(s, 204);
    let (s, v) = srv.sign_in("carol").await;
    assert_eq!(
        (s, v["status"].as_str()),
        (200, Some("mfa_enrollment_required")),
        "unlocked, no devices, must enroll at the next sign-in: {v}"
    );
    let events = srv.audit(&root, "user=carol&kind=mfa.reset").await;
    assert_eq!(events[0]["actor"], "root");
}

trait Pipe: Sized {
    fn pipe<T>(self, f: impl FnOnce(Self) -> T) -> T {
        f(self)
    }
}
impl<T> Pipe for T {}

#[tokio::test]
async fn rules_on_sqlite() {
    rules(Backend::Sqlite).await;
}

#[tokio::test]
async fn rules_on_postgres() {
    rules(Backend::postgres().await).await;
}

/// 400 for malformed JSON, 413 for oversized bodies, 429 with Retry-After from the per-address
/// sign-in limit, /healthz, /metrics and the OpenAPI document.
#[tokio::test]
async fn edges_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(
        dir.path(),
        None,
        &[
            ("MAMORI_LIMITS_SIGN_IN_BURST", "3"),
            ("MAMORI_LIMITS_SIGN_IN_PER_MINUTE", "1"),
        ],
    );
    let resp = srv
        .client
        .post(format!("{}/api/v1/sign-in", srv.url))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "malformed_request");
    let big = "x".repeat(70 * 1024);
    let (s, _, v) = srv
        .call(
            "POST",
            "/api/v1/sign-in",
            None,
            Some(json!({"user": big, "password": "p"})),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (413, Some("payload_too_large")),
        "{v}"
    );
    // Burst of 3 (the two requests above were refused before the limiter).
    for _ in 0..3 {
        let (s, _) = srv.sign_in("nobody").await;
        assert_eq!(s, 401);
    }
    let (s, h, v) = srv
        .call(
            "POST",
            "/api/v1/sign-in",
            None,
            Some(json!({"user": "root", "password": PASSWORD})),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (429, Some("rate_limited")),
        "{v}"
    );
    let retry: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry >= 1);
    assert_eq!(
        srv.get("/healthz", None).await,
        (200, json!({"status": "ok"}))
    );
    let metrics = srv
        .client
        .get(format!("{}/metrics", srv.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("mamori_sign_ins_total{result=\"invalid_credentials\"} 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("mamori_sign_ins_total{result=\"rate_limited\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("mamori_http_request_duration_seconds_bucket"),
        "{metrics}"
    );
    let (s, doc) = srv.get("/api/v1/openapi.json", None).await;
    assert_eq!(s, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert!(doc["components"]["schemas"]["ErrorCode"].is_object());
    for (path, method) in [
        ("/api/v1/sign-in", "post"),
        ("/api/v1/sign-in/mfa", "post"),
        ("/api/v1/validate", "post"),
        ("/api/v1/mfa-devices/{id}/enable", "post"),
        ("/api/v1/mfa-devices/{id}", "delete"),
        ("/api/v1/audit", "get"),
    ] {
        assert!(
            doc["paths"][path][method]["responses"].is_object(),
            "{path} {method}"
        );
    }
    let (s, v) = srv.get("/api/v1/no-such-thing", None).await;
    assert_eq!((s, v["error"]["code"].as_str()), (404, Some("not_found")));
}
