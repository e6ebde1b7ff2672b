//! The one send path for messages a user waits for (verification codes, recovery sign-in
//! codes): [`Service::deliver_email`] and [`Service::deliver_phone`] send **synchronously**
//! within [`Service::delivery_bound`] (below the request timeout) and return
//! [`Error::DeliveryFailed`] when the mail server or phone gateway failed or did not answer in
//! time, so no page or answer ever says "sent" for a code that was not.
//!
//! Every outcome is counted in `/metrics` (`mamori_delivery_successes_total{channel,kind}` and
//! `mamori_delivery_failures_total{channel,kind}`, `kind` = `code` or `notice`); every failure
//! is audited as [`AUDIT_DELIVERY_FAILED`] with the channel and a short reason class
//! ([`reason_class`]) — never the code, the message or the transport's error text, which may
//! carry a host name or credentials hint.
//!
//! Callers decide what happens to the code when delivery failed: the code is made unusable (a
//! code nobody received must not stay guessable) and the send does not count against the
//! account's send budget as a success (docs/recovery.md, "Delivery").

use std::future::Future;
use std::time::Duration;

use crate::clock::UnixTime;
use crate::error::{Error, Result};
use crate::store::NewAuditEvent;

use super::audit::Event;
/// How a phone message is delivered (defined with the messages in [`super::transport`]).
pub use super::transport::PhoneChannel;
use super::transport::{Email, PhoneMessage};
use super::{Request, RequestMeta, Service};

/// Audit kind of a message that could not be delivered (result `failure`, detail
/// `CHANNEL: REASON`).
pub const AUDIT_DELIVERY_FAILED: &str = "delivery.failed";

/// The default bound of one synchronous send: below the default request timeout (10 s), so the
/// user gets the honest answer rather than the generic timeout.
pub const DEFAULT_BOUND: Duration = Duration::from_secs(8);

/// The code as a speech engine should read it: digits separated by spaces, so "123456" is read
/// "one two three four five six", not "one hundred twenty-three thousand…".
pub fn spoken_digits(code: &str) -> String {
    let digits: Vec<String> = code
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(String::from)
        .collect();
    digits.join(" ")
}

/// A short, non-secret class of a delivery error, for the audit log and the operator.
pub fn reason_class(e: &Error) -> &'static str {
    match e {
        Error::Config(_) => "not_configured",
        Error::InvalidInput(_) => "bad_recipient",
        // The webhook's own status line ("answered 500") and SMTP's permanent refusals.
        Error::Internal(m) if m.contains("answered") => "rejected",
        Error::Internal(m) if m.starts_with("smtp:") && m.to_ascii_lowercase().contains("tls") => {
            "tls"
        }
        Error::Internal(m) if m.starts_with("smtp:") && m.contains("permanent") => "rejected",
        _ => "transport",
    }
}

/// A code on its way to the user, by email or by phone.
pub(crate) enum CodeMessage {
    Email(Email),
    Phone(PhoneMessage),
}

/// Which messages a metric counts: a code the user waits for, or an informational notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MessageKind {
    Code,
    Notice,
}

impl MessageKind {
    fn as_str(self) -> &'static str {
        match self {
            MessageKind::Code => "code",
            MessageKind::Notice => "notice",
        }
    }
}

/// Counts one outcome in `/metrics`.
pub(crate) fn count(channel: &'static str, kind: MessageKind, ok: bool) {
    let name = if ok {
        "mamori_delivery_successes_total"
    } else {
        "mamori_delivery_failures_total"
    };
    metrics::counter!(name, "channel" => channel, "kind" => kind.as_str()).increment(1);
}

/// Records a failed delivery (log, audit, metric) without a secret.
pub(crate) async fn record_failure(
    store: &dyn crate::store::Store,
    account: &str,
    channel: &'static str,
    kind: MessageKind,
    reason: &str,
    now: UnixTime,
    meta: &RequestMeta,
) {
    count(channel, kind, false);
    tracing::warn!(account = %account, channel, reason, kind = kind.as_str(), "delivery failed");
    let r = store
        .insert_audit(&NewAuditEvent {
            at: now,
            account: Some(account.to_string()),
            actor: Some("system".into()),
            client_addr: meta.client_addr.clone(),
            user_agent: meta.user_agent.clone(),
            kind: AUDIT_DELIVERY_FAILED.into(),
            result: "failure".into(),
            detail: Some(format!("{channel}: {reason}")),
        })
        .await;
    if let Err(e) = r {
        tracing::warn!(error = %e, "auditing a delivery failure failed");
    }
}

impl Service {
    /// The bound of one synchronous send.
    pub fn delivery_bound(&self) -> Duration {
        self.delivery_bound
    }

    /// Sets the bound of one synchronous send (keep it below `limits.request_timeout_secs`).
    pub fn with_delivery_bound(mut self, bound: Duration) -> Service {
        self.delivery_bound = bound.max(Duration::from_millis(100));
        self
    }

    /// Sends an email the user waits for (a code) and waits for the outcome, at most
    /// [`Service::delivery_bound`]. `Err(DeliveryFailed("email"))` when it could not be sent
    /// (audited and counted); the caller then makes the code unusable.
    pub async fn deliver_email(
        &self,
        account: &str,
        email: &Email,
        now: UnixTime,
        meta: &RequestMeta,
    ) -> Result<()> {
        let outcome = tokio::time::timeout(self.delivery_bound, self.notifier.send(email)).await;
        self.settle(account, "email", outcome, now, meta).await
    }

    /// Sends a phone message the user waits for (by SMS or voice, as `msg.channel` says) and
    /// waits for the outcome, like [`Service::deliver_email`].
    pub async fn deliver_phone(
        &self,
        account: &str,
        msg: &PhoneMessage,
        now: UnixTime,
        meta: &RequestMeta,
    ) -> Result<()> {
        let outcome = tokio::time::timeout(self.delivery_bound, self.phone.send(msg)).await;
        self.settle(account, msg.channel.as_str(), outcome, now, meta)
            .await
    }

    /// The one way a code the user waits for is sent: `message` goes out through
    /// [`Service::deliver_email`] or [`Service::deliver_phone`]. When it could not be sent,
    /// `spend` makes the code unusable (nobody received it, so it must not stay guessable),
    /// then the step's own `failed` event is audited (when the step has one: the
    /// `delivery.failed` event is written either way) and `DeliveryFailed` is returned.
    /// `spend` is a future, so it does nothing unless the send failed (build what it needs
    /// inside an `async` block: arguments of a call are evaluated when the call is made).
    pub(crate) async fn deliver_code<T>(
        &self,
        account: &str,
        message: CodeMessage,
        spend: impl Future<Output = Result<T>>,
        failed: Option<Event<'_>>,
        req: Request<'_>,
    ) -> Result<()> {
        let Request { now, meta } = req;
        let delivered = match &message {
            CodeMessage::Email(email) => self.deliver_email(account, email, now, meta).await,
            CodeMessage::Phone(msg) => self.deliver_phone(account, msg, now, meta).await,
        };
        let Err(e) = delivered else {
            return Ok(());
        };
        spend.await?;
        if let Some(event) = failed {
            self.audit(now, meta, event).await?;
        }
        Err(e)
    }

    async fn settle(
        &self,
        account: &str,
        channel: &'static str,
        outcome: std::result::Result<Result<()>, tokio::time::error::Elapsed>,
        now: UnixTime,
        meta: &RequestMeta,
    ) -> Result<()> {
        let reason = match outcome {
            Ok(Ok(())) => {
                count(channel, MessageKind::Code, true);
                return Ok(());
            }
            Ok(Err(e)) => reason_class(&e),
            Err(_) => "timeout",
        };
        record_failure(
            self.store.as_ref(),
            account,
            channel,
            MessageKind::Code,
            reason,
            now,
            meta,
        )
        .await;
        Err(Error::DeliveryFailed(channel))
    }
}

/// Masks an email address or phone number for display on the recovery steps: enough for the
/// owner to recognise it, too little for someone who only knows the password to learn it.
///
/// - `taro@example.com` → `t•••@example.com` (the first character is kept only when the local
///   part has at least three, so a one- or two-character name is not given away);
/// - `+819012345678` → `+81 ••• •••• 5678` (country code and last four digits; the country code
///   is found with the E.164 prefix table, ITU-T E.164 Annex);
/// - anything else: bullets and at most the last four digits.
pub fn mask_contact(value: &str) -> String {
    const DOTS: &str = "•••";
    let value = value.trim();
    if let Some((local, domain)) = value.rsplit_once('@') {
        let n = local.chars().count();
        let first: String = if n >= 3 {
            local.chars().take(1).collect()
        } else {
            String::new()
        };
        return format!("{first}{DOTS}@{domain}");
    }
    let digits: String = value.chars().filter(char::is_ascii_digit).collect();
    let last4 = if digits.len() >= 8 {
        &digits[digits.len() - 4..]
    } else {
        ""
    };
    if value.starts_with('+') && digits.len() >= 8 {
        let cc = &digits[..country_code_len(&digits)];
        return format!("+{cc} {DOTS} •••• {last4}");
    }
    if last4.is_empty() {
        format!("{DOTS} ••••")
    } else {
        format!("{DOTS} •••• {last4}")
    }
}

/// Length of the E.164 country code at the start of `digits` (country codes are prefix-free:
/// 1 and 7 have one digit, the listed ones two, all others three).
fn country_code_len(digits: &str) -> usize {
    const TWO: &[&str] = &[
        "20", "27", "30", "31", "32", "33", "34", "36", "39", "40", "41", "43", "44", "45", "46",
        "47", "48", "49", "51", "52", "53", "54", "55", "56", "57", "58", "60", "61", "62", "63",
        "64", "65", "66", "81", "82", "84", "86", "90", "91", "92", "93", "94", "95", "98",
    ];
    match digits.as_bytes().first() {
        Some(b'1') | Some(b'7') => 1,
        _ if digits.len() >= 2 && TWO.contains(&&digits[..2]) => 2,
        _ => 3.min(digits.len()),
    }
}

/// Where email goes, for the operator: `smtp HOST:PORT (SECURITY)`, or `None` when no SMTP
/// server is configured. Names no user or password.
pub fn email_route(c: &crate::config::SmtpConfig) -> Option<String> {
    use crate::config::SmtpSecurity;
    let host = c.host.as_deref()?;
    let security = match c.security {
        SmtpSecurity::None => "none",
        SmtpSecurity::Starttls => "starttls",
        SmtpSecurity::Tls => "tls",
    };
    Some(format!("smtp {host}:{} ({security})", c.port))
}

/// Where phone messages go, for the operator: `webhook HOST` (the URL's host only: a path or
/// query may carry a gateway token), `log`, or `None` when no gateway is configured.
pub fn phone_route(c: &crate::config::PhoneConfig) -> Option<String> {
    match c.provider.trim() {
        "webhook" => {
            let host = c
                .url
                .as_deref()
                .and_then(|u| url::Url::parse(u).ok())
                .and_then(|u| {
                    let host = u.host_str()?.to_string();
                    Some(match u.port() {
                        Some(port) => format!("{host}:{port}"),
                        None => host,
                    })
                })
                .unwrap_or_else(|| "?".into());
            Some(format!("webhook {host}"))
        }
        "log" => Some("log (development only)".into()),
        _ => None,
    }
}

/// Purpose of an administrator's test message in the webhook JSON (its `code` is empty).
pub const TEST_PURPOSE: &str = "delivery_test";

/// The email `mamori-server admin test-email` sends: says what it is and that nothing needs
/// doing, in the configured mail language.
pub fn test_email(to: &str, service: &str, lang: crate::config::MailLanguage) -> Email {
    use zeroize::Zeroizing;
    let (subject, body) = match lang {
        crate::config::MailLanguage::Ja => (
            format!("[{service}] テストメッセージ"),
            "これは mamori-server admin test-email で送信したテストメッセージです。\
             メール配信が動作していることを確認するためのもので、対応は不要です。\n"
                .to_string(),
        ),
        crate::config::MailLanguage::En => (
            format!("[{service}] Test message"),
            "This is a test message sent with `mamori-server admin test-email` to check that \
             email delivery works. No action is needed.\n"
                .to_string(),
        ),
    };
    Email {
        to: to.to_string(),
        subject,
        body: Zeroizing::new(body),
    }
}

/// The phone message `mamori-server admin test-phone` sends: no code (`code` is empty,
/// `purpose` is [`TEST_PURPOSE`]), a sentence that can be texted or spoken.
pub fn test_phone_message(
    id: String,
    to: &str,
    channel: PhoneChannel,
    service: &str,
    now: UnixTime,
) -> PhoneMessage {
    use zeroize::Zeroizing;
    PhoneMessage {
        id,
        to: to.to_string(),
        purpose: TEST_PURPOSE,
        code: Zeroizing::new(String::new()),
        text: Zeroizing::new(format!(
            "{service}: this is a test message from the administrator, to check that phone \
             delivery works. No action is needed."
        )),
        service: service.to_string(),
        timestamp: now,
        channel,
    }
}

/// The start-up lines saying what email and phone delivery are configured, or what their
/// absence disables (#15: a deployment must not find out from a user that codes go nowhere).
pub fn startup_lines(c: &crate::config::Config) -> Vec<String> {
    use crate::config::{AlternativeFactors, SmtpSecurity};
    let mut out = Vec::new();
    match &c.smtp.host {
        Some(host) => {
            let security = match c.smtp.security {
                SmtpSecurity::None => "none (plain)",
                SmtpSecurity::Starttls => "starttls",
                SmtpSecurity::Tls => "tls",
            };
            out.push(format!(
                "email delivery: smtp {host}:{} security {security}, from {}",
                c.smtp.port, c.smtp.from
            ));
        }
        None => out.push(
            "email delivery: not configured (smtp.host): no security notices, no email codes"
                .into(),
        ),
    }
    match c.phone.provider.trim() {
        "webhook" => {
            let host = c
                .phone
                .url
                .as_deref()
                .and_then(|u| url::Url::parse(u).ok())
                .and_then(|u| u.host_str().map(str::to_string))
                .unwrap_or_else(|| "?".into());
            out.push(format!("phone delivery: webhook to {host} (sms and voice)"));
        }
        "log" => out.push(
            "phone delivery: log (development only: phone codes are written to the server log)"
                .into(),
        ),
        _ => out.push("phone delivery: not configured (phone.provider): no phone codes".into()),
    }
    let both = c.smtp.host.is_some() && c.phone.provider.trim() != "none";
    if c.recovery.alternative_factors != AlternativeFactors::Off && !both {
        out.push(
            "warning: recovery by alternative factors is enabled but email and phone delivery \
             are not both configured: nobody can use it"
                .into(),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_keep_the_first_character_and_the_domain() {
        assert_eq!(mask_contact("taro@example.com"), "t•••@example.com");
        assert_eq!(mask_contact("carol@example.test"), "c•••@example.test");
    }

    #[test]
    fn short_local_parts_give_nothing_away() {
        assert_eq!(mask_contact("a@example.com"), "•••@example.com");
        assert_eq!(mask_contact("ab@example.com"), "•••@example.com");
        assert_eq!(mask_contact("abc@example.com"), "a•••@example.com");
        assert_eq!(mask_contact("@example.com"), "•••@example.com");
    }

    #[test]
    fn non_ascii_is_cut_at_characters_not_bytes() {
        assert_eq!(mask_contact("たろう@例え.jp"), "た•••@例え.jp");
        assert_eq!(mask_contact("é@example.com"), "•••@example.com");
    }

    #[test]
    fn phone_numbers_keep_country_code_and_last_four() {
        assert_eq!(mask_contact("+819012345678"), "+81 ••• •••• 5678");
        assert_eq!(mask_contact("+14155550123"), "+1 ••• •••• 0123");
        assert_eq!(mask_contact("+35312345678"), "+353 ••• •••• 5678");
        assert_eq!(mask_contact("+79161234567"), "+7 ••• •••• 4567");
        // Not E.164: no country code is guessed.
        assert_eq!(mask_contact("090-1234-5678"), "••• •••• 5678");
        // Too short to show any digits safely.
        assert_eq!(mask_contact("+8112"), "••• ••••");
        assert!(!mask_contact("+819012345678").contains("9012"));
    }

    #[test]
    fn voice_codes_are_read_digit_by_digit() {
        assert_eq!(spoken_digits("123456"), "1 2 3 4 5 6");
        assert_eq!(spoken_digits("12 34"), "1 2 3 4");
    }

    #[test]
    fn channels_parse_and_refuse_others() {
        assert_eq!(PhoneChannel::parse(None).ok(), Some(PhoneChannel::Sms));
        assert_eq!(
            PhoneChannel::parse(Some("voice")).ok(),
            Some(PhoneChannel::Voice)
        );
        assert!(PhoneChannel::parse(Some("fax")).is_err());
    }

    #[test]
    fn routes_name_host_port_and_security_but_no_path_or_query() {
        use crate::config::{PhoneConfig, SmtpConfig, SmtpSecurity};
        let mut smtp = SmtpConfig::default();
        assert_eq!(email_route(&smtp), None);
        smtp.host = Some("relay.example".into());
        smtp.port = 587;
        smtp.security = SmtpSecurity::Starttls;
        smtp.username = Some("relay-user".into());
        assert_eq!(
            email_route(&smtp).as_deref(),
            Some("smtp relay.example:587 (starttls)")
        );
        let mut phone = PhoneConfig::default();
        assert_eq!(phone_route(&phone), None);
        phone.provider = "webhook".into();
        phone.url = Some("https://gw.example:8443/send?token=t0ken".into());
        assert_eq!(
            phone_route(&phone).as_deref(),
            Some("webhook gw.example:8443")
        );
        phone.url = Some("https://gw.example/send".into());
        assert_eq!(phone_route(&phone).as_deref(), Some("webhook gw.example"));
    }

    #[test]
    fn test_messages_carry_no_code_and_say_what_they_are() {
        let m = test_phone_message("id1".into(), "+819012345678", PhoneChannel::Voice, "m", 7);
        assert_eq!(m.purpose, TEST_PURPOSE);
        assert!(m.code.is_empty());
        assert!(m.text.contains("test message"), "{}", m.text.as_str());
        let json: serde_json::Value = serde_json::from_str(&m.webhook_json()).unwrap_or_default();
        assert_eq!(json.get("channel"), Some(&serde_json::json!("voice")));
        assert_eq!(json.get("code"), Some(&serde_json::json!("")));
        let e = test_email("a@example.com", "m", crate::config::MailLanguage::En);
        assert_eq!(e.subject, "[m] Test message");
        assert!(e.body.contains("No action is needed"));
    }

    #[test]
    fn reasons_never_carry_the_error_text() {
        let e = Error::Internal("smtp: permanent error (535): secret-user rejected".into());
        assert_eq!(reason_class(&e), "rejected");
        let e = Error::Internal("phone webhook answered 500 Internal Server Error".into());
        assert_eq!(reason_class(&e), "rejected");
        assert_eq!(reason_class(&Error::Config("x".into())), "not_configured");
        assert_eq!(
            reason_class(&Error::Internal("smtp: connection refused".into())),
            "transport"
        );
    }
}
