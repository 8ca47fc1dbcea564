//! An organisation's holdings: put one, see what the index keeps for it (never
//! identifiers), remove it; and the matches its holdings have with other organisations'.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::StatusCode;
use futures::TryStreamExt;
use serde::Deserialize;
use serde::Serialize;
use tokio_util::io::{StreamReader, SyncIoBridge};
use utoipa::IntoParams;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::deadline;
use super::error::{ApiError, ApiResult};
use super::extract::{ApiPath as Path, ApiQuery as Query};
use super::json::ApiJson;
use crate::clock::rfc3339;
use crate::domain::holding::{Category, Contact, HoldingInput, Status};
use crate::domain::holding::{Change, StoredHolding};
use crate::domain::sync::SyncFormat;
use crate::domain::user::Actor;
use crate::service::redaction::MatchView;
use crate::service::sync::{SyncError, SyncOptions, SyncSummary};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_holding, put_holding, delete_holding))
        .routes(routes!(put_shielded))
        .routes(deadline::long_running_api(routes!(sync_holdings)))
        .routes(routes!(list_matches))
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
    /// How many keyed pseudonyms the index stores for this record (child and carers).
    pseudonym_count: i64,
    /// How many carers the record lists.
    carers: i64,
    /// Askers are never told who holds a shielded record; you are alerted instead.
    shielded: bool,
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
        carers: h.carers,
        shielded: h.shielded,
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
    Ok(Json(view(state.holding_of(&actor, &local_ref).await?, None)))
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

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShieldInput {
    /// `true`: never name your organisation, contact or category to an asker; alert you instead.
    shielded: bool,
}

/// Shield (or unshield) a holding without resending its identifiers: for a refuge placement or an
/// adoptive placement, where saying who holds the record would say where the child is.
#[utoipa::path(put, path = "/api/v1/holdings/{local_ref}/shielded", tag = "holdings", request_body = ShieldInput,
    params(("local_ref" = String, Path, description = "your own record reference")),
    responses((status = 200, body = HoldingView), (status = 404), (status = 422)))]
async fn put_shielded(
    State(state): State<AppState>,
    actor: Actor,
    Path(local_ref): Path<String>,
    ApiJson(input): ApiJson<ShieldInput>,
) -> ApiResult<Json<HoldingView>> {
    let holding = state.set_shielded(&actor, &local_ref, input.shielded).await?;
    Ok(Json(view(holding, None)))
}

#[derive(Serialize, ToSchema)]
pub struct MatchList {
    matches: Vec<MatchView>,
}

/// Your holdings that match another organisation's holdings.
#[utoipa::path(get, path = "/api/v1/matches", tag = "holdings", responses((status = 200, body = MatchList)))]
async fn list_matches(State(state): State<AppState>, actor: Actor) -> ApiResult<Json<MatchList>> {
    Ok(Json(MatchList { matches: state.matches_of(&actor).await? }))
}

#[derive(Deserialize, IntoParams)]
pub struct SyncQuery {
    /// Validate and count without writing anything.
    dry_run: Option<bool>,
}

/// Replace your organisation's whole caseload: holdings absent from the file are removed.
/// CSV (header row; columns local_ref,category,status,nhs_number,upn,given_name,family_name,
/// date_of_birth,postcode, optionally other_given_names, former_family_names, contact_team,
/// contact_phone, contact_email; empty cells allowed) or NDJSON (one holding object with
/// `local_ref` per line). Idempotent; one bad row never loses the others. One sync per
/// organisation runs at a time: a second answers 409 and changes nothing. `rejected` lists the
/// first 1,000 problems, `rejected_count` counts them all; a row longer than 64 KiB is rejected unread.
#[utoipa::path(post, path = "/api/v1/holdings/sync", tag = "holdings", params(SyncQuery),
    request_body(content((String = "text/csv"), (String = "application/x-ndjson")), description = "the caseload file"),
    responses((status = 200, body = SyncSummary), (status = 400, description = "unreadable file or interrupted upload"),
        (status = 409, description = "another sync of this organisation is running"), (status = 413), (status = 415),
        (status = 422, description = "the file looks like guessing a child's details (many rows sharing one name)"),
        (status = 429, description = "the organisation's daily allowance of holdings added and removed is used up")))]
async fn sync_holdings(
    State(state): State<AppState>,
    actor: Actor,
    Query(query): Query<SyncQuery>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<SyncSummary>> {
    let content_type = headers.get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let format = SyncFormat::from_content_type(content_type).ok_or_else(|| ApiError::BadRequest {
        code: "unsupported_media_type",
        message: "send the caseload as `Content-Type: text/csv` or `application/x-ndjson`".into(),
        field: None,
    })?;
    let limit = state.settings().max_sync_bytes as u64;
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    let exceeded = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader =
        LimitedReader { inner: SyncIoBridge::new(StreamReader::new(stream)), left: limit, exceeded: exceeded.clone() };
    let result = state
        .sync_holdings(
            actor.org_id,
            Some(&actor),
            format,
            reader,
            SyncOptions::dry_run(query.dry_run.unwrap_or(false)),
            &|_| {},
        )
        .await;
    match result {
        Ok(summary) => Ok(Json(summary)),
        // Rows read before the limit are kept and nothing is removed, as for any interrupted upload.
        Err(_) if exceeded.load(std::sync::atomic::Ordering::Relaxed) => Err(ApiError::TooLarge),
        Err(SyncError::Unreadable { field, message }) => {
            Err(ApiError::BadRequest { code: "unreadable_file", message, field: Some(field) })
        }
        Err(e @ SyncError::Interrupted { .. }) => {
            Err(ApiError::BadRequest { code: "interrupted", message: e.to_string(), field: None })
        }
        Err(e @ SyncError::LooksLikeEnumeration) => {
            Err(ApiError::invalid("given_name", "looks_like_enumeration", e.to_string()))
        }
        Err(e @ SyncError::Busy) => Err(ApiError::Conflict(e.to_string())),
        Err(SyncError::Service(e)) => Err(e.into()),
    }
}

/// Stops reading with an error once `left` bytes have been read, so an oversized upload is
/// refused as interrupted (and removes nothing) rather than silently cut short.
pub(crate) struct LimitedReader<R> {
    pub(crate) inner: R,
    pub(crate) left: u64,
    pub(crate) exceeded: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl<R: std::io::Read> std::io::Read for LimitedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.exceeded.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(std::io::Error::other("the caseload file is larger than max_sync_bytes"));
        }
        let n = self.inner.read(buf)?;
        match self.left.checked_sub(n as u64) {
            Some(left) => {
                self.left = left;
                Ok(n)
            }
            None => {
                self.exceeded.store(true, std::sync::atomic::Ordering::Relaxed);
                Err(std::io::Error::other("the caseload file is larger than max_sync_bytes"))
            }
        }
    }
}
