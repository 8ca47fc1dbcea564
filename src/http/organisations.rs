//! The directory: every signed-in user searches it; operators add and change entries.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::ApiResult;
use super::extract::{ApiPath as Path, ApiQuery as Query};
use super::json::ApiJson;
use crate::domain::organisation::{Organisation, OrganisationInput};
use crate::domain::user::Actor;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(search_organisations, add_organisation))
        .routes(routes!(get_organisation, update_organisation))
}

#[derive(Deserialize, IntoParams)]
pub struct DirectoryQuery {
    /// Text to find in an organisation's name or code (case-insensitive). Empty lists all.
    q: Option<String>,
    /// Operators only: include inactive organisations.
    include_inactive: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct Directory {
    organisations: Vec<Organisation>,
}

/// Search the directory of participating organisations and their duty lines.
#[utoipa::path(get, path = "/api/v1/organisations", tag = "directory", params(DirectoryQuery),
    responses((status = 200, body = Directory), (status = 401)))]
async fn search_organisations(
    State(state): State<AppState>,
    actor: Actor,
    Query(query): Query<DirectoryQuery>,
) -> ApiResult<Json<Directory>> {
    let organisations = state
        .search_directory(&actor, query.q.as_deref().unwrap_or(""), query.include_inactive.unwrap_or(false))
        .await?;
    Ok(Json(Directory { organisations }))
}

/// One directory entry by code.
#[utoipa::path(get, path = "/api/v1/organisations/{code}", tag = "directory",
    params(("code" = String, Path, description = "ONS, ODS, URN or free code")),
    responses((status = 200, body = Organisation), (status = 404)))]
async fn get_organisation(State(state): State<AppState>, Path(code): Path<String>) -> ApiResult<Json<Organisation>> {
    Ok(Json(state.organisation_by_code(&code).await?))
}

/// Add an organisation to the directory (operators).
#[utoipa::path(post, path = "/api/v1/organisations", tag = "directory", request_body = OrganisationInput,
    responses((status = 201, body = Organisation), (status = 409, description = "code already in use"), (status = 422)))]
async fn add_organisation(
    State(state): State<AppState>,
    actor: Actor,
    ApiJson(input): ApiJson<OrganisationInput>,
) -> ApiResult<(StatusCode, Json<Organisation>)> {
    let new = input.into_new()?;
    let org = state.add_organisation(Some(&actor), &new).await?;
    Ok((StatusCode::CREATED, Json(org)))
}

/// Change an organisation's name, kind, contacts or active flag (operators).
#[utoipa::path(patch, path = "/api/v1/organisations/{code}", tag = "directory", request_body = OrganisationInput,
    params(("code" = String, Path, description = "the organisation's code")),
    responses((status = 200, body = Organisation), (status = 404), (status = 422)))]
async fn update_organisation(
    State(state): State<AppState>,
    actor: Actor,
    Path(code): Path<String>,
    ApiJson(input): ApiJson<OrganisationInput>,
) -> ApiResult<Json<Organisation>> {
    let changes = input.into_changes()?;
    let org = state.update_organisation(Some(&actor), &code, &changes).await?;
    Ok(Json(org))
}
