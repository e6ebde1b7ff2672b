//! The ACME challenges of an order in progress (#22), shared by the ACME task that sets them
//! (`acme.rs`), the redirect listener that answers HTTP-01 (`redirect.rs`) and the TLS
//! resolver that answers TLS-ALPN-01 (`tls.rs`).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use rustls::sign::CertifiedKey;

/// The challenges of an order in progress, answered by the redirect listener (HTTP-01) and
/// by the TLS listener (TLS-ALPN-01, RFC 8737).
#[derive(Debug, Default)]
pub struct Challenges {
    /// HTTP-01: token → key authorization.
    http01: RwLock<HashMap<String, String>>,
    /// TLS-ALPN-01: lower-case domain → the self-signed validation certificate.
    alpn: RwLock<HashMap<String, Arc<CertifiedKey>>>,
}

impl Challenges {
    /// Whether any HTTP-01 challenge is being answered.
    pub fn http01_active(&self) -> bool {
        !read(&self.http01).is_empty()
    }

    /// The key authorization of an HTTP-01 token.
    pub fn http01(&self, token: &str) -> Option<String> {
        read(&self.http01).get(token).cloned()
    }

    /// The TLS-ALPN-01 certificate for a server name.
    pub fn alpn(&self, domain: &str) -> Option<Arc<CertifiedKey>> {
        read(&self.alpn).get(&domain.to_ascii_lowercase()).cloned()
    }

    /// Answers an HTTP-01 challenge until [`Challenges::clear`].
    pub fn put_http01(&self, token: String, key_auth: String) {
        write(&self.http01).insert(token, key_auth);
    }

    /// Answers a TLS-ALPN-01 challenge until [`Challenges::clear`].
    pub fn put_alpn(&self, domain: &str, key: Arc<CertifiedKey>) {
        write(&self.alpn).insert(domain.to_ascii_lowercase(), key);
    }

    /// Stops answering every challenge (the order is done, or failed).
    pub fn clear(&self) {
        write(&self.http01).clear();
        write(&self.alpn).clear();
    }
}

// The maps are only ever changed whole-entry, so a poisoned lock still holds consistent data.
fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}
