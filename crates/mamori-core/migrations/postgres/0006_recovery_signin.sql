-- mamori account service, PostgreSQL schema: signing in with alternative factors (docs/recovery.md).
-- (0005 is taken by the WebAuthn work on another branch.)

-- One row per sign-in challenge that started a recovery sign-in: the email code first
-- (step 'email'), then, after it was given, the phone code (step 'phone'), then 'done'.
-- Codes are 6 digits, valid 10 minutes, at most 5 attempts each, stored only as SHA-256 of
-- the row id, the step and the code. Every change of step, attempt count and use is one
-- conditional update, so parallel requests cannot skip a step or exceed a limit. The row goes
-- with its challenge (the challenge is consumed when the recovery session is made).
CREATE TABLE recovery_signins (
    id TEXT PRIMARY KEY,
    challenge_id TEXT NOT NULL UNIQUE REFERENCES sessions(id) ON DELETE CASCADE,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    step TEXT NOT NULL CHECK (step IN ('email', 'phone', 'done')),
    code_hash BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    used_at BIGINT
);
CREATE INDEX recovery_signins_account ON recovery_signins (account_id);
