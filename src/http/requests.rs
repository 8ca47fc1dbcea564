//! Record requests: `POST /api/v1/requests` from a match, the inbox, one request with its
//! history, and the steps (acknowledge, fulfil, decline, withdraw). Only the two organisations see one.

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
use crate::domain::FieldError;
use crate::domain::cursor::PageCursor;
use crate::domain::request::RequestFilter;
use crate::domain::request::{Action, RequestInput, RequestState, Side, StepInput};
use crate::domain::user::Actor;
use crate::service::redaction::RequestView;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_request, list_requests))
        .routes(routes!(get_request))
        .routes(routes!(acknowledge))
        .routes(routes!(fulfil))
        .routes(routes!(decline))
        .routes(routes!(withdraw))
}

#[derive(Serialize, ToSchema)]
pub struct RequestList {
    requests: Vec<RequestView>,
    /// Pass as `before` for the next page (an opaque cursor); null on the last page.
    next_cursor: Option<String>,
}

/// Request the record behind a match (a lookup's `lm_…` or a holding match's `m_…`). Give a
/// legal basis, a short reason (at most 500 characters, **not for case details**) and an
/// urgency: `immediate` (hours), `urgent` (24 hours) or `routine` (10 working days). The holding
/// organisation is notified; the deadline is in `due_at`.
#[utoipa::path(post, path = "/api/v1/requests", tag = "requests", request_body = RequestInput,
    responses((status = 201, body = RequestView), (status = 404, description = "no such match for your organisation"),
        (status = 409, description = "`request_already_open`: your organisation has an open request for this record (named in `error.request_id`); or the match was withdrawn"), (status = 422)))]
async fn create_request(
    State(state): State<AppState>,
    actor: Actor,
    ApiJson(input): ApiJson<RequestInput>,
) -> ApiResult<(StatusCode, Json<RequestView>)> {
    Ok((StatusCode::CREATED, Json(state.create_request(&actor, input).await?)))
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
    /// The previous page's `next_cursor`: the page after it.
    before: Option<String>,
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
    let after = PageCursor::param("before", q.before.as_deref()).unwrap_or_else(|e| {
        errors.push(e);
        None
    });
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let filter = RequestFilter { side, state: request_state, overdue, limit, after };
    let requests = state.list_requests(&actor, &filter).await?;
    let next_cursor = PageCursor::after_page(&requests, limit, |r| PageCursor::new(r.created_at, r.request_id.clone()))
        .map(|c| c.encode());
    Ok(Json(RequestList { requests, next_cursor }))
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
    Ok(Json(state.request_view(&actor, &id).await?))
}

async fn step(
    state: AppState,
    actor: Actor,
    id: String,
    action: Action,
    input: StepInput,
) -> ApiResult<Json<RequestView>> {
    Ok(Json(state.request_step(&actor, &id, action, input).await?))
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
