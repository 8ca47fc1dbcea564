//! People who use the index, and the authenticated actor behind a request.

use serde::Serialize;

use super::organisation::OrgKind;
use super::role::Role;
use crate::clock::Millis;

/// A user as their organisation's admin sees them. The token itself is never stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub role: Role,
    pub organisation: String,
    /// The token's first characters, so a person can tell their tokens apart.
    pub token_hint: String,
    #[serde(serialize_with = "crate::clock::as_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Millis,
    #[serde(serialize_with = "crate::clock::as_rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<Millis>,
}

/// Who is asking: resolved from a valid token on every request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub user_id: i64,
    pub user_name: String,
    pub role: Role,
    pub org_id: i64,
    pub org_code: String,
    pub org_name: String,
    pub org_kind: OrgKind,
    /// Set when the user's token was reported lost: later use is an anomaly for IG review.
    pub reported_lost_at: Option<Millis>,
    /// Set when a system acts with an access token from the token endpoint: the client's
    /// `client_id`, named in the audit trail beside its user id.
    pub client_id: Option<String>,
}

/// A live session: who, and when it was last used.
#[derive(Debug, Clone)]
pub struct StoredSession {
    pub actor: Actor,
    pub created_at: Millis,
    pub last_seen_at: Millis,
    pub expires_at: Millis,
}
