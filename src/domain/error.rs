//! A validation failure that names the field to blame.
//! Messages describe the rule that was broken and never repeat the value given.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub code: &'static str,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, code: &'static str, message: impl Into<String>) -> Self {
        FieldError { field: field.into(), code, message: message.into() }
    }

    pub fn required(field: impl Into<String>) -> Self {
        let field = field.into();
        let message = format!("{field} is required");
        FieldError { field, code: "required", message }
    }

    /// Prefixes the field path, e.g. `nhs_number` inside `subject` becomes `subject.nhs_number`.
    pub fn within(mut self, parent: &str) -> Self {
        if self.field != parent {
            self.field = format!("{parent}.{}", self.field);
        }
        self
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl From<super::identity::FieldError> for FieldError {
    fn from(e: super::identity::FieldError) -> Self {
        FieldError { field: e.field, code: e.code, message: e.message }
    }
}
