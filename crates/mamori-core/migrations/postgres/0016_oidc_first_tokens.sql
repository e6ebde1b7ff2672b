-- mamori account service, PostgreSQL schema: a code's first tokens written by its redemption
-- (#17; see the SQLite migration of the same number).

ALTER TABLE oidc_codes ADD COLUMN access_hash BYTEA;
ALTER TABLE oidc_codes ADD COLUMN refresh_hash BYTEA;
ALTER TABLE oidc_codes ADD COLUMN access_expires_at BIGINT;

-- The trigger of migration 0015 calls this function: the grant, then its first tokens.
CREATE OR REPLACE FUNCTION oidc_code_redeemed() RETURNS trigger AS $$
BEGIN
    INSERT INTO oidc_grants (id, client_id, account_id, scope, auth_time, amr, acr,
                             created_at, expires_at, revoked_at)
    VALUES (NEW.grant_id, NEW.client_id, NEW.account_id, NEW.scope, NEW.auth_time, NEW.amr,
            NEW.acr, NEW.consumed_at, NEW.grant_expires_at, NULL);
    INSERT INTO oidc_tokens (token_hash, kind, grant_id, created_at, expires_at, used_at,
                             revoked_at)
    VALUES (NEW.access_hash, 'access', NEW.grant_id, NEW.consumed_at, NEW.access_expires_at,
            NULL, NULL),
           (NEW.refresh_hash, 'refresh', NEW.grant_id, NEW.consumed_at, NEW.grant_expires_at,
            NULL, NULL);
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
