//! `mamori otp`: one code from a URI or a secret, with no vault (like `oathtool`).

use std::io::Read;

use anyhow::{bail, Context};
use mamori_otp::{Algorithm, Generator, KeyUri, OtpKind, OtpParams, Secret};
use zeroize::Zeroizing;

use crate::cli::{OtpArgs, SecretEncoding, TypeArg};

/// Reads a value given as "-" from standard input (first line, trimmed).
fn value_or_stdin(value: &str, what: &str) -> anyhow::Result<Zeroizing<String>> {
    if value != "-" {
        return Ok(Zeroizing::new(value.to_string()));
    }
    let mut buf = Zeroizing::new(String::new());
    std::io::stdin()
        .take(64 * 1024)
        .read_to_string(&mut buf)
        .with_context(|| format!("could not read the {what} from standard input"))?;
    let line = buf.lines().next().unwrap_or("").trim().to_string();
    if line.is_empty() {
        bail!("standard input is empty: expected the {what}");
    }
    Ok(Zeroizing::new(line))
}

pub fn run(args: OtpArgs) -> anyhow::Result<()> {
    let (secret, mut params) = if let Some(uri) = &args.uri {
        let uri = value_or_stdin(uri, "URI")?;
        let parsed = KeyUri::parse(&uri).context("invalid URI")?;
        (parsed.secret.clone(), parsed.params)
    } else if let Some(raw) = &args.secret {
        let raw = value_or_stdin(raw, "secret")?;
        let secret = match args.encoding {
            SecretEncoding::Base32 => Secret::from_base32(&raw),
            SecretEncoding::Hex => Secret::from_hex(&raw),
            SecretEncoding::Base64 => Secret::from_base64(&raw),
        }
        .context("invalid --secret")?;
        let kind = match args.otp_type.unwrap_or(TypeArg::Totp) {
            TypeArg::Totp => OtpKind::Totp,
            TypeArg::Hotp => OtpKind::Hotp,
            TypeArg::Steam => OtpKind::Steam,
        };
        let algorithm = match &args.algorithm {
            Some(a) => a.parse::<Algorithm>().context("invalid --algorithm")?,
            None => Algorithm::Sha1,
        };
        let params = OtpParams {
            kind,
            algorithm,
            digits: args.digits.unwrap_or(6),
            period: args.period.unwrap_or(30),
            counter: 0,
        };
        if kind == OtpKind::Steam
            && (args.digits.is_some() || args.period.is_some() || args.algorithm.is_some())
        {
            bail!("Steam codes always use SHA1, 5 characters and 30 seconds: drop --algorithm, --digits and --period");
        }
        (secret, params)
    } else {
        bail!("give an otpauth:// URI or --secret");
    };

    if let Some(c) = args.counter {
        if params.kind != OtpKind::Hotp {
            bail!(
                "--counter applies to HOTP codes only (this is {})",
                params.kind
            );
        }
        params.counter = c;
    }
    let generator = Generator::new(&secret, params).context("invalid parameters")?;
    let code = match params.kind {
        OtpKind::Hotp => {
            if args.at.is_some() {
                bail!("--at applies to time-based codes; HOTP codes take --counter");
            }
            generator.at_counter(params.counter)
        }
        OtpKind::Totp | OtpKind::Steam => {
            let at = match args.at {
                Some(t) if t < 0 => bail!("--at {t} is before 1970; give a Unix time in seconds"),
                Some(t) => t.unsigned_abs(),
                None => super::now_unix()?,
            };
            generator.at_time(at)
        }
    };
    println!("{code}");
    Ok(())
}
