//! Match keys: the canonical, domain-separated combinations of fields that the index hashes.
//! Holdings store a canonical set plus tolerance keys (each name's deletion neighbourhood, the
//! date with one part left out); lookups add structural variants (swaps, short forms) on the fly.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

use super::identifiers::{DateOfBirth, ExpectedDate, compact_date, date_from_parts};
use super::names::{MAX_TYPO_NAME_LEN, deletion_neighbourhood, family_barrels, for_each_one_edit, phonetic};
use super::nicknames::{canonical_forms, equivalent, has_variants, is_known_given_name, known_given_names};
use super::subject::{FieldsPresent, Subject, SubjectRole};
use super::surnames::{MAX_SHORT_FAMILY_NAME_LEN, is_known_short_family_name, known_short_family_names};

/// Version byte inside every key's material; a new scheme gets a new byte and new pseudonyms.
const MATERIAL_VERSION: u8 = 1;

/// The generation of key kinds a holding is written with. Family 1 stored no tolerance keys
/// (lookups asked every one-edit variant instead); family 2 (#21) stores each name's deletion
/// neighbourhood and the date with one part left out; family 3 adds the given name's
/// neighbourhood with the family name's first and last letters and with each barrel or former
/// family name, so two small errors at once meet from either side. The store records each
/// holding's family, so lookups keep asking family 1's variants while any holding still has only
/// its keys; a family-2 holding lacks only family 3's additions until its holder's next sync
/// re-keys it.
pub const KEY_FAMILY: u8 = 3;

/// Most other given names and alternative family names turned into keys for one holding: a
/// few cover nearly every real record and keep the stored count near 10.
const MAX_OTHER_GIVEN_KEYS: usize = 2;
const MAX_ALT_FAMILY_KEYS: usize = 3;

/// Family names shorter than this get one-edit variants as weak `SimilarFamilyName` when both
/// names are real surnames (`family_edit_variant`).
const MIN_FAMILY_TYPO_LEN: usize = 5;

/// The kinds of match key. The numeric ids and names are stable: they are stored and they
/// feed key derivation, so never renumber or rename one; add new kinds at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[repr(u8)]
pub enum KeyKind {
    /// The NHS number: unique by design, a strong key on its own.
    NhsNumber = 1,
    /// A permanent UPN: unique by design, a strong key on its own.
    Upn = 2,
    /// A temporary UPN with the birth year: weak, it is replaced once the permanent UPN is known.
    TemporaryUpnBirthYear = 3,
    /// Given name + family name + date of birth, exactly as normalised.
    NameDob = 4,
    /// Double Metaphone of given and family name + date of birth: survives spelling variants.
    PhoneticNameDob = 5,
    /// Canonical form of a given name that has short forms or is one (Alfie → ALFRED; Alfred →
    /// ALFRED) + family name + date of birth.
    CanonicalNameDob = 6,
    /// Another given name (a middle name) + family name + date of birth.
    OtherGivenNameDob = 7,
    /// Given name + one barrel of a double-barrelled family name, or a former family name, + DOB.
    AltFamilyNameDob = 8,
    /// Given name + date of birth: survives a change of family name.
    GivenNameDob = 9,
    /// Family name + date of birth + first initial: weak, twins share it.
    FamilyDobInitial = 10,
    /// Postcode district + date of birth + phonetic family name: weak, families move.
    DistrictDobFamily = 11,
    /// NHS number + date of birth: lets a lookup that has no names still check the date.
    NhsNumberDob = 12,
    /// Permanent UPN + date of birth: the same check for a lookup by UPN.
    UpnDob = 13,
    /// An unborn child: one of the mother's (or another carer's) exact keys + the week of the
    /// expected date. A newborn looked up with that carer meets it through its date of birth.
    ExpectedBirth = 14,
    /// One string of the given name's deletion neighbourhood (the name, or the name less one
    /// letter) + family name + date of birth; the holder's given name is not a known name.
    GivenDeletionDob = 15,
    /// The same, where the holder's given name is a known name: one edit from another known
    /// name is then "similar" (Jack/Jake, maybe a twin), not a typo.
    KnownGivenDeletionDob = 16,
    /// One string of the family name's deletion neighbourhood + given name + date of birth; the
    /// holder's family name is not a short real surname.
    FamilyDeletionDob = 17,
    /// The same, where the holder's family name is a short real surname (Hall: Hill is another
    /// family, not a typo).
    KnownFamilyDeletionDob = 18,
    /// Given name + family name + two of the three parts of the date of birth (year and month,
    /// year and day, or month and day): a date with one part mistyped.
    NamePartialDob = 19,
    /// One string of the given name's deletion neighbourhood + the family name's first and last
    /// letters + date of birth; the holder's given name is not a known name. A typo in each name
    /// (key family 3).
    GivenDeletionFamilyEndsDob = 20,
    /// The same, where the holder's given name is a known name.
    KnownGivenDeletionFamilyEndsDob = 21,
    /// One string of the given name's deletion neighbourhood + one barrel of the holder's
    /// double-barrelled family name, or a former family name, + date of birth; the holder's given
    /// name is not a known name. A typo with the barrel on the holder's side (key family 3).
    GivenDeletionAltFamilyDob = 22,
    /// The same, where the holder's given name is a known name.
    KnownGivenDeletionAltFamilyDob = 23,
}

impl KeyKind {
    pub const ALL: [KeyKind; 23] = [
        KeyKind::NhsNumber,
        KeyKind::Upn,
        KeyKind::TemporaryUpnBirthYear,
        KeyKind::NameDob,
        KeyKind::PhoneticNameDob,
        KeyKind::CanonicalNameDob,
        KeyKind::OtherGivenNameDob,
        KeyKind::AltFamilyNameDob,
        KeyKind::GivenNameDob,
        KeyKind::FamilyDobInitial,
        KeyKind::DistrictDobFamily,
        KeyKind::NhsNumberDob,
        KeyKind::UpnDob,
        KeyKind::ExpectedBirth,
        KeyKind::GivenDeletionDob,
        KeyKind::KnownGivenDeletionDob,
        KeyKind::FamilyDeletionDob,
        KeyKind::KnownFamilyDeletionDob,
        KeyKind::NamePartialDob,
        KeyKind::GivenDeletionFamilyEndsDob,
        KeyKind::KnownGivenDeletionFamilyEndsDob,
        KeyKind::GivenDeletionAltFamilyDob,
        KeyKind::KnownGivenDeletionAltFamilyDob,
    ];

    pub fn id(self) -> u8 {
        self as u8
    }

    pub fn from_id(id: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.id() == id)
    }

    /// Short stable name, used in key derivation and in stored data.
    pub fn name(self) -> &'static str {
        match self {
            KeyKind::NhsNumber => "nhs-number",
            KeyKind::Upn => "upn",
            KeyKind::TemporaryUpnBirthYear => "temporary-upn-birth-year",
            KeyKind::NameDob => "name-dob",
            KeyKind::PhoneticNameDob => "phonetic-name-dob",
            KeyKind::CanonicalNameDob => "canonical-name-dob",
            KeyKind::OtherGivenNameDob => "other-given-name-dob",
            KeyKind::AltFamilyNameDob => "alt-family-name-dob",
            KeyKind::GivenNameDob => "given-name-dob",
            KeyKind::FamilyDobInitial => "family-dob-initial",
            KeyKind::DistrictDobFamily => "district-dob-family",
            KeyKind::NhsNumberDob => "nhs-number-dob",
            KeyKind::UpnDob => "upn-dob",
            KeyKind::ExpectedBirth => "expected-birth",
            KeyKind::GivenDeletionDob => "given-deletion-dob",
            KeyKind::KnownGivenDeletionDob => "known-given-deletion-dob",
            KeyKind::FamilyDeletionDob => "family-deletion-dob",
            KeyKind::KnownFamilyDeletionDob => "known-family-deletion-dob",
            KeyKind::NamePartialDob => "name-partial-dob",
            KeyKind::GivenDeletionFamilyEndsDob => "given-deletion-family-ends-dob",
            KeyKind::KnownGivenDeletionFamilyEndsDob => "known-given-deletion-family-ends-dob",
            KeyKind::GivenDeletionAltFamilyDob => "given-deletion-alt-family-dob",
            KeyKind::KnownGivenDeletionAltFamilyDob => "known-given-deletion-alt-family-dob",
        }
    }

    /// The fields (in whole or in part) that this kind of key is built from.
    pub fn covers(self) -> FieldsPresent {
        const G: u16 = FieldsPresent::GIVEN_NAME;
        const F: u16 = FieldsPresent::FAMILY_NAME;
        const D: u16 = FieldsPresent::DATE_OF_BIRTH;
        FieldsPresent::from_bits(match self {
            KeyKind::NhsNumber => FieldsPresent::NHS_NUMBER,
            KeyKind::Upn => FieldsPresent::UPN,
            KeyKind::TemporaryUpnBirthYear => FieldsPresent::TEMPORARY_UPN | D,
            KeyKind::NameDob
            | KeyKind::PhoneticNameDob
            | KeyKind::CanonicalNameDob
            | KeyKind::FamilyDobInitial
            | KeyKind::GivenDeletionDob
            | KeyKind::KnownGivenDeletionDob
            | KeyKind::FamilyDeletionDob
            | KeyKind::KnownFamilyDeletionDob
            | KeyKind::NamePartialDob
            | KeyKind::GivenDeletionFamilyEndsDob
            | KeyKind::KnownGivenDeletionFamilyEndsDob => G | F | D,
            KeyKind::OtherGivenNameDob => G | FieldsPresent::OTHER_GIVEN_NAMES | F | D,
            KeyKind::AltFamilyNameDob
            | KeyKind::GivenDeletionAltFamilyDob
            | KeyKind::KnownGivenDeletionAltFamilyDob => G | F | FieldsPresent::FORMER_FAMILY_NAMES | D,
            KeyKind::GivenNameDob => G | D,
            KeyKind::DistrictDobFamily => FieldsPresent::POSTCODE | D | F,
            KeyKind::NhsNumberDob => FieldsPresent::NHS_NUMBER | D,
            KeyKind::UpnDob => FieldsPresent::UPN | D,
            KeyKind::ExpectedBirth => FieldsPresent::EXPECTED_DATE,
        })
    }

    /// Kinds that meet only two small errors at once (key family 3): a record without such
    /// errors meets the holding through the other kinds and does not ask them all.
    pub fn stored_for_two_errors(self) -> bool {
        matches!(
            self,
            KeyKind::GivenDeletionFamilyEndsDob
                | KeyKind::KnownGivenDeletionFamilyEndsDob
                | KeyKind::GivenDeletionAltFamilyDob
                | KeyKind::KnownGivenDeletionAltFamilyDob
        )
    }

    /// Strong keys identify one child by themselves: NHS number and permanent UPN, alone or
    /// with the date of birth.
    pub fn is_strong(self) -> bool {
        matches!(self, KeyKind::NhsNumber | KeyKind::Upn | KeyKind::NhsNumberDob | KeyKind::UpnDob)
    }
}

/// How a lookup key was derived from what the asker typed. Holdings store only `Exact` keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Variant {
    /// The asker's values as given.
    Exact,
    /// Given and family name exchanged.
    NamesSwapped,
    /// Given and family name exchanged, and one of them one edit away (a typo, never two known
    /// names): two small errors at once.
    NamesSwappedTypo,
    /// The asker's given name one edit away, with one barrel or a former name of its family
    /// name ("Rbuy Demo-Fletcher" for Ruby Demo), or its whole family name against the holder's
    /// barrel or former name ("Rbuy Demo" for Ruby Demo-Fletcher): two small errors at once.
    GivenNameTypoAltFamily,
    /// The asker's given name one edit away and its family name one with the same first and last
    /// letters ("Rbuy Fletcjer" for Ruby Fletcher): a typo in each name, two small errors at once.
    TypoInEachName,
    /// Day and month of the date of birth exchanged (both 12 or under).
    DayMonthSwapped,
    /// One digit of the date of birth changed, or two adjacent digits exchanged.
    DateTypo,
    /// The asker's given name replaced by a full form it is short for (Alfie → Alfred), or a
    /// full form looked up among holders' short forms.
    Nickname,
    /// The asker's given name one edit away, where at least one side is not a known name.
    GivenNameTypo,
    /// The asker's given name one edit away from another known name (Jack/Jake): maybe a twin.
    SimilarGivenName,
    /// The asker's family name one edit away (names of five letters or more).
    FamilyNameTypo,
    /// A short family name one edit away (Hall/Hull): as likely another family as a typo.
    SimilarFamilyName,
    /// One barrel of the asker's double-barrelled family name.
    FamilyNamePart,
    /// One of the asker's former family names.
    FormerFamilyName,
    /// One of the asker's other (middle) given names in place of the first.
    OtherGivenName,
    /// One part of the asker's two-part first name (JUN of "Jun-Jie") in place of the whole:
    /// weaker than a listed middle name, since twins are given names that share a part.
    GivenNamePart,
    /// A newborn's date of birth within the weeks around a pre-birth record's expected date.
    NearExpectedDate,
}

impl Variant {
    /// Whether the asker's given and family names were asked the other way round.
    pub fn names_swapped(self) -> bool {
        matches!(self, Variant::NamesSwapped | Variant::NamesSwappedTypo)
    }

    /// Whether the variant composes two small errors (docs/matching.md, "Two small errors").
    pub fn two_errors(self) -> bool {
        matches!(self, Variant::NamesSwappedTypo | Variant::GivenNameTypoAltFamily | Variant::TypoInEachName)
    }
}

/// The canonical, domain-separated bytes that one key hashes. Never printed.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct MatchKey {
    kind: KeyKind,
    variant: Variant,
    material: Vec<u8>,
}

impl fmt::Debug for MatchKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MatchKey")
            .field("kind", &self.kind)
            .field("variant", &self.variant)
            .field("material", &"***")
            .finish()
    }
}

impl MatchKey {
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    pub fn variant(&self) -> Variant {
        self.variant
    }

    /// The bytes to hash. Only `Pseudonymiser` should need them.
    pub fn material(&self) -> &[u8] {
        &self.material
    }

    /// The role the key was built for, read back from its material.
    pub fn role(&self) -> Option<SubjectRole> {
        let marker = *self.material.get(3)?;
        SubjectRole::ALL.into_iter().find(|r| r.marker() == marker)
    }
}

/// Field tags inside key material: two fields can never be confused for one another.
mod tag {
    pub const NHS: u8 = b'N';
    pub const UPN: u8 = b'U';
    pub const GIVEN: u8 = b'G';
    pub const FAMILY: u8 = b'F';
    pub const GIVEN_SOUND: u8 = b'g';
    pub const FAMILY_SOUND: u8 = b'f';
    /// A family name's first and last letters.
    pub const FAMILY_ENDS: u8 = b'E';
    pub const DOB: u8 = b'D';
    pub const YEAR: u8 = b'Y';
    pub const MONTH: u8 = b'M';
    pub const DAY: u8 = b'd';
    /// A string of a name's deletion neighbourhood: never confused with a whole name.
    pub const GIVEN_DELETION: u8 = b'h';
    pub const FAMILY_DELETION: u8 = b'e';
    pub const INITIAL: u8 = b'I';
    pub const DISTRICT: u8 = b'P';
    pub const CARER_KEY: u8 = b'K';
    pub const WEEK: u8 = b'W';
}

/// Collects keys for one subject, de-duplicating by material (the first variant wins, so
/// callers add the most exact derivations first).
struct KeySet {
    role: SubjectRole,
    keys: Vec<MatchKey>,
    /// Hash of each material → index of the first key with it. A lookup makes about a
    /// thousand keys; hashing once beats storing a second copy of every material.
    seen: HashMap<u64, usize, BuildHasherDefault<QuickHasher>>,
}

/// A multiply-rotate hash for de-duplicating a lookup's own key materials: several times
/// faster than SipHash on short inputs, and flooding resistance buys nothing here (the
/// inputs are one asker's own variants, a thousand at most).
#[derive(Default)]
struct QuickHasher(u64);

impl Hasher for QuickHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            self.write_u64(u64::from_le_bytes(chunk.try_into().unwrap_or_default()));
        }
        let mut tail = [0u8; 8];
        tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
        self.write_u64(u64::from_le_bytes(tail) ^ bytes.len() as u64);
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl KeySet {
    fn new(role: SubjectRole, capacity: usize) -> Self {
        Self {
            role,
            keys: Vec::with_capacity(capacity),
            seen: HashMap::with_capacity_and_hasher(capacity, Default::default()),
        }
    }

    /// Builds `"CL" version role kind (tag len:u16 bytes)*`. Every key names its role, its kind
    /// and each field, so no two different combinations can produce the same bytes.
    fn add(&mut self, kind: KeyKind, variant: Variant, fields: &[(u8, &[u8])]) {
        let len: usize = fields.iter().map(|(_, v)| v.len() + 3).sum();
        let mut material = Vec::with_capacity(5 + len);
        material.extend_from_slice(b"CL");
        material.push(MATERIAL_VERSION);
        material.push(self.role.marker());
        material.push(kind.id());
        for (tag, value) in fields {
            // Names are at most a few hundred bytes; saturate rather than wrap if ever longer.
            let n = u16::try_from(value.len()).unwrap_or(u16::MAX);
            material.push(*tag);
            material.extend_from_slice(&n.to_be_bytes());
            material.extend_from_slice(&value[..usize::from(n)]);
        }
        let mut hasher = QuickHasher::default();
        hasher.write(&material);
        let index = self.keys.len();
        let first = *self.seen.entry(hasher.finish()).or_insert(index);
        // Equal hashes of different materials (vanishingly rare) keep both keys.
        if first != index && self.keys.get(first).is_some_and(|k| k.material == material) {
            return;
        }
        self.keys.push(MatchKey { kind, variant, material });
    }

    fn name_dob(&mut self, kind: KeyKind, v: Variant, given: &str, family: &str, dob: &[u8]) {
        let (g, f) = match kind {
            KeyKind::PhoneticNameDob => (tag::GIVEN_SOUND, tag::FAMILY_SOUND),
            _ => (tag::GIVEN, tag::FAMILY),
        };
        self.add(kind, v, &[(g, given.as_bytes()), (f, family.as_bytes()), (tag::DOB, dob)]);
    }

    /// NHS number or permanent UPN with the date of birth.
    fn strong_dob(&mut self, kind: KeyKind, v: Variant, id: &[u8], dob: &[u8]) {
        let id_tag = if kind == KeyKind::NhsNumberDob { tag::NHS } else { tag::UPN };
        self.add(kind, v, &[(id_tag, id), (tag::DOB, dob)]);
    }

    fn given_dob(&mut self, v: Variant, given: &str, dob: &[u8]) {
        self.add(KeyKind::GivenNameDob, v, &[(tag::GIVEN, given.as_bytes()), (tag::DOB, dob)]);
    }

    fn family_dob_initial(&mut self, v: Variant, family: &str, dob: &[u8], initial: u8) {
        self.add(
            KeyKind::FamilyDobInitial,
            v,
            &[(tag::FAMILY, family.as_bytes()), (tag::DOB, dob), (tag::INITIAL, &[initial])],
        );
    }
}

/// The normalised strings a subject's keys are built from, computed once per subject.
struct Forms {
    given: Option<String>,
    family: Option<String>,
    given_sound: Option<String>,
    family_sound: Option<String>,
    /// The family name's first and last letters: a typo inside the name keeps them.
    family_ends: Option<String>,
    dob: Option<[u8; 8]>,
    date: Option<DateOfBirth>,
    district: Option<String>,
    /// Other given names, and the parts of a multi-part given name, other than `given` itself.
    others: Vec<String>,
    /// Those of `others` that are only a part of the given name, never a listed other name.
    parts_only: Vec<String>,
    /// Barrels of a double-barrelled family name, then former family names.
    barrels: Vec<String>,
    formers: Vec<String>,
}

impl Forms {
    fn of(subject: &Subject) -> Self {
        let given = subject.given_name().map(|n| n.whole().to_owned());
        let family = subject.family_name().map(|n| n.whole().to_owned());
        let parts: Vec<String> =
            subject.given_name().filter(|n| n.parts().len() > 1).map(|n| n.parts().to_vec()).unwrap_or_default();
        let listed: Vec<String> = subject.other_given_names().iter().map(|n| n.whole().to_owned()).collect();
        let parts_only = parts.iter().filter(|p| !listed.contains(p)).cloned().collect();
        let mut others = parts;
        others.extend(listed);
        // Sorted so the order names were typed in never changes which keys are kept.
        others.retain(|o| o.len() >= 2 && Some(o) != given.as_ref());
        others.sort();
        others.dedup();
        others.truncate(MAX_OTHER_GIVEN_KEYS);

        let mut barrels = subject.family_name().map(family_barrels).unwrap_or_default();
        barrels.retain(|b| Some(b) != family.as_ref());
        let mut formers: Vec<String> = subject
            .former_family_names()
            .iter()
            .map(|n| n.whole().to_owned())
            .filter(|n| Some(n) != family.as_ref() && !barrels.contains(n))
            .collect();
        formers.sort();
        formers.dedup();
        // Barrels first: a double-barrelled name used on one side is the commoner case.
        barrels.truncate(MAX_ALT_FAMILY_KEYS);
        formers.truncate(MAX_ALT_FAMILY_KEYS - barrels.len());

        Self {
            given_sound: given.as_deref().and_then(phonetic),
            family_sound: family.as_deref().and_then(phonetic),
            family_ends: family.as_deref().map(first_and_last_letters),
            given,
            family,
            dob: subject.date_of_birth().map(DateOfBirth::compact),
            date: subject.date_of_birth().copied(),
            district: subject.postcode().map(|p| p.outward().to_owned()),
            others,
            parts_only,
            barrels,
            formers,
        }
    }

    /// The variant a lookup asks one of `others` under: a part of the first name is weaker
    /// evidence than a listed other name (docs/matching.md, "Given names in parts").
    fn other_variant(&self, other: &str) -> Variant {
        if self.parts_only.iter().any(|p| p == other) { Variant::GivenNamePart } else { Variant::OtherGivenName }
    }
}

/// The keys stored for a holding: the canonical forms (about 7–12 for a typical child) and the
/// tolerance keys (each name's deletion neighbourhood, the date with one part left out: about 17
/// more), so that two records one slip apart meet from either side with a few dozen probes.
pub fn holding_keys(subject: &Subject) -> Vec<MatchKey> {
    let forms = Forms::of(subject);
    let mut set = KeySet::new(subject.role(), 40);
    canonical_keys(subject, &forms, &mut set, true);
    if let (Some(g), Some(f), Some(d)) = (&forms.given, &forms.family, &forms.dob) {
        stored_deletion_keys(&mut set, &forms, g, f, d);
    }
    if let (Some(g), Some(f), Some(date)) = (&forms.given, &forms.family, forms.date) {
        partial_date_keys(&mut set, Variant::Exact, g, f, date);
    }
    set.keys
}

/// Every string of every known given name's deletion neighbourhood: a lookup asks the
/// known-name deletion kind only for its strings that a known name could have stored.
static KNOWN_GIVEN_DELETIONS: LazyLock<HashSet<String>> =
    LazyLock::new(|| known_given_names().flat_map(deletion_neighbourhood).collect());
/// The same for the short real surnames.
static KNOWN_FAMILY_DELETIONS: LazyLock<HashSet<String>> =
    LazyLock::new(|| known_short_family_names().flat_map(deletion_neighbourhood).collect());

/// Whether a family name is a short real surname (Hall, Khan): one edit from another such name
/// is as likely another family as a typo (docs/matching.md, "Short family names").
fn is_short_real_surname(family: &str) -> bool {
    family.len() <= MAX_SHORT_FAMILY_NAME_LEN && is_known_short_family_name(family)
}

/// Whose deletion neighbourhood a key holds and what it is paired with. Each has a plain and a
/// "known" kind (the holder's name is a known name: one bit, never the name); a shared string
/// reads as a typo or, when both names are known names, as "similar". The last two pair the given
/// name's neighbourhood with less than the whole family name (key family 3): they meet only two
/// small errors at once, so they are never more than `possible`.
#[derive(Clone, Copy)]
enum Neighbourhood {
    /// The given name's, with the whole family name and the date.
    Given,
    /// The family name's, with the whole given name and the date.
    Family,
    /// The given name's, with the family name's first and last letters and the date: a typo in
    /// each name (a typo inside the family name keeps its ends).
    GivenWithFamilyEnds,
    /// The given name's, with one barrel or a former family name and the date: held for each of
    /// the holder's, asked with the asker's whole family name.
    GivenWithAltFamily,
}

impl Neighbourhood {
    fn is_given(self) -> bool {
        !matches!(self, Neighbourhood::Family)
    }

    /// Whether `name` is a name in its own right, so one edit from it may be another child.
    fn is_known(self, name: &str) -> bool {
        if self.is_given() { is_known_given_name(name) } else { is_short_real_surname(name) }
    }

    /// The kind of a neighbourhood whose holder's name is a known name (`known`) or not.
    fn kind(self, known: bool) -> KeyKind {
        match (self, known) {
            (Neighbourhood::Given, false) => KeyKind::GivenDeletionDob,
            (Neighbourhood::Given, true) => KeyKind::KnownGivenDeletionDob,
            (Neighbourhood::Family, false) => KeyKind::FamilyDeletionDob,
            (Neighbourhood::Family, true) => KeyKind::KnownFamilyDeletionDob,
            (Neighbourhood::GivenWithFamilyEnds, false) => KeyKind::GivenDeletionFamilyEndsDob,
            (Neighbourhood::GivenWithFamilyEnds, true) => KeyKind::KnownGivenDeletionFamilyEndsDob,
            (Neighbourhood::GivenWithAltFamily, false) => KeyKind::GivenDeletionAltFamilyDob,
            (Neighbourhood::GivenWithAltFamily, true) => KeyKind::KnownGivenDeletionAltFamilyDob,
        }
    }

    /// Every string a known name could have stored in this neighbourhood.
    fn known_deletions(self) -> &'static HashSet<String> {
        if self.is_given() { &KNOWN_GIVEN_DELETIONS } else { &KNOWN_FAMILY_DELETIONS }
    }

    fn typo(self) -> Variant {
        if self.is_given() { Variant::GivenNameTypo } else { Variant::FamilyNameTypo }
    }

    fn similar(self) -> Variant {
        if self.is_given() { Variant::SimilarGivenName } else { Variant::SimilarFamilyName }
    }

    /// A key of one string `s` of the neighbourhood, with what it is paired with (`other`) and
    /// the date.
    fn add_key(self, set: &mut KeySet, kind: KeyKind, v: Variant, s: &str, other: &str, d: &[u8]) {
        let (s, other) = (s.as_bytes(), other.as_bytes());
        let fields = match self {
            Neighbourhood::Given | Neighbourhood::GivenWithAltFamily => {
                [(tag::GIVEN_DELETION, s), (tag::FAMILY, other)]
            }
            Neighbourhood::Family => [(tag::GIVEN, other), (tag::FAMILY_DELETION, s)],
            Neighbourhood::GivenWithFamilyEnds => [(tag::GIVEN_DELETION, s), (tag::FAMILY_ENDS, other)],
        };
        set.add(kind, v, &[fields[0], fields[1], (tag::DOB, d)]);
    }
}

/// One probe of a deletion neighbourhood: the kind asked, the variant a hit reads as, the string.
type DeletionProbe = (KeyKind, Variant, String);

/// What a lookup asks of `name`'s deletion neighbourhood: every string under the plain kind as
/// `plain`, and under the known kind as `known` where a known name could have stored it
/// (`None`: the known kind is not asked). Nothing for a name too long to have them.
fn deletion_probes(hood: Neighbourhood, name: &str, plain: Variant, known: Option<Variant>) -> Vec<DeletionProbe> {
    if name.len() > MAX_TYPO_NAME_LEN {
        return Vec::new();
    }
    let mut probes = Vec::new();
    for s in deletion_neighbourhood(name) {
        if let Some(known) = known.filter(|_| hood.known_deletions().contains(&s)) {
            probes.push((hood.kind(true), known, s.clone()));
        }
        probes.push((hood.kind(false), plain, s));
    }
    probes
}

/// A holding's deletion keys: each name's neighbourhood with the other name and the date, and
/// the given name's with the family name's ends and with each barrel or former family name, in
/// the "known" kind when the holder's name is a known name.
fn stored_deletion_keys(set: &mut KeySet, forms: &Forms, g: &str, f: &str, d: &[u8]) {
    let mut pairs = vec![(Neighbourhood::Given, g, f), (Neighbourhood::Family, f, g)];
    if let Some(ends) = &forms.family_ends {
        pairs.push((Neighbourhood::GivenWithFamilyEnds, g, ends));
    }
    for alt in forms.barrels.iter().chain(&forms.formers) {
        pairs.push((Neighbourhood::GivenWithAltFamily, g, alt));
    }
    for (hood, name, other) in pairs {
        if name.len() <= MAX_TYPO_NAME_LEN {
            let kind = hood.kind(hood.is_known(name));
            for s in deletion_neighbourhood(name) {
                hood.add_key(set, kind, Variant::Exact, &s, other, d);
            }
        }
    }
}

/// What a lookup (or a newly registered holding) asks of the stored deletion keys. A shared
/// key means the two names are at most one edit apart; exact names meet through `name-dob`,
/// so a deletion agreement reads as a typo, or as "similar" when both names are known names
/// (Jack/Jake: maybe a twin), as the one-edit variants of key family 1 were tagged.
fn asked_deletion_keys(set: &mut KeySet, g: &str, f: &str, d: &[u8]) {
    for (hood, name, other) in [(Neighbourhood::Given, g, f), (Neighbourhood::Family, f, g)] {
        let known = if hood.is_known(name) { hood.similar() } else { hood.typo() };
        for (kind, v, s) in deletion_probes(hood, name, hood.typo(), Some(known)) {
            hood.add_key(set, kind, v, &s, other, d);
        }
    }
}

/// The most keys a lookup asks (key family 1's variants aside): the composed variants below
/// are added only while they fit, so a long double-barrelled name asks fewer of them.
pub const MAX_LOOKUP_KEYS: usize = 100;

/// The deletion keys of a composed variant `v` (two small errors at once): each neighbourhood
/// of `asked` (hood, name, what it is paired with). Only what reads as a typo is asked: two
/// different known names with another difference beside them is too weak to show. Each
/// neighbourhood is asked whole or not at all, and only while the lookup stays within
/// `MAX_LOOKUP_KEYS`.
fn asked_typo_keys(set: &mut KeySet, v: Variant, asked: &[(Neighbourhood, &str, &str)], d: &[u8]) {
    for &(hood, name, other) in asked {
        let known = (!hood.is_known(name)).then_some(v);
        let probes = deletion_probes(hood, name, v, known);
        if set.keys.len() + probes.len() <= MAX_LOOKUP_KEYS {
            probes.iter().for_each(|(kind, v, s)| hood.add_key(set, *kind, *v, s, other, d));
        }
    }
}

/// Both names with two of the three parts of the date: year and month, year and day, month
/// and day. A date with one part mistyped (one digit, two digits of one part exchanged) still
/// shares one of them; holdings store all three and a lookup asks all three.
fn partial_date_keys(set: &mut KeySet, v: Variant, g: &str, f: &str, date: DateOfBirth) {
    let d = date.compact();
    let (year, month, day) = (&d[..4], &d[4..6], &d[6..]);
    let (g, f) = ((tag::GIVEN, g.as_bytes()), (tag::FAMILY, f.as_bytes()));
    set.add(KeyKind::NamePartialDob, v, &[g, f, (tag::YEAR, year), (tag::MONTH, month)]);
    set.add(KeyKind::NamePartialDob, v, &[g, f, (tag::YEAR, year), (tag::DAY, day)]);
    set.add(KeyKind::NamePartialDob, v, &[g, f, (tag::MONTH, month), (tag::DAY, day)]);
}

/// A carer's keys that anchor an unborn child to them: exact identity, not the weaker blocks.
const EXPECTED_BIRTH_ANCHORS: [KeyKind; 3] = [KeyKind::NhsNumber, KeyKind::NameDob, KeyKind::PhoneticNameDob];

/// Births fall from about eight weeks before the expected date (premature) to three weeks
/// after it; a newborn's lookup asks every week in that window.
const BORN_WEEKS_BEFORE_EXPECTED: i64 = 8;
const BORN_WEEKS_AFTER_EXPECTED: i64 = 3;

/// Whole weeks since 1970-01-01 (a Thursday): a stable bucket for a date.
fn week_of(date: time::Date) -> i64 {
    i64::from(date.to_julian_day() - 2_440_588).div_euclid(7)
}

fn anchored_key(set: &mut KeySet, variant: Variant, anchor: &MatchKey, week: i64) {
    set.add(KeyKind::ExpectedBirth, variant, &[(tag::CARER_KEY, anchor.material()), (tag::WEEK, &week.to_be_bytes())]);
}

/// The keys of an unborn child on a pre-birth holding: each carer's anchor keys with the week
/// of the expected date. Child key space, so only a child's lookup can meet them.
pub fn expected_birth_keys(expected: &ExpectedDate, carers: &[Subject]) -> Vec<MatchKey> {
    let mut set = KeySet::new(SubjectRole::Child, 8);
    let week = week_of(expected.date());
    for carer in carers {
        for anchor in holding_keys(carer).iter().filter(|k| EXPECTED_BIRTH_ANCHORS.contains(&k.kind())) {
            anchored_key(&mut set, Variant::Exact, anchor, week);
        }
    }
    set.keys
}

/// What a baby under a year old, looked up with its carers, asks of pre-birth holdings: each
/// carer's anchors with every week in which its expected date could have fallen.
pub fn newborn_keys(child: &Subject, carers: &[Subject], today: time::Date) -> Vec<MatchKey> {
    let Some(dob) = child.date_of_birth().map(DateOfBirth::date) else { return Vec::new() };
    if (today - dob).whole_days() > 366 {
        return Vec::new();
    }
    let born = week_of(dob);
    let mut set = KeySet::new(SubjectRole::Child, 256);
    // The mother as the asker typed her, with the structural variants a lookup of her would ask
    // (short forms, swapped names, middle names): the pre-birth record holds her exact keys.
    let structural = LookupOptions { name_typos: false, date_typos: false, family_one_typos: false };
    for carer in carers {
        let anchors = lookup_keys_with(carer, structural);
        for anchor in anchors.iter().filter(|k| EXPECTED_BIRTH_ANCHORS.contains(&k.kind())) {
            for week in born - BORN_WEEKS_AFTER_EXPECTED..=born + BORN_WEEKS_BEFORE_EXPECTED {
                anchored_key(&mut set, Variant::NearExpectedDate, anchor, week);
            }
        }
    }
    set.keys
}

/// Which tolerance keys a lookup asks. `Default` asks the stored tolerance keys of the current
/// key family; the quality harness turns some off to measure what each one buys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LookupOptions {
    /// The deletion neighbourhood of each name (about one key per letter of each name).
    pub name_typos: bool,
    /// The date with one part left out (three keys); without both names, NHS number or UPN with
    /// every date one keystroke away.
    pub date_typos: bool,
    /// Key family 1's variants, for holdings not yet re-keyed: every string one edit from each
    /// name and every date one keystroke away, against the stored exact keys (about 800 keys).
    pub family_one_typos: bool,
}

impl Default for LookupOptions {
    fn default() -> Self {
        Self { name_typos: true, date_typos: true, family_one_typos: false }
    }
}

impl LookupOptions {
    /// What a lookup asks while some holdings still carry only key family 1's keys.
    pub fn with_family_one() -> Self {
        Self { family_one_typos: true, ..Self::default() }
    }
}

/// The keys a lookup queries: the canonical keys plus variants, each tagged with how it was
/// derived. Variants are never stored.
pub fn lookup_keys(subject: &Subject) -> Vec<MatchKey> {
    lookup_keys_with(subject, LookupOptions::default())
}

/// `lookup_keys` with a choice of which variant families to generate.
pub fn lookup_keys_with(subject: &Subject, options: LookupOptions) -> Vec<MatchKey> {
    let forms = Forms::of(subject);
    let mut set = KeySet::new(subject.role(), 1024);
    canonical_keys(subject, &forms, &mut set, false);
    let Forms { given, family, given_sound, family_sound, dob, date, others, barrels, formers, .. } = &forms;

    if let (Some(g), Some(f), Some(d)) = (given, family, dob) {
        // Short forms: the asker's "Alfie" meets a holder's "Alfred"; "Alfred" meets "Alfie".
        // (Also meets holdings stored before a row was added to the table.)
        for c in canonical_forms(g) {
            set.name_dob(KeyKind::NameDob, Variant::Nickname, c, f, d);
        }
        // Middle names: the asker's first name may be the holder's middle name and vice versa.
        set.name_dob(KeyKind::OtherGivenNameDob, Variant::Exact, g, f, d);
        for o in others {
            let variant = forms.other_variant(o);
            set.name_dob(KeyKind::NameDob, variant, o, f, d);
            set.name_dob(KeyKind::OtherGivenNameDob, variant, o, f, d);
        }
        // One barrel or a former name on the asker's side, the whole name on the holder's, and
        // the asker's whole name against a holder's barrel or former name.
        for b in barrels {
            set.name_dob(KeyKind::NameDob, Variant::FamilyNamePart, g, b, d);
        }
        for former in formers {
            set.name_dob(KeyKind::NameDob, Variant::FormerFamilyName, g, former, d);
        }
        set.name_dob(KeyKind::AltFamilyNameDob, Variant::Exact, g, f, d);
        for b in barrels {
            set.name_dob(KeyKind::AltFamilyNameDob, Variant::FamilyNamePart, g, b, d);
        }
        for former in formers {
            set.name_dob(KeyKind::AltFamilyNameDob, Variant::FormerFamilyName, g, former, d);
        }
    }

    // Given and family name exchanged (a form filled in the wrong boxes).
    if let (Some(g), Some(f), Some(d)) = (given, family, dob)
        && g != f
    {
        let v = Variant::NamesSwapped;
        set.name_dob(KeyKind::NameDob, v, f, g, d);
        if let (Some(gs), Some(fs)) = (given_sound, family_sound) {
            set.name_dob(KeyKind::PhoneticNameDob, v, fs, gs, d);
        }
        set.given_dob(v, f, d);
        set.family_dob_initial(v, g, d, initial(f));
    }

    // Day and month exchanged (a date read the American way).
    if let Some(swapped) = date.and_then(day_month_swapped) {
        let v = Variant::DayMonthSwapped;
        strong_with_date(subject, &mut set, v, &swapped);
        if let (Some(g), Some(f)) = (given, family) {
            set.name_dob(KeyKind::NameDob, v, g, f, &swapped);
            if let (Some(gs), Some(fs)) = (given_sound, family_sound) {
                set.name_dob(KeyKind::PhoneticNameDob, v, gs, fs, &swapped);
            }
            set.family_dob_initial(v, f, &swapped, initial(g));
            // A short form and a swapped date together are common enough to look for.
            for c in canonical_set(g) {
                set.name_dob(KeyKind::CanonicalNameDob, v, c, f, &swapped);
            }
        }
        if let Some(g) = given {
            set.given_dob(v, g, &swapped);
        }
    }

    // A typo in either name: the stored deletion neighbourhoods, with the other name and the date.
    if let (true, Some(g), Some(f), Some(d)) = (options.name_typos, given, family, dob) {
        asked_deletion_keys(&mut set, g, f, d);
    }
    // A date with one part mistyped: both names with two of its three parts.
    if let (true, Some(g), Some(f), Some(date)) = (options.date_typos, given, family, *date) {
        partial_date_keys(&mut set, Variant::DateTypo, g, f, date);
    }
    // Without both names the partial-date keys cannot be asked: an NHS number or UPN with each
    // date one keystroke away keeps the date check tolerant.
    if let (true, Some(d), false) = (options.date_typos, dob, given.is_some() && family.is_some()) {
        for typo in date_typo_variants(d) {
            strong_with_date(subject, &mut set, Variant::DateTypo, &typo);
        }
    }
    // Two small errors at once: a typo in each name (inside the family name: its ends agree), a typo
    // with the names swapped, or with one barrel or a former family name on either side
    // (docs/matching.md, "Two small errors at once"). Last, so that they take only the room the
    // keys above leave within `MAX_LOOKUP_KEYS`, commonest first.
    if let (true, Some(g), Some(f), Some(d)) = (options.name_typos, given, family, dob) {
        if let Some(ends) = &forms.family_ends {
            asked_typo_keys(&mut set, Variant::TypoInEachName, &[(Neighbourhood::GivenWithFamilyEnds, g, ends)], d);
        }
        if g != f {
            let swapped = [(Neighbourhood::Given, f.as_str(), g.as_str()), (Neighbourhood::Family, g, f)];
            asked_typo_keys(&mut set, Variant::NamesSwappedTypo, &swapped, d);
        }
        let alt = Variant::GivenNameTypoAltFamily;
        asked_typo_keys(&mut set, alt, &[(Neighbourhood::GivenWithAltFamily, g, f)], d);
        for asked_alt in barrels.iter().chain(formers.iter()) {
            asked_typo_keys(&mut set, alt, &[(Neighbourhood::Given, g, asked_alt)], d);
        }
    }
    if options.family_one_typos {
        family_one_variants(subject, &forms, &mut set);
    }
    set.keys
}

/// Key family 1's tolerance: every one-edit variant of each name and every date one keystroke
/// away, asked against the exact keys of holdings written before family 2 (see `KEY_FAMILY`).
fn family_one_variants(subject: &Subject, forms: &Forms, set: &mut KeySet) {
    let Forms { given, family, given_sound, family_sound, dob, .. } = forms;
    if let (Some(g), Some(f), Some(d)) = (given, family, dob) {
        if g.len() <= MAX_TYPO_NAME_LEN {
            let known = is_known_given_name(g);
            for_each_one_edit(g, |v| {
                let variant = if known && is_known_given_name(v) && !equivalent(g, v) {
                    Variant::SimilarGivenName
                } else {
                    Variant::GivenNameTypo
                };
                set.name_dob(KeyKind::NameDob, variant, v, f, d);
            });
        }
        if f.len() <= MAX_TYPO_NAME_LEN {
            for_each_one_edit(f, |v| set.name_dob(KeyKind::NameDob, family_edit_variant(f, v), g, v, d));
        }
    }
    if let Some(d) = dob {
        for typo in date_typo_variants(d) {
            strong_with_date(subject, set, Variant::DateTypo, &typo);
            if let (Some(g), Some(f)) = (given, family) {
                set.name_dob(KeyKind::NameDob, Variant::DateTypo, g, f, &typo);
                if let (Some(gs), Some(fs)) = (given_sound, family_sound) {
                    set.name_dob(KeyKind::PhoneticNameDob, Variant::DateTypo, gs, fs, &typo);
                }
            }
        }
    }
}

/// How sure one edit between two family names is. Short family names sit among many real
/// neighbours (Hall, Hill, Ball, Bell): when both are real surnames the edit may well be another
/// family, and is tagged so; when either is no surname at all ("Hlal"), it is a typo, as for a
/// long name (the numbers: docs/matching.md, "Short family names").
fn family_edit_variant(asked: &str, other: &str) -> Variant {
    let real = |name: &str| name.len() > MAX_SHORT_FAMILY_NAME_LEN || is_known_short_family_name(name);
    if asked.len() >= MIN_FAMILY_TYPO_LEN || !(real(asked) && real(other)) {
        Variant::FamilyNameTypo
    } else {
        Variant::SimilarFamilyName
    }
}

/// The keys a holding stores. For a lookup (`holding = false`) the holder-only middle-name keys
/// are re-tagged: the asker's middle name meeting the holder's middle name is weaker evidence.
fn canonical_keys(subject: &Subject, forms: &Forms, set: &mut KeySet, holding: bool) {
    if let Some(nhs) = subject.nhs_number() {
        set.add(KeyKind::NhsNumber, Variant::Exact, &[(tag::NHS, nhs.digits())]);
        if let Some(d) = &forms.dob {
            set.strong_dob(KeyKind::NhsNumberDob, Variant::Exact, nhs.digits(), d);
        }
    }
    if let Some(upn) = subject.upn() {
        if upn.is_permanent() {
            set.add(KeyKind::Upn, Variant::Exact, &[(tag::UPN, upn.chars())]);
            if let Some(d) = &forms.dob {
                set.strong_dob(KeyKind::UpnDob, Variant::Exact, upn.chars(), d);
            }
        } else if let Some(d) = &forms.dob {
            // Never the temporary UPN alone: with the birth year it is still two fields.
            set.add(KeyKind::TemporaryUpnBirthYear, Variant::Exact, &[(tag::UPN, upn.chars()), (tag::YEAR, &d[..4])]);
        }
    }
    let Forms { given, family, given_sound, family_sound, dob, district, others, barrels, formers, .. } = forms;
    if let (Some(g), Some(f), Some(d)) = (given, family, dob) {
        set.name_dob(KeyKind::NameDob, Variant::Exact, g, f, d);
        if let (Some(gs), Some(fs)) = (given_sound, family_sound) {
            set.name_dob(KeyKind::PhoneticNameDob, Variant::Exact, gs, fs, d);
        }
        for c in canonical_set(g) {
            set.name_dob(KeyKind::CanonicalNameDob, Variant::Exact, c, f, d);
        }
        for o in others {
            let other_variant = if holding { Variant::Exact } else { forms.other_variant(o) };
            set.name_dob(KeyKind::OtherGivenNameDob, other_variant, o, f, d);
        }
        for b in barrels {
            set.name_dob(KeyKind::AltFamilyNameDob, Variant::Exact, g, b, d);
        }
        for former in formers {
            set.name_dob(KeyKind::AltFamilyNameDob, Variant::Exact, g, former, d);
        }
        set.family_dob_initial(Variant::Exact, f, d, initial(g));
    }
    if let (Some(g), Some(d)) = (given, dob) {
        set.given_dob(Variant::Exact, g, d);
    }
    if let (Some(p), Some(fs), Some(d)) = (district, family_sound, dob) {
        set.add(
            KeyKind::DistrictDobFamily,
            Variant::Exact,
            &[(tag::DISTRICT, p.as_bytes()), (tag::DOB, d), (tag::FAMILY_SOUND, fs.as_bytes())],
        );
    }
}

/// NHS number and UPN keys with a varied date of birth, so the date check they carry
/// tolerates the same slips as the name keys.
fn strong_with_date(subject: &Subject, set: &mut KeySet, v: Variant, dob: &[u8]) {
    if let Some(nhs) = subject.nhs_number() {
        set.strong_dob(KeyKind::NhsNumberDob, v, nhs.digits(), dob);
    }
    if let Some(upn) = subject.upn().filter(|u| u.is_permanent()) {
        set.strong_dob(KeyKind::UpnDob, v, upn.chars(), dob);
    }
}

/// The canonical forms a given name meets others under: the full forms it is short for, and
/// the name itself when it is a full form with short forms ("ALFIE" → ALFRED; "ALFRED" →
/// ALFRED). Both sides store these, so "Liz" and "Beth" meet at ELIZABETH.
fn canonical_set(given: &str) -> impl Iterator<Item = &str> {
    let own = has_variants(given).then_some(given);
    canonical_forms(given).iter().map(String::as_str).chain(own)
}

/// A normalised name's first and last letters ("FLETCHER" → "FR"; "LI" → "LI"; "X" → "XX").
fn first_and_last_letters(name: &str) -> String {
    let bytes = name.as_bytes();
    [bytes.first(), bytes.last()].into_iter().flatten().map(|&b| char::from(b)).collect()
}

/// First letter of a normalised name (never empty: normalisation rejects names without letters).
fn initial(name: &str) -> u8 {
    name.as_bytes().first().copied().unwrap_or(b'?')
}

/// The date with day and month exchanged, when both are 12 or under and differ.
fn day_month_swapped(date: DateOfBirth) -> Option<[u8; 8]> {
    let d = date.date();
    let (month, day) = (u8::from(d.month()), d.day());
    if day > 12 || day == month {
        return None;
    }
    let year = u16::try_from(d.year()).ok()?;
    date_from_parts(year, u16::from(day), u16::from(month)).map(compact_date)
}

/// Real dates one keystroke from `dob` (`YYYYMMDD`): one digit changed, or two adjacent digits
/// exchanged. Day/month swaps are generated separately.
fn date_typo_variants(dob: &[u8; 8]) -> Vec<[u8; 8]> {
    let mut out = Vec::with_capacity(80);
    let mut push = |v: [u8; 8]| {
        if &v != dob && is_real_date(&v) && !out.contains(&v) {
            out.push(v);
        }
    };
    for i in 0..8 {
        for c in b'0'..=b'9' {
            let mut v = *dob;
            v[i] = c;
            push(v);
        }
        if i + 1 < 8 {
            let mut v = *dob;
            v.swap(i, i + 1);
            push(v);
        }
    }
    out
}

fn is_real_date(v: &[u8; 8]) -> bool {
    let num = |s: &[u8]| s.iter().try_fold(0u16, |acc, &d| d.is_ascii_digit().then(|| acc * 10 + u16::from(d - b'0')));
    match (num(&v[..4]), num(&v[4..6]), num(&v[6..])) {
        (Some(y), Some(m), Some(d)) => date_from_parts(y, m, d).is_some(),
        _ => false,
    }
}
