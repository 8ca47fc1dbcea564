//! Validated identifier types: NHS number, unique pupil number, date of birth, UK postcode.
//! Each can only hold a valid value; `Debug` is redacted so a stray `{:?}` cannot leak one.

use std::fmt;

use time::{Date, Month};

use super::error::Invalid;

/// Writes `Name(***)`: identifiers never appear in logs, even through `{:?}`.
macro_rules! redacted_debug {
    ($ty:ident) => {
        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($ty), "(***)"))
            }
        }
    };
}

/// A 10-digit NHS number whose Modulus 11 check digit is correct.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct NhsNumber([u8; 10]);

redacted_debug!(NhsNumber);

impl NhsNumber {
    /// Parses an NHS number, tolerating spaces and hyphens ("943 476 5919", "943-476-5919").
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let mut digits = [0u8; 10];
        let mut count = 0usize;
        for c in raw.chars() {
            match c {
                ' ' | '-' | '\t' => continue,
                '0'..='9' => {
                    let slot = digits.get_mut(count).ok_or(NHS_LENGTH)?;
                    *slot = c as u8;
                    count += 1;
                }
                _ => return Err(NHS_FORMAT),
            }
        }
        if count != 10 {
            return Err(NHS_LENGTH);
        }
        // 0000000000, 1111111111, ...: placeholders typed to get past a mandatory field.
        if digits.iter().all(|&d| d == digits[0]) {
            return Err(NHS_PLACEHOLDER);
        }
        if nhs_check_digit(&digits) != Some(digits[9] - b'0') {
            return Err(NHS_CHECK);
        }
        Ok(Self(digits))
    }

    /// The ten ASCII digits, for building match keys.
    pub(crate) fn digits(&self) -> &[u8; 10] {
        &self.0
    }
}

const NHS_LENGTH: Invalid = Invalid::new("invalid_length", "NHS number must have 10 digits");
const NHS_FORMAT: Invalid = Invalid::new("invalid_format", "NHS number may contain only digits, spaces and hyphens");
const NHS_PLACEHOLDER: Invalid = Invalid::new("placeholder_value", "NHS number is a placeholder (all digits the same)");
const NHS_CHECK: Invalid = Invalid::new("invalid_check_digit", "NHS number check digit does not match (Modulus 11)");

/// Modulus 11 (NHS Data Dictionary): weights 10..2 over the first nine digits,
/// check = 11 - (sum mod 11); 11 becomes 0 and 10 means the number can never be valid.
fn nhs_check_digit(digits: &[u8; 10]) -> Option<u8> {
    let sum: u32 = digits[..9].iter().zip((2..=10u32).rev()).map(|(&d, w)| u32::from(d - b'0') * w).sum();
    match 11 - sum % 11 {
        11 => Some(0),
        10 => None,
        c => u8::try_from(c).ok(),
    }
}

/// Whether a unique pupil number is permanent or temporary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UpnKind {
    /// Ends in a digit: allocated once, kept for the child's school career. A strong key.
    Permanent,
    /// Ends in a letter: a school's stop-gap until the permanent UPN is known. Weak evidence only.
    Temporary,
}

/// A 13-character English unique pupil number with a correct check letter.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Upn {
    chars: [u8; 13],
    kind: UpnKind,
}

redacted_debug!(Upn);

/// The 23 letters the UPN check uses, in value order (I, O and S are never used).
const UPN_LETTERS: &[u8; 23] = b"ABCDEFGHJKLMNPQRTUVWXYZ";

const UPN_LENGTH: Invalid = Invalid::new("invalid_length", "UPN must have 13 characters");
const UPN_FORMAT: Invalid = Invalid::new(
    "invalid_format",
    "UPN must be a check letter, 11 digits, then a digit (permanent) or a letter (temporary)",
);
const UPN_CHECK: Invalid = Invalid::new("invalid_check_letter", "UPN check letter does not match (DfE modulus 23)");

impl Upn {
    /// Parses a UPN, tolerating spaces and lower case.
    ///
    /// Check letter per the DfE Unique Pupil Number specification (UK Government Data Standards
    /// Catalogue, "Unique Pupil Number" v2.0, 2004; repeated in the DfE school census guide,
    /// validation 1510): weight the characters at positions 2..13 by 2..13 (a temporary UPN's final
    /// letter counts as its index in `UPN_LETTERS`), sum mod 23, and map 0..22 to `UPN_LETTERS`.
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let mut chars = [0u8; 13];
        let mut count = 0usize;
        for c in raw.chars() {
            if c == ' ' || c == '\t' {
                continue;
            }
            if !c.is_ascii_alphanumeric() {
                return Err(UPN_FORMAT);
            }
            let slot = chars.get_mut(count).ok_or(UPN_LENGTH)?;
            *slot = c.to_ascii_uppercase() as u8;
            count += 1;
        }
        if count != 13 {
            return Err(UPN_LENGTH);
        }
        if !chars[1..12].iter().all(u8::is_ascii_digit) {
            return Err(UPN_FORMAT);
        }
        let last = chars[12];
        let (kind, last_value) = if last.is_ascii_digit() {
            (UpnKind::Permanent, u32::from(last - b'0'))
        } else {
            let index = letter_value(last).ok_or(UPN_FORMAT)?;
            (UpnKind::Temporary, index)
        };
        let check = letter_value(chars[0]).ok_or(UPN_FORMAT)?;
        let sum: u32 =
            chars[1..12].iter().zip(2u32..).map(|(&d, w)| u32::from(d - b'0') * w).sum::<u32>() + last_value * 13;
        if sum % 23 != check {
            return Err(UPN_CHECK);
        }
        Ok(Self { chars, kind })
    }

    pub fn kind(&self) -> UpnKind {
        self.kind
    }

    pub fn is_permanent(&self) -> bool {
        self.kind == UpnKind::Permanent
    }

    pub(crate) fn chars(&self) -> &[u8; 13] {
        &self.chars
    }
}

fn letter_value(letter: u8) -> Option<u32> {
    UPN_LETTERS.iter().position(|&l| l == letter).and_then(|i| u32::try_from(i).ok())
}

/// A real calendar date of birth, not in the future, within the role's age range.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DateOfBirth(Date);

redacted_debug!(DateOfBirth);

const DOB_FORMAT: Invalid = Invalid::new("invalid_format", "date of birth must be an ISO 8601 date (YYYY-MM-DD)");
const DOB_NOT_A_DATE: Invalid = Invalid::new("invalid_date", "date of birth is not a real date");
const DOB_FUTURE: Invalid = Invalid::new("in_future", "date of birth is in the future");

impl DateOfBirth {
    /// Parses `YYYY-MM-DD` strictly: a missing zero or another order is an error, not a guess.
    pub fn parse(raw: &str, today: Date) -> Result<Self, Invalid> {
        let bytes = raw.trim().as_bytes();
        let [y1, y2, y3, y4, b'-', m1, m2, b'-', d1, d2] = *bytes else {
            return Err(DOB_FORMAT);
        };
        let number = |ds: &[u8]| -> Result<u16, Invalid> {
            ds.iter().try_fold(0u16, |acc, &d| {
                if d.is_ascii_digit() { Ok(acc * 10 + u16::from(d - b'0')) } else { Err(DOB_FORMAT) }
            })
        };
        let year = number(&[y1, y2, y3, y4])?;
        let month = number(&[m1, m2])?;
        let day = number(&[d1, d2])?;
        let date = date_from_parts(year, month, day).ok_or(DOB_NOT_A_DATE)?;
        if date > today {
            return Err(DOB_FUTURE);
        }
        Ok(Self(date))
    }

    pub fn date(&self) -> Date {
        self.0
    }

    /// Completed years of age on `today`.
    pub fn age_on(&self, today: Date) -> i32 {
        let birthday_passed = (u8::from(today.month()), today.day()) >= (u8::from(self.0.month()), self.0.day());
        today.year() - self.0.year() - i32::from(!birthday_passed)
    }

    /// `YYYYMMDD` as ASCII, the canonical form inside match keys.
    pub(crate) fn compact(&self) -> [u8; 8] {
        compact_date(self.0)
    }
}

/// An unborn child's expected date of delivery: a real date, at most ten months ahead and at
/// most a year past (a pre-birth record the holder has not yet updated after the birth).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExpectedDate(Date);

redacted_debug!(ExpectedDate);

const EXPECTED_FORMAT: Invalid = Invalid::new("invalid_format", "expected date must be an ISO 8601 date (YYYY-MM-DD)");
const EXPECTED_NOT_A_DATE: Invalid = Invalid::new("invalid_date", "expected date is not a real date");
const EXPECTED_OUT_OF_RANGE: Invalid =
    Invalid::new("out_of_range", "expected date must be within ten months from today and at most a year ago");

impl ExpectedDate {
    pub fn parse(raw: &str, today: Date) -> Result<Self, Invalid> {
        let date = match DateOfBirth::parse(raw, Date::MAX) {
            Ok(d) => d.0,
            Err(e) if e == DOB_NOT_A_DATE => return Err(EXPECTED_NOT_A_DATE),
            Err(_) => return Err(EXPECTED_FORMAT),
        };
        let days = (date - today).whole_days();
        if !(-366..=305).contains(&days) {
            return Err(EXPECTED_OUT_OF_RANGE);
        }
        Ok(Self(date))
    }

    pub fn date(&self) -> Date {
        self.0
    }
}

/// Builds a date from numeric parts, or `None` if the parts are not a real date.
pub(crate) fn date_from_parts(year: u16, month: u16, day: u16) -> Option<Date> {
    let month = Month::try_from(u8::try_from(month).ok()?).ok()?;
    Date::from_calendar_date(i32::from(year), month, u8::try_from(day).ok()?).ok()
}

/// `YYYYMMDD` as ASCII digits; years are 0..=9999 here because parsing takes four digits.
pub(crate) fn compact_date(date: Date) -> [u8; 8] {
    let year = u32::try_from(date.year()).unwrap_or(0) % 10_000;
    let month = u32::from(u8::from(date.month()));
    let day = u32::from(date.day());
    let value = year * 10_000 + month * 100 + day;
    let mut out = [b'0'; 8];
    let mut rest = value;
    for slot in out.iter_mut().rev() {
        // `rest % 10` is a single digit, so the cast cannot truncate.
        *slot = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    out
}

/// A UK postcode: the outward code always, the inward code when the postcode is full.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Postcode {
    outward: String,
    inward: Option<String>,
}

redacted_debug!(Postcode);

const POSTCODE_FORMAT: Invalid = Invalid::new("invalid_format", "postcode is not a valid UK postcode");
const POSTCODE_OUTWARD_ONLY: Invalid = Invalid::new(
    "outward_code_only",
    "a full postcode is required here (outward code alone is accepted only for a lookup)",
);

impl Postcode {
    /// Parses a full postcode ("sw1a1aa" → "SW1A 1AA"), or an outward code alone when
    /// `allow_outward_only` (a lookup may know only the district, e.g. "SW1A").
    pub fn parse(raw: &str, allow_outward_only: bool) -> Result<Self, Invalid> {
        let mut compact = String::with_capacity(8);
        for c in raw.chars() {
            if c.is_whitespace() {
                continue;
            }
            if !c.is_ascii_alphanumeric() || compact.len() >= 8 {
                return Err(POSTCODE_FORMAT);
            }
            compact.push(c.to_ascii_uppercase());
        }
        if compact == "GIR0AA" {
            return Ok(Self { outward: "GIR".to_owned(), inward: Some("0AA".to_owned()) });
        }
        match compact.len() {
            2..=4 => {
                if !valid_outward(compact.as_bytes()) {
                    return Err(POSTCODE_FORMAT);
                }
                if !allow_outward_only {
                    return Err(POSTCODE_OUTWARD_ONLY);
                }
                Ok(Self { outward: compact, inward: None })
            }
            5..=7 => {
                let (outward, inward) = compact.split_at(compact.len() - 3);
                if !valid_outward(outward.as_bytes()) || !valid_inward(inward.as_bytes()) {
                    return Err(POSTCODE_FORMAT);
                }
                Ok(Self { outward: outward.to_owned(), inward: Some(inward.to_owned()) })
            }
            _ => Err(POSTCODE_FORMAT),
        }
    }

    /// The outward code ("SW1A"): the postcode district, the only part a match key uses.
    pub fn outward(&self) -> &str {
        &self.outward
    }

    pub fn is_full(&self) -> bool {
        self.inward.is_some()
    }

    /// The normalised form, "SW1A 1AA" (or "SW1A" when only the outward code is known).
    pub fn normalised(&self) -> String {
        match &self.inward {
            Some(inward) => format!("{} {}", self.outward, inward),
            None => self.outward.clone(),
        }
    }
}

/// Outward code formats A9, A99, AA9, AA99, A9A, AA9A with the Royal Mail letter rules:
/// first letter not Q, V, X; second not I, J, Z; a final letter from fixed sets.
fn valid_outward(s: &[u8]) -> bool {
    let first = |c: u8| c.is_ascii_uppercase() && !b"QVX".contains(&c);
    let second = |c: u8| c.is_ascii_uppercase() && !b"IJZ".contains(&c);
    let digit = |c: u8| c.is_ascii_digit();
    let a9a_letter = |c: u8| b"ABCDEFGHJKPSTUW".contains(&c);
    let aa9a_letter = |c: u8| b"ABEHMNPRVWXY".contains(&c);
    match *s {
        [a, n] => first(a) && digit(n),
        // A99, A9A or AA9: try each shape rather than committing to the first that fits.
        [a, x, y] => first(a) && ((digit(x) && (digit(y) || a9a_letter(y))) || (second(x) && digit(y))),
        [a, b, n, y] => first(a) && second(b) && digit(n) && (digit(y) || aa9a_letter(y)),
        _ => false,
    }
}

/// Inward code: a digit and two letters, never C, I, K, M, O or V.
fn valid_inward(s: &[u8]) -> bool {
    let letter = |c: u8| c.is_ascii_uppercase() && !b"CIKMOV".contains(&c);
    matches!(*s, [n, a, b] if n.is_ascii_digit() && letter(a) && letter(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    const TODAY: Date = date!(2026 - 11 - 01);

    #[test]
    fn nhs_number_with_correct_check_digit_parses_with_spaces_or_hyphens() {
        assert!(NhsNumber::parse("9434765919").is_ok());
        assert!(NhsNumber::parse("943 476 5919").is_ok());
        assert!(NhsNumber::parse("943-476-5919").is_ok());
    }

    #[test]
    fn nhs_number_with_wrong_check_digit_is_rejected() {
        assert_eq!(NhsNumber::parse("9434765918").unwrap_err().code, "invalid_check_digit");
    }

    #[test]
    fn nhs_number_whose_check_would_be_ten_is_rejected() {
        // Find a 9-digit stem whose Modulus 11 check is 10: no 10th digit can make it valid.
        let stem = (100_000_000u32..)
            .map(|n| n.to_string())
            .find(|s| {
                let mut digits = [b'0'; 10];
                digits[..9].copy_from_slice(s.as_bytes());
                nhs_check_digit(&digits).is_none()
            })
            .expect("such a stem exists");
        for last in 0..10 {
            assert!(NhsNumber::parse(&format!("{stem}{last}")).is_err());
        }
    }

    #[test]
    fn nhs_placeholders_and_wrong_lengths_are_rejected() {
        assert_eq!(NhsNumber::parse("0000000000").unwrap_err().code, "placeholder_value");
        assert_eq!(NhsNumber::parse("94347659").unwrap_err().code, "invalid_length");
        assert_eq!(NhsNumber::parse("94347659190").unwrap_err().code, "invalid_length");
        assert_eq!(NhsNumber::parse("943476591X").unwrap_err().code, "invalid_format");
    }

    #[test]
    fn permanent_upn_with_correct_check_letter_parses() {
        let upn = Upn::parse("B801200005001").expect("valid");
        assert!(upn.is_permanent());
        // Weighted sum 266, 266 mod 23 = 13 -> P. (A census-help article gives "Q" for this
        // stem, but its own sum, 2x2 + 4x7 + 9x1 + 10x6 + 12x4 + 13x9, is 266, not 267.)
        assert!(Upn::parse("p207000016049").is_ok());
    }

    #[test]
    fn upn_with_wrong_check_letter_is_rejected() {
        assert_eq!(Upn::parse("A801200005001").unwrap_err().code, "invalid_check_letter");
        assert_eq!(Upn::parse("B207000016049").unwrap_err().code, "invalid_check_letter");
    }

    #[test]
    fn temporary_upn_is_accepted_but_marked_temporary() {
        // Stem 80120000500 + final letter 'A' (value 0): 93 - 13 = 80, 80 mod 23 = 11 -> M.
        let upn = Upn::parse("M80120000500A").expect("valid temporary UPN");
        assert_eq!(upn.kind(), UpnKind::Temporary);
    }

    #[test]
    fn upn_with_excluded_letters_or_bad_shape_is_rejected() {
        assert_eq!(Upn::parse("I801200005001").unwrap_err().code, "invalid_format");
        assert_eq!(Upn::parse("M80120000500O").unwrap_err().code, "invalid_format");
        assert_eq!(Upn::parse("B80120000A001").unwrap_err().code, "invalid_format");
        assert_eq!(Upn::parse("B80120000500").unwrap_err().code, "invalid_length");
    }

    #[test]
    fn date_of_birth_must_be_strict_iso_and_real() {
        assert!(DateOfBirth::parse("2015-03-04", TODAY).is_ok());
        assert_eq!(DateOfBirth::parse("04/03/2015", TODAY).unwrap_err().code, "invalid_format");
        assert_eq!(DateOfBirth::parse("2015-3-4", TODAY).unwrap_err().code, "invalid_format");
        assert_eq!(DateOfBirth::parse("2015-02-30", TODAY).unwrap_err().code, "invalid_date");
        assert_eq!(DateOfBirth::parse("2027-01-01", TODAY).unwrap_err().code, "in_future");
        assert!(DateOfBirth::parse("2016-02-29", TODAY).is_ok());
    }

    #[test]
    fn age_counts_completed_years() {
        let dob = DateOfBirth::parse("2000-11-02", TODAY).expect("valid");
        assert_eq!(dob.age_on(TODAY), 25);
        let dob = DateOfBirth::parse("2000-11-01", TODAY).expect("valid");
        assert_eq!(dob.age_on(TODAY), 26);
    }

    #[test]
    fn compact_date_is_eight_ascii_digits() {
        assert_eq!(&compact_date(date!(2015 - 03 - 04)), b"20150304");
    }

    #[test]
    fn postcodes_are_normalised_with_one_space() {
        for (raw, want) in [
            ("sw1a1aa", "SW1A 1AA"),
            (" M1  1AE ", "M1 1AE"),
            ("b338th", "B33 8TH"),
            ("CR2 6XH", "CR2 6XH"),
            ("DN55 1PT", "DN55 1PT"),
            ("W1A 0AX", "W1A 0AX"),
            ("EC1A 1BB", "EC1A 1BB"),
            ("gir 0aa", "GIR 0AA"),
        ] {
            let postcode = Postcode::parse(raw, false).expect(want);
            assert_eq!(postcode.normalised(), want);
        }
    }

    #[test]
    fn invalid_postcodes_are_rejected() {
        for raw in ["Q1 1AA", "SW1A 1AI", "12345", "SW1A-1AA", "AAA 1AA", "M1 1CA", "", "X"] {
            assert!(Postcode::parse(raw, true).is_err(), "{raw}");
        }
    }

    #[test]
    fn outward_only_postcode_is_accepted_only_when_allowed() {
        assert_eq!(Postcode::parse("SW1A", true).expect("lookup").outward(), "SW1A");
        assert_eq!(Postcode::parse("SW1A", false).unwrap_err().code, "outward_code_only");
    }

    #[test]
    fn identifier_debug_output_is_redacted() {
        let nhs = NhsNumber::parse("9434765919").expect("valid");
        let upn = Upn::parse("B801200005001").expect("valid");
        let dob = DateOfBirth::parse("2015-03-04", TODAY).expect("valid");
        let postcode = Postcode::parse("SW1A 1AA", false).expect("valid");
        let shown = format!("{nhs:?} {upn:?} {dob:?} {postcode:?}");
        assert_eq!(shown, "NhsNumber(***) Upn(***) DateOfBirth(***) Postcode(***)");
    }
}
