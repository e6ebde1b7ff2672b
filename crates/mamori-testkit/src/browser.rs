//! Browser sessions for the web console's tests: a `chromedriver` on a free port and a
//! headless Chromium with a fresh profile (Debian's `chromium` and `chromium-driver`), stopped
//! at the end of the test (Drop guards), also when it fails; virtual authenticators for
//! WebAuthn. Screenshots go to `target/test-artifacts/console/` (one with the page's HTML on
//! every failure).

use std::future::Future;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mamori_otp::{KeyUri, Secret};
use thirtyfour::prelude::*;
use thirtyfour::ChromiumLikeCapabilities;

use crate::{now, totp_at as code, PASSWORD};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// The code of the current time step, once that step is later than `last` (the last step this
/// device accepted) and not about to end; updates `last`. A code of the current step is
/// accepted whatever drift enrollment remembered (at most one step behind), so sign-in tests do
/// not depend on where in a 30-second step they run.
pub async fn next_code(secret: &Secret, last: &mut u64) -> String {
    loop {
        let t = now();
        if t / 30 > *last && t % 30 <= 27 {
            *last = t / 30;
            return code(secret, t);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The current time once it is not in the last 3 seconds of a 30-second step, so that the
/// server checks codes computed now within the same step.
pub async fn step_start_time() -> u64 {
    loop {
        let t = now();
        if t % 30 <= 26 {
            return t;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A chromedriver process on a free port, killed when dropped.
pub struct ChromeDriver {
    child: Child,
    pub url: String,
}

impl ChromeDriver {
    /// Starts chromedriver, with `HOME` set to `home` when given (the browser inherits it).
    pub fn start(home: Option<&Path>) -> ChromeDriver {
        for bin in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                Path::new(bin).exists(),
                "{bin} is missing: the console tests need Debian's chromium and chromium-driver \
                 (apt-get install -y chromium chromium-driver)"
            );
        }
        let port = crate::process::free_port();
        let mut cmd = Command::new(CHROMEDRIVER);
        if let Some(h) = home {
            cmd.env("HOME", h);
        }
        let child = cmd
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        ChromeDriver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        // SIGTERM lets chromedriver close any browser it still runs; SIGKILL if it hangs.
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

/// Where screenshots go: `target/test-artifacts/console/`.
pub fn artifacts_dir() -> PathBuf {
    // The test binary lives in target/<profile>/deps/.
    let exe = std::env::current_exe().unwrap();
    let target = exe
        .ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("target"));
    let dir = target.join("test-artifacts").join("console");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Browser options.
#[derive(Clone)]
pub struct Options {
    /// `Accept-Language` (and UI language) of the browser.
    pub accept_language: &'static str,
    /// Chromium's `--host-resolver-rules` (`MAP mamori.test 127.0.0.1`): test host names
    /// without touching the system's resolver.
    pub host_resolver_rules: Option<String>,
    /// `HOME` of chromedriver and the browser: Chromium on Linux trusts the certificate
    /// authorities in `$HOME/.pki/nssdb`, so a test trusts its own CA for this browser only
    /// ([`trust_ca`]).
    pub home: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            accept_language: "en-US,en",
            host_resolver_rules: None,
            home: None,
        }
    }
}

/// Makes `home/.pki/nssdb`, the NSS database Chromium on Linux reads, trusting the CA in
/// `ca_pem` to identify web sites (`certutil` from Debian's libnss3-tools).
pub fn trust_ca(home: &Path, ca_pem: &Path) {
    let db = home.join(".pki").join("nssdb");
    std::fs::create_dir_all(&db).unwrap();
    let sql = format!("sql:{}", db.display());
    let run = |args: &[&str]| {
        let out = Command::new("certutil")
            .args(args)
            .output()
            .expect("certutil (apt-get install libnss3-tools)");
        assert!(
            out.status.success(),
            "certutil {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&["-N", "-d", &sql, "--empty-password"]);
    run(&[
        "-A",
        "-d",
        &sql,
        "-n",
        "mamori test CA",
        "-t",
        "C,,",
        "-i",
        ca_pem.to_str().unwrap(),
    ]);
}

/// A browser session against a server.
#[derive(Clone)]
pub struct Browser {
    pub driver: WebDriver,
    pub base: String,
    pub name: &'static str,
}

pub const DESKTOP: (u32, u32) = (1280, 1000);
pub const PHONE: (u32, u32) = (390, 844);

/// Starts chromedriver and a browser, runs `body`, saves a screenshot and the HTML if it
/// fails, and always closes the browser and chromedriver.
pub async fn with_browser<F, Fut>(name: &'static str, base: &str, opts: Options, body: F)
where
    F: FnOnce(Browser) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    for ext in ["png", "html"] {
        let _ = std::fs::remove_file(artifacts_dir().join(format!("FAILED-{name}.{ext}")));
    }
    let cd = ChromeDriver::start(opts.home.as_deref());
    let profile = tempfile::tempdir().unwrap();
    let mut caps = DesiredCapabilities::chrome();
    caps.set_binary(CHROMIUM).unwrap();
    for arg in [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-quic",
        "--window-size=1280,1000",
        "--force-device-scale-factor=1",
    ] {
        caps.add_arg(arg).unwrap();
    }
    caps.add_arg(&format!("--user-data-dir={}", profile.path().display()))
        .unwrap();
    if let Some(rules) = &opts.host_resolver_rules {
        caps.add_arg(&format!("--host-resolver-rules={rules}"))
            .unwrap();
    }
    let primary = opts.accept_language.split(',').next().unwrap_or("en");
    caps.add_arg(&format!("--lang={primary}")).unwrap();
    caps.add_experimental_option(
        "prefs",
        serde_json::json!({ "intl.accept_languages": opts.accept_language }),
    )
    .unwrap();
    let driver = WebDriver::new(cd.url.clone(), caps)
        .await
        .expect("start a Chromium session through chromedriver");
    let b = Browser {
        driver: driver.clone(),
        base: base.to_string(),
        name,
    };
    let result = tokio::spawn(body(b.clone())).await;
    if let Err(e) = &result {
        let dir = artifacts_dir();
        let _ = b
            .driver
            .screenshot(&dir.join(format!("FAILED-{name}.png")))
            .await;
        if let Ok(html) = b.driver.source().await {
            let _ = std::fs::write(dir.join(format!("FAILED-{name}.html")), html);
        }
        eprintln!(
            "console test {name} failed ({e}); screenshot: {}",
            dir.join(format!("FAILED-{name}.png")).display()
        );
    }
    let _ = driver.quit().await;
    drop(cd);
    drop(profile);
    if let Err(e) = result {
        if e.is_panic() {
            std::panic::resume_unwind(e.into_panic());
        }
        panic!("test body did not finish: {e}");
    }
}

impl Browser {
    pub async fn goto(&self, path: &str) {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        };
        self.driver.goto(url).await.unwrap();
    }

    pub async fn el(&self, id: &str) -> WebElement {
        self.driver
            .find(By::Id(id))
            .await
            .unwrap_or_else(|e| panic!("no element #{id}: {e}"))
    }

    pub async fn exists(&self, id: &str) -> bool {
        !self.driver.find_all(By::Id(id)).await.unwrap().is_empty()
    }

    pub async fn fill(&self, id: &str, text: &str) {
        let e = self.el(id).await;
        e.clear().await.unwrap();
        e.send_keys(text).await.unwrap();
    }

    /// Clicks a link or submit button and waits until the browser shows the next page (the
    /// old document is gone), so that the next command sees the new page.
    pub async fn click(&self, id: &str) {
        let e = self.el(id).await;
        self.click_and_wait(e).await;
    }

    /// [`Browser::click`] for the first element matching a CSS selector.
    pub async fn click_css(&self, css: &str) {
        let e = self
            .driver
            .find(By::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css}: {e}"));
        self.click_and_wait(e).await;
    }

    async fn click_and_wait(&self, e: WebElement) {
        let old = self.driver.find(By::Tag("html")).await.unwrap();
        e.click().await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(15);
        while old.is_present().await.unwrap_or(false) {
            assert!(
                Instant::now() < deadline,
                "the click did not load a new page"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn text(&self, id: &str) -> String {
        self.el(id).await.text().await.unwrap()
    }

    pub async fn value(&self, id: &str) -> String {
        self.el(id)
            .await
            .prop("value")
            .await
            .unwrap()
            .unwrap_or_default()
    }

    pub async fn h1(&self) -> String {
        self.driver
            .find(By::Tag("h1"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub async fn body_text(&self) -> String {
        self.driver
            .find(By::Tag("body"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub async fn path(&self) -> String {
        let u = self.driver.current_url().await.unwrap();
        match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_string(),
        }
    }

    pub async fn html_lang(&self) -> String {
        self.driver
            .find(By::Tag("html"))
            .await
            .unwrap()
            .attr("lang")
            .await
            .unwrap()
            .unwrap_or_default()
    }

    pub async fn resize(&self, (w, h): (u32, u32)) {
        self.driver.set_window_rect(0, 0, w, h).await.unwrap();
    }

    /// Saves a screenshot of the viewport as `NAME-label.png`.
    pub async fn shot(&self, label: &str) {
        let path = artifacts_dir().join(format!("{}-{label}.png", self.name));
        self.driver.screenshot(&path).await.unwrap();
    }

    /// Desktop and phone screenshots of the current page.
    pub async fn shots(&self, label: &str) {
        self.shot(&format!("{label}-desktop")).await;
        self.resize(PHONE).await;
        self.shot(&format!("{label}-phone")).await;
        self.resize(DESKTOP).await;
    }

    /// Chooses a password from a setup link. The setup page signs the user in (#15); this
    /// signs out again, so that callers go on from the sign-in page as a returning user would.
    pub async fn set_password_from_link(&self, link: &str) {
        self.goto(link).await;
        self.fill("password", PASSWORD).await;
        self.fill("confirm", PASSWORD).await;
        self.click("set-password").await;
        let path = self.path().await;
        if path == "/sign-in/mfa" {
            // The account already has a device: the second factor is asked next.
            self.goto("/sign-in").await;
            return;
        }
        assert_eq!(path, "/?done=setup_signed_in");
        assert!(self.exists("notice").await);
        self.sign_out().await;
    }

    pub async fn sign_in_password(&self, user: &str) {
        self.goto("/sign-in").await;
        self.fill("user", user).await;
        self.fill("password", PASSWORD).await;
        self.click("sign-in").await;
    }

    pub async fn sign_out(&self) {
        self.click("sign-out").await;
        assert!(
            self.path().await.starts_with("/sign-in"),
            "{}",
            self.path().await
        );
    }

    /// The Assign MFA device wizard up to the codes page: returns the secret read from the QR
    /// code image on the page.
    pub async fn start_enrollment(&self, device_name: &str) -> Secret {
        self.goto("/security/mfa/new").await;
        self.fill("name", device_name).await;
        self.click("continue").await;
        assert!(
            self.path().await.ends_with("/enable"),
            "wizard step 2: {}",
            self.path().await
        );
        self.secret_from_qr().await
    }

    /// Reads the QR image of the page (its PNG bytes), decodes it with mamori-otp's decoder and
    /// parses the otpauth URI.
    pub async fn secret_from_qr(&self) -> Secret {
        let src = self.el("qr").await.attr("src").await.unwrap().unwrap();
        let b64 = src
            .strip_prefix("data:image/png;base64,")
            .expect("the QR code is a PNG data URI");
        let png = data_encoding::BASE64.decode(b64.as_bytes()).unwrap();
        let texts = mamori_otp::qr::decode(&png).expect("the QR image decodes");
        assert_eq!(texts.len(), 1, "{texts:?}");
        let uri = KeyUri::parse(&texts[0]).unwrap();
        assert_eq!(uri.issuer.as_deref(), Some("mamori"));
        uri.secret
    }

    /// Types two consecutive codes (the previous step and the current one) and submits;
    /// returns the time step of the second code (the last one used).
    pub async fn enter_two_codes(&self, secret: &Secret) -> u64 {
        let t = step_start_time().await;
        self.fill("code1", &code(secret, t - 30)).await;
        self.fill("code2", &code(secret, t)).await;
        self.click("assign").await;
        t / 30
    }

    /// Like [`Browser::enter_two_codes`] from a phone whose clock is one step behind (the two
    /// steps before the current one): the server remembers a drift of -1, and the current
    /// step's code is usable for the next sign-in at once instead of 30 seconds later.
    pub async fn enter_two_codes_behind(&self, secret: &Secret) -> u64 {
        let t = step_start_time().await;
        self.fill("code1", &code(secret, t - 60)).await;
        self.fill("code2", &code(secret, t - 30)).await;
        self.click("assign").await;
        t / 30 - 1
    }
}

/// WebDriver's "Add Virtual Authenticator" (W3C WebAuthn Level 2, section 11.3).
#[derive(Debug)]
struct AddVirtualAuthenticator(serde_json::Value);

impl thirtyfour::common::command::FormatRequestData for AddVirtualAuthenticator {
    fn format_request(&self, session_id: &thirtyfour::SessionId) -> thirtyfour::RequestData {
        thirtyfour::RequestData::new(
            reqwest::Method::POST,
            format!("session/{session_id}/webauthn/authenticator"),
        )
        .add_body(self.0.clone())
    }
}

impl Browser {
    /// Adds a virtual authenticator to the browser (Chromium answers WebAuthn requests with it,
    /// user presence and verification granted): `protocol` is `ctap2` (resident keys and user
    /// verification) or `ctap1/u2f` (neither), transport USB. Returns its id.
    pub async fn add_virtual_authenticator(&self, protocol: &str) -> String {
        let ctap2 = protocol == "ctap2";
        let body = serde_json::json!({
            "protocol": protocol,
            "transport": "usb",
            "hasResidentKey": ctap2,
            "hasUserVerification": ctap2,
            "isUserConsenting": true,
            "isUserVerified": ctap2,
        });
        let resp = self
            .driver
            .handle
            .cmd(AddVirtualAuthenticator(body))
            .await
            .expect("add a virtual authenticator");
        resp.value_json()
            .unwrap()
            .as_str()
            .expect("the authenticator id")
            .to_string()
    }
}
