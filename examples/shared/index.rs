//! The product's matching in memory, for the matching benchmarks: keys → pseudonyms → an index
//! (pseudonym → holdings) → agreements with holder counts → `assess`, as the store and the
//! service do it. Shared by `match_quality` and `febrl_quality`.

use std::collections::HashMap;

use child_locator::domain::identity::{
    Agreement, Assessment, Evidence, FieldsPresent, IndexSecret, KeyKind, LookupOptions, Pseudonym, Pseudonymiser,
    Subject, Tier, assess, holding_keys, lookup_keys_with,
};

pub struct Outcome {
    pub best_true: Option<Tier>,
    pub best_false: Option<Tier>,
    pub false_matches: Vec<(usize, Assessment)>,
}

struct Holding {
    person: usize,
    fields: FieldsPresent,
}

pub struct Index {
    pseudonymiser: Pseudonymiser,
    pub map: HashMap<Pseudonym, Vec<u32>>,
    holdings: Vec<Holding>,
    pub stored_keys: Vec<usize>,
    /// Store only key family 1's kinds (no deletion or partial-date keys), as an index written
    /// before #21 holds: the "before" of the comparisons.
    family_one: bool,
}

/// The kinds key family 2 added; an index of family 1 stores none of them.
fn is_family_two_kind(kind: KeyKind) -> bool {
    matches!(
        kind,
        KeyKind::GivenDeletionDob
            | KeyKind::KnownGivenDeletionDob
            | KeyKind::FamilyDeletionDob
            | KeyKind::KnownFamilyDeletionDob
            | KeyKind::NamePartialDob
    )
}

impl Index {
    pub fn new(secret: &IndexSecret) -> Self {
        Self {
            pseudonymiser: Pseudonymiser::new(secret),
            map: HashMap::new(),
            holdings: Vec::new(),
            stored_keys: Vec::new(),
            family_one: false,
        }
    }

    /// An index as written under key family 1 (before any `add`); ask it with
    /// `LookupOptions { family_one_typos: true, .. }` as the product does until it is re-keyed.
    #[allow(dead_code)] // match_quality does not compare key families
    pub fn of_key_family_one(mut self) -> Self {
        self.family_one = true;
        self
    }

    pub fn add(&mut self, person: usize, subject: &Subject) {
        let id = self.holdings.len() as u32;
        let mut keys = holding_keys(subject);
        if self.family_one {
            keys.retain(|k| !is_family_two_kind(k.kind()));
        }
        self.stored_keys.push(keys.len());
        for key in &keys {
            self.map.entry(self.pseudonymiser.pseudonym(key)).or_default().push(id);
        }
        self.holdings.push(Holding { person, fields: subject.fields_present() });
    }

    /// Asks the index about one subject, as the product will.
    pub fn ask(
        &self,
        lookup: &Subject,
        truth: Option<usize>,
        options: LookupOptions,
        key_counts: &mut Vec<usize>,
    ) -> Outcome {
        let keys = lookup_keys_with(lookup, options);
        key_counts.push(keys.len());
        let mut agreed: HashMap<u32, Vec<Agreement>> = HashMap::new();
        for key in &keys {
            if let Some(holders) = self.map.get(&self.pseudonymiser.pseudonym(key)) {
                for &h in holders {
                    agreed.entry(h).or_default().push(Agreement {
                        kind: key.kind(),
                        variant: key.variant(),
                        holders_with_key: holders.len() as u32,
                    });
                }
            }
        }
        let mut outcome = Outcome { best_true: None, best_false: None, false_matches: Vec::new() };
        for (h, agreements) in agreed {
            let holding = &self.holdings[h as usize];
            let verdict = assess(&Evidence {
                agreed: agreements,
                asker_fields: lookup.fields_present(),
                holder_fields: holding.fields,
            });
            if let Some(a) = verdict {
                if Some(holding.person) == truth {
                    outcome.best_true = outcome.best_true.max(Some(a.tier));
                } else {
                    outcome.best_false = outcome.best_false.max(Some(a.tier));
                    outcome.false_matches.push((holding.person, a));
                }
            }
        }
        outcome
    }
}
