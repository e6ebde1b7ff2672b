-- End-to-end-encrypted authenticator sync (docs/sync-protocol.md). The server keeps only
-- ciphertext, sizes, revisions and times: no issuer, account name, secret or tag of any entry.

-- Devices registered for sync; only the SHA-256 of each device token is stored.
CREATE TABLE sync_devices (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    token_hash BYTEA NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT,
    revoked_at BIGINT
);
CREATE INDEX sync_devices_account ON sync_devices (account_id);

-- Per account: the change sequence (pull cursors), the item count (limit), and the two wraps of
-- the sync key (opaque to the server).
CREATE TABLE sync_accounts (
    account_id TEXT PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
    seq BIGINT NOT NULL DEFAULT 0,
    item_count BIGINT NOT NULL DEFAULT 0,
    keys_version BIGINT NOT NULL DEFAULT 0,
    passphrase_wrap TEXT,
    recovery_wrap TEXT,
    keys_updated_at BIGINT
);

CREATE TABLE sync_items (
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    revision BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    deleted BIGINT NOT NULL DEFAULT 0,
    ciphertext BYTEA NOT NULL,
    size BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, id)
);
CREATE INDEX sync_items_seq ON sync_items (account_id, seq);
