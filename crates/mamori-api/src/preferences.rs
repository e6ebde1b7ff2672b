//! Per-account preferences (`/api/v1/me/preferences`, issue #15): the language of the console
//! and of the e-mails and phone texts sent to the account, and the time zone the console shows
//! times in (the API itself keeps answering in Unix seconds / ISO 8601).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The account's effective preferences.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PreferencesResponse {
    /// `en` or `ja`: the account's language, or the server's default when it chose none.
    pub language: String,
    /// Whether the account chose its language (at setup, at its first console sign-in, or
    /// here); when false the console follows the browser.
    pub language_chosen: bool,
    /// IANA time zone name (`UTC` until one is chosen).
    pub time_zone: String,
}

/// New preferences; both are required, and nothing changes unless both are valid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreferencesRequest {
    /// `en` or `ja`.
    pub language: String,
    /// An IANA time zone name such as `Asia/Tokyo` or `UTC`.
    pub time_zone: String,
}
