//! Record requests: `POST /api/v1/requests` from a match, the inbox, one request with its
//! history, and the steps (acknowledge, fulfil, decline, withdraw). Only the two organisations see one.

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{ApiError, ApiResult};
use super::extract::{ApiPath as Path, ApiQuery as Query};
use super::json::{ApiJson, OptionalJson};
use crate::clock::rfc3339;
use crate::domain::FieldError;
use crate::domain::organisation::Organisation;
use crate::domain::request::{Action, LegalBasis, RequestInput, RequestState, Side, StepInput, Urgency};
use crate::domain::user::Actor;
use crate::store::requests::{RequestEventRow, RequestFilter, StoredRequest};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_request, list_requests))
        .routes(routes!(get_request))
        .routes(routes!(acknowledge))
        .routes(routes!(fulfil))
        .routes(routes!(decline))
        .routes(routes!(withdraw))
}

/// A request as either organisation sees it.
#[derive(Serialize, ToSchema)]
pub struct RequestView {
    request_id: String,
    /// `requested`, `acknowledged`, `fulfilled`, `declined` or `withdrawn`.
    state: RequestState,
    match_id: String,
    /// Your organisation's side: `requester` or `holder`.
    your_side: Side,
    legal_basis: LegalBasis,
    legal_basis_detail: Option<String>,
    /// Why the record is needed (not case details).
    reason: String,
    urgency: Urgency,
    created_at: String,
    updated_at: String,
    /// When the holder should have answered (fulfilled or declined).
    due_at: String,
    /// Open and past its deadline.
    overdue: bool,
    /// When the overdue request was escalated to the holder (once).
    escalated_at: Option<String>,
    requesting_organisation: Organisation,
    /// The practitioner who asked.
    requested_by: String,
    /// Absent for the requester when the record is shielded: the holder contacts you.
    #[serde(skip_serializing_if = "Option::is_none")]
    holding_organisation: Option<Organisation>,
    /// The record was shielded: the index never names its holder to the requester.
    shielded: bool,
    /// The holder's own record reference (shown to the holder only).
    #[serde(skip_serializing_if = "Option::is_none")]
    local_ref: Option<String>,
    /// Every step, oldest first (on single-request answers).
    #[serde(skip_serializing_if = "Option::is_none")]
    history: Option<Vec<HistoryEntry>>,
}

#[derive(Serialize, ToSchema)]
pub struct HistoryEntry {
    at: String,
    /// `created`, `acknowledged`, `fulfilled`, `declined`, `withdrawn` or `escalated`.
    action: String,
    from_state: Option<String>,
    to_state: String,
    /// Who took the step (absent for the system's escalation).
    by: Option<String>,
    by_organisation: Option<String>,
    /// fulfil: how the record was sent, its reference and when.
    #[serde(skip_serializing_if = "Option::is_none")]
    how: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reference: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sent_at: Option<String>,
    /// The note or reason given with the step.
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct RequestList {
    requests: Vec<RequestView>,
}

/// Builds views, loading each organisation once.
struct Views<'a> {
    state: &'a AppState,
    actor: &'a Actor,
    orgs: HashMap<i64, Organisation>,
}

impl<'a> Views<'a> {
    fn new(state: &'a AppState, actor: &'a Actor) -> Self {
        Views { state, actor, orgs: HashMap::new() }
    }

    async fn org(&mut self, id: i64) -> ApiResult<Organisation> {
        if let Some(org) = self.orgs.get(&id) {
            return Ok(org.clone());
        }
        let org = self.state.store.organisation_by_id(id).await?;
        self.orgs.insert(id, org.clone());
        Ok(org)
    }

    async fn view(&mut self, r: StoredRequest, history: Option<Vec<RequestEventRow>>) -> ApiResult<RequestView> {
        let now = self.state.clock.now_ms();
        let your_side = r.side_of(self.actor.org_id).ok_or(ApiError::NotFound)?;
        let hide_holder = r.hides_holder_from(self.actor.org_id);
        Ok(RequestView {
            overdue: r.is_overdue(now),
            requesting_organisation: self.org(r.requester_org_id).await?,
            holding_organisation: if hide_holder { None } else { Some(self.org(r.holder_org_id).await?) },
            shielded: r.holder_shielded,
            local_ref: if your_side == Side::Holder { r.local_ref } else { None },
            request_id: r.request_id,
            state: r.state,
            match_id: r.match_id,
            your_side,
            legal_basis: r.legal_basis,
            legal_basis_detail: r.legal_basis_detail,
            reason: r.reason,
            urgency: r.urgency,
            created_at: rfc3339(r.created_at),
            updated_at: rfc3339(r.updated_at),
            due_at: rfc3339(r.due_at),
            escalated_at: r.escalated_at.map(rfc3339),
            requested_by: r.requester_name,
            history: history.map(|h| h.into_iter().map(history_entry).collect()),
        })
    }
}

fn history_entry(e: RequestEventRow) -> HistoryEntry {
    HistoryEntry {
        at: rfc3339(e.at),
        action: e.action,
        from_state: e.from_state,
        to_state: e.to_state,
        by: e.actor_name,
        by_organisation: e.actor_org_code,
        how: e.how,
        reference: e.reference,
        sent_at: e.sent_at.map(rfc3339),
        note: e.note,
    }
}

/// Request the record behind a match (a lookup's `lm_…` or a holding match's `m_…`). Give a
/// legal basis, a short reason (at most 500 characters, **not for case details**) and an
/// urgency: `immediate` (hours), `urgent` (24 hours) or `routine` (10 working days). The holding
/// organisation is notified; the deadline is in `due_at`.
#[utoipa::path(post, path = "/api/v1/requests", tag = "requests", request_body = RequestInput,
    responses((status = 201, body = RequestView), (status = 404, description = "no such match for your organisation"),
        (status = 409, description = "an open request already exists, or the match was withdrawn"), (status = 422)))]
async fn create_request(
    State(state): State<AppState>,
    actor: Actor,
    ApiJson(input): ApiJson<RequestInput>,
) -> ApiResult<(StatusCode, Json<RequestView>)> {
    let request = state.create_request(&actor, input).await?;
    let history = state.store.request_history(&request.request_id).await?;
    let view = Views::new(&state, &actor).view(request, Some(history)).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

#[derive(Deserialize, IntoParams)]
pub struct ListQuery {
    /// `holder` (requests to your organisation: the inbox) or `requester` (yours); default both.
    role: Option<String>,
    /// Only requests in this state.
    state: Option<String>,
    /// `true`: only open requests past their deadline; `false`: only the others.
    overdue: Option<String>,
    /// At most this many, newest first (default 100, at most 1000).
    limit: Option<i64>,
}

/// Your organisation's requests: the inbox (`role=holder`) and the ones it made
/// (`role=requester`), with deadlines and an `overdue` flag.
#[utoipa::path(get, path = "/api/v1/requests", tag = "requests", params(ListQuery),
    responses((status = 200, body = RequestList), (status = 422)))]
async fn list_requests(
    State(state): State<AppState>,
    actor: Actor,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<RequestList>> {
    let mut errors = Vec::new();
    let side = match q.role.as_deref() {
        None | Some("") => None,
        Some("holder") => Some(Side::Holder),
        Some("requester") => Some(Side::Requester),
        Some(_) => {
            errors.push(FieldError::new("role", "invalid_role", "role must be holder or requester"));
            None
        }
    };
    let request_state = match q.state.as_deref() {
        None | Some("") => None,
        Some(s) => RequestState::parse(s).or_else(|| {
            errors.push(FieldError::new(
                "state",
                "invalid_state",
                "state must be requested, acknowledged, fulfilled, declined or withdrawn",
            ));
            None
        }),
    };
    let overdue = match q.overdue.as_deref() {
        None | Some("") => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => {
            errors.push(FieldError::new("overdue", "invalid_value", "overdue must be true or false"));
            None
        }
    };
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }
    let filter = RequestFilter { side, state: request_state, overdue, limit: q.limit.unwrap_or(100).clamp(1, 1000) };
    let rows = state.list_requests(&actor, &filter).await?;
    let mut views = Views::new(&state, &actor);
    let mut requests = Vec::with_capacity(rows.len());
    for r in rows {
        requests.push(views.view(r, None).await?);
    }
    Ok(Json(RequestList { requests }))
}

/// One request with its full history. Only the requesting and the holding organisations see
/// it; anyone else gets 404.
#[utoipa::path(get, path = "/api/v1/requests/{id}", tag = "requests",
    params(("id" = String, Path, description = "the request_id")),
    responses((status = 200, body = RequestView), (status = 404)))]
async fn get_request(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<RequestView>> {
    let (request, history) = state.request_view(&actor, &id).await?;
    Ok(Json(Views::new(&state, &actor).view(request, Some(history)).await?))
}

async fn step(
    state: AppState,
    actor: Actor,
    id: String,
    action: Action,
    input: StepInput,
) -> ApiResult<Json<RequestView>> {
    let request = state.request_step(&actor, &id, action, input).await?;
    let history = state.store.request_history(&request.request_id).await?;
    Ok(Json(Views::new(&state, &actor).view(request, Some(history)).await?))
}

/// The holder has seen the request and is working on it. Optional `note` (not case details).
#[utoipa::path(post, path = "/api/v1/requests/{id}/acknowledge", tag = "requests", request_body(content = Option<StepInput>),
    params(("id" = String, Path, description = "the request_id")),
    responses((status = 200, body = RequestView), (status = 403, description = "only the holder acknowledges"),
        (status = 404), (status = 409, description = "not allowed from the current state")))]
async fn acknowledge(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    OptionalJson(input): OptionalJson<StepInput>,
) -> ApiResult<Json<RequestView>> {
    step(state, actor, id, Action::Acknowledge, input).await
}

/// The holder has sent the record: `how` (`secure-email`, `secure-transfer`, `post`,
/// `in-person`, `other`), optional `reference`, `sent_at` (default now) and `note`. The record
/// itself never passes through the index.
#[utoipa::path(post, path = "/api/v1/requests/{id}/fulfil", tag = "requests", request_body = StepInput,
    params(("id" = String, Path, description = "the request_id")),
    responses((status = 200, body = RequestView), (status = 403), (status = 404), (status = 409), (status = 422)))]
async fn fulfil(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    OptionalJson(input): OptionalJson<StepInput>,
) -> ApiResult<Json<RequestView>> {
    step(state, actor, id, Action::Fulfil, input).await
}

/// The holder will not send the record: `reason` is required and the requester sees it
/// (at most 500 characters, not for case details).
#[utoipa::path(post, path = "/api/v1/requests/{id}/decline", tag = "requests", request_body = StepInput,
    params(("id" = String, Path, description = "the request_id")),
    responses((status = 200, body = RequestView), (status = 403), (status = 404), (status = 409), (status = 422)))]
async fn decline(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    OptionalJson(input): OptionalJson<StepInput>,
) -> ApiResult<Json<RequestView>> {
    step(state, actor, id, Action::Decline, input).await
}

/// The requester no longer needs the record. Optional `reason`.
#[utoipa::path(post, path = "/api/v1/requests/{id}/withdraw", tag = "requests", request_body(content = Option<StepInput>),
    params(("id" = String, Path, description = "the request_id")),
    responses((status = 200, body = RequestView), (status = 403, description = "only the requester withdraws"),
        (status = 404), (status = 409)))]
async fn withdraw(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    OptionalJson(input): OptionalJson<StepInput>,
) -> ApiResult<Json<RequestView>> {
    step(state, actor, id, Action::Withdraw, input).await
}
