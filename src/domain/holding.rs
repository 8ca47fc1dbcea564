//! A holding: an organisation's statement "we hold a record for this child", reduced at once
//! to a category, a status, a contact and pseudonyms. The plaintext subject is dropped here.

use serde::{Deserialize, Serialize};

use super::FieldError;
use super::identity::{
    ExpectedDate, FieldError as IdentityFieldError, FieldsPresent, KEY_FAMILY, KeyKind, KeyUse, MatchKey, Pseudonym,
    Pseudonymiser, RawSubject, Subject, SubjectRole, expected_birth_keys, holding_keys, newborn_keys,
};
use super::keyring::Keyring;
use super::matching::Probe;
use super::organisation::{parse_email, parse_label, parse_phone};
use crate::clock::Millis;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Category {
    ChildInNeed,
    ChildProtectionPlan,
    LookedAfter,
    CareLeaver,
    EarlyHelp,
    Other,
    /// An unborn child on a pre-birth plan: the subject is the expected date, found through
    /// the mother (or birthing parent) listed among the carers.
    PreBirth,
}

impl Category {
    pub const ALL: [Category; 7] = [
        Category::ChildInNeed,
        Category::ChildProtectionPlan,
        Category::LookedAfter,
        Category::CareLeaver,
        Category::EarlyHelp,
        Category::Other,
        Category::PreBirth,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::ChildInNeed => "child-in-need",
            Category::ChildProtectionPlan => "child-protection-plan",
            Category::LookedAfter => "looked-after",
            Category::CareLeaver => "care-leaver",
            Category::EarlyHelp => "early-help",
            Category::Other => "other",
            Category::PreBirth => "pre-birth",
        }
    }

    pub fn parse(text: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.as_str() == text.trim())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Open,
    Closed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Closed => "closed",
        }
    }

    pub fn parse(text: &str) -> Option<Status> {
        match text.trim() {
            "open" => Some(Status::Open),
            "closed" => Some(Status::Closed),
            _ => None,
        }
    }
}

/// Who to call about this holding; each part defaults to the organisation's duty line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    pub team: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
}

/// A holding as an organisation sends it (PUT body, one NDJSON line, one CSV row).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HoldingInput {
    /// Only in sync lines; the PUT route takes it from the path.
    #[serde(default)]
    pub local_ref: Option<String>,
    #[schema(required = true, nullable = false)]
    pub category: Option<String>,
    #[schema(required = true, nullable = false)]
    pub status: Option<String>,
    #[schema(value_type = Object, required = true, nullable = false)]
    pub subject: Option<RawSubject>,
    pub contact: Option<Contact>,
    /// The child's parents or carers (at most four), same fields as a subject, adults allowed.
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub carers: Vec<RawSubject>,
    /// Never name this holding's organisation, contact, category or area to an asker; alert
    /// the holder instead (a refuge, an adoptive placement).
    #[serde(default)]
    pub shielded: Option<bool>,
    /// Problems found while reading a CSV row's cells, reported with the rest.
    #[serde(skip)]
    pub invalid: Vec<FieldError>,
}

/// Most carers on one holding: parents and step-parents, with room for a kinship carer.
pub const MAX_CARERS: usize = 4;

/// One stored match key of a holding: which of its subjects (0 the child, 1.. the carers in
/// order), the kind, and the pseudonym.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HoldingKey {
    pub subject: u8,
    pub kind: KeyKind,
    pub pseudonym: Pseudonym,
}

/// The fields each carer of a holding had, 16 bits per carer, carer 1 lowest. Identifies no one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CarerFields(pub i64);

impl CarerFields {
    pub fn of(carers: &[FieldsPresent]) -> CarerFields {
        CarerFields(
            carers.iter().take(MAX_CARERS).enumerate().fold(0, |acc, (i, f)| acc | i64::from(f.bits()) << (16 * i)),
        )
    }

    /// The fields of the holding's subject `subject` (1-based carer number).
    pub fn carer(self, subject: u8) -> FieldsPresent {
        match subject {
            1..=4 => FieldsPresent::from_bits(((self.0 >> (16 * (u32::from(subject) - 1))) & 0xffff) as u16),
            _ => FieldsPresent::default(),
        }
    }
}

/// What a registered holding asks of the others, per subject (match signalling).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignalProbes {
    pub subject: u8,
    pub fields: FieldsPresent,
    pub probes: Vec<Probe>,
}

/// A validated holding: everything the index keeps, and nothing it must not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewHolding {
    pub local_ref: String,
    pub category: Category,
    pub status: Status,
    pub contact: Contact,
    pub fields_present: FieldsPresent,
    pub carer_fields: CarerFields,
    pub carers: u8,
    /// `None`: the input did not say, so an existing holding keeps its shield (a case system's
    /// nightly sync that knows nothing of shielding must never lift one). New holdings: not shielded.
    pub shielded: Option<bool>,
    pub keys: Vec<HoldingKey>,
    /// A keyed digest of everything above, so a re-sync can tell "unchanged" without a diff.
    pub fingerprint: [u8; 32],
    /// Lookup-side keys (with variants) to find this child's and its carers' other holdings;
    /// never stored. Subject 0 is the child.
    pub probes: Vec<SignalProbes>,
}

impl NewHolding {
    /// Every probe of every subject: what registering this holding asks of the others.
    pub fn all_probes(&self) -> impl Iterator<Item = &Probe> {
        self.probes.iter().flat_map(|s| s.probes.iter())
    }
}

/// An organisation's own record reference: opaque to the index, but never an NHS number.
pub fn parse_local_ref(text: &str) -> Result<String, FieldError> {
    let r = text.trim();
    if r.is_empty() {
        return Err(FieldError::required("local_ref"));
    }
    if r.len() > 64 || !r.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./:".contains(&b)) {
        return Err(FieldError::new(
            "local_ref",
            "invalid_local_ref",
            "local_ref must be 1 to 64 letters, digits or - _ . / :",
        ));
    }
    if super::identity::NhsNumber::parse(r).is_ok() {
        return Err(FieldError::new(
            "local_ref",
            "identifier_as_reference",
            "local_ref must be your own record reference, not an NHS number",
        ));
    }
    Ok(r.to_string())
}

impl HoldingInput {
    /// Validates and pseudonymises. The subject's plaintext does not outlive this call.
    pub fn into_holding(
        mut self,
        local_ref: &str,
        keyring: &Keyring,
        today: time::Date,
    ) -> Result<NewHolding, Vec<FieldError>> {
        let mut errors = std::mem::take(&mut self.invalid);
        let local_ref = parse_local_ref(local_ref).map_err(|e| errors.push(e)).ok();
        let category = parse_category(self.category.as_deref()).map_err(|e| errors.push(e)).ok();
        let status = parse_status(self.status.as_deref()).map_err(|e| errors.push(e)).ok();
        let contact = parse_contact(self.contact.unwrap_or_default()).map_err(|e| errors.extend(e)).ok();
        let carers = parse_carers(&self.carers, today).map_err(|e| errors.extend(e)).ok();
        let subject =
            parse_child(self.subject.as_ref(), category, carers.as_deref(), today).map_err(|e| errors.extend(e)).ok();
        let (Some(local_ref), Some(category), Some(status), Some(contact), Some(carers), Some(subject)) =
            (local_ref, category, status, contact, carers, subject)
        else {
            return Err(errors);
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        let fields_present = match &subject {
            ChildSubject::Born(child) => child.fields_present(),
            ChildSubject::Unborn(_) => FieldsPresent::from_bits(FieldsPresent::EXPECTED_DATE),
        };
        let pseudonymiser = keyring.current();
        let mut holding = NewHolding {
            local_ref,
            category,
            status,
            contact,
            fields_present,
            carer_fields: CarerFields::of(&carers.iter().map(Subject::fields_present).collect::<Vec<_>>()),
            carers: u8::try_from(carers.len()).unwrap_or(u8::MAX),
            shielded: self.shielded,
            keys: stored_keys(pseudonymiser, &subject, &carers),
            fingerprint: [0; 32],
            probes: signalling_probes(keyring, &subject, fields_present, &carers, today),
        };
        holding.fingerprint = fingerprint(pseudonymiser, &holding);
        Ok(holding)
    }
}

fn parse_category(raw: Option<&str>) -> Result<Category, FieldError> {
    let raw = raw.ok_or_else(|| FieldError::required("category"))?;
    Category::parse(raw).ok_or_else(|| {
        FieldError::new(
            "category",
            "invalid_category",
            "category must be child-in-need, child-protection-plan, looked-after, care-leaver, early-help, \
             pre-birth or other",
        )
    })
}

fn parse_status(raw: Option<&str>) -> Result<Status, FieldError> {
    let raw = raw.ok_or_else(|| FieldError::required("status"))?;
    Status::parse(raw).ok_or_else(|| FieldError::new("status", "invalid_status", "status must be open or closed"))
}

/// The holding's child: an unborn child's expected date for a pre-birth holding (checked
/// against its carers), else the child's identifiers.
fn parse_child(
    raw: Option<&RawSubject>,
    category: Option<Category>,
    carers: Option<&[Subject]>,
    today: time::Date,
) -> Result<ChildSubject, Vec<FieldError>> {
    let raw = raw.ok_or_else(|| vec![FieldError::required("subject")])?;
    if category == Some(Category::PreBirth) {
        return parse_unborn(raw, carers, today).map(ChildSubject::Unborn);
    }
    Subject::parse(raw, SubjectRole::Child, KeyUse::Holding, today)
        .map_err(|es| es.into_iter().map(|e| FieldError::from(e).within("subject")).collect())
        .map(|child| ChildSubject::Born(Box::new(child)))
}

/// Every key the holding stores, the child's then each carer's, one per pseudonym.
fn stored_keys(pseudonymiser: &Pseudonymiser, subject: &ChildSubject, carers: &[Subject]) -> Vec<HoldingKey> {
    let child_keys = match subject {
        ChildSubject::Born(child) => holding_keys(child),
        ChildSubject::Unborn(expected) => expected_birth_keys(expected, carers),
    };
    let mut keys: Vec<HoldingKey> = Vec::new();
    let mut add = |subject: u8, derived: Vec<MatchKey>| {
        keys.extend(derived.iter().map(|k| HoldingKey {
            subject,
            kind: k.kind(),
            pseudonym: pseudonymiser.pseudonym(k),
        }))
    };
    add(0, child_keys);
    for (i, carer) in carers.iter().enumerate() {
        add(carer_number(i), holding_keys(carer));
    }
    // The child's keys come first, so a duplicate pseudonym (a carer entered twice) keeps
    // the earliest subject.
    keys.sort_by(|a, b| a.pseudonym.as_bytes().cmp(b.pseudonym.as_bytes()).then(a.subject.cmp(&b.subject)));
    keys.dedup_by(|a, b| a.pseudonym == b.pseudonym);
    keys
}

/// What the holding asks when it is signalled: the child's probes (and the pre-birth holding
/// its carers were registered with) and each carer's.
fn signalling_probes(
    keyring: &Keyring,
    subject: &ChildSubject,
    fields_present: FieldsPresent,
    carers: &[Subject],
    today: time::Date,
) -> Vec<SignalProbes> {
    let mut probes = Vec::with_capacity(1 + carers.len());
    if let ChildSubject::Born(child) = subject {
        let mut child_probes = keyring.signalling_probes(child);
        // A baby's holding meets the pre-birth holding its carers were registered with.
        child_probes.extend(keyring.probes_of(&newborn_keys(child, carers, today)));
        probes.push(SignalProbes { subject: 0, fields: fields_present, probes: child_probes });
    }
    for (i, carer) in carers.iter().enumerate() {
        probes.push(SignalProbes {
            subject: carer_number(i),
            fields: carer.fields_present(),
            probes: keyring.signalling_probes(carer),
        });
    }
    probes
}

/// A holding's child: born (identifiers) or unborn (an expected date, found through a carer).
enum ChildSubject {
    Born(Box<Subject>),
    Unborn(ExpectedDate),
}

/// Carer `i` (0-based in the list) is subject `i + 1` of its holding.
fn carer_number(i: usize) -> u8 {
    u8::try_from(i + 1).unwrap_or(u8::MAX)
}

fn parse_carers(raw: &[RawSubject], today: time::Date) -> Result<Vec<Subject>, Vec<FieldError>> {
    if raw.len() > MAX_CARERS {
        return Err(vec![FieldError::new("carers", "too_many", "at most 4 carers on one holding")]);
    }
    let mut errors = Vec::new();
    let mut carers = Vec::with_capacity(raw.len());
    for (i, c) in raw.iter().enumerate() {
        match Subject::parse(c, SubjectRole::Carer, KeyUse::Holding, today) {
            Ok(s) => carers.push(s),
            Err(es) => errors.extend(es.into_iter().map(|e| FieldError::from(e).within(&format!("carers[{i}]")))),
        }
    }
    if errors.is_empty() { Ok(carers) } else { Err(errors) }
}

/// A pre-birth subject is its expected date alone, and the mother must be among the carers.
fn parse_unborn(
    raw: &RawSubject,
    carers: Option<&[Subject]>,
    today: time::Date,
) -> Result<ExpectedDate, Vec<FieldError>> {
    let mut errors = Vec::new();
    let only_expected = RawSubject { expected_date: raw.expected_date.clone(), ..RawSubject::default() };
    if *raw != only_expected {
        errors.push(FieldError::new(
            "subject",
            "pre_birth_subject",
            "a pre-birth subject takes only expected_date; put the mother's identifiers in carers",
        ));
    }
    let expected = match raw.expected_date.as_deref().map(str::trim).filter(|d| !d.is_empty()) {
        None => {
            errors.push(FieldError::required("subject.expected_date"));
            None
        }
        Some(d) => ExpectedDate::parse(d, today)
            .map_err(|e| errors.push(FieldError::from(IdentityFieldError::new("expected_date", e)).within("subject")))
            .ok(),
    };
    if carers.is_some_and(<[Subject]>::is_empty) {
        errors.push(FieldError::new(
            "carers",
            "mother_required",
            "a pre-birth holding must list the mother (or birthing parent) among the carers",
        ));
    }
    match expected {
        Some(expected) if errors.is_empty() => Ok(expected),
        _ => Err(errors),
    }
}

fn parse_contact(contact: Contact) -> Result<Contact, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut check = |r: Result<String, FieldError>| r.map_err(|e| errors.push(e.within("contact"))).ok();
    let team =
        contact.team.as_deref().filter(|t| !t.trim().is_empty()).and_then(|t| check(parse_label("team", t, 120)));
    let phone = contact.phone.as_deref().filter(|p| !p.trim().is_empty()).and_then(|p| check(parse_phone("phone", p)));
    let email = contact.email.as_deref().filter(|e| !e.trim().is_empty()).and_then(|e| check(parse_email("email", e)));
    if errors.is_empty() { Ok(Contact { team, phone, email }) } else { Err(errors) }
}

/// Keyed with the pseudonymiser's key (via a pseudonym of the parts), so the digest reveals
/// nothing and changes when the index key rotates (which forces a rewrite, as rotation needs).
fn fingerprint(pseudonymiser: &Pseudonymiser, holding: &NewHolding) -> [u8; 32] {
    let NewHolding {
        local_ref, category, status, contact, fields_present: fields, carer_fields, shielded, keys, ..
    } = holding;
    let mut h = blake3::Hasher::new_derive_key("child-locator 2026-11 holding fingerprint v1");
    h.update(pseudonymiser.key_id().as_bytes());
    // The key family (from family 2 on), so every holding written before it, even one whose
    // keys would not change (an NHS number alone), is rewritten, and so re-keyed, once.
    h.update(&[b'K', KEY_FAMILY]);
    for part in [local_ref, category.as_str(), status.as_str()] {
        h.update(&(part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    for part in [&contact.team, &contact.phone, &contact.email] {
        let text = part.as_deref().unwrap_or("\u{0}");
        h.update(&(text.len() as u64).to_le_bytes());
        h.update(text.as_bytes());
    }
    h.update(&fields.bits().to_le_bytes());
    // The family parts enter only when present, so holdings written before families existed
    // keep their fingerprints (a re-sync of them stays "unchanged").
    if *carer_fields != CarerFields::default() {
        h.update(b"carers");
        h.update(&carer_fields.0.to_le_bytes());
    }
    if let Some(flag) = shielded {
        h.update(if *flag { b"shielded" } else { b"unshield" });
    }
    for key in keys {
        if key.subject != 0 {
            h.update(&[b'S', key.subject]);
        }
        h.update(&[key.kind.id()]);
        h.update(key.pseudonym.as_bytes());
    }
    *h.finalize().as_bytes()
}

/// What happened to one holding in a put or a sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Added,
    Updated,
    Unchanged,
}

/// A holding as the index shows it to its own organisation: never identifiers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredHolding {
    pub id: i64,
    pub org_id: i64,
    pub local_ref: String,
    pub category: Category,
    pub status: Status,
    pub closed_at: Option<Millis>,
    pub contact: Contact,
    pub fields_present: FieldsPresent,
    pub carers: i64,
    pub shielded: bool,
    pub pseudonym_count: i64,
    pub key_id: String,
    pub created_at: Millis,
    pub updated_at: Millis,
}
