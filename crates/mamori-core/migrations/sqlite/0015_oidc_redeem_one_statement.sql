-- mamori account service, SQLite schema: an authorization code redeemed by one statement (#17).

-- Redemption stays one conditional UPDATE of the code (consumed_at IS NULL and not expired);
-- this trigger, part of that statement, creates the grant the code starts. Before, a
-- transaction did the UPDATE and the grant's INSERT one after the other: four round trips on
-- the database's single writer per redemption instead of one (docs/performance.md, "OpenID
-- provider"). The grant's end is written with the code by the same UPDATE, so the policy (30
-- days) stays in the server's code.
ALTER TABLE oidc_codes ADD COLUMN grant_expires_at BIGINT;

CREATE TRIGGER oidc_code_redeemed
AFTER UPDATE OF grant_id ON oidc_codes
FOR EACH ROW WHEN OLD.grant_id IS NULL AND NEW.grant_id IS NOT NULL
BEGIN
    INSERT INTO oidc_grants (id, client_id, account_id, scope, auth_time, amr, acr,
                             created_at, expires_at, revoked_at)
    VALUES (NEW.grant_id, NEW.client_id, NEW.account_id, NEW.scope, NEW.auth_time, NEW.amr,
            NEW.acr, NEW.consumed_at, NEW.grant_expires_at, NULL);
END;
