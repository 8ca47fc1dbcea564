//! Participating organisations: the directory a worker searches for "who do I call there?".
//! Parsing turns raw input into values that are known to be valid.

use serde::{Deserialize, Serialize};

use super::FieldError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum OrgKind {
    LocalAuthority,
    NhsTrust,
    GpPractice,
    School,
    Police,
    Other,
}

impl OrgKind {
    pub const ALL: [OrgKind; 6] = [
        OrgKind::LocalAuthority,
        OrgKind::NhsTrust,
        OrgKind::GpPractice,
        OrgKind::School,
        OrgKind::Police,
        OrgKind::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrgKind::LocalAuthority => "local-authority",
            OrgKind::NhsTrust => "nhs-trust",
            OrgKind::GpPractice => "gp-practice",
            OrgKind::School => "school",
            OrgKind::Police => "police",
            OrgKind::Other => "other",
        }
    }

    pub fn parse(text: &str) -> Option<OrgKind> {
        OrgKind::ALL.into_iter().find(|k| k.as_str() == text.trim())
    }
}

/// ONS code for councils, ODS code for NHS bodies, URN for schools, or a free code:
/// upper-case letters, digits and hyphens.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
pub struct OrgCode(String);

impl OrgCode {
    pub fn parse(text: &str) -> Result<OrgCode, FieldError> {
        let code = text.trim().to_ascii_uppercase();
        if code.is_empty() {
            return Err(FieldError::required("code"));
        }
        if code.len() > 20 || !code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(FieldError::new(
                "code",
                "invalid_code",
                "code must be 1 to 20 letters, digits or hyphens (an ONS, ODS or URN code)",
            ));
        }
        Ok(OrgCode(code))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for OrgCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A telephone number a professional can dial: digits with optional spaces, `+`, `(`, `)`, `-`.
pub fn parse_phone(field: &str, text: &str) -> Result<String, FieldError> {
    let phone = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if phone.is_empty() {
        return Err(FieldError::required(field));
    }
    let digits = phone.bytes().filter(u8::is_ascii_digit).count();
    let allowed = phone.bytes().all(|b| b.is_ascii_digit() || b" +()-".contains(&b));
    if !allowed || !(7..=15).contains(&digits) {
        return Err(FieldError::new(
            field,
            "invalid_phone",
            format!("{field} must be a telephone number of 7 to 15 digits"),
        ));
    }
    Ok(phone)
}

/// A secure email address (e.g. an nhs.net or gcsx mailbox). A shape check, not deliverability.
pub fn parse_email(field: &str, text: &str) -> Result<String, FieldError> {
    let email = text.trim().to_string();
    if email.is_empty() {
        return Err(FieldError::required(field));
    }
    let valid = match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
                && email.len() <= 254
                && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        }
        None => false,
    };
    if !valid {
        return Err(FieldError::new(field, "invalid_email", format!("{field} must be an email address")));
    }
    Ok(email)
}

/// Free text that a person reads (names of organisations, teams, people): trimmed, bounded,
/// without control characters.
pub fn parse_label(field: &str, text: &str, max_chars: usize) -> Result<String, FieldError> {
    let label = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if label.is_empty() {
        return Err(FieldError::required(field));
    }
    if label.chars().count() > max_chars || label.chars().any(char::is_control) {
        return Err(FieldError::new(
            field,
            "invalid_text",
            format!("{field} must be at most {max_chars} characters of plain text"),
        ));
    }
    Ok(label)
}

/// What an operator gives to add an organisation, as received.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrganisationInput {
    #[schema(required = true, nullable = false)]
    pub code: Option<String>,
    #[schema(required = true, nullable = false)]
    pub name: Option<String>,
    #[schema(required = true, nullable = false)]
    pub kind: Option<String>,
    #[schema(required = true, nullable = false)]
    pub duty_phone: Option<String>,
    pub out_of_hours_phone: Option<String>,
    #[schema(required = true, nullable = false)]
    pub secure_email: Option<String>,
    pub active: Option<bool>,
}

/// A validated organisation, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrganisation {
    pub code: OrgCode,
    pub name: String,
    pub kind: OrgKind,
    pub duty_phone: String,
    pub out_of_hours_phone: Option<String>,
    pub secure_email: String,
    pub active: bool,
}

/// Changes to an organisation; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrganisationChanges {
    pub name: Option<String>,
    pub kind: Option<OrgKind>,
    pub duty_phone: Option<String>,
    pub out_of_hours_phone: Option<Option<String>>,
    pub secure_email: Option<String>,
    pub active: Option<bool>,
}

fn parse_kind(text: &str) -> Result<OrgKind, FieldError> {
    OrgKind::parse(text).ok_or_else(|| {
        FieldError::new(
            "kind",
            "invalid_kind",
            "kind must be one of local-authority, nhs-trust, gp-practice, school, police, other",
        )
    })
}

impl OrganisationInput {
    /// Validates a complete new organisation, collecting every error.
    pub fn into_new(self) -> Result<NewOrganisation, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut take = |r: Result<String, FieldError>| r.map_err(|e| errors.push(e)).ok();
        let name = take(parse_label("name", self.name.as_deref().unwrap_or(""), 200));
        let duty_phone = take(parse_phone("duty_phone", self.duty_phone.as_deref().unwrap_or("")));
        let secure_email = take(parse_email("secure_email", self.secure_email.as_deref().unwrap_or("")));
        let out_of_hours_phone = match self.out_of_hours_phone.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(p) => take(parse_phone("out_of_hours_phone", p)),
        };
        let code = OrgCode::parse(self.code.as_deref().unwrap_or("")).map_err(|e| errors.push(e)).ok();
        let kind = match self.kind.as_deref() {
            None => {
                errors.push(FieldError::required("kind"));
                None
            }
            Some(k) => parse_kind(k).map_err(|e| errors.push(e)).ok(),
        };
        match (code, name, kind, duty_phone, secure_email) {
            (Some(code), Some(name), Some(kind), Some(duty_phone), Some(secure_email)) if errors.is_empty() => {
                Ok(NewOrganisation {
                    code,
                    name,
                    kind,
                    duty_phone,
                    out_of_hours_phone,
                    secure_email,
                    active: self.active.unwrap_or(true),
                })
            }
            _ => Err(errors),
        }
    }

    /// Validates a partial update: only the fields given are checked and changed.
    pub fn into_changes(self) -> Result<OrganisationChanges, Vec<FieldError>> {
        let mut errors = Vec::new();
        if self.code.is_some() {
            errors.push(FieldError::new("code", "immutable", "an organisation's code cannot change"));
        }
        let mut changes = OrganisationChanges { active: self.active, ..Default::default() };
        let mut check = |r: Result<String, FieldError>| r.map_err(|e| errors.push(e)).ok();
        changes.name = self.name.as_deref().and_then(|n| check(parse_label("name", n, 200)));
        changes.duty_phone = self.duty_phone.as_deref().and_then(|p| check(parse_phone("duty_phone", p)));
        changes.secure_email = self.secure_email.as_deref().and_then(|e| check(parse_email("secure_email", e)));
        changes.out_of_hours_phone = self.out_of_hours_phone.as_deref().map(|p| match p.trim() {
            "" => None,
            p => check(parse_phone("out_of_hours_phone", p)),
        });
        changes.kind = match self.kind.as_deref() {
            None => None,
            Some(k) => parse_kind(k).map_err(|e| errors.push(e)).ok(),
        };
        if errors.is_empty() { Ok(changes) } else { Err(errors) }
    }
}

/// An organisation as the directory shows it (read back from a kept lookup answer too).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Organisation {
    #[serde(skip)]
    pub id: i64,
    pub code: String,
    pub name: String,
    pub kind: OrgKind,
    pub duty_phone: String,
    pub out_of_hours_phone: Option<String>,
    pub secure_email: String,
    pub active: bool,
}

/// A directory query that is a phone number (digits with spaces, `+`, `-` or brackets, at
/// least four digits): its digits, with a leading +44 read as 0, so spacing never matters.
pub fn phone_query(text: &str) -> Option<String> {
    let text = text.trim();
    if text.is_empty() || !text.chars().all(|c| c.is_ascii_digit() || " +-()".contains(c)) {
        return None;
    }
    let digits = national_digits(text);
    (digits.len() >= 4).then_some(digits)
}

fn national_digits(phone: &str) -> String {
    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    match digits.strip_prefix("44") {
        Some(rest) if phone.trim_start().starts_with('+') => format!("0{rest}"),
        _ => digits,
    }
}

impl Organisation {
    /// Whether its duty or out-of-hours line contains these digits (from `phone_query`).
    pub fn has_phone(&self, digits: &str) -> bool {
        std::iter::once(&self.duty_phone)
            .chain(self.out_of_hours_phone.as_ref())
            .any(|phone| national_digits(phone).contains(digits))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_phone_number_matches_whatever_its_spacing() {
        let org = Organisation {
            id: 1,
            code: "X".into(),
            name: "X".into(),
            kind: OrgKind::Other,
            duty_phone: "020 7641 4000".into(),
            out_of_hours_phone: None,
            secure_email: "a@b.gov.uk".into(),
            active: true,
        };
        assert!(org.has_phone(&phone_query("02076414000").unwrap()));
        assert!(org.has_phone(&phone_query("+44 20 7641 4000").unwrap()));
        assert!(org.has_phone(&phone_query("7641 4000").unwrap()));
        assert_eq!(phone_query("riverside"), None);
        assert_eq!(phone_query("e09"), None);
    }

    fn valid() -> OrganisationInput {
        OrganisationInput {
            code: Some("e09000033".into()),
            name: Some("Westminster City Council".into()),
            kind: Some("local-authority".into()),
            duty_phone: Some("020 7641 4000".into()),
            out_of_hours_phone: None,
            secure_email: Some("mash@westminster.gov.uk".into()),
            active: None,
        }
    }

    #[test]
    fn a_valid_organisation_is_normalised() {
        let org = valid().into_new().unwrap();
        assert_eq!(org.code.as_str(), "E09000033");
        assert_eq!(org.kind, OrgKind::LocalAuthority);
        assert!(org.active);
    }

    #[test]
    fn every_invalid_field_is_named() {
        let input = OrganisationInput {
            code: Some("bad code!".into()),
            kind: Some("council".into()),
            duty_phone: Some("call us".into()),
            secure_email: Some("nobody".into()),
            ..OrganisationInput::default()
        };
        let fields: Vec<String> = input.into_new().unwrap_err().into_iter().map(|e| e.field).collect();
        for f in ["code", "name", "kind", "duty_phone", "secure_email"] {
            assert!(fields.contains(&f.to_string()), "{f} missing from {fields:?}");
        }
    }

    #[test]
    fn the_code_cannot_be_changed_by_an_update() {
        let input = OrganisationInput { code: Some("X".into()), ..OrganisationInput::default() };
        assert_eq!(input.into_changes().unwrap_err()[0].code, "immutable");
    }
}
