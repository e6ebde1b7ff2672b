//! The crate's one error type. HTTP status codes and CLI exit codes are chosen at the edges.

use thiserror::Error;

/// Everything that can go wrong in the account service. Messages never contain secrets.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// A request field has an invalid value; the message names it.
    #[error("{0}")]
    InvalidInput(String),
    /// Wrong user name or password (deliberately not saying which).
    #[error("the user name or password is wrong")]
    InvalidCredentials,
    /// No valid session.
    #[error("sign in first: the session is missing, expired or revoked")]
    Unauthenticated,
    /// The session may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// An administrator may not make this change to another account's factors.
    #[error("{}", .0.message())]
    FactorChangeRefused(FactorRefusal),
    /// MFA enrollment is required before anything else.
    #[error("this account must enable an MFA device before doing anything else")]
    MfaEnrollmentRequired,
    /// A recovery session (signed in with alternative factors) may only manage MFA devices.
    #[error(
        "this recovery session may only manage MFA devices: enable a new MFA device to end it"
    )]
    RecoverySessionRestricted,
    /// Unknown, used or expired sign-in challenge.
    #[error("the sign-in challenge is unknown or expired: sign in again with your password")]
    InvalidChallenge,
    /// Wrong (or already used) one-time code.
    #[error("the code is wrong or was already used: wait for the next code")]
    InvalidCode,
    /// Both codes valid but not consecutive.
    #[error("both codes are valid but not consecutive: enter a code, wait for it to change, then enter the next one")]
    CodesNotConsecutive,
    /// A recent second factor is needed.
    #[error("confirm with an MFA code first (POST /api/v1/session/verify): this change needs a second factor from the last 5 minutes")]
    RecentSecondFactorRequired,
    /// The account is locked after too many failed second-factor attempts.
    #[error("the account is locked after too many failed MFA attempts: ask an administrator to reset it")]
    AccountLocked,
    /// Too many attempts; retry later.
    #[error("too many attempts: retry in {retry_after} seconds")]
    RateLimited {
        /// Seconds until a retry may succeed.
        retry_after: u64,
    },
    /// No such resource (or not the caller's).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A name is taken.
    #[error("{0}")]
    Conflict(String),
    /// The account already has the maximum number of devices.
    #[error("this account already has the maximum of {0} MFA devices: delete one first")]
    DeviceLimitReached(u32),
    /// The device is in the wrong state for this operation.
    #[error("{0}")]
    InvalidDeviceState(String),
    /// The password does not meet the policy.
    #[error("{0}")]
    WeakPassword(crate::domain::password::PasswordProblem),
    /// Unknown, used or expired setup token.
    #[error("the setup link is unknown, used or expired: ask an administrator for a new one")]
    InvalidSetupToken,
    /// Unknown or revoked application key.
    #[error("the application key is missing, unknown or revoked")]
    InvalidAppKey,
    /// The security-key ceremony is unknown, finished, expired or another session's.
    #[error("the security key request is unknown, already used or expired: start again")]
    InvalidCeremony,
    /// The security key's answer was not accepted.
    #[error("the security key was not accepted: use a key registered to this account")]
    SecurityKeyRejected,
    /// The configuration is invalid.
    #[error("configuration: {0}")]
    Config(String),
    /// `admin review`: a high-severity check failed (exit code 1 for scripts; the findings were
    /// printed).
    #[error("a high-severity security check failed (see the findings above)")]
    ReviewFailed,
    /// The server key file cannot be read, created or used.
    #[error("server key: {0}")]
    Key(String),
    /// The database failed (the cause is kept as the error's source).
    #[error("database: {0}")]
    Store(#[from] StoreError),
    /// Any other internal failure (crypto, I/O).
    #[error("internal error: {0}")]
    Internal(String),
    // #15 defaults
    /// An administrator without an enabled MFA device of their own asked for an
    /// administrative function (refused whatever `require_mfa` says).
    #[error("administrators must enable an MFA device of their own before using administrative functions: assign one first (POST /api/v1/mfa-devices/virtual)")]
    AdminWithoutMfa,

    // #15 delivery
    /// A code could not be sent on this channel (`email`, `sms`, `voice`): the mail server or
    /// phone gateway failed or did not answer in time. The reason class is in the audit log and
    /// the metrics, never in this message.
    #[error("we could not send the code by {0}: try again later or use another way")]
    DeliveryFailed(&'static str),

    /// An administrator's test message (`admin test-email`, `admin test-phone`) was not sent:
    /// `what` names the masked recipient and the route, `reason` is the class from
    /// [`crate::domain::delivery::reason_class`], never the transport's error text (it may
    /// name a user or echo a server's reply).
    #[error("could not send {what}: {reason}")]
    TestDeliveryFailed {
        /// The message, its masked recipient and the route tried.
        what: String,
        /// The reason class (`transport`, `rejected`, `tls`, `timeout`, `not_configured`, …).
        reason: &'static str,
    },

    // #15 contacts
    /// A phone number that is not valid (the message says what was entered and the form
    /// expected).
    #[error("{0}")]
    InvalidPhoneNumber(String),
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        Error::Store(StoreError::Sql(std::sync::Arc::new(e)))
    }
}

impl From<sqlx::migrate::MigrateError> for Error {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        Error::Store(StoreError::Migrate(std::sync::Arc::new(e)))
    }
}

/// Why the store failed. The SQL driver's error is kept (as the source) rather than flattened
/// into text, so a caller can tell a lost connection from a constraint, and a log shows the
/// chain. Never shown to a user: the edges answer every store error with a generic
/// `internal` error.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database driver failed (connection, query, constraint, decoding). Shared, so the
    /// audit writer can hand one failure to every event of a failed batch.
    #[error("{0}")]
    Sql(#[source] std::sync::Arc<sqlx::Error>),
    /// A schema migration failed.
    #[error("migration failed: {0}")]
    Migrate(#[source] std::sync::Arc<sqlx::migrate::MigrateError>),
    /// The data directory for the SQLite file could not be created.
    #[error("cannot create {path}: {source}")]
    CreateDir {
        /// The directory.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::sync::Arc<std::io::Error>,
    },
    /// A stored value is not one this version writes (an unknown kind or state, a missing
    /// row the schema promises): the database was changed outside mamori, or by a newer one.
    #[error("unexpected stored data: {0}")]
    Corrupt(String),
    /// The audit log's writer task has stopped (the server is shutting down).
    #[error("the audit writer has stopped")]
    AuditWriterStopped,
}

/// Shorthand.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why an administrator may not change another account's factors
/// ([`crate::domain::factor_changes`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FactorRefusal {
    /// Root's factors are root's alone.
    Root,
    /// The administrator has no MFA device of their own.
    AdminWithoutMfa,
    /// Only the account itself may make this change.
    OwnAccountOnly,
}

impl FactorRefusal {
    /// The English explanation (the API's message; the console has its own catalogs).
    pub fn message(self) -> &'static str {
        match self {
            FactorRefusal::Root => {
                "root's factors are root's alone: an administrator cannot change them (on the \
                 server host, `mamori-server admin recover-root` is the last resort)"
            }
            FactorRefusal::AdminWithoutMfa => {
                "an administrator needs an MFA device of their own to change another account's \
                 factors: enroll one first"
            }
            FactorRefusal::OwnAccountOnly => "only the account itself may make this change",
        }
    }
}

impl StoreError {
    /// Whether the database is (for now) out of reach rather than refusing this request: a
    /// lost or refused connection, an exhausted pool, a server shutting down or restarting, a
    /// full disk. The edges answer these with 503 and `Retry-After`, not 500: the same request
    /// may succeed in a few seconds (docs/reliability.md).
    pub fn is_unavailable(&self) -> bool {
        let StoreError::Sql(e) = self else {
            return false;
        };
        match &**e {
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Tls(_) => true,
            sqlx::Error::Database(db) => {
                let Some(code) = db.code() else { return false };
                if db
                    .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                    .is_some()
                {
                    postgres_unavailable(&code)
                } else {
                    sqlite_unavailable(&code)
                }
            }
            _ => false,
        }
    }
}

/// PostgreSQL error codes that mean "not now" rather than "not this": PostgreSQL's class 08
/// (connection exception), 53 (insufficient resources: disk full, out of memory, too many
/// connections) and 57P01–57P03 (shutdown, crash shutdown, cannot connect now) (PostgreSQL
/// documentation, Appendix A "Error Codes").
fn postgres_unavailable(code: &str) -> bool {
    code.starts_with("08") || code.starts_with("53") || matches!(code, "57P01" | "57P02" | "57P03")
}

/// SQLite result codes that mean "not now": 5 `SQLITE_BUSY`, 10 `SQLITE_IOERR`, 13
/// `SQLITE_FULL` and 14 `SQLITE_CANTOPEN` (<https://www.sqlite.org/rescode.html>), also as
/// extended codes (their low byte is the primary code).
fn sqlite_unavailable(code: &str) -> bool {
    code.parse::<i64>()
        .is_ok_and(|n| matches!(n & 0xff, 5 | 10 | 13 | 14))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    /// A driver failure stays a driver failure: its type is reachable through `source()`, and
    /// the text is the driver's, prefixed once.
    #[test]
    fn store_errors_keep_their_source() {
        let e = Error::from(sqlx::Error::RowNotFound);
        assert_eq!(
            e.to_string(),
            format!("database: {}", sqlx::Error::RowNotFound)
        );
        let store = std::error::Error::source(&e).unwrap();
        assert!(store.downcast_ref::<StoreError>().is_some());
        let driver = store.source().unwrap();
        assert!(
            matches!(
                driver
                    .downcast_ref::<std::sync::Arc<sqlx::Error>>()
                    .map(|a| &**a),
                Some(sqlx::Error::RowNotFound)
            ) || matches!(
                driver.downcast_ref::<sqlx::Error>(),
                Some(sqlx::Error::RowNotFound)
            )
        );
        // Cloned for every event of a failed audit batch, the cause is the same.
        let Error::Store(s) = e else {
            panic!("not a store error")
        };
        assert_eq!(s.clone().to_string(), s.to_string());
        assert_eq!(
            Error::from(StoreError::AuditWriterStopped).to_string(),
            "database: the audit writer has stopped"
        );
    }

    /// "Not now" errors are told apart from "not this" errors by kind and code.
    #[test]
    fn unavailable_errors_are_recognised() {
        let sql = |e| StoreError::Sql(std::sync::Arc::new(e));
        assert!(sql(sqlx::Error::PoolTimedOut).is_unavailable());
        assert!(sql(sqlx::Error::Io(std::io::Error::from(
            std::io::ErrorKind::ConnectionReset
        )))
        .is_unavailable());
        assert!(!sql(sqlx::Error::RowNotFound).is_unavailable());
        assert!(!StoreError::Corrupt("x".into()).is_unavailable());
        assert!(!StoreError::AuditWriterStopped.is_unavailable());
        for code in ["08006", "57P01", "53100"] {
            assert!(postgres_unavailable(code), "{code}");
        }
        for code in ["13", "5", "266", "3338"] {
            assert!(sqlite_unavailable(code), "{code}");
        }
        // Constraint violations (PostgreSQL 23505, SQLite 2067 = SQLITE_CONSTRAINT_UNIQUE) and
        // syntax errors are the request's or the code's fault, not the database's absence.
        for code in ["23505", "42601", "40001"] {
            assert!(!postgres_unavailable(code), "{code}");
        }
        for code in ["2067", "19", "1"] {
            assert!(!sqlite_unavailable(code), "{code}");
        }
    }
}
