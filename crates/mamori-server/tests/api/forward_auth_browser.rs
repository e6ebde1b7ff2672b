//! Forward authentication as a person meets it (issue #18): headless Chromium in front of
//! Debian's nginx (`auth_request`) protecting two applications, mamori's console for the
//! sign-in. The names are under `mamori.localhost`: Chromium resolves every `*.localhost` name
//! to loopback itself (RFC 6761) and treats it as a secure context, so the security key works
//! over plain HTTP on loopback, and the single-sign-on cookie is scoped to `mamori.localhost`.
//!
//! The story: open app1 → sent to mamori → password + TOTP → back on app1, which shows who
//! signed in; app2 needs no new sign-in; a denied path is nginx's 403; the `phishing_resistant`
//! path refuses the TOTP session of an account without a key; a security key is registered
//! (the virtual authenticator) and the same path then steps up in place with it; after
//! signing out both applications ask again; signing in with the key opens the key path at once.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Duration;

use mamori_testkit::browser::{with_browser, Options};

use super::common::{code, now, Backend, PASSWORD};
use super::forward_auth::Fwd;
use super::forward_auth_proxies::{nginx_for, upstream};

const DOMAIN: &str = "mamori.localhost";

/// Waits until the page's body contains `want` (a redirect chain may still be running).
async fn wait_body(b: &mamori_testkit::browser::Browser, want: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let text = b.body_text().await;
        if text.contains(want) {
            return text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the page never showed {want:?}: {text}\nat {}",
            b.driver.current_url().await.unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Password, then the TOTP code of the next step (enrollment spent the current one).
async fn password_and_code(b: &mamori_testkit::browser::Browser, user: &str, secret: &str) {
    assert_eq!(b.path().await, "/sign-in", "sent to mamori's sign-in");
    b.fill("user", user).await;
    b.fill("password", PASSWORD).await;
    b.click("sign-in").await;
    assert_eq!(b.path().await, "/sign-in/mfa");
    b.fill("code", &code(secret, now() + 30)).await;
    b.click("verify").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_through_nginx_signs_in_once_for_every_application() {
    let dir = tempfile::tempdir().unwrap();
    let f = Fwd::start_in(dir.path(), &Backend::Sqlite, DOMAIN).await;
    let up = upstream().await;
    let proxy_dir = dir.path().join("nginx");
    std::fs::create_dir_all(&proxy_dir).unwrap();
    let proxy = nginx_for(&proxy_dir, f.port, up, DOMAIN);
    let p = proxy.port;
    let public = f.public.clone();
    let secret = f.alice_secret.clone();
    let base = public.clone();
    with_browser(
        "forward-auth-nginx",
        &base,
        Options::default(),
        move |b| async move {
            let app1 = format!("http://app1.{DOMAIN}:{p}/hello");
            let app2 = format!("http://app2.{DOMAIN}:{p}/");
            // Not signed in: nginx sends the browser to mamori.
            b.goto(&app1).await;
            let at = b.driver.current_url().await.unwrap();
            assert_eq!(
                at.host_str(),
                Some(format!("auth.{DOMAIN}").as_str()),
                "{at}"
            );
            password_and_code(&b, "alice", &secret).await;
            // Back on the application, which learns who signed in and the groups.
            let text = wait_body(&b, "user=alice").await;
            assert!(text.contains(&format!("host=app1.{DOMAIN}")), "{text}");
            assert!(text.contains("path=/hello"), "{text}");
            assert!(text.contains("groups=ops"), "{text}");
            b.shot("app1").await;
            // The second application: no sign-in.
            b.goto(&app2).await;
            let text = wait_body(&b, "user=alice").await;
            assert!(text.contains(&format!("host=app2.{DOMAIN}")), "{text}");
            // A path the rules deny: nginx's 403 page, the application is not reached.
            b.goto(&format!("http://app1.{DOMAIN}:{p}/denied")).await;
            let text = wait_body(&b, "403").await;
            assert!(!text.contains("user="), "{text}");
            // The phishing_resistant path with a TOTP session just given: refused, not a loop.
            b.goto(&format!("http://app1.{DOMAIN}:{p}/key")).await;
            let text = wait_body(&b, "HTTP 403").await;
            assert!(!text.contains("user="), "{text}");
            assert!(b.path().await.starts_with("/sso?rd="), "{}", b.path().await);
            // Register a security key in the console (the virtual authenticator).
            b.add_virtual_authenticator("ctap2").await;
            b.goto(&format!("{public}/security/mfa/new")).await;
            b.fill("name", "desk-key").await;
            b.el("kind-key").await.click().await.unwrap();
            b.click("continue").await;
            b.click("register-key").await;
            assert_eq!(b.path().await, "/security?done=key_added");
            // Now the key path offers the step-up in place: confirm with the key, and the browser
            // goes on to the application without signing in again.
            b.goto(&format!("http://app1.{DOMAIN}:{p}/key")).await;
            assert!(b.path().await.starts_with("/sso?rd="), "{}", b.path().await);
            assert!(b.exists("step-up").await, "{}", b.body_text().await);
            b.shot("step-up").await;
            b.click("verify-key").await;
            let text = wait_body(&b, "user=alice").await;
            assert!(text.contains("path=/key"), "{text}");
            // Sign out at mamori: both applications ask again.
            b.goto(&format!("{public}/security")).await;
            b.sign_out().await;
            for url in [&app1, &app2] {
                b.goto(url).await;
                let at = b.driver.current_url().await.unwrap();
                assert_eq!(
                    at.host_str(),
                    Some(format!("auth.{DOMAIN}").as_str()),
                    "{url}"
                );
                assert_eq!(b.path().await, "/sign-in", "{url}");
            }
            // The key path, signing in with the key: allowed at once.
            b.goto(&format!("http://app1.{DOMAIN}:{p}/key")).await;
            assert_eq!(b.path().await, "/sign-in");
            b.fill("user", "alice").await;
            b.fill("password", PASSWORD).await;
            b.click("sign-in").await;
            assert_eq!(b.path().await, "/sign-in/mfa");
            b.click("use-key").await;
            let text = wait_body(&b, "user=alice").await;
            assert!(text.contains("path=/key"), "{text}");
            b.shot("key").await;
        },
    )
    .await;
    drop(proxy);
}
