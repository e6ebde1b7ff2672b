//! Security notifications by email (OWASP ASVS 4.0 V2.2.3: "users are notified after updates to
//! authentication details, such as credential resets, email or address changes, logging in from
//! unknown or risky locations"). See docs/recovery.md for the list of events.
//!
//! The domain decides *what* to say ([`Notice`]); a [`Notifier`] delivers it. Sending never
//! blocks or fails the user's action: [`Service::notify_event`] hands the message to a task and
//! returns; a delivery failure is logged (the error kind and the account, never the message
//! body, which may carry a code) and audited as `notify.email` with result `failure`.

use zeroize::Zeroizing;

use crate::clock::UnixTime;
use crate::config::MailLanguage;
use crate::store::{AccountRecord, NewAuditEvent};

/// The delivery seams, re-exported where the edges have always found them (defined in
/// [`super::transport`], which [`super::delivery`] shares).
pub use super::transport::{
    webhook_signature, Email, LogPhoneGateway, NoPhoneGateway, NotConfigured, Notifier,
    PhoneGateway, PhoneMessage, SIGNATURE_HEADER, TIMESTAMP_HEADER,
};
use super::{RequestMeta, Service};

/// Audit kind of a failed delivery.
pub const AUDIT_NOTIFY: &str = "notify.email";

/// What happened, for the notification.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NoticeKind {
    /// An MFA device was enabled.
    DeviceAdded {
        /// Device name.
        name: String,
    },
    /// An MFA device was removed.
    DeviceRemoved {
        /// Device name.
        name: String,
    },
    /// A new set of recovery codes was made.
    RecoveryCodesGenerated,
    /// A recovery code was used to sign in.
    RecoveryCodeUsed {
        /// Codes left.
        remaining: usize,
    },
    /// The password was changed.
    PasswordChanged,
    /// An administrator removed the account's MFA devices.
    AdminReset {
        /// The administrator.
        by: String,
    },
    /// The root account's recovery link was issued on the server host.
    RootRecovery,
    /// Someone who knew the password started signing in with alternative factors (email, then
    /// phone) instead of an MFA device.
    RecoverySignInStarted,
    /// A recovery session ended with a new MFA device; every other session was signed out.
    RecoverySignInCompleted {
        /// The new device.
        device: String,
    },
    // #15 contacts
    /// The account's email address or phone number was replaced or removed (sent to the old
    /// one).
    ContactChanged {
        /// `email` or `phone`.
        channel: String,
        /// Removed rather than replaced.
        removed: bool,
    },
}

impl NoticeKind {
    /// The subject line.
    pub fn subject(&self, service: &str) -> String {
        let what = match self {
            NoticeKind::DeviceAdded { .. } => "an MFA device was added",
            NoticeKind::DeviceRemoved { .. } => "an MFA device was removed",
            NoticeKind::RecoveryCodesGenerated => "new recovery codes were made",
            NoticeKind::RecoveryCodeUsed { .. } => "a recovery code was used to sign in",
            NoticeKind::PasswordChanged => "your password was changed",
            NoticeKind::AdminReset { .. } => "an administrator reset your MFA",
            NoticeKind::RootRecovery => "a root recovery link was issued",
            NoticeKind::RecoverySignInStarted => "a sign-in with alternative factors was started",
            NoticeKind::RecoverySignInCompleted { .. } => {
                "a sign-in with alternative factors was completed"
            }
            NoticeKind::ContactChanged { channel, removed } => match (channel.as_str(), removed) {
                ("email", false) => "your email address was changed",
                ("email", true) => "your email address was removed",
                (_, false) => "your phone number was changed",
                (_, true) => "your phone number was removed",
            },
        };
        format!("[{service}] Security notice: {what}")
    }

    fn sentence(&self) -> String {
        match self {
            NoticeKind::DeviceAdded { name } => {
                format!("The MFA device \"{name}\" was added to your account.")
            }
            NoticeKind::DeviceRemoved { name } => {
                format!("The MFA device \"{name}\" was removed from your account.")
            }
            NoticeKind::RecoveryCodesGenerated => {
                "A new set of recovery codes was made for your account; the previous codes no \
                 longer work."
                    .into()
            }
            NoticeKind::RecoveryCodeUsed { remaining } => format!(
                "A recovery code was used to sign in to your account. {remaining} unused codes \
                 remain."
            ),
            NoticeKind::PasswordChanged => "The password of your account was changed.".into(),
            NoticeKind::AdminReset { by } => format!(
                "The administrator \"{by}\" deactivated the MFA devices of your account. You \
                 will be asked to assign a new device at your next sign-in."
            ),
            NoticeKind::RootRecovery => {
                "A one-time recovery link for the root account was issued with `mamori-server \
                 admin recover-root` on the server host."
                    .into()
            }
            NoticeKind::RecoverySignInStarted => {
                "Someone who knows your password started to sign in with alternative factors \
                 (a code by email, then a code by phone) instead of an MFA device."
                    .into()
            }
            NoticeKind::RecoverySignInCompleted { device } => format!(
                "A sign-in with alternative factors was completed: the MFA device \"{device}\" \
                 was added, and every other session of your account was signed out."
            ),
            NoticeKind::ContactChanged { channel, removed } => format!(
                "The {} of your account was {}. It is used to recover the account when an MFA \
                 device is lost, so whoever controls the new one could try to take the account \
                 over.",
                if channel == "email" {
                    "email address"
                } else {
                    "phone number"
                },
                if *removed {
                    "removed"
                } else {
                    "replaced by a new one"
                }
            ),
        }
    }

    /// The subject line in `lang`.
    pub fn subject_in(&self, lang: MailLanguage, service: &str) -> String {
        if lang == MailLanguage::En {
            return self.subject(service);
        }
        let what = match self {
            NoticeKind::DeviceAdded { .. } => "MFA デバイスが追加されました",
            NoticeKind::DeviceRemoved { .. } => "MFA デバイスが削除されました",
            NoticeKind::RecoveryCodesGenerated => "新しいリカバリーコードが作成されました",
            NoticeKind::RecoveryCodeUsed { .. } => "リカバリーコードでサインインされました",
            NoticeKind::PasswordChanged => "パスワードが変更されました",
            NoticeKind::AdminReset { .. } => "管理者が MFA をリセットしました",
            NoticeKind::RootRecovery => "root の回復リンクが発行されました",
            NoticeKind::RecoverySignInStarted => "代替要素によるサインインが開始されました",
            NoticeKind::RecoverySignInCompleted { .. } => "代替要素によるサインインが完了しました",
            NoticeKind::ContactChanged { channel, removed } => match (channel.as_str(), removed) {
                ("email", false) => "メールアドレスが変更されました",
                ("email", true) => "メールアドレスが削除されました",
                (_, false) => "電話番号が変更されました",
                (_, true) => "電話番号が削除されました",
            },
        };
        format!("[{service}] セキュリティのお知らせ: {what}")
    }

    fn sentence_ja(&self) -> String {
        match self {
            NoticeKind::DeviceAdded { name } => {
                format!("MFA デバイス「{name}」がアカウントに追加されました。")
            }
            NoticeKind::DeviceRemoved { name } => {
                format!("MFA デバイス「{name}」がアカウントから削除されました。")
            }
            NoticeKind::RecoveryCodesGenerated => "アカウントの新しいリカバリーコードが作成されました。以前のコードは使えなくなりました。".into(),
            NoticeKind::RecoveryCodeUsed { remaining } => format!(
                "リカバリーコードを使ってアカウントにサインインされました。未使用のコードは残り {remaining} 個です。"
            ),
            NoticeKind::PasswordChanged => "アカウントのパスワードが変更されました。".into(),
            NoticeKind::AdminReset { by } => format!(
                "管理者「{by}」がアカウントの MFA デバイスを無効にしました。次回のサインインで新しいデバイスの割り当てを求められます。"
            ),
            NoticeKind::RootRecovery => "サーバーホストで `mamori-server admin recover-root` により root アカウントの一回限りの回復リンクが発行されました。".into(),
            NoticeKind::RecoverySignInStarted => "パスワードを知っている誰かが、MFA デバイスの代わりに代替要素 (メールのコード、次に電話のコード) でサインインを始めました。".into(),
            NoticeKind::RecoverySignInCompleted { device } => format!(
                "代替要素によるサインインが完了しました。MFA デバイス「{device}」が追加され、アカウントの他のセッションはすべてサインアウトされました。"
            ),
            NoticeKind::ContactChanged { channel, removed } => format!(
                "アカウントの{}が{}。MFA デバイスを紛失したときのアカウント回復に使われるため、新しい連絡先を持つ人がアカウントの乗っ取りを試みる可能性があります。",
                if channel == "email" { "メールアドレス" } else { "電話番号" },
                if *removed { "削除されました" } else { "新しいものに変更されました" }
            ),
        }
    }
}

/// The body of a security notice in `lang` (English: [`notice_body`]).
pub fn notice_body_in(
    lang: MailLanguage,
    service: &str,
    public_url: &str,
    account: &str,
    kind: &NoticeKind,
    at: UnixTime,
    client_addr: Option<&str>,
) -> String {
    if lang == MailLanguage::En {
        return notice_body(service, public_url, account, kind, at, client_addr);
    }
    format!(
        "{account} さん\n\n{}\n\n日時: {}\nクライアントのアドレス: {}\nアカウント: {account}\nサービス: {service}\n\n\
         ご自身の操作であれば、何もする必要はありません。\n\
         ご自身の操作でない場合: {public_url} にサインインしてパスワードを変更し、MFA デバイスとセッションを確認し \
         (セキュリティ認証情報)、新しいリカバリーコードを作成して、すぐに管理者に知らせてください。\
         サインインできない場合は、管理者に MFA のリセットを依頼してください。\n",
        kind.sentence_ja(),
        utc(at),
        client_addr.unwrap_or("(サーバーホスト)"),
    )
}

/// Formats a Unix time as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn utc(at: UnixTime) -> String {
    time::OffsetDateTime::from_unix_timestamp(at)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second] UTC"
            ))
            .ok()
        })
        .unwrap_or_else(|| at.to_string())
}

/// The body of a security notice: what happened, when, from where, and what to do if it was
/// not the user.
pub fn notice_body(
    service: &str,
    public_url: &str,
    account: &str,
    kind: &NoticeKind,
    at: UnixTime,
    client_addr: Option<&str>,
) -> String {
    format!(
        "Hello {account},\n\n{}\n\nTime: {}\nClient address: {}\nAccount: {account}\nService: {service}\n\n\
         If this was you, nothing needs to be done.\n\
         If this was NOT you: sign in at {public_url} and change your password, review your MFA \
         devices and sessions (My security credentials), make new recovery codes, and tell your \
         administrator at once. If you cannot sign in, ask your administrator to reset your MFA.\n",
        kind.sentence(),
        utc(at),
        client_addr.unwrap_or("(server host)"),
    )
}

impl Service {
    /// Sends `email` in the background (a graceful shutdown waits for it: [`Service::close`]);
    /// a failure is logged and audited for `account`, never returned.
    pub fn send_in_background(
        &self,
        account: &str,
        email: Email,
        now: UnixTime,
        meta: &RequestMeta,
    ) {
        let notifier = self.notifier.clone();
        let store = self.store.clone();
        let account = account.to_string();
        let meta = meta.clone();
        self.background.spawn(async move {
            let result = notifier.send(&email).await;
            // #15 delivery: notices stay in the background but are counted like codes.
            super::delivery::count(
                "email",
                super::delivery::MessageKind::Notice,
                result.is_ok(),
            );
            if let Err(e) = result {
                tracing::warn!(account = %account, error = %e, "sending an email failed");
                let _ = store
                    .insert_audit(&NewAuditEvent {
                        at: now,
                        account: Some(account.clone()),
                        actor: Some("system".into()),
                        client_addr: meta.client_addr.clone(),
                        user_agent: meta.user_agent.clone(),
                        kind: AUDIT_NOTIFY.into(),
                        result: "failure".into(),
                        detail: Some(truncate(&e.to_string(), 200)),
                    })
                    .await;
            }
        });
    }

    /// Sends a phone notice (no code the user waits for) in the background, counted as a
    /// `notice` in the delivery metrics; a failure is logged and audited (`notify.phone`, the
    /// reason class only), never returned.
    pub fn send_phone_notice_in_background(
        &self,
        account: &str,
        msg: PhoneMessage,
        now: UnixTime,
        meta: &RequestMeta,
    ) {
        let phone = self.phone.clone();
        let store = self.store.clone();
        let account = account.to_string();
        let meta = meta.clone();
        self.background.spawn(async move {
            let result = phone.send(&msg).await;
            let channel = msg.channel.as_str();
            super::delivery::count(
                channel,
                super::delivery::MessageKind::Notice,
                result.is_ok(),
            );
            if let Err(e) = result {
                let reason = super::delivery::reason_class(&e);
                tracing::warn!(account = %account, channel, reason, "sending a phone notice failed");
                let _ = store
                    .insert_audit(&NewAuditEvent {
                        at: now,
                        account: Some(account.clone()),
                        actor: Some("system".into()),
                        client_addr: meta.client_addr.clone(),
                        user_agent: meta.user_agent.clone(),
                        kind: "notify.phone".into(),
                        result: "failure".into(),
                        detail: Some(format!("{channel}: {reason}")),
                    })
                    .await;
            }
        });
    }

    /// Notifies the account's email address of a security event (nothing if the account has no
    /// address or email is not configured). Never fails and never waits for delivery.
    pub async fn notify_event(
        &self,
        account: &AccountRecord,
        kind: NoticeKind,
        now: UnixTime,
        meta: &RequestMeta,
    ) {
        let Some(to) = account.email.clone() else {
            return;
        };
        if !self.notifier.enabled() {
            return;
        }
        let service = &self.policy.service_name;
        let lang = self.language_for(account).await;
        let email = Email {
            to,
            subject: kind.subject_in(lang, service),
            body: Zeroizing::new(notice_body_in(
                lang,
                service,
                &self.policy.public_url,
                &account.name,
                &kind,
                now,
                meta.client_addr.as_deref(),
            )),
        };
        self.send_in_background(&account.name, email, now, meta);
    }

    /// The notification hook of the audit path: device added or removed, password changed and
    /// administrator reset are notified where they are audited, so every path that records
    /// them (API, console, admin command line) also tells the user.
    pub(super) async fn notify_from_audit(
        &self,
        now: UnixTime,
        meta: &RequestMeta,
        e: &super::audit::Event<'_>,
    ) {
        use super::audit::kind;
        if e.result != "success" || !self.notifier.enabled() {
            return;
        }
        let detail = e.detail.unwrap_or_default().to_string();
        let notice = match e.kind {
            kind::MFA_ENABLE => NoticeKind::DeviceAdded { name: detail },
            kind::MFA_DELETE => NoticeKind::DeviceRemoved { name: detail },
            kind::PASSWORD_CHANGE => NoticeKind::PasswordChanged,
            kind::MFA_RESET => NoticeKind::AdminReset {
                by: e.actor.unwrap_or("administrator").to_string(),
            },
            kind::recovery_signin::START => NoticeKind::RecoverySignInStarted,
            // #15 recovery: the completion notice goes to every channel from
            // `recovery_completed_notice`, with the devices removed in the recovery session.
            kind::recovery_signin::COMPLETE => return,
            _ => return,
        };
        let Some(name) = e.account else { return };
        match self.store.account_by_name(name).await {
            Ok(Some(account)) => self.notify_event(&account, notice, now, meta).await,
            Ok(None) => {}
            Err(err) => {
                tracing::warn!(account = %name, error = %err, "notification: account lookup failed")
            }
        }
    }

    /// Whether email is configured.
    pub fn email_enabled(&self) -> bool {
        self.notifier.enabled()
    }
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_says_what_when_where_and_what_to_do() {
        let b = notice_body(
            "mamori",
            "https://mfa.example.com",
            "alice",
            &NoticeKind::DeviceRemoved {
                name: "phone".into(),
            },
            1_700_000_000,
            Some("192.0.2.7"),
        );
        assert!(b.contains("\"phone\" was removed"), "{b}");
        assert!(b.contains("2023-11-14 22:13:20 UTC"), "{b}");
        assert!(b.contains("192.0.2.7"), "{b}");
        assert!(b.contains("If this was NOT you"), "{b}");
        assert!(b.contains("https://mfa.example.com"), "{b}");
    }

    #[test]
    fn japanese_notices_say_the_same_facts() {
        let k = NoticeKind::RecoverySignInCompleted {
            device: "new-phone".into(),
        };
        let b = notice_body_in(
            MailLanguage::Ja,
            "mamori",
            "https://mfa.example.com",
            "alice",
            &k,
            1_700_000_000,
            Some("192.0.2.7"),
        );
        assert!(b.contains("「new-phone」"), "{b}");
        assert!(b.contains("2023-11-14 22:13:20 UTC"), "{b}");
        assert!(b.contains("192.0.2.7"), "{b}");
        assert!(b.contains("https://mfa.example.com"), "{b}");
        assert!(b.contains("ご自身の操作でない場合"), "{b}");
        assert!(k
            .subject_in(MailLanguage::Ja, "mamori")
            .contains("セキュリティのお知らせ"));
        assert_eq!(
            k.subject_in(MailLanguage::En, "mamori"),
            "[mamori] Security notice: a sign-in with alternative factors was completed"
        );
        assert!(notice_body_in(MailLanguage::En, "m", "u", "a", &k, 0, None)
            .contains("If this was NOT you"));
    }

    #[test]
    fn the_email_debug_hides_the_body() {
        let e = Email {
            to: "a@example.com".into(),
            subject: "s".into(),
            body: Zeroizing::new("code 123456".into()),
        };
        assert!(!format!("{e:?}").contains("123456"));
    }
}
