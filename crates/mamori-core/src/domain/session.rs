//! What a session is granted on, and what an authenticated request carries: the types that
//! sign-in ([`super::signin`]), recovery sign-in ([`super::recovery_signin`]) and every module
//! acting for a signed-in user share. They live here, apart from the rules that make them, so
//! that those modules need not import each other. The proofs ([`PasswordOnlyAllowed`],
//! [`AlternativeFactorsVerified`], like [`super::SecondFactorVerified`]) cannot be built
//! outside the domain; each is made by one rule only (named on its type).

use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::store::{AccountRecord, Role, SessionRecord, SessionState};

use super::SecondFactorVerified;

/// Proof that the policy lets this account have a full session on its password alone: it has
/// no enabled MFA device and the policy does not require one. Only
/// [`super::Service::sign_in_password`] makes it.
#[derive(Debug)]
pub struct PasswordOnlyAllowed {
    _private: (),
}

impl PasswordOnlyAllowed {
    pub(super) fn new() -> Self {
        PasswordOnlyAllowed { _private: () }
    }
}

/// What a new session is based on; each variant can only be built by the rule that allows it.
#[derive(Debug)]
pub enum SessionGrant {
    /// Password and a verified second factor: a full session.
    SecondFactor(SecondFactorVerified),
    /// Password alone, allowed by the policy: a full session with the security alert.
    PasswordOnly(PasswordOnlyAllowed),
    /// Password alone where the policy requires MFA: may only enroll a device.
    EnrollmentOnly,
    /// Password, then codes sent to the verified email address and phone number: a recovery
    /// session that may only manage MFA devices (docs/recovery.md).
    Recovery(AlternativeFactorsVerified),
}

/// A session just created; the token is shown to the client once.
#[derive(Debug)]
pub struct NewSession {
    /// The bearer token (also the cookie value).
    pub token: Zeroizing<String>,
    /// The stored record.
    pub record: SessionRecord,
}

/// A request's authenticated session.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The session.
    pub session: SessionRecord,
    /// Its account.
    pub account: AccountRecord,
    /// Enabled MFA devices of the account.
    pub enabled_devices: u32,
}

impl Authenticated {
    /// Refuses sessions that may only enroll a device, and recovery sessions.
    pub fn require_full(&self) -> Result<()> {
        match self.session.state {
            SessionState::Full => Ok(()),
            SessionState::Recovery => Err(Error::RecoverySessionRestricted),
            _ => Err(Error::MfaEnrollmentRequired),
        }
    }

    /// A full session or a recovery session (MFA device management, which both may do).
    pub fn require_full_or_recovery(&self) -> Result<()> {
        match self.session.state {
            SessionState::Recovery => Ok(()),
            _ => self.require_full(),
        }
    }

    /// The one rule for administrative functions: a full session of an administrator who has
    /// an enabled MFA device of their own, whatever `require_mfa` says (an administrator's
    /// password alone must not hold the power over every account). Refuses restricted
    /// sessions, non-administrators (`Forbidden`) and administrators without MFA
    /// (`AdminWithoutMfa`). Edges call [`super::Service::require_admin`], which audits the last.
    pub fn require_admin(&self) -> Result<()> {
        self.require_full()?;
        if self.account.role != Role::Admin {
            return Err(Error::Forbidden("only administrators may do this".into()));
        }
        if self.enabled_devices == 0 {
            return Err(Error::AdminWithoutMfa);
        }
        Ok(())
    }

    /// Whose audit events this session may read, given the account it asked for: an
    /// administrator ([`Authenticated::is_admin`]) reads the account asked for (or every
    /// account), anyone else only their own, whatever they asked. Requires a full session. The
    /// one rule for every edge that shows the audit log (the API's `GET /api/v1/audit`, the
    /// console's audit page).
    pub fn audit_scope(&self, requested: Option<String>) -> Result<Option<String>> {
        self.require_full()?;
        Ok(if self.is_admin() {
            requested
        } else {
            Some(self.account.name.clone())
        })
    }

    /// Whether this session may see what administrators see (lists scoped to all accounts),
    /// by the same rule as [`Authenticated::require_admin`].
    pub fn is_admin(&self) -> bool {
        self.require_admin().is_ok()
    }
}

/// A recovery session ends 30 minutes after it began, whatever the activity.
pub const RECOVERY_SESSION_SECS: i64 = 30 * 60;
/// Proof that the email and phone codes of a recovery sign-in were just given for an account.
/// Only [`super::Service::recovery_phone_code`] makes it; a recovery session needs one.
#[derive(Debug)]
pub struct AlternativeFactorsVerified {
    account_id: String,
}

impl AlternativeFactorsVerified {
    pub(super) fn new(account_id: &str) -> Self {
        AlternativeFactorsVerified {
            account_id: account_id.to_string(),
        }
    }

    /// The account.
    pub fn account_id(&self) -> &str {
        &self.account_id
    }
}
