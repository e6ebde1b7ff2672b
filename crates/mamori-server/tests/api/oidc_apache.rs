//! A real relying party in a real browser (#17): Debian's Apache httpd with
//! **mod_auth_openidc**, started here on loopback ports with a generated configuration, protects
//! a page that prints the `OIDC_CLAIM_*` variables the module sets; headless Chromium opens it.
//!
//! mamori is at `http://localhost:PORT` and the applications at `http://127.0.0.1:PORT`: two
//! different sites, so the console's `SameSite=Strict` session cookie is not sent when an
//! application's link sends the browser to mamori, exactly as in a deployment where the
//! applications live on other domains. Two virtual hosts are two clients: `A` (trusted, no
//! consent) and `B` (asks consent once).
//!
//! The story: A's link → mamori's sign-in → password + TOTP → A's page shows
//! `preferred_username` and `amr` with `otp`; B's link → consent only, no sign-in (single
//! sign-on across sites); a security key is registered; A's part that needs a key
//! (`Require claim acr:…` with `acr_values`) → mamori steps up: password + security key → `amr`
//! with `hwk`; A's sign-out link → mamori asks, ends the console session and returns to A.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mamori_testkit::browser::{with_browser, Browser, Options};
use serde_json::json;

use super::common::{code, now, Backend, Server, PASSWORD};
use super::forward_auth::free_port;
use super::oidc::create_client;

/// Apache httpd, stopped when dropped.
struct Apache {
    child: Child,
}

impl Drop for Apache {
    fn drop(&mut self) {
        // SIGTERM stops the parent and its children (`-DFOREGROUND`).
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
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

/// A client registered with mamori for one virtual host: (client_id, secret).
type Client = (String, String);

/// One virtual host: a public index with a link into `/protected/`, which mod_auth_openidc
/// guards, configured as docs/oidc.md ("Apache httpd with mod_auth_openidc") says.
fn vhost(d: &str, port: u16, issuer: &str, (id, secret): &Client, tag: &str) -> String {
    format!(
        r#"
Listen 127.0.0.1:{port}
<VirtualHost 127.0.0.1:{port}>
  ServerName 127.0.0.1
  DocumentRoot {d}/htdocs
  OIDCProviderMetadataURL {issuer}/.well-known/openid-configuration
  OIDCClientID {id}
  OIDCClientSecret {secret}
  OIDCRedirectURI http://127.0.0.1:{port}/protected/redirect_uri
  OIDCCryptoPassphrase test-passphrase-{tag}-{secret}
  OIDCScope "openid profile email"
  OIDCPKCEMethod S256
  # Both hosts are 127.0.0.1 (cookies ignore ports): each keeps its own cookies.
  OIDCCookie mamori_rp_{tag}
  OIDCStateCookiePrefix mamori_rp_state_{tag}_
  OIDCCookieSameSite On
  <Location /protected/>
    AuthType openid-connect
    Require valid-user
  </Location>
  # Step-up: this part needs a security key; mod_auth_openidc sends a session that used less
  # back to mamori asking for it with acr_values.
  <Location /protected/strong/>
    AuthType openid-connect
    Require claim acr:urn:mamori:acr:phr
    OIDCUnAutzAction auth
    OIDCPathAuthRequestParams acr_values=urn:mamori:acr:phr
  </Location>
</VirtualHost>
"#
    )
}

/// Starts Apache with clients `a` and `b` on `ports`.
fn apache(dir: &Path, issuer: &str, a: &Client, b: &Client, ports: [u16; 2]) -> Apache {
    let htdocs = dir.join("htdocs");
    std::fs::create_dir_all(htdocs.join("protected/strong")).unwrap();
    std::fs::create_dir_all(dir.join("run")).unwrap();
    std::fs::write(
        htdocs.join("index.html"),
        "<!doctype html><title>relying party</title>\
         <p id=\"public\">public page</p><a id=\"go\" href=\"/protected/\">open</a>\n",
    )
    .unwrap();
    // Server-side includes print what the module passes on (OIDCPassClaimsAs both).
    let claims_page = "<!doctype html><title>protected</title>\
         <p id=\"claims\">user=<!--#echo var=\"OIDC_CLAIM_preferred_username\" --> \
         amr=<!--#echo var=\"OIDC_CLAIM_amr\" --> acr=<!--#echo var=\"OIDC_CLAIM_acr\" --> \
         email=<!--#echo var=\"OIDC_CLAIM_email\" --> \
         host=<!--#echo var=\"SERVER_PORT\" --></p>\
         <a id=\"logout\" href=\"/protected/redirect_uri?logout=http://127.0.0.1:\
         <!--#echo var=\"SERVER_PORT\" -->/\">sign out</a> \
         <a id=\"strong\" href=\"/protected/strong/\">strong</a>\n";
    std::fs::write(htdocs.join("protected/index.shtml"), claims_page).unwrap();
    std::fs::write(htdocs.join("protected/strong/index.shtml"), claims_page).unwrap();
    // Apache started as root serves as www-data, which must read the pages.
    for p in [
        dir,
        &htdocs,
        &htdocs.join("protected"),
        &htdocs.join("protected/strong"),
    ] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    for f in [
        "index.html",
        "protected/index.shtml",
        "protected/strong/index.shtml",
    ] {
        std::fs::set_permissions(htdocs.join(f), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let d = dir.display();
    let m = "/usr/lib/apache2/modules";
    let conf = format!(
        r#"ServerRoot {d}
PidFile {d}/run/httpd.pid
DefaultRuntimeDir {d}/run
ErrorLog {d}/error.log
LogLevel warn auth_openidc:info
LoadModule mpm_event_module {m}/mod_mpm_event.so
LoadModule authn_core_module {m}/mod_authn_core.so
LoadModule authz_core_module {m}/mod_authz_core.so
LoadModule authz_user_module {m}/mod_authz_user.so
LoadModule mime_module {m}/mod_mime.so
LoadModule dir_module {m}/mod_dir.so
LoadModule include_module {m}/mod_include.so
LoadModule auth_openidc_module {m}/mod_auth_openidc.so
User www-data
Group www-data
ServerName 127.0.0.1
TypesConfig /etc/mime.types
DirectoryIndex index.html index.shtml
StartServers 1
<Directory {d}/htdocs>
  Options +Includes
  Require all granted
  AddType text/html .shtml
  AddOutputFilter INCLUDES .shtml
</Directory>
{}{}"#,
        vhost(&d.to_string(), ports[0], issuer, a, "a"),
        vhost(&d.to_string(), ports[1], issuer, b, "b"),
    );
    let path = dir.join("httpd.conf");
    std::fs::write(&path, conf).unwrap();
    let log = dir.join("error.log");
    let mut child = Command::new("/usr/sbin/apache2")
        .arg("-f")
        .arg(&path)
        .arg("-DFOREGROUND")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("stderr.log")).unwrap())
        .spawn()
        .expect("apache2 (apt-get install apache2 libapache2-mod-auth-openidc)");
    let deadline = Instant::now() + Duration::from_secs(30);
    let up = |p: u16| std::net::TcpStream::connect(("127.0.0.1", p)).is_ok();
    while !ports.iter().all(|p| up(*p)) {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "apache2 exited with {status}: {}{}",
                std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default(),
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < deadline,
            "apache2 did not listen: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Apache { child }
}

/// Waits until the page's body contains `want` (redirects and refreshes may still run).
async fn wait_body(b: &Browser, want: &str, log: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = b.body_text().await;
        if text.contains(want) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "the page never showed {want:?}: {text}\nat {}\napache: {}",
            b.driver.current_url().await.unwrap(),
            std::fs::read_to_string(log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the browser is on mamori at `path`.
async fn wait_path(b: &Browser, path: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let url = b.driver.current_url().await.unwrap();
        if url.host_str() == Some("localhost") && url.path() == path {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "never reached {path}: at {url}: {}",
            b.body_text().await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the page has the element `id` (a page that refreshes onward may come first).
async fn wait_el(b: &Browser, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !b.exists(id).await {
        assert!(
            Instant::now() < deadline,
            "no #{id} at {}: {}",
            b.driver.current_url().await.unwrap(),
            b.body_text().await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The application's public page, then its link into the protected part: a navigation the
/// application's page starts, as a person's click does (another site, for the browser).
async fn open_protected(b: &Browser, port: u16) {
    b.goto(&format!("http://127.0.0.1:{port}/")).await;
    b.click("go").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_through_apache_mod_auth_openidc() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let issuer = format!("http://localhost:{port}");
    let srv = Server::start_on(
        &format!("127.0.0.1:{port}"),
        &dir.path().join("data"),
        Backend::Sqlite.url(),
        &[("MAMORI_PUBLIC_URL", &issuer)],
    );
    let t = srv.root_session().await;
    let (_, _, root) = srv.enroll(&t, "phone").await;
    let t = srv
        .new_user(
            &root,
            json!({"user": "alice", "email": "alice@example.com"}),
        )
        .await;
    let (_, secret, _) = srv.enroll(&t, "phone").await;
    // The redirect URIs name the virtual hosts' ports, so they are chosen first.
    let rp_dir = dir.path().join("apache");
    std::fs::create_dir_all(&rp_dir).unwrap();
    let client = |name: &str, rp_port: u16, trusted: bool| -> Client {
        let cb = format!("http://127.0.0.1:{rp_port}/protected/redirect_uri");
        let back = format!("http://127.0.0.1:{rp_port}/");
        let mut args = vec![
            name,
            "--redirect-uri",
            &cb,
            "--post-logout-redirect-uri",
            &back,
        ];
        if trusted {
            args.push("--trusted");
        }
        let (id, s) = create_client(&srv.data_dir, None, &args);
        (id, s.expect("a confidential client"))
    };
    let (pa, pb) = (free_port(), free_port());
    let a = client("apache-a", pa, true);
    let b = client("apache-b", pb, false);
    let rp = apache(&rp_dir, &issuer, &a, &b, [pa, pb]);
    let log = rp_dir.join("error.log");
    let public = issuer.clone();
    with_browser(
        "oidc-apache",
        &issuer,
        Options::default(),
        move |b| async move {
            // A: sent to mamori, which signs in with password and TOTP, then back.
            open_protected(&b, pa).await;
            wait_path(&b, "/sign-in").await;
            b.fill("user", "alice").await;
            b.fill("password", PASSWORD).await;
            b.click("sign-in").await;
            assert_eq!(b.path().await, "/sign-in/mfa");
            b.fill("code", &code(&secret, now() + 30)).await;
            b.click("verify").await;
            let text = wait_body(&b, "user=alice", &log).await;
            assert!(text.contains("amr=pwd,otp,mfa"), "{text}");
            assert!(text.contains("acr=urn:mamori:acr:2fa"), "{text}");
            assert!(text.contains("email=alice@example.com"), "{text}");
            assert!(text.contains(&format!("host={pa}")), "{text}");
            b.shot("a-totp").await;

            // B: single sign-on from another site; its consent page, no password.
            open_protected(&b, pb).await;
            wait_path(&b, "/oidc/authorize").await;
            wait_el(&b, "consent-allow").await;
            b.shot("b-consent").await;
            b.click("consent-allow").await;
            let text = wait_body(&b, "user=alice", &log).await;
            assert!(text.contains(&format!("host={pb}")), "{text}");
            assert!(text.contains("amr=pwd,otp,mfa"), "{text}");

            // A security key, registered in the console.
            b.add_virtual_authenticator("ctap2").await;
            b.goto(&format!("{public}/security/mfa/new")).await;
            b.fill("name", "desk-key").await;
            b.el("kind-key").await.click().await.unwrap();
            b.click("continue").await;
            b.click("register-key").await;
            assert_eq!(b.path().await, "/security?done=key_added");

            // A's part that needs a security key: mod_auth_openidc asks again with
            // acr_values; mamori steps up (a fresh sign-in) and the key gives `hwk`.
            open_protected(&b, pa).await;
            wait_body(&b, "user=alice", &log).await;
            b.click("strong").await;
            wait_path(&b, "/sign-in").await;
            b.fill("user", "alice").await;
            b.fill("password", PASSWORD).await;
            b.click("sign-in").await;
            assert_eq!(b.path().await, "/sign-in/mfa");
            b.click("use-key").await;
            let text = wait_body(&b, "user=alice", &log).await;
            assert!(text.contains("amr=pwd,hwk,mfa"), "{text}");
            assert!(text.contains("acr=urn:mamori:acr:phr"), "{text}");
            let at = b.driver.current_url().await.unwrap();
            assert_eq!(at.path(), "/protected/strong/", "{at}");
            b.shot("a-key").await;

            // A's sign-out link: mod_auth_openidc ends its session and sends the browser to
            // mamori's end-session endpoint, which asks, ends the console session and goes back
            // to the registered address.
            b.click("logout").await;
            wait_path(&b, "/oidc/logout").await;
            wait_el(&b, "logout-confirm").await;
            b.shot("logout-confirm").await;
            b.click("logout-confirm").await;
            wait_body(&b, "public page", &log).await;
            let at = b.driver.current_url().await.unwrap();
            assert_eq!(at.port(), Some(pa), "{at}");
            b.goto(&format!("{public}/security")).await;
            assert_eq!(b.path().await, "/sign-in", "the console session ended");
            // And A asks mamori again.
            open_protected(&b, pa).await;
            wait_path(&b, "/sign-in").await;
        },
    )
    .await;
    // The provider's side of the story, from its audit log.
    let audit = serde_json::to_string(&srv.audit(&root, "").await).unwrap();
    for event in ["oidc.consent", "oidc.token", "oidc.logout"] {
        assert!(
            audit.contains(event),
            "{event} missing from the audit log: {audit}"
        );
    }
    drop(rp);
}

/// An account that has no MFA device yet (every account must have one) is led through
/// enrolling one on its way to the application, and then on to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_account_enrolls_on_its_way_to_the_application() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let issuer = format!("http://localhost:{port}");
    let srv = Server::start_on(
        &format!("127.0.0.1:{port}"),
        &dir.path().join("data"),
        Backend::Sqlite.url(),
        &[("MAMORI_PUBLIC_URL", &issuer)],
    );
    let t = srv.root_session().await;
    let (_, _, root) = srv.enroll(&t, "phone").await;
    srv.new_user(&root, json!({"user": "carol"})).await;
    let rp_dir = dir.path().join("apache");
    std::fs::create_dir_all(&rp_dir).unwrap();
    let (pa, pb) = (free_port(), free_port());
    let client = |name: &str, p: u16| -> Client {
        let cb = format!("http://127.0.0.1:{p}/protected/redirect_uri");
        let (id, s) = create_client(
            &srv.data_dir,
            None,
            &[name, "--redirect-uri", &cb, "--trusted"],
        );
        (id, s.unwrap())
    };
    let (a, b) = (client("apache-a", pa), client("apache-b", pb));
    let rp = apache(&rp_dir, &issuer, &a, &b, [pa, pb]);
    let log = rp_dir.join("error.log");
    with_browser(
        "oidc-apache-enroll",
        &issuer,
        Options::default(),
        move |b| async move {
            open_protected(&b, pa).await;
            wait_path(&b, "/sign-in").await;
            b.fill("user", "carol").await;
            b.fill("password", PASSWORD).await;
            b.click("sign-in").await;
            b.shot("after-password").await;
            let secret = b.start_enrollment("phone").await;
            b.enter_two_codes(&secret).await;
            let text = wait_body(&b, "user=carol", &log).await;
            assert!(text.contains("amr=pwd,otp,mfa"), "{text}");
            assert!(text.contains(&format!("host={pa}")), "{text}");
        },
    )
    .await;
    drop(rp);
}
