//! The rules every request under `/api/` passes before any route or handler sees it, decided
//! once here (docs/security.md "Edges"):
//!
//! - **Cross-site forgery**: a state-changing request (`POST`, `PUT`, `PATCH`, `DELETE`)
//!   authenticated by the session *cookie* must be a request no other site can make a browser
//!   send without this server's consent (CORS): `Content-Type: application/json` (or
//!   `…+json`), or, without a body, an `X-Requested-With` header; and when the browser sends
//!   `Origin`, it must be this server's (the origin of `public_url`). Otherwise 403
//!   `cross_site_request`. Requests with `Authorization: Bearer` carry their own credential and
//!   are not affected.
//! - **Control characters** in the decoded path or query string are refused with 400
//!   `invalid_input` (PostgreSQL refuses NUL in text, and no name, id or filter of the API
//!   contains one); JSON bodies are checked by [`super::handlers::ApiJson`] with
//!   [`json_has_control`].
//! - **No caching**: every response says `Cache-Control: no-store`, so no session token,
//!   seed, QR code, key or recovery code is kept by a browser or proxy cache.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use mamori_api::ErrorCode;

use super::{session_credential, ApiError, AppState, Credential};
use crate::error::Error;
/// The pure checks, shared with the console (defined in [`crate::web::origin`]).
pub use crate::web::origin::{
    is_forbidden_control, json_has_control, public_origin, same_origin, uri_has_control,
};

/// The middleware: see the module documentation.
pub async fn api_edge(State(st): State<AppState>, req: Request, next: Next) -> Response {
    if !req.uri().path().starts_with("/api/") {
        return next.run(req).await;
    }
    let mut resp = match refusal(&st, &req) {
        Some(r) => r,
        None => next.run(req).await,
    };
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn refusal(st: &AppState, req: &Request) -> Option<Response> {
    if uri_has_control(req.uri().path(), req.uri().query()) {
        return Some(
            ApiError::from(Error::InvalidInput(
                "the path and query must not contain control characters".into(),
            ))
            .into_response(),
        );
    }
    let cookie = matches!(
        session_credential(req.headers()),
        Some((_, Credential::Cookie))
    );
    if cookie {
        let origin = public_origin(&st.svc.policy().public_url);
        if let Some(why) = cross_site(req.method(), req.headers(), origin.as_deref()) {
            return Some(
                ApiError::new(StatusCode::FORBIDDEN, ErrorCode::CrossSiteRequest, why)
                    .into_response(),
            );
        }
    }
    None
}

/// Whether `method` can change state (everything but `GET`, `HEAD`, `OPTIONS` and `TRACE`).
fn state_changing(method: &Method) -> bool {
    !matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// Whether the request says its body is JSON: `application/json` or a `+json` type, with any
/// parameters (`; charset=utf-8`).
pub fn is_json(headers: &HeaderMap) -> bool {
    let Some(ct) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Why a state-changing, cookie-authenticated request must be refused as possibly forged by
/// another site, or `None` when it may proceed. `origin` is this server's origin.
pub fn cross_site(
    method: &Method,
    headers: &HeaderMap,
    origin: Option<&str>,
) -> Option<&'static str> {
    if !state_changing(method) {
        return None;
    }
    if let Some(sent) = headers.get(header::ORIGIN) {
        let same = sent
            .to_str()
            .ok()
            .zip(origin)
            .is_some_and(|(s, o)| same_origin(s, o));
        if !same {
            return Some("the request comes from another site's page (Origin): refused");
        }
    }
    let bodiless_ajax =
        !headers.contains_key(header::CONTENT_TYPE) && headers.contains_key("x-requested-with");
    if !is_json(headers) && !bodiless_ajax {
        return Some(
            "a request authenticated by the session cookie must send Content-Type: application/json (or X-Requested-With without a body)",
        );
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    const ME: Option<&str> = Some("https://mfa.example.com");

    #[test]
    fn cookie_requests_must_be_json_and_same_origin() {
        let post = Method::POST;
        let json = headers(&[("content-type", "application/json")]);
        assert_eq!(cross_site(&post, &json, ME), None);
        let json_utf8 = headers(&[("content-type", "application/json; charset=utf-8")]);
        assert_eq!(cross_site(&post, &json_utf8, ME), None);
        for simple in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "text/plain; x=application/json",
        ] {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_str(simple).unwrap());
            assert!(cross_site(&post, &h, ME).is_some(), "{simple}");
        }
        // No body: a header no form can send.
        assert!(cross_site(&Method::DELETE, &HeaderMap::new(), ME).is_some());
        let ajax = headers(&[("x-requested-with", "XMLHttpRequest")]);
        assert_eq!(cross_site(&Method::DELETE, &ajax, ME), None);
        // ... but not with a form's content type.
        let ajax_form = headers(&[
            ("x-requested-with", "XMLHttpRequest"),
            ("content-type", "text/plain"),
        ]);
        assert!(cross_site(&post, &ajax_form, ME).is_some());
        // Origin, when sent, must be this server's.
        let foreign = headers(&[
            ("content-type", "application/json"),
            ("origin", "https://evil.example"),
        ]);
        assert!(cross_site(&post, &foreign, ME).is_some());
        let null = headers(&[("content-type", "application/json"), ("origin", "null")]);
        assert!(cross_site(&post, &null, ME).is_some());
        let same = headers(&[
            ("content-type", "application/json"),
            ("origin", "https://mfa.example.com"),
        ]);
        assert_eq!(cross_site(&post, &same, ME), None);
        // Reading is never refused.
        assert_eq!(cross_site(&Method::GET, &foreign, ME), None);
        assert_eq!(cross_site(&Method::GET, &HeaderMap::new(), ME), None);
    }

    #[test]
    fn loopback_names_of_one_port_are_one_origin() {
        let ours = "http://localhost:8080";
        assert!(same_origin("http://localhost:8080", ours));
        assert!(same_origin("http://127.0.0.1:8080", ours));
        assert!(same_origin("http://[::1]:8080", ours));
        assert!(same_origin("http://LOCALHOST:8080/", ours));
        assert!(same_origin(
            "http://localhost:8080",
            "http://127.0.0.1:8080"
        ));
        // Another port or scheme is another server or another site.
        assert!(!same_origin("http://127.0.0.1:8081", ours));
        assert!(!same_origin("https://127.0.0.1:8080", ours));
        assert!(!same_origin("http://127.0.0.1", ours));
        assert!(!same_origin("http://localhost.evil.example:8080", ours));
        assert!(!same_origin("http://127.0.0.2:8080", ours));
        assert!(!same_origin("null", ours));
        // Outside loopback, only the exact origin.
        let public = "https://mfa.example.com";
        assert!(same_origin("https://mfa.example.com", public));
        assert!(!same_origin("https://localhost", public));
        assert!(!same_origin("https://127.0.0.1", public));
    }

    #[test]
    fn the_origin_of_the_public_url() {
        assert_eq!(
            public_origin("https://MFA.example.com/").as_deref(),
            Some("https://mfa.example.com")
        );
        assert_eq!(
            public_origin("https://mfa.example.com:443/base").as_deref(),
            Some("https://mfa.example.com")
        );
        assert_eq!(
            public_origin("http://127.0.0.1:8080").as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(
            public_origin("http://localhost:80").as_deref(),
            Some("http://localhost")
        );
        assert_eq!(public_origin("ftp://x"), None);
        assert_eq!(public_origin("nonsense"), None);
    }

    #[test]
    fn control_characters_in_path_and_query() {
        assert!(!uri_has_control(
            "/api/v1/users/alice",
            Some("kind=mfa.&user=a%40b")
        ));
        assert!(uri_has_control("/api/v1/mfa-devices/a%00b", None));
        assert!(uri_has_control("/api/v1/audit", Some("user=%00")));
        assert!(uri_has_control("/api/v1/audit", Some("user=a%0Ab")));
        assert!(uri_has_control("/api/v1/audit", Some("user=%7F")));
        assert!(uri_has_control("/api/v1/audit", Some("user=%C2%85")));
        assert!(!uri_has_control("/api/v1/audit", Some("user=%E3%81%82")));
    }

    #[test]
    fn control_characters_in_json_strings() {
        assert!(!json_has_control(br#"{"name":"phone","x":"a\"b\\u0000"}"#));
        assert!(json_has_control(br#"{"name":"a\u0000b"}"#));
        assert!(json_has_control(br#"{"name":"a\u001Fb"}"#));
        assert!(json_has_control(br#"{"name":"a\u007fb"}"#));
        assert!(json_has_control(br#"{"name":"a\u0085b"}"#));
        assert!(json_has_control(br#"{"name":"a\bb"}"#));
        assert!(json_has_control(br#"{"name":"a\fb"}"#));
        assert!(json_has_control("{\"name\":\"a\u{7f}b\"}".as_bytes()));
        assert!(json_has_control("{\"name\":\"a\u{85}b\"}".as_bytes()));
        // Files travel with their line breaks and tabs.
        assert!(!json_has_control(
            br#"{"content":"serial,secret\r\n1\t2\u000a"}"#
        ));
        assert!(!json_has_control(b"{\n\t\"a\": 1\r\n}"));
        // Not UTF-8: the parser refuses it.
        assert!(!json_has_control(b"{\"a\":\"\xff\"}"));
    }
}
