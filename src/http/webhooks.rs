//! The organisation's webhook (`PUT`/`GET`/`DELETE /api/v1/webhook`) and its outbox
//! (`GET /api/v1/outbox`): every notification, with attempts, last error and state.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{ApiError, ApiResult};
use super::extract::ApiQuery as Query;
use super::json::ApiJson;
use crate::clock::rfc3339;
use crate::domain::FieldError;
use crate::domain::cursor::PageCursor;
use crate::domain::user::Actor;
use crate::domain::webhook::{OutboxRow, OutboxState};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_webhook, put_webhook, delete_webhook)).routes(routes!(list_outbox))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookInput {
    /// Where notifications are POSTed: an `https://` URL.
    #[schema(required = true, nullable = false)]
    url: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct WebhookView {
    url: String,
    /// Goes up by one each time the webhook is set; each version has its own secret.
    secret_version: i64,
    updated_at: String,
    /// The HMAC-SHA256 key for `X-Locator-Signature`: shown only in the answer to PUT. Store it
    /// now; setting the webhook again issues a new one.
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
}

/// Set where your organisation's notifications go (new matches, withdrawn matches, record
/// requests and their changes, overdue requests). The answer shows the signing secret once.
#[utoipa::path(put, path = "/api/v1/webhook", tag = "webhooks", request_body = WebhookInput,
    responses((status = 200, body = WebhookView), (status = 422)))]
async fn put_webhook(
    State(state): State<AppState>,
    actor: Actor,
    ApiJson(input): ApiJson<WebhookInput>,
) -> ApiResult<Json<WebhookView>> {
    let (hook, secret) = state.set_webhook(&actor, input.url.as_deref()).await?;
    Ok(Json(WebhookView {
        url: hook.url,
        secret_version: hook.secret_version,
        updated_at: rfc3339(hook.updated_at),
        secret: Some(secret),
    }))
}

/// Your organisation's webhook (without its secret); 404 when none is set.
#[utoipa::path(get, path = "/api/v1/webhook", tag = "webhooks", responses((status = 200, body = WebhookView), (status = 404)))]
async fn get_webhook(State(state): State<AppState>, actor: Actor) -> ApiResult<Json<WebhookView>> {
    let hook = state.webhook_of(&actor).await?.ok_or(ApiError::NotFound)?;
    Ok(Json(WebhookView {
        url: hook.url,
        secret_version: hook.secret_version,
        updated_at: rfc3339(hook.updated_at),
        secret: None,
    }))
}

/// Stop webhook delivery. Messages stay in the outbox (pending) until a webhook is set again.
#[utoipa::path(delete, path = "/api/v1/webhook", tag = "webhooks", responses((status = 204), (status = 404)))]
async fn delete_webhook(State(state): State<AppState>, actor: Actor) -> ApiResult<StatusCode> {
    if state.delete_webhook(&actor).await? { Ok(StatusCode::NO_CONTENT) } else { Err(ApiError::NotFound) }
}

#[derive(Deserialize, IntoParams)]
pub struct OutboxQuery {
    /// `pending` (waiting or retrying), `delivered` or `dead` (gave up: undeliverable).
    state: Option<String>,
    /// At most this many, newest first (default 100, at most 1000).
    limit: Option<i64>,
    /// The previous page's `next_cursor`: the page after it.
    before: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct OutboxList {
    messages: Vec<OutboxMessage>,
    /// Pass as `before` for the next page (an opaque cursor); null on the last page.
    next_cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct OutboxMessage {
    /// Also sent as `id` in the delivered body and as `X-Locator-Delivery`.
    id: String,
    /// `match.new`, `match.withdrawn`, `request.created`, `request.state_changed`, `request.overdue`.
    kind: String,
    /// `pending`, `delivered` or `dead`.
    state: &'static str,
    created_at: String,
    attempts: i64,
    /// When the next attempt is due (pending only).
    next_attempt_at: Option<String>,
    delivered_at: Option<String>,
    /// What went wrong last time, e.g. `HTTP 500` or `could not connect`.
    last_error: Option<String>,
    dead_at: Option<String>,
    /// What is (or was) sent as `data`: ids, tiers and directory entries, never identifiers.
    #[schema(value_type = Object)]
    payload: serde_json::Value,
}

fn message(row: OutboxRow) -> OutboxMessage {
    let state = if row.delivered_at.is_some() {
        "delivered"
    } else if row.dead_at.is_some() {
        "dead"
    } else {
        "pending"
    };
    OutboxMessage {
        id: format!("ob_{}", row.id),
        kind: row.kind,
        state,
        created_at: rfc3339(row.created_at),
        attempts: row.attempts,
        next_attempt_at: (state == "pending").then(|| rfc3339(row.next_attempt_at)),
        delivered_at: row.delivered_at.map(rfc3339),
        last_error: row.last_error,
        dead_at: row.dead_at.map(rfc3339),
        payload: row.payload,
    }
}

/// Your organisation's notifications, newest first: what was delivered, what is waiting or
/// retrying, and what could not be delivered (`dead`).
#[utoipa::path(get, path = "/api/v1/outbox", tag = "webhooks", params(OutboxQuery),
    responses((status = 200, body = OutboxList), (status = 422)))]
async fn list_outbox(
    State(state): State<AppState>,
    actor: Actor,
    Query(q): Query<OutboxQuery>,
) -> ApiResult<Json<OutboxList>> {
    let filter = match q.state.as_deref() {
        None | Some("") => None,
        Some(s) => Some(OutboxState::parse(s).ok_or_else(|| {
            ApiError::from(FieldError::new("state", "invalid_state", "state must be pending, delivered or dead"))
        })?),
    };
    let after = PageCursor::param("before", q.before.as_deref())?;
    let (rows, next) = state.outbox_page(&actor, filter, after, q.limit).await?;
    let next_cursor = next.map(|c| c.encode());
    Ok(Json(OutboxList { messages: rows.into_iter().map(message).collect(), next_cursor }))
}
