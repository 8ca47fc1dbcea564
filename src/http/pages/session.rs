//! Signing in to the pages with a token, the session cookie, CSRF, and the middleware that
//! authenticates and authorises every page through the one access table.
//!
//! The cookie carries a random session id; the database keeps only a keyed hash of it with the
//! user and the absolute expiry, so several nodes share sessions and a database copy cannot be
//! replayed. The CSRF token is a keyed hash of the session id (nothing more to store); every
//! POST must carry it, on top of `SameSite=Strict` and an `Origin` check.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures::StreamExt;
use maud::html;
use rand::RngCore;
use serde_json::json;

use super::ui::{self, Input};
use super::{FormPairs, PageError, PageResult, respond, see_other};
use crate::audit::{EventType, NewEvent};
use crate::config::SecureCookies;
use crate::domain::FieldError;
use crate::domain::role::Role;
use crate::domain::user::Actor;
use crate::domain::user::StoredSession;
use crate::http::AppState;
use crate::http::access;
use crate::http::error::ApiError;
use crate::service::page_state::PageKeys;

const COOKIE: &str = "locator-session";
/// With `Secure`, the `__Host-` prefix also pins the cookie to this host and path `/`.
const SECURE_COOKIE: &str = "__Host-locator-session";
/// Before sign-in: a random value the sign-in form's CSRF token is bound to.
const SIGN_IN_COOKIE: &str = "locator-sign-in";
const SECURE_SIGN_IN_COOKIE: &str = "__Host-locator-sign-in";
/// The most of a multipart body read to find its CSRF field (the first part).
const MULTIPART_CSRF_PREFIX: usize = 16 * 1024;

/// The signed-in user of a page request, put there by `authorise_page`.
#[derive(Debug, Clone)]
pub struct Session {
    pub actor: Actor,
    /// The CSRF token for this session's forms.
    pub csrf: String,
    /// Keys for what a page keeps between a POST and its redirect (a lookup's answer, a token
    /// shown once), derived from the session id: the database alone opens neither.
    pub page: PageKeys,
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Session {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Session>().cloned().ok_or_else(|| PageError::from(ApiError::Unauthenticated))
    }
}

/// The keys sessions use, derived from the index secret (a key rotation signs everyone out).
struct SessionKeys {
    id: [u8; 32],
    csrf: [u8; 32],
}

impl SessionKeys {
    /// From a key derivation (the node secret's, via `Service::derive_key`).
    fn new(derive: impl Fn(&str) -> [u8; 32]) -> Self {
        SessionKeys {
            id: derive("child-locator 2026-11 web session id v1"),
            csrf: derive("child-locator 2026-11 web csrf v1"),
        }
    }

    fn of(state: &AppState) -> Self {
        SessionKeys::new(|context| state.derive_key(context))
    }

    fn id_hash(&self, id: &str) -> Vec<u8> {
        blake3::keyed_hash(&self.id, id.as_bytes()).as_bytes().to_vec()
    }

    fn csrf(&self, purpose: &str, id: &str) -> blake3::Hash {
        let mut h = blake3::Hasher::new_keyed(&self.csrf);
        h.update(purpose.as_bytes());
        h.update(b"\0");
        h.update(id.as_bytes());
        h.finalize()
    }

    /// Constant-time check of a submitted token (`blake3::Hash` compares in constant time).
    fn csrf_ok(&self, purpose: &str, id: &str, given: Option<&str>) -> bool {
        given.and_then(|g| blake3::Hash::from_hex(g).ok()).is_some_and(|g| g == self.csrf(purpose, id))
    }
}

fn random_id() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The cookie of a (plain, secure) pair of names. In secure mode only the `__Host-` name: a browser keeps it only from this host, over HTTPS,
/// for path `/`, whereas a plain-named cookie can be planted by a sibling subdomain or over
/// plain HTTP (cookie tossing, session fixation), so one is never read there.
pub(super) fn read_cookie<'a>(
    state: &AppState,
    headers: &'a HeaderMap,
    (plain, prefixed): (&str, &str),
) -> Option<&'a str> {
    // Outside secure mode a `__Host-` cookie is harmless (only HTTPS could have set it).
    let accepted: &[&str] = if secure(state, headers) { &[prefixed] } else { &[plain, prefixed] };
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| accepted.contains(name))
        .map(|(_, value)| value)
}

/// Whether cookies get `Secure` (see `config::SecureCookies`).
pub(super) fn secure(state: &AppState, headers: &HeaderMap) -> bool {
    match state.settings().web.secure_cookies {
        SecureCookies::Always => true,
        SecureCookies::Never => false,
        SecureCookies::Auto => {
            !state.settings().bind.ip().is_loopback()
                || headers
                    .get("x-forwarded-proto")
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"))
        }
    }
}

fn set_cookie(response: &mut Response, secure: bool, name: (&str, &str), value: &str, max_age: Option<i64>) {
    let name = if secure { name.1 } else { name.0 };
    let mut cookie = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict");
    if secure {
        cookie.push_str("; Secure");
    }
    if let Some(age) = max_age {
        cookie.push_str(&format!("; Max-Age={age}"));
    }
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// The session id from the cookie, with its stored session if it is live (not expired, user
/// and organisation active).
async fn current_session(
    state: &AppState,
    keys: &SessionKeys,
    headers: &HeaderMap,
) -> Result<Option<(String, StoredSession)>, ApiError> {
    let Some(id) = read_cookie(state, headers, (COOKIE, SECURE_COOKIE)) else { return Ok(None) };
    let hash = keys.id_hash(id);
    let Some(stored) = state.live_session(&hash).await? else { return Ok(None) };
    Ok(Some((id.to_string(), stored)))
}

/// The page middleware: a live session (else to sign-in), a role the access table allows on
/// this route (else a 403 page, audited like the API's), and on POST a valid CSRF token.
pub async fn authorise_page(state: AppState, route: String, req: Request, next: Next) -> Response {
    let keys = SessionKeys::of(&state);
    let (id, stored) = match current_session(&state, &keys, req.headers()).await {
        Ok(Some(found)) => found,
        Ok(None) => {
            let had_cookie = read_cookie(&state, req.headers(), (COOKIE, SECURE_COOKIE)).is_some();
            return see_other(if had_cookie { "/sign-in?ended=1" } else { "/sign-in" });
        }
        Err(e) => return PageError::from(e).into_response(),
    };
    let actor = stored.actor;
    tracing::Span::current().record("user", actor.user_id).record("org", actor.org_code.as_str());
    let page = PageKeys { bound: *keys.csrf("page-state", &id).as_bytes(), key: *keys.csrf("flash", &id).as_bytes() };
    let session = Session { csrf: keys.csrf("session", &id).to_hex().to_string(), actor, page };
    let method = req.method().as_str().to_owned();
    if !access::allows(session.actor.role, &method, &route) {
        let event = NewEvent::new(EventType::AccessDenied)
            .by(&session.actor)
            .details(json!({"method": method, "route": route}));
        if let Err(e) = state.record_refusal(&session.actor, event).await {
            return PageError::new(ApiError::from(e), &session).into_response();
        }
        return PageError::new(ApiError::Forbidden, &session).into_response();
    }
    let mut req = req;
    if req.method() == Method::POST {
        let (checked, rebuilt) = csrf_from_body(req, state.settings().max_body_bytes).await;
        req = rebuilt;
        let origin_ok = same_origin(req.headers());
        if !origin_ok || !keys.csrf_ok("session", &id, checked.as_deref()) {
            tracing::warn!("a page form was refused: missing or wrong CSRF token, or another origin");
            return PageError::new(
                ApiError::Refused(
                    "this form has expired or did not come from this service; go back, reload the page and try again"
                        .into(),
                ),
                &session,
            )
            .into_response();
        }
    }
    req.extensions_mut().insert(session);
    next.run(req).await
}

/// When the browser says where a form came from (`Origin`), it must be this host: the `Host`
/// header, or the `X-Forwarded-Host` a proxy that rewrites `Host` sends. (A page on another site
/// cannot make a victim's browser send either header with a value of its choosing.)
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else { return true };
    let origin_host = origin.split_once("://").map(|(_, rest)| rest).unwrap_or(origin);
    ["host", "x-forwarded-host"]
        .iter()
        .filter_map(|name| headers.get(*name).and_then(|v| v.to_str().ok()))
        .any(|host| origin_host.eq_ignore_ascii_case(host.trim()))
}

/// Reads the `csrf` field of a form body and gives back an equivalent request. URL-encoded
/// forms are read whole (they are small); for a multipart upload only its first part is read
/// (the forms put the token first), and the rest still streams to the handler.
async fn csrf_from_body(req: Request, limit: usize) -> (Option<String>, Request) {
    let content_type = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let (parts, body) = req.into_parts();
    if let Some(boundary) =
        multer::parse_boundary(&content_type).ok().filter(|_| content_type.starts_with("multipart/"))
    {
        let mut stream = body.into_data_stream();
        let mut prefix = Vec::new();
        let mut found = None;
        while prefix.len() < MULTIPART_CSRF_PREFIX {
            match stream.next().await {
                Some(Ok(chunk)) => {
                    prefix.extend_from_slice(&chunk);
                    if let Some(value) = first_part_csrf(&prefix, &boundary) {
                        found = value;
                        break;
                    }
                }
                _ => break,
            }
        }
        let head = futures::stream::once(async move { Ok::<_, axum::Error>(axum::body::Bytes::from(prefix)) });
        let body = Body::from_stream(head.chain(stream));
        return (found, Request::from_parts(parts, body));
    }
    match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => {
            let token = form_urlencoded::parse(&bytes).find(|(k, _)| k == "csrf").map(|(_, v)| v.into_owned());
            (token, Request::from_parts(parts, Body::from(bytes)))
        }
        Err(_) => (None, Request::from_parts(parts, Body::empty())),
    }
}

/// `Some(token)` when the first part is complete and is the `csrf` field, `Some(None)` when it
/// is complete and is not, `None` while more bytes are needed.
fn first_part_csrf(buf: &[u8], boundary: &str) -> Option<Option<String>> {
    let opening = format!("--{boundary}\r\n");
    if buf.len() < opening.len() {
        return None;
    }
    if !buf.starts_with(opening.as_bytes()) {
        return Some(None);
    }
    let rest = &buf[opening.len()..];
    let headers_end = find(rest, b"\r\n\r\n")?;
    let headers = String::from_utf8_lossy(&rest[..headers_end]).to_ascii_lowercase();
    let value_start = headers_end + 4;
    let closing = format!("\r\n--{boundary}");
    let value_len = find(&rest[value_start..], closing.as_bytes())?;
    if !headers.contains("name=\"csrf\"") {
        return Some(None);
    }
    Some(std::str::from_utf8(&rest[value_start..value_start + value_len]).ok().map(str::to_string))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// GET /sign-in: paste a token. Sets the pre-session cookie its CSRF token is bound to.
pub async fn sign_in_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<Vec<(String, String)>>,
) -> Response {
    let ended = q.iter().any(|(k, _)| k == "ended");
    let notice = ended.then_some("Your session ended. Sign in again to continue.");
    sign_in_page(&state, &headers, StatusCode::OK, &[], notice)
}

fn sign_in_page(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    errors: &[FieldError],
    notice: Option<&str>,
) -> Response {
    let keys = SessionKeys::of(state);
    let nonce = random_id();
    let csrf = keys.csrf("sign-in", &nonce).to_hex().to_string();
    let id = |_: &str| "token".to_string();
    let body = html! {
        (ui::error_summary(errors, id))
        @if let Some(text) = notice { (ui::notice(text)) }
        h1 class="heading-l" { "Sign in" }
        form method="post" action="/sign-in" novalidate {
            input type="hidden" name="csrf" value=(csrf);
            (ui::text_input(&Input {
                kind: "password",
                hint: Some("Paste the token your organisation's admin gave you. It starts with clk_."),
                error: ui::error_for(errors, id, "token"),
                autocomplete: "current-password",
                width: "input-width-full",
                autofocus: true,
                ..Input::new("token", "Your token")
            }))
            button type="submit" class="button" { "Sign in" }
        }
        p class="body" { a href="/sign-in/provider" class="link" id="provider-sign-in" { "Sign in with your organisation's account instead" } }
    };
    let mut response = respond(status, ui::layout(&ui::title("Sign in", errors), None, body));
    set_cookie(&mut response, secure(state, headers), (SIGN_IN_COOKIE, SECURE_SIGN_IN_COOKIE), &nonce, Some(3600));
    response
}

/// POST /sign-in: the token is checked exactly as a bearer token is (failed-sign-in limiter,
/// `auth_failed` audit event); on success a session starts and the user goes to their start.
pub async fn sign_in(
    State(state): State<AppState>,
    connect: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    headers: HeaderMap,
    form: FormPairs,
) -> Response {
    let keys = SessionKeys::of(&state);
    let nonce = read_cookie(&state, &headers, (SIGN_IN_COOKIE, SECURE_SIGN_IN_COOKIE)).unwrap_or("");
    if nonce.is_empty() || !same_origin(&headers) || !keys.csrf_ok("sign-in", nonce, form.get("csrf")) {
        let errors = [FieldError::new("token", "expired_form", "the sign-in form had expired: paste your token again")];
        return sign_in_page(&state, &headers, StatusCode::FORBIDDEN, &errors, None);
    }
    let Some(token) = form.text("token") else {
        let errors = [FieldError::new("token", "required", "enter your token")];
        return sign_in_page(&state, &headers, StatusCode::UNPROCESSABLE_ENTITY, &errors, None);
    };
    let ip = crate::http::client_ip::client_address(&state, connect.map(|c| c.0.0), &headers);
    let actor = match state.authenticate(ip, Some(&token), "/sign-in").await {
        Ok(actor) => actor,
        Err(crate::service::ServiceError::Unauthenticated) => {
            let errors = [FieldError::new(
                "token",
                "unknown_token",
                "this token was not recognised: check you copied all of it, or ask your organisation's admin",
            )];
            return sign_in_page(&state, &headers, StatusCode::UNAUTHORIZED, &errors, None);
        }
        Err(e) => return PageError::from(ApiError::from(e)).into_response(),
    };
    let id = random_id();
    if let Err(e) = state.start_session(&keys.id_hash(&id), actor.user_id).await {
        return PageError::from(ApiError::from(e)).into_response();
    }
    tracing::info!(user = actor.user_id, org = %actor.org_code, "signed in to the web pages");
    // Practitioners go straight to the lookup form: the journey that must be fastest.
    let start = if actor.role == Role::Practitioner { "/lookup" } else { "/" };
    let mut response = see_other(start);
    let secure = secure(&state, &headers);
    // A session cookie (no Max-Age): it also ends when the browser closes.
    set_cookie(&mut response, secure, (COOKIE, SECURE_COOKIE), &id, None);
    set_cookie(&mut response, secure, (SIGN_IN_COOKIE, SECURE_SIGN_IN_COOKIE), "", Some(0));
    response
}

/// POST /sign-out: the session is deleted on the server, and the cookie cleared.
pub async fn sign_out(State(state): State<AppState>, headers: HeaderMap, session: Session) -> PageResult {
    let keys = SessionKeys::of(&state);
    let mut via_provider = false;
    if let Some(id) = read_cookie(&state, &headers, (COOKIE, SECURE_COOKIE)) {
        via_provider = state.session_via_provider(&keys.id_hash(id)).await.unwrap_or(false);
        state.end_session(&keys.id_hash(id)).await.map_err(|e| PageError::new(ApiError::from(e), &session))?;
    }
    // Back after signing out must not show a kept lookup answer again.
    state.forget_lookup_answers(&session.actor).await.map_err(|e| PageError::new(ApiError::from(e), &session))?;
    tracing::info!(user = session.actor.user_id, "signed out of the web pages");
    // Signed in through a provider: a page that offers the provider's own sign-out (oidc.rs).
    let to = if via_provider {
        format!(
            "/signed-out?{}",
            form_urlencoded::Serializer::new(String::new()).append_pair("org", &session.actor.org_code).finish()
        )
    } else {
        "/sign-in".to_string()
    };
    let mut response = see_other(&to);
    set_cookie(&mut response, secure(&state, &headers), (COOKIE, SECURE_COOKIE), "", Some(0));
    Ok(response)
}

/// Starts the session of a person who signed in through their provider (`oidc.rs`), ending at
/// `ends_at` at the latest, and sets its cookie on `response`.
pub(super) async fn start_provider_session(
    state: &AppState,
    headers: &HeaderMap,
    response: &mut Response,
    user_id: i64,
    ends_at: crate::clock::Millis,
) -> Result<(), ApiError> {
    let keys = SessionKeys::of(state);
    let id = random_id();
    state.start_provider_session(&keys.id_hash(&id), user_id, ends_at).await?;
    set_cookie(response, secure(state, headers), (COOKIE, SECURE_COOKIE), &id, None);
    set_cookie(response, secure(state, headers), (SIGN_IN_COOKIE, SECURE_SIGN_IN_COOKIE), "", Some(0));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_multipart_part_yields_the_csrf_token() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\nabc123\r\n--XyZ\r\nrest";
        assert_eq!(first_part_csrf(body, "XyZ"), Some(Some("abc123".into())));
        assert_eq!(first_part_csrf(&body[..30], "XyZ"), None, "needs more bytes");
        let other = b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nabc\r\n--XyZ";
        assert_eq!(first_part_csrf(other, "XyZ"), Some(None));
    }

    #[test]
    fn a_forged_or_missing_csrf_token_is_refused() {
        let keys = SessionKeys::new(|context| blake3::derive_key(context, &[7; 32]));
        let good = keys.csrf("session", "id-1").to_hex().to_string();
        assert!(keys.csrf_ok("session", "id-1", Some(&good)));
        assert!(!keys.csrf_ok("session", "id-2", Some(&good)), "bound to the session");
        assert!(!keys.csrf_ok("sign-in", "id-1", Some(&good)), "bound to its purpose");
        assert!(!keys.csrf_ok("session", "id-1", None));
        assert!(!keys.csrf_ok("session", "id-1", Some("not hex")));
    }

    #[test]
    fn a_form_from_another_origin_is_refused() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(same_origin(&headers), "no Origin header: SameSite and the token decide");
        headers.insert(header::ORIGIN, HeaderValue::from_static("http://127.0.0.1:8080"));
        assert!(same_origin(&headers));
        headers.insert(header::ORIGIN, HeaderValue::from_static("https://evil.example"));
        assert!(!same_origin(&headers));
        headers.insert(header::ORIGIN, HeaderValue::from_static("https://locator.example.gov.uk"));
        headers.insert("x-forwarded-host", HeaderValue::from_static("locator.example.gov.uk"));
        assert!(same_origin(&headers), "behind a proxy that rewrites Host");
    }
}
