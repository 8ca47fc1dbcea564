//! Behaviour tests through the module's public surface: validation, redaction, key design,
//! pseudonyms and tiers, plus property tests for normalisation and key invariants.

use std::collections::{HashMap, HashSet};

use proptest::prelude::*;
use time::Date;
use time::macros::date;

use super::*;

const TODAY: Date = date!(2026 - 11 - 01);

fn raw(given: &str, family: &str, dob: &str) -> RawSubject {
    RawSubject {
        given_name: Some(given.into()),
        family_name: Some(family.into()),
        date_of_birth: Some(dob.into()),
        ..RawSubject::default()
    }
}

fn child(raw: &RawSubject, use_: KeyUse) -> Subject {
    Subject::parse(raw, SubjectRole::Child, use_, TODAY).expect("valid subject")
}

fn pseudonymiser() -> Pseudonymiser {
    Pseudonymiser::new(&IndexSecret::from_bytes([7; 32]))
}

/// A miniature index: assesses each holding against one lookup, as the product will.
fn assess_all(holdings: &[Subject], lookup: &Subject) -> Vec<Option<Assessment>> {
    let p = pseudonymiser();
    let stored: Vec<HashSet<Pseudonym>> =
        holdings.iter().map(|h| holding_keys(h).iter().map(|k| p.pseudonym(k)).collect()).collect();
    let mut holders: HashMap<Pseudonym, u32> = HashMap::new();
    for set in &stored {
        for ps in set {
            *holders.entry(*ps).or_default() += 1;
        }
    }
    let asked: Vec<(MatchKey, Pseudonym)> = lookup_keys(lookup)
        .into_iter()
        .map(|k| {
            let ps = p.pseudonym(&k);
            (k, ps)
        })
        .collect();
    holdings
        .iter()
        .zip(&stored)
        .map(|(holding, set)| {
            let agreed = asked
                .iter()
                .filter(|(_, ps)| set.contains(ps))
                .map(|(k, ps)| Agreement {
                    kind: k.kind(),
                    variant: k.variant(),
                    holders_with_key: holders.get(ps).copied().unwrap_or(0),
                })
                .collect();
            assess(&Evidence { agreed, asker_fields: lookup.fields_present(), holder_fields: holding.fields_present() })
        })
        .collect()
}

fn assess_pair(holding: &RawSubject, lookup: &RawSubject) -> Option<Assessment> {
    let h = child(holding, KeyUse::Holding);
    let l = child(lookup, KeyUse::Lookup);
    assess_all(&[h], &l).pop().flatten()
}

fn tier_of(holding: &RawSubject, lookup: &RawSubject) -> Option<Tier> {
    assess_pair(holding, lookup).map(|a| a.tier)
}

fn with_nhs(mut r: RawSubject, nhs: &str) -> RawSubject {
    r.nhs_number = Some(nhs.into());
    r
}

fn with_postcode(mut r: RawSubject, postcode: &str) -> RawSubject {
    r.postcode = Some(postcode.into());
    r
}

// ---- Validation ----

#[test]
fn every_field_error_is_reported_not_just_the_first() {
    let bad = RawSubject {
        nhs_number: Some("9434765918".into()),
        upn: Some("A801200005001".into()),
        given_name: Some("J4ck".into()),
        family_name: Some("--".into()),
        date_of_birth: Some("2015-02-30".into()),
        postcode: Some("SW1A".into()),
        other_given_names: vec!["Ok".into(), "\u{7}".into()],
        former_family_names: vec![],
        expected_date: None,
    };
    let errors = Subject::parse(&bad, SubjectRole::Child, KeyUse::Holding, TODAY).unwrap_err();
    let fields: Vec<(&str, &str)> = errors.iter().map(|e| (e.field.as_str(), e.code)).collect();
    assert_eq!(
        fields,
        [
            ("nhs_number", "invalid_check_digit"),
            ("upn", "invalid_check_letter"),
            ("given_name", "invalid_characters"),
            ("family_name", "no_letters"),
            ("date_of_birth", "invalid_date"),
            ("postcode", "outward_code_only"),
            ("other_given_names[1]", "invalid_characters"),
        ]
    );
}

#[test]
fn nhs_error_names_the_field_and_explains_the_check() {
    let r = RawSubject { nhs_number: Some("943 476 5918".into()), ..RawSubject::default() };
    let errors = Subject::parse(&r, SubjectRole::Child, KeyUse::Lookup, TODAY).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].field, "nhs_number");
    assert_eq!(errors[0].code, "invalid_check_digit");
    assert_eq!(errors[0].message, "NHS number check digit does not match (Modulus 11)");
}

#[test]
fn a_subject_needs_a_strong_identifier_or_names_and_date_of_birth() {
    let r = RawSubject {
        given_name: Some("Amelia".into()),
        family_name: Some("Khan".into()),
        postcode: Some("M1 1AE".into()),
        ..RawSubject::default()
    };
    let errors = Subject::parse(&r, SubjectRole::Child, KeyUse::Lookup, TODAY).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].field, "subject");
    assert_eq!(errors[0].code, "insufficient_identifiers");

    let temporary_only = RawSubject { upn: Some("M80120000500A".into()), ..RawSubject::default() };
    let errors = Subject::parse(&temporary_only, SubjectRole::Child, KeyUse::Lookup, TODAY).unwrap_err();
    assert_eq!(errors[0].field, "subject");

    let nhs_only = with_nhs(RawSubject::default(), "9434765919");
    assert!(Subject::parse(&nhs_only, SubjectRole::Child, KeyUse::Lookup, TODAY).is_ok());
    let upn_only = RawSubject { upn: Some("B801200005001".into()), ..RawSubject::default() };
    assert!(Subject::parse(&upn_only, SubjectRole::Child, KeyUse::Lookup, TODAY).is_ok());
}

#[test]
fn blank_fields_count_as_absent() {
    let mut r = raw("Amelia", "Khan", "2015-03-04");
    r.nhs_number = Some("   ".into());
    r.postcode = Some(String::new());
    let s = child(&r, KeyUse::Holding);
    assert!(s.nhs_number().is_none());
    assert!(s.postcode().is_none());
}

#[test]
fn children_over_twenty_five_are_rejected_but_carers_are_not() {
    let old = raw("Amelia", "Khan", "1990-01-01");
    let errors = Subject::parse(&old, SubjectRole::Child, KeyUse::Holding, TODAY).unwrap_err();
    assert_eq!(errors[0].code, "out_of_range");
    assert!(Subject::parse(&old, SubjectRole::Carer, KeyUse::Holding, TODAY).is_ok());
    let care_leaver = raw("Amelia", "Khan", "2000-11-02");
    assert!(Subject::parse(&care_leaver, SubjectRole::Child, KeyUse::Holding, TODAY).is_ok());
}

#[test]
fn nobody_is_born_in_the_future_whatever_their_role() {
    let unborn = raw("Amelia", "Khan", "2026-11-02");
    for role in SubjectRole::ALL {
        let errors = Subject::parse(&unborn, role, KeyUse::Holding, TODAY).unwrap_err();
        assert_eq!(errors[0].code, "in_future");
    }
}

#[test]
fn outward_only_postcode_is_accepted_for_a_lookup_only() {
    let r = with_postcode(raw("Amelia", "Khan", "2015-03-04"), "sw1a");
    assert!(Subject::parse(&r, SubjectRole::Child, KeyUse::Lookup, TODAY).is_ok());
    assert!(Subject::parse(&r, SubjectRole::Child, KeyUse::Holding, TODAY).is_err());
}

#[test]
fn raw_subject_rejects_unknown_fields() {
    let json = r#"{"given_name":"Amelia","surname":"Khan"}"#;
    assert!(serde_json::from_str::<RawSubject>(json).is_err());
    let json = r#"{"given_name":"Amelia","family_name":"Khan","date_of_birth":"2015-03-04"}"#;
    let r: RawSubject = serde_json::from_str(json).expect("lists default to empty");
    assert!(r.other_given_names.is_empty());
}

// ---- Nothing identifying in errors or Debug output ----

const CANARIES: [&str; 6] =
    ["CANARYNAMEQX", "Zebedee-Canaryqx", "943476591", "9434765918", "A80120000500Z", "2099-12-31"];

#[test]
fn error_messages_never_echo_the_input() {
    let inputs = [
        RawSubject {
            nhs_number: Some(CANARIES[3].into()),
            upn: Some(CANARIES[4].into()),
            given_name: Some(format!("{}1", CANARIES[0])),
            family_name: Some(format!("{}\u{1}", CANARIES[1])),
            date_of_birth: Some(CANARIES[5].into()),
            postcode: Some("CANARY POSTCODE".into()),
            other_given_names: vec![format!("{}9", CANARIES[0]); 2],
            former_family_names: vec![CANARIES[1].repeat(20)],
            expected_date: None,
        },
        RawSubject {
            nhs_number: Some(CANARIES[2].into()),
            date_of_birth: Some("1990-01-01".into()),
            given_name: Some(CANARIES[0].into()),
            ..RawSubject::default()
        },
    ];
    for input in inputs {
        for role in SubjectRole::ALL {
            let errors = Subject::parse(&input, role, KeyUse::Holding, TODAY).unwrap_err();
            assert!(!errors.is_empty());
            for e in &errors {
                let shown = format!("{e} {e:?} {}", e.message);
                for canary in CANARIES.iter().chain(&["CANARY", "Canary", "canary", "1990"]) {
                    assert!(!shown.contains(canary), "{shown:?} leaks {canary:?}");
                }
            }
        }
    }
}

#[test]
fn debug_output_of_subjects_keys_and_secrets_is_redacted() {
    let mut r = raw("Canaryqx", "Zebedee", "2015-03-04");
    r.nhs_number = Some("9434765919".into());
    r.upn = Some("B801200005001".into());
    r.postcode = Some("SW1A 1AA".into());
    r.other_given_names = vec!["Middlecanary".into()];
    let s = child(&r, KeyUse::Holding);
    let secret = IndexSecret::from_bytes([0xAB; 32]);
    let p = Pseudonymiser::new(&secret);
    let keys = holding_keys(&s);
    let shown = format!(
        "{r:?} {s:?} {keys:?} {secret:?} {p:?} {:?} {:?} {:?}",
        s.given_name(),
        s.nhs_number(),
        s.date_of_birth()
    );
    for secret_text in [
        "CANARYQX",
        "Canaryqx",
        "ZEBEDEE",
        "Zebedee",
        "MIDDLECANARY",
        "9434765919",
        "B801200005001",
        "SW1A",
        "2015",
        "abab",
        "171",
    ] {
        assert!(!shown.contains(secret_text), "{shown} leaks {secret_text}");
    }
    assert!(shown.contains("NhsNumber(***)"));
    assert!(shown.contains("IndexSecret(***)"));
}

// ---- Key design ----

#[test]
fn no_key_is_built_from_a_single_demographic_field() {
    let mut r = raw("Amelia", "Khan-Smith", "2015-03-04");
    r.postcode = Some("M1 1AE".into());
    r.other_given_names = vec!["Rose".into()];
    r.former_family_names = vec!["Jones".into()];
    let s = child(&r, KeyUse::Holding);
    for key in holding_keys(&s).iter().chain(&lookup_keys(&s)) {
        if !key.kind().is_strong() {
            let fields = key.kind().covers().bits();
            assert!(fields.count_ones() >= 2, "{key:?}");
        }
    }
}

#[test]
fn a_typical_child_stores_a_modest_number_of_keys() {
    let mut r = raw("Amelia", "Khan", "2015-03-04");
    r.nhs_number = Some("9434765919".into());
    r.upn = Some("B801200005001".into());
    r.postcode = Some("M1 1AE".into());
    // About 10 canonical keys, plus each name's deletion neighbourhood (7 + 5), the given name's
    // again with the family name's first and last letters (7) and 3 partial dates.
    let typical = holding_keys(&child(&r, KeyUse::Holding)).len();
    assert!(typical <= 33, "{typical}");

    let mut busy = raw("Lizzie", "Smith-Jones", "2015-03-04");
    busy.nhs_number = Some("9434765919".into());
    busy.postcode = Some("M1 1AE".into());
    busy.other_given_names = vec!["Rose".into(), "Mary".into(), "Anne".into()];
    busy.former_family_names = vec!["Brown".into(), "Green".into()];
    // Three alternative family names each store the given name's neighbourhood again (18).
    let busy = holding_keys(&child(&busy, KeyUse::Holding)).len();
    assert!(busy <= 60, "{busy}");
}

#[test]
fn holdings_store_only_exact_keys() {
    let s = child(&raw("Alfie", "Smith-Jones", "2015-03-04"), KeyUse::Holding);
    assert!(holding_keys(&s).iter().all(|k| k.variant() == Variant::Exact));
}

#[test]
fn every_stored_key_is_asked_by_some_lookup_of_the_same_child() {
    let mut r = raw("Alfie", "Smith-Jones", "2015-03-04");
    r.postcode = Some("M1 1AE".into());
    r.nhs_number = Some("9434765919".into());
    let s = child(&r, KeyUse::Holding);
    let p = pseudonymiser();
    let asked: HashSet<Pseudonym> = lookup_keys(&s).iter().map(|k| p.pseudonym(k)).collect();
    // The keys for two small errors at once are asked by the records that make them: a typo in
    // the first name (one for each string of its neighbourhood), with the child known by one
    // barrel alone or with a typo inside the family name too.
    let mut two_errors: HashSet<Pseudonym> = HashSet::new();
    for given in ["Alfiee", "Lfie", "Afie", "Alie", "Alfe", "Alfi"] {
        for family in ["Smith", "Jones", "Smiht-Jones"] {
            let mut other = r.clone();
            (other.given_name, other.family_name) = (Some(given.into()), Some(family.into()));
            two_errors.extend(lookup_keys(&child(&other, KeyUse::Lookup)).iter().map(|k| p.pseudonym(k)));
        }
    }
    for k in holding_keys(&s) {
        let asked = if k.kind().stored_for_two_errors() { &two_errors } else { &asked };
        assert!(asked.contains(&p.pseudonym(&k)), "{k:?}");
    }
}

#[test]
fn key_kind_ids_are_stable_and_round_trip() {
    for kind in KeyKind::ALL {
        assert_eq!(KeyKind::from_id(kind.id()), Some(kind));
    }
    assert_eq!(KeyKind::NhsNumber.id(), 1);
    assert_eq!(KeyKind::DistrictDobFamily.id(), 11);
    assert_eq!(KeyKind::UpnDob.id(), 13);
    assert_eq!(KeyKind::from_id(0), None);
    assert_eq!(KeyKind::ExpectedBirth.id(), 14);
    assert_eq!(KeyKind::GivenDeletionDob.id(), 15);
    assert_eq!(KeyKind::NamePartialDob.id(), 19);
    assert_eq!(KeyKind::GivenDeletionFamilyEndsDob.id(), 20);
    assert_eq!(KeyKind::KnownGivenDeletionAltFamilyDob.id(), 23);
    assert_eq!(KeyKind::from_id(24), None);
    let names: HashSet<&str> = KeyKind::ALL.iter().map(|k| k.name()).collect();
    assert_eq!(names.len(), KeyKind::ALL.len());
}

#[test]
fn carer_keys_never_meet_child_keys() {
    let r = with_nhs(raw("Sarah", "Khan", "2005-03-04"), "9434765919");
    let as_child = Subject::parse(&r, SubjectRole::Child, KeyUse::Holding, TODAY).expect("ok");
    let as_carer = Subject::parse(&r, SubjectRole::Carer, KeyUse::Lookup, TODAY).expect("ok");
    let p = pseudonymiser();
    let stored: HashSet<Pseudonym> = holding_keys(&as_child).iter().map(|k| p.pseudonym(k)).collect();
    let asked: Vec<Pseudonym> = lookup_keys(&as_carer).iter().map(|k| p.pseudonym(k)).collect();
    assert!(asked.iter().all(|ps| !stored.contains(ps)));
    assert!(lookup_keys(&as_carer).iter().all(|k| k.role() == Some(SubjectRole::Carer)));
}

#[test]
fn a_carer_recorded_twice_is_found() {
    let holding = with_nhs(raw("Sarah", "Khan", "1988-03-04"), "9434765919");
    let lookup = raw("Sara", "Khan", "1988-03-04");
    let h = Subject::parse(&holding, SubjectRole::Carer, KeyUse::Holding, TODAY).expect("ok");
    let l = Subject::parse(&lookup, SubjectRole::Carer, KeyUse::Lookup, TODAY).expect("ok");
    let found = assess_all(&[h], &l).pop().flatten().expect("found");
    assert_eq!(found.tier, Tier::Probable);
}

// ---- Pseudonyms ----

#[test]
fn pseudonyms_depend_on_the_secret_and_are_stable() {
    let s = child(&raw("Amelia", "Khan", "2015-03-04"), KeyUse::Holding);
    let key = &holding_keys(&s)[0];
    let a = Pseudonymiser::new(&IndexSecret::from_bytes([1; 32]));
    let b = Pseudonymiser::new(&IndexSecret::from_bytes([2; 32]));
    assert_eq!(a.pseudonym(key), a.pseudonym(key));
    assert_ne!(a.pseudonym(key), b.pseudonym(key));
    assert_ne!(a.key_id(), b.key_id());
    assert_eq!(a.key_id().to_string().len(), 8);
    assert_eq!(KeyId::parse(&a.key_id().to_string()), Some(a.key_id()));
}

#[test]
fn key_id_does_not_reveal_the_secret_bytes() {
    let secret = IndexSecret::from_bytes([0x42; 32]);
    let id = secret.key_id().to_string();
    assert!(!id.contains("4242"));
}

// ---- Matching behaviour ----

#[test]
fn nhs_number_and_date_of_birth_agreeing_confirms() {
    let holding = with_nhs(raw("Amelia", "Khan", "2015-03-04"), "9434765919");
    let lookup = RawSubject {
        nhs_number: Some("943 476 5919".into()),
        date_of_birth: Some("2015-03-04".into()),
        ..RawSubject::default()
    };
    let found = assess_pair(&holding, &lookup).expect("found");
    assert_eq!(found.tier, Tier::Confirmed);
    assert_eq!(found.evidence, "NHS number and date of birth agree");
    assert!(!found.ambiguous);
}

#[test]
fn nhs_number_with_a_contradicting_date_of_birth_is_not_confirmed() {
    let holding = with_nhs(raw("Amelia", "Khan", "2015-03-04"), "9434765919");
    let lookup = with_nhs(raw("Amelia", "Khan", "2011-07-19"), "9434765919");
    let found = assess_pair(&holding, &lookup).expect("found");
    assert_eq!(found.tier, Tier::Probable);
    assert!(found.evidence.contains("date of birth differs"), "{}", found.evidence);
}

#[test]
fn an_nhs_number_agreeing_while_the_upn_differs_is_not_confirmed() {
    let mut holding = with_nhs(raw("Amelia", "Khan", "2015-03-04"), "9434765919");
    holding.upn = Some("B801200005001".into());
    let mut lookup = holding.clone();
    lookup.upn = Some("P207000016049".into());
    assert_eq!(tier_of(&holding, &lookup), Some(Tier::Probable));
}

#[test]
fn nhs_number_confirms_despite_a_short_form_and_a_new_postcode() {
    let holding = with_postcode(with_nhs(raw("Alfred", "Khan", "2015-03-04"), "9434765919"), "M1 1AE");
    let lookup = with_postcode(with_nhs(raw("Alfie", "Khan", "2015-03-04"), "9434765919"), "LS1 4AP");
    assert_eq!(tier_of(&holding, &lookup), Some(Tier::Confirmed));
}

#[test]
fn names_and_date_of_birth_alone_are_probable() {
    let found = assess_pair(&raw("Amelia", "Khan", "2015-03-04"), &raw("AMELIA", "khan", "2015-03-04")).expect("found");
    assert_eq!(found.tier, Tier::Probable);
    assert_eq!(found.evidence, "Names and date of birth agree");
}

#[test]
fn a_short_form_of_the_first_name_is_probable() {
    for (full, short) in [("Alfred", "Alfie"), ("Oliver", "Ollie"), ("Elizabeth", "Lizzie"), ("Katherine", "Katie")] {
        for (h, l) in [(full, short), (short, full)] {
            let found = assess_pair(&raw(h, "Khan", "2015-03-04"), &raw(l, "Khan", "2015-03-04")).expect("found");
            assert_eq!(found.tier, Tier::Probable, "{h} / {l}");
            assert_eq!(found.evidence, "First name (as a short form), family name and date of birth agree");
        }
    }
}

#[test]
fn two_short_forms_of_one_name_meet() {
    let found = assess_pair(&raw("Liz", "Khan", "2015-03-04"), &raw("Beth", "Khan", "2015-03-04"));
    assert_eq!(found.map(|a| a.tier), Some(Tier::Probable));
}

#[test]
fn swapped_day_and_month_is_found_and_said() {
    let found = assess_pair(&raw("Amelia", "Khan", "2015-03-04"), &raw("Amelia", "Khan", "2015-04-03")).expect("found");
    assert_eq!(found.tier, Tier::Probable);
    assert_eq!(found.evidence, "Names and date of birth agree (day and month swapped)");
}

#[test]
fn given_and_family_names_swapped_are_found() {
    let found = assess_pair(&raw("Amelia", "Khan", "2015-03-04"), &raw("Khan", "Amelia", "2015-03-04")).expect("found");
    assert_eq!(found.tier, Tier::Probable);
    assert!(found.evidence.contains("swapped"), "{}", found.evidence);
}

#[test]
fn a_double_barrelled_family_name_on_one_side_is_found() {
    for (h, l) in [("Smith-Jones", "Jones"), ("Smith", "Smith Jones")] {
        let found = assess_pair(&raw("Amelia", h, "2015-03-04"), &raw("Amelia", l, "2015-03-04")).expect("found");
        assert_eq!(found.tier, Tier::Probable, "{h} / {l}");
    }
}

#[test]
fn a_former_family_name_on_either_side_is_found() {
    let mut holding = raw("Amelia", "Brown", "2015-03-04");
    holding.former_family_names = vec!["Khan".into()];
    assert_eq!(tier_of(&holding, &raw("Amelia", "Khan", "2015-03-04")), Some(Tier::Probable));
    let mut lookup = raw("Amelia", "Brown", "2015-03-04");
    lookup.former_family_names = vec!["Khan".into()];
    assert_eq!(tier_of(&raw("Amelia", "Khan", "2015-03-04"), &lookup), Some(Tier::Probable));
}

#[test]
fn a_middle_name_used_as_first_name_is_found() {
    let mut holding = raw("Mary", "Khan", "2015-03-04");
    holding.other_given_names = vec!["Amelia".into()];
    assert_eq!(tier_of(&holding, &raw("Amelia", "Khan", "2015-03-04")), Some(Tier::Probable));
}

#[test]
fn one_letter_typos_in_either_name_are_probable() {
    for (h, l) in [
        (("Amelia", "Khan"), ("Amelai", "Khan")),
        (("Amelia", "Kowalski"), ("Amelia", "Kowalsky")),
        (("Amelia", "Przybylski"), ("Amelia", "Przybylsky")),
        (("Jakc", "Khan"), ("Jack", "Khan")),
    ] {
        let found = assess_pair(&raw(h.0, h.1, "2015-03-04"), &raw(l.0, l.1, "2015-03-04"));
        assert_eq!(found.map(|a| a.tier), Some(Tier::Probable), "{h:?} / {l:?}");
    }
}

#[test]
fn a_short_family_name_one_letter_different_is_only_possible() {
    // Hall/Hull, Khan/Kahn: short names have real neighbours, so this may be another family.
    let found = assess_pair(&raw("Amelia", "Khan", "2015-03-04"), &raw("Amelia", "Kahn", "2015-03-04"));
    assert_eq!(found.map(|a| a.tier), Some(Tier::Possible));
}

#[test]
fn a_typo_in_a_short_family_name_that_is_no_surname_is_probable_either_way_round() {
    // "Hlal" is no one's surname: a typo of Hall, whichever record has it.
    for (h, l) in [("Hall", "Hlal"), ("Hlal", "Hall"), ("Khan", "Khna"), ("Wood", "Wodo"), ("Shah", "Sahh")] {
        let found = assess_pair(&raw("Amelia", h, "2015-03-04"), &raw("Amelia", l, "2015-03-04"));
        assert_eq!(found.map(|a| a.tier), Some(Tier::Probable), "{h} / {l}");
    }
}

#[test]
fn two_real_short_surnames_one_letter_apart_stay_possible() {
    for (h, l) in [("Hall", "Hill"), ("Ball", "Bell"), ("Reed", "Reid"), ("Cox", "Fox")] {
        let found = assess_pair(&raw("Amelia", h, "2015-03-04"), &raw("Amelia", l, "2015-03-04"));
        assert_eq!(found.map(|a| a.tier), Some(Tier::Possible), "{h} / {l}");
    }
}

#[test]
fn a_one_digit_date_typo_is_possible() {
    let found = assess_pair(&raw("Amelia", "Khan", "2015-03-04"), &raw("Amelia", "Khan", "2015-03-07")).expect("found");
    assert_eq!(found.tier, Tier::Possible);
    assert!(found.evidence.contains("differs in one part"), "{}", found.evidence);
}

#[test]
fn twins_with_different_first_names_never_match() {
    let jack = raw("Jack", "Khan", "2015-03-04");
    for twin in ["James", "Amelia", "Oliver"] {
        assert_eq!(tier_of(&jack, &raw(twin, "Khan", "2015-03-04")), None, "{twin}");
    }
}

#[test]
fn twins_with_different_first_names_never_confirm() {
    let mut jack = with_nhs(raw("Jack", "Khan", "2015-03-04"), "9434765919");
    jack.postcode = Some("M1 1AE".into());
    let mut james = with_nhs(raw("James", "Khan", "2015-03-04"), "4010232137");
    james.postcode = Some("M1 1AE".into());
    assert_eq!(tier_of(&jack, &james), None);
}

#[test]
fn twins_with_similar_first_names_are_at_most_possible() {
    for (a, b) in [("Jack", "Jake"), ("Ella", "Ellie"), ("Aidan", "Adam")] {
        let t = tier_of(&raw(a, "Khan", "2015-03-04"), &raw(b, "Khan", "2015-03-04"));
        assert!(t.is_none_or(|t| t <= Tier::Possible), "{a}/{b}: {t:?}");
    }
}

#[test]
fn twins_whose_first_names_share_a_part_are_at_most_possible_either_way_round() {
    // Jun and Jun-Jie Huang are twins as often as one child written short: never probable.
    for (held, asked) in [("Jun", "Jun-Jie"), ("Jun-Jie", "Jun"), ("Mary", "Mary Jane"), ("Mary-Jane", "Mary")] {
        let found = assess_pair(&raw(held, "Huang", "2015-03-04"), &raw(asked, "Huang", "2015-03-04"));
        assert_eq!(found.as_ref().map(|a| a.tier), Some(Tier::Possible), "held {held}, asked {asked}");
        let evidence = found.map(|a| a.evidence).unwrap_or_default();
        assert!(evidence.contains("one part of a two-part first name"), "{evidence}");
    }
}

#[test]
fn a_listed_middle_name_still_counts_more_than_a_part_of_the_first_name() {
    // The part rule must not weaken the middle-name rule, from either side.
    let mut listed = raw("Jun", "Huang", "2015-03-04");
    listed.other_given_names = vec!["Wei".into()];
    assert_eq!(tier_of(&raw("Wei", "Huang", "2015-03-04"), &listed), Some(Tier::Probable));
    assert_eq!(tier_of(&listed, &raw("Wei", "Huang", "2015-03-04")), Some(Tier::Probable));
    // A name written spaced, hyphenated or joined is the same name.
    for spelt in ["Zi Han", "Zi-Han"] {
        assert_eq!(
            tier_of(&raw("Zihan", "Huang", "2015-03-04"), &raw(spelt, "Huang", "2015-03-04")),
            Some(Tier::Probable)
        );
    }
}

#[test]
fn a_changed_family_name_alone_is_not_shown() {
    // Same first name and date of birth is common: without the former name it is noise.
    assert_eq!(tier_of(&raw("Amelia", "Khan", "2015-03-04"), &raw("Amelia", "Brown", "2015-03-04")), None);
}

#[test]
fn a_key_shared_by_many_holdings_is_ambiguous_and_never_confirms_alone() {
    let evidence = Evidence {
        agreed: vec![Agreement { kind: KeyKind::NhsNumber, variant: Variant::Exact, holders_with_key: 40 }],
        asker_fields: FieldsPresent::from_bits(FieldsPresent::NHS_NUMBER),
        holder_fields: FieldsPresent::from_bits(FieldsPresent::NHS_NUMBER),
    };
    let a = assess(&evidence).expect("assessed");
    assert!(a.ambiguous);
    assert_eq!(a.tier, Tier::Probable);
}

#[test]
fn common_demographic_keys_weigh_less() {
    let fields =
        FieldsPresent::from_bits(FieldsPresent::GIVEN_NAME | FieldsPresent::FAMILY_NAME | FieldsPresent::DATE_OF_BIRTH);
    let evidence = |holders| Evidence {
        agreed: vec![Agreement { kind: KeyKind::NameDob, variant: Variant::Exact, holders_with_key: holders }],
        asker_fields: fields,
        holder_fields: fields,
    };
    let rare = assess(&evidence(1)).expect("found");
    let common = assess(&evidence(8)).expect("found");
    assert!(common.score < rare.score);
    assert!(common.ambiguous && !rare.ambiguous);
}

#[test]
fn nothing_agreed_is_no_match() {
    let fields = FieldsPresent::from_bits(FieldsPresent::NHS_NUMBER);
    let evidence = Evidence { agreed: vec![], asker_fields: fields, holder_fields: fields };
    assert!(assess(&evidence).is_none());
}

#[test]
fn tiers_serialise_in_kebab_case() {
    assert_eq!(serde_json::to_string(&Tier::Confirmed).expect("json"), "\"confirmed\"");
    assert_eq!(Tier::Possible.as_str(), "possible");
    assert!(Tier::Confirmed > Tier::Probable && Tier::Probable > Tier::Possible);
}

// ---- Properties ----

fn name_strategy() -> impl Strategy<Value = String> {
    prop_oneof!["[A-Za-z]{1,12}", "[A-Za-z]{2,8}[ '-][A-Za-z]{2,8}", "\\PC{0,30}", "[ÀÉÎÕÜŁŚŻÇØÆßàéîõüłśżçøæ]{1,10}",]
}

fn dob_strategy() -> impl Strategy<Value = String> {
    (2001u16..2026, 1u16..13, 1u16..29).prop_map(|(y, m, d)| format!("{y:04}-{m:02}-{d:02}"))
}

proptest! {
    #[test]
    fn normalisation_is_idempotent(raw in name_strategy()) {
        if let Ok(once) = normalise_name(&raw) {
            let twice = normalise_name(&once.display()).expect("normalised form is valid");
            prop_assert_eq!(once, twice);
        }
    }

    #[test]
    fn any_input_gives_a_subject_or_errors_and_never_panics(
        nhs in proptest::option::of("\\PC{0,14}"),
        upn in proptest::option::of("\\PC{0,15}"),
        given in proptest::option::of("\\PC{0,40}"),
        family in proptest::option::of("\\PC{0,40}"),
        dob in proptest::option::of("\\PC{0,12}"),
        postcode in proptest::option::of("\\PC{0,10}"),
        others in proptest::collection::vec("\\PC{0,20}", 0..3),
    ) {
        let r = RawSubject {
            nhs_number: nhs,
            upn,
            given_name: given,
            family_name: family,
            date_of_birth: dob,
            postcode,
            other_given_names: others.clone(),
            former_family_names: others,
            expected_date: None,
        };
        for role in SubjectRole::ALL {
            for use_ in [KeyUse::Holding, KeyUse::Lookup] {
                match Subject::parse(&r, role, use_, TODAY) {
                    Ok(s) => {
                        let _ = holding_keys(&s);
                        let asked = lookup_keys(&s).len();
                        prop_assert!(asked <= keys::MAX_LOOKUP_KEYS, "{} keys", asked);
                    }
                    Err(errors) => prop_assert!(!errors.is_empty()),
                }
            }
        }
    }

    #[test]
    fn order_of_other_given_names_does_not_change_the_keys(
        given in "[A-Z][a-z]{2,8}",
        family in "[A-Z][a-z]{2,8}",
        dob in dob_strategy(),
        mut others in proptest::collection::vec("[A-Z][a-z]{2,8}", 0..5),
        mut formers in proptest::collection::vec("[A-Z][a-z]{2,8}", 0..4),
    ) {
        let mut r = raw(&given, &family, &dob);
        r.other_given_names = others.clone();
        r.former_family_names = formers.clone();
        let before = holding_keys(&child(&r, KeyUse::Holding));
        others.reverse();
        formers.reverse();
        r.other_given_names = others;
        r.former_family_names = formers;
        let after = holding_keys(&child(&r, KeyUse::Holding));
        prop_assert_eq!(before, after);
    }

    #[test]
    fn swapping_given_and_family_on_the_lookup_still_meets_the_holding(
        given in "[A-Z][a-z]{2,8}",
        family in "[A-Z][a-z]{2,8}",
        dob in dob_strategy(),
    ) {
        prop_assume!(given.to_uppercase() != family.to_uppercase());
        let holding = child(&raw(&given, &family, &dob), KeyUse::Holding);
        let lookup = child(&raw(&family, &given, &dob), KeyUse::Lookup);
        let found = assess_all(&[holding], &lookup).pop().flatten();
        prop_assert_eq!(found.map(|a| a.tier), Some(Tier::Probable));
    }

    #[test]
    fn identical_records_with_an_nhs_number_always_confirm(
        given in "[A-Z][a-z]{2,8}",
        family in "[A-Z][a-z]{2,8}",
        dob in dob_strategy(),
    ) {
        let r = with_nhs(raw(&given, &family, &dob), "9434765919");
        prop_assert_eq!(tier_of(&r, &r), Some(Tier::Confirmed));
    }
}

// ---- Key family 2: stored tolerance keys (#21) ----

/// A miniature index of key family 1: holdings without the deletion and partial-date kinds.
fn family_one_tier(holding: &RawSubject, lookup: &RawSubject, options: LookupOptions) -> Option<Tier> {
    let p = pseudonymiser();
    let h = child(holding, KeyUse::Holding);
    let stored: HashSet<Pseudonym> =
        holding_keys(&h).iter().filter(|k| k.kind().id() < 15).map(|k| p.pseudonym(k)).collect();
    let l = child(lookup, KeyUse::Lookup);
    let agreed = lookup_keys_with(&l, options)
        .iter()
        .filter(|k| stored.contains(&p.pseudonym(k)))
        .map(|k| Agreement { kind: k.kind(), variant: k.variant(), holders_with_key: 1 })
        .collect();
    assess(&Evidence { agreed, asker_fields: l.fields_present(), holder_fields: h.fields_present() }).map(|a| a.tier)
}

/// Names held and asked, each pair with the same date of birth.
type NamePairs<'a> = [((&'a str, &'a str), (&'a str, &'a str))];

/// Asserts that each asked pair finds its held pair at exactly `possible`.
fn assert_each_possible(pairs: &NamePairs) {
    for (held, asked) in pairs {
        let found = assess_pair(&raw(held.0, held.1, "2015-03-04"), &raw(asked.0, asked.1, "2015-03-04"));
        assert_eq!(found.as_ref().map(|a| a.tier), Some(Tier::Possible), "held {held:?}, asked {asked:?}: {found:?}");
    }
}

#[test]
fn a_typo_with_the_names_swapped_or_a_barrel_on_the_askers_side_is_found() {
    // Two small errors at once (#21 item 3): each shape, with the typo on either side. Possible,
    // not probable: where family names are given names (Sami Aya, Aya Rami), a swap beside one
    // letter is as often two children.
    assert_each_possible(&[
        // Typos that change how the name sounds, so the phonetic key cannot stand in.
        (("Amelia", "Kowalski"), ("Kowalski", "Amerlia")),
        (("Amerlia", "Kowalski"), ("Kowalski", "Amelia")),
        (("Amelia", "Kowalski"), ("Kowalsmi", "Amelia")),
        (("Ruby", "Demo"), ("Rbuy", "Demo-Fletcher")),
        (("Rbuy", "Fletcher"), ("Ruby", "Demo-Fletcher")),
    ]);
    let mut moved = raw("Rbuy", "Fletcher", "2015-03-04");
    moved.former_family_names = vec!["Demo".into()];
    assert_eq!(tier_of(&raw("Ruby", "Demo", "2015-03-04"), &moved), Some(Tier::Possible), "a typo with a former name");
}

#[test]
fn a_typo_in_each_name_is_possible_when_the_family_names_keep_their_ends() {
    // Key family 3: the given name's deletion strings with the family name's first and last
    // letters, stored by every holding, so a slip in each name meets from either side, never
    // above possible.
    assert_each_possible(&[
        (("Ruby", "Fletcher"), ("Rbuy", "Fletcjer")),
        (("Rbuy", "Fletcjer"), ("Ruby", "Fletcher")),
        (("Amelia", "Kowalski"), ("Ameila", "Kowlaski")),
        (("Oliver", "Thompson"), ("Olivr", "Thomson")),
        (("Ruby", "Fletcher"), ("Rbuy", "Fletzher")),
    ]);
    // A slip at either end of the family name is not met (the limit, docs/matching.md §9).
    assert_eq!(tier_of(&raw("Ruby", "Fletcher", "2015-03-04"), &raw("Rbuy", "Fletches", "2015-03-04")), None);
}

#[test]
fn a_typo_with_the_barrel_on_the_holders_side_is_possible() {
    // Held "Ruby Demo-Fletcher", asked "Rbuy Demo": the holder stores its given name's deletion
    // strings with each barrel (and each former family name).
    let held = ("Ruby", "Demo-Fletcher");
    assert_each_possible(&[(held, ("Rbuy", "Demo")), (held, ("Rbuy", "Fletcher")), (held, ("Rubyy", "Demo"))]);
    let mut moved = raw("Ruby", "Fletcher", "2015-03-04");
    moved.former_family_names = vec!["Demo".into()];
    assert_eq!(tier_of(&moved, &raw("Rbuy", "Demo", "2015-03-04")), Some(Tier::Possible), "a former name held");
}

#[test]
fn a_typo_in_each_name_never_links_twins_with_known_names() {
    // Jack and Jake Fletcher are twins: a slip inside the family name beside two known first names
    // one letter apart reads as "similar", too weak to show; with the barrel on the holder's
    // side the same.
    for (held, asked) in [(("Jack", "Fletcher"), ("Jake", "Fletcjer")), (("Jack", "Demo-Fletcher"), ("Jake", "Demo"))] {
        let t = tier_of(&raw(held.0, held.1, "2015-03-04"), &raw(asked.0, asked.1, "2015-03-04"));
        assert_eq!(t, None, "held {held:?}, asked {asked:?}");
    }
}

#[test]
fn two_small_errors_never_link_twins() {
    // Jack and Jake Khan are twins: swapped boxes beside a one-letter difference between two
    // known names must not make them one child, nor must a barrel beside it.
    let swapped = tier_of(&raw("Jack", "Khan", "2015-03-04"), &raw("Khan", "Jake", "2015-03-04"));
    assert!(swapped.is_none_or(|t| t <= Tier::Possible), "{swapped:?}");
    assert!(
        tier_of(&raw("Jack", "Khan", "2015-03-04"), &raw("Jake", "Khan-Patel", "2015-03-04"))
            .is_none_or(|t| t <= Tier::Possible)
    );
}

#[test]
fn a_lookup_asks_at_most_a_hundred_keys() {
    let mut busy = with_nhs(raw("Christabel", "Przybylski-Hargreaves", "2012-11-10"), "9434765919");
    busy.postcode = Some("M1 1AE".into());
    busy.other_given_names = vec!["Rose".into(), "Mary".into()];
    for r in [raw("Amelia", "Kowalski", "2015-03-04"), raw("Jack", "Hall", "2015-03-04"), busy] {
        let asked = lookup_keys(&child(&r, KeyUse::Lookup)).len();
        assert!(asked <= 100, "{asked} keys");
    }
}

#[test]
fn whether_a_stored_name_is_a_known_name_is_one_bit_in_its_key_kind() {
    let kinds = |given: &str, family: &str| -> HashSet<KeyKind> {
        holding_keys(&child(&raw(given, family, "2015-03-04"), KeyUse::Holding)).iter().map(|k| k.kind()).collect()
    };
    let jake = kinds("Jake", "Kowalski");
    assert!(jake.contains(&KeyKind::KnownGivenDeletionDob) && !jake.contains(&KeyKind::GivenDeletionDob));
    assert!(jake.contains(&KeyKind::FamilyDeletionDob) && !jake.contains(&KeyKind::KnownFamilyDeletionDob));
    let jakc = kinds("Jakc", "Hall");
    assert!(jakc.contains(&KeyKind::GivenDeletionDob) && !jakc.contains(&KeyKind::KnownGivenDeletionDob));
    assert!(jakc.contains(&KeyKind::KnownFamilyDeletionDob));
}

#[test]
fn a_typo_on_either_side_meets_through_the_stored_deletion_keys_alone() {
    // No one-edit variant is asked any more: the holding's stored neighbourhood carries it.
    let asked = lookup_keys(&child(&raw("Rbuy", "Fletcher", "2014-05-09"), KeyUse::Lookup));
    assert!(asked.iter().all(|k| k.kind() != KeyKind::NameDob || k.variant() != Variant::GivenNameTypo));
    for (h, l) in [("Ruby", "Rbuy"), ("Rbuy", "Ruby"), ("Ruby", "Rubby"), ("Rubby", "Ruby"), ("Ruby", "Rudy")] {
        let t = tier_of(&raw(h, "Fletcher", "2014-05-09"), &raw(l, "Fletcher", "2014-05-09"));
        assert_eq!(t, Some(Tier::Probable), "{h} / {l}");
    }
}

#[test]
fn twins_with_known_names_one_edit_apart_stay_possible_either_way_round() {
    for (a, b) in [("Jack", "Jake"), ("Jake", "Jack"), ("Ella", "Ellie"), ("Ellie", "Ella")] {
        let t = tier_of(&raw(a, "Kowalski", "2015-03-04"), &raw(b, "Kowalski", "2015-03-04"));
        assert_eq!(t, Some(Tier::Possible), "{a}/{b}");
    }
}

#[test]
fn a_date_with_one_part_mistyped_is_possible_and_day_month_swaps_stay_probable() {
    for typo in ["2015-03-14", "2015-08-04", "2016-03-04", "2012-03-04"] {
        let t = tier_of(&raw("Amelia", "Kowalski", "2015-03-04"), &raw("Amelia", "Kowalski", typo));
        assert_eq!(t, Some(Tier::Possible), "{typo}");
    }
    let t = tier_of(&raw("Amelia", "Kowalski", "2015-03-04"), &raw("Amelia", "Kowalski", "2015-04-03"));
    assert_eq!(t, Some(Tier::Probable));
}

#[test]
fn holdings_of_key_family_one_are_found_only_with_family_one_variants() {
    let (holding, typo) = (raw("Ruby", "Fletcher", "2014-05-09"), raw("Rbuy", "Fletcher", "2014-05-09"));
    assert_eq!(family_one_tier(&holding, &typo, LookupOptions::with_family_one()), Some(Tier::Probable));
    assert_eq!(family_one_tier(&holding, &typo, LookupOptions::default()).filter(|t| *t >= Tier::Probable), None);
    let date_typo = raw("Ruby", "Fletcher", "2014-05-08");
    assert_eq!(family_one_tier(&holding, &date_typo, LookupOptions::with_family_one()), Some(Tier::Possible));
}

#[test]
fn an_index_key_is_a_pseudonyms_first_eight_bytes_read_big_endian_and_signed() {
    let mut bytes = [0xEE; 16];
    bytes[..8].copy_from_slice(&[0x80, 0, 0, 0, 0, 0, 0, 0x01]);
    let pseudonym = Pseudonym::from_bytes(bytes);
    assert_eq!(pseudonym.index_key(), IndexKey(i64::MIN + 1), "the top byte gives the sign");
    assert_eq!(
        IndexKey::of_bytes(pseudonym.as_bytes()),
        Some(pseudonym.index_key()),
        "a key list's entry reads the same"
    );
    assert_eq!(IndexKey::of_bytes(&[0, 0, 0, 0, 0, 0, 0, 0xFF]), Some(IndexKey(255)));
    assert_eq!(IndexKey::of_bytes(&[1; 7]), None, "too short to be an entry");
    // The rest of the pseudonym is not part of the key: the audit trail and key lists keep it.
    let mut other = bytes;
    other[15] = 0;
    assert_eq!(Pseudonym::from_bytes(other).index_key(), pseudonym.index_key());
}
