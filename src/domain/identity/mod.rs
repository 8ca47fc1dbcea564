//! Identity: from raw identifiers to validated types, normalised names, match keys,
//! pseudonyms and a tier. Pure: no I/O, no clock (callers pass `today`), no global state but
//! the compiled-in name tables. See docs/matching.md for the scheme and its measured quality.
//!
//! Flow: `RawSubject` → `Subject::parse` → `holding_keys` / `lookup_keys` → `Pseudonymiser`
//! → (the index counts holders per pseudonym) → `Evidence` → `assess` → `Assessment`.

mod assess;
mod error;
mod identifiers;
mod keys;
mod names;
mod nicknames;
mod pseudonym;
mod subject;
mod surnames;

#[cfg(test)]
mod tests;

pub use assess::{Agreement, Assessment, Evidence, HOLDINGS_PER_CHILD, POSSIBLE_BITS, PROBABLE_BITS, Tier, assess};
pub use error::{FieldError, Invalid};
pub use identifiers::{DateOfBirth, ExpectedDate, NhsNumber, Postcode, Upn, UpnKind};
pub use keys::{
    KEY_FAMILY, KeyKind, LookupOptions, MatchKey, Variant, expected_birth_keys, holding_keys, lookup_keys,
    lookup_keys_with, newborn_keys,
};
pub use names::{MAX_NAME_CHARS, NormalisedName, family_barrels, normalise_name, phonetic};
pub use nicknames::{canonical_forms, equivalent, has_variants, is_known_given_name};
pub use pseudonym::{IndexKey, IndexSecret, KeyId, Pseudonym, Pseudonymiser};
pub use subject::{FieldsPresent, KeyUse, MAX_CHILD_AGE, MAX_LISTED_NAMES, RawSubject, Subject, SubjectRole};
pub use surnames::is_known_short_family_name;
