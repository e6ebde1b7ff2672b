-- mamori account service, sqlite schema: mamori as an OpenID Connect provider (issue #17,
-- docs/oidc.md). Every secret here is stored as the SHA-256 of a random 256-bit token (client
-- secrets, codes, access and refresh tokens) or sealed with the server key (signing keys).

-- Relying parties, registered by administrators. secret_hash is NULL for a public client (no
-- secret: PKCE is required instead). Lists (redirect URIs, allowed users and groups) are
-- newline-separated; an empty allowed_users and allowed_groups lets every account in.
CREATE TABLE oidc_clients (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    secret_hash BLOB,
    redirect_uris TEXT NOT NULL,
    post_logout_redirect_uris TEXT NOT NULL,
    trusted BIGINT NOT NULL DEFAULT 0,
    require_factor TEXT NOT NULL,
    allowed_users TEXT NOT NULL,
    allowed_groups TEXT NOT NULL,
    alg TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- ID-token signing keys: the private key sealed with the server key (its kid as associated
-- data), so every node signs with the same key and a database dump alone gives none away.
-- At most one active (not retired) key per algorithm: the unique index decides which of two
-- nodes generating the first key at once wins.
CREATE TABLE oidc_keys (
    kid TEXT PRIMARY KEY,
    alg TEXT NOT NULL,
    private_sealed BLOB NOT NULL,
    public_jwk TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    retired_at BIGINT
);
CREATE UNIQUE INDEX oidc_keys_active ON oidc_keys(alg) WHERE retired_at IS NULL;

-- One grant per redeemed authorization code: the family of every access and refresh token
-- issued from it. Revoking it (code reuse, refresh-token reuse, revocation of a refresh
-- token) ends every token of the family at once.
CREATE TABLE oidc_grants (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES oidc_clients(id) ON DELETE CASCADE,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    scope TEXT NOT NULL,
    auth_time BIGINT NOT NULL,
    amr TEXT NOT NULL,
    acr TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);

-- Authorization codes: 60 seconds, single use. Redemption is one conditional UPDATE
-- (consumed_at IS NULL and not expired) that also records the grant it started, so exactly
-- one of two nodes redeeming at once wins and a second use finds the grant to revoke.
CREATE TABLE oidc_codes (
    code_hash BLOB PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES oidc_clients(id) ON DELETE CASCADE,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    redirect_uri TEXT NOT NULL,
    code_challenge TEXT,
    nonce TEXT,
    scope TEXT NOT NULL,
    auth_time BIGINT NOT NULL,
    amr TEXT NOT NULL,
    acr TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    consumed_at BIGINT,
    grant_id TEXT
);

-- Access ('access') and refresh ('refresh') tokens. A refresh token is used once: rotation
-- sets used_at by one conditional UPDATE; presenting it again revokes its grant.
CREATE TABLE oidc_tokens (
    token_hash BLOB PRIMARY KEY,
    kind TEXT NOT NULL,
    grant_id TEXT NOT NULL REFERENCES oidc_grants(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT,
    revoked_at BIGINT
);
CREATE INDEX oidc_tokens_grant ON oidc_tokens(grant_id);

-- What each account agreed to share with a (not trusted) client; space-separated scopes.
CREATE TABLE oidc_consents (
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    client_id TEXT NOT NULL REFERENCES oidc_clients(id) ON DELETE CASCADE,
    scope TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, client_id)
);
