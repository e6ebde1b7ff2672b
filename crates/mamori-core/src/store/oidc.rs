//! mamori as an OpenID Connect provider (issue #17, migration 0013): clients, signing keys,
//! authorization codes, grants (token families), access and refresh tokens, consents. A
//! separate trait, [`OidcStore`], that every [`super::Store`] implements, with the SQL written
//! once for both backends. The rules are the domain's (`domain/oidc.rs`); what must hold
//! across nodes is decided here by one conditional statement each:
//!
//! - a code is redeemed by one `UPDATE … WHERE consumed_at IS NULL AND expires_at > now`, in
//!   the transaction that creates its grant, so two redemptions cannot both win and the loser
//!   finds the winner's grant (to revoke it, RFC 6749 §4.1.2);
//! - a refresh token is rotated by one `UPDATE … WHERE used_at IS NULL`, so it is used once;
//! - the first signing key of an algorithm is inserted under a unique partial index, so two
//!   nodes generating it at once end up signing with the same one.

use async_trait::async_trait;

use crate::clock::UnixTime;
use crate::error::Result;
use crate::redacted::Redacted;

/// A registered relying party.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcClientRecord {
    /// The `client_id` (a random UUID).
    pub id: String,
    /// Unique name given by the administrator.
    pub name: String,
    /// SHA-256 of the client secret; `None` for a public client.
    pub secret_hash: Option<Redacted<Vec<u8>>>,
    /// Exact redirect URIs.
    pub redirect_uris: Vec<String>,
    /// Exact post-logout redirect URIs (RP-initiated logout).
    pub post_logout_redirect_uris: Vec<String>,
    /// First-party client: no consent page.
    pub trusted: bool,
    /// `two_factor`, `phishing_resistant` or `one_factor`.
    pub require_factor: String,
    /// Accounts allowed by name (with `allowed_groups`: both empty lets everyone in).
    pub allowed_users: Vec<String>,
    /// Groups allowed.
    pub allowed_groups: Vec<String>,
    /// ID-token signing algorithm (`ES256`).
    pub alg: String,
    /// When it was registered.
    pub created_at: UnixTime,
    /// When it was last changed (secret rotation).
    pub updated_at: UnixTime,
}

/// A signing key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcKeyRecord {
    /// Key id (`kid`).
    pub kid: String,
    /// JWS algorithm.
    pub alg: String,
    /// The private key, sealed with the server key.
    pub private_sealed: Redacted<Vec<u8>>,
    /// The public JWK (JSON).
    pub public_jwk: String,
    /// When it was made.
    pub created_at: UnixTime,
    /// When it stopped signing; it stays in the JWKS while tokens it signed may live.
    pub retired_at: Option<UnixTime>,
}

/// An authorization code (stored by its hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcCodeRecord {
    /// SHA-256 of the code.
    pub code_hash: Redacted<Vec<u8>>,
    /// Client it was issued to.
    pub client_id: String,
    /// Account that signed in.
    pub account_id: String,
    /// The redirect URI of the request (the token request must repeat it).
    pub redirect_uri: String,
    /// PKCE S256 challenge, if the request had one.
    pub code_challenge: Option<String>,
    /// OpenID Connect nonce, carried into the ID token.
    pub nonce: Option<String>,
    /// Granted scopes, space-separated.
    pub scope: String,
    /// When the account signed in.
    pub auth_time: UnixTime,
    /// Authentication methods (RFC 8176), space-separated.
    pub amr: String,
    /// Authentication context class.
    pub acr: String,
    /// Issued at.
    pub created_at: UnixTime,
    /// Expires at (60 s after issue).
    pub expires_at: UnixTime,
}

/// A grant: the family of tokens issued from one code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcGrantRecord {
    /// Family id.
    pub id: String,
    /// Client.
    pub client_id: String,
    /// Account.
    pub account_id: String,
    /// Scopes, space-separated.
    pub scope: String,
    /// When the account signed in.
    pub auth_time: UnixTime,
    /// Authentication methods, space-separated.
    pub amr: String,
    /// Authentication context class.
    pub acr: String,
    /// Created at.
    pub created_at: UnixTime,
    /// No token of the family outlives this.
    pub expires_at: UnixTime,
    /// Revoked at.
    pub revoked_at: Option<UnixTime>,
}

/// An access or refresh token (by its hash) and its grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcTokenRecord {
    /// SHA-256 of the token.
    pub token_hash: Redacted<Vec<u8>>,
    /// `access` or `refresh`.
    pub kind: String,
    /// Its family.
    pub grant_id: String,
    /// Issued at.
    pub created_at: UnixTime,
    /// Expires at.
    pub expires_at: UnixTime,
    /// When a refresh token was exchanged.
    pub used_at: Option<UnixTime>,
    /// When this token was revoked.
    pub revoked_at: Option<UnixTime>,
}

/// What an account consented to share with a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcConsentRecord {
    /// The client.
    pub client_id: String,
    /// Scopes, space-separated.
    pub scope: String,
    /// When it was given (or last widened).
    pub created_at: UnixTime,
}

/// What revoking an account's access for one client changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AccessRevoked {
    /// A consent was deleted.
    pub consent: bool,
    /// Live grants (token families) revoked.
    pub grants: u64,
    /// Codes not yet redeemed, deleted.
    pub codes: u64,
}

/// What redeeming a code writes besides spending it: the grant it starts and the grant's first
/// access and refresh tokens (their hashes; the refresh token ends with the grant).
#[derive(Debug, Clone, Copy)]
pub struct Redemption<'a> {
    /// The new grant's id.
    pub grant_id: &'a str,
    /// When the grant (and its first refresh token) ends.
    pub grant_expires_at: UnixTime,
    /// SHA-256 of the first access token.
    pub access_hash: &'a [u8],
    /// When the first access token ends.
    pub access_expires_at: UnixTime,
    /// SHA-256 of the first refresh token.
    pub refresh_hash: &'a [u8],
    /// The algorithm whose active signing key the statement returns.
    pub signing_alg: &'a str,
}

/// A code redeemed now, with what the token endpoint needs next, read by the same statement
/// (each statement is a round trip to SQLite's writer thread; docs/performance.md, #17).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedeemedCode {
    /// The code as it was stored.
    pub code: OidcCodeRecord,
    /// The account's name, for the audit event (`None` if the account is gone).
    pub account_name: Option<String>,
    /// The active signing key of the algorithm asked for (`None` if there is none yet).
    pub active_kid: Option<String>,
}

/// What redeeming a code found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeRedemption {
    /// Redeemed now; the grant was created. Boxed: the record is large and the other
    /// outcomes are not.
    Redeemed(Box<RedeemedCode>),
    /// Redeemed before: the grant it started (to revoke).
    AlreadyUsed {
        /// The code's grant.
        grant_id: Option<String>,
        /// The code's client.
        client_id: String,
    },
    /// Expired, or unknown.
    Invalid,
}

/// What presenting a refresh token found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshUse {
    /// Exchanged now (it cannot be used again).
    Rotated(OidcTokenRecord),
    /// Exchanged before: a replay (its grant is to be revoked).
    Reused(OidcTokenRecord),
    /// Unknown, expired or revoked.
    Invalid,
}

/// Storage of the OpenID provider's state.
#[async_trait]
pub trait OidcStore: Send + Sync {
    /// Registers a client (`Conflict` when the name is taken).
    async fn create_oidc_client(&self, c: &OidcClientRecord) -> Result<()>;
    /// A client by id.
    async fn oidc_client(&self, id: &str) -> Result<Option<OidcClientRecord>>;
    /// A client by name.
    async fn oidc_client_by_name(&self, name: &str) -> Result<Option<OidcClientRecord>>;
    /// Every client, by name.
    async fn list_oidc_clients(&self) -> Result<Vec<OidcClientRecord>>;
    /// Replaces a confidential client's secret hash; whether the client exists.
    async fn set_oidc_client_secret(
        &self,
        id: &str,
        secret_hash: &[u8],
        now: UnixTime,
    ) -> Result<bool>;
    /// Deletes a client with its codes, grants, tokens and consents; whether it existed.
    async fn delete_oidc_client(&self, id: &str) -> Result<bool>;

    /// Every signing key, newest first.
    async fn oidc_keys(&self) -> Result<Vec<OidcKeyRecord>>;
    /// Inserts a key unless an active key of its algorithm exists; whether it was inserted.
    async fn insert_oidc_key(&self, k: &OidcKeyRecord) -> Result<bool>;
    /// Retires an active key (one conditional UPDATE: of two nodes retiring the same key,
    /// one does); whether this call retired it.
    async fn retire_oidc_key(&self, kid: &str, now: UnixTime) -> Result<bool>;
    /// Deletes keys retired before `before`; how many.
    async fn delete_retired_oidc_keys(&self, before: UnixTime) -> Result<u64>;

    /// Stores a new code.
    async fn create_oidc_code(&self, c: &OidcCodeRecord) -> Result<()>;
    /// Redeems a code: one conditional UPDATE, which also creates the grant and its first
    /// tokens (a trigger, migrations 0015 and 0016; the grant's client, account and claims are
    /// taken from the code) and returns the account's name and the active key of the
    /// algorithm with the code.
    async fn redeem_oidc_code(
        &self,
        code_hash: &[u8],
        now: UnixTime,
        r: &Redemption<'_>,
    ) -> Result<CodeRedemption>;

    /// A grant.
    async fn oidc_grant(&self, id: &str) -> Result<Option<OidcGrantRecord>>;
    /// Revokes a grant (every token of the family); whether it was active.
    async fn revoke_oidc_grant(&self, id: &str, now: UnixTime) -> Result<bool>;

    /// Stores tokens (of one grant), in one statement.
    async fn create_oidc_tokens(&self, ts: &[OidcTokenRecord]) -> Result<()>;
    /// A token by hash.
    async fn oidc_token(&self, token_hash: &[u8]) -> Result<Option<OidcTokenRecord>>;
    /// Uses a refresh token once (one conditional UPDATE).
    async fn use_oidc_refresh_token(&self, token_hash: &[u8], now: UnixTime) -> Result<RefreshUse>;
    /// Revokes one token; whether it was active.
    async fn revoke_oidc_token(&self, token_hash: &[u8], now: UnixTime) -> Result<bool>;

    /// The scopes an account consented to for a client.
    async fn oidc_consent(&self, account_id: &str, client_id: &str) -> Result<Option<String>>;
    /// Records (or replaces) a consent.
    async fn put_oidc_consent(
        &self,
        account_id: &str,
        client_id: &str,
        scope: &str,
        now: UnixTime,
    ) -> Result<()>;

    /// Every consent of an account, oldest first.
    async fn oidc_consents_of(&self, account_id: &str) -> Result<Vec<OidcConsentRecord>>;
    /// An account's grants that are neither revoked nor expired at `now`, oldest first.
    async fn oidc_live_grants_of(
        &self,
        account_id: &str,
        now: UnixTime,
    ) -> Result<Vec<OidcGrantRecord>>;
    /// Ends an account's access for one client in one transaction: deletes its consent,
    /// revokes every live grant (so every access and refresh token of them) and deletes the
    /// codes not yet redeemed (a code issued a moment ago cannot bring the access back).
    async fn revoke_oidc_access(
        &self,
        account_id: &str,
        client_id: &str,
        now: UnixTime,
    ) -> Result<AccessRevoked>;

    /// Deletes codes, tokens and grants past their end (housekeeping); how many rows.
    async fn purge_oidc(&self, now: UnixTime) -> Result<u64>;
}

fn join(list: &[String]) -> String {
    list.join("\n")
}

fn split(s: &str) -> Vec<String> {
    s.split('\n')
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

const CLIENT_COLS: &str = "id, name, secret_hash, redirect_uris, post_logout_redirect_uris, \
    trusted, require_factor, allowed_users, allowed_groups, alg, created_at, updated_at";
const CODE_COLS: &str = "code_hash, client_id, account_id, redirect_uri, code_challenge, nonce, \
    scope, auth_time, amr, acr, created_at, expires_at";
const GRANT_COLS: &str = "id, client_id, account_id, scope, auth_time, amr, acr, created_at, \
    expires_at, revoked_at";
const TOKEN_COLS: &str = "token_hash, kind, grant_id, created_at, expires_at, used_at, revoked_at";
const KEY_COLS: &str = "kid, alg, private_sealed, public_jwk, created_at, retired_at";

macro_rules! impl_oidc_store {
    ($store:ty, $row:ty) => {
        const _: () = {
            use sqlx::Row as _;

            fn client_from_row(r: &$row) -> Result<OidcClientRecord> {
                Ok(OidcClientRecord {
                    id: r.try_get("id")?,
                    name: r.try_get("name")?,
                    secret_hash: r
                        .try_get::<Option<Vec<u8>>, _>("secret_hash")?
                        .map(Redacted::new),
                    redirect_uris: split(&r.try_get::<String, _>("redirect_uris")?),
                    post_logout_redirect_uris: split(
                        &r.try_get::<String, _>("post_logout_redirect_uris")?,
                    ),
                    trusted: r.try_get::<i64, _>("trusted")? != 0,
                    require_factor: r.try_get("require_factor")?,
                    allowed_users: split(&r.try_get::<String, _>("allowed_users")?),
                    allowed_groups: split(&r.try_get::<String, _>("allowed_groups")?),
                    alg: r.try_get("alg")?,
                    created_at: r.try_get("created_at")?,
                    updated_at: r.try_get("updated_at")?,
                })
            }

            fn code_from_row(r: &$row) -> Result<OidcCodeRecord> {
                Ok(OidcCodeRecord {
                    code_hash: Redacted::new(r.try_get("code_hash")?),
                    client_id: r.try_get("client_id")?,
                    account_id: r.try_get("account_id")?,
                    redirect_uri: r.try_get("redirect_uri")?,
                    code_challenge: r.try_get("code_challenge")?,
                    nonce: r.try_get("nonce")?,
                    scope: r.try_get("scope")?,
                    auth_time: r.try_get("auth_time")?,
                    amr: r.try_get("amr")?,
                    acr: r.try_get("acr")?,
                    created_at: r.try_get("created_at")?,
                    expires_at: r.try_get("expires_at")?,
                })
            }

            fn grant_from_row(r: &$row) -> Result<OidcGrantRecord> {
                Ok(OidcGrantRecord {
                    id: r.try_get("id")?,
                    client_id: r.try_get("client_id")?,
                    account_id: r.try_get("account_id")?,
                    scope: r.try_get("scope")?,
                    auth_time: r.try_get("auth_time")?,
                    amr: r.try_get("amr")?,
                    acr: r.try_get("acr")?,
                    created_at: r.try_get("created_at")?,
                    expires_at: r.try_get("expires_at")?,
                    revoked_at: r.try_get("revoked_at")?,
                })
            }

            fn token_from_row(r: &$row) -> Result<OidcTokenRecord> {
                Ok(OidcTokenRecord {
                    token_hash: Redacted::new(r.try_get("token_hash")?),
                    kind: r.try_get("kind")?,
                    grant_id: r.try_get("grant_id")?,
                    created_at: r.try_get("created_at")?,
                    expires_at: r.try_get("expires_at")?,
                    used_at: r.try_get("used_at")?,
                    revoked_at: r.try_get("revoked_at")?,
                })
            }

            fn key_from_row(r: &$row) -> Result<OidcKeyRecord> {
                Ok(OidcKeyRecord {
                    kid: r.try_get("kid")?,
                    alg: r.try_get("alg")?,
                    private_sealed: Redacted::new(r.try_get("private_sealed")?),
                    public_jwk: r.try_get("public_jwk")?,
                    created_at: r.try_get("created_at")?,
                    retired_at: r.try_get("retired_at")?,
                })
            }

            #[async_trait]
            impl OidcStore for $store {
                async fn create_oidc_client(&self, c: &OidcClientRecord) -> Result<()> {
                    let r = sqlx::query(&format!(
                        "INSERT INTO oidc_clients ({CLIENT_COLS}) VALUES \
                         ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
                         ON CONFLICT (name) DO NOTHING"
                    ))
                    .bind(&c.id)
                    .bind(&c.name)
                    .bind(c.secret_hash.as_ref().map(|h| h.expose().clone()))
                    .bind(join(&c.redirect_uris))
                    .bind(join(&c.post_logout_redirect_uris))
                    .bind(i64::from(c.trusted))
                    .bind(&c.require_factor)
                    .bind(join(&c.allowed_users))
                    .bind(join(&c.allowed_groups))
                    .bind(&c.alg)
                    .bind(c.created_at)
                    .bind(c.updated_at)
                    .execute(self.writer())
                    .await?;
                    if r.rows_affected() == 0 {
                        return Err(crate::error::Error::Conflict(format!(
                            "a client named {} exists",
                            c.name
                        )));
                    }
                    Ok(())
                }

                async fn oidc_client(&self, id: &str) -> Result<Option<OidcClientRecord>> {
                    let row = sqlx::query(&format!(
                        "SELECT {CLIENT_COLS} FROM oidc_clients WHERE id = $1"
                    ))
                    .bind(id)
                    .fetch_optional(self.pool())
                    .await?;
                    row.as_ref().map(client_from_row).transpose()
                }

                async fn oidc_client_by_name(
                    &self,
                    name: &str,
                ) -> Result<Option<OidcClientRecord>> {
                    let row = sqlx::query(&format!(
                        "SELECT {CLIENT_COLS} FROM oidc_clients WHERE name = $1"
                    ))
                    .bind(name)
                    .fetch_optional(self.pool())
                    .await?;
                    row.as_ref().map(client_from_row).transpose()
                }

                async fn list_oidc_clients(&self) -> Result<Vec<OidcClientRecord>> {
                    let rows = sqlx::query(&format!(
                        "SELECT {CLIENT_COLS} FROM oidc_clients ORDER BY name"
                    ))
                    .fetch_all(self.pool())
                    .await?;
                    rows.iter().map(client_from_row).collect()
                }

                async fn set_oidc_client_secret(
                    &self,
                    id: &str,
                    secret_hash: &[u8],
                    now: UnixTime,
                ) -> Result<bool> {
                    let r = sqlx::query(
                        "UPDATE oidc_clients SET secret_hash = $2, updated_at = $3 \
                         WHERE id = $1 AND secret_hash IS NOT NULL",
                    )
                    .bind(id)
                    .bind(secret_hash)
                    .bind(now)
                    .execute(self.writer())
                    .await?;
                    Ok(r.rows_affected() == 1)
                }

                async fn delete_oidc_client(&self, id: &str) -> Result<bool> {
                    let r = sqlx::query("DELETE FROM oidc_clients WHERE id = $1")
                        .bind(id)
                        .execute(self.writer())
                        .await?;
                    Ok(r.rows_affected() == 1)
                }

                async fn oidc_keys(&self) -> Result<Vec<OidcKeyRecord>> {
                    let rows = sqlx::query(&format!(
                        "SELECT {KEY_COLS} FROM oidc_keys ORDER BY created_at DESC, kid"
                    ))
                    .fetch_all(self.pool())
                    .await?;
                    rows.iter().map(key_from_row).collect()
                }

                async fn insert_oidc_key(&self, k: &OidcKeyRecord) -> Result<bool> {
                    // The conflict target is the unique partial index oidc_keys_active.
                    let r = sqlx::query(&format!(
                        "INSERT INTO oidc_keys ({KEY_COLS}) VALUES ($1, $2, $3, $4, $5, $6) \
                         ON CONFLICT DO NOTHING"
                    ))
                    .bind(&k.kid)
                    .bind(&k.alg)
                    .bind(k.private_sealed.expose())
                    .bind(&k.public_jwk)
                    .bind(k.created_at)
                    .bind(k.retired_at)
                    .execute(self.writer())
                    .await?;
                    Ok(r.rows_affected() == 1)
                }

                async fn retire_oidc_key(&self, kid: &str, now: UnixTime) -> Result<bool> {
                    let r = sqlx::query(
                        "UPDATE oidc_keys SET retired_at = $2 \
                         WHERE kid = $1 AND retired_at IS NULL",
                    )
                    .bind(kid)
                    .bind(now)
                    .execute(self.writer())
                    .await?;
                    Ok(r.rows_affected() == 1)
                }

                async fn delete_retired_oidc_keys(&self, before: UnixTime) -> Result<u64> {
                    let r = sqlx::query(
                        "DELETE FROM oidc_keys WHERE retired_at IS NOT NULL AND retired_at < $1",
                    )
                    .bind(before)
                    .execute(self.writer())
                    .await?;
                    Ok(r.rows_affected())
                }

                async fn create_oidc_code(&self, c: &OidcCodeRecord) -> Result<()> {
                    sqlx::query(&format!(
                        "INSERT INTO oidc_codes ({CODE_COLS}) VALUES \
                         ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
                    ))
                    .bind(c.code_hash.expose())
                    .bind(&c.client_id)
                    .bind(&c.account_id)
                    .bind(&c.redirect_uri)
                    .bind(&c.code_challenge)
                    .bind(&c.nonce)
                    .bind(&c.scope)
                    .bind(c.auth_time)
                    .bind(&c.amr)
                    .bind(&c.acr)
                    .bind(c.created_at)
                    .bind(c.expires_at)
                    .execute(self.writer())
                    .await?;
                    Ok(())
                }

                async fn redeem_oidc_code(
                    &self,
                    code_hash: &[u8],
                    now: UnixTime,
                    r: &Redemption<'_>,
                ) -> Result<CodeRedemption> {
                    // One statement: the conditional UPDATE spends the code, the trigger of
                    // migrations 0015 and 0016 writes the grant and its first tokens within
                    // it, and the RETURNING clause reads the two things the token endpoint
                    // needs next (one round trip on the single writer, where there were five;
                    // the same on both backends).
                    let row = sqlx::query(&format!(
                        "UPDATE oidc_codes SET consumed_at = $2, grant_id = $3, \
                         grant_expires_at = $4, access_hash = $6, access_expires_at = $7, \
                         refresh_hash = $8 \
                         WHERE code_hash = $1 AND consumed_at IS NULL AND expires_at > $2 \
                         RETURNING {CODE_COLS}, \
                         (SELECT name FROM accounts WHERE accounts.id = oidc_codes.account_id) \
                         AS account_name, \
                         (SELECT kid FROM oidc_keys WHERE alg = $5 AND retired_at IS NULL) \
                         AS active_kid"
                    ))
                    .bind(code_hash)
                    .bind(now)
                    .bind(r.grant_id)
                    .bind(r.grant_expires_at)
                    .bind(r.signing_alg)
                    .bind(r.access_hash)
                    .bind(r.access_expires_at)
                    .bind(r.refresh_hash)
                    .fetch_optional(self.writer())
                    .await?;
                    let Some(row) = row else {
                        let used: Option<(String, Option<String>, Option<i64>)> = sqlx::query_as(
                            "SELECT client_id, grant_id, consumed_at FROM oidc_codes \
                             WHERE code_hash = $1",
                        )
                        .bind(code_hash)
                        .fetch_optional(self.writer())
                        .await?;
                        return Ok(match used {
                            Some((client_id, grant_id, Some(_))) => {
                                CodeRedemption::AlreadyUsed { grant_id, client_id }
                            }
                            _ => CodeRedemption::Invalid,
                        });
                    };
                    Ok(CodeRedemption::Redeemed(Box::new(RedeemedCode {
                        code: code_from_row(&row)?,
                        account_name: row.try_get("account_name")?,
                        active_kid: row.try_get("active_kid")?,
                    })))
                }

                async fn oidc_grant(&self, id: &str) -> Result<Option<OidcGrantRecord>> {
                    let row = sqlx::query(&format!(
                        "SELECT {GRANT_COLS} FROM oidc_grants WHERE id = $1"
                    ))
                    .bind(id)
                    .fetch_optional(self.pool())
                    .await?;
                    row.as_ref().map(grant_from_row).transpose()
                }

                async fn revoke_oidc_grant(&self, id: &str, now: UnixTime) -> Result<bool> {
                    let r = sqlx::query(
                        "UPDATE oidc_grants SET revoked_at = $2 \
                         WHERE id = $1 AND revoked_at IS NULL",
                    )
                    .bind(id)
                    .bind(now)
                    .execute(self.writer())
                    .await?;
                    Ok(r.rows_affected() == 1)
                }

                async fn create_oidc_tokens(&self, ts: &[OidcTokenRecord]) -> Result<()> {
                    if ts.is_empty() {
                        return Ok(());
                    }
                    // One statement for all rows: the access and refresh tokens of a grant are
                    // written together (one write on SQLite's single writer, not two).
                    let rows: Vec<String> = (0..ts.len())
                        .map(|i| {
                            let b = i * 7;
                            format!(
                                "(${}, ${}, ${}, ${}, ${}, ${}, ${})",
                                b + 1, b + 2, b + 3, b + 4, b + 5, b + 6, b + 7
                            )
                        })
                        .collect();
                    let sql = format!(
                        "INSERT INTO oidc_tokens ({TOKEN_COLS}) VALUES {}",
                        rows.join(", ")
                    );
                    let mut q = sqlx::query(&sql);
                    for t in ts {
                        q = q
                            .bind(t.token_hash.expose())
                            .bind(&t.kind)
                            .bind(&t.grant_id)
                            .bind(t.created_at)
                            .bind(t.expires_at)
                            .bind(t.used_at)
                            .bind(t.revoked_at);
                    }
                    q.execute(self.writer()).await?;
                    Ok(())
                }

                async fn oidc_token(&self, token_hash: &[u8]) -> Result<Option<OidcTokenRecord>> {
                    let row = sqlx::query(&format!(
                        "SELECT {TOKEN_COLS} FROM oidc_tokens WHERE token_hash = $1"
                    ))
                    .bind(token_hash)
                    .fetch_optional(self.pool())
                    .await?;
                    row.as_ref().map(token_from_row).transpose()
                }

                async fn use_oidc_refresh_token(
                    &self,
                    token_hash: &[u8],
                    now: UnixTime,
                ) -> Result<RefreshUse> {
                    let row = sqlx::query(&format!(
                        "UPDATE oidc_tokens SET used_at = $2 \
                         WHERE token_hash = $1 AND kind = 'refresh' AND used_at IS NULL \
                         AND revoked_at IS NULL AND expires_at > $2 RETURNING {TOKEN_COLS}"
                    ))
                    .bind(token_hash)
                    .bind(now)
                    .fetch_optional(self.writer())
                    .await?;
                    if let Some(row) = row {
                        return Ok(RefreshUse::Rotated(token_from_row(&row)?));
                    }
                    let row = sqlx::query(&format!(
                        "SELECT {TOKEN_COLS} FROM oidc_tokens \
                         WHERE token_hash = $1 AND kind = 'refresh'"
                    ))
                    .bind(token_hash)
                    .fetch_optional(self.writer())
                    .await?;
                    Ok(match row.as_ref().map(token_from_row).transpose()? {
                        Some(t) if t.used_at.is_some() => RefreshUse::Reused(t),
                        _ => RefreshUse::Invalid,
                    })
                }

                async fn revoke_oidc_token(&self, token_hash: &[u8], now: UnixTime) -> Result<bool> {
                    let r = sqlx::query(
                        "UPDATE oidc_tokens SET revoked_at = $2 \
                         WHERE token_hash = $1 AND revoked_at IS NULL",
                    )
                    .bind(token_hash)
                    .bind(now)
                    .execute(self.writer())
                    .await?;
                    Ok(r.rows_affected() == 1)
                }

                async fn oidc_consent(
                    &self,
                    account_id: &str,
                    client_id: &str,
                ) -> Result<Option<String>> {
                    let row: Option<(String,)> = sqlx::query_as(
                        "SELECT scope FROM oidc_consents WHERE account_id = $1 AND client_id = $2",
                    )
                    .bind(account_id)
                    .bind(client_id)
                    .fetch_optional(self.pool())
                    .await?;
                    Ok(row.map(|r| r.0))
                }

                async fn put_oidc_consent(
                    &self,
                    account_id: &str,
                    client_id: &str,
                    scope: &str,
                    now: UnixTime,
                ) -> Result<()> {
                    sqlx::query(
                        "INSERT INTO oidc_consents (account_id, client_id, scope, created_at) \
                         VALUES ($1, $2, $3, $4) ON CONFLICT (account_id, client_id) \
                         DO UPDATE SET scope = excluded.scope, created_at = excluded.created_at",
                    )
                    .bind(account_id)
                    .bind(client_id)
                    .bind(scope)
                    .bind(now)
                    .execute(self.writer())
                    .await?;
                    Ok(())
                }

                async fn oidc_consents_of(
                    &self,
                    account_id: &str,
                ) -> Result<Vec<OidcConsentRecord>> {
                    let rows: Vec<(String, String, i64)> = sqlx::query_as(
                        "SELECT client_id, scope, created_at FROM oidc_consents \
                         WHERE account_id = $1 ORDER BY created_at, client_id",
                    )
                    .bind(account_id)
                    .fetch_all(self.pool())
                    .await?;
                    Ok(rows
                        .into_iter()
                        .map(|(client_id, scope, created_at)| OidcConsentRecord {
                            client_id,
                            scope,
                            created_at,
                        })
                        .collect())
                }

                async fn oidc_live_grants_of(
                    &self,
                    account_id: &str,
                    now: UnixTime,
                ) -> Result<Vec<OidcGrantRecord>> {
                    let rows = sqlx::query(&format!(
                        "SELECT {GRANT_COLS} FROM oidc_grants WHERE account_id = $1 \
                         AND revoked_at IS NULL AND expires_at > $2 ORDER BY created_at, id"
                    ))
                    .bind(account_id)
                    .bind(now)
                    .fetch_all(self.pool())
                    .await?;
                    rows.iter().map(grant_from_row).collect()
                }

                async fn revoke_oidc_access(
                    &self,
                    account_id: &str,
                    client_id: &str,
                    now: UnixTime,
                ) -> Result<AccessRevoked> {
                    let mut tx = self.writer().begin().await?;
                    let consent = sqlx::query(
                        "DELETE FROM oidc_consents WHERE account_id = $1 AND client_id = $2",
                    )
                    .bind(account_id)
                    .bind(client_id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    let grants = sqlx::query(
                        "UPDATE oidc_grants SET revoked_at = $3 WHERE account_id = $1 \
                         AND client_id = $2 AND revoked_at IS NULL",
                    )
                    .bind(account_id)
                    .bind(client_id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    let codes = sqlx::query(
                        "DELETE FROM oidc_codes WHERE account_id = $1 AND client_id = $2 \
                         AND consumed_at IS NULL",
                    )
                    .bind(account_id)
                    .bind(client_id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    tx.commit().await?;
                    Ok(AccessRevoked {
                        consent: consent > 0,
                        grants,
                        codes,
                    })
                }

                async fn purge_oidc(&self, now: UnixTime) -> Result<u64> {
                    let mut n = 0;
                    for sql in [
                        "DELETE FROM oidc_codes WHERE expires_at < $1",
                        "DELETE FROM oidc_tokens WHERE expires_at < $1",
                        "DELETE FROM oidc_grants WHERE expires_at < $1",
                    ] {
                        n += sqlx::query(sql)
                            .bind(now)
                            .execute(self.writer())
                            .await?
                            .rows_affected();
                    }
                    Ok(n)
                }
            }
        };
    };
}

impl_oidc_store!(super::sqlite::SqliteStore, sqlx::sqlite::SqliteRow);
impl_oidc_store!(super::postgres::PgStore, sqlx::postgres::PgRow);

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
    use std::sync::Arc;

    fn client(id: &str, name: &str) -> OidcClientRecord {
        OidcClientRecord {
            id: id.into(),
            name: name.into(),
            secret_hash: Some(Redacted::new(vec![7; 32])),
            redirect_uris: vec![
                "https://app.example/cb".into(),
                "http://127.0.0.1/cb".into(),
            ],
            post_logout_redirect_uris: vec![],
            trusted: false,
            require_factor: "two_factor".into(),
            allowed_users: vec![],
            allowed_groups: vec!["ops".into()],
            alg: "ES256".into(),
            created_at: 10,
            updated_at: 10,
        }
    }

    fn code(hash: u8, client_id: &str, account_id: &str, expires_at: i64) -> OidcCodeRecord {
        OidcCodeRecord {
            code_hash: Redacted::new(vec![hash; 32]),
            client_id: client_id.into(),
            account_id: account_id.into(),
            redirect_uri: "https://app.example/cb".into(),
            code_challenge: Some("challenge".into()),
            nonce: Some("n-0S6_WzA2Mj".into()),
            scope: "openid profile".into(),
            auth_time: 90,
            amr: "pwd otp mfa".into(),
            acr: "mfa".into(),
            created_at: 100,
            expires_at,
        }
    }

    fn token(hash: u8, kind: &str, grant: &str, expires_at: i64) -> OidcTokenRecord {
        OidcTokenRecord {
            token_hash: Redacted::new(vec![hash; 32]),
            kind: kind.into(),
            grant_id: grant.into(),
            created_at: 100,
            expires_at,
            used_at: None,
            revoked_at: None,
        }
    }

    /// Redeems code `n` (its hash is `[n; 32]`) with a grant `grant` of 9,999 and first tokens
    /// whose hashes are made from the grant's name (unique, as the table requires).
    async fn redeem(s: &dyn Store, n: u8, now: i64, grant: &str, alg: &str) -> CodeRedemption {
        let (access, refresh) = (format!("access-{grant}"), format!("refresh-{grant}"));
        let r = Redemption {
            grant_id: grant,
            grant_expires_at: 9_999,
            access_hash: access.as_bytes(),
            access_expires_at: now + 600,
            refresh_hash: refresh.as_bytes(),
            signing_alg: alg,
        };
        s.redeem_oidc_code(&[n; 32], now, &r).await.unwrap()
    }

    async fn run_all(s: Arc<dyn Store>) {
        let account_id = "id-oidc";
        s.create_account(&AccountRecord {
            id: account_id.into(),
            name: "oidc-user".into(),
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

        // Clients: unique names, lists round-trip, secret rotation only for confidential ones.
        let c = client("c1", "grafana");
        s.create_oidc_client(&c).await.unwrap();
        assert_eq!(s.oidc_client("c1").await.unwrap(), Some(c.clone()));
        assert_eq!(
            s.oidc_client_by_name("grafana").await.unwrap(),
            Some(c.clone())
        );
        let dup = s.create_oidc_client(&client("c2", "grafana")).await;
        assert!(
            matches!(dup, Err(crate::error::Error::Conflict(_))),
            "{dup:?}"
        );
        let mut public = client("c3", "cli");
        public.secret_hash = None;
        public.trusted = true;
        s.create_oidc_client(&public).await.unwrap();
        assert_eq!(
            s.list_oidc_clients().await.unwrap(),
            [public.clone(), c.clone()]
        );
        assert!(s.set_oidc_client_secret("c1", &[8; 32], 20).await.unwrap());
        assert!(!s.set_oidc_client_secret("c3", &[8; 32], 20).await.unwrap());
        assert!(!s
            .set_oidc_client_secret("nope", &[8; 32], 20)
            .await
            .unwrap());
        let rotated = s.oidc_client("c1").await.unwrap().unwrap();
        assert_eq!(rotated.secret_hash, Some(Redacted::new(vec![8; 32])));
        assert_eq!(rotated.updated_at, 20);

        // Keys: one active key per algorithm.
        let key = |kid: &str| OidcKeyRecord {
            kid: kid.into(),
            alg: "ES256".into(),
            private_sealed: Redacted::new(vec![1, 2, 3]),
            public_jwk: "{}".into(),
            created_at: 5,
            retired_at: None,
        };
        assert!(s.insert_oidc_key(&key("k1")).await.unwrap());
        assert!(!s.insert_oidc_key(&key("k2")).await.unwrap());
        assert_eq!(s.oidc_keys().await.unwrap(), [key("k1")]);
        // Rotation: retired once; then a new active key fits; old ones go when asked.
        assert!(s.retire_oidc_key("k1", 50).await.unwrap());
        assert!(!s.retire_oidc_key("k1", 60).await.unwrap());
        assert!(s.insert_oidc_key(&key("k2")).await.unwrap());
        let keys = s.oidc_keys().await.unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(
            keys.iter().find(|k| k.kid == "k1").unwrap().retired_at,
            Some(50)
        );
        assert_eq!(s.delete_retired_oidc_keys(50).await.unwrap(), 0);
        assert_eq!(s.delete_retired_oidc_keys(51).await.unwrap(), 1);
        assert_eq!(s.oidc_keys().await.unwrap(), [key("k2")]);
        // Put k1 back as the only key, for what follows.
        assert!(s.retire_oidc_key("k2", 52).await.unwrap());
        assert!(s.insert_oidc_key(&key("k1")).await.unwrap());
        assert_eq!(s.delete_retired_oidc_keys(53).await.unwrap(), 1);

        // Codes: redeemed once, with its grant; a second use finds that grant.
        s.create_oidc_code(&code(1, "c1", account_id, 160))
            .await
            .unwrap();
        let r = redeem(&*s, 1, 120, "g1", "ES256").await;
        // The same statement read the account's name and the active key of the algorithm.
        assert_eq!(
            r,
            CodeRedemption::Redeemed(Box::new(RedeemedCode {
                code: code(1, "c1", account_id, 160),
                account_name: Some("oidc-user".into()),
                active_kid: Some("k1".into()),
            }))
        );
        let g = s.oidc_grant("g1").await.unwrap().unwrap();
        assert_eq!(
            (g.client_id.as_str(), g.account_id.as_str()),
            ("c1", account_id)
        );
        assert_eq!(
            (g.amr.as_str(), g.auth_time, g.revoked_at),
            ("pwd otp mfa", 90, None)
        );
        // And the grant's first tokens (migration 0016), the refresh token ending with it.
        for (hash, kind, expires_at) in [
            ("access-g1", "access", 720),
            ("refresh-g1", "refresh", 9_999),
        ] {
            let t = s.oidc_token(hash.as_bytes()).await.unwrap().unwrap();
            assert_eq!(
                (
                    t.kind.as_str(),
                    t.grant_id.as_str(),
                    t.created_at,
                    t.expires_at
                ),
                (kind, "g1", 120, expires_at)
            );
            assert_eq!((t.used_at, t.revoked_at), (None, None));
        }
        assert_eq!(
            redeem(&*s, 1, 121, "g-other", "ES256").await,
            CodeRedemption::AlreadyUsed {
                grant_id: Some("g1".into()),
                client_id: "c1".into()
            }
        );
        assert_eq!(s.oidc_grant("g-other").await.unwrap(), None);
        // Expired and unknown codes.
        s.create_oidc_code(&code(2, "c1", account_id, 160))
            .await
            .unwrap();
        assert_eq!(
            redeem(&*s, 2, 160, "g2", "ES256").await,
            CodeRedemption::Invalid
        );
        assert_eq!(
            redeem(&*s, 9, 100, "g3", "ES256").await,
            CodeRedemption::Invalid
        );

        // Two parallel redemptions of one code: exactly one wins.
        s.create_oidc_code(&code(3, "c1", account_id, 1_000))
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for i in 0..8 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                redeem(&*s, 3, 200, &format!("race-{i}"), "ES256").await
            }));
        }
        let mut won = 0;
        for t in tasks {
            match t.await.unwrap() {
                CodeRedemption::Redeemed(_) => won += 1,
                CodeRedemption::AlreadyUsed { grant_id, .. } => {
                    assert!(grant_id.unwrap().starts_with("race-"));
                }
                CodeRedemption::Invalid => panic!("a redeemed code reads as used"),
            }
        }
        assert_eq!(won, 1);
        // Only the winner's tokens were written.
        let mut written = 0;
        for i in 0..8 {
            let hash = format!("access-race-{i}");
            written += usize::from(s.oidc_token(hash.as_bytes()).await.unwrap().is_some());
        }
        assert_eq!(written, 1);

        // Tokens: refresh rotation once; a second use reads as reuse.
        s.create_oidc_tokens(&[token(10, "access", "g1", 700)])
            .await
            .unwrap();
        s.create_oidc_tokens(&[token(11, "refresh", "g1", 9_000)])
            .await
            .unwrap();
        assert_eq!(
            s.oidc_token(&[10; 32]).await.unwrap(),
            Some(token(10, "access", "g1", 700))
        );
        assert_eq!(
            s.use_oidc_refresh_token(&[10; 32], 200).await.unwrap(),
            RefreshUse::Invalid,
            "an access token is no refresh token"
        );
        let RefreshUse::Rotated(t) = s.use_oidc_refresh_token(&[11; 32], 200).await.unwrap() else {
            panic!("first use rotates");
        };
        assert_eq!(t.used_at, Some(200));
        assert!(matches!(
            s.use_oidc_refresh_token(&[11; 32], 201).await.unwrap(),
            RefreshUse::Reused(_)
        ));
        s.create_oidc_tokens(&[token(12, "refresh", "g1", 300)])
            .await
            .unwrap();
        assert_eq!(
            s.use_oidc_refresh_token(&[12; 32], 300).await.unwrap(),
            RefreshUse::Invalid,
            "expired"
        );
        assert!(s.revoke_oidc_token(&[10; 32], 210).await.unwrap());
        assert!(!s.revoke_oidc_token(&[10; 32], 211).await.unwrap());
        s.create_oidc_tokens(&[token(13, "refresh", "g1", 9_000)])
            .await
            .unwrap();
        assert!(s.revoke_oidc_token(&[13; 32], 212).await.unwrap());
        assert_eq!(
            s.use_oidc_refresh_token(&[13; 32], 213).await.unwrap(),
            RefreshUse::Invalid,
            "revoked"
        );
        assert!(s.revoke_oidc_grant("g1", 220).await.unwrap());
        assert!(!s.revoke_oidc_grant("g1", 221).await.unwrap());
        assert_eq!(
            s.oidc_grant("g1").await.unwrap().unwrap().revoked_at,
            Some(220)
        );

        // Consents.
        assert_eq!(s.oidc_consent(account_id, "c1").await.unwrap(), None);
        s.put_oidc_consent(account_id, "c1", "openid", 1)
            .await
            .unwrap();
        s.put_oidc_consent(account_id, "c1", "openid email", 2)
            .await
            .unwrap();
        assert_eq!(
            s.oidc_consent(account_id, "c1").await.unwrap().as_deref(),
            Some("openid email")
        );

        // An account's consents and live grants, and revoking its access for one client:
        // the consent, every live grant and the codes not yet redeemed, in one go.
        assert_eq!(
            s.oidc_consents_of(account_id).await.unwrap(),
            [OidcConsentRecord {
                client_id: "c1".into(),
                scope: "openid email".into(),
                created_at: 2,
            }]
        );
        s.create_oidc_code(&code(5, "c1", account_id, 1_000))
            .await
            .unwrap();
        let r = redeem(&*s, 5, 200, "g5", "RS256").await;
        // No RS256 key exists: none is active.
        assert!(matches!(
            r,
            CodeRedemption::Redeemed(ref c) if c.active_kid.is_none()
        ));
        s.create_oidc_code(&code(6, "c1", account_id, 1_000))
            .await
            .unwrap();
        let live = s.oidc_live_grants_of(account_id, 300).await.unwrap();
        assert!(live.iter().any(|g| g.id == "g5"), "{live:?}");
        assert!(live.iter().all(|g| g.revoked_at.is_none()));
        assert!(
            s.oidc_live_grants_of(account_id, 10_000)
                .await
                .unwrap()
                .is_empty(),
            "expired grants are not live"
        );
        let revoked = s.revoke_oidc_access(account_id, "c1", 300).await.unwrap();
        assert!(revoked.consent);
        assert_eq!(revoked.grants, live.len() as u64);
        // Code 6, and code 2 (expired above, never redeemed).
        assert_eq!(revoked.codes, 2);
        assert_eq!(s.oidc_consent(account_id, "c1").await.unwrap(), None);
        assert!(s
            .oidc_live_grants_of(account_id, 300)
            .await
            .unwrap()
            .is_empty());
        assert_eq!(
            redeem(&*s, 6, 301, "g6", "ES256").await,
            CodeRedemption::Invalid,
            "a code issued before the revocation is gone"
        );
        assert_eq!(
            s.revoke_oidc_access(account_id, "c1", 302).await.unwrap(),
            AccessRevoked::default(),
            "nothing left to revoke"
        );
        s.put_oidc_consent(account_id, "c1", "openid email", 2)
            .await
            .unwrap();

        // Housekeeping removes what ended; deleting a client removes the rest.
        assert!(s.purge_oidc(10_000).await.unwrap() > 0);
        assert_eq!(s.oidc_token(&[11; 32]).await.unwrap(), None);
        s.create_oidc_code(&code(4, "c1", account_id, 20_000))
            .await
            .unwrap();
        assert!(s.delete_oidc_client("c1").await.unwrap());
        assert!(!s.delete_oidc_client("c1").await.unwrap());
        assert_eq!(s.oidc_consent(account_id, "c1").await.unwrap(), None);
        assert_eq!(
            redeem(&*s, 4, 100, "g4", "ES256").await,
            CodeRedemption::Invalid
        );
    }

    #[tokio::test]
    async fn oidc_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::sqlite::SqliteStore::open(&dir.path().join("t.db"))
            .await
            .unwrap();
        run_all(Arc::new(store)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn oidc_on_postgres() {
        let db = crate::testing::TempDatabase::create().await.unwrap();
        let store = Arc::new(
            crate::store::postgres::PgStore::connect(&db.url)
                .await
                .unwrap(),
        );
        run_all(store.clone()).await;
        store.pool().close().await;
    }
}
