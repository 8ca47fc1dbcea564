//! How long a request may take. Every route gets the configured budget (`deadline`, one layer
//! round the whole app); a route that streams a large upload says so on its own line with
//! `long_running`, so no path is named here.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use tokio::time::Instant;

use super::AppState;
use super::error::ApiError;

/// A long-running route's budget: a caseload sync streams a large file and is bounded by its size
/// limit instead, within an hour.
pub const LONG_RUNNING: Duration = Duration::from_secs(3600);

/// This request's budget in milliseconds from its start; a route's own layer may lengthen it.
#[derive(Clone)]
struct Budget(Arc<AtomicU64>);

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The layer round every route: answers 408 once the request's budget is spent.
pub async fn deadline(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let budget = Budget(Arc::new(AtomicU64::new(millis(state.settings().request_timeout))));
    req.extensions_mut().insert(budget.clone());
    let run = next.run(req);
    let mut run = std::pin::pin!(run);
    loop {
        let until = started + Duration::from_millis(budget.0.load(Ordering::Relaxed));
        tokio::select! {
            response = run.as_mut() => return response,
            // The budget may have been lengthened while this slept: look again.
            () = tokio::time::sleep_until(until) => {
                if started + Duration::from_millis(budget.0.load(Ordering::Relaxed)) <= Instant::now() {
                    break;
                }
            }
        }
    }
    tracing::warn!("request timed out");
    let mut response = ApiError::Unavailable("the request took too long and was stopped; try again").into_response();
    *response.status_mut() = StatusCode::REQUEST_TIMEOUT;
    response
}

/// `route` with the `LONG_RUNNING` budget instead of the configured one.
pub fn long_running<S: Clone + Send + Sync + 'static>(route: MethodRouter<S>) -> MethodRouter<S> {
    route.layer(middleware::from_fn(lengthen))
}

async fn lengthen(req: Request, next: Next) -> Response {
    if let Some(budget) = req.extensions().get::<Budget>() {
        budget.0.fetch_max(millis(LONG_RUNNING), Ordering::Relaxed);
    }
    next.run(req).await
}

/// `long_running` for a route of the JSON API, with its OpenAPI description.
pub fn long_running_api<S: Clone + Send + Sync + 'static>(
    (schemas, paths, route): utoipa_axum::router::UtoipaMethodRouter<S>,
) -> utoipa_axum::router::UtoipaMethodRouter<S> {
    (schemas, paths, long_running(route))
}
