//! Storage of pending alternative-factor recoveries (table `recovery_pending`, migration 0009;
//! docs/recovery.md, "Waiting period"). A separate trait that every [`super::Store`] also
//! implements; the SQL is written once for both backends.
//!
//! Every change of state is one conditional update `WHERE state = 'pending'`, so of a cancel
//! and a completion racing on two nodes exactly one wins, and a cancel token works once.

use async_trait::async_trait;

use crate::clock::UnixTime;
use crate::error::Result;
use crate::redacted::Redacted;

/// A pending (or finished) recovery. Only the SHA-256 of the cancel token is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingRecoveryRecord {
    /// UUID.
    pub id: String,
    /// Owner.
    pub account_id: String,
    /// When the first alternative-factor proof was given.
    pub created_at: UnixTime,
    /// From when a second proof completes it.
    pub ready_at: UnixTime,
    /// SHA-256 of the cancel token.
    pub cancel_hash: Redacted<Vec<u8>>,
    /// `pending`, `completed` or `cancelled`.
    pub state: String,
    /// When it was completed or cancelled.
    pub ended_at: Option<UnixTime>,
}

/// Storage of pending recoveries. Implementations make each method atomic.
#[async_trait]
pub trait PendingRecoveryStore: Send + Sync {
    /// Stores a new pending recovery; false when the account already has one (a concurrent
    /// start on another node won).
    async fn create_pending_recovery(&self, r: &PendingRecoveryRecord) -> Result<bool>;
    /// The account's pending recovery, if any.
    async fn pending_recovery(&self, account_id: &str) -> Result<Option<PendingRecoveryRecord>>;
    /// The recovery (any state) whose cancel token has this hash.
    async fn recovery_by_cancel_hash(&self, hash: &[u8]) -> Result<Option<PendingRecoveryRecord>>;
    /// Completes a pending recovery whose `ready_at` has come; true only for the one request
    /// that found it pending.
    async fn complete_pending_recovery(&self, id: &str, now: UnixTime) -> Result<bool>;
    /// Cancels the pending recovery of a cancel token; returns it when this call cancelled it.
    async fn cancel_recovery_by_hash(
        &self,
        hash: &[u8],
        now: UnixTime,
    ) -> Result<Option<PendingRecoveryRecord>>;
    /// Cancels the account's pending recovery; true when there was one.
    async fn cancel_pending_recovery(&self, account_id: &str, now: UnixTime) -> Result<bool>;
}

const COLS: &str = "id, account_id, created_at, ready_at, cancel_hash, state, ended_at";

macro_rules! impl_pending_recovery_store {
    ($store:ty, $row:ty) => {
        const _: () = {
            use sqlx::Row as _;

            fn from_row(r: &$row) -> Result<PendingRecoveryRecord> {
                Ok(PendingRecoveryRecord {
                    id: r.try_get("id")?,
                    account_id: r.try_get("account_id")?,
                    created_at: r.try_get("created_at")?,
                    ready_at: r.try_get("ready_at")?,
                    cancel_hash: Redacted::new(r.try_get("cancel_hash")?),
                    state: r.try_get("state")?,
                    ended_at: r.try_get("ended_at")?,
                })
            }

            #[async_trait]
            impl PendingRecoveryStore for $store {
                async fn create_pending_recovery(&self, r: &PendingRecoveryRecord) -> Result<bool> {
                    // The partial unique index allows one pending row per account.
                    let res = sqlx::query(&format!(
                        "INSERT INTO recovery_pending ({COLS}) \
                         VALUES ($1, $2, $3, $4, $5, 'pending', NULL) ON CONFLICT DO NOTHING"
                    ))
                    .bind(&r.id)
                    .bind(&r.account_id)
                    .bind(r.created_at)
                    .bind(r.ready_at)
                    .bind(r.cancel_hash.expose())
                    .execute(self.writer())
                    .await?;
                    Ok(res.rows_affected() == 1)
                }

                async fn pending_recovery(
                    &self,
                    account_id: &str,
                ) -> Result<Option<PendingRecoveryRecord>> {
                    let row = sqlx::query(&format!(
                        "SELECT {COLS} FROM recovery_pending \
                         WHERE account_id = $1 AND state = 'pending'"
                    ))
                    .bind(account_id)
                    .fetch_optional(self.writer())
                    .await?;
                    row.as_ref().map(from_row).transpose()
                }

                async fn recovery_by_cancel_hash(
                    &self,
                    hash: &[u8],
                ) -> Result<Option<PendingRecoveryRecord>> {
                    let row = sqlx::query(&format!(
                        "SELECT {COLS} FROM recovery_pending WHERE cancel_hash = $1"
                    ))
                    .bind(hash)
                    .fetch_optional(self.writer())
                    .await?;
                    row.as_ref().map(from_row).transpose()
                }

                async fn complete_pending_recovery(&self, id: &str, now: UnixTime) -> Result<bool> {
                    let r = sqlx::query(
                        "UPDATE recovery_pending SET state = 'completed', ended_at = $1 \
                         WHERE id = $2 AND state = 'pending' AND ready_at <= $1",
                    )
                    .bind(now)
                    .bind(id)
                    .execute(self.writer())
                    .await?;
                    Ok(r.rows_affected() == 1)
                }

                async fn cancel_recovery_by_hash(
                    &self,
                    hash: &[u8],
                    now: UnixTime,
                ) -> Result<Option<PendingRecoveryRecord>> {
                    let row = sqlx::query(&format!(
                        "UPDATE recovery_pending SET state = 'cancelled', ended_at = $1 \
                         WHERE cancel_hash = $2 AND state = 'pending' RETURNING {COLS}"
                    ))
                    .bind(now)
                    .bind(hash)
                    .fetch_optional(self.writer())
                    .await?;
                    row.as_ref().map(from_row).transpose()
                }

                async fn cancel_pending_recovery(
                    &self,
                    account_id: &str,
                    now: UnixTime,
                ) -> Result<bool> {
                    let r = sqlx::query(
                        "UPDATE recovery_pending SET state = 'cancelled', ended_at = $1 \
                         WHERE account_id = $2 AND state = 'pending'",
                    )
                    .bind(now)
                    .bind(account_id)
                    .execute(self.writer())
                    .await?;
                    Ok(r.rows_affected() > 0)
                }
            }
        };
    };
}

impl_pending_recovery_store!(super::sqlite::SqliteStore, sqlx::sqlite::SqliteRow);
impl_pending_recovery_store!(super::postgres::PgStore, sqlx::postgres::PgRow);
