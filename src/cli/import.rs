//! `locator import --org CODE FILE`: the same full-replace sync as the API, from a file.
//! Progress on stderr (a bar on a terminal), the summary on stdout; exits non-zero only if
//! nothing could be read.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use super::with_service;
use crate::config::Settings;
use crate::domain::sync::SyncFormat;
use crate::service::sync::{SyncError, SyncOptions, SyncSummary};

#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// The organisation's code.
    #[arg(long)]
    org: String,
    /// Validate and count without writing anything.
    #[arg(long)]
    dry_run: bool,
    /// The caseload: `.csv` (header row) or `.ndjson` (one holding per line).
    file: PathBuf,
}

pub async fn run(args: ImportArgs, settings: Settings) -> anyhow::Result<ExitCode> {
    let Some(format) = SyncFormat::from_extension(&args.file) else {
        eprintln!("locator: FILE must end in .csv or .ndjson");
        return Ok(ExitCode::from(2));
    };
    let file = std::fs::File::open(&args.file).with_context(|| format!("cannot open {}", args.file.display()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    with_service(settings, async |service| {
        let org = service.organisation_by_code(&args.org).await.context("no organisation has that code")?;
        let bar = if std::io::stderr().is_terminal() {
            let bar = indicatif::ProgressBar::new(size);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {bytes}/{total_bytes} ({eta})")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar
        } else {
            indicatif::ProgressBar::hidden()
        };
        let reader = bar.wrap_read(file);
        let quiet = bar.is_hidden();
        let progress = |line: u64| {
            bar.set_message(format!("{line} rows"));
            if quiet && line % 100_000 < 500 {
                eprintln!("… {line} rows");
            }
        };
        let options = SyncOptions::dry_run(args.dry_run);
        let result = service.sync_holdings(org.id, None, format, reader, options, &progress).await;
        bar.finish_and_clear();
        match result {
            Ok(summary) => {
                print_summary(&summary);
                Ok(ExitCode::SUCCESS)
            }
            Err(SyncError::Unreadable { field, message }) => {
                eprintln!("locator: nothing could be read: {field}: {message}");
                Ok(ExitCode::FAILURE)
            }
            Err(e @ SyncError::Busy) => {
                eprintln!("locator: {e}");
                Ok(ExitCode::FAILURE)
            }
            Err(e) => Err(e.into()),
        }
    })
    .await
}

fn print_summary(s: &SyncSummary) {
    let dry_run = if s.dry_run { " (dry run: these would be the changes; nothing was written)" } else { "" };
    println!(
        "{} rows read: {} added, {} updated, {} unchanged, {} removed; {} rejected; {} new matches, {} withdrawn{dry_run}",
        s.lines, s.added, s.updated, s.unchanged, s.removed, s.rejected_count, s.matches_new, s.matches_withdrawn
    );
    for r in &s.rejected {
        println!("  line {}: {}: {}", r.line, r.field, r.message);
    }
    if s.rejected_count > s.rejected.len() as u64 {
        println!("  … and {} more", s.rejected_count - s.rejected.len() as u64);
    }
}
