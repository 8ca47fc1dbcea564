//! Where a lookup could have missed a near match, and how the asker can widen it.
//!
//! Decided from the fields the asker gave and the variants `identity::lookup_keys` asks for
//! them, never from what was found: the advice is the same whether or not any record (a
//! shielded one included) exists, so it tells the asker nothing about the index.

use serde::{Deserialize, Serialize};

use super::identity::{Subject, family_barrels};

/// One way to widen a lookup. The order is the order of the advice on the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Widen {
    /// No NHS number or permanent UPN: only the name and date keys were asked, and they allow
    /// small slips (a letter of a name, one digit of the date, or day and month exchanged).
    AddNhsNumberOrUpn,
    /// A double-barrelled surname was given: a record under one part alone is met only with the
    /// date exactly and the first name at most one letter out, and only while the lookup's key
    /// budget leaves room for it (`identity::MAX_LOOKUP_KEYS`).
    TrySurnamePartsAlone,
    /// One surname was given: a record under another surname is met only where its holder
    /// recorded this one too (one barrel of a double-barrelled name, a former name).
    TryOtherSurnames,
    /// A postcode with the names: a record with another postcode counts it slightly against the
    /// match, which can drop a near match below "possible".
    LeavePostcodeOut,
    /// An NHS number or UPN without both names and the date: a record held without that number
    /// can only be found by names and date of birth.
    AddNamesAndDateOfBirth,
}

impl Widen {
    /// The advice in words, for the page.
    pub fn advice(self) -> &'static str {
        match self {
            Widen::AddNhsNumberOrUpn => {
                "Add the NHS number or UPN if you can find it: it finds the child however the name is spelt. \
                 Without it, the lookup allows small slips only (a letter of a name, one digit of the date of \
                 birth, or day and month the wrong way round)."
            }
            Widen::TrySurnamePartsAlone => {
                "Look up again with each part of the double-barrelled surname on its own: a record under one \
                 part alone is found only if the first name and date of birth are almost exactly as recorded."
            }
            Widen::TryOtherSurnames => {
                "If the child has had another surname (a double-barrelled one, a former name, a parent's), look \
                 up again with it: a record under another surname is found only where its holder recorded this \
                 surname too."
            }
            Widen::LeavePostcodeOut => {
                "If the family may have moved, look up again without the postcode: a different postcode counts \
                 slightly against a match."
            }
            Widen::AddNamesAndDateOfBirth => {
                "Add the first name, last name and date of birth if you have them: a record held without this \
                 number is found only by them."
            }
        }
    }
}

/// How a lookup of this subject could be widened, from the fields given (see `Widen`).
pub fn widening(subject: &Subject) -> Vec<Widen> {
    let strong = subject.nhs_number().is_some() || subject.upn().is_some_and(|u| u.is_permanent());
    let names_and_date =
        subject.given_name().is_some() && subject.family_name().is_some() && subject.date_of_birth().is_some();
    let mut widen = Vec::new();
    if !strong {
        widen.push(Widen::AddNhsNumberOrUpn);
    }
    if names_and_date {
        let barrels = subject.family_name().map(family_barrels).unwrap_or_default();
        widen.push(if barrels.len() > 1 { Widen::TrySurnamePartsAlone } else { Widen::TryOtherSurnames });
        if subject.postcode().is_some() {
            widen.push(Widen::LeavePostcodeOut);
        }
    } else if strong {
        widen.push(Widen::AddNamesAndDateOfBirth);
    }
    widen
}

/// The advice for several subjects (a family lookup): each way once, in order.
pub fn widening_all<'a>(subjects: impl IntoIterator<Item = &'a Subject>) -> Vec<Widen> {
    let mut all: Vec<Widen> = subjects.into_iter().flat_map(widening).collect();
    all.sort_unstable();
    all.dedup();
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::identity::{KeyUse, RawSubject, SubjectRole};

    fn subject(nhs: Option<&str>, given: Option<&str>, family: Option<&str>, postcode: Option<&str>) -> Subject {
        let raw = RawSubject {
            nhs_number: nhs.map(Into::into),
            given_name: given.map(Into::into),
            family_name: family.map(Into::into),
            date_of_birth: given.map(|_| "2016-04-12".into()),
            postcode: postcode.map(Into::into),
            ..RawSubject::default()
        };
        Subject::parse(&raw, SubjectRole::Child, KeyUse::Lookup, time::macros::date!(2026 - 11 - 24)).unwrap()
    }

    #[test]
    fn a_misspelt_first_name_with_one_surname_is_told_to_try_other_surnames_and_the_number() {
        let w = widening(&subject(None, Some("Rbuy"), Some("Fletcher"), None));
        assert_eq!(w, vec![Widen::AddNhsNumberOrUpn, Widen::TryOtherSurnames]);
    }

    #[test]
    fn a_double_barrelled_surname_is_told_to_try_each_part_and_a_postcode_to_leave_it_out() {
        let w = widening(&subject(None, Some("Rbuy"), Some("Demo-Fletcher"), Some("SO14")));
        assert_eq!(w, vec![Widen::AddNhsNumberOrUpn, Widen::TrySurnamePartsAlone, Widen::LeavePostcodeOut]);
    }

    #[test]
    fn an_nhs_number_alone_is_told_that_records_without_it_need_names_and_date() {
        let w = widening(&subject(Some("9434765919"), None, None, None));
        assert_eq!(w, vec![Widen::AddNamesAndDateOfBirth]);
    }
}
