//! `locator user add|list|revoke`. `add` prints the new token alone on the last line of stdout,
//! so scripts can take it with `tail -n1`.

use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;

use super::with_service;
use crate::config::Settings;
use crate::domain::organisation::parse_label;
use crate::domain::role::Role;

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Add a user and issue their token (shown once).
    Add {
        /// The organisation's code.
        #[arg(long)]
        org: String,
        #[arg(long)]
        name: String,
        /// practitioner, ig-officer, org-admin or operator.
        #[arg(long)]
        role: String,
    },
    /// List an organisation's users.
    List {
        #[arg(long)]
        org: String,
    },
    /// Revoke a user's token; it stops working on the next request.
    Revoke {
        #[arg(long)]
        org: String,
        /// The user's id (see `user list`).
        id: i64,
    },
}

pub async fn run(command: UserCommand, settings: Settings) -> anyhow::Result<ExitCode> {
    with_service(settings, async |service| match command {
        UserCommand::Add { org, name, role } => {
            let Some(role) = Role::parse(&role) else {
                eprintln!("locator: --role must be practitioner, ig-officer, org-admin or operator");
                return Ok(ExitCode::from(2));
            };
            let name = match parse_label("name", &name, 200) {
                Ok(n) => n,
                Err(e) => return Ok(super::org::invalid(&[e])),
            };
            let org = service.organisation_by_code(&org).await.context("no organisation has that code")?;
            let (user, token) = service
                .issue_user(None, org.id, &name, role)
                .await
                .map_err(|e| anyhow::anyhow!("cannot add the user: {e}"))?;
            println!(
                "added user {} ({}, {}) to {}; the token below is shown once:",
                user.id, user.name, user.role, org.code
            );
            println!("{token}");
            Ok(ExitCode::SUCCESS)
        }
        UserCommand::List { org } => {
            let org = service.organisation_by_code(&org).await.context("no organisation has that code")?;
            for u in service.users_of_org(org.id).await? {
                let state = if u.revoked_at.is_some() { "revoked" } else { "active" };
                println!("{}\t{}\t{}\t{}…\t{}", u.id, u.name, u.role, u.token_hint, state);
            }
            Ok(ExitCode::SUCCESS)
        }
        UserCommand::Revoke { org, id } => {
            let org = service.organisation_by_code(&org).await.context("no organisation has that code")?;
            let user = service.revoke_token_of(org.id, id).await.context("no such user in that organisation")?;
            println!("revoked user {} ({})", user.id, user.name);
            Ok(ExitCode::SUCCESS)
        }
    })
    .await
}
