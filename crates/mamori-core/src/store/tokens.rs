//! Storage of the hardware OTP token inventory (docs/security-keys.md). A separate trait,
//! [`TokenStore`], that every [`super::Store`] also implements; the SQL is written once
//! (portable `$n` parameters) in a macro instantiated for both backends, and one suite runs
//! against both.
//!
//! Atomicity: an import is one transaction (a file is taken whole or not at all); an assignment
//! is one transaction that counts the device against the account's limit, inserts the device
//! row and claims the token only if it is still free, so two requests (on any nodes) cannot
//! assign one token twice.

use async_trait::async_trait;

use crate::clock::UnixTime;
use crate::error::{Error, Result};
use crate::store::{DeviceRecord, Redacted};

/// Tokens inserted per statement during an import (14 parameters each, well under SQLite's and
/// PostgreSQL's parameter limits).
const IMPORT_CHUNK: usize = 200;

/// A token of the inventory. The secret is stored only sealed with the server key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// UUID; `hw_token:ID` is the associated data of the sealed secret.
    pub id: String,
    /// The vendor's serial number (unique in the inventory).
    pub serial: String,
    /// Manufacturer, if the file said.
    pub manufacturer: Option<String>,
    /// Model, if the file said.
    pub model: Option<String>,
    /// `hotp` or `totp`.
    pub otp_type: String,
    /// `SHA1`, `SHA256` or `SHA512`.
    pub algorithm: String,
    /// Code length.
    pub digits: i64,
    /// TOTP period in seconds (30 for HOTP tokens, unused).
    pub period: i64,
    /// HOTP: the next counter value according to the vendor (0 for TOTP).
    pub counter: i64,
    /// TOTP: the vendor's measured drift in steps (informational).
    pub time_drift: i64,
    /// The seed sealed with the server key.
    pub secret_sealed: Redacted<Vec<u8>>,
    /// Import time.
    pub imported_at: UnixTime,
    /// Who imported it.
    pub imported_by: Option<String>,
    /// The device row it is assigned as, if any.
    pub device_id: Option<String>,
}

/// A token with the user it is assigned to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenListing {
    /// The token.
    pub token: TokenRecord,
    /// The user name of the device's owner, when assigned.
    pub assigned_to: Option<String>,
    /// The device's name, when assigned.
    pub device_name: Option<String>,
}

/// Storage of the token inventory.
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// Inserts all tokens in one transaction; `Conflict` naming a serial already in the
    /// inventory, and then nothing is inserted.
    async fn tokens_import(&self, tokens: &[TokenRecord]) -> Result<()>;
    /// Tokens ordered by serial, after `after` (exclusive), at most `limit` (1..=1000).
    async fn tokens_list(&self, after: Option<&str>, limit: i64) -> Result<Vec<TokenListing>>;
    /// One token by serial.
    async fn token_by_serial(&self, serial: &str) -> Result<Option<TokenListing>>;
    /// Number of tokens, and of those assigned.
    async fn tokens_count(&self) -> Result<(i64, i64)>;
    /// Assigns a free token: adds `device` (already enabled) within `max_devices`
    /// (`DeviceLimitReached`), `Conflict` if the device name is taken or the token is no longer
    /// free; nothing changes on any error.
    async fn token_assign(
        &self,
        token_id: &str,
        device: &DeviceRecord,
        max_devices: i64,
    ) -> Result<()>;
}

const TOKEN_COLS: &str = "t.id, t.serial, t.manufacturer, t.model, t.otp_type, t.algorithm, \
     t.digits, t.period, t.counter, t.time_drift, t.secret_sealed, t.imported_at, t.imported_by, \
     t.device_id, a.name AS assigned_to, d.name AS device_name";
const TOKEN_FROM: &str = "hw_tokens t LEFT JOIN devices d ON d.id = t.device_id \
     LEFT JOIN accounts a ON a.id = d.account_id";

macro_rules! impl_token_store {
    ($store:ty, $row:ty) => {
        const _: () = {
            use sqlx::Row as _;

            fn listing_from_row(r: &$row) -> Result<TokenListing> {
                Ok(TokenListing {
                    token: TokenRecord {
                        id: r.try_get("id")?,
                        serial: r.try_get("serial")?,
                        manufacturer: r.try_get("manufacturer")?,
                        model: r.try_get("model")?,
                        otp_type: r.try_get("otp_type")?,
                        algorithm: r.try_get("algorithm")?,
                        digits: r.try_get("digits")?,
                        period: r.try_get("period")?,
                        counter: r.try_get("counter")?,
                        time_drift: r.try_get("time_drift")?,
                        secret_sealed: Redacted::new(r.try_get("secret_sealed")?),
                        imported_at: r.try_get("imported_at")?,
                        imported_by: r.try_get("imported_by")?,
                        device_id: r.try_get("device_id")?,
                    },
                    assigned_to: r.try_get("assigned_to")?,
                    device_name: r.try_get("device_name")?,
                })
            }

            #[async_trait]
            impl TokenStore for $store {
                async fn tokens_import(&self, tokens: &[TokenRecord]) -> Result<()> {
                    // Name a serial that is already there (checked before the transaction so
                    // that the transaction's first statement is a write: SQLite then waits for
                    // the write lock instead of failing a read-to-write upgrade).
                    for chunk in tokens.chunks(IMPORT_CHUNK) {
                        let marks: Vec<String> =
                            (1..=chunk.len()).map(|i| format!("${i}")).collect();
                        let sql = format!(
                            "SELECT serial FROM hw_tokens WHERE serial IN ({}) ORDER BY serial LIMIT 1",
                            marks.join(", ")
                        );
                        let mut q = sqlx::query(&sql);
                        for t in chunk {
                            q = q.bind(&t.serial);
                        }
                        if let Some(r) = q.fetch_optional(self.pool()).await? {
                            let serial: String = r.try_get("serial")?;
                            return Err(Error::Conflict(format!(
                                "token serial {serial:?} is already in the inventory"
                            )));
                        }
                    }
                    let mut tx = self.writer().begin().await?;
                    for chunk in tokens.chunks(IMPORT_CHUNK) {
                        let rows: Vec<String> = (0..chunk.len())
                            .map(|i| {
                                let b = i * 13;
                                let marks: Vec<String> =
                                    (1..=13).map(|k| format!("${}", b + k)).collect();
                                format!("({})", marks.join(", "))
                            })
                            .collect();
                        let sql = format!(
                            "INSERT INTO hw_tokens (id, serial, manufacturer, model, otp_type, \
                             algorithm, digits, period, counter, time_drift, secret_sealed, \
                             imported_at, imported_by) VALUES {}",
                            rows.join(", ")
                        );
                        let mut q = sqlx::query(&sql);
                        for t in chunk {
                            q = q
                                .bind(&t.id)
                                .bind(&t.serial)
                                .bind(&t.manufacturer)
                                .bind(&t.model)
                                .bind(&t.otp_type)
                                .bind(&t.algorithm)
                                .bind(t.digits)
                                .bind(t.period)
                                .bind(t.counter)
                                .bind(t.time_drift)
                                .bind(t.secret_sealed.expose())
                                .bind(t.imported_at)
                                .bind(&t.imported_by);
                        }
                        // A concurrent import of the same serial loses here; the transaction
                        // rolls back on drop, leaving nothing of this file.
                        q.execute(&mut *tx)
                            .await
                            .map_err(|e| super::map_unique(e, "a token with one of these serials"))?;
                    }
                    tx.commit().await?;
                    Ok(())
                }

                async fn tokens_list(
                    &self,
                    after: Option<&str>,
                    limit: i64,
                ) -> Result<Vec<TokenListing>> {
                    let rows = sqlx::query(&format!(
                        "SELECT {TOKEN_COLS} FROM {TOKEN_FROM} \
                         WHERE t.serial > $1 ORDER BY t.serial LIMIT $2"
                    ))
                    .bind(after.unwrap_or(""))
                    .bind(limit.clamp(1, 1000))
                    .fetch_all(self.pool())
                    .await?;
                    rows.iter().map(listing_from_row).collect()
                }

                async fn token_by_serial(&self, serial: &str) -> Result<Option<TokenListing>> {
                    let row = sqlx::query(&format!(
                        "SELECT {TOKEN_COLS} FROM {TOKEN_FROM} WHERE t.serial = $1"
                    ))
                    .bind(serial)
                    .fetch_optional(self.pool())
                    .await?;
                    row.as_ref().map(listing_from_row).transpose()
                }

                async fn tokens_count(&self) -> Result<(i64, i64)> {
                    let r = sqlx::query(
                        "SELECT COUNT(*) AS n, COUNT(device_id) AS assigned FROM hw_tokens",
                    )
                    .fetch_one(self.pool())
                    .await?;
                    Ok((r.try_get("n")?, r.try_get("assigned")?))
                }

                async fn token_assign(
                    &self,
                    token_id: &str,
                    d: &DeviceRecord,
                    max_devices: i64,
                ) -> Result<()> {
                    let mut tx = self.writer().begin().await?;
                    <$store>::insert_device_within_limit(&mut tx, d, max_devices).await?;
                    let claimed = sqlx::query(
                        "UPDATE hw_tokens SET device_id = $1 WHERE id = $2 AND device_id IS NULL",
                    )
                    .bind(&d.id)
                    .bind(token_id)
                    .execute(&mut *tx)
                    .await?;
                    if claimed.rows_affected() == 0 {
                        return Err(Error::Conflict(
                            "this token is already assigned to a user".into(),
                        ));
                    }
                    tx.commit().await?;
                    Ok(())
                }
            }
        };
    };
}

impl_token_store!(super::sqlite::SqliteStore, sqlx::sqlite::SqliteRow);
impl_token_store!(super::postgres::PgStore, sqlx::postgres::PgRow);

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

    fn token(id: &str, serial: &str) -> TokenRecord {
        TokenRecord {
            id: id.into(),
            serial: serial.into(),
            manufacturer: Some("Acme".into()),
            model: None,
            otp_type: "hotp".into(),
            algorithm: "SHA1".into(),
            digits: 6,
            period: 30,
            counter: 7,
            time_drift: 0,
            secret_sealed: Redacted::new(vec![1, 2, 3]),
            imported_at: 100,
            imported_by: Some("admin-cli".into()),
            device_id: None,
        }
    }

    fn device(id: &str, account: &str, name: &str) -> DeviceRecord {
        DeviceRecord {
            id: id.into(),
            account_id: account.into(),
            kind: DeviceKind::HardwareOtp,
            name: name.into(),
            serial: "S".into(),
            created_at: 5,
            enabled_at: Some(5),
            last_used_at: None,
            secret_sealed: Some(Redacted::new(vec![9])),
            otp_type: "hotp".into(),
            algorithm: "SHA1".into(),
            digits: 6,
            period: 30,
            drift: 0,
            last_step: Some(8),
            credential: None,
        }
    }

    pub async fn run_all(s: &dyn Store) {
        import_is_all_or_nothing(s).await;
        listing_pages_by_serial(s).await;
        assignment(s).await;
        concurrent_claims(s).await;
    }

    /// Six requests (as if on six nodes) claim one token for six accounts at once: exactly one
    /// wins, and the losers keep no device and no device count.
    async fn concurrent_claims(s: &dyn Store) {
        let mut accounts = Vec::new();
        for i in 0..6 {
            accounts.push(account(s, &format!("race-{i}")).await);
        }
        let devices: Vec<DeviceRecord> = accounts
            .iter()
            .enumerate()
            .map(|(i, a)| device(&format!("race-dev-{i}"), a, "fob"))
            .collect();
        let claim = |i: usize| s.token_assign("imp-100", &devices[i], 8);
        let (r0, r1, r2, r3, r4, r5) =
            tokio::join!(claim(0), claim(1), claim(2), claim(3), claim(4), claim(5));
        let results = [r0, r1, r2, r3, r4, r5];
        let wins = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(wins, 1, "{results:?}");
        for (i, r) in results.iter().enumerate() {
            let n = s.devices_for_account(&accounts[i]).await.unwrap().len();
            match r {
                Ok(()) => assert_eq!(n, 1),
                Err(Error::Conflict(_)) => {
                    assert_eq!(n, 0);
                    // The count was rolled back: one device still fits under a limit of 1.
                    let other = format!("imp-{}", 101 + i);
                    let probe = device(&format!("probe-{i}"), &accounts[i], "p");
                    s.token_assign(&other, &probe, 1).await.unwrap();
                }
                Err(e) => panic!("claim {i}: {e:?}"),
            }
        }
        let holder = s.token_by_serial("IMP0100").await.unwrap().unwrap();
        assert!(holder.assigned_to.unwrap().starts_with("race-"));
    }

    async fn import_is_all_or_nothing(s: &dyn Store) {
        // More than one chunk, so the transaction spans several statements.
        let many: Vec<TokenRecord> = (0..450)
            .map(|i| token(&format!("imp-{i}"), &format!("IMP{i:04}")))
            .collect();
        s.tokens_import(&many).await.unwrap();
        assert_eq!(s.tokens_count().await.unwrap(), (450, 0));
        // One serial already present: refused, and none of the new ones stored.
        let clash = vec![token("new-1", "NEW1"), token("new-2", "IMP0449")];
        match s.tokens_import(&clash).await {
            Err(Error::Conflict(m)) => assert!(m.contains("IMP0449"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert!(s.token_by_serial("NEW1").await.unwrap().is_none());
        // A duplicate inside one file (the parsers refuse it first, but the store holds too).
        let dup = vec![token("dup-1", "DUP"), token("dup-2", "DUP")];
        assert!(matches!(
            s.tokens_import(&dup).await,
            Err(Error::Conflict(_))
        ));
        assert!(s.token_by_serial("DUP").await.unwrap().is_none());
        assert_eq!(s.tokens_count().await.unwrap(), (450, 0));
        let got = s.token_by_serial("IMP0007").await.unwrap().unwrap();
        assert_eq!(got.token, token("imp-7", "IMP0007"));
        assert_eq!(got.assigned_to, None);
    }

    async fn listing_pages_by_serial(s: &dyn Store) {
        let page = s.tokens_list(None, 2).await.unwrap();
        let serials: Vec<&str> = page.iter().map(|t| t.token.serial.as_str()).collect();
        assert_eq!(serials, ["IMP0000", "IMP0001"]);
        let next = s.tokens_list(Some("IMP0001"), 1000).await.unwrap();
        assert_eq!(next.len(), 448);
        assert_eq!(next[0].token.serial, "IMP0002");
    }

    async fn assignment(s: &dyn Store) {
        let a = account(s, "tok-user").await;
        let b = account(s, "tok-other").await;
        s.token_assign("imp-1", &device("dev-1", &a, "token1"), 8)
            .await
            .unwrap();
        let got = s.token_by_serial("IMP0001").await.unwrap().unwrap();
        assert_eq!(got.token.device_id.as_deref(), Some("dev-1"));
        assert_eq!(got.assigned_to.as_deref(), Some("tok-user"));
        assert_eq!(got.device_name.as_deref(), Some("token1"));
        let d = s.device(&a, "dev-1").await.unwrap().unwrap();
        assert_eq!(d.kind, DeviceKind::HardwareOtp);
        assert_eq!(d.last_step, Some(8));
        // The same token again (another user, another node): refused, no device left behind.
        assert!(matches!(
            s.token_assign("imp-1", &device("dev-2", &b, "t"), 8).await,
            Err(Error::Conflict(_))
        ));
        assert!(s.devices_for_account(&b).await.unwrap().is_empty());
        // The device count was rolled back too: b can still have exactly one device at limit 1.
        s.token_assign("imp-2", &device("dev-3", &b, "t"), 1)
            .await
            .unwrap();
        assert!(matches!(
            s.token_assign("imp-3", &device("dev-4", &b, "t2"), 1).await,
            Err(Error::DeviceLimitReached(1))
        ));
        assert!(s
            .token_by_serial("IMP0003")
            .await
            .unwrap()
            .unwrap()
            .token
            .device_id
            .is_none());
        // Name taken.
        assert!(matches!(
            s.token_assign("imp-3", &device("dev-5", &a, "token1"), 8)
                .await,
            Err(Error::Conflict(_))
        ));
        assert_eq!(s.tokens_count().await.unwrap(), (450, 2));
        // Deleting the device frees the token for another assignment.
        assert!(s.delete_device(&a, "dev-1").await.unwrap());
        let got = s.token_by_serial("IMP0001").await.unwrap().unwrap();
        assert_eq!(got.token.device_id, None);
        assert_eq!(got.assigned_to, None);
        // And so does an administrator's MFA reset.
        s.reset_mfa(&b).await.unwrap();
        assert_eq!(s.tokens_count().await.unwrap(), (450, 0));
    }

    #[tokio::test]
    async fn token_suite_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::sqlite::SqliteStore::open(&dir.path().join("t.db"))
            .await
            .unwrap();
        run_all(&store).await;
    }

    #[tokio::test]
    async fn token_suite_on_postgres() {
        let db = crate::testing::TempDatabase::create().await.unwrap();
        let store = crate::store::postgres::PgStore::connect(&db.url)
            .await
            .unwrap();
        run_all(&store).await;
        store.pool().close().await;
    }
}
