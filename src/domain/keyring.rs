//! The index keys in force: the current one, and during a rotation the previous one.
//! Registrations write under the current key; lookups and match signalling ask under both,
//! so a child registered before the rotation is still found until its holder re-syncs.

use super::identity::{LookupOptions, MatchKey, Pseudonymiser, Subject, lookup_keys_with};
use super::matching::Probe;

#[derive(Clone)]
pub struct Keyring {
    current: Pseudonymiser,
    previous: Option<Pseudonymiser>,
}

impl Keyring {
    pub fn new(current: Pseudonymiser, previous: Option<Pseudonymiser>) -> Keyring {
        Keyring { current, previous }
    }

    /// The key new pseudonyms are written under.
    pub fn current(&self) -> &Pseudonymiser {
        &self.current
    }

    pub fn previous(&self) -> Option<&Pseudonymiser> {
        self.previous.as_ref()
    }

    /// Lookup-side pseudonyms of a subject (every variant, typos included) under every key in
    /// force: what a practitioner's lookup asks.
    pub fn probes(&self, subject: &Subject) -> Vec<Probe> {
        self.probes_with(subject, LookupOptions::default())
    }

    /// What a newly registered holding asks of the others: structural variants (swaps, short
    /// forms, name parts) but not the per-letter typo variants. Both sides of a holding match
    /// are registered records, so the phonetic keys carry spelling differences, and signalling
    /// stays cheap enough to sync a million holdings (docs/performance.md).
    pub fn signalling_probes(&self, subject: &Subject) -> Vec<Probe> {
        self.probes_with(subject, LookupOptions { name_typos: false, date_typos: false })
    }

    fn probes_with(&self, subject: &Subject, options: LookupOptions) -> Vec<Probe> {
        self.probes_of(&lookup_keys_with(subject, options))
    }

    /// These keys as probes under every key in force.
    pub fn probes_of(&self, keys: &[MatchKey]) -> Vec<Probe> {
        std::iter::once(&self.current)
            .chain(self.previous.iter())
            .flat_map(|p| {
                keys.iter().map(move |k| Probe { pseudonym: p.pseudonym(k), kind: k.kind(), variant: k.variant() })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::identity::{IndexSecret, KeyUse, RawSubject, SubjectRole, holding_keys};

    fn subject() -> Subject {
        let raw = RawSubject {
            given_name: Some("Oliver".into()),
            family_name: Some("Nowak".into()),
            date_of_birth: Some("2015-04-04".into()),
            ..RawSubject::default()
        };
        Subject::parse(&raw, SubjectRole::Child, KeyUse::Lookup, time::macros::date!(2026 - 11 - 24)).unwrap()
    }

    #[test]
    fn during_a_rotation_a_lookup_still_meets_pseudonyms_written_under_the_old_key() {
        let old = Pseudonymiser::new(&IndexSecret::from_bytes([1; 32]));
        let new = Pseudonymiser::new(&IndexSecret::from_bytes([2; 32]));
        let stored_under_old: Vec<_> = holding_keys(&subject()).iter().map(|k| old.pseudonym(k)).collect();
        let rotating = Keyring::new(new.clone(), Some(old));
        let probes = rotating.probes(&subject());
        assert!(stored_under_old.iter().all(|p| probes.iter().any(|q| q.pseudonym == *p)));
        let retired = Keyring::new(new, None);
        let probes = retired.probes(&subject());
        assert!(
            stored_under_old.iter().all(|p| probes.iter().all(|q| q.pseudonym != *p)),
            "after retirement the old key is gone"
        );
    }
}
