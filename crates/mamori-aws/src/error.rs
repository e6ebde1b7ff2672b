//! The crate's one error type, and how an SDK error becomes one of its variants.

use aws_sdk_iam::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// Everything that can go wrong talking to IAM and STS or keeping their results. Each message is
/// one line that says what to do; none contains a code, a seed or a secret key.
#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    /// The profile was asked for by name but no configuration file has it.
    #[error("there is no AWS profile {0:?} in the AWS config or credentials files")]
    NoProfile(String),

    /// The AWS configuration files could not be read or parsed.
    #[error("cannot read the AWS configuration: {0}")]
    Config(String),

    /// No credentials could be found for the profile (environment, config or credentials file).
    #[error("no AWS credentials for {profile}: {detail}; set them with `aws configure` or the AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY variables")]
    NoCredentials {
        /// `profile NAME` or `the environment`.
        profile: String,
        /// The SDK's reason.
        detail: String,
    },

    /// AWS refused the credentials themselves (unknown key, bad signature, expired token).
    #[error("AWS refused the credentials of {profile} ({code}): they are expired or invalid; renew them")]
    InvalidCredentials {
        /// The profile whose credentials were used.
        profile: String,
        /// The AWS error code (`ExpiredToken`, `InvalidClientTokenId`, …).
        code: String,
    },

    /// The profile names no MFA device and the user has none either.
    #[error("profile {0} has no mfa_serial and its IAM user has no MFA device: run `mamori aws mfa enroll`, or add mfa_serial to the profile")]
    NoMfaSerial(String),

    /// The user has several MFA devices and the profile does not say which one to use.
    #[error("the IAM user has {count} MFA devices whose seeds are in the vault; say which with mfa_serial in profile {profile}")]
    AmbiguousDevice {
        /// The profile.
        profile: String,
        /// How many candidates.
        count: usize,
    },

    /// No vault entry holds the seed of this device.
    #[error("no vault entry holds the seed of {0}: enroll with `mamori aws mfa enroll`, or put the serial in the note of the entry that has it (`mamori edit QUERY --note …`)")]
    NoEntry(String),

    /// Several vault entries claim the same device.
    #[error("{count} vault entries name {serial} in their note; keep the serial in one note only")]
    AmbiguousEntry {
        /// The device serial.
        serial: String,
        /// How many entries name it.
        count: usize,
    },

    /// AWS did not accept the one-time code(s).
    #[error(
        "AWS did not accept the MFA code for {serial}: check this computer's clock ({offset})"
    )]
    CodeRejected {
        /// The device serial.
        serial: String,
        /// What is known of the local clock against AWS's, e.g. "it is 42 s ahead of AWS".
        offset: String,
    },

    /// The user already has as many MFA devices as AWS allows.
    #[error("IAM user {user} already has the maximum number of MFA devices ({message}); remove one first")]
    TooManyDevices {
        /// The user.
        user: String,
        /// AWS's message.
        message: String,
    },

    /// A virtual MFA device with that name already exists.
    #[error(
        "a virtual MFA device named {0:?} already exists in this account; choose another --name"
    )]
    DeviceExists(String),

    /// A session duration outside what the call accepts.
    #[error("{0}")]
    Duration(String),

    /// The credential report did not become ready.
    #[error("the credential report was not ready after {0} tries; try again in a minute")]
    ReportNotReady(u32),

    /// AWS answered with an error this crate has no special meaning for.
    #[error("AWS {operation} failed: {code}: {message}")]
    Service {
        /// The API operation.
        operation: &'static str,
        /// AWS's error code.
        code: String,
        /// AWS's message.
        message: String,
    },

    /// The request did not get an answer (no network, wrong endpoint, timeout).
    #[error("cannot reach AWS for {operation}: {detail}")]
    Unreachable {
        /// The API operation.
        operation: &'static str,
        /// The transport's reason.
        detail: String,
    },

    /// AWS's answer lacked something it always has.
    #[error("AWS {operation} answered without {what}")]
    Incomplete {
        /// The API operation.
        operation: &'static str,
        /// The missing part.
        what: &'static str,
    },

    /// The vault could not be changed (storing or forgetting a seed).
    #[error("{0}")]
    Vault(String),

    /// The session cache file could not be written.
    #[error("cannot write the AWS session cache {path}: {detail}")]
    Cache {
        /// The cache file.
        path: String,
        /// Why.
        detail: String,
    },

    /// Enrolment failed after the device was created; the device was removed again.
    #[error("{cause}; the new device {serial} was removed again and nothing was kept")]
    RolledBack {
        /// The removed device.
        serial: String,
        /// What failed.
        cause: Box<AwsError>,
    },

    /// Enrolment failed after the device was created and removing it failed too.
    #[error("{cause}; cleaning up the new device {serial} failed too ({cleanup}): check `mamori aws mfa list`, and delete what is left with `aws iam delete-virtual-mfa-device --serial-number {serial}`")]
    RollbackFailed {
        /// The device left behind.
        serial: String,
        /// What failed first.
        cause: Box<AwsError>,
        /// What failed while cleaning up.
        cleanup: String,
    },

    /// The local runtime for the SDK could not start.
    #[error("cannot start the AWS client: {0}")]
    Runtime(String),
}

/// What an SDK call's failure means, given the serial the call used (for code errors), the
/// profile (for credential errors) and the local clock's offset if the answer showed AWS's.
pub(crate) struct Context<'a> {
    pub operation: &'static str,
    pub profile: &'a str,
    pub serial: Option<&'a str>,
}

/// Error codes that mean the credentials themselves were refused.
const CREDENTIAL_CODES: &[&str] = &[
    "InvalidClientTokenId",
    "ExpiredToken",
    "ExpiredTokenException",
    "SignatureDoesNotMatch",
    "InvalidAccessKeyId",
    "UnrecognizedClientException",
    "AuthFailure",
    "IncompleteSignature",
];

/// Classifies an AWS error answer. Pure, so every branch is tested without a counterpart that
/// can produce it (moto accepts any code, for instance).
pub(crate) fn classify(
    ctx: &Context<'_>,
    code: &str,
    message: &str,
    offset_secs: Option<i64>,
) -> AwsError {
    if CREDENTIAL_CODES.contains(&code) {
        return AwsError::InvalidCredentials {
            profile: ctx.profile.to_string(),
            code: code.to_string(),
        };
    }
    // STS answers a wrong code with AccessDenied "MultiFactorAuthentication failed with invalid
    // MFA one time pass code"; IAM's EnableMFADevice with InvalidAuthenticationCode.
    let code_rejected = code == "InvalidAuthenticationCode"
        || (code == "AccessDenied" && message.contains("MultiFactorAuthentication"));
    if let (true, Some(serial)) = (code_rejected, ctx.serial) {
        return AwsError::CodeRejected {
            serial: serial.to_string(),
            offset: describe_offset(offset_secs),
        };
    }
    AwsError::Service {
        operation: ctx.operation,
        code: code.to_string(),
        message: one_line(message),
    }
}

/// "it is 42 s ahead of AWS" from local minus AWS time, or why that is not known.
pub(crate) fn describe_offset(offset_secs: Option<i64>) -> String {
    match offset_secs {
        None => "AWS's time was not in its answer; compare with an NTP server".to_string(),
        Some(0) => {
            "it agrees with AWS's to the second; the code itself may be wrong or already used"
                .to_string()
        }
        Some(s) if s > 0 => format!("it is {s} s ahead of AWS"),
        Some(s) => format!("it is {} s behind AWS", s.unsigned_abs()),
    }
}

fn one_line(s: &str) -> String {
    let s = s.replace(['\n', '\r'], " ");
    // An error message is bounded: AWS's are short, a proxy's HTML page is not.
    match s.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s,
    }
}

/// Local time minus the time in the answer's `Date` header, in seconds, if it has one.
fn offset_from_date(date: Option<&str>) -> Option<i64> {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let server = time::PrimitiveDateTime::parse(date?.trim(), format)
        .ok()?
        .assume_utc();
    Some(time::OffsetDateTime::now_utc().unix_timestamp() - server.unix_timestamp())
}

/// Converts a failed SDK call into an [`AwsError`].
pub(crate) fn from_sdk<E>(
    ctx: &Context<'_>,
    err: SdkError<E, aws_sdk_iam::config::http::HttpResponse>,
) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match &err {
        SdkError::ServiceError(service) => {
            let date = service.raw().headers().get("date");
            let e = service.err();
            classify(
                ctx,
                e.code().unwrap_or("Unknown"),
                e.message().unwrap_or(""),
                offset_from_date(date),
            )
        }
        SdkError::ConstructionFailure(_) => AwsError::NoCredentials {
            profile: ctx.profile.to_string(),
            detail: one_line(&DisplayErrorContext(&err).to_string()),
        },
        _ => AwsError::Unreachable {
            operation: ctx.operation,
            detail: one_line(&DisplayErrorContext(&err).to_string()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Context<'static> {
        Context {
            operation: "GetSessionToken",
            profile: "profile work",
            serial: Some("arn:aws:iam::123456789012:mfa/alice"),
        }
    }

    #[test]
    fn a_refused_code_says_to_check_the_clock_with_the_offset() {
        let e = classify(
            &ctx(),
            "AccessDenied",
            "MultiFactorAuthentication failed with invalid MFA one time pass code. ",
            Some(-42),
        );
        assert_eq!(e.to_string(), "AWS did not accept the MFA code for arn:aws:iam::123456789012:mfa/alice: check this computer's clock (it is 42 s behind AWS)");
        let e = classify(&ctx(), "InvalidAuthenticationCode", "x", Some(7));
        assert!(e.to_string().ends_with("(it is 7 s ahead of AWS)"), "{e}");
        let e = classify(&ctx(), "InvalidAuthenticationCode", "x", None);
        assert!(e.to_string().contains("compare with an NTP server"), "{e}");
    }

    #[test]
    fn refused_credentials_say_expired_or_invalid() {
        for code in [
            "ExpiredToken",
            "InvalidClientTokenId",
            "SignatureDoesNotMatch",
        ] {
            let e = classify(
                &ctx(),
                code,
                "The security token included in the request is expired",
                None,
            );
            assert_eq!(
                e.to_string(),
                format!("AWS refused the credentials of profile work ({code}): they are expired or invalid; renew them")
            );
        }
    }

    #[test]
    fn other_access_denials_are_not_blamed_on_the_clock() {
        let e = classify(
            &ctx(),
            "AccessDenied",
            "User is not authorized to perform sts:AssumeRole",
            Some(0),
        );
        assert!(matches!(e, AwsError::Service { .. }), "{e:?}");
    }

    #[test]
    fn messages_are_one_bounded_line() {
        let e = classify(&ctx(), "Throttling", &"a\nb".repeat(400), None);
        let s = e.to_string();
        assert!(!s.contains('\n'));
        assert!(s.chars().count() < 400, "{}", s.len());
    }

    #[test]
    fn the_date_header_gives_the_offset() {
        let now = time::OffsetDateTime::now_utc() - time::Duration::seconds(100);
        let f = time::macros::format_description!(
            "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
        );
        let header = now.format(f).unwrap_or_default();
        let off = offset_from_date(Some(&header)).unwrap_or(i64::MIN);
        // AWS's clock 100 s behind ours: ours is 100 s ahead (one second of slack for a tick
        // between the two readings).
        assert!((100..=101).contains(&off), "{off}");
        assert_eq!(offset_from_date(Some("yesterday")), None);
        assert_eq!(offset_from_date(None), None);
    }
}
