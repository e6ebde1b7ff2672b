//! The one store test suite, run against every backend (see the `tests` modules of
//! `sqlite.rs` and `postgres.rs`). Each check starts from its own accounts, so the order of
//! checks does not matter.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use super::*;

fn account(name: &str) -> AccountRecord {
    AccountRecord {
        id: format!("acc-{name}"),
        name: name.into(),
        role: Role::User,
        email: Some(format!("{name}@example.com")),
        phone: None,
        password_hash: None,
        password_changed_at: None,
        created_at: 1_000,
        mfa_failures: 0,
        mfa_last_failure_at: None,
        locked_at: None,
    }
}

fn device(account_id: &str, name: &str) -> DeviceRecord {
    DeviceRecord {
        id: format!("dev-{account_id}-{name}"),
        account_id: account_id.into(),
        kind: DeviceKind::Virtual,
        name: name.into(),
        serial: format!("mamori:mfa/x/{name}"),
        created_at: 1_000,
        enabled_at: None,
        last_used_at: None,
        secret_sealed: Some(Redacted::new(vec![1, 2, 3])),
        otp_type: "totp".into(),
        algorithm: "SHA1".into(),
        digits: 6,
        period: 30,
        drift: 0,
        last_step: None,
        credential: None,
    }
}

fn session(account_id: &str, id: &str, state: SessionState) -> SessionRecord {
    SessionRecord {
        id: id.into(),
        token_hash: format!("hash-{id}").into_bytes(),
        account_id: account_id.into(),
        state,
        created_at: 1_000,
        last_seen_at: 1_000,
        expires_at: 1_000 + 3600,
        second_factor_at: None,
        client_addr: Some("127.0.0.1".into()),
        user_agent: Some("test".into()),
    }
}

/// Runs every check.
pub async fn run_all(s: &dyn Store) {
    meta(s).await;
    accounts(s).await;
    failures_and_lock(s).await;
    devices_and_limit(s).await;
    account_with_devices(s).await;
    validate_subject(s).await;
    phantom_failures(s).await;
    concurrent_phantom_failures(s).await;
    replay_rule(s).await;
    concurrent_accepts(s).await;
    sessions(s).await;
    setup_tokens(s).await;
    app_keys(s).await;
    audit(s).await;
    audit_text_from_requests(s).await;
    audit_by_detail(s).await;
    tls_state_and_lease(s).await;
}

// #22: one node at a time holds the ordering lease; it expires by itself.
async fn tls_state_and_lease(s: &dyn Store) {
    assert_eq!(s.tls_state_get("cert").await.unwrap(), None);
    s.tls_state_put("cert", b"one", 10).await.unwrap();
    s.tls_state_put("cert", b"two", 20).await.unwrap();
    assert_eq!(
        s.tls_state_get("cert").await.unwrap(),
        Some(b"two".to_vec())
    );
    assert!(s.tls_lease("order", "a", 100, 200).await.unwrap());
    assert!(!s.tls_lease("order", "b", 150, 250).await.unwrap());
    // The holder extends it; another takes it once it expired.
    assert!(s.tls_lease("order", "a", 150, 300).await.unwrap());
    assert!(!s.tls_lease("order", "b", 299, 400).await.unwrap());
    assert!(s.tls_lease("order", "b", 301, 400).await.unwrap());
    // Released by its holder only.
    s.tls_lease_release("order", "a").await.unwrap();
    assert!(!s.tls_lease("order", "a", 302, 400).await.unwrap());
    s.tls_lease_release("order", "b").await.unwrap();
    assert!(s.tls_lease("order", "a", 303, 400).await.unwrap());
}

async fn meta(s: &dyn Store) {
    assert_eq!(s.meta_get("k").await.unwrap(), None);
    assert!(s.meta_init("k", b"v1").await.unwrap());
    assert!(!s.meta_init("k", b"v2").await.unwrap());
    assert_eq!(s.meta_get("k").await.unwrap(), Some(b"v1".to_vec()));
}

async fn accounts(s: &dyn Store) {
    let before = s.count_accounts().await.unwrap();
    let a = account("alice");
    s.create_account(&a).await.unwrap();
    assert_eq!(s.account_by_name("alice").await.unwrap(), Some(a.clone()));
    assert_eq!(s.account_by_id(&a.id).await.unwrap(), Some(a.clone()));
    assert_eq!(s.account_by_name("nobody").await.unwrap(), None);
    let mut dup = account("alice");
    dup.id = "other".into();
    assert!(matches!(
        s.create_account(&dup).await,
        Err(Error::Conflict(_))
    ));
    assert_eq!(s.count_accounts().await.unwrap(), before + 1);
    s.set_password(&a.id, "$argon2id$fake", 2_000)
        .await
        .unwrap();
    let got = s.account_by_id(&a.id).await.unwrap().unwrap();
    assert_eq!(
        got.password_hash.as_ref().map(|h| h.expose().as_str()),
        Some("$argon2id$fake")
    );
    assert_eq!(got.password_changed_at, Some(2_000));
    assert!(matches!(
        s.set_password("missing", "x", 1).await,
        Err(Error::NotFound(_))
    ));
    let names: Vec<String> = s
        .list_accounts()
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.name)
        .collect();
    assert!(names.contains(&"alice".to_string()));
}

async fn failures_and_lock(s: &dyn Store) {
    let a = account("fail");
    s.create_account(&a).await.unwrap();
    let get = |id: String| async move {
        let a = s.account_by_id(&id).await.unwrap().unwrap();
        (a.mfa_failures, a.mfa_last_failure_at, a.locked_at)
    };
    // A reservation counts the attempt at once, against the state it was decided on.
    assert!(s.reserve_mfa_attempt(&a.id, 0, None, 11, 3).await.unwrap());
    assert!(
        !s.reserve_mfa_attempt(&a.id, 0, None, 11, 3).await.unwrap(),
        "a stale count is refused"
    );
    assert!(
        !s.reserve_mfa_attempt(&a.id, 1, None, 12, 3).await.unwrap(),
        "a stale last-failure time is refused"
    );
    assert!(s
        .reserve_mfa_attempt(&a.id, 1, Some(11), 12, 3)
        .await
        .unwrap());
    assert_eq!(get(a.id.clone()).await, (2, Some(12), None));
    // A failure below the limit does not lock; an attempt that was not evaluated is given back.
    let c = s.settle_mfa_failure(&a.id, 12, 3).await.unwrap();
    assert_eq!(
        c,
        FailureCount {
            failures: 2,
            locked: false,
            locked_now: false
        }
    );
    s.release_mfa_attempt(&a.id, 12, Some(11)).await.unwrap();
    assert_eq!(
        get(a.id.clone()).await,
        (1, Some(11), None),
        "the former time is back"
    );
    // A right answer claims its place on the state it saw and clears the count.
    assert!(!s.claim_mfa_success(&a.id, 2, Some(11), 3).await.unwrap());
    assert!(s.claim_mfa_success(&a.id, 1, Some(11), 3).await.unwrap());
    assert_eq!(get(a.id.clone()).await, (0, None, None));
    assert!(s.claim_mfa_success(&a.id, 0, None, 3).await.unwrap());
    s.reset_mfa_failures(&a.id).await.unwrap();
    assert_eq!(get(a.id.clone()).await, (0, None, None));
    s.release_mfa_attempt(&a.id, 0, None).await.unwrap();
    assert_eq!(get(a.id.clone()).await.0, 0, "never below zero");
    // Up to the limit, and no further reservation at it.
    let mut last = None;
    for i in 0..3 {
        assert!(s
            .reserve_mfa_attempt(&a.id, i, last, 20 + i, 3)
            .await
            .unwrap());
        last = Some(20 + i);
    }
    assert!(!s.reserve_mfa_attempt(&a.id, 3, last, 30, 3).await.unwrap());
    let c = s.settle_mfa_failure(&a.id, 23, 3).await.unwrap();
    assert_eq!((c.failures, c.locked, c.locked_now), (3, true, true));
    let c = s.settle_mfa_failure(&a.id, 24, 3).await.unwrap();
    assert_eq!((c.locked, c.locked_now), (true, false), "locked once");
    let got = s.account_by_id(&a.id).await.unwrap().unwrap();
    assert_eq!(got.locked_at, Some(23));
    assert!(!s
        .reserve_mfa_attempt(&a.id, 3, last, 40, 100)
        .await
        .unwrap());
    assert!(
        !s.claim_mfa_success(&a.id, 3, last, 100).await.unwrap(),
        "a locked account takes no right answer"
    );
    // A success does not unlock a locked account; only the administrator reset does.
    s.reset_mfa_failures(&a.id).await.unwrap();
    s.release_mfa_attempt(&a.id, 23, Some(22)).await.unwrap();
    let got = s.account_by_id(&a.id).await.unwrap().unwrap();
    assert!(got.locked_at.is_some());
    assert_eq!(got.mfa_failures, 3);
    s.create_device(&device(&a.id, "d"), 8).await.unwrap();
    assert_eq!(s.reset_mfa(&a.id).await.unwrap(), 1);
    let got = s.account_by_id(&a.id).await.unwrap().unwrap();
    assert_eq!((got.mfa_failures, got.locked_at), (0, None));
    assert!(s.devices_for_account(&a.id).await.unwrap().is_empty());
}

async fn devices_and_limit(s: &dyn Store) {
    let a = account("devs");
    s.create_account(&a).await.unwrap();
    for i in 0..3 {
        s.create_device(&device(&a.id, &format!("d{i}")), 3)
            .await
            .unwrap();
    }
    assert!(matches!(
        s.create_device(&device(&a.id, "d3"), 3).await,
        Err(Error::DeviceLimitReached(3))
    ));
    let mut same_name = device(&a.id, "d0");
    same_name.id = "another-id".into();
    assert!(matches!(
        s.create_device(&same_name, 8).await,
        Err(Error::Conflict(_))
    ));
    // The failed insert must not have consumed a slot.
    s.create_device(&device(&a.id, "d3"), 4).await.unwrap();
    let list = s.devices_for_account(&a.id).await.unwrap();
    assert_eq!(list.len(), 4);
    let d0 = &list[0];
    assert_eq!(d0.secret_sealed, Some(Redacted::new(vec![1, 2, 3])));
    assert!(s.delete_device(&a.id, &d0.id).await.unwrap());
    assert!(!s.delete_device(&a.id, &d0.id).await.unwrap());
    s.create_device(&device(&a.id, "d4"), 4).await.unwrap();
    assert!(matches!(
        s.create_device(&device(&a.id, "d5"), 4).await,
        Err(Error::DeviceLimitReached(4))
    ));
    let d1 = format!("dev-{}-d1", a.id);
    assert!(s
        .rename_device(&a.id, &d1, "renamed", "serial/renamed")
        .await
        .unwrap());
    assert!(matches!(
        s.rename_device(&a.id, &d1, "d2", "x").await,
        Err(Error::Conflict(_))
    ));
    let got = s.device(&a.id, &d1).await.unwrap().unwrap();
    assert_eq!(
        (got.name.as_str(), got.serial.as_str()),
        ("renamed", "serial/renamed")
    );
    assert_eq!(s.device("someone-else", &d1).await.unwrap(), None);
    assert!(!s.delete_device("someone-else", &d1).await.unwrap());
}

async fn account_with_devices(s: &dyn Store) {
    // The joined lookup must agree with the two separate ones, with no device, one, and several
    // (order included), and must not mix in another account's devices.
    assert_eq!(s.account_with_devices("nobody").await.unwrap(), None);
    let a = account("joined");
    s.create_account(&a).await.unwrap();
    let other = account("joined-other");
    s.create_account(&other).await.unwrap();
    s.create_device(&device(&other.id, "x"), 8).await.unwrap();
    for n in 0..3 {
        if n > 0 {
            let mut d = device(&a.id, &format!("j{n}"));
            d.created_at = 1_000 - n;
            d.enabled_at = Some(2_000);
            d.last_step = Some(n * 7);
            d.credential = Some(vec![9; 4]);
            s.create_device(&d, 8).await.unwrap();
        }
        let (acc, devices) = s.account_with_devices("joined").await.unwrap().unwrap();
        assert_eq!(acc, s.account_by_name("joined").await.unwrap().unwrap());
        assert_eq!(devices, s.devices_for_account(&a.id).await.unwrap());
        assert_eq!(devices.len(), usize::try_from(n).unwrap());
    }
}

async fn validate_subject(s: &dyn Store) {
    // A known name: the account and its devices, as the joined lookup gives them (the phantom
    // row of the same name is not consulted).
    let a = account("subject");
    s.create_account(&a).await.unwrap();
    s.create_device(&device(&a.id, "v1"), 8).await.unwrap();
    s.create_device(&device(&a.id, "v2"), 8).await.unwrap();
    let key_a = b"phantom-key-subject".to_vec();
    s.record_phantom_failure(&key_a, 0, 5, 100).await.unwrap();
    let (acc, devices) = s.account_with_devices("subject").await.unwrap().unwrap();
    assert_eq!(
        s.validate_subject("subject", &key_a).await.unwrap(),
        ValidateSubject::Account(acc, devices.clone())
    );
    assert_eq!(devices.len(), 2);
    // An account without devices.
    let b = account("subject-bare");
    s.create_account(&b).await.unwrap();
    assert_eq!(
        s.validate_subject("subject-bare", b"k").await.unwrap(),
        ValidateSubject::Account(b, vec![])
    );
    // An unknown name: its phantom history, zero without a row.
    assert_eq!(
        s.validate_subject("nobody-here", b"no-row").await.unwrap(),
        ValidateSubject::Unknown(PhantomRecord::default())
    );
    assert_eq!(
        s.validate_subject("nobody-here", &key_a).await.unwrap(),
        ValidateSubject::Unknown(PhantomRecord {
            failures: 1,
            last_failure_at: Some(5),
            locked_at: None
        })
    );
}

async fn phantom_failures(s: &dyn Store) {
    let k = b"phantom-key-count".to_vec();
    assert_eq!(
        s.phantom_failures(&k).await.unwrap(),
        PhantomRecord::default()
    );
    // The first failure inserts, each later one needs the count the caller saw.
    for i in 1..=2 {
        let c = s
            .record_phantom_failure(&k, i - 1, 10 + i, 3)
            .await
            .unwrap();
        assert_eq!(
            c,
            Some(FailureCount {
                failures: i,
                locked: false,
                locked_now: false
            })
        );
    }
    // A stale count (0 or 1 while 2 is stored) changes nothing.
    assert_eq!(s.record_phantom_failure(&k, 0, 20, 3).await.unwrap(), None);
    assert_eq!(s.record_phantom_failure(&k, 1, 20, 3).await.unwrap(), None);
    assert_eq!(
        s.phantom_failures(&k).await.unwrap(),
        PhantomRecord {
            failures: 2,
            last_failure_at: Some(12),
            locked_at: None
        }
    );
    // The third failure locks (at lock_after = 3), and the lock time stays.
    assert_eq!(
        s.record_phantom_failure(&k, 2, 30, 3).await.unwrap(),
        Some(FailureCount {
            failures: 3,
            locked: true,
            locked_now: true
        })
    );
    s.record_phantom_failure(&k, 3, 40, 3).await.unwrap();
    assert_eq!(
        s.phantom_failures(&k).await.unwrap(),
        PhantomRecord {
            failures: 4,
            last_failure_at: Some(40),
            locked_at: Some(30)
        }
    );
    // Keys are independent; lock_after 1 locks at the first failure.
    let other = b"phantom-key-other".to_vec();
    assert_eq!(
        s.record_phantom_failure(&other, 0, 50, 1).await.unwrap(),
        Some(FailureCount {
            failures: 1,
            locked: true,
            locked_now: true
        })
    );
}

async fn concurrent_phantom_failures(s: &dyn Store) {
    // Ten requests that all saw the same count: exactly one counts.
    let k = b"phantom-key-race".to_vec();
    s.record_phantom_failure(&k, 0, 1, 100).await.unwrap();
    let results = futures_join_all((0..10).map(|_| s.record_phantom_failure(&k, 1, 2, 100))).await;
    let won = results
        .into_iter()
        .map(|r| r.unwrap())
        .filter(Option::is_some)
        .count();
    assert_eq!(won, 1);
    assert_eq!(s.phantom_failures(&k).await.unwrap().failures, 2);
}

async fn replay_rule(s: &dyn Store) {
    let a = account("replay");
    s.create_account(&a).await.unwrap();
    let d = device(&a.id, "phone");
    s.create_device(&d, 8).await.unwrap();
    // Not enabled yet: nothing is accepted.
    assert!(!s.accept_step(&d.id, 100, 0, 5).await.unwrap());
    assert!(s.enable_device(&d.id, 5, -1, 100).await.unwrap());
    assert!(!s.enable_device(&d.id, 6, 0, 101).await.unwrap());
    assert!(!s.accept_step(&d.id, 100, 0, 7).await.unwrap(), "same step");
    assert!(
        !s.accept_step(&d.id, 99, 0, 7).await.unwrap(),
        "earlier step"
    );
    assert!(s.accept_step(&d.id, 101, 1, 8).await.unwrap());
    let got = s.device(&a.id, &d.id).await.unwrap().unwrap();
    assert_eq!(
        (got.last_step, got.drift, got.last_used_at),
        (Some(101), 1, Some(8))
    );
    assert_eq!(got.enabled_at, Some(5));
    assert!(!s.resync_device(&d.id, 3, 101).await.unwrap());
    assert!(s.resync_device(&d.id, 3, 110).await.unwrap());
    assert!(!s.accept_step(&d.id, 105, 0, 9).await.unwrap());
}

async fn concurrent_accepts(s: &dyn Store) {
    let a = account("race");
    s.create_account(&a).await.unwrap();
    let d = device(&a.id, "phone");
    s.create_device(&d, 8).await.unwrap();
    assert!(s.enable_device(&d.id, 1, 0, 1).await.unwrap());
    for step in 2..12 {
        let (x, y) = tokio::join!(
            s.accept_step(&d.id, step, 0, 1),
            s.accept_step(&d.id, step, 0, 1)
        );
        assert!(
            x.unwrap() ^ y.unwrap(),
            "exactly one accept for step {step}"
        );
    }
    // Of concurrent reservations made on the same state, exactly one counts.
    let futs = (0..10).map(|i| s.reserve_mfa_attempt(&a.id, 0, None, i, 100));
    let results = futures_join_all(futs).await;
    assert_eq!(results.iter().filter(|r| *r.as_ref().unwrap()).count(), 1);
    assert_eq!(
        s.account_by_id(&a.id).await.unwrap().unwrap().mfa_failures,
        1
    );
}

/// Drives several futures concurrently on the current task (no extra dependency needed).
async fn futures_join_all<F: std::future::Future>(futs: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut pinned: Vec<std::pin::Pin<Box<F>>> = futs.map(Box::pin).collect();
    let mut done: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, slot) in pinned.iter_mut().zip(done.iter_mut()) {
            if slot.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *slot = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    done.into_iter().map(|v| v.unwrap()).collect()
}

async fn sessions(s: &dyn Store) {
    let a = account("sess");
    s.create_account(&a).await.unwrap();
    let full = session(&a.id, "s-full", SessionState::Full);
    let pending = session(&a.id, "s-pending", SessionState::MfaPending);
    s.create_session(&full).await.unwrap();
    s.create_session(&pending).await.unwrap();
    assert_eq!(
        s.session_by_token_hash(b"hash-s-full").await.unwrap(),
        Some(full.clone())
    );
    assert_eq!(s.session_by_token_hash(b"nope").await.unwrap(), None);
    let listed = s.sessions_for_account(&a.id).await.unwrap();
    assert_eq!(listed.len(), 1, "challenges are not listed as sessions");
    s.touch_session("s-full", 1_500).await.unwrap();
    s.set_session_second_factor("s-full", 1_600).await.unwrap();
    let got = s
        .session_by_token_hash(b"hash-s-full")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (got.last_seen_at, got.second_factor_at),
        (1_600, Some(1_600))
    );
    // A challenge is consumed by deleting it: only one of two concurrent deletes wins.
    let (x, y) = tokio::join!(
        s.delete_session(&a.id, "s-pending"),
        s.delete_session(&a.id, "s-pending")
    );
    assert!(x.unwrap() ^ y.unwrap());
    assert!(!s.delete_session("other", "s-full").await.unwrap());
    let old = session(&a.id, "s-old", SessionState::Full);
    s.create_session(&old).await.unwrap();
    // s-old: last seen 1000; s-full: last seen 1600. Idle 30 min at 2_900 removes only s-old.
    assert_eq!(s.purge_expired_sessions(2_900, 1_800).await.unwrap(), 1);
    assert_eq!(s.delete_sessions_for_account(&a.id).await.unwrap(), 1);

    // A password change ends every other session and challenge of the account, and only those.
    let b = account("sess-others");
    s.create_account(&b).await.unwrap();
    for (id, state) in [
        ("o-keep", SessionState::Full),
        ("o-full", SessionState::Full),
        ("o-pending", SessionState::MfaPending),
        ("o-recovery", SessionState::Recovery),
    ] {
        s.create_session(&session(&b.id, id, state)).await.unwrap();
    }
    let c = account("sess-others-c");
    s.create_account(&c).await.unwrap();
    s.create_session(&session(&c.id, "o-other-account", SessionState::Full))
        .await
        .unwrap();
    assert_eq!(s.delete_other_sessions(&b.id, "o-keep").await.unwrap(), 3);
    assert_eq!(s.delete_other_sessions(&b.id, "o-keep").await.unwrap(), 0);
    let left: Vec<String> = s
        .sessions_for_account(&b.id)
        .await
        .unwrap()
        .into_iter()
        .map(|x| x.id)
        .collect();
    assert_eq!(left, vec!["o-keep".to_string()]);
    assert!(s
        .session_by_token_hash(b"hash-o-other-account")
        .await
        .unwrap()
        .is_some());
}

async fn setup_tokens(s: &dyn Store) {
    let a = account("setup");
    s.create_account(&a).await.unwrap();
    s.create_setup_token(b"tok", &a.id, 5_000).await.unwrap();
    s.create_setup_token(b"old", &a.id, 100).await.unwrap();
    assert_eq!(s.consume_setup_token(b"old", 200).await.unwrap(), None);
    assert_eq!(s.consume_setup_token(b"missing", 200).await.unwrap(), None);
    assert_eq!(s.setup_token_account(b"old", 200).await.unwrap(), None);
    assert_eq!(
        s.setup_token_account(b"tok", 200).await.unwrap(),
        Some(a.id.clone())
    );
    assert_eq!(
        s.consume_setup_token(b"tok", 200).await.unwrap(),
        Some(a.id.clone())
    );
    assert_eq!(
        s.consume_setup_token(b"tok", 201).await.unwrap(),
        None,
        "single use"
    );
}

async fn app_keys(s: &dyn Store) {
    let k = AppKeyRecord {
        id: "k1".into(),
        name: "vpn".into(),
        key_hash: b"keyhash".to_vec(),
        created_at: 1,
        created_by: Some("root".into()),
        revoked_at: None,
        allow_root: false,
        allow_no_device: false,
    };
    s.create_app_key(&k).await.unwrap();
    assert_eq!(
        s.app_key_by_hash(b"keyhash").await.unwrap(),
        Some(k.clone())
    );
    assert_eq!(s.app_key_by_hash(b"other").await.unwrap(), None);
    let rooted = AppKeyRecord {
        id: "k2".into(),
        name: "sso".into(),
        key_hash: b"keyhash2".to_vec(),
        created_at: 2,
        created_by: None,
        revoked_at: None,
        allow_root: true,
        allow_no_device: false,
    };
    s.create_app_key(&rooted).await.unwrap();
    // The PAM module's permission (migration 0014) is stored and read back on its own.
    let no_device = AppKeyRecord {
        id: "k3".into(),
        name: "pam".into(),
        key_hash: b"keyhash3".to_vec(),
        created_at: 3,
        created_by: Some("admin-cli".into()),
        revoked_at: None,
        allow_root: false,
        allow_no_device: true,
    };
    s.create_app_key(&no_device).await.unwrap();
    assert_eq!(
        s.app_key_by_hash(b"keyhash3").await.unwrap(),
        Some(no_device.clone())
    );
    assert_eq!(
        s.list_app_keys().await.unwrap(),
        vec![k.clone(), rooted.clone(), no_device.clone()]
    );
    // Revoking: once, effective at once on this node (the lookup above cached the key), the
    // other key untouched, the record kept with its revocation time.
    assert!(s.revoke_app_key("k1", 50).await.unwrap());
    assert!(!s.revoke_app_key("k1", 51).await.unwrap());
    assert!(!s.revoke_app_key("no-such-key", 51).await.unwrap());
    assert_eq!(s.app_key_by_hash(b"keyhash").await.unwrap(), None);
    assert_eq!(
        s.app_key_by_hash(b"keyhash2").await.unwrap(),
        Some(rooted.clone())
    );
    let revoked = AppKeyRecord {
        revoked_at: Some(50),
        ..k
    };
    assert_eq!(
        s.list_app_keys().await.unwrap(),
        vec![revoked, rooted, no_device]
    );
}

async fn audit(s: &dyn Store) {
    let mut ids = Vec::new();
    for (i, kind) in ["sign_in.password", "sign_in.mfa", "mfa.enable"]
        .iter()
        .enumerate()
    {
        let id = s
            .insert_audit(&NewAuditEvent {
                at: 10 + i as i64,
                account: Some(if i == 2 { "bob" } else { "ann" }.into()),
                actor: Some("ann".into()),
                client_addr: Some("127.0.0.1".into()),
                user_agent: Some("ua".into()),
                kind: (*kind).into(),
                result: "success".into(),
                detail: None,
            })
            .await
            .unwrap();
        ids.push(id);
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    let all = s
        .list_audit(&AuditFilter {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 3);
    let ann = s
        .list_audit(&AuditFilter {
            account: Some("ann".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ann.len(), 2);
    let sign_in = s
        .list_audit(&AuditFilter {
            kind: Some("sign_in.".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(sign_in.len(), 2);
    // Counting one account's events of one kind and result since a time (inclusive).
    let count = |account: &'static str, kind: &'static str, result: &'static str, since| {
        s.count_audit_since(account, kind, result, since)
    };
    assert_eq!(
        count("ann", "sign_in.password", "success", 0)
            .await
            .unwrap(),
        (1, Some(10))
    );
    assert_eq!(
        count("ann", "sign_in.mfa", "success", 11).await.unwrap(),
        (1, Some(11))
    );
    assert_eq!(
        count("ann", "sign_in.mfa", "success", 12).await.unwrap(),
        (0, None)
    );
    assert_eq!(
        count("ann", "sign_in.mfa", "failure", 0).await.unwrap(),
        (0, None)
    );
    assert_eq!(
        count("bob", "sign_in.mfa", "success", 0).await.unwrap(),
        (0, None)
    );
    let page = s
        .list_audit(&AuditFilter {
            after: Some(ids[0]),
            limit: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].id, ids[1]);
    assert_eq!(page[0].event.kind, "sign_in.mfa");

    // Concurrent events (written by group commit) all get distinct, increasing ids, and each is
    // stored with its own content before its insert returns.
    let events: Vec<NewAuditEvent> = (0..300)
        .map(|i| NewAuditEvent {
            at: 1_000 + i,
            account: Some(format!("burst{i}")),
            kind: "burst".into(),
            result: "success".into(),
            ..Default::default()
        })
        .collect();
    let ids: Vec<i64> = futures_join_all(events.iter().map(|e| s.insert_audit(e)))
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), 300);
    let stored = s
        .list_audit(&AuditFilter {
            kind: Some("burst".into()),
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(stored.len(), 300);
    for (e, id) in events.iter().zip(&ids) {
        let r = stored.iter().find(|r| r.id == *id).unwrap();
        assert_eq!(&r.event, e, "id {id} holds its own event");
    }
}

/// Text from requests (a NUL in a refused user name, a long detail) is stored in its bounded
/// form on both backends, and never fails the other events of its group commit.
async fn audit_text_from_requests(s: &dyn Store) {
    let hostile = NewAuditEvent {
        at: 5_000,
        account: Some("ro\0ot".into()),
        actor: Some("x".repeat(1000)),
        client_addr: Some("127.0.0.1".into()),
        user_agent: Some("agent\r\nforged: line".into()),
        kind: "control.text".into(),
        result: "failure".into(),
        detail: Some(format!("serial \0 {}", "d".repeat(2000))),
    };
    let plain = |i: i64| NewAuditEvent {
        at: 5_000 + i,
        account: Some("ann".into()),
        kind: "control.text".into(),
        result: "success".into(),
        ..Default::default()
    };
    let batch = [plain(1), hostile.clone(), plain(2)];
    let ids: Vec<i64> = futures_join_all(batch.iter().map(|e| s.insert_audit(e)))
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(ids.len(), 3);
    let stored = s
        .list_audit(&AuditFilter {
            kind: Some("control.text".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(stored.len(), 3);
    let h = stored.iter().find(|r| r.event.result == "failure").unwrap();
    assert_eq!(h.event, hostile.bounded());
    assert_eq!(h.event.account.as_deref(), Some("ro\u{FFFD}ot"));
    assert_eq!(
        h.event.user_agent.as_deref(),
        Some("agent\u{FFFD}\u{FFFD}forged: line")
    );
    let detail = h.event.detail.as_deref().unwrap();
    assert_eq!(detail.chars().count(), super::AUDIT_DETAIL_MAX);
    assert!(detail.starts_with("serial \u{FFFD} ddd") && detail.ends_with('…'));
    assert_eq!(
        h.event.actor.as_deref().map(|a| a.chars().count()),
        Some(super::AUDIT_NAME_MAX)
    );
    // Cut by characters, never inside one; short clean text is unchanged.
    let kana = super::audit_text(&"あ".repeat(600), super::AUDIT_DETAIL_MAX);
    assert_eq!(kana.chars().count(), super::AUDIT_DETAIL_MAX);
    assert_eq!(super::audit_text("alice", super::AUDIT_NAME_MAX), "alice");
}

async fn audit_by_detail(s: &dyn Store) {
    // Counting by detail as well: contact codes sent per channel (detail `email` / `phone`).
    for (at, result, detail) in [
        (100, "success", Some("email")),
        (101, "success", Some("phone")),
        (102, "success", Some("email")),
        (103, "refused_limit", Some("email")),
        (104, "success", None),
    ] {
        s.insert_audit(&NewAuditEvent {
            at,
            account: Some("dora".into()),
            actor: Some("dora".into()),
            kind: "contact.verify_start".into(),
            result: result.into(),
            detail: detail.map(str::to_string),
            ..Default::default()
        })
        .await
        .unwrap();
    }
    let count = |detail: &'static str, since| {
        s.count_audit_detail_since("dora", "contact.verify_start", "success", detail, since)
    };
    assert_eq!(count("email", 0).await.unwrap(), (2, Some(100)));
    assert_eq!(count("email", 101).await.unwrap(), (1, Some(102)));
    assert_eq!(count("phone", 0).await.unwrap(), (1, Some(101)));
    assert_eq!(count("phone", 102).await.unwrap(), (0, None));
    assert_eq!(
        s.count_audit_detail_since("eve", "contact.verify_start", "success", "email", 0)
            .await
            .unwrap(),
        (0, None)
    );
}
