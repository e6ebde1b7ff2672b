//! A printable paper backup: one self-contained HTML page listing every account with its
//! name, parameters, secret (Base32, in groups of four) and QR code as inline SVG. No scripts,
//! no external resources (a Content-Security-Policy forbids loading any), print-friendly CSS.

use mamori_otp::{qr, OtpKind};
use zeroize::Zeroizing;

use crate::Account;

const STYLE: &str = "
body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #000; background: #fff; }
h1 { font-size: 1.4rem; margin: 0 0 .3rem; }
p.warn { font-weight: bold; border: 2px solid #000; padding: .5rem; }
.account { display: flex; gap: 1rem; align-items: flex-start; border: 1px solid #888;
  padding: .6rem; margin: .6rem 0; break-inside: avoid; page-break-inside: avoid; }
.qr svg { width: 42mm; height: 42mm; }
.name { font-size: 1.1rem; font-weight: bold; }
.secret { font-family: ui-monospace, monospace; font-size: 1rem; word-break: break-all; }
.params, .note, .tags { font-size: .85rem; }
@media print { body { margin: 0; } .account { border-color: #000; } }
@page { margin: 12mm; }
";

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Writes the paper-backup page. `title` heads the page (e.g. "mamori backup, 2026-11-28";
/// the caller supplies the date, as this crate reads no clock). The page contains every secret
/// and is wiped when dropped.
pub fn export_html(accounts: &[Account], title: &str) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(4096 + accounts.len() * 40_000));
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n");
    out.push_str("<meta name=\"referrer\" content=\"no-referrer\">\n");
    out.push_str(&format!(
        "<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        escape(title)
    ));
    out.push_str(&format!("<h1>{}</h1>\n", escape(title)));
    out.push_str(&format!(
        "<p class=\"warn\">This page contains the secret keys of {} account(s). Anyone who sees it can generate your codes: print it, store it safely, and delete the file.</p>\n",
        accounts.len()
    ));
    for a in accounts {
        let p = &a.uri.params;
        let uri = a.uri.to_uri();
        let secret = a.uri.secret.to_base32();
        let grouped: Zeroizing<String> = Zeroizing::new(
            secret
                .as_bytes()
                .chunks(4)
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect::<Vec<_>>()
                .join(" "),
        );
        let params = match p.kind {
            OtpKind::Totp => format!("TOTP, {}, {} digits, {} s", p.algorithm, p.digits, p.period),
            OtpKind::Hotp => format!(
                "HOTP, {}, {} digits, next counter {}",
                p.algorithm, p.digits, p.counter
            ),
            OtpKind::Steam => "Steam Guard".to_string(),
        };
        out.push_str("<section class=\"account\">\n<div class=\"qr\">");
        match qr::to_svg(&uri) {
            // The XML declaration is not valid inside HTML; the <svg> element is.
            Ok(svg) => {
                let svg = Zeroizing::new(svg);
                let start = svg.find("<svg").unwrap_or(0);
                out.push_str(svg.get(start..).unwrap_or(""));
            }
            Err(_) => out.push_str("(too long for a QR code)"),
        }
        out.push_str("</div>\n<div>\n");
        out.push_str(&format!(
            "<div class=\"name\">{}</div>\n",
            escape(&a.display_name())
        ));
        if let Some(issuer) = &a.uri.issuer {
            out.push_str(&format!(
                "<div class=\"params\">Issuer: {}</div>\n",
                escape(issuer)
            ));
        }
        out.push_str(&format!(
            "<div class=\"params\">Account: {}</div>\n",
            escape(&a.uri.account)
        ));
        out.push_str(&format!(
            "<div class=\"params\">{}</div>\n",
            escape(&params)
        ));
        out.push_str(&format!(
            "<div class=\"secret\">{}</div>\n",
            escape(&grouped)
        ));
        if !a.tags.is_empty() {
            out.push_str(&format!(
                "<div class=\"tags\">Tags: {}</div>\n",
                escape(&a.tags.join(", "))
            ));
        }
        if let Some(note) = &a.note {
            out.push_str(&format!(
                "<div class=\"note\">Note: {}</div>\n",
                escape(note)
            ));
        }
        out.push_str("</div>\n</section>\n");
    }
    out.push_str("</body>\n</html>\n");
    out
}
