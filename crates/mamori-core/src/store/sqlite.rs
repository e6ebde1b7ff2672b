//! The SQLite backend: one database file in WAL mode (readers never block the writer), foreign
//! keys on, a busy timeout so concurrent writers queue instead of failing.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow as DbRow,
    SqliteSynchronous,
};

use super::*;

type Pool = SqlitePool;
type Db = sqlx::Sqlite;

const BACKEND: &str = "sqlite";

/// The SQLite store.
#[derive(Debug)]
pub struct SqliteStore {
    /// Readers (WAL: they never block the writer nor each other).
    pool: SqlitePool,
    /// The one writer connection.
    writer: SqlitePool,
    /// Group commit of audit events.
    audit_tx: tokio::sync::mpsc::Sender<AuditJob>,
    /// Application keys recently looked up.
    app_keys: AppKeyCache,
}

type This = SqliteStore;

impl SqliteStore {
    /// Opens (creating if needed) the database file and runs the migrations.
    pub async fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir).map_err(|e| StoreError::CreateDir {
                    path: dir.to_path_buf(),
                    source: std::sync::Arc::new(e),
                })?;
            }
        }
        let opts = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL is durable in WAL mode except for the last transactions before a power
            // loss; it avoids an fsync per commit.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        // SQLite allows one writer at a time. One writer connection makes concurrent writes wait
        // in the pool's queue (cheap, fair) instead of in SQLite's busy handler (sleeps).
        // No `test_before_acquire`: its ping is one more trip to the connection's worker
        // thread before every statement, and a SQLite file connection does not go stale.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .connect_with(opts.clone())
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&writer).await?;
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .test_before_acquire(false)
            .connect_with(opts)
            .await?;
        Ok(SqliteStore {
            pool,
            audit_tx: spawn_audit_writer(writer.clone()),
            writer,
            app_keys: AppKeyCache::default(),
        })
    }

    /// The connection pool (tests read the raw tables).
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// The pool that every write goes through (one connection on SQLite).
    pub(crate) fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    /// `VACUUM INTO` a new file: one read transaction on a reader connection, so the copy is a
    /// consistent snapshot while the writer goes on (WAL), and it is compacted.
    async fn backup_file(&self, path: &Path) -> Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        let text = path.to_str().ok_or_else(|| {
            Error::InvalidInput(format!("{}: the path must be UTF-8", path.display()))
        })?;
        // Created here, exclusively and private, rather than by SQLite: an existing file is
        // refused without a race, and the copy is never readable by others (SQLite accepts an
        // empty file as the target of VACUUM INTO).
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => Error::Conflict(format!(
                    "{} already exists: choose a new file name",
                    path.display()
                )),
                _ => Error::InvalidInput(format!("cannot create {}: {e}", path.display())),
            })?;
        let copied = sqlx::query("VACUUM INTO $1")
            .bind(text)
            .execute(&self.pool)
            .await;
        if let Err(e) = copied {
            // Leave no partial copy that could later be mistaken for a backup.
            let _ = std::fs::remove_file(path);
            return Err(e.into());
        }
        Ok(())
    }
}

include!("sql_common.rs");

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    #[test]
    fn device_columns_and_names_list_the_same_columns() {
        // DEVICE_COLS (in SQL text) and DEVICE_NAMES (to read rows back) must not drift apart.
        let cols: Vec<&str> = super::DEVICE_COLS.split(',').map(str::trim).collect();
        assert_eq!(cols, super::DEVICE_NAMES);
    }

    #[tokio::test]
    async fn backup_into_copies_the_database_and_never_overwrites() {
        use crate::store::Store;
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let store = super::SqliteStore::open(&dir.path().join("t.db"))
            .await
            .unwrap();
        store.meta_init("k", b"v").await.unwrap();
        let copy = dir.path().join("copy.db");
        store.backup_into(&copy).await.unwrap();
        let mode = std::fs::metadata(&copy).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let before = std::fs::read(&copy).unwrap();
        let again = store.backup_into(&copy).await.unwrap_err();
        assert!(matches!(again, crate::error::Error::Conflict(_)), "{again}");
        assert!(std::fs::read(&copy).unwrap() == before);
        let back = super::SqliteStore::open(&copy).await.unwrap();
        assert_eq!(
            back.meta_get("k").await.unwrap().as_deref(),
            Some(&b"v"[..])
        );
    }

    #[tokio::test]
    async fn store_suite_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let store = super::SqliteStore::open(&dir.path().join("t.db"))
            .await
            .unwrap();
        crate::store::suite::run_all(&store).await;
    }
}
