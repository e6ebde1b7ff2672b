//! Harness of the console tests: starts the real `mamori-server` binary (temporary data
//! directory, SQLite) and, through the test kit, a `chromedriver` on a free port and a headless
//! Chromium with a fresh profile, all stopped at the end of the test (Drop guards), also when it
//! fails. Screenshots go to `target/test-artifacts/console/` (one per main page, and one with
//! the page's HTML on every failure).
#![allow(
    dead_code,
    unused_imports,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::future::Future;
use std::path::Path;

use mamori_otp::Secret;
use mamori_testkit::process::{free_port, serve_command, ServerProcess};

pub use mamori_testkit::browser::{
    artifacts_dir, next_code, step_start_time, Browser, ChromeDriver, Options, DESKTOP, PHONE,
};
pub use mamori_testkit::{now, totp_at as code, PASSWORD};

/// A six-digit code that is right for no step near now.
pub fn wrong_code(secret: &Secret) -> String {
    mamori_testkit::wrong_code_near(secret, now(), 20)
}

/// A running server process, stopped with SIGTERM when dropped.
pub struct Server {
    process: ServerProcess,
    pub url: String,
    pub setup_link: Option<String>,
    pub dir: tempfile::TempDir,
}

impl Server {
    /// `serve` on `listen` with a fresh data directory (SQLite), extra environment (e.g.
    /// `MAMORI_REQUIRE_MFA`) and no database or public URL from the caller's environment.
    fn spawn(listen: &str, env: &[(&str, &str)]) -> (ServerProcess, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let binary = Path::new(env!("CARGO_BIN_EXE_mamori-server"));
        let mut cmd = serve_command(binary, listen, dir.path());
        cmd.env_remove("MAMORI_DATABASE")
            .env_remove("MAMORI_PUBLIC_URL");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let process = ServerProcess::spawn(cmd, &dir.path().join("server.log"));
        (process, dir)
    }

    /// Starts a server on 127.0.0.1:0.
    pub fn start(env: &[(&str, &str)]) -> Server {
        let (process, dir) = Server::spawn("127.0.0.1:0", env);
        // On loopback the server names itself http://localhost:PORT (its default public URL,
        // which setup links use): the browser stays on that one host, so its cookies follow it
        // from the setup link to every other page.
        let url = process
            .public_url
            .clone()
            .filter(|u| u.starts_with("http://localhost:"))
            .unwrap_or_else(|| process.listening.clone());
        Server {
            url,
            setup_link: process.setup_link.clone(),
            process,
            dir,
        }
    }

    /// Like [`Server::start`], but on a port chosen here and with the public URL
    /// `http://localhost:PORT`, which the browser then opens: WebAuthn needs a relying-party id
    /// that is a domain name (not an IP address) and a secure context (`localhost` is one).
    pub fn start_on_localhost(env: &[(&str, &str)]) -> Server {
        let port = free_port();
        let public = format!("http://localhost:{port}");
        // No public URL configured: on loopback the default is http://localhost:PORT, what
        // a security key needs (issue #15: keys work with the README's command).
        let (process, dir) = Server::spawn(&format!("127.0.0.1:{port}"), env);
        assert_eq!(process.public_url.as_deref(), Some(public.as_str()));
        Server {
            url: public,
            setup_link: process.setup_link.clone(),
            process,
            dir,
        }
    }

    /// The one-time root setup link printed on first start.
    pub fn setup_link(&self) -> String {
        self.setup_link.clone().expect("a setup link was printed")
    }
}

/// Starts chromedriver and a browser on `server`, runs `body`, saves a screenshot and the HTML
/// if it fails, and always closes the browser and chromedriver.
pub async fn with_browser<F, Fut>(name: &'static str, server: &Server, opts: Options, body: F)
where
    F: FnOnce(Browser) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    mamori_testkit::browser::with_browser(name, &server.url, opts, body).await
}
