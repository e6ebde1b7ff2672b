//! The domain's time-dependent rules with a fixed clock (no waiting): the default lock at 100
//! consecutive failures with growing delays, the 5-minute recent-factor rule, session idle and
//! absolute limits, challenge and setup-link expiry, remembered drift. Real SQLite file, real
//! server key; cheap Argon2 parameters (the PHC string records them).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;

use mamori_server::config::RequireMfa;
use mamori_server::domain::signin::PasswordOutcome;
use mamori_server::domain::Service;
use mamori_server::keys::ServerKey;
use mamori_server::store::sqlite::SqliteStore;
use mamori_server::store::{SessionState, Store};
use mamori_server::Error;
use rand::rngs::OsRng;
use zeroize::Zeroizing;

use crate::domain_common::*;

/// A six-digit code that is not valid for any step near `at` (so a "wrong code" is never right
/// by chance).
fn wrong_code(secret: &str, at: i64) -> String {
    let near: Vec<String> = (-15..=15).map(|k| code(secret, at + 30 * k)).collect();
    (0..10)
        .map(|d| d.to_string().repeat(6))
        .find(|c| !near.contains(c))
        .unwrap()
}

impl Fixture {
    async fn root(&self) -> mamori_server::store::AccountRecord {
        self.svc.account("root").await.unwrap()
    }
}

#[tokio::test]
async fn drift_is_remembered_after_enrollment() {
    let f = fixture(RequireMfa::Root).await;
    let secret = f.root_with_device().await;
    let root = f.root().await;
    let d = &f.svc.list_devices(&root).await.unwrap()[0];
    assert_eq!((d.drift, d.last_step), (2, Some(T0 / 30 + 2)));
    // Ten minutes later the phone is still 2 steps fast: its current code is accepted, although
    // it is 60 s away from the server's step (outside a ±1 window without the drift).
    let t = T0 + 600;
    // A code for the server's own step (drift ignored) is 2 steps off: refused.
    let e = f
        .svc
        .verify_second_factor(&root, &code(&secret, t), None, t, &f.meta, "test")
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidCode), "{e:?}");
    let root = f.root().await;
    f.svc
        .verify_second_factor(&root, &code(&secret, t + 60), None, t, &f.meta, "test")
        .await
        .unwrap();
}

#[tokio::test]
async fn default_policy_delays_after_5_failures_and_locks_at_100() {
    let f = fixture(RequireMfa::Root).await;
    let secret = f.root_with_device().await;
    let mut t = T0 + 100;
    for i in 1..=100 {
        let root = f.root().await;
        let r = f
            .svc
            .verify_second_factor(&root, &wrong_code(&secret, t), None, t, &f.meta, "test")
            .await;
        match r {
            Err(Error::InvalidCode) => assert!(i < 100, "failure {i}"),
            Err(Error::AccountLocked) => assert_eq!(i, 100),
            other => panic!("failure {i}: {other:?}"),
        }
        if i >= 5 {
            // Right after a failure past the fifth, the next attempt must wait, however right.
            let root = f.root().await;
            match f
                .svc
                .verify_second_factor(&root, &code(&secret, t + 60), None, t, &f.meta, "test")
                .await
            {
                Err(Error::RateLimited { retry_after }) => {
                    assert!(i < 100);
                    let expected = (1u64 << (i - 5).min(10)).min(60);
                    assert_eq!(retry_after, expected, "after failure {i}");
                }
                Err(Error::AccountLocked) => assert_eq!(i, 100),
                other => panic!("after failure {i}: {other:?}"),
            }
        }
        t += 61;
    }
    let root = f.root().await;
    assert!(root.locked_at.is_some());
    assert_eq!(root.mfa_failures, 100);
    // Locked: the right code is refused too.
    let e = f
        .svc
        .verify_second_factor(&root, &code(&secret, t + 60), None, t, &f.meta, "test")
        .await
        .unwrap_err();
    assert!(matches!(e, Error::AccountLocked));
    // Throttled attempts were not counted as failures.
    f.svc.reset_mfa("admin", "root", t, &f.meta).await.unwrap();
    let root = f.root().await;
    assert_eq!((root.mfa_failures, root.locked_at), (0, None));
}

#[tokio::test]
async fn a_success_resets_the_consecutive_failure_count() {
    let f = fixture(RequireMfa::Root).await;
    let secret = f.root_with_device().await;
    let t = T0 + 300;
    for _ in 0..4 {
        let root = f.root().await;
        let _ = f
            .svc
            .verify_second_factor(&root, &wrong_code(&secret, t), None, t, &f.meta, "x")
            .await;
    }
    assert_eq!(f.root().await.mfa_failures, 4);
    let root = f.root().await;
    f.svc
        .verify_second_factor(&root, &code(&secret, t + 60), None, t, &f.meta, "x")
        .await
        .unwrap();
    assert_eq!(f.root().await.mfa_failures, 0);
}

#[tokio::test]
async fn recent_factor_expires_after_five_minutes_and_sessions_expire() {
    let f = fixture(RequireMfa::Root).await;
    let secret = f.root_with_device().await;
    // Sign in with password + code at T1.
    let t1 = T0 + 1000;
    let PasswordOutcome::MfaRequired { challenge, devices } = f
        .svc
        .sign_in_password("root", Zeroizing::new(PW.into()), t1, &mut OsRng, &f.meta)
        .await
        .unwrap()
    else {
        panic!("root has a device")
    };
    assert_eq!(devices.len(), 1);
    // An expired challenge (older than 5 minutes) is refused.
    let e = f
        .svc
        .sign_in_mfa(
            &challenge,
            &code(&secret, t1 + 360),
            None,
            t1 + 301,
            &mut OsRng,
            &f.meta,
        )
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidChallenge));
    let (s, _) = f
        .svc
        .sign_in_mfa(
            &challenge,
            &code(&secret, t1 + 60),
            None,
            t1,
            &mut OsRng,
            &f.meta,
        )
        .await
        .unwrap();
    let auth = f.svc.authenticate(&s.token, t1 + 10).await.unwrap();
    let new = f
        .svc
        .create_virtual_device(&auth, "spare", t1 + 10, &mut OsRng, &f.meta)
        .await
        .unwrap();
    // Within 5 minutes of the second factor: deleting is allowed.
    f.svc
        .delete_device(&auth, None, &new.device.id, t1 + 300, &f.meta)
        .await
        .unwrap();
    // Keep the session alive, then try after 5 minutes: refused until verified again.
    let auth = f.svc.authenticate(&s.token, t1 + 301).await.unwrap();
    let d = f.svc.list_devices(&auth.account).await.unwrap()[0].clone();
    let e = f
        .svc
        .delete_device(&auth, None, &d.id, t1 + 301, &f.meta)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::RecentSecondFactorRequired));
    let e = f
        .svc
        .create_virtual_device(&auth, "late", t1 + 301, &mut OsRng, &f.meta)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::RecentSecondFactorRequired));
    f.svc
        .verify_in_session(&auth, &code(&secret, t1 + 330), None, t1 + 302, &f.meta)
        .await
        .unwrap();
    let auth = f.svc.authenticate(&s.token, t1 + 303).await.unwrap();
    f.svc
        .delete_device(&auth, None, &d.id, t1 + 303, &f.meta)
        .await
        .unwrap();

    // Idle limit: 30 minutes without activity ends the session.
    assert!(f
        .svc
        .authenticate(&s.token, t1 + 303 + 29 * 60)
        .await
        .is_ok());
    let e = f
        .svc
        .authenticate(&s.token, t1 + 303 + 29 * 60 + 30 * 60)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Unauthenticated));

    // Absolute limit: 12 hours even with activity every 20 minutes.
    let PasswordOutcome::Session(b) = f
        .svc
        .sign_in_password("root", Zeroizing::new(PW.into()), t1, &mut OsRng, &f.meta)
        .await
        .unwrap()
    else {
        panic!("no devices left: password session")
    };
    let (s, _) = *b;
    let mut t = t1;
    while t + 1200 < t1 + 12 * 3600 {
        t += 1200;
        f.svc.authenticate(&s.token, t).await.unwrap();
    }
    assert!(f.svc.authenticate(&s.token, t1 + 12 * 3600).await.is_err());
}

#[tokio::test]
async fn setup_links_expire_after_one_hour() {
    let f = fixture(RequireMfa::None).await;
    let link = f.svc.ensure_root(T0, &mut OsRng).await.unwrap().unwrap();
    assert!(f.svc.ensure_root(T0, &mut OsRng).await.unwrap().is_none());
    let e = f
        .svc
        .complete_setup(
            &token_of(&link),
            Zeroizing::new(PW.into()),
            T0 + 3600,
            &mut OsRng,
            &f.meta,
        )
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidSetupToken));
    let link = f.svc.root_setup_link(T0 + 3600, &mut OsRng).await.unwrap();
    f.svc
        .complete_setup(
            &token_of(&link),
            Zeroizing::new(PW.into()),
            T0 + 7199,
            &mut OsRng,
            &f.meta,
        )
        .await
        .unwrap();
    // require_mfa = none: root signs in on the password with the alert.
    let PasswordOutcome::Session(b) = f
        .svc
        .sign_in_password(
            "root",
            Zeroizing::new(PW.into()),
            T0 + 7200,
            &mut OsRng,
            &f.meta,
        )
        .await
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(b.0.record.state, SessionState::Full);
    assert_eq!(b.0.record.second_factor_at, None);
}

#[tokio::test]
async fn a_different_server_key_is_refused_for_an_existing_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.db");
    let policy = || policy(RequireMfa::Root, "x", "http://x");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).await.unwrap());
    Service::new(
        store.clone(),
        ServerKey::from_bytes([1; 32]),
        policy(),
        &mut OsRng,
    )
    .await
    .unwrap();
    Service::new(
        store.clone(),
        ServerKey::from_bytes([1; 32]),
        policy(),
        &mut OsRng,
    )
    .await
    .unwrap();
    let e = Service::new(store, ServerKey::from_bytes([2; 32]), policy(), &mut OsRng)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Key(_)), "{e:?}");
}
