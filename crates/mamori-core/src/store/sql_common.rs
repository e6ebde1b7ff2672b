// The SQL shared by both backends, included into `sqlite.rs` and `postgres.rs`, which each
// define `This` (the store type), `DbRow` (the backend's row type), `BACKEND`, a `pool` field for
// reads and a `writer` field for writes (one connection for SQLite, so that writers queue in the
// pool instead of sleeping in SQLite's busy handler; the same pool for PostgreSQL).
// Every statement uses only portable SQL: `$n` parameters, `RETURNING`, `ON CONFLICT`.

use sqlx::Row as _;

use crate::redacted::Redacted;

const ACCOUNT_COLS: &str = "id, name, role, email, phone, password_hash, password_changed_at, \
     created_at, mfa_failures, mfa_last_failure_at, locked_at";
const DEVICE_COLS: &str = "id, account_id, kind, name, serial, created_at, enabled_at, \
     last_used_at, secret_sealed, otp_type, algorithm, digits, period, drift, last_step, credential";
pub(super) const SESSION_COLS: &str = "id, token_hash, account_id, state, created_at, last_seen_at, \
     expires_at, second_factor_at, client_addr, user_agent";
const APP_KEY_COLS: &str = "id, name, key_hash, created_at, created_by, revoked_at, allow_root, \
     allow_no_device";
const AUDIT_COLS: &str = "id, at, account, actor, client_addr, user_agent, kind, result, detail";

fn account_from_row(r: &DbRow) -> Result<AccountRecord> {
    Ok(AccountRecord {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        role: Role::parse(&r.try_get::<String, _>("role")?)?,
        email: r.try_get("email")?,
        phone: r.try_get("phone")?,
        password_hash: r
            .try_get::<Option<String>, _>("password_hash")?
            .map(Redacted::new),
        password_changed_at: r.try_get("password_changed_at")?,
        created_at: r.try_get("created_at")?,
        mfa_failures: r.try_get("mfa_failures")?,
        mfa_last_failure_at: r.try_get("mfa_last_failure_at")?,
        locked_at: r.try_get("locked_at")?,
    })
}

fn device_from_row(r: &DbRow) -> Result<DeviceRecord> {
    device_from_columns(r, &DEVICE_NAMES)
}

/// The column names a device is read from: plain in `SELECT … FROM devices`, prefixed with `d_`
/// where devices are joined to accounts (whose `id`, `name` and `created_at` would clash).
const DEVICE_NAMES: [&str; 16] = [
    "id", "account_id", "kind", "name", "serial", "created_at", "enabled_at", "last_used_at",
    "secret_sealed", "otp_type", "algorithm", "digits", "period", "drift", "last_step",
    "credential",
];
/// The validate path's one query for an account and its devices, and the `d_`-prefixed names
/// its device columns are read back by: both derived from [`ACCOUNT_COLS`] and [`DEVICE_NAMES`],
/// built once.
static ACCOUNT_WITH_DEVICES: std::sync::LazyLock<(String, [String; 16])> =
    std::sync::LazyLock::new(|| {
        let account = ACCOUNT_COLS
            .split(',')
            .map(|c| format!("a.{}", c.trim()))
            .collect::<Vec<_>>()
            .join(", ");
        let devices = DEVICE_NAMES
            .map(|c| format!("d.{c} AS d_{c}"))
            .join(", ");
        let sql = format!(
            "SELECT {account}, {devices} FROM accounts a \
             LEFT JOIN devices d ON d.account_id = a.id WHERE a.name = $1 \
             ORDER BY d.created_at, d.id"
        );
        (sql, DEVICE_NAMES.map(|c| format!("d_{c}")))
    });

/// The validate API's one read ([`Store::validate_subject`]): the account's and its devices'
/// columns as in [`ACCOUNT_WITH_DEVICES`], and, only when no account has the name, the phantom
/// failure history of the name (`p_…`). Starting from a one-row table makes the statement return
/// a row even when nothing matches.
static VALIDATE_SUBJECT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let account = ACCOUNT_COLS
        .split(',')
        .map(|c| format!("a.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ");
    let devices = DEVICE_NAMES
        .map(|c| format!("d.{c} AS d_{c}"))
        .join(", ");
    format!(
        "SELECT {account}, {devices}, p.failures AS p_failures, \
         p.last_failure_at AS p_last_failure_at, p.locked_at AS p_locked_at \
         FROM (SELECT 1 AS one) q \
         LEFT JOIN accounts a ON a.name = $1 \
         LEFT JOIN devices d ON d.account_id = a.id \
         LEFT JOIN validate_phantoms p ON a.id IS NULL AND p.name_hash = $2 \
         ORDER BY d.created_at, d.id"
    )
});

fn phantom_from_columns(r: &DbRow, prefix: &str) -> Result<PhantomRecord> {
    Ok(PhantomRecord {
        failures: r
            .try_get::<Option<i64>, _>(format!("{prefix}failures").as_str())?
            .unwrap_or(0),
        last_failure_at: r.try_get(format!("{prefix}last_failure_at").as_str())?,
        locked_at: r.try_get(format!("{prefix}locked_at").as_str())?,
    })
}

fn device_from_columns<S: AsRef<str>>(r: &DbRow, c: &[S; 16]) -> Result<DeviceRecord> {
    let c = c.each_ref().map(AsRef::as_ref);
    Ok(DeviceRecord {
        id: r.try_get(c[0])?,
        account_id: r.try_get(c[1])?,
        kind: DeviceKind::parse(&r.try_get::<String, _>(c[2])?)?,
        name: r.try_get(c[3])?,
        serial: r.try_get(c[4])?,
        created_at: r.try_get(c[5])?,
        enabled_at: r.try_get(c[6])?,
        last_used_at: r.try_get(c[7])?,
        secret_sealed: r.try_get::<Option<Vec<u8>>, _>(c[8])?.map(Redacted::new),
        otp_type: r.try_get(c[9])?,
        algorithm: r.try_get(c[10])?,
        digits: r.try_get(c[11])?,
        period: r.try_get(c[12])?,
        drift: r.try_get(c[13])?,
        last_step: r.try_get(c[14])?,
        credential: r.try_get(c[15])?,
    })
}

pub(super) fn session_from_row(r: &DbRow) -> Result<SessionRecord> {
    Ok(SessionRecord {
        id: r.try_get("id")?,
        token_hash: r.try_get("token_hash")?,
        account_id: r.try_get("account_id")?,
        state: SessionState::parse(&r.try_get::<String, _>("state")?)?,
        created_at: r.try_get("created_at")?,
        last_seen_at: r.try_get("last_seen_at")?,
        expires_at: r.try_get("expires_at")?,
        second_factor_at: r.try_get("second_factor_at")?,
        client_addr: r.try_get("client_addr")?,
        user_agent: r.try_get("user_agent")?,
    })
}

fn app_key_from_row(r: &DbRow) -> Result<AppKeyRecord> {
    Ok(AppKeyRecord {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        key_hash: r.try_get("key_hash")?,
        created_at: r.try_get("created_at")?,
        created_by: r.try_get("created_by")?,
        revoked_at: r.try_get("revoked_at")?,
        allow_root: r.try_get::<i64, _>("allow_root")? != 0,
        allow_no_device: r.try_get::<i64, _>("allow_no_device")? != 0,
    })
}

fn audit_from_row(r: &DbRow) -> Result<AuditRecord> {
    Ok(AuditRecord {
        id: r.try_get("id")?,
        event: NewAuditEvent {
            at: r.try_get("at")?,
            account: r.try_get("account")?,
            actor: r.try_get("actor")?,
            client_addr: r.try_get("client_addr")?,
            user_agent: r.try_get("user_agent")?,
            kind: r.try_get("kind")?,
            result: r.try_get("result")?,
            detail: r.try_get("detail")?,
        },
    })
}

// A small read cache of application keys. The validate API looks its key up on every call; a key
// stays cached for `APP_KEY_TTL`, so a revocation takes effect on every node within that time.
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// How long a looked-up key is trusted without asking the database again.
pub const APP_KEY_TTL: Duration = Duration::from_secs(5);
/// At most this many keys are cached (the map is cleared when full).
const CAPACITY: usize = 1024;

/// Cache of unrevoked application keys by key hash.
#[derive(Debug, Default)]
pub struct AppKeyCache {
    map: Mutex<HashMap<Vec<u8>, (AppKeyRecord, Instant)>>,
}

impl AppKeyCache {
    /// A fresh entry for `hash`, if any.
    pub fn get(&self, hash: &[u8]) -> Option<AppKeyRecord> {
        let map = self.map.lock().ok()?;
        map.get(hash)
            .filter(|(_, at)| at.elapsed() < APP_KEY_TTL)
            .map(|(k, _)| k.clone())
    }

    /// Forgets a key (revoked on this node).
    pub fn remove(&self, hash: &[u8]) {
        if let Ok(mut map) = self.map.lock() {
            map.remove(hash);
        }
    }

    /// Remembers a key found in the database.
    pub fn put(&self, hash: &[u8], key: &AppKeyRecord) {
        if let Ok(mut map) = self.map.lock() {
            if map.len() >= CAPACITY {
                map.clear();
            }
            map.insert(hash.to_vec(), (key.clone(), Instant::now()));
        }
    }
}

/// An audit event waiting for the group commit, with where to send its id.
type AuditJob = (NewAuditEvent, tokio::sync::oneshot::Sender<Result<i64>>);

/// Most events written by one `INSERT` (8 parameters each; well below both backends' limits).
const AUDIT_BATCH: usize = 256;

/// Group commit of audit events: takes every event waiting, writes them with one multi-row
/// `INSERT`, then answers each caller with its id. A caller's `insert_audit` returns only after
/// its event is stored, as before, but under load many requests share one statement.
async fn audit_writer(writer: Pool, mut rx: tokio::sync::mpsc::Receiver<AuditJob>) {
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        while jobs.len() < AUDIT_BATCH {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        match insert_audit_rows(&writer, &jobs).await {
            Ok(ids) => {
                for ((_, tx), id) in jobs.into_iter().zip(ids) {
                    let _ = tx.send(Ok(id));
                }
            }
            Err(e) => {
                // One failure for every event of the batch (the driver's error is shared).
                let shared = match e {
                    Error::Store(s) => s,
                    other => StoreError::Corrupt(other.to_string()),
                };
                for (_, tx) in jobs {
                    let _ = tx.send(Err(Error::Store(shared.clone())));
                }
            }
        }
    }
}

async fn insert_audit_rows(writer: &Pool, jobs: &[AuditJob]) -> Result<Vec<i64>> {
    let mut sql = String::from(
        "INSERT INTO audit (at, account, actor, client_addr, user_agent, kind, result, detail) VALUES ",
    );
    for i in 0..jobs.len() {
        let b = i * 8;
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!(
            "(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${})",
            b + 1,
            b + 2,
            b + 3,
            b + 4,
            b + 5,
            b + 6,
            b + 7,
            b + 8
        ));
    }
    sql.push_str(" RETURNING id");
    let mut q = sqlx::query(&sql);
    for (e, _) in jobs {
        q = q
            .bind(e.at)
            .bind(&e.account)
            .bind(&e.actor)
            .bind(&e.client_addr)
            .bind(&e.user_agent)
            .bind(&e.kind)
            .bind(&e.result)
            .bind(&e.detail);
    }
    let rows = q.fetch_all(writer).await?;
    // Rows of one statement get increasing ids in VALUES order; RETURNING's order is not
    // promised, so sort.
    let mut ids = rows
        .iter()
        .map(|r| r.try_get::<i64, _>("id"))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    ids.sort_unstable();
    if ids.len() != jobs.len() {
        return Err(StoreError::Corrupt(
            "the audit insert returned the wrong number of ids".into(),
        )
        .into());
    }
    Ok(ids)
}

/// Starts the audit writer of a store.
fn spawn_audit_writer(writer: Pool) -> tokio::sync::mpsc::Sender<AuditJob> {
    let (tx, rx) = tokio::sync::mpsc::channel(4 * AUDIT_BATCH);
    tokio::spawn(audit_writer(writer, rx));
    tx
}

#[async_trait]
impl Store for This {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn close(&self) {
        self.writer.close().await;
        self.pool.close().await;
    }

    async fn backup_into(&self, path: &std::path::Path) -> Result<()> {
        // Each backend's own statement (below in sqlite.rs / postgres.rs).
        self.backup_file(path).await
    }

    async fn meta_get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let row = sqlx::query("SELECT value FROM meta WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => Some(r.try_get("value")?),
            None => None,
        })
    }

    async fn meta_init(&self, key: &str, value: &[u8]) -> Result<bool> {
        let r = sqlx::query(
            "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(value)
        .execute(&self.writer)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn create_account(&self, a: &AccountRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO accounts (id, name, role, email, phone, password_hash, \
             password_changed_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&a.id)
        .bind(&a.name)
        .bind(a.role.as_str())
        .bind(&a.email)
        .bind(&a.phone)
        .bind(a.password_hash.as_ref().map(|h| h.expose().as_str()))
        .bind(a.password_changed_at)
        .bind(a.created_at)
        .execute(&self.writer)
        .await
        .map_err(|e| map_unique(e, "an account with this name"))?;
        Ok(())
    }

    async fn account_by_name(&self, name: &str) -> Result<Option<AccountRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {ACCOUNT_COLS} FROM accounts WHERE name = $1"
        ))
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(account_from_row).transpose()
    }

    async fn account_with_devices(
        &self,
        name: &str,
    ) -> Result<Option<(AccountRecord, Vec<DeviceRecord>)>> {
        // One row per device (or one row with NULL device columns): the account columns repeat,
        // which costs less than a second statement.
        let (sql, device_names) = &*ACCOUNT_WITH_DEVICES;
        let rows = sqlx::query(sql)
        .bind(name)
        .fetch_all(&self.pool)
        .await?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let account = account_from_row(first)?;
        let mut devices = Vec::with_capacity(rows.len());
        for r in &rows {
            if r.try_get::<Option<String>, _>(device_names[0].as_str())?.is_some() {
                devices.push(device_from_columns(r, device_names)?);
            }
        }
        Ok(Some((account, devices)))
    }

    async fn validate_subject(&self, name: &str, phantom_key: &[u8]) -> Result<ValidateSubject> {
        let rows = sqlx::query(&VALIDATE_SUBJECT)
            .bind(name)
            .bind(phantom_key)
            .fetch_all(&self.pool)
            .await?;
        let first = rows
            .first()
            .ok_or_else(|| StoreError::Corrupt("the validate lookup returned no row".into()))?;
        if first.try_get::<Option<String>, _>("id")?.is_none() {
            return Ok(ValidateSubject::Unknown(phantom_from_columns(first, "p_")?));
        }
        let (_, device_names) = &*ACCOUNT_WITH_DEVICES;
        let account = account_from_row(first)?;
        let mut devices = Vec::with_capacity(rows.len());
        for r in &rows {
            if r.try_get::<Option<String>, _>(device_names[0].as_str())?.is_some() {
                devices.push(device_from_columns(r, device_names)?);
            }
        }
        Ok(ValidateSubject::Account(account, devices))
    }

    async fn phantom_failures(&self, key: &[u8]) -> Result<PhantomRecord> {
        let row = sqlx::query(
            "SELECT failures, last_failure_at, locked_at FROM validate_phantoms \
             WHERE name_hash = $1",
        )
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(r) => phantom_from_columns(&r, ""),
            None => Ok(PhantomRecord::default()),
        }
    }

    async fn record_phantom_failure(
        &self,
        key: &[u8],
        seen: i64,
        now: UnixTime,
        lock_after: i64,
    ) -> Result<Option<FailureCount>> {
        // One statement: the first failure inserts the row (a caller that saw no row passes
        // `seen` 0, and a row that appeared meanwhile has a count of at least 1, so that caller
        // loses); later ones update it only if the count is still the one the caller saw, so
        // two concurrent requests cannot both count from the same state (the loser is told and
        // decides again on the new state).
        let row = sqlx::query(
            "INSERT INTO validate_phantoms (name_hash, failures, last_failure_at, locked_at) \
             VALUES ($1, 1, $2, CASE WHEN 1 >= $3 THEN $2 ELSE NULL END) \
             ON CONFLICT (name_hash) DO UPDATE SET \
             failures = validate_phantoms.failures + 1, last_failure_at = $2, \
             locked_at = CASE WHEN validate_phantoms.locked_at IS NULL \
             AND validate_phantoms.failures + 1 >= $3 THEN $2 \
             ELSE validate_phantoms.locked_at END \
             WHERE validate_phantoms.failures = $4 \
             RETURNING failures, locked_at",
        )
        .bind(key)
        .bind(now)
        .bind(lock_after)
        .bind(seen)
        .fetch_optional(&self.writer)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let failures = row.try_get("failures")?;
        let locked = row.try_get::<Option<i64>, _>("locked_at")?.is_some();
        Ok(Some(FailureCount {
            failures,
            locked,
            // The compare-and-swap lets exactly one caller move the count to the limit.
            locked_now: locked && failures == lock_after,
        }))
    }

    async fn account_by_id(&self, id: &str) -> Result<Option<AccountRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {ACCOUNT_COLS} FROM accounts WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(account_from_row).transpose()
    }

    async fn list_accounts(&self) -> Result<Vec<AccountRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {ACCOUNT_COLS} FROM accounts ORDER BY name"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(account_from_row).collect()
    }

    async fn count_accounts(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM accounts")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("n")?)
    }

    async fn set_password(&self, account_id: &str, hash: &str, now: UnixTime) -> Result<()> {
        let r = sqlx::query(
            "UPDATE accounts SET password_hash = $1, password_changed_at = $2 WHERE id = $3",
        )
        .bind(hash)
        .bind(now)
        .bind(account_id)
        .execute(&self.writer)
        .await?;
        if r.rows_affected() == 0 {
            return Err(Error::NotFound("account"));
        }
        Ok(())
    }

    async fn reserve_mfa_attempt(
        &self,
        account_id: &str,
        seen_failures: i64,
        seen_last: Option<UnixTime>,
        now: UnixTime,
        lock_after: i64,
    ) -> Result<bool> {
        // Compare-and-swap on the state the throttle decision was made on: of concurrent
        // attempts on any node, one moves the count and the others re-read.
        let r = sqlx::query(
            "UPDATE accounts SET mfa_failures = mfa_failures + 1, mfa_last_failure_at = $2 \
             WHERE id = $1 AND locked_at IS NULL AND mfa_failures = $3 AND mfa_failures < $4 \
             AND mfa_last_failure_at IS NOT DISTINCT FROM $5",
        )
        .bind(account_id)
        .bind(now)
        .bind(seen_failures)
        .bind(lock_after)
        .bind(seen_last)
        .execute(&self.writer)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn claim_mfa_success(
        &self,
        account_id: &str,
        seen_failures: i64,
        seen_last: Option<UnixTime>,
        lock_after: i64,
    ) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE accounts SET mfa_failures = 0, mfa_last_failure_at = NULL \
             WHERE id = $1 AND locked_at IS NULL AND mfa_failures = $2 AND mfa_failures < $3 \
             AND mfa_last_failure_at IS NOT DISTINCT FROM $4",
        )
        .bind(account_id)
        .bind(seen_failures)
        .bind(lock_after)
        .bind(seen_last)
        .execute(&self.writer)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn settle_mfa_failure(
        &self,
        account_id: &str,
        now: UnixTime,
        lock_after: i64,
    ) -> Result<FailureCount> {
        // The failure was counted when the attempt was reserved; only the lock is decided
        // here, by one conditional update, so exactly one failure locks the account.
        let locked_now = sqlx::query(
            "UPDATE accounts SET locked_at = $2 \
             WHERE id = $1 AND locked_at IS NULL AND mfa_failures >= $3",
        )
        .bind(account_id)
        .bind(now)
        .bind(lock_after)
        .execute(&self.writer)
        .await?
        .rows_affected()
            == 1;
        let row = sqlx::query("SELECT mfa_failures, locked_at FROM accounts WHERE id = $1")
            .bind(account_id)
            .fetch_optional(&self.writer)
            .await?
            .ok_or(Error::NotFound("account"))?;
        Ok(FailureCount {
            failures: row.try_get("mfa_failures")?,
            locked: row.try_get::<Option<i64>, _>("locked_at")?.is_some(),
            locked_now,
        })
    }

    async fn release_mfa_attempt(
        &self,
        account_id: &str,
        reserved_at: UnixTime,
        before: Option<UnixTime>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE accounts SET mfa_failures = mfa_failures - 1, \
             mfa_last_failure_at = CASE WHEN mfa_last_failure_at = $2 THEN $3 \
             ELSE mfa_last_failure_at END \
             WHERE id = $1 AND mfa_failures > 0 AND locked_at IS NULL",
        )
        .bind(account_id)
        .bind(reserved_at)
        .bind(before)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn reset_mfa_failures(&self, account_id: &str) -> Result<()> {
        sqlx::query(
            "UPDATE accounts SET mfa_failures = 0, mfa_last_failure_at = NULL \
             WHERE id = $1 AND mfa_failures <> 0 AND locked_at IS NULL",
        )
        .bind(account_id)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn reset_mfa(&self, account_id: &str) -> Result<u64> {
        let mut tx = self.writer.begin().await?;
        let r = sqlx::query(
            "UPDATE accounts SET device_count = 0, mfa_failures = 0, mfa_last_failure_at = NULL, \
             locked_at = NULL WHERE id = $1",
        )
        .bind(account_id)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() == 0 {
            return Err(Error::NotFound("account"));
        }
        let d = sqlx::query("DELETE FROM devices WHERE account_id = $1")
            .bind(account_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(d.rows_affected())
    }

    async fn create_device(&self, d: &DeviceRecord, max_devices: i64) -> Result<()> {
        let mut tx = self.writer.begin().await?;
        This::insert_device_within_limit(&mut tx, d, max_devices).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn pending_devices_created_before(&self, cutoff: UnixTime) -> Result<Vec<DeviceRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {DEVICE_COLS} FROM devices WHERE enabled_at IS NULL AND kind = 'virtual' \
             AND created_at < $1 ORDER BY created_at LIMIT 1000"
        ))
        .bind(cutoff)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(device_from_row).collect()
    }

    async fn devices_for_account(&self, account_id: &str) -> Result<Vec<DeviceRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {DEVICE_COLS} FROM devices WHERE account_id = $1 ORDER BY created_at, id"
        ))
        .bind(account_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(device_from_row).collect()
    }

    async fn device(&self, account_id: &str, device_id: &str) -> Result<Option<DeviceRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {DEVICE_COLS} FROM devices WHERE account_id = $1 AND id = $2"
        ))
        .bind(account_id)
        .bind(device_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(device_from_row).transpose()
    }

    async fn enable_device(
        &self,
        device_id: &str,
        now: UnixTime,
        drift: i64,
        last_step: i64,
    ) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE devices SET enabled_at = $2, drift = $3, last_step = $4 \
             WHERE id = $1 AND enabled_at IS NULL",
        )
        .bind(device_id)
        .bind(now)
        .bind(drift)
        .bind(last_step)
        .execute(&self.writer)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn resync_device(&self, device_id: &str, drift: i64, last_step: i64) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE devices SET drift = $2, last_step = $3 WHERE id = $1 \
             AND enabled_at IS NOT NULL AND (last_step IS NULL OR last_step < $3)",
        )
        .bind(device_id)
        .bind(drift)
        .bind(last_step)
        .execute(&self.writer)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn accept_step(
        &self,
        device_id: &str,
        step: i64,
        drift: i64,
        now: UnixTime,
    ) -> Result<bool> {
        // The replay rule (RFC 6238 section 5.2, NIST SP 800-63B section 5.1.4.2) as one
        // conditional update: of two requests with the same code, on one node or two, the
        // database lets exactly one change the row.
        let r = sqlx::query(
            "UPDATE devices SET last_step = $2, drift = $3, last_used_at = $4 WHERE id = $1 \
             AND enabled_at IS NOT NULL AND (last_step IS NULL OR last_step < $2)",
        )
        .bind(device_id)
        .bind(step)
        .bind(drift)
        .bind(now)
        .execute(&self.writer)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn rename_device(
        &self,
        account_id: &str,
        device_id: &str,
        name: &str,
        serial: &str,
    ) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE devices SET name = $3, serial = $4 WHERE account_id = $1 AND id = $2",
        )
        .bind(account_id)
        .bind(device_id)
        .bind(name)
        .bind(serial)
        .execute(&self.writer)
        .await
        .map_err(|e| map_unique(e, "a device with this name"))?;
        Ok(r.rows_affected() == 1)
    }

    async fn delete_device(&self, account_id: &str, device_id: &str) -> Result<bool> {
        let mut tx = self.writer.begin().await?;
        let r = sqlx::query("DELETE FROM devices WHERE account_id = $1 AND id = $2")
            .bind(account_id)
            .bind(device_id)
            .execute(&mut *tx)
            .await?;
        if r.rows_affected() == 1 {
            sqlx::query("UPDATE accounts SET device_count = device_count - 1 WHERE id = $1")
                .bind(account_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(r.rows_affected() == 1)
    }

    async fn create_session(&self, s: &SessionRecord) -> Result<()> {
        sqlx::query(&format!(
            "INSERT INTO sessions ({SESSION_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        ))
        .bind(&s.id)
        .bind(&s.token_hash)
        .bind(&s.account_id)
        .bind(s.state.as_str())
        .bind(s.created_at)
        .bind(s.last_seen_at)
        .bind(s.expires_at)
        .bind(s.second_factor_at)
        .bind(&s.client_addr)
        .bind(&s.user_agent)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn session_by_token_hash(&self, hash: &[u8]) -> Result<Option<SessionRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {SESSION_COLS} FROM sessions WHERE token_hash = $1"
        ))
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(session_from_row).transpose()
    }

    async fn touch_session(&self, id: &str, now: UnixTime) -> Result<()> {
        sqlx::query("UPDATE sessions SET last_seen_at = $2 WHERE id = $1 AND last_seen_at < $2")
            .bind(id)
            .bind(now)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn set_session_second_factor(&self, id: &str, now: UnixTime) -> Result<()> {
        sqlx::query("UPDATE sessions SET second_factor_at = $2, last_seen_at = $2 WHERE id = $1")
            .bind(id)
            .bind(now)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn sessions_for_account(&self, account_id: &str) -> Result<Vec<SessionRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {SESSION_COLS} FROM sessions WHERE account_id = $1 \
             AND state <> 'mfa_pending' ORDER BY created_at DESC, id"
        ))
        .bind(account_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(session_from_row).collect()
    }

    async fn delete_session(&self, account_id: &str, id: &str) -> Result<bool> {
        let r = sqlx::query("DELETE FROM sessions WHERE account_id = $1 AND id = $2")
            .bind(account_id)
            .bind(id)
            .execute(&self.writer)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn delete_sessions_for_account(&self, account_id: &str) -> Result<u64> {
        let r = sqlx::query("DELETE FROM sessions WHERE account_id = $1")
            .bind(account_id)
            .execute(&self.writer)
            .await?;
        Ok(r.rows_affected())
    }

    async fn delete_other_sessions(&self, account_id: &str, keep: &str) -> Result<u64> {
        let r = sqlx::query("DELETE FROM sessions WHERE account_id = $1 AND id <> $2")
            .bind(account_id)
            .bind(keep)
            .execute(&self.writer)
            .await?;
        Ok(r.rows_affected())
    }

    async fn purge_expired_sessions(&self, now: UnixTime, idle_secs: i64) -> Result<u64> {
        let r = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1 OR last_seen_at <= $2")
            .bind(now)
            .bind(now.saturating_sub(idle_secs))
            .execute(&self.writer)
            .await?;
        Ok(r.rows_affected())
    }

    async fn create_setup_token(
        &self,
        hash: &[u8],
        account_id: &str,
        expires_at: UnixTime,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO setup_tokens (token_hash, account_id, expires_at) VALUES ($1, $2, $3)",
        )
        .bind(hash)
        .bind(account_id)
        .bind(expires_at)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn setup_token_account(&self, hash: &[u8], now: UnixTime) -> Result<Option<String>> {
        let row = sqlx::query(
            "SELECT account_id FROM setup_tokens WHERE token_hash = $1 AND used_at IS NULL \
             AND expires_at > $2",
        )
        .bind(hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            Some(r) => Some(r.try_get("account_id")?),
            None => None,
        })
    }

    async fn consume_setup_token(&self, hash: &[u8], now: UnixTime) -> Result<Option<String>> {
        let row = sqlx::query(
            "UPDATE setup_tokens SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL \
             AND expires_at > $2 RETURNING account_id",
        )
        .bind(hash)
        .bind(now)
        .fetch_optional(&self.writer)
        .await?;
        Ok(match row {
            Some(r) => Some(r.try_get("account_id")?),
            None => None,
        })
    }

    async fn create_app_key(&self, k: &AppKeyRecord) -> Result<()> {
        sqlx::query(&format!(
            "INSERT INTO app_keys ({APP_KEY_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ))
        .bind(&k.id)
        .bind(&k.name)
        .bind(&k.key_hash)
        .bind(k.created_at)
        .bind(&k.created_by)
        .bind(k.revoked_at)
        .bind(i64::from(k.allow_root))
        .bind(i64::from(k.allow_no_device))
        .execute(&self.writer)
        .await
        .map_err(|e| map_unique(e, "this application key"))?;
        Ok(())
    }

    async fn app_key_by_hash(&self, hash: &[u8]) -> Result<Option<AppKeyRecord>> {
        if let Some(k) = self.app_keys.get(hash) {
            return Ok(Some(k));
        }
        let row = sqlx::query(&format!(
            "SELECT {APP_KEY_COLS} FROM app_keys WHERE key_hash = $1 AND revoked_at IS NULL"
        ))
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?;
        let key = row.as_ref().map(app_key_from_row).transpose()?;
        if let Some(k) = &key {
            self.app_keys.put(hash, k);
        }
        Ok(key)
    }

    async fn list_app_keys(&self) -> Result<Vec<AppKeyRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {APP_KEY_COLS} FROM app_keys ORDER BY created_at, id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(app_key_from_row).collect()
    }

    async fn revoke_app_key(&self, id: &str, now: UnixTime) -> Result<bool> {
        let row = sqlx::query(
            "UPDATE app_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL \
             RETURNING key_hash",
        )
        .bind(id)
        .bind(now)
        .fetch_optional(&self.writer)
        .await?;
        let Some(row) = row else { return Ok(false) };
        // This node stops accepting the key at once; other nodes within APP_KEY_TTL.
        self.app_keys.remove(&row.try_get::<Vec<u8>, _>("key_hash")?);
        Ok(true)
    }

    async fn insert_audit(&self, e: &NewAuditEvent) -> Result<i64> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        // Bounded and without control characters, whoever wrote it: one row PostgreSQL
        // refuses (NUL) would fail every event of its group commit.
        self.audit_tx
            .send((e.bounded(), tx))
            .await
            .map_err(|_| StoreError::AuditWriterStopped)?;
        rx.await
            .map_err(|_| StoreError::AuditWriterStopped)?
    }

    async fn count_audit_since(
        &self,
        account: &str,
        kind: &str,
        result: &str,
        since: UnixTime,
    ) -> Result<(i64, Option<UnixTime>)> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, MIN(at) AS oldest FROM audit \
             WHERE account = $1 AND kind = $2 AND result = $3 AND at >= $4",
        )
        .bind(account)
        .bind(kind)
        .bind(result)
        .bind(since)
        .fetch_one(&self.pool)
        .await?;
        Ok((row.try_get("n")?, row.try_get("oldest")?))
    }

    async fn count_audit_detail_since(
        &self,
        account: &str,
        kind: &str,
        result: &str,
        detail: &str,
        since: UnixTime,
    ) -> Result<(i64, Option<UnixTime>)> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, MIN(at) AS oldest FROM audit \
             WHERE account = $1 AND kind = $2 AND result = $3 AND detail = $4 AND at >= $5",
        )
        .bind(account)
        .bind(kind)
        .bind(result)
        .bind(detail)
        .bind(since)
        .fetch_one(&self.pool)
        .await?;
        Ok((row.try_get("n")?, row.try_get("oldest")?))
    }

    async fn prune_audit_before(&self, before: UnixTime, limit: i64) -> Result<u64> {
        // Ids grow with time, so the oldest events are the first ids: the subquery walks the
        // primary key from its start and stops after `limit` matches.
        let r = sqlx::query(
            "DELETE FROM audit WHERE id IN \
             (SELECT id FROM audit WHERE at < $1 ORDER BY id LIMIT $2)",
        )
        .bind(before)
        .bind(limit)
        .execute(&self.writer)
        .await?;
        Ok(r.rows_affected())
    }

    async fn list_audit(&self, f: &AuditFilter) -> Result<Vec<AuditRecord>> {
        let mut sql = format!("SELECT {AUDIT_COLS} FROM audit WHERE id > $1");
        let mut n = 1;
        if f.account.is_some() {
            n += 1;
            sql.push_str(&format!(" AND account = ${n}"));
        }
        let kind = f.kind.as_ref().map(|k| {
            if k.ends_with('.') {
                // Escape LIKE's wildcards so only the prefix matches.
                let escaped = k
                    .replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_");
                (true, format!("{escaped}%"))
            } else {
                (false, k.clone())
            }
        });
        if let Some((prefix, _)) = &kind {
            n += 1;
            sql.push_str(&format!(
                " AND kind {} ${n}{}",
                if *prefix { "LIKE" } else { "=" },
                if *prefix { " ESCAPE '\\'" } else { "" }
            ));
        }
        n += 1;
        sql.push_str(&format!(" ORDER BY id LIMIT ${n}"));
        let mut q = sqlx::query(&sql).bind(f.after.unwrap_or(0));
        if let Some(a) = &f.account {
            q = q.bind(a);
        }
        if let Some((_, k)) = &kind {
            q = q.bind(k);
        }
        let rows = q.bind(clamp_limit(f.limit)).fetch_all(&self.pool).await?;
        rows.iter().map(audit_from_row).collect()
    }
}

impl This {
    /// Inside `tx`: counts `d` against its account's device limit and inserts it. Every way of
    /// adding a device (virtual device, hardware token, security key) goes through here. The
    /// counter update takes the account row's write lock first, so two nodes adding devices at
    /// once cannot both pass the limit.
    pub(crate) async fn insert_device_within_limit(
        tx: &mut sqlx::Transaction<'_, Db>,
        d: &DeviceRecord,
        max_devices: i64,
    ) -> Result<()> {
        let r = sqlx::query(
            "UPDATE accounts SET device_count = device_count + 1 \
             WHERE id = $1 AND device_count < $2",
        )
        .bind(&d.account_id)
        .bind(max_devices)
        .execute(&mut **tx)
        .await?;
        if r.rows_affected() == 0 {
            let exists = sqlx::query("SELECT id FROM accounts WHERE id = $1")
                .bind(&d.account_id)
                .fetch_optional(&mut **tx)
                .await?
                .is_some();
            return Err(if exists {
                Error::DeviceLimitReached(u32::try_from(max_devices).unwrap_or(u32::MAX))
            } else {
                Error::NotFound("account")
            });
        }
        sqlx::query(&format!(
            "INSERT INTO devices ({DEVICE_COLS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
        ))
        .bind(&d.id)
        .bind(&d.account_id)
        .bind(d.kind.as_str())
        .bind(&d.name)
        .bind(&d.serial)
        .bind(d.created_at)
        .bind(d.enabled_at)
        .bind(d.last_used_at)
        .bind(d.secret_sealed.as_ref().map(|s| s.expose().as_slice()))
        .bind(&d.otp_type)
        .bind(&d.algorithm)
        .bind(d.digits)
        .bind(d.period)
        .bind(d.drift)
        .bind(d.last_step)
        .bind(&d.credential)
        .execute(&mut **tx)
        .await
        .map_err(|e| map_unique(e, "a device with this name"))?;
        Ok(())
    }
}
