-- mamori account service, SQLite schema: security keys (WebAuthn/FIDO2, docs/security-keys.md).
-- A security key is a row of `devices` (kind 'security_key'): the serialized credential in
-- devices.credential and the authenticator's last signature counter in devices.last_step.

-- Credential ids are unique across all accounts: one authenticator credential is one device.
-- The row goes with its device (deletion, administrator reset).
CREATE TABLE webauthn_credentials (
    credential_id BLOB PRIMARY KEY,
    device_id TEXT NOT NULL UNIQUE REFERENCES devices(id) ON DELETE CASCADE
);

-- A registration or authentication ceremony between its begin and finish request, so that any
-- node can finish what another began. Bound to the session (registration) or the sign-in
-- challenge (authentication) that began it; consumed by one DELETE ... RETURNING (single use);
-- useless after expires_at.
CREATE TABLE webauthn_ceremonies (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    session_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('register', 'authenticate')),
    device_name TEXT,
    state BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX webauthn_ceremonies_expiry ON webauthn_ceremonies(expires_at);
