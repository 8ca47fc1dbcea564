//! Each organisation's OpenID Connect provider for its people: the operator sets and removes it;
//! an org-admin may read its own organisation's (never the secret). The sign-in itself is pages
//! (`pages/oidc.rs`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::ApiResult;
use super::extract::ApiPath as Path;
use super::json::ApiJson;
use crate::domain::identity_provider::ProviderInput;
use crate::domain::user::Actor;
use crate::service::oidc::ProviderView;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_provider, put_provider, delete_provider))
}

/// The organisation's identity provider and claim → role mapping (an org-admin: its own).
#[utoipa::path(get, path = "/api/v1/organisations/{code}/identity-provider", tag = "identity providers",
    params(("code" = String, Path, description = "the organisation's code")),
    responses((status = 200, body = ProviderView), (status = 404)))]
async fn get_provider(
    State(state): State<AppState>,
    actor: Actor,
    Path(code): Path<String>,
) -> ApiResult<Json<ProviderView>> {
    Ok(Json(state.identity_provider_as(&actor, &code).await?))
}

/// Set (or replace) the organisation's identity provider. The secret is sealed and never shown
/// again; `operator` is never granted from a claim (the mapping has no place for it).
#[utoipa::path(put, path = "/api/v1/organisations/{code}/identity-provider", tag = "identity providers",
    params(("code" = String, Path, description = "the organisation's code")), request_body = ProviderInput,
    responses((status = 200, body = ProviderView), (status = 404), (status = 409), (status = 422)))]
async fn put_provider(
    State(state): State<AppState>,
    actor: Actor,
    Path(code): Path<String>,
    ApiJson(input): ApiJson<ProviderInput>,
) -> ApiResult<Json<ProviderView>> {
    Ok(Json(state.set_identity_provider(Some(&actor), &code, input).await?))
}

/// Remove the organisation's identity provider: its people can no longer sign in through it
/// (sessions already begun run to their end; revoke users to end them at once).
#[utoipa::path(delete, path = "/api/v1/organisations/{code}/identity-provider", tag = "identity providers",
    params(("code" = String, Path, description = "the organisation's code")),
    responses((status = 204), (status = 404)))]
async fn delete_provider(
    State(state): State<AppState>,
    actor: Actor,
    Path(code): Path<String>,
) -> ApiResult<StatusCode> {
    state.remove_identity_provider(Some(&actor), &code).await?;
    Ok(StatusCode::NO_CONTENT)
}
