//! JSON in and out. Bodies are read with our own extractor so that a bad body gets the
//! contract's error shape naming the field, and no message ever repeats a submitted value.

use axum::extract::{FromRequest, Request};
use axum::http::header;
use serde::Serializer;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use crate::clock::{Millis, rfc3339};

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

/// Parses JSON into `T`, turning serde's errors (which can quote values) into ones that don't.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let result: Result<T, _> = serde_path_to_error::deserialize(&mut deserializer);
    let value = result.map_err(|e| {
        let field = safe_path(&e.path().to_string());
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => ApiError::BadRequest {
                code: "malformed_json",
                message: format!("the body is not valid JSON (line {}, column {})", inner.line(), inner.column()),
                field: None,
            },
            _ => {
                let text = inner.to_string();
                let (code, message) = if text.starts_with("unknown field") {
                    ("unknown_field", "this field is not accepted here")
                } else if text.starts_with("missing field") {
                    ("required", "a required field is missing")
                } else if text.starts_with("unknown variant") {
                    ("invalid_value", "this value is not one of the accepted values")
                } else {
                    ("invalid_type", "this field has the wrong type (identifiers and dates are strings)")
                };
                let field = if code == "required" || code == "unknown_field" {
                    field_named_in(&text).map(|name| join_path(&field, name)).or(Some(field))
                } else {
                    Some(field)
                };
                ApiError::BadRequest { code, message: message.into(), field: field.filter(|f| !f.is_empty()) }
            }
        }
    })?;
    deserializer.end().map_err(|_| ApiError::BadRequest {
        code: "malformed_json",
        message: "the body has trailing characters after the JSON value".into(),
        field: None,
    })?;
    Ok(value)
}

/// The field name quoted by serde (`missing field `x``), if it is a plausible schema name.
fn field_named_in(text: &str) -> Option<&str> {
    let start = text.find('`')? + 1;
    let end = start + text[start..].find('`')?;
    let name = &text[start..end];
    is_schema_name(name).then_some(name)
}

fn join_path(parent: &str, name: &str) -> String {
    if parent.is_empty() || parent == "." { name.to_string() } else { format!("{parent}.{name}") }
}

/// Keeps a path only if every segment looks like one of our snake_case field names or an
/// index; a client that sent an identifier as a key never sees it echoed.
fn safe_path(path: &str) -> String {
    if path == "." {
        return String::new();
    }
    path.split('.')
        .map(|seg| {
            let (name, index) = match seg.split_once('[') {
                Some((n, rest)) => (n, Some(rest)),
                None => (seg, None),
            };
            let name = if is_schema_name(name) || name.is_empty() { name } else { "?" };
            match index {
                Some(rest) if rest.trim_end_matches(']').bytes().all(|b| b.is_ascii_digit()) => {
                    format!("{name}[{rest}")
                }
                Some(_) => format!("{name}[?]"),
                None => name.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// Our field names: lower-case snake_case that also contain an underscore or are in the
/// short list of single-word fields. A bare word could be someone's name, so it must be known.
fn is_schema_name(name: &str) -> bool {
    const SINGLE_WORDS: &[&str] = &[
        "subject",
        "purpose",
        "category",
        "status",
        "contact",
        "carers",
        "children",
        "family",
        "shielded",
        "reason",
        "urgency",
        "code",
        "name",
        "kind",
        "active",
        "role",
        "organisation",
        "phone",
        "email",
        "team",
        "note",
        "how",
        "reference",
        "upn",
        "postcode",
    ];
    let shape = !name.is_empty()
        && name.len() <= 40
        && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_' || b.is_ascii_digit());
    shape && (name.contains('_') || SINGLE_WORDS.contains(&name))
}

pub fn millis_as_rfc3339<S: Serializer>(ms: &Millis, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(*ms))
}

pub fn opt_millis_as_rfc3339<S: Serializer>(ms: &Option<Millis>, s: S) -> Result<S::Ok, S::Error> {
    match ms {
        Some(ms) => s.serialize_str(&rfc3339(*ms)),
        None => s.serialize_none(),
    }
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
