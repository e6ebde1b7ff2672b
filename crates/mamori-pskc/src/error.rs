use std::fmt;

use thiserror::Error;

/// Where in a file a problem is: the container as a whole, one key package (PSKC) or one line
/// (CSV). Numbers count from 1, as a person reading the file counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Location {
    /// The PSKC `KeyContainer` itself (its `EncryptionKey`, `MACMethod` or attributes).
    Container,
    /// The n-th `KeyPackage` element of a PSKC file (1-based).
    KeyPackage(usize),
    /// The n-th line of a CSV file (1-based, comments and blank lines included).
    Line(usize),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Container => f.write_str("the key container"),
            Location::KeyPackage(n) => write!(f, "key package {n}"),
            Location::Line(n) => write!(f, "line {n}"),
        }
    }
}

/// Why a token file was refused. Every error refuses the whole file: no tokens are returned.
///
/// Messages name the key package or line and the field at fault; they never contain secret
/// material (neither seeds nor keys nor passwords).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PskcError {
    /// The input is larger than [`MAX_INPUT_BYTES`](crate::MAX_INPUT_BYTES).
    #[error("the file is {size} bytes long; at most {limit} bytes are accepted")]
    TooLarge {
        /// Size of the input in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// The file holds more tokens than [`MAX_TOKENS`](crate::MAX_TOKENS); split it.
    #[error("the file holds more than {limit} tokens; split it into smaller files")]
    TooManyTokens {
        /// The limit.
        limit: usize,
    },
    /// Some other structural limit (nesting depth, elements per key package, PBKDF2 iteration
    /// count, secret length) was exceeded.
    #[error("{location}: {what} exceeds the limit of {limit}")]
    Limit {
        /// Where.
        location: Location,
        /// What was counted.
        what: &'static str,
        /// The limit.
        limit: u64,
    },
    /// The input is not UTF-8 text.
    #[error("{location}: the file is not UTF-8 text")]
    NotUtf8 {
        /// The line holding the first invalid byte.
        location: Location,
    },
    /// The XML is not well-formed.
    #[error("malformed XML at line {line}: {reason}")]
    XmlSyntax {
        /// 1-based line number of the problem.
        line: usize,
        /// What the XML parser found wrong.
        reason: String,
    },
    /// The XML has a `<!DOCTYPE …>`: DTDs and entity declarations are refused outright, so no
    /// entity expansion (billion laughs) or external entity can happen.
    #[error("malformed XML at line {line}: DOCTYPE declarations are not accepted (a PSKC file needs none)")]
    Doctype {
        /// 1-based line number of the declaration.
        line: usize,
    },
    /// The root element is not a PSKC `KeyContainer`.
    #[error("not a PSKC file: the root element is <{found}>, expected <KeyContainer>")]
    NotPskc {
        /// Local name of the root element found.
        found: String,
    },
    /// The `KeyContainer` declares a version other than 1.0 (RFC 6030 section 4).
    #[error("unsupported PSKC version {version:?}: only version 1.0 (RFC 6030) is supported")]
    UnsupportedVersion {
        /// The `Version` attribute as written.
        version: String,
    },
    /// A required element or attribute is absent.
    #[error("{location}: {element} is missing")]
    MissingElement {
        /// Where.
        location: Location,
        /// Path of the missing element or attribute, e.g. `Key/@Algorithm`.
        element: String,
    },
    /// A key package carries no usable secret (no `Data/Secret`, or only a key reference).
    #[error("{location}: the key has no secret (Data/Secret is missing)")]
    MissingSecret {
        /// Where.
        location: Location,
    },
    /// An element or attribute has a value that cannot be used.
    #[error("{location}: {field} {reason}")]
    InvalidValue {
        /// Where.
        location: Location,
        /// The element or attribute, e.g. `Data/Counter`.
        field: String,
        /// Why the value is refused (never the value itself when it may be secret).
        reason: String,
    },
    /// An algorithm identified by a URI that this crate does not implement (OTP algorithm,
    /// encryption, MAC, key derivation or its PRF).
    #[error("{location}: unsupported {field} algorithm {uri:?}")]
    UnsupportedAlgorithm {
        /// Where.
        location: Location,
        /// Which algorithm slot, e.g. `Key/@Algorithm` or `EncryptionMethod`.
        field: String,
        /// The URI as written in the file.
        uri: String,
    },
    /// A feature of the format this crate does not implement (asymmetric key transport,
    /// `CipherReference`, check digits, non-decimal response formats, …).
    #[error("{location}: {what} is not supported")]
    Unsupported {
        /// Where.
        location: Location,
        /// The feature.
        what: String,
    },
    /// The code length is outside 6..=10.
    #[error("{location}: {digits} digits is out of range (6 to 10)")]
    InvalidDigits {
        /// Where.
        location: Location,
        /// The length found.
        digits: u64,
    },
    /// The file has encrypted values, but neither a pre-shared key nor a password was given.
    #[error("{location}: the file is encrypted: give the pre-shared key (--psk) or the password (--password-file)")]
    EncryptionRequired {
        /// The first place an encrypted value was met.
        location: Location,
    },
    /// A pre-shared key was given for a password-protected file, or the other way round.
    #[error("the file is protected with {expected}, but {given} was given")]
    WrongKeyKind {
        /// What the file declares (`a password`, `a pre-shared key`).
        expected: &'static str,
        /// What the caller gave.
        given: &'static str,
    },
    /// The pre-shared key (or derived key) has the wrong length for the cipher.
    #[error("{location}: {cipher} needs a {expected}-byte key, but the key is {got} bytes long")]
    WrongKeyLength {
        /// Where the cipher is named.
        location: Location,
        /// The cipher, e.g. `aes128-cbc`.
        cipher: &'static str,
        /// Key length the cipher needs.
        expected: usize,
        /// Key length given.
        got: usize,
    },
    /// An encrypted value has no `ValueMAC` (or the file no `MACMethod`), so it cannot be checked.
    #[error("{location}: the encrypted {field} has no {missing}; unauthenticated ciphertext is refused (RFC 6030 section 6.1.1)")]
    MissingMac {
        /// Where.
        location: Location,
        /// The encrypted field, e.g. `Data/Secret`.
        field: String,
        /// `ValueMAC` or `MACMethod`.
        missing: &'static str,
    },
    /// A MAC did not match or a value did not decrypt.
    #[error("{location}: cannot decrypt {field}: wrong key or password, or the file was altered")]
    Decryption {
        /// Where.
        location: Location,
        /// The value that failed, e.g. `Data/Secret` or `MACMethod/MACKey`.
        field: String,
    },
    /// Two tokens in the same file have the same serial number.
    #[error("duplicate serial number {serial:?}: {first} and {second}")]
    DuplicateSerial {
        /// The serial number.
        serial: String,
        /// Where it first appears.
        first: Location,
        /// Where it appears again.
        second: Location,
    },
    /// A CSV line that cannot be read.
    #[error("line {line}: {field} {reason}")]
    CsvLine {
        /// 1-based line number.
        line: usize,
        /// The column at fault (`serial`, `secret_hex`, `type`, `digits`, `period_or_counter`,
        /// `algorithm`) or `row` for the line as a whole.
        field: &'static str,
        /// Why (never the secret).
        reason: String,
    },
    /// A pre-shared key given as text (`--psk HEX`) is not 16, 24 or 32 bytes of hexadecimal.
    #[error("the pre-shared key {reason}: give 32, 48 or 64 hexadecimal digits")]
    BadPreSharedKey {
        /// Why (never the key itself).
        reason: &'static str,
    },
    /// The file is well-formed but holds no token.
    #[error("the file contains no tokens")]
    NoTokens,
}
