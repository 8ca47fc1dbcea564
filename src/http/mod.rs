//! The HTTP surface: axum router, one module per resource, the auth middleware, errors.
//! `router` builds the whole app from a state value, so tests run the real thing.

pub mod access;
pub mod audit;
pub mod auth;
pub mod client_ip;
pub mod clients;
pub mod deadline;
pub mod error;
pub mod extract;
pub mod health;
pub mod holdings;
pub mod identity_providers;
pub mod json;
pub mod lookups;
pub mod me;
pub mod metrics;
pub mod oauth;
pub mod openapi;
pub mod organisations;
pub mod pages;
pub mod requests;
mod server;
pub mod users;
pub mod webhooks;

use std::ops::Deref;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderName, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::service::Service;

/// Everything a handler can reach: the service (its one door, reached through `Deref`, so a
/// handler writes `state.lookup(..)`) and the HTTP layer's own metrics. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    service: Arc<Service>,
    metrics: Arc<metrics::Metrics>,
}

impl Deref for AppState {
    type Target = Service;
    fn deref(&self) -> &Service {
        &self.service
    }
}

impl AppState {
    pub fn new(service: Service) -> AppState {
        AppState { service: Arc::new(service), metrics: Arc::new(metrics::Metrics::default()) }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "child-locator",
        description = "A privacy-preserving national index of which organisation knows a child, and who to call.",
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The API routes with their OpenAPI description, before state is attached.
fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(audit::routes())
        .merge(clients::routes())
        .merge(health::routes())
        .merge(holdings::routes())
        .merge(identity_providers::routes())
        .merge(lookups::routes())
        .merge(me::routes())
        .merge(oauth::routes())
        .merge(organisations::routes())
        .merge(users::routes())
        .merge(requests::routes())
        .merge(webhooks::routes())
}

/// The OpenAPI document, as served at /openapi.json.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_and_spec().1
}

/// The API's router and its complete OpenAPI document (`openapi::document_errors`).
fn api_and_spec() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (api, mut spec) = api().split_for_parts();
    openapi::document_errors(&mut spec);
    (api, spec)
}

/// Every (method, route) the router serves: the API's from the same source as the OpenAPI
/// document, then the web pages'.
pub fn served_routes() -> Vec<(String, String)> {
    let spec = openapi();
    let mut routes = Vec::new();
    for (path, item) in &spec.paths.paths {
        let methods = [
            ("GET", item.get.is_some()),
            ("POST", item.post.is_some()),
            ("PUT", item.put.is_some()),
            ("PATCH", item.patch.is_some()),
            ("DELETE", item.delete.is_some()),
        ];
        for (method, present) in methods {
            if present {
                routes.push((method.to_string(), path.clone()));
            }
        }
    }
    routes.extend(pages::served().map(|(m, p)| (m.to_string(), p.to_string())));
    routes
}

pub fn router(state: AppState) -> Router {
    router_with(state, Router::new())
}

/// `router` with `extra` routes inside the same middleware (but outside authentication): how a
/// test proves what the layers do with a handler that misbehaves (one that panics).
pub fn router_with(state: AppState, extra: Router<AppState>) -> Router {
    let settings = state.settings();
    let (api, spec) = api_and_spec();
    let spec = Arc::new(spec);
    let x_request_id = HeaderName::from_static("x-request-id");
    api.route("/openapi.json", axum::routing::get(move || async move { axum::Json(spec.as_ref().clone()) }))
        .merge(pages::routes())
        .fallback(pages::not_found)
        .route_layer(middleware::from_fn_with_state(state.clone(), auth::authorise))
        .merge(extra)
        .layer(middleware::from_fn_with_state(state.clone(), metrics::record))
        .layer(DefaultBodyLimit::max(settings.max_body_bytes))
        .layer(middleware::from_fn_with_state(state.clone(), deadline::deadline))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(PropagateRequestIdLayer::new(x_request_id.clone()))
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .layer(SetRequestIdLayer::new(x_request_id, MakeRequestUuid))
        .with_state(state)
}

/// One span per request: request id and route template; auth adds user and organisation.
/// The raw path and query are not recorded (a path can carry a local record reference).
fn request_span(req: &Request) -> tracing::Span {
    let request_id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
    let route = req.extensions().get::<MatchedPath>().map(|m| m.as_str()).unwrap_or("unmatched");
    tracing::info_span!("request", method = %req.method(), route, request_id, user = tracing::field::Empty, org = tracing::field::Empty)
}

/// A panic in a handler becomes a generic 500. The panic's message is not logged: it could
/// have been formatted from input. The panic hook (telemetry) logs only its location.
fn panic_response(_payload: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked; answered 500");
    let mut response = error::ApiError::Internal.into_response();
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    response
}

/// Serves until SIGTERM or SIGINT, then stops accepting, drains in-flight requests and returns.
/// Request headers must arrive within the request time budget, idle connections are closed,
/// and connections are capped in all and per client (see `server`).
pub async fn serve(state: AppState, listener: tokio::net::TcpListener) -> std::io::Result<()> {
    let limits = server::Limits {
        header_timeout: state.settings().request_timeout,
        connections: state.settings().connections.clone(),
    };
    server::serve(router(state), listener, limits, shutdown_signal()).await
}

pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown requested: draining in-flight requests");
}
