-- mamori account service, SQLite schema v1. Times are Unix seconds; ids are UUID text.
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL
);

CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL CHECK (role IN ('admin', 'user')),
    email TEXT,
    phone TEXT,
    password_hash TEXT,
    password_changed_at INTEGER,
    created_at INTEGER NOT NULL,
    device_count INTEGER NOT NULL DEFAULT 0,
    mfa_failures INTEGER NOT NULL DEFAULT 0,
    mfa_last_failure_at INTEGER,
    locked_at INTEGER
);

-- One table for every kind of MFA device; kind-specific data in secret_sealed / credential.
CREATE TABLE devices (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('virtual', 'security_key', 'hardware_otp')),
    name TEXT NOT NULL,
    serial TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    enabled_at INTEGER,
    last_used_at INTEGER,
    secret_sealed BLOB,
    otp_type TEXT NOT NULL DEFAULT 'totp',
    algorithm TEXT NOT NULL DEFAULT 'SHA1',
    digits INTEGER NOT NULL DEFAULT 6,
    period INTEGER NOT NULL DEFAULT 30,
    drift INTEGER NOT NULL DEFAULT 0,
    last_step INTEGER,
    credential BLOB,
    UNIQUE (account_id, name)
);
CREATE INDEX devices_account ON devices(account_id);

CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    token_hash BLOB NOT NULL UNIQUE,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    state TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    second_factor_at INTEGER,
    client_addr TEXT,
    user_agent TEXT
);
CREATE INDEX sessions_account ON sessions(account_id);

CREATE TABLE setup_tokens (
    token_hash BLOB PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    expires_at INTEGER NOT NULL,
    used_at INTEGER
);

CREATE TABLE app_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    key_hash BLOB NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    created_by TEXT,
    revoked_at INTEGER
);

CREATE TABLE audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    account TEXT,
    actor TEXT,
    client_addr TEXT,
    user_agent TEXT,
    kind TEXT NOT NULL,
    result TEXT NOT NULL,
    detail TEXT
);
CREATE INDEX audit_account ON audit(account, id);
