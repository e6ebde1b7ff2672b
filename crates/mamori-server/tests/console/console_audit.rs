//! The audit viewer's query (`Service::audit_query`): newest first, account and kind filters,
//! time range, limits, reading backwards across 1,000-id ranges, and the scan limit. Real
//! SQLite file, fixed times.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;

use mamori_server::config::{PasswordConfig, RequireMfa};
use mamori_server::domain::audit::Event;
use mamori_server::domain::console_support::AuditQuery;
use mamori_server::domain::{Policy, RequestMeta, Service};
use mamori_server::keys::ServerKey;
use mamori_server::store::sqlite::SqliteStore;
use mamori_server::store::Store;
use rand::rngs::OsRng;

const T0: i64 = 1_800_000_000;
const N: i64 = 2_345;

async fn service(dir: &std::path::Path) -> Service {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.join("m.db")).await.unwrap());
    let policy = Policy {
        service_name: "ACME".into(),
        public_url: "https://mfa.example".into(),
        require_mfa: RequireMfa::Root,
        max_devices: 8,
        lockout: Default::default(),
        password: PasswordConfig {
            argon2_m_kib: 1024,
            argon2_t: 1,
            ..PasswordConfig::default()
        },
        phone_gateway: None,
        audit_retention_days: 365,
        audit_prune_after_days: 400,
        oidc_key_rotation_days: 90,
        alternative_factors: mamori_server::config::AlternativeFactors::VerifiedContacts,
        mail_language: mamori_server::config::MailLanguage::En,
        recovery_wait_secs: 0,

        phone_region: mamori_server::domain::phone::parse_region("JP").unwrap(),
        forward_auth: Default::default(),
    };
    Service::new(store, ServerKey::generate(&mut OsRng), policy, &mut OsRng)
        .await
        .unwrap()
}

fn account_of(i: i64) -> &'static str {
    if i % 2 == 0 {
        "alice"
    } else {
        "bob"
    }
}

fn kind_of(i: i64) -> &'static str {
    match i % 3 {
        0 => "mfa.enable",
        1 => "sign_in.password",
        _ => "sign_in.mfa",
    }
}

/// Event i (1-based, as its id) happens at T0 + i.
async fn filled() -> (Service, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let svc = service(dir.path()).await;
    let meta = RequestMeta::default();
    for i in 1..=N {
        let id = svc
            .audit(
                T0 + i,
                &meta,
                Event::own(kind_of(i), "success", account_of(i)),
            )
            .await
            .unwrap();
        assert_eq!(id, i);
    }
    (svc, dir)
}

fn q(limit: usize) -> AuditQuery {
    AuditQuery {
        limit,
        ..AuditQuery::default()
    }
}

fn ids(rows: &[mamori_server::store::AuditRecord]) -> Vec<i64> {
    rows.iter().map(|r| r.id).collect()
}

#[tokio::test]
async fn newest_first_with_filters_time_range_and_limits() {
    let (svc, _dir) = filled().await;

    let (rows, cut) = svc.audit_query(&q(5)).await.unwrap();
    assert_eq!(ids(&rows), [N, N - 1, N - 2, N - 3, N - 4]);
    assert!(!cut);

    // An account filter across several 1,000-id ranges: every match, newest first.
    let alice = AuditQuery {
        account: Some("alice".into()),
        ..q(1000)
    };
    let (rows, _) = svc.audit_query(&alice).await.unwrap();
    let want: Vec<i64> = (1..=N).rev().filter(|i| i % 2 == 0).take(1000).collect();
    assert_eq!(ids(&rows), want);
    assert!(rows
        .iter()
        .all(|r| r.event.account.as_deref() == Some("alice")));

    // A kind prefix and an exact kind.
    let sign_ins = AuditQuery {
        kind: Some("sign_in.".into()),
        ..q(1000)
    };
    let (rows, _) = svc.audit_query(&sign_ins).await.unwrap();
    let want: Vec<i64> = (1..=N).rev().filter(|i| i % 3 != 0).take(1000).collect();
    assert_eq!(ids(&rows), want);
    let exact = AuditQuery {
        kind: Some("sign_in.mfa".into()),
        account: Some("bob".into()),
        ..q(1000)
    };
    let (rows, _) = svc.audit_query(&exact).await.unwrap();
    let want: Vec<i64> = (1..=N)
        .rev()
        .filter(|i| i % 3 == 2 && i % 2 == 1)
        .take(1000)
        .collect();
    assert_eq!(ids(&rows), want);

    // Time range [from, until).
    let range = AuditQuery {
        from: Some(T0 + 100),
        until: Some(T0 + 110),
        ..q(1000)
    };
    let (rows, _) = svc.audit_query(&range).await.unwrap();
    assert_eq!(ids(&rows), (100..110).rev().collect::<Vec<i64>>());
    let none = AuditQuery {
        from: Some(T0 + N + 1),
        ..q(1000)
    };
    assert!(svc.audit_query(&none).await.unwrap().0.is_empty());
    let old = AuditQuery {
        until: Some(T0 + 3),
        ..q(1000)
    };
    assert_eq!(ids(&svc.audit_query(&old).await.unwrap().0), [2, 1]);

    // The scan limit: only the latest 1,500 events are looked at, and the caller is told.
    let (rows, cut) = svc.audit_query_within(&old, 1500).await.unwrap();
    assert!(rows.is_empty() && cut);
    let (rows, cut) = svc.audit_query_within(&q(3), 1500).await.unwrap();
    assert_eq!(ids(&rows), [N, N - 1, N - 2]);
    assert!(!cut, "enough matches before the limit");
}

#[tokio::test]
async fn an_empty_log_and_a_single_event() {
    let dir = tempfile::tempdir().unwrap();
    let svc = service(dir.path()).await;
    let (rows, cut) = svc.audit_query(&q(10)).await.unwrap();
    assert!(rows.is_empty() && !cut);
    svc.audit(
        T0,
        &RequestMeta::default(),
        Event::own("mfa.enable", "success", "root"),
    )
    .await
    .unwrap();
    assert_eq!(ids(&svc.audit_query(&q(10)).await.unwrap().0), [1]);
}
