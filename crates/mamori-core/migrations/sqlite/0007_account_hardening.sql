-- mamori account service, SQLite schema: hardening after the outside security review (issue #14;
-- docs/security.md "Validate API, password change, sync tokens, contact codes").

-- An application key validates root's codes only when it was created with allow_root (0: no).
-- Keys made before this migration do not: an application must not be able to lock root out.
ALTER TABLE app_keys ADD COLUMN allow_root INTEGER NOT NULL DEFAULT 0;

-- The validate API's failure history of user names that no account has ("phantoms"), keyed by
-- the SHA-256 of the name, so that an unknown name is throttled and locked exactly when an
-- account with the same history would be and the answers do not tell which names exist.
-- Counted by one conditional upsert; never holds the name itself.
CREATE TABLE validate_phantoms (
    name_hash BLOB PRIMARY KEY,
    failures INTEGER NOT NULL,
    last_failure_at INTEGER,
    locked_at INTEGER
);

-- Contact verification: when the attempt budget of a channel began. A new code replaces the old
-- one but keeps its attempts while the budget's hour lasts (a resend gives no fresh guesses).
ALTER TABLE verification_codes ADD COLUMN window_start INTEGER NOT NULL DEFAULT 0;
