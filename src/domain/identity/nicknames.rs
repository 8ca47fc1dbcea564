//! Given-name equivalents (short forms and spellings) and the dictionary of known given names,
//! both compiled in from data files beside this module and parsed once on first use.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use super::names::normalise_name;

/// `canonical,variant` rows; see the file's header for its source and licence.
const NICKNAMES_CSV: &str = include_str!("nicknames.csv");
/// More `canonical,variant` rows, imported from a public list by
/// `bench/matching/import_nicknames.py` (source, licence and filter rule in its header). Read
/// after our own table, so our own rows come first in every variant's canonical forms.
const IMPORTED_CSV: &str = include_str!("nicknames_imported.csv");
/// One common given name a line; see the file's header for its source and licence.
const GIVEN_NAMES_TXT: &str = include_str!("given_names.txt");

/// Most canonical forms one variant may expand to; bounds the keys a holding stores.
pub(crate) const MAX_CANONICALS: usize = 3;

struct Tables {
    /// Variant → its canonical forms, in file order.
    canonicals: HashMap<String, Vec<String>>,
    /// Canonical forms that have at least one variant.
    has_variants: HashSet<String>,
    /// Every name in either file.
    known: HashSet<String>,
}

static TABLES: LazyLock<Tables> = LazyLock::new(|| load(&[NICKNAMES_CSV, IMPORTED_CSV]));

/// Normalises a table entry exactly as input names are, so "Zoë" in the file would still work.
fn normalised(entry: &str) -> Option<String> {
    normalise_name(entry.trim()).ok().map(|n| n.whole().to_owned())
}

fn data_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#'))
}

fn load(tables: &[&str]) -> Tables {
    let mut canonicals: HashMap<String, Vec<String>> = HashMap::new();
    let mut has_variants = HashSet::new();
    let mut known = HashSet::new();
    for line in tables.iter().flat_map(|table| data_lines(table).skip(1)) {
        let Some((canonical, variant)) = line.split_once(',') else {
            continue;
        };
        let (Some(canonical), Some(variant)) = (normalised(canonical), normalised(variant)) else {
            continue;
        };
        if canonical == variant {
            continue;
        }
        known.insert(canonical.clone());
        known.insert(variant.clone());
        has_variants.insert(canonical.clone());
        let list = canonicals.entry(variant).or_default();
        if !list.contains(&canonical) {
            list.push(canonical);
        }
    }
    known.extend(data_lines(GIVEN_NAMES_TXT).filter_map(normalised));
    Tables { canonicals, has_variants, known }
}

/// The canonical forms a short form or spelling stands for ("ALFIE" → `["ALFRED"]`,
/// "CHARLIE" → `["CHARLES", "CHARLOTTE"]`), at most `MAX_CANONICALS`; empty for other names.
pub fn canonical_forms(name: &str) -> &'static [String] {
    TABLES.canonical_forms(name)
}

/// Whether some short form or spelling points at this name ("ALFRED", "KATHERINE").
pub fn has_variants(name: &str) -> bool {
    TABLES.has_variants.contains(name)
}

/// Whether this is a known given name: a different real name, not a typo, when one edit away.
pub fn is_known_given_name(name: &str) -> bool {
    TABLES.known.contains(name)
}

/// Every known given name, in no particular order.
pub(crate) fn known_given_names() -> impl Iterator<Item = &'static str> {
    TABLES.known.iter().map(String::as_str)
}

/// Whether two normalised given names are the same name by the table: equal, one a form of the
/// other, or both forms of one name ("LIZ" and "BETH").
pub fn equivalent(a: &str, b: &str) -> bool {
    TABLES.equivalent(a, b)
}

impl Tables {
    fn canonical_forms(&self, name: &str) -> &[String] {
        self.canonicals.get(name).map(|v| &v[..v.len().min(MAX_CANONICALS)]).unwrap_or(&[])
    }

    fn equivalent(&self, a: &str, b: &str) -> bool {
        if a == b {
            return true;
        }
        let (ca, cb) = (self.canonical_forms(a), self.canonical_forms(b));
        ca.iter().any(|c| c == b) || cb.iter().any(|c| c == a) || ca.iter().any(|c| cb.contains(c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uk_short_forms_map_to_their_full_names() {
        for (short, full) in [
            ("ALFIE", "ALFRED"),
            ("OLLIE", "OLIVER"),
            ("EVIE", "EVE"),
            ("EVIE", "EVELYN"),
            ("LEXI", "ALEXANDRA"),
            ("LEXI", "ALEXIS"),
            ("FREDDIE", "FREDERICK"),
            ("CHARLIE", "CHARLES"),
            ("CHARLIE", "CHARLOTTE"),
            ("MADDIE", "MADISON"),
            ("IZZY", "ISABELLA"),
            ("IZZY", "ISABELLE"),
            ("BELLA", "ISABELLA"),
            ("ARCHIE", "ARCHIBALD"),
            ("HARRY", "HENRY"),
            ("HARRY", "HAROLD"),
            ("JACK", "JOHN"),
            ("LIZ", "ELIZABETH"),
            ("BETH", "ELIZABETH"),
            ("BETTY", "ELIZABETH"),
            ("KATE", "CATHERINE"),
            ("KATIE", "CATHERINE"),
            ("SAM", "SAMUEL"),
            ("ALEX", "ALEXANDER"),
            ("TOM", "THOMAS"),
            ("WILL", "WILLIAM"),
            ("JOSH", "JOSHUA"),
            ("BEN", "BENJAMIN"),
            ("DAN", "DANIEL"),
            ("JIM", "JAMES"),
            ("MIKE", "MICHAEL"),
            ("MOHAMMED", "MUHAMMAD"),
        ] {
            assert!(equivalent(short, full), "{short} -> {full}");
        }
    }

    #[test]
    fn two_short_forms_of_one_name_are_equivalent() {
        assert!(equivalent("LIZ", "BETH"));
        assert!(equivalent("KATHERINE", "CATHERINE"));
    }

    #[test]
    fn distinct_names_often_given_to_twins_are_not_equivalent() {
        for (a, b) in [("JACK", "JAKE"), ("ELLA", "ELLIE"), ("MOLLY", "MAISIE"), ("ALFIE", "FREDDIE")] {
            assert!(!equivalent(a, b), "{a} / {b}");
        }
    }

    #[test]
    fn short_forms_in_us_and_other_english_usage_come_from_the_imported_list() {
        for (short, full) in
            [("CAIT", "CAITLIN"), ("JENN", "JENNIFER"), ("ZAKK", "ZACHARY"), ("STEFFI", "STEPHANIE"), ("JEM", "JAMES")]
        {
            assert!(equivalent(short, full), "{short} -> {full}");
            assert!(is_known_given_name(short), "{short} is a name, not a typo");
        }
    }

    /// The twin rule, over the whole import: no two common children's names (twins' names among
    /// them) are linked by an imported row; every such link is one of our own, made by hand.
    #[test]
    fn the_imported_list_links_no_two_common_childrens_names() {
        let own = load(&[NICKNAMES_CSV]);
        let common: Vec<String> = data_lines(GIVEN_NAMES_TXT).filter_map(normalised).collect();
        let mut linked_by_import = Vec::new();
        for (i, a) in common.iter().enumerate() {
            for b in &common[i + 1..] {
                if TABLES.equivalent(a, b) && !own.equivalent(a, b) {
                    linked_by_import.push(format!("{a}/{b}"));
                }
            }
        }
        assert!(linked_by_import.is_empty(), "{linked_by_import:?}");
    }

    /// Names that are names in their own right stay apart, even where the source calls one a
    /// short form of the other.
    #[test]
    fn names_in_their_own_right_are_not_imported_as_short_forms() {
        for (a, b) in
            [("CARL", "CHARLES"), ("MARK", "MARCUS"), ("MICAH", "MICHAEL"), ("ERIN", "AARON"), ("JILL", "JULIA")]
        {
            assert!(!equivalent(a, b), "{a} / {b}");
        }
    }

    #[test]
    fn known_names_include_both_tables() {
        assert!(is_known_given_name("JAKE"));
        assert!(is_known_given_name("OLIVIA"));
        assert!(is_known_given_name("LEXI"));
        assert!(!is_known_given_name("JAKC"));
    }

    #[test]
    fn canonical_expansion_is_bounded() {
        assert!(TABLES.canonicals.values().all(|v| !v.is_empty()));
        assert!(canonical_forms("HARRY").len() <= MAX_CANONICALS);
        assert!(canonical_forms("OLIVIA").is_empty());
    }
}
