//! Reading a hardware-token seed file for `admin import-tokens` (#16: file I/O belongs to the
//! edge; the domain's `import_tokens` takes the bytes).

use zeroize::Zeroizing;

use crate::domain::tokens;
use crate::error::{Error, Result};

/// Reads a seed file and the decryption the administrator chose (`--psk HEX` or
/// `--password-file F`, whose first line is the password) for the admin command line. Refuses
/// files larger than the parser's limit before reading them.
pub fn read_token_file(
    path: &std::path::Path,
    psk: Option<String>,
    password_file: Option<std::path::PathBuf>,
    format: Option<String>,
) -> Result<(Vec<u8>, tokens::TokenFileFormat, tokens::TokenFileKey)> {
    let read_err = |p: &std::path::Path, e: std::io::Error| {
        Error::InvalidInput(format!("cannot read {}: {e}", p.display()))
    };
    let len = std::fs::metadata(path)
        .map_err(|e| read_err(path, e))?
        .len();
    if len > mamori_pskc::MAX_INPUT_BYTES as u64 {
        return Err(tokens::refused(&mamori_pskc::PskcError::TooLarge {
            size: usize::try_from(len).unwrap_or(usize::MAX),
            limit: mamori_pskc::MAX_INPUT_BYTES,
        }));
    }
    let bytes = std::fs::read(path).map_err(|e| read_err(path, e))?;
    let format = match format {
        Some(f) => tokens::TokenFileFormat::parse(&f)?,
        None => tokens::TokenFileFormat::sniff(&bytes),
    };
    let key = match (psk, password_file) {
        (Some(_), Some(_)) => {
            return Err(Error::InvalidInput(
                "give either --psk or --password-file, not both".into(),
            ))
        }
        (Some(hex), None) => tokens::TokenFileKey::psk_hex(&Zeroizing::new(hex))?,
        (None, Some(p)) => {
            let text = Zeroizing::new(std::fs::read(&p).map_err(|e| read_err(&p, e))?);
            let line = text.split(|b| *b == b'\n').next().unwrap_or_default();
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() {
                return Err(Error::InvalidInput(format!(
                    "the password file {} is empty",
                    p.display()
                )));
            }
            tokens::TokenFileKey::Password(Zeroizing::new(line.to_vec()))
        }
        (None, None) => tokens::TokenFileKey::None,
    };
    Ok((bytes, format, key))
}
