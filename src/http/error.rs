//! The HTTP layer's one error type, mapped to a status and the contract's JSON shape in one
//! place. Internal causes are logged here, never returned; messages never repeat input.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::domain::FieldError;
use crate::service::ServiceError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body or query was understood but breaks a rule; every broken field is listed (422).
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    /// The request could not be read at all: not JSON, wrong content type (400).
    #[error("{message}")]
    BadRequest { code: &'static str, message: String, field: Option<String> },
    /// No token, or a token that is unknown, revoked or malformed (401).
    #[error("authentication required")]
    Unauthenticated,
    /// A valid long-lived token that its organisation has turned off for the API (401, said
    /// plainly so the integrator knows to move to client credentials).
    #[error("long-lived tokens are turned off")]
    LongLivedTokensOff,
    /// A valid token whose role may not do this (403).
    #[error("forbidden")]
    Forbidden,
    /// The actor may see the object but not take this step on it, e.g. a requester fulfilling
    /// its own request (403, with the rule in the message).
    #[error("{0}")]
    Refused(String),
    /// Does not exist, or belongs to another organisation: the two look the same (404).
    #[error("not found")]
    NotFound,
    /// Conflicts with the current state, e.g. a duplicate code or an illegal transition (409).
    #[error("{0}")]
    Conflict(String),
    /// The organisation already has an open request for this record (409, code
    /// `request_already_open`, naming it in `request_id`): lead the worker to it.
    #[error("already requested")]
    AlreadyRequested { request_id: String },
    /// The route exists but not with this method (405, with `Allow`): not a refusal, not audited.
    #[error("method not allowed")]
    MethodNotAllowed { allow: String },
    /// The body is larger than this route accepts (413).
    #[error("request body too large")]
    TooLarge,
    /// Too many requests; `retry_after` seconds until the next one can succeed (429).
    #[error("{message}")]
    RateLimited { retry_after: u64, message: String },
    /// The database or the audit trail cannot be written: nothing was disclosed (503).
    #[error("{0}")]
    Unavailable(&'static str),
    /// A bug or an unexpected failure; details are in the log only (500).
    #[error("internal error")]
    Internal,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<&'a [FieldError]>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
    /// `request_already_open`: the open request.
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
}

impl ApiError {
    pub fn invalid(field: impl Into<String>, code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Invalid(vec![FieldError::new(field, code, message)])
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthenticated | ApiError::LongLivedTokensOff => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden | ApiError::Refused(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) | ApiError::AlreadyRequested { .. } => StatusCode::CONFLICT,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let (code, message, field): (&str, String, Option<&str>) = match &self {
            ApiError::Invalid(errors) => match errors.first() {
                Some(first) => (first.code, first.message.clone(), Some(first.field.as_str())),
                None => ("invalid", "the request is invalid".into(), None),
            },
            ApiError::BadRequest { code, message, field } => (code, message.clone(), field.as_deref()),
            ApiError::Unauthenticated => (
                "unauthenticated",
                "a valid bearer token is required: send `Authorization: Bearer <token>`".into(),
                None,
            ),
            ApiError::LongLivedTokensOff => (
                "long_lived_tokens_disabled",
                "this organisation has turned off long-lived API tokens: systems get a short-lived token from \
                 POST /oauth/token with client credentials (docs/integrators.md); web sign-in is unaffected"
                    .into(),
                None,
            ),
            ApiError::Forbidden => ("forbidden", "your role does not allow this action".into(), None),
            ApiError::Refused(m) => ("forbidden", m.clone(), None),
            ApiError::NotFound => ("not_found", "no such resource".into(), None),
            ApiError::Conflict(m) => ("conflict", m.clone(), None),
            ApiError::AlreadyRequested { request_id } => (
                "request_already_open",
                format!("your organisation already has an open request for this record: {request_id}"),
                None,
            ),
            ApiError::MethodNotAllowed { allow } => {
                ("method_not_allowed", format!("this route answers only {allow}"), None)
            }
            ApiError::TooLarge => ("too_large", "the request body is larger than this endpoint accepts".into(), None),
            ApiError::RateLimited { message, .. } => ("rate_limited", message.clone(), None),
            ApiError::Unavailable(m) => ("unavailable", (*m).to_string(), None),
            ApiError::Internal => ("internal", "something went wrong on our side; it has been logged".into(), None),
        };
        let errors = match &self {
            ApiError::Invalid(errors) if errors.len() > 1 => Some(errors.as_slice()),
            _ => None,
        };
        let request_id = match &self {
            ApiError::AlreadyRequested { request_id } => Some(request_id.as_str()),
            _ => None,
        };
        let body = ErrorBody { error: ErrorDetail { code, message: &message, field, request_id }, errors };
        let mut response = (status, Json(body)).into_response();
        match &self {
            ApiError::RateLimited { retry_after, .. } => {
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
            }
            ApiError::Unauthenticated | ApiError::LongLivedTokensOff => {
                response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::Unavailable(_) => {
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(5u32));
            }
            ApiError::MethodNotAllowed { allow } => {
                if let Ok(value) = HeaderValue::from_str(allow) {
                    response.headers_mut().insert(header::ALLOW, value);
                }
            }
            _ => {}
        }
        response
    }
}

impl From<Vec<FieldError>> for ApiError {
    fn from(errors: Vec<FieldError>) -> Self {
        ApiError::Invalid(errors)
    }
}

impl From<FieldError> for ApiError {
    fn from(error: FieldError) -> Self {
        ApiError::Invalid(vec![error])
    }
}

/// The one mapping from a use case's failure to a status. Store and audit failures reach the
/// HTTP layer only inside a `ServiceError`, so this is the only place they become statuses.
impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Invalid(errors) => ApiError::Invalid(errors),
            ServiceError::Unauthenticated => ApiError::Unauthenticated,
            ServiceError::LongLivedTokensOff => ApiError::LongLivedTokensOff,
            ServiceError::NotFound => ApiError::NotFound,
            ServiceError::Unavailable(cause) => {
                tracing::warn!(error = %cause, "database unavailable");
                ApiError::Unavailable("the index database is unavailable; try again shortly")
            }
            ServiceError::Store(cause) => {
                tracing::error!(error = %cause, "store failure");
                ApiError::Internal
            }
            // Fail closed: whatever was asked, nothing is disclosed without its audit record.
            ServiceError::Audit(_) => ApiError::Unavailable(
                "the audit trail could not be written, so nothing was disclosed; try again shortly",
            ),
            ServiceError::RateLimited(r) => {
                ApiError::RateLimited { retry_after: r.retry_after_secs, message: r.message }
            }
            ServiceError::Refused(m) => ApiError::Refused(m),
            ServiceError::Conflict(m) => ApiError::Conflict(m),
            ServiceError::AlreadyRequested(request_id) => ApiError::AlreadyRequested { request_id },
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
