//! Load generator for `scripts/load/run.sh`: seeds users with enabled virtual devices straight
//! into a server's database, then drives the validate and sign-in endpoints over HTTP and prints
//! one JSON line of results per run. Talks only to the URL it is given (loopback in the script);
//! every run is bounded by its request count.
//!
//! ```text
//! load seed     --data-dir D [--database URL] --users N        # prints the app key
//! load validate --url U --key K --users N --requests M --concurrency C
//! load bodies   --users N [--requests M] --out FILE   # request bodies for scripts/load/validate.lua (wrk)
//! load sign-in  --url U --users N --requests M --concurrency C
//! load argon2   --hashes N --threads T
//! load fwd-tokens --data-dir D [--database URL] --sessions S --out FILE  # #18: single-sign-on tokens
//! load oidc-codes --data-dir D [--database URL] --sessions S --codes N [--alg ES256|RS256] --out FILE
//!                 # #17: authorization codes, as token request bodies; prints the client's Basic credentials
//! ```
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mamori_otp::{Generator, OtpParams, Secret};
use mamori_server::config::{Config, Overrides, PasswordConfig};
use mamori_server::domain::{password, token_hash, RequestMeta};
use mamori_server::store::{
    AccountRecord, DeviceKind, DeviceRecord, Redacted, Role, SessionRecord, SessionState,
};
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};

const PASSWORD: &str = "benchmark-password-1234";

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn num(args: &[String], name: &str, default: usize) -> usize {
    arg(args, name).map_or(default, |v| v.parse().expect(name))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The deterministic secret of benchmark user `i` (so the generator needs no list).
fn secret_of(i: usize) -> Secret {
    let h = Sha256::digest(format!("mamori-bench-{i}").as_bytes());
    Secret::from_bytes(h[..20].to_vec()).unwrap()
}

fn user_of(i: usize) -> String {
    format!("bench{i}")
}

async fn seed(args: &[String]) {
    let users = num(args, "--users", 1000);
    let config = Config::load(&Overrides {
        data_dir: arg(args, "--data-dir").map(Into::into),
        database: arg(args, "--database"),
        ..Default::default()
    })
    .unwrap();
    let svc = Arc::new(
        mamori_server::server::open_service(&config, "http://bench".into())
            .await
            .unwrap(),
    );
    // One real Argon2id hash at the default parameters, shared by every benchmark user (hashing
    // 100,000 passwords would take over an hour on two cores and measure nothing new).
    let phc = password::hash(PASSWORD, &PasswordConfig::default(), &mut OsRng).unwrap();
    let t = now() as i64;
    let step = t / 30;
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let svc = svc.clone();
        let next = next.clone();
        let phc = phc.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= users {
                    break;
                }
                let account = AccountRecord {
                    id: uuid::Uuid::new_v4().to_string(),
                    name: user_of(i),
                    role: Role::User,
                    email: None,
                    phone: None,
                    password_hash: Some(Redacted::new(phc.clone())),
                    password_changed_at: Some(t),
                    created_at: t,
                    mfa_failures: 0,
                    mfa_last_failure_at: None,
                    locked_at: None,
                };
                svc.store().create_account(&account).await.unwrap();
                let id = uuid::Uuid::new_v4().to_string();
                let sealed = svc.seal_secret(&id, &secret_of(i), &mut OsRng).unwrap();
                let device = DeviceRecord {
                    id: id.clone(),
                    account_id: account.id.clone(),
                    kind: DeviceKind::Virtual,
                    name: "phone".into(),
                    serial: format!("mamori:mfa/{}/phone", account.name),
                    created_at: t,
                    enabled_at: None,
                    last_used_at: None,
                    secret_sealed: Some(Redacted::new(sealed)),
                    otp_type: "totp".into(),
                    algorithm: "SHA1".into(),
                    digits: 6,
                    period: 30,
                    drift: 0,
                    last_step: None,
                    credential: None,
                };
                svc.store().create_device(&device, 8).await.unwrap();
                // Enabled with the last used step two steps back, so the previous, current and
                // next steps' codes are each accepted once.
                assert!(svc
                    .store()
                    .enable_device(&id, t, 0, step - 2)
                    .await
                    .unwrap());
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let (_, key) = svc
        .create_app_key("bench", "bench", t, &mut OsRng, &RequestMeta::cli())
        .await
        .unwrap();
    eprintln!(
        "seeded {users} users in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    svc.store().close().await;
    println!("{}", key.as_str());
}

struct Stats {
    latencies: Vec<Duration>,
    accepted: usize,
    rejected: usize,
    errors: usize,
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx].as_secs_f64() * 1000.0
}

/// Sends `requests` requests built by `make(i)` with `concurrency` workers.
async fn drive<F>(concurrency: usize, requests: usize, make: F) -> (Stats, Duration)
where
    F: Fn(usize) -> (String, Option<String>, serde_json::Value) + Send + Sync + 'static,
{
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .unwrap();
    let make = Arc::new(make);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let client = client.clone();
        let make = make.clone();
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            let mut s = Stats {
                latencies: Vec::new(),
                accepted: 0,
                rejected: 0,
                errors: 0,
            };
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= requests {
                    break;
                }
                let (url, bearer, body) = make(i);
                let t0 = Instant::now();
                let mut req = client.post(url).json(&body);
                if let Some(b) = bearer {
                    req = req.bearer_auth(b);
                }
                match req.send().await {
                    Ok(resp) => {
                        let status = resp.status();
                        let v: serde_json::Value = resp.json().await.unwrap_or_default();
                        s.latencies.push(t0.elapsed());
                        let ok = status.is_success()
                            && (v["result"] == "accept"
                                || v["status"] == "mfa_required"
                                || v["status"] == "signed_in");
                        if ok {
                            s.accepted += 1;
                        } else if status.is_success() || status.as_u16() == 401 {
                            s.rejected += 1;
                        } else {
                            s.errors += 1;
                        }
                    }
                    Err(_) => s.errors += 1,
                }
            }
            s
        }));
    }
    let mut all = Stats {
        latencies: Vec::new(),
        accepted: 0,
        rejected: 0,
        errors: 0,
    };
    for t in tasks {
        let s = t.await.unwrap();
        all.latencies.extend(s.latencies);
        all.accepted += s.accepted;
        all.rejected += s.rejected;
        all.errors += s.errors;
    }
    (all, start.elapsed())
}

fn report(kind: &str, users: usize, concurrency: usize, stats: Stats, elapsed: Duration) {
    let mut lat = stats.latencies;
    lat.sort();
    let secs = elapsed.as_secs_f64();
    let total = stats.accepted + stats.rejected + stats.errors;
    let line = serde_json::json!({
        "run": kind,
        "users": users,
        "concurrency": concurrency,
        "requests": total,
        "accepted": stats.accepted,
        "rejected": stats.rejected,
        "errors": stats.errors,
        "seconds": (secs * 1000.0).round() / 1000.0,
        "per_second": (total as f64 / secs).round(),
        "accepted_per_second": (stats.accepted as f64 / secs).round(),
        "p50_ms": (percentile(&lat, 0.50) * 100.0).round() / 100.0,
        "p99_ms": (percentile(&lat, 0.99) * 100.0).round() / 100.0,
    });
    println!("{line}");
}

async fn validate(args: &[String]) {
    let url = arg(args, "--url").expect("--url");
    let key = arg(args, "--key").expect("--key");
    let users = num(args, "--users", 1000);
    let concurrency = num(args, "--concurrency", 32);
    // Each user can accept three codes (previous, current and next step), in that order.
    let requests = num(args, "--requests", 3 * users).min(3 * users);
    let generators: Arc<Vec<Generator>> = Arc::new(
        (0..users)
            .map(|i| Generator::new(&secret_of(i), OtpParams::totp()).unwrap())
            .collect(),
    );
    let target = format!("{url}/api/v1/validate");
    let (stats, elapsed) = drive(concurrency, requests, move |i| {
        // Round r of a user sends the code of step (now - 1 + r): inside the ±1 window when sent,
        // and increasing for each user, so every request is a fresh, acceptable code even when
        // the run lasts several 30-second steps.
        let round = (i / users) as u64;
        let u = i % users;
        let code = generators[u].at_counter(now() / 30 - 1 + round).to_string();
        (
            target.clone(),
            Some(key.clone()),
            serde_json::json!({"user": user_of(u), "code": code}),
        )
    })
    .await;
    report("validate", users, concurrency, stats, elapsed);
}

/// Writes the validate request bodies for `scripts/load/validate.lua`: all users' codes of the
/// previous step, then of the current step, then of the next. The codes are fixed when written,
/// so this waits until the current 30-second step has at least 20 seconds left: a run started
/// at once then ends inside the same step, where all three codes are inside the ±1 window.
fn bodies(args: &[String]) {
    let users = num(args, "--users", 1000);
    let requests = num(args, "--requests", 3 * users).min(3 * users);
    let out = arg(args, "--out").expect("--out");
    let left = 30 - now() % 30;
    if left < 20 {
        eprintln!("waiting {left} s for the next 30-second step");
        std::thread::sleep(Duration::from_secs(left));
    }
    let step = now() / 30;
    let mut text = String::with_capacity(requests * 40);
    let generators: Vec<Generator> = (0..users)
        .map(|i| Generator::new(&secret_of(i), OtpParams::totp()).unwrap())
        .collect();
    for i in 0..requests {
        let (round, u) = ((i / users) as u64, i % users);
        let code = generators[u].at_counter(step - 1 + round).to_string();
        text.push_str(&serde_json::json!({"user": user_of(u), "code": code}).to_string());
        text.push('\n');
    }
    std::fs::write(&out, text).unwrap();
}

async fn sign_in(args: &[String]) {
    let url = arg(args, "--url").expect("--url");
    let users = num(args, "--users", 1000);
    let concurrency = num(args, "--concurrency", 8);
    let requests = num(args, "--requests", 200);
    let target = format!("{url}/api/v1/sign-in");
    let (stats, elapsed) = drive(concurrency, requests, move |i| {
        (
            target.clone(),
            None,
            serde_json::json!({"user": user_of(i % users), "password": PASSWORD}),
        )
    })
    .await;
    report("sign_in", users, concurrency, stats, elapsed);
}

/// This process's CPU time (user + system) in seconds, from /proc/self/stat.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

fn argon2_rate(args: &[String]) {
    let hashes = num(args, "--hashes", 40);
    let threads = num(args, "--threads", 2);
    let phc = password::hash(PASSWORD, &PasswordConfig::default(), &mut OsRng).unwrap();
    let start = Instant::now();
    let cpu0 = cpu_seconds();
    let per = hashes.div_ceil(threads);
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let phc = phc.clone();
            std::thread::spawn(move || {
                for _ in 0..per {
                    assert!(password::verify(PASSWORD, &phc));
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let line = serde_json::json!({
        "run": "argon2id_verify",
        "cpu_ms_per_hash": (cpu * 1000.0 / (per * threads) as f64 * 10.0).round() / 10.0,
        "threads": threads,
        "hashes": per * threads,
        "seconds": (secs * 1000.0).round() / 1000.0,
        "per_second": ((per * threads) as f64 / secs * 10.0).round() / 10.0,
        "ms_per_hash_per_thread": (secs * 1000.0 / per as f64 * 10.0).round() / 10.0,
    });
    println!("{line}");
}

/// #18: full sessions (second factor just given) for the first S seeded users, each with the
/// forward-auth token its single-sign-on cookie would carry, one token per line in FILE, for
/// `scripts/load/forward_auth.sh`. The sessions are written through the store and the tokens
/// issued by the service, as `/sso` issues them.
async fn fwd_tokens(args: &[String]) {
    let sessions = num(args, "--sessions", 1000);
    let out = arg(args, "--out").expect("--out FILE");
    let config = Config::load(&Overrides {
        data_dir: arg(args, "--data-dir").map(Into::into),
        database: arg(args, "--database"),
        ..Default::default()
    })
    .unwrap();
    let svc = mamori_server::server::open_service(&config, "http://bench".into())
        .await
        .unwrap();
    let t = now() as i64;
    let meta = RequestMeta::cli();
    let mut lines = String::new();
    for token in full_sessions(&svc, sessions, t).await {
        let auth = svc.authenticate(&token, t).await.unwrap();
        let fwd = svc
            .issue_forward_token(&auth, "app.bench.test", t, &meta, &mut OsRng)
            .await
            .unwrap();
        lines.push_str(fwd.as_str());
        lines.push('\n');
    }
    std::fs::write(&out, lines).unwrap();
    svc.store().close().await;
}

/// Writes `sessions` full sessions (second factor just given) of the first seeded users into
/// the store; their bearer tokens.
async fn full_sessions(
    svc: &mamori_server::domain::Service,
    sessions: usize,
    t: i64,
) -> Vec<String> {
    let mut tokens = Vec::with_capacity(sessions);
    for i in 0..sessions {
        let account = svc
            .store()
            .account_by_name(&user_of(i))
            .await
            .unwrap()
            .expect("seeded user (run `load seed` first)");
        let token = format!("bench-session-{i}-{}", uuid::Uuid::new_v4());
        let session = SessionRecord {
            id: uuid::Uuid::new_v4().to_string(),
            token_hash: token_hash(&token),
            account_id: account.id.clone(),
            state: SessionState::Full,
            created_at: t,
            last_seen_at: t,
            expires_at: t + 8 * 3600,
            second_factor_at: Some(t),
            client_addr: None,
            user_agent: None,
        };
        svc.store().create_session(&session).await.unwrap();
        tokens.push(token);
    }
    tokens
}

/// #17: a trusted confidential client and N authorization codes for it, issued by the service
/// as the authorization endpoint issues them (round robin over S sessions), written as token
/// request bodies (one per line) for `scripts/load/oidc_token.lua`. Prints
/// `{"client_id", "basic"}` (the `Authorization: Basic` value). The codes live 60 seconds: run
/// the benchmark at once.
async fn oidc_codes(args: &[String]) {
    use mamori_server::domain::oidc::{AuthorizeParams, AuthorizeStep, NewClient, RequireFactor};
    let sessions = num(args, "--sessions", 100);
    let codes = num(args, "--codes", 20_000);
    let alg = arg(args, "--alg").unwrap_or_else(|| "ES256".into());
    let out = arg(args, "--out").expect("--out FILE");
    let config = Config::load(&Overrides {
        data_dir: arg(args, "--data-dir").map(Into::into),
        database: arg(args, "--database"),
        ..Default::default()
    })
    .unwrap();
    let svc = Arc::new(
        mamori_server::server::open_service(&config, "http://bench".into())
            .await
            .unwrap(),
    );
    let t = now() as i64;
    let meta = RequestMeta::cli();
    const REDIRECT: &str = "https://app.bench.test/cb";
    let created = svc
        .oidc_create_client(
            NewClient {
                name: format!("bench-{}", uuid::Uuid::new_v4().simple()),
                redirect_uris: vec![REDIRECT.into()],
                post_logout_redirect_uris: vec![],
                public: false,
                trusted: true,
                require: RequireFactor::TwoFactor,
                allowed_users: vec![],
                allowed_groups: vec![],
                alg,
            },
            "bench",
            t,
            &meta,
            &mut OsRng,
        )
        .await
        .unwrap();
    let client_id = created.client.id.clone();
    let secret = created.secret.clone().expect("a confidential client");
    let tokens = full_sessions(&svc, sessions, t).await;
    let params = AuthorizeParams::from_query(&format!(
        "response_type=code&scope=openid%20profile&client_id={client_id}&redirect_uri={REDIRECT}&nonce=n"
    ))
    .unwrap();
    let req = svc.oidc_check_authorize(&params).await.unwrap();
    let mut auths = Vec::with_capacity(tokens.len());
    for tok in &tokens {
        auths.push(svc.authenticate(tok, t).await.unwrap());
    }
    let auths = Arc::new(auths);
    // A few at once: PostgreSQL takes them in parallel, SQLite's writer one by one.
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..8 {
        let (svc, req, auths, next) = (svc.clone(), req.clone(), auths.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            let meta = RequestMeta::cli();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= codes {
                    return mine;
                }
                let auth = &auths[i % auths.len()];
                let step = svc
                    .oidc_authorize(&req, Some(auth), now() as i64, &meta, &mut OsRng)
                    .await
                    .unwrap();
                let AuthorizeStep::Redirect(to) = step else {
                    panic!("a trusted client's code at once: {step:?}")
                };
                let code = url::Url::parse(&to)
                    .unwrap()
                    .query_pairs()
                    .find(|(k, _)| k == "code")
                    .unwrap()
                    .1
                    .into_owned();
                mine.push(code);
            }
        }));
    }
    let mut lines = String::new();
    for w in workers {
        for code in w.await.unwrap() {
            lines.push_str(&format!(
                "grant_type=authorization_code&code={code}&redirect_uri=https%3A%2F%2Fapp.bench.test%2Fcb\n"
            ));
        }
    }
    std::fs::write(&out, lines).unwrap();
    let basic = data_encoding::BASE64.encode(format!("{client_id}:{}", secret.as_str()).as_bytes());
    println!(
        "{}",
        serde_json::json!({ "client_id": client_id, "basic": basic })
    );
    svc.store().close().await;
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("seed") => seed(&args).await,
        Some("validate") => validate(&args).await,
        Some("bodies") => bodies(&args),
        Some("sign-in") => sign_in(&args).await,
        Some("argon2") => argon2_rate(&args),
        Some("fwd-tokens") => fwd_tokens(&args).await,
        Some("oidc-codes") => oidc_codes(&args).await,
        _ => {
            eprintln!(
                "usage: load seed|validate|bodies|sign-in|argon2|fwd-tokens|oidc-codes [options] (see the source header)"
            );
            std::process::exit(2);
        }
    }
}
