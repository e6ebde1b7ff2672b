//! Domain errors to HTTP responses: `{"error": {"code": "...", "message": "..."}}` with a fixed
//! status per code (documented in `docs/api.md`). Internal details go to the log, never to the
//! client.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use mamori_api::{ErrorBody, ErrorCode, ErrorDetail};

use crate::error::Error;
use crate::web::UNAVAILABLE_RETRY_SECS;

/// An error on its way to the client.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: ErrorCode,
    message: String,
    retry_after: Option<u64>,
}

impl ApiError {
    /// A specific error.
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 429 with `Retry-After`.
    pub fn rate_limited(retry_after: u64) -> Self {
        ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: ErrorCode::RateLimited,
            message: format!("too many attempts: retry in {retry_after} seconds"),
            retry_after: Some(retry_after.max(1)),
        }
    }

    /// 503 `unavailable` with `Retry-After`: the database was out of reach (#21). The cause is
    /// logged by the caller, never sent.
    pub fn unavailable() -> Self {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: ErrorCode::Unavailable,
            message: format!(
                "the service is briefly unavailable: retry in {UNAVAILABLE_RETRY_SECS} seconds"
            ),
            retry_after: Some(UNAVAILABLE_RETRY_SECS),
        }
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        use ErrorCode as C;
        use StatusCode as S;
        let (status, code) = match &e {
            Error::InvalidInput(_) => (S::BAD_REQUEST, C::InvalidInput),
            Error::InvalidCredentials => (S::UNAUTHORIZED, C::InvalidCredentials),
            Error::Unauthenticated => (S::UNAUTHORIZED, C::Unauthenticated),
            Error::Forbidden(_) | Error::FactorChangeRefused(_) => (S::FORBIDDEN, C::Forbidden),
            Error::MfaEnrollmentRequired => (S::FORBIDDEN, C::MfaEnrollmentRequired),
            Error::InvalidChallenge => (S::UNAUTHORIZED, C::InvalidChallenge),
            Error::RecoverySessionRestricted => (S::FORBIDDEN, C::RecoverySessionRestricted),
            Error::InvalidCode => (S::UNAUTHORIZED, C::InvalidCode),
            Error::CodesNotConsecutive => (S::BAD_REQUEST, C::CodesNotConsecutive),
            Error::RecentSecondFactorRequired => (S::FORBIDDEN, C::RecentSecondFactorRequired),
            Error::AccountLocked => (S::LOCKED, C::AccountLocked),
            Error::RateLimited { retry_after } => return ApiError::rate_limited(*retry_after),
            Error::NotFound(_) => (S::NOT_FOUND, C::NotFound),
            Error::Conflict(_) => (S::CONFLICT, C::Conflict),
            Error::DeviceLimitReached(_) => (S::CONFLICT, C::DeviceLimitReached),
            Error::InvalidDeviceState(_) => (S::CONFLICT, C::InvalidDeviceState),
            Error::WeakPassword(_) => (S::BAD_REQUEST, C::WeakPassword),
            Error::InvalidSetupToken => (S::UNAUTHORIZED, C::InvalidSetupToken),
            Error::InvalidAppKey => (S::UNAUTHORIZED, C::InvalidAppKey),
            Error::InvalidCeremony => (S::BAD_REQUEST, C::InvalidCeremony),
            Error::SecurityKeyRejected => (S::UNAUTHORIZED, C::SecurityKeyRejected),
            // #15 defaults
            Error::AdminWithoutMfa => (S::FORBIDDEN, C::AdminWithoutMfa),

            // #15 delivery
            Error::DeliveryFailed(_) => (S::SERVICE_UNAVAILABLE, C::DeliveryFailed),

            // #15 contacts
            Error::InvalidPhoneNumber(_) => (S::BAD_REQUEST, C::InvalidPhoneNumber),

            // #21 faults: the database is away for now (restart, lost connection, full disk);
            // the client may retry, so not a 500.
            Error::Store(se) if se.is_unavailable() => {
                tracing::warn!(error = %e, "database unavailable");
                return ApiError::unavailable();
            }
            _ => {
                tracing::error!(error = %e, "internal error");
                return ApiError::new(
                    S::INTERNAL_SERVER_ERROR,
                    C::Internal,
                    "internal error: see the server log",
                );
            }
        };
        ApiError::new(status, code, e.to_string())
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::PayloadTooLarge,
                "the request body is too large",
            );
        }
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::MalformedRequest,
            format!("malformed request: {}", r.body_text()),
        )
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::MalformedRequest,
            r.body_text(),
        )
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::MalformedRequest,
            r.body_text(),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
            },
        };
        let mut resp = (self.status, Json(body)).into_response();
        if let Some(s) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        resp
    }
}

/// Handler result.
pub type ApiResult<T> = Result<T, ApiError>;

impl From<crate::web::RateLimited> for ApiError {
    fn from(r: crate::web::RateLimited) -> Self {
        ApiError::rate_limited(r.retry_after_secs)
    }
}
