//! A per-node Bloom filter of stored pseudonyms that screens a lookup's *typo-variant* probes
//! before they reach the database. A lookup asks ~950 pseudonyms, almost all one-edit typo
//! variants that exist nowhere; the filter drops those it has never seen.
//!
//! Safety: exact and structural probes (swaps, short forms, name parts) always go to the
//! database. The filter only ever says "maybe" for what this node has seen; a holding written by
//! another node since the last refresh can at worst hide a typo-level match for a few seconds,
//! never an exact one. Removals leave stale bits, which only cost a wasted query.
//!
//! Match signalling during a sync screens *every* probe, exact ones too, and stays exact: both
//! holdings of a match signal after their own write commits, and each, before screening, takes
//! into the filter what other organisations wrote since the filter was last known complete
//! (less a margin for commits that land after their timestamp and for clocks that differ). Of
//! two holdings written at the same time, the one committed second always sees the first.
//!
//! A holding's own stored keys are among its probes, and the filter holds them (a batch's keys
//! go in before it is screened), so on their own they would always pass and find the holding
//! itself: at a million holdings that was 22 million wasted index reads a sync. The filter also
//! keeps the keys it was given at least twice (two holdings carry them, or one was added twice),
//! and a holding's own keys are asked only when they are there. Two holdings sharing a key each
//! add it, so whichever is screened second finds it shared.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};

use crate::clock::Millis;

use crate::domain::identity::{IndexKey, Pseudonym, Variant};
use crate::domain::matching::Probe;

/// Bits per expected key; with 7 bits set per key in a 512-bit block this gives about a 0.1 %
/// false-positive rate at capacity.
const BITS_PER_KEY: u64 = 16;
const HASHES: u32 = 7;

/// 512 bits: one cache line. Every bit of one key lives in one block, so a probe costs one
/// memory access, not seven (a million-holding filter is far larger than the CPU cache).
#[repr(align(64))]
struct Block([AtomicU64; 8]);

struct Bits {
    blocks: Vec<Block>,
    mask: u64,
    capacity: u64,
    inserted: AtomicU64,
}

/// One build of the filter: layers of growing size (a scalable Bloom filter), so a node that
/// takes in a million-holding sync grows it without re-reading the table.
struct Filter {
    layers: Vec<Bits>,
    /// Keys added at least twice, in layers beside `layers` (a quarter of their size: few keys
    /// are shared; a full one only sends more own keys to the database).
    shared: Vec<Bits>,
    /// Held while keys are added: "seen before?" and "now seen" must be one step, or two nodes'
    /// worth of the same new key added at once could both find it unseen.
    adding: Mutex<()>,
    /// Which build this is: a refresh read for one build is not taken as complete for the next.
    generation: u64,
    /// This build holds every pseudonym committed before this time (see `LATE_COMMIT_MARGIN_MS`).
    complete_as_of: AtomicI64,
}

static GENERATIONS: AtomicU64 = AtomicU64::new(0);

/// Past this many layers the false-positive rate has grown (about 0.1 % a layer): the serving
/// node's upkeep rebuilds the filter as one layer.
const MAX_LAYERS: usize = 6;

impl Filter {
    fn new(capacity: u64) -> Filter {
        Filter {
            layers: vec![Bits::with_capacity(capacity)],
            shared: vec![Bits::with_capacity(capacity / 4)],
            adding: Mutex::new(()),
            generation: GENERATIONS.fetch_add(1, Ordering::Relaxed),
            complete_as_of: AtomicI64::new(Millis::MIN),
        }
    }

    /// Adds keys, marking those already there as shared.
    fn insert_all(&self, keys: impl IntoIterator<Item = IndexKey>) {
        let _adding = self.adding.lock().unwrap_or_else(|p| p.into_inner());
        for key in keys {
            let spot = Spot::of(key);
            self.insert_at(&spot, self.contains(&spot));
        }
    }

    /// Adds a key as read from the store: `shared` when more than one holding carries it.
    fn insert(&self, key: IndexKey, shared: bool) {
        self.insert_at(&Spot::of(key), shared);
    }

    fn insert_at(&self, spot: &Spot, shared: bool) {
        if shared && let Some(layer) = self.shared.last() {
            layer.insert(spot);
        }
        if let Some(layer) = self.layers.last() {
            layer.insert(spot);
        }
    }

    fn may_contain(&self, key: IndexKey) -> bool {
        self.contains(&Spot::of(key))
    }

    fn contains(&self, spot: &Spot) -> bool {
        self.layers.iter().any(|layer| layer.contains(spot))
    }

    fn may_be_shared(&self, key: IndexKey) -> bool {
        let spot = Spot::of(key);
        self.shared.iter().any(|layer| layer.contains(&spot))
    }

    fn is_full(&self) -> bool {
        [&self.layers, &self.shared]
            .into_iter()
            .any(|layers| layers.last().is_none_or(|layer| layer.inserted.load(Ordering::Relaxed) > layer.capacity))
    }

    /// Adds a layer four times the size of the last to whichever is full. Each layer is a
    /// memory access for every key it does not hold, and most screened keys are held nowhere:
    /// a million-holding import into an empty index grew ten layers by doubling, and the filter
    /// was 18 % of its CPU; quadrupling needs six (docs/performance.md, "Integer index keys").
    fn grow_if_full(&mut self) {
        for layers in [&mut self.layers, &mut self.shared] {
            if layers.last().is_none_or(|layer| layer.inserted.load(Ordering::Relaxed) > layer.capacity) {
                let capacity = layers.last().map_or(0, |layer| layer.capacity * 4);
                layers.push(Bits::with_capacity(capacity));
            }
        }
    }
}

impl Bits {
    fn with_capacity(keys: u64) -> Bits {
        let keys = keys.max(1 << 16);
        let blocks = (keys * BITS_PER_KEY / 512).next_power_of_two();
        Bits {
            blocks: (0..blocks).map(|_| Block(Default::default())).collect(),
            mask: blocks - 1,
            capacity: keys,
            inserted: AtomicU64::new(0),
        }
    }

    fn block(&self, spot: &Spot) -> &Block {
        &self.blocks[(spot.block & self.mask) as usize]
    }

    fn insert(&self, spot: &Spot) {
        for (word, bits) in self.block(spot).0.iter().zip(spot.bits) {
            if bits != 0 {
                word.fetch_or(bits, Ordering::Relaxed);
            }
        }
        self.inserted.fetch_add(1, Ordering::Relaxed);
    }

    fn contains(&self, spot: &Spot) -> bool {
        self.block(spot).0.iter().zip(spot.bits).all(|(word, bits)| word.load(Ordering::Relaxed) & bits == bits)
    }
}

/// Where a key lives in every layer, worked out once for all of them: the block (before each
/// layer's mask) and the bits within it.
struct Spot {
    block: u64,
    bits: [u64; 8],
}

impl Spot {
    /// Index keys are already uniform keyed hashes: their low bits pick the block, and nine-bit
    /// slices of the key mixed again (SplitMix64's finaliser, so they do not repeat the bits
    /// that chose the block) pick the bits in it.
    fn of(key: IndexKey) -> Spot {
        let a = key.0 as u64;
        let mut b = (a ^ (a >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        b = (b ^ (b >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        b ^= b >> 31;
        let mut bits = [0u64; 8];
        for i in 0..HASHES {
            let bit = (b >> (9 * i)) & 511;
            bits[(bit / 64) as usize] |= 1 << (bit % 64);
        }
        Spot { block: a, bits }
    }
}

/// How late a write may commit after its `updated_at`, and how far node clocks may differ: a
/// refresh re-reads this much before the time the filter was last known complete. A sync's
/// transaction commits within a third of it of its first row (`service::sync`, TRANSACTION_AGE_MS).
pub const LATE_COMMIT_MARGIN_MS: Millis = 30_000;

/// A signalling refresh that reads more pseudonyms than this met a flood (another organisation
/// is syncing a large caseload this minute): it is taken in all the same, and the window moves
/// past it, but the next refreshes wait (see `REFRESH_BACKOFF_MS`).
const LARGE_REFRESH: u64 = 200_000;

/// After a large refresh, batches skip the refresh (and go unscreened) this long: each refresh
/// re-reads the last `LATE_COMMIT_MARGIN_MS` of others' writes, and re-reading the same flood for
/// every batch cost 1.3 s a batch on PostgreSQL at a million holdings, for nothing. Unscreened
/// signalling is exact, only slower.
const REFRESH_BACKOFF_MS: Millis = 10_000;

/// Keys taken into the filter at a time while a refresh streams holdings' key lists.
const TAKE_IN_CHUNK: usize = 8_192;

/// The filter; empty (and so passing everything) until `rebuild` has loaded it once.
#[derive(Default)]
pub struct Prefilter {
    filter: RwLock<Option<Filter>>,
    /// A serving node is loading its first filter: it answers correctly meanwhile, but sends
    /// every typo probe to the database (a lookup at a million holdings: 70 ms, not 2), so it
    /// reports not ready until the load has been tried.
    warming: AtomicBool,
    /// When a signalling refresh last read more than `large_refresh` keys (see `REFRESH_BACKOFF_MS`).
    large_refresh_at: AtomicI64,
    /// `LARGE_REFRESH` unless a test lowers it (0: the default).
    large_refresh: AtomicU64,
}

/// Variants that only ever exist to tolerate a typo: the ones worth screening.
fn is_typo_variant(v: Variant) -> bool {
    matches!(
        v,
        Variant::DateTypo
            | Variant::GivenNameTypo
            | Variant::SimilarGivenName
            | Variant::FamilyNameTypo
            | Variant::SimilarFamilyName
            | Variant::NamesSwappedTypo
            | Variant::GivenNameTypoAltFamily
    )
}

impl Prefilter {
    /// Replaces the filter with one built from every stored key, each with whether more than
    /// one holding carries it.
    pub fn rebuild(&self, count: u64, keys: impl IntoIterator<Item = (IndexKey, bool)>) {
        let filter = Filter::new(count + count / 2);
        for (key, shared) in keys {
            filter.insert(key, shared);
        }
        self.install(filter);
    }

    fn install(&self, filter: Filter) {
        *self.filter.write().unwrap_or_else(|p| p.into_inner()) = Some(filter);
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Option<Filter>> {
        self.filter.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The build in place and when it was last known complete.
    pub fn completeness(&self) -> Option<(u64, Millis)> {
        self.read().as_ref().map(|f| (f.generation, f.complete_as_of.load(Ordering::Relaxed)))
    }

    /// Adds the keys of pseudonyms written on this node (or seen in a refresh).
    pub fn add(&self, keys: impl IntoIterator<Item = IndexKey>) {
        let full = match self.read().as_ref() {
            Some(filter) => {
                filter.insert_all(keys);
                filter.is_full()
            }
            None => false,
        };
        if full && let Some(filter) = self.filter.write().unwrap_or_else(|p| p.into_inner()).as_mut() {
            filter.grow_if_full();
        }
    }

    /// Marks the build `generation` complete as of `read_at`, once everything written since it
    /// was last complete has been read (at `read_at`) and added. False when that build was
    /// replaced meanwhile (the new one may lack what was added: nothing is marked).
    fn mark_complete(&self, generation: u64, read_at: Millis) -> bool {
        let guard = self.read();
        match guard.as_ref() {
            Some(filter) if filter.generation == generation => {
                filter.complete_as_of.fetch_max(read_at, Ordering::Relaxed);
                true
            }
            _ => false,
        }
    }

    /// Whether `key` may be stored anywhere; always true before the first build.
    pub fn may_contain(&self, key: IndexKey) -> bool {
        self.read().as_ref().is_none_or(|filter| filter.may_contain(key))
    }

    /// Whether `key` may be carried by more than one holding (or was added twice); always true
    /// before the first build. A holding's own stored key that is not is its alone.
    pub fn may_be_shared(&self, key: IndexKey) -> bool {
        self.read().as_ref().is_none_or(|filter| filter.may_be_shared(key))
    }

    /// Lowers the size past which a signalling refresh counts as large, so a test can make one.
    pub fn set_large_refresh_for_tests(&self, keys: u64) {
        self.large_refresh.store(keys, Ordering::Relaxed);
    }

    fn is_large_refresh(&self, keys: u64) -> bool {
        let limit = match self.large_refresh.load(Ordering::Relaxed) {
            0 => LARGE_REFRESH,
            set => set,
        };
        keys > limit
    }

    /// Called before the upkeep task starts, so no readiness probe can see the node as ready
    /// before its first load has been tried.
    pub fn mark_warming(&self) {
        self.warming.store(true, Ordering::Relaxed);
    }

    pub fn is_warming(&self) -> bool {
        self.warming.load(Ordering::Relaxed)
    }

    /// Whether the filter is missing or has grown so many layers that it should be rebuilt.
    pub fn needs_rebuild(&self) -> bool {
        self.read().as_ref().is_none_or(|filter| filter.layers.len() > MAX_LAYERS)
    }

    /// Keeps every exact and structural probe, and the typo probes the filter may contain.
    pub fn screen(&self, probes: Vec<Probe>) -> Vec<Probe> {
        let guard = self.read();
        let Some(filter) = guard.as_ref() else { return probes };
        probes
            .into_iter()
            .filter(|p| !is_typo_variant(p.variant) || filter.may_contain(p.pseudonym.index_key()))
            .collect()
    }
}

impl super::Service {
    /// Loads the prefilter from every stored key, page by page (memory: the filter and one
    /// page, not the table).
    pub async fn rebuild_prefilter(&self) -> super::ServiceResult<()> {
        let started = self.clock.now_ms();
        let count = u64::try_from(self.store.count_pseudonyms().await?).unwrap_or(0);
        let mut filter = Filter::new(count + count / 2);
        let mut after = None;
        loop {
            let page = self.store.key_page(after, 50_000).await?;
            let Some(&(last, _)) = page.last() else { break };
            for &(key, holders) in &page {
                filter.insert(key, holders > 1);
            }
            filter.grow_if_full();
            after = Some(last);
        }
        filter.complete_as_of.store(started, Ordering::Relaxed);
        self.prefilter.install(filter);
        Ok(())
    }

    /// Before a sync batch's signalling is screened: takes in what other organisations wrote
    /// since the filter was last complete. Returns whether the batch may be screened (the
    /// filter is loaded and was just made complete).
    pub(crate) async fn refresh_for_signalling(&self, org_id: i64) -> super::ServiceResult<bool> {
        let Some((generation, complete_as_of)) = self.prefilter.completeness() else { return Ok(false) };
        let started = self.clock.now_ms();
        let large_at = self.prefilter.large_refresh_at.load(Ordering::Relaxed);
        if large_at != 0 && started < large_at.saturating_add(REFRESH_BACKOFF_MS) {
            return Ok(false);
        }
        let since = complete_as_of.saturating_sub(LATE_COMMIT_MARGIN_MS);
        // All of it, however large: a refresh that gave up would leave the window where it was,
        // and every later one would meet the same flood and give up too.
        let read = self.take_in(self.store.key_lists_of_others_since(org_id, since)).await?;
        if self.prefilter.is_large_refresh(read) {
            self.prefilter.large_refresh_at.store(started, Ordering::Relaxed);
        }
        Ok(self.prefilter.mark_complete(generation, started))
    }

    /// Adds every key of the streamed key lists to the filter, a chunk at a time (memory: the
    /// filter and one chunk); how many keys that was.
    async fn take_in(
        &self,
        lists: impl futures::Stream<Item = crate::store::StoreResult<Vec<u8>>>,
    ) -> super::ServiceResult<u64> {
        use futures::TryStreamExt;
        let mut lists = std::pin::pin!(lists);
        let (mut chunk, mut taken) = (Vec::with_capacity(TAKE_IN_CHUNK * Pseudonym::LEN), 0u64);
        while let Some(list) = lists.try_next().await? {
            chunk.extend_from_slice(&list);
            if chunk.len() >= TAKE_IN_CHUNK * Pseudonym::LEN {
                taken += self.take_in_chunk(&mut chunk);
            }
        }
        Ok(taken + self.take_in_chunk(&mut chunk))
    }

    fn take_in_chunk(&self, chunk: &mut Vec<u8>) -> u64 {
        self.prefilter.add(IndexKey::all_in_key_list(chunk));
        let keys = (chunk.len() / Pseudonym::LEN) as u64;
        chunk.clear();
        keys
    }

    /// Keeps the prefilter current while serving: built at start, then every `every` it takes in
    /// what any node wrote since the last pass (overlapping by a pass, as clocks differ), and is
    /// rebuilt larger once it holds more keys than it was sized for.
    pub async fn maintain_prefilter(&self, every: std::time::Duration) {
        let mut since = self.clock.now_ms();
        let started = std::time::Instant::now();
        match self.rebuild_prefilter().await {
            Ok(()) => tracing::info!(seconds = started.elapsed().as_secs_f64(), "lookup prefilter loaded"),
            Err(e) => tracing::warn!(error = %e, "lookup prefilter not built; lookups ask every probe"),
        }
        // Ready either way: without the filter answers are slower, never different.
        self.prefilter.warming.store(false, Ordering::Relaxed);
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            let now = self.clock.now_ms();
            let result = match self.prefilter.completeness() {
                Some((generation, _)) if !self.prefilter.needs_rebuild() => {
                    let overlap = (every.as_millis() as Millis).max(LATE_COMMIT_MARGIN_MS);
                    self.take_in(self.store.key_lists_since(since - overlap)).await.map(|_| {
                        // Complete as of this pass: the overlap covers commits that landed late.
                        self.prefilter.mark_complete(generation, now);
                    })
                }
                _ => self.rebuild_prefilter().await,
            };
            match result {
                Ok(()) => since = now,
                Err(e) => tracing::warn!(error = %e, "lookup prefilter refresh failed; will retry"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::identity::KeyKind;

    fn probe(byte: u8, variant: Variant) -> Probe {
        Probe { pseudonym: Pseudonym::from_bytes([byte; 16]), kind: KeyKind::NameDob, variant }
    }

    /// The index key of the pseudonym `probe(byte, ..)` asks.
    fn key(byte: u8) -> IndexKey {
        Pseudonym::from_bytes([byte; 16]).index_key()
    }

    /// A uniformly random index key, as a keyed hash gives.
    fn hashed(i: u64) -> IndexKey {
        IndexKey::of_bytes(blake3::hash(&i.to_le_bytes()).as_bytes()).unwrap()
    }

    #[test]
    fn typo_probes_for_unseen_pseudonyms_are_dropped_and_exact_ones_never_are() {
        let filter = Prefilter::default();
        filter.rebuild(1, [(key(1), false)]);
        let kept = filter.screen(vec![
            probe(1, Variant::GivenNameTypo),
            probe(2, Variant::GivenNameTypo),
            probe(3, Variant::Exact),
            probe(4, Variant::Nickname),
        ]);
        let bytes: Vec<u8> = kept.iter().map(|p| p.pseudonym.as_bytes()[0]).collect();
        assert_eq!(bytes, vec![1, 3, 4]);
    }

    #[test]
    fn before_the_first_build_nothing_is_dropped() {
        let probes = vec![probe(9, Variant::DateTypo)];
        assert_eq!(Prefilter::default().screen(probes.clone()).len(), 1);
    }

    #[test]
    fn pseudonyms_added_after_a_build_pass_the_screen() {
        let filter = Prefilter::default();
        filter.rebuild(0, Vec::new());
        filter.add([key(5)]);
        assert_eq!(filter.screen(vec![probe(5, Variant::FamilyNameTypo)]).len(), 1);
    }

    #[test]
    fn a_filter_grows_layers_as_keys_arrive_and_stays_selective() {
        let filter = Prefilter::default();
        filter.rebuild(0, Vec::new());
        for chunk in (0u64..400_000).collect::<Vec<_>>().chunks(5_000) {
            filter.add(chunk.iter().map(|i| hashed(*i)));
        }
        assert!(filter.read().as_ref().unwrap().layers.len() > 1, "400,000 keys outgrow a 65,536-key layer");
        assert!((0u64..400_000).step_by(997).all(|i| filter.may_contain(hashed(i))), "every added key passes");
        let false_hits = (1_000_000u64..1_100_000).filter(|i| filter.may_contain(hashed(*i))).count();
        assert!(false_hits < 1_000, "{false_hits} of 100000 unseen pseudonyms passed");
    }

    #[test]
    fn the_false_positive_rate_is_low() {
        let filter = Prefilter::default();
        filter.rebuild(100_000, (0u64..100_000).map(|i| (hashed(i), false)));
        let false_hits = (1_000_000u64..1_100_000).filter(|i| filter.may_contain(hashed(*i))).count();
        assert!(false_hits < 500, "{false_hits} of 100000 unseen pseudonyms passed");
    }

    #[test]
    fn a_key_is_shared_once_it_was_added_twice_or_built_as_shared() {
        let filter = Prefilter::default();
        assert!(filter.may_be_shared(key(7)), "before the first build everything may be");
        filter.rebuild(2, [(key(1), false), (key(2), true)]);
        assert!(!filter.may_be_shared(key(1)), "one holding carries it");
        assert!(filter.may_be_shared(key(2)), "two holdings carry it");
        filter.add([key(3)]);
        assert!(filter.may_contain(key(3)) && !filter.may_be_shared(key(3)));
        filter.add([key(3), key(1)]);
        assert!(filter.may_be_shared(key(3)), "added a second time");
        assert!(filter.may_be_shared(key(1)), "stored once, then added by another holding");
    }
}
