//! Security keys through the JSON API, driven by `webauthn-authenticator-rs`'s software
//! authenticators (a CTAP2 security key and a passkey) against the real server binary: register,
//! sign in, step-up, remove; single-use and bound ceremonies; the signature-counter rule with a
//! cloned key; limits; and two server processes on one PostgreSQL database finishing each
//! other's ceremonies.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::common::*;
use serde_json::{json, Value};
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_authenticator_rs::softtoken::SoftToken;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse, Url};

/// The relying party of these tests: RP id `mamori.test`, this origin.
const ORIGIN: &str = "https://mamori.test";

pub(crate) fn env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("MAMORI_PUBLIC_URL", ORIGIN),
        ("MAMORI_LIMITS_MAX_DEVICES", "3"),
        ("MAMORI_LOCKOUT_DELAY_BASE_SECS", "0"),
        // Many sign-ins from one address in a few seconds.
        ("MAMORI_LIMITS_SIGN_IN_BURST", "1000"),
        ("MAMORI_LIMITS_SIGN_IN_PER_MINUTE", "1000"),
    ]
}

fn origin() -> Url {
    Url::parse(ORIGIN).unwrap()
}

pub(crate) fn new_key() -> SoftToken {
    SoftToken::new(true).unwrap().0
}

/// Begins a registration; returns (status, body).
async fn register_begin(s: &Server, token: &str, name: &str) -> (u16, Value) {
    s.post(
        "/api/v1/mfa-devices/security-key/begin",
        Some(token),
        json!({ "name": name }),
    )
    .await
}

/// The authenticator's answer to a begun registration.
pub(crate) fn attest(key: &mut impl WebauthnAuthenticator, begun: &Value) -> Value {
    let ccr: CreationChallengeResponse = serde_json::from_value(begun["options"].clone()).unwrap();
    serde_json::to_value(key.do_registration(origin(), ccr).unwrap()).unwrap()
}

/// The authenticator's assertion for a begun authentication.
pub(crate) fn assert_with(key: &mut impl WebauthnAuthenticator, begun: &Value) -> Value {
    let rcr: RequestChallengeResponse = serde_json::from_value(begun["options"].clone()).unwrap();
    serde_json::to_value(key.do_authentication(origin(), rcr).unwrap()).unwrap()
}

/// Registers `key` as `name`; returns the finish answer.
async fn register(
    s: &Server,
    token: &str,
    key: &mut impl WebauthnAuthenticator,
    name: &str,
) -> (u16, Value) {
    let (st, begun) = register_begin(s, token, name).await;
    assert_eq!(st, 200, "{begun}");
    let credential = attest(key, &begun);
    s.post(
        "/api/v1/mfa-devices/security-key/finish",
        Some(token),
        json!({ "ceremony": begun["ceremony"], "credential": credential }),
    )
    .await
}

/// Password, then the key: returns (challenge, begin answer).
pub(crate) async fn key_challenge(s: &Server, user: &str) -> (String, Value) {
    let (st, v) = s.sign_in(user).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["status"], "mfa_required", "{v}");
    let challenge = v["challenge"].as_str().unwrap().to_string();
    let (st, begun) = s
        .post(
            "/api/v1/sign-in/security-key/begin",
            None,
            json!({ "challenge": challenge }),
        )
        .await;
    assert_eq!(st, 200, "{begun}");
    (challenge, begun)
}

pub(crate) async fn finish_sign_in(
    s: &Server,
    challenge: &str,
    ceremony: &Value,
    cred: Value,
) -> (u16, Value) {
    s.post(
        "/api/v1/sign-in/security-key/finish",
        None,
        json!({ "challenge": challenge, "ceremony": ceremony, "credential": cred }),
    )
    .await
}

/// Signs in with password and `key`; returns the finish answer.
async fn sign_in_with_key(
    s: &Server,
    user: &str,
    key: &mut impl WebauthnAuthenticator,
) -> (u16, Value) {
    let (challenge, begun) = key_challenge(s, user).await;
    let cred = assert_with(key, &begun);
    finish_sign_in(s, &challenge, &begun["ceremony"], cred).await
}

/// The value of `mamori_sign_ins_total{result="RESULT"}` on the server's /metrics (0 if absent).
async fn sign_ins(s: &Server, result: &str) -> u64 {
    let text = s
        .client
        .get(format!("{}/metrics", s.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let prefix = format!("mamori_sign_ins_total{{result=\"{result}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0, |v| v.trim().parse().unwrap())
}

fn has_event(events: &[Value], kind: &str, result: &str, detail: Option<&str>) -> bool {
    events.iter().any(|e| {
        e["kind"] == kind
            && e["result"] == result
            && detail.is_none_or(|d| e["detail"].as_str().is_some_and(|x| x.contains(d)))
    })
}

#[tokio::test]
async fn security_key_register_sign_in_verify_and_remove() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), None, &env());
    let enroll_only = s.root_session().await;

    // Registration from the enrollment-only session: the key is enabled and the session
    // becomes a full one (a new token).
    let mut key = new_key();
    let (st, v) = register(&s, &enroll_only, &mut key, "yubikey-blue").await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["device"]["kind"], "security_key");
    assert_eq!(v["device"]["name"], "yubikey-blue");
    assert!(v["device"]["enabled_at"].is_number());
    assert!(v["device"]["serial"]
        .as_str()
        .unwrap()
        .starts_with("webauthn:"));
    let full = v["token"]
        .as_str()
        .expect("a fresh full session")
        .to_string();
    let key_id = v["device"]["id"].as_str().unwrap().to_string();
    // A clone of the key as it is now (counter 0), for the counter rule below.
    let mut clone = SoftToken::from_cbor(&key.to_cbor().unwrap()).unwrap();

    // The password step lists the key as a device that can answer.
    let (_, v) = s.sign_in("root").await;
    assert_eq!(v["devices"][0]["kind"], "security_key", "{v}");

    // Sign in with the key (counted in the sign-in metric like a code).
    let before = sign_ins(&s, "signed_in").await;
    let (st, v) = sign_in_with_key(&s, "root", &mut key).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["status"], "signed_in");
    assert_eq!(sign_ins(&s, "signed_in").await, before + 1);
    let session = v["token"].as_str().unwrap().to_string();
    let (st, me) = s.get("/api/v1/me", Some(&session)).await;
    assert_eq!(st, 200, "{me}");

    // A finished sign-in cannot be replayed: the challenge and the ceremony are spent.
    let (challenge, begun) = key_challenge(&s, "root").await;
    let cred = assert_with(&mut key, &begun);
    let (st, v) = finish_sign_in(&s, &challenge, &begun["ceremony"], cred.clone()).await;
    assert_eq!(st, 200, "{v}");
    let (st, v) = finish_sign_in(&s, &challenge, &begun["ceremony"], cred.clone()).await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (401, Some("invalid_challenge"))
    );
    // Nor can its assertion be used with a new challenge (the ceremony belongs to the old one).
    let (challenge2, begun2) = key_challenge(&s, "root").await;
    let (st, v) = finish_sign_in(&s, &challenge2, &begun["ceremony"], cred.clone()).await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (400, Some("invalid_ceremony"))
    );
    // ... nor answer the new ceremony (its challenge differs): refused, and the new ceremony is
    // spent with it.
    let (st, v) = finish_sign_in(&s, &challenge2, &begun2["ceremony"], cred).await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (401, Some("security_key_rejected"))
    );
    let good = assert_with(&mut key, &begun2);
    let (st, v) = finish_sign_in(&s, &challenge2, &begun2["ceremony"], good).await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (400, Some("invalid_ceremony"))
    );

    // A malformed credential is refused before the ceremony is touched: it still works after.
    let (challenge3, begun3) = key_challenge(&s, "root").await;
    let (st, v) = finish_sign_in(&s, &challenge3, &begun3["ceremony"], json!({"id": 1})).await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (400, Some("invalid_input"))
    );
    let cred = assert_with(&mut key, &begun3);
    let (st, v) = finish_sign_in(&s, &challenge3, &begun3["ceremony"], cred).await;
    assert_eq!(st, 200, "{v}");

    // The clone still has counter 0 while the key moved on: refused as a possible clone,
    // audited, counted as a failed attempt.
    let failed = sign_ins(&s, "mfa_failed").await;
    let (st, v) = sign_in_with_key(&s, "root", &mut clone).await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (401, Some("security_key_rejected"))
    );
    assert_eq!(sign_ins(&s, "mfa_failed").await, failed + 1);
    // And the key itself still works (the refusal changed nothing stored).
    let (st, v) = sign_in_with_key(&s, "root", &mut key).await;
    assert_eq!(st, 200, "{v}");
    let full = v["token"].as_str().unwrap_or(&full).to_string();

    // A passkey (discoverable credential) registered the same way is a second factor too.
    let mut passkey = SoftPasskey::new(true);
    let (st, v) = register(&s, &full, &mut passkey, "phone-passkey").await;
    assert_eq!(st, 201, "{v}");
    assert!(v["token"].is_null(), "a full session stays: {v}");
    let (st, v) = sign_in_with_key(&s, "root", &mut passkey).await;
    assert_eq!(st, 200, "{v}");
    let full = v["token"].as_str().unwrap().to_string();

    // Names are unique per user; a key registered once cannot be registered again.
    let (st, v) = register_begin(&s, &full, "yubikey-blue").await;
    assert_eq!((st, v["error"]["code"].as_str()), (409, Some("conflict")));
    let (st, v) = register_begin(&s, &full, "bad name!").await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (400, Some("invalid_input"))
    );

    // A registration ceremony is single use and bound to its session.
    let mut third = new_key();
    let (st, begun) = register_begin(&s, &full, "third").await;
    assert_eq!(st, 200, "{begun}");
    let credential = attest(&mut third, &begun);
    let (st, v) = s
        .post(
            "/api/v1/mfa-devices/security-key/finish",
            Some(&session),
            json!({ "ceremony": begun["ceremony"], "credential": credential }),
        )
        .await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (400, Some("invalid_ceremony")),
        "{v}"
    );
    let body = json!({ "ceremony": begun["ceremony"], "credential": credential });
    let (st, v) = s
        .post(
            "/api/v1/mfa-devices/security-key/finish",
            Some(&full),
            body.clone(),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    let (st, v) = s
        .post("/api/v1/mfa-devices/security-key/finish", Some(&full), body)
        .await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (400, Some("invalid_ceremony"))
    );

    // The device limit (3 here) counts keys like every other device.
    let (st, v) = register_begin(&s, &full, "fourth").await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (409, Some("device_limit_reached"))
    );
    let (_, list) = s.get("/api/v1/mfa-devices", Some(&full)).await;
    assert_eq!(list.as_array().unwrap().len(), 3, "{list}");

    // Step-up with a key within a session.
    let (st, begun) = s
        .post(
            "/api/v1/session/verify/security-key/begin",
            Some(&full),
            json!({}),
        )
        .await;
    assert_eq!(st, 200, "{begun}");
    let cred = assert_with(&mut key, &begun);
    let (st, v) = s
        .post(
            "/api/v1/session/verify/security-key/finish",
            Some(&full),
            json!({ "ceremony": begun["ceremony"], "credential": cred }),
        )
        .await;
    assert_eq!(st, 204, "{v}");

    // The console's step-up form with the same session as a cookie: an unknown ceremony is a
    // 400 page saying to start again (not an internal error); a good answer goes back to the
    // page that asked, and only to a security page.
    let (st, _, html) = s.call("GET", "/sign-in", None, None).await;
    assert_eq!(st, 200);
    let csrf = html
        .as_str()
        .unwrap()
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let console_finish = |ceremony: String, cred: Value, back: &'static str| {
        let form = [
            ("csrf", csrf.clone()),
            ("ceremony", ceremony),
            ("credential", cred.to_string()),
            ("back", back.to_string()),
        ];
        no_redirects
            .post(format!("{}/security/verify/security-key/finish", s.url))
            .header(
                "cookie",
                format!("mamori_csrf={csrf}; mamori_session={full}"),
            )
            .form(&form)
            .send()
    };
    let (_, begun) = s
        .post(
            "/api/v1/session/verify/security-key/begin",
            Some(&full),
            json!({}),
        )
        .await;
    let cred = assert_with(&mut key, &begun);
    let r = console_finish("no-such-ceremony".into(), cred.clone(), "/security")
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("expired or was already used"));
    let r = console_finish(
        begun["ceremony"].as_str().unwrap().into(),
        cred,
        "https://evil.example/",
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/security");

    // Removal through the existing device path (a fresh factor was just given).
    let (st, _, v) = s
        .call(
            "DELETE",
            &format!("/api/v1/mfa-devices/{key_id}"),
            Some(&full),
            None,
        )
        .await;
    assert_eq!(st, 204, "{v}");
    let (_, list) = s.get("/api/v1/mfa-devices", Some(&full)).await;
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
    // The removed key no longer signs in.
    let (challenge, begun) = key_challenge(&s, "root").await;
    let allowed = begun["options"]["publicKey"]["allowCredentials"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(allowed, 2, "{begun}");
    drop(challenge);

    let events = s.audit(&full, "limit=1000").await;
    for (kind, result, detail) in [
        ("webauthn.register_begin", "success", Some("yubikey-blue")),
        ("webauthn.register", "success", Some("yubikey-blue")),
        ("mfa.enable", "success", Some("yubikey-blue")),
        ("mfa.enable", "success", Some("phone-passkey")),
        ("webauthn.register_begin", "conflict", Some("yubikey-blue")),
        ("webauthn.register_begin", "device_limit", Some("fourth")),
        ("webauthn.register", "invalid_ceremony", None),
        ("sign_in.mfa", "success", Some("yubikey-blue")),
        ("sign_in.mfa", "success", Some("phone-passkey")),
        ("sign_in.mfa", "invalid_ceremony", None),
        ("sign_in.mfa", "failure", Some("security key")),
        ("webauthn.clone_suspected", "refused", Some("yubikey-blue")),
        ("sign_in.mfa", "clone_suspected", Some("yubikey-blue")),
        ("session.verify", "success", Some("yubikey-blue")),
        ("mfa.delete", "success", Some("yubikey-blue")),
    ] {
        assert!(
            has_event(&events, kind, result, detail),
            "no {kind} {result} {detail:?} event in {events:#?}"
        );
    }
    // Nothing secret or binary in the audit details.
    for e in &events {
        if let Some(d) = e["detail"].as_str() {
            assert!(d.len() < 200, "{d}");
        }
    }
}

#[tokio::test]
async fn failed_key_answers_count_toward_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let mut env = env();
    env.push(("MAMORI_LOCKOUT_LOCK_AFTER", "2"));
    let s = Server::start(dir.path(), None, &env);
    let enroll_only = s.root_session().await;
    let mut key = new_key();
    let (st, v) = register(&s, &enroll_only, &mut key, "key").await;
    assert_eq!(st, 201, "{v}");
    // An assertion for the wrong ceremony, twice: the second failure locks the account.
    for expected in [(401, "security_key_rejected"), (423, "account_locked")] {
        let (challenge, begun) = key_challenge(&s, "root").await;
        let (_, other) = key_challenge(&s, "root").await;
        let cred = assert_with(&mut key, &other);
        let (st, v) = finish_sign_in(&s, &challenge, &begun["ceremony"], cred).await;
        assert_eq!((st, v["error"]["code"].as_str().unwrap()), expected, "{v}");
    }
    // Now even the right answer is refused.
    let (st, v) = sign_in_with_key(&s, "root", &mut key).await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (423, Some("account_locked"))
    );
}

#[tokio::test]
async fn an_ip_address_public_url_cannot_be_a_relying_party() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(
        dir.path(),
        None,
        &[("MAMORI_PUBLIC_URL", "http://127.0.0.1:9")],
    );
    let token = s.root_session().await;
    let (st, v) = register_begin(&s, &token, "key").await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (403, Some("forbidden")),
        "{v}"
    );
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("domain name"));

    // The OpenAPI document describes every security-key endpoint and the new error codes.
    let (st, doc) = s.get("/api/v1/openapi.json", None).await;
    assert_eq!(st, 200);
    for path in [
        "/api/v1/mfa-devices/security-key/begin",
        "/api/v1/mfa-devices/security-key/finish",
        "/api/v1/sign-in/security-key/begin",
        "/api/v1/sign-in/security-key/finish",
        "/api/v1/session/verify/security-key/begin",
        "/api/v1/session/verify/security-key/finish",
    ] {
        assert!(doc["paths"][path]["post"].is_object(), "{path}");
    }
    let codes = doc["components"]["schemas"]["ErrorCode"].to_string();
    assert!(codes.contains("invalid_ceremony") && codes.contains("security_key_rejected"));
}

/// Two server processes on one PostgreSQL database: every ceremony begun on one node is
/// finished on the other, and a finished ceremony cannot be replayed on either.
#[tokio::test]
async fn a_second_node_finishes_ceremonies_the_first_began() {
    let db = TempDatabase::create().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let a = Server::start(dir.path(), Some(&db.url), &env());
    let b = Server::start(dir.path(), Some(&db.url), &env());
    assert_ne!(a.url, b.url);
    let enroll_only = a.root_session().await;

    // Registration: begin on A, finish on B.
    let mut key = new_key();
    let (st, begun) = register_begin(&a, &enroll_only, "node-key").await;
    assert_eq!(st, 200, "{begun}");
    let credential = attest(&mut key, &begun);
    let body = json!({ "ceremony": begun["ceremony"], "credential": credential });
    let (st, v) = b
        .post(
            "/api/v1/mfa-devices/security-key/finish",
            Some(&enroll_only),
            body.clone(),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    let full = v["token"].as_str().unwrap().to_string();
    let (st, _) = a
        .post("/api/v1/mfa-devices/security-key/finish", Some(&full), body)
        .await;
    assert_eq!(st, 400);

    // Sign-in: password and begin on B, finish on A; the replay on B is refused.
    let (challenge, begun) = key_challenge(&b, "root").await;
    let cred = assert_with(&mut key, &begun);
    let (st, v) = finish_sign_in(&a, &challenge, &begun["ceremony"], cred.clone()).await;
    assert_eq!(st, 200, "{v}");
    let (st, v) = finish_sign_in(&b, &challenge, &begun["ceremony"], cred).await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (401, Some("invalid_challenge"))
    );

    // Two finishes of one ceremony at once, one on each node: exactly one signs in.
    let (challenge, begun) = key_challenge(&a, "root").await;
    let cred = assert_with(&mut key, &begun);
    let (ra, rb) = tokio::join!(
        finish_sign_in(&a, &challenge, &begun["ceremony"], cred.clone()),
        finish_sign_in(&b, &challenge, &begun["ceremony"], cred)
    );
    let wins = [ra.0, rb.0].iter().filter(|st| **st == 200).count();
    assert_eq!(wins, 1, "{ra:?} {rb:?}");

    // The stored counter is shared: the next sign-in on the other node moves it on again.
    let (st, v) = sign_in_with_key(&b, "root", &mut key).await;
    assert_eq!(st, 200, "{v}");
    let events = a
        .audit(v["token"].as_str().unwrap(), "kind=sign_in.mfa")
        .await;
    assert!(has_event(
        &events,
        "sign_in.mfa",
        "success",
        Some("node-key")
    ));
}

#[tokio::test]
async fn open_ceremonies_per_account_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), None, &env());
    let enroll_only = s.root_session().await;
    let mut key = new_key();
    let (st, v) = register(&s, &enroll_only, &mut key, "key").await;
    assert_eq!(st, 201, "{v}");
    let (challenge, first) = key_challenge(&s, "root").await;
    let begin = || {
        s.post(
            "/api/v1/sign-in/security-key/begin",
            None,
            json!({ "challenge": challenge }),
        )
    };
    // 16 open ceremonies (the first included), then refused until one is finished.
    for _ in 1..16 {
        let (st, v) = begin().await;
        assert_eq!(st, 200, "{v}");
    }
    let (st, v) = begin().await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (429, Some("rate_limited")),
        "{v}"
    );
    let cred = assert_with(&mut key, &first);
    let (st, v) = finish_sign_in(&s, &challenge, &first["ceremony"], cred).await;
    assert_eq!(st, 200, "{v}");
    let (challenge, _) = key_challenge(&s, "root").await;
    let (st, v) = s
        .post(
            "/api/v1/sign-in/security-key/begin",
            None,
            json!({ "challenge": challenge }),
        )
        .await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (429, Some("rate_limited")),
        "{v}"
    );
}
