//! The edges of the account service against the real binary over HTTP (issue #14, items 10–12;
//! docs/security.md "Edges"):
//!
//! - cookie-authenticated JSON API requests cannot be forged by another site (10);
//! - unauthenticated clients cannot exhaust the server: stalled connections are closed, the
//!   number of connections is bounded, a large body is read only after authentication, and
//!   Argon2id runs a bounded number of times at once (11);
//! - control characters are refused with 400 on SQLite and PostgreSQL (never a 500), the
//!   audit log stays writable, and every API response says `Cache-Control: no-store` (12).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Duration;

use crate::common::{csrf_cookie, Backend, Server, PASSWORD};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

// ---------------------------------------------------------------------------------------------
// Helpers

fn host(srv: &Server) -> String {
    srv.url.trim_start_matches("http://").to_string()
}

/// `GET /healthz` on a new connection. Tests that shorten the server's keep-alive timeouts
/// must not reuse a pooled connection: the server may close it just as the client writes,
/// and the client then sees an incomplete message (a race in the test, not in the server).
async fn healthz_fresh(srv: &Server) -> u16 {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    client
        .get(format!("{}/healthz", srv.url))
        .send()
        .await
        .expect("healthz answered")
        .status()
        .as_u16()
}

/// A request with any method, headers and raw body; returns status, headers and JSON body.
async fn send(
    srv: &Server,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = srv.client.request(method, format!("{}{path}", srv.url));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(b) = body {
        req = req.body(b.to_string());
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let h = resp.headers().clone();
    let text = resp.text().await.unwrap();
    let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, h, v)
}

fn code_of(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

/// A user with a password and a session (no MFA: the default policy requires it of root only).
async fn new_user(srv: &Server, admin: &str, name: &str) -> String {
    let (s, v) = srv
        .post("/api/v1/users", Some(admin), json!({"user": name}))
        .await;
    assert_eq!(s, 201, "{v}");
    let link = v["setup_link"].as_str().unwrap();
    let token = link.split("token=").nth(1).unwrap();
    let (s, v) = srv
        .post(
            "/api/v1/setup",
            None,
            json!({"token": token, "password": PASSWORD}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = srv.sign_in(name).await;
    assert_eq!(s, 200, "{v}");
    v["token"].as_str().unwrap().to_string()
}

/// Root with an enabled virtual device: returns the full session token (with a fresh second
/// factor).
async fn root_full(srv: &Server) -> String {
    let enroll = srv.root_session().await;
    let (_, _, full) = srv.enroll(&enroll, "phone").await;
    full
}

/// Reads from a raw connection until the server closes it (or `limit` passes): what it sent.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Option<Vec<u8>> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(got),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// Reads a response head (up to the blank line) from a raw connection.
async fn read_head(stream: &mut TcpStream, limit: Duration) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => panic!(
                "no response within {limit:?}; got {:?}",
                String::from_utf8_lossy(&got)
            ),
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&got).to_string()
}

fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// 10. Cross-site forgery of cookie-authenticated API requests

/// The attack of the review: another site's page posts `text/plain` with the victim's cookie
/// and resets MFA. Every state-changing route that accepts the cookie refuses it, on every
/// router; bearer tokens and same-origin JSON are unaffected. (No database rule is involved:
/// SQLite only.)
#[tokio::test]
async fn cookie_requests_must_be_same_origin_json() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(dir.path(), None, &[("MAMORI_REQUIRE_MFA", "root")]);
    let root = root_full(&srv).await;
    new_user(&srv, &root, "bob").await;
    let cookie = format!("mamori_session={root}");
    let evil = "https://evil.example";
    let me = srv.url.clone();

    // The review's request: text/plain with a foreign Origin.
    let forged: &[(&str, &str)] = &[
        ("cookie", &cookie),
        ("content-type", "text/plain"),
        ("origin", evil),
    ];
    let (s, h, v) = send(
        &srv,
        "POST",
        "/api/v1/users/bob/reset-mfa",
        forged,
        Some("x"),
    )
    .await;
    assert_eq!((s, code_of(&v)), (403, "cross_site_request"), "{v}");
    assert_eq!(h["cache-control"], "no-store");
    // text/plain from no Origin at all (older browsers, some redirects).
    let plain: &[(&str, &str)] = &[("cookie", &cookie), ("content-type", "text/plain")];
    let (s, _, v) = send(
        &srv,
        "POST",
        "/api/v1/users/bob/reset-mfa",
        plain,
        Some("x"),
    )
    .await;
    assert_eq!((s, code_of(&v)), (403, "cross_site_request"), "{v}");
    // A form's content type.
    let form: &[(&str, &str)] = &[
        ("cookie", &cookie),
        ("content-type", "application/x-www-form-urlencoded"),
    ];
    let (s, _, v) = send(
        &srv,
        "POST",
        "/api/v1/users/bob/reset-mfa",
        form,
        Some("a=b"),
    )
    .await;
    assert_eq!((s, code_of(&v)), (403, "cross_site_request"), "{v}");
    // No body and no X-Requested-With.
    let bare: &[(&str, &str)] = &[("cookie", &cookie)];
    let (s, _, v) = send(&srv, "POST", "/api/v1/users/bob/reset-mfa", bare, None).await;
    assert_eq!((s, code_of(&v)), (403, "cross_site_request"), "{v}");
    // JSON, but from another site's page.
    let json_evil: &[(&str, &str)] = &[
        ("cookie", &cookie),
        ("content-type", "application/json"),
        ("origin", evil),
    ];
    let (s, _, v) = send(
        &srv,
        "POST",
        "/api/v1/users/bob/reset-mfa",
        json_evil,
        Some("{}"),
    )
    .await;
    assert_eq!((s, code_of(&v)), (403, "cross_site_request"), "{v}");
    let null_origin: &[(&str, &str)] = &[
        ("cookie", &cookie),
        ("content-type", "application/json"),
        ("origin", "null"),
    ];
    let (s, _, v) = send(
        &srv,
        "POST",
        "/api/v1/users/bob/reset-mfa",
        null_origin,
        Some("{}"),
    )
    .await;
    assert_eq!((s, code_of(&v)), (403, "cross_site_request"), "{v}");

    // Same-origin JSON passes; so does a bodiless request with X-Requested-With.
    let json_same: &[(&str, &str)] = &[
        ("cookie", &cookie),
        ("content-type", "application/json"),
        ("origin", &me),
    ];
    let (s, _, v) = send(
        &srv,
        "POST",
        "/api/v1/users/bob/reset-mfa",
        json_same,
        Some("{}"),
    )
    .await;
    assert_eq!(s, 204, "{v}");
    let ajax: &[(&str, &str)] = &[("cookie", &cookie), ("x-requested-with", "XMLHttpRequest")];
    let (s, _, v) = send(&srv, "POST", "/api/v1/users/bob/reset-mfa", ajax, None).await;
    assert_eq!(s, 204, "{v}");
    // JSON without Origin (non-browser clients that keep the cookie) passes too.
    let json_only: &[(&str, &str)] = &[("cookie", &cookie), ("content-type", "application/json")];
    let (s, _, v) = send(
        &srv,
        "POST",
        "/api/v1/app-keys",
        json_only,
        Some(r#"{"name":"crm"}"#),
    )
    .await;
    assert_eq!(s, 201, "{v}");

    // Bearer tokens are unaffected, whatever the content type or Origin.
    let bearer = format!("Bearer {root}");
    let bearer_plain: &[(&str, &str)] = &[
        ("authorization", &bearer),
        ("content-type", "text/plain"),
        ("origin", evil),
    ];
    let (s, _, v) = send(
        &srv,
        "POST",
        "/api/v1/users/bob/reset-mfa",
        bearer_plain,
        Some("x"),
    )
    .await;
    assert_eq!(s, 204, "{v}");
    // ... also when a cookie rides along: the bearer token is the credential.
    let bearer_and_cookie: &[(&str, &str)] = &[
        ("authorization", &bearer),
        ("cookie", &cookie),
        ("content-type", "text/plain"),
    ];
    let (s, _, v) = send(
        &srv,
        "POST",
        "/api/v1/users/bob/reset-mfa",
        bearer_and_cookie,
        Some("x"),
    )
    .await;
    assert_eq!(s, 204, "{v}");

    // Reading is not refused (another site cannot read the answer anyway).
    let read_evil: &[(&str, &str)] = &[("cookie", &cookie), ("origin", evil)];
    let (s, _, v) = send(&srv, "GET", "/api/v1/me", read_evil, None).await;
    assert_eq!(s, 200, "{v}");

    // Every router that accepts the cookie: session routes, hardware tokens, security keys,
    // sync registration and the sync routes, with every state-changing method.
    for (method, path, body) in [
        ("POST", "/api/v1/mfa-devices/virtual", r#"{"name":"x"}"#),
        ("PATCH", "/api/v1/mfa-devices/some-id", r#"{"name":"x"}"#),
        ("DELETE", "/api/v1/mfa-devices/some-id", ""),
        ("DELETE", "/api/v1/sessions/some-id", ""),
        ("POST", "/api/v1/sign-out", ""),
        ("POST", "/api/v1/me/password", r#"{}"#),
        ("POST", "/api/v1/recovery-codes", r#"{}"#),
        ("POST", "/api/v1/tokens/import", r#"{"content":""}"#),
        ("POST", "/api/v1/mfa-devices/hardware", r#"{}"#),
        ("POST", "/api/v1/users/bob/hardware-tokens", r#"{}"#),
        (
            "POST",
            "/api/v1/mfa-devices/security-key/begin",
            r#"{"name":"k"}"#,
        ),
        ("POST", "/api/v1/session/verify/security-key/begin", r#"{}"#),
        ("POST", "/api/v1/sync/devices", r#"{"name":"laptop"}"#),
        ("DELETE", "/api/v1/sync/devices/some-id", ""),
        ("PUT", "/api/v1/sync/keys", r#"{}"#),
        ("POST", "/api/v1/sync/items", r#"{"items":[]}"#),
    ] {
        let (s, _, v) = send(&srv, method, path, plain, Some(body)).await;
        assert_eq!(
            (s, code_of(&v)),
            (403, "cross_site_request"),
            "{method} {path}: {v}"
        );
    }
    // The session still works: nothing above was done.
    let (s, v) = srv.get("/api/v1/mfa-devices", Some(&root)).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v.as_array().map(Vec::len), Some(1), "{v}");
}

// ---------------------------------------------------------------------------------------------
// 11. Unauthenticated resource exhaustion

/// Hundreds of connections that never finish their header: the server holds at most
/// `max_connections` of them (the rest wait in the listen queue, using no file of the server),
/// closes each after `header_read_timeout_secs`, and `/healthz` is answered meanwhile.
#[tokio::test]
async fn stalled_connections_are_bounded_and_closed() {
    const STALLED: usize = 300;
    const LIMIT: usize = 100;
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(
        dir.path(),
        None,
        &[
            ("MAMORI_LIMITS_HEADER_READ_TIMEOUT_SECS", "2"),
            ("MAMORI_LIMITS_MAX_CONNECTIONS", "100"),
        ],
    );
    assert_eq!(healthz_fresh(&srv).await, 200);
    let idle_files = open_files(srv.pid());
    let addr = host(&srv);
    let mut stalled = Vec::new();
    for _ in 0..STALLED {
        let mut c = TcpStream::connect(&addr).await.unwrap();
        c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .await
            .unwrap();
        stalled.push(c);
    }
    // The server's open files stay bounded by the limit (sampled while the attack lasts).
    for _ in 0..10 {
        let files = open_files(srv.pid());
        assert!(
            files <= idle_files + LIMIT + 8,
            "{files} open files with {STALLED} stalled connections (idle: {idle_files})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // /healthz is answered while the stalled connections are still open on the client side.
    assert_eq!(healthz_fresh(&srv).await, 200);
    // Every stalled connection is closed by the server (header read timeout).
    let mut tasks = tokio::task::JoinSet::new();
    for mut c in stalled {
        tasks.spawn(async move { read_until_closed(&mut c, Duration::from_secs(60)).await });
    }
    let mut closed = 0;
    while let Some(r) = tasks.join_next().await {
        assert!(
            r.unwrap().is_some(),
            "a stalled connection was never closed"
        );
        closed += 1;
    }
    assert_eq!(closed, STALLED);
    assert_eq!(healthz_fresh(&srv).await, 200);
}

/// A keep-alive connection left idle is closed after the header timeout too, and a request
/// whose body stalls is answered 408 at the request timeout and its connection closed.
#[tokio::test]
async fn idle_and_stalled_body_connections_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(
        dir.path(),
        None,
        &[
            ("MAMORI_LIMITS_HEADER_READ_TIMEOUT_SECS", "1"),
            ("MAMORI_LIMITS_REQUEST_TIMEOUT_SECS", "1"),
            ("MAMORI_LIMITS_IDLE_TIMEOUT_SECS", "2"),
        ],
    );
    let addr = host(&srv);
    // Keep-alive: one request answered, then silence.
    let mut c = TcpStream::connect(&addr).await.unwrap();
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let head = read_head(&mut c, Duration::from_secs(30)).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        read_until_closed(&mut c, Duration::from_secs(30))
            .await
            .is_some(),
        "an idle keep-alive connection was never closed"
    );
    // A body that stops after its first bytes.
    let mut c = TcpStream::connect(&addr).await.unwrap();
    c.write_all(
        b"POST /api/v1/sign-in HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"user\":",
    )
    .await
    .unwrap();
    let got = read_until_closed(&mut c, Duration::from_secs(30))
        .await
        .expect("a stalled upload was never closed");
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("\"timeout\""), "{text}");
}

/// `POST /api/v1/tokens/import` takes bodies up to 32 MiB; it authenticates (and requires an
/// administrator) from the headers, before reading any of it. The body here stops after its
/// first chunk and the request timeout is long: the answer can only come from a server that
/// did not wait for the body.
#[tokio::test]
async fn large_bodies_are_refused_before_they_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(
        dir.path(),
        None,
        &[
            ("MAMORI_LIMITS_REQUEST_TIMEOUT_SECS", "300"),
            ("MAMORI_LIMITS_IDLE_TIMEOUT_SECS", "600"),
            // bob signs in fully on his password alone (#15 made "all" the default).
            ("MAMORI_REQUIRE_MFA", "root"),
        ],
    );
    let root = root_full(&srv).await;
    let bob = new_user(&srv, &root, "bob").await;
    let addr = host(&srv);
    let upload = |auth: Option<String>| {
        let addr = addr.clone();
        async move {
            let mut c = TcpStream::connect(&addr).await.unwrap();
            let auth = auth
                .map(|t| format!("Authorization: Bearer {t}\r\n"))
                .unwrap_or_default();
            let head = format!(
                "POST /api/v1/tokens/import HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                32 * 1024 * 1024
            );
            c.write_all(head.as_bytes()).await.unwrap();
            let mut chunk = b"{\"content\":\"".to_vec();
            chunk.resize(64 * 1024, b'a');
            c.write_all(&chunk).await.unwrap();
            // ... and nothing more: the rest of the 32 MiB never comes.
            let head = read_head(&mut c, Duration::from_secs(60)).await;
            let mut rest = vec![0u8; 4096];
            let n = tokio::time::timeout(Duration::from_secs(10), c.read(&mut rest))
                .await
                .map(|r| r.unwrap_or(0))
                .unwrap_or(0);
            format!("{head}{}", String::from_utf8_lossy(&rest[..n]))
        }
    };
    let anonymous = upload(None).await;
    assert!(anonymous.starts_with("HTTP/1.1 401"), "{anonymous}");
    assert!(anonymous.contains("unauthenticated"), "{anonymous}");
    let not_admin = upload(Some(bob)).await;
    assert!(not_admin.starts_with("HTTP/1.1 403"), "{not_admin}");
    assert!(not_admin.contains("\"forbidden\""), "{not_admin}");
    // An administrator's import still works.
    let (s, v) = srv
        .post(
            "/api/v1/tokens/import",
            Some(&root),
            json!({"content": "serial,secret_hex,type,digits,period_or_counter\nT-1,3132333435363738393031323334353637383930,totp,6,30\n", "format": "csv"}),
        )
        .await;
    assert_eq!((s, v["imported"].as_u64()), (200, Some(1)), "{v}");
}

/// 40 sign-ins at once with at most 2 Argon2id computations running: every one gets its
/// right answer (the others wait their turn within the request timeout).
async fn parallel_sign_ins(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(
        dir.path(),
        backend.url(),
        &[
            ("MAMORI_LIMITS_PASSWORD_HASH_CONCURRENCY", "2"),
            ("MAMORI_LIMITS_SIGN_IN_BURST", "200"),
            ("MAMORI_LIMITS_SIGN_IN_PER_MINUTE", "1000"),
        ],
    );
    srv.root_session().await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..40 {
        let client = srv.client.clone();
        let url = format!("{}/api/v1/sign-in", srv.url);
        tasks.spawn(async move {
            let (user, password, expect) = match i % 4 {
                0 | 1 => ("root", PASSWORD, 200),
                2 => ("root", "wrong-password-entirely", 401),
                _ => ("nobody", PASSWORD, 401),
            };
            let r = client
                .post(url)
                .json(&json!({"user": user, "password": password}))
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let v: Value = r.json().await.unwrap();
            (i, expect, status, v)
        });
    }
    let mut answered = 0;
    while let Some(r) = tasks.join_next().await {
        let (i, expect, status, v) = r.unwrap();
        assert_eq!(status, expect, "sign-in {i}: {v}");
        if expect == 200 {
            assert_eq!(v["status"], "mfa_enrollment_required", "{v}");
        } else {
            assert_eq!(v["error"]["code"], "invalid_credentials", "{v}");
        }
        answered += 1;
    }
    assert_eq!(answered, 40);
}

#[tokio::test]
async fn parallel_sign_ins_on_sqlite() {
    parallel_sign_ins(Backend::Sqlite).await;
}

#[tokio::test]
async fn parallel_sign_ins_on_postgres() {
    parallel_sign_ins(Backend::postgres().await).await;
}

// ---------------------------------------------------------------------------------------------
// 12. Control characters, audit text, caching

/// NUL (and other control characters) anywhere in a name, serial, id, filter or field: 400
/// `invalid_input` on both backends, never a 500, and the audit log still answers.
async fn control_characters(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(dir.path(), backend.url(), &[("MAMORI_REQUIRE_MFA", "root")]);
    let root = root_full(&srv).await;
    let bob = new_user(&srv, &root, "bob").await;
    let (s, v) = srv
        .post("/api/v1/app-keys", Some(&root), json!({"name": "crm"}))
        .await;
    assert_eq!(s, 201, "{v}");
    let app_key = v["key"].as_str().unwrap().to_string();

    let mut statuses = Vec::new();
    let mut refused = |what: &str, (s, v): (u16, Value)| {
        assert_eq!((s, code_of(&v)), (400, "invalid_input"), "{what}: {v}");
        statuses.push(s);
    };
    // Bodies.
    for (what, path, token, body) in [
        (
            "sign-in user name",
            "/api/v1/sign-in",
            None,
            json!({"user": "ro\u{0}ot", "password": PASSWORD}),
        ),
        (
            "sign-in password",
            "/api/v1/sign-in",
            None,
            json!({"user": "root", "password": "pass\u{0}word-long-enough"}),
        ),
        (
            "challenge",
            "/api/v1/sign-in/mfa",
            None,
            json!({"challenge": "\u{0}", "code": "123456"}),
        ),
        (
            "device name",
            "/api/v1/mfa-devices/virtual",
            Some(&root),
            json!({"name": "pho\u{0}ne"}),
        ),
        (
            "device name (C1)",
            "/api/v1/mfa-devices/virtual",
            Some(&root),
            json!({"name": "pho\u{85}ne"}),
        ),
        (
            "token serial",
            "/api/v1/mfa-devices/hardware",
            Some(&root),
            json!({"serial": "T\u{0}1", "name": "fob", "code1": "123456", "code2": "654321"}),
        ),
        (
            "admin token serial",
            "/api/v1/users/bob/hardware-tokens",
            Some(&root),
            json!({"serial": "T\u{0}1", "name": "fob", "code1": "123456", "code2": "654321"}),
        ),
        (
            "app key name",
            "/api/v1/app-keys",
            Some(&root),
            json!({"name": "cr\u{0}m"}),
        ),
        (
            "new user name",
            "/api/v1/users",
            Some(&root),
            json!({"user": "ca\u{0}rol"}),
        ),
        (
            "new user email",
            "/api/v1/users",
            Some(&root),
            json!({"user": "carol", "email": "carol\u{0}@example.com"}),
        ),
        (
            "security key name",
            "/api/v1/mfa-devices/security-key/begin",
            Some(&root),
            json!({"name": "ke\u{0}y"}),
        ),
        (
            "sync device name",
            "/api/v1/sync/devices",
            Some(&root),
            json!({"name": "lap\u{0}top"}),
        ),
        (
            "password change",
            "/api/v1/me/password",
            Some(&bob),
            json!({"current_password": PASSWORD, "new_password": "new\u{0}password-long"}),
        ),
        (
            "validate user",
            "/api/v1/validate",
            Some(&app_key),
            json!({"user": "b\u{0}ob", "code": "123456"}),
        ),
    ] {
        refused(what, srv.post(path, token.map(String::as_str), body).await);
    }
    // Paths and query strings.
    for (what, method, path) in [
        ("audit user filter", "GET", "/api/v1/audit?user=%00"),
        ("audit kind filter", "GET", "/api/v1/audit?kind=sign_in.%00"),
        (
            "audit user filter (LF)",
            "GET",
            "/api/v1/audit?user=bob%0Aforged",
        ),
        ("token listing cursor", "GET", "/api/v1/tokens?after=T%00"),
        ("device id", "DELETE", "/api/v1/mfa-devices/a%00b"),
        ("device id", "PATCH", "/api/v1/mfa-devices/a%00b"),
        ("session id", "DELETE", "/api/v1/sessions/a%00b"),
        ("user in path", "POST", "/api/v1/users/b%00ob/reset-mfa"),
        ("sync device id", "DELETE", "/api/v1/sync/devices/a%00b"),
    ] {
        let (s, _, v) = srv
            .call(method, path, Some(&root), Some(json!({"name": "x"})))
            .await;
        refused(what, (s, v));
    }
    assert!(statuses.iter().all(|s| *s != 500));

    // The console: a form field and a query string with NUL are refused the same way.
    let c = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = c.get(format!("{}/sign-in", srv.url)).send().await.unwrap();
    let csrf = csrf_cookie(r.headers());
    let r = c
        .post(format!("{}/sign-in", srv.url))
        .header("cookie", format!("mamori_csrf={csrf}"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("user", "ro\u{0}ot"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let r = c
        .get(format!("{}/audit?user=%00", srv.url))
        .header("cookie", format!("mamori_session={root}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);

    // The audit log answers, and no event holds a control character.
    let events = srv.audit(&root, "limit=1000").await;
    assert!(!events.is_empty());
    for e in &events {
        for field in [
            "account",
            "actor",
            "client_addr",
            "user_agent",
            "kind",
            "result",
            "detail",
        ] {
            if let Some(t) = e[field].as_str() {
                assert!(!t.contains(char::is_control), "{field} of {e}");
            }
        }
    }
    // A sign-in with a control character in a header-borne field still records its event.
    let (s, _, v) = send(
        &srv,
        "POST",
        "/api/v1/sign-in",
        &[
            ("content-type", "application/json"),
            ("user-agent", "agent\twith tab"),
        ],
        Some(&json!({"user": "nobody", "password": "x"}).to_string()),
    )
    .await;
    assert_eq!((s, code_of(&v)), (401, "invalid_credentials"), "{v}");
    let failures = srv.audit(&root, "kind=sign_in.password").await;
    let last = failures.last().unwrap();
    assert_eq!(last["result"], "failure", "{last}");
    assert_eq!(last["user_agent"], "agent\u{FFFD}with tab", "{last}");
}

#[tokio::test]
async fn control_characters_on_sqlite() {
    control_characters(Backend::Sqlite).await;
}

#[tokio::test]
async fn control_characters_on_postgres() {
    control_characters(Backend::postgres().await).await;
}

/// The domain below the edges: a sign-in with NUL in the user name is an unknown user (same
/// answer, same cost, no store lookup), and audit text with NUL is stored, on both backends.
async fn domain_refusals(url: Option<String>) {
    use mamori_server::config::{Config, PasswordConfig};
    use mamori_server::domain::audit::Event;
    use mamori_server::domain::{Policy, RequestMeta, Service};
    use mamori_server::store::AuditFilter;
    use rand::rngs::OsRng;

    let dir = tempfile::tempdir().unwrap();
    let url = url.unwrap_or_else(|| format!("sqlite://{}", dir.path().join("m.db").display()));
    let store = mamori_server::store::open(&url).await.unwrap();
    let defaults = Config::default();
    let config = Config {
        password: PasswordConfig {
            argon2_m_kib: 1024,
            argon2_t: 1,
            ..defaults.password.clone()
        },
        ..defaults
    };
    let svc = Service::new(
        store,
        mamori_server::keys::ServerKey::generate(&mut OsRng),
        Policy::from_config(&config, "https://mfa.example".into()),
        &mut OsRng,
    )
    .await
    .unwrap();
    let meta = RequestMeta {
        client_addr: Some("192.0.2.1".into()),
        user_agent: Some("ua\0".into()),
    };
    let e = svc
        .sign_in_password(
            "ro\0ot",
            zeroize::Zeroizing::new(PASSWORD.into()),
            1_800_000_000,
            &mut OsRng,
            &meta,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(e, mamori_server::Error::InvalidCredentials),
        "{e:?}"
    );
    svc.audit(
        1_800_000_001,
        &meta,
        Event {
            kind: "mfa.create",
            result: "name_taken",
            account: Some("ro\0ot"),
            actor: Some("ro\0ot"),
            detail: Some("pho\0ne"),
        },
    )
    .await
    .unwrap();
    let events = svc
        .audit_events(&AuditFilter {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    let sign_in = events
        .iter()
        .find(|r| r.event.kind == "sign_in.password")
        .unwrap();
    assert_eq!(sign_in.event.result, "failure");
    assert_eq!(sign_in.event.detail.as_deref(), Some("unknown user"));
    assert_eq!(sign_in.event.user_agent.as_deref(), Some("ua\u{FFFD}"));
    let create = events
        .iter()
        .find(|r| r.event.kind == "mfa.create")
        .unwrap();
    assert_eq!(create.event.account.as_deref(), Some("ro\u{FFFD}ot"));
    assert_eq!(create.event.detail.as_deref(), Some("pho\u{FFFD}ne"));
    svc.store().close().await;
}

#[tokio::test]
async fn domain_refusals_on_sqlite() {
    domain_refusals(None).await;
}

#[tokio::test]
async fn domain_refusals_on_postgres() {
    let db = mamori_server::testing::TempDatabase::create()
        .await
        .unwrap();
    domain_refusals(Some(db.url.clone())).await;
}

/// Every API response carrying a token, seed, key or codes says `Cache-Control: no-store`
/// (every /api/ response does: one layer).
#[tokio::test]
async fn secrets_are_never_cached() {
    let dir = tempfile::tempdir().unwrap();
    // A domain name, for the security-key ceremony.
    let srv = Server::start(
        dir.path(),
        None,
        &[("MAMORI_PUBLIC_URL", "https://mamori.test")],
    );
    let no_store = |what: &str, h: &reqwest::header::HeaderMap| {
        assert_eq!(
            h.get("cache-control").and_then(|v| v.to_str().ok()),
            Some("no-store"),
            "{what}"
        );
    };
    let (s, h, v) = srv
        .call(
            "POST",
            "/api/v1/setup",
            None,
            Some(json!({"token": srv.setup_token(), "password": PASSWORD})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    no_store("setup", &h);
    let (s, h, v) = srv
        .call(
            "POST",
            "/api/v1/sign-in",
            None,
            Some(json!({"user": "root", "password": PASSWORD})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    no_store("sign-in session token", &h);
    let enroll = v["token"].as_str().unwrap().to_string();
    let (s, h, v) = srv
        .call(
            "POST",
            "/api/v1/mfa-devices/virtual",
            Some(&enroll),
            Some(json!({"name": "phone"})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    no_store("virtual device seed and QR", &h);
    let id = v["id"].as_str().unwrap().to_string();
    let secret = v["secret_base32"].as_str().unwrap().to_string();
    let t = crate::common::now();
    let (s, h, v) = srv
        .call(
            "POST",
            &format!("/api/v1/mfa-devices/{id}/enable"),
            Some(&enroll),
            Some(
                json!({"code1": crate::common::code(&secret, t - 30), "code2": crate::common::code(&secret, t)}),
            ),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    no_store("enable (new session token)", &h);
    let root = v["token"].as_str().unwrap().to_string();
    for (what, path, body, status) in [
        ("app key", "/api/v1/app-keys", json!({"name": "crm"}), 201),
        ("recovery codes", "/api/v1/recovery-codes", json!({}), 201),
        (
            "sync device token",
            "/api/v1/sync/devices",
            json!({"name": "laptop"}),
            201,
        ),
        (
            "new user's setup link",
            "/api/v1/users",
            json!({"user": "bob"}),
            201,
        ),
        (
            "security key options",
            "/api/v1/mfa-devices/security-key/begin",
            json!({"name": "key"}),
            200,
        ),
    ] {
        let (s, h, v) = srv.call("POST", path, Some(&root), Some(body)).await;
        assert_eq!(s, status, "{what}: {v}");
        no_store(what, &h);
    }
    for path in ["/api/v1/me", "/api/v1/audit", "/api/v1/no-such-thing"] {
        let (_, h, _) = srv.call("GET", path, Some(&root), None).await;
        no_store(path, &h);
    }
    let (_, h, _) = srv.call("GET", "/api/v1/me", None, None).await;
    no_store("401", &h);
}
