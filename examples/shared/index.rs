//! The product's matching in memory, for the matching benchmarks: keys → pseudonyms → an index
//! (pseudonym → holdings) → agreements with holder counts → `assess`, as the store and the
//! service do it. Shared by `match_quality` and `febrl_quality`.

use std::collections::HashMap;

use child_locator::domain::identity::{
    Agreement, Assessment, Evidence, FieldsPresent, IndexSecret, KeyKind, LookupOptions, Pseudonym, Pseudonymiser,
    Subject, Tier, Variant, assess, holding_keys, is_known_given_name, is_known_short_family_name, lookup_keys_with,
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
    /// A prototype of #21 item 1, in this harness only (not the product): each holding also
    /// stores the symmetric deletion neighbourhood of each name (the name and every string one
    /// letter shorter) with the other name and the date, tagged with whether the name is a known
    /// name; `None` when off.
    deletions: Option<DeletionIndex>,
}

/// Deletion key → (holding, whether its name there is a known name).
type DeletionIndex = HashMap<[u8; 32], Vec<(u32, bool)>>;

/// Which name a deletion key varies.
#[derive(Clone, Copy)]
enum Varied {
    Given,
    Family,
}

/// The name and every string one letter shorter (duplicates removed).
fn deletion_neighbourhood(name: &str) -> Vec<String> {
    let chars: Vec<char> = name.chars().collect();
    let mut out: Vec<String> = std::iter::once(name.to_owned())
        .chain((0..chars.len()).map(|i| chars.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, c)| c).collect()))
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// Deletion keys of a subject: (key, which name, the varied name as given) for each name.
fn deletion_keys(subject: &Subject) -> Vec<([u8; 32], Varied, String)> {
    let (Some(g), Some(f), Some(d)) = (subject.given_name(), subject.family_name(), subject.date_of_birth()) else {
        return Vec::new();
    };
    let (g, f, d) = (g.whole(), f.whole(), d.date().to_string());
    let key = |tag: &str, varied: &str, other: &str| {
        let mut h = blake3::Hasher::new_derive_key("child-locator harness deletion prototype");
        for part in [tag, varied, other, d.as_str()] {
            h.update(&(part.len() as u64).to_le_bytes()).update(part.as_bytes());
        }
        *h.finalize().as_bytes()
    };
    let mut keys: Vec<_> =
        deletion_neighbourhood(g).into_iter().map(|v| (key("g", &v, f), Varied::Given, g.to_owned())).collect();
    keys.extend(deletion_neighbourhood(f).into_iter().map(|v| (key("f", &v, g), Varied::Family, f.to_owned())));
    keys
}

fn known(varied: Varied, name: &str) -> bool {
    match varied {
        Varied::Given => is_known_given_name(name),
        // A short real surname (Hall/Hill stay "similar"); the product also keeps a short real
        // name and a 5-letter one apart, which this one bit cannot say.
        Varied::Family => name.len() <= 4 && is_known_short_family_name(name),
    }
}

impl Index {
    pub fn new(secret: &IndexSecret) -> Self {
        Self {
            pseudonymiser: Pseudonymiser::new(secret),
            map: HashMap::new(),
            holdings: Vec::new(),
            stored_keys: Vec::new(),
            deletions: None,
        }
    }

    /// Turns on the deletion-neighbourhood prototype (before any `add`).
    #[allow(dead_code)] // match_quality does not use the prototype
    pub fn with_deletion_keys(mut self) -> Self {
        self.deletions = Some(HashMap::new());
        self
    }

    pub fn add(&mut self, person: usize, subject: &Subject) {
        let id = self.holdings.len() as u32;
        let keys = holding_keys(subject);
        self.stored_keys.push(keys.len());
        for key in &keys {
            self.map.entry(self.pseudonymiser.pseudonym(key)).or_default().push(id);
        }
        if let Some(deletions) = &mut self.deletions {
            for (key, varied, name) in deletion_keys(subject) {
                deletions.entry(key).or_default().push((id, known(varied, &name)));
            }
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
        if let Some(deletions) = &self.deletions {
            self.agree_by_deletions(deletions, lookup, &mut agreed, key_counts);
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

    /// The prototype's agreements: a deletion key shared means the two names are at most one
    /// edit apart (or equal). Exact names meet through the product's own keys, so a shared
    /// deletion key between different names is a typo, or "similar" when both are known names
    /// (Jack/Jake), exactly as the lookup's one-edit variants are tagged.
    fn agree_by_deletions(
        &self,
        deletions: &DeletionIndex,
        lookup: &Subject,
        agreed: &mut HashMap<u32, Vec<Agreement>>,
        key_counts: &mut [usize],
    ) {
        let keys = deletion_keys(lookup);
        if let Some(last) = key_counts.last_mut() {
            *last += keys.len();
        }
        for (key, varied, name) in keys {
            let Some(holders) = deletions.get(&key) else { continue };
            let asker_known = known(varied, &name);
            for &(h, holder_known) in holders {
                let variant = match (varied, asker_known && holder_known) {
                    (Varied::Given, true) => Variant::SimilarGivenName,
                    (Varied::Given, false) => Variant::GivenNameTypo,
                    (Varied::Family, true) => Variant::SimilarFamilyName,
                    (Varied::Family, false) => Variant::FamilyNameTypo,
                };
                agreed.entry(h).or_default().push(Agreement {
                    kind: KeyKind::NameDob,
                    variant,
                    holders_with_key: holders.len() as u32,
                });
            }
        }
    }
}
