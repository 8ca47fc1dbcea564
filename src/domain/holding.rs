//! A holding: an organisation's statement "we hold a record for this child", reduced at once
//! to a category, a status, a contact and pseudonyms. The plaintext subject is dropped here.

use serde::{Deserialize, Serialize};

use super::FieldError;
use super::identity::{
    FieldsPresent, KeyKind, KeyUse, Pseudonym, Pseudonymiser, RawSubject, Subject, SubjectRole, holding_keys,
};
use super::keyring::Keyring;
use super::matching::Probe;
use super::organisation::{parse_email, parse_label, parse_phone};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Category {
    ChildInNeed,
    ChildProtectionPlan,
    LookedAfter,
    CareLeaver,
    EarlyHelp,
    Other,
}

impl Category {
    pub const ALL: [Category; 6] = [
        Category::ChildInNeed,
        Category::ChildProtectionPlan,
        Category::LookedAfter,
        Category::CareLeaver,
        Category::EarlyHelp,
        Category::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::ChildInNeed => "child-in-need",
            Category::ChildProtectionPlan => "child-protection-plan",
            Category::LookedAfter => "looked-after",
            Category::CareLeaver => "care-leaver",
            Category::EarlyHelp => "early-help",
            Category::Other => "other",
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
    pub category: Option<String>,
    pub status: Option<String>,
    #[schema(value_type = Object)]
    pub subject: Option<RawSubject>,
    pub contact: Option<Contact>,
}

/// A validated holding: everything the index keeps, and nothing it must not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewHolding {
    pub local_ref: String,
    pub category: Category,
    pub status: Status,
    pub contact: Contact,
    pub fields_present: FieldsPresent,
    pub keys: Vec<(KeyKind, Pseudonym)>,
    /// A keyed digest of everything above, so a re-sync can tell "unchanged" without a diff.
    pub fingerprint: [u8; 32],
    /// Lookup-side keys (with variants) to find this child's other holdings; never stored.
    pub probes: Vec<Probe>,
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
        self,
        local_ref: &str,
        keyring: &Keyring,
        today: time::Date,
    ) -> Result<NewHolding, Vec<FieldError>> {
        let pseudonymiser = keyring.current();
        let mut errors = Vec::new();
        let local_ref = parse_local_ref(local_ref).map_err(|e| errors.push(e)).ok();
        let category = match self.category.as_deref() {
            None => {
                errors.push(FieldError::required("category"));
                None
            }
            Some(c) => Category::parse(c)
                .ok_or_else(|| {
                    errors.push(FieldError::new(
                        "category",
                        "invalid_category",
                        "category must be child-in-need, child-protection-plan, looked-after, care-leaver, early-help or other",
                    ))
                })
                .ok(),
        };
        let status = match self.status.as_deref() {
            None => {
                errors.push(FieldError::required("status"));
                None
            }
            Some(s) => Status::parse(s)
                .ok_or_else(|| {
                    errors.push(FieldError::new("status", "invalid_status", "status must be open or closed"))
                })
                .ok(),
        };
        let contact = parse_contact(self.contact.unwrap_or_default()).map_err(|e| errors.extend(e)).ok();
        let subject = match &self.subject {
            None => {
                errors.push(FieldError::required("subject"));
                None
            }
            Some(raw) => Subject::parse(raw, SubjectRole::Child, KeyUse::Holding, today)
                .map_err(|es| errors.extend(es.into_iter().map(|e| FieldError::from(e).within("subject"))))
                .ok(),
        };
        let (Some(local_ref), Some(category), Some(status), Some(contact), Some(subject)) =
            (local_ref, category, status, contact, subject)
        else {
            return Err(errors);
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut keys: Vec<(KeyKind, Pseudonym)> =
            holding_keys(&subject).iter().map(|k| (k.kind(), pseudonymiser.pseudonym(k))).collect();
        keys.sort_by(|a, b| a.1.as_bytes().cmp(b.1.as_bytes()));
        keys.dedup_by(|a, b| a.1 == b.1);
        let fields_present = subject.fields_present();
        let fingerprint = fingerprint(pseudonymiser, &local_ref, category, status, &contact, fields_present, &keys);
        let probes = keyring.signalling_probes(&subject);
        Ok(NewHolding { local_ref, category, status, contact, fields_present, keys, fingerprint, probes })
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
fn fingerprint(
    pseudonymiser: &Pseudonymiser,
    local_ref: &str,
    category: Category,
    status: Status,
    contact: &Contact,
    fields: FieldsPresent,
    keys: &[(KeyKind, Pseudonym)],
) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key("child-locator 2026-11 holding fingerprint v1");
    h.update(pseudonymiser.key_id().as_bytes());
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
    for (kind, p) in keys {
        h.update(&[kind.id()]);
        h.update(p.as_bytes());
    }
    *h.finalize().as_bytes()
}
