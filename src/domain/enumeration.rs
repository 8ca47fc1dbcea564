//! Spotting a caseload file that guesses rather than registers: many rows sharing one name with
//! different dates of birth (or postcodes) test one child's details a guess a row, and the
//! matches that follow would say which organisation holds the real child. Pure and in memory:
//! a name is reduced to a digest keyed by a random key made for this one file and dropped with
//! it; nothing here is stored, logged or returned but counts.

use std::collections::{HashMap, HashSet};

use super::identity::RawSubject;

/// When rows sharing a name are too many. A real caseload's most common full name is a small
/// share of its rows; a guessing file's one name is nearly all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnumerationRules {
    /// Distinct variants (date of birth and postcode) of one name always allowed in a file.
    pub name_variants_floor: u32,
    /// ...or this share of the rows read so far, per thousand, if that is more.
    pub name_variants_per_mille: u32,
}

impl Default for EnumerationRules {
    fn default() -> Self {
        // The tests' generator (60 given names × 57 family names, uniform) puts ~29 rows on a
        // name at 100,000 rows; real names are skewed, hence a floor of 50 and 1% of the rows.
        EnumerationRules { name_variants_floor: 50, name_variants_per_mille: 10 }
    }
}

/// What was seen when a file was judged to be guessing: counts only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Suspicion {
    /// Distinct variants of the most shared name when the file was stopped.
    pub rows_sharing_a_name: u32,
    /// Rows read by then.
    pub rows: u64,
}

/// The name groups of one file, as it is read.
pub struct NameGroups {
    rules: EnumerationRules,
    key: [u8; 32],
    /// (name, variant) pairs already counted: a duplicated row is not a new guess.
    seen: HashSet<u64>,
    variants: HashMap<u64, u32>,
    rows: u64,
}

impl NameGroups {
    pub fn new(rules: EnumerationRules) -> NameGroups {
        NameGroups { rules, key: rand::random(), seen: HashSet::new(), variants: HashMap::new(), rows: 0 }
    }

    /// Counts one row: its child and its carers (carers match carers, so guessing a parent's
    /// details looks the same). A `Suspicion` once a name has more variants than the rules allow.
    pub fn observe_row<'a>(&mut self, subjects: impl IntoIterator<Item = &'a RawSubject>) -> Result<(), Suspicion> {
        self.rows += 1;
        subjects.into_iter().try_for_each(|subject| self.observe(subject))
    }

    fn observe(&mut self, subject: &RawSubject) -> Result<(), Suspicion> {
        let (Some(given), Some(family)) = (text(&subject.given_name), text(&subject.family_name)) else {
            return Ok(());
        };
        let name = self.digest(&[&given, &family]);
        let variant = [text(&subject.date_of_birth), text(&subject.postcode)].map(Option::unwrap_or_default);
        if !self.seen.insert(self.digest(&[&given, &family, &variant[0], &variant[1]])) {
            return Ok(());
        }
        let count = self.variants.entry(name).or_insert(0);
        *count += 1;
        let allowed = u64::from(self.rules.name_variants_floor)
            .max(self.rows.saturating_mul(u64::from(self.rules.name_variants_per_mille)) / 1000);
        if u64::from(*count) > allowed {
            return Err(Suspicion { rows_sharing_a_name: *count, rows: self.rows });
        }
        Ok(())
    }

    fn digest(&self, parts: &[&str]) -> u64 {
        let mut hasher = blake3::Hasher::new_keyed(&self.key);
        for part in parts {
            hasher.update(part.as_bytes());
            hasher.update(&[0]);
        }
        let bytes = hasher.finalize();
        u64::from_le_bytes(bytes.as_bytes()[..8].try_into().unwrap_or([0; 8]))
    }
}

/// A cell as compared: case, spacing and punctuation do not make a new guess.
fn text(cell: &Option<String>) -> Option<String> {
    let folded: String =
        cell.as_deref()?.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect();
    (!folded.is_empty()).then_some(folded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn child(given: &str, family: &str, dob: &str) -> RawSubject {
        RawSubject {
            given_name: Some(given.into()),
            family_name: Some(family.into()),
            date_of_birth: Some(dob.into()),
            ..RawSubject::default()
        }
    }

    #[test]
    fn one_name_with_every_date_of_birth_is_stopped_early() {
        let mut groups = NameGroups::new(EnumerationRules::default());
        let mut stopped = None;
        for day in 0..3652u32 {
            let dob = format!("{}-{:02}-{:02}", 2014 + day / 365, 1 + (day / 28) % 12, 1 + day % 28);
            if let Err(s) = groups.observe_row([&child("Amelia", "Hughes", &dob)]) {
                stopped = Some(s);
                break;
            }
        }
        let s = stopped.expect("a guessing file is spotted");
        assert_eq!((s.rows_sharing_a_name, s.rows), (51, 51));
    }

    #[test]
    fn repeated_rows_and_spelling_do_not_count_as_guesses() {
        let mut groups = NameGroups::new(EnumerationRules { name_variants_floor: 2, name_variants_per_mille: 0 });
        for _ in 0..10 {
            assert!(groups.observe_row([&child("Amelia", "Hughes", "2014-05-09")]).is_ok());
            assert!(groups.observe_row([&child("AMELIA ", "hughes", "2014-05-09")]).is_ok());
        }
        assert!(groups.observe_row([&child("Amelia", "Hughes", "2014-05-10")]).is_ok());
        assert!(groups.observe_row([&child("Amelia", "Hughes", "2014-05-11")]).is_err());
        assert!(groups.observe_row([&RawSubject::default()]).is_ok(), "no name, nothing to group");
    }

    #[test]
    fn guessing_a_carers_date_of_birth_looks_the_same_but_siblings_sharing_a_mother_do_not() {
        let mut groups = NameGroups::new(EnumerationRules { name_variants_floor: 3, name_variants_per_mille: 0 });
        let mother = child("Grace", "Thistlewhite", "1990-02-02");
        for i in 0..10 {
            let sibling = child(&format!("Child{}", char::from(b'a' + i)), "Thistlewhite", "2015-01-01");
            assert!(groups.observe_row([&sibling, &mother]).is_ok(), "the same mother on every row");
        }
        let guesses: Vec<bool> = (1..=5)
            .map(|d| {
                groups
                    .observe_row([
                        &child("Tom", "Lee", "2016-01-01"),
                        &child("Grace", "Thistlewhite", &format!("1990-03-0{d}")),
                    ])
                    .is_err()
            })
            .collect();
        assert_eq!(guesses, [false, false, true, true, true], "the carer's fourth date of birth gives it away");
    }
}
