//! Authentication and authorisation for every route, in one middleware: the bearer token is
//! resolved to an actor, then the access table decides. Handlers receive the `Actor`.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath, Request, State};
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde_json::json;

use super::AppState;
use super::access;
use super::error::ApiError;
use crate::audit::{EventType, NewEvent};
use crate::domain::token::Token;
use crate::domain::user::Actor;

/// Counts failed authentications per client address (an IPv6 client per /64, what one host is
/// given); past the quota the address's failures are answered 429 for a minute and no longer
/// audited one by one. Only failures: a valid token is never blocked, so one client guessing
/// cannot lock out the rest of a council behind the same proxy or NAT.
pub struct FailedAuthLimiter {
    limiter: Option<DefaultKeyedRateLimiter<IpAddr>>,
    blocked: Mutex<HashMap<IpAddr, Instant>>,
}

const BLOCK_FOR: Duration = Duration::from_secs(60);

impl FailedAuthLimiter {
    pub fn new(per_minute: u32, enabled: bool) -> Self {
        let quota = Quota::per_minute(NonZeroU32::new(per_minute.max(1)).unwrap_or(NonZeroU32::MIN));
        FailedAuthLimiter { limiter: enabled.then(|| RateLimiter::keyed(quota)), blocked: Mutex::new(HashMap::new()) }
    }

    fn blocked_for(&self, ip: IpAddr) -> Option<u64> {
        let ip = limit_key(ip);
        let mut blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
        let until = *blocked.get(&ip)?;
        let now = Instant::now();
        if until <= now {
            blocked.remove(&ip);
            return None;
        }
        Some((until - now).as_secs().max(1))
    }

    fn record_failure(&self, ip: IpAddr) {
        let Some(limiter) = &self.limiter else { return };
        let ip = limit_key(ip);
        if limiter.check_key(&ip).is_err() {
            let mut blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
            // Forget stale entries so a scan from many addresses cannot grow the map forever.
            if blocked.len() > 100_000 {
                let now = Instant::now();
                blocked.retain(|_, until| *until > now);
            }
            blocked.insert(ip, Instant::now() + BLOCK_FOR);
        }
    }
}

/// The client's address: the peer, or behind a trusted proxy the client it names (`client_ip`).
pub(crate) fn client_address(state: &AppState, peer: Option<SocketAddr>, headers: &HeaderMap) -> IpAddr {
    let peer = peer.map(|addr| addr.ip()).unwrap_or(IpAddr::from([127, 0, 0, 1]));
    super::client_ip::client_ip(peer, headers, &state.settings.trusted_proxies)
}

fn source_ip(state: &AppState, req: &Request) -> IpAddr {
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(addr)| *addr);
    client_address(state, peer, req.headers())
}

/// The key failures are counted under: the address, an IPv6 one by its /64 (one host's share).
fn limit_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let mut octets = v6.octets();
            octets[8..].fill(0);
            IpAddr::from(octets)
        }
        v4 => v4,
    }
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
    match authenticate(&state, ip, presented.as_deref(), &route).await {
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
        Err(e) => e.into_response(),
    }
}

/// Resolves a presented token to its actor, through the failed-sign-in limiter; failures are
/// audited. The web sign-in page uses it too.
pub(crate) async fn authenticate(
    state: &AppState,
    ip: IpAddr,
    presented: Option<&str>,
    route: &str,
) -> Result<Actor, ApiError> {
    let Some(presented) = presented else { return Err(ApiError::Unauthenticated) };
    let actor = match Token::parse(presented) {
        Ok(token) => find_actor(state, &token).await?,
        Err(_) => None,
    };
    if let Some(actor) = actor {
        return Ok(actor);
    }
    if let Some(retry_after) = state.failed_auth.blocked_for(ip) {
        return Err(ApiError::RateLimited {
            retry_after,
            message: "too many failed sign-in attempts from this address; wait a minute and try again".into(),
        });
    }
    state.failed_auth.record_failure(ip);
    // The presented token is never recorded: it might be a live token mistyped.
    let event = NewEvent::new(EventType::AuthFailed).details(json!({"source": ip.to_string(), "route": route}));
    state.audit.record(event).await?;
    Err(ApiError::Unauthenticated)
}

/// The token's user. During a key rotation a token stored under the previous key is found
/// under it and re-hashed under the current key, so users do not lose their tokens.
async fn find_actor(state: &AppState, token: &Token) -> Result<Option<Actor>, ApiError> {
    let hash = state.tokens.hash(token);
    if let Some(actor) = state.store.actor_for_token(&hash).await? {
        return Ok(Some(actor));
    }
    let Some(previous) = &state.previous_tokens else { return Ok(None) };
    let old_hash = previous.hash(token);
    let Some(actor) = state.store.actor_for_token(&old_hash).await? else { return Ok(None) };
    state.store.rehash_token(&old_hash, &hash).await?;
    Ok(Some(actor))
}

impl<S: Send + Sync> FromRequestParts<S> for Actor {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        // Present whenever the middleware let the request through to a protected route.
        parts.extensions.get::<Actor>().cloned().ok_or(ApiError::Unauthenticated)
    }
}
