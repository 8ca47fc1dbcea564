//! A practitioner's lookup: a child's identifiers and a purpose from a fixed list. The
//! identifiers become probes (pseudonyms) at once; only the probes go further.

use serde::{Deserialize, Serialize};

use super::FieldError;
use super::holding::{Category, Contact, Status};
use super::identity::{FieldsPresent, KeyUse, Postcode, RawSubject, Subject, SubjectRole, Tier, newborn_keys};
use super::keyring::Keyring;
use super::matching::{Basis, Probe};
use super::organisation::parse_label;
use super::widen::{Widen, widening_all};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Purpose {
    S47Enquiry,
    S17Assessment,
    FrontDoorTriage,
    LookedAfterPlacement,
    HealthSafeguarding,
    EducationSafeguarding,
    Other,
}

impl Purpose {
    pub const ALL: [Purpose; 7] = [
        Purpose::S47Enquiry,
        Purpose::S17Assessment,
        Purpose::FrontDoorTriage,
        Purpose::LookedAfterPlacement,
        Purpose::HealthSafeguarding,
        Purpose::EducationSafeguarding,
        Purpose::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::S47Enquiry => "s47-enquiry",
            Purpose::S17Assessment => "s17-assessment",
            Purpose::FrontDoorTriage => "front-door-triage",
            Purpose::LookedAfterPlacement => "looked-after-placement",
            Purpose::HealthSafeguarding => "health-safeguarding",
            Purpose::EducationSafeguarding => "education-safeguarding",
            Purpose::Other => "other",
        }
    }

    /// In words, for the UI and notices to the holder.
    pub fn describe(self) -> &'static str {
        match self {
            Purpose::S47Enquiry => "Section 47 enquiry (Children Act 1989)",
            Purpose::S17Assessment => "Section 17 assessment (Children Act 1989)",
            Purpose::FrontDoorTriage => "Front door / MASH triage",
            Purpose::LookedAfterPlacement => "Looked-after child placement",
            Purpose::HealthSafeguarding => "Health safeguarding",
            Purpose::EducationSafeguarding => "Education safeguarding",
            Purpose::Other => "Other (see detail)",
        }
    }

    pub fn parse(text: &str) -> Option<Purpose> {
        Purpose::ALL.into_iter().find(|p| p.as_str() == text.trim())
    }
}

/// The most free text a lookup or request may carry: enough for a reason, too little for case notes.
pub const MAX_FREE_TEXT: usize = 200;

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LookupInput {
    /// One child. Give this or `family`, not both.
    #[schema(value_type = Object)]
    pub subject: Option<RawSubject>,
    /// The whole family: children and carers, each a subject. Finds each child, and records
    /// elsewhere whose carers match (a sibling known in another area, an unborn child).
    pub family: Option<FamilyInput>,
    #[schema(required = true, nullable = false)]
    pub purpose: Option<String>,
    /// Required when purpose is `other`; at most 200 characters and not for case details.
    pub purpose_detail: Option<String>,
}

impl LookupInput {
    /// How many subjects (children and carers) this lookup asks about, for the rate limits and
    /// the quota: at least one, and at most the largest family allowed (a larger one is refused
    /// as invalid, not counted).
    pub fn subjects_asked(&self) -> u32 {
        let family = self.family.as_ref().map_or(0, |f| f.children.len() + f.carers.len());
        let asked = family + usize::from(self.subject.is_some());
        u32::try_from(asked.clamp(1, MAX_FAMILY_CHILDREN + MAX_FAMILY_CARERS)).unwrap_or(1)
    }
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FamilyInput {
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub children: Vec<RawSubject>,
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub carers: Vec<RawSubject>,
}

/// Most children in one family lookup; more is a caseload search, not a family.
pub const MAX_FAMILY_CHILDREN: usize = 8;
/// Most carers in one family lookup.
pub const MAX_FAMILY_CARERS: usize = 4;

/// One subject asked about: a child (`Basis::Child`) or a carer, its position in what was
/// entered, the fields given and its probes.
#[derive(Debug, Clone)]
pub struct AskedSubject {
    pub basis: Basis,
    /// Index in `family.children` or `family.carers` (0 for a single `subject`).
    pub index: usize,
    pub fields: FieldsPresent,
    pub probes: Vec<Probe>,
}

/// A validated lookup: probes and the purpose; the plaintext is gone.
#[derive(Debug, Clone)]
pub struct Lookup {
    pub purpose: Purpose,
    pub purpose_detail: Option<String>,
    /// Whether the asker sent a `family` (the answer then groups per child).
    pub family: bool,
    pub subjects: Vec<AskedSubject>,
    /// How the asker could widen this lookup, from the fields given (`widen::widening`).
    pub widen: Vec<Widen>,
    /// The postcode of the first entered person who has one (children first), for the area
    /// summary only: its district is compared in memory and never stored (redacted `Debug`).
    pub postcode: Option<Postcode>,
}

impl Lookup {
    /// Every probe of every subject: what the index is asked.
    pub fn probes(&self) -> impl Iterator<Item = &Probe> {
        self.subjects.iter().flat_map(|s| s.probes.iter())
    }

    /// How many children were asked about (the rest of `subjects` are carers).
    pub fn children_asked(&self) -> usize {
        self.subjects.iter().filter(|s| s.basis == Basis::Child).count()
    }
}

impl LookupInput {
    pub fn into_lookup(self, keyring: &Keyring, today: time::Date) -> Result<Lookup, Vec<FieldError>> {
        let mut errors = Vec::new();
        let purpose = match self.purpose.as_deref() {
            None => {
                errors.push(FieldError::required("purpose"));
                None
            }
            Some(p) => Purpose::parse(p)
                .ok_or_else(|| {
                    errors.push(FieldError::new(
                        "purpose",
                        "invalid_purpose",
                        "purpose must be s47-enquiry, s17-assessment, front-door-triage, looked-after-placement, \
                         health-safeguarding, education-safeguarding or other",
                    ))
                })
                .ok(),
        };
        let purpose_detail = match self.purpose_detail.as_deref().map(str::trim).filter(|d| !d.is_empty()) {
            Some(d) => parse_label("purpose_detail", d, MAX_FREE_TEXT).map_err(|e| errors.push(e)).ok(),
            None => {
                if purpose == Some(Purpose::Other) {
                    errors.push(FieldError::new(
                        "purpose_detail",
                        "required",
                        "purpose_detail is required when purpose is other (a short reason, not case details)",
                    ));
                }
                None
            }
        };
        let family = self.family.is_some();
        let subjects = match (self.subject, self.family) {
            (Some(_), Some(_)) => {
                errors.push(FieldError::new(
                    "family",
                    "subject_and_family",
                    "give either subject (one child) or family (children and carers), not both",
                ));
                None
            }
            (None, None) => {
                errors.push(FieldError::required("subject"));
                None
            }
            (Some(raw), None) => parse_one(&raw, SubjectRole::Child, KeyUse::Lookup, today, "subject", &mut errors)
                .map(|child| vec![(Basis::Child, 0, child)]),
            (None, Some(f)) => parse_family(&f, today, &mut errors),
        };
        match (purpose, subjects) {
            (Some(purpose), Some(subjects_in)) if errors.is_empty() => {
                let subjects = &subjects_in;
                let carers: Vec<&Subject> =
                    subjects.iter().filter(|(b, _, _)| *b == Basis::Carer).map(|(_, _, s)| s).collect();
                let carers: Vec<Subject> = carers.into_iter().cloned().collect();
                let subjects = subjects
                    .iter()
                    .map(|(basis, index, subject)| {
                        let mut probes = keyring.probes(subject);
                        if *basis == Basis::Child {
                            // A baby entered with its carers also asks for a pre-birth record.
                            probes.extend(keyring.probes_of(&newborn_keys(subject, &carers, today)));
                        }
                        AskedSubject { basis: *basis, index: *index, fields: subject.fields_present(), probes }
                    })
                    .collect();
                let widen = widening_all(subjects_in.iter().map(|(_, _, s)| s));
                let postcode = subjects_in
                    .iter()
                    .filter(|(b, _, _)| *b == Basis::Child)
                    .chain(subjects_in.iter().filter(|(b, _, _)| *b == Basis::Carer))
                    .find_map(|(_, _, s)| s.postcode().cloned());
                Ok(Lookup { purpose, purpose_detail, family, subjects, widen, postcode })
            }
            _ => Err(errors),
        }
    }
}

fn parse_one(
    raw: &RawSubject,
    role: SubjectRole,
    use_: KeyUse,
    today: time::Date,
    field: &str,
    errors: &mut Vec<FieldError>,
) -> Option<Subject> {
    Subject::parse(raw, role, use_, today)
        .map_err(|es| errors.extend(es.into_iter().map(|e| FieldError::from(e).within(field))))
        .ok()
}

fn parse_family(
    family: &FamilyInput,
    today: time::Date,
    errors: &mut Vec<FieldError>,
) -> Option<Vec<(Basis, usize, Subject)>> {
    let before = errors.len();
    if family.children.is_empty() && family.carers.is_empty() {
        errors.push(FieldError::new("family", "empty_family", "give at least one child or one carer"));
    }
    if family.children.len() > MAX_FAMILY_CHILDREN {
        errors.push(FieldError::new("family.children", "too_many", "at most 8 children in one family lookup"));
    }
    if family.carers.len() > MAX_FAMILY_CARERS {
        errors.push(FieldError::new("family.carers", "too_many", "at most 4 carers in one family lookup"));
    }
    if errors.len() > before {
        return None;
    }
    let mut subjects = Vec::with_capacity(family.children.len() + family.carers.len());
    for (basis, role, list, name) in [
        (Basis::Child, SubjectRole::Child, &family.children, "children"),
        (Basis::Carer, SubjectRole::Carer, &family.carers, "carers"),
    ] {
        for (i, raw) in list.iter().enumerate() {
            if let Some(s) = parse_one(raw, role, KeyUse::Lookup, today, &format!("family.{name}[{i}]"), errors) {
                subjects.push((basis, i, s));
            }
        }
    }
    (errors.len() == before).then_some(subjects)
}

/// One holding that matched, as this asker may see it (before redaction: the service's
/// `redaction` module turns a shielded one into a tier and fixed words).
#[derive(Debug, Clone)]
pub struct MatchedRecord {
    pub match_id: String,
    pub tier: Tier,
    pub evidence: String,
    pub ambiguous: bool,
    /// Empty for a shielded record: the holder calls the asker, not the other way round.
    pub contact: Contact,
    /// `None` when the disclosure policy withholds them from this asker, or the record is shielded.
    pub category: Option<Category>,
    pub status: Option<Status>,
    /// `Child`: an entered child's identifiers agree; `Carer`: only an entered carer's do.
    pub basis: Basis,
    /// In a family lookup, which entered child (index in `family.children`) this record is about.
    pub child: Option<usize>,
    /// For a carer match, each entered carer that agreed with a carer on the record.
    pub carers: Vec<CarerAgreement>,
}

/// One entered carer agreeing with a carer on a record.
#[derive(Debug, Clone)]
pub struct CarerAgreement {
    /// Index in `family.carers`.
    pub carer: usize,
    pub tier: Tier,
    pub evidence: String,
}

/// A kept lookup answer: the JSON the API returned, and the asker's case reference.
#[derive(Debug, Clone)]
pub struct KeptAnswer {
    pub answer: String,
    pub case_ref: Option<String>,
}
