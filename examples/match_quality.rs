//! Measured matching quality: a seeded synthetic population of UK children (and carers) whose
//! two records differ as real ones do, indexed with `holding_keys`, asked with `lookup_keys`.
//!
//! `cargo run --release --example match_quality -- [--profile kind|realistic] [--children N] [--seed S] [--queries Q]`
//!
//! Two error profiles: `kind` (the default; the original, kinder error model, gated by its
//! targets) and `realistic` (`match_quality/realistic.rs`: the published error mix, UK name
//! frequencies, name-origin groups; a report, not a gate).
//!
//! Everything the product does is done here the same way: keys → pseudonyms → an in-memory
//! index (pseudonym → holdings) → agreements with holder counts → `assess`. Output is Markdown;
//! the exit status is non-zero when a target is not met. Diagnostics on standard error:
//! `SHOW_FALSE=probable` (or `possible`) prints each wrong child found with both records, and
//! `SHOW_MISSES=1` each right child not found at probable with the differences applied.

use std::collections::{HashMap, HashSet};
use std::process::ExitCode;
use std::time::Instant;

use child_locator::domain::identity::{
    ExpectedDate, IndexSecret, KeyUse, LookupOptions, Pseudonym, Pseudonymiser, RawSubject, Subject, SubjectRole, Tier,
    expected_birth_keys, newborn_keys,
};
use rand::distributions::WeightedIndex;
use rand::prelude::*;
use rand::rngs::StdRng;
use time::macros::date;
use time::{Date, Duration};

#[path = "shared/index.rs"]
mod index;
use index::{Index, Outcome};

/// The realistic profile (`--profile realistic`): names and date of birth only, UK name
/// frequencies, name-origin groups, twins and siblings, the published error mix.
#[path = "match_quality/realistic.rs"]
mod realistic;

const TODAY: Date = date!(2026 - 11 - 01);

// ---------------------------------------------------------------------------------------------
// Name lists (most common first: sampling weights fall off with rank, like real name counts).
// ---------------------------------------------------------------------------------------------

#[rustfmt::skip]
const BOYS: &[&str] = &[
    "Noah", "Oliver", "George", "Arthur", "Leo", "Harry", "Oscar", "Archie", "Henry", "Theodore",
    "Freddie", "Jack", "Charlie", "Theo", "Alfie", "Jacob", "Thomas", "Finley", "Lucas", "Isaac",
    "Tommy", "William", "Teddy", "Edward", "Alexander", "James", "Joshua", "Max", "Sebastian",
    "Elijah", "Louie", "Reggie", "Albie", "Rory", "Arlo", "Ronnie", "Hudson", "Jude", "Ezra",
    "Luca", "Hugo", "Mason", "Ethan", "Daniel", "Samuel", "Benjamin", "Joseph", "Harrison", "Jaxon",
    "Logan", "Riley", "Dylan", "Frankie", "Stanley", "Toby", "Harvey", "Jake", "Ryan", "Jenson",
    "Carter", "Dexter", "Bobby", "Louis", "Albert", "Caleb", "Ralph", "Austin", "Elliot", "Jesse",
    "Felix", "Ellis", "Kai", "Nathan", "Matthew", "Jayden", "Michael", "David", "Liam", "Callum",
    "Connor", "Kyle", "Lewis", "Jordan", "Tyler", "Owen", "Aaron", "Adam", "Bradley", "Reece",
    "Brandon", "Jamie", "Kian", "Cameron", "Alex", "Ben", "Charles", "Frederick", "John",
    "Christopher", "Nicholas", "Zachary", "Gabriel", "Dominic", "Anthony", "Robert", "Richard",
    "Luke", "Aidan", "Billy", "Sonny", "Jasper", "Otis", "Roman", "Grayson", "Rowan", "Stephen",
    "Philip", "Archibald", "Alfred", "Edwin", "Vincent", "Declan",
];

#[rustfmt::skip]
const GIRLS: &[&str] = &[
    "Olivia", "Amelia", "Isla", "Ava", "Ivy", "Lily", "Freya", "Florence", "Mia", "Willow", "Rosie",
    "Sophia", "Isabella", "Grace", "Daisy", "Sienna", "Poppy", "Elsie", "Emily", "Ella", "Evelyn",
    "Phoebe", "Sofia", "Evie", "Charlotte", "Harper", "Millie", "Matilda", "Maya", "Sophie",
    "Alice", "Emilia", "Isabelle", "Ruby", "Luna", "Maisie", "Aria", "Penelope", "Mila", "Bonnie",
    "Eva", "Hallie", "Eliza", "Ada", "Violet", "Esme", "Arabella", "Imogen", "Jessica", "Delilah",
    "Layla", "Rose", "Lottie", "Martha", "Thea", "Scarlett", "Harriet", "Molly", "Zara", "Nancy",
    "Ellie", "Erin", "Holly", "Hannah", "Lucy", "Emma", "Chloe", "Megan", "Amber", "Abigail",
    "Lexi", "Bella", "Eleanor", "Elizabeth", "Katie", "Lauren", "Madison", "Georgia", "Leah",
    "Niamh", "Jasmine", "Paige", "Summer", "Skye", "Tilly", "Gracie", "Lola", "Darcie", "Heidi",
    "Edith", "Mabel", "Iris", "Orla", "Aurora", "Nova", "Ayla", "Robyn", "Clara", "Amelie",
    "Victoria", "Rebecca", "Samantha", "Katherine", "Alexandra", "Natalie", "Francesca", "Georgina",
    "Josephine", "Jennifer", "Stephanie", "Lydia", "Beatrice", "Eve", "Zoë", "Bethany", "Caitlin",
    "Kayleigh", "Courtney", "Shannon", "Demi", "Tia", "Keira", "Lacey", "Madeleine",
];

const SOUTH_ASIAN_BOYS: &[&str] = &[
    "Muhammad", "Mohammed", "Ibrahim", "Yusuf", "Ali", "Hamza", "Ahmed", "Omar", "Zain", "Ayaan", "Musa", "Adam",
    "Ismail", "Hassan", "Bilal", "Zayn", "Abdullah", "Mohammad", "Aryan", "Arjun", "Rayan", "Ishaan", "Rohan", "Dev",
    "Aarav", "Vihaan", "Kabir", "Hussain", "Idris", "Zakariya", "Haris", "Harjeet",
];

const SOUTH_ASIAN_GIRLS: &[&str] = &[
    "Maryam", "Fatima", "Aisha", "Zainab", "Hafsa", "Khadija", "Inaya", "Anaya", "Amira", "Hawa", "Aaliyah", "Safa",
    "Sana", "Ayesha", "Hana", "Noor", "Eshal", "Zara", "Aleena", "Priya", "Ananya", "Diya", "Simran", "Jasmeet",
    "Riya", "Sara", "Mariam", "Iqra", "Laiba", "Alisha",
];

#[rustfmt::skip]
const POLISH_BOYS: &[&str] = &[
    "Jakub", "Szymon", "Antoni", "Filip", "Jan", "Kacper", "Aleksander", "Franciszek", "Mikołaj",
    "Wojciech", "Adam", "Michał", "Marcel", "Stanisław", "Wiktor", "Piotr", "Igor", "Leon",
    "Nikodem", "Mateusz", "Bartosz", "Tomasz", "Oliwer", "Dominik", "Maksymilian",
];

#[rustfmt::skip]
const POLISH_GIRLS: &[&str] = &[
    "Zuzanna", "Julia", "Maja", "Zofia", "Hanna", "Lena", "Alicja", "Maria", "Amelia", "Oliwia",
    "Aleksandra", "Natalia", "Wiktoria", "Emilia", "Antonina", "Laura", "Pola", "Łucja", "Nadia",
    "Gabriela", "Katarzyna", "Magdalena", "Agnieszka", "Małgorzata", "Jagoda",
];

#[rustfmt::skip]
const WEST_AFRICAN_BOYS: &[&str] = &[
    "Oluwaseun", "Oluwatobi", "Oluwadamilare", "Chukwuemeka", "Emmanuel", "David", "Daniel",
    "Samuel", "Kwame", "Kofi", "Kwabena", "Yaw", "Kojo", "Femi", "Tobi", "Ayodele", "Adebayo",
    "Chidi", "Obinna", "Ikenna", "Tunde", "Segun", "Jesse", "Joshua", "Caleb", "Elijah",
    "Nathaniel", "Divine",
];

#[rustfmt::skip]
const WEST_AFRICAN_GIRLS: &[&str] = &[
    "Oluwafunmilayo", "Oluwakemi", "Ifeoluwa", "Chiamaka", "Chidinma", "Adaeze", "Ngozi", "Amara",
    "Abena", "Akosua", "Ama", "Efua", "Esi", "Adwoa", "Tolu", "Temitope", "Blessing", "Precious",
    "Favour", "Grace", "Esther", "Deborah", "Comfort", "Mercy", "Nkechinyere", "Folake", "Yewande",
    "Damilola", "Ayomide", "Princess",
];

const IRISH_BOYS: &[&str] = &[
    "Seán", "Cian", "Oisín", "Darragh", "Conor", "Patrick", "Jack", "James", "Liam", "Fionn", "Tadhg", "Rían",
    "Ciarán", "Eoin", "Cillian", "Niall", "Ruairí", "Donal", "Cathal", "Pádraig", "Declan", "Ronan", "Colm", "Dara",
    "Senan",
];

const IRISH_GIRLS: &[&str] = &[
    "Aoife", "Niamh", "Saoirse", "Caoimhe", "Siobhán", "Róisín", "Ciara", "Orla", "Clodagh", "Éabha", "Sinéad",
    "Aisling", "Gráinne", "Bríd", "Máire", "Sorcha", "Ailbhe", "Laoise", "Muireann", "Emer", "Fiadh", "Síofra",
    "Méabh", "Nuala", "Orlaith",
];

#[rustfmt::skip]
const ENGLISH_SURNAMES: &[&str] = &[
    "Smith", "Jones", "Williams", "Taylor", "Brown", "Davies", "Evans", "Wilson", "Thomas",
    "Johnson", "Roberts", "Robinson", "Thompson", "Wright", "Walker", "White", "Edwards", "Hughes",
    "Green", "Hall", "Lewis", "Harris", "Clarke", "Jackson", "Wood", "Turner", "Martin", "Cooper",
    "Hill", "Ward", "Morris", "Moore", "Clark", "Lee", "King", "Baker", "Harrison", "Morgan",
    "Allen", "James", "Scott", "Phillips", "Watson", "Davis", "Parker", "Price", "Bennett", "Young",
    "Griffiths", "Mitchell", "Kelly", "Cook", "Carter", "Richardson", "Bailey", "Collins", "Bell",
    "Shaw", "Murphy", "Miller", "Cox", "Richards", "Marshall", "Anderson", "Simpson", "Ellis",
    "Adams", "Wilkinson", "Foster", "Chapman", "Powell", "Webb", "Rogers", "Gray", "Mason", "Hunt",
    "Campbell", "Matthews", "Owen", "Palmer", "Holmes", "Mills", "Barnes", "Knight", "Lloyd",
    "Butler", "Russell", "Barker", "Fisher", "Stevens", "Jenkins", "Murray", "Dixon", "Harvey",
    "Graham", "Pearson", "Fletcher", "Walsh", "Gibson", "Howard", "Andrews", "Stewart", "Elliott",
    "Reynolds", "Saunders", "Payne", "Fox", "Ford", "Pearce", "Day", "Brooks", "West", "Lawrence",
    "Cole", "Atkinson", "Bradley", "Spencer", "Gill", "Dawson", "Ball", "Burton", "O'Brien",
    "Watts", "Rose", "Booth", "Perry", "Ryan", "Grant", "Wells", "Armstrong", "Francis", "Rees",
    "Hayes", "Hart", "Hudson", "Newman", "Barrett", "Gregory", "Lowe", "Carr", "Hunter", "Page",
    "Marsh", "Riley", "Dunn", "Woods", "Parsons", "Berry", "Stone", "Reid", "Holland", "Hawkins",
    "Harding", "Porter", "Robertson", "Newton", "Oliver", "Reed", "Kennedy", "Williamson", "Bird",
    "Gardner", "Dean", "Lane", "Cooke", "Bates", "Henderson", "Parry", "Burgess", "Bishop",
    "Walton", "Burns", "Nicholson", "Shepherd", "Ross", "Cross", "Long", "Freeman", "Warren",
    "Nicholls", "Hamilton", "Byrne", "Sutton", "McDonald", "Yates", "Hodgson", "Robson", "Curtis",
    "Hopkins", "O'Connor", "Harper", "Coleman", "Watkins", "Moss", "McCarthy", "Chambers",
    "O'Neill", "Griffin", "Sharp", "Hardy", "Wheeler", "Potter", "Osborne", "Johnston", "Gordon",
    "Doyle", "Wallace", "George", "Jordan", "Hutchinson", "Rowe", "Burke", "May", "Pritchard",
    "Gilbert", "Willis", "Higgins", "Read", "Miles", "Stevenson", "Stephenson", "Hammond", "Arnold",
    "Buckley", "Walters", "Hewitt", "Barber", "Nelson", "Slater", "Austin", "Sullivan", "Whitehead",
    "Mann", "Frost", "Lambert", "Stephens", "Blake", "Lynch", "Goodwin", "Barton", "Woodward",
    "Thomson", "Cunningham", "Quinn", "Barnett", "Baxter", "Clayton", "Nash", "Greenwood",
    "Jennings", "Holt", "Kemp", "Poole", "Gallagher", "Bond", "Stokes", "Tucker", "Davidson",
    "Fowler",
];

#[rustfmt::skip]
const SOUTH_ASIAN_SURNAMES: &[&str] = &[
    "Khan", "Ahmed", "Ali", "Hussain", "Begum", "Patel", "Shah", "Singh", "Kaur", "Akhtar",
    "Mahmood", "Iqbal", "Rahman", "Islam", "Bibi", "Malik", "Qureshi", "Sheikh", "Mirza",
    "Chaudhry", "Butt", "Rashid", "Sharma", "Gupta", "Kumar", "Mistry", "Parmar", "Chauhan",
    "Sandhu", "Gill", "Dhillon", "Uddin", "Miah", "Choudhury", "Bashir", "Aziz", "Anwar", "Javed",
    "Nawaz", "Raza", "Siddiqui",
];

#[rustfmt::skip]
const POLISH_SURNAMES: &[&str] = &[
    "Nowak", "Kowalski", "Wiśniewski", "Wójcik", "Kowalczyk", "Kamiński", "Lewandowski",
    "Zieliński", "Szymański", "Woźniak", "Dąbrowski", "Kozłowski", "Jankowski", "Mazur",
    "Wojciechowski", "Kwiatkowski", "Krawczyk", "Kaczmarek", "Piotrowski", "Grabowski", "Zając",
    "Pawłowski", "Michalski", "Król", "Wieczorek", "Jabłoński", "Wróbel", "Nowakowski", "Majewski",
    "Olszewski", "Przybylski", "Stępień", "Jaworski", "Malinowski", "Adamczyk", "Dudek", "Nowicki",
    "Pawlak", "Górski", "Witkowski",
];

#[rustfmt::skip]
const WEST_AFRICAN_SURNAMES: &[&str] = &[
    "Okafor", "Adeyemi", "Mensah", "Boateng", "Owusu", "Asante", "Osei", "Adebayo", "Okonkwo",
    "Eze", "Nwosu", "Obi", "Oladipo", "Ogunleye", "Afolabi", "Bello", "Balogun", "Adeleke",
    "Ibrahim", "Danso", "Appiah", "Agyeman", "Ansah", "Ofori", "Quaye", "Tetteh", "Amoah", "Okeke",
    "Chukwu", "Onyeka", "Adewale", "Akinola", "Olawale", "Babatunde", "Ojo", "Ogundipe",
];

#[rustfmt::skip]
const IRISH_SURNAMES: &[&str] = &[
    "Murphy", "Kelly", "O'Sullivan", "Walsh", "O'Brien", "Byrne", "Ryan", "O'Connor", "O'Neill",
    "O'Reilly", "Doyle", "McCarthy", "Gallagher", "O'Doherty", "Kennedy", "Lynch", "Murray",
    "Quinn", "Moore", "McLaughlin", "O'Carroll", "Connolly", "Daly", "O'Connell", "Ó Súilleabháin",
    "Mac Giolla Phádraig", "Fitzgerald", "Brennan", "Burke", "Collins", "Campbell", "Clarke",
    "Johnston", "Hughes", "Farrell", "Fitzpatrick", "Brady", "Maguire", "Nolan", "Ó Briain",
];

/// Syllables for the long tail of rarer surnames and given names: real populations hold tens of
/// thousands of surnames, and a short list would make coincidences far too common.
const SURNAME_HEADS: &[&str] = &[
    "Ash", "Brad", "Cal", "Dun", "El", "Fen", "Gar", "Hal", "Kel", "Lang", "Mar", "Nor", "Pen", "Ran", "Stan", "Thorn",
    "Wel", "Win", "Whit", "Bur", "Hol", "Mor", "Ald", "Brent", "Cress", "Dray", "Fair", "Glen", "Hart", "Kirk", "Lock",
    "Mil", "Oak", "Pem", "Rad", "Sel", "Tre",
];
const SURNAME_MIDS: &[&str] = &["", "er", "ing", "en", "by", "wor"];
const SURNAME_TAILS: &[&str] = &[
    "ford", "ley", "ton", "well", "wood", "by", "ham", "worth", "field", "more", "den", "stead", "combe", "hurst",
    "ridge", "brook", "sby", "low", "wick", "thorpe", "ston", "dale", "gate", "shaw", "croft",
];
const GIVEN_HEADS: &[&str] = &[
    "Kay", "Jor", "Ril", "Leo", "Mar", "Zan", "Bren", "Cor", "Dar", "Elo", "Fal", "Hal", "Kes", "Lun", "Mir", "Nov",
    "Ren", "Sab", "Tam", "Ter", "Vic", "Yas", "Bro", "Cas", "Ros", "Aub", "Ing", "Odi", "Qui", "Wyn",
];
const GIVEN_MIDS: &[&str] = &["", "a", "e", "i", "o", "ri", "li", "an", "el"];
const GIVEN_TAILS: &[&str] = &[
    "den", "lan", "ra", "na", "lyn", "son", "ley", "ris", "ven", "mi", "ton", "lia", "rin", "bel", "dra", "vin", "nie",
    "ron", "th", "sha", "dy", "ck",
];

/// Short forms people actually use, as the harness's ground truth (independent of the
/// module's table; some here are deliberately missing from it, e.g. Millie for Amelia).
const SHORT_FORMS: &[(&str, &[&str])] = &[
    ("Alfred", &["Alfie", "Alf"]),
    ("Oliver", &["Ollie", "Olly"]),
    ("Evelyn", &["Evie"]),
    ("Alexandra", &["Lexi", "Alex"]),
    ("Alexander", &["Alex", "Xander"]),
    ("Frederick", &["Freddie", "Fred"]),
    ("Charles", &["Charlie"]),
    ("Charlotte", &["Lottie", "Charlie"]),
    ("Madison", &["Maddie"]),
    ("Madeleine", &["Maddie", "Maddy"]),
    ("Isabella", &["Izzy", "Bella"]),
    ("Isabelle", &["Izzy", "Belle"]),
    ("Archibald", &["Archie"]),
    ("Henry", &["Harry"]),
    ("Harrison", &["Harry"]),
    ("Elizabeth", &["Liz", "Beth", "Lizzie", "Betty", "Eliza"]),
    ("Katherine", &["Kate", "Katie"]),
    ("Samuel", &["Sam", "Sammy"]),
    ("Samantha", &["Sam"]),
    ("Thomas", &["Tom", "Tommy"]),
    ("William", &["Will", "Billy"]),
    ("Joshua", &["Josh"]),
    ("Benjamin", &["Ben", "Benji"]),
    ("Daniel", &["Dan", "Danny"]),
    ("James", &["Jim", "Jamie"]),
    ("Michael", &["Mike", "Mikey"]),
    ("Matthew", &["Matt"]),
    ("Jessica", &["Jess"]),
    ("Rebecca", &["Becky", "Becca"]),
    ("Abigail", &["Abbie", "Abi"]),
    ("Victoria", &["Tori", "Vicky"]),
    ("Eleanor", &["Ellie", "Nell"]),
    ("Edward", &["Eddie", "Ted"]),
    ("Theodore", &["Theo", "Teddy"]),
    ("Nicholas", &["Nick"]),
    ("Christopher", &["Chris"]),
    ("Jennifer", &["Jenny", "Jen"]),
    ("Olivia", &["Liv"]),
    ("Amelia", &["Millie", "Amy"]),
    ("Florence", &["Flo"]),
    ("Matilda", &["Tilly"]),
    ("Harriet", &["Hattie"]),
    ("Penelope", &["Penny"]),
    ("Sebastian", &["Seb"]),
    ("Zachary", &["Zach"]),
    ("Dominic", &["Dom"]),
    ("Anthony", &["Tony"]),
    ("Robert", &["Rob", "Bobby"]),
    ("Richard", &["Rich"]),
    ("Stanley", &["Stan"]),
    ("Albert", &["Albie", "Bert"]),
    ("Louis", &["Louie"]),
    ("Francesca", &["Frankie"]),
    ("Georgina", &["Georgie"]),
    ("Josephine", &["Josie"]),
    ("Natalie", &["Nat"]),
    ("Muhammad", &["Mo"]),
    ("Oluwaseun", &["Seun"]),
    ("Oluwatobi", &["Tobi"]),
    ("Katarzyna", &["Kasia"]),
    ("Aleksandra", &["Ola"]),
    ("Jakub", &["Kuba"]),
    ("Gabriel", &["Gabe"]),
    ("Stephanie", &["Steph"]),
    ("Joseph", &["Joe"]),
];

/// Registered short forms and the full forms another record may use for them.
const FULL_FORMS: &[(&str, &[&str])] = &[
    ("Alfie", &["Alfred"]),
    ("Freddie", &["Frederick"]),
    ("Archie", &["Archibald"]),
    ("Harry", &["Henry"]),
    ("Teddy", &["Edward", "Theodore"]),
    ("Tommy", &["Thomas"]),
    ("Louie", &["Louis"]),
    ("Albie", &["Albert"]),
    ("Evie", &["Evelyn"]),
    ("Lexi", &["Alexandra"]),
    ("Ellie", &["Eleanor"]),
    ("Lottie", &["Charlotte"]),
    ("Millie", &["Amelia"]),
    ("Maisie", &["Margaret"]),
    ("Tilly", &["Matilda"]),
    ("Billy", &["William"]),
    ("Bobby", &["Robert"]),
    ("Theo", &["Theodore"]),
    ("Jamie", &["James"]),
];

/// Spelling variants met in records (some in the module's table, some not).
const SPELLINGS: &[&[&str]] = &[
    &["Muhammad", "Mohammed", "Mohammad", "Mohamed"],
    &["Aidan", "Aiden"],
    &["Isabel", "Isobel"],
    &["Zoë", "Zoe", "Zoey"],
    &["Katherine", "Catherine", "Kathryn"],
    &["Stephen", "Steven"],
    &["Philip", "Phillip"],
    &["Connor", "Conor"],
    &["Niamh", "Neve"],
    &["Jayden", "Jaden"],
    &["Leah", "Lea"],
    &["Layla", "Laila"],
    &["Jaxon", "Jackson"],
    &["Sofia", "Sophia"],
    &["Hannah", "Hanna"],
    &["Eliza", "Elisa"],
    &["Elliot", "Elliott"],
    &["Ayesha", "Aisha"],
    &["Maryam", "Mariam"],
    &["Lacey", "Lacie"],
];

/// Similar first names parents give twins: the hardest false match for any scheme.
const SIMILAR_TWIN_NAMES: &[(&str, &str)] = &[
    ("Jack", "Jake"),
    ("Ella", "Ellie"),
    ("Ava", "Ada"),
    ("Mason", "Jason"),
    ("Evie", "Eva"),
    ("Amelia", "Amelie"),
    ("Leo", "Theo"),
    ("Harry", "Harvey"),
    ("Lily", "Lola"),
    ("Mia", "Maya"),
    ("Lucas", "Luca"),
    ("Zara", "Sara"),
    ("Oliver", "Olivia"),
    ("Noah", "Nora"),
    ("Finn", "Flynn"),
];

#[rustfmt::skip]
const ADULT_WOMEN: &[&str] = &[
    "Sarah", "Emma", "Laura", "Rebecca", "Gemma", "Claire", "Lisa", "Nicola", "Kelly", "Amy",
    "Hayley", "Stacey", "Kerry", "Michelle", "Louise", "Jennifer", "Victoria", "Samantha",
    "Danielle", "Natalie", "Rachel", "Charlotte", "Hannah", "Jessica", "Lauren", "Katie", "Sophie",
    "Stephanie", "Jade", "Leanne", "Donna", "Joanne", "Zoe", "Kirsty", "Amanda", "Catherine",
    "Helen", "Karen", "Fatima", "Nadia", "Agnieszka", "Aisha", "Funmilayo",
];

#[rustfmt::skip]
const ADULT_MEN: &[&str] = &[
    "Daniel", "David", "James", "Michael", "Christopher", "Matthew", "Andrew", "Mark", "Paul",
    "Richard", "Stephen", "Lee", "Craig", "Darren", "Wayne", "Jason", "Carl", "Dean", "Ryan",
    "Adam", "Thomas", "Robert", "John", "Gary", "Scott", "Kevin", "Anthony", "Jamie", "Simon",
    "Ian", "Mohammed", "Tomasz", "Kwame",
];

const POSTCODE_AREAS: &[&str] = &[
    "B", "M", "L", "S", "E", "N", "W", "LS", "BS", "NG", "CF", "BD", "SE", "SW", "NW", "CR", "BR", "HA", "UB", "TW",
    "KT", "SM", "DA", "RM", "IG", "EN", "WD", "AL", "LU", "MK", "OX", "RG", "GU", "PO", "SO", "BH", "EX", "PL", "GL",
    "BA", "SN", "HP", "SL", "CB", "CO", "CM", "SS", "ME", "CT", "TN", "BN", "RH", "NR", "IP", "PE", "LN", "DN", "HU",
    "YO", "DL", "TS", "SR", "NE", "DH", "CA", "PR", "BB", "BL", "OL", "SK", "WA", "WN", "CH", "CW", "ST", "DE", "LE",
    "CV", "WS", "WV", "DY", "WR", "SY", "TF", "SA", "NP",
];

// ---------------------------------------------------------------------------------------------
// The population.
// ---------------------------------------------------------------------------------------------

/// A real person; records about them are derived from this with errors.
#[derive(Clone)]
struct Person {
    given: String,
    middles: Vec<String>,
    family: String,
    dob: Date,
    nhs: String,
    upn: Option<String>,
    district: String,
    postcode: String,
    twin: Option<usize>,
}

/// Samples list entries with weights falling off with rank (Zipf, exponent `s`).
struct Zipf {
    dist: WeightedIndex<f64>,
}

impl Zipf {
    fn new(len: usize, s: f64) -> Self {
        let weights: Vec<f64> = (1..=len).map(|r| 1.0 / (r as f64).powf(s)).collect();
        Self { dist: WeightedIndex::new(weights).expect("non-empty list") }
    }

    fn pick<'a>(&self, list: &[&'a str], rng: &mut StdRng) -> &'a str {
        list[self.dist.sample(rng)]
    }
}

struct Namer {
    lists: HashMap<usize, Zipf>,
}

#[derive(Clone, Copy)]
enum Origin {
    English,
    SouthAsian,
    Polish,
    WestAfrican,
    Irish,
}

impl Namer {
    fn new() -> Self {
        Self { lists: HashMap::new() }
    }

    /// Given names: steep (a few names are very popular).
    fn pick<'a>(&mut self, list: &[&'a str], rng: &mut StdRng) -> &'a str {
        self.pick_with(list, 1.0, rng)
    }

    /// Surnames: flatter, as surname counts are.
    fn pick_surname<'a>(&mut self, list: &[&'a str], rng: &mut StdRng) -> &'a str {
        self.pick_with(list, 0.7, rng)
    }

    fn pick_with<'a>(&mut self, list: &[&'a str], s: f64, rng: &mut StdRng) -> &'a str {
        // Key by list address: each static list gets its own Zipf table.
        let key = list.as_ptr() as usize;
        let zipf = self.lists.entry(key).or_insert_with(|| Zipf::new(list.len(), s));
        zipf.pick(list, rng)
    }

    fn origin(rng: &mut StdRng) -> Origin {
        match rng.gen_range(0..100) {
            0..=68 => Origin::English,
            69..=80 => Origin::SouthAsian,
            81..=86 => Origin::Polish,
            87..=93 => Origin::WestAfrican,
            _ => Origin::Irish,
        }
    }

    /// A family name: a listed common name with the origin's share, otherwise one from the
    /// long tail (real surname counts have a very long tail).
    fn surname(&mut self, origin: Origin, rng: &mut StdRng) -> String {
        let (list, share) = match origin {
            Origin::English => (ENGLISH_SURNAMES, 0.40),
            Origin::SouthAsian => (SOUTH_ASIAN_SURNAMES, 0.45),
            Origin::Polish => (POLISH_SURNAMES, 0.5),
            Origin::WestAfrican => (WEST_AFRICAN_SURNAMES, 0.5),
            Origin::Irish => (IRISH_SURNAMES, 0.5),
        };
        if matches!(origin, Origin::English) && rng.gen_bool(0.04) {
            let a = self.pick_surname(ENGLISH_SURNAMES, rng);
            let b = self.pick_surname(ENGLISH_SURNAMES, rng);
            return format!("{a}-{b}");
        }
        if rng.gen_bool(share) { self.pick_surname(list, rng).to_owned() } else { rare_surname(rng) }
    }

    fn given(&mut self, origin: Origin, girl: bool, rng: &mut StdRng) -> String {
        // A quarter of children have a name outside any top list.
        if rng.gen_bool(0.25) {
            return rare_given(rng);
        }
        let list = match (origin, girl) {
            (Origin::English, false) => BOYS,
            (Origin::English, true) => GIRLS,
            (Origin::SouthAsian, false) => SOUTH_ASIAN_BOYS,
            (Origin::SouthAsian, true) => SOUTH_ASIAN_GIRLS,
            (Origin::Polish, false) => POLISH_BOYS,
            (Origin::Polish, true) => POLISH_GIRLS,
            (Origin::WestAfrican, false) => WEST_AFRICAN_BOYS,
            (Origin::WestAfrican, true) => WEST_AFRICAN_GIRLS,
            (Origin::Irish, false) => IRISH_BOYS,
            (Origin::Irish, true) => IRISH_GIRLS,
        };
        self.pick(list, rng).to_owned()
    }
}

fn rare_surname(rng: &mut StdRng) -> String {
    format!(
        "{}{}{}",
        SURNAME_HEADS.choose(rng).expect("list"),
        SURNAME_MIDS.choose(rng).expect("list"),
        SURNAME_TAILS.choose(rng).expect("list")
    )
}

fn rare_given(rng: &mut StdRng) -> String {
    format!(
        "{}{}{}",
        GIVEN_HEADS.choose(rng).expect("list"),
        GIVEN_MIDS.choose(rng).expect("list"),
        GIVEN_TAILS.choose(rng).expect("list")
    )
}

fn nhs_number(rng: &mut StdRng, used: &mut HashSet<String>) -> String {
    loop {
        let digits: Vec<u32> = (0..9).map(|_| rng.gen_range(0..10)).collect();
        let sum: u32 = digits.iter().zip((2..=10).rev()).map(|(d, w)| d * w).sum();
        let check = match 11 - sum % 11 {
            11 => 0,
            10 => continue,
            c => c,
        };
        let text: String = digits.iter().chain(std::iter::once(&check)).map(|d| char::from(b'0' + *d as u8)).collect();
        if used.insert(text.clone()) {
            return text;
        }
    }
}

fn upn(rng: &mut StdRng) -> String {
    const LETTERS: &[u8] = b"ABCDEFGHJKLMNPQRTUVWXYZ";
    let digits: Vec<u32> = (0..12).map(|_| rng.gen_range(0..10)).collect();
    let sum: u32 = digits.iter().zip(2..).map(|(d, w)| d * w).sum();
    let mut text = String::from(char::from(LETTERS[(sum % 23) as usize]));
    text.extend(digits.iter().map(|d| char::from(b'0' + *d as u8)));
    text
}

fn postcode_in(district: &str, rng: &mut StdRng) -> String {
    const INWARD: &[u8] = b"ABDEFGHJLNPQRSTUWXYZ";
    let a = char::from(*INWARD.choose(rng).expect("letters"));
    let b = char::from(*INWARD.choose(rng).expect("letters"));
    format!("{district} {}{a}{b}", rng.gen_range(0..10))
}

fn district(rng: &mut StdRng) -> String {
    format!("{}{}", POSTCODE_AREAS.choose(rng).expect("areas"), rng.gen_range(1..30))
}

fn random_dob(rng: &mut StdRng, min_age_days: i64, max_age_days: i64) -> Date {
    TODAY - Duration::days(rng.gen_range(min_age_days..max_age_days))
}

/// Builds the population: families of one child, siblings, and twins.
fn population(size: usize, rng: &mut StdRng, namer: &mut Namer) -> Vec<Person> {
    let mut used_nhs = HashSet::new();
    let mut people: Vec<Person> = Vec::with_capacity(size + 2);
    while people.len() < size {
        let origin = Namer::origin(rng);
        let family = namer.surname(origin, rng);
        let district = district(rng);
        let postcode = postcode_in(&district, rng);
        // About 3 % of children are twins; a third of families have a second, older child.
        let twins = rng.gen_bool(0.015);
        let siblings = if rng.gen_bool(0.3) { 2 } else { 1 };
        let base_age =
            if rng.gen_bool(0.05) { rng.gen_range(18 * 365..25 * 365) } else { rng.gen_range(0..18 * 365 - 1) };
        for s in 0..siblings {
            let dob = TODAY - Duration::days(base_age + s * rng.gen_range(400..2500));
            if TODAY.year() - dob.year() > 25 {
                continue;
            }
            let count = if twins && s == 0 { 2 } else { 1 };
            // Twins' first names are chosen together: a fifth look alike (Jack/Jake), and
            // none are one name spelt or shortened two ways.
            let girls: Vec<bool> = (0..count).map(|_| rng.gen_bool(0.5)).collect();
            let mut names: Vec<String> = Vec::new();
            if count == 2 && rng.gen_bool(0.2) {
                let (a, b) = *SIMILAR_TWIN_NAMES.choose(rng).expect("pairs");
                names = vec![a.to_owned(), b.to_owned()];
            } else {
                for &girl in &girls {
                    let mut given = namer.given(origin, girl, rng);
                    while names.iter().any(|n| same_name(n, &given)) {
                        given = namer.given(origin, girl, rng);
                    }
                    names.push(given);
                }
            }
            for (given, &girl) in names.iter().zip(&girls) {
                // A middle name is never a twin's first name.
                let middle_count = match rng.gen_range(0..10) {
                    0..=3 => 0,
                    4..=8 => 1,
                    _ => 2,
                };
                let middles: Vec<String> = (0..middle_count)
                    .map(|_| {
                        loop {
                            let m = namer.given(origin, girl, rng);
                            if !names.iter().any(|n| same_name(n, &m)) {
                                break m;
                            }
                        }
                    })
                    .collect();
                let age = TODAY.year() - dob.year();
                people.push(Person {
                    given: given.clone(),
                    middles,
                    family: family.clone(),
                    dob,
                    nhs: nhs_number(rng, &mut used_nhs),
                    upn: ((4..=16).contains(&age) && rng.gen_bool(0.5)).then(|| upn(rng)),
                    district: district.clone(),
                    postcode: postcode.clone(),
                    twin: None,
                });
            }
            if count == 2 {
                let n = people.len();
                people[n - 2].twin = Some(n - 1);
                people[n - 1].twin = Some(n - 2);
            }
        }
    }
    people
}

/// Whether two given names are one name to a parent: equal, spellings of each other, or a
/// name and its short form.
fn same_name(a: &str, b: &str) -> bool {
    let (a, b) = (a.to_lowercase(), b.to_lowercase());
    let is = |x: &str, y: &str| x.to_lowercase() == y;
    let related = |full: &str, forms: &[&str]| {
        (is(full, &a) && forms.iter().any(|f| is(f, &b))) || (is(full, &b) && forms.iter().any(|f| is(f, &a)))
    };
    a == b
        || SPELLINGS.iter().any(|group| group.iter().any(|g| is(g, &a)) && group.iter().any(|g| is(g, &b)))
        || SHORT_FORMS.iter().any(|(full, forms)| related(full, forms))
        || FULL_FORMS.iter().any(|(short, fulls)| related(short, fulls))
}

/// Carers: one adult per family is enough for the short carer section.
fn carers(count: usize, rng: &mut StdRng, namer: &mut Namer) -> Vec<Person> {
    let mut used_nhs = HashSet::new();
    (0..count)
        .map(|_| {
            let origin = Namer::origin(rng);
            let woman = rng.gen_bool(0.7);
            let district = district(rng);
            Person {
                given: namer.pick(if woman { ADULT_WOMEN } else { ADULT_MEN }, rng).to_owned(),
                middles: if rng.gen_bool(0.5) {
                    vec![namer.pick(if woman { ADULT_WOMEN } else { ADULT_MEN }, rng).to_owned()]
                } else {
                    vec![]
                },
                family: namer.surname(origin, rng),
                dob: random_dob(rng, 18 * 365, 60 * 365),
                nhs: nhs_number(rng, &mut used_nhs),
                upn: None,
                postcode: postcode_in(&district, rng),
                district,
                twin: None,
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Records and the errors between them.
// ---------------------------------------------------------------------------------------------

/// Drops diacritics or changes case the way different systems do.
fn as_typed(name: &str, rng: &mut StdRng) -> String {
    let plain: String = if rng.gen_bool(0.5) {
        name.chars()
            .map(|c| match c {
                'Ł' => 'L',
                'ł' => 'l',
                'ó' | 'Ó' => 'o',
                'á' | 'Á' => 'a',
                'é' | 'É' => 'e',
                'í' => 'i',
                'ś' => 's',
                'ą' => 'a',
                'ę' => 'e',
                'ż' | 'ź' => 'z',
                'ń' => 'n',
                'ë' => 'e',
                _ => c,
            })
            .collect()
    } else {
        name.to_owned()
    };
    if rng.gen_bool(0.2) { plain.to_uppercase() } else { plain }
}

/// The record an organisation holds: the person as recorded before the family moved.
fn holding_record(p: &Person, rng: &mut StdRng, nhs_rate: f64) -> RawSubject {
    RawSubject {
        nhs_number: rng.gen_bool(nhs_rate).then(|| p.nhs.clone()),
        upn: p.upn.clone().filter(|_| rng.gen_bool(0.5)),
        given_name: Some(as_typed(&p.given, rng)),
        family_name: Some(as_typed(&p.family, rng)),
        date_of_birth: Some(p.dob.to_string()),
        postcode: rng.gen_bool(0.95).then(|| p.postcode.clone()),
        other_given_names: if rng.gen_bool(0.6) {
            p.middles.iter().map(|m| as_typed(m, rng)).collect()
        } else {
            vec![]
        },
        former_family_names: vec![],
        expected_date: None,
    }
}

/// The asker's record: the same person after a move (always a new postcode).
fn asker_record(p: &Person, rng: &mut StdRng, with_nhs: bool) -> RawSubject {
    let district = if rng.gen_bool(0.2) { p.district.clone() } else { district(rng) };
    let mut postcode = postcode_in(&district, rng);
    while postcode == p.postcode {
        postcode = postcode_in(&district, rng);
    }
    RawSubject {
        nhs_number: with_nhs.then(|| p.nhs.clone()),
        upn: None,
        given_name: Some(as_typed(&p.given, rng)),
        family_name: Some(as_typed(&p.family, rng)),
        date_of_birth: Some(p.dob.to_string()),
        postcode: rng.gen_bool(0.9).then_some(postcode),
        other_given_names: if rng.gen_bool(0.5) {
            p.middles.iter().map(|m| as_typed(m, rng)).collect()
        } else {
            vec![]
        },
        former_family_names: vec![],
        expected_date: None,
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Error {
    GivenTypo,
    FamilyTypo,
    ShortForm,
    Spelling,
    NamesSwapped,
    DoubleBarrel,
    SurnameChanged,
    MiddleAsFirst,
    DayMonthSwap,
    DateTypo,
}

/// One keyboard slip: insertion, deletion, substitution or transposition of adjacent letters.
fn typo(name: &str, rng: &mut StdRng) -> String {
    let mut chars: Vec<char> = name.chars().collect();
    let n = chars.len();
    let random_letter = |rng: &mut StdRng| char::from(b'a' + rng.gen_range(0..26u8));
    match rng.gen_range(0..4) {
        0 if n > 2 => {
            chars.remove(rng.gen_range(1..n));
        }
        1 => {
            let at = rng.gen_range(1..=n);
            chars.insert(at, random_letter(rng));
        }
        2 if n > 2 => {
            let at = rng.gen_range(1..n - 1);
            chars.swap(at, at + 1);
        }
        _ => {
            let at = rng.gen_range(1..n.max(2));
            let mut c = random_letter(rng);
            while chars.get(at).map(|x| x.to_ascii_lowercase()) == Some(c) {
                c = random_letter(rng);
            }
            if let Some(slot) = chars.get_mut(at) {
                *slot = c;
            }
        }
    }
    let out: String = chars.into_iter().collect();
    if out.to_lowercase() == name.to_lowercase() { format!("{name}e") } else { out }
}

fn short_form_of(given: &str, rng: &mut StdRng) -> Option<String> {
    let plain = given.to_lowercase();
    if let Some((_, shorts)) = SHORT_FORMS.iter().find(|(f, _)| f.to_lowercase() == plain) {
        return shorts.choose(rng).map(|s| (*s).to_owned());
    }
    FULL_FORMS
        .iter()
        .find(|(s, _)| s.to_lowercase() == plain)
        .and_then(|(_, fulls)| fulls.choose(rng).map(|f| (*f).to_owned()))
}

fn spelling_of(given: &str, rng: &mut StdRng) -> Option<String> {
    let plain = given.to_lowercase();
    SPELLINGS.iter().find(|group| group.iter().any(|g| g.to_lowercase() == plain)).and_then(|group| {
        let others: Vec<&&str> = group.iter().filter(|g| g.to_lowercase() != plain).collect();
        others.choose(rng).map(|g| (**g).to_owned())
    })
}

/// Whether an error can apply to this person at all (a short form needs a name that has one).
fn applicable(error: Error, p: &Person) -> bool {
    let mut probe = StdRng::seed_from_u64(0);
    match error {
        Error::ShortForm => short_form_of(&p.given, &mut probe).is_some(),
        Error::Spelling => spelling_of(&p.given, &mut probe).is_some(),
        Error::MiddleAsFirst => !p.middles.is_empty(),
        Error::DayMonthSwap => p.dob.day() <= 12 && p.dob.day() != u8::from(p.dob.month()),
        _ => true,
    }
}

/// Applies one error to the asker's record. The index holds each child's record as first
/// recorded; differences that have a direction still occur both ways round, because some
/// children are registered under a short form ("Alfie") or a double-barrelled name.
fn apply(error: Error, p: &Person, asker: &mut RawSubject, rng: &mut StdRng, namer: &mut Namer) {
    match error {
        Error::GivenTypo => asker.given_name = Some(typo(&p.given, rng)),
        Error::FamilyTypo => asker.family_name = Some(typo(&p.family, rng)),
        Error::ShortForm => {
            if let Some(form) = short_form_of(&p.given, rng) {
                asker.given_name = Some(form);
            }
        }
        Error::Spelling => {
            if let Some(form) = spelling_of(&p.given, rng) {
                asker.given_name = Some(form);
            }
        }
        Error::NamesSwapped => std::mem::swap(&mut asker.given_name, &mut asker.family_name),
        Error::DoubleBarrel => {
            let current = asker.family_name.clone().unwrap_or_else(|| p.family.clone());
            if let Some((a, b)) = current.split_once('-') {
                // A double-barrelled name: the other record keeps one barrel.
                asker.family_name = Some(if rng.gen_bool(0.5) { a } else { b }.to_owned());
            } else {
                let extra = namer.pick_surname(ENGLISH_SURNAMES, rng);
                asker.family_name =
                    Some(if rng.gen_bool(0.5) { format!("{current}-{extra}") } else { format!("{extra}-{current}") });
            }
        }
        Error::SurnameChanged => {
            // The newer record has a new family name; half record the former one.
            asker.family_name = Some(namer.surname(Namer::origin(rng), rng));
            if rng.gen_bool(0.5) {
                asker.former_family_names = vec![p.family.clone()];
            }
        }
        Error::MiddleAsFirst => {
            if let Some(m) = p.middles.first() {
                asker.given_name = Some(m.clone());
                asker.other_given_names = vec![p.given.clone()];
            }
        }
        Error::DayMonthSwap => {
            let swapped = time::Month::try_from(p.dob.day())
                .ok()
                .and_then(|m| Date::from_calendar_date(p.dob.year(), m, u8::from(p.dob.month())).ok());
            if let Some(d) = swapped {
                asker.date_of_birth = Some(d.to_string());
            }
        }
        Error::DateTypo => {
            if let Some(d) = date_typo(p.dob, rng) {
                asker.date_of_birth = Some(d.to_string());
            }
        }
    }
}

fn date_typo(dob: Date, rng: &mut StdRng) -> Option<Date> {
    let text = dob.to_string().replace('-', "");
    for _ in 0..100 {
        let mut digits: Vec<u8> = text.bytes().collect();
        if rng.gen_bool(0.25) {
            let at = rng.gen_range(0..7);
            digits.swap(at, at + 1);
        } else {
            // Day digits slip most, then month, then year.
            let at = match rng.gen_range(0..8) {
                0..=3 => 6 + rng.gen_range(0..2),
                4 | 5 => 4 + rng.gen_range(0..2),
                _ => 2 + rng.gen_range(0..2),
            };
            digits[at] = b'0' + rng.gen_range(0..10u8);
        }
        let s = String::from_utf8(digits).ok()?;
        let (y, m, d) = (s[..4].parse::<i32>().ok()?, s[4..6].parse::<u8>().ok()?, s[6..].parse::<u8>().ok()?);
        let candidate = time::Month::try_from(m).ok().and_then(|m| Date::from_calendar_date(y, m, d).ok());
        if let Some(c) = candidate
            && c != dob
            && c <= TODAY
            && TODAY.year() - c.year() <= 25
        {
            return Some(c);
        }
    }
    None
}

/// Realistic rates of each difference between two records of one child, per record pair.
const REALISTIC: &[(Error, f64)] = &[
    (Error::ShortForm, 0.10),
    (Error::Spelling, 0.30),
    (Error::GivenTypo, 0.03),
    (Error::FamilyTypo, 0.03),
    (Error::NamesSwapped, 0.01),
    (Error::DoubleBarrel, 0.03),
    (Error::SurnameChanged, 0.03),
    (Error::MiddleAsFirst, 0.02),
    (Error::DayMonthSwap, 0.02),
    (Error::DateTypo, 0.02),
];

// ---------------------------------------------------------------------------------------------
// The index and the measurement.
// ---------------------------------------------------------------------------------------------

/// What one lookup found: the best tier for the right child, the best for anyone else, and
/// the wrong children found (for the `SHOW_FALSE` diagnostics).
#[derive(Default, Clone)]
struct Tally {
    queries: u32,
    expect_found: u32,
    found: [u32; 3],
    false_match: [u32; 3],
    invalid: u32,
}

impl Tally {
    fn record(&mut self, expect: bool, outcome: &Outcome) {
        self.queries += 1;
        if expect {
            self.expect_found += 1;
        }
        for (i, tier) in [Tier::Possible, Tier::Probable, Tier::Confirmed].into_iter().enumerate() {
            if outcome.best_true.is_some_and(|t| t >= tier) {
                self.found[i] += 1;
            }
            if outcome.best_false.is_some_and(|t| t >= tier) {
                self.false_match[i] += 1;
            }
        }
    }

    fn recall(&self, i: usize) -> f64 {
        pct(self.found[i], self.expect_found)
    }

    fn false_rate(&self, i: usize) -> f64 {
        pct(self.false_match[i], self.queries)
    }
}

fn pct(n: u32, d: u32) -> f64 {
    if d == 0 { 0.0 } else { 100.0 * f64::from(n) / f64::from(d) }
}

fn parse(raw: &RawSubject, role: SubjectRole, use_: KeyUse) -> Option<Subject> {
    Subject::parse(raw, role, use_, TODAY).ok()
}

/// What one set of queries is made of.
#[derive(Clone, Copy)]
enum Scenario {
    /// Indexed children, their two records differing by these errors (none = only the move).
    Errors(&'static [Error]),
    /// Indexed children, differences drawn at `REALISTIC` rates.
    Realistic,
    /// Indexed children, at realistic rates, plus a quarter of queries for children who are
    /// not in the index (twins of indexed children at their natural rate among them).
    Population,
    /// The not-indexed twin of an indexed child.
    Twin,
    /// A child not in the index.
    NotIndexed,
}

struct Row {
    name: &'static str,
    scenario: Scenario,
}

const ROWS: &[Row] = &[
    Row { name: "only the postcode differs (moved)", scenario: Scenario::Errors(&[]) },
    Row { name: "first-name typo", scenario: Scenario::Errors(&[Error::GivenTypo]) },
    Row { name: "family-name typo", scenario: Scenario::Errors(&[Error::FamilyTypo]) },
    Row { name: "short form vs full name", scenario: Scenario::Errors(&[Error::ShortForm]) },
    Row { name: "spelling variant", scenario: Scenario::Errors(&[Error::Spelling]) },
    Row { name: "given/family swapped", scenario: Scenario::Errors(&[Error::NamesSwapped]) },
    Row { name: "double-barrelled on one side", scenario: Scenario::Errors(&[Error::DoubleBarrel]) },
    Row { name: "family name changed", scenario: Scenario::Errors(&[Error::SurnameChanged]) },
    Row { name: "middle name used as first", scenario: Scenario::Errors(&[Error::MiddleAsFirst]) },
    Row { name: "day/month swapped", scenario: Scenario::Errors(&[Error::DayMonthSwap]) },
    Row { name: "one-digit date typo", scenario: Scenario::Errors(&[Error::DateTypo]) },
    Row { name: "short form + day/month swap", scenario: Scenario::Errors(&[Error::ShortForm, Error::DayMonthSwap]) },
    Row { name: "realistic mix of the above", scenario: Scenario::Realistic },
    Row { name: "twin not in the index (co-twin is)", scenario: Scenario::Twin },
    Row { name: "child not in the index", scenario: Scenario::NotIndexed },
];

struct World {
    people: Vec<Person>,
    indexed: Vec<usize>,
    not_indexed: Vec<usize>,
    /// Not-indexed twins whose co-twin is indexed.
    lone_twins: Vec<usize>,
    /// Holding records as stored, by person.
    holdings: HashMap<usize, RawSubject>,
    index: Index,
}

/// Runs one row's queries. `nhs` puts the person's NHS number on the lookup.
/// One batch of queries: what they are, whether the lookup has the NHS number, how many.
#[derive(Clone, Copy)]
struct Plan {
    scenario: Scenario,
    nhs: bool,
    queries: usize,
    options: LookupOptions,
}

fn run_row(world: &World, plan: Plan, rng: &mut StdRng, namer: &mut Namer, key_counts: &mut Vec<usize>) -> Tally {
    let Plan { scenario, nhs, queries, options } = plan;
    let mut tally = Tally::default();
    let mut attempts = 0;
    while (tally.queries as usize) < queries && attempts < queries * 50 {
        attempts += 1;
        let (person, expect, errors): (usize, bool, Vec<Error>) = match scenario {
            Scenario::Errors(errors) => {
                let &p = world.indexed.choose(rng).expect("indexed");
                (p, true, errors.to_vec())
            }
            Scenario::Realistic => {
                let &p = world.indexed.choose(rng).expect("indexed");
                (p, true, realistic_errors(rng))
            }
            Scenario::Population => {
                if rng.gen_bool(0.75) {
                    let &p = world.indexed.choose(rng).expect("indexed");
                    (p, true, realistic_errors(rng))
                } else {
                    let &p = world.not_indexed.choose(rng).expect("not indexed");
                    (p, false, realistic_errors(rng))
                }
            }
            Scenario::Twin => {
                let &p = world.lone_twins.choose(rng).expect("lone twins");
                (p, false, vec![])
            }
            Scenario::NotIndexed => {
                let &p = world.not_indexed.choose(rng).expect("not indexed");
                (p, false, vec![])
            }
        };
        let p = &world.people[person];
        if nhs && expect {
            // NHS scenarios need the number on the holding too.
            let held = world.holdings.get(&person).and_then(|h| h.nhs_number.as_ref());
            if held.is_none() {
                continue;
            }
        }
        if matches!(scenario, Scenario::Errors(_)) && !errors.iter().all(|e| applicable(*e, p)) {
            continue;
        }
        let mut asker = asker_record(p, rng, nhs);
        for e in &errors {
            if applicable(*e, p) {
                apply(*e, p, &mut asker, rng, namer);
            }
        }
        let lookup = match Subject::parse(&asker, SubjectRole::Child, KeyUse::Lookup, TODAY) {
            Ok(s) => s,
            Err(problems) => {
                if std::env::var_os("SHOW_MISSES").is_some() {
                    eprintln!("INVALID {problems:?} | {}", plain(&asker));
                }
                tally.invalid += 1;
                continue;
            }
        };
        let outcome = world.index.ask(&lookup, expect.then_some(person), options, key_counts);
        if let Ok(level) = std::env::var("SHOW_FALSE") {
            show_false(&level, world, &asker, &outcome);
        }
        if expect
            && outcome.best_true.is_none_or(|t| t < Tier::Probable)
            && options == LookupOptions::default()
            && std::env::var_os("SHOW_MISSES").is_some()
        {
            show_miss(scenario, &errors, &asker, world.holdings.get(&person), &outcome);
        }
        tally.record(expect, &outcome);
    }
    tally
}

/// `SHOW_FALSE=probable` (or `possible`): print each wrong child found, with both records.
fn show_false(level: &str, world: &World, asker: &RawSubject, outcome: &Outcome) {
    let min = if level == "possible" { Tier::Possible } else { Tier::Probable };
    for (holder, a) in outcome.false_matches.iter().filter(|(_, a)| a.tier >= min) {
        if let Some(h) = world.holdings.get(holder) {
            eprintln!(
                "FALSE {:?} {:.1} [{}]\n   asked {}\n   held  {}",
                a.tier,
                a.score,
                a.evidence,
                plain(asker),
                plain(h)
            );
        }
    }
}

/// `SHOW_MISSES=1`: print each right child not found at probable, with the differences applied.
fn show_miss(scenario: Scenario, errors: &[Error], asker: &RawSubject, held: Option<&RawSubject>, outcome: &Outcome) {
    let label = match scenario {
        Scenario::Population => "population",
        Scenario::Realistic => "mix",
        _ => "row",
    };
    eprintln!(
        "MISS {label} {errors:?} -> {:?} | asked {} | held {}",
        outcome.best_true,
        plain(asker),
        held.map(plain).unwrap_or_default()
    );
}

/// A synthetic record in plain text (`RawSubject`'s own `Debug` is redacted, rightly).
fn plain(r: &RawSubject) -> String {
    format!(
        "{:?} {:?} {:?} others {:?} former {:?} postcode {:?}",
        r.given_name, r.family_name, r.date_of_birth, r.other_given_names, r.former_family_names, r.postcode
    )
}

fn realistic_errors(rng: &mut StdRng) -> Vec<Error> {
    REALISTIC.iter().filter(|(_, rate)| rng.gen_bool(*rate)).map(|(e, _)| *e).collect()
}

fn print_table(title: &str, rows: &[(String, Tally)]) {
    let invalid: u32 = rows.iter().map(|(_, t)| t.invalid).sum();
    println!("\n### {title}\n");
    println!(
        "| scenario | queries | found confirmed | found ≥ probable | found ≥ possible | \
         false confirmed | false ≥ probable | false ≥ possible |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (name, t) in rows {
        let recall = |i: usize| {
            if t.expect_found == 0 { "–".to_owned() } else { format!("{:.2} %", t.recall(i)) }
        };
        println!(
            "| {name} | {} | {} | {} | {} | {:.3} % | {:.3} % | {:.3} % |",
            t.queries,
            recall(2),
            recall(1),
            recall(0),
            t.false_rate(2),
            t.false_rate(1),
            t.false_rate(0),
        );
    }
    if invalid > 0 {
        println!("\n({invalid} lookup records failed validation and were not asked.)");
    }
}

struct Args {
    children: usize,
    seed: u64,
    queries: usize,
    /// `kind` (the original error model, default, gated by its targets) or `realistic`.
    profile: Profile,
    /// Realistic profile only: write the holdings and queries as CSV here (for Splink).
    export: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Profile {
    Kind,
    Realistic,
}

fn args() -> Result<Args, String> {
    let mut out = Args { children: 100_000, seed: 2026, queries: 2_000, profile: Profile::Kind, export: None };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = |v: &str| v.parse::<u64>().map_err(|_| format!("{flag}: not a number"));
        match flag.as_str() {
            "--children" => out.children = number(&value)? as usize,
            "--seed" => out.seed = number(&value)?,
            "--queries" => out.queries = number(&value)? as usize,
            "--profile" => {
                out.profile = match value.as_str() {
                    "kind" => Profile::Kind,
                    "realistic" => Profile::Realistic,
                    _ => return Err("--profile: kind or realistic".into()),
                }
            }
            "--export" => out.export = Some(value),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(out)
}

fn main() -> ExitCode {
    let args = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!(
                "{e}\nusage: match_quality [--profile kind|realistic] [--children N] [--seed S] [--queries Q] [--export DIR]"
            );
            return ExitCode::FAILURE;
        }
    };
    if args.profile == Profile::Realistic {
        return realistic::run(&args);
    }
    let started = Instant::now();
    let mut rng = StdRng::seed_from_u64(args.seed);
    let mut namer = Namer::new();

    // A third more children than are indexed, so some lookups are for children not held.
    let people = population(args.children + args.children / 3, &mut rng, &mut namer);
    let mut order: Vec<usize> = (0..people.len()).collect();
    order.shuffle(&mut rng);
    let (indexed, not_indexed) = order.split_at(args.children.min(order.len()));
    let indexed_set: HashSet<usize> = indexed.iter().copied().collect();
    let lone_twins: Vec<usize> =
        not_indexed.iter().copied().filter(|&p| people[p].twin.is_some_and(|t| indexed_set.contains(&t))).collect();

    let secret = IndexSecret::from_bytes(rng.r#gen());
    let mut index = Index::new(&secret);
    let mut holdings = HashMap::new();
    let mut rejected = 0;
    for &p in indexed {
        let record = holding_record(&people[p], &mut rng, 0.9);
        match parse(&record, SubjectRole::Child, KeyUse::Holding) {
            Some(subject) => {
                index.add(p, &subject);
                holdings.insert(p, record);
            }
            None => rejected += 1,
        }
    }
    let world =
        World { people, indexed: indexed.to_vec(), not_indexed: not_indexed.to_vec(), lone_twins, holdings, index };

    println!("## Measured quality (seed {}, {} indexed children)\n", args.seed, args.children);
    println!(
        "Command: `cargo run --release --example match_quality -- --children {} --seed {} --queries {}`\n",
        args.children, args.seed, args.queries
    );
    describe_population(&world, rejected);

    let mut key_counts = Vec::new();
    let defaults = LookupOptions::default();
    let mut tables: Vec<(bool, Vec<(String, Tally)>)> = Vec::new();
    for nhs in [false, true] {
        let mut rows = Vec::new();
        for row in ROWS {
            let plan = Plan { scenario: row.scenario, nhs, queries: args.queries, options: defaults };
            let t = run_row(&world, plan, &mut rng, &mut namer, &mut key_counts);
            rows.push((row.name.to_owned(), t));
        }
        let plan = Plan { scenario: Scenario::Population, nhs, queries: args.queries * 10, options: defaults };
        let t = run_row(&world, plan, &mut rng, &mut namer, &mut key_counts);
        rows.push(("**population: 75 % held (realistic mix), 25 % not held**".to_owned(), t));
        tables.push((nhs, rows));
    }
    print_table("Names and date of birth only (no NHS number on the lookup)", &tables[0].1);
    print_table("NHS number on both sides", &tables[1].1);

    let mean = key_counts.iter().sum::<usize>() as f64 / key_counts.len().max(1) as f64;
    println!("\nLookup keys per query: mean {mean:.0}, max {}.", key_counts.iter().max().copied().unwrap_or(0));

    // What the lookup-time typo variants buy, and what they cost.
    println!("\n### What lookup-time variants buy (names only, realistic population)\n");
    println!(
        "| variants | lookup keys (mean) | found ≥ probable | found ≥ possible | false ≥ probable | false ≥ possible |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for (label, options) in [
        ("all (default)", defaults),
        ("no name typos", LookupOptions { name_typos: false, ..defaults }),
        ("no date typos", LookupOptions { date_typos: false, ..defaults }),
        ("neither", LookupOptions { name_typos: false, date_typos: false, ..defaults }),
    ] {
        let mut counts = Vec::new();
        let mut ablation_rng = StdRng::seed_from_u64(args.seed ^ 0xA5A5);
        let plan = Plan { scenario: Scenario::Population, nhs: false, queries: args.queries * 5, options };
        let t = run_row(&world, plan, &mut ablation_rng, &mut namer, &mut counts);
        let mean = counts.iter().sum::<usize>() as f64 / counts.len().max(1) as f64;
        println!(
            "| {label} | {mean:.0} | {:.2} % | {:.2} % | {:.3} % | {:.3} % |",
            t.recall(1),
            t.recall(0),
            t.false_rate(1),
            t.false_rate(0)
        );
    }

    let carer_rows = carer_section(args.seed, args.queries, &mut namer);
    let pre_birth = pre_birth_section(args.seed, args.queries, &mut namer);

    // Targets.
    let names_pop = &tables[0].1.last().expect("population row").1;
    let nhs_pop = &tables[1].1.last().expect("population row").1;
    let nhs_false_confirmed: u32 = tables[1].1.iter().map(|(_, t)| t.false_match[2]).sum();
    let nhs_queries: u32 = tables[1].1.iter().map(|(_, t)| t.queries).sum();
    let checks = [
        (
            format!(
                "NHS number on both sides: recall ≥ 99.9 % at probable or better ({:.2} %; confirmed {:.2} %)",
                nhs_pop.recall(1),
                nhs_pop.recall(2)
            ),
            nhs_pop.recall(1) >= 99.9,
        ),
        (
            format!("NHS number on both sides: 0 false confirmed ({nhs_false_confirmed} in {nhs_queries} queries)"),
            nhs_false_confirmed == 0,
        ),
        (
            format!("Names and date of birth only: recall ≥ 95 % at probable or better ({:.2} %)", names_pop.recall(1)),
            names_pop.recall(1) >= 95.0,
        ),
        (
            format!(
                "Names and date of birth only: false probable < 0.1 % per query ({:.3} %)",
                names_pop.false_rate(1)
            ),
            names_pop.false_rate(1) < 0.1,
        ),
        (format!("Carers: child lookups never meet carer holdings ({} cross-role hits)", carer_rows), carer_rows == 0),
        (
            format!(
                "Pre-birth: a newborn born in the window, with the mother by name and DOB, finds the pre-birth record \
                 ≥ 90 % ({:.2} %)",
                pre_birth.0
            ),
            pre_birth.0 >= 90.0,
        ),
        (
            format!(
                "Pre-birth: newborns of mothers not in the index meet a pre-birth record < 0.1 % ({:.3} %)",
                pre_birth.1
            ),
            pre_birth.1 < 0.1,
        ),
    ];
    println!("\n### Targets\n");
    let mut all_met = true;
    for (text, met) in &checks {
        all_met &= met;
        println!("- {} {text}", if *met { "MET:" } else { "NOT MET:" });
    }
    println!("\n(ran in {:.1} s)", started.elapsed().as_secs_f64());
    if all_met { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

fn describe_population(world: &World, rejected: usize) {
    let people = &world.people;
    let share = |f: &dyn Fn(&Person) -> String| {
        let mut counts: HashMap<String, usize> = HashMap::new();
        for p in people {
            *counts.entry(f(p).to_lowercase()).or_default() += 1;
        }
        let n = people.len() as f64;
        counts.values().map(|&c| (c as f64 / n).powi(2)).sum::<f64>()
    };
    let given_sq = share(&|p| p.given.clone());
    let family_sq = share(&|p| p.family.clone());
    let twins = people.iter().filter(|p| p.twin.is_some()).count();
    let keys = &world.index.stored_keys;
    let mean = keys.iter().sum::<usize>() as f64 / keys.len().max(1) as f64;
    println!(
        "Population {} children ({} twins), {} indexed ({} rejected as invalid), {} not indexed, \
         {} not-indexed twins of indexed children.",
        people.len(),
        twins,
        world.indexed.len(),
        rejected,
        world.not_indexed.len(),
        world.lone_twins.len()
    );
    println!(
        "Name realism: P(two children share a first name) = {given_sq:.4}, \
         P(share a family name) = {family_sq:.4} (UK: roughly 0.005–0.01 and 0.001–0.003)."
    );
    println!(
        "Stored keys per holding: mean {mean:.1}, max {}; {} distinct pseudonyms.",
        keys.iter().max().copied().unwrap_or(0),
        world.index.map.len()
    );
}

/// Unborn children: 20,000 pre-birth holdings (the mother's keys with the expected week); newborns
/// looked up with their mother. Returns (recall % for births inside the window with the mother by
/// name and DOB, false-match % for newborns whose mothers are not in the index).
fn pre_birth_section(seed: u64, queries: usize, namer: &mut Namer) -> (f64, f64) {
    let mut rng = StdRng::seed_from_u64(seed ^ 0xB1B1);
    let people: Vec<Person> = carers(30_000, &mut rng, namer);
    let (held, not_held) = people.split_at(20_000);
    let pseudonymiser = Pseudonymiser::new(&IndexSecret::from_bytes(rng.r#gen()));
    let mut index: HashMap<Pseudonym, Vec<usize>> = HashMap::new();
    let mut expected_dates = Vec::with_capacity(held.len());
    for (i, mother) in held.iter().enumerate() {
        // Due between a month and ten months ago: every baby has been born by TODAY.
        let expected = TODAY - Duration::days(rng.gen_range(30..300));
        expected_dates.push(expected);
        let Some(record) = parse(&holding_record(mother, &mut rng, 0.8), SubjectRole::Carer, KeyUse::Holding) else {
            continue;
        };
        let due = ExpectedDate::parse(&expected.to_string(), TODAY).expect("in range");
        for key in expected_birth_keys(&due, &[record]) {
            index.entry(pseudonymiser.pseudonym(&key)).or_default().push(i);
        }
    }
    // Days from the expected date to the birth, and whether the window should cover it.
    let birth_offset = |rng: &mut StdRng| -> i64 {
        match rng.gen_range(0..100) {
            0..80 => rng.gen_range(-14..=14),
            80..92 => rng.gen_range(-56..-14),
            92..97 => rng.gen_range(15..=20),
            _ => *[-120, -90, 60, 90].choose(rng).unwrap_or(&90),
        }
    };
    let mut rows = Vec::new();
    let mut headline = (0.0, 0.0);
    for (label, known, nhs) in [
        ("mother by name and DOB (realistic errors)", true, false),
        ("mother with NHS number", true, true),
        ("mother not in the index", false, false),
    ] {
        let (mut asked, mut in_window, mut found, mut found_outside, mut outside, mut false_hits) = (0, 0, 0, 0, 0, 0);
        for _ in 0..queries {
            let (i, mother) = if known {
                let i = rng.gen_range(0..held.len());
                (i, &held[i])
            } else {
                (usize::MAX, &not_held[rng.gen_range(0..not_held.len())])
            };
            let expected = if known { expected_dates[i] } else { TODAY - Duration::days(rng.gen_range(30..300)) };
            let offset = birth_offset(&mut rng);
            let born = (expected + Duration::days(offset)).min(TODAY);
            let mut asker = asker_record(mother, &mut rng, nhs);
            if !nhs {
                for e in realistic_errors(&mut rng) {
                    if applicable(e, mother) {
                        apply(e, mother, &mut asker, &mut rng, namer);
                    }
                }
            }
            let baby = RawSubject {
                given_name: Some("Baby".into()),
                family_name: Some(mother.family.clone()),
                date_of_birth: Some(born.to_string()),
                ..RawSubject::default()
            };
            let (Some(carer), Some(child)) =
                (parse(&asker, SubjectRole::Carer, KeyUse::Lookup), parse(&baby, SubjectRole::Child, KeyUse::Lookup))
            else {
                continue;
            };
            asked += 1;
            let hits: HashSet<usize> = newborn_keys(&child, &[carer], TODAY)
                .iter()
                .filter_map(|k| index.get(&pseudonymiser.pseudonym(k)))
                .flatten()
                .copied()
                .collect();
            let window = (-56..=21).contains(&offset) && born < TODAY;
            match (known, window) {
                (true, true) => {
                    in_window += 1;
                    found += usize::from(hits.contains(&i));
                }
                (true, false) => {
                    outside += 1;
                    found_outside += usize::from(hits.contains(&i));
                }
                (false, _) => {}
            }
            false_hits += hits.iter().filter(|h| **h != i).count().min(1);
        }
        let pct = |n: usize, d: usize| 100.0 * n as f64 / d.max(1) as f64;
        rows.push(format!(
            "| {label} | {asked} | {} | {} | {:.3} % |",
            if known { format!("{:.2} %", pct(found, in_window)) } else { "–".into() },
            if known { format!("{:.2} %", pct(found_outside, outside)) } else { "–".into() },
            pct(false_hits, asked)
        ));
        if known && !nhs {
            headline.0 = pct(found, in_window);
        }
        if !known {
            headline.1 = pct(false_hits, asked);
        }
    }
    println!("\n#### Pre-birth (20,000 pre-birth holdings; newborns looked up with their mother)\n");
    println!(
        "| scenario | lookups | found, born in the window | found, born outside it | met another pre-birth record |"
    );
    println!("| --- | ---: | ---: | ---: | ---: |");
    for row in rows {
        println!("{row}");
    }
    headline
}

/// Carers: their own index space. Returns how many child-role lookups met a carer holding.
fn carer_section(seed: u64, queries: usize, namer: &mut Namer) -> usize {
    let mut rng = StdRng::seed_from_u64(seed ^ 0xC0FFEE);
    let people = carers(40_000, &mut rng, namer);
    let secret = IndexSecret::from_bytes(rng.r#gen());
    let mut index = Index::new(&secret);
    let mut holdings = HashMap::new();
    let (held, not_held) = people.split_at(30_000);
    for (i, p) in held.iter().enumerate() {
        let record = holding_record(p, &mut rng, 0.8);
        if let Some(s) = parse(&record, SubjectRole::Carer, KeyUse::Holding) {
            index.add(i, &s);
            holdings.insert(i, record);
        }
    }
    let mut counts = Vec::new();
    let mut rows = Vec::new();
    for (label, nhs, known) in [
        ("carer, realistic mix, names only", false, true),
        ("carer, realistic mix, NHS number both sides", true, true),
        ("carer not in the index", false, false),
    ] {
        let mut t = Tally::default();
        for _ in 0..queries {
            let (i, p) = if known {
                let i = rng.gen_range(0..held.len());
                (i, &held[i])
            } else {
                (usize::MAX, &not_held[rng.gen_range(0..not_held.len())])
            };
            if nhs && holdings.get(&i).and_then(|h| h.nhs_number.as_ref()).is_none() {
                continue;
            }
            let mut asker = asker_record(p, &mut rng, nhs);
            for e in realistic_errors(&mut rng) {
                if applicable(e, p) {
                    apply(e, p, &mut asker, &mut rng, namer);
                }
            }
            if let Some(lookup) = parse(&asker, SubjectRole::Carer, KeyUse::Lookup) {
                let outcome = index.ask(&lookup, known.then_some(i), LookupOptions::default(), &mut counts);
                t.record(known, &outcome);
            }
        }
        rows.push((label.to_owned(), t));
    }
    // The same people asked about as children (only those young enough parse as children).
    let mut cross = 0;
    let mut cross_asked = 0;
    for p in held.iter().take(queries) {
        let asker = asker_record(p, &mut rng, true);
        if let Some(lookup) = parse(&asker, SubjectRole::Child, KeyUse::Lookup) {
            cross_asked += 1;
            let outcome = index.ask(&lookup, None, LookupOptions::default(), &mut counts);
            if outcome.best_false.is_some() {
                cross += 1;
            }
        }
    }
    print_table("Carers (30,000 carer holdings, their own key space)", &rows);
    println!(
        "\nCarers asked about with the child role: {cross_asked} lookups (carers aged 25 or under), \
         {cross} met a carer holding."
    );
    cross
}
