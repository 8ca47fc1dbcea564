//! Signing in through the organisation's identity provider (OpenID Connect): choose the
//! organisation, go to its provider, come back to the callback, which starts the same cookie
//! session as token sign-in. The service does the protocol (`service/oidc.rs`); these handlers
//! only carry the browser. Public routes (no session yet), listed in `access::PUBLIC`.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::html;

use super::ui;
use super::{PageError, respond, see_other};
use crate::domain::role::Role;
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::service::oidc::{Callback, SignInError};

/// Holds the sign-in's `state` in this browser from the redirect until the callback, so a
/// callback in another browser (a planted sign-in) is refused. `SameSite=Lax`: the callback is
/// a top-level navigation from the provider's site, which a `Strict` cookie would not reach.
const STATE_COOKIE: (&str, &str) = ("locator-provider-sign-in", "__Host-locator-provider-sign-in");

pub const CALLBACK: &str = "/sign-in/provider/callback";

fn state_cookie(secure: bool, value: &str, max_age: i64) -> Option<HeaderValue> {
    let name = if secure { STATE_COOKIE.1 } else { STATE_COOKIE.0 };
    let flags = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{flags}")).ok()
}

/// Where the provider sends the browser back: the configured public URL, else this request's
/// host (a forged `Host` only names a redirect URI the provider has not registered).
fn redirect_uri(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(base) = &state.settings().oauth.public_base {
        return format!("{base}{CALLBACK}");
    }
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("localhost");
    format!("http://{host}{CALLBACK}")
}

fn problem_page(status: StatusCode, title: &str, message: &str) -> Response {
    let body = html! {
        h1 class="heading-l" { (title) }
        p class="body" { (message) }
        p class="body" { a href="/sign-in/provider" class="link" { "Try signing in again" } }
        p class="body" { a href="/sign-in" class="link" { "Sign in with a token instead" } }
    };
    respond(status, ui::layout(&format!("Error: {title}"), None, body))
}

fn sign_in_error(e: SignInError) -> Response {
    match e {
        SignInError::NoProvider => problem_page(
            StatusCode::NOT_FOUND,
            "No identity provider for this organisation",
            "This organisation does not sign its people in through an identity provider here. Ask your organisation's admin.",
        ),
        SignInError::ProviderUnavailable => problem_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Your organisation's identity provider did not answer",
            "Nothing was signed in. Try again in a few minutes.",
        ),
        SignInError::Refused(reason) => {
            let message = match reason {
                "no_role" => {
                    "Your organisation's identity provider did not give you a role in this service. Ask your organisation's admin to add you to the right group."
                }
                "revoked_here" => "Your access to this service was revoked. Ask your organisation's admin.",
                "wrong_tenant" | "wrong_domain" => {
                    "This account does not belong to the organisation you chose. Choose your own organisation."
                }
                "too_many_failures" => "Too many failed sign-ins from this address. Wait a minute and try again.",
                _ => "The sign-in could not be completed, or this sign-in link was already used or has expired.",
            };
            problem_page(StatusCode::FORBIDDEN, "You could not be signed in", message)
        }
        SignInError::TooManyStarts(retry_after) => {
            let mut response = problem_page(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many sign-ins started",
                "Too many sign-ins were started from this address. Wait a minute and try again.",
            );
            response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from(retry_after));
            response
        }
        SignInError::Service(e) => PageError::from(ApiError::from(e)).into_response(),
    }
}

/// GET /sign-in/provider: choose your organisation.
pub async fn choose(State(state): State<AppState>) -> Response {
    let choices = match state.provider_choices().await {
        Ok(c) => c,
        Err(e) => return PageError::from(ApiError::from(e)).into_response(),
    };
    let body = html! {
        h1 class="heading-l" { "Sign in with your organisation's account" }
        @if choices.is_empty() {
            p class="body" { "No organisation signs in through an identity provider here yet." }
        } @else {
            // Links, not a form: the page's `form-action 'self'` would stop a form's redirect to the provider.
            p class="body" { "Choose your organisation. You will go to its sign-in page, then come back here." }
            ul class="list" {
                @for c in &choices {
                    li { a class="link" href={ "/sign-in/provider/start?org=" (c.org_code) } {
                        "Sign in with " (c.label) " (" (c.org_name) ")"
                    } }
                }
            }
        }
        p class="body" { a href="/sign-in" class="link" { "Sign in with a token instead" } }
    };
    respond(StatusCode::OK, ui::layout("Sign in with your organisation's account", None, body))
}

/// GET /sign-in/provider/start?org=CODE: to the organisation's provider.
pub async fn start(
    State(state): State<AppState>,
    connect: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    headers: HeaderMap,
    Query(q): Query<Vec<(String, String)>>,
) -> Response {
    let Some(org) = q.iter().find(|(k, _)| k == "org").map(|(_, v)| v.trim()).filter(|v| !v.is_empty()) else {
        return see_other("/sign-in/provider");
    };
    let ip = crate::http::client_ip::client_address(&state, connect.map(|c| c.0.0), &headers);
    match state.begin_provider_sign_in(ip, org, &redirect_uri(&state, &headers)).await {
        Ok(started) => {
            let mut response = see_other(&started.authorize_url);
            let secure = super::session::secure(&state, &headers);
            let max_age = crate::service::oidc::SIGN_IN_WINDOW_MS / 1000;
            if let Some(cookie) = state_cookie(secure, &started.state, max_age) {
                response.headers_mut().append(header::SET_COOKIE, cookie);
            }
            response
        }
        Err(e) => sign_in_error(e),
    }
}

/// GET /sign-in/provider/callback: the provider sends the browser back with a code.
pub async fn callback(
    State(state): State<AppState>,
    connect: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    headers: HeaderMap,
    Query(q): Query<Vec<(String, String)>>,
) -> Response {
    let get = |name: &str| q.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let secure = super::session::secure(&state, &headers);
    let ip = crate::http::client_ip::client_address(&state, connect.map(|c| c.0.0), &headers);
    let input = Callback {
        state: get("state"),
        code: get("code"),
        error: get("error"),
        browser_state: super::session::read_cookie(&state, &headers, STATE_COOKIE),
    };
    let signed_in = state.finish_provider_sign_in(ip, input).await;
    let mut response = match signed_in {
        Ok(signed_in) => {
            let actor = signed_in.actor;
            let start = if actor.role == Role::Practitioner { "/lookup" } else { "/" };
            // A page, not a redirect: after a cross-site redirect chain a browser withholds
            // `SameSite=Strict` cookies, so the next request must start from this site.
            let body = html! {
                meta http-equiv="refresh" content={ "0;url=" (start) };
                h1 class="heading-l" { "You are signed in" }
                p class="body" { "Signed in as " strong { (actor.user_name) } " (" (ui::words(actor.role.as_str())) ") at " (actor.org_name) "." }
                p class="body" { a href=(start) class="button" id="continue" { "Continue" } }
            };
            let mut response = respond(StatusCode::OK, ui::layout("You are signed in", None, body));
            if let Err(e) = super::session::start_provider_session(
                &state,
                &headers,
                &mut response,
                actor.user_id,
                signed_in.session_ends_at,
            )
            .await
            {
                return PageError::from(e).into_response();
            }
            tracing::info!(user = actor.user_id, org = %actor.org_code, "signed in to the web pages through an identity provider");
            response
        }
        Err(e) => sign_in_error(e),
    };
    if let Some(clear) = state_cookie(secure, "", 0) {
        response.headers_mut().append(header::SET_COOKIE, clear);
    }
    response
}

/// GET /signed-out?org=CODE: signed out here; the provider's own sign-out is offered.
pub async fn signed_out(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<Vec<(String, String)>>,
) -> Response {
    let org = q.iter().find(|(k, _)| k == "org").map(|(_, v)| v.trim().to_string()).unwrap_or_default();
    let back_to = match &state.settings().oauth.public_base {
        Some(base) => format!("{base}/sign-in"),
        None => {
            let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("localhost");
            format!("http://{host}/sign-in")
        }
    };
    let provider = if org.is_empty() { None } else { state.provider_sign_out_url(&org, &back_to).await };
    let body = html! {
        h1 class="heading-l" { "You have signed out" }
        p class="body" { "You have signed out of child-locator on this device." }
        @if let Some((label, url)) = &provider {
            p class="body" { "You may still be signed in to " (label) ", which other services use too." }
            p class="body" { a href=(url) class="button" id="provider-sign-out" { "Sign out of " (label) " too" } }
        }
        p class="body" { a href="/sign-in" class="link" { "Sign in again" } }
    };
    respond(StatusCode::OK, ui::layout("You have signed out", None, body))
}
