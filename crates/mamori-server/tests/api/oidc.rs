//! mamori as an OpenID Connect provider (#17, docs/oidc.md), tested with a relying party built
//! on a maintained library: Python `authlib` (`oidc_rp.py` beside this file, run as a
//! subprocess), over real HTTP against the real server. The browser's part (a console session
//! following the authorization redirects) is `requests` with the session cookie, which the
//! test gets by signing in with password and code through the API.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};

use super::common::{code, now, Backend, Server};

pub(super) const REDIRECT: &str = "http://127.0.0.1:9/callback";
const LOGOUT_TO: &str = "http://127.0.0.1:9/signed-out";

pub(super) fn admin(dir: &Path, database: Option<&str>, args: &[&str]) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mamori-server"));
    cmd.arg("admin")
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .env_remove("MAMORI_CONFIG");
    if let Some(db) = database {
        cmd.arg("--database").arg(db);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "admin {args:?}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// A registered client: (client_id, secret if confidential).
pub fn create_client(
    dir: &Path,
    database: Option<&str>,
    args: &[&str],
) -> (String, Option<String>) {
    let mut all = vec!["create-client"];
    all.extend_from_slice(args);
    let out = admin(dir, database, &all);
    let field = |name: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.split_whitespace().next().unwrap().to_string())
    };
    (
        field("client_id: ").expect("a client id"),
        field("client_secret: "),
    )
}

/// Runs one scenario of the authlib relying party.
pub(super) fn rp(scenario: &str, cfg: &Value) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api/oidc_rp.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(scenario)
        .arg(cfg.to_string())
        .output()
        .expect("python3 with authlib (see README, Tests)");
    assert!(
        out.status.success(),
        "oidc_rp.py {scenario}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

pub(super) struct Provider {
    pub(super) srv: Server,
    pub(super) issuer: String,
    /// alice's console session (password + code).
    pub(super) alice: String,
    pub(super) root: String,
    /// The secret of root's virtual device (its enrollment spent the current step's code).
    pub(super) root_secret: String,
    _dir: tempfile::TempDir,
}

/// A server with root (enrolled) and alice (enrolled, signed in with password and code).
pub(super) async fn provider(backend: &Backend) -> Provider {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(dir.path(), backend.url(), &[]);
    let t = srv.root_session().await;
    let (_, root_secret, root) = srv.enroll(&t, "phone").await;
    let t = srv
        .new_user(
            &root,
            json!({"user": "alice", "email": "alice@example.com"}),
        )
        .await;
    let (_, secret, _) = srv.enroll(&t, "phone").await;
    // The enrollment spent this step's code; the next step's is accepted (window ±1).
    let (s, v) = srv
        .sign_in_with_code("alice", &code(&secret, now() + 30))
        .await;
    assert_eq!(s, 200, "{v}");
    let alice = v["token"].as_str().unwrap().to_string();
    let (s, doc) = srv.get("/.well-known/openid-configuration", None).await;
    assert_eq!(s, 200, "{doc}");
    Provider {
        issuer: doc["issuer"].as_str().unwrap().to_string(),
        srv,
        alice,
        root,
        root_secret,
        _dir: dir,
    }
}

impl Provider {
    pub(super) fn client(&self, args: &[&str]) -> (String, Option<String>) {
        create_client(&self.srv.data_dir, None, args)
    }

    pub(super) fn cfg(&self, client: &(String, Option<String>)) -> Value {
        let mut c = json!({
            "issuer": self.issuer,
            "client_id": client.0,
            "redirect_uri": REDIRECT,
            "session": self.alice,
            "post_logout_redirect_uri": LOGOUT_TO,
        });
        if let Some(s) = &client.1 {
            c["client_secret"] = json!(s);
        }
        c
    }
}

#[tokio::test]
async fn discovery_names_the_code_flow_with_s256_and_rfc9207() {
    let p = provider(&Backend::Sqlite).await;
    let c = p.client(&["app", "--redirect-uri", REDIRECT, "--trusted"]);
    let d = rp("discovery", &p.cfg(&c));
    assert_eq!(d["issuer"], p.issuer.as_str());
    assert_eq!(d["response_types_supported"], json!(["code"]));
    assert_eq!(d["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(d["authorization_response_iss_parameter_supported"], true);
    assert_eq!(
        d["id_token_signing_alg_values_supported"],
        json!(["ES256", "RS256"])
    );
    assert_eq!(
        d["token_endpoint_auth_methods_supported"],
        json!(["client_secret_basic", "client_secret_post", "none"])
    );
    assert_eq!(d["jwks_uri"], format!("{}/oidc/jwks", p.issuer));
    // The discovery document is in the OpenAPI document's paths too.
    let (_, api) = p.srv.get("/api/v1/openapi.json", None).await;
    assert!(api["paths"]["/oidc/token"]["post"].is_object());
}

#[tokio::test]
async fn confidential_client_full_flow_refresh_rotation_reuse_revocation_introspection() {
    let p = provider(&Backend::Sqlite).await;
    let c = p.client(&["grafana", "--redirect-uri", REDIRECT, "--trusted"]);
    let r = rp("flow", &p.cfg(&c));
    assert_eq!(r["status"], 303, "{r}");
    assert_eq!(r["redirected_to_client"], true, "{r}");
    assert_eq!(r["state_ok"], true, "{r}");
    assert_eq!(r["iss_ok"], true, "{r}");
    // The ID token, verified by authlib against the JWKS.
    let claims = &r["claims"];
    assert_eq!(r["header"]["alg"], "ES256");
    assert!(r["header"]["kid"].is_string());
    assert_eq!(claims["iss"], p.issuer.as_str());
    assert_eq!(claims["aud"], c.0.as_str());
    assert_eq!(claims["azp"], c.0.as_str());
    assert_eq!(claims["amr"], json!(["pwd", "otp", "mfa"]), "{claims}");
    assert_eq!(claims["acr"], "urn:mamori:acr:2fa");
    let sub = claims["sub"].as_str().unwrap();
    assert!(sub.len() >= 40 && !sub.contains("alice"), "opaque: {sub}");
    assert!(claims["auth_time"].as_i64().unwrap() <= claims["iat"].as_i64().unwrap());
    assert_eq!(r["token_type"], "Bearer");
    // Userinfo: the scopes' claims, the same subject.
    let ui = &r["userinfo"];
    assert_eq!(ui["sub"], sub);
    assert_eq!(ui["preferred_username"], "alice");
    assert_eq!(ui["email"], "alice@example.com");
    // Set by an administrator, never proven by a code: not claimed as verified.
    assert_eq!(ui["email_verified"], false);
    assert_eq!(ui["groups"], json!([]));
    assert_eq!(ui["locale"], "en");
    // Introspection.
    assert_eq!(r["introspect_active"]["active"], true, "{r}");
    assert_eq!(r["introspect_active"]["username"], "alice");
    assert_eq!(r["introspect_active"]["client_id"], c.0.as_str());
    assert_eq!(r["introspect_unknown"], json!({"active": false}));
    // Refresh rotation; reuse revokes the family.
    assert_eq!(r["rotated"], true);
    assert_eq!(r["refreshed_amr"], json!(["pwd", "otp", "mfa"]));
    assert_eq!(r["userinfo_after_refresh"], 200);
    assert_eq!(r["reuse_error"], "invalid_grant", "{r}");
    assert_eq!(r["family_refresh_error"], "invalid_grant", "{r}");
    assert_eq!(r["family_userinfo_status"], 401, "{r}");
    // Revocation.
    assert_eq!(r["revoke_status"], 200);
    assert_eq!(r["revoked_userinfo_status"], 401);
    assert_eq!(r["introspect_revoked"], json!({"active": false}));
    assert_eq!(r["revoked_refresh_error"], "invalid_grant");
    // Audited: the grant, the token issue, the refresh, the reuse, the revocation.
    let kinds: Vec<String> = p
        .srv
        .audit(&p.root, "kind=oidc.&limit=1000")
        .await
        .iter()
        .filter_map(|e| e["kind"].as_str().map(str::to_string))
        .collect();
    for k in [
        "oidc.client_create",
        "oidc.key_create",
        "oidc.authorize",
        "oidc.token",
        "oidc.refresh",
        "oidc.reuse",
        "oidc.revoke",
    ] {
        assert!(kinds.iter().any(|x| x == k), "{k} audited: {kinds:?}");
    }
}

#[tokio::test]
async fn signing_keys_rotate_and_the_old_key_stays_published() {
    let p = provider(&Backend::Sqlite).await;
    let c = p.client(&["app", "--redirect-uri", REDIRECT, "--trusted"]);
    let jwks_kids = || async {
        let (s, jwks) = p.srv.get("/oidc/jwks", None).await;
        assert_eq!(s, 200, "{jwks}");
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let first = rp("id_token", &p.cfg(&c));
    let kid1 = first["header"]["kid"].as_str().unwrap().to_string();
    assert_eq!(jwks_kids().await, std::slice::from_ref(&kid1));
    let out = admin(&p.srv.data_dir, None, &["rotate-oidc-keys"]);
    assert!(
        out.starts_with(&format!("ES256: {kid1} replaced by ")),
        "{out}"
    );
    // Both published; new tokens carry the new kid.
    let kids = jwks_kids().await;
    assert_eq!(kids.len(), 2, "{kids:?}");
    assert!(kids.contains(&kid1), "{kids:?}");
    let second = rp("id_token", &p.cfg(&c));
    let kid2 = second["header"]["kid"].as_str().unwrap().to_string();
    assert_ne!(kid1, kid2);
    assert!(kids.contains(&kid2), "{kids:?}");
    assert!(out.trim_end().ends_with(&kid2), "{out}");
    // The ID token signed before the rotation still verifies (authlib, against the JWKS).
    let mut cfg = p.cfg(&c);
    cfg["id_token"] = first["id_token"].clone();
    cfg["nonce"] = first["nonce"].clone();
    let v = rp("verify", &cfg);
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["kid"], kid1.as_str());
    // A signature no key of the JWKS made is refused by the same check (it can fail).
    let mut forged = first["id_token"].as_str().unwrap().to_string();
    forged.truncate(forged.len() - 4);
    forged.push_str("AAAA");
    cfg["id_token"] = json!(forged);
    assert_eq!(rp("verify", &cfg)["ok"], false);
    let events = p.srv.audit(&p.root, "kind=oidc.key_rotate").await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["actor"], "admin-cli", "{events:?}");
}

#[tokio::test]
async fn acr_values_are_honoured_as_far_as_the_account_can() {
    let p = provider(&Backend::Sqlite).await;
    let c = p.client(&["app", "--redirect-uri", REDIRECT, "--trusted"]);
    let with = |acr: &str| {
        let mut cfg = p.cfg(&c);
        cfg["extra"] = json!({ "acr_values": acr });
        rp("id_token", &cfg)
    };
    // alice has no security key: the preference cannot be met, the sign-in stands and the
    // ID token says what it was (acr_values are voluntary).
    let r = with("urn:mamori:acr:phr urn:mamori:acr:2fa");
    assert_eq!(r["has_code"], true, "{r}");
    assert_eq!(r["claims"]["acr"], "urn:mamori:acr:2fa", "{r}");
    // Met already; values of other providers are ignored.
    for acr in [
        "urn:mamori:acr:2fa",
        "urn:example:gold",
        "urn:mamori:acr:1fa",
    ] {
        let r = with(acr);
        assert_eq!(r["has_code"], true, "{acr}: {r}");
        assert_eq!(r["claims"]["acr"], "urn:mamori:acr:2fa", "{acr}: {r}");
    }
    // Too long: refused at the client like any bad parameter.
    let r = with(&"x".repeat(600));
    assert_eq!(r["has_code"], false, "{r}");
    assert_eq!(r["params"]["error"], "invalid_request", "{r}");
}

/// The console's session cookie is `SameSite=Strict`: a browser sent from another site does
/// not send it, so such a request without a session gets a page that comes back from this
/// origin (docs/oidc.md, "Signing in from another site"), checked here at the HTTP level;
/// `oidc_apache.rs` shows it in Chromium.
#[tokio::test]
async fn a_request_from_another_site_without_a_session_comes_back_from_this_origin() {
    let p = provider(&Backend::Sqlite).await;
    let c = p.client(&["app", "--redirect-uri", REDIRECT, "--trusted"]);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let query = format!(
        "response_type=code&scope=openid&client_id={}&redirect_uri={REDIRECT}&state=s1",
        c.0
    );
    let get = |site: &'static str, session: Option<String>, q: String| {
        let mut r = http
            .get(format!("{}/oidc/authorize?{q}", p.srv.url))
            .header("sec-fetch-site", site);
        if let Some(s) = session {
            r = r.header("cookie", format!("mamori_session={s}"));
        }
        r.send()
    };
    // From another site, no cookie: the page that refreshes to the same request.
    let r = get("cross-site", None, query.clone()).await.unwrap();
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    let to = refresh_target(&page);
    let (path, q) = to.split_once('?').unwrap();
    assert_eq!(path, "/oidc/authorize", "{page}");
    let pairs = |q: &str| {
        let mut v: Vec<(String, String)> = url::form_urlencoded::parse(q.as_bytes())
            .into_owned()
            .collect();
        v.sort();
        v
    };
    assert_eq!(pairs(q), pairs(&query), "{page}");
    // The same request from this origin: the sign-in, as before.
    let r = get("same-origin", None, query.clone()).await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/sign-in");
    // From another site with the cookie (a browser whose cookie is Lax or None): the code.
    let r = get("cross-site", Some(p.alice.clone()), query.clone())
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let to = r.headers()["location"].to_str().unwrap();
    assert!(to.starts_with(&format!("{REDIRECT}?code=")), "{to}");
    // A request that is bad anyway gets its answer at once, not a round trip.
    let r = get("cross-site", None, "client_id=nope".into())
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // The end-session endpoint likewise: without the round trip, the session would survive
    // while only the cookie was cleared.
    let r = http
        .get(format!("{}/oidc/logout?client_id={}", p.srv.url, c.0))
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    assert_eq!(
        refresh_target(&page),
        format!("/oidc/logout?client_id={}", c.0)
    );
}

/// Where a page's `<meta http-equiv="refresh">` goes.
fn refresh_target(page: &str) -> String {
    let start = page
        .find("http-equiv=\"refresh\" content=\"0;url=")
        .unwrap_or_else(|| panic!("no refresh in {page}"));
    let rest = &page[start..];
    let rest = &rest[rest.find("url=").unwrap() + 4..];
    rest[..rest.find('"').unwrap()].replace("&#38;", "&")
}

/// A code past its 60 seconds, redeemed by authlib: `invalid_grant`. (The same rule on a fixed
/// clock, to the second, is in tests/domain/oidc_domain.rs; this one waits for real.)
#[tokio::test]
async fn an_expired_code_is_refused() {
    let p = provider(&Backend::Sqlite).await;
    let c = p.client(&["app", "--redirect-uri", REDIRECT, "--trusted"]);
    let r = rp("expired_code", &p.cfg(&c));
    assert_eq!(r, json!({"has_code": true, "error": "invalid_grant"}));
}

/// The requests of the OpenID Foundation's Basic OP test plan that the other tests do not make
/// (docs/oidc.md, "OpenID Foundation Basic OP profile").
#[tokio::test]
async fn what_the_basic_op_test_plan_asks() {
    let p = provider(&Backend::Sqlite).await;
    let c = p.client(&["app", "--redirect-uri", REDIRECT, "--trusted"]);
    let r = rp("basic_op", &p.cfg(&c));
    for ok in [
        "unknown",
        "display_page",
        "display_popup",
        "login_hint",
        "ui_locales",
        "claims_locales",
        "acr_values",
        "claims",
        "scope_order",
        "id_token_hint",
        "without_nonce",
        "client_secret_post",
    ] {
        assert_eq!(r[ok], true, "{ok}: {r}");
    }
    for ui in ["userinfo_get", "userinfo_post_header", "userinfo_post_body"] {
        assert_eq!(r[ui], r["sub"], "{ui}: {r}");
    }
    for (name, error) in [
        ("response_type_missing", "unsupported_response_type"),
        ("request_object", "request_not_supported"),
        ("request_uri", "request_uri_not_supported"),
    ] {
        assert_eq!(
            r[name],
            json!({"to_client": true, "error": error, "state": "s"}),
            "{name}: {r}"
        );
    }
}

#[tokio::test]
async fn public_client_with_pkce_and_no_secret() {
    let p = provider(&Backend::Sqlite).await;
    let c = p.client(&["cli", "--redirect-uri", REDIRECT, "--public", "--trusted"]);
    assert_eq!(c.1, None, "a public client has no secret");
    let r = rp("flow", &p.cfg(&c));
    assert_eq!(r["has_code"], true, "{r}");
    assert_eq!(r["claims"]["amr"], json!(["pwd", "otp", "mfa"]));
    assert_eq!(r["reuse_error"], "invalid_grant");
}

#[tokio::test]
async fn rs256_clients_get_rsa_signed_id_tokens_beside_es256_ones() {
    let p = provider(&Backend::Sqlite).await;
    let rsa = p.client(&[
        "legacy",
        "--redirect-uri",
        REDIRECT,
        "--trusted",
        "--alg",
        "RS256",
    ]);
    let ec = p.client(&["modern", "--redirect-uri", REDIRECT, "--trusted"]);
    let r = rp("flow", &p.cfg(&rsa));
    assert_eq!(r["header"]["alg"], "RS256", "{r}");
    assert_eq!(r["claims"]["amr"], json!(["pwd", "otp", "mfa"]));
    let r2 = rp("flow", &p.cfg(&ec));
    assert_eq!(r2["header"]["alg"], "ES256", "{r2}");
    // Both keys are in the JWKS, each with its kid.
    let (_, jwks) = p.srv.get("/oidc/jwks", None).await;
    let kinds: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kty"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.len(), 2, "{jwks}");
    assert!(kinds.contains(&"RSA") && kinds.contains(&"EC"), "{jwks}");
}

#[tokio::test]
async fn error_cases() {
    let p = provider(&Backend::Sqlite).await;
    let c = p.client(&["app", "--redirect-uri", REDIRECT, "--trusted"]);
    let cfg = p.cfg(&c);

    // An unregistered redirect URI: an error page, never a redirect.
    let r = rp("wrong_redirect", &cfg);
    assert_eq!(r["status"], 400, "{r}");
    assert_eq!(r["location"], Value::Null, "{r}");
    assert_eq!(r["body_names_it"], true, "{r}");

    // A code used twice: the second use fails and the first's tokens are revoked.
    let r = rp("reused_code", &cfg);
    assert_eq!(r["before"], 200, "{r}");
    assert_eq!(r["second_use"], "invalid_grant", "{r}");
    assert_eq!(r["after"], 401, "{r}");
    assert_eq!(r["refresh"], "invalid_grant", "{r}");

    // PKCE verifier that does not match; the code is spent either way.
    let r = rp("pkce_mismatch", &cfg);
    assert_eq!(r["error"], "invalid_grant", "{r}");
    assert_eq!(r["then_right_verifier"], "invalid_grant", "{r}");

    // A wrong client secret.
    let r = rp("wrong_secret", &cfg);
    assert_eq!(r["error"], "invalid_client", "{r}");
    assert_eq!(r["status"], 401, "{r}");
    assert_eq!(r["www_authenticate"], "Basic realm=\"mamori\"", "{r}");
    assert_eq!(r["cache_control"], "no-store", "{r}");
    assert_eq!(r["body"]["error"], "invalid_client", "{r}");

    // Only the code and refresh grants.
    let r = rp("unsupported_grant", &cfg);
    assert_eq!(r["status"], 400, "{r}");
    assert_eq!(r["body"]["error"], "unsupported_grant_type", "{r}");

    // prompt=none without a session: login_required at the client, with state and iss.
    let r = rp("prompt_none", &cfg);
    assert_eq!(r["redirected_to_client"], true, "{r}");
    assert_eq!(r["error"], "login_required", "{r}");
    assert_eq!(r["state_ok"], true, "{r}");
    assert_eq!(r["iss_ok"], true, "{r}");

    // A client alice may not use (only the group admins).
    let only = p.client(&[
        "ops-only",
        "--redirect-uri",
        REDIRECT,
        "--trusted",
        "--allow-group",
        "admins",
    ]);
    let r = rp("denied", &p.cfg(&only));
    assert_eq!(r["redirected_to_client"], true, "{r}");
    assert_eq!(r["error"], "access_denied", "{r}");
    assert_eq!(r["has_code"], false, "{r}");

    // A client that requires a security key, for a session that used a code: refused (the
    // code was given moments ago, so a fresh sign-in would not help).
    let strong = p.client(&[
        "vault",
        "--redirect-uri",
        REDIRECT,
        "--trusted",
        "--require",
        "phishing_resistant",
    ]);
    let r = rp("denied", &p.cfg(&strong));
    assert_eq!(r["error"], "access_denied", "{r}");

    // prompt=login: the session ends and the browser signs in again; the kept request
    // no longer says prompt=login.
    let r = rp("prompt_login", &cfg);
    assert_eq!(r["status"], 303, "{r}");
    assert_eq!(r["to"], "/sign-in", "{r}");
    assert_eq!(r["session_cleared"], true, "{r}");
    assert_eq!(r["kept_has_client"], true, "{r}");
    assert_eq!(r["kept_has_prompt"], false, "{r}");
    assert_eq!(r["old_session_after"], "login_required", "{r}");
}

#[tokio::test]
async fn consent_is_asked_once_for_clients_not_trusted() {
    let p = provider(&Backend::Sqlite).await;
    let c = p.client(&["wiki", "--redirect-uri", REDIRECT]);
    let r = rp("consent", &p.cfg(&c));
    assert_eq!(r["first_status"], 200, "{r}");
    assert_eq!(r["page_names_client"], true, "{r}");
    // After the console's own consent form the browser goes on by a page that refreshes to
    // the client (a redirect would fall under the console's CSP `form-action 'self'`).
    assert_eq!(r["after_allow"], 200, "{r}");
    assert_eq!(r["code_after_allow"], true, "{r}");
    assert_eq!(r["id_token_ok"], true, "{r}");
    assert_eq!(r["second_has_code"], true, "{r}");
}

#[tokio::test]
async fn sign_in_returns_to_the_authorization_request() {
    let p = provider(&Backend::Sqlite).await;
    let c = p.client(&["app", "--redirect-uri", REDIRECT, "--trusted"]);
    let r = rp("return_after_sign_in", &p.cfg(&c));
    assert_eq!(r["first"], 303, "{r}");
    assert_eq!(r["to_sign_in"], "/sign-in", "{r}");
    // The dashboard continues to the request by a refresh, not a redirect (see consent).
    assert_eq!(r["dashboard_status"], 200, "{r}");
    assert!(
        r["dashboard_to"]
            .as_str()
            .unwrap()
            .starts_with("/oidc/authorize?"),
        "{r}"
    );
    assert_eq!(r["code"], true, "{r}");
    assert_eq!(r["amr"], json!(["pwd", "otp", "mfa"]));
}

#[tokio::test]
async fn rp_initiated_logout_ends_the_session_and_goes_only_to_registered_uris() {
    let p = provider(&Backend::Sqlite).await;
    let c = p.client(&[
        "app",
        "--redirect-uri",
        REDIRECT,
        "--post-logout-redirect-uri",
        LOGOUT_TO,
        "--trusted",
    ]);
    let r = rp("logout", &p.cfg(&c));
    assert_eq!(r["confirm_status"], 200, "{r}");
    assert_eq!(r["logout_status"], 200, "{r}");
    assert_eq!(r["logout_to"], format!("{LOGOUT_TO}?state=bye"), "{r}");
    assert_eq!(r["unregistered_to"], "/sign-in?done=signed_out", "{r}");
    assert_eq!(r["after"], "login_required", "{r}");
}

#[tokio::test]
async fn admin_commands_list_rotate_and_delete_clients() {
    let p = provider(&Backend::Sqlite).await;
    let dir = &p.srv.data_dir;
    let (id, secret) = p.client(&["app", "--redirect-uri", REDIRECT, "--trusted"]);
    let secret = secret.unwrap();
    // Bad input: one clear error, nothing registered.
    let out = Command::new(env!("CARGO_BIN_EXE_mamori-server"))
        .args([
            "admin",
            "create-client",
            "bad",
            "--redirect-uri",
            "http://app.example/cb",
        ])
        .arg("--data-dir")
        .arg(dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("https"), "{err}");
    let list = admin(dir, None, &["list-clients", "--json"]);
    let rows: Vec<Value> = list
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 1, "{list}");
    assert_eq!(rows[0]["client_id"], id.as_str());
    assert!(!list.contains(&secret), "a secret is never listed");
    // Rotation: the old secret stops working.
    let rotated = admin(dir, None, &["rotate-client-secret", "app"]);
    let new = rotated
        .lines()
        .find_map(|l| l.strip_prefix("client_secret: "))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    assert_ne!(new, secret);
    let r = rp("wrong_secret", &p.cfg(&(id.clone(), Some(secret))));
    assert_eq!(r["error"], "invalid_client", "{r}");
    let r = rp("flow", &p.cfg(&(id.clone(), Some(new))));
    assert_eq!(r["has_code"], true, "{r}");
    // Deletion: the client is unknown from then on (an error page, not a redirect).
    admin(dir, None, &["delete-client", "app"]);
    let r = rp("wrong_redirect", &p.cfg(&(id, None)));
    assert_eq!(r["status"], 400, "{r}");
}

/// Two nodes on one PostgreSQL database: the code is issued by one and redeemed at the other,
/// which signs with the same key.
#[tokio::test]
async fn two_nodes_on_postgresql_share_codes_and_keys() {
    let backend = Backend::postgres().await;
    let p = provider(&backend).await;
    let c = create_client(
        &p.srv.data_dir,
        backend.url(),
        &["app", "--redirect-uri", REDIRECT, "--trusted"],
    );
    // The second node: same database, same server key, same public URL (the issuer).
    let dir2 = tempfile::tempdir().unwrap();
    std::fs::copy(
        p.srv.data_dir.join("server.key"),
        dir2.path().join("server.key"),
    )
    .unwrap();
    let node2 = Server::start(
        dir2.path(),
        backend.url(),
        &[("MAMORI_PUBLIC_URL", p.issuer.as_str())],
    );
    // The authorization at node 1; the token, userinfo, JWKS, revocation and introspection
    // endpoints at node 2.
    let mut cfg = p.cfg(&c);
    cfg["backend_at"] = json!(node2.url);
    let r = rp("flow", &cfg);
    assert_eq!(r["has_code"], true, "{r}");
    assert_eq!(r["claims"]["amr"], json!(["pwd", "otp", "mfa"]));
    assert_eq!(r["claims"]["iss"], p.issuer.as_str());
    assert_eq!(r["reuse_error"], "invalid_grant");
    assert_eq!(r["family_userinfo_status"], 401);
}
