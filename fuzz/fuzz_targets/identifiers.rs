//! Identifier parsing: arbitrary text, one field per line, through `Subject::parse` and the
//! single-identifier parsers. Properties: no panic, and no error message repeats a value.
//!
//! Input layout: line 1 picks role and key use (first byte: bit 0 = carer, bit 1 = lookup);
//! then nhs_number, upn, given_name, family_name, date_of_birth, postcode, other_given_names
//! (`;`-separated), former_family_names (`;`-separated). An empty line is an absent field.

#![no_main]

mod common;

use child_locator::domain::identity::{
    DateOfBirth, KeyUse, LookupOptions, NhsNumber, Postcode, RawSubject, Subject, SubjectRole, Upn, holding_keys,
    lookup_keys_with,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let today = common::today();
    let mut lines = common::fields(text).into_iter();
    let mode = lines.next().flatten().and_then(|l| l.bytes().next()).unwrap_or(0);
    let role = if mode & 1 == 0 { SubjectRole::Child } else { SubjectRole::Carer };
    let use_ = if mode & 2 == 0 { KeyUse::Holding } else { KeyUse::Lookup };
    let mut next = || lines.next().flatten();
    let list =
        |l: Option<String>| -> Vec<String> { l.map(|l| l.split(';').map(String::from).collect()).unwrap_or_default() };
    let raw = RawSubject {
        nhs_number: next(),
        upn: next(),
        given_name: next(),
        family_name: next(),
        date_of_birth: next(),
        postcode: next(),
        other_given_names: list(next()),
        former_family_names: list(next()),
        expected_date: None,
    };

    // Each parser on its own: no panic, and an error never quotes the input.
    let singles: [(&Option<String>, Option<&'static str>); 4] = [
        (&raw.nhs_number, NhsNumber::parse(raw.nhs_number.as_deref().unwrap_or("")).err().map(|e| e.message)),
        (&raw.upn, Upn::parse(raw.upn.as_deref().unwrap_or("")).err().map(|e| e.message)),
        (
            &raw.date_of_birth,
            DateOfBirth::parse(raw.date_of_birth.as_deref().unwrap_or(""), today).err().map(|e| e.message),
        ),
        (
            &raw.postcode,
            Postcode::parse(raw.postcode.as_deref().unwrap_or(""), use_ == KeyUse::Lookup).err().map(|e| e.message),
        ),
    ];
    for (value, message) in singles {
        if let (Some(value), Some(message)) = (value, message) {
            common::assert_not_echoed(message, value, 4);
        }
    }
    if let Some(raw_pc) = &raw.postcode
        && let Ok(pc) = Postcode::parse(raw_pc, use_ == KeyUse::Lookup)
    {
        // A parsed postcode is canonical: parsing its normalised form gives it back.
        let again = Postcode::parse(&pc.normalised(), use_ == KeyUse::Lookup).expect("a normalised postcode re-parses");
        assert!(again == pc, "a normalised postcode re-parses to a different postcode");
    }

    match Subject::parse(&raw, role, use_, today) {
        Ok(subject) => {
            let held = holding_keys(&subject);
            // A lookup as it is asked today (the current key family's stored tolerance keys included).
            let asked = lookup_keys_with(&subject, LookupOptions::default());
            // Every stored key must be among the keys a lookup for the same subject asks, but for
            // the kinds that meet only two small errors at once: the records that make those ask
            // them (tested in `every_stored_key_is_asked_by_some_lookup_of_the_same_child`).
            for key in held.iter().filter(|k| !k.kind().stored_for_two_errors()) {
                assert!(
                    asked.iter().any(|k| k.kind() == key.kind() && k.material() == key.material()),
                    "a holding key is missing from the lookup keys of the same subject"
                );
            }
        }
        Err(errors) => {
            assert!(!errors.is_empty());
            let values =
                [&raw.nhs_number, &raw.upn, &raw.given_name, &raw.family_name, &raw.date_of_birth, &raw.postcode];
            for e in &errors {
                common::assert_field_is_a_name(&e.field);
                for value in values.into_iter().flatten() {
                    common::assert_not_echoed(&e.message, value, 4);
                }
                for value in raw.other_given_names.iter().chain(&raw.former_family_names) {
                    common::assert_not_echoed(&e.message, value, 4);
                }
            }
        }
    }
});
