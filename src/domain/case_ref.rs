//! The asker's own case reference: how a worker tells two of their lookups or requests apart
//! without the index storing who the child is. Short, plain characters, at least one digit (so
//! a name alone is refused), and never an NHS number. Shown to the asker's organisation only.

use super::FieldError;
use super::identity::NhsNumber;

/// Longest case reference, in characters.
pub const MAX_CASE_REF: usize = 24;

/// The case reference, `None` when absent or blank. Errors never repeat what was typed.
pub fn parse_case_ref(field: &str, raw: Option<&str>) -> Result<Option<String>, FieldError> {
    let Some(text) = raw.map(str::trim).filter(|t| !t.is_empty()) else { return Ok(None) };
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, ' ' | '-' | '/' | '_' | '.');
    if text.chars().count() > MAX_CASE_REF || !text.chars().all(plain) {
        return Err(FieldError::new(
            field,
            "invalid_case_ref",
            format!(
                "case reference must be at most {MAX_CASE_REF} letters, digits, spaces, hyphens, slashes, dots or underscores"
            ),
        ));
    }
    if !text.chars().any(|c| c.is_ascii_digit()) {
        return Err(FieldError::new(
            field,
            "invalid_case_ref",
            "case reference must contain a digit: use your own system's reference, never the child's name",
        ));
    }
    if NhsNumber::parse(text).is_ok() {
        return Err(FieldError::new(
            field,
            "case_ref_is_nhs_number",
            "case reference must not be an NHS number: use your own system's reference",
        ));
    }
    Ok(Some(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_reference_is_kept_and_blank_is_none() {
        assert_eq!(parse_case_ref("case_ref", Some(" CS-2024/0117 ")).unwrap().as_deref(), Some("CS-2024/0117"));
        assert_eq!(parse_case_ref("case_ref", Some("  ")).unwrap(), None);
    }

    #[test]
    fn a_name_an_nhs_number_or_odd_characters_are_refused_without_being_repeated() {
        for bad in ["Jane Smith", "943 476 5919", "x<script>1", "123456789012345678901234567"] {
            let e = parse_case_ref("case_ref", Some(bad)).unwrap_err();
            assert_eq!(e.field, "case_ref");
            assert!(!e.message.contains(bad), "{bad}");
        }
    }
}
