//! `otpauth://` URIs, one per line, after the Key Uri Format
//! (<https://github.com/google/google-authenticator/wiki/Key-Uri-Format>). Blank lines and
//! lines starting with `#` are ignored; a line that is not a usable URI is reported by number.
//! Unknown URI parameters (Ente's `codeDisplay`, icons, colours) are ignored by the parser.

use zeroize::Zeroizing;

use crate::{check_count, starts_with_ci, text, Account, FormatError, ImportReport};

pub(crate) fn import(input: &[u8]) -> Result<ImportReport, FormatError> {
    let mut report = ImportReport::default();
    read_lines(text("the file", input)?, &mut report)?;
    Ok(report)
}

/// Reads URI lines into `report`. Shared with the Ente reader.
pub(crate) fn read_lines(text: &str, report: &mut ImportReport) -> Result<(), FormatError> {
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        check_count(report.accounts.len() + report.unusable.len() + 1)?;
        let name = format!("line {}", i + 1);
        if starts_with_ci(line, "otpauth-migration:") {
            report.push_unusable(
                name,
                "a Google Authenticator migration URI: import it with --format google-migration",
            );
            continue;
        }
        match mamori_otp::KeyUri::parse(line) {
            Ok(uri) => report.accounts.push(Account::new(uri)),
            Err(e) => report.push_unusable(name, e.to_string()),
        }
    }
    Ok(())
}

/// Writes one `otpauth://` URI per line (notes, tags and favourite marks are not carried).
/// The text contains every secret and is wiped when dropped.
pub fn export_otpauth(accounts: &[Account]) -> Zeroizing<String> {
    // Sized exactly up front so that no reallocation leaves a copy of a secret behind.
    let uris: Vec<Zeroizing<String>> = accounts.iter().map(|a| a.uri.to_uri()).collect();
    let mut out = Zeroizing::new(String::with_capacity(
        uris.iter().map(|u| u.len() + 1).sum(),
    ));
    for uri in &uris {
        out.push_str(uri);
        out.push('\n');
    }
    out
}
