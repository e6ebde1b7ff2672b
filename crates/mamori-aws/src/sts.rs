//! Temporary credentials with MFA: `GetSessionToken` and `AssumeRole`, and the three ways they
//! leave mamori (the AWS CLI's `credential_process` JSON, shell `export` lines, a child's
//! environment).

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::from_sdk;
use crate::{Aws, AwsError};

/// Which call a duration is for: their limits differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionKind {
    /// `GetSessionToken`: 15 minutes to 36 hours, 12 hours by default.
    SessionToken,
    /// `AssumeRole`: 15 minutes to 12 hours (the role's maximum may be lower), 1 hour by default.
    AssumeRole,
}

impl SessionKind {
    /// The accepted range in seconds.
    pub fn range(self) -> (u32, u32) {
        match self {
            SessionKind::SessionToken => (900, 129_600),
            SessionKind::AssumeRole => (900, 43_200),
        }
    }

    /// AWS's default when none is asked for.
    pub fn default_secs(self) -> u32 {
        match self {
            SessionKind::SessionToken => 43_200,
            SessionKind::AssumeRole => 3_600,
        }
    }

    fn call(self) -> &'static str {
        match self {
            SessionKind::SessionToken => "GetSessionToken",
            SessionKind::AssumeRole => "AssumeRole",
        }
    }
}

/// Parses a duration: `3600`, `3600s`, `90m`, `12h`, `1h30m`; checks it against `kind`'s range.
pub fn parse_duration(text: &str, kind: SessionKind) -> Result<u32, AwsError> {
    let bad = || {
        AwsError::Duration(format!(
            "--duration {text:?} is not a duration; write seconds (3600) or e.g. 90m, 12h, 1h30m"
        ))
    };
    let t = text.trim();
    if t.is_empty() {
        return Err(bad());
    }
    let mut total: u64 = 0;
    let mut number = String::new();
    let mut units = 0;
    for c in t.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let mult = match c {
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return Err(bad()),
        };
        let n: u64 = number.parse().map_err(|_| bad())?;
        total = total
            .checked_add(n.checked_mul(mult).ok_or_else(bad)?)
            .ok_or_else(bad)?;
        number.clear();
        units += 1;
    }
    if !number.is_empty() {
        // A bare number is seconds; a trailing number after units ("1h30") is ambiguous.
        if units > 0 {
            return Err(bad());
        }
        total = number.parse().map_err(|_| bad())?;
    }
    let (lo, hi) = kind.range();
    match u32::try_from(total) {
        Ok(s) if (lo..=hi).contains(&s) => Ok(s),
        _ => Err(AwsError::Duration(format!(
            "--duration {text} is outside what {} accepts: {} to {}",
            kind.call(),
            human(lo),
            human(hi)
        ))),
    }
}

fn human(secs: u32) -> String {
    match (secs / 3600, (secs % 3600) / 60) {
        (0, m) => format!("{m}m"),
        (h, 0) => format!("{h}h"),
        (h, m) => format!("{h}h{m}m"),
    }
}

/// Temporary credentials. The secret parts are zeroized on drop and never printed by `Debug`.
#[derive(Clone, Serialize, Deserialize)]
pub struct SessionCredentials {
    /// `ASIA…`
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: Zeroizing<String>,
    /// The session token.
    pub session_token: Zeroizing<String>,
    /// When they expire (Unix seconds).
    pub expiration: i64,
}

impl std::fmt::Debug for SessionCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"[redacted]")
            .field("session_token", &"[redacted]")
            .field("expiration", &self.expiration)
            .finish()
    }
}

impl SessionCredentials {
    /// The expiry as RFC 3339 (`2026-12-06T21:00:00Z`).
    pub fn expiration_rfc3339(&self) -> String {
        time::OffsetDateTime::from_unix_timestamp(self.expiration)
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_default()
    }

    /// The AWS CLI's `credential_process` output (Version 1).
    pub fn credential_process_json(&self) -> Zeroizing<String> {
        let v = serde_json::json!({
            "Version": 1,
            "AccessKeyId": self.access_key_id,
            "SecretAccessKey": self.secret_access_key.as_str(),
            "SessionToken": self.session_token.as_str(),
            "Expiration": self.expiration_rfc3339(),
        });
        Zeroizing::new(serde_json::to_string_pretty(&v).unwrap_or_default())
    }

    /// The variables a child process gets (`exec`) and `--export` prints.
    pub fn env(&self) -> Vec<(&'static str, Zeroizing<String>)> {
        vec![
            (
                "AWS_ACCESS_KEY_ID",
                Zeroizing::new(self.access_key_id.clone()),
            ),
            ("AWS_SECRET_ACCESS_KEY", self.secret_access_key.clone()),
            ("AWS_SESSION_TOKEN", self.session_token.clone()),
            (
                "AWS_CREDENTIAL_EXPIRATION",
                Zeroizing::new(self.expiration_rfc3339()),
            ),
        ]
    }

    /// `export NAME='value'` lines for a POSIX shell (`eval "$(mamori aws session --export)"`).
    pub fn export_lines(&self) -> Zeroizing<String> {
        let mut out = Zeroizing::new(String::new());
        for (k, v) in self.env() {
            // AWS's values are Base64-ish; quoting keeps the lines safe whatever they hold.
            out.push_str(&format!("export {k}='{}'\n", v.replace('\'', r"'\''")));
        }
        out
    }
}

fn take(
    operation: &'static str,
    c: Option<&aws_sdk_sts::types::Credentials>,
) -> Result<SessionCredentials, AwsError> {
    let c = c.ok_or(AwsError::Incomplete {
        operation,
        what: "credentials",
    })?;
    Ok(SessionCredentials {
        access_key_id: c.access_key_id().to_string(),
        secret_access_key: Zeroizing::new(c.secret_access_key().to_string()),
        session_token: Zeroizing::new(c.session_token().to_string()),
        expiration: c.expiration().secs(),
    })
}

impl Aws {
    /// `GetSessionToken` with the device `serial` and `code`.
    pub fn get_session_token(
        &self,
        serial: &str,
        code: &str,
        duration_secs: u32,
    ) -> Result<SessionCredentials, AwsError> {
        let out = self
            .block_on(
                self.sts
                    .get_session_token()
                    .serial_number(serial)
                    .token_code(code)
                    .duration_seconds(duration_secs as i32)
                    .send(),
            )
            .map_err(|e| from_sdk(&self.ctx("GetSessionToken", Some(serial)), e))?;
        take("GetSessionToken", out.credentials())
    }

    /// `AssumeRole` of `role_arn` with the device `serial` and `code`.
    pub fn assume_role(
        &self,
        role_arn: &str,
        session_name: &str,
        serial: &str,
        code: &str,
        duration_secs: u32,
    ) -> Result<SessionCredentials, AwsError> {
        let out = self
            .block_on(
                self.sts
                    .assume_role()
                    .role_arn(role_arn)
                    .role_session_name(session_name)
                    .serial_number(serial)
                    .token_code(code)
                    .duration_seconds(duration_secs as i32)
                    .send(),
            )
            .map_err(|e| from_sdk(&self.ctx("AssumeRole", Some(serial)), e))?;
        take("AssumeRole", out.credentials())
    }

    /// The account id and ARN of the signing credentials (`GetCallerIdentity`).
    pub fn caller_identity(&self) -> Result<(String, String), AwsError> {
        let out = self
            .block_on(self.sts.get_caller_identity().send())
            .map_err(|e| from_sdk(&self.ctx("GetCallerIdentity", None), e))?;
        let account = out.account().ok_or(AwsError::Incomplete {
            operation: "GetCallerIdentity",
            what: "the account",
        })?;
        Ok((
            account.to_string(),
            out.arn().unwrap_or_default().to_string(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_seconds_minutes_and_hours() {
        let p = |t| parse_duration(t, SessionKind::SessionToken).ok();
        assert_eq!(p("3600"), Some(3600));
        assert_eq!(p("3600s"), Some(3600));
        assert_eq!(p("90m"), Some(5400));
        assert_eq!(p("12h"), Some(43_200));
        assert_eq!(p("1h30m"), Some(5400));
        assert_eq!(p("36h"), Some(129_600));
        for bad in ["", "h", "1d", "-5", "1h30", "1.5h", "99999999999999999999"] {
            assert!(p(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn each_call_has_its_limits() {
        let e = |t, k| {
            parse_duration(t, k)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert_eq!(
            e("14m", SessionKind::SessionToken),
            "--duration 14m is outside what GetSessionToken accepts: 15m to 36h"
        );
        assert_eq!(
            e("37h", SessionKind::SessionToken),
            "--duration 37h is outside what GetSessionToken accepts: 15m to 36h"
        );
        assert_eq!(
            e("13h", SessionKind::AssumeRole),
            "--duration 13h is outside what AssumeRole accepts: 15m to 12h"
        );
        assert_eq!(
            parse_duration("15m", SessionKind::AssumeRole).ok(),
            Some(900)
        );
        assert_eq!(
            parse_duration("12h", SessionKind::AssumeRole).ok(),
            Some(43_200)
        );
    }

    fn creds() -> SessionCredentials {
        SessionCredentials {
            access_key_id: "ASIAEXAMPLE".into(),
            secret_access_key: Zeroizing::new("se'cret".into()),
            session_token: Zeroizing::new("tok/en+=".into()),
            expiration: 1_796_000_000,
        }
    }

    #[test]
    fn credential_process_output_is_version_1() {
        let v: serde_json::Value =
            serde_json::from_str(&creds().credential_process_json()).unwrap_or_default();
        assert_eq!(v["Version"], 1);
        assert_eq!(v["AccessKeyId"], "ASIAEXAMPLE");
        assert_eq!(v["SecretAccessKey"], "se'cret");
        assert_eq!(v["SessionToken"], "tok/en+=");
        assert_eq!(v["Expiration"], "2026-11-30T00:53:20Z");
    }

    #[test]
    fn export_lines_are_quoted_for_the_shell() {
        let out = creds().export_lines();
        assert_eq!(
            out.as_str(),
            "export AWS_ACCESS_KEY_ID='ASIAEXAMPLE'\nexport AWS_SECRET_ACCESS_KEY='se'\\''cret'\nexport AWS_SESSION_TOKEN='tok/en+='\nexport AWS_CREDENTIAL_EXPIRATION='2026-11-30T00:53:20Z'\n"
        );
    }

    #[test]
    fn debug_hides_the_secrets() {
        let d = format!("{:?}", creds());
        assert!(!d.contains("se'cret") && !d.contains("tok/en"), "{d}");
    }
}
