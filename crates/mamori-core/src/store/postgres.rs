//! The PostgreSQL backend, for several server nodes sharing one database.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow as DbRow};

use super::*;

type Pool = PgPool;
type Db = sqlx::Postgres;

const BACKEND: &str = "postgres";

/// The PostgreSQL store.
#[derive(Debug)]
pub struct PgStore {
    pool: PgPool,
    /// The same pool: PostgreSQL handles concurrent writers itself.
    writer: PgPool,
    /// Group commit of audit events.
    audit_tx: tokio::sync::mpsc::Sender<AuditJob>,
    /// Application keys recently looked up.
    app_keys: AppKeyCache,
}

type This = PgStore;

/// How long a request waits for a database connection (see [`PgStore::connect`]).
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

impl PgStore {
    /// Connects and runs the migrations (sqlx serialises concurrent migrators with an advisory
    /// lock, so several nodes may start at once).
    pub async fn connect(url: &str) -> Result<Self> {
        let opts = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            // Below the default request timeout (10 s): while the database is down, sqlx
            // retries connecting until this deadline, and the request must get its honest 503
            // (`StoreError::is_unavailable`) before the generic 408 (#21, docs/reliability.md).
            .acquire_timeout(ACQUIRE_TIMEOUT)
            // No ping before every statement (a network round trip each, a third of a
            // validation's round trips). A connection broken by a database restart fails its
            // next statement, which answers 503 once, and sqlx then drops that connection.
            .test_before_acquire(false)
            .connect_with(opts)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(PgStore {
            writer: pool.clone(),
            audit_tx: spawn_audit_writer(pool.clone()),
            pool,
            app_keys: AppKeyCache::default(),
        })
    }

    /// The connection pool (tests read the raw tables).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The pool that every write goes through (one connection on SQLite).
    pub(crate) fn writer(&self) -> &PgPool {
        &self.writer
    }

    /// No server-side copy: the dump belongs to `pg_dump`, run where the database is.
    async fn backup_file(&self, _path: &std::path::Path) -> Result<()> {
        Err(Error::InvalidInput(
            "admin backup copies SQLite databases only: back up PostgreSQL with \
             `pg_dump --format=custom --file=mamori.dump DATABASE_URL` and copy the server key \
             file (server.key in the data directory) separately (docs/server.md)"
                .into(),
        ))
    }
}

include!("sql_common.rs");

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    #[tokio::test]
    async fn store_suite_on_postgres() {
        let db = crate::testing::TempDatabase::create().await.unwrap();
        let store = super::PgStore::connect(&db.url).await.unwrap();
        crate::store::suite::run_all(&store).await;
        store.pool().close().await;
    }
}
