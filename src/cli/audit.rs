//! `locator audit verify|public-key`: anyone holding the database (and the public key) can
//! check that the trail was not changed, deleted from, reordered or truncated.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;

use crate::audit::checkpoint::{AuditSigningKey, parse_public_key};
use crate::audit::stored::verify_stored;
use crate::config::Settings;
use crate::store::Store;

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Check the whole stored audit trail; exit 0 if intact, 1 naming the first bad entry.
    Verify {
        /// Verify checkpoint signatures with this public key (PEM or base64) instead of the
        /// one derived from LOCATOR_AUDIT_KEY_FILE.
        #[arg(long, value_name = "FILE")]
        public_key: Option<PathBuf>,
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
        AuditCommand::Verify { public_key } => {
            let key = match public_key {
                Some(path) => {
                    let text =
                        std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
                    Some(parse_public_key(&text)?)
                }
                None if settings.audit_key_file.exists() => {
                    Some(AuditSigningKey::load_or_create(&settings.audit_key_file)?.0.verifying_key())
                }
                None => {
                    eprintln!("note: no audit key found; checkpoint signatures are not checked (use --public-key)");
                    None
                }
            };
            let store = Store::connect(&settings.database_url).await?;
            let result = verify_stored(&store, key).await;
            store.close().await;
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
    }
}
