//! Two `mamori-server` processes on one PostgreSQL database: the replay and guessing rules hold
//! across nodes because each is one atomic statement in the database.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::common::*;
use mamori_server::config::{Config, Overrides};
use mamori_server::domain::accounts::NewUser;
use mamori_server::domain::{Request, RequestMeta};
use mamori_server::store::{Role, SessionRecord, SessionState};
use rand::rngs::OsRng;
use serde_json::json;

const RACES: usize = 50;

#[tokio::test]
async fn two_nodes_share_replay_and_lockout_state() {
    let db = TempDatabase::create().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("MAMORI_LOCKOUT_LOCK_AFTER", "6"),
        ("MAMORI_LOCKOUT_DELAY_BASE_SECS", "0"),
    ];
    let a = Server::start(dir.path(), Some(&db.url), &env);
    let b = Server::start(dir.path(), Some(&db.url), &env);
    assert_ne!(a.url, b.url);

    // Seed users with enabled devices through the library, on the same database and key file.
    let config = Config::load_with(
        &Overrides {
            data_dir: Some(dir.path().to_path_buf()),
            database: Some(db.url.clone()),
            ..Default::default()
        },
        &|_| None,
    )
    .unwrap();
    let svc = mamori_server::server::open_service(&config, a.url.clone())
        .await
        .unwrap();
    let meta = RequestMeta::default();
    let mut users = Vec::new();
    for i in 0..RACES + 2 {
        let t = now() as i64;
        let name = format!("user{i}");
        let (account, _) = svc
            .create_user(
                "test",
                NewUser {
                    name: &name,
                    role: Role::User,
                    email: None,
                    phone: None,
                },
                Request::new(t, &meta),
                &mut OsRng,
            )
            .await
            .unwrap();
        let session = SessionRecord {
            id: "seed".into(),
            token_hash: vec![],
            account_id: account.id.clone(),
            state: SessionState::Full,
            created_at: t,
            last_seen_at: t,
            expires_at: t + 60,
            second_factor_at: None,
            client_addr: None,
            user_agent: None,
        };
        let auth = mamori_server::domain::signin::Authenticated {
            session,
            account: account.clone(),
            enabled_devices: 0,
        };
        let d = svc
            .create_virtual_device(&auth, "phone", t, &mut OsRng, &meta)
            .await
            .unwrap();
        let secret = d.secret_base32.to_string();
        svc.enable_device(
            &auth,
            &d.device.id,
            &code(&secret, t as u64 - 30),
            &code(&secret, t as u64),
            t,
            &meta,
        )
        .await
        .unwrap();
        users.push((name, secret));
    }
    let (_, key) = svc
        .create_app_key("test", "gateway", now() as i64, &mut OsRng, &meta)
        .await
        .unwrap();
    let key = key.to_string();
    let validate = |srv: &Server, user: &str, code: &str| {
        let body = json!({"user": user, "code": code});
        let req = srv
            .client
            .post(format!("{}/api/v1/validate", srv.url))
            .bearer_auth(&key)
            .json(&body);
        async move {
            let resp = req.send().await.unwrap();
            assert_eq!(resp.status(), 200);
            let v: serde_json::Value = resp.json().await.unwrap();
            (
                v["result"].as_str().unwrap().to_string(),
                v["reason"].as_str().map(str::to_string),
            )
        }
    };

    // A code accepted by one node is refused by the other.
    let (name, secret) = &users[RACES];
    let c = code(secret, now() + 30);
    assert_eq!(validate(&a, name, &c).await.0, "accept");
    assert_eq!(
        validate(&b, name, &c).await,
        ("reject".to_string(), Some("invalid_code".to_string()))
    );

    // 50 races of the same code sent to both nodes at once: exactly one acceptance each time.
    for (name, secret) in &users[..RACES] {
        let c = code(secret, now() + 30);
        let (x, y) = tokio::join!(validate(&a, name, &c), validate(&b, name, &c));
        let accepted = [&x, &y].iter().filter(|r| r.0 == "accept").count();
        assert_eq!(accepted, 1, "{name}: {x:?} {y:?}");
    }

    // Failures on both nodes count together: 3 + 3 reach the lock at 6.
    let (name, secret) = &users[RACES + 1];
    let wrong = wrong_code(secret, now());
    for i in 0..6 {
        let node = if i % 2 == 0 { &a } else { &b };
        let r = validate(node, name, &wrong).await;
        let expected = if i < 5 {
            "invalid_code"
        } else {
            "account_locked"
        };
        assert_eq!(r.1.as_deref(), Some(expected), "attempt {i}");
    }
    let right = code(secret, now() + 30);
    for node in [&a, &b] {
        assert_eq!(
            validate(node, name, &right).await.1.as_deref(),
            Some("account_locked")
        );
    }
}
