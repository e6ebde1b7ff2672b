-- mamori account service, SQLite schema: a code's first tokens written by its redemption (#17).

-- The redeeming UPDATE (migration 0015) also carries the hashes of the grant's first access and
-- refresh tokens, and its trigger writes them after the grant: one statement on the database's
-- single writer where a second INSERT used to follow (docs/performance.md, "OpenID provider").
-- Only hashes are stored, as in oidc_tokens. A redemption whose client, redirect URI or PKCE
-- verifier turns out not to match revokes the grant, and with it these tokens, which were never
-- handed out.
ALTER TABLE oidc_codes ADD COLUMN access_hash BLOB;
ALTER TABLE oidc_codes ADD COLUMN refresh_hash BLOB;
ALTER TABLE oidc_codes ADD COLUMN access_expires_at BIGINT;

-- One trigger, so that the grant exists before the tokens that reference it (the order of two
-- triggers on one event is not defined).
DROP TRIGGER oidc_code_redeemed;

CREATE TRIGGER oidc_code_redeemed
AFTER UPDATE OF grant_id ON oidc_codes
FOR EACH ROW WHEN OLD.grant_id IS NULL AND NEW.grant_id IS NOT NULL
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
END;
