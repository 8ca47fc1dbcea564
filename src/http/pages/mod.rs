//! The web front end: server-rendered HTML (maud) from the same binary, no JavaScript, own CSS
//! after the GOV.UK Design System's patterns. Pages call the same service functions as the JSON
//! API; who may open which page is the access table's decision (`http::access`), enforced by the
//! same middleware (`session::authorise_page`). Design and journeys: docs/ui.md.
// Pages answer a bad query or path with an HTML page of their own, so they use axum's
// extractors (clippy.toml keeps those out of the JSON API).
#![allow(clippy::disallowed_types)]

pub mod audit;
pub mod caseload;
pub mod directory;
pub mod lookup;
pub mod matches;
pub mod oidc;
pub mod requests;
pub mod session;
pub mod start;
pub mod ui;
pub mod users;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use maud::{Markup, html};

use super::AppState;
use super::access;
use super::deadline;
use super::error::ApiError;
use crate::domain::FieldError;
use crate::service::ServiceError;
pub use session::Session;

/// The handler behind each page route: one line a page. Which pages are served, and to whom, is
/// the access table's (`access::PAGES`, and `access::PUBLIC` for the sign-in page and stylesheet):
/// adding a page is its rule there and its line here. A rule without a line here is not served,
/// and a test names it; a line without a rule is never reached.
fn handler(method: &str, path: &str) -> Option<MethodRouter<AppState>> {
    Some(match (method, path) {
        ("GET", "/sign-in") => get(session::sign_in_form),
        ("POST", "/sign-in") => post(session::sign_in),
        ("GET", "/assets/app.css") => get(stylesheet),
        ("GET", "/") => get(start::home),
        ("GET", "/sign-in/provider") => get(oidc::choose),
        ("GET", "/sign-in/provider/start") => get(oidc::start),
        ("GET", oidc::CALLBACK) => get(oidc::callback),
        ("GET", "/signed-out") => get(oidc::signed_out),
        ("POST", "/sign-out") => post(session::sign_out),
        ("GET", "/directory") => get(directory::search),
        ("GET", "/lookup") => get(lookup::form),
        ("POST", "/lookup") => post(lookup::submit),
        ("GET", "/lookups/{lookup_id}") => get(lookup::show),
        ("GET", "/requests") => get(requests::list),
        ("POST", "/requests") => post(requests::create),
        ("GET", "/requests/new") => get(requests::new_form),
        ("GET", "/requests/{id}") => get(requests::show),
        ("POST", "/requests/{id}/acknowledge") => post(requests::acknowledge),
        ("POST", "/requests/{id}/fulfil") => post(requests::fulfil),
        ("POST", "/requests/{id}/decline") => post(requests::decline),
        ("GET", "/requests/{id}/withdraw") => get(requests::confirm_withdraw),
        ("POST", "/requests/{id}/withdraw") => post(requests::withdraw),
        ("GET", "/matches") => get(matches::list),
        ("GET", "/caseload") => get(caseload::form),
        ("POST", "/caseload") => deadline::long_running(post(caseload::upload)),
        ("POST", "/caseload/shield") => post(caseload::shield),
        ("GET", "/users") => get(users::list),
        ("POST", "/users") => post(users::issue),
        ("GET", "/users/{id}/revoke") => get(users::confirm_revoke),
        ("POST", "/users/{id}/revoke") => post(users::revoke),
        ("GET", "/audit") => get(audit::search),
        ("GET", "/audit/export.csv") => get(audit::export),
        ("GET", "/audit/anomalies") => get(audit::anomalies),
        ("GET", "/audit/subject-access") => get(audit::subject_access_form),
        ("POST", "/audit/subject-access") => post(audit::subject_access),
        ("GET", "/audit/subject-access/{answer_id}") => get(audit::subject_access_answer),
        ("GET", "/audit/checkpoint") => get(audit::checkpoint),
        _ => return None,
    })
}

/// The page routes the table names that have a handler: its `PAGES`, and its public paths that
/// are pages (the probes, metrics and OAuth are the API's).
pub fn served() -> impl Iterator<Item = (&'static str, &'static str)> {
    const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];
    let public = access::PUBLIC.iter().flat_map(|path| METHODS.iter().map(move |method| (*method, *path)));
    let pages = access::PAGES.iter().map(|page| (page.method, page.path));
    public.chain(pages).filter(|(method, path)| handler(method, path).is_some())
}

pub fn routes() -> Router<AppState> {
    served()
        .filter_map(|(method, path)| Some((path, handler(method, path)?)))
        .fold(Router::new(), |router, (path, route)| router.route(path, route))
        .layer(axum::middleware::map_response(page_headers))
}

const CSS: &str = include_str!("app.css");

/// The stylesheet: no personal data, so it may be cached for a long time (its URL would change
/// with its content if it needed to be refreshed sooner; a day is a safe middle).
async fn stylesheet() -> Response {
    let mut response = CSS.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/css; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=86400"));
    response
}

/// Every page: never stored by the browser or a proxy (pages carry contacts, names and local
/// references), no framing, no inline script, nothing from elsewhere.
async fn page_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // `same-origin`, not `no-referrer`: with no-referrer, browsers send `Origin: null` on form
    // posts, and the CSRF check compares the origin with this host.
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// An unknown path: a browser (asking for `text/html`, outside `/api/`) gets a page; an API
/// client keeps the JSON error. No session is read: the page names no one and shows nothing.
pub async fn not_found(uri: axum::http::Uri, headers: axum::http::HeaderMap) -> Response {
    let wants_html =
        headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|accept| accept.contains("text/html"));
    if wants_html && !uri.path().starts_with("/api/") {
        let body = html! {
            h1 class="heading-l" { "Page not found" }
            p class="body" { "If you typed the web address, check it is correct. If you pasted it, check you copied all of it." }
            p class="body" { a href="/" class="link" { "Go to the start page" } }
        };
        return page_headers(respond(StatusCode::NOT_FOUND, ui::layout("Error: Page not found", None, body))).await;
    }
    ApiError::NotFound.into_response()
}

/// An HTML answer.
pub fn respond(status: StatusCode, markup: Markup) -> Response {
    let mut response = (status, markup.into_string()).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    response
}

/// A 303 to another page (after a POST, so reloading does not repeat it).
pub fn see_other(to: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(to) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// A failure shown as a page: the same statuses and words as the API's errors.
#[derive(Debug)]
pub struct PageError {
    pub error: ApiError,
    /// The signed-in user, for the page's header (absent before sign-in).
    pub session: Option<Box<Session>>,
}

impl PageError {
    pub fn new(error: impl Into<ApiError>, session: &Session) -> PageError {
        PageError { error: error.into(), session: Some(Box::new(session.clone())) }
    }
}

impl From<ApiError> for PageError {
    fn from(error: ApiError) -> Self {
        PageError { error, session: None }
    }
}

impl From<ServiceError> for PageError {
    fn from(error: ServiceError) -> Self {
        PageError { error: error.into(), session: None }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let status = self.error.status();
        let (title, message): (&str, String) = match &self.error {
            ApiError::Invalid(errors) => {
                ("There is a problem", errors.iter().map(ui::message).collect::<Vec<_>>().join("; "))
            }
            ApiError::BadRequest { message, .. } => ("There is a problem", ui::plain(message)),
            ApiError::Unauthenticated | ApiError::LongLivedTokensOff => ("Sign in", "Sign in to continue.".into()),
            ApiError::Forbidden => ("You cannot open this page", "Your role does not allow this page.".into()),
            ApiError::Refused(m) => ("You cannot do this", m.clone()),
            ApiError::NotFound => {
                ("Page not found", "There is nothing here, or it belongs to another organisation.".into())
            }
            ApiError::Conflict(m) => ("This cannot be done now", m.clone()),
            ApiError::AlreadyRequested { request_id } => (
                "Already requested",
                format!("Your organisation already has an open request for this record ({request_id})."),
            ),
            ApiError::MethodNotAllowed { allow } => ("There is a problem", format!("This page answers only {allow}.")),
            ApiError::TooLarge => ("The file is too large", "The upload is larger than this page accepts.".into()),
            ApiError::RateLimited { message, .. } => ("Please wait", message.clone()),
            ApiError::Unavailable(m) => ("Sorry, the service is unavailable", (*m).to_string()),
            ApiError::Internal => {
                ("Sorry, there is a problem with the service", "It has been logged. Try again later.".into())
            }
        };
        let body = html! {
            h1 class="heading-l" { (title) }
            p class="body" { (message) }
            p class="body" { a href="/" class="link" { "Go to the start page" } }
        };
        // Every error page's title starts "Error:", as GOV.UK's do.
        let mut response = respond(status, ui::layout(&format!("Error: {title}"), self.session.as_deref(), body));
        if let ApiError::RateLimited { retry_after, .. } = &self.error {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
        }
        response
    }
}

pub type PageResult<T = Response> = Result<T, PageError>;

/// Parses an `application/x-www-form-urlencoded` body into name/value pairs. Bodies are small
/// (the router's body limit applies) and never logged.
pub struct FormPairs(pub Vec<(String, String)>);

impl FormPairs {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The trimmed value, `None` when missing or blank.
    pub fn text(&self, name: &str) -> Option<String> {
        self.get(name).map(str::trim).filter(|v| !v.is_empty()).map(str::to_string)
    }
}

impl<S: Send + Sync> axum::extract::FromRequest<S> for FormPairs {
    type Rejection = PageError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                PageError::from(ApiError::TooLarge)
            } else {
                PageError::from(ApiError::BadRequest {
                    code: "unreadable_body",
                    message: "the form could not be read".into(),
                    field: None,
                })
            }
        })?;
        Ok(FormPairs(form_urlencoded::parse(&bytes).into_owned().collect()))
    }
}

/// The errors a service call reported for fields, so a form can be shown again with them; any
/// other failure becomes an error page.
pub fn field_errors(error: ServiceError, session: &Session) -> Result<Vec<FieldError>, PageError> {
    match error {
        ServiceError::Invalid(errors) => Ok(errors),
        other => Err(PageError::new(other, session)),
    }
}

/// A one-time message for the page a POST redirects to: shown by the first GET, then gone
/// (`Service::put_flash` keeps it encrypted under the session's key until then).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Flash {
    /// A token just issued: shown this once.
    Token { name: String, token: String },
    /// A caseload upload's summary.
    Caseload { summary: crate::service::sync::SyncSummary },
    /// One record shielded or no longer shielded.
    Shielded { local_ref: String, shielded: bool },
}

/// Leaves `flash` for this session's next page.
pub async fn put_flash(state: &AppState, session: &Session, flash: &Flash) -> PageResult<()> {
    let text = serde_json::to_string(flash).map_err(|e| {
        tracing::error!(error = %e, "a one-time message could not be written");
        PageError::new(ApiError::Internal, session)
    })?;
    state.put_flash(&session.page, &text).await.map_err(|e| PageError::new(e, session))
}

/// Takes this session's one-time message, if it has one.
pub async fn take_flash(state: &AppState, session: &Session) -> PageResult<Option<Flash>> {
    let text = state.take_flash(&session.page).await.map_err(|e| PageError::new(e, session))?;
    Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
}
