//! Cost of the two database operations every lookup makes: the candidate search over the
//! stored pseudonyms, and the durable audit append (alone, and shared by a group commit).
//! On SQLite in a temporary directory, over an index of `LOCATOR_BENCH_HOLDINGS` holdings
//! (100,000 by default; building it takes a minute or two).
//!
//! `cargo bench --bench store`

use std::hint::black_box;
use std::sync::Arc;

use child_locator::audit::checkpoint::AuditSigningKey;
use child_locator::audit::{Attachment, AuditLog, EventType, NewEvent};
use child_locator::clock::Clock;
use child_locator::domain::holding::{HoldingInput, NewHolding};
use child_locator::domain::identity::{IndexKey, IndexSecret, Pseudonym, Pseudonymiser, Variant};
use child_locator::domain::keyring::Keyring;
use child_locator::domain::lookup::LookupInput;
use child_locator::domain::organisation::OrganisationInput;
use child_locator::store::Store;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;
use time::macros::date;

const GIVEN: [&str; 12] =
    ["Amelia", "Oliver", "Isla", "Noah", "Ava", "Leo", "Mia", "Arthur", "Ivy", "Muhammad", "Freya", "George"];
const FAMILY: [&str; 8] = ["Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies"];

/// A number spelled in letters (names take no digits): 0 -> "a", 12 -> "bc".
fn letters(n: usize) -> String {
    n.to_string().bytes().map(|d| char::from(b'a' + (d - b'0'))).collect()
}

/// A synthetic child: common first names and surnames with a numbered suffix in letters, spread birthdays.
fn child(i: usize) -> serde_json::Value {
    json!({
        "given_name": GIVEN[i % GIVEN.len()],
        "family_name": format!("{}{}", FAMILY[i % FAMILY.len()], letters(i / 97)),
        "date_of_birth": format!("20{:02}-{:02}-{:02}", 8 + i % 10, 1 + i % 12, 1 + i % 28),
    })
}

fn keyring() -> Keyring {
    Keyring::new(Pseudonymiser::new(&IndexSecret::from_bytes([7; 32])), None)
}

async fn build_index(store: &Store, keyring: &Keyring, n: usize) {
    let org = OrganisationInput {
        code: Some("BENCH".into()),
        name: Some("Bench Council".into()),
        kind: Some("local-authority".into()),
        duty_phone: Some("01632 960000".into()),
        out_of_hours_phone: None,
        secure_email: Some("duty@bench.invalid".into()),
        active: None,
    };
    let org = store.add_organisation(&org.into_new().expect("valid org"), 0).await.expect("org");
    let key_id = keyring.current().key_id().to_string();
    let mut index = store.sync_index(org.id).await.expect("index");
    // A sync's transactions commit behind its lease (`store::sync_leases`).
    let lease = child_locator::store::sync_leases::LeaseRef { org_id: org.id, run_id: "bench".into() };
    assert!(store.take_sync_lease(&lease, 0, i64::MAX).await.expect("lease"), "the lease is free");
    let today = date!(2026 - 11 - 24);
    for start in (0..n).step_by(1000) {
        let batch: Vec<NewHolding> = (start..(start + 1000).min(n))
            .map(|i| {
                let input: HoldingInput =
                    serde_json::from_value(json!({"category": "other", "status": "open", "subject": child(i)}))
                        .expect("holding json");
                input.into_holding(&format!("B-{i}"), keyring, today).expect("valid holding")
            })
            .collect();
        let mut open = None;
        store.sync_batch(&mut open, org.id, &batch, &key_id, 0, &mut index).await.expect("batch");
        if let Some(tx) = open {
            store.commit_sync(tx, &lease, i64::MAX).await.expect("commit");
        }
    }
}

fn bench(c: &mut Criterion) {
    let n: usize = std::env::var("LOCATOR_BENCH_HOLDINGS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let store = rt.block_on(Store::open(&url)).expect("store");
    let keyring = keyring();
    let started = std::time::Instant::now();
    rt.block_on(build_index(&store, &keyring, n));
    eprintln!("index of {n} holdings built in {:.1} s", started.elapsed().as_secs_f64());

    // A lookup for a child who is held (names and date of birth, the common case).
    let input: LookupInput =
        serde_json::from_value(json!({"subject": child(n / 2), "purpose": "s47-enquiry"})).expect("lookup json");
    let lookup = input.into_lookup(&keyring, date!(2026 - 11 - 24)).expect("valid lookup");
    let all: Vec<IndexKey> = lookup.probes().map(|p| p.pseudonym.index_key()).collect();
    let exact: Vec<IndexKey> =
        lookup.probes().filter(|p| p.variant == Variant::Exact).map(|p| p.pseudonym.index_key()).collect();
    assert!(!rt.block_on(store.find_hits(&exact)).expect("hits").is_empty(), "the child is found");

    let mut group = c.benchmark_group(format!("store ({n} holdings, SQLite)"));
    group.bench_function(format!("candidate search, {} exact probes", exact.len()), |b| {
        b.iter(|| rt.block_on(store.find_hits(black_box(&exact))).expect("hits"))
    });
    group.bench_function(format!("candidate search, all {} probes (no prefilter)", all.len()), |b| {
        b.iter(|| rt.block_on(store.find_hits(black_box(&all))).expect("hits"))
    });
    group.finish();

    let (log, _writer) = rt.block_on(async {
        AuditLog::start(store.clone(), Arc::new(AuditSigningKey::generate()), Clock::System, "bench/audit".into())
    });
    // A lookup's event as the service writes it: with the ten or so exact-form pseudonyms it
    // asked, kept for subject access (random, as real ones are).
    let event = || {
        let mut event = NewEvent::new(EventType::Lookup).details(json!({"keys_asked": 950, "result_count": 1}));
        event.attachments =
            (0..10).map(|_| Attachment::LookupPseudonym(Pseudonym::from_bytes(rand::random()))).collect();
        event
    };
    let mut group = c.benchmark_group("audit append (SQLite, synchronous=FULL)");
    group.throughput(Throughput::Elements(1));
    group.bench_function("one event, waited for", |b| b.iter(|| rt.block_on(log.record(event())).expect("appended")));
    for concurrent in [16u64, 64] {
        group.throughput(Throughput::Elements(concurrent));
        group.bench_function(format!("{concurrent} concurrent events (group commit)"), |b| {
            b.iter_batched(
                || (0..concurrent).map(|_| event()).collect::<Vec<_>>(),
                |events| {
                    rt.block_on(futures::future::join_all(events.into_iter().map(|e| log.record(e))))
                        .into_iter()
                        .for_each(|r| {
                            r.expect("appended");
                        })
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(5));
    targets = bench
}
criterion_main!(benches);
