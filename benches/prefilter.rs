//! Cost of screening one lookup's probes through the prefilter of a million-holding index
//! (about 10 pseudonyms a holding: a filter larger than most CPUs' caches). The index size is
//! `LOCATOR_BENCH_HOLDINGS` (1,000,000 by default), as in the store bench.
//! `cargo bench --bench prefilter`

use std::hint::black_box;

use child_locator::domain::identity::{IndexKey, KeyKind, Pseudonym, Variant};
use child_locator::domain::matching::Probe;
use child_locator::service::prefilter::Prefilter;
use criterion::{Criterion, criterion_group, criterion_main};
use rand::{Rng, SeedableRng, rngs::StdRng};

/// Pseudonyms a holding stores, about (docs/performance.md).
const KEYS_PER_HOLDING: u64 = 10;
/// About what one child's lookup screens (docs/performance.md).
const PROBES: usize = 1_000;

fn bench(c: &mut Criterion) {
    let holdings: u64 = std::env::var("LOCATOR_BENCH_HOLDINGS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let stored = holdings * KEYS_PER_HOLDING;
    let mut rng = StdRng::seed_from_u64(7);
    let prefilter = Prefilter::default();
    prefilter.rebuild(stored, (0..stored).map(|_| (IndexKey(rng.r#gen()), false)));
    let probes: Vec<Probe> = (0..PROBES)
        .map(|_| Probe {
            pseudonym: Pseudonym::from_bytes(rng.r#gen()),
            kind: KeyKind::NameDob,
            variant: Variant::GivenNameTypo,
        })
        .collect();
    c.bench_function(&format!("screen one lookup's probes ({stored} stored)"), |b| {
        b.iter_batched(|| probes.clone(), |p| prefilter.screen(black_box(p)), criterion::BatchSize::SmallInput)
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
