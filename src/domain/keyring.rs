//! The index keys in force: the current one, and during a rotation the previous one.
//! Registrations write under the current key; lookups and match signalling ask under both,
//! so a child registered before the rotation is still found until its holder re-syncs. The same
//! holds for key families (`identity::KEY_FAMILY`): while any holding still carries only an older
//! family's keys, lookups also ask that family's variants.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::identity::{LookupOptions, MatchKey, Pseudonymiser, Subject, lookup_keys_with};
use super::matching::Probe;

#[derive(Clone)]
pub struct Keyring {
    current: Pseudonymiser,
    previous: Option<Pseudonymiser>,
    /// Some holding was written under key family 1 and not yet re-keyed by its holder's sync.
    /// Shared by every clone, so the service can clear it once the last one is rewritten.
    family_one_holdings: Arc<AtomicBool>,
}

impl Keyring {
    pub fn new(current: Pseudonymiser, previous: Option<Pseudonymiser>) -> Keyring {
        Keyring { current, previous, family_one_holdings: Arc::new(AtomicBool::new(false)) }
    }

    /// Says whether any holding still carries only key family 1's keys (the service reads it
    /// from the store at start and after syncs).
    pub fn set_family_one_holdings(&self, present: bool) {
        self.family_one_holdings.store(present, Ordering::Relaxed);
    }

    pub fn family_one_holdings(&self) -> bool {
        self.family_one_holdings.load(Ordering::Relaxed)
    }

    /// The key new pseudonyms are written under.
    pub fn current(&self) -> &Pseudonymiser {
        &self.current
    }

    pub fn previous(&self) -> Option<&Pseudonymiser> {
        self.previous.as_ref()
    }

    /// Lookup-side pseudonyms of a subject (every variant, the stored tolerance keys included)
    /// under every key in force: what a practitioner's lookup asks. While holdings of key
    /// family 1 remain, also that family's one-edit and date-typo variants.
    pub fn probes(&self, subject: &Subject) -> Vec<Probe> {
        let options =
            if self.family_one_holdings() { LookupOptions::with_family_one() } else { LookupOptions::default() };
        self.probes_with(subject, options)
    }

    /// What a newly registered holding asks of the others: the same keys a lookup asks of the
    /// current key family (structural variants and the stored tolerance keys: a few dozen), so
    /// two registered records one typo apart meet as a lookup would find them. Not family 1's
    /// ~800 variants: a holding of family 1 is re-keyed at its holder's next sync, and signals
    /// then.
    pub fn signalling_probes(&self, subject: &Subject) -> Vec<Probe> {
        self.probes_with(subject, LookupOptions::default())
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
        let stored_under_old: Vec<_> = holding_keys(&subject())
            .iter()
            .filter(|k| !k.kind().stored_for_two_errors())
            .map(|k| old.pseudonym(k))
            .collect();
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

    #[test]
    fn signalling_asks_what_a_lookup_asks_and_family_one_variants_only_while_needed() {
        let keyring = Keyring::new(Pseudonymiser::new(&IndexSecret::from_bytes([1; 32])), None);
        let lookup = keyring.probes(&subject());
        assert_eq!(keyring.signalling_probes(&subject()), lookup, "holders meet as tolerantly as a lookup");
        assert!(lookup.len() <= 100, "{} probes", lookup.len());
        keyring.clone().set_family_one_holdings(true);
        assert!(keyring.probes(&subject()).len() > lookup.len() + 500, "the flag is shared by every clone");
        assert_eq!(keyring.signalling_probes(&subject()), lookup);
    }
}
