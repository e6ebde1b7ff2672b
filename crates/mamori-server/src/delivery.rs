//! The delivery edge (#16): the SMTP client and the phone webhook client behind the domain's
//! [`Notifier`] and [`PhoneGateway`] traits. The domain decides what to send and when, and
//! never opens a connection or reads a file itself; this module builds the clients from the
//! configuration (reading the SMTP password and webhook secret files) and does the I/O.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use zeroize::Zeroizing;

use crate::config::{PhoneConfig, SmtpConfig, SmtpSecurity};
use crate::domain::notify::{
    webhook_signature, Email, LogPhoneGateway, NoPhoneGateway, NotConfigured, Notifier,
    PhoneGateway, PhoneMessage, SIGNATURE_HEADER, TIMESTAMP_HEADER,
};
use crate::error::{Error, Result};

/// Sends through an SMTP server with `lettre` (plain, STARTTLS or implicit TLS; rustls with the
/// Mozilla root certificates, no OpenSSL).
pub struct SmtpNotifier {
    transport: lettre::AsyncSmtpTransport<lettre::Tokio1Executor>,
    from: lettre::message::Mailbox,
}

impl std::fmt::Debug for SmtpNotifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpNotifier")
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

impl SmtpNotifier {
    /// Builds the transport from the configuration (reads the password file).
    pub fn new(c: &SmtpConfig) -> Result<SmtpNotifier> {
        use lettre::transport::smtp::authentication::Credentials;
        use lettre::{AsyncSmtpTransport, Tokio1Executor};
        let host = c
            .host
            .as_deref()
            .ok_or_else(|| Error::Config("smtp.host is not set".into()))?;
        let bad = |e: &dyn std::fmt::Display| Error::Config(format!("smtp: {e}"));
        let mut b = match c.security {
            SmtpSecurity::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
            SmtpSecurity::Starttls => {
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host).map_err(|e| bad(&e))?
            }
            SmtpSecurity::Tls => {
                AsyncSmtpTransport::<Tokio1Executor>::relay(host).map_err(|e| bad(&e))?
            }
        };
        b = b
            .port(c.port)
            .timeout(Some(Duration::from_secs(c.timeout_secs.max(1))));
        if let Some(user) = &c.username {
            let path = c.password_file.as_ref().ok_or_else(|| {
                Error::Config("smtp.username is set but smtp.password_file is not".into())
            })?;
            let pw = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
                Error::Config(format!(
                    "cannot read smtp.password_file {}: {e}",
                    path.display()
                ))
            })?);
            b = b.credentials(Credentials::new(
                user.clone(),
                pw.trim_end_matches(['\r', '\n']).to_string(),
            ));
        }
        let from = c
            .from
            .parse()
            .map_err(|e| Error::Config(format!("smtp.from {:?}: {e}", c.from)))?;
        Ok(SmtpNotifier {
            transport: b.build(),
            from,
        })
    }
}

#[async_trait]
impl Notifier for SmtpNotifier {
    fn enabled(&self) -> bool {
        true
    }

    async fn send(&self, email: &Email) -> Result<()> {
        use lettre::message::header::ContentType;
        use lettre::AsyncTransport as _;
        let to = email
            .to
            .parse()
            .map_err(|_| Error::InvalidInput("the email address cannot receive mail".into()))?;
        let msg = lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(email.subject.clone())
            .header(ContentType::TEXT_PLAIN)
            .body(email.body.to_string())
            .map_err(|e| Error::Internal(format!("building the message: {e}")))?;
        // The transport's error says which SMTP step failed; it never contains the body.
        self.transport
            .send(msg)
            .await
            .map_err(|e| Error::Internal(format!("smtp: {e}")))?;
        Ok(())
    }
}

/// The notifier of a configuration: SMTP when `smtp.host` is set.
pub fn notifier_from_config(c: &SmtpConfig) -> Result<Arc<dyn Notifier>> {
    if c.host.is_none() {
        return Ok(Arc::new(NotConfigured));
    }
    Ok(Arc::new(SmtpNotifier::new(c)?))
}

/// POSTs the signed JSON message to a gateway's URL.
pub struct WebhookPhoneGateway {
    client: reqwest::Client,
    url: String,
    secret: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for WebhookPhoneGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookPhoneGateway")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl PhoneGateway for WebhookPhoneGateway {
    fn enabled(&self) -> bool {
        true
    }

    async fn send(&self, msg: &PhoneMessage) -> Result<()> {
        let body = msg.webhook_json();
        let sig = webhook_signature(&self.secret, msg.timestamp, &body)?;
        let resp = self
            .client
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(TIMESTAMP_HEADER, msg.timestamp.to_string())
            .header(SIGNATURE_HEADER, sig)
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| Error::Internal(format!("phone webhook: {}", e.without_url())))?;
        if !resp.status().is_success() {
            return Err(Error::Internal(format!(
                "phone webhook answered {}",
                resp.status()
            )));
        }
        Ok(())
    }
}

/// The phone gateway of a configuration (warns at start-up for `log`).
pub fn phone_gateway_from_config(c: &PhoneConfig) -> Result<Arc<dyn PhoneGateway>> {
    match c.provider.as_str() {
        "none" => Ok(Arc::new(NoPhoneGateway)),
        "log" => {
            tracing::warn!("phone.provider = \"log\": phone codes are written to the server log; use this only for development");
            Ok(Arc::new(LogPhoneGateway))
        }
        "webhook" => {
            let url = c.url.clone().ok_or_else(|| {
                Error::Config("phone.url is required for the webhook provider".into())
            })?;
            let path = c.secret_file.as_ref().ok_or_else(|| {
                Error::Config("phone.secret_file is required for the webhook provider".into())
            })?;
            let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
                Error::Config(format!(
                    "cannot read phone.secret_file {}: {e}",
                    path.display()
                ))
            })?);
            let secret = Zeroizing::new(text.trim().as_bytes().to_vec());
            if secret.len() < 16 {
                return Err(Error::Config(
                    "phone.secret_file must hold at least 16 bytes".into(),
                ));
            }
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .map_err(|e| Error::Config(format!("phone webhook client: {e}")))?;
            Ok(Arc::new(WebhookPhoneGateway {
                client,
                url,
                secret,
            }))
        }
        other => Err(Error::Config(format!(
            "phone.provider must be none, webhook or log, not {other:?}"
        ))),
    }
}
