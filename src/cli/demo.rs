//! `locator demo`: the service with clearly fake organisations and users, and a token per
//! role printed, so a newcomer can make a lookup within a minute.

use std::process::ExitCode;

use crate::clock::Clock;
use crate::config::Settings;
use crate::domain::organisation::OrganisationInput;
use crate::domain::role::Role;
use crate::service::sync::SyncOptions;
use crate::service::{Service, ServiceError};

/// Fake holdings (made-up people, valid check digits) so a newcomer's first lookup finds someone.
const DEMO_CASELOADS: &[(&str, &str)] = &[
    (
        "DEMO-LA-SOUTH",
        "local_ref,category,status,nhs_number,upn,given_name,family_name,date_of_birth,postcode\n\
         SB-1001,child-protection-plan,open,9434765919,,Ruby,Demo-Fletcher,2016-04-12,SO14 3AA\n\
         SB-1002,child-in-need,open,,,Alfie,Demoson,2019-09-30,SO15 2BB\n\
         SB-1003,looked-after,closed,9074833780,,Maya,Demowska,2012-01-05,\n",
    ),
    (
        "DEMO-NHS",
        "local_ref,category,status,nhs_number,upn,given_name,family_name,date_of_birth,postcode\n\
         RNT-77,other,open,9434765919,,Ruby,Fletcher,2016-04-12,\n",
    ),
];

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

/// The demo's own database files (the index and its audit trail, with SQLite's journals).
const DEMO_FILES: &[&str] = &[
    "locator-demo.db",
    "locator-demo.db-wal",
    "locator-demo.db-shm",
    "locator-demo-audit.db",
    "locator-demo-audit.db-wal",
    "locator-demo-audit.db-shm",
];

/// The demo organisations' areas, for the area summary of a "not known" answer (the NHS trust
/// lists none: it covers everywhere).
const DEMO_AREAS: &[(&str, &str)] = &[("DEMO-LA-NORTH", "NE"), ("DEMO-LA-SOUTH", "SO14 SO15"), ("DEMO-SCHOOL", "SO14")];

/// Each run of the demo starts from nothing, so it never keeps an earlier run's data or issues
/// a second set of same-named users. Only the demo's own default files are removed; a database
/// named with `--database-url` is never touched (and then the demo adds to it).
fn start_clean() -> anyhow::Result<()> {
    let mut removed = false;
    for file in DEMO_FILES {
        match std::fs::remove_file(file) {
            Ok(()) => removed = true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(anyhow::anyhow!("cannot remove the previous demo's {file}: {e}")),
        }
    }
    if removed {
        eprintln!("locator demo: starting clean (removed the previous demo's locator-demo*.db files)");
    }
    Ok(())
}

pub async fn demo(mut settings: Settings) -> anyhow::Result<ExitCode> {
    // Keep demo data out of a real database unless one was named explicitly.
    if settings.database_url == crate::config::DEFAULT_DATABASE_URL {
        settings.database_url = "sqlite://locator-demo.db".into();
        settings.key_file = "locator-demo.key".into();
        settings.audit_key_file = "locator-demo-audit.key".into();
        start_clean()?;
    }
    let (service, task) = Service::open(settings, Clock::System).await?;
    let tokens = demo_organisations(&service).await?;
    let demo_idp = demo_identity_provider(&service).await?;
    demo_caseloads(&service).await?;
    super::serve::run_service(service, task, |addr| {
        println!("\nchild-locator DEMO is running at http://{addr}  (fake data only; Ctrl-C to stop)\n");
        println!("Open http://{addr}/ in a browser and paste a token to sign in, or send it as `Authorization: Bearer TOKEN`:");
        for (org, role, token) in &tokens {
            println!("  {org:<14} {:<13} {token}", role.as_str());
        }
        println!(
            "\nTo see the holder's side (its matches and the requests made to it), sign in as DEMO-LA-SOUTH \
             (it holds Ruby, the child in the lookup below); DEMO-LA-NORTH is the asking side."
        );
        if let Some(issuer) = &demo_idp {
            println!(
                "\nOr sign in with the demo identity provider ({issuer}, made-up people only): open \
                 http://{addr}/sign-in/provider and choose Northshire County Council (DEMO)."
            );
        }
        if let Some((_, _, token)) = tokens.first() {
            println!("\nTry a lookup (the DEMO-LA-NORTH practitioner asks about a fake child):");
            println!(
                "  curl -s http://{addr}/api/v1/lookups -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' \\\n    \
                 -d '{{\"subject\": {{\"given_name\": \"Ruby\", \"family_name\": \"Fletcher\", \"date_of_birth\": \"2016-04-12\"}}, \"purpose\": \"front-door-triage\"}}'\n"
            );
        }
    })
    .await
}

/// The demo organisations, their areas and a token for each role that signs in at each: the
/// (organisation code, role, token) a newcomer is shown.
async fn demo_organisations(service: &Service) -> anyhow::Result<Vec<(String, Role, String)>> {
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
        let org = match service.add_organisation(None, &new).await {
            Ok(org) => org,
            Err(ServiceError::Conflict(_)) => service.organisation_by_code(code).await?,
            Err(e) => return Err(e.into()),
        };
        let roles: &[Role] = if *code == "DEMO-LA-NORTH" { &Role::ALL } else { &[Role::Practitioner, Role::OrgAdmin] };
        for role in roles {
            // A person's name, as a real user has: the header names the organisation already.
            let name = match role {
                Role::Practitioner => "Sam Demo",
                Role::IgOfficer => "Priya Demo",
                Role::OrgAdmin => "Alex Demo",
                Role::Operator => "Jo Demo",
            };
            let (_, token) = service
                .issue_user(None, org.id, name, *role)
                .await
                .map_err(|e| anyhow::anyhow!("cannot issue demo token: {e}"))?;
            tokens.push((org.code.clone(), *role, token));
        }
    }
    for (code, areas) in DEMO_AREAS {
        let areas = crate::domain::area::parse_areas(areas).map_err(|e| anyhow::anyhow!("demo areas: {e:?}"))?;
        service.set_organisation_areas(None, code, &areas).await?;
    }
    Ok(tokens)
}

/// The demo organisations' fake caseloads, synced as a holder would.
async fn demo_caseloads(service: &Service) -> anyhow::Result<()> {
    for (code, csv) in DEMO_CASELOADS {
        let org = service.organisation_by_code(code).await?;
        let format = crate::domain::sync::SyncFormat::Csv;
        service
            .sync_holdings(org.id, None, format, std::io::Cursor::new(csv.as_bytes()), SyncOptions::default(), &|_| {})
            .await
            .map_err(|e| anyhow::anyhow!("demo caseload: {e}"))?;
    }
    Ok(())
}

/// The demo's identity provider, when `LOCATOR_DEMO_IDP` names one (the test provider started
/// with `OIDC_DEMO=1 PORT=9400 node tests/oidc/provider.mjs`, README): DEMO-LA-NORTH's people sign
/// in through it, with the groups `sw`, `ig` and `admins` giving the three roles.
async fn demo_identity_provider(service: &Service) -> anyhow::Result<Option<String>> {
    let Ok(issuer) = std::env::var("LOCATOR_DEMO_IDP") else { return Ok(None) };
    let input = crate::domain::identity_provider::ProviderInput {
        label: Some("the demo identity provider".into()),
        issuer: Some(issuer.trim().trim_end_matches('/').to_string()),
        client_id: Some("child-locator-demo".into()),
        // The demo provider's published demo-only secret; nothing real is behind it.
        client_secret: Some("demo-only-secret".into()),
        scopes: Some("profile email groups".into()),
        roles: crate::domain::identity_provider::RoleMapping {
            practitioner: vec!["sw".into()],
            ig_officer: vec!["ig".into()],
            org_admin: vec!["admins".into()],
        },
        ..Default::default()
    };
    let view = service
        .set_identity_provider(None, "DEMO-LA-NORTH", input)
        .await
        .map_err(|e| anyhow::anyhow!("LOCATOR_DEMO_IDP: the demo identity provider cannot be set: {e}"))?;
    Ok(Some(view.issuer))
}
