//! Google Authenticator's "Transfer accounts" export: `otpauth-migration://offline?data=…`
//! URIs, shown as QR codes, one batch per code (the payload is decoded by
//! [`mamori_otp::migration`], which documents the protobuf). Input is text (one URI per line)
//! or PNG/JPEG images holding one or several codes; an export can span several files, and the
//! batch numbers tell which codes were not scanned.

use std::collections::BTreeSet;

use mamori_otp::{migration, qr, KeyUri};
use zeroize::Zeroizing;

use crate::{
    check_count, check_size, starts_with_ci, text, Account, FormatError, ImportReport, Unusable,
};

/// Reads one or more inputs of a Google Authenticator export. Each input is a PNG or JPEG image
/// (every QR code in it is read) or text with one URI per line (blank lines and `#` comments
/// ignored). Plain `otpauth://` URIs are accepted too (a single-account QR code). Batches seen
/// twice are read once; batches never seen are reported in [`ImportReport::notes`].
pub fn import_google_migration(inputs: &[&[u8]]) -> Result<ImportReport, FormatError> {
    let mut report = ImportReport::default();
    let mut batches: Vec<migration::MigrationBatch> = Vec::new();
    let mut seen: BTreeSet<(i32, i32)> = BTreeSet::new();
    let many = inputs.len() > 1;
    for (n, input) in inputs.iter().enumerate() {
        check_size(input)?;
        let input_name = format!("input {}", n + 1);
        let prefix = if many {
            format!("{input_name}, ")
        } else {
            String::new()
        };
        let lines: Vec<(String, String)> = if is_image(input) {
            let codes = qr::decode(input)
                .map_err(|e| FormatError::damaged(format!("{input_name}: {e}")))?;
            codes
                .into_iter()
                .enumerate()
                .map(|(i, c)| (format!("{prefix}QR code {}", i + 1), c))
                .collect()
        } else {
            text(&input_name, input)?
                .lines()
                .enumerate()
                .filter(|(_, l)| {
                    let l = l.trim();
                    !l.is_empty() && !l.starts_with('#')
                })
                .map(|(i, l)| (format!("{prefix}line {}", i + 1), l.trim().to_string()))
                .collect()
        };
        for (place, line) in lines {
            let line = Zeroizing::new(line);
            if starts_with_ci(&line, "otpauth-migration:") {
                match migration::decode_uri(&line) {
                    Ok(batch) => {
                        if !seen.insert((batch.batch_id, batch.batch_index)) {
                            report.notes.push(format!(
                                "{place}: {} was given more than once; read once",
                                describe_batch(&batch)
                            ));
                            continue;
                        }
                        check_count(
                            report.accounts.len() + report.unusable.len() + batch.accounts.len(),
                        )?;
                        report
                            .accounts
                            .extend(batch.accounts.iter().cloned().map(Account::new));
                        for s in &batch.skipped {
                            report.unusable.push(Unusable {
                                name: s.name.clone(),
                                reason: s.reason.clone(),
                            });
                        }
                        batches.push(batch);
                    }
                    Err(e) => report.push_unusable(place, e.to_string()),
                }
            } else if starts_with_ci(&line, "otpauth:") {
                check_count(report.accounts.len() + report.unusable.len() + 1)?;
                match KeyUri::parse(&line) {
                    Ok(uri) => report.accounts.push(Account::new(uri)),
                    Err(e) => report.push_unusable(place, e.to_string()),
                }
            } else {
                report.push_unusable(place, "not an otpauth-migration:// or otpauth:// URI");
            }
        }
    }
    for (id, size, missing) in migration::missing_batches(&batches) {
        for index in missing {
            report.notes.push(format!(
                "batch {} of {size} of export {id} is missing: scan it too, or those accounts are not imported",
                index + 1
            ));
        }
    }
    Ok(report)
}

fn describe_batch(b: &migration::MigrationBatch) -> String {
    format!(
        "batch {} of {} of export {}",
        b.batch_index + 1,
        b.batch_size.max(1),
        b.batch_id
    )
}

fn is_image(input: &[u8]) -> bool {
    input.starts_with(b"\x89PNG\r\n\x1a\n") || input.starts_with(&[0xFF, 0xD8, 0xFF])
}

/// A Google Authenticator export: one URI per batch and the same batches as PNG QR codes.
/// `Debug` shows only counts: the URIs and images contain every secret.
pub struct GoogleExport {
    /// One `otpauth-migration://` URI per batch (for `--terminal` display); wiped on drop.
    pub uris: Vec<Zeroizing<String>>,
    /// One PNG image per batch, in order; wiped on drop.
    pub images: Vec<Zeroizing<Vec<u8>>>,
    /// Accounts the format cannot carry (Steam, periods other than 30 s, digits other than
    /// 6 or 8), with the reason.
    pub skipped: Vec<Unusable>,
}

impl std::fmt::Debug for GoogleExport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GoogleExport")
            .field("uris", &format_args!("[{} redacted]", self.uris.len()))
            .field("images", &format_args!("[{} redacted]", self.images.len()))
            .field("skipped", &self.skipped)
            .finish()
    }
}

/// Encodes accounts as Google Authenticator migration batches and renders each as a PNG QR
/// code with `scale` pixels per module. `batch_id` identifies the export (pass a random value).
/// Notes, tags and favourite marks are not carried by the format.
pub fn export_google_migration(
    accounts: &[Account],
    batch_id: i32,
    scale: u32,
) -> Result<GoogleExport, FormatError> {
    let uris: Vec<KeyUri> = accounts.iter().map(|a| a.uri.clone()).collect();
    let encoded = migration::encode(&uris, batch_id);
    let skipped: Vec<Unusable> = encoded
        .skipped
        .iter()
        .map(|(i, reason)| Unusable {
            name: uris.get(*i).map(KeyUri::display_name).unwrap_or_default(),
            reason: (*reason).to_string(),
        })
        .collect();
    // With nothing representable, `encode` still returns one empty batch: export nothing.
    let out_uris = if skipped.len() == accounts.len() {
        Vec::new()
    } else {
        encoded.uris
    };
    let images = out_uris
        .iter()
        .map(|u| {
            qr::to_png(u, scale)
                .map(Zeroizing::new)
                .map_err(|e| FormatError::Export(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(GoogleExport {
        uris: out_uris,
        images,
        skipped,
    })
}
