-- mamori account service, PostgreSQL schema: account groups (issue #18, forward authentication;
-- docs/forward-auth.md "Groups").

-- One row per (account, group). Groups are plain names an administrator gives accounts; the
-- forward-auth access rules name them as subjects and the Remote-Groups header carries them.
-- The name rule (lowercase letters, digits, '-', '_', '.', at most 64 characters) and the limit
-- of 32 groups per account are the domain's (domain/groups.rs); the store counts inside the
-- transaction that inserts.
CREATE TABLE account_groups (
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    group_name TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, group_name)
);

-- The forward-auth single-sign-on tokens (issue #18; docs/forward-auth.md "The cookie"): a
-- second token of a console session, sent in a cookie scoped to the protected applications'
-- parent domain. Only its SHA-256 is stored. It is only good for forward-auth checks (the API
-- and the console never look here), so the cookie every protected application sees cannot
-- act on the account; it ends with its session (sign-out, revocation, expiry) by the cascade.
CREATE TABLE forward_sessions (
    token_hash BYTEA PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL
);
CREATE INDEX forward_sessions_session ON forward_sessions(session_id);

-- The kind of the session's latest second factor (#18, the forward-auth policy
-- `phishing_resistant`): 'security_key' (a security key or passkey: WebAuthn binds the answer to
-- the origin) or 'otp' (a code of any kind); NULL for sessions without one and those made
-- before this migration (which then count as not phishing-resistant).
ALTER TABLE sessions ADD COLUMN second_factor_kind TEXT;
