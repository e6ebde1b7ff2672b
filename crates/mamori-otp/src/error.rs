use thiserror::Error;

/// Errors about secrets, parameters and codes. Messages never contain secret material.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum OtpError {
    /// The secret decoded to zero bytes.
    #[error("the secret is empty")]
    EmptySecret,
    /// The secret is not valid Base32 (after removing spaces, dashes and padding).
    #[error("the secret is not valid Base32: {0}")]
    InvalidBase32(String),
    /// The secret is not valid hexadecimal.
    #[error("the secret is not valid hexadecimal: {0}")]
    InvalidHex(String),
    /// The secret is not valid Base64.
    #[error("the secret is not valid Base64: {0}")]
    InvalidBase64(String),
    /// Digits outside 6..=10 (Steam codes always have 5 characters).
    #[error("digits must be between 6 and 10, not {0}")]
    InvalidDigits(u32),
    /// A period of zero seconds.
    #[error("the period must be at least 1 second, not {0}")]
    InvalidPeriod(u64),
    /// An algorithm name that is not SHA1, SHA256 or SHA512.
    #[error("unsupported algorithm {0:?}: use SHA1, SHA256 or SHA512")]
    UnsupportedAlgorithm(String),
    /// An OTP type that is not totp, hotp or steam.
    #[error("unsupported OTP type {0:?}: use totp, hotp or steam")]
    UnsupportedType(String),
    /// The time is before the TOTP epoch (T0 = 0) or otherwise unusable.
    #[error("the time {0} is before the Unix epoch")]
    TimeBeforeEpoch(i64),
    /// The HOTP counter would pass 2^64-1.
    #[error("the HOTP counter would overflow")]
    CounterOverflow,
    /// A code with the wrong length or characters for this generator.
    #[error("the code has the wrong format: expected {expected}")]
    MalformedCode {
        /// What a code for this generator looks like, e.g. "6 digits".
        expected: String,
    },
    /// Both codes are valid, but not for two consecutive steps.
    #[error("both codes are valid but not consecutive: wait for the code to change, then enter the next one")]
    NotConsecutive,
    /// No step in the search window produced the first code followed by the second.
    #[error("the codes do not match")]
    NoMatch,
}

/// Errors from parsing an `otpauth://` or `otpauth-migration://` URI. Each names the part at fault.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UriError {
    /// Not a URI at all.
    #[error("not a valid URI: {0}")]
    Syntax(String),
    /// A scheme other than `otpauth` (or `otpauth-migration` where that is expected).
    #[error("unexpected scheme {found:?}: expected {expected}")]
    Scheme {
        /// The scheme the URI has.
        found: String,
        /// The scheme(s) accepted here.
        expected: &'static str,
    },
    /// The host part (type) is not totp, hotp or steam.
    #[error("unsupported OTP type {0:?} in the URI host: use totp, hotp or steam")]
    Type(String),
    /// The label (the path) is missing or empty.
    #[error("the URI has no label (account name)")]
    MissingLabel,
    /// The label is not valid percent-encoded UTF-8.
    #[error("the label is not valid UTF-8 after percent-decoding")]
    LabelEncoding,
    /// The `secret` parameter is missing.
    #[error("the URI has no secret parameter")]
    MissingSecret,
    /// A parameter has a value that cannot be used.
    #[error("parameter {name}: {reason}")]
    Parameter {
        /// Parameter name as written, lower-cased.
        name: String,
        /// Why the value is refused (never the secret itself).
        reason: String,
    },
    /// Label prefix and `issuer` parameter disagree.
    #[error("the issuer in the label ({label:?}) differs from the issuer parameter ({param:?})")]
    IssuerMismatch {
        /// Issuer taken from the label prefix.
        label: String,
        /// Issuer taken from the parameter.
        param: String,
    },
    /// HOTP URI without a `counter` parameter.
    #[error("an HOTP URI needs a counter parameter")]
    MissingCounter,
    /// The `data` parameter of a migration URI is missing.
    #[error("the migration URI has no data parameter")]
    MissingData,
    /// The migration `data` is not Base64 or not a valid payload.
    #[error("the migration payload is damaged: {0}")]
    MigrationPayload(String),
}
