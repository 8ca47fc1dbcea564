//! An organisation's holdings: put one, see what the index keeps for it (never
//! identifiers), remove it; and the matches its holdings have with other organisations'.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::ApiResult;
use super::json::ApiJson;
use crate::clock::rfc3339;
use crate::domain::holding::{Category, Contact, HoldingInput, Status};
use crate::domain::organisation::Organisation;
use crate::domain::user::Actor;
use crate::store::holdings::{Change, StoredHolding};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_holding, put_holding, delete_holding)).routes(routes!(list_matches))
}

/// What the index holds for one of your records: no identifier is kept, only pseudonyms.
#[derive(Serialize, ToSchema)]
pub struct HoldingView {
    local_ref: String,
    category: Category,
    status: Status,
    closed_at: Option<String>,
    /// Who to call; empty parts fall back to the organisation's duty line.
    contact: Contact,
    /// How many keyed pseudonyms the index stores for this record.
    pseudonym_count: i64,
    /// The index key the pseudonyms were made under.
    key_id: String,
    created_at: String,
    updated_at: String,
    /// `added`, `updated` or `unchanged` (PUT only).
    #[serde(skip_serializing_if = "Option::is_none")]
    change: Option<&'static str>,
}

fn view(h: StoredHolding, change: Option<Change>) -> HoldingView {
    HoldingView {
        local_ref: h.local_ref,
        category: h.category,
        status: h.status,
        closed_at: h.closed_at.map(rfc3339),
        contact: h.contact,
        pseudonym_count: h.pseudonym_count,
        key_id: h.key_id,
        created_at: rfc3339(h.created_at),
        updated_at: rfc3339(h.updated_at),
        change: change.map(|c| match c {
            Change::Added => "added",
            Change::Updated => "updated",
            Change::Unchanged => "unchanged",
        }),
    }
}

/// Create or replace the holding with this local reference. The identifiers become keyed
/// pseudonyms at once and are not stored.
#[utoipa::path(put, path = "/api/v1/holdings/{local_ref}", tag = "holdings", request_body = HoldingInput,
    params(("local_ref" = String, Path, description = "your own record reference")),
    responses((status = 201, body = HoldingView, description = "added"), (status = 200, body = HoldingView, description = "updated or unchanged"), (status = 422)))]
async fn put_holding(
    State(state): State<AppState>,
    actor: Actor,
    Path(local_ref): Path<String>,
    ApiJson(input): ApiJson<HoldingInput>,
) -> ApiResult<(StatusCode, Json<HoldingView>)> {
    let (change, holding) = state.put_holding(&actor, &local_ref, input).await?;
    let status = if change == Change::Added { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(view(holding, Some(change)))))
}

/// What the index holds for one of your records.
#[utoipa::path(get, path = "/api/v1/holdings/{local_ref}", tag = "holdings",
    params(("local_ref" = String, Path, description = "your own record reference")),
    responses((status = 200, body = HoldingView), (status = 404)))]
async fn get_holding(
    State(state): State<AppState>,
    actor: Actor,
    Path(local_ref): Path<String>,
) -> ApiResult<Json<HoldingView>> {
    Ok(Json(view(state.store.holding(actor.org_id, &local_ref).await?, None)))
}

/// Remove a holding; its matches are withdrawn for both organisations.
#[utoipa::path(delete, path = "/api/v1/holdings/{local_ref}", tag = "holdings",
    params(("local_ref" = String, Path, description = "your own record reference")),
    responses((status = 204), (status = 404)))]
async fn delete_holding(
    State(state): State<AppState>,
    actor: Actor,
    Path(local_ref): Path<String>,
) -> ApiResult<StatusCode> {
    state.delete_holding(&actor, &local_ref).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct MatchList {
    matches: Vec<MatchView>,
}

#[derive(Serialize, ToSchema)]
pub struct MatchView {
    /// The same id is seen by both organisations; request the record with it.
    match_id: String,
    local_ref: String,
    other_organisation: Organisation,
    tier: String,
    /// `child` (the child's keys agree) or `carer` (a parent or carer's keys agree).
    basis: String,
    evidence: String,
    first_seen: String,
}

/// Your holdings that match another organisation's holdings.
#[utoipa::path(get, path = "/api/v1/matches", tag = "holdings", responses((status = 200, body = MatchList)))]
async fn list_matches(State(state): State<AppState>, actor: Actor) -> ApiResult<Json<MatchList>> {
    let rows = state.store.matches_of_org(actor.org_id, false).await?;
    let mut matches = Vec::with_capacity(rows.len());
    for m in rows {
        let other = state.store.organisation_by_id(m.other_org).await?;
        matches.push(MatchView {
            match_id: m.match_id,
            local_ref: m.own_local_ref,
            other_organisation: other,
            tier: m.tier,
            basis: m.basis,
            evidence: m.evidence,
            first_seen: rfc3339(m.first_seen),
        });
    }
    Ok(Json(MatchList { matches }))
}
