//! The plain-HTTP listener of `[tls] redirect_listen` (#22): every request is answered
//! `308 Permanent Redirect` to the same path and query on `public_url`, and nothing else is
//! served there, except the ACME HTTP-01 challenges of an order in progress
//! (`/.well-known/acme-challenge/TOKEN`, RFC 8555 section 8.3).
//!
//! The target is built from `public_url`, never from the request's `Host` header, so the
//! listener cannot be made to redirect anywhere else (an open redirect). No API route, no
//! session and no cookie is reachable over plain HTTP: the only answers are the redirect,
//! a challenge's key authorization, or 404 for an unknown challenge token.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;

use crate::http::challenges::Challenges;

/// The path prefix of HTTP-01 challenges.
const CHALLENGE_PREFIX: &str = "/.well-known/acme-challenge/";

#[derive(Clone)]
struct Redirect {
    /// `public_url` without a trailing slash.
    base: Arc<str>,
    challenges: Arc<Challenges>,
}

/// The routes of the redirect listener.
pub fn router(public_url: &str, challenges: Arc<Challenges>) -> Router {
    Router::new().fallback(answer).with_state(Redirect {
        base: Arc::from(public_url.trim_end_matches('/')),
        challenges,
    })
}

async fn answer(State(r): State<Redirect>, uri: Uri) -> Response {
    let path = uri.path();
    if let Some(token) = path.strip_prefix(CHALLENGE_PREFIX) {
        // Only while an order is in progress; otherwise the path is redirected as any other
        // (a CA never follows it to HTTPS for a token it did not hand out to this server).
        if r.challenges.http01_active() {
            return match r.challenges.http01(token) {
                Some(key_auth) => (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "application/octet-stream")],
                    key_auth,
                )
                    .into_response(),
                None => StatusCode::NOT_FOUND.into_response(),
            };
        }
    }
    // `path_and_query` is the request target's path: an absolute-form target
    // (`GET http://elsewhere/x`) gives its path only.
    let target = uri.path_and_query().map_or("/", |p| p.as_str());
    let target = if target.starts_with('/') {
        format!("{}{target}", r.base)
    } else {
        format!("{}/", r.base)
    };
    match HeaderValue::try_from(target) {
        Ok(location) => (
            StatusCode::PERMANENT_REDIRECT,
            [(header::LOCATION, location)],
        )
            .into_response(),
        Err(_) => StatusCode::BAD_REQUEST.into_response(),
    }
}
