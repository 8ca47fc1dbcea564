//! Reading structured input (JSON bodies, NDJSON lines) so that every error names the field
//! and never repeats a submitted value: serde's own messages can quote the input.

use serde::de::DeserializeOwned;

/// A body or line that could not be read into the expected shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
}

/// Parses JSON into `T`, turning serde's errors (which can quote values) into ones that don't.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, InputError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let result: Result<T, _> = serde_path_to_error::deserialize(&mut deserializer);
    let value = result.map_err(|e| {
        let field = safe_path(&e.path().to_string());
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => InputError {
                code: "malformed_json",
                message: format!("the body is not valid JSON (line {}, column {})", inner.line(), inner.column()),
                field: None,
            },
            _ => classified(
                field,
                &inner.to_string(),
                "this field has the wrong type (identifiers and dates are strings)",
            ),
        }
    })?;
    deserializer.end().map_err(|_| InputError {
        code: "malformed_json",
        message: "the body has trailing characters after the JSON value".into(),
        field: None,
    })?;
    Ok(value)
}

/// Parses a URL query string into `T` with the same guarantees as `parse_json`: the error
/// names the parameter and never repeats its value (serde's messages can quote it).
pub fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, InputError> {
    let deserializer = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let text = e.inner().to_string();
        // A value that fails to parse belongs to one of `T`'s own fields (serde ignores the
        // values of others), so its name is ours to repeat; an unknown key is the client's.
        let field =
            if text.starts_with("unknown field") { safe_path(&e.path().to_string()) } else { e.path().to_string() };
        classified(field, &text, "this parameter has the wrong type or is out of range")
    })
}

/// An error from serde's message (read for its kind, never repeated) and the path to the
/// field at fault.
fn classified(field: String, text: &str, wrong_type: &str) -> InputError {
    let (code, message) = if text.starts_with("unknown field") {
        ("unknown_field", "this field is not accepted here")
    } else if text.starts_with("missing field") {
        ("required", "a required field is missing")
    } else if text.starts_with("unknown variant") {
        ("invalid_value", "this value is not one of the accepted values")
    } else {
        ("invalid_type", wrong_type)
    };
    let field = if code == "required" || code == "unknown_field" {
        field_named_in(text).map(|name| join_path(&field, name)).or(Some(field))
    } else {
        Some(field)
    };
    InputError { code, message: message.into(), field: field.filter(|f| !f.is_empty()) }
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
        "url",
    ];
    let shape = !name.is_empty()
        && name.len() <= 40
        && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_' || b.is_ascii_digit());
    shape && (name.contains('_') || SINGLE_WORDS.contains(&name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Page {
        limit: Option<i64>,
        include_inactive: Option<bool>,
    }

    #[test]
    fn a_query_parameter_of_the_wrong_type_is_named_and_its_value_is_not_repeated() {
        let e = parse_query::<Page>("limit=99999999999999999999").unwrap_err();
        assert_eq!((e.code, e.field.as_deref()), ("invalid_type", Some("limit")));
        assert!(!e.message.contains("9999"));
        let e = parse_query::<Page>("include_inactive=Amelia").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("include_inactive"));
        assert!(!e.message.contains("Amelia"));
    }

    #[test]
    fn an_unknown_query_parameter_that_could_be_a_name_is_not_echoed() {
        let e = parse_query::<Page>("amelia=1").unwrap_err();
        assert_eq!(e.code, "unknown_field");
        assert!(!format!("{e:?}").contains("amelia"), "{e:?}");
    }
}
