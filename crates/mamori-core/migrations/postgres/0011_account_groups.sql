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
