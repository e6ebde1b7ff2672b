//! The forward-auth endpoint's short memory of sessions (#18, docs/forward-auth.md, "Caching").
//!
//! Every request to every protected application costs one forward-auth check, and a check
//! reads five things: the session of the cookie's token, its account, the account's devices,
//! its groups and the kind of its latest second factor. For `cache_secs` (default 2) after a
//! check read them, the next checks of the same token reuse what it read.
//!
//! What this costs in freshness, and what it does not:
//! - A session's absolute end and idle time are judged at every check, against the remembered
//!   session record (an idle session is looked up again, which also writes its activity).
//! - On this node, whatever ends or changes a session or an account's groups forgets that
//!   account's entries at once ([`Service::forget_forward_sessions`]): sign-out, revocation,
//!   password change and reset, recovery, device removal by an administrator, groups.
//! - A change made through another node reaches this node within `cache_secs`: the stated
//!   bound, tested in `tests/api/forward_auth.rs` (two nodes on PostgreSQL).
//!
//! The cache holds at most [`MAX_ENTRIES`] tokens; a full cache drops its expired entries,
//! and if that is not enough, everything (a flood of distinct valid tokens is not a pattern
//! worth keeping: every entry is a real session).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::clock::UnixTime;

use super::session::Authenticated;

/// The most tokens remembered at once.
pub const MAX_ENTRIES: usize = 50_000;

/// What one check read about a token's session.
#[derive(Debug, Clone)]
struct Remembered {
    /// Shared, not copied: a hit costs a reference count, not the account's strings.
    who: Arc<ForwardSession>,
    /// When it was read.
    at: UnixTime,
}

/// A session as the forward-auth rules judge it: the session and account, the account's
/// groups, and whether its latest second factor was a security key or passkey.
#[derive(Debug, Clone)]
pub struct ForwardSession {
    /// The session and account, as the one session guard found them.
    pub auth: Authenticated,
    /// The account's groups.
    pub groups: Vec<String>,
    /// Whether the session's latest second factor was a security key or passkey.
    pub phishing_resistant: bool,
}

/// Tokens' sessions, remembered for `ttl` seconds.
#[derive(Debug)]
pub struct ForwardCache {
    ttl: i64,
    map: Mutex<HashMap<Vec<u8>, Remembered>>,
}

impl ForwardCache {
    /// A cache keeping entries `ttl_secs` seconds; 0 keeps nothing.
    pub fn new(ttl_secs: u32) -> ForwardCache {
        ForwardCache {
            ttl: i64::from(ttl_secs),
            map: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Vec<u8>, Remembered>> {
        // A panic while holding the lock leaves a map of complete entries: still usable.
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// What a check at most `ttl` seconds ago read for the token with this hash.
    pub fn get(&self, token_hash: &[u8], now: UnixTime) -> Option<Arc<ForwardSession>> {
        if self.ttl == 0 {
            return None;
        }
        let map = self.lock();
        let r = map.get(token_hash)?;
        // `at > now`: the clock went back; do not trust an entry from the future.
        (r.at <= now && now - r.at < self.ttl).then(|| r.who.clone())
    }

    /// Remembers what a check read at `now`.
    pub fn put(&self, token_hash: Vec<u8>, who: Arc<ForwardSession>, now: UnixTime) {
        if self.ttl == 0 {
            return;
        }
        let mut map = self.lock();
        if map.len() >= MAX_ENTRIES && !map.contains_key(&token_hash) {
            let ttl = self.ttl;
            map.retain(|_, r| r.at <= now && now - r.at < ttl);
            if map.len() >= MAX_ENTRIES {
                map.clear();
            }
        }
        map.insert(token_hash, Remembered { who, at: now });
    }

    /// Forgets every token of the account's sessions.
    pub fn forget_account(&self, account_id: &str) {
        self.lock()
            .retain(|_, r| r.who.auth.account.id != account_id);
    }

    /// How many tokens are remembered (for tests).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::store::{AccountRecord, Role, SessionRecord, SessionState};

    fn who(account: &str, groups: &[&str], phishing_resistant: bool) -> Arc<ForwardSession> {
        Arc::new(ForwardSession {
            auth: auth(account),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            phishing_resistant,
        })
    }

    fn auth(account: &str) -> Authenticated {
        Authenticated {
            session: SessionRecord {
                id: format!("s-{account}"),
                token_hash: vec![],
                account_id: account.into(),
                state: SessionState::Full,
                created_at: 0,
                last_seen_at: 0,
                expires_at: 1_000_000,
                second_factor_at: Some(0),
                client_addr: None,
                user_agent: None,
            },
            account: AccountRecord {
                id: account.into(),
                name: account.into(),
                role: Role::User,
                email: None,
                phone: None,
                password_hash: None,
                password_changed_at: None,
                created_at: 0,
                mfa_failures: 0,
                mfa_last_failure_at: None,
                locked_at: None,
            },
            enabled_devices: 1,
        }
    }

    #[test]
    fn entries_live_ttl_seconds_and_no_longer() {
        let c = ForwardCache::new(2);
        c.put(vec![1], who("a", &["ops"], false), 100);
        assert_eq!(c.get(&[1], 100).unwrap().groups, vec!["ops".to_string()]);
        assert!(c.get(&[1], 101).is_some());
        assert!(c.get(&[1], 102).is_none(), "2 seconds old: read again");
        assert!(c.get(&[1], 99).is_none(), "the clock went back");
        assert!(c.get(&[2], 100).is_none());
    }

    #[test]
    fn zero_keeps_nothing() {
        let c = ForwardCache::new(0);
        c.put(vec![1], who("a", &[], false), 100);
        assert!(c.get(&[1], 100).is_none());
        assert!(c.is_empty());
    }

    #[test]
    fn forgetting_an_account_forgets_only_its_tokens() {
        let c = ForwardCache::new(5);
        c.put(vec![1], who("a", &[], false), 100);
        c.put(vec![2], who("a", &[], false), 100);
        c.put(vec![3], who("b", &[], true), 100);
        c.forget_account("a");
        assert!(c.get(&[1], 100).is_none() && c.get(&[2], 100).is_none());
        assert!(c.get(&[3], 100).unwrap().phishing_resistant);
    }

    #[test]
    fn a_full_cache_drops_expired_entries_then_everything() {
        let c = ForwardCache::new(5);
        for i in 0..MAX_ENTRIES {
            let at = if i % 2 == 0 { 0 } else { 100 };
            c.put(i.to_be_bytes().to_vec(), who("a", &[], false), at);
        }
        assert_eq!(c.len(), MAX_ENTRIES);
        // The half read at 0 has expired by 100: dropped, room made.
        c.put(vec![0xff; 9], who("b", &[], false), 100);
        assert_eq!(c.len(), MAX_ENTRIES / 2 + 1);
        // Fill with live entries: the next new one clears the cache rather than grow it.
        for i in 0..MAX_ENTRIES {
            let key = (i + MAX_ENTRIES).to_be_bytes().to_vec();
            c.put(key, who("a", &[], false), 100);
        }
        assert!(c.len() <= MAX_ENTRIES);
    }
}
