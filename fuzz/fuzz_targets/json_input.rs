//! JSON bodies (lookup and holding) on arbitrary bytes. Properties: no panic; every error
//! message is one of the fixed texts, and the field path never carries a non-schema name.

#![no_main]

use child_locator::domain::holding::HoldingInput;
use child_locator::domain::input::{InputError, parse_json};
use child_locator::domain::lookup::LookupInput;
use libfuzzer_sys::fuzz_target;

/// Every message `parse_json` can give apart from the syntax one (which carries only a
/// line and column number).
const FIXED: &[&str] = &[
    "this field is not accepted here",
    "a required field is missing",
    "this value is not one of the accepted values",
    "this field has the wrong type (identifiers and dates are strings)",
    "the body has trailing characters after the JSON value",
];

fn check(e: &InputError) {
    let syntax = e.message.strip_prefix("the body is not valid JSON (line ").is_some_and(|rest| {
        rest.strip_suffix(')').and_then(|r| r.split_once(", column ")).is_some_and(|(line, column)| {
            line.bytes().all(|b| b.is_ascii_digit()) && column.bytes().all(|b| b.is_ascii_digit())
        })
    });
    assert!(syntax || FIXED.contains(&e.message.as_str()), "an unexpected error message: {:?}", e.message);
    if let Some(field) = &e.field {
        // Segments are snake_case schema names, "?" or an index: never free text.
        for seg in field.split('.') {
            let name = seg.split('[').next().unwrap_or("");
            assert!(
                name == "?" || name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "a field path carries a segment that is not a schema name: {field:?}"
            );
            if let Some((_, index)) = seg.split_once('[') {
                let index = index.trim_end_matches(']');
                assert!(index == "?" || index.bytes().all(|b| b.is_ascii_digit()), "a field path index: {field:?}");
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if let Err(e) = parse_json::<LookupInput>(data) {
        check(&e);
    }
    if let Err(e) = parse_json::<HoldingInput>(data) {
        check(&e);
    }
});
