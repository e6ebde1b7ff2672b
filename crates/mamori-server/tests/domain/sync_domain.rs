//! Sync rules with a fixed clock: registering a sync device needs a second factor from the last
//! 5 minutes; device tokens stop working when revoked; the device registry records activity.
//! Real SQLite file, real server key.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use mamori_server::config::RequireMfa;
use mamori_server::domain::sync::SyncLimits;
use mamori_server::Error;
use rand::rngs::OsRng;

use crate::domain_common::*;

#[tokio::test]
async fn registration_needs_a_second_factor_from_the_last_5_minutes() {
    let f = fixture(RequireMfa::Root).await;
    let secret = f.root_with_device().await;
    let t1 = T0 + 300;
    // The phone is 2 steps fast (remembered drift).
    let session = f.root_signed_in(&secret, t1).await;
    let limits = SyncLimits::default();
    let auth = f.svc.authenticate(&session, t1 + 10).await.unwrap();
    let (token, device) = f
        .svc
        .sync_register_device(&auth, "laptop", &limits, t1 + 10, &mut OsRng, &f.meta)
        .await
        .unwrap();
    // Five minutes and one second after the code: refused, and audited.
    let late = t1 + 301;
    let auth = f.svc.authenticate(&session, late).await.unwrap();
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
