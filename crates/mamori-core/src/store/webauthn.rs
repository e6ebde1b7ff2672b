//! Storage of security keys (WebAuthn/FIDO2, docs/security-keys.md). A separate trait,
//! [`WebauthnStore`], that every [`super::Store`] also implements; the SQL is written once
//! (portable `$n` parameters) in a macro instantiated for both backends, and one suite runs
//! against both.
//!
//! Atomicity, so that the rules hold across server nodes:
//! - a ceremony is consumed by one `DELETE … RETURNING` that also checks its session, kind and
//!   expiry: of two finishes (on any nodes) exactly one gets the state;
//! - registering counts the device against the account's limit, inserts the device and claims
//!   the credential id in one transaction (a credential id belongs to one device only);
//! - a use is accepted by one conditional update on the stored signature counter: a counter
//!   that does not move forward (the sign of a cloned authenticator) changes nothing.

use async_trait::async_trait;

use crate::clock::UnixTime;
use crate::error::{Error, Result, StoreError};
use crate::store::{DeviceRecord, Redacted};

/// What a ceremony is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CeremonyKind {
    /// Adding a security key to the session's account.
    Register,
    /// Proving possession of a registered key (sign-in).
    Authenticate,
}

impl CeremonyKind {
    /// Stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            CeremonyKind::Register => "register",
            CeremonyKind::Authenticate => "authenticate",
        }
    }
}

/// A ceremony between its begin and finish requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CeremonyRecord {
    /// Random id (UUID) handed to the client.
    pub id: String,
    /// The account.
    pub account_id: String,
    /// The session (registration) or sign-in challenge (authentication) that began it.
    pub session_id: String,
    /// Kind.
    pub kind: CeremonyKind,
    /// For a registration: the name the new device gets.
    pub device_name: Option<String>,
    /// The relying party's serialized ceremony state (challenge, allowed credentials).
    pub state: Redacted<Vec<u8>>,
    /// Creation time.
    pub created_at: UnixTime,
    /// After this the ceremony cannot be finished.
    pub expires_at: UnixTime,
}

/// Storage of security keys and their ceremonies.
#[async_trait]
pub trait WebauthnStore: Send + Sync {
    /// Stores a ceremony unless the account already has `max_open` unexpired ones (then
    /// false), and drops ceremonies that expired before `c.created_at`. The count and the insert
    /// are one statement; it bounds what one account can make the server store.
    async fn webauthn_ceremony_create(&self, c: &CeremonyRecord, max_open: i64) -> Result<bool>;
    /// Consumes the ceremony `id` if it belongs to `session_id`, is of `kind` and has not
    /// expired at `now`, in one statement: only one caller ever gets it.
    async fn webauthn_ceremony_take(
        &self,
        id: &str,
        session_id: &str,
        kind: CeremonyKind,
        now: UnixTime,
    ) -> Result<Option<CeremonyRecord>>;
    /// Adds a security key: the device (already enabled) within `max_devices`
    /// (`DeviceLimitReached`) and its credential id; `Conflict` if the name is taken or the
    /// credential is already registered. Nothing changes on any error.
    async fn webauthn_register(
        &self,
        device: &DeviceRecord,
        credential_id: &[u8],
        max_devices: i64,
    ) -> Result<()>;
    /// The device of a credential id.
    async fn webauthn_device_of(&self, credential_id: &[u8]) -> Result<Option<String>>;
    /// The counter rule as one conditional update: stores `counter`, the updated `credential`
    /// and the use time only if the key's counter moves forward (`counter` greater than the
    /// stored one), or both are zero (authenticators without a counter). False otherwise:
    /// a possible clone, or another request that used the same counter value first.
    async fn webauthn_accept_use(
        &self,
        device_id: &str,
        counter: i64,
        credential: &[u8],
        now: UnixTime,
    ) -> Result<bool>;
}

macro_rules! impl_webauthn_store {
    ($store:ty, $row:ty) => {
        const _: () = {
            use sqlx::Row as _;

            fn ceremony_from_row(r: &$row) -> Result<CeremonyRecord> {
                let kind: String = r.try_get("kind")?;
                Ok(CeremonyRecord {
                    id: r.try_get("id")?,
                    account_id: r.try_get("account_id")?,
                    session_id: r.try_get("session_id")?,
                    kind: match kind.as_str() {
                        "register" => CeremonyKind::Register,
                        "authenticate" => CeremonyKind::Authenticate,
                        other => {
                            return Err(StoreError::Corrupt(format!("unknown ceremony kind {other:?}")).into())
                        }
                    },
                    device_name: r.try_get("device_name")?,
                    state: Redacted::new(r.try_get("state")?),
                    created_at: r.try_get("created_at")?,
                    expires_at: r.try_get("expires_at")?,
                })
            }

            #[async_trait]
            impl WebauthnStore for $store {
                async fn webauthn_ceremony_create(
                    &self,
                    c: &CeremonyRecord,
                    max_open: i64,
                ) -> Result<bool> {
                    sqlx::query("DELETE FROM webauthn_ceremonies WHERE expires_at <= $1")
                        .bind(c.created_at)
                        .execute(self.writer())
                        .await?;
                    let r = sqlx::query(
                        "INSERT INTO webauthn_ceremonies (id, account_id, session_id, kind, \
                         device_name, state, created_at, expires_at) \
                         SELECT $1, $2, $3, $4, $5, $6, $7, $8 WHERE (SELECT COUNT(*) FROM \
                         webauthn_ceremonies WHERE account_id = $2 AND expires_at > $7) < $9",
                    )
                    .bind(&c.id)
                    .bind(&c.account_id)
                    .bind(&c.session_id)
                    .bind(c.kind.as_str())
                    .bind(&c.device_name)
                    .bind(c.state.expose())
                    .bind(c.created_at)
                    .bind(c.expires_at)
                    .bind(max_open)
                    .execute(self.writer())
                    .await
                    .map_err(|e| super::map_unique(e, "a ceremony with this id"))?;
                    Ok(r.rows_affected() == 1)
                }

                async fn webauthn_ceremony_take(
                    &self,
                    id: &str,
                    session_id: &str,
                    kind: CeremonyKind,
                    now: UnixTime,
                ) -> Result<Option<CeremonyRecord>> {
                    // Single use across nodes: the row is gone once one request has it.
                    let row = sqlx::query(
                        "DELETE FROM webauthn_ceremonies WHERE id = $1 AND session_id = $2 \
                         AND kind = $3 AND expires_at > $4 RETURNING id, account_id, \
                         session_id, kind, device_name, state, created_at, expires_at",
                    )
                    .bind(id)
                    .bind(session_id)
                    .bind(kind.as_str())
                    .bind(now)
                    .fetch_optional(self.writer())
                    .await?;
                    row.as_ref().map(ceremony_from_row).transpose()
                }

                async fn webauthn_register(
                    &self,
                    d: &DeviceRecord,
                    credential_id: &[u8],
                    max_devices: i64,
                ) -> Result<()> {
                    let mut tx = self.writer().begin().await?;
                    <$store>::insert_device_within_limit(&mut tx, d, max_devices).await?;
                    sqlx::query(
                        "INSERT INTO webauthn_credentials (credential_id, device_id) VALUES ($1, $2)",
                    )
                    .bind(credential_id)
                    .bind(&d.id)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| match super::map_unique(e, "") {
                        Error::Conflict(_) => {
                            Error::Conflict("this security key is already registered".into())
                        }
                        other => other,
                    })?;
                    tx.commit().await?;
                    Ok(())
                }

                async fn webauthn_device_of(&self, credential_id: &[u8]) -> Result<Option<String>> {
                    let row = sqlx::query(
                        "SELECT device_id FROM webauthn_credentials WHERE credential_id = $1",
                    )
                    .bind(credential_id)
                    .fetch_optional(self.pool())
                    .await?;
                    Ok(row.map(|r| r.try_get("device_id")).transpose()?)
                }

                async fn webauthn_accept_use(
                    &self,
                    device_id: &str,
                    counter: i64,
                    credential: &[u8],
                    now: UnixTime,
                ) -> Result<bool> {
                    // W3C WebAuthn Level 2, section 7.2 step 21: a counter that is not greater
                    // than the stored one (when either is nonzero) signals a possible clone.
                    let r = sqlx::query(
                        "UPDATE devices SET last_step = $2, credential = $3, last_used_at = $4 \
                         WHERE id = $1 AND kind = 'security_key' AND enabled_at IS NOT NULL \
                         AND (COALESCE(last_step, 0) < $2 \
                              OR ($2 = 0 AND COALESCE(last_step, 0) = 0))",
                    )
                    .bind(device_id)
                    .bind(counter)
                    .bind(credential)
                    .bind(now)
                    .execute(self.writer())
                    .await?;
                    Ok(r.rows_affected() == 1)
                }
            }
        };
    };
}

impl_webauthn_store!(super::sqlite::SqliteStore, sqlx::sqlite::SqliteRow);
impl_webauthn_store!(super::postgres::PgStore, sqlx::postgres::PgRow);

/// The shared suite: every check runs against both backends.
#[cfg(test)]
pub(crate) mod suite {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )]
    use super::*;
    use crate::store::{AccountRecord, DeviceKind, Role, Store};

    async fn account(s: &dyn Store, name: &str) -> String {
        let id = format!("id-{name}");
        s.create_account(&AccountRecord {
            id: id.clone(),
            name: name.into(),
            role: Role::User,
            email: None,
            phone: None,
            password_hash: None,
            password_changed_at: None,
            created_at: 1,
            mfa_failures: 0,
            mfa_last_failure_at: None,
            locked_at: None,
        })
        .await
        .unwrap();
        id
    }

    fn key(id: &str, account: &str, name: &str) -> DeviceRecord {
        DeviceRecord {
            id: id.into(),
            account_id: account.into(),
            kind: DeviceKind::SecurityKey,
            name: name.into(),
            serial: "webauthn".into(),
            created_at: 5,
            enabled_at: Some(5),
            last_used_at: None,
            secret_sealed: None,
            otp_type: "totp".into(),
            algorithm: "SHA1".into(),
            digits: 6,
            period: 30,
            drift: 0,
            last_step: Some(0),
            credential: Some(vec![1, 2, 3]),
        }
    }

    fn ceremony(id: &str, account: &str, session: &str, kind: CeremonyKind) -> CeremonyRecord {
        CeremonyRecord {
            id: id.into(),
            account_id: account.into(),
            session_id: session.into(),
            kind,
            device_name: Some("key".into()),
            state: Redacted::new(vec![7, 7, 7]),
            created_at: 100,
            expires_at: 400,
        }
    }

    pub async fn run_all(s: &dyn Store) {
        open_ceremonies_are_bounded_per_account(s).await;
        ceremonies_are_bound_single_use_and_expire(s).await;
        concurrent_finishes(s).await;
        registration(s).await;
        counter_rule(s).await;
    }

    async fn open_ceremonies_are_bounded_per_account(s: &dyn Store) {
        let a = account(s, "wa-flood").await;
        let b = account(s, "wa-calm").await;
        for i in 0..3 {
            let c = ceremony(&format!("f-{i}"), &a, "sess-f", CeremonyKind::Authenticate);
            assert!(s.webauthn_ceremony_create(&c, 3).await.unwrap());
        }
        // The fourth open one is refused and not stored; another account is not affected.
        let c = ceremony("f-3", &a, "sess-f", CeremonyKind::Authenticate);
        assert!(!s.webauthn_ceremony_create(&c, 3).await.unwrap());
        assert!(s
            .webauthn_ceremony_take("f-3", "sess-f", CeremonyKind::Authenticate, 200)
            .await
            .unwrap()
            .is_none());
        let other = ceremony("g-0", &b, "sess-g", CeremonyKind::Authenticate);
        assert!(s.webauthn_ceremony_create(&other, 3).await.unwrap());
        // A finished one frees a place; expired ones do not count.
        assert!(s
            .webauthn_ceremony_take("f-0", "sess-f", CeremonyKind::Authenticate, 200)
            .await
            .unwrap()
            .is_some());
        assert!(s.webauthn_ceremony_create(&c, 3).await.unwrap());
        let mut later = ceremony("f-4", &a, "sess-f", CeremonyKind::Authenticate);
        later.created_at = 400;
        later.expires_at = 700;
        assert!(s.webauthn_ceremony_create(&later, 3).await.unwrap());
    }

    async fn ceremonies_are_bound_single_use_and_expire(s: &dyn Store) {
        let a = account(s, "wa-cer").await;
        let c = ceremony("c-1", &a, "sess-1", CeremonyKind::Register);
        assert!(s.webauthn_ceremony_create(&c, 16).await.unwrap());
        // Another session, the other kind, or too late: nothing, and the ceremony stays.
        let take = |sess: &'static str, kind, now| s.webauthn_ceremony_take("c-1", sess, kind, now);
        assert!(take("sess-2", CeremonyKind::Register, 200)
            .await
            .unwrap()
            .is_none());
        assert!(take("sess-1", CeremonyKind::Authenticate, 200)
            .await
            .unwrap()
            .is_none());
        assert!(take("sess-1", CeremonyKind::Register, 400)
            .await
            .unwrap()
            .is_none());
        let got = take("sess-1", CeremonyKind::Register, 399).await.unwrap();
        assert_eq!(got, Some(c));
        // Single use.
        assert!(take("sess-1", CeremonyKind::Register, 200)
            .await
            .unwrap()
            .is_none());
        // Expired ceremonies are dropped when a new one is stored.
        let old = ceremony("c-old", &a, "sess-1", CeremonyKind::Authenticate);
        assert!(s.webauthn_ceremony_create(&old, 16).await.unwrap());
        let mut later = ceremony("c-later", &a, "sess-1", CeremonyKind::Authenticate);
        later.created_at = 500;
        later.expires_at = 800;
        assert!(s.webauthn_ceremony_create(&later, 16).await.unwrap());
        assert!(s
            .webauthn_ceremony_take("c-old", "sess-1", CeremonyKind::Authenticate, 0)
            .await
            .unwrap()
            .is_none());
    }

    /// Six finishes of one ceremony at once (as if on six nodes): exactly one gets it.
    async fn concurrent_finishes(s: &dyn Store) {
        let a = account(s, "wa-race").await;
        let c = ceremony("c-race", &a, "sess-r", CeremonyKind::Authenticate);
        assert!(s.webauthn_ceremony_create(&c, 16).await.unwrap());
        let take = || s.webauthn_ceremony_take("c-race", "sess-r", CeremonyKind::Authenticate, 200);
        let (r0, r1, r2, r3, r4, r5) = tokio::join!(take(), take(), take(), take(), take(), take());
        let got = [r0, r1, r2, r3, r4, r5]
            .into_iter()
            .map(|r| r.unwrap())
            .filter(Option::is_some)
            .count();
        assert_eq!(got, 1);
    }

    async fn registration(s: &dyn Store) {
        let a = account(s, "wa-reg").await;
        let b = account(s, "wa-other").await;
        s.webauthn_register(&key("k-1", &a, "key1"), b"cred-1", 8)
            .await
            .unwrap();
        let d = s.device(&a, "k-1").await.unwrap().unwrap();
        assert_eq!(d.kind, DeviceKind::SecurityKey);
        assert_eq!(d.credential.as_deref(), Some(&[1u8, 2, 3][..]));
        assert_eq!(
            s.webauthn_device_of(b"cred-1").await.unwrap().as_deref(),
            Some("k-1")
        );
        // The same credential for another account: refused, nothing left behind.
        match s
            .webauthn_register(&key("k-2", &b, "key"), b"cred-1", 8)
            .await
        {
            Err(Error::Conflict(m)) => assert!(m.contains("already registered"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert!(s.devices_for_account(&b).await.unwrap().is_empty());
        // ... and its device count was rolled back: one key fits under a limit of 1.
        s.webauthn_register(&key("k-3", &b, "key"), b"cred-3", 1)
            .await
            .unwrap();
        assert!(matches!(
            s.webauthn_register(&key("k-4", &b, "key2"), b"cred-4", 1)
                .await,
            Err(Error::DeviceLimitReached(1))
        ));
        assert!(s.webauthn_device_of(b"cred-4").await.unwrap().is_none());
        // Name taken.
        assert!(matches!(
            s.webauthn_register(&key("k-5", &a, "key1"), b"cred-5", 8)
                .await,
            Err(Error::Conflict(_))
        ));
        assert!(s.webauthn_device_of(b"cred-5").await.unwrap().is_none());
        // Deleting the device frees its credential id.
        assert!(s.delete_device(&a, "k-1").await.unwrap());
        assert!(s.webauthn_device_of(b"cred-1").await.unwrap().is_none());
        s.webauthn_register(&key("k-6", &a, "key1"), b"cred-1", 8)
            .await
            .unwrap();
        // And so does an administrator's reset.
        s.reset_mfa(&b).await.unwrap();
        assert!(s.webauthn_device_of(b"cred-3").await.unwrap().is_none());
    }

    async fn counter_rule(s: &dyn Store) {
        let a = account(s, "wa-ctr").await;
        s.webauthn_register(&key("k-c", &a, "key"), b"cred-c", 8)
            .await
            .unwrap();
        // A key without a counter (always zero) may be used again and again.
        assert!(s.webauthn_accept_use("k-c", 0, b"v1", 10).await.unwrap());
        assert!(s.webauthn_accept_use("k-c", 0, b"v2", 11).await.unwrap());
        // Forward only.
        assert!(s.webauthn_accept_use("k-c", 5, b"v3", 12).await.unwrap());
        assert!(!s.webauthn_accept_use("k-c", 5, b"v4", 13).await.unwrap());
        assert!(!s.webauthn_accept_use("k-c", 4, b"v4", 13).await.unwrap());
        assert!(!s.webauthn_accept_use("k-c", 0, b"v4", 13).await.unwrap());
        let d = s.device(&a, "k-c").await.unwrap().unwrap();
        assert_eq!(d.last_step, Some(5));
        assert_eq!(d.credential.as_deref(), Some(&b"v3"[..]));
        assert_eq!(d.last_used_at, Some(12));
        assert!(s.webauthn_accept_use("k-c", 6, b"v5", 14).await.unwrap());
        // Two uses with the same new counter value (two nodes): one wins.
        let (x, y) = tokio::join!(
            s.webauthn_accept_use("k-c", 9, b"x", 15),
            s.webauthn_accept_use("k-c", 9, b"y", 15)
        );
        assert!(x.unwrap() ^ y.unwrap());
    }

    #[tokio::test]
    async fn webauthn_suite_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::sqlite::SqliteStore::open(&dir.path().join("t.db"))
            .await
            .unwrap();
        run_all(&store).await;
    }

    #[tokio::test]
    async fn webauthn_suite_on_postgres() {
        let db = crate::testing::TempDatabase::create().await.unwrap();
        let store = crate::store::postgres::PgStore::connect(&db.url)
            .await
            .unwrap();
        run_all(&store).await;
        store.pool().close().await;
    }
}
