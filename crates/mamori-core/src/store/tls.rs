//! Built-in HTTPS state shared by the nodes of one database (#22, `[tls] acme`): the ACME
//! account and the certificate with its key, sealed with the server key by the domain
//! ([`crate::domain::Service::tls_state_get`]), and the lease that lets one node order while
//! the others wait and then serve what it stored. A separate trait, [`TlsStore`], that every
//! [`super::Store`] implements, with the SQL written once for both backends.

use async_trait::async_trait;

use crate::clock::UnixTime;
use crate::error::Result;

/// Sealed TLS state and the ordering lease.
#[async_trait]
pub trait TlsStore: Send + Sync {
    /// The sealed value stored under `name`.
    async fn tls_state_get(&self, name: &str) -> Result<Option<Vec<u8>>>;
    /// Stores (or replaces) the sealed value under `name`.
    async fn tls_state_put(&self, name: &str, sealed: &[u8], now: UnixTime) -> Result<()>;
    /// Takes the lease `name` for `holder` until `until`, if it is free, expired (before
    /// `now`) or already `holder`'s; returns whether `holder` holds it now. One statement, so
    /// two nodes asking at once cannot both get it.
    async fn tls_lease(
        &self,
        name: &str,
        holder: &str,
        now: UnixTime,
        until: UnixTime,
    ) -> Result<bool>;
    /// Gives the lease back (if `holder` still holds it).
    async fn tls_lease_release(&self, name: &str, holder: &str) -> Result<()>;
}

macro_rules! impl_tls_store {
    ($store:ty) => {
        const _: () = {
            use sqlx::Row as _;

            #[async_trait]
            impl TlsStore for $store {
                async fn tls_state_get(&self, name: &str) -> Result<Option<Vec<u8>>> {
                    let row = sqlx::query("SELECT value FROM tls_state WHERE name = $1")
                        .bind(name)
                        .fetch_optional(self.pool())
                        .await?;
                    Ok(match row {
                        Some(r) => Some(r.try_get("value")?),
                        None => None,
                    })
                }

                async fn tls_state_put(
                    &self,
                    name: &str,
                    sealed: &[u8],
                    now: UnixTime,
                ) -> Result<()> {
                    sqlx::query(
                        "INSERT INTO tls_state (name, value, updated_at) VALUES ($1, $2, $3) \
                         ON CONFLICT (name) DO UPDATE SET value = excluded.value, \
                         updated_at = excluded.updated_at",
                    )
                    .bind(name)
                    .bind(sealed)
                    .bind(now)
                    .execute(self.writer())
                    .await?;
                    Ok(())
                }

                async fn tls_lease(
                    &self,
                    name: &str,
                    holder: &str,
                    now: UnixTime,
                    until: UnixTime,
                ) -> Result<bool> {
                    let r = sqlx::query(
                        "INSERT INTO tls_lease (name, holder, until_at) VALUES ($1, $2, $3) \
                         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
                         until_at = excluded.until_at \
                         WHERE tls_lease.until_at < $4 OR tls_lease.holder = excluded.holder",
                    )
                    .bind(name)
                    .bind(holder)
                    .bind(until)
                    .bind(now)
                    .execute(self.writer())
                    .await?;
                    Ok(r.rows_affected() == 1)
                }

                async fn tls_lease_release(&self, name: &str, holder: &str) -> Result<()> {
                    sqlx::query("DELETE FROM tls_lease WHERE name = $1 AND holder = $2")
                        .bind(name)
                        .bind(holder)
                        .execute(self.writer())
                        .await?;
                    Ok(())
                }
            }
        };
    };
}

impl_tls_store!(super::sqlite::SqliteStore);
impl_tls_store!(super::postgres::PgStore);
