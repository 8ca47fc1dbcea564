//! A practitioner's lookup: a child's identifiers and a purpose from a fixed list. The
//! identifiers become probes (pseudonyms) at once; only the probes go further.

use serde::{Deserialize, Serialize};

use super::FieldError;
use super::identity::{FieldsPresent, KeyUse, RawSubject, Subject, SubjectRole};
use super::keyring::Keyring;
use super::matching::Probe;
use super::organisation::parse_label;

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

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LookupInput {
    #[schema(value_type = Object)]
    pub subject: Option<RawSubject>,
    pub purpose: Option<String>,
    /// Required when purpose is `other`; at most 200 characters and not for case details.
    pub purpose_detail: Option<String>,
}

/// A validated lookup: probes and the purpose; the plaintext is gone.
#[derive(Debug, Clone)]
pub struct Lookup {
    pub purpose: Purpose,
    pub purpose_detail: Option<String>,
    pub probes: Vec<Probe>,
    pub asker_fields: FieldsPresent,
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
        let subject = match &self.subject {
            None => {
                errors.push(FieldError::required("subject"));
                None
            }
            Some(raw) => Subject::parse(raw, SubjectRole::Child, KeyUse::Lookup, today)
                .map_err(|es| errors.extend(es.into_iter().map(|e| FieldError::from(e).within("subject"))))
                .ok(),
        };
        match (purpose, subject) {
            (Some(purpose), Some(subject)) if errors.is_empty() => Ok(Lookup {
                purpose,
                purpose_detail,
                probes: keyring.probes(&subject),
                asker_fields: subject.fields_present(),
            }),
            _ => Err(errors),
        }
    }
}
