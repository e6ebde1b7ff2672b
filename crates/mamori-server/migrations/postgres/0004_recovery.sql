-- mamori account service, PostgreSQL schema: recovery codes and the enrollment required after an MFA reset (docs/recovery.md).

-- Single-use recovery codes. One set per account; every code of a set shares the set's random
-- salt (so an attempt costs one Argon2id evaluation, compared with every unused code in
-- constant time). used_at is set by one conditional update: a code is spent exactly once.
CREATE TABLE recovery_codes (
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    idx BIGINT NOT NULL,
    set_id TEXT NOT NULL,
    params TEXT NOT NULL,
    salt BYTEA NOT NULL,
    hash BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    used_at BIGINT,
    PRIMARY KEY (account_id, idx)
);

-- Accounts whose MFA an administrator reset (or root recovered on the host): the next sign-in
-- may only enroll a device, whatever the require_mfa policy. Cleared when a device is enabled.
CREATE TABLE mfa_enroll_required (
    account_id TEXT PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
    since BIGINT NOT NULL
);
