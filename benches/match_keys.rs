//! Cost of turning one child into keys and pseudonyms: what a holding stores and a lookup asks.
//! `cargo bench --bench match_keys`

use std::hint::black_box;

use child_locator::domain::identity::{
    IndexSecret, KeyUse, Pseudonymiser, RawSubject, Subject, SubjectRole, holding_keys, lookup_keys,
};
use criterion::{Criterion, criterion_group, criterion_main};
use time::macros::date;

fn typical_child() -> RawSubject {
    RawSubject {
        nhs_number: Some("943 476 5919".into()),
        upn: Some("B801200005001".into()),
        given_name: Some("Amelia".into()),
        family_name: Some("Smith-Jones".into()),
        date_of_birth: Some("2015-03-04".into()),
        postcode: Some("M1 1AE".into()),
        other_given_names: vec!["Rose".into()],
        former_family_names: vec![],
        expected_date: None,
    }
}

fn bench(c: &mut Criterion) {
    let today = date!(2026 - 11 - 01);
    let raw = typical_child();
    let holding = Subject::parse(&raw, SubjectRole::Child, KeyUse::Holding, today).expect("valid holding");
    let lookup = Subject::parse(&raw, SubjectRole::Child, KeyUse::Lookup, today).expect("valid lookup");
    let pseudonymiser = Pseudonymiser::new(&IndexSecret::from_bytes([7; 32]));

    c.bench_function("parse subject", |b| {
        b.iter(|| Subject::parse(black_box(&raw), SubjectRole::Child, KeyUse::Holding, today))
    });
    c.bench_function("holding keys + pseudonyms", |b| {
        b.iter(|| holding_keys(black_box(&holding)).iter().map(|k| pseudonymiser.pseudonym(k)).collect::<Vec<_>>())
    });
    c.bench_function("lookup keys + pseudonyms", |b| {
        b.iter(|| lookup_keys(black_box(&lookup)).iter().map(|k| pseudonymiser.pseudonym(k)).collect::<Vec<_>>())
    });
    c.bench_function("lookup keys only", |b| b.iter(|| lookup_keys(black_box(&lookup))));
    c.bench_function("pseudonymiser setup", |b| {
        b.iter(|| Pseudonymiser::new(black_box(&IndexSecret::from_bytes([7; 32]))))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
