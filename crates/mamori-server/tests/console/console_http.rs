//! The console's protections over plain HTTP against the real binary: security headers on
//! every response, cookie flags (`Secure` except on loopback HTTP), the CSRF token and Origin
//! check on every form post, and error pages that explain without leaking internals.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::console_common::{Server, PASSWORD};
use reqwest::header::{HeaderMap, CONTENT_TYPE, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'";

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

fn set_cookies(h: &HeaderMap) -> Vec<String> {
    h.get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

fn cookie_value(h: &HeaderMap, name: &str) -> Option<String> {
    set_cookies(h).iter().find_map(|c| {
        c.split(';')
            .next()
            .and_then(|kv| kv.split_once('='))
            .filter(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    })
}

fn assert_security_headers(h: &HeaderMap) {
    assert_eq!(h["content-security-policy"], CSP);
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["referrer-policy"], "same-origin");
    assert_eq!(h["x-content-type-options"], "nosniff");
}

/// GET /sign-in: the CSRF cookie value and the token embedded in the form (they are equal).
async fn csrf(srv: &Server, c: &reqwest::Client) -> String {
    let r = c.get(format!("{}/sign-in", srv.url)).send().await.unwrap();
    let token = cookie_value(r.headers(), "mamori_csrf").expect("a CSRF cookie is set");
    let html = r.text().await.unwrap();
    assert!(
        html.contains(&format!("name=\"csrf\" value=\"{token}\"")),
        "the form carries the cookie's token"
    );
    token
}

async fn post_form(
    srv: &Server,
    c: &reqwest::Client,
    path: &str,
    cookie: Option<&str>,
    origin: Option<&str>,
    form: &[(&str, &str)],
) -> (u16, HeaderMap, String) {
    let mut req = c.post(format!("{}{path}", srv.url)).form(form);
    if let Some(ck) = cookie {
        req = req.header("cookie", ck);
    }
    if let Some(o) = origin {
        req = req.header("origin", o);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.text().await.unwrap())
}

#[tokio::test]
async fn every_console_response_has_the_security_headers_and_safe_cookies() {
    let srv = Server::start(&[("MAMORI_REQUIRE_MFA", "root")]);
    let c = client();
    for path in [
        "/sign-in",
        "/troubleshoot-mfa",
        "/setup?token=nope",
        "/users",
        "/",
    ] {
        let r = c.get(format!("{}{path}", srv.url)).send().await.unwrap();
        assert_security_headers(r.headers());
        assert_eq!(r.headers()["cache-control"], "no-store", "{path}");
    }
    let r = c.get(format!("{}/sign-in", srv.url)).send().await.unwrap();
    assert_eq!(r.headers()[CONTENT_TYPE], "text/html; charset=utf-8");
    let cookies = set_cookies(r.headers());
    let csrf_cookie = cookies
        .iter()
        .find(|c| c.starts_with("mamori_csrf="))
        .unwrap();
    assert!(csrf_cookie.contains("HttpOnly") && csrf_cookie.contains("SameSite=Strict"));
    // Plain HTTP on 127.0.0.1: a Secure cookie would be dropped by the browser.
    assert!(!csrf_cookie.contains("Secure"), "{csrf_cookie}");
    let html = r.text().await.unwrap();
    assert!(
        !html.contains("<script"),
        "no script at all on the sign-in page"
    );
    assert!(!html.contains("style="), "no inline style");

    let r = c
        .get(format!("{}/static/console.css", srv.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()[CONTENT_TYPE], "text/css; charset=utf-8");
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");

    // The session cookie from a console sign-in.
    let token = srv.setup_link().split("token=").nth(1).unwrap().to_string();
    let r = c
        .post(format!("{}/api/v1/setup", srv.url))
        .json(&serde_json::json!({"token": token, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let t = csrf(&srv, &c).await;
    let ck = format!("mamori_csrf={t}");
    let (s, h, _) = post_form(
        &srv,
        &c,
        "/sign-in",
        Some(&ck),
        Some(&srv.url),
        &[("csrf", &t), ("user", "root"), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(s, 303);
    assert_eq!(h[LOCATION], "/");
    let session = set_cookies(&h)
        .into_iter()
        .find(|c| c.starts_with("mamori_session="))
        .unwrap();
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Strict"),
        "{session}"
    );
    let value = cookie_value(&h, "mamori_session").unwrap();
    let r = c
        .get(format!("{}/", srv.url))
        .header("cookie", format!("mamori_session={value}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_security_headers(r.headers());
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("Your root account has no MFA."));
}

#[tokio::test]
async fn cookies_are_secure_when_the_public_url_is_not_loopback_http() {
    let srv = Server::start(&[("MAMORI_PUBLIC_URL", "https://mfa.example.com")]);
    let c = client();
    let r = c.get(format!("{}/sign-in", srv.url)).send().await.unwrap();
    let cookies = set_cookies(r.headers());
    assert!(
        cookies.iter().all(|c| c.contains("; Secure")),
        "{cookies:?}"
    );
    // The public origin is accepted on form posts.
    let t = cookie_value(r.headers(), "mamori_csrf").unwrap();
    let (s, _, html) = post_form(
        &srv,
        &c,
        "/lang",
        Some(&format!("mamori_csrf={t}")),
        Some("https://mfa.example.com"),
        &[("csrf", &t), ("lang", "ja"), ("next", "/sign-in")],
    )
    .await;
    assert_eq!(s, 303, "{html}");
}

#[tokio::test]
async fn form_posts_without_the_right_csrf_token_or_from_another_origin_are_refused() {
    let srv = Server::start(&[("MAMORI_REQUIRE_MFA", "root")]);
    let c = client();
    let t = csrf(&srv, &c).await;
    let ck = format!("mamori_csrf={t}");
    let creds = [("user", "root"), ("password", "wrong-password-1")];
    let with = |token: &'static str| {
        let mut f = vec![("csrf", token)];
        f.extend_from_slice(&creds);
        f
    };

    // No token, no cookie, a different token, a token of the right shape but another
    // browser's: all refused with the explanation and nothing else.
    let (s, h, html) = post_form(&srv, &c, "/sign-in", None, None, &creds).await;
    assert_eq!(s, 403);
    assert_security_headers(&h);
    assert!(html.contains("This form is out of date or did not come from this site."));
    assert!(html.contains("Reload the page and submit the form again."));
    let other = "A".repeat(43);
    let (s, _, _) = post_form(&srv, &c, "/sign-in", Some(&ck), None, &with("wrong")).await;
    assert_eq!(s, 403);
    let (s, _, _) = post_form(
        &srv,
        &c,
        "/sign-in",
        Some(&ck),
        None,
        &[("csrf", &other), ("user", "root"), ("password", "x")],
    )
    .await;
    assert_eq!(s, 403);
    let (s, _, _) = post_form(
        &srv,
        &c,
        "/sign-in",
        None,
        None,
        &[("csrf", &t), ("user", "root"), ("password", "x")],
    )
    .await;
    assert_eq!(s, 403, "a token without its cookie");

    // The right token from another origin (or an opaque one) is refused too.
    let good = [
        ("csrf", t.as_str()),
        ("user", "root"),
        ("password", "wrong-password-1"),
    ];
    for origin in ["http://evil.example", "null"] {
        let (s, _, _) = post_form(&srv, &c, "/sign-in", Some(&ck), Some(origin), &good).await;
        assert_eq!(s, 403, "{origin}");
    }
    // The right token from this origin gets through to the sign-in rules.
    let (s, h, html) = post_form(&srv, &c, "/sign-in", Some(&ck), Some(&srv.url), &good).await;
    assert_eq!(s, 401, "{html}");
    assert_security_headers(&h);
    assert!(html.contains("The user name or password is wrong."));

    // Every state-changing route is covered, also for signed-in pages.
    for path in [
        "/sign-out",
        "/lang",
        "/security/password",
        "/users",
        "/app-keys",
        // #17 the OpenID clients' page
        "/oidc-clients",
        "/oidc-clients/app/secret",
        "/oidc-clients/app/delete",
    ] {
        let (s, _, _) = post_form(&srv, &c, path, Some(&ck), None, &[("x", "y")]).await;
        assert_eq!(s, 403, "{path}");
    }
    // An oversized form is refused before any handler runs.
    let big = "x".repeat(32 * 1024);
    let (s, _, html) = post_form(
        &srv,
        &c,
        "/sign-in",
        Some(&ck),
        None,
        &[("csrf", &t), ("user", &big)],
    )
    .await;
    assert_eq!(s, 400, "{html}");
}

#[tokio::test]
async fn error_pages_say_what_happened_and_what_to_do_in_the_visitors_language() {
    let srv = Server::start(&[("MAMORI_REQUIRE_MFA", "root")]);
    let c = client();
    let r = c
        .get(format!("{}/setup?token=bogus", srv.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_security_headers(r.headers());
    let html = r.text().await.unwrap();
    assert!(html.contains("This setup link is unknown, already used or expired."));
    assert!(html.contains("Ask an administrator for a new setup link."));
    assert!(!html.to_lowercase().contains("database") && !html.contains("Error("));

    let r = c
        .get(format!("{}/setup?token=bogus", srv.url))
        .header("accept-language", "ja-JP,ja;q=0.9")
        .send()
        .await
        .unwrap();
    let html = r.text().await.unwrap();
    assert!(html.contains("<html lang=\"ja\">"));
    assert!(html.contains("このセットアップリンクは不明、使用済み、または期限切れです。"));

    // Unknown pages: the console's 404 page; unknown API paths keep the API's JSON error.
    let r = c
        .get(format!("{}/no-such-page", srv.url))
        .header("accept-language", "ja")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_security_headers(r.headers());
    assert!(r.text().await.unwrap().contains("ここには何もありません。"));
    for method in [reqwest::Method::GET, reqwest::Method::POST] {
        let r = c
            .request(method.clone(), format!("{}/api/v1/no-such-thing", srv.url))
            .json(&serde_json::json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{method}");
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], "not_found", "{method}");
    }

    // Pages that need a session send the visitor to sign in.
    for path in ["/", "/security", "/users/root", "/audit"] {
        let r = c.get(format!("{}{path}", srv.url)).send().await.unwrap();
        assert_eq!(r.status(), 303, "{path}");
        assert_eq!(r.headers()[LOCATION], "/sign-in", "{path}");
    }
    // The MFA page without a pending sign-in starts over.
    let r = c
        .get(format!("{}/sign-in/mfa", srv.url))
        .header("cookie", "mamori_challenge=forged")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let html = r.text().await.unwrap();
    assert!(html.contains("Sign in again with your password."), "{html}");
}

#[tokio::test]
async fn the_audit_viewer_filters_by_account_kind_and_time() {
    // No MFA required: a password-only session is a full one (with the alert).
    let srv = Server::start(&[("MAMORI_REQUIRE_MFA", "none")]);
    let c = client();
    let token = srv.setup_link().split("token=").nth(1).unwrap().to_string();
    let r = c
        .post(format!("{}/api/v1/setup", srv.url))
        .json(&serde_json::json!({"token": token, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let t = csrf(&srv, &c).await;
    let ck = format!("mamori_csrf={t}");
    let (s, h, _) = post_form(
        &srv,
        &c,
        "/sign-in",
        Some(&ck),
        None,
        &[("csrf", &t), ("user", "root"), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(s, 303);
    // The audit viewer's filters over every account are for an administrator with MFA
    // (#15): root enrolls a device through the API with this session first.
    let password_only = cookie_value(&h, "mamori_session").unwrap();
    let session = format!(
        "mamori_session={}",
        enroll_over_api(&srv, &password_only).await
    );
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    let today = time::OffsetDateTime::now_utc().date();
    let day = |d: time::Date| d.format(&fmt).unwrap();
    let (yesterday, tomorrow) = (
        day(today.previous_day().unwrap()),
        day(today.next_day().unwrap()),
    );
    // account.create, setup_link, setup, sign_in.password, mfa.create, mfa.enable so far.
    let all = audit_rows(&srv, &c, &session, "").await;
    assert!(all >= 4, "{all}");
    assert_eq!(audit_rows(&srv, &c, &session, "kind=sign_in.").await, 1);
    assert_eq!(audit_rows(&srv, &c, &session, "account=nobody").await, 0);
    let today_only = format!("from={}&to={}", day(today), day(today));
    assert_eq!(audit_rows(&srv, &c, &session, &today_only).await, all);
    let before = format!("to={yesterday}");
    assert_eq!(audit_rows(&srv, &c, &session, &before).await, 0);
    let after = format!("from={tomorrow}");
    assert_eq!(audit_rows(&srv, &c, &session, &after).await, 0);
    // An unreadable date filters nothing and says so.
    assert_eq!(audit_rows(&srv, &c, &session, "from=yesterday").await, all);
}

/// The number of rows the audit viewer shows for a query.
async fn audit_rows(srv: &Server, c: &reqwest::Client, session: &str, q: &str) -> usize {
    let r = c
        .get(format!("{}/audit?{q}", srv.url))
        .header("cookie", session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    if q.contains("yesterday") {
        assert!(html.contains("Dates are YYYY-MM-DD."), "{html}");
    }
    // One <tr> is the header row.
    html.matches("<tr>").count() - 1
}

#[tokio::test]
async fn resync_and_password_change_forms() {
    let srv = Server::start(&[("MAMORI_REQUIRE_MFA", "root")]);
    let c = client();
    // Root enrolls over the API; its full session token is also the console's cookie value.
    let api = |path: &str| format!("{}{path}", srv.url);
    let token = srv.setup_link().split("token=").nth(1).unwrap().to_string();
    let r = c
        .post(api("/api/v1/setup"))
        .json(&serde_json::json!({"token": token, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = c
        .post(api("/api/v1/sign-in"))
        .json(&serde_json::json!({"user": "root", "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let restricted = v["token"].as_str().unwrap().to_string();
    let v: serde_json::Value = c
        .post(api("/api/v1/mfa-devices/virtual"))
        .bearer_auth(&restricted)
        .json(&serde_json::json!({"name": "phone"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = v["id"].as_str().unwrap().to_string();
    let secret = mamori_otp::Secret::from_base32(v["secret_base32"].as_str().unwrap()).unwrap();
    let t = crate::console_common::now();
    let code = |at: u64| crate::console_common::code(&secret, at);
    let v: serde_json::Value = c
        .post(api(&format!("/api/v1/mfa-devices/{id}/enable")))
        .bearer_auth(&restricted)
        .json(&serde_json::json!({"code1": code(t - 30), "code2": code(t)}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let full = v["token"].as_str().unwrap().to_string();
    let t_csrf = csrf(&srv, &c).await;
    let cookies = format!("mamori_csrf={t_csrf}; mamori_session={full}");

    let r = c
        .get(api(&format!("/security/mfa/{id}/resync")))
        .header("cookie", &cookies)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let path = format!("/security/mfa/{id}/resync");
    // Valid but not consecutive: its own message.
    let (s, _, html) = post_form(
        &srv,
        &c,
        &path,
        Some(&cookies),
        None,
        &[
            ("csrf", &t_csrf),
            ("code1", &code(t + 30)),
            ("code2", &code(t + 90)),
        ],
    )
    .await;
    assert_eq!(s, 400);
    assert!(html.contains("not consecutive"), "{html}");
    // The two steps after the last used one.
    let (s, h, html) = post_form(
        &srv,
        &c,
        &path,
        Some(&cookies),
        None,
        &[
            ("csrf", &t_csrf),
            ("code1", &code(t + 30)),
            ("code2", &code(t + 60)),
        ],
    )
    .await;
    assert_eq!(s, 303, "{html}");
    assert_eq!(h[LOCATION], "/security?done=mfa_resynced");

    // Password change: a wrong current password, a mismatch, then success.
    let new_pw = "harbor-quartz-meadow-77";
    for (current, new, confirm, msg) in [
        (
            "wrong-password-123",
            new_pw,
            new_pw,
            "The current password is wrong.",
        ),
        (
            PASSWORD,
            new_pw,
            "something-else-99",
            "The two passwords are not the same.",
        ),
        (
            PASSWORD,
            "password1234",
            "password1234",
            "too short. Use at least 15 characters",
        ),
        (
            PASSWORD,
            "thisismypassword",
            "thisismypassword",
            "among the most common breached passwords",
        ),
        (
            PASSWORD,
            "i-am-root-and-proud-of-it",
            "i-am-root-and-proud-of-it",
            "must not contain your user name",
        ),
    ] {
        let (s, _, html) = post_form(
            &srv,
            &c,
            "/security/password",
            Some(&cookies),
            None,
            &[
                ("csrf", &t_csrf),
                ("current", current),
                ("new", new),
                ("confirm", confirm),
            ],
        )
        .await;
        assert_eq!(s, 400);
        assert!(html.contains(msg), "{msg}: {html}");
    }
    let (s, h, _) = post_form(
        &srv,
        &c,
        "/security/password",
        Some(&cookies),
        None,
        &[
            ("csrf", &t_csrf),
            ("current", PASSWORD),
            ("new", new_pw),
            ("confirm", new_pw),
        ],
    )
    .await;
    assert_eq!(s, 303);
    assert_eq!(h[LOCATION], "/security?done=password");
    let r = c
        .post(api("/api/v1/sign-in"))
        .json(&serde_json::json!({"user": "root", "password": new_pw}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the new password works");
}

/// Enrolls a virtual device for the session `token` over the API; returns the new session token.
async fn enroll_over_api(srv: &Server, token: &str) -> String {
    let c = client();
    let v: serde_json::Value = c
        .post(format!("{}/api/v1/mfa-devices/virtual", srv.url))
        .bearer_auth(token)
        .json(&serde_json::json!({"name": "phone"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let secret = mamori_otp::Secret::from_base32(v["secret_base32"].as_str().unwrap()).unwrap();
    let t = crate::console_common::now();
    let v: serde_json::Value = c
        .post(format!(
            "{}/api/v1/mfa-devices/{}/enable",
            srv.url,
            v["id"].as_str().unwrap()
        ))
        .bearer_auth(token)
        .json(&serde_json::json!({
            "code1": crate::console_common::code(&secret, t - 30),
            "code2": crate::console_common::code(&secret, t),
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["token"].as_str().unwrap_or(token).to_string()
}
