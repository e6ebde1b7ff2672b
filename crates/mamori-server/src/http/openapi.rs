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
        super::handlers::validate_status,
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
        // #18 forward authentication
        super::groups::list,
        super::groups::add,
        super::groups::remove,
        super::forward_auth::check,
        // #17 the OpenID provider (the browser's authorize, consent and logout are console pages)
        super::oidc::discovery,
        super::oidc::jwks,
        super::oidc::token,
        super::oidc::userinfo,
        super::oidc::userinfo_post,
        super::oidc::revoke,
        super::oidc::introspect,
        super::oidc_clients::list,
        super::oidc_clients::create,
        super::oidc_clients::rotate_secret,
        super::oidc_clients::delete,
        super::oidc_consents::list,
        super::oidc_consents::revoke,
        // The authenticator's sync (docs/sync-protocol.md), missing until #16's route test.
        super::sync::register,
        super::sync::devices,
        super::sync::revoke,
        super::sync::get_keys,
        super::sync::put_keys,
        super::sync::pull,
        super::sync::push,
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
        api::ValidateStatusRequest,
        api::ValidateStatusResponse,
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
        api::groups::GroupsResponse,
        api::oidc::Discovery,
        api::oidc::TokenResponse,
        api::oidc::OAuthError,
        api::oidc::OidcClient,
        api::oidc::CreateOidcClientRequest,
        api::oidc::OidcClientCreated,
        api::oidc::ConnectedApp,
        api::oidc::ConnectedAppsResponse,
        api::sync::RegisterDeviceRequest,
        api::sync::RegisterDeviceResponse,
        api::sync::SyncDevice,
        api::sync::SyncDevicesResponse,
        api::sync::SyncKeys,
        api::sync::PutSyncKeysRequest,
        api::sync::SyncItem,
        api::sync::PullResponse,
        api::sync::PushItem,
        api::sync::PushRequest,
        api::sync::PushResult,
        api::sync::PushResponse,
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
        // #18: the single-sign-on cookie the browser sends through the reverse proxy.
        components.add_security_scheme(
            "forward_cookie",
            SecurityScheme::ApiKey(utoipa::openapi::security::ApiKey::Cookie(
                utoipa::openapi::security::ApiKeyValue::new(crate::web::FORWARD_COOKIE),
            )),
        );
        // #17: an access token the OpenID provider's token endpoint issued.
        components.add_security_scheme(
            "oidc_access_token",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// `GET /api/v1/openapi.json`.
pub async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    //! A tidy test (in the manner of rust-analyzer's): every route the JSON API's router
    //! declares is in the OpenAPI document with the same method. axum cannot list a router's
    //! routes, so the declarations are read from the source of `src/http/`, where every API
    //! route is declared with `.route("PATH", method(handler)…)`; the console's HTML routes
    //! live in `src/console/` and are not part of the API document.

    use std::collections::BTreeSet;

    use super::ApiDoc;
    use utoipa::OpenApi;

    /// Routes served but deliberately not described: the document itself.
    const UNDOCUMENTED: &[(&str, &str)] = &[("get", "/api/v1/openapi.json")];

    const METHODS: [&str; 5] = ["get", "post", "put", "delete", "patch"];

    /// `(method, path)` of every `.route(…)` call in `src`.
    fn declared(src: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut rest = src;
        while let Some(i) = rest.find(".route(") {
            rest = &rest[i + ".route(".len()..];
            // The call's text, up to its balanced closing parenthesis.
            let mut depth = 1usize;
            let mut end = rest.len();
            for (j, c) in rest.char_indices() {
                match c {
                    '(' => depth += 1,
                    ')' => {
                        depth -= 1;
                        if depth == 0 {
                            end = j;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let call = &rest[..end];
            let path = call
                .split('"')
                .nth(1)
                .unwrap_or_else(|| panic!("a route without a literal path: {call}"));
            let handlers = &call[call.find(',').unwrap_or(0)..];
            let mut found = false;
            for m in METHODS {
                let mut from = 0;
                while let Some(k) = handlers[from..].find(&format!("{m}(")) {
                    let at = from + k;
                    // A method call, not the end of a longer name (`get_keys(`).
                    let before = handlers[..at].chars().next_back().unwrap_or(' ');
                    if !(before.is_alphanumeric() || before == '_') {
                        out.push((m.to_string(), path.to_string()));
                        found = true;
                    }
                    from = at + m.len() + 1;
                }
            }
            assert!(found, "no method found for route {path}: {call}");
        }
        out
    }

    #[test]
    fn every_api_route_is_in_the_openapi_document() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http");
        let mut routes = BTreeSet::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            // This file declares no route, and its test text would read as one.
            if path.extension().is_some_and(|e| e == "rs") && !path.ends_with("openapi.rs") {
                routes.extend(declared(&std::fs::read_to_string(&path).unwrap()));
            }
        }
        // The parser finds what the router is known to hold (so an empty or broken parse
        // cannot pass this test).
        assert!(routes.contains(&("post".into(), "/api/v1/sync/items".into())));
        assert!(routes.contains(&("delete".into(), "/api/v1/me/contacts/{channel}".into())));
        assert!(routes.len() > 50, "{routes:?}");

        let doc = ApiDoc::openapi();
        let mut missing = Vec::new();
        for (method, path) in &routes {
            if UNDOCUMENTED.contains(&(method.as_str(), path.as_str())) {
                continue;
            }
            let documented = doc.paths.paths.get(path).is_some_and(|item| {
                let op = match method.as_str() {
                    "get" => &item.get,
                    "post" => &item.post,
                    "put" => &item.put,
                    "delete" => &item.delete,
                    _ => &item.patch,
                };
                op.is_some()
            });
            if !documented {
                missing.push(format!("{} {path}", method.to_uppercase()));
            }
        }
        assert!(
            missing.is_empty(),
            "routes missing from the OpenAPI document (add them to ApiDoc's paths):\n{}",
            missing.join("\n")
        );
        // And the other way: nothing documented that the router does not serve.
        for (path, item) in &doc.paths.paths {
            for (method, op) in [
                ("get", &item.get),
                ("post", &item.post),
                ("put", &item.put),
                ("delete", &item.delete),
                ("patch", &item.patch),
            ] {
                if op.is_some() {
                    assert!(
                        routes.contains(&(method.to_string(), path.clone())),
                        "documented but not routed: {method} {path}"
                    );
                }
            }
        }
    }
}
