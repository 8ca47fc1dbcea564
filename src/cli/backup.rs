//! `locator backup FILE`: a consistent online snapshot of an SQLite index (`VACUUM INTO`),
//! private to its owner and checked before it is reported. PostgreSQL uses pg_dump instead.

use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use serde_json::json;

use super::with_service;
use crate::audit::{EventType, NewEvent};
use crate::config::Settings;

#[derive(clap::Args, Debug)]
pub struct BackupArgs {
    /// Where to write the copy; must not exist yet. Created with mode 0600.
    file: PathBuf,
}

pub async fn run(args: BackupArgs, settings: Settings) -> anyhow::Result<ExitCode> {
    if settings.uses_postgres() {
        eprintln!(
            "locator: backup copies SQLite databases; for PostgreSQL use `pg_dump --format=custom` \
             (see docs/operator-guide.md, Backups)"
        );
        return Ok(ExitCode::from(2));
    }
    // Created empty and private first: VACUUM INTO accepts an empty file and keeps its mode,
    // so the copy (contacts, token hashes, pseudonyms) is never readable by other users.
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&args.file)
        .with_context(|| format!("cannot create {} (it must not exist yet)", args.file.display()))?;
    let target = args.file.clone();
    let result = with_service(settings, async |service| {
        // Recorded first, so the copy carries the record of its own making.
        let event = NewEvent::new(EventType::BackupTaken).details(json!({"via": "cli"}));
        service.record(event).await.context("cannot write the audit trail")?;
        service.backup_into(&target).await?;
        Ok(())
    })
    .await;
    if let Err(e) = result {
        let _ = std::fs::remove_file(&args.file);
        return Err(e);
    }
    let checked = crate::service::offline::check_backup(&args.file).await?;
    println!(
        "backup written to {} ({} bytes, {} audit entries, integrity ok); the key files are NOT in it: \
         back them up separately",
        args.file.display(),
        checked.bytes,
        checked.audit_entries
    );
    Ok(ExitCode::SUCCESS)
}
