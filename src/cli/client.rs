//! `locator client add|list|revoke|long-lived-tokens`: OAuth clients (systems) for operators and
//! bootstrap, the same use cases as `/api/v1/clients`. Only public keys are read.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;

use super::with_service;
use crate::config::Settings;
use crate::domain::organisation::parse_label;
use crate::domain::role::Role;

#[derive(Subcommand, Debug)]
pub enum ClientCommand {
    /// Register a system by its public key (a JWK file); prints its client_id on the last line.
    Add {
        /// The organisation's code.
        #[arg(long)]
        org: String,
        #[arg(long)]
        name: String,
        /// practitioner, ig-officer or org-admin.
        #[arg(long)]
        role: String,
        /// The public key as a JWK (JSON file). A private key is refused and not stored.
        #[arg(long, value_name = "FILE")]
        jwk: PathBuf,
        /// RS256, RS384, RS512, PS256, PS384, PS512, ES256 or ES384, when the JWK has no `alg`.
        #[arg(long)]
        alg: Option<String>,
    },
    /// List an organisation's clients.
    List {
        #[arg(long)]
        org: String,
    },
    /// Revoke a client; its access tokens stop working on the next request.
    Revoke {
        #[arg(long)]
        org: String,
        /// The client's client_id (see `client list`).
        client_id: String,
    },
    /// Turn an organisation's long-lived API tokens `off` or `on` (web sign-in is unaffected).
    LongLivedTokens {
        #[arg(long)]
        org: String,
        #[arg(value_name = "on|off")]
        state: String,
    },
}

pub async fn run(command: ClientCommand, settings: Settings) -> anyhow::Result<ExitCode> {
    with_service(settings, async |service| match command {
        ClientCommand::Add { org, name, role, jwk, alg } => {
            let Some(role) = Role::parse(&role) else {
                eprintln!("locator: --role must be practitioner, ig-officer or org-admin");
                return Ok(ExitCode::from(2));
            };
            let name = match parse_label("name", &name, 200) {
                Ok(n) => n,
                Err(e) => return Ok(super::org::invalid(&[e])),
            };
            let text = std::fs::read_to_string(&jwk).with_context(|| format!("cannot read {}", jwk.display()))?;
            let Ok(key) = serde_json::from_str::<serde_json::Value>(&text) else {
                eprintln!("locator: --jwk must be a JSON file holding one JSON Web Key");
                return Ok(ExitCode::from(2));
            };
            let org = service.organisation_by_code(&org).await.context("no organisation has that code")?;
            let client = match service.add_client(None, org.id, &name, role, &key, alg.as_deref()).await {
                Ok(client) => client,
                Err(crate::service::ServiceError::Invalid(errors)) => return Ok(super::org::invalid(&errors)),
                Err(e) => return Err(anyhow::anyhow!("cannot add the client: {e}")),
            };
            println!(
                "added client {} ({}, {}, {}) to {}; it asks for tokens at {}",
                client.name,
                client.role,
                client.alg,
                client.key_thumbprint,
                org.code,
                service.settings().oauth.token_endpoint
            );
            println!("{}", client.client_id);
            Ok(ExitCode::SUCCESS)
        }
        ClientCommand::List { org } => {
            let org = service.organisation_by_code(&org).await.context("no organisation has that code")?;
            for c in service.clients_of_org(org.id).await? {
                let state = if c.revoked_at.is_some() { "revoked" } else { "active" };
                println!("{}\t{}\t{}\t{}\t{}", c.client_id, c.name, c.role, c.alg, state);
            }
            Ok(ExitCode::SUCCESS)
        }
        ClientCommand::Revoke { org, client_id } => {
            let org = service.organisation_by_code(&org).await.context("no organisation has that code")?;
            let client = service
                .revoke_client_of(None, org.id, &client_id)
                .await
                .context("no such client in that organisation")?;
            println!("revoked client {} ({})", client.client_id, client.name);
            Ok(ExitCode::SUCCESS)
        }
        ClientCommand::LongLivedTokens { org, state } => {
            let allowed = match state.trim() {
                "on" => true,
                "off" => false,
                _ => {
                    eprintln!("locator: the state must be `on` or `off`");
                    return Ok(ExitCode::from(2));
                }
            };
            let org = service.organisation_by_code(&org).await.context("no organisation has that code")?;
            service.set_long_lived_tokens(None, org.id, allowed).await?;
            println!("long-lived API tokens of {} are now {}", org.code, if allowed { "on" } else { "off" });
            Ok(ExitCode::SUCCESS)
        }
    })
    .await
}
