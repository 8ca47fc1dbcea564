//! `locator audit verify|export|events|witness|public-key`: anyone holding the database, or
//! only an export and the public key, can check the trail was not changed, deleted from,
//! reordered or truncated; IG officers with shell access can list and export events.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;

use crate::audit::checkpoint::{AuditSigningKey, parse_public_key};
use crate::audit::export::verify_export;
use crate::audit::verify::VerifiedLog;
use crate::audit::witness::{Pushed, WitnessTarget, parse_witness_file};
use crate::audit::{EventType, NewEvent};
use crate::config::Settings;
use crate::service::audit::{EventFilterInput, events_csv};
use crate::service::offline;

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Check the whole stored audit trail; exit 0 if intact, 1 naming the first bad entry.
    Verify {
        /// Verify checkpoint signatures with this public key (PEM or base64) instead of the
        /// one derived from LOCATOR_AUDIT_KEY_FILE.
        #[arg(long, value_name = "FILE")]
        public_key: Option<PathBuf>,
        /// Verify this export file offline instead of the database (needs --public-key).
        #[arg(long, value_name = "FILE")]
        export: Option<PathBuf>,
        /// Also check the log against every checkpoint in this witness file: a history
        /// rewritten or truncated since a checkpoint was witnessed fails.
        #[arg(long, value_name = "FILE")]
        witness: Option<PathBuf>,
    },
    /// Write every event (body and leaf hash), the kept checkpoints and the head's signed
    /// checkpoint to FILE (NDJSON), for offline verification with `audit verify --export`.
    Export {
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// List events, newest first, as JSON lines (or CSV): for IG officers with shell access.
    Events {
        /// Only events this organisation may see (its code); without it, the whole log.
        #[arg(long, value_name = "CODE")]
        org: Option<String>,
        /// Only events by this user id.
        #[arg(long)]
        user: Option<String>,
        /// Only events by users of this organisation (code).
        #[arg(long, value_name = "CODE")]
        organisation: Option<String>,
        #[arg(long = "type", value_name = "TYPE")]
        kind: Option<String>,
        #[arg(long)]
        purpose: Option<String>,
        /// RFC 3339 or YYYY-MM-DD (inclusive).
        #[arg(long)]
        from: Option<String>,
        /// RFC 3339 or YYYY-MM-DD (a bare date includes that day).
        #[arg(long)]
        to: Option<String>,
        #[arg(long)]
        lookup_id: Option<String>,
        /// Only lookups by other organisations that matched --org's holdings.
        #[arg(long)]
        touching_our_holdings: bool,
        /// At most this many events [default: all].
        #[arg(long)]
        limit: Option<usize>,
        /// CSV instead of JSON lines.
        #[arg(long)]
        csv: bool,
    },
    /// Push the latest signed checkpoint to a witness: append to a file, or POST to an http:// URL.
    Witness {
        #[arg(long, value_name = "PATH|URL")]
        to: String,
    },
    /// Print the public key that verifies audit checkpoints (give it to your IG team and witness).
    PublicKey,
}

pub async fn run(command: AuditCommand, settings: Settings) -> anyhow::Result<ExitCode> {
    match command {
        AuditCommand::PublicKey => {
            let (key, _) = AuditSigningKey::load_or_create(&settings.audit_key_file)?;
            print!("{}", key.public_key_pem());
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Verify { public_key, export, witness } => verify(settings, public_key, export, witness).await,
        AuditCommand::Export { file } => export(settings, file).await,
        AuditCommand::Events {
            org,
            user,
            organisation,
            kind,
            purpose,
            from,
            to,
            lookup_id,
            touching_our_holdings,
            limit,
            csv,
        } => {
            let filter = EventFilterInput {
                user,
                organisation,
                kind,
                purpose,
                from,
                to,
                lookup_id,
                touching_our_holdings: Some(touching_our_holdings),
                before: None,
                limit: Some(crate::service::audit::MAX_PAGE),
            };
            events(settings, org, filter, limit, csv).await
        }
        AuditCommand::Witness { to } => witness(settings, &to).await,
    }
}

/// `audit verify`: the stored trail, or an export, against the log's key and any witness file.
async fn verify(
    settings: Settings,
    public_key: Option<PathBuf>,
    export: Option<PathBuf>,
    witness: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let key = match public_key {
        Some(path) => Some(read_public_key(&path)?),
        None if export.is_some() => {
            anyhow::bail!("verifying an export needs the log's public key: give --public-key FILE")
        }
        None if settings.audit_key_file.exists() => {
            Some(AuditSigningKey::load_or_create(&settings.audit_key_file)?.0.verifying_key())
        }
        None => {
            eprintln!("note: no audit key found; checkpoint signatures are not checked (use --public-key)");
            None
        }
    };
    let witnessed = match &witness {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            parse_witness_file(&text)?
        }
        None => Vec::new(),
    };
    let result: Result<VerifiedLog, String> = match (export, key) {
        (Some(path), Some(key)) => {
            let file = std::fs::File::open(&path).with_context(|| format!("cannot read {}", path.display()))?;
            verify_export(std::io::BufReader::new(file), &key, &witnessed).map_err(|e| e.to_string())
        }
        (_, key) => offline::verify_stored_trail(&settings, key, &witnessed).await?,
    };
    match result {
        Ok(log) => {
            println!(
                "audit trail intact: {} entries, root {}, {} checkpoint(s) checked{}",
                log.size,
                hex::encode(log.root),
                log.checkpoints_checked,
                if log.signatures_checked { ", signatures valid" } else { " (signatures not checked)" }
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!("audit trail BROKEN: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// `audit export FILE`: the whole trail with its checkpoints, itself recorded first.
async fn export(settings: Settings, file: PathBuf) -> anyhow::Result<ExitCode> {
    super::with_service(settings, async |service| {
        // The export is itself an event, so it is inside what it exports.
        service
            .record(NewEvent::new(EventType::AuditExported).details(serde_json::json!({
                "format": crate::audit::export::FORMAT,
                "by": "command line",
            })))
            .await?;
        let out = std::fs::File::create(&file).with_context(|| format!("cannot create {}", file.display()))?;
        let mut out = std::io::BufWriter::new(out);
        let summary = service.export_audit(&mut out, service.clock().now_ms()).await?;
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        println!(
            "exported {} entries and {} signed checkpoint(s) to {}",
            summary.entries,
            summary.checkpoints,
            file.display()
        );
        println!("verify offline with: locator audit verify --export {} --public-key KEY", file.display());
        Ok(ExitCode::SUCCESS)
    })
    .await
}

/// `audit events`: the events matching `filter` (in `org`'s scope when given), as JSON lines or CSV.
async fn events(
    settings: Settings,
    org: Option<String>,
    filter: EventFilterInput,
    limit: Option<usize>,
    csv: bool,
) -> anyhow::Result<ExitCode> {
    super::with_service(settings, async |service| {
        let scope = match &org {
            Some(code) => {
                Some(service.organisation_by_code(code).await.with_context(|| format!("no organisation {code}"))?.id)
            }
            None => None,
        };
        let mut filter = filter;
        let cap = limit.unwrap_or(usize::MAX);
        let mut events = Vec::new();
        loop {
            let page = service.audit_events(scope, &filter).await.map_err(describe)?;
            events.extend(page.events);
            match page.next_cursor {
                Some(cursor) if events.len() < cap => filter.before = Some(cursor),
                _ => break,
            }
        }
        events.truncate(cap);
        if csv {
            print!("{}", events_csv(&events));
        } else {
            for e in &events {
                println!("{}", serde_json::to_string(e)?);
            }
        }
        Ok(ExitCode::SUCCESS)
    })
    .await
}

/// `audit witness TO`: pushes the latest checkpoint to a witness.
async fn witness(settings: Settings, to: &str) -> anyhow::Result<ExitCode> {
    let target = WitnessTarget::parse(to).map_err(|e| anyhow::anyhow!(e))?;
    let (key, _) = AuditSigningKey::load_or_create(&settings.audit_key_file)?;
    let result = offline::push_to_witness(&settings.database_url, &target, &key.verifying_key()).await?;
    match result {
        Ok(Pushed::Appended(size)) => {
            println!("witnessed the checkpoint at size {size} to {}", target.describe());
            Ok(ExitCode::SUCCESS)
        }
        Ok(Pushed::Unchanged(size)) => {
            println!("the witness already holds the checkpoint at size {size}");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!("witness FAILED: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn read_public_key(path: &std::path::Path) -> anyhow::Result<ed25519_dalek::VerifyingKey> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(parse_public_key(&text)?)
}

fn describe(e: crate::service::ServiceError) -> anyhow::Error {
    match e {
        crate::service::ServiceError::Invalid(errors) => {
            anyhow::anyhow!(
                errors
                    .iter()
                    .map(|e| format!("--{}: {}", e.field.replace('_', "-"), e.message))
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        }
        other => other.into(),
    }
}
