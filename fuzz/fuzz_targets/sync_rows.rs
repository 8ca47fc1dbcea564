//! Caseload sync rows on arbitrary bytes, read both as NDJSON lines and as a CSV file, then
//! validated into holdings. Properties: no panic, and no error message repeats a value.

#![no_main]

mod common;

use std::sync::OnceLock;

use child_locator::domain::holding::HoldingInput;
use child_locator::domain::identity::{IndexSecret, Pseudonymiser};
use child_locator::domain::keyring::Keyring;
use child_locator::domain::sync::{CsvLayout, ndjson_row};
use libfuzzer_sys::fuzz_target;

/// At most this many rows per input, so one input stays fast.
const MAX_ROWS: usize = 32;

fn keyring() -> &'static Keyring {
    static KEYRING: OnceLock<Keyring> = OnceLock::new();
    KEYRING.get_or_init(|| Keyring::new(Pseudonymiser::new(&IndexSecret::from_bytes([7; 32])), None))
}

/// Every text value in the input, to look for in error messages.
fn values(input: &HoldingInput) -> Vec<String> {
    let mut out: Vec<String> =
        [&input.local_ref, &input.category, &input.status].into_iter().flatten().cloned().collect();
    if let Some(s) = &input.subject {
        out.extend(
            [&s.nhs_number, &s.upn, &s.given_name, &s.family_name, &s.date_of_birth, &s.postcode]
                .into_iter()
                .flatten()
                .cloned(),
        );
        out.extend(s.other_given_names.iter().chain(&s.former_family_names).cloned());
    }
    if let Some(c) = &input.contact {
        out.extend([&c.team, &c.phone, &c.email].into_iter().flatten().cloned());
    }
    out
}

/// Validates one row as the sync does, checking each error against the row's own values.
fn validate(input: HoldingInput) {
    let seen = values(&input);
    let local_ref = input.local_ref.clone().unwrap_or_default();
    match input.into_holding(&local_ref, keyring(), common::today()) {
        Ok(holding) => {
            assert_eq!(holding.local_ref, local_ref.trim());
            assert!(!holding.keys.is_empty(), "a valid holding has at least one key");
        }
        Err(errors) => {
            assert!(!errors.is_empty());
            for e in &errors {
                common::assert_field_is_a_name(&e.field);
                for v in &seen {
                    common::assert_not_echoed(&e.message, v, 4);
                }
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // NDJSON: each line is one holding.
    if let Ok(text) = std::str::from_utf8(data) {
        for line in text.lines().take(MAX_ROWS) {
            if let Ok(input) = ndjson_row(line) {
                validate(input);
            }
        }
    }

    // CSV: a header row, then data rows (short or long rows are allowed, as in the sync).
    let mut reader = csv::ReaderBuilder::new().has_headers(true).flexible(true).from_reader(data);
    let Ok(header) = reader.headers().cloned() else { return };
    let layout = match CsvLayout::from_header(header.iter()) {
        Ok(layout) => layout,
        Err(e) => {
            for cell in header.iter() {
                common::assert_not_echoed(&e.message, cell, 4);
            }
            return;
        }
    };
    for record in reader.records().take(MAX_ROWS) {
        let Ok(record) = record else { break };
        validate(layout.row(record.iter()));
    }
});
