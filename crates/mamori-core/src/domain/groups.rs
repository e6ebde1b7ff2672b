//! Account groups (issue #18, forward authentication): names an administrator gives accounts.
//! The forward-auth access rules name groups as subjects and the `Remote-Groups` header tells
//! a protected application the account's groups. Only administrators change them (the API,
//! the console's user page, `mamori-server admin add-group`); every change and every refused
//! change is audited as `account.group_add` / `account.group_remove`.
//!
//! A group name is 1 to 64 characters of lowercase ASCII letters, digits, `-`, `_` and `.`,
//! starting with a letter or digit: it goes into an HTTP header as a comma-separated list, so
//! it can hold neither a comma nor a space, and one spelling per group keeps rules and
//! memberships from disagreeing about case. An account has at most
//! [`MAX_GROUPS_PER_ACCOUNT`] groups.

use crate::clock::UnixTime;
use crate::error::{Error, Result};
use crate::store::groups::GroupAdded;
use crate::store::AccountRecord;

use super::audit::Event;
use super::session::Authenticated;
use super::{RequestMeta, Service};

/// Audit kinds of this module (defined with every other kind in [`super::audit::kind`]).
pub use super::audit::kind::groups as kind;

/// The most groups one account may be in.
pub const MAX_GROUPS_PER_ACCOUNT: usize = 32;
/// The longest group name.
pub const MAX_GROUP_NAME_LEN: usize = 64;

/// Checks a group name (see the module documentation); the error says what is wrong without
/// echoing control characters.
pub fn check_group_name(name: &str) -> Result<()> {
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c);
    let first_ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if name.is_empty() || name.len() > MAX_GROUP_NAME_LEN || !first_ok || !name.chars().all(ok_char)
    {
        return Err(Error::InvalidInput(format!(
            "a group name is 1 to {MAX_GROUP_NAME_LEN} characters of a-z, 0-9, '-', '_' and '.', \
             starting with a letter or digit"
        )));
    }
    Ok(())
}

impl Service {
    /// The account's groups, sorted (forward auth, the console, the admin command line).
    pub async fn groups_of(&self, account: &AccountRecord) -> Result<Vec<String>> {
        self.store.groups_of(&account.id).await
    }

    /// Administrators: the groups of the account `user`.
    pub async fn user_groups(
        &self,
        auth: &Authenticated,
        user: &str,
        now: UnixTime,
        meta: &RequestMeta,
    ) -> Result<Vec<String>> {
        self.require_admin(auth, "list a user's groups", now, meta)
            .await?;
        let account = self.account(user).await?;
        self.groups_of(&account).await
    }

    /// Administrators: puts `user` in `group`; true when it was not in it before.
    pub async fn add_user_group(
        &self,
        auth: &Authenticated,
        user: &str,
        group: &str,
        now: UnixTime,
        meta: &RequestMeta,
    ) -> Result<bool> {
        self.require_admin(auth, "change a user's groups", now, meta)
            .await?;
        self.add_group(&auth.account.name, user, group, now, meta)
            .await
    }

    /// Administrators: takes `user` out of `group`; `NotFound` when it was not in it.
    pub async fn remove_user_group(
        &self,
        auth: &Authenticated,
        user: &str,
        group: &str,
        now: UnixTime,
        meta: &RequestMeta,
    ) -> Result<()> {
        self.require_admin(auth, "change a user's groups", now, meta)
            .await?;
        self.remove_group(&auth.account.name, user, group, now, meta)
            .await
    }

    /// Puts `user` in `group` for `actor`, who has already been allowed to (an administrator's
    /// session through [`Service::add_user_group`], or the operator on the server host through
    /// the admin command line). True when the account was not in the group before; the
    /// change, a bad name and the limit are audited.
    pub async fn add_group(
        &self,
        actor: &str,
        user: &str,
        group: &str,
        now: UnixTime,
        meta: &RequestMeta,
    ) -> Result<bool> {
        let account = self.account(user).await?;
        if let Err(e) = check_group_name(group) {
            self.audit(
                now,
                meta,
                Event::own(kind::GROUP_ADD, "invalid", &account.name).by(actor),
            )
            .await?;
            return Err(e);
        }
        let max = i64::try_from(MAX_GROUPS_PER_ACCOUNT).unwrap_or(i64::MAX);
        match self.store.add_group(&account.id, group, max, now).await? {
            GroupAdded::Added => {
                self.forget_forward_sessions(&account.id);
                self.audit(
                    now,
                    meta,
                    Event::own(kind::GROUP_ADD, "success", &account.name)
                        .by(actor)
                        .detail(group),
                )
                .await?;
                Ok(true)
            }
            GroupAdded::AlreadyMember => Ok(false),
            GroupAdded::LimitReached => {
                self.audit(
                    now,
                    meta,
                    Event::own(kind::GROUP_ADD, "refused_limit", &account.name)
                        .by(actor)
                        .detail(group),
                )
                .await?;
                Err(Error::Conflict(format!(
                    "an account can be in at most {MAX_GROUPS_PER_ACCOUNT} groups"
                )))
            }
        }
    }

    /// Takes `user` out of `group` for `actor` (allowed as for [`Service::add_group`]);
    /// audited.
    pub async fn remove_group(
        &self,
        actor: &str,
        user: &str,
        group: &str,
        now: UnixTime,
        meta: &RequestMeta,
    ) -> Result<()> {
        let account = self.account(user).await?;
        // A bad name cannot be a membership: answered like one that does not exist, without
        // asking the store (PostgreSQL refuses NUL in text).
        let removed =
            check_group_name(group).is_ok() && self.store.remove_group(&account.id, group).await?;
        if removed {
            self.forget_forward_sessions(&account.id);
        }
        let result = if removed { "success" } else { "not_member" };
        let detail = if removed { group } else { "" };
        let mut event = Event::own(kind::GROUP_REMOVE, result, &account.name).by(actor);
        if removed {
            event = event.detail(detail);
        }
        self.audit(now, meta, event).await?;
        if removed {
            Ok(())
        } else {
            Err(Error::NotFound("group membership"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_names() {
        for good in ["ops", "a", "dev-team", "team_2", "example.com", "0day"] {
            assert!(check_group_name(good).is_ok(), "{good}");
        }
        let long = "a".repeat(MAX_GROUP_NAME_LEN + 1);
        for bad in [
            "",
            "Ops",
            "-ops",
            ".ops",
            "a b",
            "a,b",
            "ops\n",
            "\u{0}",
            "グループ",
            long.as_str(),
        ] {
            assert!(check_group_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_group_name(&"a".repeat(MAX_GROUP_NAME_LEN)).is_ok());
    }
}
