//! The IG officer's views of the audit trail: events (JSON and CSV), subject access, anomaly
//! flags, and the signed checkpoint with RFC 9162 proofs to check an event is in the log.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{ApiError, ApiResult};
use super::extract::ApiQuery as Query;
use super::json::ApiJson;
use crate::audit::checkpoint::SignedCheckpoint;
use crate::audit::merkle::leaf_hash;
use crate::clock::{parse_instant, rfc3339};
use crate::domain::identity::RawSubject;
use crate::domain::user::Actor;
use crate::service::audit::{AnomalyView, EventFilterInput, EventView, HolderView, ScopeOpening, events_csv};

/// The most rows one CSV export carries; past it, `x-next-cursor` says where to continue.
pub(crate) const CSV_CAP: usize = 100_000;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(events))
        .routes(routes!(events_csv_export))
        .routes(routes!(subject_access))
        .routes(routes!(anomalies))
        .routes(routes!(checkpoint))
        .routes(routes!(inclusion))
        .routes(routes!(consistency))
}

#[derive(Serialize, ToSchema)]
pub struct EventList {
    /// Newest first.
    events: Vec<EventView>,
    /// Pass as `before` for the next (older) page; null on the last page.
    next_cursor: Option<i64>,
}

/// Events your organisation may see: its own users' actions, and other organisations' events
/// that touched your holdings or concerned you. Filters combine; pages go newest first.
#[utoipa::path(get, path = "/api/v1/audit/events", tag = "audit", params(EventFilterInput),
    responses((status = 200, body = EventList), (status = 422)))]
async fn events(
    State(state): State<AppState>,
    actor: Actor,
    Query(filter): Query<EventFilterInput>,
) -> ApiResult<Json<EventList>> {
    let page = state.audit_events(Some(actor.org_id), &filter).await?;
    Ok(Json(EventList { events: page.events, next_cursor: page.next_cursor }))
}

/// The same events as CSV (same filters; up to 100 000 rows, then `x-next-cursor`). The export
/// itself is recorded in the audit trail.
#[utoipa::path(get, path = "/api/v1/audit/events.csv", tag = "audit", params(EventFilterInput),
    responses((status = 200, content_type = "text/csv", body = String), (status = 422)))]
async fn events_csv_export(
    State(state): State<AppState>,
    actor: Actor,
    Query(filter): Query<EventFilterInput>,
) -> ApiResult<Response> {
    let (events, next) = state.audit_events_all(Some(&actor), Some(actor.org_id), &filter, CSV_CAP).await?;
    Ok(csv_download(&events, next))
}

/// Audit events as a CSV download; `next` (the cursor of what was left out) goes in a header.
pub(crate) fn csv_download(events: &[crate::service::audit::EventView], next: Option<i64>) -> Response {
    let mut response = events_csv(events).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
    headers.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("attachment; filename=\"audit-events.csv\""));
    if let Some(cursor) = next {
        headers.insert("x-next-cursor", HeaderValue::from(cursor));
    }
    response
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubjectAccessInput {
    /// The child's identifiers, as for a lookup. Pseudonymised at once; never stored or logged.
    #[schema(value_type = Object, required = true, nullable = false)]
    subject: Option<RawSubject>,
}

#[derive(Serialize, ToSchema)]
pub struct SubjectAccessAnswer {
    /// This request's own event in the audit trail.
    request_event_id: i64,
    /// Lookups (and earlier subject access requests) within your organisation's scope that
    /// asked about this child or matched its records, newest first.
    searches: Vec<EventView>,
    /// Every participating organisation that holds a matching record.
    holders: Vec<HolderView>,
}

/// Subject access: who searched for this child, why and when, and who holds them. The request
/// is audited (without the identifiers) before the answer is given.
#[utoipa::path(post, path = "/api/v1/audit/subject-access", tag = "audit", request_body = SubjectAccessInput,
    responses((status = 200, body = SubjectAccessAnswer), (status = 422), (status = 503)))]
async fn subject_access(
    State(state): State<AppState>,
    actor: Actor,
    ApiJson(input): ApiJson<SubjectAccessInput>,
) -> ApiResult<Json<SubjectAccessAnswer>> {
    let subject = input.subject.ok_or_else(|| ApiError::invalid("subject", "required", "subject is required"))?;
    let outcome = state.subject_access(&actor, &subject).await?;
    Ok(Json(SubjectAccessAnswer {
        request_event_id: outcome.request_event_id,
        searches: outcome.searches,
        holders: outcome.holders,
    }))
}

#[derive(Deserialize, IntoParams)]
pub struct WindowQuery {
    /// From this time (RFC 3339 or YYYY-MM-DD); default seven days ago.
    from: Option<String>,
    /// Up to this time; default now.
    to: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct AnomalyList {
    from: String,
    to: String,
    /// Newest first; one entry per rule an event broke.
    anomalies: Vec<AnomalyView>,
}

/// Lookups in your scope that look out of the ordinary, each with its reason: out of hours,
/// a user's day far above their norm, repeated lookups of one child, `other` purposes, and
/// use of a token reported lost. Rules and thresholds: docs/audit.md.
#[utoipa::path(get, path = "/api/v1/audit/anomalies", tag = "audit", params(WindowQuery),
    responses((status = 200, body = AnomalyList), (status = 422)))]
async fn anomalies(
    State(state): State<AppState>,
    actor: Actor,
    Query(q): Query<WindowQuery>,
) -> ApiResult<Json<AnomalyList>> {
    let now = state.clock().now_ms();
    let parse = |field: &'static str, text: &Option<String>, default: i64| match text.as_deref() {
        None | Some("") => Ok(default),
        Some(t) => {
            parse_instant(t).ok_or_else(|| ApiError::invalid(field, "invalid_time", "use RFC 3339 or YYYY-MM-DD"))
        }
    };
    // Up to and including this millisecond, so a lookup made just now is judged too.
    let to = parse("to", &q.to, now + 1)?;
    let from = parse("from", &q.from, to - 7 * 86_400_000)?;
    if from > to {
        return Err(ApiError::invalid("from", "invalid_window", "from must not be after to"));
    }
    let anomalies = state.anomalies(actor.org_id, from, to, &state.settings().anomaly_rules).await?;
    Ok(Json(AnomalyList { from: rfc3339(from), to: rfc3339(to), anomalies }))
}

#[derive(Serialize, ToSchema)]
pub struct CheckpointAnswer {
    /// The signed note (C2SP tlog-checkpoint): keep it, or give it to a witness.
    note: String,
    origin: String,
    tree_size: u64,
    /// Hex of the RFC 9162 root hash.
    root_hash: String,
    timestamp: String,
    /// The Ed25519 key that signs checkpoints (PEM), to verify the note and exports offline.
    public_key_pem: String,
}

/// The latest signed checkpoint of the audit log, and the key that signs it.
#[utoipa::path(get, path = "/api/v1/audit/checkpoint", tag = "audit", responses((status = 200, body = CheckpointAnswer)))]
async fn checkpoint(State(state): State<AppState>, _actor: Actor) -> ApiResult<Json<CheckpointAnswer>> {
    let note = state.latest_checkpoint().await?.ok_or(ApiError::NotFound)?;
    let signed = SignedCheckpoint::from_note(&note).map_err(|_| ApiError::Internal)?;
    let c = signed.checkpoint();
    Ok(Json(CheckpointAnswer {
        origin: c.origin.clone(),
        tree_size: c.tree_size,
        root_hash: hex::encode(c.root_hash),
        timestamp: rfc3339(c.timestamp_ms),
        public_key_pem: state.audit_signer().public_key_pem(),
        note,
    }))
}

#[derive(Deserialize, IntoParams)]
pub struct InclusionQuery {
    /// The event's id (its position in the log).
    #[param(required = true, nullable = false)]
    seq: Option<i64>,
    /// The tree size to prove against; default the current head.
    tree_size: Option<u64>,
}

#[derive(Serialize, ToSchema)]
pub struct InclusionAnswer {
    seq: i64,
    tree_size: u64,
    /// The event's canonical body: SHA-256(0x00 ‖ body) is the leaf hash.
    body: String,
    leaf_hash: String,
    /// RFC 9162 audit path, hex, leaf level first.
    proof: Vec<String>,
    /// The signed checkpoint at `tree_size`, when one was kept (always for the head).
    checkpoint: Option<String>,
    /// Your organisation's opening of its commitment in the body's `scope` (v2 leaves), to
    /// check the event concerns you without learning who else it concerns.
    #[serde(skip_serializing_if = "Option::is_none")]
    scope_opening: Option<ScopeOpening>,
}

/// An RFC 9162 inclusion proof that one of your events is in the signed log.
#[utoipa::path(get, path = "/api/v1/audit/proof/inclusion", tag = "audit", params(InclusionQuery),
    responses((status = 200, body = InclusionAnswer), (status = 404), (status = 422)))]
async fn inclusion(
    State(state): State<AppState>,
    actor: Actor,
    Query(q): Query<InclusionQuery>,
) -> ApiResult<Json<InclusionAnswer>> {
    let seq = q.seq.ok_or_else(|| ApiError::invalid("seq", "required", "seq (the event id) is required"))?;
    // Only an event within your scope: another organisation's is simply not found.
    let event = state.audit_event_in_scope(actor.org_id, seq).await?.ok_or(ApiError::NotFound)?;
    let (tree_size, note) = state.audit_tree_at(q.tree_size).await?;
    let index = u64::try_from(seq).map_err(|_| ApiError::NotFound)?;
    let proof = state.audit_inclusion_proof(index, tree_size).await?;
    Ok(Json(InclusionAnswer {
        seq,
        tree_size,
        body: String::from_utf8_lossy(&event.body).into_owned(),
        // The hash of the body served: a body changed in the database fails the proof.
        leaf_hash: hex::encode(leaf_hash(&event.body)),
        proof: proof.iter().map(hex::encode).collect(),
        checkpoint: note,
        scope_opening: state.scope_opening(actor.org_id, index, &event.body),
    }))
}

#[derive(Deserialize, IntoParams)]
pub struct ConsistencyQuery {
    /// The size of the checkpoint you already hold.
    #[param(required = true, nullable = false)]
    from: Option<u64>,
    /// The larger size to prove against; default the current head.
    to: Option<u64>,
}

#[derive(Serialize, ToSchema)]
pub struct ConsistencyAnswer {
    from: u64,
    to: u64,
    /// RFC 9162 consistency proof, hex.
    proof: Vec<String>,
    checkpoint: Option<String>,
}

/// An RFC 9162 consistency proof that the log at `from` is a prefix of the log at `to`:
/// nothing you saw before has been changed or removed since.
#[utoipa::path(get, path = "/api/v1/audit/proof/consistency", tag = "audit", params(ConsistencyQuery),
    responses((status = 200, body = ConsistencyAnswer), (status = 422)))]
async fn consistency(
    State(state): State<AppState>,
    _actor: Actor,
    Query(q): Query<ConsistencyQuery>,
) -> ApiResult<Json<ConsistencyAnswer>> {
    let from = q.from.ok_or_else(|| ApiError::invalid("from", "required", "from (the older tree size) is required"))?;
    let (to, note) = state.audit_tree_at(q.to).await?;
    let proof = state.audit_consistency_proof(from, to).await?;
    Ok(Json(ConsistencyAnswer { from, to, proof: proof.iter().map(hex::encode).collect(), checkpoint: note }))
}
