//! The realistic profile (#21 item 7): the own harness made as harsh as real records. Names and
//! date of birth only on both sides (what the Splink peer sees too), UK name frequencies, eight
//! name-origin groups with their own naming patterns, twins and siblings, a published error mix,
//! and national density. Sources, rates and results: docs/matching.md ("The realistic profile").
//!
//! `match_quality --profile realistic [--children N] [--seed S] [--queries Q] [--export DIR]`
//!
//! Q lookups are drawn for each origin group (stratified), each asked twice: as a practitioner's
//! **lookup** (`KeyUse::Lookup`, every variant) and as another holder's **sync signalling**
//! (`KeyUse::Holding`, the structural variants `Keyring::signalling_probes` sends). Overall
//! figures weight each group by its share of children. `--export DIR` writes the same holdings
//! and queries to `DIR/own.csv` for `bench/matching/splink_own.py`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;
use std::time::Instant;

use child_locator::domain::identity::{IndexSecret, KeyUse, LookupOptions, RawSubject, SubjectRole, Tier};
use rand::distributions::WeightedIndex;
use rand::prelude::*;
use rand::rngs::StdRng;
use time::{Date, Duration, Month};

use super::{
    Args, BOYS, GIRLS, IRISH_BOYS, IRISH_GIRLS, IRISH_SURNAMES, POLISH_BOYS, POLISH_GIRLS, POLISH_SURNAMES,
    SIMILAR_TWIN_NAMES, SOUTH_ASIAN_BOYS, SOUTH_ASIAN_GIRLS, SOUTH_ASIAN_SURNAMES, TODAY, WEST_AFRICAN_BOYS,
    WEST_AFRICAN_GIRLS, WEST_AFRICAN_SURNAMES, as_typed, date_typo, index::Index, parse, rare_given, rare_surname,
    same_name, short_form_of, spelling_of, typo,
};

// ---------------------------------------------------------------------------------------------
// Name-origin groups.
// ---------------------------------------------------------------------------------------------

/// A child's name-origin group: which lists their names are drawn from, and which naming
/// patterns their records show. Assigned once per family, by the shares below.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Group {
    EnglishWelsh,
    SouthAsian,
    EastAfrican,
    WestAfrican,
    EasternEuropean,
    Arabic,
    EastAsian,
    Irish,
}

impl Group {
    const ALL: [Group; 8] = [
        Group::EnglishWelsh,
        Group::SouthAsian,
        Group::EastAfrican,
        Group::WestAfrican,
        Group::EasternEuropean,
        Group::Arabic,
        Group::EastAsian,
        Group::Irish,
    ];

    /// Share of children, rounded from Census 2021 (England and Wales) ethnic groups: White
    /// British and Mixed with English names 74 %, Asian (Indian, Pakistani, Bangladeshi) 10 %,
    /// Black African split West 3 % / East 2 % (Somali, Eritrean, Ethiopian, Sudanese), White Other
    /// mostly Polish, Romanian, Lithuanian 6 %, Arab 1.5 %, Chinese and other East Asian 1.5 %,
    /// White Irish 2 %.
    fn share(self) -> f64 {
        match self {
            Group::EnglishWelsh => 0.74,
            Group::SouthAsian => 0.10,
            Group::EastAfrican => 0.02,
            Group::WestAfrican => 0.03,
            Group::EasternEuropean => 0.06,
            Group::Arabic => 0.015,
            Group::EastAsian => 0.015,
            Group::Irish => 0.02,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Group::EnglishWelsh => "English/Welsh",
            Group::SouthAsian => "South Asian",
            Group::EastAfrican => "East African",
            Group::WestAfrican => "West African",
            Group::EasternEuropean => "Eastern European",
            Group::Arabic => "Arabic",
            Group::EastAsian => "Chinese/East Asian",
            Group::Irish => "Irish",
        }
    }

    /// Families where a child's "family name" is the father's given name (and a record may use
    /// the grandfather's instead).
    fn patronymic(self) -> bool {
        matches!(self, Group::EastAfrican | Group::Arabic)
    }

    /// Children who may arrive without papers: a date of birth set to 1 January by age assessment.
    fn may_be_age_assessed(self) -> bool {
        matches!(self, Group::EastAfrican | Group::Arabic)
    }
}

#[rustfmt::skip]
const EAST_AFRICAN_BOYS: &[&str] = &[
    "Mohamed", "Abdi", "Ahmed", "Hassan", "Ali", "Abdirahman", "Abdullahi", "Yusuf", "Ibrahim", "Omar",
    "Mustafa", "Osman", "Hamza", "Mohamud", "Abdirizak", "Said", "Khalid", "Yonas", "Dawit", "Filmon",
    "Mehari", "Samuel", "Robel", "Biniam", "Tesfay", "Aman", "Nahom", "Abel", "Daniel", "Yosef",
];
#[rustfmt::skip]
const EAST_AFRICAN_GIRLS: &[&str] = &[
    "Amina", "Fadumo", "Hodan", "Ayan", "Sagal", "Hamdi", "Sahra", "Nasra", "Ifrah", "Hibaaq", "Ubah",
    "Hani", "Khadra", "Istahil", "Asha", "Hawa", "Maryan", "Salma", "Zamzam", "Deqa", "Selam", "Senait",
    "Winta", "Luwam", "Rahel", "Semhar", "Helen", "Yordanos", "Meron", "Saba",
];
#[rustfmt::skip]
const ARABIC_BOYS: &[&str] = &[
    "Mohammed", "Ahmad", "Omar", "Yousef", "Khaled", "Abdullah", "Hamza", "Ali", "Mahmoud", "Mustafa",
    "Hussein", "Ibrahim", "Adam", "Karim", "Zaid", "Tariq", "Sami", "Bilal", "Anas", "Rami", "Majd",
    "Amir", "Hadi", "Nabil", "Saif",
];
#[rustfmt::skip]
const ARABIC_GIRLS: &[&str] = &[
    "Fatima", "Maryam", "Nour", "Aya", "Rahaf", "Hala", "Lana", "Sara", "Layan", "Jana", "Rana", "Dima",
    "Reem", "Yasmin", "Amal", "Huda", "Lina", "Salma", "Zainab", "Aisha", "Malak", "Ghazal", "Farah",
    "Rama", "Sidra",
];
#[rustfmt::skip]
const ARABIC_SURNAMES: &[&str] = &[
    "Al-Ahmad", "Al-Hassan", "Haddad", "Khalil", "Hamdan", "Mansour", "Saleh", "Nasser", "Darwish",
    "Al-Khatib", "Abdallah", "Al-Masri", "Youssef", "Hussein", "Othman", "Suleiman", "Al-Sayed", "Kassem",
    "Barakat", "Hijazi", "Al-Ali", "Issa", "Mahmoud", "Al-Najjar", "Shami",
];
/// Chinese given names as written in pinyin, syllable by syllable: records write them joined
/// (Zihan), spaced (Zi Han) or hyphenated (Zi-Han).
const EAST_ASIAN_GIVEN_BOYS: &[&[&str]] = &[
    &["Hao", "Ran"],
    &["Zi", "Han"],
    &["Yu", "Xuan"],
    &["Jun", "Jie"],
    &["Wei"],
    &["Ming"],
    &["Hao"],
    &["Yi", "Chen"],
    &["Zi", "Xuan"],
    &["Jia", "Hao"],
    &["Tian", "You"],
    &["Bo", "Wen"],
    &["Kai"],
    &["Jun"],
    &["Duc", "Anh"],
    &["Minh"],
    &["Bao"],
    &["Jin", "Woo"],
];
const EAST_ASIAN_GIVEN_GIRLS: &[&[&str]] = &[
    &["Xin", "Yi"],
    &["Yu", "Tong"],
    &["Jia", "Yi"],
    &["Zi", "Han"],
    &["Mei"],
    &["Ying"],
    &["Yan"],
    &["Yi", "Nuo"],
    &["Shu", "Han"],
    &["Xin", "Yue"],
    &["Ke", "Xin"],
    &["Lin"],
    &["Hui", "Min"],
    &["Linh"],
    &["Mai"],
    &["Ngoc", "Anh"],
    &["Ji", "Woo"],
    &["Hana"],
];
#[rustfmt::skip]
const EAST_ASIAN_SURNAMES: &[&str] = &[
    "Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao", "Wu", "Zhou", "Xu", "Sun", "Ma", "Zhu",
    "Hu", "Lin", "Guo", "He", "Chan", "Wong", "Lee", "Cheung", "Ng", "Lam", "Ho", "Leung", "Nguyen",
    "Tran", "Le", "Pham", "Kim", "Park",
];
#[rustfmt::skip]
const ROMANIAN_LITHUANIAN_BOYS: &[&str] = &[
    "Andrei", "Alexandru", "Ștefan", "David", "Luca", "Mihai", "Gabriel", "Ionuț", "Darius", "Matei",
    "Lukas", "Matas", "Jokūbas", "Dominykas", "Nojus", "Herkus", "Kajus",
];
#[rustfmt::skip]
const ROMANIAN_LITHUANIAN_GIRLS: &[&str] = &[
    "Maria", "Ioana", "Elena", "Sofia", "Andreea", "Alexia", "Bianca", "Ana", "Daria", "Emilija", "Gabija",
    "Austėja", "Ugnė", "Kamilė", "Lėja", "Urtė",
];
#[rustfmt::skip]
const ROMANIAN_SURNAMES: &[&str] = &[
    "Popescu", "Ionescu", "Popa", "Pop", "Radu", "Dumitru", "Stan", "Stoica", "Gheorghe", "Rusu",
    "Munteanu", "Matei", "Constantin", "Șerban", "Moldovan",
];
/// Lithuanian surnames in the father's form; a daughter's form differs (-aitė, -ytė, -ūtė).
const LITHUANIAN_SURNAMES: &[(&str, &str)] = &[
    ("Kazlauskas", "Kazlauskaitė"),
    ("Jankauskas", "Jankauskaitė"),
    ("Petrauskas", "Petrauskaitė"),
    ("Stankevičius", "Stankevičiūtė"),
    ("Vasiliauskas", "Vasiliauskaitė"),
    ("Žukauskas", "Žukauskaitė"),
    ("Butkus", "Butkutė"),
    ("Paulauskas", "Paulauskaitė"),
];
/// English names children of some groups also go by on one record (Kevin Wang, Blessing Okafor).
#[rustfmt::skip]
const ENGLISH_ALIASES_BOYS: &[&str] = &["Kevin", "Jason", "Tony", "Eric", "Daniel", "David", "Samuel", "Michael", "Peter", "Joseph"];
#[rustfmt::skip]
const ENGLISH_ALIASES_GIRLS: &[&str] = &["Emily", "Grace", "Jessica", "Amy", "Vivian", "Joy", "Mercy", "Esther", "Ruth", "Sophie"];

/// Transliteration variants: one name as different systems and clerks spell it. Most are not
/// one edit apart (Mohammed/Muhammad is two; Fadumo/Fatuma three).
const TRANSLITERATIONS: &[&[&str]] = &[
    &["Muhammad", "Mohammed", "Mohammad", "Mohamed", "Mohamad", "Muhammed"],
    &["Ahmed", "Ahmad", "Ahmet"],
    &["Hussain", "Hussein", "Husain", "Hossain"],
    &["Yusuf", "Yousef", "Youssef", "Yousuf"],
    &["Khalid", "Khaled"],
    &["Abdullah", "Abdallah", "Abdulla"],
    &["Abdirahman", "Abdulrahman", "Abdurahman"],
    &["Fatima", "Fatimah", "Fatma"],
    &["Fadumo", "Faduma", "Fatuma"],
    &["Aisha", "Ayesha", "Aysha", "Aishah"],
    &["Maryam", "Mariam", "Maryan"],
    &["Zainab", "Zaynab", "Zeinab"],
    &["Hamza", "Hamzah"],
    &["Ibrahim", "Ebrahim", "Ibraheem"],
    &["Ismail", "Ismael"],
    &["Omar", "Umar"],
    &["Osman", "Usman", "Uthman"],
    &["Mustafa", "Mostafa", "Mustapha"],
    &["Nour", "Noor", "Nur"],
    &["Mahmoud", "Mahmood", "Mahmud"],
    &["Mohamud", "Mahamud", "Mohamoud"],
    &["Hassan", "Hasan"],
    &["Rahman", "Rehman"],
    &["Choudhury", "Chowdhury", "Choudhry", "Chaudhry"],
    &["Begum", "Begom"],
    &["Uddin", "Udin"],
    &["Miah", "Mia"],
    &["Siddiqui", "Siddiqi"],
    &["Sahra", "Zahra"],
    &["Yosef", "Yousef"],
    &["Al-Ahmad", "Alahmad", "Ahmad"],
    &["Al-Hassan", "Alhassan", "Hassan"],
    &["Al-Khatib", "Alkhatib", "Khatib"],
    &["Al-Masri", "Almasri", "Masri"],
    &["Al-Sayed", "Alsayed", "Sayed", "El-Sayed"],
    &["Al-Ali", "Alali"],
    &["Al-Najjar", "Alnajjar", "Najjar"],
    &["Youssef", "Yousef", "Yusuf"],
    &["Kassem", "Qassem", "Qasim"],
    &["Li", "Lee"],
    &["Wang", "Wong"],
    &["Chen", "Chan"],
    &["Zhou", "Chow"],
    &["Liu", "Lau"],
    &["Zhang", "Cheung"],
    &["Huang", "Wong"],
    &["Wu", "Ng"],
    &["Ștefan", "Stefan", "Steven"],
    &["Seán", "Shaun", "Shawn"],
    &["Ciarán", "Kieran"],
    &["Eoin", "Owen"],
    &["Aisling", "Ashling"],
    &["Caoimhe", "Keeva"],
    &["Saoirse", "Seersha"],
    &["Róisín", "Rosheen"],
    &["Siobhán", "Shivaun"],
    &["Niamh", "Neve"],
    &["Oluwaseun", "Oluwaseyi"],
    &["Chukwuemeka", "Chukwuemeke"],
];

fn transliteration_of(name: &str, rng: &mut StdRng) -> Option<String> {
    let lower = name.to_lowercase();
    let group = TRANSLITERATIONS.iter().find(|g| g.iter().any(|n| n.to_lowercase() == lower))?;
    let others: Vec<&&str> = group.iter().filter(|n| n.to_lowercase() != lower).collect();
    others.choose(rng).map(|n| (**n).to_owned())
}

// ---------------------------------------------------------------------------------------------
// Frequencies.
// ---------------------------------------------------------------------------------------------

/// The UK's 500 commonest surnames and their share of people (bench/matching/uk_surnames.py).
const UK_SURNAMES_CSV: &str = include_str!("uk_surnames.csv");

/// Given-name weights by rank: ONS baby names 2023 (England and Wales) publish 4,661 boys named
/// Muhammad (1st), 1,601 Mohammed (28th) and 835 Mohammad (68th): counts fall as rank^-0.4
/// (log-log fit through those three). Applied to each list in its rank order.
const GIVEN_RANK_EXPONENT: f64 = 0.4;
/// Share of English/Welsh children whose first name is in the ranked lists (ONS's top 100s hold
/// about half of a year's births); the rest get a rarer name from the long tail.
const ENGLISH_LISTED_GIVEN: f64 = 0.55;
/// Surnames of the other groups' lists fall as rank^-0.7.
const SURNAME_RANK_EXPONENT: f64 = 0.7;

struct Weighted<T> {
    items: Vec<T>,
    dist: WeightedIndex<f64>,
}

impl<T: Clone> Weighted<T> {
    fn by_rank(items: &[T], exponent: f64) -> Self {
        let weights: Vec<f64> = (1..=items.len()).map(|r| (r as f64).powf(-exponent)).collect();
        Self { items: items.to_vec(), dist: WeightedIndex::new(weights).expect("non-empty list") }
    }

    fn with_weights(items: Vec<T>, weights: Vec<f64>) -> Self {
        Self { items, dist: WeightedIndex::new(weights).expect("non-empty list") }
    }

    fn pick(&self, rng: &mut StdRng) -> T {
        self.items[self.dist.sample(rng)].clone()
    }
}

struct Names {
    given: HashMap<(Group, bool), Weighted<String>>,
    surnames: HashMap<Group, Weighted<String>>,
    /// Of English/Welsh families, the share whose surname is in the UK top 500 (the rest: tail).
    english_top_share: f64,
}

impl Names {
    fn new() -> Self {
        let owned = |l: &[&str]| l.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let joined = |l: &[&[&str]]| l.iter().map(|parts| parts.concat()).collect::<Vec<_>>();
        let mut given = HashMap::new();
        for (group, boys, girls) in [
            (Group::EnglishWelsh, owned(BOYS), owned(GIRLS)),
            (Group::SouthAsian, owned(SOUTH_ASIAN_BOYS), owned(SOUTH_ASIAN_GIRLS)),
            (Group::EastAfrican, owned(EAST_AFRICAN_BOYS), owned(EAST_AFRICAN_GIRLS)),
            (Group::WestAfrican, owned(WEST_AFRICAN_BOYS), owned(WEST_AFRICAN_GIRLS)),
            (
                Group::EasternEuropean,
                [owned(POLISH_BOYS), owned(ROMANIAN_LITHUANIAN_BOYS)].concat(),
                [owned(POLISH_GIRLS), owned(ROMANIAN_LITHUANIAN_GIRLS)].concat(),
            ),
            (Group::Arabic, owned(ARABIC_BOYS), owned(ARABIC_GIRLS)),
            (Group::EastAsian, joined(EAST_ASIAN_GIVEN_BOYS), joined(EAST_ASIAN_GIVEN_GIRLS)),
            (Group::Irish, owned(IRISH_BOYS), owned(IRISH_GIRLS)),
        ] {
            given.insert((group, false), Weighted::by_rank(&boys, GIVEN_RANK_EXPONENT));
            given.insert((group, true), Weighted::by_rank(&girls, GIVEN_RANK_EXPONENT));
        }
        // English/Welsh surnames: the UK top 500 by their real shares, less the names that
        // belong to another group's list (Patel, Khan, Murphy, ...), which those groups draw.
        let others: Vec<String> = [SOUTH_ASIAN_SURNAMES, WEST_AFRICAN_SURNAMES, POLISH_SURNAMES, IRISH_SURNAMES]
            .concat()
            .iter()
            .chain(EAST_ASIAN_SURNAMES)
            .map(|s| s.to_lowercase())
            .collect();
        let (mut names, mut shares) = (Vec::new(), Vec::new());
        for line in UK_SURNAMES_CSV.lines().filter(|l| !l.starts_with('#')).skip(1) {
            let Some((name, percent)) = line.split_once(',') else { continue };
            if others.contains(&name.to_lowercase()) {
                continue;
            }
            names.push(name.to_owned());
            shares.push(percent.parse::<f64>().expect("a share"));
        }
        // The top 500 hold 39.5 % of all people; among English/Welsh families a little more.
        let english_top_share = (shares.iter().sum::<f64>() / 100.0 / 0.85).min(0.6);
        let uk_share: HashMap<String, f64> = UK_SURNAMES_CSV
            .lines()
            .filter(|l| !l.starts_with('#'))
            .skip(1)
            .filter_map(|l| l.split_once(','))
            .map(|(n, p)| (n.to_lowercase(), p.parse::<f64>().expect("a share")))
            .collect();
        let mut surnames = HashMap::new();
        surnames.insert(Group::EnglishWelsh, Weighted::with_weights(names, shares));
        // South Asian and Irish surnames by their real UK shares where the top 500 has them
        // (Patel 0.24 %, Khan 0.14 %, Murphy 0.14 %, ...), else the table's smallest (0.03 %).
        for (group, list) in [(Group::SouthAsian, SOUTH_ASIAN_SURNAMES), (Group::Irish, IRISH_SURNAMES)] {
            let weights = list.iter().map(|n| uk_share.get(&n.to_lowercase()).copied().unwrap_or(0.03)).collect();
            surnames.insert(group, Weighted::with_weights(owned(list), weights));
        }
        for (group, list) in [
            (Group::WestAfrican, owned(WEST_AFRICAN_SURNAMES)),
            (Group::EasternEuropean, [owned(POLISH_SURNAMES), owned(ROMANIAN_SURNAMES)].concat()),
            (Group::Arabic, owned(ARABIC_SURNAMES)),
            (Group::EastAsian, owned(EAST_ASIAN_SURNAMES)),
        ] {
            surnames.insert(group, Weighted::by_rank(&list, SURNAME_RANK_EXPONENT));
        }
        Self { given, surnames, english_top_share }
    }

    fn given(&self, group: Group, girl: bool, rng: &mut StdRng) -> String {
        let listed = match group {
            Group::EnglishWelsh => ENGLISH_LISTED_GIVEN,
            _ => 0.85,
        };
        if rng.gen_bool(listed) { self.given[&(group, girl)].pick(rng) } else { rare_given(rng) }
    }

    fn surname(&self, group: Group, rng: &mut StdRng) -> String {
        match group {
            Group::EnglishWelsh => {
                if rng.gen_bool(0.04) {
                    let list = &self.surnames[&group];
                    format!("{}-{}", list.pick(rng), list.pick(rng))
                } else if rng.gen_bool(self.english_top_share) {
                    self.surnames[&group].pick(rng)
                } else {
                    rare_surname(rng)
                }
            }
            // Patronymic groups: the family name is the father's given name (set by the caller).
            Group::EastAfrican => self.given(group, false, rng),
            Group::Arabic if rng.gen_bool(0.4) => self.given(group, false, rng),
            Group::EasternEuropean if rng.gen_bool(0.15) => LITHUANIAN_SURNAMES.choose(rng).expect("list").0.to_owned(),
            // Chinese surnames are few and shared by many: the list alone.
            Group::EastAsian => self.surnames[&group].pick(rng),
            // The others: a listed name, or one from the long tail.
            _ if rng.gen_bool(0.3) => rare_surname(rng),
            _ => self.surnames[&group].pick(rng),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The population: families with siblings and twins.
// ---------------------------------------------------------------------------------------------

#[derive(Clone)]
struct Child {
    group: Group,
    girl: bool,
    given: String,
    /// The syllables of a Chinese given name (records join, space or hyphenate them).
    syllables: Vec<String>,
    family: String,
    /// The grandfather's name, in patronymic families (a record may use it as the family name).
    grandfather: Option<String>,
    /// The name a Muhammad is called by, or an English name used on some records.
    also_known_as: Option<String>,
    dob: Date,
    twin: Option<usize>,
    siblings: Vec<usize>,
}

fn population(size: usize, names: &Names, rng: &mut StdRng) -> Vec<Child> {
    let groups = Weighted::with_weights(Group::ALL.to_vec(), Group::ALL.iter().map(|g| g.share()).collect());
    let mut people: Vec<Child> = Vec::with_capacity(size + 4);
    while people.len() < size {
        let group = groups.pick(rng);
        let family = names.surname(group, rng);
        let grandfather = group.patronymic().then(|| names.given(group, false, rng));
        // 1.5 % of maternities are twins (3 % of children); families of one to three children.
        let twins = rng.gen_bool(0.015);
        let births = match rng.gen_range(0..100) {
            0..=54 => 1,
            55..=89 => 2,
            _ => 3,
        };
        let base_age: i64 =
            if rng.gen_bool(0.05) { rng.gen_range(18 * 365..25 * 365) } else { rng.gen_range(0..18 * 365 - 1) };
        let first = people.len();
        let mut age = base_age;
        for birth in 0..births {
            if birth > 0 {
                age += rng.gen_range(400..2500);
            }
            let dob = TODAY - Duration::days(age);
            if TODAY.year() - dob.year() > 25 {
                break;
            }
            let count = if twins && birth == 0 { 2 } else { 1 };
            let girls: Vec<bool> = (0..count).map(|_| rng.gen_bool(0.5)).collect();
            let mut chosen: Vec<(String, Vec<String>)> = Vec::new();
            if count == 2 && group == Group::EnglishWelsh && rng.gen_bool(0.2) {
                // Names twins are commonly given (Jack/Jake): they must stay unlinked.
                let (a, b) = *SIMILAR_TWIN_NAMES.choose(rng).expect("pairs");
                chosen = vec![(a.to_owned(), vec![]), (b.to_owned(), vec![])];
            } else {
                for &girl in &girls {
                    loop {
                        let (given, syllables) = if group == Group::EastAsian {
                            let list = if girl { EAST_ASIAN_GIVEN_GIRLS } else { EAST_ASIAN_GIVEN_BOYS };
                            let parts = list.choose(rng).expect("list");
                            (parts.concat(), parts.iter().map(|s| (*s).to_owned()).collect())
                        } else {
                            (names.given(group, girl, rng), vec![])
                        };
                        if !people[first..].iter().any(|p| one_name(&p.given, &given))
                            && !chosen.iter().any(|(g, _)| one_name(g, &given))
                        {
                            chosen.push((given, syllables));
                            break;
                        }
                    }
                }
            }
            for ((given, syllables), &girl) in chosen.into_iter().zip(&girls) {
                let muhammad = ["muhammad", "mohammed", "mohammad", "mohamed"].contains(&given.to_lowercase().as_str());
                let also_known_as = if muhammad && matches!(group, Group::SouthAsian | Group::Arabic) {
                    // Muhammad is often a first name before the name the child is called by.
                    Some(names.given(group, false, rng)).filter(|n| !one_name(n, &given))
                } else if matches!(group, Group::EastAsian | Group::WestAfrican) && rng.gen_bool(0.25) {
                    let list = if girl { ENGLISH_ALIASES_GIRLS } else { ENGLISH_ALIASES_BOYS };
                    Some((*list.choose(rng).expect("list")).to_owned())
                } else {
                    None
                };
                let family = gendered_surname(&family, group, girl);
                people.push(Child {
                    group,
                    girl,
                    given,
                    syllables,
                    family,
                    grandfather: grandfather.clone(),
                    also_known_as,
                    dob,
                    twin: None,
                    siblings: vec![],
                });
            }
            if count == 2 {
                let n = people.len();
                people[n - 2].twin = Some(n - 1);
                people[n - 1].twin = Some(n - 2);
            }
        }
        let members: Vec<usize> = (first..people.len()).collect();
        for &m in &members {
            people[m].siblings = members.iter().copied().filter(|&o| o != m && people[m].twin != Some(o)).collect();
        }
    }
    people
}

/// Whether two given names are one name to a parent: `same_name`, or two spellings of one name
/// across alphabets (Mohammed/Muhammad). Siblings never share one.
fn one_name(a: &str, b: &str) -> bool {
    let (la, lb) = (a.to_lowercase(), b.to_lowercase());
    same_name(a, b)
        || TRANSLITERATIONS
            .iter()
            .any(|g| g.iter().any(|n| n.to_lowercase() == la) && g.iter().any(|n| n.to_lowercase() == lb))
}

/// A daughter's surname in the languages that mark it: Kowalski → Kowalska, Kazlauskas → Kazlauskaitė.
fn gendered_surname(family: &str, group: Group, girl: bool) -> String {
    if group != Group::EasternEuropean || !girl {
        return family.to_owned();
    }
    if let Some((_, daughter)) = LITHUANIAN_SURNAMES.iter().find(|(father, _)| *father == family) {
        return (*daughter).to_owned();
    }
    for (m, f) in [("ski", "ska"), ("cki", "cka"), ("dzki", "dzka")] {
        if let Some(stem) = family.strip_suffix(m) {
            return format!("{stem}{f}");
        }
    }
    family.to_owned()
}

/// The father's form of a daughter's surname (what a record copied from the father's shows).
fn fathers_form(child: &Child) -> Option<String> {
    if child.group != Group::EasternEuropean || !child.girl {
        return None;
    }
    if let Some((father, _)) = LITHUANIAN_SURNAMES.iter().find(|(_, d)| *d == child.family) {
        return Some((*father).to_owned());
    }
    for (m, f) in [("ska", "ski"), ("cka", "cki"), ("dzka", "dzki")] {
        if let Some(stem) = child.family.strip_suffix(m) {
            return Some(format!("{stem}{f}"));
        }
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Records and the error profile.
// ---------------------------------------------------------------------------------------------

/// One record: names and date of birth only.
#[derive(Clone, Default)]
struct Record {
    given: Option<String>,
    family: Option<String>,
    dob: Option<String>,
}

impl Record {
    fn of(child: &Child, rng: &mut StdRng) -> Self {
        Self {
            given: Some(as_typed(&child.given, rng)),
            family: Some(as_typed(&child.family, rng)),
            dob: Some(child.dob.to_string()),
        }
    }

    fn raw(&self) -> RawSubject {
        RawSubject {
            given_name: self.given.clone(),
            family_name: self.family.clone(),
            date_of_birth: self.dob.clone(),
            ..RawSubject::default()
        }
    }
}

/// The kinds of difference between two records of one child, with their rates per record pair.
/// The first block is the profile (#21, from two public simulated sets with ground truth
/// and the linkage-error literature); the second the known kinds; the third the patterns of
/// particular naming systems. Each applies independently.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Kind {
    // One field wholly different (~10 % of pairs in all).
    DobSibling,
    DobOther,
    FamilyOther,
    GivenOther,
    // A field missing (~10 % of pairs: half on the holding, half on the other record).
    Missing,
    TypoEachName,
    // The known kinds.
    ShortForm,
    Spelling,
    GivenTypo,
    FamilyTypo,
    NamesSwapped,
    DoubleBarrel,
    FamilyChanged,
    DayMonthSwap,
    DateTypo,
    // Naming systems.
    Transliteration,
    CalledName,
    EnglishName,
    Grandfather,
    SingleName,
    AgeAssessed,
    FathersForm,
    BegumKaur,
    SyllablesSpaced,
}

impl Kind {
    fn rate(self, child: &Child) -> f64 {
        let g = child.group;
        match self {
            Kind::DobSibling => 0.02,
            Kind::DobOther => 0.02,
            Kind::FamilyOther => 0.035,
            Kind::GivenOther => 0.025,
            Kind::Missing => 0.05,
            Kind::TypoEachName => 0.03,
            Kind::ShortForm => 0.10,
            Kind::Spelling => 0.30,
            Kind::GivenTypo => 0.04,
            Kind::FamilyTypo => 0.04,
            Kind::NamesSwapped => match g {
                Group::EastAsian => 0.15,
                Group::WestAfrican | Group::EastAfrican | Group::Arabic => 0.05,
                _ => 0.01,
            },
            Kind::DoubleBarrel => {
                if g == Group::EnglishWelsh {
                    0.03
                } else {
                    0.005
                }
            }
            Kind::FamilyChanged => 0.02,
            Kind::DayMonthSwap => 0.02,
            Kind::DateTypo => 0.025,
            Kind::Transliteration => match g {
                Group::SouthAsian | Group::Arabic | Group::EastAfrican => 0.30,
                Group::EastAsian | Group::Irish => 0.15,
                _ => 0.05,
            },
            Kind::CalledName => 0.30,
            Kind::EnglishName => 0.30,
            Kind::Grandfather => 0.15,
            Kind::SingleName => 0.03,
            Kind::AgeAssessed => 0.05,
            Kind::FathersForm => 0.20,
            Kind::BegumKaur => 0.15,
            Kind::SyllablesSpaced => 0.25,
        }
    }

    fn applies(self, child: &Child) -> bool {
        let mut probe = StdRng::seed_from_u64(0);
        match self {
            Kind::DobSibling => !child.siblings.is_empty(),
            Kind::ShortForm => short_form_of(&child.given, &mut probe).is_some(),
            Kind::Spelling => spelling_of(&child.given, &mut probe).is_some(),
            Kind::Transliteration => {
                transliteration_of(&child.given, &mut probe).is_some()
                    || transliteration_of(&child.family, &mut probe).is_some()
            }
            Kind::DayMonthSwap => child.dob.day() <= 12 && child.dob.day() != u8::from(child.dob.month()),
            Kind::CalledName => {
                child.also_known_as.is_some() && matches!(child.group, Group::SouthAsian | Group::Arabic)
            }
            Kind::EnglishName => {
                child.also_known_as.is_some() && matches!(child.group, Group::EastAsian | Group::WestAfrican)
            }
            Kind::Grandfather => child.grandfather.is_some(),
            Kind::SingleName | Kind::AgeAssessed => child.group.may_be_age_assessed(),
            Kind::FathersForm => fathers_form(child).is_some(),
            Kind::BegumKaur => child.group == Group::SouthAsian && begum_kaur(child).is_some(),
            Kind::SyllablesSpaced => child.syllables.len() > 1,
            _ => true,
        }
    }

    const ALL: [Kind; 24] = [
        Kind::DobSibling,
        Kind::DobOther,
        Kind::FamilyOther,
        Kind::GivenOther,
        Kind::Missing,
        Kind::TypoEachName,
        Kind::ShortForm,
        Kind::Spelling,
        Kind::GivenTypo,
        Kind::FamilyTypo,
        Kind::NamesSwapped,
        Kind::DoubleBarrel,
        Kind::FamilyChanged,
        Kind::DayMonthSwap,
        Kind::DateTypo,
        Kind::Transliteration,
        Kind::CalledName,
        Kind::EnglishName,
        Kind::Grandfather,
        Kind::SingleName,
        Kind::AgeAssessed,
        Kind::FathersForm,
        Kind::BegumKaur,
        Kind::SyllablesSpaced,
    ];
}

/// A Bangladeshi girl recorded as Begum (or Khatun), a Sikh child as Kaur or Singh, on one record
/// and under the family's surname on the other.
fn begum_kaur(child: &Child) -> Option<&'static str> {
    const SIKH: &[&str] = &["Sandhu", "Dhillon", "Gill", "Kaur", "Singh"];
    const BANGLADESHI: &[&str] = &["Uddin", "Miah", "Rahman", "Islam", "Choudhury", "Ahmed", "Ali", "Hussain"];
    if SIKH.contains(&child.family.as_str()) {
        Some(if child.girl { "Kaur" } else { "Singh" }).filter(|s| *s != child.family)
    } else if child.girl && BANGLADESHI.contains(&child.family.as_str()) {
        Some("Begum")
    } else {
        None
    }
}

/// Applies one kind of difference to the other record (the holding keeps the child as first
/// recorded). Returns false when the kind turned out not to apply.
fn apply(kind: Kind, child: &Child, people: &[Child], rec: &mut Record, names: &Names, rng: &mut StdRng) {
    match kind {
        Kind::DobSibling => {
            if let Some(&s) = child.siblings.choose(rng) {
                rec.dob = Some(people[s].dob.to_string());
            }
        }
        Kind::DobOther => {
            let shift = rng.gen_range(30..1500) * if rng.gen_bool(0.5) { 1 } else { -1 };
            let d = (child.dob + Duration::days(shift)).min(TODAY);
            rec.dob = Some(d.to_string());
        }
        Kind::FamilyOther => rec.family = Some(names.surname(child.group, rng)),
        Kind::GivenOther => rec.given = Some(names.given(child.group, child.girl, rng)),
        Kind::Missing => match rng.gen_range(0..4) {
            0 | 1 => rec.dob = None,
            2 => rec.given = None,
            _ => rec.family = None,
        },
        Kind::TypoEachName => {
            rec.given = rec.given.as_deref().map(|g| typo(g, rng));
            rec.family = rec.family.as_deref().map(|f| typo(f, rng));
        }
        Kind::ShortForm => rec.given = short_form_of(&child.given, rng).or(rec.given.take()),
        Kind::Spelling => rec.given = spelling_of(&child.given, rng).or(rec.given.take()),
        Kind::GivenTypo => rec.given = rec.given.as_deref().map(|g| typo(g, rng)),
        Kind::FamilyTypo => rec.family = rec.family.as_deref().map(|f| typo(f, rng)),
        Kind::NamesSwapped => std::mem::swap(&mut rec.given, &mut rec.family),
        Kind::DoubleBarrel => {
            let current = rec.family.clone().unwrap_or_else(|| child.family.clone());
            rec.family = Some(if let Some((a, b)) = current.split_once('-') {
                if rng.gen_bool(0.5) { a } else { b }.to_owned()
            } else {
                let extra = names.surname(Group::EnglishWelsh, rng);
                if rng.gen_bool(0.5) { format!("{current}-{extra}") } else { format!("{extra}-{current}") }
            });
        }
        // A changed family name the other record does not carry as a former name (names + DOB only).
        Kind::FamilyChanged => rec.family = Some(names.surname(Group::EnglishWelsh, rng)),
        Kind::DayMonthSwap => {
            let swapped = Month::try_from(child.dob.day())
                .ok()
                .and_then(|m| Date::from_calendar_date(child.dob.year(), m, u8::from(child.dob.month())).ok());
            if let Some(d) = swapped {
                rec.dob = Some(d.to_string());
            }
        }
        Kind::DateTypo => {
            if let Some(d) = date_typo(child.dob, rng) {
                rec.dob = Some(d.to_string());
            }
        }
        Kind::Transliteration => {
            let given = transliteration_of(&child.given, rng);
            let family = transliteration_of(&child.family, rng);
            match (given, family) {
                (Some(g), Some(f)) => {
                    if rng.gen_bool(0.5) {
                        rec.given = Some(g);
                    } else {
                        rec.family = Some(f);
                    }
                }
                (Some(g), None) => rec.given = Some(g),
                (None, Some(f)) => rec.family = Some(f),
                (None, None) => {}
            }
        }
        Kind::CalledName | Kind::EnglishName => rec.given.clone_from(&child.also_known_as),
        Kind::Grandfather => rec.family.clone_from(&child.grandfather),
        Kind::SingleName => {
            // One name only: some systems leave the family name empty (refused), others repeat it.
            rec.family = if rng.gen_bool(0.5) { None } else { rec.given.clone() };
        }
        Kind::AgeAssessed => {
            let year = child.dob.year() + rng.gen_range(-1..=1);
            let d = Date::from_calendar_date(year, Month::January, 1).expect("1 January").min(TODAY);
            rec.dob = Some(d.to_string());
        }
        Kind::FathersForm => rec.family = fathers_form(child),
        Kind::BegumKaur => rec.family = begum_kaur(child).map(str::to_owned),
        Kind::SyllablesSpaced => {
            let sep = if rng.gen_bool(0.7) { " " } else { "-" };
            rec.given = Some(child.syllables.join(sep));
        }
    }
}

/// The other record of a child: drawn kinds applied in a fixed order (name kinds, then date).
fn other_record(child: &Child, people: &[Child], names: &Names, rng: &mut StdRng) -> (Record, Vec<Kind>) {
    let mut rec = Record::of(child, rng);
    let mut kinds = Vec::new();
    for kind in Kind::ALL {
        if kind.applies(child) && rng.gen_bool(kind.rate(child)) {
            apply(kind, child, people, &mut rec, names, rng);
            kinds.push(kind);
        }
    }
    (rec, kinds)
}

// ---------------------------------------------------------------------------------------------
// Measurement.
// ---------------------------------------------------------------------------------------------

#[derive(Default, Clone, Copy)]
struct Tally {
    asked: u32,
    refused: u32,
    /// The child's own holding was refused at registration (a field missing).
    not_held: u32,
    found_probable: u32,
    found_any: u32,
    false_probable: u32,
    false_any: u32,
}

impl Tally {
    fn recall(&self, probable: bool) -> f64 {
        let n = if probable { self.found_probable } else { self.found_any };
        100.0 * f64::from(n) / f64::from(self.asked.max(1))
    }

    fn per_5000(&self, probable: bool) -> f64 {
        let n = if probable { self.false_probable } else { self.false_any };
        5000.0 * f64::from(n) / f64::from(self.asked.max(1))
    }
}

#[derive(Default, Clone, Copy)]
struct TwinTally {
    asked: u32,
    confused_probable: u32,
    confused_any: u32,
}

/// Asks as a lookup, or as a holder's record at sync: since key family 2 signalling probes the
/// same keys a lookup asks (`Keyring::signalling_probes`), so the two differ only in how the
/// record is read (a holder's record is registered, a lookup is asked).
fn ask(index: &Index, rec: &Record, truth: usize, use_: KeyUse) -> Option<super::Outcome> {
    let subject = parse(&rec.raw(), SubjectRole::Child, use_)?;
    let mut counts = Vec::new();
    Some(index.ask(&subject, Some(truth), LookupOptions::default(), &mut counts))
}

fn peak_memory_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn csv_cell(s: Option<&str>) -> String {
    s.unwrap_or("").replace([',', '"', '\n'], " ")
}

/// `--export DIR`: the holdings and every query as `DIR/own.csv`, for `splink_own.py`.
struct Export(Option<std::io::BufWriter<std::fs::File>>);

impl Export {
    fn open(dir: Option<&String>) -> Self {
        Self(dir.map(|dir| {
            std::fs::create_dir_all(dir).expect("export directory");
            let file = std::fs::File::create(format!("{dir}/own.csv")).expect("export file");
            let mut f = std::io::BufWriter::new(file);
            writeln!(f, "entity,copy,given_name,family_name,date_of_birth,group,cotwin").expect("write");
            f
        }))
    }

    fn row(&mut self, entity: usize, copy: &str, rec: &Record, group: Group, cotwin: Option<usize>) {
        if let Some(f) = self.0.as_mut() {
            writeln!(
                f,
                "{entity},{copy},{},{},{},{},{}",
                csv_cell(rec.given.as_deref()),
                csv_cell(rec.family.as_deref()),
                csv_cell(rec.dob.as_deref()),
                group.label(),
                cotwin.map(|c| c.to_string()).unwrap_or_default()
            )
            .expect("write");
        }
    }
}

/// The population and the organisation's holdings of it.
struct World {
    names: Names,
    people: Vec<Child>,
    /// The children the organisation tried to register.
    held_people: Vec<usize>,
    holdings: Vec<Option<Record>>,
    /// Whether a child's holding was accepted.
    held: Vec<bool>,
    refused_holdings: usize,
    index: Index,
}

/// The holdings: each child as first recorded; 5 % lack a field (the other half of the issue's
/// "a field missing in ~10 % of pairs") and are refused at registration.
fn build_world(args: &Args, rng: &mut StdRng) -> World {
    let names = Names::new();
    let people = population(args.children + args.children / 3, &names, rng);
    let mut order: Vec<usize> = (0..people.len()).collect();
    order.shuffle(rng);
    order.truncate(args.children);
    let mut world = World {
        index: Index::new(&IndexSecret::from_bytes(rng.r#gen())),
        holdings: vec![None; people.len()],
        held: vec![false; people.len()],
        refused_holdings: 0,
        held_people: order,
        names,
        people,
    };
    for &p in &world.held_people {
        let child = &world.people[p];
        let mut rec = Record::of(child, rng);
        if rng.gen_bool(Kind::Missing.rate(child)) {
            apply(Kind::Missing, child, &world.people, &mut rec, &world.names, rng);
        }
        match parse(&rec.raw(), SubjectRole::Child, KeyUse::Holding) {
            Some(subject) => {
                world.index.add(p, &subject);
                world.held[p] = true;
            }
            None => world.refused_holdings += 1,
        }
        world.holdings[p] = Some(rec);
    }
    world
}

/// What the stratified queries found, by group and by difference.
#[derive(Default)]
struct GroupResults {
    lookups: HashMap<Group, Tally>,
    signals: HashMap<Group, Tally>,
    kinds_seen: HashMap<(Group, Kind), u32>,
    /// Per difference (unweighted): queries with it, found at probable by lookup, by signalling.
    by_kind: HashMap<Kind, [u32; 5]>,
    false_examples: Vec<String>,
}

/// Q children of each group among those the organisation holds (or tried to: a refused holding
/// is a miss), each asked as a lookup and as signalling.
fn ask_groups(world: &World, queries: usize, rng: &mut StdRng, export: &mut Export) -> GroupResults {
    let mut by_group: HashMap<Group, Vec<usize>> = HashMap::new();
    for &p in &world.held_people {
        by_group.entry(world.people[p].group).or_default().push(p);
    }
    let mut out = GroupResults::default();
    let mut query_no = 0usize;
    for group in Group::ALL {
        let Some(members) = by_group.get(&group) else { continue };
        for _ in 0..queries {
            let &p = members.choose(rng).expect("members");
            let (rec, kinds) = other_record(&world.people[p], &world.people, &world.names, rng);
            export.row(p, &format!("dup-{query_no}"), &rec, group, None);
            query_no += 1;
            for k in &kinds {
                *out.kinds_seen.entry((group, *k)).or_default() += 1;
                out.by_kind.entry(*k).or_default()[0] += 1;
            }
            for (slot, use_) in [KeyUse::Lookup, KeyUse::Holding].into_iter().enumerate() {
                let tallies = if use_ == KeyUse::Lookup { &mut out.lookups } else { &mut out.signals };
                let t = tallies.entry(group).or_default();
                t.asked += 1;
                t.not_held += u32::from(!world.held[p]);
                let Some(outcome) = ask(&world.index, &rec, p, use_) else {
                    t.refused += 1;
                    continue;
                };
                let found = outcome.best_true.is_some_and(|t| t >= Tier::Probable);
                t.found_probable += u32::from(found);
                t.found_any += u32::from(outcome.best_true.is_some());
                t.false_probable +=
                    outcome.false_matches.iter().filter(|(_, a)| a.tier >= Tier::Probable).count() as u32;
                t.false_any += outcome.false_matches.len() as u32;
                for k in &kinds {
                    let counts = out.by_kind.entry(*k).or_default();
                    counts[slot + 1] += u32::from(found);
                    counts[slot + 3] += u32::from(outcome.best_true.is_some());
                }
                for (h, a) in outcome.false_matches.iter().filter(|(_, a)| a.tier >= Tier::Probable) {
                    if out.false_examples.len() < 60 {
                        let held_as = world.holdings[*h].as_ref().map(|r| (&r.given, &r.family, &r.dob));
                        out.false_examples.push(format!(
                            "{use_:?} {} [{}] asked {:?} {:?} {:?} ({kinds:?}); wrong child held as {held_as:?}",
                            group.label(),
                            a.evidence,
                            rec.given,
                            rec.family,
                            rec.dob,
                        ));
                    }
                }
            }
        }
    }
    out
}

/// Twins asked about (realistic differences) while the co-twin is held: lookup, signalling, and
/// a few examples of a co-twin at probable.
fn ask_twins(world: &World, queries: usize, rng: &mut StdRng, export: &mut Export) -> ([TwinTally; 2], Vec<String>) {
    let people = &world.people;
    let twins: Vec<usize> = (0..people.len()).filter(|&p| people[p].twin.is_some_and(|t| world.held[t])).collect();
    let mut tallies = [TwinTally::default(); 2];
    let mut examples = Vec::new();
    for i in 0..queries.min(twins.len()) {
        let &p = twins.choose(rng).expect("twins");
        let co = people[p].twin.expect("a twin");
        let (rec, _) = other_record(&people[p], people, &world.names, rng);
        export.row(p, &format!("twin-{i}"), &rec, people[p].group, Some(co));
        for (t, use_) in tallies.iter_mut().zip([KeyUse::Lookup, KeyUse::Holding]) {
            t.asked += 1;
            let Some(outcome) = ask(&world.index, &rec, p, use_) else { continue };
            let co_tier = outcome.false_matches.iter().filter(|(h, _)| *h == co).map(|(_, a)| a.tier).max();
            t.confused_any += u32::from(co_tier.is_some());
            if co_tier.is_some_and(|t| t >= Tier::Probable) {
                t.confused_probable += 1;
                if examples.len() < 5 {
                    let held_as = world.holdings[co].as_ref().map(|h| (&h.given, &h.family));
                    examples.push(format!(
                        "{use_:?} asked {:?} {:?} {:?}; co-twin held as {held_as:?}",
                        rec.given, rec.family, rec.dob
                    ));
                }
            }
        }
    }
    (tallies, examples)
}

pub fn run(args: &Args) -> ExitCode {
    let started = Instant::now();
    let mut rng = StdRng::seed_from_u64(args.seed);
    let world = build_world(args, &mut rng);
    let indexed_secs = started.elapsed().as_secs_f64();
    let mut export = Export::open(args.export.as_ref());
    for &p in &world.held_people {
        if let Some(r) = &world.holdings[p] {
            export.row(p, "org", r, world.people[p].group, None);
        }
    }
    let query_started = Instant::now();
    let groups = ask_groups(&world, args.queries, &mut rng, &mut export);
    let ([twin_lookups, twin_signals], twin_examples) = ask_twins(&world, args.queries, &mut rng, &mut export);
    drop(export);
    let query_secs = query_started.elapsed().as_secs_f64();
    print_report(&Report {
        args,
        people: &world.people,
        held: world.held_people.len(),
        refused_holdings: world.refused_holdings,
        pseudonyms: world.index.map.len(),
        stored: world.index.stored_keys.iter().sum(),
        lookups: &groups.lookups,
        signals: &groups.signals,
        twin_lookups,
        twin_signals,
        twin_examples: &twin_examples,
        kinds_seen: &groups.kinds_seen,
        by_kind: &groups.by_kind,
        false_examples: &groups.false_examples,
        timings: [indexed_secs, query_secs, started.elapsed().as_secs_f64()],
    });
    ExitCode::SUCCESS
}

struct Report<'a> {
    args: &'a Args,
    people: &'a [Child],
    held: usize,
    refused_holdings: usize,
    pseudonyms: usize,
    stored: usize,
    lookups: &'a HashMap<Group, Tally>,
    signals: &'a HashMap<Group, Tally>,
    twin_lookups: TwinTally,
    twin_signals: TwinTally,
    twin_examples: &'a [String],
    kinds_seen: &'a HashMap<(Group, Kind), u32>,
    by_kind: &'a HashMap<Kind, [u32; 5]>,
    false_examples: &'a [String],
    /// Population and index built, queries asked, total (seconds).
    timings: [f64; 3],
}

/// Overall figures: each group weighted by its share of children.
fn weighted(tallies: &HashMap<Group, Tally>, f: impl Fn(&Tally) -> f64) -> f64 {
    let total: f64 = Group::ALL.iter().filter(|g| tallies.contains_key(g)).map(|g| g.share()).sum();
    Group::ALL.iter().filter_map(|g| tallies.get(g).map(|t| g.share() * f(t))).sum::<f64>() / total.max(1e-9)
}

fn print_report(r: &Report) {
    print_population(r);
    let short = print_groups(r);
    print_twins(r);
    print_differences(r);
    print_targets(r, &short);
}

fn print_population(r: &Report) {
    let a = r.args;
    println!("## The realistic profile (seed {}, {} holdings)\n", a.seed, r.held);
    println!(
        "Command: `cargo run --release --example match_quality -- --profile realistic --children {} --seed {} --queries {}`\n",
        a.children, a.seed, a.queries
    );
    let share = |f: &dyn Fn(&Child) -> String| {
        let mut counts: HashMap<String, usize> = HashMap::new();
        for p in r.people {
            *counts.entry(f(p).to_lowercase()).or_default() += 1;
        }
        let n = r.people.len() as f64;
        counts.values().map(|&c| (c as f64 / n).powi(2)).sum::<f64>()
    };
    let twins = r.people.iter().filter(|p| p.twin.is_some()).count();
    let with_sibling = r.people.iter().filter(|p| !p.siblings.is_empty()).count();
    println!(
        "Population {} children ({} twins, {} with a sibling who is not their twin); {} holdings attempted, {} refused \
         at registration for a missing field; {} distinct pseudonyms, {} stored keys ({:.1} a holding).",
        r.people.len(),
        twins,
        with_sibling,
        r.held,
        r.refused_holdings,
        r.pseudonyms,
        r.stored,
        r.stored as f64 / (r.held - r.refused_holdings).max(1) as f64
    );
    println!(
        "Name frequencies: P(two children share a first name) = {:.4}, a family name = {:.4}.",
        share(&|p| p.given.clone()),
        share(&|p| p.family.clone())
    );
    let [built, q, total] = r.timings;
    println!(
        "Time: population and index {built:.1} s, queries {q:.1} s, total {total:.1} s; peak memory {}.\n",
        peak_memory_mib().map_or("unknown".to_owned(), |m| format!("{m:.0} MiB"))
    );
}

/// The table by name-origin group; returns the groups more than 2 points below the overall.
fn print_groups(r: &Report) -> Vec<String> {
    println!(
        "| name origin | share of children | queries | refused (a field missing) | not held (holding refused) | \
         lookup: probable+ | lookup: any tier | lookup: false per 5,000 (probable+ / any) | \
         signalling: probable+ | signalling: any tier | signalling: false per 5,000 (probable+ / any) |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut overall = String::new();
    let lk = |p: bool| weighted(r.lookups, |t| t.recall(p));
    let sg = |p: bool| weighted(r.signals, |t| t.recall(p));
    let (lf, sf) = false_rates(r);
    let _ = write!(
        overall,
        "| **all (weighted by share)** | 100 % | {} | {:.1} % | {:.1} % | **{:.1} %** | {:.1} % | {:.1} / {:.1} | **{:.1} %** | {:.1} % | {:.1} / {:.1} |",
        r.lookups.values().map(|t| t.asked).sum::<u32>(),
        weighted(r.lookups, |t| 100.0 * f64::from(t.refused) / f64::from(t.asked.max(1))),
        weighted(r.lookups, |t| 100.0 * f64::from(t.not_held) / f64::from(t.asked.max(1))),
        lk(true),
        lk(false),
        lf[0],
        lf[1],
        sg(true),
        sg(false),
        sf[0],
        sf[1]
    );
    println!("{overall}");
    let mut short = Vec::new();
    for g in Group::ALL {
        let (Some(l), Some(s)) = (r.lookups.get(&g), r.signals.get(&g)) else { continue };
        println!(
            "| {} | {:.1} % | {} | {:.1} % | {:.1} % | {:.1} % | {:.1} % | {:.1} / {:.1} | {:.1} % | {:.1} % | {:.1} / {:.1} |",
            g.label(),
            100.0 * g.share(),
            l.asked,
            100.0 * f64::from(l.refused) / f64::from(l.asked.max(1)),
            100.0 * f64::from(l.not_held) / f64::from(l.asked.max(1)),
            l.recall(true),
            l.recall(false),
            l.per_5000(true),
            l.per_5000(false),
            s.recall(true),
            s.recall(false),
            s.per_5000(true),
            s.per_5000(false)
        );
        for (what, value, all) in [("lookup", l.recall(true), lk(true)), ("signalling", s.recall(true), sg(true))] {
            if value < all - 2.0 {
                short.push(format!("{} ({what}: {value:.1} % against {all:.1} %)", g.label()));
            }
        }
    }
    short
}

/// Overall wrong holdings per 5,000 queries: lookups and signalling, each at probable+ and any tier.
fn false_rates(r: &Report) -> ([f64; 2], [f64; 2]) {
    let f = |tallies: &HashMap<Group, Tally>| [true, false].map(|p| weighted(tallies, |t| t.per_5000(p)));
    (f(r.lookups), f(r.signals))
}

fn print_twins(r: &Report) {
    println!(
        "\n| twins (the co-twin held) | asked | co-twin at probable+ | co-twin at any tier |\n| --- | ---: | ---: | ---: |"
    );
    for (label, t) in [("lookup", r.twin_lookups), ("signalling", r.twin_signals)] {
        println!(
            "| {label} | {} | {} | {} ({:.1} %) |",
            t.asked,
            t.confused_probable,
            t.confused_any,
            100.0 * f64::from(t.confused_any) / f64::from(t.asked.max(1))
        );
    }
    for e in r.twin_examples {
        eprintln!("TWIN AT PROBABLE: {e}");
    }
}

/// How often each difference occurred by group, and how often queries with it were found.
fn print_differences(r: &Report) {
    println!("\n| difference (per record pair) | share of queries, by group: {} |", {
        Group::ALL.iter().map(|g| g.label()).collect::<Vec<_>>().join(" / ")
    });
    println!("| --- | --- |");
    for kind in Kind::ALL {
        let cells: Vec<String> = Group::ALL
            .iter()
            .map(|g| {
                let n = r.kinds_seen.get(&(*g, kind)).copied().unwrap_or(0);
                let asked = r.lookups.get(g).map_or(1, |t| t.asked.max(1));
                format!("{:.1}", 100.0 * f64::from(n) / f64::from(asked))
            })
            .collect();
        println!("| {kind:?} | {} |", cells.join(" / "));
    }
    println!(
        "\n| difference (all groups, unweighted) | queries with it | lookup: found at probable+ | signalling: found at probable+ | lookup: any tier | signalling: any tier |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    for kind in Kind::ALL {
        let [n, l, s, l_any, s_any] = r.by_kind.get(&kind).copied().unwrap_or_default();
        let pct = |x: u32| 100.0 * f64::from(x) / f64::from(n.max(1));
        println!("| {kind:?} | {n} | {:.1} % | {:.1} % | {:.1} % | {:.1} % |", pct(l), pct(s), pct(l_any), pct(s_any));
    }
    for e in r.false_examples {
        eprintln!("FALSE AT PROBABLE: {e}");
    }
}

fn print_targets(r: &Report, short: &[String]) {
    println!("\n### Against the targets (a report, not a gate)\n");
    let twins_ok = r.twin_lookups.confused_probable == 0 && r.twin_signals.confused_probable == 0;
    println!(
        "- {} no twin confused at probable ({} lookups, {} signalling)",
        if twins_ok { "MET:" } else { "NOT MET:" },
        r.twin_lookups.confused_probable,
        r.twin_signals.confused_probable
    );
    if short.is_empty() {
        println!("- MET: no name-origin group more than 2 points below the overall at probable");
    } else {
        println!("- NOT MET: groups more than 2 points below the overall at probable: {}", short.join("; "));
    }
    // For the Splink comparison: the product's overall false matches per 5,000.
    let ([lp, la], [sp, sa]) = false_rates(r);
    eprintln!(
        "PRODUCT_FALSE_PER_5000 lookup_probable={lp:.1} lookup_any={la:.1} signalling_probable={sp:.1} signalling_any={sa:.1}"
    );
}
