//! `locator org provider set|show|remove`: an organisation's OpenID Connect provider for its
//! people (docs/operator-guide.md, "Signing people in with Entra ID or NHS CIS2"). A secret is
//! never taken on the command line (other users can read a process's arguments): it is read
//! from standard input, or given as a reference the server reads.

use std::io::Read;
use std::process::ExitCode;

use clap::Subcommand;

use super::with_service;
use crate::config::Settings;
use crate::domain::identity_provider::{ProviderInput, RoleMapping};
use crate::service::oidc::ProviderView;

#[derive(Subcommand, Debug)]
#[allow(clippy::large_enum_variant)] // parsed once per process by clap
pub enum ProviderCommand {
    /// Set (or replace) CODE's identity provider and which claim values give which role.
    Set {
        code: String,
        /// The issuer URL, exactly as the provider's discovery document names it.
        #[arg(long)]
        issuer: String,
        /// The client (application) id the provider gave this service.
        #[arg(long)]
        client_id: String,
        /// Read the client secret from standard input (it is stored sealed).
        #[arg(long)]
        client_secret_stdin: bool,
        /// Or: where the server reads the secret, `env:NAME` or `file:/path`.
        #[arg(long)]
        client_secret_ref: Option<String>,
        /// Or: `file:/path` of a PEM private key (RSA or P-256) for `private_key_jwt` (NHS CIS2).
        #[arg(long)]
        private_key_ref: Option<String>,
        /// What the sign-in page calls the provider, e.g. "Microsoft Entra ID".
        #[arg(long)]
        label: Option<String>,
        /// Only this tenant (Entra's `tid` claim).
        #[arg(long)]
        tenant: Option<String>,
        /// Only people whose e-mail or user name is in this domain.
        #[arg(long)]
        domain: Option<String>,
        /// Scopes beyond `openid` [default: "profile email"].
        #[arg(long)]
        scopes: Option<String>,
        /// The claim with the groups or roles [default: groups].
        #[arg(long)]
        role_claim: Option<String>,
        /// A claim value that makes a person a practitioner (repeat for several).
        #[arg(long = "practitioner")]
        practitioner: Vec<String>,
        /// A claim value that makes a person an IG officer.
        #[arg(long = "ig-officer")]
        ig_officer: Vec<String>,
        /// A claim value that makes a person an org-admin.
        #[arg(long = "org-admin")]
        org_admin: Vec<String>,
        /// Sessions begun through this provider last at most this many minutes.
        #[arg(long)]
        session_max_minutes: Option<u32>,
    },
    /// Show CODE's identity provider (never its secret).
    Show { code: String },
    /// Remove CODE's identity provider.
    Remove { code: String },
}

pub async fn run(command: ProviderCommand, settings: Settings) -> anyhow::Result<ExitCode> {
    // Read before the service opens, so a prompt-less pipe is not held up by start-up.
    let secret = match &command {
        ProviderCommand::Set { client_secret_stdin: true, .. } => {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text)?;
            Some(text.trim().to_string())
        }
        _ => None,
    };
    with_service(settings, async |service| match command {
        ProviderCommand::Set {
            code,
            issuer,
            client_id,
            client_secret_stdin: _,
            client_secret_ref,
            private_key_ref,
            label,
            tenant,
            domain,
            scopes,
            role_claim,
            practitioner,
            ig_officer,
            org_admin,
            session_max_minutes,
        } => {
            let input = ProviderInput {
                label,
                issuer: Some(issuer),
                client_id: Some(client_id),
                client_secret: secret,
                client_secret_ref,
                private_key_ref,
                allowed_tenant: tenant,
                allowed_domain: domain,
                scopes,
                role_claim,
                roles: RoleMapping { practitioner, ig_officer, org_admin },
                session_max_minutes,
            };
            match service.set_identity_provider(None, &code, input).await {
                Ok(view) => {
                    println!("set {}", describe(&view));
                    Ok(ExitCode::SUCCESS)
                }
                Err(crate::service::ServiceError::Invalid(errors)) => {
                    for e in &errors {
                        eprintln!("locator: {}: {}", e.field, e.message);
                    }
                    Ok(ExitCode::from(2))
                }
                Err(e) => Err(e.into()),
            }
        }
        ProviderCommand::Show { code } => {
            println!("{}", describe(&service.identity_provider(&code).await?));
            Ok(ExitCode::SUCCESS)
        }
        ProviderCommand::Remove { code } => {
            service.remove_identity_provider(None, &code).await?;
            println!("removed the identity provider of {}", code.trim().to_ascii_uppercase());
            Ok(ExitCode::SUCCESS)
        }
    })
    .await
}

fn describe(v: &ProviderView) -> String {
    let list = |l: &[String]| if l.is_empty() { "-".to_string() } else { l.join(",") };
    format!(
        "{}\t{}\tissuer={}\tclient_id={}\tsecret={}{}\trole_claim={}\tpractitioner={}\tig-officer={}\torg-admin={}",
        v.organisation,
        v.label,
        v.issuer,
        v.client_id,
        v.client_authentication,
        v.reference.as_deref().map(|r| format!(" ({r})")).unwrap_or_default(),
        v.role_claim,
        list(&v.roles.practitioner),
        list(&v.roles.ig_officer),
        list(&v.roles.org_admin),
    )
}
