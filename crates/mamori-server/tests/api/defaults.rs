//! The defaults a newcomer meets (issue #15, "Security keys work with the README's commands"
//! and "Defaults that pass the product's own review"), against the real binary: the address the
//! first start prints and that the admin command line follows, the origin security keys are
//! bound to, the README's command walked from the setup link to an enrolled MFA device over
//! HTTP, the password problems with their own messages, and administrators who must enroll MFA
//! before administering whatever `require_mfa` says.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::{code, now, Server, PASSWORD};
use reqwest::header::{LOCATION, SET_COOKIE};
use serde_json::{json, Value};

/// The lines a server prints on standard output up to `listening on …`, and the process.
struct Started {
    child: Child,
    lines: Vec<String>,
}

impl Started {
    /// `mamori-server ARGS…` with `env` (and no configuration from this process's
    /// environment), read until it says where it listens.
    fn spawn(args: &[&str], env: &[(&str, &str)], log: &Path) -> Started {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mamori-server"));
        cmd.args(args);
        for k in [
            "MAMORI_CONFIG",
            "MAMORI_PUBLIC_URL",
            "MAMORI_LISTEN",
            "MAMORI_DATA_DIR",
            "MAMORI_DATABASE",
            "MAMORI_REQUIRE_MFA",
            "MAMORI_PASSWORD_MIN_LENGTH",
        ] {
            cmd.env_remove(k);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let log = std::fs::File::create(log).unwrap();
        cmd.stdout(Stdio::piped()).stderr(Stdio::from(log));
        let mut child = cmd.spawn().expect("start mamori-server");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = Vec::new();
            let mut sent = false;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                lines.push(line.clone());
                if line.starts_with("listening on ") && !sent {
                    let _ = tx.send(lines.clone());
                    sent = true;
                }
            }
        });
        let lines = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the server said where it listens");
        Started { child, lines }
    }

    /// The value of the printed line starting with `prefix`.
    fn line(&self, prefix: &str) -> Option<String> {
        self.lines
            .iter()
            .find_map(|l| l.strip_prefix(prefix).map(str::to_string))
    }

    /// The port of `listening on http://127.0.0.1:PORT`.
    fn port(&self) -> u16 {
        let at = self.line("listening on http://").unwrap();
        at.rsplit(':').next().unwrap().parse().unwrap()
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        for _ in 0..100 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `mamori-server admin ARGS… --data-dir DIR`: exit status and standard output.
fn admin(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mamori-server"))
        .arg("admin")
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .env_remove("MAMORI_CONFIG")
        .env_remove("MAMORI_PUBLIC_URL")
        .env_remove("MAMORI_LISTEN")
        .env_remove("MAMORI_DATA_DIR")
        .env_remove("MAMORI_DATABASE")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn the_first_start_binds_keys_to_localhost_and_the_admin_links_follow_the_real_port() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let srv = Started::spawn(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data.to_str().unwrap(),
        ],
        &[],
        &dir.path().join("server.log"),
    );
    let port = srv.port();
    let origin = format!("http://localhost:{port}");
    let link = srv.line("setup link: ").expect("a setup link");
    assert!(
        link.starts_with(&format!("{origin}/setup?token=")),
        "{link} names the port the server listens on, as localhost"
    );
    assert_eq!(srv.line("public URL: ").as_deref(), Some(origin.as_str()));
    assert!(
        srv.lines.contains(&format!(
            "security keys are bound to {origin} (relying party id localhost)"
        )),
        "{:?}",
        srv.lines
    );
    assert!(
        !srv.lines.iter().any(|l| l.starts_with("WARNING")),
        "{:?}",
        srv.lines
    );
    assert_eq!(
        std::fs::read_to_string(data.join("server-url")).unwrap(),
        format!("{origin}\n")
    );

    // The admin command line, run against the data directory while the server runs, prints
    // links to the port the server really listens on (not the configured 8080).
    let (ok, out, err) = admin(&data, &["create-user", "alice"]);
    assert!(ok, "{err}");
    assert!(
        out.contains(&format!("{origin}/setup?token=")),
        "create-user follows the running server: {out}"
    );
    let (ok, out, err) = admin(&data, &["setup-root"]);
    assert!(ok, "{err}");
    assert!(out.contains(&format!("{origin}/setup?token=")), "{out}");

    // list-users keeps its columns aligned with a long name.
    let long = "a-user-name-that-is-longer-than-the-old-24-column-width";
    let (ok, _, err) = admin(&data, &["create-user", long, "--role", "admin"]);
    assert!(ok, "{err}");
    let (ok, out, err) = admin(&data, &["list-users"]);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    let header = lines[0];
    for col in ["ROLE", "MFA", "PASSWORD", "LOCKED", "CREATED"] {
        let at = header.find(col).unwrap();
        for l in &lines[1..] {
            assert_eq!(&l[at - 1..at], " ", "column {col} is aligned:\n{out}");
            assert_ne!(&l[at..at + 1], " ", "column {col} is aligned:\n{out}");
        }
    }
}

#[test]
fn the_start_warns_when_browsers_cannot_register_keys_at_the_public_url() {
    let dir = tempfile::tempdir().unwrap();
    for (url, says) in [
        ("http://mfa.example.com", "only to https:// pages"),
        (
            "http://127.0.0.1:8080",
            "cannot be registered at http://127.0.0.1:8080",
        ),
    ] {
        let data = dir.path().join(url.replace([':', '/', '.'], "_"));
        let srv = Started::spawn(
            &[
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--data-dir",
                data.to_str().unwrap(),
            ],
            &[("MAMORI_PUBLIC_URL", url)],
            &dir.path().join("server.log"),
        );
        assert_eq!(srv.line("public URL: ").as_deref(), Some(url));
        let warning = srv.line("WARNING: ").expect("a warning");
        assert!(warning.contains(says), "{url}: {warning}");
        assert!(warning.contains("--public-url"), "{warning}");
        let link = srv.line("setup link: ").unwrap();
        assert!(link.starts_with(&format!("{url}/setup?token=")), "{link}");
    }
}

// #15 delivery
#[test]
fn the_start_says_what_delivery_does_before_it_listens() {
    let dir = tempfile::tempdir().unwrap();
    let serve = |name: &str| {
        let data = dir.path().join(name);
        vec![
            "serve".to_string(),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--data-dir".into(),
            data.to_str().unwrap().to_string(),
        ]
    };
    let args = serve("bare");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // Nothing configured: both channels say so, and the recovery that needs them is flagged.
    let srv = Started::spawn(&args, &[], &dir.path().join("bare.log"));
    let at = |prefix: &str| {
        srv.lines
            .iter()
            .position(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} line before listening: {:?}", srv.lines))
    };
    let listening = at("listening on ");
    assert_eq!(listening, srv.lines.len() - 1, "{:?}", srv.lines);
    assert!(at("email delivery: not configured") < listening);
    assert!(at("phone delivery: not configured") < listening);
    assert!(at("warning: recovery by alternative factors is enabled") < listening);
    drop(srv);

    // Both configured: where each goes, and no warning.
    let secret = dir.path().join("phone-secret");
    std::fs::write(&secret, "a-webhook-secret-of-32-characters\n").unwrap();
    let args = serve("configured");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let srv = Started::spawn(
        &args,
        &[
            ("MAMORI_SMTP_HOST", "relay.example"),
            ("MAMORI_SMTP_PORT", "587"),
            ("MAMORI_PHONE_PROVIDER", "webhook"),
            (
                "MAMORI_PHONE_URL",
                "https://gateway.example/mamori?token=t0ken",
            ),
            ("MAMORI_PHONE_SECRET_FILE", secret.to_str().unwrap()),
        ],
        &dir.path().join("configured.log"),
    );
    let before: Vec<&String> = srv
        .lines
        .iter()
        .take_while(|l| !l.starts_with("listening on "))
        .collect();
    assert!(
        before
            .iter()
            .any(|l| l
                .starts_with("email delivery: smtp relay.example:587 security starttls, from ")),
        "{before:?}"
    );
    assert!(
        before
            .iter()
            .any(|l| *l == "phone delivery: webhook to gateway.example (sms and voice)"),
        "{before:?}"
    );
    assert!(
        !before.iter().any(|l| l.starts_with("warning:")),
        "{before:?}"
    );
    // The webhook URL's query (a gateway token, say) is not printed.
    assert!(
        !srv.lines.iter().any(|l| l.contains("t0ken")),
        "{:?}",
        srv.lines
    );
}

/// A form post through the client (its cookie store holds the CSRF and session cookies).
async fn post_form(
    c: &reqwest::Client,
    url: &str,
    form: &[(&str, &str)],
) -> (u16, Option<String>, Vec<String>, String) {
    let r = c.post(url).form(form).send().await.unwrap();
    let status = r.status().as_u16();
    let location = r
        .headers()
        .get(LOCATION)
        .map(|v| v.to_str().unwrap().to_string());
    let cookies = r
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    (status, location, cookies, r.text().await.unwrap())
}

async fn get_page(c: &reqwest::Client, url: &str) -> (u16, String) {
    let r = c.get(url).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// The value of `name="csrf" value="…"` in a page.
fn csrf_of(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token");
    html[at + 19..].split('"').next().unwrap().to_string()
}

/// Opens a setup link and chooses `password`: the status, where it leads, and the page.
async fn set_password(
    c: &reqwest::Client,
    link: &str,
    password: &str,
) -> (u16, Option<String>, String) {
    let (s, html) = get_page(c, link).await;
    assert_eq!(s, 200, "{html}");
    let token = link.split("token=").nth(1).unwrap();
    let base = link.split("/setup").next().unwrap();
    let (s, location, _, html) = post_form(
        c,
        &format!("{base}/setup"),
        &[
            ("csrf", &csrf_of(&html)),
            ("token", token),
            ("password", password),
            ("confirm", password),
        ],
    )
    .await;
    (s, location, html)
}

#[tokio::test]
async fn the_readme_command_leads_from_the_setup_link_to_an_enrolled_mfa_device() {
    // The README's command, `mamori-server serve`, with the data directory where it says
    // (under XDG_DATA_HOME). Only the port differs: tests run in parallel and 8080 may be
    // taken, so MAMORI_LISTEN asks for a free loopback port instead.
    let home = tempfile::tempdir().unwrap();
    let xdg = home.path().join("share");
    let srv = Started::spawn(
        &["serve"],
        &[
            ("HOME", home.path().to_str().unwrap()),
            ("XDG_DATA_HOME", xdg.to_str().unwrap()),
            ("MAMORI_LISTEN", "127.0.0.1:0"),
        ],
        &home.path().join("server.log"),
    );
    let data = xdg.join("mamori-server");
    assert!(
        data.join("mamori.db").exists(),
        "the README's data directory"
    );
    let base = format!("http://localhost:{}", srv.port());
    let link = srv.line("setup link: ").unwrap();
    assert!(link.starts_with(&format!("{base}/setup?token=")), "{link}");

    let c = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // The setup page shows the account in a labelled, read-only field.
    let (s, html) = get_page(&c, &link).await;
    assert_eq!(s, 200);
    assert!(
        html.contains("<label for=\"username\">User name</label>"),
        "{html}"
    );
    let field = html
        .split("<input id=\"username\"")
        .nth(1)
        .and_then(|r| r.split('>').next())
        .expect("the user name field");
    assert!(
        field.contains("value=\"root\"") && field.contains("readonly"),
        "{field}"
    );
    assert!(!field.contains("hidden"), "{field}");
    assert!(html.contains("minlength=\"15\""), "{html}");

    // Each password problem has its own message; the link stays usable.
    for (password, says) in [
        ("fourteen-chars", "at least 15 characters"),
        (
            "my-root-password-is-long",
            "must not contain your user name",
        ),
    ] {
        let (s, _, html) = set_password(&c, &link, password).await;
        assert_eq!(s, 400, "{password}");
        assert!(html.contains(says), "{password}: {html}");
    }
    // The right one signs root in, and root must enroll first.
    let (s, location, _) = set_password(&c, &link, PASSWORD).await;
    assert_eq!(s, 303);
    assert_eq!(location.as_deref(), Some("/?done=setup_signed_in"));
    let (s, html) = get_page(&c, &format!("{base}/?done=setup_signed_in")).await;
    assert_eq!(s, 200);
    assert!(
        html.contains("Your password is set and you are signed in."),
        "{html}"
    );
    assert!(html.contains("id=\"enroll-required\""), "{html}");

    // Enrollment: name the device, scan (here: read the secret), two consecutive codes.
    let (_, html) = get_page(&c, &format!("{base}/security/mfa/new")).await;
    let (s, location, _, html) = post_form(
        &c,
        &format!("{base}/security/mfa/new"),
        &[
            ("csrf", &csrf_of(&html)),
            ("name", "phone"),
            ("kind", "virtual"),
        ],
    )
    .await;
    assert_eq!(s, 303, "{html}");
    let (s, html) = get_page(&c, &format!("{base}{}", location.unwrap())).await;
    assert_eq!(s, 200, "{html}");
    let secret = html
        .split("<code id=\"secret\">")
        .nth(1)
        .and_then(|r| r.split('<').next())
        .unwrap()
        .replace(' ', "");
    let action = html
        .split("action=\"/security/mfa/")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_string();
    let t = now();
    let (s, location, cookies, html) = post_form(
        &c,
        &format!("{base}/security/mfa/{action}"),
        &[
            ("csrf", &csrf_of(&html)),
            ("code1", &code(&secret, t - 30)),
            ("code2", &code(&secret, t)),
        ],
    )
    .await;
    assert_eq!(s, 303, "{html}");
    assert!(location.unwrap().starts_with('/'));
    assert!(cookies.iter().any(|c| c.starts_with("mamori_session=")));
    let (_, html) = get_page(&c, &format!("{base}/")).await;
    assert!(!html.contains("id=\"enroll-required\""), "{html}");
    assert!(
        html.contains("href=\"/users\""),
        "root administers now: {html}"
    );

    // An ordinary user is led to enrollment too: require_mfa = "all" is the default.
    let (ok, out, err) = admin(&data, &["create-user", "bob"]);
    assert!(ok, "{err}");
    let bob_link = out
        .split("setup link (valid 1 hour): ")
        .nth(1)
        .unwrap()
        .trim();
    assert!(
        bob_link.starts_with(&format!("{base}/setup?token=")),
        "{out}"
    );
    let bob = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let (s, location, _) = set_password(&bob, bob_link, PASSWORD).await;
    assert_eq!(
        (s, location.as_deref()),
        (303, Some("/?done=setup_signed_in"))
    );
    let (_, html) = get_page(&bob, &format!("{base}/")).await;
    assert!(html.contains("id=\"enroll-required\""), "{html}");

    // And the deployment passes its own review on these two settings.
    let (_, out, _) = admin(&data, &["review", "--json"]);
    let review: Value = serde_json::from_str(&out).unwrap();
    for id in ["DR-PASSWORD-LENGTH", "DR-REQUIRE-MFA-ALL"] {
        let f = review["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["id"] == id)
            .unwrap();
        assert_eq!(f["outcome"], "pass", "{f}");
    }
}

#[tokio::test]
async fn an_administrator_without_mfa_is_led_to_enroll_before_administering() {
    let dir = tempfile::tempdir().unwrap();
    // require_mfa = "none" lets root sign in on its password alone; the administrative
    // functions stay closed to it all the same.
    let srv = Server::start(dir.path(), None, &[("MAMORI_REQUIRE_MFA", "none")]);
    let (s, v) = srv
        .post(
            "/api/v1/setup",
            None,
            json!({"token": srv.setup_token(), "password": "my-root-password-is-long"}),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("weak_password"))
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("must not contain the user name"),
        "{v}"
    );
    let (s, v) = srv
        .post(
            "/api/v1/setup",
            None,
            json!({"token": srv.setup_token(), "password": PASSWORD}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = srv.sign_in("root").await;
    assert_eq!((s, v["status"].as_str()), (200, Some("signed_in")), "{v}");
    let token = v["token"].as_str().unwrap().to_string();

    for (method, path, body) in [
        ("GET", "/api/v1/users", None),
        ("POST", "/api/v1/users", Some(json!({"user": "carol"}))),
        ("GET", "/api/v1/app-keys", None),
        ("POST", "/api/v1/app-keys", Some(json!({"name": "vpn"}))),
        ("GET", "/api/v1/review", None),
        ("GET", "/api/v1/tokens", None),
    ] {
        let (s, _, v) = srv.call(method, path, Some(&token), body).await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (403, Some("admin_without_mfa")),
            "{method} {path}: {v}"
        );
    }
    // What every account may do still works.
    let (s, v) = srv.get("/api/v1/me", Some(&token)).await;
    assert_eq!(s, 200, "{v}");

    // The console: the dashboard leads to enrollment, administrative pages explain.
    let c = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let cookie = format!("mamori_session={token}");
    let html = c
        .get(format!("{}/", srv.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // (Root's own alert leads there; another administrator gets
    // "You are an administrator without an MFA device", tests/console/console_browser.rs.)
    assert!(html.contains("Your root account has no MFA."), "{html}");
    assert!(html.contains("href=\"/security/mfa/new\""), "{html}");
    assert!(
        !html.contains("href=\"/users\""),
        "no administrative navigation: {html}"
    );
    for path in ["/users", "/app-keys", "/review"] {
        let r = c
            .get(format!("{}{path}", srv.url))
            .header("cookie", &cookie)
            .header("accept-language", "ja")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{path}");
        let html = r.text().await.unwrap();
        assert!(
            html.contains(
                "管理者は、管理機能を使う前に自分の MFA デバイスを割り当てる必要があります。"
            ),
            "{path}: {html}"
        );
    }

    // Once root has a device, the same requests are answered, and every refusal above was
    // audited.
    let (_, _, full) = srv.enroll(&token, "phone").await;
    let (s, v) = srv.get("/api/v1/users", Some(&full)).await;
    assert_eq!(s, 200, "{v}");
    let refused = srv.audit(&full, "kind=admin.without_mfa").await;
    assert_eq!(refused.len(), 9, "{refused:?}");
    assert!(refused
        .iter()
        .all(|e| e["account"] == "root" && e["result"] == "refused"));
    assert!(refused.iter().any(|e| e["detail"] == "console /users"));
    assert!(refused.iter().any(|e| e["detail"] == "list users"));
}
