//! Account groups (issue #18): plain names an administrator gives accounts, used by the
//! forward-auth access rules and sent to protected applications in `Remote-Groups`. A separate
//! trait, [`GroupStore`], that every [`super::Store`] also implements, with the SQL written once
//! for both backends. Names are validated by the domain (`domain/groups.rs`) before they reach
//! here.

use async_trait::async_trait;

use crate::clock::UnixTime;
use crate::error::Result;

/// What [`GroupStore::add_group`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupAdded {
    /// The account is now in the group.
    Added,
    /// It already was; nothing changed.
    AlreadyMember,
    /// The account already has `max` groups; nothing changed.
    LimitReached,
}

/// Storage of account groups.
#[async_trait]
pub trait GroupStore: Send + Sync {
    /// The account's groups, sorted by name.
    async fn groups_of(&self, account_id: &str) -> Result<Vec<String>>;
    /// Puts the account in `group` unless it already has `max` groups. The count and the insert
    /// are one transaction that first locks the account's row, so two parallel additions on
    /// any number of nodes cannot pass the limit together.
    async fn add_group(
        &self,
        account_id: &str,
        group: &str,
        max: i64,
        now: UnixTime,
    ) -> Result<GroupAdded>;
    /// Takes the account out of `group`; true when it was in it.
    async fn remove_group(&self, account_id: &str, group: &str) -> Result<bool>;
}

macro_rules! impl_group_store {
    ($store:ty) => {
        const _: () = {
            use sqlx::Row as _;

            #[async_trait]
            impl GroupStore for $store {
                async fn groups_of(&self, account_id: &str) -> Result<Vec<String>> {
                    let rows = sqlx::query(
                        "SELECT group_name FROM account_groups WHERE account_id = $1 \
                         ORDER BY group_name",
                    )
                    .bind(account_id)
                    .fetch_all(self.pool())
                    .await?;
                    rows.iter()
                        .map(|r| r.try_get::<String, _>("group_name").map_err(Into::into))
                        .collect()
                }

                async fn add_group(
                    &self,
                    account_id: &str,
                    group: &str,
                    max: i64,
                    now: UnixTime,
                ) -> Result<GroupAdded> {
                    let mut tx = self.writer().begin().await?;
                    // Locks the account's row on PostgreSQL (SQLite has one writer anyway), so
                    // the count below stays true until the commit.
                    sqlx::query("UPDATE accounts SET created_at = created_at WHERE id = $1")
                        .bind(account_id)
                        .execute(&mut *tx)
                        .await?;
                    let exists = sqlx::query(
                        "SELECT 1 AS one FROM account_groups \
                         WHERE account_id = $1 AND group_name = $2",
                    )
                    .bind(account_id)
                    .bind(group)
                    .fetch_optional(&mut *tx)
                    .await?
                    .is_some();
                    if exists {
                        return Ok(GroupAdded::AlreadyMember);
                    }
                    let count: i64 = sqlx::query(
                        "SELECT COUNT(*) AS n FROM account_groups WHERE account_id = $1",
                    )
                    .bind(account_id)
                    .fetch_one(&mut *tx)
                    .await?
                    .try_get("n")?;
                    if count >= max {
                        return Ok(GroupAdded::LimitReached);
                    }
                    sqlx::query(
                        "INSERT INTO account_groups (account_id, group_name, created_at) \
                         VALUES ($1, $2, $3)",
                    )
                    .bind(account_id)
                    .bind(group)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    Ok(GroupAdded::Added)
                }

                async fn remove_group(&self, account_id: &str, group: &str) -> Result<bool> {
                    let r = sqlx::query(
                        "DELETE FROM account_groups WHERE account_id = $1 AND group_name = $2",
                    )
                    .bind(account_id)
                    .bind(group)
                    .execute(self.writer())
                    .await?;
                    Ok(r.rows_affected() == 1)
                }
            }
        };
    };
}

impl_group_store!(super::sqlite::SqliteStore);
impl_group_store!(super::postgres::PgStore);

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )]
    use super::*;
    use crate::store::{AccountRecord, Role, Store};

    async fn run_all(s: &dyn Store) {
        let account_id = "id-groups";
        s.create_account(&AccountRecord {
            id: account_id.into(),
            name: "grouped".into(),
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
        assert!(s.groups_of(account_id).await.unwrap().is_empty());
        assert_eq!(
            s.add_group(account_id, "ops", 2, 10).await.unwrap(),
            GroupAdded::Added
        );
        assert_eq!(
            s.add_group(account_id, "ops", 2, 11).await.unwrap(),
            GroupAdded::AlreadyMember
        );
        assert_eq!(
            s.add_group(account_id, "dev", 2, 12).await.unwrap(),
            GroupAdded::Added
        );
        // The limit holds, and an existing membership is still answered as such.
        assert_eq!(
            s.add_group(account_id, "qa", 2, 13).await.unwrap(),
            GroupAdded::LimitReached
        );
        assert_eq!(
            s.add_group(account_id, "dev", 2, 13).await.unwrap(),
            GroupAdded::AlreadyMember
        );
        assert_eq!(s.groups_of(account_id).await.unwrap(), ["dev", "ops"]);
        assert!(s.remove_group(account_id, "ops").await.unwrap());
        assert!(!s.remove_group(account_id, "ops").await.unwrap());
        assert_eq!(s.groups_of(account_id).await.unwrap(), ["dev"]);
        // A removal makes room again.
        assert_eq!(
            s.add_group(account_id, "qa", 2, 14).await.unwrap(),
            GroupAdded::Added
        );
    }

    #[tokio::test]
    async fn groups_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::sqlite::SqliteStore::open(&dir.path().join("t.db"))
            .await
            .unwrap();
        run_all(&store).await;
    }

    #[tokio::test]
    async fn groups_on_postgres() {
        let db = crate::testing::TempDatabase::create().await.unwrap();
        let store = crate::store::postgres::PgStore::connect(&db.url)
            .await
            .unwrap();
        run_all(&store).await;
        store.pool().close().await;
    }
}
