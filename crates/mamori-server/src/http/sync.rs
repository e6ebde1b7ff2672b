//! The sync API under `/api/v1/sync` (docs/sync-protocol.md, docs/api.md). Handlers translate
//! wire types to [`crate::domain::sync`] calls; device tokens authenticate every route except
//! registration, which takes a session; a per-device rate limit answers 429 with `Retry-After`.

use std::num::NonZeroU32;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Extension, Json, Router};
use data_encoding::BASE64URL_NOPAD;
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use mamori_api::sync as wire;
use rand::rngs::OsRng;
use serde::Deserialize;

use crate::domain::sync::{SyncAuth, SyncLimits};
use crate::error::Error;
use crate::store::sync::{SyncItemRecord, SyncPush, SyncPushOutcome};

use super::handlers::{ApiJson, ApiQuery};
use super::{session_token, ApiError, ApiResult, AppState, Meta, Session};

/// State of the sync routes: limits and the per-device limiter.
pub struct SyncHttp {
    limits: SyncLimits,
    limiter: DefaultKeyedRateLimiter<String>,
}

impl SyncHttp {
    /// From the limits.
    pub fn new(limits: SyncLimits) -> SyncHttp {
        let per_minute = NonZeroU32::new(limits.requests_per_minute).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(limits.burst).unwrap_or(NonZeroU32::MIN);
        SyncHttp {
            limiter: RateLimiter::keyed(Quota::per_minute(per_minute).allow_burst(burst)),
            limits,
        }
    }
}

/// The sync routes, with the limits read from `MAMORI_SYNC_*` at startup.
pub fn router(state: &AppState) -> Router<AppState> {
    let limits = match SyncLimits::from_env(|k| std::env::var(k).ok()) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "invalid sync limits; using the defaults");
            SyncLimits::default()
        }
    };
    let _ = state;
    let body = limits.body_bytes;
    Router::new()
        .route("/api/v1/sync/devices", post(register).get(devices))
        .route("/api/v1/sync/devices/{id}", delete(revoke))
        .route("/api/v1/sync/keys", get(get_keys).put(put_keys))
        .route("/api/v1/sync/items", get(pull).post(push))
        // #15 recovery
        .route("/api/v1/sync/recovery/cancel", post(cancel_recovery))
        .layer(Extension(Arc::new(SyncHttp::new(limits))))
        // Pushes carry many items: a larger body limit than the rest of the API.
        .layer(DefaultBodyLimit::max(body))
}

/// A request authenticated by a device token (and within the device's rate limit).
pub struct Device(SyncAuth);

impl FromRequestParts<AppState> for Device {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, ApiError> {
        let token = session_token(&parts.headers).ok_or(Error::Unauthenticated)?;
        let auth = st.svc.sync_authenticate(&token, st.clock.now()).await?;
        if let Some(http) = parts.extensions.get::<Arc<SyncHttp>>() {
            http.limiter
                .check_key(&auth.device.id)
                .map_err(|not_until| {
                    let wait = not_until.wait_time_from(DefaultClock::default().now());
                    ApiError::rate_limited(wait.as_secs().saturating_add(1))
                })?;
        }
        Ok(Device(auth))
    }
}

fn item_wire(i: SyncItemRecord) -> wire::SyncItem {
    wire::SyncItem {
        id: i.id,
        revision: i.revision,
        deleted: i.deleted,
        ciphertext: BASE64URL_NOPAD.encode(&i.ciphertext),
        updated_at: i.updated_at,
        seq: i.seq,
    }
}

/// Register this device for sync (session with a second factor from the last 5 minutes).
#[utoipa::path(post, path = "/api/v1/sync/devices", tag = "sync", request_body = wire::RegisterDeviceRequest, responses((status = 201, body = wire::RegisterDeviceResponse), (status = 403, description = "recent_second_factor_required", body = mamori_api::ErrorBody)))]
pub async fn register(
    axum::extract::State(st): axum::extract::State<AppState>,
    Extension(http): Extension<Arc<SyncHttp>>,
    meta: Meta,
    // Before the body (the sync routes allow large ones): authenticated from the headers.
    Session(auth): Session,
    ApiJson(req): ApiJson<wire::RegisterDeviceRequest>,
) -> ApiResult<(StatusCode, Json<wire::RegisterDeviceResponse>)> {
    let now = st.clock.now();
    let (device_token, d) = st
        .svc
        .sync_register_device(&auth, &req.name, &http.limits, now, &mut OsRng, &meta.meta)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(wire::RegisterDeviceResponse {
            device_id: d.id,
            token: device_token.to_string(),
            account_id: auth.account.id.clone(),
            user: auth.account.name.clone(),
        }),
    ))
}

/// The account's sync devices.
#[utoipa::path(get, path = "/api/v1/sync/devices", tag = "sync", responses((status = 200, body = wire::SyncDevicesResponse)))]
pub async fn devices(
    axum::extract::State(st): axum::extract::State<AppState>,
    Device(auth): Device,
) -> ApiResult<Json<wire::SyncDevicesResponse>> {
    let list = st.svc.sync_devices(&auth).await?;
    Ok(Json(wire::SyncDevicesResponse {
        devices: list
            .into_iter()
            .map(|d| wire::SyncDevice {
                current: d.id == auth.device.id,
                id: d.id,
                name: d.name,
                created_at: d.created_at,
                last_seen_at: d.last_seen_at,
                revoked_at: d.revoked_at,
            })
            .collect(),
    }))
}

/// Revoke a sync device: its token stops working at once.
#[utoipa::path(delete, path = "/api/v1/sync/devices/{id}", tag = "sync", responses((status = 204), (status = 404, body = mamori_api::ErrorBody)))]
pub async fn revoke(
    axum::extract::State(st): axum::extract::State<AppState>,
    Device(auth): Device,
    meta: Meta,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    st.svc
        .sync_revoke_device(&auth, &id, st.clock.now(), &meta.meta)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The wrapped sync key.
#[utoipa::path(get, path = "/api/v1/sync/keys", tag = "sync", responses((status = 200, body = wire::SyncKeys), (status = 404, body = mamori_api::ErrorBody)))]
pub async fn get_keys(
    axum::extract::State(st): axum::extract::State<AppState>,
    Device(auth): Device,
) -> ApiResult<Json<wire::SyncKeys>> {
    let k = st.svc.sync_get_keys(&auth).await?;
    Ok(Json(wire::SyncKeys {
        version: k.version,
        passphrase_wrap: k.passphrase_wrap,
        recovery_wrap: k.recovery_wrap,
    }))
}

/// Upload or rewrap the sync key (optimistic: `expected_version`).
#[utoipa::path(put, path = "/api/v1/sync/keys", tag = "sync", request_body = wire::PutSyncKeysRequest, responses((status = 200, body = wire::SyncKeys), (status = 409, body = mamori_api::ErrorBody)))]
pub async fn put_keys(
    axum::extract::State(st): axum::extract::State<AppState>,
    Device(auth): Device,
    meta: Meta,
    ApiJson(req): ApiJson<wire::PutSyncKeysRequest>,
) -> ApiResult<Json<wire::SyncKeys>> {
    let now = st.clock.now();
    st.svc
        .sync_put_keys(
            &auth,
            req.expected_version,
            &req.passphrase_wrap,
            req.recovery_wrap.as_deref(),
            now,
            &meta.meta,
        )
        .await?;
    let k = st.svc.sync_get_keys(&auth).await?;
    Ok(Json(wire::SyncKeys {
        version: k.version,
        passphrase_wrap: k.passphrase_wrap,
        recovery_wrap: k.recovery_wrap,
    }))
}

/// Pull query.
#[derive(Debug, Deserialize)]
pub struct PullQuery {
    /// Cursor (0 for everything).
    #[serde(default)]
    since: i64,
    /// Page size (1..=1000, default 500).
    #[serde(default = "default_limit")]
    limit: i64,
}

fn default_limit() -> i64 {
    500
}

/// Items changed after a cursor, in change order.
#[utoipa::path(get, path = "/api/v1/sync/items", tag = "sync", params(("since" = i64, Query, description = "cursor"), ("limit" = i64, Query, description = "page size")), responses((status = 200, body = wire::PullResponse)))]
pub async fn pull(
    axum::extract::State(st): axum::extract::State<AppState>,
    Device(auth): Device,
    ApiQuery(q): ApiQuery<PullQuery>,
) -> ApiResult<Json<wire::PullResponse>> {
    let page = st.svc.sync_pull(&auth, q.since, q.limit).await?;
    Ok(Json(wire::PullResponse {
        items: page.items.into_iter().map(item_wire).collect(),
        cursor: page.cursor,
        more: page.more,
        server_time: st.clock.now(),
        // #15 recovery: every sync warns while a recovery of the account is pending.
        recovery_pending_until: st.svc.pending_recovery_ready_at(&auth.account.id).await?,
    }))
}

/// Push items with their expected revisions; a conflict returns the current item.
#[utoipa::path(post, path = "/api/v1/sync/items", tag = "sync", request_body = wire::PushRequest, responses((status = 200, body = wire::PushResponse), (status = 409, description = "item limit", body = mamori_api::ErrorBody)))]
pub async fn push(
    axum::extract::State(st): axum::extract::State<AppState>,
    Extension(http): Extension<Arc<SyncHttp>>,
    Device(auth): Device,
    meta: Meta,
    ApiJson(req): ApiJson<wire::PushRequest>,
) -> ApiResult<Json<wire::PushResponse>> {
    let mut items = Vec::with_capacity(req.items.len());
    for it in req.items {
        let ciphertext = BASE64URL_NOPAD
            .decode(it.ciphertext.as_bytes())
            .map_err(|_| {
                Error::InvalidInput(format!("item {}: ciphertext is not Base64url", it.id))
            })?;
        items.push(SyncPush {
            id: it.id,
            expected_revision: it.expected_revision,
            deleted: it.deleted,
            ciphertext,
        });
    }
    let ids: Vec<String> = items.iter().map(|i| i.id.clone()).collect();
    let now = st.clock.now();
    let out = st
        .svc
        .sync_push(&auth, items, &http.limits, now, &meta.meta)
        .await?;
    let results = out
        .into_iter()
        .zip(ids)
        .map(|(o, id)| match o {
            SyncPushOutcome::Stored { revision, seq } => wire::PushResult::Ok { id, revision, seq },
            SyncPushOutcome::Conflict(cur) => wire::PushResult::Conflict {
                current: item_wire(cur),
            },
        })
        .collect();
    Ok(Json(wire::PushResponse {
        results,
        server_time: now,
    }))
}

// #15 recovery
/// Cancel the account's pending alternative-factor recovery, authenticated by a sync device's
/// token (`mamori sync cancel-recovery`; docs/recovery.md). `404 not_found` when none is
/// pending, so the command can say so.
#[utoipa::path(post, path = "/api/v1/sync/recovery/cancel", tag = "sync", responses((status = 204, description = "cancelled"), (status = 404, description = "no recovery is pending", body = mamori_api::ErrorBody), (status = 401, description = "unknown or revoked device token", body = mamori_api::ErrorBody)))]
pub async fn cancel_recovery(
    axum::extract::State(st): axum::extract::State<AppState>,
    Device(auth): Device,
    meta: Meta,
) -> ApiResult<StatusCode> {
    let now = st.clock.now();
    let why = format!("sync device {}", auth.device.name);
    if st
        .svc
        .cancel_pending_recovery(&auth.account, &why, now, &meta.meta)
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Error::NotFound("no recovery is pending").into())
    }
}
