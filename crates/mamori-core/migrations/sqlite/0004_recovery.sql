-- mamori account service, SQLite schema: recovery codes, the enrollment required after an MFA reset, verified contacts (docs/recovery.md).

-- Single-use recovery codes. One set per account; every code of a set shares the set's random
-- salt (so an attempt costs one Argon2id evaluation, compared with every unused code in
-- constant time). used_at is set by one conditional update: a code is spent exactly once.
CREATE TABLE recovery_codes (
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    set_id TEXT NOT NULL,
    params TEXT NOT NULL,
    salt BLOB NOT NULL,
    hash BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    used_at INTEGER,
    PRIMARY KEY (account_id, idx)
);

-- Accounts whose MFA an administrator reset (or root recovered on the host): the next sign-in
-- may only enroll a device, whatever the require_mfa policy. Cleared when a device is enabled.
CREATE TABLE mfa_enroll_required (
    account_id TEXT PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
    since INTEGER NOT NULL
);

-- Contact details proven with a code sent to them. A row records the value that was proven;
-- a different value on the account is not verified.
CREATE TABLE verified_contacts (
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    channel TEXT NOT NULL CHECK (channel IN ('email', 'phone')),
    value TEXT NOT NULL,
    verified_at INTEGER NOT NULL,
    PRIMARY KEY (account_id, channel)
);

-- One-time verification codes (6 digits, 10 minutes, single use, attempts counted), stored as
-- SHA-256 of the row id and the code. One live code per account and purpose.
CREATE TABLE verification_codes (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    purpose TEXT NOT NULL,
    target TEXT NOT NULL,
    code_hash BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    used_at INTEGER
);
CREATE INDEX verification_codes_account ON verification_codes (account_id, purpose);
