//! The authorization matrix: every row of `tests/data/authorization-matrix.txt` (edge,
//! operation, actor -> target, session kind, expected answer) run against a real server on
//! SQLite and on PostgreSQL (issue #14; docs/security.md "The authorization matrix").
//!
//! Sessions of each kind are written straight into the database (a fresh, stale, password-only,
//! enrollment-only or recovery session of the actor), so that every row starts from the state
//! it names without waiting five minutes or walking the recovery flow; what is under test is
//! how the server answers a request made with that session. Every row gets its own target user
//! and resources (a pending or enabled device, a hardware token in the inventory), so rows do
//! not depend on each other. All mismatches are reported together.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::common::*;
use mamori_otp::Secret;
use rand::RngCore;
use serde_json::{json, Value};

const MATRIX: &str = include_str!("../data/authorization-matrix.txt");

/// The server's public URL in these tests.
const ORIGIN: &str = "https://mamori.test";

/// One row of the table.
#[derive(Debug, Clone)]
struct Row {
    line: usize,
    edge: String,
    op: String,
    pair: String,
    session: String,
    status: u16,
    code: Option<String>,
}

fn rows() -> Vec<Row> {
    MATRIX
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|(i, l)| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert!(f.len() == 5 || f.len() == 6, "line {}: {l}", i + 1);
            Row {
                line: i + 1,
                edge: f[0].into(),
                op: f[1].into(),
                pair: f[2].into(),
                session: f[3].into(),
                status: f[4].parse().unwrap(),
                code: f.get(5).filter(|c| **c != "-").map(|c| c.to_string()),
            }
        })
        .collect()
}

/// Direct access to the server's database, for writing sessions.
enum Db {
    Sqlite(sqlx::SqlitePool),
    Pg(sqlx::PgPool),
}

impl Db {
    async fn open(srv: &Server, backend: &Backend) -> Db {
        match backend {
            Backend::Sqlite => {
                let url = format!("sqlite://{}", srv.data_dir.join("mamori.db").display());
                Db::Sqlite(sqlx::SqlitePool::connect(&url).await.unwrap())
            }
            Backend::Postgres(db) => Db::Pg(sqlx::PgPool::connect(&db.url).await.unwrap()),
        }
    }

    /// Writes a session of `kind` for `account_id` and returns its bearer token.
    async fn session(&self, account_id: &str, kind: &str) -> String {
        let t = now() as i64;
        let (state, factor, expires) = match kind {
            "fresh" => ("full", Some(t - 60), t + 3600),
            "stale" => ("full", Some(t - 600), t + 3600),
            "password" => ("full", None, t + 3600),
            "enroll" => ("enrollment_required", None, t + 3600),
            "recovery" => ("recovery", None, t + 1200),
            other => panic!("unknown session kind {other}"),
        };
        let mut raw = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut raw);
        let token = data_encoding::BASE64URL_NOPAD.encode(&raw);
        let hash = mamori_server::domain::token_hash(&token);
        let id = uuid::Uuid::new_v4().to_string();
        let sql = "INSERT INTO sessions (id, token_hash, account_id, state, created_at, \
                   last_seen_at, expires_at, second_factor_at, client_addr, user_agent) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, 'matrix')";
        // The same statement and values on either backend's pool.
        macro_rules! insert {
            ($pool:expr) => {
                sqlx::query(sql)
                    .bind(&id)
                    .bind(&hash)
                    .bind(account_id)
                    .bind(state)
                    .bind(t - 120)
                    .bind(t)
                    .bind(expires)
                    .bind(factor)
                    .execute($pool)
                    .await
                    .unwrap()
            };
        }
        match self {
            Db::Sqlite(p) => {
                insert!(p);
            }
            Db::Pg(p) => {
                insert!(p);
            }
        }
        token
    }

    // #18
    /// Writes a forward-auth token of the session whose bearer token is `session` and returns
    /// it (what the console's `/sso` puts in the single-sign-on cookie).
    async fn forward_token(&self, session: &str) -> String {
        let mut raw = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut raw);
        let token = data_encoding::BASE64URL_NOPAD.encode(&raw);
        let sql = "INSERT INTO forward_sessions (token_hash, session_id, created_at) \
                   SELECT $1, id, 0 FROM sessions WHERE token_hash = $2";
        let (hash, of) = (
            mamori_server::domain::token_hash(&token),
            mamori_server::domain::token_hash(session),
        );
        let n = match self {
            Db::Sqlite(p) => sqlx::query(sql)
                .bind(&hash)
                .bind(&of)
                .execute(p)
                .await
                .unwrap()
                .rows_affected(),
            Db::Pg(p) => sqlx::query(sql)
                .bind(&hash)
                .bind(&of)
                .execute(p)
                .await
                .unwrap()
                .rows_affected(),
        };
        assert_eq!(n, 1);
        token
    }

    // #15 recovery
    /// Writes a pending alternative-factor recovery of `account_id`, as the phone step makes
    /// one; returns its id and cancel token.
    async fn pending_recovery(&self, account_id: &str) -> (String, String) {
        let t = now() as i64;
        let mut raw = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut raw);
        let token = data_encoding::BASE64URL_NOPAD.encode(&raw);
        let hash = mamori_server::domain::token_hash(&token);
        let id = uuid::Uuid::new_v4().to_string();
        let sql = "INSERT INTO recovery_pending (id, account_id, created_at, ready_at, \
                   cancel_hash, state, ended_at) VALUES ($1, $2, $3, $4, $5, 'pending', NULL)";
        macro_rules! insert {
            ($pool:expr) => {
                sqlx::query(sql)
                    .bind(&id)
                    .bind(account_id)
                    .bind(t)
                    .bind(t + 86400)
                    .bind(&hash)
                    .execute($pool)
                    .await
                    .unwrap()
            };
        }
        match self {
            Db::Sqlite(p) => {
                insert!(p);
            }
            Db::Pg(p) => {
                insert!(p);
            }
        }
        (id, token)
    }

    /// The state of a pending recovery row: `pending`, `completed` or `cancelled`.
    async fn recovery_state(&self, id: &str) -> String {
        let sql = "SELECT state FROM recovery_pending WHERE id = $1";
        match self {
            Db::Sqlite(p) => sqlx::query_scalar(sql).bind(id).fetch_one(p).await.unwrap(),
            Db::Pg(p) => sqlx::query_scalar(sql).bind(id).fetch_one(p).await.unwrap(),
        }
    }
}

/// An account the table refers to.
#[derive(Clone)]
struct Account {
    name: String,
    id: String,
    /// An enabled virtual device and its secret, if it has one.
    device: Option<(String, String)>,
}

struct Matrix {
    srv: Server,
    db: Db,
    root: Account,
    ada: Account,
    adam: Account,
    otto: Account,
    /// Application keys: without and with `allow_root`.
    app_key: String,
    root_app_key: String,
    /// #19: a key made with `allow_no_device` (and without `allow_root`).
    no_device_app_key: String,
    /// The RADIUS server's UDP port.
    radius_port: u16,
    /// #17: OpenID clients (id, secret): two trusted ones, one only for the group `admins`.
    oidc: [(String, String); 3],
    /// #17 consents: a client that is not trusted (it asks for consent).
    oidc_asking: (String, String),
    n: usize,
}

impl Matrix {
    async fn start(backend: &Backend, dir: &std::path::Path) -> Matrix {
        // #19: a RADIUS client on loopback, password and code in one field (the common VPN way),
        // and #18: one forward-auth rule for the forward_auth rows, in one configuration file.
        let radius_port = super::radius::free_udp_port();
        let cfg = super::radius::radius_config(
            &dir.join("radius"),
            radius_port,
            "password_code",
            "127.0.0.1",
            "[forward_auth]\n[[forward_auth.rules]]\nhost = \"app.matrix.test\"\n\
             policy = \"two_factor\"\nmax_age = 300\n",
        );
        let srv = Server::start(
            &dir.join("data"),
            backend.url(),
            &[
                ("MAMORI_CONFIG", cfg.to_str().unwrap()),
                // A relying party security keys can be registered for (an IP address cannot
                // be one); the console's origin check then expects this origin too.
                ("MAMORI_PUBLIC_URL", ORIGIN),
                // Password-only sessions of accounts without MFA exist (`password` rows).
                ("MAMORI_REQUIRE_MFA", "root"),
                ("MAMORI_LIMITS_MAX_DEVICES", "64"),
                // #15 contacts: codes for contact changes go to the log gateway.
                ("MAMORI_PHONE_PROVIDER", "log"),
                ("MAMORI_LIMITS_SIGN_IN_PER_MINUTE", "100000"),
                ("MAMORI_LIMITS_SIGN_IN_BURST", "100000"),
            ],
        );
        let db = Db::open(&srv, backend).await;
        let restricted = srv.root_session().await;
        let (id, secret, root_token) = srv.enroll(&restricted, "phone").await;
        let (_, me) = srv.get("/api/v1/me", Some(&root_token)).await;
        let root = Account {
            name: "root".into(),
            id: me["id"].as_str().unwrap().into(),
            device: Some((id, secret)),
        };
        let mut m = Matrix {
            srv,
            db,
            ada: root.clone(),
            adam: root.clone(),
            otto: root.clone(),
            root,
            app_key: String::new(),
            root_app_key: String::new(),
            no_device_app_key: String::new(),
            radius_port,
            oidc: [
                oidc_client(dir, backend, &["a", "--trusted"]),
                oidc_client(dir, backend, &["b", "--trusted"]),
                oidc_client(
                    dir,
                    backend,
                    &["only", "--trusted", "--allow-group", "admins"],
                ),
            ],
            oidc_asking: oidc_client(dir, backend, &["asking"]),
            n: 0,
        };
        m.app_key = m.new_app_key("gateway", false).await;
        m.root_app_key = m.new_app_key("root-gateway", true).await;
        m.no_device_app_key = m
            .new_key(
                "pam-hosts",
                json!({"name": "pam-hosts", "allow_no_device": true}),
            )
            .await;
        m.ada = m.user("ada", "admin", true).await;
        m.adam = m.user("adam", "admin", false).await;
        m.otto = m.user("otto", "user", true).await;
        m
    }

    async fn new_app_key(&self, name: &str, allow_root: bool) -> String {
        self.new_key(name, json!({"name": name, "allow_root": allow_root}))
            .await
    }

    /// An application key made over the API with `body`.
    async fn new_key(&self, name: &str, body: Value) -> String {
        let root = self.fresh(&self.root).await;
        let (s, v) = self.srv.post("/api/v1/app-keys", Some(&root), body).await;
        assert_eq!(s, 201, "{name}: {v}");
        v["key"].as_str().unwrap().to_string()
    }

    /// An application key's id, made for the row (to be revoked).
    async fn app_key_id(&mut self) -> String {
        self.n += 1;
        let root = self.fresh(&self.root).await;
        let (s, v) = self
            .srv
            .post(
                "/api/v1/app-keys",
                Some(&root),
                json!({"name": format!("revocable{}", self.n)}),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        v["id"].as_str().unwrap().to_string()
    }

    async fn fresh(&self, a: &Account) -> String {
        self.db.session(&a.id, "fresh").await
    }

    /// A new account (with an enabled virtual device when `device`).
    async fn user(&self, name: &str, role: &str, device: bool) -> Account {
        let root = self.fresh(&self.root).await;
        let (s, v) = self
            .srv
            .post(
                "/api/v1/users",
                Some(&root),
                json!({"user": name, "role": role, "phone": "+81 90 1234 5678"}),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        let link = v["setup_link"].as_str().unwrap();
        let token = link.split("token=").nth(1).unwrap();
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
        assert_eq!(s, 200, "{v}");
        let token = v["token"].as_str().unwrap().to_string();
        let (_, me) = self.srv.get("/api/v1/me", Some(&token)).await;
        let device = if device {
            let (id, secret, _) = self.srv.enroll(&token, "phone").await;
            Some((id, secret))
        } else {
            None
        };
        Account {
            name: name.into(),
            id: me["id"].as_str().unwrap().into(),
            device,
        }
    }

    /// A pending virtual device of `a`: (id, secret).
    async fn pending(&mut self, a: &Account) -> (String, String) {
        self.n += 1;
        let t = self.fresh(a).await;
        let (s, v) = self
            .srv
            .post(
                "/api/v1/mfa-devices/virtual",
                Some(&t),
                json!({"name": format!("pending{}", self.n)}),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        (
            v["id"].as_str().unwrap().into(),
            v["secret_base32"].as_str().unwrap().into(),
        )
    }

    /// An enabled virtual device of `a`: (id, secret).
    async fn enabled(&mut self, a: &Account) -> (String, String) {
        let (id, secret) = self.pending(a).await;
        let t = self.fresh(a).await;
        let at = now();
        let (s, v) = self
            .srv
            .post(
                &format!("/api/v1/mfa-devices/{id}/enable"),
                Some(&t),
                json!({"code1": code(&secret, at - 30), "code2": code(&secret, at)}),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        (id, secret)
    }

    /// A TOTP hardware token in the inventory: (serial, code1, code2).
    async fn token(&mut self) -> (String, String, String) {
        self.n += 1;
        let serial = format!("MX-{:05}", self.n);
        let mut secret = [0u8; 20];
        rand::rngs::OsRng.fill_bytes(&mut secret);
        let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
        let root = self.fresh(&self.root).await;
        let (s, v) = self
            .srv
            .post(
                "/api/v1/tokens/import",
                Some(&root),
                json!({"format": "csv", "content": format!("{serial},{hex},totp,6,30\n")}),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        let b32 = Secret::from_bytes(secret.to_vec())
            .unwrap()
            .to_base32()
            .to_string();
        let at = now();
        (serial, code(&b32, at - 30), code(&b32, at))
    }

    /// The (actor, target) of a row; targets other than root are made for the row.
    async fn pair(&mut self, pair: &str) -> (Account, Account) {
        self.n += 1;
        let fresh_user = format!("u{}", self.n);
        match pair {
            "root" => (self.root.clone(), self.root.clone()),
            "self" => {
                let u = self.user(&fresh_user, "user", true).await;
                (u.clone(), u)
            }
            "new" => {
                let u = self.user(&fresh_user, "user", false).await;
                (u.clone(), u)
            }
            "admin>user" => (self.ada.clone(), self.user(&fresh_user, "user", true).await),
            "admin>root" => (self.ada.clone(), self.root.clone()),
            "nomfa>user" => (
                self.adam.clone(),
                self.user(&fresh_user, "user", true).await,
            ),
            "other>user" => (
                self.otto.clone(),
                self.user(&fresh_user, "user", true).await,
            ),
            // The validate API's actor is an application key, not a session.
            "app>user" | "rootapp>user" | "ndapp>user" => {
                let u = self.user(&fresh_user, "user", true).await;
                (u.clone(), u)
            }
            "app>root" | "rootapp>root" | "ndapp>root" => (self.root.clone(), self.root.clone()),
            // #19: the validate status for a user without any device, and for a name no
            // account has.
            "app>new" | "ndapp>new" => {
                let u = self.user(&fresh_user, "user", false).await;
                (u.clone(), u)
            }
            "ndapp>unknown" => {
                let nobody = Account {
                    name: format!("nobody-{fresh_user}"),
                    id: String::new(),
                    device: None,
                };
                (nobody.clone(), nobody)
            }
            // #19: the RADIUS client (a NAS) for a user with a device, root, one without.
            "nas>user" => {
                let u = self.user(&fresh_user, "user", true).await;
                (u.clone(), u)
            }
            "nas>root" => (self.root.clone(), self.root.clone()),
            "nas>new" => {
                let u = self.user(&fresh_user, "user", false).await;
                (u.clone(), u)
            }
            other => panic!("unknown actor->target {other}"),
        }
    }

    /// Runs one row: returns (status, error code).
    async fn run(&mut self, row: &Row) -> (u16, Option<String>) {
        let (actor, mut target) = self.pair(&row.pair).await;
        if target.name == "root"
            && matches!(
                row.op.as_str(),
                "rename"
                    | "delete_own"
                    | "admin_delete"
                    | "resync"
                    | "remove_own_with_code"
                    | "deactivate"
                    | "right_code"
                    | "delete_oidc_client_with_code"
                    | "create_oidc_client_with_code"
                    | "rotate_oidc_secret_with_code"
            )
        {
            // Root keeps its first device; each row works on a device of its own.
            target.device = Some(self.enabled(&target).await);
        }
        if row.edge == "radius" {
            return self.run_radius(row, &target);
        }
        if row.edge == "validate" && row.op == "status" {
            let key = if row.pair.starts_with("ndapp") {
                &self.no_device_app_key
            } else {
                &self.app_key
            };
            let resp = self
                .srv
                .client
                .post(format!("{}/api/v1/validate/status", self.srv.url))
                .bearer_auth(key)
                .json(&json!({"user": target.name}))
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            let v: Value = resp.json().await.unwrap();
            let answer = v["status"]
                .as_str()
                .or(v["error"]["code"].as_str())
                .map(str::to_string);
            return (status, answer);
        }
        if row.edge == "validate" {
            let key = if row.pair.starts_with("rootapp") {
                &self.root_app_key
            } else {
                &self.app_key
            };
            let (_, secret) = target.device.clone().expect("the target has a device");
            let resp = self
                .srv
                .client
                .post(format!("{}/api/v1/validate", self.srv.url))
                .bearer_auth(key)
                .json(&json!({"user": target.name, "code": code(&secret, now() + 30)}))
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            let v: Value = resp.json().await.unwrap();
            let answer = v["reason"]
                .as_str()
                .or(v["result"].as_str())
                .map(str::to_string);
            return (status, answer);
        }
        if matches!(
            row.op.as_str(),
            "cancel_recovery" | "cancel_link_get" | "cancel_link_post"
        ) {
            return self.run_cancel(row, &actor, &target).await;
        }
        if row.edge == "oidc" {
            return self.run_oidc(row, &actor).await;
        }
        if OIDC_CLIENT_OPS.contains(&row.op.as_str()) {
            return self.run_oidc_clients(row, &actor, &target).await;
        }
        if row.op.ends_with("oidc_consent") || row.op.ends_with("oidc_consents") {
            return self.run_consents(row, &actor, &target).await;
        }
        if row.op == "phone_resend_unauthenticated" {
            // A sign-in step: the challenge is the credential; without a live one nothing is
            // sent, whatever the body asks for.
            let (s, _, v) = self
                .srv
                .call(
                    "POST",
                    "/api/v1/sign-in/recovery/phone/resend",
                    None,
                    Some(json!({"challenge": "not-a-challenge", "channel": "voice"})),
                )
                .await;
            return (s, v["error"]["code"].as_str().map(str::to_string));
        }
        let session = self.db.session(&actor.id, &row.session).await;
        let t = Some(session.as_str());
        let device = || target.device.clone().expect("the target has a device").0;
        let api = |r: (u16, Value)| (r.0, r.1["error"]["code"].as_str().map(str::to_string));
        self.n += 1;
        let n = self.n;
        match (row.edge.as_str(), row.op.as_str()) {
            ("api", "create_virtual") => api(
                self.srv
                    .post("/api/v1/mfa-devices/virtual", t, json!({"name": format!("d{n}")}))
                    .await,
            ),
            ("api", "enable_virtual") => {
                let (id, secret) = self.pending(&target).await;
                let at = now();
                api(self
                    .srv
                    .post(
                        &format!("/api/v1/mfa-devices/{id}/enable"),
                        t,
                        json!({"code1": code(&secret, at - 30), "code2": code(&secret, at)}),
                    )
                    .await)
            }
            ("api", "resync") => {
                let (id, secret) = target.device.clone().unwrap();
                let at = now();
                api(self
                    .srv
                    .post(
                        &format!("/api/v1/mfa-devices/{id}/resync"),
                        t,
                        json!({"code1": code(&secret, at + 60), "code2": code(&secret, at + 90)}),
                    )
                    .await)
            }
            ("api", "rename") => {
                let (s, _, v) = self
                    .srv
                    .call(
                        "PATCH",
                        &format!("/api/v1/mfa-devices/{}", device()),
                        t,
                        Some(json!({"name": format!("renamed{n}")})),
                    )
                    .await;
                api((s, v))
            }
            ("api", "delete_own") => {
                let (s, _, v) = self
                    .srv
                    .call("DELETE", &format!("/api/v1/mfa-devices/{}", device()), t, None)
                    .await;
                api((s, v))
            }
            ("api", "admin_delete") => {
                let path = format!("/api/v1/users/{}/mfa-devices/{}", target.name, device());
                let (s, _, v) = self.srv.call("DELETE", &path, t, None).await;
                api((s, v))
            }
            ("api", "assign_own") => {
                let (serial, c1, c2) = self.token().await;
                api(self
                    .srv
                    .post(
                        "/api/v1/mfa-devices/hardware",
                        t,
                        json!({"serial": serial, "name": serial, "code1": c1, "code2": c2}),
                    )
                    .await)
            }
            ("api", "assign_for") => {
                let (serial, c1, c2) = self.token().await;
                api(self
                    .srv
                    .post(
                        &format!("/api/v1/users/{}/hardware-tokens", target.name),
                        t,
                        json!({"serial": serial, "name": serial, "code1": c1, "code2": c2}),
                    )
                    .await)
            }
            ("api", "reset_mfa") => api(
                self.srv
                    .post(&format!("/api/v1/users/{}/reset-mfa", target.name), t, json!({}))
                    .await,
            ),
            ("api", "regenerate_codes") => {
                api(self.srv.post("/api/v1/recovery-codes", t, json!({})).await)
            }
            ("api", "security_key_begin") => api(
                self.srv
                    .post(
                        "/api/v1/mfa-devices/security-key/begin",
                        t,
                        json!({"name": format!("key{n}")}),
                    )
                    .await,
            ),
            ("api", "change_password") => api(
                self.srv
                    .post(
                        "/api/v1/me/password",
                        t,
                        json!({"current_password": PASSWORD, "new_password": format!("{PASSWORD}-{n}")}),
                    )
                    .await,
            ),
            ("api", "create_app_key") => api(
                self.srv
                    .post("/api/v1/app-keys", t, json!({"name": format!("app{n}")}))
                    .await,
            ),
            ("api", "sync_register") => api(
                self.srv
                    .post("/api/v1/sync/devices", t, json!({"name": format!("laptop{n}")}))
                    .await,
            ),
            ("api", "list_app_keys") => api(self.srv.get("/api/v1/app-keys", t).await),
            ("api", "revoke_app_key") => {
                let id = self.app_key_id().await;
                let (s, _, v) = self
                    .srv
                    .call("DELETE", &format!("/api/v1/app-keys/{id}"), t, None)
                    .await;
                api((s, v))
            }
            ("console", "enable_page") => {
                let (id, secret) = self.pending(&target).await;
                let (s, page) =
                    console(&self.srv, &session, &format!("/security/mfa/{id}/enable"), None).await;
                // Shown only where allowed: a refused page must not carry the secret.
                let grouped: Vec<String> = secret
                    .as_bytes()
                    .chunks(4)
                    .map(|c| String::from_utf8_lossy(c).into_owned())
                    .collect();
                let shown = page.contains(&grouped.join(" "));
                assert_eq!(shown, s == 200, "line {}: secret shown: {shown}", row.line);
                (s, None)
            }
            ("console", "remove_own_with_code") => {
                let (id, secret) = target.device.clone().unwrap();
                let c = code(&secret, now() + 30);
                let (s, _) = console(
                    &self.srv,
                    &session,
                    &format!("/security/mfa/{id}/remove"),
                    Some(&[("code", c.as_str())]),
                )
                .await;
                (s, None)
            }
            ("console", "deactivate") => {
                let path = format!("/users/{}/devices/{}/deactivate", target.name, device());
                let (s, _) = console(&self.srv, &session, &path, Some(&[("code", "")])).await;
                (s, None)
            }
            // #15 contacts
            ("api", "set_contact") => {
                let (s, _, v) = self
                    .srv
                    .call(
                        "PUT",
                        "/api/v1/me/contacts/phone",
                        t,
                        Some(json!({"value": "090-1234-5678"})),
                    )
                    .await;
                api((s, v))
            }
            ("api", "set_contact_for") => {
                let path = format!("/api/v1/users/{}/contacts/phone", target.name);
                let (s, _, v) = self
                    .srv
                    .call("PUT", &path, t, Some(json!({"value": "090-1234-5678"})))
                    .await;
                api((s, v))
            }
            ("api", "remove_contact") => {
                let (s, _, v) = self
                    .srv
                    .call("DELETE", "/api/v1/me/contacts/phone", t, None)
                    .await;
                api((s, v))
            }
            ("api", "remove_contact_for") => {
                let path = format!("/api/v1/users/{}/contacts/phone", target.name);
                let (s, _, v) = self.srv.call("DELETE", &path, t, None).await;
                api((s, v))
            }
            // #15 polish
            ("api", "get_preferences") => api(self.srv.get("/api/v1/me/preferences", t).await),
            ("api", "set_preferences") => {
                let (s, _, v) = self
                    .srv
                    .call(
                        "PUT",
                        "/api/v1/me/preferences",
                        t,
                        Some(json!({"language": "ja", "time_zone": "Asia/Tokyo"})),
                    )
                    .await;
                api((s, v))
            }
            // #15 contacts: the console's forms for the same change as set_contact/remove_contact.
            ("console", "contact_change") => {
                let form = [("value", "090-1234-5678"), ("code", "")];
                let path = "/security/contacts/phone/change";
                let (s, _) = console(&self.srv, &session, path, Some(&form)).await;
                (s, None)
            }
            ("console", "contact_remove") => {
                let path = "/security/contacts/phone/remove";
                let (s, _) = console(&self.srv, &session, path, Some(&[("code", "")])).await;
                (s, None)
            }
            ("console", "sync_revoke") => {
                // The device is registered with a fresh session of the target's own.
                let own = self.db.session(&target.id, "fresh").await;
                let (s, v) = self
                    .srv
                    .post(
                        "/api/v1/sync/devices",
                        Some(&own),
                        json!({"name": format!("laptop{n}")}),
                    )
                    .await;
                assert_eq!(s, 201, "line {}: {v}", row.line);
                let id = v["device_id"].as_str().unwrap().to_string();
                let path = format!("/security/sync-devices/{id}/revoke");
                let (s, _) = console(&self.srv, &session, &path, Some(&[("code", "")])).await;
                (s, None)
            }
            // #18 account groups
            ("api", "list_groups") => {
                api(self.srv.get(&format!("/api/v1/users/{}/groups", target.name), t).await)
            }
            ("api", "add_group") => {
                let path = format!("/api/v1/users/{}/groups/g{n}", target.name);
                let (s, _, v) = self.srv.call("PUT", &path, t, None).await;
                api((s, v))
            }
            ("api", "remove_group") => {
                let path = format!("/api/v1/users/{}/groups/g{n}", target.name);
                let root = self.fresh(&self.root).await;
                let (s, _, v) = self.srv.call("PUT", &path, Some(&root), None).await;
                assert_eq!(s, 201, "line {}: {v}", row.line);
                let (s, _, v) = self.srv.call("DELETE", &path, t, None).await;
                api((s, v))
            }
            ("console", "add_group") => {
                let path = format!("/users/{}/groups", target.name);
                let group = format!("g{n}");
                let (s, _) = console(&self.srv, &session, &path, Some(&[("group", &group)])).await;
                (s, None)
            }
            ("console", "remove_group") => {
                let group = format!("g{n}");
                let api_path = format!("/api/v1/users/{}/groups/{group}", target.name);
                let root = self.fresh(&self.root).await;
                let (s, _, v) = self.srv.call("PUT", &api_path, Some(&root), None).await;
                assert_eq!(s, 201, "line {}: {v}", row.line);
                let path = format!("/users/{}/groups/{group}/remove", target.name);
                let (s, _) = console(&self.srv, &session, &path, Some(&[])).await;
                (s, None)
            }
            // #18 forward authentication
            ("api", "forward_auth" | "forward_auth_api_token") => {
                let cookie = if row.op == "forward_auth" {
                    self.db.forward_token(&session).await
                } else {
                    session.clone()
                };
                let resp = self
                    .srv
                    .client
                    .get(format!("{}/api/v1/forward-auth", self.srv.url))
                    .header("x-original-url", "https://app.matrix.test/")
                    .header("cookie", format!("mamori_sso={cookie}"))
                    .send()
                    .await
                    .unwrap();
                let s = resp.status().as_u16();
                let v: Value = resp.json().await.unwrap_or(Value::Null);
                api((s, v))
            }
            ("console", "sso") => {
                let resp = reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .unwrap()
                    .get(format!(
                        "{}/sso?rd=https%3A%2F%2Fapp.matrix.test%2F",
                        self.srv.url
                    ))
                    .header("cookie", format!("mamori_session={session}"))
                    .send()
                    .await
                    .unwrap();
                let s = resp.status().as_u16();
                let location = resp
                    .headers()
                    .get("location")
                    .map(|v| v.to_str().unwrap().to_string());
                let sso_cookie = resp
                    .headers()
                    .get_all("set-cookie")
                    .iter()
                    .any(|c| c.to_str().unwrap().starts_with("mamori_sso=") && !c.to_str().unwrap().contains("Max-Age=0"));
                let kind = match location.as_deref() {
                    Some("https://app.matrix.test/") if sso_cookie => "app",
                    Some("/sign-in") if !sso_cookie => "sign_in",
                    None if !sso_cookie => "page",
                    other => panic!("line {}: /sso answered {s} {other:?}, cookie {sso_cookie}", row.line),
                };
                (s, Some(kind.to_string()))
            }
            (edge, op) => panic!("line {}: no operation {edge} {op}", row.line),
        }
    }
}

/// #17: the matrix's relying parties' redirect URI (never followed).
const OIDC_REDIRECT: &str = "https://rp.matrix.test/cb";

/// Registers an OpenID client with the admin command line; (client_id, secret).
fn oidc_client(dir: &std::path::Path, backend: &Backend, args: &[&str]) -> (String, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_mamori-server"));
    cmd.args(["admin", "create-client"])
        .args(args)
        .args(["--redirect-uri", OIDC_REDIRECT])
        .arg("--data-dir")
        .arg(dir.join("data"))
        .env_remove("MAMORI_CONFIG");
    if let Some(url) = backend.url() {
        cmd.arg("--database").arg(url);
    }
    let out = cmd.output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .unwrap()
            .to_string()
    };
    (field("client_id: "), field("client_secret: "))
}

impl Matrix {
    /// #17: the OpenID provider's rows. The authorization endpoint's answer is its status and
    /// what it tells the client: `code`, or the `error` of the redirect, or `-` when it sends
    /// the browser to the console (to sign in or enroll) rather than to the client.
    async fn run_oidc(&mut self, row: &Row, actor: &Account) -> (u16, Option<String>) {
        let session = if row.session == "-" {
            None
        } else {
            Some(self.db.session(&actor.id, &row.session).await)
        };
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let url = self.srv.url.clone();
        let authorize = |client_id: String, extra: &'static str| {
            let mut req = client.get(format!(
                "{url}/oidc/authorize?response_type=code&scope=openid&client_id={client_id}\
                 &redirect_uri=https%3A%2F%2Frp.matrix.test%2Fcb&state=s{extra}"
            ));
            if let Some(s) = &session {
                req = req.header("cookie", format!("mamori_session={s}"));
            }
            req.send()
        };
        let answer = |resp: &reqwest::Response| -> Option<String> {
            let loc = resp.headers().get("location")?.to_str().ok()?.to_string();
            if !loc.starts_with(OIDC_REDIRECT) {
                return None;
            }
            let u = url::Url::parse(&loc).ok()?;
            let pairs: Vec<(String, String)> = u.query_pairs().into_owned().collect();
            pairs
                .iter()
                .find(|(k, _)| k == "code")
                .map(|_| "code".to_string())
                .or_else(|| {
                    pairs
                        .iter()
                        .find(|(k, _)| k == "error")
                        .map(|(_, v)| v.clone())
                })
        };
        let code_of = |resp: &reqwest::Response| -> String {
            let loc = resp.headers()["location"].to_str().unwrap().to_string();
            url::Url::parse(&loc)
                .unwrap()
                .query_pairs()
                .find(|(k, _)| k == "code")
                .unwrap()
                .1
                .into_owned()
        };
        let token = |id: &str, secret: &str, code: &str| {
            client
                .post(format!("{url}/oidc/token"))
                .basic_auth(id, Some(secret))
                .form(&[
                    ("grant_type", "authorization_code"),
                    ("code", code),
                    ("redirect_uri", OIDC_REDIRECT),
                ])
                .send()
        };
        let oauth = |status: u16, v: Value| (status, v["error"].as_str().map(str::to_string));
        let [a, b, only] = self.oidc.clone();
        match row.op.as_str() {
            "authorize" => {
                let r = authorize(a.0, "").await.unwrap();
                (r.status().as_u16(), answer(&r))
            }
            "authorize_prompt_none" => {
                let r = authorize(a.0, "&prompt=none").await.unwrap();
                (r.status().as_u16(), answer(&r))
            }
            "authorize_not_allowed" => {
                let r = authorize(only.0, "").await.unwrap();
                (r.status().as_u16(), answer(&r))
            }
            "token" | "token_other_client" => {
                let r = authorize(a.0.clone(), "").await.unwrap();
                let code = code_of(&r);
                let (id, secret) = if row.op == "token" { a } else { b };
                let r = token(&id, &secret, &code).await.unwrap();
                let s = r.status().as_u16();
                oauth(s, r.json().await.unwrap())
            }
            "userinfo_console_session" => {
                let r = client
                    .get(format!("{url}/oidc/userinfo"))
                    .bearer_auth(session.clone().unwrap())
                    .send()
                    .await
                    .unwrap();
                let s = r.status().as_u16();
                oauth(s, r.json().await.unwrap())
            }
            "introspect_without_client" => {
                let r = client
                    .post(format!("{url}/oidc/introspect"))
                    .form(&[("token", session.clone().unwrap())])
                    .send()
                    .await
                    .unwrap();
                let s = r.status().as_u16();
                oauth(s, r.json().await.unwrap())
            }
            "revoke_other_client" => {
                // Client b revokes client a's access token: answered 200 (RFC 7009 §2.2), and
                // the token stays active.
                let r = authorize(a.0.clone(), "").await.unwrap();
                let code = code_of(&r);
                let t: Value = token(&a.0, &a.1, &code)
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                let access = t["access_token"].as_str().unwrap().to_string();
                let r = client
                    .post(format!("{url}/oidc/revoke"))
                    .basic_auth(&b.0, Some(&b.1))
                    .form(&[("token", access.as_str())])
                    .send()
                    .await
                    .unwrap();
                let s = r.status().as_u16();
                let v: Value = client
                    .post(format!("{url}/oidc/introspect"))
                    .basic_auth(&a.0, Some(&a.1))
                    .form(&[("token", access.as_str())])
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                (s, (v["active"] == true).then(|| "active".to_string()))
            }
            // The public metadata: no credential, the same answer for everyone.
            "discovery" | "jwks" => {
                let path = if row.op == "discovery" {
                    "/.well-known/openid-configuration"
                } else {
                    "/oidc/jwks"
                };
                let r = client.get(format!("{url}{path}")).send().await.unwrap();
                (r.status().as_u16(), None)
            }
            // The console's consent and logout forms, with the actor's console session: the
            // answer's status (a page that refreshes onward to the client is 200).
            "consent" | "logout" => {
                let Some(s) = &session else {
                    panic!("line {}: {} needs a session", row.line, row.op)
                };
                let request = format!(
                    "response_type=code&scope=openid&client_id={}\
                     &redirect_uri=https%3A%2F%2Frp.matrix.test%2Fcb&state=s",
                    a.0
                );
                let (path, form): (&str, Vec<(&str, &str)>) = if row.op == "consent" {
                    (
                        "/oidc/consent",
                        vec![("request", request.as_str()), ("decision", "allow")],
                    )
                } else {
                    ("/oidc/logout", vec![("request", "")])
                };
                let (status, _) = console(&self.srv, s, path, Some(&form)).await;
                (status, None)
            }
            other => panic!("line {}: no operation oidc {other}", row.line),
        }
    }

    /// #17 consents: the target consents to the asking client and gets tokens (with a fresh
    /// session of its own, through the console's consent form and the token endpoint); the
    /// row's actor then lists or revokes with the row's session. Afterwards the target's
    /// access token must be inactive exactly when the answer says it was revoked; console rows
    /// answer `revoked` or `kept` as their kind.
    async fn run_consents(
        &mut self,
        row: &Row,
        actor: &Account,
        target: &Account,
    ) -> (u16, Option<String>) {
        let (id, secret) = self.oidc_asking.clone();
        let own = self.db.session(&target.id, "fresh").await;
        let request = format!(
            "response_type=code&scope=openid+email&client_id={id}\
             &redirect_uri=https%3A%2F%2Frp.matrix.test%2Fcb&state=s"
        );
        let (s, page) = console(
            &self.srv,
            &own,
            "/oidc/consent",
            Some(&[("request", request.as_str()), ("decision", "allow")]),
        )
        .await;
        assert_eq!(s, 200, "line {}: consent: {page}", row.line);
        let to = page
            .split("content=\"0;url=")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or_else(|| panic!("line {}: no onward address in {page}", row.line))
            .replace("&amp;", "&")
            .replace("&#38;", "&");
        let code = url::Url::parse(&to)
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == "code")
            .unwrap()
            .1
            .into_owned();
        let http = reqwest::Client::new();
        let tokens: Value = http
            .post(format!("{}/oidc/token", self.srv.url))
            .basic_auth(&id, Some(&secret))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", OIDC_REDIRECT),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let access = tokens["access_token"].as_str().unwrap().to_string();
        let active = || token_active(&self.srv.url, &id, &secret, &access);
        assert!(active().await, "line {}: the target's token", row.line);
        let session = match row.session.as_str() {
            "-" => None,
            kind => Some(self.db.session(&actor.id, kind).await),
        };
        let path = format!("/api/v1/me/oidc-consents/{id}");
        let got = match (row.edge.as_str(), row.op.as_str()) {
            ("api", "list_oidc_consents") => {
                let (s, v) = self
                    .srv
                    .get("/api/v1/me/oidc-consents", session.as_deref())
                    .await;
                if s == 200 {
                    // Only the actor's own: the target's client when they are one account.
                    let listed = v["applications"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|a| a["client_id"] == id.as_str());
                    assert_eq!(listed, actor.id == target.id, "line {}: {v}", row.line);
                }
                (s, v["error"]["code"].as_str().map(str::to_string))
            }
            ("api", "revoke_oidc_consent") => {
                let (s, _, v) = self
                    .srv
                    .call("DELETE", &path, session.as_deref(), None)
                    .await;
                (s, v["error"]["code"].as_str().map(str::to_string))
            }
            ("console", "revoke_oidc_consent") => {
                let path = format!("/security/oidc-consents/{id}/revoke");
                let (s, _) = console(
                    &self.srv,
                    session.as_deref().unwrap_or(""),
                    &path,
                    Some(&[]),
                )
                .await;
                (s, None)
            }
            (edge, op) => panic!("line {}: no operation {edge} {op}", row.line),
        };
        let still = active().await;
        let revoked = match (row.edge.as_str(), row.op.as_str()) {
            ("api", "revoke_oidc_consent") => got.0 == 204,
            ("console", _) => !still,
            _ => false,
        };
        assert_eq!(
            still, !revoked,
            "line {}: the target's token after {} {}",
            row.line, got.0, row.op
        );
        if row.edge == "console" {
            return (
                got.0,
                Some(if still { "kept" } else { "revoked" }.to_string()),
            );
        }
        got
    }

    // #15 recovery
    /// A RADIUS row through radclient: the answer's packet code and its name.
    fn run_radius(&self, row: &Row, target: &Account) -> (u16, Option<String>) {
        let code_now = match (&target.device, row.op.as_str()) {
            (Some((_, secret)), "password_code") => code(secret, now() + 30),
            (Some((_, secret)), "wrong_code") => wrong_code(secret, now()),
            (None, _) => "123456".to_string(),
            (_, other) => panic!("unknown radius operation {other}"),
        };
        let r = super::radius::radclient(
            self.radius_port,
            super::radius::SECRET,
            &super::radius::pap(&target.name, &format!("{PASSWORD}{code_now}")),
        );
        match r.kind.as_str() {
            "Access-Accept" => (2, Some("accept".into())),
            "Access-Reject" => (3, Some("reject".into())),
            "Access-Challenge" => (11, Some("challenge".into())),
            _ => (0, Some("dropped".into())),
        }
    }

    /// A sync device token of `a` (registered with a fresh session); revoked when `revoked`.
    async fn sync_token(&mut self, a: &Account, revoked: bool) -> String {
        self.n += 1;
        let session = self.fresh(a).await;
        let (s, v) = self
            .srv
            .post(
                "/api/v1/sync/devices",
                Some(&session),
                json!({"name": format!("laptop{}", self.n)}),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        let token = v["token"].as_str().unwrap().to_string();
        if revoked {
            let path = format!("/api/v1/sync/devices/{}", v["device_id"].as_str().unwrap());
            let (s, _, v) = self.srv.call("DELETE", &path, Some(&token), None).await;
            assert_eq!(s, 204, "{v}");
        }
        token
    }

    /// The rows on cancelling a pending recovery: the target gets one, the row's credential is
    /// used on the entry point, and afterwards the recovery must be cancelled exactly when the
    /// answer says it was.
    async fn run_cancel(
        &mut self,
        row: &Row,
        actor: &Account,
        target: &Account,
    ) -> (u16, Option<String>) {
        let (mut pending, link) = self.db.pending_recovery(&target.id).await;
        let got = match (row.edge.as_str(), row.op.as_str()) {
            ("api", "cancel_recovery") => {
                let credential = match row.session.as_str() {
                    "sync" => Some(self.sync_token(actor, false).await),
                    "revoked_sync" => Some(self.sync_token(actor, true).await),
                    "-" => None,
                    kind => Some(self.db.session(&actor.id, kind).await),
                };
                let (s, _, v) = self
                    .srv
                    .call(
                        "POST",
                        "/api/v1/sync/recovery/cancel",
                        credential.as_deref(),
                        None,
                    )
                    .await;
                (s, v["error"]["code"].as_str().map(str::to_string))
            }
            ("console", op) => {
                let token = match row.session.as_str() {
                    "link" => link,
                    "used_link" => {
                        let (s, _) = cancel_page(&self.srv, &link, true).await;
                        assert_eq!(s, 200, "line {}: the first use of the link", row.line);
                        // A newer recovery of the same account: the old link must not reach it.
                        pending = self.db.pending_recovery(&target.id).await.0;
                        link
                    }
                    "forged_link" => {
                        let mut raw = [0u8; 32];
                        rand::rngs::OsRng.fill_bytes(&mut raw);
                        data_encoding::BASE64URL_NOPAD.encode(&raw)
                    }
                    other => panic!(
                        "line {}: no credential {other} for the cancel link",
                        row.line
                    ),
                };
                let (s, page) = cancel_page(&self.srv, &token, op == "cancel_link_post").await;
                // The confirmation button only on a valid link's GET.
                let button = page.contains("id=\"cancel-recovery\"");
                assert_eq!(
                    button,
                    op == "cancel_link_get" && s == 200,
                    "line {}: cancel button shown: {button}",
                    row.line
                );
                (s, None)
            }
            (edge, op) => panic!("line {}: no operation {edge} {op}", row.line),
        };
        let cancelled = match row.op.as_str() {
            "cancel_recovery" => got.0 == 204,
            "cancel_link_post" => got.0 == 200,
            _ => false,
        };
        let state = self.db.recovery_state(&pending).await;
        assert_eq!(
            state,
            if cancelled { "cancelled" } else { "pending" },
            "line {}: the target's pending recovery after {} {}",
            row.line,
            got.0,
            row.op
        );
        got
    }
}

/// #17: whether a client's access token is active (its introspection).
async fn token_active(url: &str, id: &str, secret: &str, token: &str) -> bool {
    let v: Value = reqwest::Client::new()
        .post(format!("{url}/oidc/introspect"))
        .basic_auth(id, Some(secret))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["active"] == true
}

/// The cancel link's page without any session, as a mail reader opens it: a GET of
/// `/recovery/cancel?token=…`, or (with `post`) the confirmation form's POST with the CSRF
/// token from the console's cookie.
async fn cancel_page(srv: &Server, token: &str, post: bool) -> (u16, String) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = client
        .get(format!("{}/recovery/cancel?token={token}", srv.url))
        .send()
        .await
        .unwrap();
    if !post {
        return (resp.status().as_u16(), resp.text().await.unwrap());
    }
    let csrf = csrf_cookie(resp.headers());
    let resp = client
        .post(format!("{}/recovery/cancel", srv.url))
        .header("cookie", format!("mamori_csrf={csrf}"))
        .header("origin", ORIGIN)
        .form(&[("csrf", csrf.as_str()), ("token", token)])
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// #17: the operations on OpenID clients (API and console), run by
/// [`Matrix::run_oidc_clients`].
const OIDC_CLIENT_OPS: [&str; 8] = [
    "list_oidc_clients",
    "create_oidc_client",
    "create_oidc_client_with_code",
    "rotate_oidc_secret",
    "rotate_oidc_secret_with_code",
    "oidc_clients_page",
    "delete_oidc_client",
    "delete_oidc_client_with_code",
];

impl Matrix {
    /// #17: a confidential client of the row's own, registered by root over the API; returns
    /// its name.
    async fn oidc_client_for_row(&mut self) -> String {
        self.n += 1;
        let name = format!("mx{}", self.n);
        let root = self.fresh(&self.root).await;
        let (s, v) = self
            .srv
            .post(
                "/api/v1/oidc/clients",
                Some(&root),
                json!({"name": name, "redirect_uris": [OIDC_REDIRECT]}),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        name
    }

    /// Whether a client of this name is registered (root's view).
    async fn oidc_client_exists(&self, name: &str) -> bool {
        let root = self.fresh(&self.root).await;
        let (s, v) = self.srv.get("/api/v1/oidc/clients", Some(&root)).await;
        assert_eq!(s, 200, "{v}");
        v.as_array().unwrap().iter().any(|c| c["name"] == name)
    }

    /// #17: the rows of the OpenID clients' administration. A row with session `-` sends no
    /// credentials (the console: an empty session cookie). Afterwards the client must exist
    /// exactly when the row's answer says it was not deleted, or was created.
    async fn run_oidc_clients(
        &mut self,
        row: &Row,
        actor: &Account,
        target: &Account,
    ) -> (u16, Option<String>) {
        let session = if row.session == "-" {
            String::new()
        } else {
            self.db.session(&actor.id, &row.session).await
        };
        let t = (!session.is_empty()).then_some(session.as_str());
        let api = |r: (u16, Value)| (r.0, r.1["error"]["code"].as_str().map(str::to_string));
        let name = self.oidc_client_for_row().await;
        let fresh_name = format!("{name}-new");
        let redirect = OIDC_REDIRECT.to_string();
        let create_form: [(&str, &str); 4] = [
            ("name", fresh_name.as_str()),
            ("redirect_uris", redirect.as_str()),
            ("require", "two_factor"),
            ("alg", "ES256"),
        ];
        // `*_with_code`: a code of the actor's own device, typed into the form that asked for it.
        // These rows are root's own (actor = target), and `run` gave the target a new device
        // for the row, so that its code is not one an earlier row spent.
        let own_code = || {
            assert_eq!(actor.name, target.name, "line {}", row.line);
            let (_, secret) = target.device.clone().expect("the actor has a device");
            code(&secret, now() + 30)
        };
        let got = match (row.edge.as_str(), row.op.as_str()) {
            ("api", "list_oidc_clients") => api(self.srv.get("/api/v1/oidc/clients", t).await),
            ("api", "create_oidc_client") => {
                let got = api(self
                    .srv
                    .post(
                        "/api/v1/oidc/clients",
                        t,
                        json!({"name": fresh_name, "redirect_uris": [OIDC_REDIRECT]}),
                    )
                    .await);
                let created = self.oidc_client_exists(&fresh_name).await;
                assert_eq!(
                    created,
                    got.0 == 201,
                    "line {}: created {created}",
                    row.line
                );
                got
            }
            ("api", "rotate_oidc_secret") => {
                let (s, v) = self
                    .srv
                    .post(&format!("/api/v1/oidc/clients/{name}/secret"), t, json!({}))
                    .await;
                // A new secret only where allowed.
                assert_eq!(
                    v["client_secret"].is_string(),
                    s == 200,
                    "line {}: {v}",
                    row.line
                );
                api((s, v))
            }
            ("api", "delete_oidc_client") => {
                let (s, _, v) = self
                    .srv
                    .call("DELETE", &format!("/api/v1/oidc/clients/{name}"), t, None)
                    .await;
                api((s, v))
            }
            ("console", "oidc_clients_page") => {
                let (s, page) = console(&self.srv, &session, "/oidc-clients", None).await;
                // The list only where allowed.
                assert_eq!(page.contains(&name), s == 200, "line {}", row.line);
                (s, None)
            }
            ("console", op @ ("create_oidc_client" | "create_oidc_client_with_code")) => {
                let c = if op.ends_with("_with_code") {
                    own_code()
                } else {
                    String::new()
                };
                let mut form = create_form.to_vec();
                form.push(("code", c.as_str()));
                let (s, page) = console(&self.srv, &session, "/oidc-clients", Some(&form)).await;
                assert_eq!(
                    page.contains("client-secret"),
                    s == 201,
                    "line {}",
                    row.line
                );
                let created = self.oidc_client_exists(&fresh_name).await;
                assert_eq!(created, s == 201, "line {}: created {created}", row.line);
                (s, None)
            }
            ("console", op @ ("rotate_oidc_secret" | "rotate_oidc_secret_with_code")) => {
                let c = if op.ends_with("_with_code") {
                    own_code()
                } else {
                    String::new()
                };
                let path = format!("/oidc-clients/{name}/secret");
                let (s, page) =
                    console(&self.srv, &session, &path, Some(&[("code", c.as_str())])).await;
                assert_eq!(
                    page.contains("client-secret"),
                    s == 200,
                    "line {}",
                    row.line
                );
                (s, None)
            }
            ("console", "delete_oidc_client") => {
                let path = format!("/oidc-clients/{name}/delete");
                let (s, _) = console(&self.srv, &session, &path, Some(&[("code", "")])).await;
                (s, None)
            }
            ("console", "delete_oidc_client_with_code") => {
                let c = own_code();
                let path = format!("/oidc-clients/{name}/delete");
                let (s, _) =
                    console(&self.srv, &session, &path, Some(&[("code", c.as_str())])).await;
                (s, None)
            }
            other => panic!("line {}: no runner for {other:?}", row.line),
        };
        if row.op.starts_with("delete_oidc_client") {
            let deleted = !self.oidc_client_exists(&name).await;
            let done = if row.edge == "api" {
                got.0 == 204
            } else {
                got.0 == 303 && !session.is_empty()
            };
            assert_eq!(deleted, done, "line {}: deleted {deleted}", row.line);
        }
        got
    }
}

/// A console request with the session cookie, from the configured public URL.
async fn console(
    srv: &Server,
    session: &str,
    path: &str,
    form: Option<&[(&str, &str)]>,
) -> (u16, String) {
    console_request(srv, ORIGIN, session, path, form).await
}

async fn matrix(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let mut m = Matrix::start(&backend, dir.path()).await;
    let mut wrong = Vec::new();
    let rows = rows();
    for row in &rows {
        let got = m.run(row).await;
        // Console rows compare the status, and the answer's kind where the row names one.
        let matches = got.0 == row.status
            && ((row.edge == "console" && row.code.is_none()) || got.1 == row.code);
        if !matches {
            wrong.push(format!(
                "line {}: {} {} {} {}: expected {} {:?}, got {} {:?}",
                row.line,
                row.edge,
                row.op,
                row.pair,
                row.session,
                row.status,
                row.code,
                got.0,
                got.1
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} rows differ:\n{}",
        wrong.len(),
        rows.len(),
        wrong.join("\n")
    );
}

#[test]
fn the_table_names_every_change_the_domain_knows() {
    // Every FactorChange has at least one row, so a new kind of change cannot be added
    // without deciding who may make it.
    use mamori_server::domain::factor_changes::FactorChange;
    let ops: Vec<String> = rows().into_iter().map(|r| r.op).collect();
    for change in FactorChange::ALL {
        let op = match change {
            FactorChange::CreateDevice => "create_virtual",
            FactorChange::EnableDevice => "enable_virtual",
            FactorChange::ResyncDevice => "resync",
            FactorChange::RenameDevice => "rename",
            FactorChange::DeleteDevice => "admin_delete",
            FactorChange::AssignToken => "assign_for",
            FactorChange::RegisterSecurityKey => "security_key_begin",
            FactorChange::RegenerateRecoveryCodes => "regenerate_codes",
            FactorChange::ResetMfa => "reset_mfa",
            // #15 contacts
            FactorChange::SetContact => "set_contact_for",
            FactorChange::RemoveContact => "remove_contact_for",
            // #15 polish
            FactorChange::RevokeSyncDevice => "sync_revoke",
            _ => panic!("{change:?} has no row in the authorization matrix"),
        };
        assert!(ops.iter().any(|o| o == op), "{change:?}: no row {op}");
    }
}

#[tokio::test]
async fn authorization_matrix_on_sqlite() {
    matrix(Backend::Sqlite).await;
}

#[tokio::test]
async fn authorization_matrix_on_postgres() {
    matrix(Backend::postgres().await).await;
}
