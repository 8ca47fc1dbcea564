//! `locator purge`: remove closed holdings past the retention period (also run hourly by `serve`).

use std::process::ExitCode;

use super::with_service;
use crate::config::Settings;

#[derive(clap::Args, Debug)]
pub struct PurgeArgs {
    /// Count what would be purged without removing anything.
    #[arg(long)]
    dry_run: bool,
}

pub async fn run(args: PurgeArgs, settings: Settings) -> anyhow::Result<ExitCode> {
    let days = settings.closed_retention_days;
    with_service(settings, async |service| {
        let s = service.purge(args.dry_run).await.map_err(|e| anyhow::anyhow!("purge failed: {e}"))?;
        let verb = if args.dry_run { "would purge" } else { "purged" };
        println!(
            "{verb} {} closed holdings (closed more than {days} days ago) at {} organisations; {} matches withdrawn",
            s.holdings, s.organisations, s.matches_withdrawn
        );
        Ok(ExitCode::SUCCESS)
    })
    .await
}
