//! `otpauth://` key URIs, after the Google Authenticator "Key Uri Format" wiki page:
//!
//! ```text
//! otpauth://TYPE/LABEL?PARAMETERS
//! LABEL = accountname / issuer (":" / "%3A") *"%20" accountname
//! PARAMETERS: secret (REQUIRED, Base32), issuer (STRONGLY RECOMMENDED), algorithm (SHA1 default),
//!             digits (6 default), counter (REQUIRED for hotp), period (30 default)
//! ```
//!
//! Parsing is lenient because real apps deviate: secrets in lower case, with spaces or padding;
//! parameter names in any case; a missing issuer (taken from the label prefix, or left out);
//! `otpauth://steam/…` or `encoder=steam` for Steam Guard; unknown parameters ignored; an HOTP URI
//! without a counter starts at 0. Writing is strict: the issuer both as label prefix and as
//! parameter, every parameter explicit, upper-case unpadded Base32.

use std::fmt;
use std::str::FromStr;

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use zeroize::Zeroizing;

use crate::{Algorithm, OtpError, OtpKind, OtpParams, Secret, UriError};

/// Characters written percent-encoded in labels and parameter values: everything except
/// RFC 3986 unreserved characters and `@` (which apps expect to see in e-mail account names).
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'@');

/// One account as carried by an `otpauth://` URI.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyUri {
    /// The service the account belongs to ("ACME Co"), if known.
    pub issuer: Option<String>,
    /// The account name ("john@example.com"). May be empty when an issuer is present.
    pub account: String,
    /// The shared secret.
    pub secret: Secret,
    /// Type, algorithm, digits, period, counter.
    pub params: OtpParams,
}

impl fmt::Debug for KeyUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyUri")
            .field("issuer", &self.issuer)
            .field("account", &self.account)
            .field("secret", &self.secret)
            .field("params", &self.params)
            .finish()
    }
}

fn param_err(name: &str, reason: impl Into<String>) -> UriError {
    UriError::Parameter {
        name: name.to_string(),
        reason: reason.into(),
    }
}

/// Percent-decodes a query value, treating `+` as a space as HTML forms (and many apps) do.
fn decode_query_value(raw: &str) -> Result<String, UriError> {
    let spaced = raw.replace('+', " ");
    percent_decode_str(&spaced)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| {
            UriError::Syntax("a parameter is not valid UTF-8 after percent-decoding".into())
        })
}

fn non_empty(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_string())
}

impl KeyUri {
    /// Parses an `otpauth://` URI leniently. Errors name the part at fault and never include the
    /// secret.
    pub fn parse(input: &str) -> Result<Self, UriError> {
        let input = input.trim();
        let (scheme, rest) = input
            .split_once("://")
            .ok_or_else(|| UriError::Syntax("expected otpauth://TYPE/LABEL?secret=…".into()))?;
        if !scheme.eq_ignore_ascii_case("otpauth") {
            return Err(UriError::Scheme {
                found: scheme.to_string(),
                expected: "otpauth",
            });
        }
        // Drop a fragment; split host / path / query by hand so that nothing is normalised away.
        let rest = rest.split_once('#').map_or(rest, |(r, _)| r);
        let (before_query, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (host, raw_label) = before_query.split_once('/').unwrap_or((before_query, ""));
        let mut kind = match host.to_ascii_lowercase().as_str() {
            "totp" => OtpKind::Totp,
            "hotp" => OtpKind::Hotp,
            "steam" => OtpKind::Steam,
            _ => return Err(UriError::Type(host.to_string())),
        };

        let label = percent_decode_str(raw_label)
            .decode_utf8()
            .map_err(|_| UriError::LabelEncoding)?
            .into_owned();

        let mut secret_raw: Option<Zeroizing<String>> = None;
        let mut issuer_param: Option<String> = None;
        let mut algorithm: Option<Algorithm> = None;
        let mut digits: Option<u32> = None;
        let mut period: Option<u64> = None;
        let mut counter: Option<u64> = None;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = name.to_ascii_lowercase();
            // The first occurrence wins; later duplicates are ignored like unknown parameters.
            match name.as_str() {
                "secret" if secret_raw.is_none() => {
                    secret_raw = Some(Zeroizing::new(decode_query_value(value)?));
                }
                "issuer" if issuer_param.is_none() => {
                    issuer_param = non_empty(&decode_query_value(value)?);
                }
                "algorithm" if algorithm.is_none() => {
                    let v = decode_query_value(value)?;
                    algorithm = Some(Algorithm::from_str(&v).map_err(|_| {
                        param_err(
                            "algorithm",
                            format!("unsupported value {v:?}: use SHA1, SHA256 or SHA512"),
                        )
                    })?);
                }
                "digits" if digits.is_none() => {
                    let v = decode_query_value(value)?;
                    let n: u32 = v
                        .trim()
                        .parse()
                        .map_err(|_| param_err("digits", format!("{v:?} is not a number")))?;
                    digits = Some(n);
                }
                "period" if period.is_none() => {
                    let v = decode_query_value(value)?;
                    let n: u64 = v.trim().parse().map_err(|_| {
                        param_err("period", format!("{v:?} is not a number of seconds"))
                    })?;
                    if n == 0 {
                        return Err(param_err("period", "must be at least 1 second"));
                    }
                    period = Some(n);
                }
                "counter" if counter.is_none() => {
                    let v = decode_query_value(value)?;
                    counter = Some(v.trim().parse().map_err(|_| {
                        param_err("counter", format!("{v:?} is not a number from 0 to 2^64-1"))
                    })?);
                }
                "encoder" => {
                    let v = decode_query_value(value)?;
                    if v.trim().eq_ignore_ascii_case("steam") {
                        kind = OtpKind::Steam;
                    }
                }
                _ => {}
            }
        }

        let secret_raw = secret_raw.ok_or(UriError::MissingSecret)?;
        let secret = Secret::from_base32(&secret_raw).map_err(|e| match e {
            OtpError::EmptySecret => param_err("secret", "is empty"),
            other => param_err("secret", other.to_string()),
        })?;

        // Label: "Issuer:Account", "Issuer: Account" or just "Account". When the issuer
        // parameter is present and itself contains a colon, prefer it as the prefix.
        let (label_issuer, account) = match &issuer_param {
            Some(i) if label.starts_with(&format!("{i}:")) => (
                Some(i.clone()),
                label.get(i.len() + 1..).unwrap_or("").to_string(),
            ),
            _ => match label.split_once(':') {
                Some((prefix, acct)) => (non_empty(prefix), acct.to_string()),
                None => (None, label.clone()),
            },
        };
        let account = account.trim().to_string();
        // The parameter wins over the label prefix, as Google Authenticator does.
        let issuer = issuer_param.or(label_issuer);
        if account.is_empty() && issuer.is_none() {
            return Err(UriError::MissingLabel);
        }

        let params = match kind {
            OtpKind::Steam => OtpParams::steam(),
            OtpKind::Totp | OtpKind::Hotp => {
                let p = OtpParams {
                    kind,
                    algorithm: algorithm.unwrap_or_default(),
                    digits: digits.unwrap_or(6),
                    period: if kind == OtpKind::Totp {
                        period.unwrap_or(30)
                    } else {
                        30
                    },
                    counter: if kind == OtpKind::Hotp {
                        counter.unwrap_or(0)
                    } else {
                        0
                    },
                };
                p.validated().map_err(|e| match e {
                    OtpError::InvalidDigits(d) => {
                        param_err("digits", format!("{d} is not between 6 and 10"))
                    }
                    OtpError::InvalidPeriod(_) => param_err("period", "must be at least 1 second"),
                    other => param_err("parameters", other.to_string()),
                })?
            }
        };

        Ok(KeyUri {
            issuer,
            account,
            secret,
            params,
        })
    }

    /// Writes the URI strictly. The result contains the secret and is wiped on drop.
    ///
    /// Steam accounts are written as `otpauth://totp/…&encoder=steam` with `digits=5`, which apps
    /// that know Steam read as Steam and this parser reads back exactly.
    pub fn to_uri(&self) -> Zeroizing<String> {
        let enc = |s: &str| utf8_percent_encode(s, COMPONENT).to_string();
        let p = &self.params;
        let host = match p.kind {
            OtpKind::Hotp => "hotp",
            OtpKind::Totp | OtpKind::Steam => "totp",
        };
        let mut out = format!("otpauth://{host}/");
        if let Some(issuer) = &self.issuer {
            out.push_str(&enc(issuer));
            out.push(':');
        }
        out.push_str(&enc(&self.account));
        out.push_str("?secret=");
        out.push_str(&self.secret.to_base32());
        if let Some(issuer) = &self.issuer {
            out.push_str("&issuer=");
            out.push_str(&enc(issuer));
        }
        out.push_str(&format!(
            "&algorithm={}&digits={}",
            p.algorithm.as_str(),
            p.digits
        ));
        match p.kind {
            OtpKind::Hotp => out.push_str(&format!("&counter={}", p.counter)),
            OtpKind::Totp => out.push_str(&format!("&period={}", p.period)),
            OtpKind::Steam => out.push_str(&format!("&period={}&encoder=steam", p.period)),
        }
        Zeroizing::new(out)
    }

    /// "Issuer (account)", "Issuer" or "account": how the account is named to a person.
    pub fn display_name(&self) -> String {
        match (&self.issuer, self.account.is_empty()) {
            (Some(i), false) => format!("{i} ({})", self.account),
            (Some(i), true) => i.clone(),
            (None, _) => self.account.clone(),
        }
    }
}

impl FromStr for KeyUri {
    type Err = UriError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        KeyUri::parse(s)
    }
}
