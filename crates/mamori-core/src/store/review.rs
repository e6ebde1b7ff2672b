//! The aggregates the security review needs from the audit log: when each account last signed in,
//! when each application key was last used, and the oldest event still stored. A separate trait,
//! [`ReviewStore`], that every [`super::Store`] also implements, with the SQL written once for
//! both backends.
//!
//! These are full scans of the audit table grouped in the database; a review runs on demand (an
//! administrator's page, a nightly script), not on a hot path.

use std::collections::HashMap;

use async_trait::async_trait;

use crate::clock::UnixTime;
use crate::error::Result;

/// Audit aggregates for the security review.
#[async_trait]
pub trait ReviewStore: Send + Sync {
    /// Account name → time of its latest event of `kind` with result `success`.
    async fn latest_success_by_account(&self, kind: &str) -> Result<HashMap<String, UnixTime>>;
    /// Actor → time of its latest event of `kind` (any result).
    async fn latest_by_actor(&self, kind: &str) -> Result<HashMap<String, UnixTime>>;
    /// Time of the oldest stored audit event.
    async fn oldest_audit_event(&self) -> Result<Option<UnixTime>>;
}

macro_rules! impl_review_store {
    ($store:ty) => {
        const _: () = {
            use sqlx::Row as _;

            #[async_trait]
            impl ReviewStore for $store {
                async fn latest_success_by_account(
                    &self,
                    kind: &str,
                ) -> Result<HashMap<String, UnixTime>> {
                    let rows = sqlx::query(
                        "SELECT account, MAX(at) AS latest FROM audit \
                         WHERE kind = $1 AND result = 'success' AND account IS NOT NULL \
                         GROUP BY account",
                    )
                    .bind(kind)
                    .fetch_all(self.pool())
                    .await?;
                    let mut out = HashMap::new();
                    for r in rows {
                        out.insert(r.try_get("account")?, r.try_get("latest")?);
                    }
                    Ok(out)
                }

                async fn latest_by_actor(&self, kind: &str) -> Result<HashMap<String, UnixTime>> {
                    let rows = sqlx::query(
                        "SELECT actor, MAX(at) AS latest FROM audit \
                         WHERE kind = $1 AND actor IS NOT NULL GROUP BY actor",
                    )
                    .bind(kind)
                    .fetch_all(self.pool())
                    .await?;
                    let mut out = HashMap::new();
                    for r in rows {
                        out.insert(r.try_get("actor")?, r.try_get("latest")?);
                    }
                    Ok(out)
                }

                async fn oldest_audit_event(&self) -> Result<Option<UnixTime>> {
                    let row = sqlx::query("SELECT MIN(at) AS oldest FROM audit")
                        .fetch_one(self.pool())
                        .await?;
                    Ok(row.try_get("oldest")?)
                }
            }
        };
    };
}

impl_review_store!(super::sqlite::SqliteStore);
impl_review_store!(super::postgres::PgStore);

/// The review aggregates, run against both backends by the shared store suite.
#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use crate::store::{NewAuditEvent, Store};

    fn event<'a>(
        at: i64,
        account: Option<&'a str>,
        actor: Option<&'a str>,
        kind: &'a str,
        result: &'a str,
    ) -> NewAuditEvent {
        NewAuditEvent {
            at,
            account: account.map(str::to_string),
            actor: actor.map(str::to_string),
            client_addr: None,
            user_agent: None,
            kind: kind.to_string(),
            result: result.to_string(),
            detail: None,
        }
    }

    pub async fn run(s: &dyn Store) {
        assert_eq!(s.oldest_audit_event().await.unwrap(), None);
        for e in [
            event(100, Some("alice"), None, "sign_in.password", "success"),
            event(300, Some("alice"), None, "sign_in.password", "success"),
            event(400, Some("alice"), None, "sign_in.password", "failure"),
            event(200, Some("bob"), None, "sign_in.password", "success"),
            event(250, Some("bob"), None, "sign_in.mfa", "success"),
            event(150, Some("bob"), Some("app:vpn"), "validate", "failure"),
            event(350, Some("alice"), Some("app:vpn"), "validate", "success"),
            event(120, None, Some("app:ssh"), "validate", "unknown_user"),
        ] {
            s.insert_audit(&e).await.unwrap();
        }
        let signed_in = s
            .latest_success_by_account("sign_in.password")
            .await
            .unwrap();
        assert_eq!(signed_in.get("alice"), Some(&300));
        assert_eq!(signed_in.get("bob"), Some(&200));
        assert_eq!(signed_in.len(), 2);
        let used = s.latest_by_actor("validate").await.unwrap();
        assert_eq!(used.get("app:vpn"), Some(&350));
        assert_eq!(used.get("app:ssh"), Some(&120));
        assert_eq!(s.oldest_audit_event().await.unwrap(), Some(100));

        // #21 pruning: oldest first, bounded by the limit, never the events at or after `before`.
        // The first two by id before 250 are at 100 and 200; 150 and 120 (later ids) remain.
        assert_eq!(s.prune_audit_before(250, 2).await.unwrap(), 2);
        assert_eq!(s.oldest_audit_event().await.unwrap(), Some(120));
        assert_eq!(s.prune_audit_before(250, 100).await.unwrap(), 2);
        assert_eq!(s.oldest_audit_event().await.unwrap(), Some(250));
        assert_eq!(s.prune_audit_before(250, 100).await.unwrap(), 0);
        let left = s
            .list_audit(&crate::store::AuditFilter {
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(left.len(), 4);
        assert!(left.iter().all(|r| r.event.at >= 250));
    }

    #[tokio::test]
    async fn review_aggregates_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::sqlite::SqliteStore::open(&dir.path().join("t.db"))
            .await
            .unwrap();
        run(&store).await;
    }

    #[tokio::test]
    async fn review_aggregates_on_postgres() {
        let db = crate::testing::TempDatabase::create().await.unwrap();
        let store = crate::store::postgres::PgStore::connect(&db.url)
            .await
            .unwrap();
        run(&store).await;
        store.pool().close().await;
    }
}
