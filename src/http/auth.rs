//! Authentication and authorisation for every route, in one middleware: the bearer token is
//! resolved to an actor, then the access table decides. Handlers receive the `Actor`.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;
use super::access;
use super::error::ApiError;
use crate::audit::{EventType, NewEvent};
use crate::domain::user::Actor;

fn source_ip(state: &AppState, req: &Request) -> IpAddr {
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(addr)| *addr);
    super::client_ip::client_address(state, peer, req.headers())
}

fn bearer(req: &Request) -> Option<&str> {
    let value = req.headers().get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The middleware. Public routes pass; everything else needs a live token whose role the
/// access table allows on the matched route.
pub async fn authorise(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_owned());
    let Some(route) = route else { return next.run(req).await };
    if access::is_public(&route) {
        return next.run(req).await;
    }
    // A method the route does not have: 405 before anything else, not a refusal to audit.
    if let Some(allow) = access::methods_if_not(req.method().as_str(), &route) {
        return ApiError::MethodNotAllowed { allow }.into_response();
    }
    if access::is_page(&route) {
        return super::pages::session::authorise_page(state, route, req, next).await;
    }
    let ip = source_ip(&state, &req);
    let presented = bearer(&req).map(str::to_owned);
    match state.authenticate_api(ip, presented.as_deref(), &route).await {
        Ok(actor) => {
            let method = req.method().as_str().to_owned();
            let allowed = access::roles_for(&method, &route).is_some_and(|roles| roles.contains(&actor.role));
            tracing::Span::current().record("user", actor.user_id).record("org", actor.org_code.as_str());
            if !allowed {
                let event = NewEvent::new(EventType::AccessDenied)
                    .by(&actor)
                    .details(json!({"method": method, "route": route}));
                if let Err(e) = state.record_refusal(&actor, event).await {
                    return ApiError::from(e).into_response();
                }
                return ApiError::Forbidden.into_response();
            }
            req.extensions_mut().insert(actor);
            next.run(req).await
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Actor {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        // Present whenever the middleware let the request through to a protected route.
        parts.extensions.get::<Actor>().cloned().ok_or(ApiError::Unauthenticated)
    }
}
