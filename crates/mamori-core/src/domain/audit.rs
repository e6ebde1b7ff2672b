//! Audit events: who did what, when, from where, with what result. Never a secret: callers pass
//! only names, kinds, results and non-secret details (a device name, a reason).
//!
//! Some of that text comes from the request (a refused user name, serial or device name). Every
//! event is stored in its bounded form ([`crate::store::NewAuditEvent::bounded`], applied by
//! the store's one audit writer whoever records the event): control characters replaced with
//! U+FFFD and each field cut to a fixed length, so an event can always be stored (PostgreSQL
//! refuses NUL in text, and one bad row would fail the whole group commit) and never forges
//! lines in a log or terminal that shows it.

use crate::clock::UnixTime;
use crate::error::Result;
use crate::store::{AuditFilter, AuditRecord, NewAuditEvent};

use super::{RequestMeta, Service};

/// Audit event kinds.
pub mod kind {
    /// A setup link was used to choose a password.
    pub const SETUP: &str = "account.setup";
    /// A setup link was issued.
    pub const SETUP_LINK: &str = "account.setup_link";
    /// An account was created.
    pub const ACCOUNT_CREATE: &str = "account.create";
    /// A password was changed.
    pub const PASSWORD_CHANGE: &str = "account.password_change";
    /// An account was locked by failed second-factor attempts.
    pub const ACCOUNT_LOCK: &str = "account.lock";
    /// The password step of a sign-in.
    pub const SIGN_IN_PASSWORD: &str = "sign_in.password";
    /// The second-factor step of a sign-in.
    pub const SIGN_IN_MFA: &str = "sign_in.mfa";
    /// A second factor given again in a session (step-up).
    pub const SESSION_VERIFY: &str = "session.verify";
    /// Sign-out.
    pub const SIGN_OUT: &str = "session.sign_out";
    /// A session revoked by its owner.
    pub const SESSION_REVOKE: &str = "session.revoke";
    /// A virtual MFA device was created (pending).
    pub const MFA_CREATE: &str = "mfa.create";
    /// A device was enabled with two consecutive codes.
    pub const MFA_ENABLE: &str = "mfa.enable";
    /// A device was resynchronised.
    pub const MFA_RESYNC: &str = "mfa.resync";
    /// A device was renamed.
    pub const MFA_RENAME: &str = "mfa.rename";
    /// A device was deleted.
    pub const MFA_DELETE: &str = "mfa.delete";
    /// An administrator removed all of an account's devices.
    pub const MFA_RESET: &str = "mfa.reset";
    /// An application key was created.
    pub const APP_KEY_CREATE: &str = "app_key.create";
    /// A validate API call.
    pub const VALIDATE: &str = "validate";
    // #15 defaults
    /// An administrator without MFA was refused an administrative function.
    pub const ADMIN_WITHOUT_MFA: &str = "admin.without_mfa";
}

/// One event being recorded.
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    /// Kind (see [`kind`]).
    pub kind: &'a str,
    /// `success`, `failure` or a refusal reason.
    pub result: &'a str,
    /// The account concerned.
    pub account: Option<&'a str>,
    /// Who acted.
    pub actor: Option<&'a str>,
    /// Non-secret detail.
    pub detail: Option<&'a str>,
}

impl<'a> Event<'a> {
    /// An event about `account` done by that account itself.
    pub fn own(kind: &'a str, result: &'a str, account: &'a str) -> Self {
        Event {
            kind,
            result,
            account: Some(account),
            actor: Some(account),
            detail: None,
        }
    }

    /// With a detail.
    pub fn detail(mut self, detail: &'a str) -> Self {
        self.detail = Some(detail);
        self
    }

    /// With another actor.
    pub fn by(mut self, actor: &'a str) -> Self {
        self.actor = Some(actor);
        self
    }
}

impl Service {
    /// Records an event.
    pub async fn audit(&self, now: UnixTime, meta: &RequestMeta, e: Event<'_>) -> Result<i64> {
        // Events the user is told about by email (docs/recovery.md); never fails the action.
        self.notify_from_audit(now, meta, &e).await;
        self.store
            .insert_audit(&NewAuditEvent {
                at: now,
                account: e.account.map(str::to_string),
                actor: e.actor.map(str::to_string),
                client_addr: meta.client_addr.clone(),
                user_agent: meta.user_agent.clone(),
                kind: e.kind.to_string(),
                result: e.result.to_string(),
                detail: e.detail.map(str::to_string),
            })
            .await
    }

    /// Reads audit events, oldest first.
    pub async fn audit_events(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>> {
        self.store.list_audit(filter).await
    }
}
