//! Phone numbers in E.164 (ITU-T E.164: `+`, country code, national number, at most 15
//! digits), the one form stored, shown and handed to the phone gateway. What people type
//! (`090-1234-5678`, `+81 90 1234 5678`, `(03) 1234-5678`) is parsed with libphonenumber's
//! metadata (the `phonenumber` crate); a number without `+` is read in the configured default
//! region (`[phone] default_region`, `MAMORI_PHONE_DEFAULT_REGION`, "JP" unless set). A number
//! that the metadata does not call valid is refused at entry, so nothing unsendable is stored.

use phonenumber::{country, Mode};

use crate::error::{Error, Result};

/// The default region when none is configured.
pub const DEFAULT_REGION: &str = "JP";

/// Longest input looked at: generous for spaces and punctuation, small enough that parsing
/// costs nothing.
const MAX_INPUT: usize = 40;

/// Parses a configured region (ISO 3166-1 alpha-2, e.g. "JP", "US").
pub fn parse_region(region: &str) -> Result<country::Id> {
    region
        .trim()
        .to_ascii_uppercase()
        .parse::<country::Id>()
        .map_err(|_| {
            Error::Config(format!(
                "phone.default_region {region:?} is not a two-letter region code such as \"JP\""
            ))
        })
}

/// `input` as an E.164 number, read in `region` when it has no `+` country code; one clear
/// error when it is not a valid number.
pub fn normalize(input: &str, region: country::Id) -> Result<String> {
    let trimmed = input.trim();
    let refuse = || {
        // The value is what the user typed; it is a phone number, not a secret.
        let shown: String = trimmed.chars().take(MAX_INPUT).collect();
        Error::InvalidPhoneNumber(format!(
            "{shown:?} is not a valid phone number: enter it with its country code \
             (+81 90 1234 5678) or as dialled in {} (090-1234-5678)",
            region.as_ref()
        ))
    };
    if trimmed.is_empty()
        || trimmed.len() > MAX_INPUT
        || !trimmed
            .chars()
            .all(|c| c.is_ascii_digit() || " +-().".contains(c))
    {
        return Err(refuse());
    }
    let number = phonenumber::parse(Some(region), trimmed).map_err(|_| refuse())?;
    if !phonenumber::is_valid(&number) {
        return Err(refuse());
    }
    Ok(number.format().mode(Mode::E164).to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn check(input: &str, region: &str, expected: Option<&str>) {
        let got = normalize(input, parse_region(region).unwrap()).ok();
        assert_eq!(got.as_deref(), expected, "{input:?} in {region}");
    }

    #[test]
    fn national_and_international_forms_become_e164() {
        check("090-1234-5678", "JP", Some("+819012345678"));
        check("09012345678", "JP", Some("+819012345678"));
        check("+81 90 1234 5678", "JP", Some("+819012345678"));
        check("+81-90-1234-5678", "US", Some("+819012345678"));
        check("(03) 1234-5678", "JP", Some("+81312345678"));
        check("(201) 555-0123", "US", Some("+12015550123"));
        check("+44 20 7946 0958", "JP", Some("+442079460958"));
    }

    #[test]
    fn invalid_numbers_are_refused() {
        for bad in [
            "",
            "12",
            "090-1234",
            "abc",
            "+81 90 1234 5678 9999 9999",
            "+999 1234 5678",
            "090-1234-5678; rm",
            "０９０１２３４５６７８",
        ] {
            check(bad, "JP", None);
        }
        let e = normalize("12", parse_region("JP").unwrap()).unwrap_err();
        assert!(matches!(e, Error::InvalidPhoneNumber(_)));
        assert!(e.to_string().contains("+81 90 1234 5678"), "{e}");
    }

    #[test]
    fn regions_are_checked() {
        assert!(parse_region("jp").is_ok());
        assert!(parse_region("XX").is_err());
        assert!(parse_region("Japan").is_err());
    }
}
