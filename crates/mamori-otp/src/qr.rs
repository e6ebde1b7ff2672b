//! QR codes: encode text as SVG, PNG or terminal art; decode every QR code in a PNG or JPEG.
//!
//! Functions take and return bytes and strings; reading or writing files is the caller's job.

use std::io::Cursor;

use image::{ImageFormat, Luma};
use qrcode::render::{svg, unicode};
use qrcode::{EcLevel, QrCode};
use thiserror::Error;

/// Errors from QR encoding and decoding.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum QrError {
    /// The text does not fit in the largest QR code.
    #[error("the text is too long for a QR code ({0} bytes)")]
    TooLong(usize),
    /// The bytes are not a PNG or JPEG image this decoder can read.
    #[error("not a readable PNG or JPEG image: {0}")]
    Image(String),
    /// The image is larger than [`MAX_IMAGE_PIXELS`].
    #[error("the image is too large ({0} pixels); crop it to the QR code")]
    ImageTooLarge(u64),
    /// The image contains no QR code that could be read.
    #[error("no QR code found in the image")]
    NoCode,
    /// Writing the PNG failed.
    #[error("could not write the PNG image: {0}")]
    Png(String),
}

/// Largest image accepted for decoding, in pixels (a 6000×6000 scan or a tall phone screenshot
/// fits; a decompression bomb does not).
pub const MAX_IMAGE_PIXELS: u64 = 40_000_000;

fn code_for(text: &str) -> Result<QrCode, QrError> {
    // Medium error correction: survives a scratched screen or a bit of glare, and still holds
    // the longest key URIs and migration batches in a scannable version.
    QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M)
        .or_else(|_| QrCode::with_error_correction_level(text.as_bytes(), EcLevel::L))
        .map_err(|_| QrError::TooLong(text.len()))
}

/// Encodes `text` as a standalone SVG document.
pub fn to_svg(text: &str) -> Result<String, QrError> {
    let code = code_for(text)?;
    Ok(code
        .render::<svg::Color<'_>>()
        .min_dimensions(256, 256)
        .quiet_zone(true)
        .build())
}

/// Encodes `text` as a PNG image with `scale` pixels per module (at least 1) and a quiet zone.
pub fn to_png(text: &str, scale: u32) -> Result<Vec<u8>, QrError> {
    let code = code_for(text)?;
    let scale = scale.max(1);
    let img = code
        .render::<Luma<u8>>()
        .module_dimensions(scale, scale)
        .quiet_zone(true)
        .build();
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, ImageFormat::Png)
        .map_err(|e| QrError::Png(e.to_string()))?;
    Ok(out.into_inner())
}

/// Encodes `text` for a terminal with Unicode half blocks (two modules per character cell),
/// dark modules on a light background so that phones can scan it from a dark-themed terminal.
pub fn to_terminal(text: &str) -> Result<String, QrError> {
    let code = code_for(text)?;
    Ok(code
        .render::<unicode::Dense1x2>()
        .dark_color(unicode::Dense1x2::Light)
        .light_color(unicode::Dense1x2::Dark)
        .quiet_zone(true)
        .build())
}

/// Decodes every QR code found in a PNG or JPEG image, in the order found.
pub fn decode(image_bytes: &[u8]) -> Result<Vec<String>, QrError> {
    let mut reader = image::ImageReader::new(Cursor::new(image_bytes));
    reader = reader
        .with_guessed_format()
        .map_err(|e| QrError::Image(e.to_string()))?;
    match reader.format() {
        Some(ImageFormat::Png) | Some(ImageFormat::Jpeg) => {}
        _ => return Err(QrError::Image("unknown format".into())),
    }
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(20_000);
    limits.max_image_height = Some(20_000);
    limits.max_alloc = Some(512 * 1024 * 1024);
    reader.limits(limits);
    let (w, h) = reader
        .into_dimensions()
        .map_err(|e| QrError::Image(e.to_string()))?;
    let pixels = u64::from(w) * u64::from(h);
    if pixels > MAX_IMAGE_PIXELS {
        return Err(QrError::ImageTooLarge(pixels));
    }
    let img = image::load_from_memory(image_bytes)
        .map_err(|e| QrError::Image(e.to_string()))?
        .to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(img);
    let mut found = Vec::new();
    for grid in prepared.detect_grids() {
        if let Ok((_meta, content)) = grid.decode() {
            if !found.contains(&content) {
                found.push(content);
            }
        }
    }
    if found.is_empty() {
        return Err(QrError::NoCode);
    }
    Ok(found)
}
