//! The simple token CSV: `serial,secret_hex,type,digits,period_or_counter[,algorithm]`.
//!
//! - One token per line; fields are separated by commas and trimmed; there is no quoting
//!   (serials and hex secrets never contain commas).
//! - Blank lines and lines whose first non-blank character is `#` are ignored.
//! - The first remaining line is a header, and skipped, when its first field is `serial`.
//! - `type` is `hotp` or `totp`; `digits` is 6 to 10; `period_or_counter` is the TOTP period
//!   in seconds (at least 1) or the HOTP counter of the next code. Empty `digits` means 6,
//!   an empty `period_or_counter` means 30 s or counter 0.
//! - An optional sixth field names the hash: `SHA1` (the default), `SHA256` or `SHA512`.

use std::collections::HashMap;

use mamori_otp::{Algorithm, OtpKind, OtpParams, Secret};
use zeroize::Zeroizing;

use crate::error::{Location, PskcError};
use crate::{check_serial, Token, MAX_INPUT_BYTES, MAX_SECRET_BYTES, MAX_TOKENS};

/// Parses the token CSV and returns every token in it, or an error (with the line number and
/// the column at fault) and no tokens.
pub fn parse_csv(text: &[u8]) -> Result<Vec<Token>, PskcError> {
    if text.len() > MAX_INPUT_BYTES {
        return Err(PskcError::TooLarge {
            size: text.len(),
            limit: MAX_INPUT_BYTES,
        });
    }
    let bytes = text
        .strip_prefix(b"\xEF\xBB\xBF".as_slice())
        .unwrap_or(text);
    let text = std::str::from_utf8(bytes).map_err(|e| PskcError::NotUtf8 {
        location: Location::Line(
            1 + bytes
                .get(..e.valid_up_to())
                .map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count()),
        ),
    })?;

    let mut tokens = Vec::new();
    let mut serials: HashMap<String, usize> = HashMap::new();
    let mut seen_content = false;
    for (index, raw) in text.split('\n').enumerate() {
        let line = index + 1;
        let content = raw.strip_suffix('\r').unwrap_or(raw).trim();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = content.split(',').map(str::trim).collect();
        let first_content = !seen_content;
        seen_content = true;
        if first_content
            && fields
                .first()
                .is_some_and(|f| f.eq_ignore_ascii_case("serial"))
        {
            continue;
        }
        if tokens.len() >= MAX_TOKENS {
            return Err(PskcError::TooManyTokens { limit: MAX_TOKENS });
        }
        let token = parse_row(&fields, line)?;
        if let Some(&first) = serials.get(&token.serial) {
            return Err(PskcError::DuplicateSerial {
                serial: token.serial.clone(),
                first: Location::Line(first),
                second: Location::Line(line),
            });
        }
        serials.insert(token.serial.clone(), line);
        tokens.push(token);
    }
    if tokens.is_empty() {
        return Err(PskcError::NoTokens);
    }
    Ok(tokens)
}

fn parse_row(fields: &[&str], line: usize) -> Result<Token, PskcError> {
    let bad = |field: &'static str, reason: String| PskcError::CsvLine {
        line,
        field,
        reason,
    };
    let [serial, secret_hex, kind, digits, moving, rest @ ..] = fields else {
        return Err(bad(
            "row",
            format!(
                "has {} fields; expected serial,secret_hex,type,digits,period_or_counter",
                fields.len()
            ),
        ));
    };
    if rest.len() > 1 {
        return Err(bad(
            "row",
            format!(
                "has {} fields; expected 5 (serial,secret_hex,type,digits,period_or_counter) or 6 (…,algorithm)",
                fields.len()
            ),
        ));
    }

    check_serial(serial).map_err(|reason| bad("serial", reason))?;
    let secret = parse_hex_secret(secret_hex).map_err(|reason| bad("secret_hex", reason.into()))?;

    let kind = match kind.to_ascii_lowercase().as_str() {
        "hotp" => OtpKind::Hotp,
        "totp" => OtpKind::Totp,
        _ => return Err(bad("type", format!("{kind:?} is not hotp or totp"))),
    };
    let digits: u32 = if digits.is_empty() {
        6
    } else {
        match digits.parse::<u32>() {
            Ok(d) if (6..=10).contains(&d) => d,
            Ok(d) => return Err(bad("digits", format!("{d} is out of range (6 to 10)"))),
            Err(_) => return Err(bad("digits", format!("{digits:?} is not a number"))),
        }
    };
    let moving: u64 = if moving.is_empty() {
        if kind == OtpKind::Totp {
            30
        } else {
            0
        }
    } else {
        moving.parse::<u64>().map_err(|_| {
            bad(
                "period_or_counter",
                format!("{moving:?} is not a whole number"),
            )
        })?
    };
    let algorithm = match rest.first().copied() {
        None | Some("") => Algorithm::Sha1,
        Some(a) => a
            .parse::<Algorithm>()
            .map_err(|_| bad("algorithm", format!("{a:?} is not SHA1, SHA256 or SHA512")))?,
    };
    let params = match kind {
        OtpKind::Totp => {
            if moving == 0 || moving > 86_400 {
                return Err(bad(
                    "period_or_counter",
                    format!("a TOTP period of {moving} seconds is out of range (1 to 86400)"),
                ));
            }
            OtpParams {
                kind,
                algorithm,
                digits,
                period: moving,
                counter: 0,
            }
        }
        _ => OtpParams {
            kind,
            algorithm,
            digits,
            period: 30,
            counter: moving,
        },
    };
    let params = params.validated().map_err(|e| bad("row", e.to_string()))?;
    Ok(Token {
        serial: (*serial).to_string(),
        manufacturer: None,
        model: None,
        issuer: None,
        key_id: None,
        secret,
        params,
        time_drift: None,
        time: None,
    })
}

/// Hex as administrators write it (any case; spaces or colons between bytes), with reasons
/// that never repeat the input.
fn parse_hex_secret(text: &str) -> Result<Secret, &'static str> {
    let digits: Zeroizing<String> = Zeroizing::new(
        text.chars()
            .filter(|c| !c.is_whitespace() && *c != ':')
            .collect(),
    );
    if digits.is_empty() {
        return Err("is empty");
    }
    if !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err("contains a character that is not a hexadecimal digit");
    }
    if digits.len() % 2 == 1 {
        return Err("has an odd number of hexadecimal digits");
    }
    if digits.len() / 2 > MAX_SECRET_BYTES {
        return Err("is longer than the 256-byte limit");
    }
    Secret::from_hex(&digits).map_err(|_| "is not valid hexadecimal")
}
