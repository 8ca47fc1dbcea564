//! Completes the OpenAPI document with the answers every operation can give besides its own:
//! the middleware's (401 no token, 403 role refused, 429 locked out after failed tokens, 408 the
//! time budget, 503 the database or audit trail away) and the extractors' (400 an unreadable
//! body, query or path parameter, 413 a body over the limit, 422 a rule broken, 404 a path that
//! names nothing). Done once over the whole document, so a new route cannot leave them out; an
//! operation's own description of a status is kept.

use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, ResponseBuilder};
use utoipa::{PartialSchema, ToSchema};

/// The contract's error body, as every error answer carries it.
#[derive(ToSchema)]
#[schema(as = Error)]
#[allow(dead_code)] // documents `error::ErrorBody`, which is built by hand
struct ErrorDoc {
    #[schema(inline)]
    error: ErrorDetailDoc,
}

#[derive(ToSchema)]
#[allow(dead_code)]
struct ErrorDetailDoc {
    /// A stable machine-readable code, e.g. `required`, `forbidden`, `rate_limited`.
    code: String,
    /// What went wrong and what to do, in words; never repeats a submitted value.
    message: String,
    /// The field or parameter to blame, when there is one (e.g. `subject.date_of_birth`).
    field: Option<String>,
}

/// Adds the common error answers to every operation of `spec`.
pub fn document_errors(spec: &mut OpenApi) {
    let components = spec.components.get_or_insert_with(Default::default);
    components.schemas.insert(<ErrorDoc as ToSchema>::name().into_owned(), ErrorDoc::schema());
    let error_body = || ContentBuilder::new().schema(Some(Ref::from_schema_name("Error"))).build();
    for item in spec.paths.paths.values_mut() {
        for operation in operations(item) {
            for (status, description) in statuses_of(operation) {
                let response = ResponseBuilder::new().description(description).build();
                operation.responses.responses.entry(status.to_string()).or_insert(RefOr::T(response));
            }
            // Every error answer, the handler's own included, carries the contract's body.
            for (status, response) in &mut operation.responses.responses {
                if let RefOr::T(response) = response
                    && (status.starts_with('4') || status.starts_with('5'))
                    && response.content.is_empty()
                {
                    response.content.insert("application/json".to_string(), error_body());
                }
            }
        }
    }
}

fn operations(item: &mut utoipa::openapi::PathItem) -> impl Iterator<Item = &mut Operation> {
    [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch, &mut item.head, &mut item.options]
        .into_iter()
        .filter_map(Option::as_mut)
}

/// The statuses `operation` can answer whatever its handler does.
fn statuses_of(operation: &Operation) -> Vec<(u16, &'static str)> {
    // `security(())` marks the public probes; the rest inherit the document's bearer scheme.
    let public = operation.security.as_ref().is_some_and(|s| s.iter().all(is_empty_requirement));
    let parameters = operation.parameters.as_deref().unwrap_or_default();
    let has_path = parameters.iter().any(|p| p.parameter_in == ParameterIn::Path);
    let has_query = parameters.iter().any(|p| p.parameter_in == ParameterIn::Query);
    let has_body = operation.request_body.is_some();
    let mut statuses = vec![(408, "the request took longer than the time budget and was stopped")];
    if public {
        return statuses;
    }
    statuses.extend([
        (401, "no bearer token, or one that is unknown, revoked or expired"),
        (403, "your role may not call this operation, or not on this object"),
        (429, "too many requests, or too many failed tokens from this address; see Retry-After"),
        (503, "the database or the audit trail is unavailable: nothing was done or disclosed; retry"),
    ]);
    if has_path || has_query || has_body {
        statuses.push((400, "a body, query or path parameter could not be read; `field` names it"));
        statuses.push((422, "the input breaks a rule; `field` names it"));
    }
    if has_path {
        statuses.push((404, "no such object, or it belongs to another organisation"));
    }
    if has_body {
        statuses.push((413, "the body is larger than this operation accepts"));
    }
    statuses
}

fn is_empty_requirement(requirement: &utoipa::openapi::security::SecurityRequirement) -> bool {
    serde_json::to_value(requirement).is_ok_and(|v| v.as_object().is_some_and(|o| o.is_empty()))
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    fn spec() -> Value {
        serde_json::to_value(crate::http::openapi()).expect("the document serialises")
    }

    #[test]
    fn every_operation_lists_what_the_middleware_and_extractors_can_answer() {
        let spec = spec();
        let public = ["/healthz", "/readyz", "/metrics"];
        for (path, item) in spec["paths"].as_object().expect("paths") {
            for (method, operation) in item.as_object().expect("operations") {
                let has = |status: &str| operation["responses"].get(status).is_some();
                assert!(has("408"), "{method} {path}");
                // The OAuth token endpoint needs no token and answers in OAuth's own error shape.
                if path == "/oauth/token" {
                    let error = &operation["responses"]["401"]["content"]["application/json"]["schema"]["$ref"];
                    assert_eq!(error, "#/components/schemas/OAuthErrorBody", "{method} {path}");
                    continue;
                }
                if public.contains(&path.as_str()) {
                    assert!(!has("401"), "{method} {path} needs no token");
                    continue;
                }
                for status in ["401", "403", "429", "503"] {
                    assert!(has(status), "{method} {path} does not list {status}");
                }
                if path.contains('{') {
                    assert!(has("400") && has("404") && has("422"), "{method} {path}");
                }
                if operation.get("requestBody").is_some() {
                    assert!(has("400") && has("413") && has("422"), "{method} {path}");
                }
                let error = &operation["responses"]["401"]["content"]["application/json"]["schema"]["$ref"];
                assert_eq!(error, "#/components/schemas/Error", "{method} {path}");
            }
        }
        let error = &spec["components"]["schemas"]["Error"];
        assert_eq!(error["required"], serde_json::json!(["error"]), "{error}");
    }

    #[test]
    fn fields_without_which_an_input_is_refused_are_marked_required_and_not_null() {
        let spec = spec();
        let schemas = &spec["components"]["schemas"];
        let cases = [
            ("HoldingInput", &["category", "status", "subject"][..]),
            ("LookupInput", &["purpose"]),
            ("RequestInput", &["match_id", "legal_basis", "reason", "urgency"]),
            ("OrganisationInput", &["code", "name", "kind", "duty_phone", "secure_email"]),
            ("WebhookInput", &["url"]),
            ("SubjectAccessInput", &["subject"]),
        ];
        for (schema, fields) in cases {
            let required = schemas[schema]["required"].as_array().unwrap_or_else(|| panic!("{schema}: none required"));
            for field in fields {
                assert!(required.iter().any(|r| r == field), "{schema}.{field} is not marked required");
                let kind = &schemas[schema]["properties"][field]["type"];
                assert!(!kind.to_string().contains("null"), "{schema}.{field} is required, so not null: {kind}");
            }
        }
    }
}
