//! Wire types of the end-to-end-encrypted sync API (`/api/v1/sync/...`, docs/sync-protocol.md).
//!
//! Everything the server sees of a vault entry is in [`SyncItem`]: an opaque id, a revision, a
//! deleted flag, the ciphertext (Base64url without padding) and times. Binary fields are
//! Base64url without padding.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /api/v1/sync/devices` (a full session with a second factor from the last 5 minutes).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RegisterDeviceRequest {
    /// A name for this device, 1–64 characters: letters, digits and `+=,.@_-`.
    pub name: String,
}

/// A registered sync device and its token (shown only here).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RegisterDeviceResponse {
    /// Device id (UUID).
    pub device_id: String,
    /// Long-lived bearer token for the sync endpoints (stored hashed on the server).
    pub token: String,
    /// The account's id (bound into every item's associated data).
    pub account_id: String,
    /// The account's user name.
    pub user: String,
}

/// A sync device in the registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SyncDevice {
    /// Device id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Registration time.
    pub created_at: i64,
    /// Last request made with its token.
    pub last_seen_at: Option<i64>,
    /// Revocation time; revoked devices cannot pull or push.
    pub revoked_at: Option<i64>,
    /// Whether this is the device making the request.
    pub current: bool,
}

/// `GET /api/v1/sync/devices`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SyncDevicesResponse {
    /// Every device of the account, oldest first.
    pub devices: Vec<SyncDevice>,
}

/// The wrapped sync key (`GET`/`PUT /api/v1/sync/keys`). The server stores both blobs as they
/// are and cannot open them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SyncKeys {
    /// Version, incremented on every change (optimistic concurrency).
    pub version: i64,
    /// The sync key wrapped under Argon2id(passphrase).
    pub passphrase_wrap: String,
    /// The sync key wrapped under the recovery key.
    pub recovery_wrap: String,
}

/// `PUT /api/v1/sync/keys`: the first upload (`expected_version` 0) or a rewrap.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PutSyncKeysRequest {
    /// The version the client last saw (0 when there are none yet).
    pub expected_version: i64,
    /// New passphrase wrap.
    pub passphrase_wrap: String,
    /// New recovery wrap; absent keeps the stored one.
    #[serde(default)]
    pub recovery_wrap: Option<String>,
}

/// One encrypted item as the server holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SyncItem {
    /// Item id (the entry's UUID).
    pub id: String,
    /// Revision: 1 on creation, +1 on every accepted push.
    pub revision: i64,
    /// Whether the item is a tombstone (the ciphertext still says so, authenticated).
    pub deleted: bool,
    /// The ciphertext, Base64url without padding.
    pub ciphertext: String,
    /// Server time of the last accepted push.
    pub updated_at: i64,
    /// The account-wide change sequence number of the last push (pull cursors count these).
    pub seq: i64,
}

/// `GET /api/v1/sync/items?since=CURSOR&limit=N`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PullResponse {
    /// Items changed after the cursor, in change order.
    pub items: Vec<SyncItem>,
    /// The cursor to pass next time.
    pub cursor: i64,
    /// Whether more items wait (call again with `cursor`).
    pub more: bool,
    /// Server time.
    pub server_time: i64,
    // #15 recovery
    /// While an alternative-factor recovery of the account is pending: when it becomes ready
    /// (Unix seconds). `mamori sync` warns, and `mamori sync cancel-recovery` cancels it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_pending_until: Option<i64>,
}

/// One item to push.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PushItem {
    /// Item id.
    pub id: String,
    /// The revision the client based this on (0 for a new item).
    pub expected_revision: i64,
    /// Tombstone?
    pub deleted: bool,
    /// Ciphertext, Base64url without padding, made for revision `expected_revision + 1`.
    pub ciphertext: String,
}

/// `POST /api/v1/sync/items`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PushRequest {
    /// The items (each accepted or refused on its own).
    pub items: Vec<PushItem>,
}

/// What happened to one pushed item.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum PushResult {
    /// Stored with this revision.
    Ok {
        /// Item id.
        id: String,
        /// New revision.
        revision: i64,
        /// Its change sequence number.
        seq: i64,
    },
    /// The stored revision is not the expected one: here is the current item.
    Conflict {
        /// The item as stored now.
        current: SyncItem,
    },
}

/// Answer to a push.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PushResponse {
    /// One result per pushed item, in order.
    pub results: Vec<PushResult>,
    /// Server time.
    pub server_time: i64,
}
