//! Storage of recovery codes (docs/recovery.md). A separate trait, [`RecoveryStore`], that every
//! [`super::Store`] also implements; the SQL is written once (portable `$n` parameters) in a macro
//! instantiated for both backends, and one suite ([`suite`]) runs against both.
//!
//! Atomicity: replacing a set is one transaction (the old set is gone exactly when the new one
//! exists), and spending a code is one conditional update (`used_at IS NULL`), so of two
//! concurrent sign-ins with the same code, on any nodes, exactly one succeeds.

use async_trait::async_trait;

use crate::clock::UnixTime;
use crate::error::{Error, Result};
use crate::redacted::Redacted;

/// One stored recovery code: its salted Argon2id hash, never the code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryCodeRecord {
    /// Owner.
    pub account_id: String,
    /// Position in the set (0-based).
    pub idx: i64,
    /// Random id of the set (changes when the codes are regenerated).
    pub set_id: String,
    /// The hash parameters, `argon2id;m=KIB;t=T;p=P`.
    pub params: String,
    /// The set's salt (shared by its codes).
    pub salt: Redacted<Vec<u8>>,
    /// Argon2id output.
    pub hash: Redacted<Vec<u8>>,
    /// When the set was made.
    pub created_at: UnixTime,
    /// When this code was spent.
    pub used_at: Option<UnixTime>,
}

/// A one-time verification code (contact proof). Only a hash of the code is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerificationCodeRecord {
    /// UUID (also hashed with the code).
    pub id: String,
    /// Owner.
    pub account_id: String,
    /// What it proves (`contact.email`, `contact.phone`).
    pub purpose: String,
    /// Where it was sent (the address or number being proven).
    pub target: String,
    /// SHA-256 of id and code.
    pub code_hash: Redacted<Vec<u8>>,
    /// Creation time.
    pub created_at: UnixTime,
    /// Expiry.
    pub expires_at: UnixTime,
    /// Attempts so far (carried over from the code it replaced while that code's attempt budget
    /// lasts).
    pub attempts: i64,
    /// When it was used.
    pub used_at: Option<UnixTime>,
    /// When the attempt budget that `attempts` counts against began (the first code of a run of
    /// replacements).
    pub window_start: UnixTime,
}

/// A sign-in with alternative factors in progress (table `recovery_signins`): bound to one
/// sign-in challenge, at step `email`, then `phone`, then `done`. Only a hash of the current
/// step's code is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoverySigninRecord {
    /// UUID (also hashed with the code).
    pub id: String,
    /// The challenge (a `sessions` row in state `mfa_pending`).
    pub challenge_id: String,
    /// Owner.
    pub account_id: String,
    /// `email`, `phone` or `done`.
    pub step: String,
    /// SHA-256 of id, step and code.
    pub code_hash: Redacted<Vec<u8>>,
    /// When the current code was made.
    pub created_at: UnixTime,
    /// When the current code expires.
    pub expires_at: UnixTime,
    /// Attempts at the current code.
    pub attempts: i64,
    /// When the phone code was used (step `done`).
    pub used_at: Option<UnixTime>,
}

/// Storage of recovery codes. Implementations make each method atomic.
#[async_trait]
pub trait RecoveryStore: Send + Sync {
    /// Replaces the account's set with `codes` in one transaction.
    async fn replace_recovery_codes(
        &self,
        account_id: &str,
        codes: &[RecoveryCodeRecord],
    ) -> Result<()>;
    /// The account's codes (used ones included), by position.
    async fn recovery_codes(&self, account_id: &str) -> Result<Vec<RecoveryCodeRecord>>;
    /// Spends one code of set `set_id`: true only for the one request that found it unused.
    async fn use_recovery_code(
        &self,
        account_id: &str,
        set_id: &str,
        idx: i64,
        now: UnixTime,
    ) -> Result<bool>;
    /// Deletes the account's codes; returns how many.
    async fn delete_recovery_codes(&self, account_id: &str) -> Result<u64>;

    /// Marks the account: its next sign-in may only enroll a device (after an MFA reset).
    async fn set_enroll_required(&self, account_id: &str, now: UnixTime) -> Result<()>;
    /// Whether the account is marked.
    async fn enroll_required(&self, account_id: &str) -> Result<bool>;
    /// Clears the mark (a device was enabled).
    async fn clear_enroll_required(&self, account_id: &str) -> Result<()>;

    /// Stores a verification code, replacing the account's other codes of the same purpose, in
    /// one transaction. The new code starts with `c.attempts` and `c.window_start`, unless the
    /// code it replaces is unused and its budget began after `carry_since`: then it keeps that
    /// code's attempts and budget start, so asking for a new code gives no fresh guesses.
    /// Returns the stored record.
    async fn create_verification_code(
        &self,
        c: &VerificationCodeRecord,
        carry_since: UnixTime,
    ) -> Result<VerificationCodeRecord>;
    /// Counts one attempt against the account's live code of `purpose` (unused, unexpired,
    /// fewer than `max_attempts` attempts) in one conditional update and returns it; `None`
    /// when there is no such code.
    async fn verification_attempt(
        &self,
        account_id: &str,
        purpose: &str,
        now: UnixTime,
        max_attempts: i64,
    ) -> Result<Option<VerificationCodeRecord>>;
    /// Spends a verification code: true only for the one request that found it unused.
    async fn use_verification_code(&self, id: &str, now: UnixTime) -> Result<bool>;
    /// Records a proven contact value.
    async fn set_verified_contact(
        &self,
        account_id: &str,
        channel: &str,
        value: &str,
        now: UnixTime,
    ) -> Result<()>;
    /// The proven contact values: (channel, value).
    async fn verified_contacts(&self, account_id: &str) -> Result<Vec<(String, String)>>;
    // #15 contacts
    /// The account's live code of `purpose` (unused, unexpired), without counting an attempt:
    /// to show a pending contact change and to route a confirmation.
    async fn live_verification_code(
        &self,
        account_id: &str,
        purpose: &str,
        now: UnixTime,
    ) -> Result<Option<VerificationCodeRecord>>;
    /// Sets (`Some`) or clears (`None`) the account's `channel` (`email` or `phone`) in one
    /// transaction: the value on the account, its proof (kept only with `verified_at`, for the
    /// new value), and every outstanding code of the channel (`contact.CHANNEL` and
    /// `contact.CHANNEL.change`), so no code sent earlier can act on the new state.
    async fn replace_contact(
        &self,
        account_id: &str,
        channel: &str,
        value: Option<&str>,
        verified_at: Option<UnixTime>,
    ) -> Result<()>;

    /// Starts (or restarts) the recovery sign-in of a challenge at step `email` with a new
    /// code, replacing whatever step the challenge's earlier attempt had reached.
    async fn start_recovery_signin(&self, r: &RecoverySigninRecord) -> Result<()>;
    /// Counts one attempt against the challenge's live code of `step` (not used, not expired,
    /// fewer than `max_attempts` attempts) in one conditional update and returns the row;
    /// `None` when there is no such code (wrong step, expired, used up).
    async fn recovery_signin_attempt(
        &self,
        challenge_id: &str,
        step: &str,
        now: UnixTime,
        max_attempts: i64,
    ) -> Result<Option<RecoverySigninRecord>>;
    /// Moves a row from step `email` to `phone` with the phone code's hash and expiry (attempts
    /// start again); true only for the one request that found it at step `email`.
    async fn advance_recovery_signin(
        &self,
        id: &str,
        code_hash: &[u8],
        now: UnixTime,
        expires_at: UnixTime,
    ) -> Result<bool>;
    /// Spends the phone code (step `phone` to `done`); true only for the one request that found
    /// it unused.
    async fn finish_recovery_signin(&self, id: &str, now: UnixTime) -> Result<bool>;
    /// Sets the expiry of a pending sign-in challenge (a recovery sign-in needs longer than the
    /// 5 minutes of a code step); false if it is not a pending challenge.
    async fn extend_challenge(&self, challenge_id: &str, expires_at: UnixTime) -> Result<bool>;
    // #15 delivery
    /// The recovery sign-in row of a challenge, whatever its step.
    async fn recovery_signin_for_challenge(
        &self,
        challenge_id: &str,
    ) -> Result<Option<RecoverySigninRecord>>;
    /// Replaces the unused code of `step` (a new code sent again, or an unguessable hash when
    /// sending failed) with a new expiry. The attempts are kept, so sending again never buys
    /// more guesses. True only if the row was at `step` and unused.
    async fn replace_recovery_signin_code(
        &self,
        id: &str,
        step: &str,
        code_hash: &[u8],
        now: UnixTime,
        expires_at: UnixTime,
    ) -> Result<bool>;
}

const RS_COLS: &str =
    "id, challenge_id, account_id, step, code_hash, created_at, expires_at, attempts, used_at";

const VC_COLS: &str = "id, account_id, purpose, target, code_hash, created_at, expires_at, \
     attempts, used_at, window_start";

const CODE_COLS: &str = "account_id, idx, set_id, params, salt, hash, created_at, used_at";

macro_rules! impl_recovery_store {
    ($store:ty, $row:ty) => {
        const _: () = {
            use sqlx::Row as _;

            fn vc_from_row(r: &$row) -> Result<VerificationCodeRecord> {
                Ok(VerificationCodeRecord {
                    id: r.try_get("id")?,
                    account_id: r.try_get("account_id")?,
                    purpose: r.try_get("purpose")?,
                    target: r.try_get("target")?,
                    code_hash: Redacted::new(r.try_get("code_hash")?),
                    created_at: r.try_get("created_at")?,
                    expires_at: r.try_get("expires_at")?,
                    attempts: r.try_get("attempts")?,
                    used_at: r.try_get("used_at")?,
                    window_start: r.try_get("window_start")?,
                })
            }

            fn rs_from_row(r: &$row) -> Result<RecoverySigninRecord> {
                Ok(RecoverySigninRecord {
                    id: r.try_get("id")?,
                    challenge_id: r.try_get("challenge_id")?,
                    account_id: r.try_get("account_id")?,
                    step: r.try_get("step")?,
                    code_hash: Redacted::new(r.try_get("code_hash")?),
                    created_at: r.try_get("created_at")?,
                    expires_at: r.try_get("expires_at")?,
                    attempts: r.try_get("attempts")?,
                    used_at: r.try_get("used_at")?,
                })
            }

            fn code_from_row(r: &$row) -> Result<RecoveryCodeRecord> {
                Ok(RecoveryCodeRecord {
                    account_id: r.try_get("account_id")?,
                    idx: r.try_get("idx")?,
                    set_id: r.try_get("set_id")?,
                    params: r.try_get("params")?,
                    salt: Redacted::new(r.try_get("salt")?),
                    hash: Redacted::new(r.try_get("hash")?),
                    created_at: r.try_get("created_at")?,
                    used_at: r.try_get("used_at")?,
                })
            }

            #[async_trait]
            impl RecoveryStore for $store {
                async fn replace_recovery_codes(
                    &self,
                    account_id: &str,
                    codes: &[RecoveryCodeRecord],
                ) -> Result<()> {
                    let mut tx = self.writer().begin().await?;
                    sqlx::query("DELETE FROM recovery_codes WHERE account_id = $1")
                        .bind(account_id)
                        .execute(&mut *tx)
                        .await?;
                    for c in codes {
                        sqlx::query(&format!(
                            "INSERT INTO recovery_codes ({CODE_COLS}) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
                        ))
                        .bind(account_id)
                        .bind(c.idx)
                        .bind(&c.set_id)
                        .bind(&c.params)
                        .bind(c.salt.expose())
                        .bind(c.hash.expose())
                        .bind(c.created_at)
                        .bind(c.used_at)
                        .execute(&mut *tx)
                        .await?;
                    }
                    tx.commit().await?;
                    Ok(())
                }

                async fn recovery_codes(&self, account_id: &str) -> Result<Vec<RecoveryCodeRecord>> {
                    let rows = sqlx::query(&format!(
                        "SELECT {CODE_COLS} FROM recovery_codes WHERE account_id = $1 ORDER BY idx"
                    ))
                    .bind(account_id)
                    .fetch_all(self.pool())
                    .await?;
                    rows.iter().map(code_from_row).collect()
                }

                async fn use_recovery_code(
                    &self,
                    account_id: &str,
                    set_id: &str,
                    idx: i64,
                    now: UnixTime,
                ) -> Result<bool> {
                    let r = sqlx::query(
                        "UPDATE recovery_codes SET used_at = $1 \
                         WHERE account_id = $2 AND set_id = $3 AND idx = $4 AND used_at IS NULL",
                    )
                    .bind(now)
                    .bind(account_id)
                    .bind(set_id)
                    .bind(idx)
                    .execute(self.writer())
                    .await?;
                    Ok(r.rows_affected() == 1)
                }

                async fn delete_recovery_codes(&self, account_id: &str) -> Result<u64> {
                    let r = sqlx::query("DELETE FROM recovery_codes WHERE account_id = $1")
                        .bind(account_id)
                        .execute(self.writer())
                        .await?;
                    Ok(r.rows_affected())
                }

                async fn set_enroll_required(&self, account_id: &str, now: UnixTime) -> Result<()> {
                    sqlx::query(
                        "INSERT INTO mfa_enroll_required (account_id, since) VALUES ($1, $2) \
                         ON CONFLICT (account_id) DO UPDATE SET since = $2",
                    )
                    .bind(account_id)
                    .bind(now)
                    .execute(self.writer())
                    .await?;
                    Ok(())
                }

                async fn enroll_required(&self, account_id: &str) -> Result<bool> {
                    let r = sqlx::query("SELECT 1 FROM mfa_enroll_required WHERE account_id = $1")
                        .bind(account_id)
                        .fetch_optional(self.pool())
                        .await?;
                    Ok(r.is_some())
                }

                async fn clear_enroll_required(&self, account_id: &str) -> Result<()> {
                    sqlx::query("DELETE FROM mfa_enroll_required WHERE account_id = $1")
                        .bind(account_id)
                        .execute(self.writer())
                        .await?;
                    Ok(())
                }

                async fn create_verification_code(
                    &self,
                    c: &VerificationCodeRecord,
                    carry_since: UnixTime,
                ) -> Result<VerificationCodeRecord> {
                    let mut tx = self.writer().begin().await?;
                    // Deleting first takes the old rows' locks: an attempt counted on them
                    // concurrently is either in the returned count or finds no code.
                    let old = sqlx::query(
                        "DELETE FROM verification_codes WHERE account_id = $1 AND purpose = $2 \
                         RETURNING attempts, used_at, window_start",
                    )
                    .bind(&c.account_id)
                    .bind(&c.purpose)
                    .fetch_all(&mut *tx)
                    .await?;
                    let mut stored = c.clone();
                    for r in &old {
                        let used: Option<i64> = r.try_get("used_at")?;
                        let start: i64 = r.try_get("window_start")?;
                        let attempts: i64 = r.try_get("attempts")?;
                        if used.is_none() && start > carry_since {
                            stored.attempts = stored.attempts.max(attempts);
                            stored.window_start = start;
                        }
                    }
                    sqlx::query(&format!(
                        "INSERT INTO verification_codes ({VC_COLS}) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
                    ))
                    .bind(&stored.id)
                    .bind(&stored.account_id)
                    .bind(&stored.purpose)
                    .bind(&stored.target)
                    .bind(stored.code_hash.expose())
                    .bind(stored.created_at)
                    .bind(stored.expires_at)
                    .bind(stored.attempts)
                    .bind(stored.used_at)
                    .bind(stored.window_start)
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    Ok(stored)
                }

                async fn verification_attempt(
                    &self,
                    account_id: &str,
                    purpose: &str,
                    now: UnixTime,
                    max_attempts: i64,
                ) -> Result<Option<VerificationCodeRecord>> {
                    let row = sqlx::query(&format!(
                        "UPDATE verification_codes SET attempts = attempts + 1 \
                         WHERE account_id = $1 AND purpose = $2 AND used_at IS NULL \
                         AND expires_at > $3 AND attempts < $4 RETURNING {VC_COLS}"
                    ))
                    .bind(account_id)
                    .bind(purpose)
                    .bind(now)
                    .bind(max_attempts)
                    .fetch_optional(self.writer())
                    .await?;
                    row.as_ref().map(vc_from_row).transpose()
                }

                async fn use_verification_code(&self, id: &str, now: UnixTime) -> Result<bool> {
                    let r = sqlx::query(
                        "UPDATE verification_codes SET used_at = $1 WHERE id = $2 AND used_at IS NULL",
                    )
                    .bind(now)
                    .bind(id)
                    .execute(self.writer())
                    .await?;
                    Ok(r.rows_affected() == 1)
                }

                async fn set_verified_contact(
                    &self,
                    account_id: &str,
                    channel: &str,
                    value: &str,
                    now: UnixTime,
                ) -> Result<()> {
                    sqlx::query(
                        "INSERT INTO verified_contacts (account_id, channel, value, verified_at) \
                         VALUES ($1, $2, $3, $4) ON CONFLICT (account_id, channel) \
                         DO UPDATE SET value = $3, verified_at = $4",
                    )
                    .bind(account_id)
                    .bind(channel)
                    .bind(value)
                    .bind(now)
                    .execute(self.writer())
                    .await?;
                    Ok(())
                }

                async fn live_verification_code(
                    &self,
                    account_id: &str,
                    purpose: &str,
                    now: UnixTime,
                ) -> Result<Option<VerificationCodeRecord>> {
                    let row = sqlx::query(&format!(
                        "SELECT {VC_COLS} FROM verification_codes WHERE account_id = $1 \
                         AND purpose = $2 AND used_at IS NULL AND expires_at > $3"
                    ))
                    .bind(account_id)
                    .bind(purpose)
                    .bind(now)
                    .fetch_optional(self.pool())
                    .await?;
                    row.as_ref().map(vc_from_row).transpose()
                }

                async fn replace_contact(
                    &self,
                    account_id: &str,
                    channel: &str,
                    value: Option<&str>,
                    verified_at: Option<UnixTime>,
                ) -> Result<()> {
                    // The column name is chosen here, never taken from input.
                    let update = match channel {
                        "email" => "UPDATE accounts SET email = $1 WHERE id = $2",
                        "phone" => "UPDATE accounts SET phone = $1 WHERE id = $2",
                        _ => return Err(Error::Internal("unknown contact channel".into())),
                    };
                    let mut tx = self.writer().begin().await?;
                    sqlx::query(update)
                        .bind(value)
                        .bind(account_id)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query("DELETE FROM verified_contacts WHERE account_id = $1 AND channel = $2")
                        .bind(account_id)
                        .bind(channel)
                        .execute(&mut *tx)
                        .await?;
                    if let (Some(v), Some(at)) = (value, verified_at) {
                        sqlx::query(
                            "INSERT INTO verified_contacts (account_id, channel, value, verified_at) \
                             VALUES ($1, $2, $3, $4)",
                        )
                        .bind(account_id)
                        .bind(channel)
                        .bind(v)
                        .bind(at)
                        .execute(&mut *tx)
                        .await?;
                    }
                    sqlx::query(
                        "DELETE FROM verification_codes WHERE account_id = $1 \
                         AND (purpose = $2 OR purpose = $3)",
                    )
                    .bind(account_id)
                    .bind(format!("contact.{channel}"))
                    .bind(format!("contact.{channel}.change"))
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    Ok(())
                }

                async fn verified_contacts(&self, account_id: &str) -> Result<Vec<(String, String)>> {
                    let rows = sqlx::query(
                        "SELECT channel, value FROM verified_contacts WHERE account_id = $1 ORDER BY channel",
                    )
                    .bind(account_id)
                    .fetch_all(self.pool())
                    .await?;
                    rows.iter()
                        .map(|r| Ok((r.try_get("channel")?, r.try_get("value")?)))
                        .collect()
                }

                async fn start_recovery_signin(&self, r: &RecoverySigninRecord) -> Result<()> {
                    sqlx::query(&format!(
                        "INSERT INTO recovery_signins ({RS_COLS}) \
                         VALUES ($1, $2, $3, 'email', $4, $5, $6, 0, NULL) \
                         ON CONFLICT (challenge_id) DO UPDATE SET id = $1, step = 'email', \
                         code_hash = $4, created_at = $5, expires_at = $6, attempts = 0, \
                         used_at = NULL"
                    ))
                    .bind(&r.id)
                    .bind(&r.challenge_id)
                    .bind(&r.account_id)
                    .bind(r.code_hash.expose())
                    .bind(r.created_at)
                    .bind(r.expires_at)
                    .execute(self.writer())
                    .await?;
                    Ok(())
                }

                async fn recovery_signin_attempt(
                    &self,
                    challenge_id: &str,
                    step: &str,
                    now: UnixTime,
                    max_attempts: i64,
                ) -> Result<Option<RecoverySigninRecord>> {
                    let row = sqlx::query(&format!(
                        "UPDATE recovery_signins SET attempts = attempts + 1 \
                         WHERE challenge_id = $1 AND step = $2 AND used_at IS NULL \
                         AND expires_at > $3 AND attempts < $4 RETURNING {RS_COLS}"
                    ))
                    .bind(challenge_id)
                    .bind(step)
                    .bind(now)
                    .bind(max_attempts)
                    .fetch_optional(self.writer())
                    .await?;
                    row.as_ref().map(rs_from_row).transpose()
                }

                async fn advance_recovery_signin(
                    &self,
                    id: &str,
                    code_hash: &[u8],
                    now: UnixTime,
                    expires_at: UnixTime,
                ) -> Result<bool> {
                    let r = sqlx::query(
                        "UPDATE recovery_signins SET step = 'phone', code_hash = $2, \
                         created_at = $3, expires_at = $4, attempts = 0 \
                         WHERE id = $1 AND step = 'email' AND used_at IS NULL",
                    )
                    .bind(id)
                    .bind(code_hash)
                    .bind(now)
                    .bind(expires_at)
                    .execute(self.writer())
                    .await?;
                    Ok(r.rows_affected() == 1)
                }

                async fn finish_recovery_signin(&self, id: &str, now: UnixTime) -> Result<bool> {
                    let r = sqlx::query(
                        "UPDATE recovery_signins SET step = 'done', used_at = $2 \
                         WHERE id = $1 AND step = 'phone' AND used_at IS NULL",
                    )
                    .bind(id)
                    .bind(now)
                    .execute(self.writer())
                    .await?;
                    Ok(r.rows_affected() == 1)
                }

                async fn extend_challenge(
                    &self,
                    challenge_id: &str,
                    expires_at: UnixTime,
                ) -> Result<bool> {
                    let r = sqlx::query(
                        "UPDATE sessions SET expires_at = $2 \
                         WHERE id = $1 AND state = 'mfa_pending'",
                    )
                    .bind(challenge_id)
                    .bind(expires_at)
                    .execute(self.writer())
                    .await?;
                    Ok(r.rows_affected() == 1)
                }

                // #15 delivery
                async fn recovery_signin_for_challenge(
                    &self,
                    challenge_id: &str,
                ) -> Result<Option<RecoverySigninRecord>> {
                    let row = sqlx::query(&format!(
                        "SELECT {RS_COLS} FROM recovery_signins WHERE challenge_id = $1"
                    ))
                    .bind(challenge_id)
                    .fetch_optional(self.writer())
                    .await?;
                    row.as_ref().map(rs_from_row).transpose()
                }

                async fn replace_recovery_signin_code(
                    &self,
                    id: &str,
                    step: &str,
                    code_hash: &[u8],
                    now: UnixTime,
                    expires_at: UnixTime,
                ) -> Result<bool> {
                    let r = sqlx::query(
                        "UPDATE recovery_signins SET code_hash = $3, created_at = $4, \
                         expires_at = $5 WHERE id = $1 AND step = $2 AND used_at IS NULL",
                    )
                    .bind(id)
                    .bind(step)
                    .bind(code_hash)
                    .bind(now)
                    .bind(expires_at)
                    .execute(self.writer())
                    .await?;
                    Ok(r.rows_affected() == 1)
                }
            }
        };
    };
}

impl_recovery_store!(super::sqlite::SqliteStore, sqlx::sqlite::SqliteRow);
impl_recovery_store!(super::postgres::PgStore, sqlx::postgres::PgRow);

/// The shared suite: every check runs against both backends.
#[cfg(test)]
pub(crate) mod suite {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
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

    fn set(account: &str, set_id: &str, n: i64) -> Vec<RecoveryCodeRecord> {
        (0..n)
            .map(|i| RecoveryCodeRecord {
                account_id: account.into(),
                idx: i,
                set_id: set_id.into(),
                params: "argon2id;m=8;t=1;p=1".into(),
                salt: Redacted::new(vec![7; 16]),
                hash: Redacted::new(vec![u8::try_from(i).unwrap(); 32]),
                created_at: 100,
                used_at: None,
            })
            .collect()
    }

    pub async fn run_all(s: &dyn Store) {
        replace_and_spend(s).await;
        concurrent_spend(s).await;
        enroll_mark(s).await;
        verification_codes(s).await;
        recovery_signins(s).await;
    }

    fn rs(id: &str, challenge: &str, account: &str, expires_at: i64) -> RecoverySigninRecord {
        RecoverySigninRecord {
            id: id.into(),
            challenge_id: challenge.into(),
            account_id: account.into(),
            step: "email".into(),
            code_hash: Redacted::new(vec![1; 32]),
            created_at: 100,
            expires_at,
            attempts: 0,
            used_at: None,
        }
    }

    async fn challenge(s: &dyn Store, id: &str, account: &str) {
        s.create_session(&crate::store::SessionRecord {
            id: id.into(),
            token_hash: id.as_bytes().to_vec(),
            account_id: account.into(),
            state: crate::store::SessionState::MfaPending,
            created_at: 100,
            last_seen_at: 100,
            expires_at: 400,
            second_factor_at: None,
            client_addr: None,
            user_agent: None,
        })
        .await
        .unwrap();
    }

    async fn recovery_signins(s: &dyn Store) {
        let a = account(s, "rs-a").await;
        challenge(s, "ch-1", &a).await;
        s.start_recovery_signin(&rs("r1", "ch-1", &a, 700))
            .await
            .unwrap();
        // The phone step cannot be attempted before the email step passed.
        assert!(s
            .recovery_signin_attempt("ch-1", "phone", 200, 5)
            .await
            .unwrap()
            .is_none());
        let got = s
            .recovery_signin_attempt("ch-1", "email", 200, 2)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((got.id.as_str(), got.attempts), ("r1", 1));
        assert_eq!(
            s.recovery_signin_attempt("ch-1", "email", 200, 2)
                .await
                .unwrap()
                .unwrap()
                .attempts,
            2
        );
        // Used up after max attempts; a restart gives a new code with fresh attempts.
        assert!(s
            .recovery_signin_attempt("ch-1", "email", 200, 2)
            .await
            .unwrap()
            .is_none());
        s.start_recovery_signin(&rs("r2", "ch-1", &a, 700))
            .await
            .unwrap();
        // Expired codes are not found.
        assert!(s
            .recovery_signin_attempt("ch-1", "email", 700, 5)
            .await
            .unwrap()
            .is_none());
        // Of concurrent advances exactly one wins; the phone code then has its own attempts.
        let (x, y, z) = tokio::join!(
            s.advance_recovery_signin("r2", &[2; 32], 300, 900),
            s.advance_recovery_signin("r2", &[3; 32], 300, 900),
            s.advance_recovery_signin("r2", &[4; 32], 300, 900)
        );
        let won = [x.unwrap(), y.unwrap(), z.unwrap()];
        assert_eq!(won.iter().filter(|w| **w).count(), 1);
        assert!(s
            .recovery_signin_attempt("ch-1", "email", 301, 5)
            .await
            .unwrap()
            .is_none());
        let got = s
            .recovery_signin_attempt("ch-1", "phone", 301, 5)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((got.step.as_str(), got.attempts), ("phone", 1));
        assert!(s.finish_recovery_signin("r2", 302).await.unwrap());
        assert!(!s.finish_recovery_signin("r2", 303).await.unwrap());
        assert!(s
            .recovery_signin_attempt("ch-1", "phone", 304, 5)
            .await
            .unwrap()
            .is_none());
        // Only pending challenges are extended.
        assert!(s.extend_challenge("ch-1", 1_000).await.unwrap());
        assert!(!s.extend_challenge("no-such", 1_000).await.unwrap());
        assert_eq!(
            s.session_by_token_hash(b"ch-1")
                .await
                .unwrap()
                .unwrap()
                .expires_at,
            1_000
        );
    }

    fn vc(id: &str, account: &str, expires_at: i64) -> VerificationCodeRecord {
        VerificationCodeRecord {
            id: id.into(),
            account_id: account.into(),
            purpose: "contact.email".into(),
            target: "a@example.test".into(),
            code_hash: Redacted::new(vec![1; 32]),
            created_at: 100,
            expires_at,
            attempts: 0,
            used_at: None,
            window_start: 100,
        }
    }

    /// A `carry_since` after every budget start: the replaced code's attempts are not kept.
    const NO_CARRY: i64 = 1_000_000;

    async fn verification_codes(s: &dyn Store) {
        let a = account(s, "vc-a").await;
        s.create_verification_code(&vc("v1", &a, 700), NO_CARRY)
            .await
            .unwrap();
        // A new code replaces the old one.
        s.create_verification_code(&vc("v2", &a, 700), NO_CARRY)
            .await
            .unwrap();
        let got = s
            .verification_attempt(&a, "contact.email", 200, 3)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((got.id.as_str(), got.attempts), ("v2", 1));
        assert!(s
            .verification_attempt(&a, "contact.phone", 200, 3)
            .await
            .unwrap()
            .is_none());
        // Attempts are limited; expired codes are not found.
        assert_eq!(
            s.verification_attempt(&a, "contact.email", 200, 3)
                .await
                .unwrap()
                .unwrap()
                .attempts,
            2
        );
        assert_eq!(
            s.verification_attempt(&a, "contact.email", 200, 3)
                .await
                .unwrap()
                .unwrap()
                .attempts,
            3
        );
        assert!(s
            .verification_attempt(&a, "contact.email", 200, 3)
            .await
            .unwrap()
            .is_none());
        s.create_verification_code(&vc("v3", &a, 700), NO_CARRY)
            .await
            .unwrap();
        assert!(s
            .verification_attempt(&a, "contact.email", 700, 3)
            .await
            .unwrap()
            .is_none());
        // Single use.
        assert!(s.use_verification_code("v3", 300).await.unwrap());
        assert!(!s.use_verification_code("v3", 301).await.unwrap());
        assert!(s
            .verification_attempt(&a, "contact.email", 302, 3)
            .await
            .unwrap()
            .is_none());
        // Proven contacts.
        assert!(s.verified_contacts(&a).await.unwrap().is_empty());
        verification_budget(s).await;
        s.set_verified_contact(&a, "email", "a@example.test", 5)
            .await
            .unwrap();
        s.set_verified_contact(&a, "phone", "+8190", 5)
            .await
            .unwrap();
        s.set_verified_contact(&a, "email", "b@example.test", 6)
            .await
            .unwrap();
        assert_eq!(
            s.verified_contacts(&a).await.unwrap(),
            vec![
                ("email".to_string(), "b@example.test".to_string()),
                ("phone".to_string(), "+8190".to_string())
            ]
        );
    }

    async fn verification_budget(s: &dyn Store) {
        // A new code keeps the attempts of the unused code it replaces while that code's budget
        // began after `carry_since`; a fresh budget after that, or after a success.
        let a = account(s, "vc-budget").await;
        let first = s
            .create_verification_code(&vc("b1", &a, 700), 50)
            .await
            .unwrap();
        assert_eq!((first.attempts, first.window_start), (0, 100));
        for _ in 0..2 {
            s.verification_attempt(&a, "contact.email", 200, 5)
                .await
                .unwrap()
                .unwrap();
        }
        let mut next = vc("b2", &a, 900);
        next.created_at = 300;
        next.window_start = 300;
        let got = s.create_verification_code(&next, 50).await.unwrap();
        assert_eq!((got.attempts, got.window_start), (2, 100));
        // The stored row is the returned one: three more attempts use up the five.
        for n in 3..=5 {
            let c = s
                .verification_attempt(&a, "contact.email", 400, 5)
                .await
                .unwrap()
                .unwrap();
            assert_eq!((c.id.as_str(), c.attempts), ("b2", n));
        }
        assert!(s
            .verification_attempt(&a, "contact.email", 400, 5)
            .await
            .unwrap()
            .is_none());
        // Still inside the budget: a third code is born used up.
        let got = s
            .create_verification_code(&vc("b3", &a, 900), 99)
            .await
            .unwrap();
        assert_eq!((got.attempts, got.window_start), (5, 100));
        assert!(s
            .verification_attempt(&a, "contact.email", 400, 5)
            .await
            .unwrap()
            .is_none());
        // The budget began at 100; with carry_since 100 it is over: a fresh start.
        let mut fresh = vc("b4", &a, 900);
        fresh.window_start = 500;
        let got = s.create_verification_code(&fresh, 100).await.unwrap();
        assert_eq!((got.attempts, got.window_start), (0, 500));
        // A used code passes nothing on.
        s.verification_attempt(&a, "contact.email", 600, 5)
            .await
            .unwrap()
            .unwrap();
        assert!(s.use_verification_code("b4", 600).await.unwrap());
        let got = s
            .create_verification_code(&vc("b5", &a, 900), 0)
            .await
            .unwrap();
        assert_eq!((got.attempts, got.window_start), (0, 100));
        // Channels are separate.
        let mut phone = vc("b6", &a, 900);
        phone.purpose = "contact.phone".into();
        assert_eq!(
            s.create_verification_code(&phone, 0)
                .await
                .unwrap()
                .attempts,
            0
        );
    }

    async fn enroll_mark(s: &dyn Store) {
        let a = account(s, "rc-mark").await;
        let b = account(s, "rc-mark-b").await;
        assert!(!s.enroll_required(&a).await.unwrap());
        s.set_enroll_required(&a, 5).await.unwrap();
        s.set_enroll_required(&a, 6).await.unwrap();
        assert!(s.enroll_required(&a).await.unwrap());
        assert!(!s.enroll_required(&b).await.unwrap());
        s.clear_enroll_required(&a).await.unwrap();
        assert!(!s.enroll_required(&a).await.unwrap());
    }

    async fn replace_and_spend(s: &dyn Store) {
        let a = account(s, "rc-a").await;
        let b = account(s, "rc-b").await;
        assert!(s.recovery_codes(&a).await.unwrap().is_empty());
        s.replace_recovery_codes(&a, &set(&a, "s1", 10))
            .await
            .unwrap();
        s.replace_recovery_codes(&b, &set(&b, "sb", 10))
            .await
            .unwrap();
        let got = s.recovery_codes(&a).await.unwrap();
        assert_eq!(got.len(), 10);
        assert_eq!(got[3].hash.expose(), &vec![3; 32]);
        // Spent once only; another account's or another set's code is not touched.
        assert!(s.use_recovery_code(&a, "s1", 3, 200).await.unwrap());
        assert!(!s.use_recovery_code(&a, "s1", 3, 201).await.unwrap());
        assert!(!s.use_recovery_code(&a, "sb", 4, 201).await.unwrap());
        assert_eq!(s.recovery_codes(&a).await.unwrap()[3].used_at, Some(200));
        // Regenerating replaces the whole set: the old set's codes cannot be spent any more.
        s.replace_recovery_codes(&a, &set(&a, "s2", 10))
            .await
            .unwrap();
        assert!(!s.use_recovery_code(&a, "s1", 4, 300).await.unwrap());
        let got = s.recovery_codes(&a).await.unwrap();
        assert!(got.iter().all(|c| c.set_id == "s2" && c.used_at.is_none()));
        assert_eq!(s.recovery_codes(&b).await.unwrap().len(), 10);
        assert_eq!(s.delete_recovery_codes(&a).await.unwrap(), 10);
        assert!(s.recovery_codes(&a).await.unwrap().is_empty());
        assert_eq!(s.recovery_codes(&b).await.unwrap().len(), 10);
    }

    async fn concurrent_spend(s: &dyn Store) {
        let a = account(s, "rc-race").await;
        s.replace_recovery_codes(&a, &set(&a, "r", 10))
            .await
            .unwrap();
        for idx in 0..10 {
            let (x, y, z) = tokio::join!(
                s.use_recovery_code(&a, "r", idx, 1),
                s.use_recovery_code(&a, "r", idx, 2),
                s.use_recovery_code(&a, "r", idx, 3)
            );
            let won = [x.unwrap(), y.unwrap(), z.unwrap()];
            assert_eq!(won.iter().filter(|w| **w).count(), 1, "code {idx}");
        }
    }

    #[tokio::test]
    async fn recovery_suite_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::sqlite::SqliteStore::open(&dir.path().join("t.db"))
            .await
            .unwrap();
        run_all(&store).await;
    }

    #[tokio::test]
    async fn recovery_suite_on_postgres() {
        let db = crate::testing::TempDatabase::create().await.unwrap();
        let store = crate::store::postgres::PgStore::connect(&db.url)
            .await
            .unwrap();
        run_all(&store).await;
        store.pool().close().await;
    }
}
