//! The raw subject as received and the validated `Subject` built from it, collecting every
//! field error at once; plus `FieldsPresent`, the non-identifying record of which fields were given.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::Date;

use super::error::{FieldError, Invalid};
use super::identifiers::{DateOfBirth, NhsNumber, Postcode, Upn};
use super::names::{NormalisedName, normalise_name};

/// A subject as it arrives (JSON body, CSV row): every field optional and unvalidated.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSubject {
    #[serde(default)]
    pub nhs_number: Option<String>,
    #[serde(default)]
    pub upn: Option<String>,
    #[serde(default)]
    pub given_name: Option<String>,
    #[serde(default)]
    pub family_name: Option<String>,
    #[serde(default)]
    pub date_of_birth: Option<String>,
    #[serde(default)]
    pub postcode: Option<String>,
    #[serde(default)]
    pub other_given_names: Vec<String>,
    #[serde(default)]
    pub former_family_names: Vec<String>,
    /// An unborn child's due date: only on a `pre-birth` holding, and then alone.
    #[serde(default)]
    pub expected_date: Option<String>,
}

impl fmt::Debug for RawSubject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Raw input is the most sensitive form of all: show only which fields were given.
        f.debug_struct("RawSubject")
            .field("nhs_number", &self.nhs_number.as_ref().map(|_| "***"))
            .field("upn", &self.upn.as_ref().map(|_| "***"))
            .field("given_name", &self.given_name.as_ref().map(|_| "***"))
            .field("family_name", &self.family_name.as_ref().map(|_| "***"))
            .field("date_of_birth", &self.date_of_birth.as_ref().map(|_| "***"))
            .field("postcode", &self.postcode.as_ref().map(|_| "***"))
            .field("other_given_names", &self.other_given_names.len())
            .field("former_family_names", &self.former_family_names.len())
            .field("expected_date", &self.expected_date.as_ref().map(|_| "***"))
            .finish()
    }
}

/// Whose identifiers these are. Each role's match keys live in their own key space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SubjectRole {
    /// A child or care leaver: aged 25 or under.
    Child,
    /// A parent or carer: any adult age.
    Carer,
}

impl SubjectRole {
    pub const ALL: [SubjectRole; 2] = [SubjectRole::Child, SubjectRole::Carer];

    pub fn as_str(self) -> &'static str {
        match self {
            SubjectRole::Child => "child",
            SubjectRole::Carer => "carer",
        }
    }

    /// The byte that starts every match key of this role: carer and child keys never collide.
    pub(crate) fn marker(self) -> u8 {
        match self {
            SubjectRole::Child => b'C',
            SubjectRole::Carer => b'P',
        }
    }
}

/// What the subject is for: stored as a holding, or asked about in a lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyUse {
    /// Stored in the index: a postcode, if given, must be full.
    Holding,
    /// Asked about: an outward code alone ("SW1A") is enough.
    Lookup,
}

/// Oldest age, in completed years, accepted for a child: children and care leavers to 25.
pub const MAX_CHILD_AGE: i32 = 25;

/// Most other given names or former family names accepted on one subject.
pub const MAX_LISTED_NAMES: usize = 10;

/// Which fields a subject had, as a bitmask. Stored with a holding (it identifies no one) so that
/// assessment can tell "the holder's record disagrees" from "the holder's record lacks the field".
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FieldsPresent(u16);

impl FieldsPresent {
    pub const NHS_NUMBER: u16 = 1 << 0;
    /// A permanent UPN.
    pub const UPN: u16 = 1 << 1;
    pub const TEMPORARY_UPN: u16 = 1 << 2;
    pub const GIVEN_NAME: u16 = 1 << 3;
    pub const FAMILY_NAME: u16 = 1 << 4;
    pub const DATE_OF_BIRTH: u16 = 1 << 5;
    pub const POSTCODE: u16 = 1 << 6;
    pub const OTHER_GIVEN_NAMES: u16 = 1 << 7;
    pub const FORMER_FAMILY_NAMES: u16 = 1 << 8;
    /// An unborn child's expected date (pre-birth holdings only).
    pub const EXPECTED_DATE: u16 = 1 << 9;
    const ALL: u16 = (1 << 10) - 1;

    /// Rebuilds the mask from stored bits; unknown bits are dropped.
    pub fn from_bits(bits: u16) -> Self {
        Self(bits & Self::ALL)
    }

    pub fn bits(self) -> u16 {
        self.0
    }

    pub fn has(self, field: u16) -> bool {
        self.0 & field == field && field != 0
    }

    /// Whether both records had this field, so that a missing agreement is a disagreement.
    pub fn both(self, other: FieldsPresent, field: u16) -> bool {
        self.has(field) && other.has(field)
    }

    #[must_use]
    pub fn with(self, field: u16) -> Self {
        Self::from_bits(self.0 | field)
    }
}

impl fmt::Debug for FieldsPresent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FieldsPresent({:#011b})", self.0)
    }
}

/// A validated subject: every identifier parsed, every name normalised.
#[derive(Clone)]
pub struct Subject {
    role: SubjectRole,
    nhs_number: Option<NhsNumber>,
    upn: Option<Upn>,
    given_name: Option<NormalisedName>,
    family_name: Option<NormalisedName>,
    date_of_birth: Option<DateOfBirth>,
    postcode: Option<Postcode>,
    /// Sorted and de-duplicated, so the order they were typed in never changes a key.
    other_given_names: Vec<NormalisedName>,
    /// Sorted and de-duplicated for the same reason.
    former_family_names: Vec<NormalisedName>,
}

impl fmt::Debug for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subject")
            .field("role", &self.role)
            .field("fields", &self.fields_present())
            .finish_non_exhaustive()
    }
}

const SUBJECT_INSUFFICIENT: Invalid = Invalid::new(
    "insufficient_identifiers",
    "give an NHS number, a permanent UPN, or a first name, family name and date of birth",
);
const DOB_TOO_OLD: Invalid =
    Invalid::new("out_of_range", "date of birth gives an age over 25, too old for a child or care leaver");
const TOO_MANY_NAMES: Invalid = Invalid::new("too_many", "more than 10 names in this list");
const EXPECTED_DATE_NOT_HERE: Invalid = Invalid::new(
    "not_allowed",
    "expected_date belongs only to a pre-birth holding's subject; to find an unborn child, look up the mother as a carer",
);

/// A field's text, or `None` when it is absent or only whitespace (a blank form field).
fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

impl Subject {
    /// Validates a raw subject, returning every field error rather than the first.
    ///
    /// `today` fixes "not in the future" and the age limit; `use_` decides whether an outward
    /// code alone is an acceptable postcode.
    pub fn parse(raw: &RawSubject, role: SubjectRole, use_: KeyUse, today: Date) -> Result<Subject, Vec<FieldError>> {
        let mut errors = Vec::new();
        let e = &mut errors;

        let nhs_number = given(&raw.nhs_number).and_then(|s| keep(e, "nhs_number", NhsNumber::parse(s)));
        let upn = given(&raw.upn).and_then(|s| keep(e, "upn", Upn::parse(s)));
        let given_name = given(&raw.given_name).and_then(|s| keep(e, "given_name", normalise_name(s)));
        let family_name = given(&raw.family_name).and_then(|s| keep(e, "family_name", normalise_name(s)));
        let date_of_birth = given(&raw.date_of_birth).and_then(|s| {
            let parsed = DateOfBirth::parse(s, today).and_then(|dob| match role {
                SubjectRole::Child if dob.age_on(today) > MAX_CHILD_AGE => Err(DOB_TOO_OLD),
                _ => Ok(dob),
            });
            keep(e, "date_of_birth", parsed)
        });
        let postcode =
            given(&raw.postcode).and_then(|s| keep(e, "postcode", Postcode::parse(s, use_ == KeyUse::Lookup)));
        if given(&raw.expected_date).is_some() {
            e.push(FieldError::new("expected_date", EXPECTED_DATE_NOT_HERE));
        }
        let other_given_names = parse_list(e, &raw.other_given_names, "other_given_names");
        let former_family_names = parse_list(e, &raw.former_family_names, "former_family_names");

        // Judge sufficiency on what was supplied: a mistyped NHS number already has its own
        // error, and a second "not enough identifiers" error would only confuse.
        let strong_supplied = given(&raw.nhs_number).is_some()
            || given(&raw.upn).is_some_and(|s| !s.ends_with(|c: char| c.is_ascii_alphabetic()));
        let demographics_supplied = given(&raw.given_name).is_some()
            && given(&raw.family_name).is_some()
            && given(&raw.date_of_birth).is_some();
        if !strong_supplied && !demographics_supplied && given(&raw.expected_date).is_none() {
            e.push(FieldError::new("subject", SUBJECT_INSUFFICIENT));
        }

        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Subject {
            role,
            nhs_number,
            upn,
            given_name,
            family_name,
            date_of_birth,
            postcode,
            other_given_names,
            former_family_names,
        })
    }

    pub fn role(&self) -> SubjectRole {
        self.role
    }

    pub fn nhs_number(&self) -> Option<&NhsNumber> {
        self.nhs_number.as_ref()
    }

    pub fn upn(&self) -> Option<&Upn> {
        self.upn.as_ref()
    }

    pub fn given_name(&self) -> Option<&NormalisedName> {
        self.given_name.as_ref()
    }

    pub fn family_name(&self) -> Option<&NormalisedName> {
        self.family_name.as_ref()
    }

    pub fn date_of_birth(&self) -> Option<&DateOfBirth> {
        self.date_of_birth.as_ref()
    }

    pub fn postcode(&self) -> Option<&Postcode> {
        self.postcode.as_ref()
    }

    pub fn other_given_names(&self) -> &[NormalisedName] {
        &self.other_given_names
    }

    pub fn former_family_names(&self) -> &[NormalisedName] {
        &self.former_family_names
    }

    /// Which fields this subject has; stored with a holding, sent with a lookup's evidence.
    pub fn fields_present(&self) -> FieldsPresent {
        let mut bits = 0;
        let mut set = |present: bool, bit: u16| {
            if present {
                bits |= bit;
            }
        };
        set(self.nhs_number.is_some(), FieldsPresent::NHS_NUMBER);
        set(self.upn.as_ref().is_some_and(Upn::is_permanent), FieldsPresent::UPN);
        set(self.upn.as_ref().is_some_and(|u| !u.is_permanent()), FieldsPresent::TEMPORARY_UPN);
        set(self.given_name.is_some(), FieldsPresent::GIVEN_NAME);
        set(self.family_name.is_some(), FieldsPresent::FAMILY_NAME);
        set(self.date_of_birth.is_some(), FieldsPresent::DATE_OF_BIRTH);
        set(self.postcode.is_some(), FieldsPresent::POSTCODE);
        set(!self.other_given_names.is_empty(), FieldsPresent::OTHER_GIVEN_NAMES);
        set(!self.former_family_names.is_empty(), FieldsPresent::FORMER_FAMILY_NAMES);
        FieldsPresent::from_bits(bits)
    }
}

/// Keeps a parsed value, or records its error against `field`.
fn keep<T>(errors: &mut Vec<FieldError>, field: &str, result: Result<T, Invalid>) -> Option<T> {
    result.map_err(|invalid| errors.push(FieldError::new(field, invalid))).ok()
}

/// Parses a list of names, naming each failing entry by index; sorts and de-duplicates the rest.
fn parse_list(errors: &mut Vec<FieldError>, raw: &[String], field: &str) -> Vec<NormalisedName> {
    if raw.len() > MAX_LISTED_NAMES {
        errors.push(FieldError::new(field, TOO_MANY_NAMES));
        return Vec::new();
    }
    let mut names: Vec<NormalisedName> = raw
        .iter()
        .enumerate()
        .filter(|(_, s)| !s.trim().is_empty())
        .filter_map(|(i, s)| keep(errors, &format!("{field}[{i}]"), normalise_name(s)))
        .collect();
    names.sort_by(|a, b| a.whole().cmp(b.whole()));
    names.dedup_by(|a, b| a.whole() == b.whole());
    names
}
