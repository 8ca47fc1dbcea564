//! Cost of screening one lookup's probes through the prefilter of a million-holding index
//! (10 million pseudonyms, a filter far larger than the CPU's cache).
//! `cargo bench --bench prefilter`

use std::hint::black_box;

use child_locator::domain::identity::{KeyKind, Pseudonym, Variant};
use child_locator::domain::matching::Probe;
use child_locator::service::prefilter::Prefilter;
use criterion::{Criterion, criterion_group, criterion_main};
use rand::{Rng, SeedableRng, rngs::StdRng};

const STORED: u64 = 10_000_000;
/// About what one child's lookup screens (docs/performance.md).
const PROBES: usize = 1_000;

fn bench(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(7);
    let prefilter = Prefilter::default();
    prefilter.rebuild(STORED, (0..STORED).map(|_| rng.r#gen::<[u8; 16]>().to_vec()));
    let probes: Vec<Probe> = (0..PROBES)
        .map(|_| Probe {
            pseudonym: Pseudonym::from_bytes(rng.r#gen()),
            kind: KeyKind::NameDob,
            variant: Variant::GivenNameTypo,
        })
        .collect();
    c.bench_function("screen one lookup's probes (10 M stored)", |b| {
        b.iter_batched(|| probes.clone(), |p| prefilter.screen(black_box(p)), criterion::BatchSize::SmallInput)
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
