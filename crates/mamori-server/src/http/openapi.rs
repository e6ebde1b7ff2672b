//! The OpenAPI document served at `/api/v1/openapi.json`, generated from the handlers'
//! annotations and the `mamori-api` types (utoipa; no Swagger UI, which downloads at build time).

use axum::Json;
use mamori_api as api;
use utoipa::OpenApi;

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "mamori account service",
        description = "Accounts, sign-in with MFA, virtual MFA devices, the validate API and the audit log. Errors are {\"error\": {\"code\", \"message\"}}; see docs/api.md."
    ),
    components(schemas(
        api::ErrorBody,
        api::ErrorDetail,
        api::ErrorCode,
        api::Alert,
        api::SetupRequest,
        api::SetupResponse,
        api::SignInRequest,
        api::SignInResponse,
        api::ChallengeDevice,
        api::MfaRequest,
        api::VerifyRequest,
        api::MeResponse,
        api::ChangePasswordRequest,
        api::CreateVirtualDeviceRequest,
        api::CreateVirtualDeviceResponse,
        api::TwoCodesRequest,
        api::EnableDeviceResponse,
        api::RenameDeviceRequest,
        api::Device,
        api::Session,
        api::CreateUserRequest,
        api::CreateUserResponse,
        api::User,
        api::CreateAppKeyRequest,
        api::CreateAppKeyResponse,
        api::ValidateRequest,
        api::ValidateResponse,
        api::AlertsResponse,
        api::AuditEvent,
        api::AuditPage,
        api::Health,
    ))
)]
pub struct ApiDoc;

/// `GET /api/v1/openapi.json`.
pub async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
