-- mamori account service, postgres schema: the waiting period of alternative-factor recovery
-- (docs/recovery.md, "Waiting period"; issue #15 part "recovery").

-- One row per alternative-factor recovery that had to wait because the account still had other
-- working factors. 'pending' until ready_at; then the user proves email and phone again and one
-- conditional update moves it to 'completed'. A cancel (link, sync device, or a sign-in with an
-- existing factor) moves it to 'cancelled' with the same kind of update (WHERE state =
-- 'pending'), so a cancel and a completion on different nodes cannot both win. The cancel token
-- is stored only as its SHA-256.
CREATE TABLE recovery_pending (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    ready_at BIGINT NOT NULL,
    cancel_hash BYTEA NOT NULL UNIQUE,
    state TEXT NOT NULL CHECK (state IN ('pending', 'completed', 'cancelled')),
    ended_at BIGINT
);
-- At most one pending recovery per account: two starts racing on two nodes make one row.
CREATE UNIQUE INDEX recovery_pending_one_per_account ON recovery_pending (account_id)
    WHERE state = 'pending';
