//! The `locator` command line: one file per command group. Each command resolves settings the
//! same way (flags, then `LOCATOR_*` environment, then the TOML file, then defaults).

mod audit;
mod backup;
mod client;
mod demo;
mod import;
mod key;
mod org;
mod provider;
mod purge;
mod serve;
mod user;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{ConfigArgs, Settings};

#[derive(Parser, Debug)]
#[command(
    name = "locator",
    version,
    about = "child-locator: is this child known to children's services elsewhere, and who do I call?",
    long_about = "child-locator is a national index that holds no case content and no plaintext identifiers: \
only keyed hashes of identifiers, which organisation holds a record, and who to call there.\n\n\
Start here: `locator demo` runs the service with fake demo data and prints a token per role.",
    after_help = "Every setting can come from a flag, a LOCATOR_* environment variable or the --config TOML file, in that order."
)]
pub struct Cli {
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the index: migrate the database, then serve HTTP until SIGTERM or SIGINT.
    Serve,
    /// Serve with clearly fake demo organisations, users and holdings; prints the URL and a token per role.
    Demo,
    /// Apply database migrations and exit.
    Migrate,
    /// Show the effective configuration and where each value came from (no secrets).
    Config,
    /// The directory of participating organisations.
    #[command(subcommand)]
    Org(org::OrgCommand),
    /// Users and their bearer tokens.
    #[command(subcommand)]
    User(user::UserCommand),
    /// Systems as OAuth clients (client credentials with a signed JWT), and turning an
    /// organisation's long-lived API tokens off.
    #[command(subcommand)]
    Client(client::ClientCommand),
    /// Replace an organisation's caseload from a CSV or NDJSON file (full sync).
    Import(import::ImportArgs),
    /// Remove closed holdings past the retention period (serve also does this hourly).
    Purge(purge::PurgeArgs),
    /// The index secret.
    #[command(subcommand)]
    Key(key::KeyCommand),
    /// The tamper-evident audit trail.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Print the route × role access table (Markdown), as docs/api.md shows it.
    Routes,
    /// Write a consistent copy of the SQLite database to FILE while the service runs
    /// (PostgreSQL: use pg_dump, see docs/operator-guide.md). The key files are not included.
    Backup(backup::BackupArgs),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::resolve(&cli.config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("locator: {e}");
            return ExitCode::from(2);
        }
    };
    if matches!(cli.command, Command::Serve | Command::Demo)
        && let Err(e) = settings.check_bind()
    {
        eprintln!("locator: {e}");
        return ExitCode::from(2);
    }
    crate::telemetry::init(settings.log_format, &settings.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("locator: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command, settings)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("locator: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, settings: Settings) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve => serve::serve(settings).await,
        Command::Demo => demo::demo(settings).await,
        Command::Migrate => {
            crate::service::offline::migrate(&settings.database_url).await?;
            println!("migrations applied to {}", crate::config::redact_url(&settings.database_url));
            Ok(ExitCode::SUCCESS)
        }
        Command::Config => {
            print!("{}", settings.describe());
            Ok(ExitCode::SUCCESS)
        }
        Command::Org(cmd) => org::run(cmd, settings).await,
        Command::User(cmd) => user::run(cmd, settings).await,
        Command::Client(cmd) => client::run(cmd, settings).await,
        Command::Key(cmd) => key::run(cmd, settings).await,
        Command::Import(args) => import::run(args, settings).await,
        Command::Purge(args) => purge::run(args, settings).await,
        Command::Audit(cmd) => audit::run(cmd, settings).await,
        Command::Backup(args) => backup::run(args, settings).await,
        Command::Routes => {
            print!("{}", crate::http::access::markdown_table());
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Opens the service for a one-shot command, runs `f`, and lets the audit writer drain.
async fn with_service<T>(
    settings: Settings,
    f: impl AsyncFnOnce(&crate::service::Service) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let (service, task) = crate::service::Service::open(settings, crate::clock::Clock::System).await?;
    for notice in service.notices() {
        eprintln!("{notice}");
    }
    let result = f(&service).await;
    drop(service);
    task.finish().await;
    result
}
