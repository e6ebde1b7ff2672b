//! #17: administrators register and manage OpenID clients over the API
//! (`/api/v1/oidc/clients`) and the console (`/oidc-clients`), and a client registered that
//! way works for a real relying party (authlib, `oidc_rp.py`): created, its secret rotated
//! (the old one refused), deleted (unknown from then on). Refused input changes nothing;
//! every change is audited with the administrator as actor; a secret is never listed.
//! Registering and rotating need a second factor from the last 5 minutes: a stale session is
//! refused (and audited) over the API, and the console asks for a code.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use serde_json::{json, Value};

use super::common::{code, console_request, csrf_cookie, now, Backend};
use super::oidc::{provider, rp, Provider, REDIRECT};

/// The clients as the API lists them (root's session).
async fn listed(p: &Provider) -> Vec<Value> {
    let (s, v) = p.srv.get("/api/v1/oidc/clients", Some(&p.root)).await;
    assert_eq!(s, 200, "{v}");
    v.as_array().unwrap().clone()
}

fn names(list: &[Value]) -> Vec<&str> {
    list.iter().map(|c| c["name"].as_str().unwrap()).collect()
}

/// The audit events of `kind` (newest first).
async fn events(p: &Provider, kind: &str) -> Vec<Value> {
    p.srv
        .audit(&p.root, &format!("kind={kind}&limit=1000"))
        .await
        .into_iter()
        .filter(|e| e["kind"] == kind)
        .collect()
}

async fn api_lifecycle(backend: Backend) {
    let p = provider(&backend).await;
    let body = json!({
        "name": "grafana",
        "redirect_uris": [REDIRECT],
        "trusted": true,
        "allowed_users": ["alice"],
    });
    let (s, v) = p
        .srv
        .post("/api/v1/oidc/clients", Some(&p.root), body.clone())
        .await;
    assert_eq!(s, 201, "{v}");
    let id = v["client"]["client_id"].as_str().unwrap().to_string();
    let secret = v["client_secret"].as_str().unwrap().to_string();
    assert_eq!(v["client"]["public"], false);
    assert_eq!(v["client"]["require"], "two_factor");
    assert_eq!(v["client"]["alg"], "ES256");
    assert_eq!(v["client"]["allowed_users"], json!(["alice"]));

    // Refused input: one clear error each, and nothing stored or changed.
    let bad = [
        (
            json!({"name": "x1", "redirect_uris": ["http://app.example/cb"]}),
            400,
            "invalid_input",
        ),
        (
            json!({"name": "x2", "redirect_uris": ["https://app.example/cb#frag"]}),
            400,
            "invalid_input",
        ),
        (
            json!({"name": "x3", "redirect_uris": []}),
            400,
            "invalid_input",
        ),
        (
            json!({"name": "x4", "redirect_uris": [REDIRECT], "alg": "HS256"}),
            400,
            "invalid_input",
        ),
        (
            json!({"name": "x5", "redirect_uris": [REDIRECT], "require": "maybe"}),
            400,
            "invalid_input",
        ),
        (
            json!({"name": "x6", "redirect_uris": [REDIRECT], "allowed_groups": ["Not A Group"]}),
            400,
            "invalid_input",
        ),
        (
            json!({"name": "bad name!", "redirect_uris": [REDIRECT]}),
            400,
            "invalid_input",
        ),
        (
            json!({"name": "x7", "redirect_uris": [REDIRECT], "secret": "mine"}),
            400,
            "malformed_request",
        ),
        (body.clone(), 409, "conflict"),
    ];
    for (b, status, code) in &bad {
        let (s, v) = p
            .srv
            .post("/api/v1/oidc/clients", Some(&p.root), b.clone())
            .await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (*status, Some(*code)),
            "{b}: {v}"
        );
    }
    let list = listed(&p).await;
    assert_eq!(names(&list), ["grafana"]);
    assert_eq!(list[0]["client_id"], id.as_str());
    assert_eq!(list[0]["updated_at"], list[0]["created_at"]);
    // Never the secret, nor anything like its hash.
    let text = list[0].to_string();
    assert!(
        !text.contains(&secret) && !text.contains("secret"),
        "{text}"
    );
    assert_eq!(events(&p, "oidc.client_create").await.len(), 1);

    // The registered client works for a real relying party.
    let r = rp("flow", &p.cfg(&(id.clone(), Some(secret.clone()))));
    assert_eq!(r["has_code"], true, "{r}");
    assert_eq!(r["claims"]["aud"], id.as_str(), "{r}");
    assert_eq!(r["reuse_error"], "invalid_grant", "{r}");

    // Rotation: the old secret is refused at once, the new one works.
    let (s, v) = p
        .srv
        .post(
            "/api/v1/oidc/clients/grafana/secret",
            Some(&p.root),
            json!({}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let new = v["client_secret"].as_str().unwrap().to_string();
    assert_ne!(new, secret);
    assert_eq!(v["client"]["client_id"], id.as_str());
    let r = rp("wrong_secret", &p.cfg(&(id.clone(), Some(secret.clone()))));
    assert_eq!(r["error"], "invalid_client", "{r}");
    let r = rp("flow", &p.cfg(&(id.clone(), Some(new.clone()))));
    assert_eq!(r["has_code"], true, "{r}");
    let text = serde_json::to_string(&listed(&p).await).unwrap();
    assert!(!text.contains(&new), "{text}");

    // A public client: no secret, none to rotate.
    let (s, v) = p
        .srv
        .post(
            "/api/v1/oidc/clients",
            Some(&p.root),
            json!({"name": "cli", "redirect_uris": [REDIRECT], "public": true, "trusted": true,
                   "alg": "RS256", "require": "one_factor"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    assert!(v.get("client_secret").is_none(), "{v}");
    assert_eq!(v["client"]["public"], true);
    let cli = v["client"]["client_id"].as_str().unwrap().to_string();
    let r = rp("flow", &p.cfg(&(cli, None)));
    assert_eq!(r["header"]["alg"], "RS256", "{r}");
    let (s, v) = p
        .srv
        .post("/api/v1/oidc/clients/cli/secret", Some(&p.root), json!({}))
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("invalid_input")),
        "{v}"
    );
    let (s, v) = p
        .srv
        .post(
            "/api/v1/oidc/clients/nobody/secret",
            Some(&p.root),
            json!({}),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (404, Some("not_found")),
        "{v}"
    );

    // Only administrators (alice is an ordinary user with MFA); the refusal changes nothing.
    let (s, v) = p.srv.get("/api/v1/oidc/clients", Some(&p.alice)).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (403, Some("forbidden")),
        "{v}"
    );
    let (s, _) = p
        .srv
        .post(
            "/api/v1/oidc/clients",
            Some(&p.alice),
            json!({"name": "mine", "redirect_uris": [REDIRECT]}),
        )
        .await;
    assert_eq!(s, 403);
    let (s, _, _) = p
        .srv
        .call(
            "DELETE",
            "/api/v1/oidc/clients/grafana",
            Some(&p.alice),
            None,
        )
        .await;
    assert_eq!(s, 403);
    let (s, _) = p.srv.get("/api/v1/oidc/clients", None).await;
    assert_eq!(s, 401);
    assert_eq!(names(&listed(&p).await), ["cli", "grafana"]);

    // Deletion: the client is unknown from then on (an error page, never a redirect).
    let (s, _, v) = p
        .srv
        .call(
            "DELETE",
            "/api/v1/oidc/clients/grafana",
            Some(&p.root),
            None,
        )
        .await;
    assert_eq!(s, 204, "{v}");
    let r = rp("wrong_redirect", &p.cfg(&(id.clone(), None)));
    assert_eq!(r["status"], 400, "{r}");
    let r = rp("wrong_secret", &p.cfg(&(id, Some(new))));
    assert_eq!(r["status"], 401, "{r}");
    assert_eq!(r["body"]["error"], "invalid_client", "{r}");
    assert_eq!(names(&listed(&p).await), ["cli"]);
    let (s, _, v) = p
        .srv
        .call(
            "DELETE",
            "/api/v1/oidc/clients/grafana",
            Some(&p.root),
            None,
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (404, Some("not_found")),
        "{v}"
    );

    // Audited with the administrator as actor.
    for kind in [
        "oidc.client_create",
        "oidc.client_secret",
        "oidc.client_delete",
    ] {
        let ev = events(&p, kind).await;
        assert!(!ev.is_empty(), "{kind}");
        for e in ev {
            assert_eq!(e["actor"], "root", "{e}");
            assert_eq!(e["result"], "success", "{e}");
        }
    }
    // The OpenAPI document lists the routes.
    let (_, api) = p.srv.get("/api/v1/openapi.json", None).await;
    assert!(api["paths"]["/api/v1/oidc/clients"]["post"].is_object());
    assert!(api["paths"]["/api/v1/oidc/clients/{name}"]["delete"].is_object());
}

#[tokio::test]
async fn api_registers_rotates_and_deletes_clients_sqlite() {
    api_lifecycle(Backend::Sqlite).await;
}

#[tokio::test]
async fn api_registers_rotates_and_deletes_clients_postgres() {
    api_lifecycle(Backend::postgres().await).await;
}

/// A console request with the session cookie, from the server's own origin.
async fn console(
    p: &Provider,
    session: &str,
    path: &str,
    form: Option<&[(&str, &str)]>,
) -> (u16, String) {
    console_request(&p.srv, &p.srv.url, session, path, form).await
}

/// The text of the element with `id` (`<code id="…">TEXT</code>`).
fn element(page: &str, id: &str) -> Option<String> {
    let start = page.find(&format!("id=\"{id}\">"))? + id.len() + 6;
    let end = page[start..].find('<')?;
    Some(page[start..start + end].to_string())
}

#[tokio::test]
async fn console_page_registers_shows_the_secret_once_rotates_and_deletes() {
    let p = provider(&Backend::Sqlite).await;
    let (s, page) = console(&p, &p.root, "/oidc-clients", None).await;
    assert_eq!(s, 200, "{page}");
    assert!(page.contains("id=\"create-client-form\""));
    assert!(
        page.contains("href=\"/oidc-clients\""),
        "linked from the navigation"
    );

    let form: &[(&str, &str)] = &[
        ("name", "wiki"),
        (
            "redirect_uris",
            &format!("{REDIRECT}\r\nhttps://wiki.example/cb\r\n"),
        ),
        ("post_logout_redirect_uris", ""),
        ("trusted", "1"),
        ("require", "two_factor"),
        ("allowed_users", "alice, root"),
        ("allowed_groups", ""),
        ("alg", "ES256"),
    ];
    let (s, page) = console(&p, &p.root, "/oidc-clients", Some(form)).await;
    assert_eq!(s, 201, "{page}");
    let id = element(&page, "client-id").unwrap();
    let secret = element(&page, "client-secret").unwrap();
    let list = listed(&p).await;
    assert_eq!(
        list[0]["redirect_uris"],
        json!([REDIRECT, "https://wiki.example/cb"])
    );
    assert_eq!(list[0]["allowed_users"], json!(["alice", "root"]));
    assert_eq!(list[0]["trusted"], true);
    let r = rp("flow", &p.cfg(&(id.clone(), Some(secret.clone()))));
    assert_eq!(r["has_code"], true, "{r}");
    // Shown once: the list page shows the client, not its secret.
    let (s, page) = console(&p, &p.root, "/oidc-clients", None).await;
    assert_eq!(s, 200);
    assert!(
        page.contains(&id) && page.contains("wiki.example"),
        "{page}"
    );
    assert!(!page.contains(&secret));

    // Refused input: the form again with its error and the typed values; nothing stored.
    let bad: &[(&str, &str)] = &[
        ("name", "other"),
        ("redirect_uris", "http://other.example/cb"),
        ("require", "two_factor"),
        ("alg", "ES256"),
    ];
    let (s, page) = console(&p, &p.root, "/oidc-clients", Some(bad)).await;
    assert_eq!(s, 400, "{page}");
    assert!(page.contains("id=\"error\""), "{page}");
    assert!(page.contains("Check the redirect URIs"), "{page}");
    assert!(page.contains("http://other.example/cb"), "kept: {page}");
    let (s, page) = console(&p, &p.root, "/oidc-clients", Some(form)).await;
    assert_eq!(s, 400, "a taken name: {page}");
    assert!(
        page.contains("A client with this name already exists."),
        "{page}"
    );
    assert_eq!(names(&listed(&p).await), ["wiki"]);

    // Without the CSRF token (or with another one): refused, nothing stored.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = client
        .get(format!("{}/sign-in", p.srv.url))
        .send()
        .await
        .unwrap();
    let csrf = csrf_cookie(resp.headers());
    for sent in ["", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"] {
        let resp = client
            .post(format!("{}/oidc-clients", p.srv.url))
            .header(
                "cookie",
                format!("mamori_session={}; mamori_csrf={csrf}", p.root),
            )
            .header("origin", &p.srv.url)
            .form(&[
                ("csrf", sent),
                ("name", "forged"),
                ("redirect_uris", REDIRECT),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 403, "csrf {sent:?}");
    }
    assert_eq!(names(&listed(&p).await), ["wiki"]);

    // Only administrators.
    let (s, _) = console(&p, &p.alice, "/oidc-clients", None).await;
    assert_eq!(s, 403);
    let (s, _) = console(&p, &p.alice, "/oidc-clients", Some(form)).await;
    assert_eq!(s, 403);
    let (s, _) = console(&p, &p.alice, "/oidc-clients/wiki/delete", Some(&[])).await;
    assert_eq!(s, 403);
    assert_eq!(names(&listed(&p).await), ["wiki"]);

    // A new secret: asked first, then shown once; the old one is refused.
    let (s, page) = console(&p, &p.root, "/oidc-clients/wiki/secret", None).await;
    assert_eq!(s, 200, "{page}");
    assert!(
        page.contains("action=\"/oidc-clients/wiki/secret\""),
        "{page}"
    );
    let (s, page) = console(&p, &p.root, "/oidc-clients/wiki/secret", Some(&[])).await;
    assert_eq!(s, 200, "{page}");
    let new = element(&page, "client-secret").unwrap();
    assert_ne!(new, secret);
    let r = rp("wrong_secret", &p.cfg(&(id.clone(), Some(secret))));
    assert_eq!(r["error"], "invalid_client", "{r}");
    let r = rp("flow", &p.cfg(&(id.clone(), Some(new))));
    assert_eq!(r["has_code"], true, "{r}");

    // Deletion: a confirmation page, then gone.
    let (s, page) = console(&p, &p.root, "/oidc-clients/wiki/delete", None).await;
    assert_eq!(s, 200, "{page}");
    assert!(
        page.contains("action=\"/oidc-clients/wiki/delete\""),
        "{page}"
    );
    let (s, _) = console(&p, &p.root, "/oidc-clients/wiki/delete", Some(&[])).await;
    assert_eq!(s, 303);
    assert!(listed(&p).await.is_empty());
    let r = rp("wrong_redirect", &p.cfg(&(id, None)));
    assert_eq!(r["status"], 400, "{r}");
    let (s, _) = console(&p, &p.root, "/oidc-clients/wiki/delete", None).await;
    assert_eq!(s, 404);

    // Audited with the administrator as actor.
    for kind in [
        "oidc.client_create",
        "oidc.client_secret",
        "oidc.client_delete",
    ] {
        let ev = events(&p, kind).await;
        assert_eq!(ev.len(), 1, "{kind}: {ev:?}");
        assert_eq!(ev[0]["actor"], "root", "{kind}");
    }
}

/// Moves root's second factor `secs` in time: -600 makes every root session's 10 minutes old
/// (older than the 5 minutes registering, rotating and deleting need), +600 undoes it.
async fn shift_root_factor(p: &Provider, database: Option<&str>, secs: i64) {
    use sqlx::Connection;
    let q = format!(
        "UPDATE sessions SET second_factor_at = second_factor_at + {secs} \
         WHERE second_factor_at IS NOT NULL \
         AND account_id = (SELECT id FROM accounts WHERE name = 'root')"
    );
    let done = match database {
        Some(url) => {
            let mut c = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::query(&q)
                .execute(&mut c)
                .await
                .unwrap()
                .rows_affected()
        }
        None => {
            let url = format!("sqlite://{}", p.srv.data_dir.join("mamori.db").display());
            let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
            sqlx::query(&q)
                .execute(&mut c)
                .await
                .unwrap()
                .rows_affected()
        }
    };
    assert!(done > 0);
}

/// The console's registration form for "wiki", with the administrator's `code`.
fn wiki_form(code: &str) -> [(&str, &str); 5] {
    [
        ("name", "wiki"),
        ("redirect_uris", REDIRECT),
        ("require", "two_factor"),
        ("alg", "ES256"),
        ("code", code),
    ]
}

/// The refusals of a stale session, audited under `kind` with root as actor.
async fn refused(p: &Provider, kind: &str) -> Vec<Value> {
    events(p, kind)
        .await
        .into_iter()
        .filter(|e| e["result"] == "recent_factor_required")
        .collect()
}

/// A stolen, stale administrator session must not register a (trusted) client nor take one
/// over by replacing its secret: over the API it is refused, audited, and nothing is stored or
/// changed; on the console the form asks for a code, and with the code the action proceeds.
async fn stale_session(backend: Backend) {
    let p = provider(&backend).await;
    // A second device for root, so that the console can be given two codes in a row (a device
    // takes each time step's code once).
    let (_, second, _) = p.srv.enroll(&p.root, "second").await;
    let (s, v) = p
        .srv
        .post(
            "/api/v1/oidc/clients",
            Some(&p.root),
            json!({"name": "grafana", "redirect_uris": [REDIRECT], "trusted": true}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let id = v["client"]["client_id"].as_str().unwrap().to_string();
    let secret = v["client_secret"].as_str().unwrap().to_string();

    shift_root_factor(&p, backend.url(), -600).await;
    let (s, v) = p
        .srv
        .post(
            "/api/v1/oidc/clients",
            Some(&p.root),
            json!({"name": "evil", "redirect_uris": ["https://evil.example/cb"],
                   "trusted": true}),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (403, Some("recent_second_factor_required")),
        "{v}"
    );
    let (s, v) = p
        .srv
        .post(
            "/api/v1/oidc/clients/grafana/secret",
            Some(&p.root),
            json!({}),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (403, Some("recent_second_factor_required")),
        "{v}"
    );
    assert!(v.get("client_secret").is_none(), "{v}");
    // Nothing stored, nothing changed: the old secret still works.
    let list = listed(&p).await;
    assert_eq!(names(&list), ["grafana"]);
    assert_eq!(list[0]["updated_at"], list[0]["created_at"]);
    let r = rp("flow", &p.cfg(&(id.clone(), Some(secret.clone()))));
    assert_eq!(r["has_code"], true, "{r}");
    // Audited with the administrator as actor and the client's name.
    for (kind, detail) in [
        ("oidc.client_create", "evil"),
        ("oidc.client_secret", "grafana"),
    ] {
        let ev = refused(&p, kind).await;
        assert_eq!(ev.len(), 1, "{kind}: {ev:?}");
        assert_eq!(ev[0]["actor"], "root", "{kind}");
        assert_eq!(ev[0]["detail"], detail, "{kind}");
    }
    assert_eq!(events(&p, "oidc.client_create").await.len(), 2);
    assert_eq!(events(&p, "oidc.client_secret").await.len(), 1);

    // The console: the registration form asks for a code; without it, the form again (with
    // what was typed) and nothing stored; with it, the client is registered.
    let (s, page) = console(&p, &p.root, "/oidc-clients", None).await;
    assert_eq!(s, 200, "{page}");
    assert!(page.contains("id=\"code\""), "asks for a code: {page}");
    let (s, page) = console(&p, &p.root, "/oidc-clients", Some(&wiki_form(""))).await;
    assert_eq!(s, 400, "{page}");
    assert!(page.contains("id=\"code\""), "{page}");
    assert!(page.contains("value=\"wiki\""), "kept: {page}");
    assert!(element(&page, "client-secret").is_none());
    assert_eq!(names(&listed(&p).await), ["grafana"]);
    let c = code(&p.root_secret, now() + 30);
    let (s, page) = console(&p, &p.root, "/oidc-clients", Some(&wiki_form(&c))).await;
    assert_eq!(s, 201, "{page}");
    assert!(element(&page, "client-secret").is_some(), "{page}");
    assert_eq!(names(&listed(&p).await), ["grafana", "wiki"]);

    // The new-secret confirmation asks for a code too (stale again); with it, the new secret.
    shift_root_factor(&p, backend.url(), -600).await;
    let (s, page) = console(&p, &p.root, "/oidc-clients/grafana/secret", None).await;
    assert_eq!(s, 200, "{page}");
    assert!(page.contains("id=\"code\""), "asks for a code: {page}");
    let path = "/oidc-clients/grafana/secret";
    let (s, page) = console(&p, &p.root, path, Some(&[("code", "")])).await;
    assert_eq!(s, 400, "{page}");
    assert!(page.contains("id=\"code\""), "{page}");
    assert!(element(&page, "client-secret").is_none());
    let r = rp("flow", &p.cfg(&(id.clone(), Some(secret.clone()))));
    assert_eq!(r["has_code"], true, "still the old secret: {r}");
    let c = code(&second, now() + 30);
    let (s, page) = console(&p, &p.root, path, Some(&[("code", &c)])).await;
    assert_eq!(s, 200, "{page}");
    let new = element(&page, "client-secret").unwrap();
    let r = rp("wrong_secret", &p.cfg(&(id.clone(), Some(secret))));
    assert_eq!(r["error"], "invalid_client", "{r}");
    let r = rp("flow", &p.cfg(&(id, Some(new))));
    assert_eq!(r["has_code"], true, "{r}");
    assert_eq!(refused(&p, "oidc.client_create").await.len(), 2);
    assert_eq!(refused(&p, "oidc.client_secret").await.len(), 2);
}

#[tokio::test]
async fn a_stale_session_cannot_register_or_rotate_without_a_code_sqlite() {
    stale_session(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_stale_session_cannot_register_or_rotate_without_a_code_postgres() {
    stale_session(Backend::postgres().await).await;
}
