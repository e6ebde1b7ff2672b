//! Forward authentication (issue #18) over real HTTP on both backends: account groups through
//! the admin API, the endpoint's two conventions (nginx's `X-Original-URL` with 401, Caddy's
//! and Traefik's `X-Forwarded-*` with 302), every policy, the console's `/sso` round trip
//! (password + TOTP, then the single-sign-on cookie scoped to the parent domain), refused
//! return addresses and sign-out. The real proxies in front: `forward_auth_proxies.rs`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::SocketAddr;

use serde_json::json;

use super::common::{code, now, Backend, Server, PASSWORD};

/// A free loopback port (the configuration names the server's public URL before it starts).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The rules every forward-auth test uses: `app1`/`app2.DOMAIN` behind the proxies, where
/// DOMAIN is `mamori.test`, or `mamori.localhost` for the browser test (Chromium resolves it to
/// loopback and treats it as a secure context).
pub fn config_for(public_url: &str, domain: &str) -> String {
    let rules = format!(
        r#"public_url = "{public_url}"

[forward_auth]
cookie_domain = "mamori.test"

[[forward_auth.rules]]
host = "app1.mamori.test"
path = "/public"
policy = "bypass"

[[forward_auth.rules]]
host = "app1.mamori.test"
path_regex = "^/admin(/|$)"
groups = ["ops"]
policy = "two_factor"
max_age = 3600

[[forward_auth.rules]]
host = "app1.mamori.test"
path_regex = "^/admin(/|$)"
policy = "deny"

[[forward_auth.rules]]
host = "app1.mamori.test"
path = "/key"
policy = "phishing_resistant"

[[forward_auth.rules]]
host = "app1.mamori.test"
path = "/wiki"
methods = ["GET", "HEAD"]
policy = "one_factor"

[[forward_auth.rules]]
host = "app1.mamori.test"
path = "/denied"
policy = "deny"

[[forward_auth.rules]]
host = "*.mamori.test"
policy = "two_factor"
"#
    );
    rules.replace("mamori.test", domain)
}

/// A server with the forward-auth rules, its public URL on `auth.mamori.test`.
pub struct Fwd {
    pub srv: Server,
    pub port: u16,
    pub public: String,
    /// Root's full session.
    pub root: String,
    /// Alice (a user with a TOTP device, in group `ops`) and her secret.
    pub alice_secret: String,
    /// Bob (a user with a TOTP device, in no group) and his secret.
    pub bob_secret: String,
}

impl Fwd {
    pub async fn start(dir: &std::path::Path, backend: &Backend) -> Fwd {
        Fwd::start_in(dir, backend, "mamori.test").await
    }

    /// A server whose public URL is `auth.DOMAIN` and whose rules protect `*.DOMAIN`.
    pub async fn start_in(dir: &std::path::Path, backend: &Backend, domain: &str) -> Fwd {
        let port = free_port();
        let public = format!("http://auth.{domain}:{port}");
        let cfg = dir.join("mamori.toml");
        std::fs::write(&cfg, config_for(&public, domain)).unwrap();
        let srv = Server::start_on(
            &format!("127.0.0.1:{port}"),
            &dir.join("data"),
            backend.url(),
            &[("MAMORI_CONFIG", cfg.to_str().unwrap())],
        );
        let t = srv.root_session().await;
        let (_, _, root) = srv.enroll(&t, "phone").await;
        let t = srv
            .new_user(
                &root,
                json!({"user": "alice", "email": "alice@example.com"}),
            )
            .await;
        let (_, alice_secret, _) = srv.enroll(&t, "phone").await;
        let t = srv.new_user(&root, json!({"user": "bob"})).await;
        let (_, bob_secret, _) = srv.enroll(&t, "phone").await;
        let (s, _, v) = srv
            .call("PUT", "/api/v1/users/alice/groups/ops", Some(&root), None)
            .await;
        assert_eq!(s, 201, "{v}");
        Fwd {
            srv,
            port,
            public,
            root,
            alice_secret,
            bob_secret,
        }
    }

    /// A browser on the test host names (see [`Browser`]).
    pub fn browser(&self, extra_hosts: &[(&str, u16)]) -> Browser {
        let mut b = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .resolve(
                "auth.mamori.test",
                SocketAddr::from(([127, 0, 0, 1], self.port)),
            );
        for (h, p) in extra_hosts {
            b = b.resolve(h, SocketAddr::from(([127, 0, 0, 1], *p)));
        }
        Browser {
            client: b.build().unwrap(),
            jar: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// The forward-auth sub-request as nginx sends it.
    pub async fn nginx_check(
        &self,
        url: &str,
        method: &str,
        sso: Option<&str>,
    ) -> (u16, reqwest::header::HeaderMap) {
        let mut req = self
            .srv
            .client
            .get(format!("{}/api/v1/forward-auth", self.srv.url))
            .header("x-original-url", url)
            .header("x-original-method", method);
        if let Some(t) = sso {
            req = req.header("cookie", format!("mamori_sso={t}"));
        }
        let r = req.send().await.unwrap();
        (r.status().as_u16(), r.headers().clone())
    }
}

/// A browser's cookie handling, enough for these tests: host-only cookies go back to the host
/// that set them, `Domain=` cookies to every host below the domain, `Max-Age=0` deletes. No
/// redirect is followed, so every step is checked. One deviation from a browser: `Secure` is
/// ignored, because the console marks its cookies `Secure` on every public URL but a loopback
/// one, and these tests speak http on `*.mamori.test` (the cookie attributes themselves are
/// asserted where they matter).
pub struct Browser {
    pub client: reqwest::Client,
    /// (domain, host-only, name, value)
    jar: std::sync::Mutex<Vec<(String, bool, String, String)>>,
}

impl Browser {
    fn cookies_for(&self, host: &str) -> String {
        self.jar
            .lock()
            .unwrap()
            .iter()
            .filter(|(d, host_only, _, _)| {
                if *host_only {
                    d == host
                } else {
                    host == d || host.ends_with(&format!(".{d}"))
                }
            })
            .map(|(_, _, n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn store(&self, host: &str, headers: &reqwest::header::HeaderMap) {
        let mut jar = self.jar.lock().unwrap();
        for sc in headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
        {
            let mut parts = sc.split(';').map(str::trim);
            let Some((name, value)) = parts.next().and_then(|nv| nv.split_once('=')) else {
                continue;
            };
            let mut domain = None;
            let mut delete = false;
            for a in parts {
                if let Some(d) = a.strip_prefix("Domain=") {
                    domain = Some(d.trim_start_matches('.').to_string());
                }
                if a == "Max-Age=0" {
                    delete = true;
                }
            }
            let host_only = domain.is_none();
            let domain = domain.unwrap_or_else(|| host.to_string());
            jar.retain(|(d, _, n, _)| !(d == &domain && n == name));
            if !delete {
                jar.push((domain, host_only, name.to_string(), value.to_string()));
            }
        }
    }

    /// Sends a request with the cookies for its host and keeps what the answer sets.
    pub async fn send(&self, req: reqwest::RequestBuilder) -> reqwest::Response {
        let req = req.build().unwrap();
        let host = req.url().host_str().unwrap().to_string();
        let cookies = self.cookies_for(&host);
        let mut req = req;
        if !cookies.is_empty() {
            // After any cookie the request already carries.
            let all = match req.headers().get("cookie") {
                Some(own) => format!("{}; {cookies}", own.to_str().unwrap()),
                None => cookies,
            };
            req.headers_mut().insert("cookie", all.parse().unwrap());
        }
        let r = self.client.execute(req).await.unwrap();
        self.store(&host, r.headers());
        r
    }

    pub async fn get(&self, url: &str) -> reqwest::Response {
        self.send(self.client.get(url)).await
    }

    pub async fn post_form(&self, url: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.send(self.client.post(url).form(form)).await
    }

    /// The value of a cookie the browser holds for `host`.
    pub fn cookie(&self, host: &str, name: &str) -> Option<String> {
        self.cookies_for(host)
            .split("; ")
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .map(str::to_string)
    }
}

fn header<'a>(h: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    h.get(name).map(|v| v.to_str().unwrap()).unwrap_or("")
}

/// The value of cookie `name` in a response's `Set-Cookie` headers, with its attributes.
pub fn set_cookie(h: &reqwest::header::HeaderMap, name: &str) -> Option<String> {
    h.get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_string)
}

/// Follows the console from `start` (a `/sso?rd=` address) through sign-in with password and
/// TOTP back to the protected application. Returns the single-sign-on token and the final
/// `Location`.
pub async fn console_sign_in(
    browser: &Browser,
    public: &str,
    start: &str,
    user: &str,
    secret: &str,
) -> (String, String) {
    let r = browser.get(start).await;
    assert_eq!(r.status().as_u16(), 303, "{start}");
    assert_eq!(header(r.headers(), "location"), "/sign-in");
    let r = browser.get(&format!("{public}/sign-in")).await;
    assert_eq!(r.status().as_u16(), 200);
    let csrf = browser.cookie("auth.mamori.test", "mamori_csrf").unwrap();
    let r = browser
        .post_form(
            &format!("{public}/sign-in"),
            &[
                ("csrf", csrf.as_str()),
                ("user", user),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(header(r.headers(), "location"), "/sign-in/mfa");
    // Enrollment spent the current step: the next one (the window allows one step ahead).
    let c = code(secret, now() + 30);
    let r = browser
        .post_form(
            &format!("{public}/sign-in/mfa"),
            &[("csrf", csrf.as_str()), ("code", c.as_str())],
        )
        .await;
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(header(r.headers(), "location"), "/");
    // Every sign-in ends on the dashboard, which sends a returning browser on to /sso by a
    // refresh (a redirect after the sign-in form would fall under the console's CSP
    // `form-action 'self'` in Chromium, all the way to the application).
    let r = browser.get(&format!("{public}/")).await;
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.headers().get("location").is_none());
    let page = r.text().await.unwrap();
    assert!(
        page.contains(r#"<meta http-equiv="refresh" content="0;url=/sso">"#),
        "{page}"
    );
    let r = browser.get(&format!("{public}/sso")).await;
    assert_eq!(r.status().as_u16(), 303);
    let cookie = set_cookie(r.headers(), "mamori_sso").expect("the single-sign-on cookie");
    assert!(cookie.contains("; Domain=mamori.test"), "{cookie}");
    assert!(cookie.contains("; HttpOnly"), "{cookie}");
    assert!(cookie.contains("; SameSite=Lax"), "{cookie}");
    // The applications here are http://: a Secure cookie would never reach them.
    assert!(!cookie.contains("Secure"), "{cookie}");
    let token = cookie
        .strip_prefix("mamori_sso=")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    (token, header(r.headers(), "location").to_string())
}

async fn groups_api(f: &Fwd) {
    let srv = &f.srv;
    let root = Some(f.root.as_str());
    let (s, v) = srv.get("/api/v1/users/alice/groups", root).await;
    assert_eq!(
        (s, v.clone()),
        (200, json!({"user": "alice", "groups": ["ops"]})),
        "{v}"
    );
    // Adding again changes nothing.
    let (s, _, v) = srv
        .call("PUT", "/api/v1/users/alice/groups/ops", root, None)
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, _, v) = srv
        .call("PUT", "/api/v1/users/alice/groups/dev", root, None)
        .await;
    assert_eq!(
        (s, v["groups"].clone()),
        (201, json!(["dev", "ops"])),
        "{v}"
    );
    // A bad name: one clear error, nothing stored.
    for bad in ["Ops", "a%2Cb", "-x", "%20"] {
        let (s, _, v) = srv
            .call(
                "PUT",
                &format!("/api/v1/users/alice/groups/{bad}"),
                root,
                None,
            )
            .await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (400, Some("invalid_input")),
            "{bad}: {v}"
        );
    }
    let (_, v) = srv.get("/api/v1/users/alice/groups", root).await;
    assert_eq!(v["groups"], json!(["dev", "ops"]));
    // The limit: 32 groups.
    for i in 0..30 {
        let (s, _, v) = srv
            .call("PUT", &format!("/api/v1/users/bob/groups/g{i}"), root, None)
            .await;
        assert_eq!(s, 201, "{v}");
    }
    let (s, _, _) = srv
        .call("PUT", "/api/v1/users/bob/groups/g30", root, None)
        .await;
    assert_eq!(s, 201);
    let (s, _, _) = srv
        .call("PUT", "/api/v1/users/bob/groups/g31", root, None)
        .await;
    assert_eq!(s, 201);
    let (s, _, v) = srv
        .call("PUT", "/api/v1/users/bob/groups/g32", root, None)
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (409, Some("conflict")),
        "{v}"
    );
    let (_, v) = srv.get("/api/v1/users/bob/groups", root).await;
    assert_eq!(v["groups"].as_array().unwrap().len(), 32);
    for i in 0..32 {
        let (s, _, _) = srv
            .call(
                "DELETE",
                &format!("/api/v1/users/bob/groups/g{i}"),
                root,
                None,
            )
            .await;
        assert_eq!(s, 204);
    }
    let (s, _, v) = srv
        .call("DELETE", "/api/v1/users/alice/groups/dev", root, None)
        .await;
    assert_eq!(s, 204, "{v}");
    let (s, _, v) = srv
        .call("DELETE", "/api/v1/users/alice/groups/dev", root, None)
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (404, Some("not_found")),
        "{v}"
    );
    let (s, _, _) = srv
        .call("PUT", "/api/v1/users/nobody/groups/ops", root, None)
        .await;
    assert_eq!(s, 404);
    // Audited, with the administrator as actor.
    let events = srv
        .audit(&f.root, "user=alice&kind=account.group_add")
        .await;
    let results: Vec<(&str, &str)> = events
        .iter()
        .map(|e| {
            (
                e["result"].as_str().unwrap(),
                e["detail"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert!(results.contains(&("success", "dev")), "{events:?}");
    assert!(results.contains(&("invalid", "")), "{events:?}");
    assert!(events.iter().all(|e| e["actor"] == "root"), "{events:?}");
    let events = srv.audit(&f.root, "user=bob&kind=account.group_add").await;
    assert!(
        events.iter().any(|e| e["result"] == "refused_limit"),
        "{events:?}"
    );
    let events = srv
        .audit(&f.root, "user=alice&kind=account.group_remove")
        .await;
    assert!(
        events.iter().any(|e| e["result"] == "success"),
        "{events:?}"
    );
    assert!(
        events.iter().any(|e| e["result"] == "not_member"),
        "{events:?}"
    );
}

async fn endpoint_conventions(f: &Fwd) {
    let app = "http://app1.mamori.test/hello?x=1";
    // nginx: 401 and where to send the browser.
    let (s, h) = f.nginx_check(app, "GET", None).await;
    assert_eq!(s, 401);
    let loc = header(&h, "location");
    assert_eq!(
        loc,
        format!(
            "{}/sso?rd=http%3A%2F%2Fapp1%2Emamori%2Etest%2Fhello%3Fx%3D1",
            f.public
        )
    );
    // Caddy/Traefik: 302 to the same place.
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let fwd = |mode: &str| {
        plain
            .get(format!("{}/api/v1/forward-auth{mode}", f.srv.url))
            .header("x-forwarded-proto", "http")
            .header("x-forwarded-host", "app1.mamori.test")
            .header("x-forwarded-uri", "/hello?x=1")
            .header("x-forwarded-method", "GET")
    };
    let r = fwd("").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 302);
    assert_eq!(header(r.headers(), "location"), loc);
    // The query parameter chooses either answer.
    let r = fwd("?mode=status").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = plain
        .get(format!("{}/api/v1/forward-auth?mode=redirect", f.srv.url))
        .header("x-original-url", app)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 302);
    // Bypass: no session needed, no identity sent.
    let (s, h) = f
        .nginx_check("http://app1.mamori.test/public/style.css", "GET", None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(header(&h, "remote-user"), "");
    assert!(
        h.get("remote-user").is_some(),
        "sent empty, so the proxy overwrites a forged one"
    );
    // Not a protected host at all: default deny, whoever asks.
    let (s, _) = f.nginx_check("http://other.example/", "GET", None).await;
    assert_eq!(s, 403);
    // No address, or a bad one: one clear error.
    let (s, v) = f.srv.get("/api/v1/forward-auth", None).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("invalid_input")),
        "{v}"
    );
    let (s, _) = f
        .nginx_check("http://user@app1.mamori.test/", "GET", None)
        .await;
    assert_eq!(s, 400);
    let (s, _) = f
        .nginx_check("http://app1.mamori.test/%00", "GET", None)
        .await;
    assert_eq!(s, 400);
    // A made-up cookie is not a session.
    let (s, _) = f
        .nginx_check(
            app,
            "GET",
            Some("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        )
        .await;
    assert_eq!(s, 401);
}

async fn signed_in_policies(f: &Fwd) {
    let browser = f.browser(&[]);
    let app = "http://app1.mamori.test/hello";
    let (_, h) = f.nginx_check(app, "GET", None).await;
    let start = header(&h, "location").to_string();
    let (alice, back) =
        console_sign_in(&browser, &f.public, &start, "alice", &f.alice_secret).await;
    assert_eq!(back, app);
    // Allowed: who, and the groups.
    let (s, h) = f.nginx_check(app, "GET", Some(&alice)).await;
    assert_eq!(s, 200);
    assert_eq!(header(&h, "remote-user"), "alice");
    assert_eq!(header(&h, "remote-name"), "alice");
    assert_eq!(header(&h, "remote-email"), "alice@example.com");
    assert_eq!(header(&h, "remote-groups"), "ops");
    // Single sign-on: another application, no new sign-in.
    let (s, _) = f
        .nginx_check("http://app2.mamori.test/", "GET", Some(&alice))
        .await;
    assert_eq!(s, 200);
    // The group rule lets alice into /admin, including a path that only decodes to it.
    for p in ["/admin", "/admin/users", "/public/../admin", "/%61dmin"] {
        let (s, _) = f
            .nginx_check(&format!("http://app1.mamori.test{p}"), "GET", Some(&alice))
            .await;
        assert_eq!(s, 200, "{p}");
    }
    // Methods: /wiki is GET/HEAD for one factor; a POST falls through to the next rule.
    let (s, _) = f
        .nginx_check("http://app1.mamori.test/wiki", "POST", Some(&alice))
        .await;
    assert_eq!(s, 200);
    // phishing_resistant: a TOTP session must step up (no security key was used).
    let (s, h) = f
        .nginx_check("http://app1.mamori.test/key", "GET", Some(&alice))
        .await;
    assert_eq!(s, 401);
    assert!(header(&h, "location").contains("/sso?rd="));
    // Bob is not in ops: /admin is denied (403), with an audit event; other paths are fine.
    let b2 = f.browser(&[]);
    let (bob, _) = console_sign_in(&b2, &f.public, &start, "bob", &f.bob_secret).await;
    let (s, _) = f
        .nginx_check("http://app1.mamori.test/admin/x", "GET", Some(&bob))
        .await;
    assert_eq!(s, 403);
    let (s, h) = f.nginx_check(app, "GET", Some(&bob)).await;
    assert_eq!((s, header(&h, "remote-groups")), (200, ""));
    let events = f
        .srv
        .audit(&f.root, "user=bob&kind=forward_auth.deny")
        .await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["detail"], "GET app1.mamori.test/admin/x (rule 3)");
    let events = f
        .srv
        .audit(&f.root, "user=alice&kind=forward_auth.sign_in")
        .await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["detail"], "app1.mamori.test");
    // Allowed sub-requests are counted, not audited.
    let events = f
        .srv
        .audit(&f.root, "user=alice&kind=forward_auth.deny")
        .await;
    assert!(events.is_empty(), "{events:?}");
    let metrics = f
        .srv
        .client
        .get(format!("{}/metrics", f.srv.url))
        .send()
        .await
        .unwrap();
    let text = metrics.text().await.unwrap();
    assert!(
        text.lines()
            .any(|l| l.starts_with("mamori_forward_auth_checks_total{result=\"allow\"}")),
        "{text}"
    );
    // The forward-auth token is not a session of the API or the console.
    let (s, _) = f.srv.get("/api/v1/me", Some(&alice)).await;
    assert_eq!(s, 401);
    // /sso for a denied address: refused, no cookie.
    let r = b2
        .get(&format!(
            "{}/sso?rd=http%3A%2F%2Fapp1.mamori.test%2Fadmin",
            f.public
        ))
        .await;
    assert_eq!(r.status().as_u16(), 403);
    assert!(set_cookie(r.headers(), "mamori_sso").is_none());
    // Sign-out ends the single sign-on everywhere, and the cookie goes.
    let r = browser.get(&format!("{}/", f.public)).await;
    assert_eq!(r.status().as_u16(), 200);
    let csrf = browser.cookie("auth.mamori.test", "mamori_csrf").unwrap();
    let r = browser
        .post_form(
            &format!("{}/sign-out", f.public),
            &[("csrf", csrf.as_str())],
        )
        .await;
    assert_eq!(r.status().as_u16(), 303);
    let cleared = set_cookie(r.headers(), "mamori_sso").expect("the cookie is cleared");
    assert!(
        cleared.contains("Max-Age=0") && cleared.contains("Domain=mamori.test"),
        "{cleared}"
    );
    let (s, _) = f.nginx_check(app, "GET", Some(&alice)).await;
    assert_eq!(s, 401);
    let (s, _) = f.nginx_check(app, "GET", Some(&bob)).await;
    assert_eq!(s, 200, "bob's session is his own");
}

/// `phishing_resistant` for a session whose latest second factor is a code: the endpoint asks
/// for a step-up, and `/sso` refuses (403) rather than loop, since the code was just given.
/// (That a security key's session is recorded as such: tests/domain/webauthn_domain.rs; that
/// the rule then lets it in: the unit tests of `Rules::decide`.)
async fn phishing_resistant(f: &Fwd) {
    let srv = &f.srv;
    let t = srv.new_user(&f.root, json!({"user": "carol"})).await;
    let (_, _, full) = srv.enroll(&t, "phone").await;
    let b = f.browser(&[]);
    let r = b
        .send(
            b.client
                .get(format!(
                    "{}/sso?rd=http%3A%2F%2Fapp1.mamori.test%2Fkey",
                    f.public
                ))
                .header("cookie", format!("mamori_session={full}")),
        )
        .await;
    assert_eq!(r.status().as_u16(), 403);
    assert!(set_cookie(r.headers(), "mamori_sso").is_none());
    // The same session for another address gets its cookie, which /key still does not pass.
    let r = b
        .send(
            b.client
                .get(format!(
                    "{}/sso?rd=http%3A%2F%2Fapp1.mamori.test%2F",
                    f.public
                ))
                .header("cookie", format!("mamori_session={full}")),
        )
        .await;
    assert_eq!(r.status().as_u16(), 303);
    let cookie = set_cookie(r.headers(), "mamori_sso").unwrap();
    let token = cookie
        .strip_prefix("mamori_sso=")
        .unwrap()
        .split(';')
        .next()
        .unwrap();
    let (s, _) = f
        .nginx_check("http://app1.mamori.test/key", "GET", Some(token))
        .await;
    assert_eq!(s, 401);
    let (s, h) = f
        .nginx_check("http://app1.mamori.test/", "GET", Some(token))
        .await;
    assert_eq!((s, header(&h, "remote-user")), (200, "carol"));
}

async fn return_addresses(f: &Fwd) {
    let browser = f.browser(&[]);
    for rd in [
        "https://evil.com/",
        "//evil.com/",
        "\\\\evil.com\\",
        "http://app1.mamori.test@evil.com/",
        "HTTP://APP1.mamori.test/",
        "http://xn--pp1-8cd.mamori.test/",
        "http://app1.mamori.test%2f@evil.com/",
        "http://mamori.test/",
        "javascript:alert(1)",
    ] {
        let enc: String = rd.bytes().map(|b| format!("%{b:02X}")).collect();
        let r = browser.get(&format!("{}/sso?rd={enc}", f.public)).await;
        assert_eq!(r.status().as_u16(), 400, "{rd}");
        assert!(r.headers().get("location").is_none(), "{rd}");
        assert!(set_cookie(r.headers(), "mamori_rd").is_none(), "{rd}");
    }
}

fn admin(dir: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mamori-server"))
        .arg("admin")
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .env_remove("MAMORI_CONFIG")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// `mamori-server admin add-group/remove-group/list-groups` on the data directory of the
/// running server, and the console's user page with its groups.
async fn admin_cli_and_console(f: &Fwd, data: &std::path::Path) {
    let (ok, out, err) = admin(data, &["add-group", "bob", "qa"]);
    assert!(ok, "{err}");
    assert_eq!(out, "bob is now in group qa\n");
    let (ok, out, _) = admin(data, &["add-group", "bob", "qa"]);
    assert!(ok);
    assert_eq!(out, "bob was already in group qa\n");
    let (ok, _, err) = admin(data, &["add-group", "bob", "Q A"]);
    assert!(!ok);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("a group name is 1 to 64 characters"), "{err}");
    let (ok, out, _) = admin(data, &["list-groups", "alice"]);
    assert!(ok);
    assert_eq!(out, "ops\n");
    let (_, v) = f.srv.get("/api/v1/users/bob/groups", Some(&f.root)).await;
    assert_eq!(v["groups"], json!(["qa"]));
    let events = f
        .srv
        .audit(&f.root, "user=bob&kind=account.group_add")
        .await;
    assert!(
        events
            .iter()
            .any(|e| e["actor"] == "admin-cli" && e["detail"] == "qa"),
        "{events:?}"
    );
    // The console's user page lists the groups and offers the forms.
    let (s, page) =
        super::common::console_request(&f.srv, &f.srv.url, &f.root, "/users/bob", None).await;
    assert_eq!(s, 200);
    assert!(page.contains("<code>qa</code>"), "{page}");
    assert!(
        page.contains("action=\"/users/bob/groups/qa/remove\""),
        "{page}"
    );
    assert!(page.contains("id=\"add-group-form\""), "{page}");
    let (s, _) = super::common::console_request(
        &f.srv,
        &f.srv.url,
        &f.root,
        "/users/bob/groups/qa/remove",
        Some(&[]),
    )
    .await;
    assert_eq!(s, 303);
    let (s, page) = super::common::console_request(
        &f.srv,
        &f.srv.url,
        &f.root,
        "/users/bob/groups",
        Some(&[("group", "Not OK")]),
    )
    .await;
    assert_eq!(s, 400);
    assert!(page.contains("id=\"group-error\""), "{page}");
    let (ok, out, _) = admin(data, &["remove-group", "bob", "qa"]);
    assert!(!ok, "already removed in the console: {out}");
    let (ok, out, _) = admin(data, &["list-groups", "bob"]);
    assert!(ok);
    assert_eq!(out, "");
}

/// The security review's two forward-auth checks: the `/wiki` rule is `one_factor`, and the
/// proxies asked about `http://app1.mamori.test` (loopback names are not reported).
async fn review_checks(f: &Fwd) {
    // No rule covers localhost: denied (the default), and not reported either.
    let (s, _) = f.nginx_check("http://localhost/x", "GET", None).await;
    assert_eq!(s, 403);
    let (s, review) = f.srv.get("/api/v1/review", Some(&f.root)).await;
    assert_eq!(s, 200, "{review}");
    let finding = |id: &str| {
        review["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["id"] == id)
            .unwrap_or_else(|| panic!("no {id} in {review}"))
            .clone()
    };
    let one = finding("DR-FWD-ONE-FACTOR");
    assert_eq!(one["outcome"], "fail", "{one}");
    assert_eq!(one["affected"], json!(["rule 5 (app1.mamori.test)"]));
    let https = finding("DR-FWD-HTTPS");
    assert_eq!(https["outcome"], "fail", "{https}");
    let affected: Vec<&str> = https["affected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        affected.contains(&"http://app1.mamori.test is protected without HTTPS"),
        "{affected:?}"
    );
    assert!(
        !affected.iter().any(|a| a.contains("localhost")),
        "{affected:?}"
    );
}

/// Two nodes on one PostgreSQL database: a single sign-on made through one node's console is
/// honoured by the other node's forward-auth endpoint, and signing out on the first ends it on
/// the second within the stated bound (`cache_secs`).
async fn second_node(f: &Fwd, dir: &std::path::Path, backend: &Backend) {
    let cfg = dir.join("mamori.toml");
    let b = super::common::Server::start(
        &dir.join("data"),
        backend.url(),
        &[("MAMORI_CONFIG", cfg.to_str().unwrap())],
    );
    let browser = f.browser(&[]);
    let app = "http://app2.mamori.test/";
    let (_, h) = f.nginx_check(app, "GET", None).await;
    let start = header(&h, "location").to_string();
    // A user of its own: the others' codes of this step are spent.
    let t = f.srv.new_user(&f.root, json!({"user": "dave"})).await;
    let (_, dave_secret, _) = f.srv.enroll(&t, "phone").await;
    let (alice, _) = console_sign_in(&browser, &f.public, &start, "dave", &dave_secret).await;
    let check_b = |token: String| {
        let req = b
            .client
            .get(format!("{}/api/v1/forward-auth", b.url))
            .header("x-original-url", app)
            .header("cookie", format!("mamori_sso={token}"));
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.headers().clone())
        }
    };
    let (s, h) = check_b(alice.clone()).await;
    assert_eq!((s, header(&h, "remote-user")), (200, "dave"));
    let r = browser.get(&format!("{}/", f.public)).await;
    assert_eq!(r.status().as_u16(), 200);
    let csrf = browser.cookie("auth.mamori.test", "mamori_csrf").unwrap();
    let r = browser
        .post_form(
            &format!("{}/sign-out", f.public),
            &[("csrf", csrf.as_str())],
        )
        .await;
    assert_eq!(r.status().as_u16(), 303);
    // Node B remembers what its last check read for `[forward_auth] cache_secs` (2 by
    // default): the sign-out made through node A must reach it within that bound (whole
    // seconds, so one more for the rounding).
    let signed_out = std::time::Instant::now();
    loop {
        let (s, _) = check_b(alice.clone()).await;
        if s == 401 {
            break;
        }
        assert_eq!(s, 200);
        assert!(
            signed_out.elapsed() < std::time::Duration::from_secs(3),
            "node B still lets a session in that ended on node A"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

async fn run(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let f = Fwd::start(dir.path(), &backend).await;
    groups_api(&f).await;
    if matches!(backend, Backend::Sqlite) {
        admin_cli_and_console(&f, &dir.path().join("data")).await;
    }
    endpoint_conventions(&f).await;
    signed_in_policies(&f).await;
    phishing_resistant(&f).await;
    return_addresses(&f).await;
    review_checks(&f).await;
    if !matches!(backend, Backend::Sqlite) {
        second_node(&f, dir.path(), &backend).await;
    }
}

#[tokio::test]
async fn forward_auth_on_sqlite() {
    run(Backend::Sqlite).await;
}

#[tokio::test]
async fn forward_auth_on_postgres() {
    run(Backend::postgres().await).await;
}
