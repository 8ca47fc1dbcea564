//! Name normalisation: Unicode NFKC, transliteration to ASCII, case folding, part splitting,
//! double-barrelled surname barrels and a phonetic code, so two spellings of a name can meet.

use std::fmt;

use rphonetic::DoubleMetaphone;
use unicode_normalization::UnicodeNormalization;

use super::error::Invalid;

/// Longest name accepted, in characters of the raw input. Real names are far shorter; the limit
/// bounds the work a hostile input can cause.
pub const MAX_NAME_CHARS: usize = 100;

/// Names longer than this (in ASCII letters after normalisation) get no typo variants at lookup:
/// the variant count grows with length and such names are already specific.
pub(crate) const MAX_TYPO_NAME_LEN: usize = 24;

const NAME_EMPTY: Invalid = Invalid::new("no_letters", "name has no letters after normalisation");
const NAME_TOO_LONG: Invalid = Invalid::new("too_long", "name is longer than 100 characters");
const NAME_CONTROL: Invalid = Invalid::new("invalid_characters", "name contains control or text-direction characters");
const NAME_DIGITS: Invalid = Invalid::new("invalid_characters", "name contains digits");

/// A name in canonical form: upper-case ASCII letters in one or more parts.
///
/// "Ó Súilleabháin" → parts `O`, `SUILLEABHAIN`; whole `OSUILLEABHAIN`.
/// "Smith-Jones" → parts `SMITH`, `JONES`; whole `SMITHJONES`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct NormalisedName {
    parts: Vec<String>,
    whole: String,
}

impl fmt::Debug for NormalisedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NormalisedName(***)")
    }
}

impl NormalisedName {
    /// The parts, split at spaces, hyphens and other punctuation.
    pub fn parts(&self) -> &[String] {
        &self.parts
    }

    /// All parts run together: the form used in match keys, so "Smith Jones", "Smith-Jones"
    /// and "SmithJones" meet.
    pub fn whole(&self) -> &str {
        &self.whole
    }

    /// Parts joined by single spaces; normalising this again gives the same name.
    pub fn display(&self) -> String {
        self.parts.join(" ")
    }

    /// The first letter, for the weak family + date of birth + initial key.
    pub fn initial(&self) -> u8 {
        // `whole` is never empty: `normalise_name` rejects names without letters.
        self.whole.as_bytes().first().copied().unwrap_or(b'?')
    }
}

/// Normalises a name: rejects control characters, digits and over-long input; applies NFKC,
/// transliterates to ASCII (deunicode: "Łucja" → "Lucja", "Zoë" → "Zoe"), upper-cases, drops
/// apostrophes ("O'Brien" → "OBRIEN") and splits parts at spaces, hyphens and other punctuation.
pub fn normalise_name(raw: &str) -> Result<NormalisedName, Invalid> {
    if raw.chars().count() > MAX_NAME_CHARS {
        return Err(NAME_TOO_LONG);
    }
    if raw.chars().any(is_forbidden) {
        return Err(NAME_CONTROL);
    }
    let composed: String = raw.nfkc().collect();
    // Unknown symbols (emoji, private use) become a separator rather than "[?]".
    let ascii = deunicode::deunicode_with_tofu(&composed, " ");
    let mut parts = Vec::new();
    let mut current = String::new();
    for c in ascii.chars() {
        match c {
            'A'..='Z' | 'a'..='z' => current.push(c.to_ascii_uppercase()),
            // Apostrophes join: O'Brien, D'Souza, N'Dour.
            '\'' | '`' => {}
            '0'..='9' => return Err(NAME_DIGITS),
            _ => {
                if !current.is_empty() {
                    parts.push(std::mem::take(&mut current));
                }
            }
        }
    }
    if !current.is_empty() {
        parts.push(current);
    }
    if parts.is_empty() {
        return Err(NAME_EMPTY);
    }
    let whole = parts.concat();
    Ok(NormalisedName { parts, whole })
}

/// Control characters and the bidirectional overrides used to disguise text.
fn is_forbidden(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Family-name particles that belong to the next part rather than standing as a barrel:
/// "van der Berg" is one barrel, VANDERBERG, not three.
const PARTICLES: &[&str] = &[
    "AL", "AP", "BIN", "BINT", "DA", "DE", "DEL", "DELLA", "DEN", "DER", "DES", "DI", "DOS", "DU", "EL", "LA", "LE",
    "MAC", "MC", "O", "ST", "TE", "TEN", "TER", "UI", "VAN", "VON",
];

/// The barrels of a family name: its parts with particles joined to the part after them.
/// Returns an empty list for a single-barrelled name, so callers add no redundant keys.
pub fn family_barrels(name: &NormalisedName) -> Vec<String> {
    let mut barrels = Vec::new();
    let mut pending = String::new();
    for part in name.parts() {
        pending.push_str(part);
        if !PARTICLES.contains(&part.as_str()) {
            barrels.push(std::mem::take(&mut pending));
        }
    }
    if !pending.is_empty() {
        match barrels.last_mut() {
            Some(last) => last.push_str(&pending),
            None => barrels.push(pending),
        }
    }
    if barrels.len() < 2 {
        return Vec::new();
    }
    // A one- or two-letter barrel (an initial left over) is too unspecific to stand alone.
    barrels.retain(|b| b.len() >= 3);
    barrels
}

/// Longest phonetic code kept. The customary 4 makes long names collide ("Gleningmore" and
/// "Gleningbrook" both KLNN); 6 keeps spelling tolerance, which acts early in a name.
const PHONETIC_CODE_LEN: usize = 6;

/// The primary Double Metaphone code (Philips 2000; rphonetic's port of Apache commons-codec),
/// at most `PHONETIC_CODE_LEN` long. `None` when the name has no sounding letters.
pub fn phonetic(ascii_upper: &str) -> Option<String> {
    let code = DoubleMetaphone::new(Some(PHONETIC_CODE_LEN)).double_metaphone(ascii_upper).primary();
    (!code.is_empty()).then_some(code)
}

/// The symmetric deletion neighbourhood of a name: the name itself and every string one letter
/// shorter, without repeats ("ANNA" → ANNA, NNA, ANA, ANN). Two names one edit apart
/// (insertion, deletion, substitution, adjacent transposition) always share one of these, so
/// a holding that stores them meets a record with a typo in either side's name.
pub(crate) fn deletion_neighbourhood(name: &str) -> Vec<String> {
    let bytes = name.as_bytes();
    let mut out: Vec<String> = Vec::with_capacity(bytes.len() + 1);
    out.push(name.to_owned());
    for i in 0..bytes.len() {
        // Deleting either letter of a doubled pair gives the same string: keep one.
        if i > 0 && bytes[i] == bytes[i - 1] {
            continue;
        }
        let mut shorter = String::with_capacity(bytes.len());
        shorter.push_str(&name[..i]);
        shorter.push_str(&name[i + 1..]);
        if !shorter.is_empty() {
            out.push(shorter);
        }
    }
    out
}

/// Calls `f` with every string one edit away from `name` (deletion, adjacent transposition,
/// substitution, insertion over A–Z), never `name` itself; a few may repeat ("ANNA" loses
/// either N). Used only at lookup time, so a holding stores nothing extra for typo tolerance.
/// `name` is upper-case ASCII; one buffer is reused, as a lookup makes hundreds of these.
pub(crate) fn for_each_one_edit(name: &str, mut f: impl FnMut(&str)) {
    let bytes = name.as_bytes();
    let n = bytes.len();
    let mut buf: Vec<u8> = Vec::with_capacity(n + 1);
    let mut emit = |buf: &[u8]| {
        if !buf.is_empty()
            && buf != bytes
            && let Ok(s) = std::str::from_utf8(buf)
        {
            f(s);
        }
    };
    for i in 0..n {
        buf.clear();
        buf.extend_from_slice(bytes);
        buf.remove(i);
        emit(&buf);
        if i + 1 < n && bytes[i] != bytes[i + 1] {
            buf.clear();
            buf.extend_from_slice(bytes);
            buf.swap(i, i + 1);
            emit(&buf);
        }
        buf.clear();
        buf.extend_from_slice(bytes);
        for c in b'A'..=b'Z' {
            if c != bytes[i] {
                buf[i] = c;
                emit(&buf);
            }
        }
    }
    for i in 0..=n {
        buf.clear();
        buf.extend_from_slice(&bytes[..i]);
        buf.push(b'A');
        buf.extend_from_slice(&bytes[i..]);
        for c in b'A'..=b'Z' {
            buf[i] = c;
            emit(&buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(raw: &str) -> String {
        normalise_name(raw).expect("valid name").whole().to_owned()
    }

    #[test]
    fn accents_and_case_are_folded_to_ascii_upper_case() {
        assert_eq!(whole("Zoë"), "ZOE");
        assert_eq!(whole("Łucja"), whole("Lucja"));
        assert_eq!(whole("Ó Súilleabháin"), "OSUILLEABHAIN");
        assert_eq!(whole("józef"), "JOZEF");
        assert_eq!(whole("Ｓｍｉｔｈ"), "SMITH");
    }

    #[test]
    fn apostrophes_are_removed_and_hyphens_split_parts() {
        assert_eq!(whole("O'Brien"), "OBRIEN");
        assert_eq!(whole("O’Brien"), "OBRIEN");
        let name = normalise_name("Smith-Jones").expect("valid");
        assert_eq!(name.whole(), "SMITHJONES");
        assert_eq!(name.parts(), ["SMITH", "JONES"]);
        assert_eq!(whole("  smith   jones "), "SMITHJONES");
    }

    #[test]
    fn names_without_letters_or_with_digits_or_controls_are_rejected() {
        assert_eq!(normalise_name("--").unwrap_err().code, "no_letters");
        assert_eq!(normalise_name("").unwrap_err().code, "no_letters");
        assert_eq!(normalise_name("J4ck").unwrap_err().code, "invalid_characters");
        assert_eq!(normalise_name("Jack\u{0}").unwrap_err().code, "invalid_characters");
        assert_eq!(normalise_name("Jack\u{202E}").unwrap_err().code, "invalid_characters");
        assert_eq!(normalise_name(&"a".repeat(101)).unwrap_err().code, "too_long");
        assert!(normalise_name(&"a".repeat(100)).is_ok());
    }

    #[test]
    fn double_barrelled_names_have_each_barrel() {
        let name = normalise_name("Smith-Jones").expect("valid");
        assert_eq!(family_barrels(&name), ["SMITH", "JONES"]);
        let name = normalise_name("Smith").expect("valid");
        assert!(family_barrels(&name).is_empty());
    }

    #[test]
    fn particles_stay_with_the_barrel_they_introduce() {
        let name = normalise_name("van der Berg").expect("valid");
        assert!(family_barrels(&name).is_empty());
        let name = normalise_name("Smith-van der Berg").expect("valid");
        assert_eq!(family_barrels(&name), ["SMITH", "VANDERBERG"]);
        let name = normalise_name("Ó Súilleabháin").expect("valid");
        assert!(family_barrels(&name).is_empty());
    }

    #[test]
    fn phonetic_codes_meet_for_common_spelling_variants() {
        assert_eq!(phonetic("CATHERINE"), phonetic("KATHRYN"));
        assert_eq!(phonetic("SMITH"), phonetic("SMYTH"));
        assert_eq!(phonetic("PHILLIPS"), phonetic("PHILIPS"));
        assert_ne!(phonetic("OLIVIA"), phonetic("AMELIA"));
    }

    fn one_edits(name: &str) -> Vec<String> {
        let mut out = Vec::new();
        for_each_one_edit(name, |v| out.push(v.to_owned()));
        out
    }

    #[test]
    fn one_edit_variants_cover_each_kind_of_typo() {
        let variants = one_edits("JACK");
        for v in ["JAK", "AJCK", "JACKK", "JOCK", "JACKS", "XJACK"] {
            assert!(variants.iter().any(|x| x == v), "{v}");
        }
        assert!(!variants.iter().any(|x| x == "JACK"));
        assert!(one_edits("A").iter().all(|v| !v.is_empty()));
    }

    #[test]
    fn the_deletion_neighbourhood_is_the_name_and_each_string_one_letter_shorter() {
        assert_eq!(deletion_neighbourhood("ANNA"), ["ANNA", "NNA", "ANA", "ANN"]);
        assert_eq!(deletion_neighbourhood("A"), ["A"]);
    }

    #[test]
    fn names_one_edit_apart_share_a_deletion_string() {
        let shares = |a: &str, b: &str| {
            let n = deletion_neighbourhood(b);
            deletion_neighbourhood(a).iter().any(|s| n.contains(s))
        };
        for (a, b) in [("JACK", "JAKC"), ("JACK", "JAK"), ("JACK", "JACKS"), ("JACK", "JOCK"), ("RUBY", "RBUY")] {
            assert!(shares(a, b) && shares(b, a), "{a}/{b}");
        }
        assert!(!shares("JACK", "JOHN"));
        // Every one-edit string of a name shares a deletion string with it.
        for_each_one_edit("OLIVER", |v| assert!(shares("OLIVER", v), "{v}"));
    }
}
