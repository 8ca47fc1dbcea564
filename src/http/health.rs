//! Probes and metrics: `/healthz` (the process answers), `/readyz` (the database answers, is
//! migrated, the audit trail can be written, and the lookup prefilter is loaded), `/metrics`
//! (Prometheus text). None needs a token; none reveals data.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{ApiError, ApiResult};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(healthz)).routes(routes!(readyz)).routes(routes!(metrics))
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    status: &'static str,
}

/// Liveness: the process is up and answering.
#[utoipa::path(get, path = "/healthz", tag = "operations", security(()), responses((status = 200, body = Health)))]
async fn healthz() -> axum::Json<Health> {
    axum::Json(Health { status: "ok" })
}

/// Readiness: the database is reachable, every migration is applied, the audit trail can be
/// written (after a failed append, not until an append or the writer's probe succeeds: a node
/// that cannot record answers every lookup 503), and the node has tried loading its lookup
/// prefilter (until then every lookup would cost the database ~30 times more).
#[utoipa::path(get, path = "/readyz", tag = "operations", security(()),
    responses((status = 200, body = Health), (status = 503, description = "not ready")))]
async fn readyz(State(state): State<AppState>) -> ApiResult<axum::Json<Health>> {
    if let Some(reason) = state.not_ready().await {
        return Err(ApiError::Unavailable(reason));
    }
    Ok(axum::Json(Health { status: "ready" }))
}

/// Prometheus metrics: request counts and latency by route template, and the audit writer's
/// backlog of searches to index for subject access.
#[utoipa::path(get, path = "/metrics", tag = "operations", security(()),
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let mut text = state.metrics.render();
    // Read at scrape time (a count of a table the audit writer keeps small): a number that only
    // grows means the writer cannot index, and subject access scans ever more rows beside the index.
    match state.searches_unindexed().await {
        Ok(n) => super::metrics::gauge(
            &mut text,
            "audit_searches_unindexed",
            "Searches whose pseudonyms wait to be indexed for subject access.",
            n,
        ),
        Err(e) => tracing::warn!(error = %e, "metrics: unindexed searches not counted"),
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}
