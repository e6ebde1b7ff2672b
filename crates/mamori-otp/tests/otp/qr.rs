//! QR round trips through real PNG and JPEG bytes, and images with several codes.

use image::{GrayImage, ImageFormat, Luma};
use mamori_otp::qr::{decode, to_png, to_svg, to_terminal, QrError};

const URI: &str = "otpauth://totp/ACME%20Co:john@example.com?secret=JBSWY3DPEHPK3PXP&issuer=ACME%20Co&algorithm=SHA1&digits=6&period=30";

#[test]
fn png_round_trip() {
    let png = to_png(URI, 4).expect("encodes");
    assert_eq!(&png[1..4], b"PNG");
    assert_eq!(decode(&png).expect("decodes"), vec![URI.to_string()]);
}

#[test]
fn jpeg_round_trip() {
    let png = to_png(URI, 6).expect("encodes");
    let img = image::load_from_memory(&png).expect("png");
    let mut jpeg = std::io::Cursor::new(Vec::new());
    img.write_to(&mut jpeg, ImageFormat::Jpeg).expect("jpeg");
    assert_eq!(
        decode(jpeg.get_ref()).expect("decodes"),
        vec![URI.to_string()]
    );
}

/// A "phone screenshot": a large light canvas with two codes placed apart, like Google
/// Authenticator's export screen scrolled to show two.
#[test]
fn image_with_two_codes() {
    let second = "otpauth-migration://offline?data=CjEKCkhlbGxvId6tvu8SGGpvaG4uZG9lQGV4YW1wbGUuY29tGgRBQ01FIAEoATACEAEYASAAKAE%3D";
    let a = image::load_from_memory(&to_png(URI, 4).expect("a"))
        .expect("a")
        .to_luma8();
    let b = image::load_from_memory(&to_png(second, 4).expect("b"))
        .expect("b")
        .to_luma8();
    let mut canvas = GrayImage::from_pixel(
        a.width() + b.width() + 200,
        a.height().max(b.height()) + 300,
        Luma([255]),
    );
    image::imageops::overlay(&mut canvas, &a, 40, 100);
    image::imageops::overlay(&mut canvas, &b, i64::from(a.width()) + 160, 150);
    let mut png = std::io::Cursor::new(Vec::new());
    canvas.write_to(&mut png, ImageFormat::Png).expect("png");
    let mut found = decode(png.get_ref()).expect("decodes");
    found.sort();
    let mut want = vec![URI.to_string(), second.to_string()];
    want.sort();
    assert_eq!(found, want);
}

#[test]
fn no_code_and_not_an_image() {
    let blank = GrayImage::from_pixel(200, 200, Luma([255]));
    let mut png = std::io::Cursor::new(Vec::new());
    blank.write_to(&mut png, ImageFormat::Png).expect("png");
    assert_eq!(decode(png.get_ref()), Err(QrError::NoCode));
    assert!(matches!(
        decode(b"GIF89a not really"),
        Err(QrError::Image(_))
    ));
    assert!(matches!(decode(b""), Err(QrError::Image(_))));
    // A truncated PNG.
    let good = to_png(URI, 2).expect("png");
    assert!(matches!(
        decode(&good[..good.len() / 2]),
        Err(QrError::Image(_))
    ));
}

#[test]
fn svg_and_terminal_renderings() {
    let svg = to_svg(URI).expect("svg");
    assert!(
        svg.starts_with("<?xml") && svg.contains("<svg"),
        "{}",
        &svg[..60]
    );
    let term = to_terminal(URI).expect("terminal");
    assert!(term.lines().count() > 10);
    assert!(term.contains('▀') || term.contains('▄') || term.contains('█'));
    let too_long = "x".repeat(5000);
    assert_eq!(to_png(&too_long, 1), Err(QrError::TooLong(5000)));
}
