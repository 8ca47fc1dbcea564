//! A per-node Bloom filter of stored pseudonyms that screens a lookup's *typo-variant* probes
//! before they reach the database. A lookup asks ~950 pseudonyms, almost all one-edit typo
//! variants that exist nowhere; the filter drops those it has never seen.
//!
//! Safety: exact and structural probes (swaps, short forms, name parts) always go to the
//! database. The filter only ever says "maybe" for what this node has seen; a holding written by
//! another node since the last refresh can at worst hide a typo-level match for a few seconds,
//! never an exact one. Removals leave stale bits, which only cost a wasted query.

use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::domain::identity::Variant;
use crate::domain::matching::Probe;

/// Bits per expected key; with 7 probes this gives about a 0.1 % false-positive rate.
const BITS_PER_KEY: u64 = 16;
const HASHES: u64 = 7;

struct Bits {
    words: Vec<AtomicU64>,
    mask: u64,
    capacity: u64,
    inserted: AtomicU64,
}

impl Bits {
    fn with_capacity(keys: u64) -> Bits {
        let bits = (keys.max(1 << 16) * BITS_PER_KEY).next_power_of_two();
        Bits {
            words: (0..bits / 64).map(|_| AtomicU64::new(0)).collect(),
            mask: bits - 1,
            capacity: keys.max(1 << 16),
            inserted: AtomicU64::new(0),
        }
    }

    /// Pseudonyms are already uniform keyed hashes: two halves give double hashing for free.
    fn positions(&self, pseudonym: &[u8]) -> impl Iterator<Item = u64> + '_ {
        let half = |range: std::ops::Range<usize>| {
            pseudonym.get(range).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes).unwrap_or(0)
        };
        let (a, b) = (half(0..8), half(8..16) | 1);
        (0..HASHES).map(move |i| a.wrapping_add(i.wrapping_mul(b)) & self.mask)
    }

    fn insert(&self, pseudonym: &[u8]) {
        for bit in self.positions(pseudonym) {
            self.words[(bit / 64) as usize].fetch_or(1 << (bit % 64), Ordering::Relaxed);
        }
        self.inserted.fetch_add(1, Ordering::Relaxed);
    }

    fn may_contain(&self, pseudonym: &[u8]) -> bool {
        self.positions(pseudonym)
            .all(|bit| self.words[(bit / 64) as usize].load(Ordering::Relaxed) & (1 << (bit % 64)) != 0)
    }
}

/// The filter; empty (and so passing everything) until `rebuild` has loaded it once.
#[derive(Default)]
pub struct Prefilter {
    bits: RwLock<Option<Bits>>,
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
    )
}

impl Prefilter {
    /// Replaces the filter with one built from every stored pseudonym.
    pub fn rebuild(&self, count: u64, pseudonyms: impl IntoIterator<Item = Vec<u8>>) {
        let bits = Bits::with_capacity(count + count / 2);
        for p in pseudonyms {
            bits.insert(&p);
        }
        *self.bits.write().unwrap_or_else(|p| p.into_inner()) = Some(bits);
    }

    /// Adds pseudonyms written on this node (or seen in a refresh).
    pub fn add<'a>(&self, pseudonyms: impl IntoIterator<Item = &'a [u8]>) {
        if let Some(bits) = self.bits.read().unwrap_or_else(|p| p.into_inner()).as_ref() {
            for p in pseudonyms {
                bits.insert(p);
            }
        }
    }

    /// Whether the filter is over capacity and should be rebuilt larger.
    pub fn needs_rebuild(&self) -> bool {
        match self.bits.read().unwrap_or_else(|p| p.into_inner()).as_ref() {
            Some(bits) => bits.inserted.load(Ordering::Relaxed) > bits.capacity,
            None => true,
        }
    }

    /// Keeps every exact and structural probe, and the typo probes the filter may contain.
    pub fn screen(&self, probes: Vec<Probe>) -> Vec<Probe> {
        let guard = self.bits.read().unwrap_or_else(|p| p.into_inner());
        let Some(bits) = guard.as_ref() else { return probes };
        probes.into_iter().filter(|p| !is_typo_variant(p.variant) || bits.may_contain(p.pseudonym.as_bytes())).collect()
    }
}

impl super::Service {
    /// Loads the prefilter from every stored pseudonym, page by page.
    pub async fn rebuild_prefilter(&self) -> super::ServiceResult<()> {
        let count = u64::try_from(self.store.count_pseudonyms().await?).unwrap_or(0);
        let mut all = Vec::new();
        let mut after: Vec<u8> = Vec::new();
        loop {
            let page = self.store.pseudonym_page(&after, 50_000).await?;
            let Some(last) = page.last() else { break };
            after = last.clone();
            all.extend(page);
        }
        self.prefilter.rebuild(count, all);
        Ok(())
    }

    /// Keeps the prefilter current while serving: built at start, then every `every` it takes in
    /// what any node wrote since the last pass (overlapping by a pass, as clocks differ), and is
    /// rebuilt larger once it holds more keys than it was sized for.
    pub async fn maintain_prefilter(&self, every: std::time::Duration) {
        let mut since = self.clock.now_ms();
        if let Err(e) = self.rebuild_prefilter().await {
            tracing::warn!(error = %e, "lookup prefilter not built; lookups ask every probe");
        }
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            let now = self.clock.now_ms();
            let result = if self.prefilter.needs_rebuild() {
                self.rebuild_prefilter().await
            } else {
                match self.store.pseudonyms_since(since - every.as_millis() as i64).await {
                    Ok(fresh) => {
                        self.prefilter.add(fresh.iter().map(Vec::as_slice));
                        Ok(())
                    }
                    Err(e) => Err(e.into()),
                }
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
    use crate::domain::identity::{KeyKind, Pseudonym};

    fn probe(byte: u8, variant: Variant) -> Probe {
        Probe { pseudonym: Pseudonym::from_bytes([byte; 16]), kind: KeyKind::NameDob, variant }
    }

    #[test]
    fn typo_probes_for_unseen_pseudonyms_are_dropped_and_exact_ones_never_are() {
        let filter = Prefilter::default();
        filter.rebuild(1, [vec![1u8; 16]]);
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
        filter.rebuild(0, Vec::<Vec<u8>>::new());
        filter.add([[5u8; 16].as_slice()]);
        assert_eq!(filter.screen(vec![probe(5, Variant::FamilyNameTypo)]).len(), 1);
    }

    #[test]
    fn the_false_positive_rate_is_low() {
        let filter = Prefilter::default();
        let stored: Vec<Vec<u8>> =
            (0u64..100_000).map(|i| blake3::hash(&i.to_le_bytes()).as_bytes()[..16].to_vec()).collect();
        filter.rebuild(stored.len() as u64, stored);
        let bits = filter.bits.read().unwrap();
        let false_hits = (1_000_000u64..1_100_000)
            .filter(|i| bits.as_ref().unwrap().may_contain(&blake3::hash(&i.to_le_bytes()).as_bytes()[..16]))
            .count();
        assert!(false_hits < 500, "{false_hits} of 100000 unseen pseudonyms passed");
    }
}
