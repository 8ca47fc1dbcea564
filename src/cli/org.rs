//! `locator org add|list|update|areas`: the operator's directory commands.

use std::process::ExitCode;

use clap::Subcommand;

use super::with_service;
use crate::config::Settings;
use crate::domain::organisation::{Organisation, OrganisationInput};

#[derive(Subcommand, Debug)]
pub enum OrgCommand {
    /// Add an organisation to the directory.
    Add {
        /// ONS code (councils), ODS code (NHS bodies), URN (schools) or a free code.
        #[arg(long)]
        code: String,
        #[arg(long)]
        name: String,
        /// local-authority, nhs-trust, gp-practice, school, police or other.
        #[arg(long)]
        kind: String,
        /// The professionals' duty line.
        #[arg(long)]
        duty_phone: String,
        #[arg(long)]
        out_of_hours_phone: Option<String>,
        #[arg(long)]
        secure_email: String,
    },
    /// List organisations, optionally matching TEXT in the name or code.
    List {
        text: Option<String>,
        /// Include inactive organisations.
        #[arg(long)]
        all: bool,
    },
    /// Set the postcode areas ("SO") or districts ("SO14") an organisation covers, for the
    /// area summary of a "not known" answer. No areas: it covers everywhere.
    Areas {
        code: String,
        /// Areas or districts, separated by spaces or commas; replaces the list.
        areas: Vec<String>,
    },
    /// Change an organisation's details; only the options given change.
    Update {
        code: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        kind: Option<String>,
        #[arg(long)]
        duty_phone: Option<String>,
        /// Empty text removes it.
        #[arg(long)]
        out_of_hours_phone: Option<String>,
        #[arg(long)]
        secure_email: Option<String>,
        /// `true` or `false`: an inactive organisation's users cannot sign in.
        #[arg(long)]
        active: Option<bool>,
    },
    /// The organisation's OpenID Connect provider: its people sign in through it.
    #[command(subcommand)]
    Provider(super::provider::ProviderCommand),
}

pub async fn run(command: OrgCommand, settings: Settings) -> anyhow::Result<ExitCode> {
    if let OrgCommand::Provider(command) = command {
        return super::provider::run(command, settings).await;
    }
    with_service(settings, async |service| match command {
        OrgCommand::Add { code, name, kind, duty_phone, out_of_hours_phone, secure_email } => {
            let input = OrganisationInput {
                code: Some(code),
                name: Some(name),
                kind: Some(kind),
                duty_phone: Some(duty_phone),
                out_of_hours_phone,
                secure_email: Some(secure_email),
                active: None,
            };
            let new = match input.into_new() {
                Ok(new) => new,
                Err(errors) => return Ok(invalid(&errors)),
            };
            let org = service.add_organisation(None, &new).await?;
            println!("added {}", line(&org));
            Ok(ExitCode::SUCCESS)
        }
        OrgCommand::List { text, all } => {
            for org in service.directory_listing(text.as_deref().unwrap_or(""), all).await? {
                println!("{}", line(&org));
            }
            Ok(ExitCode::SUCCESS)
        }
        OrgCommand::Areas { code, areas } => {
            let areas = match crate::domain::area::parse_areas(&areas.join(" ")) {
                Ok(areas) => areas,
                Err(error) => return Ok(invalid(&[error])),
            };
            service.set_organisation_areas(None, &code, &areas).await?;
            println!(
                "{} covers {}",
                code.to_ascii_uppercase(),
                if areas.is_empty() { "everywhere".to_string() } else { areas.join(" ") }
            );
            Ok(ExitCode::SUCCESS)
        }
        OrgCommand::Update { code, name, kind, duty_phone, out_of_hours_phone, secure_email, active } => {
            let input =
                OrganisationInput { code: None, name, kind, duty_phone, out_of_hours_phone, secure_email, active };
            let changes = match input.into_changes() {
                Ok(c) => c,
                Err(errors) => return Ok(invalid(&errors)),
            };
            let org = service.update_organisation(None, &code, &changes).await?;
            println!("updated {}", line(&org));
            Ok(ExitCode::SUCCESS)
        }
        OrgCommand::Provider(_) => unreachable!("handled above"),
    })
    .await
}

fn line(org: &Organisation) -> String {
    format!(
        "{}\t{}\t{}\t{}\t{}{}",
        org.code,
        org.name,
        org.kind.as_str(),
        org.duty_phone,
        org.secure_email,
        if org.active { "" } else { "\t(inactive)" }
    )
}

pub(super) fn invalid(errors: &[crate::domain::FieldError]) -> ExitCode {
    for e in errors {
        eprintln!("locator: --{}: {}", e.field.replace('_', "-"), e.message);
    }
    ExitCode::from(2)
}
