//! Users and tokens: an org-admin issues and revokes tokens for their own organisation;
//! an operator can only issue the first admin of an organisation that has none. A token is shown once.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::ApiResult;
use super::extract::ApiPath as Path;
use super::json::ApiJson;
use crate::domain::FieldError;
use crate::domain::organisation::parse_label;
use crate::domain::role::Role;
use crate::domain::user::{Actor, User};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_users, add_user)).routes(routes!(revoke_user)).routes(routes!(report_lost))
}

#[derive(Serialize, ToSchema)]
pub struct UserList {
    users: Vec<User>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUserInput {
    name: String,
    /// `practitioner`, `ig-officer`, `org-admin` or `operator`.
    role: String,
    /// Operators only (required): the organisation whose first org-admin this is; an org-admin
    /// always adds to their own.
    organisation: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct IssuedUser {
    user: User,
    /// The bearer token. Shown this once and never again: the index keeps only a keyed hash.
    token: String,
}

/// The users of the caller's organisation.
#[utoipa::path(get, path = "/api/v1/users", tag = "users", responses((status = 200, body = UserList), (status = 403)))]
async fn list_users(State(state): State<AppState>, actor: Actor) -> ApiResult<Json<UserList>> {
    Ok(Json(UserList { users: state.users_of(&actor).await? }))
}

/// Issue a user and their token. An org-admin adds to their own organisation and cannot
/// create operators; an operator may only issue the first org-admin of an organisation that has
/// none (bootstrap, audited as `admin_bootstrapped`).
#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = NewUserInput,
    responses((status = 201, body = IssuedUser), (status = 403), (status = 422)))]
async fn add_user(
    State(state): State<AppState>,
    actor: Actor,
    ApiJson(input): ApiJson<NewUserInput>,
) -> ApiResult<(StatusCode, Json<IssuedUser>)> {
    let name = parse_label("name", &input.name, 200)?;
    let role = Role::parse(&input.role).ok_or_else(|| {
        FieldError::new("role", "invalid_role", "role must be practitioner, ig-officer, org-admin or operator")
    })?;
    let (user, token) = state.issue_user_as(&actor, input.organisation.as_deref(), &name, role).await?;
    Ok((StatusCode::CREATED, Json(IssuedUser { user, token })))
}

/// Revoke a user's token; it stops working on the next request.
#[utoipa::path(post, path = "/api/v1/users/{id}/revoke", tag = "users",
    params(("id" = i64, Path, description = "user id")),
    responses((status = 200, body = User), (status = 404)))]
async fn revoke_user(State(state): State<AppState>, actor: Actor, Path(id): Path<i64>) -> ApiResult<Json<User>> {
    Ok(Json(state.revoke_token(&actor, id).await?))
}

/// Report a token as lost: it keeps working until revoked, but every use is flagged for IG.
#[utoipa::path(post, path = "/api/v1/users/{id}/report-lost", tag = "users",
    params(("id" = i64, Path, description = "user id")),
    responses((status = 200, body = User), (status = 404)))]
async fn report_lost(State(state): State<AppState>, actor: Actor, Path(id): Path<i64>) -> ApiResult<Json<User>> {
    Ok(Json(state.report_token_lost(&actor, id).await?))
}
