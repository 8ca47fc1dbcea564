//! `locator key generate`: create the index secret (32 random bytes, mode 0600).

use std::process::ExitCode;

use clap::Subcommand;

use crate::config::Settings;

#[derive(Subcommand, Debug)]
pub enum KeyCommand {
    /// Create a new index secret at LOCATOR_KEY_FILE; refuses to overwrite an existing one.
    Generate,
}

pub async fn run(command: KeyCommand, settings: Settings) -> anyhow::Result<ExitCode> {
    match command {
        KeyCommand::Generate => {
            crate::keys::generate(&settings.key_file)?;
            println!(
                "created {} (mode 0600); keep a backup: without it no stored pseudonym can be matched",
                settings.key_file.display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
