//! OAuth clients (systems): an org-admin registers, lists and revokes its organisation's clients,
//! and turns the organisation's long-lived API tokens off or on. The token endpoint is `oauth`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::ApiResult;
use super::extract::ApiPath as Path;
use super::json::ApiJson;
use crate::domain::FieldError;
use crate::domain::client::ApiClient;
use crate::domain::organisation::parse_label;
use crate::domain::role::Role;
use crate::domain::user::Actor;
use crate::service::clients::TokenPolicy;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_clients, register_client))
        .routes(routes!(revoke_client))
        .routes(routes!(get_token_policy, set_token_policy))
}

#[derive(Serialize, ToSchema)]
pub struct ClientList {
    clients: Vec<ApiClient>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewClientInput {
    /// The system's name, e.g. "Case management (Mosaic)".
    name: String,
    /// The role the client acts as: `practitioner`, `ig-officer` or `org-admin` (never `operator`).
    role: String,
    /// The client's public key as a JWK: RSA (2048 bits or more) or EC (P-256, P-384). Never a
    /// private key or a shared secret: those are refused, and never stored.
    #[schema(value_type = Object)]
    jwk: Value,
    /// The signing algorithm, when the JWK has no `alg`: RS256, RS384, RS512, PS256, PS384,
    /// PS512 (RSA; required), ES256 or ES384 (EC; follows the curve).
    alg: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct RegisteredClient {
    client: ApiClient,
    /// Where the client asks for access tokens; also the `aud` its assertions must carry.
    token_endpoint: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenPolicyInput {
    /// `false` refuses the organisation's long-lived API tokens (401); `true` accepts them again.
    long_lived_tokens: bool,
}

/// The caller's organisation's clients, revoked ones included.
#[utoipa::path(get, path = "/api/v1/clients", tag = "clients", responses((status = 200, body = ClientList), (status = 403)))]
async fn list_clients(State(state): State<AppState>, actor: Actor) -> ApiResult<Json<ClientList>> {
    Ok(Json(ClientList { clients: state.clients_of(&actor).await? }))
}

/// Register a system as an OAuth client of the caller's organisation, by its public key. It
/// then gets access tokens from `POST /oauth/token` (docs/integrators.md).
#[utoipa::path(post, path = "/api/v1/clients", tag = "clients", request_body = NewClientInput,
    responses((status = 201, body = RegisteredClient), (status = 403), (status = 422)))]
async fn register_client(
    State(state): State<AppState>,
    actor: Actor,
    ApiJson(input): ApiJson<NewClientInput>,
) -> ApiResult<(StatusCode, Json<RegisteredClient>)> {
    let name = parse_label("name", &input.name, 200)?;
    let role = Role::parse(&input.role)
        .ok_or_else(|| FieldError::new("role", "invalid_role", "role must be practitioner, ig-officer or org-admin"))?;
    let client = state.register_client(&actor, &name, role, &input.jwk, input.alg.as_deref()).await?;
    let token_endpoint = state.settings().oauth.token_endpoint.clone();
    Ok((StatusCode::CREATED, Json(RegisteredClient { client, token_endpoint })))
}

/// Revoke a client: its access tokens stop working on the next request, and it gets no more.
#[utoipa::path(delete, path = "/api/v1/clients/{client_id}", tag = "clients",
    params(("client_id" = String, Path, description = "the client's client_id")),
    responses((status = 200, body = ApiClient), (status = 404)))]
async fn revoke_client(
    State(state): State<AppState>,
    actor: Actor,
    Path(client_id): Path<String>,
) -> ApiResult<Json<ApiClient>> {
    Ok(Json(state.revoke_client(&actor, &client_id).await?))
}

/// Whether the organisation accepts long-lived API tokens (an org-admin: its own; an operator: any).
#[utoipa::path(get, path = "/api/v1/organisations/{code}/token-policy", tag = "clients",
    params(("code" = String, Path, description = "the organisation's code")),
    responses((status = 200, body = TokenPolicy), (status = 404)))]
async fn get_token_policy(
    State(state): State<AppState>,
    actor: Actor,
    Path(code): Path<String>,
) -> ApiResult<Json<TokenPolicy>> {
    Ok(Json(state.token_policy(&actor, &code).await?))
}

/// Turn the organisation's long-lived API tokens off (systems then use client credentials) or on.
/// Web sign-in is unaffected. An org-admin: its own organisation; an operator: any.
#[utoipa::path(put, path = "/api/v1/organisations/{code}/token-policy", tag = "clients",
    params(("code" = String, Path, description = "the organisation's code")), request_body = TokenPolicyInput,
    responses((status = 200, body = TokenPolicy), (status = 404)))]
async fn set_token_policy(
    State(state): State<AppState>,
    actor: Actor,
    Path(code): Path<String>,
    ApiJson(input): ApiJson<TokenPolicyInput>,
) -> ApiResult<Json<TokenPolicy>> {
    Ok(Json(state.set_token_policy(&actor, &code, input.long_lived_tokens).await?))
}
