//! Shared by the fuzz targets: a fixed "today", and the check that an error message does not
//! repeat a value it was given (the crate's rule: messages never echo input).

#![allow(dead_code)]

use time::{Date, Month};

/// The day the tests' manual clock starts on; a fixed date keeps runs reproducible.
pub fn today() -> Date {
    Date::from_calendar_date(2026, Month::November, 24).expect("a real date")
}

/// The source text the crate's error messages are written in. A value that appears here is
/// part of the program (a word of a fixed message, a field name), so finding it in a message
/// is not a leak; anything else found in a message came from the input.
const SOURCES: &[&str] = &[
    include_str!("../../src/domain/error.rs"),
    include_str!("../../src/domain/holding.rs"),
    include_str!("../../src/domain/input.rs"),
    include_str!("../../src/domain/lookup.rs"),
    include_str!("../../src/domain/organisation.rs"),
    include_str!("../../src/domain/sync.rs"),
    include_str!("../../src/domain/identity/error.rs"),
    include_str!("../../src/domain/identity/identifiers.rs"),
    include_str!("../../src/domain/identity/names.rs"),
    include_str!("../../src/domain/identity/subject.rs"),
];

/// Panics if `message` contains `value` (trimmed, at least `min` bytes) and that text is not
/// part of the program's own source.
///
/// Messages are built from fixed text and field names (`"{field} is required"`), so a value can
/// match across a field name and fixed words without coming from the input ("us is required"
/// inside "status is required"). Both sides are compared with every lower-case word of the
/// program masked out; what is left of the value must still be there, and long enough.
pub fn assert_not_echoed(message: &str, value: &str, min: usize) {
    let value = value.trim();
    if value.len() < min || !message.contains(value) {
        return;
    }
    if SOURCES.iter().any(|s| s.contains(value)) {
        return;
    }
    let (message, value) = (mask_program_words(message), mask_program_words(value));
    if value.chars().filter(|c| *c != MASK).count() < min || !message.contains(&value) {
        return;
    }
    panic!("an error message repeats an input value: message {message:?} contains {value:?}");
}

const MASK: char = '\u{1}';

/// Replaces each run of lower-case letters and underscores that occurs in the program's source
/// with one mask character.
fn mask_program_words(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if !word.is_empty() {
            if SOURCES.iter().any(|s| s.contains(word.as_str())) {
                out.push(MASK);
            } else {
                out.push_str(word);
            }
            word.clear();
        }
    };
    for c in text.chars() {
        if c.is_ascii_lowercase() || c == '_' {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// Splits the input into text fields on newlines; `None` for an empty line.
pub fn fields(text: &str) -> Vec<Option<String>> {
    text.split('\n').map(|f| (!f.is_empty()).then(|| f.to_string())).collect()
}

/// Panics unless `field` is a path of schema names with optional numeric indexes, such as
/// `subject.other_given_names[1]`: a field path never carries free text.
pub fn assert_field_is_a_name(field: &str) {
    let ok = field.split('.').all(|seg| {
        let (name, index) = match seg.split_once('[') {
            Some((n, rest)) => (n, rest.strip_suffix(']')),
            None => (seg, Some("0")),
        };
        !name.is_empty()
            && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
            && index.is_some_and(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()))
    });
    assert!(ok, "an error names a field that is not a schema name: {field:?}");
}
