//! Forward-auth single-sign-on tokens (issue #18): each belongs to one console session and ends
//! with it (`ON DELETE CASCADE`). A separate trait, [`ForwardAuthStore`], that every
//! [`super::Store`] also implements, with the SQL written once for both backends.

use async_trait::async_trait;

use crate::clock::UnixTime;
use crate::error::Result;

use super::SessionRecord;

/// Storage of forward-auth tokens.
#[async_trait]
pub trait ForwardAuthStore: Send + Sync {
    /// Stores a token (its hash) of the session `session_id`.
    async fn create_forward_token(
        &self,
        token_hash: &[u8],
        session_id: &str,
        now: UnixTime,
    ) -> Result<()>;
    /// The session a forward-auth token belongs to, read in one joined statement (this is the
    /// path every request to every protected application takes).
    async fn session_by_forward_token(&self, token_hash: &[u8]) -> Result<Option<SessionRecord>>;
    /// Records the kind of the session's latest second factor (`security_key` or `otp`).
    async fn set_second_factor_kind(&self, session_id: &str, kind: &str) -> Result<()>;
    /// The kind of the session's latest second factor, if recorded.
    async fn second_factor_kind(&self, session_id: &str) -> Result<Option<String>>;
}

macro_rules! impl_forward_auth_store {
    ($store:ty, $module:ident) => {
        const _: () = {
            #[async_trait]
            impl ForwardAuthStore for $store {
                async fn create_forward_token(
                    &self,
                    token_hash: &[u8],
                    session_id: &str,
                    now: UnixTime,
                ) -> Result<()> {
                    sqlx::query(
                        "INSERT INTO forward_sessions (token_hash, session_id, created_at) \
                         VALUES ($1, $2, $3)",
                    )
                    .bind(token_hash)
                    .bind(session_id)
                    .bind(now)
                    .execute(self.writer())
                    .await?;
                    Ok(())
                }

                async fn session_by_forward_token(
                    &self,
                    token_hash: &[u8],
                ) -> Result<Option<SessionRecord>> {
                    let cols = super::$module::SESSION_COLS
                        .split(", ")
                        .map(|c| format!("s.{}", c.trim()))
                        .collect::<Vec<_>>()
                        .join(", ");
                    let row = sqlx::query(&format!(
                        "SELECT {cols} FROM forward_sessions f \
                         JOIN sessions s ON s.id = f.session_id WHERE f.token_hash = $1"
                    ))
                    .bind(token_hash)
                    .fetch_optional(self.pool())
                    .await?;
                    row.as_ref()
                        .map(super::$module::session_from_row)
                        .transpose()
                }

                async fn set_second_factor_kind(&self, session_id: &str, kind: &str) -> Result<()> {
                    sqlx::query("UPDATE sessions SET second_factor_kind = $2 WHERE id = $1")
                        .bind(session_id)
                        .bind(kind)
                        .execute(self.writer())
                        .await?;
                    Ok(())
                }

                async fn second_factor_kind(&self, session_id: &str) -> Result<Option<String>> {
                    let row: Option<(Option<String>,)> =
                        sqlx::query_as("SELECT second_factor_kind FROM sessions WHERE id = $1")
                            .bind(session_id)
                            .fetch_optional(self.pool())
                            .await?;
                    Ok(row.and_then(|r| r.0))
                }
            }
        };
    };
}

impl_forward_auth_store!(super::sqlite::SqliteStore, sqlite);
impl_forward_auth_store!(super::postgres::PgStore, postgres);
