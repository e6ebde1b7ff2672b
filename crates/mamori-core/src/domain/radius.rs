//! RADIUS as a way in (#19, docs/radius.md): the decisions a RADIUS client's request leads to,
//! made with the very rules of sign-in and of the validate API. The UDP edge
//! (`mamori-server`'s `radius` module) decodes packets and calls these; it never judges a
//! password or a code itself.
//!
//! - password + code (in one field, or in two steps with an Access-Challenge): the password
//!   step and the code step of sign-in ([`Service::sign_in_password`],
//!   [`Service::sign_in_mfa`]), so throttling, lock, replay, the cancellation of a pending
//!   recovery and the audit events are sign-in's own; the session sign-in makes is deleted at
//!   once, since a RADIUS client keeps no mamori session. The challenge token of the password
//!   step is the `State` of the Access-Challenge: it is stored like any sign-in challenge, so
//!   every node can answer the second request.
//! - code only (the client checked the password itself): the validate API's rule
//!   ([`Service::validate_as`]), with the RADIUS client as the actor.
//!
//! Every event names the client (`radius:NAME`) as the user agent.

use rand::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use crate::clock::UnixTime;
use crate::error::{Error, Result};

use super::appkeys::Validation;
use super::audit::{kind, Event};
use super::signin::PasswordOutcome;
use super::{RequestMeta, Service, ROOT};

/// What to answer a RADIUS client.
#[derive(Debug, PartialEq, Eq)]
pub enum RadiusOutcome {
    /// Access-Accept for this account, a member of `groups` (for the reply attributes).
    Accept {
        account: String,
        groups: Vec<String>,
    },
    /// Access-Challenge: ask for the code; `state` goes in the State attribute.
    Challenge { state: Zeroizing<String> },
    /// Access-Reject.
    Reject(RadiusReject),
}

/// Why a request was rejected (the edge turns it into a Reply-Message; none says whether the
/// account exists).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RadiusReject {
    /// Wrong user name, password or code, or an expired or foreign State.
    Invalid,
    /// The password is right but the account has no MFA device: RADIUS never lets in on a
    /// password alone.
    NoDevice,
    /// Locked after too many wrong codes.
    Locked,
    /// Too many recent failures: try again in this many seconds.
    Throttled(u64),
}

/// The user agent of every event a RADIUS client causes.
pub fn radius_actor(client: &str) -> String {
    format!("radius:{client}")
}

fn meta_for(client: &str, meta: &RequestMeta) -> RequestMeta {
    RequestMeta {
        client_addr: meta.client_addr.clone(),
        user_agent: Some(radius_actor(client)),
    }
}

/// The errors that are answers, not failures of the server.
fn rejection(e: Error) -> Result<RadiusOutcome> {
    match e {
        Error::InvalidCredentials
        | Error::InvalidCode
        | Error::InvalidChallenge
        | Error::InvalidInput(_) => Ok(RadiusOutcome::Reject(RadiusReject::Invalid)),
        Error::AccountLocked => Ok(RadiusOutcome::Reject(RadiusReject::Locked)),
        Error::RateLimited { retry_after } => {
            Ok(RadiusOutcome::Reject(RadiusReject::Throttled(retry_after)))
        }
        other => Err(other),
    }
}

impl Service {
    /// The password, and the code when the client sends it in the same field: Accept, or a
    /// Challenge for the code (`code` = None), or Reject.
    #[allow(clippy::too_many_arguments)]
    pub async fn radius_password<R: RngCore + CryptoRng + Send>(
        &self,
        client: &str,
        allow_root: bool,
        user: &str,
        password: Zeroizing<String>,
        code: Option<&str>,
        now: UnixTime,
        rng: &mut R,
        meta: &RequestMeta,
    ) -> Result<RadiusOutcome> {
        let meta = meta_for(client, meta);
        if user == ROOT && !allow_root {
            return self.refuse_root(client, now, &meta).await;
        }
        match self.sign_in_password(user, password, now, rng, &meta).await {
            Ok(PasswordOutcome::MfaRequired { challenge, .. }) => match code {
                Some(code) => self.finish(&challenge, user, code, now, rng, &meta).await,
                None => Ok(RadiusOutcome::Challenge { state: challenge }),
            },
            Ok(PasswordOutcome::Session(boxed)) => {
                // A password-only or enrollment-only session: not enough for RADIUS.
                let (session, account) = *boxed;
                self.store
                    .delete_session(&account.id, &session.record.id)
                    .await?;
                Ok(RadiusOutcome::Reject(RadiusReject::NoDevice))
            }
            Err(e) => rejection(e),
        }
    }

    /// The second request of a challenge: the code, with the State of the Access-Challenge.
    /// A State made for another user name is refused before the code is looked at.
    #[allow(clippy::too_many_arguments)]
    pub async fn radius_answer<R: RngCore + CryptoRng + Send>(
        &self,
        client: &str,
        allow_root: bool,
        user: &str,
        state: &str,
        code: &str,
        now: UnixTime,
        rng: &mut R,
        meta: &RequestMeta,
    ) -> Result<RadiusOutcome> {
        let meta = meta_for(client, meta);
        if user == ROOT && !allow_root {
            return self.refuse_root(client, now, &meta).await;
        }
        self.finish(state, user, code, now, rng, &meta).await
    }

    /// Root through a client without `allow_root`: refused before its password or code is
    /// looked at, so its failure counters are never touched from there (as the validate API
    /// does for keys without `allow_root`).
    async fn refuse_root(
        &self,
        client: &str,
        now: UnixTime,
        meta: &RequestMeta,
    ) -> Result<RadiusOutcome> {
        let actor = radius_actor(client);
        self.audit(
            now,
            meta,
            Event {
                kind: kind::SIGN_IN_PASSWORD,
                result: "refused_root",
                account: Some(ROOT),
                actor: Some(&actor),
                detail: Some("this RADIUS client is not allowed to sign in root"),
            },
        )
        .await?;
        Ok(RadiusOutcome::Reject(RadiusReject::Invalid))
    }

    async fn finish<R: RngCore + CryptoRng + Send>(
        &self,
        challenge: &str,
        user: &str,
        code: &str,
        now: UnixTime,
        rng: &mut R,
        meta: &RequestMeta,
    ) -> Result<RadiusOutcome> {
        match self.pending_challenge(challenge, now).await {
            Ok((_, account)) if account.name == user => {}
            Ok(_) => return Ok(RadiusOutcome::Reject(RadiusReject::Invalid)),
            Err(e) => return rejection(e),
        }
        match self
            .sign_in_mfa(challenge, code, None, now, rng, meta)
            .await
        {
            Ok((session, account)) => {
                self.store
                    .delete_session(&account.id, &session.record.id)
                    .await?;
                let groups = self.groups_of(&account).await?;
                Ok(RadiusOutcome::Accept {
                    account: account.name,
                    groups,
                })
            }
            Err(e) => rejection(e),
        }
    }

    /// Code only (the client checked the password elsewhere): the validate API's rule.
    pub async fn radius_code_only(
        &self,
        client: &str,
        allow_root: bool,
        user: &str,
        code: &str,
        now: UnixTime,
        meta: &RequestMeta,
    ) -> Result<RadiusOutcome> {
        let actor = radius_actor(client);
        let meta = meta_for(client, meta);
        Ok(
            match self
                .validate_as(&actor, allow_root, user, code, now, &meta)
                .await?
            {
                Validation::Accept => {
                    let groups = match self.store.account_by_name(user).await? {
                        Some(account) => self.groups_of(&account).await?,
                        None => Vec::new(),
                    };
                    RadiusOutcome::Accept {
                        account: user.to_string(),
                        groups,
                    }
                }
                Validation::RejectInvalidCode => RadiusOutcome::Reject(RadiusReject::Invalid),
                Validation::RejectLocked => RadiusOutcome::Reject(RadiusReject::Locked),
                Validation::RejectThrottled(s) => RadiusOutcome::Reject(RadiusReject::Throttled(s)),
            },
        )
    }
}
