-- mamori account service, SQLite schema: the PAM module's option for users without MFA (#19).

-- An application key may ask whether an account has no MFA device (POST /api/v1/validate/status)
-- only when it was created with allow_no_device (0: no). Keys made before this migration may not:
-- the validate API never tells an application that an account exists or has devices unless an
-- administrator chose so for that key.
ALTER TABLE app_keys ADD COLUMN allow_no_device INTEGER NOT NULL DEFAULT 0;
