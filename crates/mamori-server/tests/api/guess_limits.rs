//! Second-factor guessing against the real server, on SQLite and PostgreSQL (issue #14, items 1
//! and 2; docs/security.md "Guessing across device kinds" and "The limit under concurrency"):
//!
//! - for every mix of devices an account can hold (virtual 6-digit, hardware 8-digit TOTP,
//!   hardware 6-digit HOTP, recovery codes) and every entry point that takes a code (sign-in,
//!   validate, `session/verify`, recovery-code regeneration, the console's device removal),
//!   `lock_after` wrong answers of any shape (6, 7, 8 digits, letters) lock the account, each
//!   one is audited, none is refused as "malformed" before it counts, and afterwards even the
//!   right code is refused;
//! - parallel guesses are never evaluated more often than the policy allows, on one node or
//!   two nodes sharing PostgreSQL: exactly `delay_after` before the delay, exactly
//!   `lock_after` before the lock.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::common::*;
use mamori_otp::{Algorithm, Generator, OtpKind, OtpParams, Secret};
use rand::RngCore;
use serde_json::{json, Value};

const LOCK_AFTER: usize = 12;

/// A device whose codes the test can compute, to make sure a guess is wrong for all of them.
#[derive(Clone)]
enum Known {
    Totp { secret: Vec<u8>, digits: u32 },
    Hotp { secret: Vec<u8>, digits: u32 },
}

impl Known {
    fn generator(&self) -> Generator {
        let (secret, kind, digits) = match self {
            Known::Totp { secret, digits } => (secret, OtpKind::Totp, *digits),
            Known::Hotp { secret, digits } => (secret, OtpKind::Hotp, *digits),
        };
        let p = OtpParams {
            kind,
            algorithm: Algorithm::Sha1,
            digits,
            period: 30,
            counter: 0,
        };
        Generator::new(&Secret::from_bytes(secret.clone()).unwrap(), p).unwrap()
    }

    /// Every code this device could accept around now.
    fn near(&self) -> Vec<String> {
        let g = self.generator();
        match self {
            Known::Totp { .. } => (0..41)
                .map(|k| g.at_time(now() + 30 * k - 600).to_string())
                .collect(),
            Known::Hotp { .. } => (0..200).map(|c| g.at_counter(c).to_string()).collect(),
        }
    }
}

/// Guesses of every shape, none of them right for any of `devices`.
fn wrong_guesses(devices: &[Known], n: usize) -> Vec<String> {
    let near: Vec<String> = devices.iter().flat_map(Known::near).collect();
    let shapes = [6usize, 8, 7, 6, 8, 0];
    let mut out = Vec::new();
    let mut rng = rand::rngs::OsRng;
    while out.len() < n {
        let shape = shapes[out.len() % shapes.len()];
        let guess = if shape == 0 {
            "abcdef".to_string() // letters: fits no device at all
        } else {
            (0..shape)
                .map(|_| char::from(b'0' + (rng.next_u32() % 10) as u8))
                .collect()
        };
        if !near.contains(&guess) {
            out.push(guess);
        }
    }
    out
}

fn random_secret(len: usize) -> Vec<u8> {
    let mut b = vec![0u8; len];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The device mixes under test.
#[derive(Debug, Clone, Copy)]
enum Mix {
    /// One virtual device (6 digits).
    Virtual,
    /// A virtual device and an 8-digit hardware TOTP token (the review's case).
    VirtualAndTotp8,
    /// A 6-digit hardware HOTP token and an 8-digit hardware TOTP token.
    HotpAndTotp8,
    /// A virtual device and a set of recovery codes.
    VirtualAndRecoveryCodes,
}

const MIXES: [Mix; 4] = [
    Mix::Virtual,
    Mix::VirtualAndTotp8,
    Mix::HotpAndTotp8,
    Mix::VirtualAndRecoveryCodes,
];

/// Where a code is given.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Entry {
    SignIn,
    Validate,
    SessionVerify,
    RegenerateRecoveryCodes,
    ConsoleRemoval,
}

const ENTRIES: [Entry; 5] = [
    Entry::SignIn,
    Entry::Validate,
    Entry::SessionVerify,
    Entry::RegenerateRecoveryCodes,
    Entry::ConsoleRemoval,
];

/// A user with the devices of a mix.
struct User {
    name: String,
    devices: Vec<Known>,
    /// A right code that has not been used yet.
    right: String,
    /// A device id of the user (for the console's removal form).
    device_id: String,
}

struct Fixture {
    srv: Server,
    root: String,
    app_key: String,
    serial: u32,
}

impl Fixture {
    async fn start(backend: &Backend, env: &[(&str, &str)]) -> (Fixture, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let srv = Server::start(dir.path(), backend.url(), env);
        let restricted = srv.root_session().await;
        let (_, _, root) = srv.enroll(&restricted, "phone").await;
        let (s, v) = srv
            .post("/api/v1/app-keys", Some(&root), json!({"name": "gateway"}))
            .await;
        assert_eq!(s, 201, "{v}");
        let app_key = v["key"].as_str().unwrap().to_string();
        (
            Fixture {
                srv,
                root,
                app_key,
                serial: 0,
            },
            dir,
        )
    }

    /// A new user signed in with a password only (no device yet): its token.
    async fn new_user(&self, name: &str) -> String {
        self.srv.new_user(&self.root, json!({"user": name})).await
    }

    /// Imports one hardware token into the inventory and assigns it to the session's user.
    async fn assign_token(&mut self, token: &str, known: &Known) -> (String, Option<String>) {
        self.serial += 1;
        let serial = format!("GL-{:05}", self.serial);
        let (line, c1, c2) = match known {
            Known::Totp { secret, digits } => {
                let g = known.generator();
                let t = now();
                (
                    format!("{serial},{},totp,{digits},30", hex(secret)),
                    g.at_time(t - 30).to_string(),
                    g.at_time(t).to_string(),
                )
            }
            Known::Hotp { secret, digits } => {
                let g = known.generator();
                (
                    format!("{serial},{},hotp,{digits},0", hex(secret)),
                    g.at_counter(0).to_string(),
                    g.at_counter(1).to_string(),
                )
            }
        };
        let (s, v) = self
            .srv
            .post(
                "/api/v1/tokens/import",
                Some(&self.root),
                json!({"content": format!("serial,secret_hex,type,digits,period_or_counter\n{line}\n"), "format": "csv"}),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        let (s, v) = self
            .srv
            .post(
                "/api/v1/mfa-devices/hardware",
                Some(token),
                json!({"serial": serial, "name": serial, "code1": c1, "code2": c2}),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        (
            v["device"]["id"].as_str().unwrap().to_string(),
            v["token"].as_str().map(str::to_string),
        )
    }

    /// A user holding `mix`.
    async fn user(&mut self, name: &str, mix: Mix) -> User {
        let mut token = self.new_user(name).await;
        let mut devices = Vec::new();
        let mut device_id = String::new();
        let mut virtual_secret = None;
        if !matches!(mix, Mix::HotpAndTotp8) {
            let (id, secret, full) = self.srv.enroll(&token, "phone").await;
            token = full;
            device_id = id;
            let bytes = Secret::from_base32(&secret).unwrap().as_bytes().to_vec();
            devices.push(Known::Totp {
                secret: bytes,
                digits: 6,
            });
            virtual_secret = Some(secret);
        }
        if matches!(mix, Mix::HotpAndTotp8) {
            let hotp = Known::Hotp {
                secret: random_secret(20),
                digits: 6,
            };
            let (id, full) = self.assign_token(&token, &hotp).await;
            token = full.unwrap_or(token);
            device_id = id;
            devices.push(hotp);
        }
        if matches!(mix, Mix::VirtualAndTotp8 | Mix::HotpAndTotp8) {
            let totp = Known::Totp {
                secret: random_secret(20),
                digits: 8,
            };
            let _ = self.assign_token(&token, &totp).await;
            devices.push(totp);
        }
        if matches!(mix, Mix::VirtualAndRecoveryCodes) {
            let (s, v) = self
                .srv
                .post("/api/v1/recovery-codes", Some(&token), json!({}))
                .await;
            assert_eq!(s, 201, "{v}");
        }
        // A right code not used yet: the next TOTP step of the virtual device, else the next
        // HOTP counter.
        let right = match (&virtual_secret, &devices[0]) {
            (Some(secret), _) => code(secret, now() + 30),
            (None, hotp) => hotp.generator().at_counter(2).to_string(),
        };
        User {
            name: name.to_string(),
            devices,
            right,
            device_id,
        }
    }

    /// A full session of `user` by password and a right code (which is then used up: the user
    /// gets a fresh right code for the final check).
    async fn signed_in(&self, user: &mut User) -> String {
        let (s, v) = self.srv.sign_in_with_code(&user.name, &user.right).await;
        assert_eq!(s, 200, "{v}");
        user.right = match &user.devices[0] {
            Known::Hotp { .. } => user.devices[0].generator().at_counter(3).to_string(),
            Known::Totp { .. } => {
                // The step after the one just used.
                let g = user.devices[0].generator();
                g.at_time(now() + 60).to_string()
            }
        };
        v["token"].as_str().unwrap().to_string()
    }

    async fn validate(&self, user: &str, code: &str) -> (u16, Value) {
        let resp = self
            .srv
            .client
            .post(format!("{}/api/v1/validate", self.srv.url))
            .bearer_auth(&self.app_key)
            .json(&json!({"user": user, "code": code}))
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.json().await.unwrap())
    }
}

/// What an answer says: `invalid`, `locked`, `throttled` or something unexpected.
fn outcome(status: u16, v: &Value) -> String {
    match (status, v["error"]["code"].as_str(), v["reason"].as_str()) {
        (200, _, Some("invalid_code")) | (401, Some("invalid_code"), _) => "invalid".into(),
        (200, _, Some("account_locked")) | (423, Some("account_locked"), _) => "locked".into(),
        (200, _, Some("throttled")) | (429, _, _) => "throttled".into(),
        // A wrong answer on the console's removal form re-renders it with the error.
        (400, None, None) if v.as_str().is_some_and(|h| h.contains("name=\"csrf\"")) => {
            "invalid".into()
        }
        (423, None, None) => "locked".into(),
        _ => format!("unexpected {status} {v}"),
    }
}

/// The console's device removal with a code, as a browser posts it (cookie, CSRF token).
async fn console_remove(srv: &Server, session: &str, device_id: &str, code: &str) -> (u16, Value) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = format!("{}/security/mfa/{device_id}/remove", srv.url);
    let resp = client
        .get(&page)
        .header("cookie", format!("mamori_session={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "the removal page");
    let csrf_cookie = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("mamori_csrf="))
        .map(|v| v.split(';').next().unwrap().to_string());
    let html = resp.text().await.unwrap();
    let token = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("a CSRF field")
        .to_string();
    let cookie = match csrf_cookie {
        Some(c) => format!("mamori_session={session}; mamori_csrf={c}"),
        None => format!("mamori_session={session}"),
    };
    let resp = client
        .post(&page)
        .header("cookie", cookie)
        .header("origin", &srv.url)
        .form(&[("csrf", token.as_str()), ("code", code)])
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let body = resp.text().await.unwrap();
    (status, Value::String(body))
}

/// One guess at `entry`.
async fn guess(
    f: &Fixture,
    user: &User,
    session: Option<&str>,
    entry: Entry,
    g: &str,
) -> (u16, Value) {
    match entry {
        Entry::SignIn => {
            let (s, v) = f.srv.sign_in(&user.name).await;
            if s != 200 {
                return (s, v);
            }
            f.srv
                .post(
                    "/api/v1/sign-in/mfa",
                    None,
                    json!({"challenge": v["challenge"], "code": g}),
                )
                .await
        }
        Entry::Validate => f.validate(&user.name, g).await,
        Entry::SessionVerify => {
            f.srv
                .post("/api/v1/session/verify", session, json!({"code": g}))
                .await
        }
        Entry::RegenerateRecoveryCodes => {
            f.srv
                .post("/api/v1/recovery-codes", session, json!({"code": g}))
                .await
        }
        Entry::ConsoleRemoval => console_remove(&f.srv, session.unwrap(), &user.device_id, g).await,
    }
}

async fn every_mix_and_entry_locks(backend: Backend) {
    let lock = LOCK_AFTER.to_string();
    let (mut f, _dir) = Fixture::start(
        &backend,
        &[
            ("MAMORI_LOCKOUT_LOCK_AFTER", &lock),
            // No delays: this test is about counting and the lock; the delays have their own.
            ("MAMORI_LOCKOUT_DELAY_BASE_SECS", "0"),
            ("MAMORI_LIMITS_SIGN_IN_PER_MINUTE", "100000"),
            ("MAMORI_LIMITS_SIGN_IN_BURST", "100000"),
        ],
    )
    .await;
    for mix in MIXES {
        for entry in ENTRIES {
            let name = format!("{mix:?}-{entry:?}").to_lowercase();
            let mut user = f.user(&name, mix).await;
            let session = match entry {
                Entry::SignIn | Entry::Validate => None,
                _ => {
                    let s = f.signed_in(&mut user).await;
                    // The session's factor is older than 5 minutes, so the removal and
                    // regeneration forms must take the code (not the session's recency).
                    Some(s)
                }
            };
            if session.is_some() {
                age_second_factor(&f, &backend).await;
            }
            let guesses = wrong_guesses(&user.devices, LOCK_AFTER);
            for (i, g) in guesses.iter().enumerate() {
                let (s, v) = guess(&f, &user, session.as_deref(), entry, g).await;
                let expected = if i + 1 < LOCK_AFTER {
                    "invalid"
                } else {
                    "locked"
                };
                assert_eq!(
                    outcome(s, &v),
                    expected,
                    "{mix:?} at {entry:?}, guess {} ({g:?})",
                    i + 1
                );
            }
            // Locked: the right code is refused too, at every entry point.
            let (s, v) = f.validate(&user.name, &user.right).await;
            assert_eq!(outcome(s, &v), "locked", "{mix:?} at {entry:?}: {v}");
            let (s, v) = f.srv.sign_in(&user.name).await;
            assert_eq!(s, 200, "{v}");
            let (s, v) = f
                .srv
                .post(
                    "/api/v1/sign-in/mfa",
                    None,
                    json!({"challenge": v["challenge"], "code": user.right}),
                )
                .await;
            assert_eq!(outcome(s, &v), "locked", "{mix:?} at {entry:?}: {v}");
            // Each wrong answer was audited as a failure, and the lock once.
            let events = f
                .srv
                .audit(&f.root, &format!("user={name}&limit=1000"))
                .await;
            let failures = events.iter().filter(|e| e["result"] == "failure").count();
            assert_eq!(failures, LOCK_AFTER, "{mix:?} at {entry:?}: {events:#?}");
            let locks = events
                .iter()
                .filter(|e| e["kind"] == "account.lock")
                .count();
            assert_eq!(locks, 1, "{mix:?} at {entry:?}");
        }
    }
}

/// Moves every session's second factor 10 minutes into the past (the database is the truth).
async fn age_second_factor(f: &Fixture, backend: &Backend) {
    let sql = "UPDATE sessions SET second_factor_at = second_factor_at - 600 \
               WHERE second_factor_at IS NOT NULL";
    match backend {
        Backend::Sqlite => {
            let url = format!("sqlite://{}", f.srv.data_dir.join("mamori.db").display());
            let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
            sqlx::query(sql).execute(&pool).await.unwrap();
            pool.close().await;
        }
        Backend::Postgres(db) => {
            let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
            sqlx::query(sql).execute(&pool).await.unwrap();
            pool.close().await;
        }
    }
}

#[tokio::test]
async fn every_device_mix_and_entry_point_locks_on_sqlite() {
    every_mix_and_entry_locks(Backend::Sqlite).await;
}

#[tokio::test]
async fn every_device_mix_and_entry_point_locks_on_postgres() {
    every_mix_and_entry_locks(Backend::postgres().await).await;
}

/// `n` parallel wrong guesses through the validate API, spread over `nodes`; returns how many
/// were evaluated (audited as failures) and the answers.
async fn parallel_guesses(f: &Fixture, nodes: &[&Server], user: &User, n: usize) -> Vec<String> {
    let guesses = wrong_guesses(&user.devices, n);
    let futs = guesses.iter().enumerate().map(|(i, g)| {
        let srv = nodes[i % nodes.len()];
        let req = srv
            .client
            .post(format!("{}/api/v1/validate", srv.url))
            .bearer_auth(&f.app_key)
            .json(&json!({"user": user.name, "code": g}));
        async move {
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            let v: Value = resp.json().await.unwrap();
            outcome(status, &v)
        }
    });
    let mut handles = Vec::new();
    for fut in futs {
        handles.push(tokio::spawn(fut));
    }
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

async fn evaluated(f: &Fixture, user: &User) -> usize {
    f.srv
        .audit(
            &f.root,
            &format!("user={}&kind=validate&limit=1000", user.name),
        )
        .await
        .iter()
        .filter(|e| e["result"] == "failure")
        .count()
}

/// Servers for a parallel test: one node, or two nodes sharing one PostgreSQL database.
async fn nodes_for(
    backend: &Backend,
    two_nodes: bool,
    env: &[(&str, &str)],
) -> (Fixture, Option<Server>, tempfile::TempDir) {
    let (f, dir) = Fixture::start(backend, env).await;
    let other = two_nodes.then(|| Server::start(dir.path(), backend.url(), env));
    (f, other, dir)
}

/// A burst against the delay: exactly `delay_after` guesses are evaluated.
async fn parallel_burst(backend: Backend, two_nodes: bool) {
    // Delays long enough that no second window opens during the test: the policy then allows
    // exactly `delay_after` evaluations in a burst.
    let env = [
        ("MAMORI_LOCKOUT_LOCK_AFTER", "20"),
        ("MAMORI_LOCKOUT_DELAY_AFTER", "5"),
        ("MAMORI_LOCKOUT_DELAY_BASE_SECS", "600"),
        ("MAMORI_LOCKOUT_DELAY_MAX_SECS", "600"),
    ];
    let (mut f, other, _dir) = nodes_for(&backend, two_nodes, &env).await;
    let user = f.user("burst", Mix::VirtualAndTotp8).await;
    let mut nodes = vec![&f.srv];
    nodes.extend(other.as_ref());
    let answers = parallel_guesses(&f, &nodes, &user, 40).await;
    let n = evaluated(&f, &user).await;
    assert_eq!(
        n, 5,
        "a burst of 40 is evaluated exactly delay_after times: {answers:?}"
    );
    assert_eq!(
        answers.iter().filter(|a| *a == "invalid").count(),
        5,
        "{answers:?}"
    );
    assert!(
        answers.iter().all(|a| a == "invalid" || a == "throttled"),
        "{answers:?}"
    );
}

/// A flood against the lock: never more than `lock_after` evaluations, and the lock comes at
/// exactly `lock_after`.
async fn parallel_flood(backend: Backend, two_nodes: bool) {
    let env = [
        ("MAMORI_LOCKOUT_LOCK_AFTER", "20"),
        ("MAMORI_LOCKOUT_DELAY_BASE_SECS", "0"),
    ];
    let (mut f, other, _dir) = nodes_for(&backend, two_nodes, &env).await;
    let user = f.user("flood", Mix::VirtualAndTotp8).await;
    let mut nodes = vec![&f.srv];
    nodes.extend(other.as_ref());
    let answers = parallel_guesses(&f, &nodes, &user, 60).await;
    // Requests that lose the reservation race too often are told to try again ("throttled"),
    // so a flood may stop short of the lock, but never passes it.
    assert!(
        answers
            .iter()
            .all(|a| a == "invalid" || a == "locked" || a == "throttled"),
        "{answers:?}"
    );
    let mut n = evaluated(&f, &user).await;
    assert!(
        n <= 20,
        "at most lock_after evaluations, got {n}: {answers:?}"
    );
    // Go on one guess at a time: the lock comes exactly at the 20th evaluation.
    for g in wrong_guesses(&user.devices, 20 - n) {
        let (s, v) = f.validate(&user.name, &g).await;
        let expect = if n + 1 < 20 { "invalid" } else { "locked" };
        assert_eq!(outcome(s, &v), expect, "evaluation {}", n + 1);
        n += 1;
    }
    assert_eq!(evaluated(&f, &user).await, 20);
    let (_, v) = f.validate(&user.name, &user.right).await;
    assert_eq!(v["reason"], "account_locked", "{v}");
}

#[tokio::test]
async fn parallel_guesses_never_exceed_the_policy_on_sqlite() {
    parallel_burst(Backend::Sqlite, false).await;
    parallel_flood(Backend::Sqlite, false).await;
}

#[tokio::test]
async fn parallel_guesses_never_exceed_the_policy_on_two_postgres_nodes() {
    parallel_burst(Backend::postgres().await, true).await;
    parallel_flood(Backend::postgres().await, true).await;
}
