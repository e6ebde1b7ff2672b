//! The sync API over real HTTP against a started server, on SQLite and PostgreSQL: device
//! registration needs a fresh second factor; device tokens and revocation; key wraps with
//! optimistic versions; pull paging; push conflicts; every limit (item size, item count, items
//! per push, devices, body size, request rate); audit entries.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::common::{code, now, Backend, Server};
use serde_json::{json, Value};

const ID1: &str = "00000000-0000-4000-8000-000000000001";
const ID2: &str = "00000000-0000-4000-8000-000000000002";

fn b64(n: usize, fill: u8) -> String {
    data_encoding::BASE64URL_NOPAD.encode(&vec![fill; n])
}

/// Root with one enabled device; returns (server, device secret, full session token).
async fn start(backend: &Backend, env: &[(&str, &str)]) -> (Server, String, String) {
    let dir = tempfile::tempdir().unwrap().keep();
    let server = Server::start(&dir, backend.url(), env);
    let token = server.root_session().await;
    let (_, secret, full) = server.enroll(&token, "phone").await;
    (server, secret, full)
}

async fn register(server: &Server, session: &str, name: &str) -> (u16, Value) {
    server
        .post(
            "/api/v1/sync/devices",
            Some(session),
            json!({ "name": name }),
        )
        .await
}

async fn push(server: &Server, token: &str, items: Value) -> (u16, Value) {
    server
        .post("/api/v1/sync/items", Some(token), json!({ "items": items }))
        .await
}

async fn story(backend: Backend) {
    let (server, _secret, session) = start(
        &backend,
        &[
            ("MAMORI_SYNC_MAX_ITEMS", "3"),
            ("MAMORI_SYNC_MAX_ITEM_BYTES", "100"),
            ("MAMORI_SYNC_MAX_PUSH_ITEMS", "4"),
            ("MAMORI_SYNC_MAX_DEVICES", "2"),
            ("MAMORI_SYNC_BODY_BYTES", "4096"),
        ],
    )
    .await;

    // Registration: a session token, not a device token; no session → 401.
    let (s, _) = register(&server, "nope", "laptop").await;
    assert_eq!(s, 401);
    let (s, v) = register(&server, &session, "bad name!").await;
    assert_eq!(s, 400, "{v}");
    let (s, v) = register(&server, &session, "laptop").await;
    assert_eq!(s, 201, "{v}");
    let dev = v["token"].as_str().unwrap().to_string();
    let dev_id = v["device_id"].as_str().unwrap().to_string();
    assert_eq!(v["user"], "root");
    assert!(!v["account_id"].as_str().unwrap().is_empty());
    // The session token does not work as a device token, nor the reverse.
    let (s, _) = server.get("/api/v1/sync/items", Some(&session)).await;
    assert_eq!(s, 401);
    let (s, _) = server.get("/api/v1/me", Some(&dev)).await;
    assert_eq!(s, 401);

    // Keys: none yet; first upload needs both wraps; versions are optimistic.
    let (s, _) = server.get("/api/v1/sync/keys", Some(&dev)).await;
    assert_eq!(s, 404);
    let put = |exp: i64, pw: &str, rec: Option<&str>| json!({"expected_version": exp, "passphrase_wrap": pw, "recovery_wrap": rec});
    let (s, _, v) = server
        .call(
            "PUT",
            "/api/v1/sync/keys",
            Some(&dev),
            Some(put(0, "pw1", None)),
        )
        .await;
    assert_eq!(s, 409, "{v}");
    let (s, _, v) = server
        .call(
            "PUT",
            "/api/v1/sync/keys",
            Some(&dev),
            Some(put(0, "pw1", Some("rec1"))),
        )
        .await;
    assert_eq!((s, v["version"].as_i64()), (200, Some(1)), "{v}");
    let (s, _, _) = server
        .call(
            "PUT",
            "/api/v1/sync/keys",
            Some(&dev),
            Some(put(0, "pw9", Some("rec9"))),
        )
        .await;
    assert_eq!(s, 409);
    let (s, _, v) = server
        .call(
            "PUT",
            "/api/v1/sync/keys",
            Some(&dev),
            Some(put(1, "pw2", None)),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v,
        json!({"version": 2, "passphrase_wrap": "pw2", "recovery_wrap": "rec1"})
    );
    let (s, _, _) = server
        .call(
            "PUT",
            "/api/v1/sync/keys",
            Some(&dev),
            Some(put(2, "not base64!", None)),
        )
        .await;
    assert_eq!(s, 400);

    // Push and pull with paging; a stale revision gets the current item back.
    let (s, v) = push(
        &server,
        &dev,
        json!([{"id": ID1, "expected_revision": 0, "deleted": false, "ciphertext": b64(10, 1)},
               {"id": ID2, "expected_revision": 0, "deleted": false, "ciphertext": b64(10, 2)}]),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["results"][0]["status"], "ok");
    assert_eq!(v["results"][1]["revision"], 1);
    let (s, v) = server
        .get("/api/v1/sync/items?since=0&limit=1", Some(&dev))
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (v["items"].as_array().unwrap().len(), v["more"].as_bool()),
        (1, Some(true))
    );
    let cursor = v["cursor"].as_i64().unwrap();
    let (_, v) = server
        .get(
            &format!("/api/v1/sync/items?since={cursor}&limit=10"),
            Some(&dev),
        )
        .await;
    assert_eq!(v["items"][0]["id"], ID2);
    assert_eq!(v["more"], false);
    let cursor = v["cursor"].as_i64().unwrap();
    let (_, v) = push(
        &server,
        &dev,
        json!([{"id": ID1, "expected_revision": 1, "deleted": true, "ciphertext": b64(5, 3)},
               {"id": ID2, "expected_revision": 0, "deleted": false, "ciphertext": b64(5, 4)}]),
    )
    .await;
    assert_eq!(v["results"][0]["revision"], 2);
    assert_eq!(v["results"][1]["status"], "conflict");
    assert_eq!(v["results"][1]["current"]["ciphertext"], b64(10, 2));
    let (_, v) = server
        .get(&format!("/api/v1/sync/items?since={cursor}"), Some(&dev))
        .await;
    assert_eq!(v["items"][0]["id"], ID1);
    assert_eq!(v["items"][0]["deleted"], true);

    // Limits: item size, items per push, repeated ids, item count, body size.
    let (s, v) = push(
        &server,
        &dev,
        json!([{"id": "00000000-0000-4000-8000-000000000003", "expected_revision": 0, "deleted": false, "ciphertext": b64(101, 5)}]),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("limit is 100"),
        "{v}"
    );
    let five: Vec<Value> = (0..5)
        .map(|i| json!({"id": format!("00000000-0000-4000-8000-00000000001{i}"), "expected_revision": 0, "deleted": false, "ciphertext": b64(4, 6)}))
        .collect();
    let (s, _) = push(&server, &dev, json!(five)).await;
    assert_eq!(s, 400);
    let (s, _) = push(
        &server,
        &dev,
        json!([{"id": "x", "expected_revision": 0, "deleted": false, "ciphertext": b64(4, 6)}]),
    )
    .await;
    assert_eq!(s, 400);
    let two_new = json!([
        {"id": "00000000-0000-4000-8000-000000000021", "expected_revision": 0, "deleted": false, "ciphertext": b64(4, 7)},
        {"id": "00000000-0000-4000-8000-000000000022", "expected_revision": 0, "deleted": false, "ciphertext": b64(4, 8)}]);
    let (s, v) = push(&server, &dev, two_new).await;
    assert_eq!(s, 409, "the fourth item passes the limit of 3: {v}");
    let (_, v) = server.get("/api/v1/sync/items?since=0", Some(&dev)).await;
    assert_eq!(
        v["items"].as_array().unwrap().len(),
        2,
        "nothing of the refused push stored"
    );
    let big = "A".repeat(5000);
    let (s, v) = push(
        &server,
        &dev,
        json!([{"id": ID2, "expected_revision": 1, "deleted": false, "ciphertext": big}]),
    )
    .await;
    assert_eq!(s, 413, "{v}");

    // Devices: a limit of 2 unrevoked; list marks the current one; revoking frees a place and
    // locks the revoked token out at once.
    let (s, v) = register(&server, &session, "desktop").await;
    assert_eq!(s, 201, "{v}");
    let dev2 = v["token"].as_str().unwrap().to_string();
    let (s, _) = register(&server, &session, "third").await;
    assert_eq!(s, 409);
    let (_, v) = server.get("/api/v1/sync/devices", Some(&dev2)).await;
    let list = v["devices"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert!(list
        .iter()
        .any(|d| d["name"] == "desktop" && d["current"] == true));
    let (s, _, _) = server
        .call(
            "DELETE",
            &format!("/api/v1/sync/devices/{dev_id}"),
            Some(&dev2),
            None,
        )
        .await;
    assert_eq!(s, 204);
    let (s, _) = server.get("/api/v1/sync/items", Some(&dev)).await;
    assert_eq!(s, 401, "a revoked device cannot pull");
    let (s, _) = push(&server, &dev, json!([])).await;
    assert_eq!(s, 401, "a revoked device cannot push");
    let (s, _, _) = server
        .call(
            "DELETE",
            &format!("/api/v1/sync/devices/{dev_id}"),
            Some(&dev2),
            None,
        )
        .await;
    assert_eq!(s, 404);
    let (s, _) = register(&server, &session, "third").await;
    assert_eq!(s, 201);

    // Every state change is audited.
    let events = server.audit(&session, "kind=sync.").await;
    let kinds: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e["kind"].as_str().unwrap(), e["result"].as_str().unwrap()))
        .collect();
    for want in [
        ("sync.device_register", "success"),
        ("sync.keys_put", "success"),
        ("sync.keys_put", "conflict"),
        ("sync.push", "success"),
        ("sync.push", "refused"),
        ("sync.device_revoke", "success"),
    ] {
        assert!(kinds.contains(&want), "{want:?} in {kinds:?}");
    }
}

#[tokio::test]
async fn sync_api_on_sqlite() {
    story(Backend::Sqlite).await;
}

#[tokio::test]
async fn sync_api_on_postgres() {
    story(Backend::postgres().await).await;
}

#[tokio::test]
async fn registration_needs_a_recent_second_factor_and_requests_are_rate_limited() {
    let dir = tempfile::tempdir().unwrap().keep();
    let server = Server::start(
        &dir,
        None,
        &[
            ("MAMORI_SYNC_REQUESTS_PER_MINUTE", "1"),
            ("MAMORI_SYNC_BURST", "3"),
        ],
    );
    let token = server.root_session().await;
    // Enrollment-only session: refused.
    let (s, _) = register(&server, &token, "laptop").await;
    assert_eq!(s, 403);
    let (_, secret, full) = server.enroll(&token, "phone").await;
    let (s, v) = register(&server, &full, "laptop").await;
    assert_eq!(s, 201, "{v}");
    let dev = v["token"].as_str().unwrap().to_string();
    let mut statuses = Vec::new();
    let mut retry = None;
    for _ in 0..5 {
        let (s, h, _) = server
            .call("GET", "/api/v1/sync/items", Some(&dev), None)
            .await;
        statuses.push(s);
        if s == 429 {
            retry = h.get("retry-after").cloned();
        }
    }
    assert_eq!(statuses, vec![200, 200, 200, 429, 429]);
    assert!(retry.is_some());
    // A fresh sign-in with password + code may register another device.
    let (s, v) = server
        .sign_in_with_code("root", &code(&secret, now() + 30))
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = register(&server, v["token"].as_str().unwrap(), "desktop").await;
    assert_eq!(s, 201, "{v}");
}
