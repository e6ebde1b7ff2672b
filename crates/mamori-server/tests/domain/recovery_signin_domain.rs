//! Signing in with alternative factors on a fixed clock (docs/recovery.md): the email and phone
//! codes expire after 10 minutes, the recovery session after 30 minutes, and the recovery
//! session counts as a fresh second factor for removing the lost device for as long as it
//! lasts. Real SQLite, real SMTP (to the in-test sink) and the real webhook gateway (to the
//! in-test receiver).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;

use crate::domain_common::{code, policy, token_of, PW, T0};
use crate::recovery_common::{six_digits, SmtpSink, WebhookReceiver};
use mamori_server::config::{PhoneConfig, RequireMfa, SmtpConfig, SmtpSecurity};
use mamori_server::domain::accounts::NewUser;
use mamori_server::domain::recovery_signin::{RecoveryOutcome, CODE_SECS, RECOVERY_SESSION_SECS};
use mamori_server::domain::signin::PasswordOutcome;
use mamori_server::domain::{Policy, Request, RequestMeta, Service};
use mamori_server::keys::ServerKey;
use mamori_server::store::sqlite::SqliteStore;
use mamori_server::store::{Role, SessionState, Store};
use mamori_server::Error;
use rand::rngs::OsRng;
use serde_json::Value;
use zeroize::Zeroizing;

#[tokio::test]
async fn codes_and_the_recovery_session_expire() {
    let sink = SmtpSink::start().await;
    let hook = WebhookReceiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("phone-secret");
    std::fs::write(&secret_file, "a-webhook-secret-of-32-characters").unwrap();
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&dir.path().join("m.db")).await.unwrap());
    let smtp = SmtpConfig {
        host: Some("127.0.0.1".into()),
        port: sink.port,
        security: SmtpSecurity::None,
        from: "mamori <mfa@example.test>".into(),
        ..SmtpConfig::default()
    };
    let phone = PhoneConfig {
        provider: "webhook".into(),
        url: Some(hook.url.clone()),
        secret_file: Some(secret_file),
        ..PhoneConfig::default()
    };
    let svc = Service::new(
        store.clone(),
        ServerKey::generate(&mut OsRng),
        Policy {
            // Walks recovery straight through (the waiting period: recovery_wait.rs).
            recovery_wait_secs: 0,
            ..policy(RequireMfa::Root, "ACME", "https://mfa.example")
        },
        &mut OsRng,
    )
    .await
    .unwrap()
    .with_notifier(mamori_server::delivery::notifier_from_config(&smtp).unwrap())
    .with_phone_gateway(mamori_server::delivery::phone_gateway_from_config(&phone).unwrap());
    let meta = RequestMeta::default();

    // gina: password, one device, both contacts proven.
    let (account, link) = svc
        .create_user(
            "root",
            NewUser {
                name: "gina",
                role: Role::User,
                email: Some("gina@example.test"),
                phone: Some("+81 90 9999 0000"),
            },
            Request::new(T0, &meta),
            &mut OsRng,
        )
        .await
        .unwrap();
    svc.complete_setup(
        &token_of(&link),
        Zeroizing::new(PW.into()),
        T0,
        &mut OsRng,
        &meta,
    )
    .await
    .unwrap();
    for (ch, v) in [
        ("email", "gina@example.test"),
        // Stored in E.164 (#15): create_user normalised the number typed above.
        ("phone", "+819099990000"),
    ] {
        store
            .set_verified_contact(&account.id, ch, v, T0)
            .await
            .unwrap();
    }
    let PasswordOutcome::Session(b) = svc
        .sign_in_password("gina", Zeroizing::new(PW.into()), T0, &mut OsRng, &meta)
        .await
        .unwrap()
    else {
        panic!("no device yet: a session")
    };
    let (s, account) = *b;
    let first = mamori_server::domain::signin::Authenticated {
        session: s.record.clone(),
        account: account.clone(),
        enabled_devices: 0,
    };
    let d = svc
        .create_virtual_device(&first, "old", T0, &mut OsRng, &meta)
        .await
        .unwrap();
    let secret = d.secret_base32.to_string();
    svc.enable_device(
        &first,
        &d.device.id,
        &code(&secret, T0),
        &code(&secret, T0 + 30),
        T0,
        &meta,
    )
    .await
    .unwrap();

    let PasswordOutcome::MfaRequired { challenge, .. } = svc
        .sign_in_password("gina", Zeroizing::new(PW.into()), T0, &mut OsRng, &meta)
        .await
        .unwrap()
    else {
        panic!("a device: a challenge")
    };
    let started = svc
        .start_recovery_sign_in(&challenge, T0, &mut OsRng, &meta)
        .await
        .unwrap();
    assert_eq!(started.expires_at, T0 + CODE_SECS);
    let email_code = six_digits(
        &sink
            .wait_for("gina@example.test", "Your sign-in code")
            .await
            .body(),
    );
    // At 10 minutes the email code (and the challenge waiting for it) has expired.
    assert!(svc
        .recovery_email_code(&challenge, &email_code, T0 + CODE_SECS, &mut OsRng, &meta)
        .await
        .is_err());
    // Just before, it works (the expired try spent nothing).
    let t1 = T0 + CODE_SECS - 1;
    let next = svc
        .recovery_email_code(&challenge, &email_code, t1, &mut OsRng, &meta)
        .await
        .unwrap();
    assert_eq!(next.expires_at, t1 + CODE_SECS);
    let msg: Value = serde_json::from_str(&hook.wait_for(1).await.body).unwrap();
    let phone_code = msg["code"].as_str().unwrap().to_string();
    assert!(matches!(
        svc.recovery_phone_code(&challenge, &phone_code, t1 + CODE_SECS, &mut OsRng, &meta)
            .await,
        Err(Error::InvalidChallenge | Error::InvalidCode)
    ));
    let t2 = t1 + CODE_SECS - 1;
    let RecoveryOutcome::Session(rec, _) = svc
        .recovery_phone_code(&challenge, &phone_code, t2, &mut OsRng, &meta)
        .await
        .unwrap()
    else {
        panic!("no waiting period configured, yet the recovery waits");
    };
    assert_eq!(rec.record.state, SessionState::Recovery);
    assert_eq!(rec.record.expires_at, t2 + RECOVERY_SESSION_SECS);

    // 20 minutes in (well past the 5 minutes of a recent factor), the lost device can still be
    // removed without a code from it; a full session with an old factor could not.
    let t3 = t2 + 20 * 60;
    assert!(matches!(
        svc.delete_device(&first, None, &d.device.id, t3, &meta)
            .await,
        Err(Error::RecentSecondFactorRequired)
    ));
    let auth = svc.authenticate(&rec.token, t2 + 60).await.unwrap();
    svc.delete_device(&auth, None, &d.device.id, t3, &meta)
        .await
        .unwrap();
    assert!(svc.list_devices(&account).await.unwrap().is_empty());
    // The recovery session ends 30 minutes after it began, however active.
    svc.authenticate(&rec.token, t2 + 25 * 60).await.unwrap();
    assert!(matches!(
        svc.authenticate(&rec.token, t2 + RECOVERY_SESSION_SECS)
            .await,
        Err(Error::Unauthenticated)
    ));
}
