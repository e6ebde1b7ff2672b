//! Per-account preferences (issue #15): the language of the console and of the e-mails and phone
//! texts sent to the account, and the time zone the console shows times in. A separate trait,
//! [`PreferencesStore`], that every [`super::Store`] also implements, with the SQL written once
//! for both backends. Values are validated by the domain (`domain/preferences.rs`) before they
//! reach here; the language column's CHECK is the last line of defence.

use async_trait::async_trait;

use crate::clock::UnixTime;
use crate::error::Result;

/// An account's stored preferences; `None` fields were never chosen.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PreferencesRecord {
    /// `en` or `ja`.
    pub language: Option<String>,
    /// IANA time zone name.
    pub time_zone: Option<String>,
    /// Last change.
    pub updated_at: UnixTime,
}

/// Storage of account preferences. Each method is one statement.
#[async_trait]
pub trait PreferencesStore: Send + Sync {
    /// The account's preferences, if it has a row.
    async fn preferences(&self, account_id: &str) -> Result<Option<PreferencesRecord>>;
    /// Replaces both preferences.
    async fn set_preferences(
        &self,
        account_id: &str,
        language: Option<&str>,
        time_zone: Option<&str>,
        now: UnixTime,
    ) -> Result<()>;
    /// Sets the language only when none is stored yet (the choice made at setup or at the first
    /// sign-in must not overwrite one the user made later, even when two requests race); true
    /// when it was set.
    async fn init_language(&self, account_id: &str, language: &str, now: UnixTime) -> Result<bool>;
}

macro_rules! impl_preferences_store {
    ($store:ty) => {
        const _: () = {
            use sqlx::Row as _;

            #[async_trait]
            impl PreferencesStore for $store {
                async fn preferences(&self, account_id: &str) -> Result<Option<PreferencesRecord>> {
                    let row = sqlx::query(
                        "SELECT language, time_zone, updated_at FROM account_preferences \
                         WHERE account_id = $1",
                    )
                    .bind(account_id)
                    .fetch_optional(self.pool())
                    .await?;
                    match row {
                        None => Ok(None),
                        Some(r) => Ok(Some(PreferencesRecord {
                            language: r.try_get("language")?,
                            time_zone: r.try_get("time_zone")?,
                            updated_at: r.try_get("updated_at")?,
                        })),
                    }
                }

                async fn set_preferences(
                    &self,
                    account_id: &str,
                    language: Option<&str>,
                    time_zone: Option<&str>,
                    now: UnixTime,
                ) -> Result<()> {
                    sqlx::query(
                        "INSERT INTO account_preferences \
                         (account_id, language, time_zone, updated_at) VALUES ($1, $2, $3, $4) \
                         ON CONFLICT (account_id) DO UPDATE SET language = excluded.language, \
                         time_zone = excluded.time_zone, updated_at = excluded.updated_at",
                    )
                    .bind(account_id)
                    .bind(language)
                    .bind(time_zone)
                    .bind(now)
                    .execute(self.writer())
                    .await?;
                    Ok(())
                }

                async fn init_language(
                    &self,
                    account_id: &str,
                    language: &str,
                    now: UnixTime,
                ) -> Result<bool> {
                    let r = sqlx::query(
                        "INSERT INTO account_preferences \
                         (account_id, language, time_zone, updated_at) VALUES ($1, $2, NULL, $3) \
                         ON CONFLICT (account_id) DO UPDATE SET language = excluded.language, \
                         updated_at = excluded.updated_at \
                         WHERE account_preferences.language IS NULL",
                    )
                    .bind(account_id)
                    .bind(language)
                    .bind(now)
                    .execute(self.writer())
                    .await?;
                    Ok(r.rows_affected() == 1)
                }
            }
        };
    };
}

impl_preferences_store!(super::sqlite::SqliteStore);
impl_preferences_store!(super::postgres::PgStore);

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
        let account_id = "id-prefs";
        s.create_account(&AccountRecord {
            id: account_id.into(),
            name: "prefs".into(),
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
        assert_eq!(s.preferences(account_id).await.unwrap(), None);
        assert!(s.init_language(account_id, "ja", 10).await.unwrap());
        // A second first choice does not overwrite the first.
        assert!(!s.init_language(account_id, "en", 11).await.unwrap());
        let p = s.preferences(account_id).await.unwrap().unwrap();
        assert_eq!(p.language.as_deref(), Some("ja"));
        assert_eq!(p.time_zone, None);
        s.set_preferences(account_id, Some("en"), Some("Asia/Tokyo"), 20)
            .await
            .unwrap();
        let p = s.preferences(account_id).await.unwrap().unwrap();
        assert_eq!(
            p,
            PreferencesRecord {
                language: Some("en".into()),
                time_zone: Some("Asia/Tokyo".into()),
                updated_at: 20
            }
        );
        // The CHECK refuses a language the console does not speak, and nothing changes.
        assert!(s
            .set_preferences(account_id, Some("fr"), None, 30)
            .await
            .is_err());
        assert_eq!(s.preferences(account_id).await.unwrap().unwrap(), p);
    }

    #[tokio::test]
    async fn preferences_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::sqlite::SqliteStore::open(&dir.path().join("t.db"))
            .await
            .unwrap();
        run_all(&store).await;
    }

    #[tokio::test]
    async fn preferences_on_postgres() {
        let db = crate::testing::TempDatabase::create().await.unwrap();
        let store = crate::store::postgres::PgStore::connect(&db.url)
            .await
            .unwrap();
        run_all(&store).await;
        store.pool().close().await;
    }
}
