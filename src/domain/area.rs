//! Which kinds of organisation take part in a child's area, for a "not known" answer: a postcode
//! district (given by the asker) against the areas each organisation says it covers.
//!
//! Decided from the district typed and the directory alone, never from what a lookup found, so
//! the wording is the same for a child who is not known and for one held behind a shield.

use serde::{Deserialize, Serialize};

use super::FieldError;
use super::organisation::OrgKind;
use crate::clock::Millis;

/// Most areas one organisation may list (a county council has a few dozen districts).
pub const MAX_AREAS: usize = 200;

/// Parses an organisation's areas: postcode areas ("SO") or districts ("SO14", "SW1A"),
/// separated by commas or spaces; upper-cased, sorted and without repeats. Empty: everywhere.
pub fn parse_areas(text: &str) -> Result<Vec<String>, FieldError> {
    let mut areas: Vec<String> = text
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|a| !a.is_empty())
        .map(str::to_ascii_uppercase)
        .collect();
    let valid = |a: &str| {
        let letters = a.bytes().take_while(u8::is_ascii_alphabetic).count();
        let rest = &a.as_bytes()[letters..];
        (1..=2).contains(&letters)
            && a.len() <= 4
            && rest.first().is_none_or(u8::is_ascii_digit)
            && rest.iter().all(u8::is_ascii_alphanumeric)
    };
    if areas.iter().any(|a| !valid(a)) {
        return Err(FieldError::new(
            "areas",
            "invalid_area",
            "areas must be postcode areas (SO) or districts (SO14), separated by commas or spaces",
        ));
    }
    areas.sort();
    areas.dedup();
    if areas.len() > MAX_AREAS {
        return Err(FieldError::new("areas", "too_many", "at most 200 areas"));
    }
    Ok(areas)
}

/// Whether an organisation listing `areas` covers this postcode district. An organisation
/// that lists none covers everywhere (a national body, or one that has not said).
pub fn covers(areas: &[String], district: &str) -> bool {
    let postcode_area: String = district.chars().take_while(char::is_ascii_alphabetic).collect();
    areas.is_empty() || areas.iter().any(|a| a == district || *a == postcode_area)
}

/// One active organisation, as the area summary needs it.
#[derive(Debug, Clone)]
pub struct Participant {
    pub kind: OrgKind,
    pub areas: Vec<String>,
    pub holdings: i64,
    /// When it last sent its caseload (a completed sync).
    pub last_sync: Option<Millis>,
}

/// One kind of organisation in the area.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AreaKind {
    pub kind: OrgKind,
    /// Active organisations of this kind covering the area.
    pub participating: usize,
    /// Those of them that have sent records.
    pub with_records: usize,
    /// The latest time one of them sent its caseload (RFC 3339 in the API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync: Option<String>,
}

/// Who takes part in the child's area (every kind of organisation, in the directory's order),
/// or nationally when no postcode was given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AreaCoverage {
    /// A postcode was given, so the counts are for its district (which is never repeated).
    pub local: bool,
    pub kinds: Vec<AreaKind>,
}

/// The area summary for `district` (or nationally), with `when` formatting a sync time.
pub fn area_coverage(
    district: Option<&str>,
    participants: &[Participant],
    when: impl Fn(Millis) -> String,
) -> AreaCoverage {
    let kinds = OrgKind::ALL
        .into_iter()
        .map(|kind| {
            let here: Vec<&Participant> = participants
                .iter()
                .filter(|p| p.kind == kind && district.is_none_or(|d| covers(&p.areas, d)))
                .collect();
            AreaKind {
                kind,
                participating: here.len(),
                with_records: here.iter().filter(|p| p.holdings > 0).count(),
                last_sync: here.iter().filter_map(|p| p.last_sync).max().map(&when),
            }
        })
        .collect();
    AreaCoverage { local: district.is_some(), kinds }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(kind: OrgKind, areas: &str, holdings: i64, last_sync: Option<Millis>) -> Participant {
        Participant { kind, areas: parse_areas(areas).unwrap(), holdings, last_sync }
    }

    #[test]
    fn areas_are_postcode_areas_or_districts() {
        assert_eq!(parse_areas("so14, SO15 so").unwrap(), vec!["SO", "SO14", "SO15"]);
        assert!(parse_areas("SO14 3AA").is_err());
        assert!(parse_areas("Southampton").is_err());
        assert_eq!(parse_areas("  ").unwrap(), Vec::<String>::new());
    }

    #[test]
    fn a_district_is_covered_by_itself_its_postcode_area_or_no_area_at_all() {
        let areas = parse_areas("SO14 PO").unwrap();
        assert!(covers(&areas, "SO14"));
        assert!(covers(&areas, "PO1"));
        assert!(!covers(&areas, "SO15"));
        assert!(!covers(&areas, "P1"));
        assert!(covers(&[], "SW1A"));
    }

    #[test]
    fn the_summary_counts_each_kind_in_the_area_and_its_latest_sync() {
        let all = [
            p(OrgKind::LocalAuthority, "SO14", 3, Some(1_000)),
            p(OrgKind::LocalAuthority, "NE1", 5, Some(9_000)),
            p(OrgKind::NhsTrust, "", 0, None),
        ];
        let here = area_coverage(Some("SO14"), &all, |ms| ms.to_string());
        assert!(here.local);
        let la = &here.kinds[0];
        assert_eq!((la.participating, la.with_records, la.last_sync.as_deref()), (1, 1, Some("1000")));
        assert_eq!((here.kinds[1].participating, here.kinds[1].with_records), (1, 0));
        assert_eq!(here.kinds[3].participating, 0);
        let national = area_coverage(None, &all, |ms| ms.to_string());
        assert_eq!((national.kinds[0].participating, national.kinds[0].last_sync.as_deref()), (2, Some("9000")));
    }
}
