//! Security-key rules on a fixed clock, through the `Service` with a real SQLite file and the
//! software authenticator: a ceremony expires 5 minutes after it began, and a registration is
//! refused at finish when the session's second factor grew older than 5 minutes meanwhile.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use mamori_server::config::RequireMfa;
use mamori_server::domain::Request;
use mamori_server::store::DeviceKind;
use mamori_server::Error;
use rand::rngs::OsRng;
use webauthn_authenticator_rs::softtoken::SoftToken;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_rs::prelude::Url;

use crate::domain_common::*;

fn origin() -> Url {
    Url::parse("https://mfa.example").unwrap()
}

#[tokio::test]
async fn ceremonies_expire_and_registration_needs_a_fresh_factor_at_finish() {
    let f = fixture(RequireMfa::Root).await;
    let secret = f.root_with_device().await;
    let t1 = T0 + 300;
    let session = f.root_signed_in(&secret, t1).await;
    let auth = f.svc.authenticate(&session, t1).await.unwrap();
    let (account, s) = (&auth.account, &auth.session);
    assert_eq!(
        f.svc
            .store()
            .second_factor_kind(&s.id)
            .await
            .unwrap()
            .as_deref(),
        Some("otp"),
        "signed in with a code"
    );
    let mut key = SoftToken::new(true).unwrap().0;

    // Finished 301 seconds after it began: expired.
    let b = f
        .svc
        .webauthn_register_begin(account, s, "key", Request::new(t1, &f.meta), &mut OsRng)
        .await
        .unwrap();
    assert_eq!(b.expires_at, t1 + 300);
    let cred = key.do_registration(origin(), b.options).unwrap();
    let late = f
        .svc
        .webauthn_register_finish(
            account,
            s,
            &b.ceremony,
            &cred,
            Request::new(t1 + 300, &f.meta),
            &mut OsRng,
        )
        .await;
    assert!(matches!(late, Err(Error::InvalidCeremony)), "{late:?}");

    // Begun with a fresh factor, finished when it is 310 seconds old: refused.
    let b = f
        .svc
        .webauthn_register_begin(
            account,
            s,
            "key",
            Request::new(t1 + 200, &f.meta),
            &mut OsRng,
        )
        .await
        .unwrap();
    let cred = key.do_registration(origin(), b.options).unwrap();
    let stale = f
        .svc
        .webauthn_register_finish(
            account,
            s,
            &b.ceremony,
            &cred,
            Request::new(t1 + 310, &f.meta),
            &mut OsRng,
        )
        .await;
    assert!(
        matches!(stale, Err(Error::RecentSecondFactorRequired)),
        "{stale:?}"
    );
    assert!(f
        .svc
        .list_devices(account)
        .await
        .unwrap()
        .iter()
        .all(|d| d.kind != DeviceKind::SecurityKey));

    // In time: registered.
    let b = f
        .svc
        .webauthn_register_begin(
            account,
            s,
            "key",
            Request::new(t1 + 250, &f.meta),
            &mut OsRng,
        )
        .await
        .unwrap();
    let cred = key.do_registration(origin(), b.options).unwrap();
    let (device, _) = f
        .svc
        .webauthn_register_finish(
            account,
            s,
            &b.ceremony,
            &cred,
            Request::new(t1 + 299, &f.meta),
            &mut OsRng,
        )
        .await
        .unwrap();
    assert_eq!(device.kind, DeviceKind::SecurityKey);

    // Step-up: a ceremony answered after 5 minutes is expired; one answered in time gives the
    // session a fresh factor.
    let b = f
        .svc
        .webauthn_verify_begin(account, s, t1 + 400, &mut OsRng)
        .await
        .unwrap();
    let assertion = key.do_authentication(origin(), b.options).unwrap();
    let late = f
        .svc
        .webauthn_verify_finish(account, s, &b.ceremony, &assertion, t1 + 700, &f.meta)
        .await;
    assert!(matches!(late, Err(Error::InvalidCeremony)), "{late:?}");
    let b = f
        .svc
        .webauthn_verify_begin(account, s, t1 + 800, &mut OsRng)
        .await
        .unwrap();
    let assertion = key.do_authentication(origin(), b.options).unwrap();
    f.svc
        .webauthn_verify_finish(account, s, &b.ceremony, &assertion, t1 + 1099, &f.meta)
        .await
        .unwrap();
    let again = f.svc.authenticate(&session, t1 + 1099).await.unwrap();
    assert_eq!(again.session.second_factor_at, Some(t1 + 1099));
    // #18: the session records that its latest second factor is now a security key (the
    // forward-auth policy phishing_resistant); it was a code before.
    assert_eq!(
        f.svc
            .store()
            .second_factor_kind(&s.id)
            .await
            .unwrap()
            .as_deref(),
        Some("security_key")
    );
}
