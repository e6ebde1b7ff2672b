use std::fmt;
use std::str::FromStr;

use crate::OtpError;

/// The HMAC hash function (RFC 6238 section 1.2 allows SHA-1, SHA-256 and SHA-512).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Algorithm {
    /// HMAC-SHA-1, the default and what every phone app reads.
    #[default]
    Sha1,
    /// HMAC-SHA-256.
    Sha256,
    /// HMAC-SHA-512.
    Sha512,
}

impl Algorithm {
    /// The canonical name used in key URIs (`SHA1`, `SHA256`, `SHA512`).
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha1 => "SHA1",
            Algorithm::Sha256 => "SHA256",
            Algorithm::Sha512 => "SHA512",
        }
    }

    /// Every supported algorithm, in order.
    pub const ALL: [Algorithm; 3] = [Algorithm::Sha1, Algorithm::Sha256, Algorithm::Sha512];
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Algorithm {
    type Err = OtpError;

    /// Lenient: any case, with or without a dash or `HMAC-` prefix (`sha-256`, `HmacSHA512`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let norm: String = s
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_uppercase();
        let norm = norm.strip_prefix("HMAC").unwrap_or(&norm);
        match norm {
            "SHA1" => Ok(Algorithm::Sha1),
            "SHA256" => Ok(Algorithm::Sha256),
            "SHA512" => Ok(Algorithm::Sha512),
            _ => Err(OtpError::UnsupportedAlgorithm(s.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenient_names() {
        for (s, a) in [
            ("sha1", Algorithm::Sha1),
            ("SHA-1", Algorithm::Sha1),
            ("HmacSHA256", Algorithm::Sha256),
            ("sha512", Algorithm::Sha512),
        ] {
            assert_eq!(s.parse::<Algorithm>(), Ok(a), "{s}");
        }
        assert!("MD5".parse::<Algorithm>().is_err());
        assert!("".parse::<Algorithm>().is_err());
    }
}
