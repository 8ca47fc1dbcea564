//! Generates synthetic caseloads for benchmarks: `ORGS` CSV files sharing `HOLDINGS` children
//! in total (some children held by two organisations), plus lookup bodies that hit and miss.
//! Every name and number is synthetic; NHS numbers have valid check digits.
//!
//! cargo run --release --example gen_caseload -- --holdings 100000 --orgs 4 --out bench/data

use std::fmt::Write as _;
use std::io::Write;
use std::path::PathBuf;

#[path = "shared/names.rs"]
mod names;
use names::{FAMILY, GIVEN};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*: deterministic, fast, good enough for synthetic data.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn nhs_number(seed: u64) -> String {
    let mut n = seed;
    loop {
        let digits: Vec<u32> =
            format!("{:09}", 100_000_000 + n % 899_999_999).chars().filter_map(|c| c.to_digit(10)).collect();
        let sum: u32 = digits.iter().enumerate().map(|(i, d)| d * (10 - i as u32)).sum();
        let check = (11 - sum % 11) % 11;
        if check != 10 {
            return format!("{}{check}", digits.iter().map(|d| d.to_string()).collect::<String>());
        }
        n = n.wrapping_add(1);
    }
}

struct Child {
    nhs: Option<String>,
    given: &'static str,
    family: &'static str,
    dob: String,
}

fn child(rng: &mut Rng, i: u64) -> Child {
    let year = 2003 + rng.below(23);
    let month = 1 + rng.below(12);
    let day = 1 + rng.below(28);
    Child {
        nhs: (rng.below(10) < 8).then(|| nhs_number(i * 7919 + 13)),
        given: GIVEN[rng.below(GIVEN.len())],
        family: FAMILY[rng.below(FAMILY.len())],
        dob: format!("{year}-{month:02}-{day:02}"),
    }
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str, default: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
            .unwrap_or_else(|| default.to_string())
    };
    let holdings: u64 = arg("--holdings", "100000").parse().unwrap_or(100_000);
    let orgs: usize = arg("--orgs", "4").parse().unwrap_or(4).max(1);
    let out = PathBuf::from(arg("--out", "bench/data"));
    let queries: u64 = arg("--queries", "20000").parse().unwrap_or(20_000);
    std::fs::create_dir_all(&out)?;
    let mut rng = Rng(0x5eed_1234_abcd_9876);
    let mut files: Vec<std::io::BufWriter<std::fs::File>> = (0..orgs)
        .map(|o| std::fs::File::create(out.join(format!("org{o}.csv"))).map(std::io::BufWriter::new))
        .collect::<Result<_, _>>()?;
    for f in &mut files {
        writeln!(f, "local_ref,category,status,nhs_number,upn,given_name,family_name,date_of_birth,postcode")?;
    }
    let categories = ["child-in-need", "child-protection-plan", "looked-after", "care-leaver", "early-help", "other"];
    let mut lookups = std::io::BufWriter::new(std::fs::File::create(out.join("lookups.ndjson"))?);
    let sample_every = (holdings / queries.max(1)).max(1);
    let mut written = 0u64;
    let mut i = 0u64;
    while written < holdings {
        let c = child(&mut rng, i);
        // One child in ten is known to a second organisation (a family that moved).
        let holders = if rng.below(10) == 0 && orgs > 1 { 2 } else { 1 };
        let first = rng.below(orgs);
        for h in 0..holders {
            let o = (first + h) % orgs;
            let mut row = String::new();
            let _ = write!(
                row,
                "R{i}-{h},{},{},{},,{},{},{},",
                categories[rng.below(categories.len())],
                if rng.below(5) == 0 { "closed" } else { "open" },
                c.nhs.as_deref().unwrap_or(""),
                c.given,
                c.family,
                c.dob
            );
            writeln!(files[o], "{row}")?;
            written += 1;
        }
        if i.is_multiple_of(sample_every) {
            // Half the lookups name a registered child by name and date of birth, half miss.
            let (given, family, dob) = if rng.below(2) == 0 {
                (c.given, c.family, c.dob.clone())
            } else {
                ("Zebedee", "Quillfeather", "2019-02-02".to_string())
            };
            writeln!(
                lookups,
                r#"{{"subject":{{"given_name":"{given}","family_name":"{family}","date_of_birth":"{dob}"}},"purpose":"front-door-triage"}}"#
            )?;
        }
        i += 1;
    }
    for mut f in files {
        f.flush()?;
    }
    lookups.flush()?;
    eprintln!("wrote {written} holdings for {i} children across {orgs} organisations to {}", out.display());
    Ok(())
}
