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
    // #21 faults
    /// Old audit events were deleted by the housekeeping (detail: how many, and the age).
    pub const AUDIT_PRUNE: &str = "audit.prune";

    /// Kinds of [`crate::domain::backup`].
    pub mod backup {
        /// An administrator copied the database (and the server key, unless left out) to a
        /// file; detail names the file.
        pub const BACKUP: &str = "admin.backup";
    }

    /// Kinds of [`crate::domain::appkeys`].
    pub mod appkeys {
        /// An application key was revoked (or the revocation was refused:
        /// `recent_factor_required`).
        pub const APP_KEY_REVOKE: &str = "app_key.revoke";
        /// `POST /api/v1/validate/status` answered `no_device` for the account (`success`:
        /// the application, e.g. the PAM module with `no_device = allow`, may let the user in
        /// without a second factor), or a key without `allow_no_device` asked
        /// (`refused_permission`).
        pub const VALIDATE_NO_DEVICE: &str = "validate.no_device";
    }

    /// Kinds of [`crate::domain::contacts`].
    pub mod contacts {
        /// A verification code was sent (`success`, detail the channel), or not: `refused_limit`
        /// (too many sent this hour), `refused_attempts` (the attempt budget is used up).
        pub const VERIFY_START: &str = "contact.verify_start";
        /// A verification code was checked (`success`, `failure`, `no_code`).
        pub const VERIFY: &str = "contact.verify";
        // #15 contacts
        /// A contact was set or replaced: `code_sent` (a change was started: the new value is
        /// pending, a code went to it), `success` (the value replaced the old one: proven by the
        /// code, or set unverified by an administrator, or set by the admin command line), or a
        /// refusal of the factor-change rule. Detail: the channel, never the code.
        pub const CHANGE: &str = "contact.change";
        /// A contact was removed (`success`, or a refusal of the factor-change rule). Detail: the
        /// channel.
        pub const REMOVE: &str = "contact.remove";
    }

    /// Kinds of [`crate::domain::groups`].
    pub mod groups {
        /// An account was put in a group (`success`), or not: `invalid` (a bad name),
        /// `refused_limit` (the account has the most groups allowed).
        pub const GROUP_ADD: &str = "account.group_add";
        /// An account was taken out of a group (`success`, `not_member`).
        pub const GROUP_REMOVE: &str = "account.group_remove";
    }

    /// Kinds of [`crate::domain::oidc`] (#17, the OpenID provider).
    pub mod oidc {
        /// A client was registered (`success`, detail: the client's name).
        pub const CLIENT_CREATE: &str = "oidc.client_create";
        /// A client's secret was replaced (detail: the client's name).
        pub const CLIENT_SECRET: &str = "oidc.client_secret";
        /// A client was deleted with its grants and tokens (detail: the client's name).
        pub const CLIENT_DELETE: &str = "oidc.client_delete";
        /// An authorization code was issued (`success`), or the request refused for the
        /// account (`denied`: not allowed by the client's policy; `factor_required`).
        pub const AUTHORIZE: &str = "oidc.authorize";
        /// An account agreed to share scopes with a client (detail: client and scopes).
        pub const CONSENT: &str = "oidc.consent";
        /// A code was redeemed for tokens (`success`) at the token endpoint.
        pub const TOKEN: &str = "oidc.token";
        /// A refresh token was exchanged for new tokens (rotation).
        pub const REFRESH: &str = "oidc.refresh";
        /// A code or a refresh token was presented again: its whole grant is revoked
        /// (`code_reuse`, `refresh_reuse`).
        pub const REUSE: &str = "oidc.reuse";
        /// A client revoked a token (RFC 7009; detail: client and token kind).
        pub const REVOKE: &str = "oidc.revoke";
        /// A signing key was generated (detail: kid).
        pub const KEY_CREATE: &str = "oidc.key_create";
        /// A signing key was replaced by a new one (detail: algorithm, old and new kid; the
        /// actor is the administrator, none for the housekeeping's scheduled rotation).
        pub const KEY_ROTATE: &str = "oidc.key_rotate";
        /// RP-initiated logout ended a console session (detail: the client).
        pub const LOGOUT: &str = "oidc.logout";
        /// Failed client authentication at the token, revocation or introspection endpoint
        /// reached its limit for a client or an address (`rate_limited`, detail: endpoint and
        /// what is limited); requests under it are refused until the window ends. Once per
        /// window, not per refused request.
        pub const CLIENT_AUTH_LIMITED: &str = "oidc.client_auth_limited";
    }

    /// Kinds of [`crate::domain::forward_auth`].
    pub mod forward_auth {
        /// A forward-auth check refused an account (`denied`, detail: host, path and the
        /// reason); allowed checks are counted in `/metrics`, not audited.
        pub const DENY: &str = "forward_auth.deny";
        /// A console sign-in that came from a protected application and went back to it
        /// (`success`, detail: the host returned to).
        pub const SIGN_IN: &str = "forward_auth.sign_in";
    }

    /// Kinds of [`crate::domain::preferences`].
    pub mod preferences {
        /// An account changed its language or time zone.
        pub const PREFERENCES: &str = "account.preferences";
    }

    /// Kinds of [`crate::domain::recovery`].
    pub mod recovery {
        /// A new set of recovery codes was made (the old one invalidated).
        pub const CODES_GENERATE: &str = "recovery.codes_generate";
        /// A recovery code answered a sign-in (result `success`) or was refused.
        pub const CODE_USE: &str = "recovery.code_use";
        /// An administrator's MFA reset was refused (root, or no fresh second factor).
        pub const ADMIN_RESET: &str = "mfa.reset";
        /// Root's MFA was reset on the server host (`mamori-server admin recover-root`).
        pub const RECOVER_ROOT: &str = "account.recover_root";
    }

    /// Kinds of [`crate::domain::recovery_signin`].
    pub mod recovery_signin {
        /// The email code was sent (or the start was refused: `refused_policy`,
        /// `refused_contacts`, `refused_not_configured`, `refused_limit`).
        pub const START: &str = "recovery.start";
        /// The email code was checked (`success`, `failure`, `reused`, `no_code`).
        pub const EMAIL: &str = "recovery.email";
        /// The phone code was checked; `success` made a recovery session.
        pub const PHONE: &str = "recovery.phone";
        /// A new device was enabled in a recovery session: full session, others revoked.
        pub const COMPLETE: &str = "recovery.complete";
        // #15 delivery
        /// The phone code was sent again (detail: `sms` or `voice`); refusals `refused_limit`,
        /// `no_code`, `refused_contacts`, and `delivery_failed`.
        pub const RESEND: &str = "recovery.resend";
    }

    /// Kinds of [`crate::domain::recovery_wait`].
    pub mod recovery_wait {
        /// A verified alternative-factor recovery had to wait: `success` with the ready time, or
        /// `not_ready` for a second proof before it.
        pub const PENDING: &str = "recovery.pending";
        /// A pending recovery was cancelled (detail: by what).
        pub const CANCEL: &str = "recovery.cancel";
        /// The recovery session was granted (at once, or after the waiting period); every other
        /// session and every sync device token of the account was revoked.
        pub const GRANTED: &str = "recovery.granted";
    }

    /// Kinds of [`crate::domain::sync`].
    pub mod sync {
        /// A device registered for sync.
        pub const DEVICE_REGISTER: &str = "sync.device_register";
        /// A sync device revoked.
        pub const DEVICE_REVOKE: &str = "sync.device_revoke";
        /// The wrapped sync key uploaded or rewrapped.
        pub const KEYS_PUT: &str = "sync.keys_put";
        /// Items pushed.
        pub const PUSH: &str = "sync.push";
    }

    /// Kinds of [`crate::domain::tokens`].
    pub mod tokens {
        /// A seed file was imported (or refused).
        pub const TOKEN_IMPORT: &str = "token.import";
        /// A token was assigned to a user (or the assignment refused).
        pub const TOKEN_ASSIGN: &str = "token.assign";
    }

    /// Kinds of [`crate::domain::webauthn`].
    pub mod webauthn {
        /// A registration was begun (or refused before the key was asked).
        pub const REGISTER_BEGIN: &str = "webauthn.register_begin";
        /// A registration was finished (or its answer refused).
        pub const REGISTER: &str = "webauthn.register";
        /// An assertion's signature counter did not move forward: the key may have been cloned.
        pub const CLONE_SUSPECTED: &str = "webauthn.clone_suspected";
    }
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

/// Events deleted per statement by [`Service::prune_audit`].
pub const PRUNE_BATCH: i64 = 1000;
/// Statements per [`Service::prune_audit`] call.
pub const PRUNE_BATCHES: usize = 20;

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

    /// Deletes audit events older than `audit_prune_after_days` (housekeeping, on every node:
    /// the deletions are idempotent). At most [`PRUNE_BATCH`] × [`PRUNE_BATCHES`] per call, so
    /// a long backlog is worked off over several calls without holding the writer; one
    /// `audit.prune` event says how many went. Returns how many were deleted.
    pub async fn prune_audit(&self, now: UnixTime) -> Result<u64> {
        let days = self.policy.audit_prune_after_days;
        if days == 0 {
            return Ok(0);
        }
        let before = now.saturating_sub(i64::from(days) * 86_400);
        let mut pruned = 0;
        for _ in 0..PRUNE_BATCHES {
            let n = self.store.prune_audit_before(before, PRUNE_BATCH).await?;
            pruned += n;
            if n < PRUNE_BATCH as u64 {
                break;
            }
        }
        if pruned > 0 {
            let detail = format!("{pruned} events older than {days} days");
            self.audit(
                now,
                &RequestMeta::default(),
                Event {
                    kind: kind::AUDIT_PRUNE,
                    result: "success",
                    account: None,
                    actor: Some("housekeeping"),
                    detail: Some(&detail),
                },
            )
            .await?;
        }
        Ok(pruned)
    }

    /// Reads audit events, oldest first.
    pub async fn audit_events(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>> {
        self.store.list_audit(filter).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::store::AuditFilter;

    /// A service on a scratch SQLite file (the directory lives as long as the returned guard).
    async fn service(prune_after_days: u32) -> (Service, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = crate::store::open(&url).await.unwrap();
        let mut rng = rand::rngs::OsRng;
        let mut config = crate::config::Config::default();
        config.password.argon2_m_kib = 64;
        config.password.argon2_t = 1;
        config.audit_prune_after_days = prune_after_days;
        let svc = Service::new(
            store,
            crate::keys::ServerKey::generate(&mut rng),
            crate::domain::Policy::from_config(&config, "http://127.0.0.1".into()),
            &mut rng,
        )
        .await
        .unwrap();
        (svc, dir)
    }

    async fn event_at(svc: &Service, at: UnixTime) {
        svc.audit(
            at,
            &RequestMeta::default(),
            Event {
                kind: kind::SIGN_IN_PASSWORD,
                result: "success",
                account: Some("alice"),
                actor: None,
                detail: None,
            },
        )
        .await
        .unwrap();
    }

    async fn kinds(svc: &Service) -> Vec<(UnixTime, String)> {
        svc.audit_events(&AuditFilter {
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.event.at, r.event.kind))
        .collect()
    }

    /// Events older than the configured age go, in bounded batches, with one `audit.prune`
    /// event saying how many; younger ones stay; 0 keeps everything.
    #[tokio::test]
    async fn old_events_are_pruned_and_the_pruning_is_audited() {
        const DAY: i64 = 86_400;
        let now = 1_000 * DAY;
        let (svc, _dir) = service(400).await;
        let old = usize::try_from(PRUNE_BATCH).unwrap() + 5;
        for i in 0..old {
            event_at(&svc, now - 401 * DAY - i64::try_from(i).unwrap()).await;
        }
        event_at(&svc, now - 399 * DAY).await;
        assert_eq!(svc.prune_audit(now).await.unwrap(), old as u64);
        let left = kinds(&svc).await;
        assert_eq!(left.len(), 2, "{left:?}");
        assert_eq!(
            left[0],
            (now - 399 * DAY, kind::SIGN_IN_PASSWORD.to_string())
        );
        assert_eq!(left[1], (now, kind::AUDIT_PRUNE.to_string()));
        // Nothing more to prune: no further event.
        assert_eq!(svc.prune_audit(now).await.unwrap(), 0);
        assert_eq!(kinds(&svc).await.len(), 2);

        let (keep, _keep_dir) = service(0).await;
        event_at(&keep, 1).await;
        assert_eq!(keep.prune_audit(now).await.unwrap(), 0);
        assert_eq!(kinds(&keep).await.len(), 1);
    }
}
