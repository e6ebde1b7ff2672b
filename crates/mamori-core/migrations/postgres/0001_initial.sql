-- mamori account service, PostgreSQL schema v1. Times are Unix seconds; ids are UUID text.
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);

CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL CHECK (role IN ('admin', 'user')),
    email TEXT,
    phone TEXT,
    password_hash TEXT,
    password_changed_at BIGINT,
    created_at BIGINT NOT NULL,
    device_count BIGINT NOT NULL DEFAULT 0,
    mfa_failures BIGINT NOT NULL DEFAULT 0,
    mfa_last_failure_at BIGINT,
    locked_at BIGINT
);

-- One table for every kind of MFA device; kind-specific data in secret_sealed / credential.
CREATE TABLE devices (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('virtual', 'security_key', 'hardware_otp')),
    name TEXT NOT NULL,
    serial TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    enabled_at BIGINT,
    last_used_at BIGINT,
    secret_sealed BYTEA,
    otp_type TEXT NOT NULL DEFAULT 'totp',
    algorithm TEXT NOT NULL DEFAULT 'SHA1',
    digits BIGINT NOT NULL DEFAULT 6,
    period BIGINT NOT NULL DEFAULT 30,
    drift BIGINT NOT NULL DEFAULT 0,
    last_step BIGINT,
    credential BYTEA,
    UNIQUE (account_id, name)
);
CREATE INDEX devices_account ON devices(account_id);

CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    token_hash BYTEA NOT NULL UNIQUE,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    state TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    second_factor_at BIGINT,
    client_addr TEXT,
    user_agent TEXT
);
CREATE INDEX sessions_account ON sessions(account_id);

CREATE TABLE setup_tokens (
    token_hash BYTEA PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);

CREATE TABLE app_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    key_hash BYTEA NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    created_by TEXT,
    revoked_at BIGINT
);

CREATE TABLE audit (
    id BIGSERIAL PRIMARY KEY,
    at BIGINT NOT NULL,
    account TEXT,
    actor TEXT,
    client_addr TEXT,
    user_agent TEXT,
    kind TEXT NOT NULL,
    result TEXT NOT NULL,
    detail TEXT
);
CREATE INDEX audit_account ON audit(account, id);
