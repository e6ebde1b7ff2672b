//! The account hardening of issue #14 against the real binary over HTTP, each on SQLite and
//! PostgreSQL (docs/security.md, "Validate API, password change, sync tokens, contact codes"):
//!
//! - the validate API: a per-address rate limit; unknown names answer like accounts (same
//!   answers, same throttle and lock, from the same history); keys listed and revoked (API,
//!   console button, admin command line); a key without `allow_root` cannot lock root out;
//! - password change: wrong current passwords counted and throttled like wrong codes, a
//!   per-address limit, every other session and every sync device token ended, the notice sent;
//! - sync device tokens end with an administrator's MFA reset (API and command line),
//!   `recover-root`, a password set through `setup-root`'s link and the end of a recovery
//!   session;
//! - contact verification: codes sent per channel per hour limited, wrong codes counted in the
//!   account's failure counter, a new code keeps the attempts of the one it replaces.
//!
//! Where a test needs time to pass (a throttle delay, an hour's budget, a stale second factor)
//! it moves the stored times back in the database instead of sleeping.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::common::*;
use crate::recovery_common::{six_digits, Mail, SmtpSink, WebhookReceiver};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const PHONE_SECRET: &str = "a-webhook-secret-of-32-characters";

/// A started server with root signed in (full session, one virtual device), and what the test
/// needs to reach its database and its mail.
struct World {
    srv: Server,
    database: Option<String>,
    /// Root's full session token.
    root: String,
    /// Root's device secret.
    root_secret: String,
    sink: SmtpSink,
    hook: WebhookReceiver,
    _backend: Backend,
    _dir: tempfile::TempDir,
}

/// Mail through an in-test SMTP sink, phone codes through an in-test webhook receiver, many
/// sign-in requests allowed from one address (unless `env` says otherwise), then `env`.
async fn world(backend: Backend, env: &[(&str, &str)]) -> World {
    let sink = SmtpSink::start().await;
    let hook = WebhookReceiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("phone-secret");
    std::fs::write(&secret_file, PHONE_SECRET).unwrap();
    let mut all = sink.env();
    for (k, v) in [
        ("MAMORI_PHONE_PROVIDER", "webhook"),
        // Walks recovery straight through (the waiting period is tested in recovery_wait.rs).
        ("MAMORI_RECOVERY_WAITING_PERIOD_HOURS", "0"),
        ("MAMORI_PHONE_URL", hook.url.as_str()),
        (
            "MAMORI_PHONE_SECRET_FILE",
            &secret_file.display().to_string(),
        ),
        ("MAMORI_LIMITS_SIGN_IN_PER_MINUTE", "10000"),
        ("MAMORI_LIMITS_SIGN_IN_BURST", "10000"),
        // These stories sign users in on their password alone (#15 made "all" the default).
        ("MAMORI_REQUIRE_MFA", "root"),
    ] {
        all.push((k.into(), v.into()));
    }
    for (k, v) in env {
        all.push(((*k).into(), (*v).into()));
    }
    let all: Vec<(&str, &str)> = all.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let database = backend.url().map(str::to_string);
    let srv = Server::start(&dir.path().join("data"), database.as_deref(), &all);
    let token = srv.root_session().await;
    let (_, root_secret, root) = srv.enroll(&token, "root-phone").await;
    World {
        srv,
        database,
        root,
        root_secret,
        sink,
        hook,
        _backend: backend,
        _dir: dir,
    }
}

impl World {
    /// Runs one statement on the server's database; returns the rows affected.
    async fn sql(&self, q: &str) -> u64 {
        use sqlx::Connection;
        match &self.database {
            Some(url) => {
                let mut c = sqlx::PgConnection::connect(url).await.unwrap();
                sqlx::query(q)
                    .execute(&mut c)
                    .await
                    .unwrap()
                    .rows_affected()
            }
            None => {
                let url = format!("sqlite://{}", self.srv.data_dir.join("mamori.db").display());
                let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
                sqlx::query(q)
                    .execute(&mut c)
                    .await
                    .unwrap()
                    .rows_affected()
            }
        }
    }

    /// One integer read from the server's database (`None` for no row or NULL).
    async fn number(&self, q: &str) -> Option<i64> {
        use sqlx::Connection;
        match &self.database {
            Some(url) => {
                let mut c = sqlx::PgConnection::connect(url).await.unwrap();
                sqlx::query_scalar::<_, Option<i64>>(q)
                    .fetch_optional(&mut c)
                    .await
                    .unwrap()
                    .flatten()
            }
            None => {
                let url = format!("sqlite://{}", self.srv.data_dir.join("mamori.db").display());
                let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
                sqlx::query_scalar::<_, Option<i64>>(q)
                    .fetch_optional(&mut c)
                    .await
                    .unwrap()
                    .flatten()
            }
        }
    }

    /// An account's failure count as stored.
    async fn failures(&self, user: &str) -> i64 {
        self.number(&format!(
            "SELECT mfa_failures FROM accounts WHERE name = '{user}'"
        ))
        .await
        .unwrap()
    }

    /// Every recorded failure (accounts and phantoms) happened `secs` earlier: throttle delays
    /// are over without waiting for them.
    async fn age_failures(&self, secs: i64) {
        self.sql(&format!(
            "UPDATE accounts SET mfa_last_failure_at = mfa_last_failure_at - {secs} \
             WHERE mfa_last_failure_at IS NOT NULL"
        ))
        .await;
        self.sql(&format!(
            "UPDATE validate_phantoms SET last_failure_at = last_failure_at - {secs}"
        ))
        .await;
    }

    /// Every session's second factor was given 10 minutes earlier (older than the 5 minutes a
    /// sensitive change needs).
    async fn stale_second_factors(&self) {
        self.sql(
            "UPDATE sessions SET second_factor_at = second_factor_at - 600 \
             WHERE second_factor_at IS NOT NULL",
        )
        .await;
    }

    /// `mamori-server admin ARGS` on this server's data directory and database.
    fn admin(&self, args: &[&str]) -> (bool, String, String) {
        // The command line reads the same configuration as the server: here, the mail relay.
        admin_cli(
            &self.srv.data_dir,
            self.database.as_deref(),
            &self.sink.env(),
            args,
        )
    }

    /// Creates `name` (email `NAME@example.test`, and `phone` if given), chooses the password
    /// through the setup link and signs in: the session token (full: only root must enroll).
    async fn user(&self, name: &str, phone: Option<&str>) -> String {
        let (s, v) = self
            .srv
            .post(
                "/api/v1/users",
                Some(&self.root),
                json!({"user": name, "email": format!("{name}@example.test"), "phone": phone}),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        let token = v["setup_link"]
            .as_str()
            .unwrap()
            .split("token=")
            .nth(1)
            .unwrap()
            .to_string();
        let (s, v) = self
            .srv
            .post(
                "/api/v1/setup",
                None,
                json!({"token": token, "password": PASSWORD}),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        let (s, v) = self.srv.sign_in(name).await;
        assert_eq!((s, v["status"].as_str()), (200, Some("signed_in")), "{v}");
        v["token"].as_str().unwrap().to_string()
    }

    /// A validation with `key`: (result, reason).
    async fn validate(&self, key: &str, user: &str, code: &str) -> (String, Option<String>) {
        let (s, v) = self
            .srv
            .post(
                "/api/v1/validate",
                Some(key),
                json!({"user": user, "code": code}),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        (
            v["result"].as_str().unwrap().to_string(),
            v["reason"].as_str().map(str::to_string),
        )
    }

    /// A new application key made over the API: (id, key).
    async fn app_key(&self, name: &str, allow_root: bool) -> (String, String) {
        let (s, v) = self
            .srv
            .post(
                "/api/v1/app-keys",
                Some(&self.root),
                json!({"name": name, "allow_root": allow_root}),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        assert_eq!(v["allow_root"], allow_root, "{v}");
        (
            v["id"].as_str().unwrap().to_string(),
            v["key"].as_str().unwrap().to_string(),
        )
    }

    /// Registers a sync device with a session whose second factor is fresh; checks that its
    /// token pulls. Returns the device token.
    async fn sync_device(&self, session: &str, name: &str) -> String {
        let (s, v) = self
            .srv
            .post("/api/v1/sync/devices", Some(session), json!({"name": name}))
            .await;
        assert_eq!(s, 201, "{v}");
        let token = v["token"].as_str().unwrap().to_string();
        assert_eq!(self.pull(&token).await, 200);
        token
    }

    /// The status of a pull with a sync device token.
    async fn pull(&self, device_token: &str) -> u16 {
        self.srv
            .get("/api/v1/sync/items", Some(device_token))
            .await
            .0
    }

    /// Audit events (root's view).
    async fn audit(&self, query: &str) -> Vec<Value> {
        self.srv.audit(&self.root, query).await
    }

    /// Mails to `to` whose subject contains `subject`, in arrival order.
    fn mails(&self, to: &str, subject: &str) -> Vec<Mail> {
        self.sink
            .mails()
            .into_iter()
            .filter(|m| {
                m.to.iter().any(|t| t == to)
                    && m.header("Subject").is_some_and(|s| s.contains(subject))
            })
            .collect()
    }

    /// Waits (up to 20 s) for the `n`-th mail to `to` about `subject`.
    async fn nth_mail(&self, to: &str, subject: &str, n: usize) -> Mail {
        for _ in 0..400 {
            if let Some(m) = self.mails(to, subject).get(n - 1) {
                return m.clone();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("mail {n} to {to} about {subject:?} did not arrive");
    }

    /// Phone messages to `to` for `purpose`, in arrival order.
    fn phone_messages(&self, to: &str, purpose: &str) -> Vec<Value> {
        self.hook
            .hooks()
            .into_iter()
            .map(|h| serde_json::from_str::<Value>(&h.body).unwrap())
            .filter(|v| v["to"] == to.replace(' ', "") && v["purpose"] == purpose)
            .collect()
    }

    /// Waits (up to 20 s) for the `n`-th phone message to `to` for `purpose`: its code.
    async fn nth_phone_code(&self, to: &str, purpose: &str, n: usize) -> String {
        for _ in 0..400 {
            if let Some(m) = self.phone_messages(to, purpose).get(n - 1) {
                return m["code"].as_str().unwrap().to_string();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("phone message {n} to {to} for {purpose} did not arrive");
    }
}

fn admin_cli(
    dir: &Path,
    database: Option<&str>,
    env: &[(String, String)],
    args: &[&str],
) -> (bool, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mamori-server"));
    cmd.arg("admin").args(args).arg("--data-dir").arg(dir);
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    if let Some(db) = database {
        cmd.arg("--database").arg(db);
    }
    let out = cmd.env_remove("MAMORI_CONFIG").output().unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn error_code(v: &Value) -> Option<&str> {
    v["error"]["code"].as_str()
}

fn retry_after(headers: &reqwest::header::HeaderMap) -> u64 {
    headers
        .get("retry-after")
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.parse().ok())
        .expect("a Retry-After header")
}

fn count(events: &[Value], kind: &str, result: &str) -> usize {
    events
        .iter()
        .filter(|e| e["kind"] == kind && e["result"] == result)
        .count()
}

fn other_than(code: &str) -> &'static str {
    if code == "000000" {
        "111111"
    } else {
        "000000"
    }
}

// ---------------------------------------------------------------------------------------------
// 3b, 3d: unknown names and root behind an ordinary key answer like accounts.

/// Delays start after 2 failures (30 s, then 60 s), the lock comes at the 4th.
const LOCKOUT: [(&str, &str); 4] = [
    ("MAMORI_LOCKOUT_DELAY_AFTER", "2"),
    ("MAMORI_LOCKOUT_DELAY_BASE_SECS", "30"),
    ("MAMORI_LOCKOUT_DELAY_MAX_SECS", "60"),
    ("MAMORI_LOCKOUT_LOCK_AFTER", "4"),
];

/// The same script of validations for any name: a code of the wrong shape and a wrong code
/// (both count: a code that fits no device is a wrong answer), two too soon, (delay over) one
/// more wrong and one too soon, (delay over) the locking one, and one after the lock. Returns
/// every answer.
async fn script(w: &World, key: &str, user: &str, wrong: &str) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    out.push(w.validate(key, user, "12a456").await);
    for _ in 0..3 {
        out.push(w.validate(key, user, wrong).await);
    }
    w.age_failures(1000).await;
    for _ in 0..2 {
        out.push(w.validate(key, user, wrong).await);
    }
    w.age_failures(1000).await;
    for _ in 0..2 {
        out.push(w.validate(key, user, wrong).await);
    }
    out
}

fn expected_script() -> Vec<(String, Option<String>)> {
    let r = |reason: &str| ("reject".to_string(), Some(reason.to_string()));
    vec![
        r("invalid_code"),
        r("invalid_code"),
        r("throttled"),
        r("throttled"),
        r("invalid_code"),
        r("throttled"),
        r("account_locked"),
        r("account_locked"),
    ]
}

async fn unknown_names_answer_like_accounts(backend: Backend) {
    let w = world(backend, &LOCKOUT).await;
    let alice = w.user("alice", None).await;
    let (_, alice_secret, _) = w.srv.enroll(&alice, "phone").await;
    let (_, key) = w.app_key("vpn", false).await;
    let wrong = wrong_code(&alice_secret, now());

    // A real account and a name nobody has get the same answers, from the same history.
    let real = script(&w, &key, "alice", &wrong).await;
    let ghost = script(&w, &key, "ghost", &wrong).await;
    assert_eq!(real, expected_script(), "the account's answers");
    assert_eq!(ghost, real, "an unknown name answers like the account");
    // The wrong shape counted, the throttled attempts did not: 4 failures each.
    assert_eq!(w.failures("alice").await, 4);
    let ghost_hash = data_encoding::HEXLOWER.encode(&Sha256::digest(b"ghost"));
    let phantom = |col: &str| {
        let blob = if w.database.is_some() {
            format!("'\\x{ghost_hash}'::bytea")
        } else {
            format!("X'{ghost_hash}'")
        };
        format!("SELECT {col} FROM validate_phantoms WHERE name_hash = {blob}")
    };
    assert_eq!(w.number(&phantom("failures")).await, Some(4));
    assert!(w.number(&phantom("locked_at")).await.is_some());
    // Only the hash of the name is stored: one row per name tried.
    assert_eq!(
        w.number("SELECT COUNT(*) FROM validate_phantoms").await,
        Some(1)
    );
    // The account really is locked; the phantom locks nobody.
    let (_, users) = w.srv.get("/api/v1/users", Some(&w.root)).await;
    let locked: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["locked"] == true)
        .map(|u| u["user"].as_str().unwrap())
        .collect();
    assert_eq!(locked, vec!["alice"]);
    // A name no account can have (not a valid user name) is refused without counting.
    let long = "x".repeat(65);
    for _ in 0..4 {
        assert_eq!(
            w.validate(&key, &long, &wrong).await,
            ("reject".to_string(), Some("invalid_code".to_string()))
        );
    }
    assert_eq!(
        w.number("SELECT COUNT(*) FROM validate_phantoms").await,
        Some(1)
    );

    // Audit: the unknown name's events name no account and say what happened to the phantom.
    let events = w.audit("kind=validate&limit=1000").await;
    let ghost_details: Vec<&str> = events
        .iter()
        .filter(|e| e["result"] == "unknown_user" && e["detail"] != "not a valid user name")
        .map(|e| {
            assert!(e["account"].is_null(), "{e}");
            assert_eq!(e["user_agent"], "app:vpn");
            e["detail"].as_str().unwrap()
        })
        .collect();
    assert_eq!(
        ghost_details,
        vec![
            "failure 1",
            "failure 2",
            "throttled",
            "throttled",
            "failure 3",
            "throttled",
            "failure 4: locked",
            "locked"
        ]
    );
    assert!(events.iter().all(|e| e["account"] != "ghost"));
}

#[tokio::test]
async fn unknown_names_answer_like_accounts_on_sqlite() {
    unknown_names_answer_like_accounts(Backend::Sqlite).await;
}

#[tokio::test]
async fn unknown_names_answer_like_accounts_on_postgres() {
    unknown_names_answer_like_accounts(Backend::postgres().await).await;
}

async fn an_ordinary_key_cannot_lock_root(backend: Backend) {
    let w = world(backend, &LOCKOUT).await;
    let (_, plain) = w.app_key("vpn", false).await;
    let (_, rooted) = w.app_key("sso", true).await;
    let wrong = wrong_code(&w.root_secret, now());

    // For root, a key without allow_root answers exactly like for a name nobody has.
    let root = script(&w, &plain, "root", &wrong).await;
    let nobody = script(&w, &plain, "nobody", &wrong).await;
    assert_eq!(root, expected_script());
    assert_eq!(nobody, root);
    // A flood of wrong codes changes nothing for the real root.
    for _ in 0..30 {
        w.validate(&plain, "root", &wrong).await;
    }
    assert_eq!(w.failures("root").await, 0);
    assert_eq!(
        w.number("SELECT locked_at FROM accounts WHERE name = 'root'")
            .await,
        None
    );
    let events = w.audit("kind=validate&user=root&limit=1000").await;
    assert!(
        count(&events, "validate", "refused_root") >= 38,
        "{events:?}"
    );
    assert_eq!(count(&events, "validate", "failure"), 0);
    assert!(events
        .iter()
        .all(|e| e["result"] != "refused_root" || e["user_agent"] == "app:vpn"));

    // A key with allow_root reaches root's own counter.
    assert_eq!(
        w.validate(&rooted, "root", &wrong).await,
        ("reject".to_string(), Some("invalid_code".to_string()))
    );
    assert_eq!(w.failures("root").await, 1);
    // Root still signs in with its device (which also resets the count).
    let (s, v) = w
        .srv
        .sign_in_with_code("root", &code(&w.root_secret, now() + 30))
        .await;
    assert_eq!((s, v["status"].as_str()), (200, Some("signed_in")), "{v}");
    assert_eq!(w.failures("root").await, 0);
}

#[tokio::test]
async fn an_ordinary_key_cannot_lock_root_on_sqlite() {
    an_ordinary_key_cannot_lock_root(Backend::Sqlite).await;
}

#[tokio::test]
async fn an_ordinary_key_cannot_lock_root_on_postgres() {
    an_ordinary_key_cannot_lock_root(Backend::postgres().await).await;
}

// ---------------------------------------------------------------------------------------------
// 3a, 7: per-address limits.

async fn per_address_limits(backend: Backend) {
    // Root needs no device here (a full session right after the password), so that the only
    // limited requests are the ones counted below.
    let sink = SmtpSink::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut env = sink.env();
    for (k, v) in [
        ("MAMORI_REQUIRE_MFA", "none"),
        ("MAMORI_LIMITS_VALIDATE_PER_MINUTE", "1"),
        ("MAMORI_LIMITS_VALIDATE_BURST", "3"),
        ("MAMORI_LIMITS_SIGN_IN_PER_MINUTE", "1"),
        ("MAMORI_LIMITS_SIGN_IN_BURST", "4"),
    ] {
        env.push((k.into(), v.into()));
    }
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let srv = Server::start(&dir.path().join("data"), backend.url(), &env);
    // Sign-in limiter: setup (1), sign-in (2).
    let root = srv.root_session().await;
    // Application keys are an administrator's with MFA (#15); enrolling is no sign-in request.
    let (_, _, root) = srv.enroll(&root, "phone").await;
    let (s, v) = srv
        .post("/api/v1/app-keys", Some(&root), json!({"name": "vpn"}))
        .await;
    assert_eq!(s, 201, "{v}");
    let key = v["key"].as_str().unwrap().to_string();

    // Validate: a burst of 3 per address, bad keys included, then 429 with Retry-After.
    let body = json!({"user": "root", "code": "123456"});
    let (s, _) = srv.post("/api/v1/validate", Some(&key), body.clone()).await;
    assert_eq!(s, 200);
    for _ in 0..2 {
        let (s, v) = srv
            .post("/api/v1/validate", Some("mamori_ak_guess"), body.clone())
            .await;
        assert_eq!((s, error_code(&v)), (401, Some("invalid_app_key")));
    }
    let (s, h, v) = srv
        .call("POST", "/api/v1/validate", Some(&key), Some(body.clone()))
        .await;
    assert_eq!((s, error_code(&v)), (429, Some("rate_limited")), "{v}");
    assert!((1..=61).contains(&retry_after(&h)));
    let (s, _, _) = srv
        .call(
            "POST",
            "/api/v1/validate",
            Some("mamori_ak_guess"),
            Some(body),
        )
        .await;
    assert_eq!(s, 429, "the limit comes before the key check");
    let (_, m) = srv.get("/metrics", None).await;
    assert!(
        m.as_str()
            .unwrap()
            .contains("mamori_validations_total{result=\"rate_limited\"}"),
        "{m}"
    );

    // Password change: the sign-in limiter (2 left of the burst of 4), then 429; the refused
    // attempt is not counted as a failure (2 < the 5 before delays).
    let wrong =
        json!({"current_password": "not-the-password-1", "new_password": "a-new-pass-phrase-9"});
    for _ in 0..2 {
        let (s, v) = srv
            .post("/api/v1/me/password", Some(&root), wrong.clone())
            .await;
        assert_eq!(
            (s, error_code(&v)),
            (401, Some("invalid_credentials")),
            "{v}"
        );
    }
    let (s, h, v) = srv
        .call("POST", "/api/v1/me/password", Some(&root), Some(wrong))
        .await;
    assert_eq!((s, error_code(&v)), (429, Some("rate_limited")), "{v}");
    assert!((1..=61).contains(&retry_after(&h)));
    let events = srv.audit(&root, "kind=account.password_change").await;
    assert_eq!(count(&events, "account.password_change", "failure"), 2);
}

#[tokio::test]
async fn per_address_limits_on_sqlite() {
    per_address_limits(Backend::Sqlite).await;
}

#[tokio::test]
async fn per_address_limits_on_postgres() {
    per_address_limits(Backend::postgres().await).await;
}

// ---------------------------------------------------------------------------------------------
// 3c: listing and revoking keys.

async fn app_keys_are_listed_and_revoked(backend: Backend) {
    let w = world(backend, &[]).await;
    let bob = w.user("bob", None).await;
    let (_, bob_secret, _) = w.srv.enroll(&bob, "phone").await;
    let bob_code = code(&bob_secret, now());
    let (vpn_id, vpn) = w.app_key("vpn", false).await;
    let (sso_id, sso) = w.app_key("sso", true).await;
    let (ok, out, err) = w.admin(&["create-app-key", "cli-gw", "--allow-root"]);
    assert!(ok, "{err}");
    assert!(out.contains("allowed to validate root"), "{out}");
    let cli_key = out.lines().last().unwrap().trim().to_string();
    assert!(cli_key.starts_with("mamori_ak_"), "{out}");
    for k in [&vpn, &sso, &cli_key] {
        // Each key works (the answer is about the code, not the key).
        assert_eq!(w.validate(k, "bob", &bob_code).await.0, "reject");
    }

    // The list: ids, names, times and flags, never a key.
    let (s, v) = w.srv.get("/api/v1/app-keys", Some(&w.root)).await;
    assert_eq!(s, 200, "{v}");
    let list = v.as_array().unwrap();
    // Oldest first; keys made in the same second are ordered by id.
    let mut summary: Vec<(&str, bool, bool, &str)> = list
        .iter()
        .map(|k| {
            (
                k["name"].as_str().unwrap(),
                k["allow_root"].as_bool().unwrap(),
                k["revoked_at"].is_null(),
                k["created_by"].as_str().unwrap(),
            )
        })
        .collect();
    summary.sort();
    assert_eq!(
        summary,
        vec![
            ("cli-gw", true, true, "admin-cli"),
            ("sso", true, true, "root"),
            ("vpn", false, true, "root")
        ]
    );
    assert!(list
        .iter()
        .any(|k| k["id"] == vpn_id.as_str() && k["name"] == "vpn"));
    let text = v.to_string();
    for k in [&vpn, &sso, &cli_key] {
        assert!(!text.contains(k.as_str()));
    }
    assert!(list
        .iter()
        .all(|k| k.get("key").is_none() && k.get("key_hash").is_none()));
    // Administrators only.
    let (s, v) = w.srv.get("/api/v1/app-keys", Some(&bob)).await;
    assert_eq!((s, error_code(&v)), (403, Some("forbidden")), "{v}");
    let (s, _, v) = w
        .srv
        .call(
            "DELETE",
            &format!("/api/v1/app-keys/{vpn_id}"),
            Some(&bob),
            None,
        )
        .await;
    assert_eq!((s, error_code(&v)), (403, Some("forbidden")), "{v}");

    // Revoking needs the administrator's fresh second factor.
    w.stale_second_factors().await;
    let (s, _, v) = w
        .srv
        .call(
            "DELETE",
            &format!("/api/v1/app-keys/{vpn_id}"),
            Some(&w.root),
            None,
        )
        .await;
    assert_eq!(
        (s, error_code(&v)),
        (403, Some("recent_second_factor_required")),
        "{v}"
    );
    assert_eq!(w.validate(&vpn, "bob", &bob_code).await.0, "reject");
    let (s, v) = w
        .srv
        .post(
            "/api/v1/session/verify",
            Some(&w.root),
            json!({"code": code(&w.root_secret, now() + 30)}),
        )
        .await;
    assert_eq!(s, 204, "{v}");
    let (s, _, v) = w
        .srv
        .call(
            "DELETE",
            &format!("/api/v1/app-keys/{vpn_id}"),
            Some(&w.root),
            None,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert!(v["revoked_at"].as_i64().unwrap() >= now() as i64 - 5, "{v}");
    // At once (the key was in this node's cache a moment ago): 401 invalid_app_key.
    let (s, v) = w
        .srv
        .post(
            "/api/v1/validate",
            Some(&vpn),
            json!({"user": "bob", "code": bob_code}),
        )
        .await;
    assert_eq!((s, error_code(&v)), (401, Some("invalid_app_key")), "{v}");
    // Once only; unknown ids are not found either.
    for id in [vpn_id.as_str(), "no-such-key"] {
        let (s, _, v) = w
            .srv
            .call(
                "DELETE",
                &format!("/api/v1/app-keys/{id}"),
                Some(&w.root),
                None,
            )
            .await;
        assert_eq!((s, error_code(&v)), (404, Some("not_found")), "{v}");
    }

    // The console: a Revoke button (a CSRF-protected form) on each active key.
    let c = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = c
        .get(format!("{}/sign-in", w.srv.url))
        .send()
        .await
        .unwrap();
    let csrf = csrf_cookie(r.headers());
    let cookies = format!("mamori_csrf={csrf}; mamori_session={}", w.root);
    let page = c
        .get(format!("{}/app-keys", w.srv.url))
        .header("cookie", &cookies)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(&format!("action=\"/app-keys/{sso_id}/revoke\"")));
    assert!(!page.contains(&format!("action=\"/app-keys/{vpn_id}/revoke\"")));
    let post = |form: Vec<(&'static str, String)>| {
        c.post(format!("{}/app-keys/{sso_id}/revoke", w.srv.url))
            .header("cookie", &cookies)
            .form(&form)
            .send()
    };
    let r = post(vec![]).await.unwrap();
    assert_eq!(r.status(), 403, "no CSRF token, no revocation");
    assert_eq!(w.validate(&sso, "bob", &bob_code).await.0, "reject");
    let r = post(vec![("csrf", csrf.clone())]).await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/app-keys?done=key_revoked");
    let (s, v) = w
        .srv
        .post(
            "/api/v1/validate",
            Some(&sso),
            json!({"user": "bob", "code": bob_code}),
        )
        .await;
    assert_eq!((s, error_code(&v)), (401, Some("invalid_app_key")), "{v}");
    // With a stale second factor the button leads to the confirmation asking for a code.
    let (dup_id, dup) = w.app_key("dup", false).await;
    w.stale_second_factors().await;
    let r = c
        .post(format!("{}/app-keys/{dup_id}/revoke", w.srv.url))
        .header("cookie", &cookies)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("id=\"code\""));
    assert_eq!(w.validate(&dup, "bob", &bob_code).await.0, "reject");

    // The command line: list, then revoke by name (refused while the name is ambiguous).
    let (ok, out, err) = w.admin(&["list-app-keys", "--json"]);
    assert!(ok, "{err}");
    let rows: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 4);
    assert!(rows
        .iter()
        .any(|r| r["id"] == vpn_id.as_str() && r["revoked_at"].is_i64()));
    assert!(!out.contains("mamori_ak_"));
    w.app_key("dup", false).await;
    let (ok, _, err) = w.admin(&["revoke-app-key", "dup"]);
    assert!(!ok);
    assert!(err.contains("give the id"), "{err}");
    let (ok, out, err) = w.admin(&["revoke-app-key", &dup_id]);
    assert!(ok, "{err}");
    assert!(out.contains("revoked application key dup"), "{out}");
    let (ok, _, err) = w.admin(&["revoke-app-key", "cli-gw"]);
    assert!(ok, "{err}");
    // Another process revoked them: the server's key cache forgets them within 5 seconds.
    for k in [&dup, &cli_key] {
        let mut refused = false;
        for _ in 0..80 {
            let (s, _) = w
                .srv
                .post(
                    "/api/v1/validate",
                    Some(k),
                    json!({"user": "bob", "code": bob_code}),
                )
                .await;
            if s == 401 {
                refused = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(refused, "a key revoked on the command line still works");
    }
    let (ok, _, _) = w.admin(&["revoke-app-key", "cli-gw"]);
    assert!(!ok, "already revoked");

    // Every revocation and the refusal are audited.
    let events = w.audit("kind=app_key.revoke").await;
    assert_eq!(count(&events, "app_key.revoke", "success"), 4, "{events:?}");
    assert_eq!(
        count(&events, "app_key.revoke", "recent_factor_required"),
        1
    );
    assert!(events
        .iter()
        .any(|e| e["actor"] == "admin-cli" && e["detail"].as_str().unwrap().starts_with("cli-gw")));
    assert!(events
        .iter()
        .any(|e| e["actor"] == "root" && e["detail"] == format!("vpn ({vpn_id})").as_str()));

    // The OpenAPI document describes both endpoints.
    let (_, doc) = w.srv.get("/api/v1/openapi.json", None).await;
    assert!(doc["paths"]["/api/v1/app-keys"]["get"].is_object());
    assert!(doc["paths"]["/api/v1/app-keys"]["post"].is_object());
    assert!(doc["paths"]["/api/v1/app-keys/{id}"]["delete"].is_object());
    assert!(doc["components"]["schemas"]["AppKey"]["properties"]["allow_root"].is_object());
}

#[tokio::test]
async fn app_keys_are_listed_and_revoked_on_sqlite() {
    app_keys_are_listed_and_revoked(Backend::Sqlite).await;
}

#[tokio::test]
async fn app_keys_are_listed_and_revoked_on_postgres() {
    app_keys_are_listed_and_revoked(Backend::postgres().await).await;
}

// ---------------------------------------------------------------------------------------------
// 7, 8: password change.

async fn password_change(backend: Backend) {
    let w = world(backend, &LOCKOUT).await;
    let session_a = w.user("carol", None).await;
    let (_, secret, session_a) = w.srv.enroll(&session_a, "phone").await;
    let (s, v) = w
        .srv
        .sign_in_with_code("carol", &code(&secret, now() + 30))
        .await;
    assert_eq!(s, 200, "{v}");
    let session_b = v["token"].as_str().unwrap().to_string();
    let device = w.sync_device(&session_b, "laptop").await;

    // Wrong current passwords count like wrong codes: two, then even the right one must wait.
    let change = |current: &str| json!({"current_password": current, "new_password": "copper-lantern-harbor-31"});
    for _ in 0..2 {
        let (s, v) = w
            .srv
            .post(
                "/api/v1/me/password",
                Some(&session_a),
                change("not-the-password-1"),
            )
            .await;
        assert_eq!(
            (s, error_code(&v)),
            (401, Some("invalid_credentials")),
            "{v}"
        );
    }
    assert_eq!(w.failures("carol").await, 2);
    let (s, h, v) = w
        .srv
        .call(
            "POST",
            "/api/v1/me/password",
            Some(&session_a),
            Some(change(PASSWORD)),
        )
        .await;
    assert_eq!((s, error_code(&v)), (429, Some("rate_limited")), "{v}");
    assert!((1..=30).contains(&retry_after(&h)));
    assert_eq!(
        w.failures("carol").await,
        2,
        "a throttled attempt is not counted"
    );

    // After the delay: the change ends every other session and every sync token.
    w.age_failures(1000).await;
    let (s, v) = w
        .srv
        .post("/api/v1/me/password", Some(&session_a), change(PASSWORD))
        .await;
    assert_eq!(s, 204, "{v}");
    let (s, _) = w.srv.get("/api/v1/me", Some(&session_a)).await;
    assert_eq!(s, 200, "the session that changed it stays");
    let (s, _) = w.srv.get("/api/v1/me", Some(&session_b)).await;
    assert_eq!(s, 401, "every other session ends");
    assert_eq!(w.pull(&device).await, 401, "sync device tokens end");
    // The new password works, the old one does not.
    let (s, _) = w
        .srv
        .post(
            "/api/v1/sign-in",
            None,
            json!({"user": "carol", "password": "copper-lantern-harbor-31"}),
        )
        .await;
    assert_eq!(s, 200);
    let (s, _) = w.srv.sign_in("carol").await;
    assert_eq!(s, 401);
    // The notice still goes out.
    let mail = w
        .nth_mail("carol@example.test", "your password was changed", 1)
        .await;
    assert!(mail.body().contains("127.0.0.1"), "{}", mail.body());

    let events = w.audit("user=carol&limit=1000").await;
    assert_eq!(count(&events, "account.password_change", "failure"), 2);
    assert_eq!(count(&events, "account.password_change", "throttled"), 1);
    assert!(events.iter().any(|e| e["kind"] == "account.password_change"
        && e["result"] == "success"
        && e["detail"] == "1 other sessions ended"));
    assert!(events.iter().any(|e| e["kind"] == "sync.device_revoke"
        && e["detail"] == "all 1 sync devices: password changed"));
}

#[tokio::test]
async fn password_change_on_sqlite() {
    password_change(Backend::Sqlite).await;
}

#[tokio::test]
async fn password_change_on_postgres() {
    password_change(Backend::postgres().await).await;
}

// ---------------------------------------------------------------------------------------------
// 8: sync device tokens end with an MFA reset and with a recovery session.

async fn sync_tokens_end_with_the_accounts_trust(backend: Backend) {
    let w = world(backend, &[]).await;

    // The administrator's reset over the API.
    let dan = w.user("dan", None).await;
    let (_, _, dan) = w.srv.enroll(&dan, "phone").await;
    let dan_device = w.sync_device(&dan, "dan-laptop").await;
    let (s, v) = w
        .srv
        .post("/api/v1/users/dan/reset-mfa", Some(&w.root), json!({}))
        .await;
    assert_eq!(s, 204, "{v}");
    assert_eq!(w.pull(&dan_device).await, 401);

    // `admin reset-mfa` on the command line.
    let erin = w.user("erin", None).await;
    let (_, _, erin) = w.srv.enroll(&erin, "phone").await;
    let erin_device = w.sync_device(&erin, "erin-laptop").await;
    // The relay answers late, so the notice is still being sent when the command is done: the
    // command's process must wait for it before it exits (#21, `Service::close`).
    w.sink.slow_down(Duration::from_millis(700));
    let (ok, _, err) = w.admin(&["reset-mfa", "erin"]);
    assert!(ok, "{err}");
    w.sink.slow_down(Duration::ZERO);
    assert_eq!(w.pull(&erin_device).await, 401);
    w.nth_mail("erin@example.test", "an administrator reset your MFA", 1)
        .await;

    // The end of a recovery session (a new device enabled in it).
    let phone = "+81 90 3333 4444";
    let fay = w.user("fay", Some(phone)).await;
    let (_, _, fay) = w.srv.enroll(&fay, "old-phone").await;
    for (n, channel) in ["email", "phone"].iter().enumerate() {
        let (s, v) = w
            .srv
            .post(
                &format!("/api/v1/me/contacts/{channel}/verify"),
                Some(&fay),
                json!({}),
            )
            .await;
        assert_eq!(s, 202, "{v}");
        let code = if n == 0 {
            six_digits(
                &w.nth_mail("fay@example.test", "Your verification code", 1)
                    .await
                    .body(),
            )
        } else {
            w.nth_phone_code(phone, "contact_verification", 1).await
        };
        let (s, v) = w
            .srv
            .post(
                &format!("/api/v1/me/contacts/{channel}/confirm"),
                Some(&fay),
                json!({"code": code}),
            )
            .await;
        assert_eq!(s, 204, "{v}");
    }
    let fay_device = w.sync_device(&fay, "fay-laptop").await;
    let (s, v) = w.srv.sign_in("fay").await;
    assert_eq!(s, 200, "{v}");
    let ch = v["challenge"].as_str().unwrap().to_string();
    let (s, v) = w
        .srv
        .post("/api/v1/sign-in/recovery", None, json!({"challenge": ch}))
        .await;
    assert_eq!(s, 202, "{v}");
    let email_code = six_digits(
        &w.nth_mail("fay@example.test", "Your sign-in code", 1)
            .await
            .body(),
    );
    let (s, v) = w
        .srv
        .post(
            "/api/v1/sign-in/recovery/email",
            None,
            json!({"challenge": ch, "code": email_code}),
        )
        .await;
    assert_eq!(s, 202, "{v}");
    let phone_code = w.nth_phone_code(phone, "recovery_sign_in", 1).await;
    let (s, v) = w
        .srv
        .post(
            "/api/v1/sign-in/recovery/phone",
            None,
            json!({"challenge": ch, "code": phone_code}),
        )
        .await;
    assert_eq!((s, v["status"].as_str()), (200, Some("recovery")), "{v}");
    let recovery = v["token"].as_str().unwrap().to_string();
    // #15 recovery: granting the recovery session already revokes every sync token.
    assert_eq!(
        w.pull(&fay_device).await,
        401,
        "the grant of the recovery session revoked the sync token"
    );
    let (_, _, full) = w.srv.enroll(&recovery, "new-phone").await;
    assert_ne!(
        full, recovery,
        "enabling the device ended the recovery session"
    );
    assert_eq!(w.pull(&fay_device).await, 401);

    // A new password through `admin setup-root`'s link.
    let root_device = w.sync_device(&w.root, "root-laptop").await;
    let (ok, out, err) = w.admin(&["setup-root"]);
    assert!(ok, "{err}");
    let token = out.trim().rsplit("token=").next().unwrap().to_string();
    let (s, v) = w
        .srv
        .post(
            "/api/v1/setup",
            None,
            json!({"token": token, "password": PASSWORD}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(w.pull(&root_device).await, 401);

    // `admin recover-root` on the host (root signs in again first: the setup ended its
    // sessions).
    let (s, v) = w
        .srv
        .sign_in_with_code("root", &code(&w.root_secret, now() + 30))
        .await;
    assert_eq!(s, 200, "{v}");
    let root = v["token"].as_str().unwrap().to_string();
    let root_device = w.sync_device(&root, "root-laptop-2").await;
    let (ok, out, err) = w.admin(&["recover-root"]);
    assert!(ok, "{err}");
    assert!(out.contains("WARNING"), "{out}");
    assert_eq!(w.pull(&root_device).await, 401);

    // Each is audited with its reason (read on the command line: root's sessions ended).
    let (ok, out, err) = w.admin(&["audit", "--kind", "sync.device_revoke"]);
    assert!(ok, "{err}");
    let events: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let details: Vec<(&str, &str)> = events
        .iter()
        .map(|e| {
            (
                e["account"].as_str().unwrap(),
                e["detail"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        details,
        vec![
            ("dan", "all 1 sync devices: MFA reset"),
            ("erin", "all 1 sync devices: MFA reset"),
            ("fay", "all 1 sync devices: recovery session granted"),
            ("root", "all 1 sync devices: password set with a setup link"),
            ("root", "all 1 sync devices: MFA reset"),
        ]
    );
}

#[tokio::test]
async fn sync_tokens_end_with_the_accounts_trust_on_sqlite() {
    sync_tokens_end_with_the_accounts_trust(Backend::Sqlite).await;
}

#[tokio::test]
async fn sync_tokens_end_with_the_accounts_trust_on_postgres() {
    sync_tokens_end_with_the_accounts_trust(Backend::postgres().await).await;
}

// ---------------------------------------------------------------------------------------------
// 9: contact verification.

async fn contact_codes_are_limited(backend: Backend) {
    // Delays start after 6 failures, so that the five attempts of a code can be used up first.
    let w = world(
        backend,
        &[
            ("MAMORI_LOCKOUT_DELAY_AFTER", "6"),
            ("MAMORI_LOCKOUT_DELAY_BASE_SECS", "30"),
        ],
    )
    .await;
    let phone = "+81 90 6666 7777";
    let email = "gina@example.test";
    let gina = w.user("gina", Some(phone)).await;
    let subject = "Your verification code";
    let send = |channel: &'static str| {
        let path = format!("/api/v1/me/contacts/{channel}/verify");
        let (srv, gina) = (&w.srv, &gina);
        async move { srv.call("POST", &path, Some(gina), Some(json!({}))).await }
    };
    let confirm = |channel: &'static str, code: String| {
        let path = format!("/api/v1/me/contacts/{channel}/confirm");
        let (srv, gina) = (&w.srv, &gina);
        async move {
            srv.call("POST", &path, Some(gina), Some(json!({"code": code})))
                .await
        }
    };

    // Three wrong guesses, then a new code: it keeps the three, so two more use it up.
    assert_eq!(send("email").await.0, 202);
    let first = six_digits(&w.nth_mail(email, subject, 1).await.body());
    for _ in 0..3 {
        let (s, _, v) = confirm("email", other_than(&first).into()).await;
        assert_eq!((s, error_code(&v)), (401, Some("invalid_code")), "{v}");
    }
    assert_eq!(send("email").await.0, 202);
    let second = six_digits(&w.nth_mail(email, subject, 2).await.body());
    for _ in 0..2 {
        let (s, _, v) = confirm("email", other_than(&second).into()).await;
        assert_eq!((s, error_code(&v)), (401, Some("invalid_code")), "{v}");
    }
    let (s, _, v) = confirm("email", second.clone()).await;
    assert_eq!(
        (s, error_code(&v)),
        (401, Some("invalid_code")),
        "five attempts in all, not five per code: {v}"
    );
    // While the hour's budget is used up, asking again sends nothing.
    let (s, h, v) = send("email").await;
    assert_eq!((s, error_code(&v)), (429, Some("rate_limited")), "{v}");
    assert!((3500..=3600).contains(&retry_after(&h)));
    // The wrong codes counted in the account's failure counter.
    assert_eq!(w.failures("gina").await, 5);

    // One more on the phone reaches the delay: then even the right code must wait.
    assert_eq!(send("phone").await.0, 202);
    let phone_code = w.nth_phone_code(phone, "contact_verification", 1).await;
    let (s, _, _) = confirm("phone", other_than(&phone_code).into()).await;
    assert_eq!(s, 401);
    assert_eq!(w.failures("gina").await, 6);
    let (s, h, v) = confirm("phone", phone_code.clone()).await;
    assert_eq!((s, error_code(&v)), (429, Some("rate_limited")), "{v}");
    assert!((1..=30).contains(&retry_after(&h)));

    // Later (the delay over, and the email budget's hour): the phone code works, and a new
    // email code with a fresh budget too.
    w.age_failures(4000).await;
    w.sql("UPDATE verification_codes SET window_start = window_start - 4000")
        .await;
    let (s, _, v) = confirm("phone", phone_code).await;
    assert_eq!(s, 204, "{v}");
    assert_eq!(send("email").await.0, 202);
    let third = six_digits(&w.nth_mail(email, subject, 3).await.body());
    let (s, _, v) = confirm("email", third).await;
    assert_eq!(s, 204, "{v}");
    let (_, v) = w.srv.get("/api/v1/me/contacts", Some(&gina)).await;
    assert_eq!(
        (
            v["email"]["verified"].as_bool(),
            v["phone"]["verified"].as_bool()
        ),
        (Some(true), Some(true)),
        "{v}"
    );

    // At most five codes per channel per hour: two more emails, then 429 and nothing sent.
    for _ in 0..2 {
        assert_eq!(send("email").await.0, 202);
    }
    let (s, h, v) = send("email").await;
    assert_eq!((s, error_code(&v)), (429, Some("rate_limited")), "{v}");
    let wait = retry_after(&h);
    assert!((3000..=3600).contains(&wait), "{wait}");
    w.nth_mail(email, subject, 5).await;
    // Contact codes are delivered before the answer, so a sixth would already be here.
    assert_eq!(
        w.mails(email, subject).len(),
        5,
        "the sixth code was not sent"
    );
    // The phone's count is its own.
    assert_eq!(send("phone").await.0, 202);

    let events = w.audit("user=gina&limit=1000").await;
    let starts: Vec<(&str, &str)> = events
        .iter()
        .filter(|e| e["kind"] == "contact.verify_start")
        .map(|e| (e["result"].as_str().unwrap(), e["detail"].as_str().unwrap()))
        .collect();
    assert_eq!(
        starts,
        vec![
            ("success", "email"),
            ("success", "email"),
            ("refused_attempts", "email"),
            ("success", "phone"),
            ("success", "email"),
            ("success", "email"),
            ("success", "email"),
            ("refused_limit", "email"),
            ("success", "phone"),
        ]
    );
    let failures: Vec<&str> = events
        .iter()
        .filter(|e| e["kind"] == "contact.verify" && e["result"] == "failure")
        .map(|e| e["detail"].as_str().unwrap())
        .collect();
    assert_eq!(
        failures,
        vec![
            "email: attempt 1 of 5",
            "email: attempt 2 of 5",
            "email: attempt 3 of 5",
            "email: attempt 4 of 5",
            "email: attempt 5 of 5",
            "phone: attempt 1 of 5",
        ]
    );
    assert_eq!(count(&events, "contact.verify", "throttled"), 1);
}

#[tokio::test]
async fn contact_codes_are_limited_on_sqlite() {
    contact_codes_are_limited(Backend::Sqlite).await;
}

#[tokio::test]
async fn contact_codes_are_limited_on_postgres() {
    contact_codes_are_limited(Backend::postgres().await).await;
}
