//! Storage of the end-to-end-encrypted sync (docs/sync-protocol.md): the device registry, the
//! wrapped sync keys and the encrypted items. A separate trait, [`SyncStore`], that every
//! [`super::Store`] also implements; the SQL is written once (portable `$n` parameters,
//! `RETURNING`, `ON CONFLICT`) in a macro instantiated for both backends, and one suite
//! ([`suite`]) runs against both.
//!
//! Atomicity: a push is one transaction that first bumps the account's change sequence (taking
//! its row lock, so pushes of one account serialise and commit in sequence order on every
//! node), then stores each item with a conditional update on the expected revision.

use async_trait::async_trait;

use crate::clock::UnixTime;
use crate::error::{Error, Result};

/// A registered sync device. Only the SHA-256 of its token is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncDeviceRecord {
    /// UUID.
    pub id: String,
    /// Owner.
    pub account_id: String,
    /// Name given at registration.
    pub name: String,
    /// SHA-256 of the device token.
    pub token_hash: Vec<u8>,
    /// Registration time.
    pub created_at: UnixTime,
    /// Last authenticated request.
    pub last_seen_at: Option<UnixTime>,
    /// Revocation time.
    pub revoked_at: Option<UnixTime>,
}

/// The wrapped sync key of an account (opaque to the server).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncKeysRecord {
    /// Incremented on every change.
    pub version: i64,
    /// Wrap under Argon2id(passphrase).
    pub passphrase_wrap: String,
    /// Wrap under the recovery key.
    pub recovery_wrap: String,
    /// Last change.
    pub updated_at: UnixTime,
}

/// A stored item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncItemRecord {
    /// Item id.
    pub id: String,
    /// Revision (1 on creation).
    pub revision: i64,
    /// Account-wide change sequence number of the last change.
    pub seq: i64,
    /// Tombstone?
    pub deleted: bool,
    /// Ciphertext bytes.
    pub ciphertext: Vec<u8>,
    /// Server time of the last change.
    pub updated_at: UnixTime,
}

/// One item to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncPush {
    /// Item id.
    pub id: String,
    /// The revision the client based it on (0: a new item).
    pub expected_revision: i64,
    /// Tombstone?
    pub deleted: bool,
    /// Ciphertext bytes.
    pub ciphertext: Vec<u8>,
}

/// What happened to one pushed item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncPushOutcome {
    /// Stored with this revision and sequence number.
    Stored {
        /// New revision.
        revision: i64,
        /// Its sequence number.
        seq: i64,
    },
    /// The stored revision differs from the expected one: the current item.
    Conflict(SyncItemRecord),
}

/// Storage for sync. Implementations make each method atomic.
#[async_trait]
pub trait SyncStore: Send + Sync {
    /// Registers a device unless the account already has `max_devices` unrevoked ones.
    async fn sync_create_device(&self, d: &SyncDeviceRecord, max_devices: i64) -> Result<()>;
    /// The unrevoked device of a token hash.
    async fn sync_device_by_token_hash(&self, hash: &[u8]) -> Result<Option<SyncDeviceRecord>>;
    /// Records activity.
    async fn sync_touch_device(&self, id: &str, now: UnixTime) -> Result<()>;
    /// The account's devices, oldest first (revoked ones included).
    async fn sync_devices(&self, account_id: &str) -> Result<Vec<SyncDeviceRecord>>;
    /// Revokes one of the account's devices; false if none or already revoked.
    async fn sync_revoke_device(&self, account_id: &str, id: &str, now: UnixTime) -> Result<bool>;
    /// Revokes every unrevoked device of the account in one statement (the account's trust was
    /// reset: MFA reset, password change, end of a recovery session); returns how many.
    async fn sync_revoke_all_devices(&self, account_id: &str, now: UnixTime) -> Result<u64>;
    /// The account's wrapped keys.
    async fn sync_keys(&self, account_id: &str) -> Result<Option<SyncKeysRecord>>;
    /// Stores the wraps if the stored version is `expected_version` (0: none yet); a `None`
    /// recovery wrap keeps the stored one. Returns the new version, or `None` on a mismatch.
    async fn sync_put_keys(
        &self,
        account_id: &str,
        expected_version: i64,
        passphrase_wrap: &str,
        recovery_wrap: Option<&str>,
        now: UnixTime,
    ) -> Result<Option<i64>>;
    /// Up to `limit` items with a sequence number above `since`, in sequence order.
    async fn sync_pull(
        &self,
        account_id: &str,
        since: i64,
        limit: i64,
    ) -> Result<Vec<SyncItemRecord>>;
    /// Stores the items in one transaction. Refuses the whole push (`Conflict`, nothing
    /// stored) if new items would take the account past `max_items`.
    async fn sync_push(
        &self,
        account_id: &str,
        items: &[SyncPush],
        max_items: i64,
        now: UnixTime,
    ) -> Result<Vec<SyncPushOutcome>>;
}

const DEVICE_COLS: &str = "id, account_id, name, token_hash, created_at, last_seen_at, revoked_at";
const ITEM_COLS: &str = "id, revision, seq, deleted, ciphertext, updated_at";

macro_rules! impl_sync_store {
    ($store:ty, $row:ty) => {
        const _: () = {
            use sqlx::Row as _;

            fn device_from_row(r: &$row) -> Result<SyncDeviceRecord> {
                Ok(SyncDeviceRecord {
                    id: r.try_get("id")?,
                    account_id: r.try_get("account_id")?,
                    name: r.try_get("name")?,
                    token_hash: r.try_get("token_hash")?,
                    created_at: r.try_get("created_at")?,
                    last_seen_at: r.try_get("last_seen_at")?,
                    revoked_at: r.try_get("revoked_at")?,
                })
            }

            fn item_from_row(r: &$row) -> Result<SyncItemRecord> {
                Ok(SyncItemRecord {
                    id: r.try_get("id")?,
                    revision: r.try_get("revision")?,
                    seq: r.try_get("seq")?,
                    deleted: r.try_get::<i64, _>("deleted")? != 0,
                    ciphertext: r.try_get("ciphertext")?,
                    updated_at: r.try_get("updated_at")?,
                })
            }

            #[async_trait]
            impl SyncStore for $store {
                async fn sync_create_device(
                    &self,
                    d: &SyncDeviceRecord,
                    max_devices: i64,
                ) -> Result<()> {
                    // One conditional insert: the count and the insert cannot be split by
                    // another node's registration.
                    let r = sqlx::query(&format!(
                        "INSERT INTO sync_devices ({DEVICE_COLS}) \
                         SELECT $1, $2, $3, $4, $5, $6, $7 \
                         WHERE (SELECT COUNT(*) FROM sync_devices \
                                WHERE account_id = $2 AND revoked_at IS NULL) < $8"
                    ))
                    .bind(&d.id)
                    .bind(&d.account_id)
                    .bind(&d.name)
                    .bind(&d.token_hash)
                    .bind(d.created_at)
                    .bind(d.last_seen_at)
                    .bind(d.revoked_at)
                    .bind(max_devices)
                    .execute(self.writer())
                    .await
                    .map_err(|e| super::map_unique(e, "sync device"))?;
                    if r.rows_affected() == 0 {
                        return Err(Error::Conflict(format!(
                            "this account already has the maximum of {max_devices} sync devices: revoke one first"
                        )));
                    }
                    Ok(())
                }

                async fn sync_device_by_token_hash(
                    &self,
                    hash: &[u8],
                ) -> Result<Option<SyncDeviceRecord>> {
                    let row = sqlx::query(&format!(
                        "SELECT {DEVICE_COLS} FROM sync_devices \
                         WHERE token_hash = $1 AND revoked_at IS NULL"
                    ))
                    .bind(hash)
                    .fetch_optional(self.pool())
                    .await?;
                    row.as_ref().map(device_from_row).transpose()
                }

                async fn sync_touch_device(&self, id: &str, now: UnixTime) -> Result<()> {
                    sqlx::query("UPDATE sync_devices SET last_seen_at = $2 WHERE id = $1")
                        .bind(id)
                        .bind(now)
                        .execute(self.writer())
                        .await?;
                    Ok(())
                }

                async fn sync_devices(&self, account_id: &str) -> Result<Vec<SyncDeviceRecord>> {
                    let rows = sqlx::query(&format!(
                        "SELECT {DEVICE_COLS} FROM sync_devices WHERE account_id = $1 \
                         ORDER BY created_at, id"
                    ))
                    .bind(account_id)
                    .fetch_all(self.pool())
                    .await?;
                    rows.iter().map(device_from_row).collect()
                }

                async fn sync_revoke_device(
                    &self,
                    account_id: &str,
                    id: &str,
                    now: UnixTime,
                ) -> Result<bool> {
                    let r = sqlx::query(
                        "UPDATE sync_devices SET revoked_at = $3 \
                         WHERE account_id = $1 AND id = $2 AND revoked_at IS NULL",
                    )
                    .bind(account_id)
                    .bind(id)
                    .bind(now)
                    .execute(self.writer())
                    .await?;
                    Ok(r.rows_affected() == 1)
                }

                async fn sync_revoke_all_devices(
                    &self,
                    account_id: &str,
                    now: UnixTime,
                ) -> Result<u64> {
                    let r = sqlx::query(
                        "UPDATE sync_devices SET revoked_at = $2 \
                         WHERE account_id = $1 AND revoked_at IS NULL",
                    )
                    .bind(account_id)
                    .bind(now)
                    .execute(self.writer())
                    .await?;
                    Ok(r.rows_affected())
                }

                async fn sync_keys(&self, account_id: &str) -> Result<Option<SyncKeysRecord>> {
                    let row = sqlx::query(
                        "SELECT keys_version, passphrase_wrap, recovery_wrap, keys_updated_at \
                         FROM sync_accounts WHERE account_id = $1 AND keys_version > 0",
                    )
                    .bind(account_id)
                    .fetch_optional(self.pool())
                    .await?;
                    match row {
                        None => Ok(None),
                        Some(r) => Ok(Some(SyncKeysRecord {
                            version: r.try_get("keys_version")?,
                            passphrase_wrap: r
                                .try_get::<Option<String>, _>("passphrase_wrap")?
                                .unwrap_or_default(),
                            recovery_wrap: r
                                .try_get::<Option<String>, _>("recovery_wrap")?
                                .unwrap_or_default(),
                            updated_at: r
                                .try_get::<Option<i64>, _>("keys_updated_at")?
                                .unwrap_or(0),
                        })),
                    }
                }

                async fn sync_put_keys(
                    &self,
                    account_id: &str,
                    expected_version: i64,
                    passphrase_wrap: &str,
                    recovery_wrap: Option<&str>,
                    now: UnixTime,
                ) -> Result<Option<i64>> {
                    let mut tx = self.writer().begin().await?;
                    sqlx::query(
                        "INSERT INTO sync_accounts (account_id) VALUES ($1) \
                         ON CONFLICT (account_id) DO NOTHING",
                    )
                    .bind(account_id)
                    .execute(&mut *tx)
                    .await?;
                    let row = sqlx::query(
                        "UPDATE sync_accounts SET keys_version = keys_version + 1, \
                         passphrase_wrap = $3, recovery_wrap = COALESCE($4, recovery_wrap), \
                         keys_updated_at = $5 \
                         WHERE account_id = $1 AND keys_version = $2 \
                         AND ($4 IS NOT NULL OR recovery_wrap IS NOT NULL) \
                         RETURNING keys_version",
                    )
                    .bind(account_id)
                    .bind(expected_version)
                    .bind(passphrase_wrap)
                    .bind(recovery_wrap)
                    .bind(now)
                    .fetch_optional(&mut *tx)
                    .await?;
                    let v = match row {
                        Some(r) => Some(r.try_get::<i64, _>("keys_version")?),
                        None => None,
                    };
                    tx.commit().await?;
                    Ok(v)
                }

                async fn sync_pull(
                    &self,
                    account_id: &str,
                    since: i64,
                    limit: i64,
                ) -> Result<Vec<SyncItemRecord>> {
                    let rows = sqlx::query(&format!(
                        "SELECT {ITEM_COLS} FROM sync_items \
                         WHERE account_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"
                    ))
                    .bind(account_id)
                    .bind(since)
                    .bind(limit)
                    .fetch_all(self.pool())
                    .await?;
                    rows.iter().map(item_from_row).collect()
                }

                async fn sync_push(
                    &self,
                    account_id: &str,
                    items: &[SyncPush],
                    max_items: i64,
                    now: UnixTime,
                ) -> Result<Vec<SyncPushOutcome>> {
                    let n = i64::try_from(items.len())
                        .map_err(|_| Error::InvalidInput("too many items".into()))?;
                    let mut tx = self.writer().begin().await?;
                    // Writing first takes the write lock (SQLite) / the row lock (PostgreSQL)
                    // for the whole transaction.
                    sqlx::query(
                        "INSERT INTO sync_accounts (account_id) VALUES ($1) \
                         ON CONFLICT (account_id) DO NOTHING",
                    )
                    .bind(account_id)
                    .execute(&mut *tx)
                    .await?;
                    let row = sqlx::query(
                        "UPDATE sync_accounts SET seq = seq + $2 WHERE account_id = $1 \
                         RETURNING seq, item_count",
                    )
                    .bind(account_id)
                    .bind(n)
                    .fetch_one(&mut *tx)
                    .await?;
                    let last_seq: i64 = row.try_get("seq")?;
                    let mut count: i64 = row.try_get("item_count")?;
                    let mut seq = last_seq - n;
                    let mut out = Vec::with_capacity(items.len());
                    for it in items {
                        seq += 1;
                        let size = i64::try_from(it.ciphertext.len()).unwrap_or(i64::MAX);
                        let deleted = i64::from(it.deleted);
                        let stored = if it.expected_revision == 0 {
                            if count >= max_items {
                                tx.rollback().await?;
                                return Err(Error::Conflict(format!(
                                    "the account holds the maximum of {max_items} sync items; nothing was stored"
                                )));
                            }
                            let r = sqlx::query(&format!(
                                "INSERT INTO sync_items (account_id, {ITEM_COLS}, size) \
                                 VALUES ($1, $2, 1, $3, $4, $5, $6, $7) \
                                 ON CONFLICT (account_id, id) DO NOTHING"
                            ))
                            .bind(account_id)
                            .bind(&it.id)
                            .bind(seq)
                            .bind(deleted)
                            .bind(&it.ciphertext)
                            .bind(now)
                            .bind(size)
                            .execute(&mut *tx)
                            .await?;
                            if r.rows_affected() == 1 {
                                count += 1;
                                Some(1)
                            } else {
                                None
                            }
                        } else {
                            let r = sqlx::query(
                                "UPDATE sync_items SET revision = revision + 1, seq = $3, \
                                 deleted = $4, ciphertext = $5, updated_at = $6, size = $7 \
                                 WHERE account_id = $1 AND id = $2 AND revision = $8 \
                                 RETURNING revision",
                            )
                            .bind(account_id)
                            .bind(&it.id)
                            .bind(seq)
                            .bind(deleted)
                            .bind(&it.ciphertext)
                            .bind(now)
                            .bind(size)
                            .bind(it.expected_revision)
                            .fetch_optional(&mut *tx)
                            .await?;
                            match r {
                                Some(r) => Some(r.try_get::<i64, _>("revision")?),
                                None => None,
                            }
                        };
                        match stored {
                            Some(revision) => out.push(SyncPushOutcome::Stored { revision, seq }),
                            None => {
                                let cur = sqlx::query(&format!(
                                    "SELECT {ITEM_COLS} FROM sync_items \
                                     WHERE account_id = $1 AND id = $2"
                                ))
                                .bind(account_id)
                                .bind(&it.id)
                                .fetch_optional(&mut *tx)
                                .await?;
                                match cur {
                                    Some(r) => out.push(SyncPushOutcome::Conflict(item_from_row(&r)?)),
                                    None => {
                                        tx.rollback().await?;
                                        return Err(Error::InvalidInput(format!(
                                            "item {} does not exist: push it with expected_revision 0",
                                            it.id
                                        )));
                                    }
                                }
                            }
                        }
                    }
                    sqlx::query("UPDATE sync_accounts SET item_count = $2 WHERE account_id = $1")
                        .bind(account_id)
                        .bind(count)
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    Ok(out)
                }
            }
        };
    };
}

impl_sync_store!(super::sqlite::SqliteStore, sqlx::sqlite::SqliteRow);
impl_sync_store!(super::postgres::PgStore, sqlx::postgres::PgRow);

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
    use crate::store::{AccountRecord, Role, Store};

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

    fn device(id: &str, account: &str, hash: u8) -> SyncDeviceRecord {
        SyncDeviceRecord {
            id: id.into(),
            account_id: account.into(),
            name: format!("dev-{id}"),
            token_hash: vec![hash; 32],
            created_at: 10,
            last_seen_at: None,
            revoked_at: None,
        }
    }

    fn push(id: &str, expected: i64, ct: &[u8]) -> SyncPush {
        SyncPush {
            id: id.into(),
            expected_revision: expected,
            deleted: false,
            ciphertext: ct.to_vec(),
        }
    }

    pub async fn run_all(s: &dyn Store) {
        devices(s).await;
        revoke_all(s).await;
        keys(s).await;
        items(s).await;
        item_limit(s).await;
        concurrent_pushes(s).await;
    }

    async fn devices(s: &dyn Store) {
        let a = account(s, "sync-dev").await;
        s.sync_create_device(&device("d1", &a, 1), 2).await.unwrap();
        s.sync_create_device(&device("d2", &a, 2), 2).await.unwrap();
        assert!(matches!(
            s.sync_create_device(&device("d3", &a, 3), 2).await,
            Err(Error::Conflict(_))
        ));
        let got = s
            .sync_device_by_token_hash(&[1; 32])
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.id, "d1");
        s.sync_touch_device("d1", 50).await.unwrap();
        assert!(s.sync_revoke_device(&a, "d1", 60).await.unwrap());
        assert!(!s.sync_revoke_device(&a, "d1", 61).await.unwrap());
        assert!(!s.sync_revoke_device("other", "d2", 61).await.unwrap());
        assert!(s
            .sync_device_by_token_hash(&[1; 32])
            .await
            .unwrap()
            .is_none());
        let list = s.sync_devices(&a).await.unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].last_seen_at, Some(50));
        assert_eq!(list[0].revoked_at, Some(60));
        // A revoked device frees its place.
        s.sync_create_device(&device("d3", &a, 3), 2).await.unwrap();
    }

    async fn revoke_all(s: &dyn Store) {
        // Every unrevoked device of the account, and only of that account, in one statement;
        // an already revoked device keeps its revocation time.
        let a = account(s, "sync-all").await;
        let b = account(s, "sync-all-other").await;
        s.sync_create_device(&device("ra1", &a, 41), 8)
            .await
            .unwrap();
        s.sync_create_device(&device("ra2", &a, 42), 8)
            .await
            .unwrap();
        s.sync_create_device(&device("ra3", &a, 43), 8)
            .await
            .unwrap();
        s.sync_create_device(&device("rb1", &b, 44), 8)
            .await
            .unwrap();
        assert!(s.sync_revoke_device(&a, "ra3", 70).await.unwrap());
        assert_eq!(s.sync_revoke_all_devices(&a, 80).await.unwrap(), 2);
        assert_eq!(s.sync_revoke_all_devices(&a, 81).await.unwrap(), 0);
        for hash in [41, 42, 43] {
            assert!(s
                .sync_device_by_token_hash(&[hash; 32])
                .await
                .unwrap()
                .is_none());
        }
        let revoked: Vec<Option<i64>> = s
            .sync_devices(&a)
            .await
            .unwrap()
            .iter()
            .map(|d| d.revoked_at)
            .collect();
        assert_eq!(revoked, vec![Some(80), Some(80), Some(70)]);
        assert!(s
            .sync_device_by_token_hash(&[44; 32])
            .await
            .unwrap()
            .is_some());
        // The limit counts only unrevoked devices, so the account can register again.
        s.sync_create_device(&device("ra4", &a, 45), 1)
            .await
            .unwrap();
    }

    async fn keys(s: &dyn Store) {
        let a = account(s, "sync-keys").await;
        assert!(s.sync_keys(&a).await.unwrap().is_none());
        // The first upload must carry both wraps.
        assert_eq!(s.sync_put_keys(&a, 0, "p1", None, 5).await.unwrap(), None);
        assert_eq!(
            s.sync_put_keys(&a, 0, "p1", Some("r1"), 5).await.unwrap(),
            Some(1)
        );
        assert_eq!(
            s.sync_put_keys(&a, 0, "p9", Some("r9"), 6).await.unwrap(),
            None
        );
        assert_eq!(
            s.sync_put_keys(&a, 1, "p2", None, 7).await.unwrap(),
            Some(2)
        );
        let k = s.sync_keys(&a).await.unwrap().unwrap();
        assert_eq!(
            (
                k.version,
                k.passphrase_wrap.as_str(),
                k.recovery_wrap.as_str(),
                k.updated_at
            ),
            (2, "p2", "r1", 7)
        );
    }

    async fn items(s: &dyn Store) {
        let a = account(s, "sync-items").await;
        let b = account(s, "sync-items-b").await;
        let r = s
            .sync_push(&a, &[push("i1", 0, b"c1"), push("i2", 0, b"c2")], 100, 10)
            .await
            .unwrap();
        assert_eq!(
            r,
            vec![
                SyncPushOutcome::Stored {
                    revision: 1,
                    seq: 1
                },
                SyncPushOutcome::Stored {
                    revision: 1,
                    seq: 2
                }
            ]
        );
        // Another account's items are separate.
        s.sync_push(&b, &[push("i1", 0, b"other")], 100, 10)
            .await
            .unwrap();
        // Expected revision matches: stored as revision 2; a stale one: conflict with the current.
        let mut del = push("i1", 1, b"tomb");
        del.deleted = true;
        let r = s
            .sync_push(&a, &[del, push("i2", 0, b"again")], 100, 11)
            .await
            .unwrap();
        assert_eq!(
            r[0],
            SyncPushOutcome::Stored {
                revision: 2,
                seq: 3
            }
        );
        match &r[1] {
            SyncPushOutcome::Conflict(cur) => {
                assert_eq!(
                    (cur.revision, cur.ciphertext.as_slice()),
                    (1, b"c2".as_slice())
                )
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
        assert!(matches!(
            s.sync_push(&a, &[push("nope", 3, b"x")], 100, 12).await,
            Err(Error::InvalidInput(_))
        ));
        // Pull: in sequence order, paged, since a cursor.
        let all = s.sync_pull(&a, 0, 10).await.unwrap();
        let ids: Vec<(&str, i64, bool)> = all
            .iter()
            .map(|i| (i.id.as_str(), i.seq, i.deleted))
            .collect();
        assert_eq!(ids, vec![("i2", 2, false), ("i1", 3, true)]);
        assert_eq!(s.sync_pull(&a, 0, 1).await.unwrap().len(), 1);
        let after = s.sync_pull(&a, 2, 10).await.unwrap();
        assert_eq!(after.len(), 1);
        assert_eq!(after[0].ciphertext, b"tomb");
        assert_eq!(after[0].updated_at, 11);
        assert_eq!(
            s.sync_pull(&b, 0, 10).await.unwrap()[0].ciphertext,
            b"other"
        );
    }

    async fn item_limit(s: &dyn Store) {
        let a = account(s, "sync-limit").await;
        s.sync_push(&a, &[push("x1", 0, b"1"), push("x2", 0, b"2")], 3, 1)
            .await
            .unwrap();
        // Two more would pass the limit of 3: refused whole, nothing stored.
        assert!(matches!(
            s.sync_push(&a, &[push("x3", 0, b"3"), push("x4", 0, b"4")], 3, 2)
                .await,
            Err(Error::Conflict(_))
        ));
        assert_eq!(s.sync_pull(&a, 0, 10).await.unwrap().len(), 2);
        // Updating existing items is not limited by the count.
        s.sync_push(&a, &[push("x1", 1, b"1b")], 2, 3)
            .await
            .unwrap();
        s.sync_push(&a, &[push("x3", 0, b"3")], 3, 4).await.unwrap();
    }

    async fn concurrent_pushes(s: &dyn Store) {
        let a = account(s, "sync-race").await;
        s.sync_push(&a, &[push("r", 0, b"v1")], 100, 1)
            .await
            .unwrap();
        // Many pushes on the same expected revision: exactly one is stored.
        let futs = (0..8).map(|k| {
            let a = a.clone();
            async move {
                s.sync_push(&a, &[push("r", 1, format!("v2-{k}").as_bytes())], 100, 2)
                    .await
                    .unwrap()
            }
        });
        let results = futures_join_all(futs).await;
        let stored = results
            .iter()
            .filter(|r| matches!(r[0], SyncPushOutcome::Stored { .. }))
            .count();
        assert_eq!(stored, 1);
        // Sequence numbers are unique and the item's final seq is the highest one.
        let items = s.sync_pull(&a, 0, 10).await.unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].revision, 2);
    }

    async fn futures_join_all<F: std::future::Future>(
        fs: impl Iterator<Item = F>,
    ) -> Vec<F::Output> {
        let mut out = Vec::new();
        let pinned: Vec<_> = fs.map(Box::pin).collect();
        // Poll them together on this task.
        let mut pending: Vec<Option<std::pin::Pin<Box<F>>>> =
            pinned.into_iter().map(Some).collect();
        let mut results: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
        std::future::poll_fn(|cx| {
            let mut all = true;
            for (slot, res) in pending.iter_mut().zip(results.iter_mut()) {
                if let Some(f) = slot {
                    match f.as_mut().poll(cx) {
                        std::task::Poll::Ready(v) => {
                            *res = Some(v);
                            *slot = None;
                        }
                        std::task::Poll::Pending => all = false,
                    }
                }
            }
            if all {
                std::task::Poll::Ready(())
            } else {
                std::task::Poll::Pending
            }
        })
        .await;
        for r in results {
            out.extend(r);
        }
        out
    }

    #[tokio::test]
    async fn sync_suite_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::sqlite::SqliteStore::open(&dir.path().join("t.db"))
            .await
            .unwrap();
        run_all(&store).await;
    }

    #[tokio::test]
    async fn sync_suite_on_postgres() {
        let db = crate::testing::TempDatabase::create().await.unwrap();
        let store = crate::store::postgres::PgStore::connect(&db.url)
            .await
            .unwrap();
        run_all(&store).await;
        store.pool().close().await;
    }
}
