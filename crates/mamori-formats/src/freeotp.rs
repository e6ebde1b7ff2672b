//! FreeOTP+ JSON exports ("Export JSON" in FreeOTP+, <https://github.com/helloworld1/FreeOTPPlus>):
//!
//! ```text
//! { "tokenOrder": [ "issuer:label", … ],
//!   "tokens": [ { "algo": "SHA1", "counter": 0, "digits": 6, "issuerExt": "…", "issuerInt": "…",
//!                 "label": "…", "period": 30, "secret": [ signed bytes ], "type": "TOTP" } ] }
//! ```
//!
//! The secret is the raw key as Java signed bytes (-128…127). `issuerAlt`/`labelAlt`, when
//! present, are the names the user edited and win over `issuerExt`/`issuerInt` and `label`.
//! FreeOTP's stored HOTP `counter` is one behind the `otpauth://` convention: its `Token.java`
//! reads a URI's counter as `counter - 1` and writes `counter + 1` back out (the sample FreeOTP+
//! export in Aegis's importer tests shows the same offset against the same accounts' Aegis
//! export), so the next code's counter is `counter + 1`. FreeOTP marks Steam
//! tokens as TOTP with issuer "Steam" and 5 digits; those are read as Steam. Tokens are
//! returned in `tokenOrder` order where it names them.

use serde::Deserialize;
use serde_json::value::RawValue;
use zeroize::Zeroizing;

use crate::account::{build, describe, params};
use crate::error::json_error;
use crate::{check_count, strip_bom, Account, FormatError, ImportReport};

#[derive(Deserialize)]
struct Export<'a> {
    #[serde(rename = "tokenOrder", default)]
    token_order: Vec<String>,
    #[serde(borrow)]
    tokens: Vec<&'a RawValue>,
}

#[derive(Deserialize)]
struct Token {
    algo: Option<String>,
    counter: Option<u64>,
    digits: Option<u32>,
    #[serde(rename = "issuerExt")]
    issuer_ext: Option<String>,
    #[serde(rename = "issuerInt")]
    issuer_int: Option<String>,
    #[serde(rename = "issuerAlt")]
    issuer_alt: Option<String>,
    #[serde(default)]
    label: String,
    #[serde(rename = "labelAlt")]
    label_alt: Option<String>,
    period: Option<u64>,
    secret: Zeroizing<Vec<i64>>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

pub(crate) fn import(input: &[u8]) -> Result<ImportReport, FormatError> {
    let export: Export<'_> =
        serde_json::from_slice(strip_bom(input)).map_err(|e| json_error("the export", &e))?;
    check_count(export.tokens.len())?;
    let mut report = ImportReport::default();
    let mut keyed: Vec<(Option<usize>, Account)> = Vec::new();
    for (i, raw) in export.tokens.iter().enumerate() {
        let token: Token = match serde_json::from_str(raw.get()) {
            Ok(t) => t,
            Err(e) => {
                let reason = match json_error("the token", &e) {
                    FormatError::Damaged { what } => what,
                    other => other.to_string(),
                };
                report.push_unusable(format!("token {}", i + 1), reason);
                continue;
            }
        };
        let issuer = non_empty(&token.issuer_alt)
            .or(non_empty(&token.issuer_ext))
            .or(non_empty(&token.issuer_int));
        let label = non_empty(&token.label_alt).unwrap_or(token.label.trim());
        let name = describe(issuer, label, || format!("token {}", i + 1));
        let mut kind = token.kind.clone().unwrap_or_else(|| "TOTP".into());
        if kind.eq_ignore_ascii_case("totp")
            && token.digits == Some(5)
            && issuer.is_some_and(|i| i.eq_ignore_ascii_case("steam"))
        {
            kind = "steam".into();
        }
        let counter = token.counter.map(|c| c.saturating_add(1));
        let result = params(
            &kind,
            token.algo.as_deref(),
            token.digits,
            token.period,
            counter,
        )
        .and_then(|p| {
            let bytes: Option<Vec<u8>> = token
                .secret
                .iter()
                .map(|b| i8::try_from(*b).ok().map(|b| b.to_le_bytes()[0]))
                .collect();
            let bytes = Zeroizing::new(bytes.ok_or("the secret has a value outside -128..127")?);
            mamori_otp::Secret::from_bytes(bytes.to_vec())
                .map(|s| (s, p))
                .map_err(|e| e.to_string())
        });
        match result {
            Ok((secret, p)) => {
                // tokenOrder names tokens "issuerInt:label" (or just the label).
                let key_with = |iss: Option<&String>| match iss
                    .map(|s| s.as_str())
                    .filter(|s| !s.is_empty())
                {
                    Some(iss) => format!("{iss}:{}", token.label),
                    None => token.label.clone(),
                };
                let position = export.token_order.iter().position(|k| {
                    *k == key_with(token.issuer_int.as_ref())
                        || *k == key_with(token.issuer_ext.as_ref())
                });
                keyed.push((position, Account::new(build(issuer, label, secret, p))));
            }
            Err(reason) => report.push_unusable(name, reason),
        }
    }
    // Stable: tokens that tokenOrder does not name keep their file order, after the named ones.
    keyed.sort_by_key(|(pos, _)| pos.unwrap_or(usize::MAX));
    report.accounts = keyed.into_iter().map(|(_, a)| a).collect();
    Ok(report)
}
