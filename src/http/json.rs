//! JSON in and out. Bodies are read with our own extractor so that a bad body gets the
//! contract's error shape naming the field, and no message ever repeats a submitted value.

use axum::extract::{FromRequest, Request};
use axum::http::header;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use crate::domain::input;

/// Like `axum::Json`, with errors that name the field and never echo input.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim_start().to_ascii_lowercase().starts_with("application/json"))
            .unwrap_or(false);
        if !is_json {
            return Err(ApiError::BadRequest {
                code: "unsupported_media_type",
                message: "send the body as JSON with `Content-Type: application/json`".into(),
                field: None,
            });
        }
        let bytes = axum::body::Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::TooLarge
            } else {
                ApiError::BadRequest {
                    code: "unreadable_body",
                    message: "the request body could not be read".into(),
                    field: None,
                }
            }
        })?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Like `ApiJson`, but an empty body (e.g. `curl -X POST` with no data) means `T::default()`:
/// for steps whose fields are all optional.
pub struct OptionalJson<T>(pub T);

impl<S, T> FromRequest<S> for OptionalJson<T>
where
    T: DeserializeOwned + Default,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = is_json(&req);
        // Read through `Bytes` so the router's body limit still applies.
        let bytes = axum::body::Bytes::from_request(req, state).await.map_err(body_rejection)?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(T::default()));
        }
        if !is_json {
            return Err(not_json());
        }
        parse_json(&bytes).map(OptionalJson)
    }
}

fn is_json(req: &Request) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim_start().to_ascii_lowercase().starts_with("application/json"))
        .unwrap_or(false)
}

fn not_json() -> ApiError {
    ApiError::BadRequest {
        code: "unsupported_media_type",
        message: "send the body as JSON with `Content-Type: application/json`".into(),
        field: None,
    }
}

fn body_rejection(rejection: axum::extract::rejection::BytesRejection) -> ApiError {
    if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::TooLarge
    } else {
        ApiError::BadRequest {
            code: "unreadable_body",
            message: "the request body could not be read".into(),
            field: None,
        }
    }
}

/// Parses JSON into `T`; see `domain::input::parse_json` for why errors are rebuilt.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    input::parse_json(bytes).map_err(|e| ApiError::BadRequest { code: e.code, message: e.message, field: e.field })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        purpose: String,
        subject: Inner,
    }

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        nhs_number: Option<String>,
    }

    fn error_of(json: &str) -> (String, Option<String>, String) {
        match parse_json::<Body>(json.as_bytes()).unwrap_err() {
            ApiError::BadRequest { code, message, field } => (code.to_string(), field, message),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_wrong_type_names_the_field_but_not_the_value() {
        let (code, field, message) = error_of(r#"{"purpose": "x", "subject": {"nhs_number": 9434765919}}"#);
        assert_eq!(code, "invalid_type");
        assert_eq!(field.as_deref(), Some("subject.nhs_number"));
        assert!(!message.contains("9434765919"));
    }

    #[test]
    fn an_unknown_key_that_could_be_a_name_is_not_echoed() {
        let (code, field, message) = error_of(r#"{"purpose": "x", "subject": {"jane": "1"}}"#);
        assert_eq!(code, "unknown_field");
        assert!(!field.unwrap_or_default().contains("jane"));
        assert!(!message.contains("jane"));
    }

    #[test]
    fn a_missing_field_is_named() {
        let (code, field, _) = error_of(r#"{"subject": {}}"#);
        assert_eq!(code, "required");
        assert_eq!(field.as_deref(), Some("purpose"));
    }

    #[test]
    fn malformed_json_is_a_syntax_error_without_content() {
        let (code, _, message) = error_of(r#"{"purpose": "Jane Smith"#);
        assert_eq!(code, "malformed_json");
        assert!(!message.contains("Jane"));
    }
}
