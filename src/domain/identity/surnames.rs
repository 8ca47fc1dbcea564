//! The dictionary of short family names (2–4 letters), compiled in from `family_names_short.txt`
//! and parsed once on first use. It tells a typo of a short family name ("Hlal") from another
//! family one letter away ("Hill" for "Hall"); docs/matching.md has the numbers behind it.

use std::collections::HashSet;
use std::sync::LazyLock;

/// One name a line; see the file's header for its sources and licences.
const SHORT_FAMILY_NAMES_TXT: &str = include_str!("family_names_short.txt");

/// The longest family name the dictionary holds.
pub(crate) const MAX_SHORT_FAMILY_NAME_LEN: usize = 4;

static SHORT_FAMILY_NAMES: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    SHORT_FAMILY_NAMES_TXT.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect()
});

/// Whether a normalised family name of at most four letters is a real surname.
pub fn is_known_short_family_name(name: &str) -> bool {
    SHORT_FAMILY_NAMES.contains(name)
}

/// Every short family name in the dictionary, in no particular order.
pub(crate) fn known_short_family_names() -> impl Iterator<Item = &'static str> {
    SHORT_FAMILY_NAMES.iter().copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_short_surnames_are_known_and_typos_are_not() {
        for name in ["HALL", "HILL", "KHAN", "KAHN", "LEE", "COX", "KAUR", "BIBI", "WOOD"] {
            assert!(is_known_short_family_name(name), "{name}");
        }
        for typo in ["HLAL", "KHNA", "WODO", "HLL"] {
            assert!(!is_known_short_family_name(typo), "{typo}");
        }
    }

    #[test]
    fn the_dictionary_holds_short_upper_case_names_only() {
        assert!(SHORT_FAMILY_NAMES.len() > 6_000);
        assert!(
            SHORT_FAMILY_NAMES.iter().all(
                |n| (2..=MAX_SHORT_FAMILY_NAME_LEN).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_uppercase())
            )
        );
    }
}
