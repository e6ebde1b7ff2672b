//! #17 follow-ups of the OpenID provider (docs/oidc.md), over real HTTP against the real
//! server: connected applications (consents listed and revoked by the account, in the API and
//! the console, on SQLite and PostgreSQL), the limit on failed client authentication at the
//! token, revocation and introspection endpoints, their request body limit, and the security
//! review's three OpenID checks on stored clients.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::common::{console_request, Backend, Server};
use super::oidc::{create_client, provider, rp, REDIRECT};

/// `POST /oidc/introspect` as `client` (Basic); (status, body).
async fn introspect(srv: &Server, client: &(String, Option<String>), token: &str) -> (u16, Value) {
    let r = srv
        .client
        .post(format!("{}/oidc/introspect", srv.url))
        .basic_auth(&client.0, client.1.as_deref())
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

/// A refresh at `/oidc/token` as `client`; (status, body).
async fn refresh(srv: &Server, client: &(String, Option<String>), token: &str) -> (u16, Value) {
    let r = srv
        .client
        .post(format!("{}/oidc/token", srv.url))
        .basic_auth(&client.0, client.1.as_deref())
        .form(&[("grant_type", "refresh_token"), ("refresh_token", token)])
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn connected(srv: &Server, token: &str) -> Vec<Value> {
    let (s, v) = srv.get("/api/v1/me/oidc-consents", Some(token)).await;
    assert_eq!(s, 200, "{v}");
    v["applications"].as_array().unwrap().clone()
}

async fn connected_apps_are_listed_and_revoked(backend: Backend) {
    let p = provider(&backend).await;
    let db = backend.url();
    let dir = &p.srv.data_dir;
    let wiki = create_client(dir, db, &["wiki", "--redirect-uri", REDIRECT]);
    let grafana = create_client(
        dir,
        db,
        &["grafana", "--redirect-uri", REDIRECT, "--trusted"],
    );

    // Nothing shared yet.
    assert_eq!(connected(&p.srv, &p.alice).await, Vec::<Value>::new());

    // alice signs in to both: the wiki asks her consent (openid profile email groups), the
    // trusted grafana does not.
    let mut cfg = p.cfg(&wiki);
    cfg["scope"] = json!("openid email");
    let w1 = rp("grant", &cfg);
    assert_eq!(w1["asked_consent"], true, "{w1}");
    let w2 = rp("grant", &cfg);
    assert_eq!(w2["asked_consent"], false, "remembered: {w2}");
    let g = rp("grant", &p.cfg(&grafana));
    assert_eq!(g["asked_consent"], false, "{g}");

    let apps = connected(&p.srv, &p.alice).await;
    assert_eq!(apps.len(), 2, "{apps:?}");
    assert_eq!(apps[0]["client_name"], "grafana");
    assert_eq!(apps[0]["client_id"], grafana.0.as_str());
    assert_eq!(apps[0]["consented_at"], Value::Null, "trusted: never asked");
    assert_eq!(apps[0]["live_grants"], 1);
    assert_eq!(
        apps[0]["scopes"],
        json!(["openid", "profile", "email", "groups"])
    );
    assert_eq!(apps[1]["client_name"], "wiki");
    assert_eq!(apps[1]["scopes"], json!(["openid", "email"]));
    assert!(apps[1]["consented_at"].as_i64().unwrap() > 0, "{apps:?}");
    assert_eq!(apps[1]["live_grants"], 2);

    // Another account sees none of it, and cannot revoke alice's (IDOR): 404, and alice's
    // tokens still work.
    let bob = p.srv.new_user(&p.root, json!({"user": "bob"})).await;
    let (_, _, bob) = p.srv.enroll(&bob, "phone").await;
    assert_eq!(connected(&p.srv, &bob).await, Vec::<Value>::new());
    let path = format!("/api/v1/me/oidc-consents/{}", wiki.0);
    let (s, _, v) = p.srv.call("DELETE", &path, Some(&bob), None).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (404, Some("not_found")),
        "{v}"
    );
    let (s, v) = introspect(&p.srv, &wiki, w1["access_token"].as_str().unwrap()).await;
    assert_eq!((s, &v["active"]), (200, &json!(true)), "{v}");
    // Without a session: 401.
    let (s, _, _) = p.srv.call("DELETE", &path, None, None).await;
    assert_eq!(s, 401);

    // alice revokes the wiki: the consent is gone, every token of both grants stops working,
    // the other application is untouched.
    let (s, _, v) = p.srv.call("DELETE", &path, Some(&p.alice), None).await;
    assert_eq!(s, 204, "{v}");
    for grant in [&w1, &w2] {
        let (_, v) = introspect(&p.srv, &wiki, grant["access_token"].as_str().unwrap()).await;
        assert_eq!(v, json!({"active": false}));
        let (s, v) = refresh(&p.srv, &wiki, grant["refresh_token"].as_str().unwrap()).await;
        assert_eq!(
            (s, v["error"].as_str()),
            (400, Some("invalid_grant")),
            "{v}"
        );
    }
    let (_, v) = introspect(&p.srv, &grafana, g["access_token"].as_str().unwrap()).await;
    assert_eq!(v["active"], true, "{v}");
    let apps = connected(&p.srv, &p.alice).await;
    assert_eq!(apps.len(), 1, "{apps:?}");
    assert_eq!(apps[0]["client_name"], "grafana");
    // Nothing left to revoke.
    let (s, _, _) = p.srv.call("DELETE", &path, Some(&p.alice), None).await;
    assert_eq!(s, 404);
    // The next sign-in at the wiki asks again.
    let again = rp("grant", &cfg);
    assert_eq!(again["asked_consent"], true, "{again}");

    // The console: "Connected applications" on My security credentials, in both languages,
    // and its Revoke form (CSRF-checked like every console form).
    let (s, page) = console_request(&p.srv, &p.issuer, &p.alice, "/security", None).await;
    assert_eq!(s, 200);
    assert!(page.contains("Connected applications"), "{page}");
    assert!(page.contains("id=\"connected-apps\""), "{page}");
    assert!(page.contains(&format!("/security/oidc-consents/{}/revoke", grafana.0)));
    let ja = p
        .srv
        .client
        .get(format!("{}/security", p.srv.url))
        // bob's first console page: the account adopts the browser's language (alice's
        // adopted English above), and bob's section is there even with nothing in it.
        .header("cookie", format!("mamori_session={bob}; mamori_lang=ja"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(ja.contains("接続済みアプリケーション"), "{ja}");
    assert!(ja.contains("id=\"no-connected-apps\""), "{ja}");
    // A form without the CSRF token changes nothing.
    let forged = p
        .srv
        .client
        .post(format!(
            "{}/security/oidc-consents/{}/revoke",
            p.srv.url, grafana.0
        ))
        .header("cookie", format!("mamori_session={}", p.alice))
        .header("origin", &p.issuer)
        .form(&[("x", "y")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status().as_u16(), 403);
    assert_eq!(connected(&p.srv, &p.alice).await.len(), 2);
    // bob's console cannot revoke alice's either.
    let revoke = format!("/security/oidc-consents/{}/revoke", grafana.0);
    let (s, _) = console_request(&p.srv, &p.issuer, &bob, &revoke, Some(&[])).await;
    assert_eq!(s, 404);
    let (s, _) = console_request(&p.srv, &p.issuer, &p.alice, &revoke, Some(&[])).await;
    assert_eq!(s, 303);
    let (_, v) = introspect(&p.srv, &grafana, g["access_token"].as_str().unwrap()).await;
    assert_eq!(v["active"], false, "{v}");
    let (_, page) = console_request(
        &p.srv,
        &p.issuer,
        &p.alice,
        "/security?done=oidc_revoked",
        None,
    )
    .await;
    assert!(page.contains("access is revoked"), "{page}");
    assert!(!page.contains(&revoke), "{page}");

    // Audited as oidc.consent, result revoked, for alice, naming the client.
    let events = p.srv.audit(&p.root, "kind=oidc.consent&limit=100").await;
    let revoked: Vec<&Value> = events.iter().filter(|e| e["result"] == "revoked").collect();
    assert_eq!(revoked.len(), 2, "{events:?}");
    assert!(
        revoked.iter().all(|e| e["account"] == "alice"),
        "{revoked:?}"
    );
    assert!(
        revoked.iter().any(|e| e["detail"]
            .as_str()
            .unwrap()
            .starts_with("wiki: openid email;")),
        "{revoked:?}"
    );
}

#[tokio::test]
async fn connected_apps_are_listed_and_revoked_on_sqlite() {
    connected_apps_are_listed_and_revoked(Backend::Sqlite).await;
}

#[tokio::test]
async fn connected_apps_are_listed_and_revoked_on_postgres() {
    connected_apps_are_listed_and_revoked(Backend::postgres().await).await;
}

/// A reqwest client whose connections come from `addr` (any address of 127.0.0.0/8 reaches
/// the server on 127.0.0.1), to be a second client address.
fn from(addr: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(Some(addr.parse().unwrap()))
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// `POST {path}` as `id` with `secret` (Basic) from `http`; (status, Retry-After, body).
async fn client_call(
    srv: &Server,
    http: &reqwest::Client,
    path: &str,
    id: &str,
    secret: &str,
) -> (u16, Option<u64>, Value) {
    let r = http
        .post(format!("{}{path}", srv.url))
        .basic_auth(id, Some(secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", "not-a-code"),
            ("redirect_uri", REDIRECT),
            ("token", "not-a-token"),
        ])
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    let retry = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    (s, retry, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn failed_client_authentication_is_limited_per_address_and_audited_per_client() {
    // Three failures per two-second window (`limits.oidc_client_failures`), a small body limit.
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(
        dir.path(),
        None,
        &[
            ("MAMORI_LIMITS_OIDC_CLIENT_FAILURES", "3"),
            ("MAMORI_LIMITS_OIDC_CLIENT_FAILURE_WINDOW_SECS", "2"),
            ("MAMORI_LIMITS_BODY_BYTES", "4096"),
        ],
    );
    let t = srv.root_session().await;
    let (_, _, root) = srv.enroll(&t, "phone").await;
    let a = create_client(dir.path(), None, &["a", "--redirect-uri", REDIRECT]);
    let b = create_client(dir.path(), None, &["b", "--redirect-uri", REDIRECT]);
    let (a_secret, b_secret) = (a.1.clone().unwrap(), b.1.clone().unwrap());
    let here = from("127.0.0.1");
    let there = from("127.0.0.2");
    let elsewhere = from("127.0.0.3");

    // Correct clients are served however often they ask.
    for _ in 0..5 {
        let (s, _, v) = client_call(&srv, &here, "/oidc/introspect", &a.0, &a_secret).await;
        assert_eq!((s, v), (200, json!({"active": false})));
    }

    // Three wrong secrets for client a from 127.0.0.1, one at each endpoint: invalid_client.
    for path in ["/oidc/token", "/oidc/revoke", "/oidc/introspect"] {
        let (s, _, v) = client_call(&srv, &here, path, &a.0, "wrong").await;
        assert_eq!(
            (s, v["error"].as_str()),
            (401, Some("invalid_client")),
            "{path}: {v}"
        );
    }
    // Now every request from 127.0.0.1 is refused, right secret or not, whichever client, at
    // every endpoint (the per-address limit): 429, Retry-After, an OAuth error body.
    for (http, id, secret) in [(&here, &a.0, &a_secret), (&here, &b.0, &b_secret)] {
        for path in ["/oidc/token", "/oidc/revoke", "/oidc/introspect"] {
            let (s, retry, v) = client_call(&srv, http, path, id, secret).await;
            assert_eq!(s, 429, "{path}: {v}");
            assert_eq!(v["error"], "temporarily_unavailable", "{v}");
            assert!(retry.is_some_and(|r| (1..=2).contains(&r)), "{retry:?}");
        }
    }
    // Client a itself is not locked out: its id is public, and the real application (from
    // another address) is served with its secret. Its count is audited below.
    let (s, _, v) = client_call(&srv, &there, "/oidc/introspect", &a.0, &a_secret).await;
    assert_eq!((s, v), (200, json!({"active": false})));
    // Even after more failures for it from elsewhere: those count under that address.
    let (s, _, v) = client_call(&srv, &there, "/oidc/token", &a.0, "wrong").await;
    assert_eq!((s, v["error"].as_str()), (401, Some("invalid_client")));
    let (s, _, v) = client_call(&srv, &there, "/oidc/introspect", &a.0, &a_secret).await;
    assert_eq!((s, v), (200, json!({"active": false})));
    let (s, _, v) = client_call(&srv, &there, "/oidc/introspect", &b.0, &b_secret).await;
    assert_eq!((s, v), (200, json!({"active": false})));

    // Unknown client ids count under the address alone.
    for _ in 0..3 {
        let (s, _, _) = client_call(&srv, &elsewhere, "/oidc/token", "nobody", "x").await;
        assert_eq!(s, 401);
    }
    let (s, _, _) = client_call(&srv, &elsewhere, "/oidc/introspect", &b.0, &b_secret).await;
    assert_eq!(s, 429, "127.0.0.3 is over its limit");

    // After the window, the correct client is served again (polled, not timed: the window
    // is two seconds; give the machine twenty).
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let (s, _, v) = client_call(&srv, &here, "/oidc/introspect", &a.0, &a_secret).await;
        if s == 200 {
            assert_eq!(v, json!({"active": false}));
            break;
        }
        assert_eq!(s, 429, "{v}");
        assert!(Instant::now() < until, "client a still refused after 20 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Counted in /metrics and audited once per limited key and window.
    let metrics = srv
        .client
        .get(format!("{}/metrics", srv.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for endpoint in ["token", "revoke", "introspect"] {
        let line = format!(
            "mamori_oidc_requests_total{{endpoint=\"{endpoint}\",result=\"rate_limited\"}}"
        );
        assert!(metrics.contains(&line), "{line} in {metrics}");
    }
    assert!(
        metrics
            .contains("mamori_oidc_requests_total{endpoint=\"revoke\",result=\"invalid_client\"}"),
        "{metrics}"
    );
    let events = srv
        .audit(&root, "kind=oidc.client_auth_limited&limit=100")
        .await;
    let details: Vec<&str> = events
        .iter()
        .map(|e| e["detail"].as_str().unwrap())
        .collect();
    assert!(details.contains(&"introspect: client a"), "{details:?}");
    assert!(
        details.contains(&"introspect: addr 127.0.0.1"),
        "{details:?}"
    );
    assert!(details.contains(&"token: addr 127.0.0.3"), "{details:?}");
    assert!(
        events.iter().all(|e| e["result"] == "rate_limited"),
        "{events:?}"
    );
    assert_eq!(details.len(), 3, "once per key and window: {details:?}");
    // The secret never reaches the audit log.
    assert!(!format!("{events:?}").contains(&a_secret));

    // The body limit holds at these endpoints too: 413 with an OAuth error, before any
    // client authentication is counted.
    let big = "x".repeat(8192);
    for path in ["/oidc/token", "/oidc/revoke", "/oidc/introspect"] {
        let r = from("127.0.0.4")
            .post(format!("{}{path}", srv.url))
            .basic_auth(&b.0, Some("wrong"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("token={big}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 413, "{path}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"], "invalid_request", "{v}");
    }
    let (s, _, v) = client_call(
        &srv,
        &from("127.0.0.4"),
        "/oidc/introspect",
        &b.0,
        &b_secret,
    )
    .await;
    assert_eq!(
        (s, v),
        (200, json!({"active": false})),
        "oversized requests did not count"
    );
}

/// The review's OpenID checks read the stored clients: rows that registration refuses today
/// (a wildcard, plain http off loopback) are written into the database as an older version or
/// a hand edit would have left them.
#[tokio::test]
async fn review_flags_stored_wildcard_and_plain_http_uris_and_one_factor_clients() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(dir.path(), None, &[]);
    let t = srv.root_session().await;
    let (_, _, root) = srv.enroll(&t, "phone").await;
    let finding = |review: &Value, id: &str| {
        review["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["id"] == id)
            .unwrap_or_else(|| panic!("no {id} in {review}"))
            .clone()
    };
    let ids = [
        "DR-OIDC-REDIRECT-WILDCARD",
        "DR-OIDC-HTTP-REDIRECT",
        "DR-OIDC-ONE-FACTOR",
    ];
    // No clients: not applicable.
    let (_, review) = srv.get("/api/v1/review", Some(&root)).await;
    for id in ids {
        assert_eq!(finding(&review, id)["outcome"], "not_applicable", "{id}");
    }
    // A well-registered client: all three pass.
    create_client(dir.path(), None, &["good", "--redirect-uri", REDIRECT]);
    let (_, review) = srv.get("/api/v1/review", Some(&root)).await;
    for id in ids {
        assert_eq!(finding(&review, id)["outcome"], "pass", "{id}");
    }
    // Registration refuses what the review flags.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mamori-server"))
        .args(["admin", "create-client", "bad", "--redirect-uri"])
        .arg("https://app.example.com/%2A")
        .arg("--data-dir")
        .arg(dir.path())
        .env_remove("MAMORI_CONFIG")
        .output()
        .unwrap();
    assert!(!out.status.success(), "a %2A redirect URI is refused");
    // A one_factor client, and stored URIs that registration would refuse.
    create_client(
        dir.path(),
        None,
        &[
            "legacy",
            "--redirect-uri",
            REDIRECT,
            "--require",
            "one_factor",
        ],
    );
    let db = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        dir.path().join("mamori.db").display()
    ))
    .await
    .unwrap();
    sqlx::query(
        "UPDATE oidc_clients SET redirect_uris = $1, post_logout_redirect_uris = $2 \
         WHERE name = 'legacy'",
    )
    .bind("https://*.example.com/cb\nhttp://wiki.example.com/cb")
    .bind("http://127.0.0.1:9/bye")
    .execute(&db)
    .await
    .unwrap();
    db.close().await;
    let (s, review) = srv.get("/api/v1/review", Some(&root)).await;
    assert_eq!(s, 200, "{review}");
    let w = finding(&review, "DR-OIDC-REDIRECT-WILDCARD");
    assert_eq!(
        (&w["outcome"], &w["severity"]),
        (&json!("fail"), &json!("high"))
    );
    assert_eq!(
        w["affected"],
        json!(["client legacy: https://*.example.com/cb"])
    );
    let h = finding(&review, "DR-OIDC-HTTP-REDIRECT");
    assert_eq!(h["outcome"], "fail", "{h}");
    assert_eq!(
        h["affected"],
        json!(["client legacy: http://wiki.example.com/cb"])
    );
    let o = finding(&review, "DR-OIDC-ONE-FACTOR");
    assert_eq!(
        (&o["outcome"], &o["severity"]),
        (&json!("fail"), &json!("medium"))
    );
    assert_eq!(o["affected"], json!(["client legacy"]));

    // The console's review page, in Japanese: titles and affected lines translated.
    let ja = srv
        .client
        .get(format!("{}/review", srv.url))
        .header("cookie", format!("mamori_session={root}; mamori_lang=ja"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        ja.contains("クライアント legacy: http://wiki.example.com/cb"),
        "{ja}"
    );
    assert!(
        ja.contains("OpenID クライアントが 2 要素目を求めている"),
        "{ja}"
    );
}
