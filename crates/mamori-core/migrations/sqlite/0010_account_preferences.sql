-- mamori account service, SQLite schema: per-account language and time zone (issue #15,
-- "Per-account language and time zone"; docs/api.md "Preferences").

-- One row per account that has chosen (or was given at setup) a language or a time zone. No row:
-- the server's defaults (the console's negotiated language, the configured time zone). A
-- separate table rather than columns of `accounts`, so that every query of an account stays as
-- it is and the preferences are read only where text or times are shown.
CREATE TABLE account_preferences (
    account_id TEXT PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
    -- `en` or `ja`; NULL: not chosen yet.
    language TEXT CHECK (language IS NULL OR language IN ('en', 'ja')),
    -- An IANA time zone name, validated by the server before it is stored; NULL: not chosen.
    time_zone TEXT,
    updated_at INTEGER NOT NULL
);
