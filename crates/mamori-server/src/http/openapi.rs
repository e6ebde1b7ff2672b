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
    paths(
        super::handlers::healthz,
        super::handlers::metrics,
        super::handlers::setup,
        super::handlers::sign_in,
        super::handlers::sign_in_mfa,
        super::recovery::recovery_start,
        super::recovery::recovery_email,
        super::recovery::recovery_phone,
        super::recovery::status,
        super::recovery::generate,
        super::recovery::contacts,
        super::recovery::verify_contact,
        super::recovery::confirm_contact,
        super::handlers::validate,
        super::handlers::me,
        super::handlers::change_password,
        super::handlers::sign_out,
        super::handlers::verify,
        super::handlers::list_sessions,
        super::handlers::revoke_session,
        super::handlers::list_devices,
        super::handlers::create_virtual_device,
        super::handlers::enable_device,
        super::handlers::resync_device,
        super::handlers::rename_device,
        super::handlers::delete_device,
        super::handlers::admin_delete_device,
        super::handlers::list_users,
        super::handlers::create_user,
        super::handlers::reset_mfa,
        super::handlers::create_app_key,
        super::handlers::list_app_keys,
        super::handlers::revoke_app_key,
        super::handlers::alerts,
        super::review::review,
        super::handlers::audit,
        super::tokens::import,
        super::tokens::list,
        super::tokens::assign_own,
        super::tokens::assign_for_user,
        super::webauthn::register_begin,
        super::webauthn::register_finish,
        super::webauthn::sign_in_begin,
        super::webauthn::sign_in_finish,
        super::webauthn::verify_begin,
        super::webauthn::verify_finish,
        // #15 recovery
        super::sync::cancel_recovery,

        // #15 delivery
        super::recovery::recovery_phone_resend,

        // #15 contacts
        super::recovery::set_my_contact,
        super::recovery::remove_my_contact,
        super::recovery::set_user_contact,
        super::recovery::remove_user_contact,
        // #15 polish
        super::preferences::preferences,
        super::preferences::set_preferences,
    ),
    modifiers(&Security),
    components(schemas(
        api::ErrorBody,
        api::ErrorDetail,
        api::ErrorCode,
        api::Alert,
        api::review::ReviewResponse,
        api::review::ReviewFinding,
        api::SetupRequest,
        api::SetupResponse,
        api::SignInRequest,
        api::SignInResponse,
        api::ChallengeDevice,
        api::MfaRequest,
        api::recovery::RecoveryStartRequest,
        api::recovery::RecoveryCodeRequest,
        api::recovery::RecoveryStepResponse,
        api::recovery::RecoverySessionResponse,
        api::recovery::RecoveryStatusResponse,
        api::recovery::GenerateRequest,
        api::recovery::GenerateResponse,
        api::recovery::ContactWire,
        api::recovery::ContactsResponse,
        api::recovery::ConfirmRequest,
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
        api::AppKey,
        api::ValidateRequest,
        api::ValidateResponse,
        api::AlertsResponse,
        api::AuditEvent,
        api::AuditPage,
        api::Health,
        super::tokens::ImportTokensRequest,
        super::tokens::ImportTokensResponse,
        super::tokens::TokenWire,
        super::tokens::AssignTokenRequest,
        api::webauthn::RegisterBeginRequest,
        api::webauthn::CeremonyBegun,
        api::webauthn::RegisterFinishRequest,
        api::webauthn::SignInBeginRequest,
        api::webauthn::SignInFinishRequest,
        api::webauthn::VerifyFinishRequest,
        // #15 recovery
        api::recovery::RecoveryPendingResponse,

        // #15 delivery
        api::recovery::RecoveryResendRequest,

        // #15 contacts
        api::recovery::SetContactRequest,
        api::recovery::SetContactResponse,
        // #15 polish
        api::preferences::PreferencesResponse,
        api::preferences::PreferencesRequest,
    ))
)]
pub struct ApiDoc;

/// Declares the two ways to authenticate: a session token (bearer or `mamori_session` cookie)
/// and an application key (bearer, validate API only).
struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        components.add_security_scheme(
            "app_key",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// `GET /api/v1/openapi.json`.
pub async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
