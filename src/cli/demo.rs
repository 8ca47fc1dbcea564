//! `locator demo`: the service with clearly fake organisations and users, and a token per
//! role printed, so a newcomer can make a lookup within a minute.

use std::process::ExitCode;

use crate::clock::Clock;
use crate::config::Settings;
use crate::domain::organisation::OrganisationInput;
use crate::domain::role::Role;
use crate::service::Service;
use crate::store::StoreError;

/// Fake organisations: codes start with DEMO so they can never be mistaken for real ones.
const DEMO_ORGS: &[(&str, &str, &str, &str, &str)] = &[
    (
        "DEMO-LA-NORTH",
        "Northshire County Council (DEMO)",
        "local-authority",
        "01632 960001",
        "mash@northshire.demo.invalid",
    ),
    (
        "DEMO-LA-SOUTH",
        "Southborough Council (DEMO)",
        "local-authority",
        "01632 960002",
        "front.door@southborough.demo.invalid",
    ),
    ("DEMO-NHS", "Riverside NHS Trust (DEMO)", "nhs-trust", "01632 960003", "safeguarding@riverside.demo.invalid"),
    ("DEMO-SCHOOL", "Hillside Primary School (DEMO)", "school", "01632 960004", "dsl@hillside.demo.invalid"),
];

pub async fn demo(mut settings: Settings) -> anyhow::Result<ExitCode> {
    // Keep demo data out of a real database unless one was named explicitly.
    if settings.database_url == crate::config::DEFAULT_DATABASE_URL {
        settings.database_url = "sqlite://locator-demo.db".into();
        settings.key_file = "locator-demo.key".into();
        settings.audit_key_file = "locator-demo-audit.key".into();
    }
    let (service, task) = Service::open(settings, Clock::System).await?;
    let mut tokens = Vec::new();
    for (code, name, kind, phone, email) in DEMO_ORGS {
        let input = OrganisationInput {
            code: Some((*code).into()),
            name: Some((*name).into()),
            kind: Some((*kind).into()),
            duty_phone: Some((*phone).into()),
            out_of_hours_phone: None,
            secure_email: Some((*email).into()),
            active: None,
        };
        let new = input.into_new().map_err(|e| anyhow::anyhow!("demo organisation invalid: {e:?}"))?;
        let org = match service.store.add_organisation(&new, service.clock.now_ms()).await {
            Ok(org) => org,
            Err(StoreError::Conflict(_)) => service.store.organisation_by_code(code).await?,
            Err(e) => return Err(e.into()),
        };
        let roles: &[Role] = if *code == "DEMO-LA-NORTH" { &Role::ALL } else { &[Role::Practitioner, Role::OrgAdmin] };
        for role in roles {
            let name = format!("Demo {} at {}", role.as_str(), org.code);
            let (_, token) = crate::http::users::issue_user(&service, None, org.id, &name, *role)
                .await
                .map_err(|e| anyhow::anyhow!("cannot issue demo token: {e}"))?;
            tokens.push((org.code.clone(), *role, token));
        }
    }
    super::serve::run_service(service, task, |addr| {
        println!("\nchild-locator DEMO is running at http://{addr}  (fake data only; Ctrl-C to stop)\n");
        println!("Tokens (send as `Authorization: Bearer TOKEN`):");
        for (org, role, token) in &tokens {
            println!("  {org:<14} {:<13} {token}", role.as_str());
        }
        if let Some((_, _, token)) = tokens.first() {
            println!("\nTry:\n  curl -s http://{addr}/api/v1/organisations -H 'Authorization: Bearer {token}'\n");
        }
    })
    .await
}
