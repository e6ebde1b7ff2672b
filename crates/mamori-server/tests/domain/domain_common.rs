//! The fixture shared by the domain tests that run on a fixed clock (`domain_rules.rs`,
//! `sync_domain.rs`): a real SQLite file, a real server key, cheap Argon2 parameters, and root
//! with an enrolled virtual device.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;

use mamori_otp::{Generator, OtpParams, Secret};
use mamori_server::config::{Config, PasswordConfig, RequireMfa};
use mamori_server::domain::signin::PasswordOutcome;
use mamori_server::domain::{Policy, RequestMeta, Service};
use mamori_server::keys::ServerKey;
use mamori_server::store::sqlite::SqliteStore;
use mamori_server::store::{SessionState, Store};
use rand::rngs::OsRng;
use zeroize::Zeroizing;

pub const T0: i64 = 1_800_000_000; // a step boundary: 1_800_000_000 / 30 is whole
pub const PW: &str = "lantern-orbit-velvet-42";

pub fn code(secret: &str, at: i64) -> String {
    let s = Secret::from_base32(secret).unwrap();
    Generator::new(&s, OtpParams::totp())
        .unwrap()
        .at_time(at as u64)
        .to_string()
}

/// The policy of a default configuration (so fields added later take their defaults) with cheap
/// Argon2 parameters.
pub fn policy(require_mfa: RequireMfa, service: &str, url: &str) -> Policy {
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

pub struct Fixture {
    pub svc: Service,
    pub _dir: tempfile::TempDir,
    pub meta: RequestMeta,
}

pub async fn fixture(require_mfa: RequireMfa) -> Fixture {
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

pub fn token_of(link: &str) -> String {
    link.split("token=").nth(1).unwrap().to_string()
}

impl Fixture {
    /// Root with a password and one enabled device at T0; returns the device secret.
    pub async fn root_with_device(&self) -> String {
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
        let auth = mamori_server::domain::signin::Authenticated {
            session: s.record.clone(),
            account: account.clone(),
            enabled_devices: 0,
        };
        let d = self
            .svc
            .create_virtual_device(&auth, "phone", T0, &mut OsRng, &self.meta)
            .await
            .unwrap();
        assert!(d.uri.contains("issuer=ACME"));
        let secret = d.secret_base32.to_string();
        // The phone's clock is 2 steps (60 s) fast: its two codes are for steps +1 and +2.
        self.svc
            .enable_device(
                &auth,
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

    /// Root signs in at `t` with password and a code from the device of
    /// [`Fixture::root_with_device`] (whose clock is 2 steps fast); returns the session token.
    pub async fn root_signed_in(&self, secret: &str, t: i64) -> Zeroizing<String> {
        let PasswordOutcome::MfaRequired { challenge, .. } = self
            .svc
            .sign_in_password("root", Zeroizing::new(PW.into()), t, &mut OsRng, &self.meta)
            .await
            .unwrap()
        else {
            panic!("root has a device: a code is asked for")
        };
        let (session, _) = self
            .svc
            .sign_in_mfa(
                &challenge,
                &code(secret, t + 60),
                None,
                t,
                &mut OsRng,
                &self.meta,
            )
            .await
            .unwrap();
        session.token
    }
}
