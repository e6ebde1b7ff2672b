//! Issue #15's polish part against the real binary: per-account language and time zone
//! (`/api/v1/me/preferences`; the e-mail that follows arrives in Japanese over a real SMTP
//! conversation; the console shows times in the chosen zone), a sync device revoked from the
//! console (its token is refused at once), and the single-device alert following the review's
//! lockout rule.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Duration;

use crate::common::*;
use crate::recovery_common::SmtpSink;
use serde_json::{json, Value};

/// A console request with the session cookie, from this server's origin.
async fn console(
    srv: &Server,
    session: &str,
    path: &str,
    form: Option<&[(&str, &str)]>,
) -> (u16, String) {
    console_request(srv, &srv.url, session, path, form).await
}

/// A mail's text: lettre sends non-ASCII bodies in Base64.
fn text(m: &crate::recovery_common::Mail) -> String {
    use base64::Engine as _;
    let body = m.body();
    let base64 = m
        .header("Content-Transfer-Encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("base64"));
    if !base64 {
        return body;
    }
    let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(compact)
        .unwrap();
    String::from_utf8(bytes).unwrap()
}

fn alert_kinds(me: &Value) -> Vec<String> {
    me["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["kind"].as_str().unwrap().to_string())
        .collect()
}

fn finding<'a>(review: &'a Value, id: &str) -> &'a Value {
    review["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == id)
        .unwrap_or_else(|| panic!("no finding {id}"))
}

#[tokio::test]
async fn language_time_zone_sync_revoke_and_the_single_device_rule() {
    let sink = SmtpSink::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut env = sink.env();
    env.push(("MAMORI_REQUIRE_MFA".into(), "root".into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let srv = Server::start(&dir.path().join("data"), None, &env);
    let root = srv.root_session().await;
    let (_, _, root) = srv.enroll(&root, "root-phone").await;

    // A user with an e-mail address, signed in with the password alone (require_mfa = root).
    let (s, v) = srv
        .post(
            "/api/v1/users",
            Some(&root),
            json!({"user": "carol", "email": "carol@example.test"}),
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
    let (s, v) = srv
        .post(
            "/api/v1/setup",
            None,
            json!({"token": token, "password": PASSWORD}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = srv.sign_in("carol").await;
    assert_eq!(s, 200, "{v}");
    let carol = v["token"].as_str().unwrap().to_string();

    // Defaults: the server's language, UTC.
    let (s, v) = srv.get("/api/v1/me/preferences", Some(&carol)).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v,
        json!({"language": "en", "language_chosen": false, "time_zone": "UTC"})
    );

    // Bad input: one clear error each, and nothing changes.
    for (body, what) in [
        (
            json!({"language": "ja", "time_zone": "Mars/Olympus"}),
            "time zone",
        ),
        (
            json!({"language": "fr", "time_zone": "Asia/Tokyo"}),
            "language",
        ),
    ] {
        let (s, _, v) = srv
            .call("PUT", "/api/v1/me/preferences", Some(&carol), Some(body))
            .await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (400, Some("invalid_input")),
            "{v}"
        );
        assert!(
            v["error"]["message"].as_str().unwrap().contains(what),
            "{v}"
        );
    }
    let (_, v) = srv.get("/api/v1/me/preferences", Some(&carol)).await;
    assert_eq!(v["language_chosen"], false, "{v}");
    assert_eq!(v["time_zone"], "UTC", "{v}");

    // Japanese and Tokyo; the zone's canonical spelling is stored.
    let (s, _, v) = srv
        .call(
            "PUT",
            "/api/v1/me/preferences",
            Some(&carol),
            Some(json!({"language": "ja", "time_zone": "asia/tokyo"})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v,
        json!({"language": "ja", "language_chosen": true, "time_zone": "Asia/Tokyo"})
    );
    let events = srv
        .audit(&root, "user=carol&kind=account.preferences")
        .await;
    assert!(
        events
            .iter()
            .any(|e| e["result"] == "success" && e["detail"] == "language=ja time_zone=Asia/Tokyo"),
        "{events:?}"
    );
    assert!(
        events.iter().any(|e| e["result"] == "invalid"),
        "{events:?}"
    );

    // The next security notice to carol is in Japanese (the server's default is English).
    let (s, v) = srv
        .post(
            "/api/v1/me/password",
            Some(&carol),
            json!({"current_password": PASSWORD, "new_password": format!("{PASSWORD}-tokyo")}),
        )
        .await;
    assert_eq!(s, 204, "{v}");
    let mut body = None;
    for _ in 0..400 {
        body = sink
            .mails()
            .into_iter()
            .filter(|m| m.to.iter().any(|t| t == "carol@example.test"))
            .map(|m| text(&m))
            .find(|b| b.contains("パスワードが変更されました"));
        if body.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let bodies: Vec<String> = sink.mails().iter().map(text).collect();
    let body = body.unwrap_or_else(|| panic!("no Japanese notice to carol: {bodies:?}"));
    assert!(!body.contains("Your password was changed"), "{body}");

    // The console speaks carol's language and shows times in her zone, with the offset.
    let (s, page) = console(&srv, &carol, "/security", None).await;
    assert_eq!(s, 200);
    assert!(page.contains("<html lang=\"ja\">"), "{page}");
    assert!(page.contains("+09:00"), "{page}");
    assert!(!page.contains(" UTC<"), "{page}");
    let (s, page) = console(&srv, &carol, "/security/preferences", None).await;
    assert_eq!(s, 200);
    assert!(page.contains("value=\"Asia/Tokyo\""), "{page}");
    // A bad zone in the form: the form again with the catalog's message, nothing stored.
    let (s, page) = console(
        &srv,
        &carol,
        "/security/preferences",
        Some(&[("language", "en"), ("time_zone", "Nowhere/Atlantis")]),
    )
    .await;
    assert_eq!(s, 400);
    assert!(page.contains("タイムゾーンが見つかりません"), "{page}");
    let (_, v) = srv.get("/api/v1/me/preferences", Some(&carol)).await;
    assert_eq!(v["language"], "ja", "{v}");

    // Root's one device without recovery codes: the alert and the review agree it is a
    // lockout risk; after recovery codes, neither says so.
    let (_, me) = srv.get("/api/v1/me", Some(&root)).await;
    assert!(
        alert_kinds(&me).contains(&"single_mfa_device".to_string()),
        "{me}"
    );
    let (_, review) = srv.get("/api/v1/review", Some(&root)).await;
    let lockout = finding(&review, "DR-LOCKOUT-RISK");
    assert!(
        lockout["affected"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "root"),
        "{lockout}"
    );
    let (s, v) = srv
        .post("/api/v1/recovery-codes", Some(&root), json!({}))
        .await;
    assert_eq!(s, 201, "{v}");
    let (_, me) = srv.get("/api/v1/me", Some(&root)).await;
    assert!(
        !alert_kinds(&me).contains(&"single_mfa_device".to_string()),
        "{me}"
    );
    let (_, review) = srv.get("/api/v1/review", Some(&root)).await;
    let lockout = finding(&review, "DR-LOCKOUT-RISK");
    assert!(
        !lockout["affected"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "root"),
        "{lockout}"
    );

    // A sync device, listed on root's credentials page and revoked from there.
    let (s, v) = srv
        .post(
            "/api/v1/sync/devices",
            Some(&root),
            json!({"name": "stolen-laptop"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let device_token = v["token"].as_str().unwrap().to_string();
    let device_id = v["device_id"].as_str().unwrap().to_string();
    let (s, _) = srv.get("/api/v1/sync/keys", Some(&device_token)).await;
    assert_ne!(s, 401, "the device works before it is revoked");
    let (s, page) = console(&srv, &root, "/security", None).await;
    assert_eq!(s, 200);
    assert!(page.contains("stolen-laptop"), "{page}");
    assert!(
        page.contains(&format!("/security/sync-devices/{device_id}/revoke")),
        "{page}"
    );
    // Last seen is shown (the device authenticated above), in UTC for root.
    assert!(page.contains(" UTC</td>"), "{page}");
    let path = format!("/security/sync-devices/{device_id}/revoke");
    let (s, page) = console(&srv, &root, &path, None).await;
    assert_eq!(s, 200);
    assert!(page.contains("stolen-laptop"), "{page}");
    let (s, page) = console(&srv, &root, &path, Some(&[])).await;
    assert_eq!(s, 303, "{page}");
    let (s, v) = srv.get("/api/v1/sync/keys", Some(&device_token)).await;
    assert_eq!(s, 401, "{v}");
    let events = srv.audit(&root, "kind=sync.device_revoke").await;
    assert!(
        events
            .iter()
            .any(|e| e["result"] == "success"
                && e["detail"] == "stolen-laptop (from a browser session)"),
        "{events:?}"
    );
    // Revoked twice: not found, and nothing else changes.
    let (s, _) = console(&srv, &root, &path, Some(&[])).await;
    assert_eq!(s, 404);
}
