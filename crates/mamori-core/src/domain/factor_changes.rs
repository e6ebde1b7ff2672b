//! Who may change whose factors, and when: the one rule every edge (JSON API, console, admin
//! command line, and every later entry point) goes through before an MFA device, a hardware
//! token, a security key, a set of recovery codes or an MFA reset changes anything.
//!
//! The rule, in one table (docs/security.md, "Who may change a factor"):
//!
//! | actor | session | may | extra condition |
//! |---|---|---|---|
//! | the account itself | full | every [`FactorChange`] but [`FactorChange::ResetMfa`] | a second factor from the last 5 minutes when the account has an enabled device (not for resync and rename, which prove or change nothing) |
//! | the account itself | enrollment-only | create, enable, assign a token, register a key | (it has no enabled device) |
//! | the account itself | recovery | create, enable, resync, delete devices, assign a token, register a key | the recovery's email and phone codes are the fresh factor |
//! | an administrator, for another account | full | delete a device, assign a token, reset MFA, set or remove a contact | a second factor of the *administrator's* from the last 5 minutes (so an administrator without MFA cannot), never on root |
//!
//! Contact details (#15: [`FactorChange::SetContact`], [`FactorChange::RemoveContact`]) are
//! recovery factors, so they follow the same rule: the account's own full session with a fresh
//! second factor (when it has an enabled device). An enrollment-only session may not change
//! them (its first step is a device; a password alone must not be able to plant a recovery
//! route), and neither may a recovery session (it proved the *old* contacts: a SIM-swapper who
//! got that far must not replace them). A value an administrator sets is stored unverified
//! until the user proves it; the admin command line on the server host is trusted and may
//! mark values proven (`--verified`).
//!
//! Every refusal is audited under the change's own audit kind, with the administrator as
//! actor when one acted. The answer is a [`FactorChangeAllowed`], which the changing
//! functions require, so a change cannot skip the rule.

use crate::clock::UnixTime;
use crate::error::{Error, FactorRefusal, Result};
use crate::store::{AccountRecord, Role, SessionRecord, SessionState};

use super::audit::{kind, Event};
use super::{RequestMeta, Service, RECENT_FACTOR_SECS, ROOT};

/// A change to an account's factors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FactorChange {
    /// Create a virtual device (its secret is shown).
    CreateDevice,
    /// Enable a pending virtual device, or show its secret again to finish enrolling.
    EnableDevice,
    /// Resynchronise an enabled OTP device with two consecutive codes.
    ResyncDevice,
    /// Rename a device.
    RenameDevice,
    /// Delete (deactivate) a device.
    DeleteDevice,
    /// Assign a hardware token by serial and two consecutive codes.
    AssignToken,
    /// Register a security key.
    RegisterSecurityKey,
    /// Make a new set of recovery codes.
    RegenerateRecoveryCodes,
    /// Remove every device and recovery code (an administrator's reset).
    ResetMfa,
    // #15 contacts
    /// Set (add or replace) an email address or phone number.
    SetContact,
    /// Remove an email address or phone number.
    RemoveContact,
    // #15 polish
    /// Revoke one of the account's sync devices (a stolen laptop cut off from a browser).
    RevokeSyncDevice,
}

impl FactorChange {
    /// Every change, for tests and the authorization matrix.
    pub const ALL: [FactorChange; 12] = [
        FactorChange::CreateDevice,
        FactorChange::EnableDevice,
        FactorChange::ResyncDevice,
        FactorChange::RenameDevice,
        FactorChange::DeleteDevice,
        FactorChange::AssignToken,
        FactorChange::RegisterSecurityKey,
        FactorChange::RegenerateRecoveryCodes,
        FactorChange::ResetMfa,
        // #15 contacts
        FactorChange::SetContact,
        FactorChange::RemoveContact,
        // #15 polish
        FactorChange::RevokeSyncDevice,
    ];

    /// The audit kind a refusal is recorded under.
    pub fn audit_kind(self) -> &'static str {
        match self {
            FactorChange::CreateDevice => kind::MFA_CREATE,
            FactorChange::EnableDevice => kind::MFA_ENABLE,
            FactorChange::ResyncDevice => kind::MFA_RESYNC,
            FactorChange::RenameDevice => kind::MFA_RENAME,
            FactorChange::DeleteDevice => kind::MFA_DELETE,
            FactorChange::AssignToken => kind::tokens::TOKEN_ASSIGN,
            FactorChange::RegisterSecurityKey => kind::webauthn::REGISTER_BEGIN,
            FactorChange::RegenerateRecoveryCodes => kind::recovery::CODES_GENERATE,
            FactorChange::ResetMfa => kind::recovery::ADMIN_RESET,
            // #15 contacts
            FactorChange::SetContact => kind::contacts::CHANGE,
            FactorChange::RemoveContact => kind::contacts::REMOVE,
            // #15 polish
            FactorChange::RevokeSyncDevice => kind::sync::DEVICE_REVOKE,
        }
    }

    /// Whether the account's own session needs a second factor from the last 5 minutes
    /// (when the account has MFA). Resync proves possession with two codes of the device
    /// itself, and a rename changes no factor.
    fn needs_recent_factor(self) -> bool {
        !matches!(
            self,
            FactorChange::ResyncDevice | FactorChange::RenameDevice
        )
    }

    /// What an enrollment-only session (no device yet, MFA required) may do: get its first
    /// factor.
    fn enrolls(self) -> bool {
        matches!(
            self,
            FactorChange::CreateDevice
                | FactorChange::EnableDevice
                | FactorChange::AssignToken
                | FactorChange::RegisterSecurityKey
        )
    }

    /// What a recovery session may do: manage MFA devices (docs/recovery.md).
    fn recovers(self) -> bool {
        !matches!(
            self,
            FactorChange::RenameDevice
                | FactorChange::RegenerateRecoveryCodes
                | FactorChange::ResetMfa
                | FactorChange::SetContact
                | FactorChange::RemoveContact
                // #15 polish: the recovery session manages MFA devices only; its completion
                // revokes every sync device anyway.
                | FactorChange::RevokeSyncDevice
        )
    }

    /// What an administrator may do to another account's factors. Nothing that creates a
    /// secret the administrator could keep, except a hardware token proven by its codes and
    /// announced to the user.
    fn administrable(self) -> bool {
        matches!(
            self,
            FactorChange::DeleteDevice
                | FactorChange::AssignToken
                | FactorChange::ResetMfa
                | FactorChange::SetContact
                | FactorChange::RemoveContact
        )
    }
}

/// Proof that [`Service::authorize_factor_change`] allowed a change of `target`'s factors.
#[derive(Debug)]
pub struct FactorChangeAllowed {
    change: FactorChange,
    target_id: String,
    /// The administrator who acts for the account, if not the account itself.
    admin: Option<String>,
}

impl FactorChangeAllowed {
    /// The change allowed.
    pub fn change(&self) -> FactorChange {
        self.change
    }

    /// The account whose factors may change.
    pub fn target_id(&self) -> &str {
        &self.target_id
    }

    /// The administrator acting for the account (`None` when the account acts itself).
    pub fn admin(&self) -> Option<&str> {
        self.admin.as_deref()
    }
}

/// Whether a session gave a second factor recently enough for a sensitive change. A recovery
/// session counts as recent for as long as it lasts: its email and phone codes are the fresh
/// proof, and the lost device cannot give another.
pub(super) fn recent_factor(session: &SessionRecord, now: UnixTime) -> bool {
    session.state == SessionState::Recovery
        || session
            .second_factor_at
            .is_some_and(|t| now.saturating_sub(t) <= RECENT_FACTOR_SECS)
}

impl Service {
    /// The account an operation acts on: the session's own when `user` is `None`; else the
    /// named account, which only an administrator may name (the administrators' endpoints and
    /// pages), even when it is their own.
    pub(super) async fn factor_target(
        &self,
        auth: &super::session::Authenticated,
        user: Option<&str>,
        now: UnixTime,
        meta: &RequestMeta,
    ) -> Result<AccountRecord> {
        let Some(name) = user else {
            return Ok(auth.account.clone());
        };
        self.require_admin(auth, "change another account's factors", now, meta)
            .await?;
        if name == auth.account.name {
            return Ok(auth.account.clone());
        }
        self.store
            .account_by_name(name)
            .await?
            .ok_or(Error::NotFound("user"))
    }

    /// The one rule for changing factors (see the module documentation): `actor`, signed in
    /// with `session`, wants to make `change` to `target`'s factors. Refusals are audited.
    pub async fn authorize_factor_change(
        &self,
        actor: &AccountRecord,
        session: &SessionRecord,
        target: &AccountRecord,
        change: FactorChange,
        now: UnixTime,
        meta: &RequestMeta,
    ) -> Result<FactorChangeAllowed> {
        let decision = self
            .factor_change_decision(actor, session, target, change, now)
            .await?;
        match decision {
            Ok(()) => Ok(FactorChangeAllowed {
                change,
                target_id: target.id.clone(),
                admin: (actor.id != target.id).then(|| actor.name.clone()),
            }),
            Err((result, e)) => {
                let mut event = Event::own(change.audit_kind(), result, &target.name);
                if actor.id != target.id {
                    event = event.by(&actor.name);
                }
                self.audit(now, meta, event).await?;
                Err(e)
            }
        }
    }

    /// The decision alone: `Ok(Err((audit result, error)))` for a refusal.
    async fn factor_change_decision(
        &self,
        actor: &AccountRecord,
        session: &SessionRecord,
        target: &AccountRecord,
        change: FactorChange,
        now: UnixTime,
    ) -> Result<std::result::Result<(), (&'static str, Error)>> {
        if session.account_id != actor.id {
            return Err(Error::Internal("session of another account".into()));
        }
        if actor.id != target.id {
            // An administrator acting for someone else.
            if session.state != SessionState::Full || actor.role != Role::Admin {
                return Ok(Err((
                    "forbidden",
                    Error::Forbidden("only administrators may do this".into()),
                )));
            }
            if !change.administrable() {
                return Ok(Err((
                    "forbidden",
                    Error::FactorChangeRefused(FactorRefusal::OwnAccountOnly),
                )));
            }
            if target.name == ROOT {
                return Ok(Err((
                    "refused_root",
                    Error::FactorChangeRefused(FactorRefusal::Root),
                )));
            }
            // Not "recent if the administrator has MFA": an administrator without a second
            // factor cannot vouch for a change to someone else's.
            let admin_recent = session
                .second_factor_at
                .is_some_and(|t| now.saturating_sub(t) <= RECENT_FACTOR_SECS);
            if !admin_recent {
                let admin_has_mfa = self
                    .store
                    .devices_for_account(&actor.id)
                    .await?
                    .iter()
                    .any(|d| d.enabled_at.is_some());
                if !admin_has_mfa {
                    return Ok(Err((
                        "admin_without_mfa",
                        Error::FactorChangeRefused(FactorRefusal::AdminWithoutMfa),
                    )));
                }
                return Ok(Err((
                    "recent_factor_required",
                    Error::RecentSecondFactorRequired,
                )));
            }
            return Ok(Ok(()));
        }
        match session.state {
            SessionState::Full => {}
            SessionState::Recovery if change.recovers() => {}
            SessionState::Recovery => {
                return Ok(Err(("recovery_session", Error::RecoverySessionRestricted)))
            }
            SessionState::EnrollmentRequired if change.enrolls() => {}
            SessionState::EnrollmentRequired | SessionState::MfaPending => {
                return Ok(Err(("enrollment_required", Error::MfaEnrollmentRequired)))
            }
        }
        if change == FactorChange::ResetMfa && target.name == ROOT {
            return Ok(Err((
                "refused_root",
                Error::FactorChangeRefused(FactorRefusal::Root),
            )));
        }
        if change == FactorChange::ResetMfa {
            return Ok(Err((
                "forbidden",
                Error::Forbidden(
                    "an administrator resets MFA for another account; to remove your own \
                     devices, delete them"
                        .into(),
                ),
            )));
        }
        if change.needs_recent_factor() && !recent_factor(session, now) {
            let has_mfa = self
                .store
                .devices_for_account(&target.id)
                .await?
                .iter()
                .any(|d| d.enabled_at.is_some());
            if has_mfa {
                return Ok(Err((
                    "recent_factor_required",
                    Error::RecentSecondFactorRequired,
                )));
            }
        }
        Ok(Ok(()))
    }
}
