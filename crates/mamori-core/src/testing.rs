//! Test support shared by unit and integration tests: a throwaway PostgreSQL database.
//! Not part of the service; hidden from the documentation.

use std::str::FromStr;

use rand::RngCore;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};

use crate::error::{Error, Result};

/// The server tests use: `MAMORI_TEST_PG`, else the machine's PostgreSQL with trust auth.
pub fn admin_url() -> String {
    std::env::var("MAMORI_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A database with a random name, dropped (with its connections) when this value is dropped,
/// also when a test panics.
#[derive(Debug)]
pub struct TempDatabase {
    /// Its name.
    pub name: String,
    /// URL to connect to it.
    pub url: String,
    admin: String,
}

impl TempDatabase {
    /// Creates the database.
    pub async fn create() -> Result<TempDatabase> {
        let admin = admin_url();
        let mut suffix = [0u8; 8];
        rand::rngs::OsRng.fill_bytes(&mut suffix);
        let name = format!("mamori_test_{}", data_encoding::HEXLOWER.encode(&suffix));
        let mut conn = PgConnection::connect(&admin).await?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await?;
        let opts = PgConnectOptions::from_str(&admin)?.database(&name);
        let url = opts.to_url_lossy().to_string();
        Ok(TempDatabase { name, url, admin })
    }
}

impl Drop for TempDatabase {
    fn drop(&mut self) {
        let admin = self.admin.clone();
        let name = self.name.clone();
        // Drop may run inside a runtime (or while unwinding): use a fresh thread and runtime.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| Error::Internal(e.to_string()))?;
            rt.block_on(async move {
                let mut conn = PgConnection::connect(&admin).await?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn)
                    .await?;
                Ok::<(), Error>(())
            })
        })
        .join();
    }
}
