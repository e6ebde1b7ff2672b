-- End-to-end-encrypted authenticator sync (docs/sync-protocol.md). The server keeps only
-- ciphertext, sizes, revisions and times: no issuer, account name, secret or tag of any entry.

-- Devices registered for sync; only the SHA-256 of each device token is stored.
CREATE TABLE sync_devices (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    token_hash BLOB NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    last_seen_at INTEGER,
    revoked_at INTEGER
);
CREATE INDEX sync_devices_account ON sync_devices (account_id);

-- Per account: the change sequence (pull cursors), the item count (limit), and the two wraps of
-- the sync key (opaque to the server).
CREATE TABLE sync_accounts (
    account_id TEXT PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL DEFAULT 0,
    item_count INTEGER NOT NULL DEFAULT 0,
    keys_version INTEGER NOT NULL DEFAULT 0,
    passphrase_wrap TEXT,
    recovery_wrap TEXT,
    keys_updated_at INTEGER
);

CREATE TABLE sync_items (
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    revision INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    ciphertext BLOB NOT NULL,
    size INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (account_id, id)
);
CREATE INDEX sync_items_seq ON sync_items (account_id, seq);
