//! Sync rules with a fixed clock: registering a sync device needs a second factor from the last
//! 5 minutes; device tokens stop working when revoked; the device registry records activity.
//! Real SQLite file, real server key.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;

use mamori_otp::{Generator, OtpParams, Secret};
use mamori_server::config::{Config, PasswordConfig, RequireMfa};
use mamori_server::domain::signin::PasswordOutcome;
use mamori_server::domain::sync::SyncLimits;
use mamori_server::domain::{Policy, RequestMeta, Service};
use mamori_server::keys::ServerKey;
use mamori_server::store::sqlite::SqliteStore;
use mamori_server::store::{SessionState, Store};
use mamori_server::Error;
use rand::rngs::OsRng;
use zeroize::Zeroizing;

const T0: i64 = 1_800_000_000; // a step boundary: 1_800_000_000 / 30 is whole
const PW: &str = "lantern-orbit-velvet-42";

fn code(secret: &str, at: i64) -> String {
    let s = Secret::from_base32(secret).unwrap();
    Generator::new(&s, OtpParams::totp())
        .unwrap()
        .at_time(at as u64)
        .to_string()
}

/// The policy of a default configuration (so fields added later take their defaults) with cheap
/// Argon2 parameters.
fn policy(require_mfa: RequireMfa, service: &str, url: &str) -> Policy {
    let defaults = Config::default();
    let c = Config {
        require_mfa,
        service_name: service.into(),
        password: PasswordConfig {
            argon2_m_kib: 1024,
            argon2_t: 1,
            ..defaults.password.clone()
        },
        ..defaults
    };
    Policy::from_config(&c, url.into())
}

struct Fixture {
    svc: Service,
    _dir: tempfile::TempDir,
    meta: RequestMeta,
}

async fn fixture(require_mfa: RequireMfa) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&dir.path().join("m.db")).await.unwrap());
    let policy = policy(require_mfa, "ACME", "https://mfa.example");
    let svc = Service::new(store, ServerKey::generate(&mut OsRng), policy, &mut OsRng)
        .await
        .unwrap();
    Fixture {
        svc,
        _dir: dir,
        meta: RequestMeta::default(),
    }
}

fn token_of(link: &str) -> String {
    link.split("token=").nth(1).unwrap().to_string()
}

impl Fixture {
    /// Root with a password and one enabled device at T0; returns the device secret.
    async fn root_with_device(&self) -> String {
        let link = self.svc.ensure_root(T0, &mut OsRng).await.unwrap().unwrap();
        assert!(link.starts_with("https://mfa.example/setup?token="));
        self.svc
            .complete_setup(
                &token_of(&link),
                Zeroizing::new(PW.into()),
                T0,
                &mut OsRng,
                &self.meta,
            )
            .await
            .unwrap();
        let PasswordOutcome::Session(b) = self
            .svc
            .sign_in_password(
                "root",
                Zeroizing::new(PW.into()),
                T0,
                &mut OsRng,
                &self.meta,
            )
            .await
            .unwrap()
        else {
            panic!("root without devices gets a session")
        };
        let (s, account) = *b;
        assert_eq!(s.record.state, SessionState::EnrollmentRequired);
        let d = self
            .svc
            .create_virtual_device(&account, &s.record, "phone", T0, &mut OsRng, &self.meta)
            .await
            .unwrap();
        assert!(d.uri.contains("issuer=ACME"));
        let secret = d.secret_base32.to_string();
        // The phone's clock is 2 steps (60 s) fast: its two codes are for steps +1 and +2.
        self.svc
            .enable_device(
                &account,
                &d.device.id,
                &code(&secret, T0 + 30),
                &code(&secret, T0 + 60),
                T0,
                &self.meta,
            )
            .await
            .unwrap();
        secret
    }
}

#[tokio::test]
async fn registration_needs_a_second_factor_from_the_last_5_minutes() {
    let f = fixture(RequireMfa::Root).await;
    let secret = f.root_with_device().await;
    let t1 = T0 + 300;
    let PasswordOutcome::MfaRequired { challenge, .. } = f
        .svc
        .sign_in_password("root", Zeroizing::new(PW.into()), t1, &mut OsRng, &f.meta)
        .await
        .unwrap()
    else {
        panic!("root has a device: a code is asked for")
    };
    // The phone is 2 steps fast (remembered drift).
    let (session, _) = f
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
    let limits = SyncLimits::default();
    let auth = f.svc.authenticate(&session.token, t1 + 10).await.unwrap();
    let (token, device) = f
        .svc
        .sync_register_device(&auth, "laptop", &limits, t1 + 10, &mut OsRng, &f.meta)
        .await
        .unwrap();
    // Five minutes and one second after the code: refused, and audited.
    let late = t1 + 301;
    let auth = f.svc.authenticate(&session.token, late).await.unwrap();
    let e = f
        .svc
        .sync_register_device(&auth, "desktop", &limits, late, &mut OsRng, &f.meta)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::RecentSecondFactorRequired), "{e:?}");
    // The device token works, records activity, and stops working once revoked.
    let sa = f.svc.sync_authenticate(&token, late + 100).await.unwrap();
    assert_eq!(sa.device.id, device.id);
    let listed = f.svc.sync_devices(&sa).await.unwrap();
    assert_eq!(listed[0].last_seen_at, Some(late + 100));
    f.svc
        .sync_revoke_device(&sa, &device.id, late + 200, &f.meta)
        .await
        .unwrap();
    let e = f
        .svc
        .sync_authenticate(&token, late + 201)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Unauthenticated), "{e:?}");
    let kinds: Vec<(String, String)> = f
        .svc
        .audit_events(&mamori_server::store::AuditFilter {
            kind: Some("sync.".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.event.kind, r.event.result))
        .collect();
    assert!(kinds.contains(&("sync.device_register".into(), "success".into())));
    assert!(kinds.contains(&("sync.device_register".into(), "refused".into())));
    assert!(kinds.contains(&("sync.device_revoke".into(), "success".into())));
}
