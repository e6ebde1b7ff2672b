//! What the edges implement to deliver messages, and the messages themselves: the
//! [`Notifier`] (email) and [`PhoneGateway`] (text message or call) traits, the [`Email`] and
//! [`PhoneMessage`] values they carry, and the documented webhook signature. The domain
//! decides what to send ([`super::notify`], [`super::delivery`]); the SMTP and webhook
//! implementations live in the server crate. Kept apart so that both sending modules use
//! these types without importing each other.

use async_trait::async_trait;
use zeroize::Zeroizing;

use crate::clock::UnixTime;
use crate::error::{Error, Result};

/// How a phone message is delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PhoneChannel {
    /// A text message.
    #[default]
    Sms,
    /// A phone call that reads the text out.
    Voice,
}

impl PhoneChannel {
    /// Wire form (`sms`, `voice`), as in the webhook JSON and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            PhoneChannel::Sms => "sms",
            PhoneChannel::Voice => "voice",
        }
    }

    /// Parses the wire form (`None` = `sms`).
    pub fn parse(s: Option<&str>) -> Result<PhoneChannel> {
        match s.map(str::trim) {
            None | Some("") | Some("sms") => Ok(PhoneChannel::Sms),
            Some("voice") => Ok(PhoneChannel::Voice),
            Some(_) => Err(Error::InvalidInput(
                "channel must be \"sms\" or \"voice\"".into(),
            )),
        }
    }
}

/// One email to send.
#[derive(Clone)]
pub struct Email {
    /// Recipient address.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text body (may carry a verification code: never logged).
    pub body: Zeroizing<String>,
}

impl std::fmt::Debug for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Email")
            .field("to", &self.to)
            .field("subject", &self.subject)
            .field("body", &"[redacted]")
            .finish()
    }
}

/// Delivers email.
#[async_trait]
pub trait Notifier: Send + Sync {
    /// Whether messages go anywhere (false: email is not configured).
    fn enabled(&self) -> bool;
    /// Sends one message.
    async fn send(&self, email: &Email) -> Result<()>;
}

/// Used when no SMTP server is configured: nothing is sent.
#[derive(Debug, Default)]
pub struct NotConfigured;

#[async_trait]
impl Notifier for NotConfigured {
    fn enabled(&self) -> bool {
        false
    }

    async fn send(&self, _email: &Email) -> Result<()> {
        Err(Error::Config("email (smtp.host) is not configured".into()))
    }
}

/// One text message for a phone: a code and the sentence that carries it.
#[derive(Clone)]
pub struct PhoneMessage {
    /// Random id of the message (for the gateway's deduplication).
    pub id: String,
    /// The phone number, as the account has it.
    pub to: String,
    /// What the code is for (`contact_verification`).
    pub purpose: &'static str,
    /// The code.
    pub code: Zeroizing<String>,
    /// The full text to send or read out.
    pub text: Zeroizing<String>,
    /// Service name.
    pub service: String,
    /// Unix time of sending.
    pub timestamp: UnixTime,
    // #15 delivery
    /// Text message or call (`text` is then the sentence to speak, digits spaced).
    pub channel: PhoneChannel,
}

impl std::fmt::Debug for PhoneMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PhoneMessage")
            .field("id", &self.id)
            .field("to", &self.to)
            .field("purpose", &self.purpose)
            .field("channel", &self.channel)
            .field("code", &"[redacted]")
            .finish_non_exhaustive()
    }
}

impl PhoneMessage {
    /// The documented JSON body of the webhook (docs/recovery.md), version 1.
    pub fn webhook_json(&self) -> Zeroizing<String> {
        Zeroizing::new(
            serde_json::json!({
                "version": 1,
                "id": self.id,
                "to": self.to,
                "purpose": self.purpose,
                "code": self.code.as_str(),
                "message": self.text.as_str(),
                "service": self.service,
                "timestamp": self.timestamp,
                // #15 delivery: added in place (version stays 1; receivers ignore unknown
                // fields, and an absent field meant "sms").
                "channel": self.channel.as_str(),
            })
            .to_string(),
        )
    }
}

/// Header carrying the webhook signature: `sha256=` and the lower-case hex HMAC-SHA256.
pub const SIGNATURE_HEADER: &str = "x-mamori-signature";
/// Header carrying the Unix time that is signed with the body.
pub const TIMESTAMP_HEADER: &str = "x-mamori-timestamp";

/// The webhook signature: HMAC-SHA256 (RFC 2104) under the shared secret of
/// `TIMESTAMP + "." + BODY`, hex-encoded, prefixed with `sha256=`. Signing the time lets the
/// receiver refuse old replays.
pub fn webhook_signature(secret: &[u8], timestamp: UnixTime, body: &str) -> Result<String> {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret)
        .map_err(|e| Error::Internal(format!("webhook key: {e}")))?;
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    Ok(format!(
        "sha256={}",
        data_encoding::HEXLOWER.encode(&mac.finalize().into_bytes())
    ))
}

/// Sends codes to phones (an SMS or voice gateway).
#[async_trait]
pub trait PhoneGateway: Send + Sync {
    /// Whether messages go anywhere.
    fn enabled(&self) -> bool;
    /// Sends one message.
    async fn send(&self, msg: &PhoneMessage) -> Result<()>;
}

/// No gateway configured.
#[derive(Debug, Default)]
pub struct NoPhoneGateway;

#[async_trait]
impl PhoneGateway for NoPhoneGateway {
    fn enabled(&self) -> bool {
        false
    }

    async fn send(&self, _msg: &PhoneMessage) -> Result<()> {
        Err(Error::Config(
            "no phone gateway (phone.provider) is configured".into(),
        ))
    }
}

/// Development only: writes the code into the server log.
#[derive(Debug, Default)]
pub struct LogPhoneGateway;

#[async_trait]
impl PhoneGateway for LogPhoneGateway {
    fn enabled(&self) -> bool {
        true
    }

    async fn send(&self, msg: &PhoneMessage) -> Result<()> {
        // Deliberately logs the code: this provider exists for development, and start-up warns.
        tracing::warn!(to = %msg.to, purpose = msg.purpose, code = %msg.code.as_str(), "phone gateway `log`: code for the phone (development only)");
        Ok(())
    }
}

#[cfg(test)]
mod phone_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_time_dot_body() {
        // RFC 4231 test case 2 checks the HMAC itself: key "Jefe", data
        // "what do ya want for nothing?" gives 5bdcc146bf60754e6a042426089575c7
        // 5a003f089d2739839dec58b964ec3843. Here the data is "1." + body.
        let sig = webhook_signature(b"Jefe", 1, "what do ya want for nothing?").unwrap();
        assert!(sig.starts_with("sha256=") && sig.len() == 7 + 64, "{sig}");
        use hmac::{Hmac, Mac};
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            data_encoding::HEXLOWER.encode(&mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_ne!(
            sig,
            webhook_signature(b"Jefe", 2, "what do ya want for nothing?").unwrap()
        );
    }
}
