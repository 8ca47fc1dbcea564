//! `locator key generate|rotate|status|retire`: the index secret and its rotation without
//! plaintext. Rotation: a new key is made current, the old one kept as `<key>.previous`;
//! registrations write under the new key, lookups ask under both, every organisation re-syncs
//! (its holdings are rewritten under the new key), then `retire` removes the old key.

use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use serde_json::json;

use super::with_service;
use crate::audit::{EventType, NewEvent};
use crate::config::Settings;
use crate::domain::identity::{IndexSecret, Pseudonymiser};
use crate::keys;

#[derive(Subcommand, Debug)]
pub enum KeyCommand {
    /// Create a new index secret at LOCATOR_KEY_FILE; refuses to overwrite an existing one.
    Generate,
    /// Start a rotation: the current key becomes `<key>.previous` and a new key is made.
    /// Restart every node afterwards so they all load both keys.
    Rotate,
    /// Show the keys in force and how many holdings each still covers.
    Status,
    /// Finish a rotation: remove the previous key once no holding is stored under it.
    Retire {
        /// Retire even though some holdings are still under the old key (they become unfindable
        /// until their organisation re-syncs).
        #[arg(long)]
        force: bool,
    },
}

fn key_id_of(secret: &keys::SecretBytes) -> String {
    Pseudonymiser::new(&IndexSecret::from_bytes(secret.0)).key_id().to_string()
}

pub async fn run(command: KeyCommand, settings: Settings) -> anyhow::Result<ExitCode> {
    let previous_path = keys::previous_key_path(&settings.key_file);
    match command {
        KeyCommand::Generate => {
            keys::generate(&settings.key_file)?;
            println!(
                "created {} (mode 0600); keep a backup: without it no stored pseudonym can be matched",
                settings.key_file.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        KeyCommand::Rotate => {
            if previous_path.exists() {
                eprintln!(
                    "locator: a rotation is already in progress ({} exists); retire it first",
                    previous_path.display()
                );
                return Ok(ExitCode::from(2));
            }
            let old = keys::load(&settings.key_file).context("the current key cannot be read")?;
            keys::write_new(&previous_path, &old.0)?;
            std::fs::remove_file(&settings.key_file).context("cannot replace the current key")?;
            let new = keys::generate(&settings.key_file)?;
            let (old_id, new_id) = (key_id_of(&old), key_id_of(&new));
            with_service(settings, async |service| {
                let event = NewEvent::new(EventType::KeyOperation)
                    .details(json!({"operation": "rotate", "previous_key_id": old_id, "current_key_id": new_id}));
                service.record(event).await?;
                Ok(())
            })
            .await?;
            println!("rotation started: key {old_id} is now previous, {new_id} is current.");
            println!("Restart every node, ask every organisation to re-sync, then run `locator key retire`.");
            Ok(ExitCode::SUCCESS)
        }
        KeyCommand::Status => {
            with_service(settings, async |service| {
                let (current, previous) = service.key_ids();
                println!("current key: {current}");
                if let Some(previous) = previous {
                    println!("previous key: {previous} (rotation in progress)");
                }
                for (key_id, n) in service.holdings_by_key().await? {
                    println!("  {n} holdings under key {key_id}");
                }
                Ok(ExitCode::SUCCESS)
            })
            .await
        }
        KeyCommand::Retire { force } => {
            if !previous_path.exists() {
                eprintln!("locator: no rotation in progress (no {})", previous_path.display());
                return Ok(ExitCode::from(2));
            }
            let old_id = key_id_of(&keys::load(&previous_path)?);
            with_service(settings, async |service| {
                let waiting = service.organisations_on_key(&old_id).await?;
                if !waiting.is_empty() && !force {
                    eprintln!(
                        "locator: these organisations still have holdings under key {old_id}; ask them to re-sync:"
                    );
                    for (code, n) in &waiting {
                        eprintln!("  {code}: {n} holdings");
                    }
                    return Ok(ExitCode::FAILURE);
                }
                std::fs::remove_file(&previous_path).context("cannot remove the previous key")?;
                let event = NewEvent::new(EventType::KeyOperation).details(json!({
                    "operation": "retire", "retired_key_id": old_id, "forced": force,
                    "holdings_left_under_it": waiting.iter().map(|(_, n)| n).sum::<i64>(),
                }));
                service.record(event).await?;
                println!("key {old_id} retired; tokens not used since the rotation must be re-issued");
                Ok(ExitCode::SUCCESS)
            })
            .await
        }
    }
}
