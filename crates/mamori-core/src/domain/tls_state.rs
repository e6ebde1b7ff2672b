//! #22: the built-in HTTPS state several nodes share through the database (`[tls] acme` on
//! PostgreSQL): values sealed with the server key under their name, and the lease of the one
//! node that orders a certificate. The server's ACME task (mamori-server `http/acme.rs`) is
//! the only caller; it never touches the store directly, so nothing is stored unsealed.

use rand::rngs::OsRng;
use zeroize::Zeroizing;

use super::Service;
use crate::clock::UnixTime;
use crate::error::Result;

/// The associated data a value is sealed with: its name, so one cannot be swapped for another.
fn identity(name: &str) -> Vec<u8> {
    format!("tls_state:{name}").into_bytes()
}

impl Service {
    /// The value stored under `name`, opened; `None` when absent.
    pub async fn tls_state_get(&self, name: &str) -> Result<Option<Zeroizing<Vec<u8>>>> {
        match self.store.tls_state_get(name).await? {
            Some(sealed) => Ok(Some(self.key.open(&identity(name), &sealed)?)),
            None => Ok(None),
        }
    }

    /// Seals `value` and stores it under `name` (replacing what was there).
    pub async fn tls_state_put(&self, name: &str, value: &[u8], now: UnixTime) -> Result<()> {
        let sealed = self.key.seal(&mut OsRng, &identity(name), value)?;
        self.store.tls_state_put(name, &sealed, now).await
    }

    /// Takes (or extends) the lease `name` for `holder` for `secs` seconds; whether it holds
    /// it now.
    pub async fn tls_lease(
        &self,
        name: &str,
        holder: &str,
        now: UnixTime,
        secs: i64,
    ) -> Result<bool> {
        self.store
            .tls_lease(name, holder, now, now.saturating_add(secs))
            .await
    }

    /// Gives the lease back.
    pub async fn tls_lease_release(&self, name: &str, holder: &str) -> Result<()> {
        self.store.tls_lease_release(name, holder).await
    }
}
