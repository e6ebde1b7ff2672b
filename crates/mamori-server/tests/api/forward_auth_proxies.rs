//! Forward authentication behind the real reverse proxies (issue #18): Debian's **nginx**
//! (`auth_request`) and **Caddy** (`forward_auth`), each started here on a loopback port with
//! a generated configuration in a temporary directory (no system configuration, no service),
//! in front of a small upstream application that echoes the `Remote-*` headers it receives.
//! A client with cookies goes through the proxy: it is sent to mamori's sign-in, signs in
//! with password and TOTP, comes back and sees the application with its identity; a second
//! application needs no new sign-in; a denied path is 403; after sign-out both ask again.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;

use super::common::Backend;
use super::forward_auth::{console_sign_in, free_port, set_cookie, Browser, Fwd};

/// A proxy process, stopped when dropped.
pub struct Proxy {
    child: Child,
    pub port: u16,
    name: &'static str,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `port` accepts connections (the proxy has read its configuration), or fails
/// with the proxy's log.
fn wait_for(port: u16, log: &Path, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "the proxy exited with {status}: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "the proxy did not listen on {port}: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// nginx with `auth_request`, as docs/forward-auth.md configures it, for
/// `app1`/`app2.mamori.test`.
fn nginx(dir: &Path, mamori: u16, upstream: u16) -> Proxy {
    nginx_for(dir, mamori, upstream, "mamori.test")
}

/// [`nginx`] for `app1`/`app2.DOMAIN`.
pub fn nginx_for(dir: &Path, mamori: u16, upstream: u16, domain: &str) -> Proxy {
    let port = free_port();
    let d = dir.display();
    let conf = format!(
        r#"daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/nginx-error.log info;
events {{ worker_connections 64; }}
http {{
  access_log {d}/nginx-access.log;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  server {{
    listen 127.0.0.1:{port};
    server_name app1.{domain} app2.{domain};

    location = /_mamori {{
      internal;
      proxy_pass http://127.0.0.1:{mamori}/api/v1/forward-auth;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-URL $scheme://$http_host$request_uri;
      proxy_set_header X-Original-Method $request_method;
    }}

    location / {{
      auth_request /_mamori;
      auth_request_set $mamori_user $upstream_http_remote_user;
      auth_request_set $mamori_groups $upstream_http_remote_groups;
      auth_request_set $mamori_email $upstream_http_remote_email;
      auth_request_set $mamori_name $upstream_http_remote_name;
      auth_request_set $mamori_location $upstream_http_location;
      error_page 401 =302 $mamori_location;
      proxy_set_header Remote-User $mamori_user;
      proxy_set_header Remote-Groups $mamori_groups;
      proxy_set_header Remote-Email $mamori_email;
      proxy_set_header Remote-Name $mamori_name;
      proxy_set_header Host $host;
      proxy_pass http://127.0.0.1:{upstream};
    }}
  }}
}}
"#
    );
    let path = dir.join("nginx.conf");
    std::fs::write(&path, conf).unwrap();
    let log = dir.join("nginx-stderr.log");
    let mut child = Command::new("nginx")
        .arg("-p")
        .arg(dir)
        .arg("-e")
        .arg(dir.join("nginx-error.log"))
        .arg("-c")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("nginx (apt-get install nginx)");
    wait_for(port, &dir.join("nginx-error.log"), &mut child);
    Proxy {
        child,
        port,
        name: "nginx",
    }
}

/// Caddy with `forward_auth`, as docs/forward-auth.md configures it.
fn caddy(dir: &Path, mamori: u16, upstream: u16) -> Proxy {
    let port = free_port();
    let conf = format!(
        r#"{{
  admin off
  auto_https off
}}

http://app1.mamori.test:{port}, http://app2.mamori.test:{port} {{
  bind 127.0.0.1
  forward_auth 127.0.0.1:{mamori} {{
    uri /api/v1/forward-auth
    copy_headers Remote-User Remote-Groups Remote-Email Remote-Name
  }}
  reverse_proxy 127.0.0.1:{upstream}
}}
"#
    );
    let path = dir.join("Caddyfile");
    std::fs::write(&path, conf).unwrap();
    let log = dir.join("caddy.log");
    let mut child = Command::new("caddy")
        .arg("run")
        .arg("--config")
        .arg(&path)
        .arg("--adapter")
        .arg("caddyfile")
        // Caddy's own state stays in the temporary directory.
        .env("HOME", dir)
        .env("XDG_DATA_HOME", dir.join("data"))
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("caddy (apt-get install caddy)");
    wait_for(port, &log, &mut child);
    Proxy {
        child,
        port,
        name: "caddy",
    }
}

/// The protected application: answers every request with what it was told about the user.
pub async fn upstream() -> u16 {
    async fn echo(headers: HeaderMap, uri: axum::http::Uri) -> String {
        let h = |n: &str| {
            headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        format!(
            "host={} path={} user={} groups={} email={}",
            h("host"),
            uri.path(),
            h("remote-user"),
            h("remote-groups"),
            h("remote-email"),
        )
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = axum::Router::new().fallback(echo);
    tokio::spawn(async move { axum::serve(listener, app).await });
    port
}

fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

/// The whole story through one proxy, as `user` (in group `groups`).
async fn story(f: &Fwd, proxy: &Proxy, user: &str, secret: &str, groups: &str) {
    let p = proxy.port;
    let name = proxy.name;
    let browser: Browser = f.browser(&[("app1.mamori.test", p), ("app2.mamori.test", p)]);
    let app1 = format!("http://app1.mamori.test:{p}/hello?x=1&y=2");
    let app2 = format!("http://app2.mamori.test:{p}/");
    // Not signed in: sent to mamori, with the whole address (query included) to come back to.
    let r = browser.get(&app1).await;
    assert_eq!(r.status().as_u16(), 302, "{name}");
    let to = location(&r);
    assert_eq!(
        to,
        format!(
            "{}/sso?rd=http%3A%2F%2Fapp1%2Emamori%2Etest%3A{p}%2Fhello%3Fx%3D1%26y%3D2",
            f.public
        ),
        "{name}"
    );
    // A bypass path needs nobody, and the application learns no identity, not even one the
    // client made up.
    let r = browser
        .send(
            browser
                .client
                .get(format!("http://app1.mamori.test:{p}/public/a.css"))
                .header("remote-user", "root"),
        )
        .await;
    assert_eq!(r.status().as_u16(), 200, "{name}");
    let body = r.text().await.unwrap();
    assert!(body.contains(" user= "), "{name}: {body}");
    // Password + TOTP in the console, then back to the application.
    let (_, back) = console_sign_in(&browser, &f.public, &to, user, secret).await;
    assert_eq!(back, app1, "{name}");
    let r = browser.get(&back).await;
    assert_eq!(r.status().as_u16(), 200, "{name}");
    let body = r.text().await.unwrap();
    assert!(body.contains(&format!(" user={user} ")), "{name}: {body}");
    assert!(
        body.contains(&format!(" groups={groups} ")),
        "{name}: {body}"
    );
    assert!(body.contains("host=app1.mamori.test"), "{name}: {body}");
    // The second application: no new sign-in (the cookie is the parent domain's).
    let r = browser.get(&app2).await;
    assert_eq!(r.status().as_u16(), 200, "{name}");
    let body = r.text().await.unwrap();
    assert!(body.contains("host=app2.mamori.test"), "{name}: {body}");
    assert!(body.contains(&format!(" user={user} ")), "{name}: {body}");
    // A denied rule: 403, and the application is never reached.
    let r = browser
        .get(&format!("http://app1.mamori.test:{p}/denied"))
        .await;
    assert_eq!(r.status().as_u16(), 403, "{name}");
    assert!(!r.text().await.unwrap().contains("host="), "{name}");
    // Sign out at mamori: both applications ask again.
    let r = browser.get(&format!("{}/security", f.public)).await;
    assert_eq!(r.status().as_u16(), 200, "{name}");
    let csrf = browser.cookie("auth.mamori.test", "mamori_csrf").unwrap();
    let r = browser
        .post_form(
            &format!("{}/sign-out", f.public),
            &[("csrf", csrf.as_str())],
        )
        .await;
    assert_eq!(r.status().as_u16(), 303, "{name}");
    assert!(set_cookie(r.headers(), "mamori_sso").is_some(), "{name}");
    for url in [&app1, &app2] {
        let r = browser.get(url).await;
        assert_eq!(r.status().as_u16(), 302, "{name} {url}");
        assert!(
            location(&r).starts_with(&format!("{}/sso?rd=", f.public)),
            "{name}"
        );
    }
}

#[tokio::test]
async fn nginx_and_caddy_in_front_of_applications() {
    let dir = tempfile::tempdir().unwrap();
    let f = Fwd::start(dir.path(), &Backend::Sqlite).await;
    let mamori = f.port;
    let up = upstream().await;
    let nginx_dir = dir.path().join("nginx");
    std::fs::create_dir_all(&nginx_dir).unwrap();
    let caddy_dir = dir.path().join("caddy");
    std::fs::create_dir_all(&caddy_dir).unwrap();
    let n = nginx(&nginx_dir, mamori, up);
    let c = caddy(&caddy_dir, mamori, up);
    // Each proxy with its own account: a TOTP step is accepted once, so the two sign-ins must
    // not share a device.
    story(&f, &n, "alice", &f.alice_secret, "ops").await;
    story(&f, &c, "bob", &f.bob_secret, "").await;
}
