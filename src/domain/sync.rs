//! Reading an organisation's caseload file, one row at a time: CSV (header row, contract
//! columns plus optional extras) or NDJSON (one holding object per line). Pure: no I/O here.

use super::FieldError;
use super::holding::{Contact, HoldingInput, MAX_CARERS};
use super::identity::RawSubject;
use super::input::parse_json;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncFormat {
    Csv,
    Ndjson,
}

impl SyncFormat {
    /// From a Content-Type header or a file extension.
    pub fn from_content_type(value: &str) -> Option<SyncFormat> {
        let v = value.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        match v.as_str() {
            "text/csv" | "application/csv" => Some(SyncFormat::Csv),
            "application/x-ndjson" | "application/ndjson" | "application/jsonl" => Some(SyncFormat::Ndjson),
            _ => None,
        }
    }

    pub fn from_extension(path: &std::path::Path) -> Option<SyncFormat> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "csv" => Some(SyncFormat::Csv),
            "ndjson" | "jsonl" => Some(SyncFormat::Ndjson),
            _ => None,
        }
    }
}

/// A row that could not become a holding: its line in the file, the field and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Rejected {
    pub line: u64,
    pub field: String,
    pub message: String,
    /// The row's own reference, when it had one: people fix rows by reference, not line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_ref: Option<String>,
}

impl Rejected {
    pub fn from_errors(line: u64, local_ref: Option<&str>, errors: Vec<FieldError>) -> Vec<Rejected> {
        errors
            .into_iter()
            .map(|e| Rejected { line, field: e.field, message: e.message, local_ref: local_ref.map(str::to_string) })
            .collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    LocalRef,
    Category,
    Status,
    /// One of the child's own identifier columns (`nhs_number`, `given_name`, …).
    Child(SubjectField),
    ContactTeam,
    ContactPhone,
    ContactEmail,
    ExpectedDate,
    Shielded,
    /// `carerN_FIELD`: carer N (1-based, at most `MAX_CARERS`) and one of the subject fields.
    Carer(u8, SubjectField),
}

/// The fields of a subject, as CSV columns name them (carers take the same ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SubjectField {
    NhsNumber,
    Upn,
    GivenName,
    FamilyName,
    DateOfBirth,
    Postcode,
    OtherGivenNames,
    FormerFamilyNames,
}

const SUBJECT_FIELDS: &[(&str, SubjectField)] = &[
    ("nhs_number", SubjectField::NhsNumber),
    ("upn", SubjectField::Upn),
    ("given_name", SubjectField::GivenName),
    ("family_name", SubjectField::FamilyName),
    ("date_of_birth", SubjectField::DateOfBirth),
    ("postcode", SubjectField::Postcode),
    ("other_given_names", SubjectField::OtherGivenNames),
    ("former_family_names", SubjectField::FormerFamilyNames),
];

impl SubjectField {
    fn set(self, subject: &mut RawSubject, cell: &str) {
        let t = cell.trim();
        let text = (!t.is_empty()).then(|| t.to_string());
        let list = || t.split(';').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect();
        match self {
            SubjectField::NhsNumber => subject.nhs_number = text,
            SubjectField::Upn => subject.upn = text,
            SubjectField::GivenName => subject.given_name = text,
            SubjectField::FamilyName => subject.family_name = text,
            SubjectField::DateOfBirth => subject.date_of_birth = text,
            SubjectField::Postcode => subject.postcode = text,
            SubjectField::OtherGivenNames => subject.other_given_names = list(),
            SubjectField::FormerFamilyNames => subject.former_family_names = list(),
        }
    }
}

/// `carer2_family_name` → carer 2's family name.
fn carer_column(name: &str) -> Option<Column> {
    let rest = name.strip_prefix("carer")?;
    let (n, field) = rest.split_once('_')?;
    let n: u8 = n.parse().ok()?;
    if n == 0 || usize::from(n) > MAX_CARERS {
        return None;
    }
    SUBJECT_FIELDS.iter().find(|(f, _)| *f == field).map(|(_, f)| Column::Carer(n, *f))
}

/// A yes/no cell: `Ok(None)` when empty (say nothing), `Err` when it is neither.
fn parse_flag(cell: &str) -> Result<Option<bool>, ()> {
    match cell.trim().to_ascii_lowercase().as_str() {
        "" => Ok(None),
        "false" | "no" | "n" | "0" => Ok(Some(false)),
        "true" | "yes" | "y" | "1" => Ok(Some(true)),
        _ => Err(()),
    }
}

const COLUMNS: &[(&str, Column)] = &[
    ("local_ref", Column::LocalRef),
    ("category", Column::Category),
    ("status", Column::Status),
    ("contact_team", Column::ContactTeam),
    ("contact_phone", Column::ContactPhone),
    ("contact_email", Column::ContactEmail),
    ("expected_date", Column::ExpectedDate),
    ("shielded", Column::Shielded),
];

/// The CSV header, understood: which column holds what.
#[derive(Debug, Clone)]
pub struct CsvLayout(Vec<Column>);

impl CsvLayout {
    /// Reads the header row. An unknown column is an error that names its position only
    /// (a file without a header would otherwise put a child's details in the message).
    pub fn from_header<'a>(header: impl IntoIterator<Item = &'a str>) -> Result<CsvLayout, FieldError> {
        let mut columns = Vec::new();
        for (i, name) in header.into_iter().enumerate() {
            let name = name.trim().trim_start_matches('\u{feff}').to_ascii_lowercase();
            let child = || SUBJECT_FIELDS.iter().find(|(n, _)| *n == name).map(|(_, f)| Column::Child(*f));
            match COLUMNS
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, c)| *c)
                .or_else(child)
                .or_else(|| carer_column(&name))
            {
                Some(c) => columns.push(c),
                None => {
                    return Err(FieldError::new(
                        "header",
                        "unknown_column",
                        format!(
                            "column {} of the header row is not a known column; expected a header such as \
                             local_ref,category,status,nhs_number,upn,given_name,family_name,date_of_birth,postcode",
                            i + 1
                        ),
                    ));
                }
            }
        }
        if !columns.contains(&Column::LocalRef) {
            return Err(FieldError::new("header", "missing_column", "the header row must include local_ref"));
        }
        Ok(CsvLayout(columns))
    }

    /// One data row as a holding input (validation happens later, with the rest).
    pub fn row<'a>(&self, cells: impl IntoIterator<Item = &'a str>) -> HoldingInput {
        let mut input = HoldingInput { subject: Some(RawSubject::default()), ..HoldingInput::default() };
        let mut contact = Contact::default();
        let subject = input.subject.get_or_insert_with(RawSubject::default);
        let text = |cell: &str| {
            let t = cell.trim();
            (!t.is_empty()).then(|| t.to_string())
        };
        let mut carers = [const { None::<RawSubject> }; MAX_CARERS];
        for (column, cell) in self.0.iter().zip(cells) {
            match column {
                Column::LocalRef => input.local_ref = text(cell),
                Column::Category => input.category = text(cell),
                Column::Status => input.status = text(cell),
                Column::Child(field) => field.set(subject, cell),
                Column::ContactTeam => contact.team = text(cell),
                Column::ContactPhone => contact.phone = text(cell),
                Column::ContactEmail => contact.email = text(cell),
                Column::ExpectedDate => subject.expected_date = text(cell),
                Column::Shielded => match parse_flag(cell) {
                    Ok(flag) => input.shielded = flag,
                    Err(()) => input.invalid.push(FieldError::new(
                        "shielded",
                        "invalid_flag",
                        "shielded must be yes or no (true/false, 1/0); empty leaves a record as it is",
                    )),
                },
                Column::Carer(n, field) if !cell.trim().is_empty() => {
                    let slot = &mut carers[usize::from(*n) - 1];
                    field.set(slot.get_or_insert_with(RawSubject::default), cell);
                }
                Column::Carer(..) => {}
            }
        }
        // Carers in column order; a carer whose cells are all empty is not there.
        input.carers = carers.into_iter().flatten().collect();
        if contact != Contact::default() {
            input.contact = Some(contact);
        }
        input
    }
}

/// One NDJSON line as a holding input.
pub fn ndjson_row(line: &str) -> Result<HoldingInput, FieldError> {
    parse_json::<HoldingInput>(line.as_bytes())
        .map_err(|e| FieldError::new(e.field.unwrap_or_else(|| "line".into()), e.code, e.message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_contract_header_is_understood_in_any_order() {
        let layout = CsvLayout::from_header(["postcode", "local_ref", "category", "status", "given_name"]).unwrap();
        let input = layout.row(["LS1 4AP", "R1", "early-help", "open", " Amy "]);
        assert_eq!(input.local_ref.as_deref(), Some("R1"));
        assert_eq!(input.subject.unwrap().given_name.as_deref(), Some("Amy"));
    }

    #[test]
    fn an_unknown_column_is_named_by_position_not_content() {
        let err = CsvLayout::from_header(["local_ref", "Jane Smith"]).unwrap_err();
        assert!(err.message.contains("column 2") && !err.message.contains("Jane"));
    }

    #[test]
    fn a_bad_ndjson_line_names_the_field_without_its_value() {
        let err = ndjson_row(r#"{"local_ref": "A", "subject": {"nhs_number": 9434765919}}"#).unwrap_err();
        assert_eq!(err.field, "subject.nhs_number");
        assert!(!err.message.contains("9434765919"));
    }
}
