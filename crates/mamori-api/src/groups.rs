//! Account groups (`/api/v1/users/{name}/groups`, issue #18): names the forward-auth access
//! rules refer to and protected applications receive in `Remote-Groups`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// An account's groups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct GroupsResponse {
    /// The account.
    pub user: String,
    /// Its groups, sorted by name.
    pub groups: Vec<String>,
}
