//! The OAuth 2.0 token endpoint (RFC 6749 s4.4, client credentials, with RFC 7523 JWT client
//! assertions). Its answers are OAuth's own shapes (s5.1, s5.2), not the API's error body, and
//! never repeat the assertion.

use std::net::SocketAddr;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use crate::service::clients::{IssuedAccessToken, OAuthError, TokenRequest};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(token))
}

/// RFC 6749 s5.2.
#[derive(Serialize, ToSchema)]
pub struct OAuthErrorBody {
    /// `invalid_request`, `invalid_client`, `unsupported_grant_type` or `temporarily_unavailable`.
    error: &'static str,
    error_description: &'static str,
}

/// The form a token request posts (`application/x-www-form-urlencoded`).
#[derive(ToSchema)]
#[allow(dead_code)] // documents the form, which is read by hand (each parameter at most once)
pub struct TokenForm {
    /// `client_credentials`.
    grant_type: String,
    /// `urn:ietf:params:oauth:client-assertion-type:jwt-bearer`.
    client_assertion_type: String,
    /// A JWT signed with the client's private key: `iss` and `sub` the client_id, `aud` this
    /// token endpoint's URL, `exp` at most 5 minutes ahead, a unique `jti`.
    client_assertion: String,
    /// Optional; when sent, it must be the assertion's `iss`.
    client_id: Option<String>,
}

/// Trade a signed client assertion for a short-lived access token. No bearer token: the
/// assertion authenticates the client.
#[utoipa::path(post, path = "/oauth/token", tag = "clients", security(()),
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, body = IssuedAccessToken),
        (status = 400, body = OAuthErrorBody, description = "invalid_request or unsupported_grant_type"),
        (status = 401, body = OAuthErrorBody, description = "invalid_client: the assertion was refused"),
        (status = 429, body = OAuthErrorBody, description = "too many failures from this address"),
        (status = 503, body = OAuthErrorBody, description = "temporarily_unavailable"),
    ))]
async fn token(
    State(state): State<AppState>,
    connect: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ip = super::client_ip::client_address(&state, connect.map(|c| c.0.0), &headers);
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        let message = "send the request as a form with `Content-Type: application/x-www-form-urlencoded`";
        return refusal(OAuthError::InvalidRequest(message));
    }
    let request = match read_form(&body) {
        Ok(request) => request,
        Err(message) => return refusal(OAuthError::InvalidRequest(message)),
    };
    match state.client_token(ip, &request).await {
        Ok(issued) => no_store((StatusCode::OK, Json(issued)).into_response()),
        Err(e) => refusal(e),
    }
}

/// Reads the form; a parameter sent twice is refused (RFC 6749 s3.2), and unknown ones ignored.
fn read_form(body: &[u8]) -> Result<TokenRequest, &'static str> {
    let mut request = TokenRequest::default();
    for (name, value) in form_urlencoded::parse(body) {
        let slot = match name.as_ref() {
            "grant_type" => &mut request.grant_type,
            "client_assertion_type" => &mut request.client_assertion_type,
            "client_assertion" => &mut request.client_assertion,
            "client_id" => &mut request.client_id,
            _ => continue,
        };
        if slot.replace(value.into_owned()).is_some() {
            return Err("a parameter was sent more than once");
        }
    }
    Ok(request)
}

fn refusal(e: OAuthError) -> Response {
    let (status, error, error_description) = match e {
        OAuthError::InvalidRequest(m) => (StatusCode::BAD_REQUEST, "invalid_request", m),
        OAuthError::UnsupportedGrantType => {
            (StatusCode::BAD_REQUEST, "unsupported_grant_type", "grant_type must be client_credentials")
        }
        OAuthError::InvalidClient(m) => (StatusCode::UNAUTHORIZED, "invalid_client", m),
        OAuthError::SlowDown(_) => (
            StatusCode::TOO_MANY_REQUESTS,
            "invalid_client",
            "too many failed attempts from this address; wait a minute and try again",
        ),
        OAuthError::Unavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "the service could not complete the request; nothing was issued; try again shortly",
        ),
    };
    let mut response = no_store((status, Json(OAuthErrorBody { error, error_description })).into_response());
    match e {
        OAuthError::SlowDown(secs) => {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        OAuthError::Unavailable => {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(5u32));
        }
        _ => {}
    }
    response
}

/// RFC 6749 s5.1: token responses are never cached.
fn no_store(mut response: Response) -> Response {
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response.headers_mut().insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}
