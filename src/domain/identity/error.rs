//! Validation errors that name the field at fault and never echo its value.
//! Errors end up in logs and API responses, so their text is fixed at compile time.

use serde::Serialize;

/// Why one identifier failed to parse, before the subject layer names the field.
///
/// Both strings are `'static`: an error built from input could leak an identifier into a log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Invalid {
    pub code: &'static str,
    pub message: &'static str,
}

impl Invalid {
    pub(crate) const fn new(code: &'static str, message: &'static str) -> Self {
        Self { code, message }
    }
}

/// One problem with one field of a raw subject.
///
/// `field` is a field name such as `nhs_number` or `other_given_names[1]`, never a value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub code: &'static str,
    pub message: String,
}

impl FieldError {
    pub(crate) fn new(field: impl Into<String>, invalid: Invalid) -> Self {
        Self { field: field.into(), code: invalid.code, message: invalid.message.to_owned() }
    }
}
