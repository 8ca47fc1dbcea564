//! Turning agreed match keys into a tier: per-field Fellegi–Sunter weights (log2 of m/u),
//! a twin rule, key-frequency weighting, and a plain-English account for the social worker.

use serde::{Deserialize, Serialize};

use super::keys::{KeyKind, Variant};
use super::subject::FieldsPresent;

/// How sure the index is that a holding is about the asked-about child.
/// Ordered weakest to strongest, so `tier >= Tier::Probable` reads naturally.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tier {
    /// Worth checking: names and date of birth agree only in weaker forms.
    Possible,
    /// Very likely: first name, family name and date of birth agree (allowing known variants).
    Probable,
    /// An NHS number or permanent UPN agrees and nothing else contradicts it.
    Confirmed,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Possible => "possible",
            Tier::Probable => "probable",
            Tier::Confirmed => "confirmed",
        }
    }
}

/// One match key the asker's lookup and the holding share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agreement {
    pub kind: KeyKind,
    /// How the asker's key was derived (holdings store only exact keys).
    pub variant: Variant,
    /// How many distinct holdings in the index carry this pseudonym. Keyed hashing hides the
    /// value, not how common it is, so this works as a name-frequency prior.
    pub holders_with_key: u32,
}

/// Everything known about one candidate holding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    pub agreed: Vec<Agreement>,
    pub asker_fields: FieldsPresent,
    pub holder_fields: FieldsPresent,
}

/// The verdict on one candidate holding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assessment {
    pub tier: Tier,
    /// Log-likelihood ratio in bits (positive favours "same child"), after frequency weighting.
    pub score: f64,
    /// A key that decided the tier is shared by more holdings than one child would have.
    pub ambiguous: bool,
    /// Plain English for the social worker, e.g. "NHS number and date of birth agree".
    pub evidence: String,
}

/// Minimum score, in bits, for `probable`. At 20 bits the odds favour a match by about a
/// million to one before the prior; against an index of 10^5–10^6 holdings that leaves a
/// posterior of roughly 50–90 %, and the field rules below do the rest.
pub const PROBABLE_BITS: f64 = 20.0;
/// Minimum score, in bits, for `possible`.
pub const POSSIBLE_BITS: f64 = 15.0;

/// Holdings one child may plausibly have at once (known to several organisations). A key
/// shared by more is "ambiguous": it points at several children.
pub const HOLDINGS_PER_CHILD: u32 = 4;

/// Extra evidence against, in bits, when family name and date of birth agree but the first
/// name does not: among children sharing a family name and date of birth, a different child
/// is usually a twin, so date-of-birth agreement there is worth log2(0.03 / 0.000152) ≈ 7.6
/// bits less than the independence assumption credits.
const TWIN_BLOCK_BITS: f64 = 7.6;

/// Evidence against a names-swapped agreement compared with a straight one.
const NAMES_SWAPPED_BITS: f64 = 1.0;

/// An m/u pair: m = P(this outcome | same child), u = P(this outcome | different children).
#[derive(Debug, Clone, Copy)]
struct Mu {
    m: f64,
    u: f64,
}

impl Mu {
    fn bits(self) -> f64 {
        (self.m / self.u).log2()
    }
}

/// Outcome of comparing the given names, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Given {
    Disagree,
    Initial,
    MiddleOnly,
    OtherOneWay,
    /// One record's first name is one part of the other's two-part first name (Jun, Jun-Jie):
    /// the same child written short, or a twin given a name that shares a part.
    PartOnly,
    Similar,
    Phonetic,
    OtherName,
    Typo,
    Nickname,
    Exact,
}

impl Given {
    /// u: from given-name frequencies (sum of squared shares of children's names ≈ 0.008);
    /// m: from the error mix seen in social-care records (short forms ~5 %, typos ~2–3 %).
    fn mu(self) -> Mu {
        let (m, u) = match self {
            Given::Exact => (0.86, 0.008),
            Given::Nickname => (0.05, 0.002),
            Given::Typo => (0.025, 0.0015),
            Given::OtherName => (0.02, 0.002),
            Given::Phonetic => (0.015, 0.006),
            Given::Similar => (0.004, 0.004),
            Given::MiddleOnly => (0.003, 0.003),
            Given::OtherOneWay => (0.003, 0.003),
            Given::PartOnly => (0.003, 0.003),
            Given::Initial => (0.01, 0.08),
            Given::Disagree => (0.006, 0.9),
        };
        Mu { m, u }
    }

    /// First-name agreement strong enough to tell twins apart.
    fn separates_twins(self) -> bool {
        self >= Given::OtherName
    }

    fn phrase(self) -> &'static str {
        match self {
            Given::Exact => "first name",
            Given::Nickname => "first name (as a short form)",
            Given::Typo => "first name (spelt slightly differently)",
            Given::OtherName | Given::OtherOneWay => "first name (as a middle name in one record)",
            Given::Phonetic => "first name (sounds alike)",
            Given::Similar => "first name (similar, one letter different)",
            Given::MiddleOnly => "a middle name",
            Given::PartOnly => "first name (one part of a two-part first name)",
            Given::Initial => "first initial",
            Given::Disagree => "first name",
        }
    }
}

/// Outcome of comparing family names, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Family {
    Disagree,
    /// Only the first and last letters are known to agree (a typo inside the name keeps them).
    Ends,
    Similar,
    Phonetic,
    Alt,
    Typo,
    Exact,
}

impl Family {
    /// u: chance two children share a surname, set at 0.004, above the 0.001–0.003 of UK
    /// surnames so agreement is never over-credited; m: children in care change family name
    /// often (adoption, a step-parent), hence 8.5 % disagreeing.
    fn mu(self) -> Mu {
        let (m, u) = match self {
            Family::Exact => (0.80, 0.004),
            Family::Typo => (0.03, 0.001),
            Family::Alt => (0.05, 0.002),
            // Short names collide (Powell/Bailey are both PL): sounding alike is weak.
            Family::Phonetic => (0.015, 0.01),
            Family::Similar => (0.01, 0.01),
            // Two of the 500 commonest GB surnames share their first and last letters 1.35 times
            // in 100 (initials 0.066, final letters 0.146), rarer names less: u set at 0.015,
            // and m the same, so the ends say only "not contradicted" (docs/matching.md §5).
            Family::Ends => (0.015, 0.015),
            Family::Disagree => (0.085, 0.972),
        };
        Mu { m, u }
    }

    fn phrase(self) -> &'static str {
        match self {
            Family::Exact | Family::Disagree => "family name",
            Family::Typo => "family name (spelt slightly differently)",
            Family::Alt => "family name (a former name or one part of a double-barrelled name)",
            Family::Phonetic => "family name (sounds alike)",
            Family::Similar => "family name (similar, one letter different)",
            Family::Ends => "family name (first and last letters)",
        }
    }
}

/// Outcome of comparing dates of birth, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Dob {
    Disagree,
    Partial,
    Near,
    Swapped,
    Exact,
}

impl Dob {
    /// How a date that agreed did so, when not exactly (shown beside the match).
    fn qualifier(self) -> Option<&'static str> {
        match self {
            Dob::Swapped => Some("day and month swapped"),
            Dob::Near => Some("date of birth one digit different"),
            Dob::Partial => Some("date of birth differs in one part: day, month or year"),
            Dob::Exact | Dob::Disagree => None,
        }
    }

    /// u: one date among the ~6,600 a child's age range spans (1/6600 ≈ 0.000152), or among the
    /// ~40 real dates one keystroke away, or the ~56 that share two of the date's three parts
    /// (same year and month ~30, same year and day ~11, same month and day ~15 over a child's
    /// age range); m: date errors in 2–3 % of record pairs, most within one part.
    fn mu(self) -> Mu {
        let (m, u) = match self {
            Dob::Exact => (0.95, 0.000_152),
            Dob::Swapped => (0.015, 0.000_152),
            Dob::Near => (0.02, 0.006),
            Dob::Partial => (0.025, 0.0085),
            Dob::Disagree => (0.015, 0.994),
        };
        Mu { m, u }
    }
}

/// NHS number: check-digit validated, so m is high. u is the chance that two different
/// children's records carry the same number: a wrong but valid number in perhaps 1 record in
/// 1,000, which must then be this particular child's of some 10^7 — about 1e-10.
const NHS_AGREE: Mu = Mu { m: 0.995, u: 1e-10 };
const NHS_DISAGREE: Mu = Mu { m: 0.005, u: 1.0 };
const UPN_AGREE: Mu = Mu { m: 0.99, u: 1e-10 };
const UPN_DISAGREE: Mu = Mu { m: 0.01, u: 1.0 };
/// A temporary UPN is replaced within months and may be reissued: a little evidence only.
const TEMP_UPN_AGREE: Mu = Mu { m: 0.2, u: 0.05 };
/// Postcode district: families in these records usually move away, so agreement is weak
/// evidence and disagreement almost none.
const DISTRICT_AGREE: Mu = Mu { m: 0.25, u: 0.03 };
const DISTRICT_DISAGREE: Mu = Mu { m: 0.75, u: 0.97 };

/// What one agreed key says about each field.
#[derive(Debug, Clone, Copy, Default)]
struct Reading {
    given: Option<Given>,
    family: Option<Family>,
    dob: Option<Dob>,
    district: bool,
    nhs: bool,
    upn: bool,
    temporary_upn: bool,
}

fn read(kind: KeyKind, variant: Variant) -> Reading {
    let mut r = Reading::default();
    match kind {
        KeyKind::NhsNumber | KeyKind::NhsNumberDob => r.nhs = true,
        KeyKind::Upn | KeyKind::UpnDob => r.upn = true,
        KeyKind::TemporaryUpnBirthYear => r.temporary_upn = true,
        // A deletion key says as much as `name-dob`; its variant says which name is one edit away.
        KeyKind::NameDob
        | KeyKind::GivenDeletionDob
        | KeyKind::KnownGivenDeletionDob
        | KeyKind::FamilyDeletionDob
        | KeyKind::KnownFamilyDeletionDob
        | KeyKind::NamePartialDob => (r.given, r.family) = (Some(Given::Exact), Some(Family::Exact)),
        KeyKind::PhoneticNameDob => {
            (r.given, r.family) = (Some(Given::Phonetic), Some(Family::Phonetic));
        }
        KeyKind::CanonicalNameDob => {
            (r.given, r.family) = (Some(Given::Nickname), Some(Family::Exact));
        }
        KeyKind::OtherGivenNameDob => {
            (r.given, r.family) = (Some(Given::OtherName), Some(Family::Exact));
        }
        KeyKind::AltFamilyNameDob | KeyKind::GivenDeletionAltFamilyDob | KeyKind::KnownGivenDeletionAltFamilyDob => {
            (r.given, r.family) = (Some(Given::Exact), Some(Family::Alt));
        }
        // Key family 3: the given name's deletion string with the family name's first and last
        // letters.
        KeyKind::GivenDeletionFamilyEndsDob | KeyKind::KnownGivenDeletionFamilyEndsDob => {
            (r.given, r.family) = (Some(Given::Exact), Some(Family::Ends));
        }
        KeyKind::GivenNameDob => r.given = Some(Given::Exact),
        KeyKind::FamilyDobInitial => {
            (r.given, r.family) = (Some(Given::Initial), Some(Family::Exact));
        }
        KeyKind::DistrictDobFamily => {
            r.district = true;
            r.family = Some(Family::Phonetic);
        }
        // Assessed on its own, before any reading (see `assess`).
        KeyKind::ExpectedBirth => return r,
    }
    if !matches!(kind, KeyKind::NhsNumber | KeyKind::Upn | KeyKind::TemporaryUpnBirthYear) {
        r.dob = Some(if kind == KeyKind::NamePartialDob { Dob::Partial } else { Dob::Exact });
    }
    // A variant can only weaken what the kind says about a field.
    let cap_given = |r: &mut Reading, level: Given| r.given = r.given.map(|g| g.min(level));
    let cap_family = |r: &mut Reading, level: Family| r.family = r.family.map(|f| f.min(level));
    match variant {
        Variant::Exact | Variant::NamesSwapped | Variant::NearExpectedDate => {}
        Variant::DayMonthSwapped => r.dob = r.dob.map(|d| d.min(Dob::Swapped)),
        Variant::DateTypo => r.dob = r.dob.map(|d| d.min(Dob::Near)),
        Variant::Nickname => cap_given(&mut r, Given::Nickname),
        Variant::GivenNameTypo => cap_given(&mut r, Given::Typo),
        Variant::SimilarGivenName => cap_given(&mut r, Given::Similar),
        Variant::FamilyNameTypo => cap_family(&mut r, Family::Typo),
        Variant::SimilarFamilyName => cap_family(&mut r, Family::Similar),
        Variant::FamilyNamePart | Variant::FormerFamilyName => cap_family(&mut r, Family::Alt),
        Variant::OtherGivenName => {
            // The asker's middle name against the holder's middle name is weaker than against
            // the holder's first name.
            let level = if kind == KeyKind::OtherGivenNameDob { Given::MiddleOnly } else { Given::OtherName };
            cap_given(&mut r, level);
        }
        // Two small errors: the kind says which name is one edit away.
        Variant::NamesSwappedTypo => match kind {
            KeyKind::FamilyDeletionDob | KeyKind::KnownFamilyDeletionDob => cap_family(&mut r, Family::Typo),
            _ => cap_given(&mut r, Given::Typo),
        },
        Variant::GivenNameTypoAltFamily => {
            cap_given(&mut r, Given::Typo);
            cap_family(&mut r, Family::Alt);
        }
        Variant::TypoInEachName => {
            cap_given(&mut r, Given::Typo);
            cap_family(&mut r, Family::Ends);
        }
        Variant::GivenNamePart => {
            let level = if kind == KeyKind::OtherGivenNameDob { Given::MiddleOnly } else { Given::PartOnly };
            cap_given(&mut r, level);
        }
    }
    r
}

/// The best outcome per field over a set of agreements.
#[derive(Debug, Clone, Copy, Default)]
struct Best {
    given: Option<Given>,
    family: Option<Family>,
}

impl Best {
    fn take(&mut self, r: &Reading) {
        self.given = self.given.max(r.given);
        self.family = self.family.max(r.family);
    }

    fn names_bits(&self) -> f64 {
        self.given.map_or(0.0, |g| g.mu().bits()) + self.family.map_or(0.0, |f| f.mu().bits())
    }
}

/// Assesses one candidate holding from the keys it shares with the lookup.
///
/// Returns `None` when the evidence is below `possible`, or when a field both records hold
/// disagrees and no NHS number or UPN agrees.
pub fn assess(evidence: &Evidence) -> Option<Assessment> {
    // An unborn child's record has no identifiers of its own: the carer and the dates are the
    // whole evidence, worth a call but never more than `possible`.
    if let Some(a) = evidence.agreed.iter().find(|a| a.kind == KeyKind::ExpectedBirth) {
        return Some(Assessment {
            tier: Tier::Possible,
            score: POSSIBLE_BITS,
            ambiguous: a.holders_with_key > HOLDINGS_PER_CHILD,
            evidence: "a carer agrees with the mother on a pre-birth record, and the date of birth is within weeks \
                       of its expected date"
                .into(),
        });
    }
    let agreed = Agreed::read(evidence);
    let weighed = Weighed::compare(evidence, &agreed);
    weighed.decide(&agreed)
}

/// Whether both records hold `field`: only then can it agree or differ.
fn both(evidence: &Evidence, field: u16) -> bool {
    evidence.asker_fields.both(evidence.holder_fields, field)
}

/// Stage 1 of `assess`: what the shared keys say, field by field, with the names read the way
/// round that agrees best.
struct Agreed {
    names: Best,
    names_swapped: bool,
    /// The names agree only through two small errors at once (a typo with a swap, a barrel or a
    /// former name): worth a call, never more than `possible`.
    two_errors: bool,
    dob: Option<Dob>,
    nhs: bool,
    upn: bool,
    temporary_upn: bool,
    district: bool,
    /// Most holdings sharing any strong key (NHS number, UPN) with the lookup.
    strong_holders: u32,
    /// Fewest holdings sharing a demographic key with the lookup.
    fewest_demographic_holders: Option<u32>,
}

impl Agreed {
    fn read(evidence: &Evidence) -> Agreed {
        let mut straight = Best::default();
        let mut swapped = Best::default();
        // The same without the two-error variants, to tell whether the names needed them.
        let (mut straight_one_error, mut swapped_one_error) = (Best::default(), Best::default());
        let mut dob: Option<Dob> = None;
        let (mut nhs, mut upn, mut temporary_upn, mut district) = (false, false, false, false);
        let mut strong_holders = 0u32;
        let mut fewest_demographic_holders: Option<u32> = None;
        // Middle-name agreement seen from each side: the asker's first name among the holder's
        // other names, and the asker's other name as the holder's first.
        let (mut asker_first_is_holder_other, mut asker_other_is_holder_first) = (false, false);
        for a in &evidence.agreed {
            let r = read(a.kind, a.variant);
            asker_first_is_holder_other |= a.kind == KeyKind::OtherGivenNameDob && a.variant != Variant::OtherGivenName;
            asker_other_is_holder_first |= a.kind == KeyKind::NameDob && a.variant == Variant::OtherGivenName;
            if a.variant.names_swapped() {
                swapped.take(&r);
            } else {
                straight.take(&r);
            }
            match (a.variant.two_errors(), a.variant.names_swapped()) {
                (true, _) => {}
                (false, true) => swapped_one_error.take(&r),
                (false, false) => straight_one_error.take(&r),
            }
            dob = dob.max(r.dob);
            nhs |= r.nhs;
            upn |= r.upn;
            temporary_upn |= r.temporary_upn;
            district |= r.district;
            if a.kind.is_strong() {
                strong_holders = strong_holders.max(a.holders_with_key);
            } else if a.kind != KeyKind::TemporaryUpnBirthYear {
                let k = a.holders_with_key.max(1);
                fewest_demographic_holders = Some(fewest_demographic_holders.map_or(k, |f| f.min(k)));
            }
        }
        let names_swapped = swapped.names_bits() > straight.names_bits();
        let mut names = if names_swapped { swapped } else { straight };
        let two_errors = names.names_bits() > straight_one_error.names_bits().max(swapped_one_error.names_bits());
        // When both records list other given names, one child recorded under their middle name
        // shows agreement both ways round; one way only is the pattern of a twin whose middle name
        // is the co-twin's first name.
        if names.given == Some(Given::OtherName)
            && both(evidence, FieldsPresent::OTHER_GIVEN_NAMES)
            && !(asker_first_is_holder_other && asker_other_is_holder_first)
        {
            names.given = Some(Given::OtherOneWay);
        }
        // The asker's first name among the holder's other names, when the holder lists none:
        // it can only be a part of the holder's two-part first name (asked "Jun", held "Jun-Jie").
        if names.given == Some(Given::OtherName)
            && !asker_other_is_holder_first
            && !evidence.holder_fields.has(FieldsPresent::OTHER_GIVEN_NAMES)
        {
            names.given = Some(Given::PartOnly);
        }
        Agreed {
            names,
            names_swapped,
            two_errors,
            dob,
            nhs,
            upn,
            temporary_upn,
            district,
            strong_holders,
            fewest_demographic_holders,
        }
    }
}

/// Stage 2 of `assess`: each field both records hold, weighed as agreeing or differing, and
/// the words for it.
struct Weighed {
    strong_bits: f64,
    demographic_bits: f64,
    agreed_fields: Vec<String>,
    differing: Vec<&'static str>,
    qualifiers: Vec<&'static str>,
    /// A first name, family name or date of birth that both hold and that differs.
    contradiction: bool,
    /// An NHS number or UPN agrees.
    strong: bool,
    /// One strong identifier agrees while the other differs.
    strong_conflict: bool,
    given: Option<Given>,
    family: Option<Family>,
    dob: Option<Dob>,
}

impl Weighed {
    fn compare(evidence: &Evidence, agreed: &Agreed) -> Weighed {
        let Agreed { names, names_swapped, dob, nhs, upn, temporary_upn, district, .. } = *agreed;
        let both = |field| both(evidence, field);
        // Per-field weights; a field only one side holds adds nothing either way.
        let mut strong_bits = 0.0;
        let mut demographic_bits = 0.0;
        let mut agreed_fields: Vec<String> = Vec::new();
        let mut differing: Vec<&str> = Vec::new();
        let mut contradiction = false;

        let mut identifier = |agrees: bool, (agree, disagree): (Mu, Mu), name: &'static str| {
            if agrees {
                agreed_fields.push(name.into());
                agree.bits()
            } else {
                differing.push(name);
                disagree.bits()
            }
        };
        if both(FieldsPresent::NHS_NUMBER) {
            strong_bits += identifier(nhs, (NHS_AGREE, NHS_DISAGREE), "NHS number");
        }
        if both(FieldsPresent::UPN) {
            strong_bits += identifier(upn, (UPN_AGREE, UPN_DISAGREE), "UPN");
        }
        let strong = nhs || upn;
        // An NHS number agreeing while the UPN differs (or the reverse) is a conflict between
        // identifiers that are each meant to be unique: never a confirmation.
        let strong_conflict = (both(FieldsPresent::NHS_NUMBER) && !nhs) || (both(FieldsPresent::UPN) && !upn);
        if temporary_upn {
            demographic_bits += TEMP_UPN_AGREE.bits();
            agreed_fields.push("temporary UPN".into());
        }

        // Which fields could be compared at all. Every demographic key includes the date of
        // birth, so the date is compared when both sides have it and something to pair it with,
        // and the names only when the dates agreed in some form (otherwise they are unknown, not
        // different).
        let dob_compared = both(FieldsPresent::DATE_OF_BIRTH)
            && (both(FieldsPresent::GIVEN_NAME) || both(FieldsPresent::NHS_NUMBER) || both(FieldsPresent::UPN));
        let dob = dob_compared.then(|| dob.unwrap_or(Dob::Disagree));
        let names_compared = both(FieldsPresent::GIVEN_NAME) && dob.is_some_and(|d| d != Dob::Disagree);
        let given = names_compared.then(|| names.given.unwrap_or(Given::Disagree));
        let family =
            (names_compared && both(FieldsPresent::FAMILY_NAME)).then(|| names.family.unwrap_or(Family::Disagree));

        agreed_fields.extend(name_phrases(given, family));
        if let Some(g) = given {
            demographic_bits += g.mu().bits();
            if g == Given::Disagree {
                differing.push("first name");
                contradiction = true;
            }
        }
        if let Some(f) = family {
            demographic_bits += f.mu().bits();
            if f == Family::Disagree {
                differing.push("family name");
                contradiction = true;
            }
        }
        let mut qualifiers: Vec<&str> = Vec::new();
        if names_swapped && names_compared {
            demographic_bits -= NAMES_SWAPPED_BITS;
            qualifiers.push("first and family names swapped");
        }
        if let Some(d) = dob {
            demographic_bits += d.mu().bits();
            if d == Dob::Disagree {
                differing.push("date of birth");
                contradiction = true;
            } else {
                agreed_fields.push("date of birth".into());
                qualifiers.extend(d.qualifier());
            }
        }
        if both(FieldsPresent::POSTCODE) {
            if district {
                demographic_bits += DISTRICT_AGREE.bits();
                agreed_fields.push("postcode district".into());
            } else {
                demographic_bits += DISTRICT_DISAGREE.bits();
            }
        }
        Weighed {
            strong_bits,
            demographic_bits,
            agreed_fields,
            differing,
            qualifiers,
            contradiction,
            strong,
            strong_conflict,
            given,
            family,
            dob,
        }
    }

    /// Stage 3 of `assess`: the twin rule and key frequency adjust the score, then the tier.
    fn decide(self, agreed: &Agreed) -> Option<Assessment> {
        let Weighed {
            strong_bits,
            mut demographic_bits,
            agreed_fields,
            differing,
            qualifiers,
            contradiction,
            strong,
            strong_conflict,
            given,
            family,
            dob,
        } = self;
        let Agreed { strong_holders, fewest_demographic_holders, two_errors, .. } = *agreed;
        // Twins share family name, date of birth and address: without a first-name agreement
        // that tells them apart, the candidate is most likely the twin.
        let twin_block = matches!(family, Some(f) if f != Family::Disagree)
            && dob == Some(Dob::Exact)
            && given.is_some_and(|g| !g.separates_twins());
        if twin_block && given.is_some_and(|g| g <= Given::MiddleOnly) {
            demographic_bits -= TWIN_BLOCK_BITS;
        }

        // Frequency: a key shared by k holdings is about k times as common as a typical value.
        let k = fewest_demographic_holders.unwrap_or(1);
        demographic_bits -= f64::from(k).log2();
        let demographic_ambiguous = k > HOLDINGS_PER_CHILD;
        let strong_ambiguous = strong && strong_holders > HOLDINGS_PER_CHILD;

        let score = strong_bits + demographic_bits;
        let by_score = |bits: f64| {
            if bits >= PROBABLE_BITS {
                Some(Tier::Probable)
            } else if bits >= POSSIBLE_BITS {
                Some(Tier::Possible)
            } else {
                None
            }
        };
        let tier = if strong && !contradiction && !strong_conflict {
            // An ambiguous strong key confirms only when the demographics would stand alone.
            if !strong_ambiguous || by_score(demographic_bits) == Some(Tier::Probable) {
                Some(Tier::Confirmed)
            } else {
                Some(Tier::Probable)
            }
        } else if strong {
            // A strong key with something contradicting it: always worth a look, never confirmed.
            Some(by_score(score).unwrap_or(Tier::Possible).min(Tier::Probable))
        } else if contradiction {
            None
        } else if twin_block || two_errors {
            by_score(score).map(|t| t.min(Tier::Possible))
        } else {
            by_score(score)
        }?;

        let ambiguous = if strong { strong_ambiguous } else { demographic_ambiguous };
        Some(Assessment { tier, score, ambiguous, evidence: describe(&agreed_fields, &differing, &qualifiers) })
    }
}

/// How the names agreed, in words: "names" when both agree exactly, else each name that agreed
/// in some form.
fn name_phrases(given: Option<Given>, family: Option<Family>) -> Vec<String> {
    match (given, family) {
        (Some(Given::Exact), Some(Family::Exact)) => vec!["names".into()],
        _ => [
            given.filter(|g| *g != Given::Disagree).map(Given::phrase),
            family.filter(|f| *f != Family::Disagree).map(Family::phrase),
        ]
        .into_iter()
        .flatten()
        .map(str::to_string)
        .collect(),
    }
}

/// "A, B and C agree (q1; q2); X and Y differ" with the first letter capitalised.
fn describe(agreed: &[String], differing: &[&str], qualifiers: &[&str]) -> String {
    let mut text = String::new();
    if !agreed.is_empty() {
        text.push_str(&join(agreed.iter().map(String::as_str)));
        // "NHS number agrees", "NHS number and date of birth agree".
        text.push_str(if agreed.len() == 1 { " agrees" } else { " agree" });
        if !qualifiers.is_empty() {
            text.push_str(" (");
            text.push_str(&qualifiers.join("; "));
            text.push(')');
        }
    }
    if !differing.is_empty() {
        if !text.is_empty() {
            text.push_str("; ");
        }
        text.push_str(&join(differing.iter().copied()));
        text.push_str(if differing.len() == 1 { " differs" } else { " differ" });
    }
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => text,
    }
}

fn join<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let items: Vec<&str> = items.collect();
    match items.as_slice() {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}
