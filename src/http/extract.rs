//! Query and path extractors whose rejections are the contract's JSON error naming the
//! parameter, like `ApiJson` for bodies: axum's own answer in plain text ("Failed to
//! deserialize query string…"), and its messages can quote the value sent.

use axum::extract::FromRequestParts;
use axum::extract::path::ErrorKind;
use axum::extract::rejection::PathRejection;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use crate::domain::input;

/// Like `axum::extract::Query`, with errors that name the parameter and never echo it.
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        input::parse_query(query).map(ApiQuery).map_err(|e| ApiError::BadRequest {
            code: e.code,
            message: e.message,
            field: e.field,
        })
    }
}

/// Like `axum::extract::Path`, with errors that name the path parameter and never echo it.
pub struct ApiPath<T>(pub T);

#[allow(clippy::disallowed_types)] // the one place that wraps axum's own
impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(ApiPath(value)),
            Err(PathRejection::FailedToDeserializePathParams(e)) => {
                let field = match e.kind() {
                    ErrorKind::ParseErrorAtKey { key, .. }
                    | ErrorKind::InvalidUtf8InPathParam { key }
                    | ErrorKind::DeserializeError { key, .. } => key.clone(),
                    // A single value (`ApiPath<i64>`) is reported without its name.
                    _ => only_parameter(parts, state).await.unwrap_or_else(|| "path".to_string()),
                };
                Err(ApiError::BadRequest {
                    code: "invalid_path",
                    message: "this path parameter has the wrong type or is out of range".into(),
                    field: Some(field),
                })
            }
            Err(other) => {
                // A route whose handler asks for parameters the route does not have: a bug.
                tracing::error!(error = %other.body_text(), "path parameters missing");
                Err(ApiError::Internal)
            }
        }
    }
}

/// The route's path parameter's name, if it has exactly one.
async fn only_parameter<S: Send + Sync>(parts: &mut Parts, state: &S) -> Option<String> {
    let params = axum::extract::RawPathParams::from_request_parts(parts, state).await.ok()?;
    let mut names = params.iter().map(|(name, _)| name);
    match (names.next(), names.next()) {
        (Some(name), None) => Some(name.to_string()),
        _ => None,
    }
}
