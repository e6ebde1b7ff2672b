-- Hardware OTP token inventory (docs/security-keys.md). A token is imported from a vendor's seed
-- file with its secret sealed by the server key (associated data "hw_token:" || id); assigning
-- it to a user creates a devices row of kind 'hardware_otp' (the secret resealed for that row)
-- and points device_id at it. Deleting the device frees the token (ON DELETE SET NULL).
CREATE TABLE hw_tokens (
    id TEXT PRIMARY KEY,
    serial TEXT NOT NULL UNIQUE,
    manufacturer TEXT,
    model TEXT,
    otp_type TEXT NOT NULL CHECK (otp_type IN ('hotp', 'totp')),
    algorithm TEXT NOT NULL,
    digits INTEGER NOT NULL,
    period INTEGER NOT NULL,
    counter INTEGER NOT NULL,
    time_drift INTEGER NOT NULL DEFAULT 0,
    secret_sealed BLOB NOT NULL,
    imported_at INTEGER NOT NULL,
    imported_by TEXT,
    device_id TEXT UNIQUE REFERENCES devices(id) ON DELETE SET NULL
);
